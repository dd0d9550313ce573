//! `POST /consent`: the consent form. `decision=allow` remembers the decision and sends
//! the browser back to the client with a code; `decision=deny` with `access_denied`.

use axum::extract::State;
use axum::response::Response;

use super::AppState;
use serde::Deserialize;
use utoipa::ToSchema;

use super::docs::{ErrorPage, ForgedForm, MethodNotAllowed, RateLimited};
use super::pages::{self, At, PendingFields};
use super::params::Form;
use super::visit::Visit;
use crate::error::ApiError;
use crate::params::Parameters;
use crate::signin;

pub const PATH: &str = "/consent";

/// `POST /consent`'s form body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConsentForm {
    #[serde(flatten)]
    pending: PendingFields,
    // Read as a string, so that a forged form is refused as forged whatever it says here.
    #[schema(value_type = Decision, inline, required = true, nullable = false)]
    decision: Option<String>,
}

impl Parameters for ConsentForm {}

/// The button pressed on the consent page.
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum Decision {
    #[serde(rename = "allow")]
    Allow,
    #[serde(rename = "deny")]
    Deny,
}

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
    form: Result<Form<ConsentForm>, ApiError>,
) -> Response {
    let outcome = async {
        let Form(form) = form?;
        let pending = pages::pending(&form.pending)?;
        // Judged after the form's CSRF token: a forged form is refused as such.
        let decision = form.decision.as_deref().unwrap_or("");
        let signed_in = visit.signed_in(&state).await?;
        let cx = visit.context(&state);
        let browser = visit.browser.as_ref();
        let step = signin::consent(&cx, &pending, browser, signed_in, decision).await?;
        Ok(pages::render(&visit, At::Top, step))
    }
    .await;
    pages::answer(&visit, outcome)
}
