//! `POST /introspect` (RFC 7662), answered as JSON or, on request, as a signed JWT
//! (RFC 9701).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::client_ip::ClientIp;
use super::form::OAuthForm;
use super::{AppState, caller, oracle};
use crate::auth::AuthError;
use crate::cache::View;
use crate::error::ApiError;
use crate::introspection::Answer;
use crate::introspection_jwt;
use crate::limits::retry_after_seconds;
use crate::metrics;
use crate::store::TokenUse;

pub const PATH: &str = "/introspect";

pub async fn introspect(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, ApiError> {
    let view = state.directory.view().await;
    let caller = caller::authenticate(&state, &view, &headers, &form, PATH, ip).await?;
    let token = form.required("token")?;
    // RFC 7662 §2.1: an unknown hint is not an error; it just orders nothing.
    let hint = form.get("token_type_hint").and_then(TokenUse::parse);
    oracle::admit(&state, &caller)?;
    let answer = state
        .introspector
        .introspect(&view, &caller, token, hint)
        .await?;
    metrics::introspection_outcome(&answer);
    if let Answer::Inactive(_) = answer {
        oracle::spend(&state, &caller)?;
    }
    if introspection_jwt::wants_jwt(headers.get(header::ACCEPT)) {
        return signed(&state, &view, &caller.client_id, &answer).await;
    }
    Ok(Json(answer.response()).into_response())
}

/// A spent budget: answered like the rate limiter's refusals, and counted with them.
pub(super) fn throttled(wait: Duration) -> ApiError {
    metrics::rate_limited();
    ApiError::RateLimited {
        retry_after: retry_after_seconds(wait),
    }
}

/// RFC 9701 §5: the answer as a JWT signed with the server's key.
async fn signed(
    state: &AppState,
    view: &View,
    caller: &str,
    answer: &Answer,
) -> Result<Response, ApiError> {
    let keys = state.keys.current(view).await;
    if keys.public_signing_alg().is_none() {
        return Err(ApiError::invalid_request(
            "signed introspection responses need an asymmetric signing key",
        ));
    }
    let jwt = introspection_jwt::sign(
        &keys,
        &state.config.issuer,
        caller,
        answer,
        crate::token::now(),
    )
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [(header::CONTENT_TYPE, introspection_jwt::MEDIA_TYPE)],
        jwt.expose().to_owned(),
    )
        .into_response())
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Malformed(why) => ApiError::invalid_request(why),
            AuthError::Failed(_, why) => ApiError::InvalidClient(why),
            AuthError::Throttled(wait) => throttled(wait),
            AuthError::Store(err) => ApiError::Unavailable(err),
        }
    }
}
