//! `POST /revoke` (RFC 7009).

use axum::extract::State;
use axum::http::StatusCode;

use serde::Deserialize;
use utoipa::ToSchema;

use super::caller::{Caller, CallerRequest};
use super::docs::CallerErrors;
use super::{AppState, oracle};
use crate::audit::{Event, EventType};
use crate::auth::ClientAuthentication;
use crate::error::ApiError;
use crate::params::Parameters;
use crate::revocation;
use crate::secret::RawToken;
use crate::vocabulary::TokenUse;

pub const PATH: &str = "/revoke";

/// `POST /revoke`'s form body (RFC 7009 section 2.1).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevocationRequest {
    /// The token to revoke.
    #[schema(value_type = String)]
    token: RawToken,
    /// Orders the search only. Unknown values are ignored.
    #[schema(value_type = Option<TokenUse>, nullable = false)]
    token_type_hint: Option<String>,
    // Read by the `Caller` before the rest of the form; here for the description.
    #[serde(flatten)]
    #[allow(dead_code)]
    credentials: ClientAuthentication,
}

impl CallerRequest for RevocationRequest {
    const PUBLIC_CLIENTS: bool = true;
}

impl Parameters for RevocationRequest {}

/// RFC 7009 §2.2: 200 whether or not the token existed. A token issued to another client
/// is answered exactly as an unknown one (200, and it stays valid) rather than with
/// RFC 7009 §2.1's `unauthorized_client`, which would tell the caller the token exists;
/// both answers spend the caller's inactive-answer budget.
#[utoipa::path(
    post,
    path = PATH,
    summary = "Token revocation (RFC 7009)",
    description = "Only the client a token was issued to may revoke it. Another client's \
        token is answered exactly as an unknown one (200, no body) and stays valid, so that \
        the answer never tells whether a token exists; both answers spend the caller's \
        inactive-answer budget (a public client's per client address; 429 once spent). Revoking a refresh token revokes its grant, \
        with the access tokens minted from it. Rate limited per client address. A public \
        client names itself with `client_id`. Answers CORS requests from any origin (no \
        credentials).",
    security(("client_secret_basic" = []), ("private_key_jwt" = []), ()),
    request_body(
        content = RevocationRequest,
        content_type = "application/x-www-form-urlencoded"
    ),
    responses(
        (status = 200,
            description = "Revoked, unknown, or another client's (RFC 7009 section 2.2). No body."),
        CallerErrors,
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    Caller {
        client,
        request,
        view,
        now,
        ip,
        ..
    }: Caller<RevocationRequest>,
) -> Result<StatusCode, ApiError> {
    // RFC 7009 §2.1: an unknown hint only means the search covers every type.
    let hint = request.token_type_hint.as_deref().and_then(TokenUse::parse);
    oracle::admit(&state, &client, ip)?;
    let keys = state.keys.current(view.keys_generation()).await;
    match revocation::find(state.store(), &keys, request.token.expose(), hint).await? {
        Some(found) if found.client_id() == client.client_id => {
            revocation::revoke(state.store(), &found, now).await?;
            state.audit.record(
                Event::new(EventType::TokenRevoked)
                    .client(&client.client_id)
                    .address(ip)
                    .detail("jti", found.jti())
                    .detail("token_use", found.token_use().as_str())
                    .detail("by", "client"),
            );
        }
        _ => oracle::spend(&state, &client, ip)?,
    }
    Ok(StatusCode::OK)
}
