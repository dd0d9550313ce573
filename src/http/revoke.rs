//! `POST /revoke` (RFC 7009).

use axum::extract::State;
use axum::http::StatusCode;

use super::caller::Caller;
use super::openapi::{CallerErrors, RevocationRequest};
use super::{AppState, oracle};
use crate::error::ApiError;
use crate::revocation;
use crate::vocabulary::TokenUse;

pub const PATH: &str = "/revoke";

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
        form,
        view,
        now,
        ip,
        ..
    }: Caller,
) -> Result<StatusCode, ApiError> {
    let token = form.required("token")?;
    // RFC 7009 §2.1: an unknown hint only means the search covers every type.
    let hint = form.get("token_type_hint").and_then(TokenUse::parse);
    oracle::admit(&state, &client, ip)?;
    let keys = state.keys.current(view.keys_generation()).await;
    match revocation::find(state.store(), &keys, token, hint).await? {
        Some(found) if found.client_id() == client.client_id => {
            revocation::revoke(state.store(), &found, now).await?;
        }
        _ => oracle::spend(&state, &client, ip)?,
    }
    Ok(StatusCode::OK)
}
