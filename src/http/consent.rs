//! `POST /consent`: the consent form. `decision=allow` remembers the decision and sends
//! the browser back to the client with a code; `decision=deny` with `access_denied`.

use axum::extract::State;
use axum::response::Response;

use super::AppState;
use super::form::OAuthForm;
use super::openapi::{ConsentForm, ErrorPage, ForgedForm, MethodNotAllowed, RateLimited};
use super::pages;
use super::visit::Visit;
use crate::error::ApiError;
use crate::signin;

pub const PATH: &str = "/consent";

#[utoipa::path(
    post,
    path = PATH,
    summary = "The consent form of the sign-in pages",
    description = "`decision=allow` remembers the decision (per user, client, scope and \
        resources) and goes back to the client with a code (valid 60 seconds, once); \
        `decision=deny` goes back with `error=access_denied`. Without a session, back to the \
        login page. Rate limited per client address.",
    request_body(content = ConsentForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "A redirect (`303 See Other`)."),
        (status = 400, response = ErrorPage),
        (status = 403, response = ForgedForm),
        (status = 405, response = MethodNotAllowed),
        (status = 429, response = RateLimited),
    )
)]
pub async fn consent(
    State(state): State<AppState>,
    visit: Visit,
    form: Result<OAuthForm, ApiError>,
) -> Response {
    let outcome = async {
        let form = form?;
        let pending = pages::pending(&form)?;
        // Judged after the form's CSRF token: a forged form is refused as such.
        let decision = form.get("decision").unwrap_or("");
        let signed_in = visit.signed_in(&state).await?;
        let cx = visit.context(&state);
        let browser = visit.browser.as_ref();
        let to = signin::consent(&cx, &pending, browser, signed_in, decision).await?;
        Ok(pages::see_other(&to))
    }
    .await;
    pages::answer(&visit, outcome)
}
