//! Token revocation (RFC 7009), shared by `POST /revoke` and `token revoke`: JWT access
//! tokens by `jti`, stored tokens by digest, and a refresh token together with every
//! token of its grant.

use crate::policy::{Source, search_order};
use crate::store::{FamilyRecord, Store, StoreError};

use crate::token::claims::AccessClaims;
use crate::token::jwt::KeySet;
use crate::token::opaque;
use crate::vocabulary::TokenUse;

/// A token this server can revoke, whatever its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revocable {
    Jwt(AccessClaims),
    Stored(FamilyRecord),
}

impl Revocable {
    /// The client the token was issued to.
    pub fn client_id(&self) -> &str {
        match self {
            Revocable::Jwt(claims) => &claims.client_id,
            Revocable::Stored(found) => &found.token.client_id,
        }
    }

    pub fn token_use(&self) -> TokenUse {
        match self {
            Revocable::Jwt(_) => TokenUse::AccessToken,
            Revocable::Stored(found) => found.token.token_use,
        }
    }

    pub fn jti(&self) -> &str {
        match self {
            Revocable::Jwt(claims) => &claims.jti,
            Revocable::Stored(found) => &found.token.jti,
        }
    }
}

/// Finds a token to revoke: a JWT signed by one of our keys (expired or not), or a
/// stored token. RFC 7009 §2.1: the hint orders the search and never narrows it.
pub async fn find(
    store: &Store,
    keys: &KeySet,
    token: &str,
    hint: Option<TokenUse>,
) -> Result<Option<Revocable>, StoreError> {
    for source in search_order(hint) {
        let found = match source {
            Source::Signed => keys.verify_ignoring_time(token).ok().map(Revocable::Jwt),
            Source::Stored => store
                .token_family_by_digest(&opaque::digest(token))
                .await?
                .map(Revocable::Stored),
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Revokes a token found by [`find`]. A refresh token takes its whole grant with it:
/// every refresh token of the family and the access tokens minted from them (RFC 7009
/// §2.1). An access token takes with it only the tokens exchanged from it that belong to
/// no grant of their own (RFC 8693: those of a token issued outside any grant, whose
/// grant is the token itself).
pub async fn revoke(store: &Store, found: &Revocable, now: i64) -> Result<(), StoreError> {
    match found {
        Revocable::Jwt(claims) => {
            store.revoke_jti(&claims.jti, claims.exp, now).await?;
            store.revoke_family(&claims.jti, now).await.map(|_| ())
        }
        Revocable::Stored(found) if found.token.token_use == TokenUse::RefreshToken => {
            store.revoke_family(&found.family_id, now).await.map(|_| ())
        }
        Revocable::Stored(found) => {
            store.revoke_token(&found.token.digest, now).await?;
            store.revoke_family(&found.token.jti, now).await.map(|_| ())
        }
    }
}
