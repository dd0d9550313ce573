//! `POST /introspect` (RFC 7662), answered as JSON or, on request, as a signed JWT
//! (RFC 9701).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use serde::Deserialize;
use utoipa::ToSchema;

use super::caller::{Caller, CallerRequest};
use super::docs::{CallerErrors, SignedIntrospection};
use super::{AppState, oracle};
use crate::auth::ClientAuthentication;
use crate::cache::View;
use crate::error::ApiError;
use crate::introspection::Answer;
use crate::metrics;
use crate::params::Parameters;
use crate::secret::RawToken;
use crate::signed_response;
use crate::vocabulary::TokenUse;

pub const PATH: &str = "/introspect";

/// `POST /introspect`'s form body (RFC 7662 section 2.1).
#[derive(Debug, Deserialize, ToSchema)]
pub struct IntrospectionRequest {
    /// The token to introspect.
    #[schema(value_type = String)]
    token: RawToken,
    /// Orders the search, never changes the answer. Unknown values are ignored.
    #[schema(value_type = Option<TokenUse>, nullable = false)]
    token_type_hint: Option<String>,
    // Read by the `Caller` before the rest of the form; here for the description.
    #[serde(flatten)]
    #[allow(dead_code)]
    credentials: ClientAuthentication,
}

impl CallerRequest for IntrospectionRequest {
    const PUBLIC_CLIENTS: bool = false;
}

impl Parameters for IntrospectionRequest {}

impl IntrospectionRequest {
    /// RFC 7662 §2.1: an unknown hint is not an error; it just orders nothing.
    fn hint(&self) -> Option<TokenUse> {
        self.token_type_hint.as_deref().and_then(TokenUse::parse)
    }
}

#[utoipa::path(
    post,
    path = PATH,
    summary = "Token introspection (RFC 7662 section 2)",
    description = "The caller authenticates as a registered client with exactly one of \
        `client_secret_basic` (the `Authorization` header) or `client_secret_post` \
        (`client_id` and `client_secret` in the body), or `private_key_jwt` (a signed client \
        assertion in the body). A client with a secret may send it either way unless it was \
        created with `--strict-auth-method`, when only its registered method is accepted; a \
        `private_key_jwt` client uses assertions only. It spends its inactive-answer budget \
        (`rate_limit.inactive_per_client`, or its own `--inactive-budget`) on each \
        `{\"active\": false}`. A caller sees a token issued to itself, or an access token \
        whose `aud` includes an audience registered for it (RFC 7662 section 4); a refresh \
        token only to the client it was issued to (RFC 9700); every other token answers \
        `{\"active\": false}`. Two `Authorization` headers are `400 invalid_request`. Rate \
        limited per client address. With `Accept: application/token-introspection+jwt` the \
        answer is a JWT signed by the server key (RFC 9701), verifiable with the keys at \
        `/jwks`.",
    security(("client_secret_basic" = []), ("private_key_jwt" = [])),
    request_body(
        content = IntrospectionRequest,
        content_type = "application/x-www-form-urlencoded"
    ),
    responses(
        (status = 200, description = "The token's state (RFC 7662 section 2.2).", content(
            (crate::introspection::Response = "application/json"),
            (SignedIntrospection = "application/token-introspection+jwt"),
        )),
        CallerErrors,
    )
)]
pub async fn introspect(
    State(state): State<AppState>,
    Caller {
        client,
        request,
        headers,
        view,
        now,
        ip,
    }: Caller<IntrospectionRequest>,
) -> Result<Response, ApiError> {
    oracle::admit(&state, &client, ip)?;
    let (token, hint) = (request.token.expose(), request.hint());
    let answer = state
        .introspector
        .introspect(&state.keys, &view, &client, token, hint, now)
        .await?;
    metrics::introspection_outcome(&answer);
    if let Answer::Inactive(_) = answer {
        oracle::spend(&state, &client, ip)?;
    }
    if signed_response::wants_jwt(headers.get(header::ACCEPT)) {
        return signed(&state, &view, &client.client_id, &answer, now).await;
    }
    Ok(Json(answer.response()).into_response())
}

/// RFC 9701 §5: the answer as a JWT signed with the server's key.
async fn signed(
    state: &AppState,
    view: &View,
    caller: &str,
    answer: &Answer,
    now: i64,
) -> Result<Response, ApiError> {
    let keys = state.keys.current(view.keys_generation()).await;
    if keys.public_signing_alg(now).is_none() {
        return Err(ApiError::invalid_request(
            "signed introspection responses need an asymmetric signing key",
        ));
    }
    let jwt = signed_response::sign(&keys, &state.config.issuer, caller, answer, now)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [(header::CONTENT_TYPE, signed_response::MEDIA_TYPE)],
        jwt.expose().to_owned(),
    )
        .into_response())
}
