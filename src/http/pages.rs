//! The sign-in pages: askama templates rendered with the headers every page carries (a
//! strict Content-Security-Policy, no framing, no referrer, never cached), the cookies
//! they set, and the error page every sign-in failure is shown as.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::form::OAuthForm;
use super::visit::Visit;
use crate::error::ApiError;
use crate::limits::retry_after_seconds;
use crate::signin::binding::{Browser, PendingError, PendingForm, pending_form, sign_out_token};
use crate::signin::request::ReturnTo;
use crate::signin::{LoginProblem, LoginStep, Prompt, SignedIn, Signin, SigninError, Step};

/// The session cookie: names a session row and the browser it was started in (signed).
pub const SESSION_COOKIE: &str = "introspectd_session";
/// The browser cookie: binds pending sign-ins to this browser (signed).
pub const BROWSER_COOKIE: &str = "introspectd_browser";
/// The prefix of the cookies' names when the issuer is https: a browser then keeps them
/// only when set `Secure`, `Path=/` and without `Domain` by this very host, so that
/// another site of the domain cannot set one (cookie tossing).
const HOST_PREFIX: &str = "__Host-";
/// How long a browser cookie lives, in seconds: the browser's proof that its users
/// signed in from it outlives their sessions.
const BROWSER_COOKIE_SECONDS: i64 = 180 * 24 * 3_600;

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

/// The name a sign-in cookie goes by: `__Host-` first on https.
pub fn cookie_name(signin: &Signin, name: &str) -> String {
    match signin.secure_cookies {
        true => format!("{HOST_PREFIX}{name}"),
        false => name.to_owned(),
    }
}

/// `Set-Cookie` for a sign-in cookie: `HttpOnly`, `SameSite=Lax`, `Path=/`, no
/// `Domain`, and on https `Secure` with a `__Host-` name.
fn cookie(signin: &Signin, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if signin.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let name = cookie_name(signin, name);
    let cookie =
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Adds cookies to a response.
pub fn with_cookies(
    mut response: Response,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> Response {
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The browser cookie naming `browser`, renewed on every page that binds a form to it.
pub fn browser_cookie(signin: &Signin, browser: &Browser) -> HeaderValue {
    cookie(
        signin,
        BROWSER_COOKIE,
        &browser.to_cookie(&signin.key),
        BROWSER_COOKIE_SECONDS,
    )
}

/// The session cookie of a new session.
pub fn session_cookie(signin: &Signin, value: &str) -> HeaderValue {
    cookie(signin, SESSION_COOKIE, value, signin.session_ttl)
}

/// Clears the session cookie.
pub fn session_cleared(signin: &Signin) -> HeaderValue {
    cookie(signin, SESSION_COOKIE, "", 0)
}

/// The login page for `prompt`, bound to the visiting browser; with the problem of a
/// failed try.
pub fn login(visit: &Visit, prompt: &Prompt, retry: Option<(&str, LoginProblem)>) -> Response {
    let (signin, browser) = (&*visit.signin, &visit.browser());
    let form = pending_form(&signin.key, browser, &prompt.request.to_query(), visit.now);
    let (username, problem) = retry.map_or(("", None), |(u, p)| (u, Some(p)));
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
        form: &form,
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
    with_cookies(response, [browser_cookie(signin, browser)])
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

/// The consent page for `prompt` and the signed-in user, bound to the visiting browser.
pub fn consent(visit: &Visit, prompt: &Prompt, signed_in: &SignedIn) -> Response {
    let (signin, browser) = (&*visit.signin, &visit.browser());
    let form = pending_form(&signin.key, browser, &prompt.request.to_query(), visit.now);
    let page = ConsentPage {
        page: Common::new(signin),
        client_name: &prompt.client.name,
        username: &signed_in.user.username,
        self_registered: crate::signin::self_registered(&prompt.client),
        return_to: prompt.request.return_to(),
        on_this_computer: crate::signin::runs_on_this_computer(&prompt.client),
        publisher: crate::documents::publisher(&prompt.client),
        scopes: &prompt.scopes(),
        resources: &prompt.resources,
        form: &form,
        sign_out_token: &sign_out_token(&signin.key, &signed_in.session_id),
    };
    let action = csp_source(&prompt.request.redirect_uri);
    let response = html(StatusCode::OK, page.render(), action.as_deref());
    with_cookies(response, [browser_cookie(signin, browser)])
}

/// What a sign-in step shows: the login or consent page, or a redirect.
pub fn step(visit: &Visit, step: Step) -> Response {
    match step {
        Step::Login(prompt) => login(visit, &prompt, None),
        Step::Consent(prompt, signed_in) => consent(visit, &prompt, &signed_in),
        Step::Redirect(location) => see_other(&location),
        Step::Provider(location) => with_cookies(
            see_other(&location),
            [browser_cookie(&visit.signin, &visit.browser())],
        ),
    }
}

/// The answer of a sign-in handler: its response, or the error page.
pub fn answer(visit: &Visit, outcome: Result<Response, PageError>) -> Response {
    outcome.unwrap_or_else(|err| err.page(&visit.signin))
}

/// What a login form answers: on with a new session, the login page again, or back to
/// the client.
pub fn login_step(visit: &Visit, step: LoginStep) -> Response {
    match step {
        LoginStep::SignedIn {
            session_cookie,
            browser,
            next,
        } => signed_in(&visit.signin, &session_cookie, &browser, &next),
        LoginStep::Retry {
            prompt,
            username,
            problem,
        } => login(visit, &prompt, Some((&username, problem))),
        LoginStep::Redirect(to) => see_other(&to),
    }
}

/// After a right password: on to `next` with the new session, and the browser cookie
/// that now remembers the user.
pub fn signed_in(signin: &Signin, session: &str, browser: &Browser, next: &str) -> Response {
    with_cookies(
        see_other(next),
        [
            session_cookie(signin, session),
            browser_cookie(signin, browser),
        ],
    )
}

/// The hidden fields of a posted login or consent form. A form without its CSRF token
/// is refused as one with a wrong token.
pub fn pending(form: &OAuthForm) -> Result<PendingForm, SigninError> {
    let request = form.get("request").ok_or(SigninError::BadForm)?;
    let csrf_token = form
        .get("csrf_token")
        .ok_or(SigninError::Pending(PendingError::Forged))?;
    Ok(PendingForm {
        request: request.to_owned(),
        csrf_token: csrf_token.to_owned(),
    })
}

/// The page shown after signing out; the session cookie is cleared when a session
/// `ended`.
pub fn signed_out(signin: &Signin, ended: bool) -> Response {
    let page = SignedOutPage {
        page: Common::new(signin),
    };
    let response = html(StatusCode::OK, page.render(), None);
    with_cookies(response, ended.then(|| session_cleared(signin)))
}

/// A failure of a sign-in page, shown as the error page.
#[derive(Debug)]
pub enum PageError {
    Signin(SigninError),
    Api(ApiError),
}

impl From<SigninError> for PageError {
    fn from(err: SigninError) -> Self {
        PageError::Signin(err)
    }
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        PageError::Api(err)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(err: crate::store::StoreError) -> Self {
        PageError::Signin(SigninError::Store(err))
    }
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
