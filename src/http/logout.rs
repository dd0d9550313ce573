//! `POST /logout`: ends the browser's session on every instance and shows the
//! signed-out page. The form's token is bound to the session it ends; without it,
//! nothing is ended or cleared.

use axum::extract::State;
use axum::response::Response;

use super::AppState;
use super::form::OAuthForm;
use super::openapi::{ForgedForm, LogoutForm, MethodNotAllowed, Page, RateLimited};
use super::pages;
use super::visit::Visit;
use crate::error::ApiError;
use crate::signin;

pub const PATH: &str = "/logout";

#[utoipa::path(
    post,
    path = PATH,
    summary = "Signs the browser out",
    description = "Ends the browser's session on every instance and shows the signed-out page. \
        `csrf_token` is the one the consent page's sign-out form carries, bound to the \
        session: only with it is the session ended and its cookie cleared. A browser that \
        is not signed in (or sent no cookies) gets the signed-out page and keeps its \
        cookies. Rate limited per client address.",
    request_body(content = LogoutForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The signed-out page; the session cookie is cleared \
            when a session ended.",
            body = Page, content_type = "text/html"),
        (status = 403, response = ForgedForm),
        (status = 405, response = MethodNotAllowed),
        (status = 429, response = RateLimited),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    visit: Visit,
    form: Result<OAuthForm, ApiError>,
) -> Response {
    let outcome = async {
        let form = form?;
        let signed_in = visit.signed_in(&state).await?;
        let token = form.get("csrf_token").unwrap_or("");
        let ended = signin::sign_out(&visit.context(&state), signed_in.as_ref(), token).await?;
        Ok(pages::signed_out(&visit.signin, ended))
    }
    .await;
    pages::answer(&visit, outcome)
}
