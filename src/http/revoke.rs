//! `POST /revoke` (RFC 7009).

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::client_ip::ClientIp;
use super::form::OAuthForm;
use super::{AppState, caller};
use crate::error::ApiError;
use crate::revocation;
use crate::store::TokenUse;

pub const PATH: &str = "/revoke";

/// RFC 7009 §2.2: 200 whether or not the token existed. RFC 7009 §2.1: a token issued to
/// another client is refused with `unauthorized_client` and stays valid.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<StatusCode, ApiError> {
    let view = state.directory.view().await;
    let client = caller::authenticate(&state, &view, &headers, &form, PATH, ip).await?;
    let token = form.required("token")?;
    // RFC 7009 §2.1: an unknown hint only means the search covers every type.
    let hint = form.get("token_type_hint").and_then(TokenUse::parse);
    let keys = state.keys.current(&view).await;
    let Some(found) = revocation::find(&state.store, &keys, token, hint).await? else {
        return Ok(StatusCode::OK);
    };
    if found.client_id() != client.client_id {
        return Err(ApiError::UnauthorizedClient(
            "the token was issued to another client",
        ));
    }
    revocation::revoke(&state.store, &found, crate::token::now()).await?;
    Ok(StatusCode::OK)
}
