//! `POST /logout`: ends the browser's session on every instance and shows the
//! signed-out page. The form's token is bound to the session it ends; without it,
//! nothing is ended or cleared.

use axum::extract::State;
use axum::response::Response;

use super::AppState;
use serde::Deserialize;
use utoipa::ToSchema;

use super::docs::{ForgedForm, MethodNotAllowed, Page, RateLimited};
use super::pages::{self, At};
use super::params::Form;
use super::visit::Visit;
use crate::error::ApiError;
use crate::params::Parameters;
use crate::signin;

pub const PATH: &str = "/logout";

/// `POST /logout`'s form body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LogoutForm {
    /// The token the consent page's sign-out form carries, bound to the session.
    #[schema(nullable = false)]
    csrf_token: Option<String>,
}

impl Parameters for LogoutForm {}

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
    form: Result<Form<LogoutForm>, ApiError>,
) -> Response {
    let outcome = async {
        let Form(form) = form?;
        let signed_in = visit.signed_in(&state).await?;
        let token = form.csrf_token.as_deref().unwrap_or("");
        let step = signin::sign_out(&visit.context(&state), signed_in.as_ref(), token).await?;
        Ok(pages::render(&visit, At::Top, step))
    }
    .await;
    pages::answer(&visit, outcome)
}
