//! `POST /introspect` (RFC 7662), answered as JSON or, on request, as a signed JWT
//! (RFC 9701).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::form::OAuthForm;
use super::{AppState, caller};
use crate::auth::AuthError;
use crate::error::ApiError;
use crate::introspection_jwt;
use crate::store::TokenUse;

pub const PATH: &str = "/introspect";

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, ApiError> {
    let credentials = caller::credentials(&headers, &form)?;
    let token = form.required("token")?;
    // RFC 7662 §2.1: an unknown hint is not an error; it just orders nothing.
    let hint = form.get("token_type_hint").and_then(TokenUse::parse);
    let caller = caller::authenticate(&state, &credentials, PATH).await?;
    let answer = state.introspector.introspect(&caller, token, hint).await?;
    if introspection_jwt::wants_jwt(headers.get(header::ACCEPT)) {
        return signed(&state, &caller.client_id, &answer);
    }
    Ok(Json(answer.response()).into_response())
}

/// RFC 9701 §5: the answer as a JWT signed with the server's key.
fn signed(
    state: &AppState,
    caller: &str,
    answer: &crate::introspection::Answer,
) -> Result<Response, ApiError> {
    if state.keys.public_signing_alg().is_none() {
        return Err(ApiError::invalid_request(
            "signed introspection responses need an asymmetric signing key",
        ));
    }
    let jwt = introspection_jwt::sign(
        &state.keys,
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
            AuthError::Failed(why) => ApiError::InvalidClient(why),
            AuthError::Store(err) => ApiError::Unavailable(err),
        }
    }
}
