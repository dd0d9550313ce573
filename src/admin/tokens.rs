//! Tokens: issue one for a client, revoke one.

use serde::Serialize;

use super::{AdminError, existing, scope_arg, uris_arg};
use crate::revocation;
use crate::secret::RawToken;
use crate::store::Store;
use crate::token::jwt::KeySet;
use crate::token::mint::{MintRequest, Minted, TokenFormat, mint};
use crate::vocabulary::TokenUse;

/// Longest lifetime a token may be given: ten years.
const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3_600;

/// What `token issue` asks for.
#[derive(Clone, Debug)]
pub struct IssueToken {
    pub client_id: String,
    pub subject: String,
    pub username: Option<String>,
    pub scope: Option<String>,
    pub audiences: Vec<String>,
    pub ttl: Option<u64>,
    pub token_use: TokenUse,
    pub format: Option<TokenFormat>,
}

/// Mints a token for an enabled client. Without `scope` the token carries the client's
/// registered scope. The operator's own act: not limited by the client's grant types,
/// scope or resources.
pub async fn issue_token(
    store: &Store,
    keys: &KeySet,
    config: &crate::config::Config,
    request: IssueToken,
    now: i64,
) -> Result<Minted, AdminError> {
    let client = existing(store, &request.client_id).await?;
    if client.disabled {
        return Err(AdminError::ClientDisabled(client.client_id));
    }
    if request.subject.trim().is_empty() {
        return Err(AdminError::Invalid(
            "--subject must not be empty".to_owned(),
        ));
    }
    let format = match (request.token_use, request.format) {
        (TokenUse::RefreshToken, Some(TokenFormat::Jwt)) => {
            return Err(AdminError::Invalid(
                "refresh tokens are always opaque".to_owned(),
            ));
        }
        (TokenUse::RefreshToken, _) => TokenFormat::Opaque,
        (TokenUse::AccessToken, format) => format.unwrap_or(TokenFormat::Jwt),
    };
    let default_ttl = match request.token_use {
        TokenUse::AccessToken => config.tokens.access_token_ttl,
        TokenUse::RefreshToken => config.tokens.refresh_token_ttl,
    };
    let ttl = request.ttl.unwrap_or(default_ttl);
    if ttl == 0 || ttl > MAX_TTL_SECONDS {
        return Err(AdminError::Invalid(format!(
            "--ttl must be between 1 and {MAX_TTL_SECONDS} seconds"
        )));
    }
    let scope = match request.scope.as_deref() {
        Some(requested) => scope_arg(requested)?,
        None => client.scope.clone(),
    };
    // The command's own time: a token issued from the command line starts at `now`.
    let minted = mint(
        store,
        keys,
        &config.issuer,
        MintRequest {
            client: &client,
            subject: request.subject,
            username: request.username.filter(|u| !u.is_empty()),
            scope: Some(scope).filter(|s| !s.is_empty()),
            audiences: uris_arg(&request.audiences, "audience")?,
            ttl: i64::try_from(ttl).unwrap_or(i64::MAX),
            token_use: request.token_use,
            format,
            act: None,
        },
        now,
    )
    .await?;
    Ok(minted)
}

/// What `token revoke` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Revoked {
    pub revoked: bool,
    pub token_use: TokenUse,
    pub jti: String,
}

/// Revokes a JWT access token by its `jti`, or an opaque token in the store; a refresh
/// token takes every token of its grant with it.
pub async fn revoke_token(
    store: &Store,
    keys: &KeySet,
    token: &RawToken,
    now: i64,
) -> Result<Revoked, AdminError> {
    let found = revocation::find(store, keys, token.expose(), None)
        .await?
        .ok_or(AdminError::UnknownToken)?;
    revocation::revoke(store, &found, now).await?;
    Ok(Revoked {
        revoked: true,
        token_use: found.token_use(),
        jti: found.jti().to_owned(),
    })
}
