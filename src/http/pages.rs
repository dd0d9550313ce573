//! The sign-in pages: askama templates rendered with the headers every page carries (a
//! strict Content-Security-Policy, no framing, no referrer, never cached), the cookies
//! they set, and the error page every sign-in failure is shown as.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use serde::Deserialize;
use utoipa::ToSchema;

use super::cookies::{set_cookie, with_cookies};
pub use super::visit::PageError;
use super::visit::Visit;
use crate::error::ApiError;
use crate::limits::retry_after_seconds;
use crate::params::Parameters;
use crate::signin::binding::{PendingError, PendingForm};
use crate::signin::request::ReturnTo;
use crate::signin::view::{Answer, ConsentView, Location, LoginView, Shown};
use crate::signin::{LoginProblem, Signin, SigninError};

/// What every page shows: the issuer's name on top, and the version that names the
/// stylesheet (so a new one is fetched after an upgrade despite its long cache).
struct Common<'a> {
    issuer_name: &'a str,
    version: &'static str,
}

impl<'a> Common<'a> {
    fn new(signin: &'a Signin) -> Self {
        Common {
            issuer_name: &signin.issuer_name,
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    page: Common<'a>,
    client_name: &'a str,
    problem: Option<&'a str>,
    local_users: bool,
    providers: Vec<ProviderButton<'a>>,
    form: &'a PendingForm,
    username: &'a str,
}

/// A provider's button on the login page; disabled while it is not discovered.
struct ProviderButton<'a> {
    id: &'a str,
    name: &'a str,
    available: bool,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    page: Common<'a>,
    client_name: &'a str,
    username: &'a str,
    self_registered: bool,
    return_to: ReturnTo,
    /// A metadata document's client that returns only to loopback redirect URIs.
    on_this_computer: bool,
    /// The host of a metadata document's URL: who published the client.
    publisher: Option<String>,
    scopes: &'a [String],
    resources: &'a [String],
    form: &'a PendingForm,
    sign_out_token: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    page: Common<'a>,
    title: &'a str,
    message: &'a str,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage<'a> {
    page: Common<'a>,
}

/// A page: its status, rendered body and the headers every page carries. `form_action`
/// is the origin (or scheme) of the client's redirect URI, and of the providers' sign-in
/// pages, where a form of the page may end up after its redirects (CSP `form-action`
/// covers them).
fn html(status: StatusCode, body: askama::Result<String>, form_action: Option<&str>) -> Response {
    let Ok(body) = body else {
        return ApiError::Internal("a page template failed to render".to_owned()).into_response();
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'{}; \
         frame-ancestors 'none'; base-uri 'none'",
        form_action.map(|a| format!(" {a}")).unwrap_or_default()
    );
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    security_headers(headers);
    response
}

/// Headers of every sign-in answer, pages and redirects alike.
fn security_headers(headers: &mut HeaderMap) {
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The CSP source of a redirect URI: its origin, or its scheme for a private-use scheme
/// (RFC 8252 §7.1). `None` for anything that could not be written safely.
fn csp_source(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    let source = match url.scheme() {
        "http" | "https" => url.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    };
    let safe = source
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".:/-+[]".contains(&b));
    safe.then_some(source)
}

/// A `303 See Other` to `location` (an absolute URI at the client, or a path relative to
/// this server's pages).
pub fn see_other(location: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        return ApiError::Internal("unwritable redirect location".to_owned()).into_response();
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    security_headers(response.headers_mut());
    response
}

/// Where the answering page is served, which a relative location starts from.
#[derive(Clone, Copy, Debug)]
pub enum At {
    /// `/authorize`, `/login`, `/consent`, `/logout`.
    Top,
    /// `/login/provider/{id}` and `/login/callback/{id}`.
    ProviderPage,
}

/// A sign-in step's answer, rendered: its page or redirect, with its cookies.
pub fn render(visit: &Visit, at: At, answer: Answer) -> Response {
    let signin = &*visit.signin;
    let response = match &answer.shown {
        Shown::Login(view) => login(signin, view),
        Shown::Consent(view) => consent(signin, view),
        Shown::SignedOut => signed_out(signin),
        Shown::Redirect(to) => see_other(&location(at, to)),
    };
    let cookies = answer
        .cookies
        .iter()
        .map(|cookie| set_cookie(signin, cookie));
    with_cookies(response, cookies)
}

/// A location as the `Location` header of a page served `at` says it: the client's or
/// the provider's URL, or `/authorize` relative to the page, so that it holds behind a
/// proxy that serves the issuer under a path.
fn location(at: At, to: &Location) -> String {
    match to {
        Location::Client(url) => url.to_string(),
        Location::Provider(url) => url.clone(),
        Location::Authorize(request) => {
            let up = match at {
                At::Top => "",
                At::ProviderPage => "../../",
            };
            format!("{up}authorize?{}", request.to_query())
        }
    }
}

/// The login page of a request, with the problem of a failed try.
fn login(signin: &Signin, view: &LoginView) -> Response {
    let prompt = &view.prompt;
    let (username, problem) = match &view.retry {
        Some((username, problem)) => (username.as_str(), Some(*problem)),
        None => ("", None),
    };
    let text = problem.map(problem_text);
    let providers = signin.providers.iter().map(|p| ProviderButton {
        id: &p.id,
        name: &p.name,
        available: p.available(),
    });
    let page = LoginPage {
        page: Common::new(signin),
        client_name: &prompt.client.name,
        problem: text.as_deref(),
        local_users: signin.local_users,
        providers: providers.collect(),
        form: &view.form,
        username,
    };
    let status = match problem {
        Some(LoginProblem::Throttled(_)) => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::OK,
    };
    let provider_origins = signin
        .providers
        .iter()
        .filter_map(|p| p.authorization_origin().and_then(|o| csp_source(&o)));
    let action = csp_source(&prompt.request.redirect_uri)
        .into_iter()
        .chain(provider_origins)
        .collect::<Vec<_>>()
        .join(" ");
    let action = (!action.is_empty()).then_some(action);
    let mut response = html(status, page.render(), action.as_deref());
    if let Some(LoginProblem::Throttled(wait)) = problem {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_seconds(wait)),
        );
    }
    response
}

fn problem_text(problem: LoginProblem) -> String {
    match problem {
        LoginProblem::Refused => "The username or password is incorrect.".to_owned(),
        LoginProblem::Throttled(wait) => {
            let minutes = wait.as_secs().div_ceil(60).max(1);
            let unit = if minutes == 1 { "minute" } else { "minutes" };
            format!("Too many failed sign-ins. Try again in {minutes} {unit}.")
        }
    }
}

/// The consent page of a request for the signed-in user.
fn consent(signin: &Signin, view: &ConsentView) -> Response {
    let prompt = &view.prompt;
    let page = ConsentPage {
        page: Common::new(signin),
        client_name: &prompt.client.name,
        username: &view.username,
        self_registered: crate::signin::self_registered(&prompt.client),
        return_to: prompt.request.return_to(),
        on_this_computer: crate::signin::runs_on_this_computer(&prompt.client),
        publisher: crate::documents::publisher(&prompt.client),
        scopes: &prompt.scopes(),
        resources: &prompt.resources,
        form: &view.form,
        sign_out_token: &view.sign_out_token,
    };
    let action = csp_source(&prompt.request.redirect_uri);
    html(StatusCode::OK, page.render(), action.as_deref())
}

/// The answer of a sign-in handler: its response, or the error page.
pub fn answer(visit: &Visit, outcome: Result<Response, PageError>) -> Response {
    outcome.unwrap_or_else(|err| err.page(&visit.signin))
}

/// The hidden fields every sign-in form carries.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PendingFields {
    /// The pending authorization request, as the page gave it (signed, bound to this
    /// browser, valid for 15 minutes).
    #[schema(required = true, nullable = false)]
    request: Option<String>,
    /// The page's CSRF token, bound to the browser and to `request`.
    #[schema(required = true, nullable = false)]
    csrf_token: Option<String>,
}

impl Parameters for PendingFields {}

/// The hidden fields of a posted login or consent form. A form without its CSRF token
/// is refused as one with a wrong token.
pub fn pending(fields: &PendingFields) -> Result<PendingForm, SigninError> {
    let request = fields.request.as_ref().ok_or(SigninError::BadForm)?;
    let csrf_token = fields
        .csrf_token
        .as_ref()
        .ok_or(SigninError::Pending(PendingError::Forged))?;
    Ok(PendingForm {
        request: request.clone(),
        csrf_token: csrf_token.clone(),
    })
}

/// The page shown after signing out.
fn signed_out(signin: &Signin) -> Response {
    let page = SignedOutPage {
        page: Common::new(signin),
    };
    html(StatusCode::OK, page.render(), None)
}

/// Titles and texts of error pages: fixed, never an echo of the request.
fn error_text(err: &PageError) -> (StatusCode, &'static str, &'static str) {
    use PageError::{Api, Signin as S};
    let cannot = "This sign-in cannot continue";
    match err {
        S(SigninError::Shown(shown)) => (StatusCode::BAD_REQUEST, cannot, shown.message()),
        S(SigninError::Pending(PendingError::NoCookie)) => (
            StatusCode::BAD_REQUEST,
            "Cookies are needed to sign in",
            "Your browser did not send back the cookie of this sign-in page. Allow cookies for this site and try again.",
        ),
        S(SigninError::Pending(PendingError::Forged)) => (
            StatusCode::FORBIDDEN,
            "This form was not accepted",
            "It was not sent from the page this browser was given, or it was changed on the way.",
        ),
        S(SigninError::Pending(PendingError::Expired)) => (
            StatusCode::BAD_REQUEST,
            "This sign-in page has expired",
            "It was open for too long.",
        ),
        S(SigninError::UnknownProvider) => (
            StatusCode::BAD_REQUEST,
            cannot,
            "No such identity provider is configured on this server.",
        ),
        S(SigninError::ProviderState) => (
            StatusCode::BAD_REQUEST,
            "This sign-in has expired or was already used",
            "Start again from the application you were signing in to.",
        ),
        S(SigninError::BadForm) => (
            StatusCode::BAD_REQUEST,
            cannot,
            "The form was not sent as this page sends it.",
        ),
        S(SigninError::Store(_)) | Api(ApiError::Unavailable(_) | ApiError::Timeout) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing in is unavailable right now",
            "Please try again in a moment.",
        ),
        Api(ApiError::RateLimited { .. }) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "Please wait a moment before trying again.",
        ),
        Api(ApiError::PayloadTooLarge) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            cannot,
            "The form sent was too large.",
        ),
        Api(ApiError::Internal(_)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The server could not complete this step.",
        ),
        Api(_) => (
            StatusCode::BAD_REQUEST,
            cannot,
            "The request was not understood.",
        ),
    }
}

impl PageError {
    /// The error page, on the sign-in settings of `signin`.
    pub fn page(self, signin: &Signin) -> Response {
        match &self {
            PageError::Signin(SigninError::Store(err)) => {
                crate::metrics::store_error(err);
                tracing::warn!(error = %err, "store unavailable");
            }
            PageError::Api(ApiError::Internal(err)) => {
                tracing::error!(error = %err, "internal error")
            }
            _ => {}
        }
        let (status, title, message) = error_text(&self);
        let page = ErrorPage {
            page: Common::new(signin),
            title,
            message,
        };
        let mut response = html(status, page.render(), None);
        let retry = match &self {
            PageError::Api(ApiError::RateLimited { retry_after }) => Some(*retry_after),
            PageError::Signin(SigninError::Store(_)) | PageError::Api(ApiError::Unavailable(_)) => {
                Some(1)
            }
            _ => None,
        };
        if let Some(seconds) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn csp_sources_are_origins_or_schemes() {
        assert_eq!(
            csp_source("https://app.example/cb?x=1").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            csp_source("http://127.0.0.1:5173/cb").as_deref(),
            Some("http://127.0.0.1:5173")
        );
        assert_eq!(
            csp_source("http://[::1]:8080/cb").as_deref(),
            Some("http://[::1]:8080")
        );
        assert_eq!(
            csp_source("com.example.app:/oauth").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(csp_source("not a uri"), None);
    }

    #[test]
    fn throttled_problems_say_when_to_retry() {
        assert_eq!(
            problem_text(LoginProblem::Throttled(Duration::from_secs(30))),
            "Too many failed sign-ins. Try again in 1 minute."
        );
        assert_eq!(
            problem_text(LoginProblem::Throttled(Duration::from_secs(200))),
            "Too many failed sign-ins. Try again in 4 minutes."
        );
    }
}
