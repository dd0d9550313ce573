//! Operator actions behind the `client` and `token` commands, with their input rules.

use serde::Serialize;

use crate::auth::hash_secret;
use crate::secret::{ClientSecret, RawToken};
use crate::store::{AuthMethod, ClientRecord, Store, StoreError, TokenUse};
use crate::token::claims::{scope_items, valid_scope_token};
use crate::token::jwt::KeySet;
use crate::token::mint::{MintError, MintRequest, Minted, TokenFormat, mint};
use crate::token::{now, opaque, random_string};

/// Longest lifetime a token may be given: ten years.
const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3_600;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("unknown client {0:?}")]
    UnknownClient(String),
    #[error("client {0:?} is disabled")]
    ClientDisabled(String),
    #[error("{0}")]
    Invalid(String),
    #[error("unknown token")]
    UnknownToken,
    #[error(transparent)]
    Mint(#[from] MintError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A client as shown to operators: never its secret or hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub auth_method: AuthMethod,
    pub scope: String,
    pub audiences: Vec<String>,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<ClientRecord> for ClientView {
    fn from(c: ClientRecord) -> Self {
        ClientView {
            client_id: c.client_id,
            name: c.name,
            auth_method: c.auth_method,
            scope: c.scope,
            audiences: c.audiences,
            disabled: c.disabled,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A client's id and its secret, shown once.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: ClientSecret,
}

#[derive(Clone, Debug, Default)]
pub struct NewClient {
    pub name: String,
    pub audiences: Vec<String>,
    pub scope: Option<String>,
    pub auth_method: Option<String>,
}

/// Registers a client with a fresh id and secret; only the secret's hash is stored.
pub async fn create_client(store: &Store, new: NewClient) -> Result<Credentials, AdminError> {
    let name = new.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(AdminError::Invalid(
            "--name must be 1 to 200 characters".to_owned(),
        ));
    }
    let auth_method = match new.auth_method.as_deref() {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => AuthMethod::parse(m).ok_or_else(|| {
            AdminError::Invalid(format!(
                "--auth-method must be client_secret_basic or client_secret_post, not {m:?}"
            ))
        })?,
    };
    let scope = normalize_scope(new.scope.as_deref().unwrap_or(""))?;
    let audiences = normalize_audiences(&new.audiences)?;
    let client_id = random_string(16);
    let client_secret = ClientSecret::new(random_string(32));
    let created = now();
    store
        .insert_client(&ClientRecord {
            client_id: client_id.clone(),
            name: name.to_owned(),
            secret_hash: hash_secret(&client_secret),
            auth_method,
            scope,
            audiences,
            disabled: false,
            created_at: created,
            updated_at: created,
        })
        .await?;
    Ok(Credentials {
        client_id,
        client_secret,
    })
}

pub async fn show_client(store: &Store, client_id: &str) -> Result<ClientView, AdminError> {
    existing(store, client_id).await.map(ClientView::from)
}

pub async fn list_clients(store: &Store) -> Result<Vec<ClientView>, AdminError> {
    Ok(store
        .list_clients()
        .await?
        .into_iter()
        .map(ClientView::from)
        .collect())
}

/// Gives a client a new secret; the old one stops working at once.
pub async fn rotate_secret(store: &Store, client_id: &str) -> Result<Credentials, AdminError> {
    let client_secret = ClientSecret::new(random_string(32));
    if !store
        .set_client_secret_hash(client_id, &hash_secret(&client_secret), now())
        .await?
    {
        return Err(AdminError::UnknownClient(client_id.to_owned()));
    }
    Ok(Credentials {
        client_id: client_id.to_owned(),
        client_secret,
    })
}

pub async fn disable_client(store: &Store, client_id: &str) -> Result<ClientView, AdminError> {
    if !store.set_client_disabled(client_id, true, now()).await? {
        return Err(AdminError::UnknownClient(client_id.to_owned()));
    }
    show_client(store, client_id).await
}

pub async fn delete_client(store: &Store, client_id: &str) -> Result<(), AdminError> {
    if !store.delete_client(client_id).await? {
        return Err(AdminError::UnknownClient(client_id.to_owned()));
    }
    Ok(())
}

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
/// registered scope; a requested scope must lie within it when the client has one.
pub async fn issue_token(
    store: &Store,
    keys: &KeySet,
    config: &crate::config::Config,
    request: IssueToken,
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
        Some(requested) => {
            let requested = normalize_scope(requested)?;
            if let Some(outside) = scope_outside(&requested, &client.scope) {
                return Err(AdminError::Invalid(format!(
                    "scope {outside:?} is not registered for client {:?}",
                    client.client_id
                )));
            }
            requested
        }
        None => client.scope.clone(),
    };
    let minted = mint(
        store,
        keys,
        &config.issuer,
        MintRequest {
            client: &client,
            subject: request.subject,
            username: request.username.filter(|u| !u.is_empty()),
            scope: Some(scope).filter(|s| !s.is_empty()),
            audiences: normalize_audiences(&request.audiences)?,
            ttl: i64::try_from(ttl).unwrap_or(i64::MAX),
            token_use: request.token_use,
            format,
        },
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

/// Revokes a JWT access token by its `jti`, or an opaque token in the store.
pub async fn revoke_token(
    store: &Store,
    keys: &KeySet,
    token: &RawToken,
) -> Result<Revoked, AdminError> {
    if let Ok(claims) = keys.verify_ignoring_time(token.expose()) {
        store.revoke_jti(&claims.jti, claims.exp, now()).await?;
        return Ok(Revoked {
            revoked: true,
            token_use: TokenUse::AccessToken,
            jti: claims.jti,
        });
    }
    let digest = opaque::digest(token.expose());
    let record = store
        .token_by_digest(&digest)
        .await?
        .ok_or(AdminError::UnknownToken)?;
    store.revoke_token(&digest, now()).await?;
    Ok(Revoked {
        revoked: true,
        token_use: record.token_use,
        jti: record.jti,
    })
}

async fn existing(store: &Store, client_id: &str) -> Result<ClientRecord, AdminError> {
    store
        .client_by_id(client_id)
        .await?
        .ok_or_else(|| AdminError::UnknownClient(client_id.to_owned()))
}

/// Checks scope syntax (RFC 6749 §3.3) and returns the distinct items space-joined.
pub fn normalize_scope(scope: &str) -> Result<String, AdminError> {
    let items = scope_items(scope);
    if let Some(bad) = items.iter().find(|i| !valid_scope_token(i)) {
        return Err(AdminError::Invalid(format!(
            "scope {bad:?} is not a valid scope token"
        )));
    }
    Ok(items.join(" "))
}

/// The first requested scope item the registered scope does not allow. An empty
/// registered scope allows anything.
pub fn scope_outside<'a>(requested: &'a str, registered: &str) -> Option<&'a str> {
    if registered.is_empty() {
        return None;
    }
    let allowed = scope_items(registered);
    scope_items(requested)
        .into_iter()
        .find(|item| !allowed.contains(item))
}

/// Audiences are absolute URIs (RFC 8707 §2); repeats are dropped.
pub fn normalize_audiences(audiences: &[String]) -> Result<Vec<String>, AdminError> {
    let mut out: Vec<String> = Vec::new();
    for audience in audiences {
        if audience.len() > 2048 || url::Url::parse(audience).is_err() {
            return Err(AdminError::Invalid(format!(
                "audience {audience:?} is not an absolute URI"
            )));
        }
        if !out.contains(audience) {
            out.push(audience.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_within_registered() {
        assert_eq!(scope_outside("read", "read write"), None);
        assert_eq!(scope_outside("read admin", "read write"), Some("admin"));
        assert_eq!(scope_outside("anything", ""), None);
    }

    #[test]
    fn scope_is_normalized() {
        assert_eq!(normalize_scope("  b a b ").unwrap(), "b a");
        assert!(normalize_scope("a\\b").is_err());
    }

    #[test]
    fn audiences_must_be_absolute_uris() {
        assert!(normalize_audiences(&["https://api.example".to_owned()]).is_ok());
        assert!(normalize_audiences(&["api".to_owned()]).is_err());
        let twice = vec!["urn:a".to_owned(), "urn:a".to_owned()];
        assert_eq!(normalize_audiences(&twice).unwrap(), vec!["urn:a"]);
    }
}
