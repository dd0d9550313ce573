//! `POST /login`: the login form. A right password starts a session and goes back to
//! `/authorize`; a wrong one shows the form again, within the failure budgets.

use axum::extract::State;
use axum::response::Response;

use super::AppState;
use serde::Deserialize;
use utoipa::ToSchema;

use super::docs::{ErrorPage, ForgedForm, MethodNotAllowed, Page, UnavailablePage};
use super::pages::{self, At, PageError, PendingFields};
use super::params::Form;
use super::visit::Visit;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::params::Parameters;
use crate::secret::Password;
use crate::signin;

pub const PATH: &str = "/login";

/// `POST /login`'s form body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginForm {
    #[serde(flatten)]
    pending: PendingFields,
    #[schema(required = true, nullable = false)]
    username: Option<String>,
    #[schema(value_type = String, required = true, nullable = false)]
    password: Option<Password>,
}

impl Parameters for LoginForm {}

#[utoipa::path(
    post,
    path = PATH,
    summary = "The login form of the sign-in pages",
    description = "A right password starts a session (cookie `introspectd_session`, \
        `__Host-introspectd_session` when the issuer is https: signed, bound to the browser \
        cookie, `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` when the issuer is https, for \
        `login.session_ttl_seconds`) and goes back to `/authorize`. An unknown user, a wrong \
        password and a disabled user get the same page again. Wrong passwords spend budgets \
        shared by every instance: per client address, per username at an address \
        (`rate_limit.password_failures_per_*`), and per username, whose attempts past its \
        free failures wait a doubling delay. A refused attempt is not checked: the page says \
        when to retry (429). A browser its user signed in from before has a budget of its \
        own past these. Rate limited per client address.",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The login page again: the username or password is \
            incorrect.",
            body = Page, content_type = "text/html"),
        (status = 303, description = "A redirect (`303 See Other`)."),
        (status = 400, response = ErrorPage),
        (status = 403, response = ForgedForm),
        (status = 405, response = MethodNotAllowed),
        (status = 413, response = ErrorPage),
        (status = 429, description = "Too many requests from this address (JSON), or the login \
            page saying when to retry after too many wrong passwords (HTML).",
            content((ErrorBody = "application/json"), (Page = "text/html")),
            headers(("Retry-After" = u32, description = "Seconds to wait."))),
        (status = 503, response = UnavailablePage),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    visit: Visit,
    form: Result<Form<LoginForm>, ApiError>,
) -> Response {
    let outcome = async {
        let Form(form) = form?;
        let pending = pages::pending(&form.pending)?;
        let username = form.username.as_deref().unwrap_or("");
        let password = form.password.unwrap_or_else(|| Password::new(""));
        let cx = visit.context(&state);
        let browser = visit.browser.as_ref();
        let step = signin::login(&cx, &pending, browser, (username, &password), visit.ip);
        Ok::<_, PageError>(pages::render(&visit, At::Top, step.await?))
    }
    .await;
    pages::answer(&visit, outcome)
}
