//! `POST /introspect` (RFC 7662).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::AppState;
use super::client_ip::ClientIp;
use super::form::OAuthForm;
use crate::auth::AuthError;
use crate::error::ApiError;
use crate::introspection::Answer;
use crate::limits::retry_after_seconds;
use crate::store::TokenUse;

pub async fn introspect(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, ApiError> {
    let view = state.directory.view().await?;
    let caller = state
        .auth
        .authenticate_request(
            &view,
            headers.get(header::AUTHORIZATION),
            form.get("client_id"),
            form.get("client_secret"),
            ip,
        )
        .await?;
    let token = form
        .get("token")
        .ok_or_else(|| ApiError::invalid_request("missing parameter token"))?;
    // RFC 7662 §2.1: an unknown hint is not an error; it just orders nothing.
    let hint = form.get("token_type_hint").and_then(TokenUse::parse);
    state
        .inactive_budget
        .check(&caller.client_id)
        .map_err(throttled)?;
    let answer = state
        .introspector
        .introspect(&view, &caller, token, hint)
        .await?;
    if let Answer::Inactive(_) = answer {
        state
            .inactive_budget
            .spend(caller.client_id.clone())
            .map_err(throttled)?;
    }
    Ok(Json(answer.response()).into_response())
}

fn throttled(wait: Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after: retry_after_seconds(wait),
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Malformed(why) => ApiError::invalid_request(why),
            AuthError::Failed(why) => ApiError::InvalidClient(why),
            AuthError::Throttled(wait) => throttled(wait),
            AuthError::Store(err) => ApiError::Unavailable(err),
        }
    }
}
