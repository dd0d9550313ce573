//! `POST /revoke` (RFC 7009).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

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
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<StatusCode, ApiError> {
    let credentials = caller::credentials(&headers, &form)?;
    let token = form.required("token")?;
    // RFC 7009 §2.1: an unknown hint only means the search covers every type.
    let hint = form.get("token_type_hint").and_then(TokenUse::parse);
    let client = caller::authenticate(&state, &credentials, PATH).await?;
    let Some(found) = revocation::find(&state.store, &state.keys, token, hint).await? else {
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
