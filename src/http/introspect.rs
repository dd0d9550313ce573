//! `POST /introspect` (RFC 7662).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::form::OAuthForm;
use super::{AppState, observe};
use crate::auth::{self, AuthError};
use crate::error::ApiError;
use crate::metrics;
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
    .inspect_err(metrics::auth_failure)?;
    let token = form
        .get("token")
        .ok_or_else(|| ApiError::invalid_request("missing parameter token"))?;
    // RFC 7662 §2.1: an unknown hint is not an error; it just orders nothing.
    let hint = form.get("token_type_hint").and_then(TokenUse::parse);
    let caller = state
        .auth
        .authenticate(&presented)
        .await
        .inspect_err(metrics::auth_failure)?;
    observe::record_client(&caller.client_id);
    let answer = state.introspector.introspect(&caller, token, hint).await?;
    metrics::introspection_outcome(&answer);
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
