//! `POST /introspect` (RFC 7662).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::form::OAuthForm;
use crate::auth::{self, AuthError};
use crate::error::ApiError;
use crate::store::TokenUse;

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, ApiError> {
    let presented = auth::presented(
        headers.get(header::AUTHORIZATION),
        form.get("client_id"),
        form.get("client_secret"),
    )
    .map_err(ApiError::from)?;
    let token = form
        .get("token")
        .ok_or_else(|| ApiError::invalid_request("missing parameter token"))?;
    // RFC 7662 §2.1: an unknown hint is not an error; it just orders nothing.
    let hint = form.get("token_type_hint").and_then(TokenUse::parse);
    let view = state.directory.view().await?;
    let caller = state.auth.authenticate(&view, &presented).await?;
    let answer = state
        .introspector
        .introspect(&view, &caller, token, hint)
        .await?;
    Ok(Json(answer.response()).into_response())
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Malformed(why) => ApiError::invalid_request(why),
            AuthError::Failed(why) => ApiError::InvalidClient(why),
            AuthError::Store(err) => ApiError::Unavailable(err),
        }
    }
}
