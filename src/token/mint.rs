//! Minting tokens: JWT access tokens (RFC 9068) and opaque access or refresh tokens.

use super::claims::{AccessClaims, Actor, Audience};
use super::jwt::{KeyError, KeySet};
use super::{new_jti, opaque};
use crate::secret::RawToken;
use crate::store::{ClientRecord, Store, StoreError, TokenRecord};
use crate::vocabulary::TokenUse;

/// How a token is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFormat {
    Jwt,
    Opaque,
}

/// What to put in a new token. The client is assumed checked by the caller.
#[derive(Clone, Debug)]
pub struct MintRequest<'a> {
    pub client: &'a ClientRecord,
    pub subject: String,
    pub username: Option<String>,
    pub scope: Option<String>,
    pub audiences: Vec<String>,
    pub ttl: i64,
    pub token_use: TokenUse,
    pub format: TokenFormat,
    /// Who acts for the subject (token exchange); JWTs only.
    pub act: Option<Actor>,
}

/// A token just minted; the value is shown once and never stored.
#[derive(Clone, Debug)]
pub struct Minted {
    pub token: RawToken,
    pub token_use: TokenUse,
    pub jti: String,
    pub exp: i64,
    /// Whom it was minted for (`sub`) and its audiences: for the audit trail.
    pub subject: String,
    pub audiences: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("refresh tokens are always opaque")]
    RefreshMustBeOpaque,
    #[error("a token with an actor is always a JWT")]
    ActorNeedsJwt,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Mints a token issued at `now`: JWTs are signed and not stored, opaque tokens are
/// stored by digest.
pub async fn mint(
    store: &Store,
    keys: &KeySet,
    issuer: &str,
    request: MintRequest<'_>,
    now: i64,
) -> Result<Minted, MintError> {
    let iat = now;
    let exp = iat.saturating_add(request.ttl);
    let jti = new_jti();
    let (subject, audiences) = (request.subject.clone(), request.audiences.clone());
    let token = match request.format {
        TokenFormat::Jwt => {
            if request.token_use == TokenUse::RefreshToken {
                return Err(MintError::RefreshMustBeOpaque);
            }
            keys.sign(&AccessClaims {
                iss: issuer.to_owned(),
                sub: request.subject,
                aud: Audience(request.audiences),
                client_id: request.client.client_id.clone(),
                scope: request.scope,
                username: request.username,
                exp,
                iat,
                nbf: None,
                jti: jti.clone(),
                act: request.act,
            })?
        }
        TokenFormat::Opaque => {
            if request.act.is_some() {
                return Err(MintError::ActorNeedsJwt);
            }
            let token = opaque::generate();
            store
                .insert_token(&TokenRecord {
                    digest: opaque::digest(token.expose()),
                    token_use: request.token_use,
                    client_id: request.client.client_id.clone(),
                    sub: Some(request.subject),
                    username: request.username,
                    scope: request.scope,
                    audiences: request.audiences,
                    jti: jti.clone(),
                    iat,
                    nbf: None,
                    exp,
                    revoked_at: None,
                    user_id: None,
                })
                .await?;
            token
        }
    };
    Ok(Minted {
        token,
        token_use: request.token_use,
        jti,
        exp,
        subject,
        audiences,
    })
}
