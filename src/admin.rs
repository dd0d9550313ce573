//! Operator actions behind the `client`, `user`, `token` and `keys` commands, with their
//! input rules.

use serde::Serialize;

use crate::auth::assertion::parse_client_jwks;
use crate::auth::hash_secret;
use crate::config::Config;
use crate::policy::{
    normalize_display_name, normalize_redirect_uri, normalize_resource_uris, normalize_scope,
    normalize_username, redirect_uris_fit, valid_password,
};
use crate::revocation;
use crate::secret::{ClientSecret, Password, RawToken};
use crate::store::{ClientPolicy, ClientRecord, Store, StoreError, StoredKey, UserRecord};
use crate::token::jwt::{KeySet, generate_ed25519};
use crate::token::mint::{MintError, MintRequest, Minted, TokenFormat, mint};
use crate::token::random_string;
use crate::vocabulary::{
    ApplicationType, AuthMethod, ClientOrigin, GrantType, InactiveBudget, TokenUse,
};

/// Longest lifetime a token may be given: ten years.
const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3_600;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("unknown client {0:?}")]
    UnknownClient(String),
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("username {0:?} is taken")]
    UsernameTaken(String),
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
    /// Audiences whose tokens it may introspect.
    pub audiences: Vec<String>,
    /// Where it may receive authorization codes.
    pub redirect_uris: Vec<String>,
    /// Grant types it may use at the token endpoint.
    pub grant_types: Vec<&'static str>,
    /// Resources it may obtain tokens for (RFC 8707).
    pub resources: Vec<String>,
    pub strict_auth_method: bool,
    /// `"configured"` (`rate_limit.inactive_per_client`), `"off"`, or a number.
    pub inactive_budget: serde_json::Value,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// `operator`, `dynamic` (`POST /register`) or `metadata_document`.
    pub origin: ClientOrigin,
    /// When a self-registered client last obtained a token (to the hour).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// A self-registered client's `native` or `web`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_type: Option<ApplicationType>,
    /// The public keys of a `private_key_jwt` client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
}

impl From<ClientRecord> for ClientView {
    fn from(c: ClientRecord) -> Self {
        ClientView {
            client_id: c.client_id,
            name: c.name,
            auth_method: c.auth_method,
            scope: c.scope,
            audiences: c.audiences,
            redirect_uris: c.redirect_uris,
            grant_types: c.policy.grant_types.iter().map(|g| g.as_str()).collect(),
            resources: c.policy.resources,
            strict_auth_method: c.policy.strict_auth_method,
            inactive_budget: match c.policy.inactive_budget {
                InactiveBudget::Configured => "configured".into(),
                InactiveBudget::Off => "off".into(),
                InactiveBudget::Limit(n) => n.into(),
            },
            disabled: c.disabled,
            created_at: c.created_at,
            updated_at: c.updated_at,
            origin: c.origin,
            last_used_at: c.last_used_at,
            client_uri: c.client_uri,
            logo_uri: c.logo_uri,
            application_type: c.application_type,
            jwks: None,
        }
    }
}

/// A client's id and its secret, shown once. A `private_key_jwt` or public (`none`)
/// client's secret is never used, so it is not shown.
#[derive(Clone, Debug)]
pub struct IssuedSecret {
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub auth_method: AuthMethod,
}

impl IssuedSecret {
    /// The JSON printed for the operator: the secret only when the client uses one.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({"client_id": self.client_id});
        if self.auth_method.uses_secret() {
            json["client_secret"] = self.client_secret.expose().into();
        }
        json
    }
}

#[derive(Clone, Debug, Default)]
pub struct NewClient {
    pub name: String,
    pub audiences: Vec<String>,
    pub scope: Option<String>,
    pub auth_method: Option<String>,
    /// The public JWK Set of a `private_key_jwt` client (RFC 7523 §2.2), as JSON.
    pub jwks: Option<String>,
    /// Grant types by name; none unless given, except for a client with redirect URIs,
    /// which gets `authorization_code` and `refresh_token`.
    pub grant_types: Vec<String>,
    /// Resources it may obtain tokens for; none unless given.
    pub resources: Vec<String>,
    /// Where it may receive authorization codes; none unless given.
    pub redirect_uris: Vec<String>,
    pub strict_auth_method: bool,
    /// `N`, `off` or `configured`; the configured default when absent.
    pub inactive_budget: Option<String>,
    /// `operator` unless the client registers itself ([`crate::registration`]).
    pub origin: ClientOrigin,
    /// A self-registered client's home page and logo, already checked to be https.
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    /// A self-registered client's `application_type`; its redirect URIs must fit it.
    pub application_type: Option<ApplicationType>,
}

/// What `client update` changes: each attribute given replaces the stored one, each
/// one absent is kept. An empty list (or empty scope) clears the attribute.
#[derive(Clone, Debug, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub scope: Option<String>,
    pub auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub resources: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub strict_auth_method: Option<bool>,
    pub inactive_budget: Option<String>,
}

/// Registers a client with a fresh id and secret; only the secret's hash is stored. A
/// `private_key_jwt` client's JWK Set is stored beside it, and its secret, like a public
/// client's, is never shown (and so never works). A client given redirect URIs and no
/// grant type signs users in: it gets `authorization_code` and `refresh_token`.
pub async fn create_client(
    store: &Store,
    new: NewClient,
    now: i64,
) -> Result<IssuedSecret, AdminError> {
    let name = normalize_name(&new.name)?;
    let auth_method = match new.auth_method.as_deref() {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => parse_auth_method(m)?,
    };
    let jwks = match (auth_method, new.jwks.as_deref()) {
        (AuthMethod::PrivateKeyJwt, Some(text)) => Some(
            parse_client_jwks(text).map_err(|why| AdminError::Invalid(format!("--jwks: {why}")))?,
        ),
        (AuthMethod::PrivateKeyJwt, None) => {
            return Err(AdminError::Invalid(
                "private_key_jwt clients need --jwks or --jwks-file".to_owned(),
            ));
        }
        (_, Some(_)) => {
            return Err(AdminError::Invalid(
                "--jwks is only for --auth-method private_key_jwt".to_owned(),
            ));
        }
        (_, None) => None,
    };
    let scope = scope_arg(new.scope.as_deref().unwrap_or(""))?;
    let audiences = uris_arg(&new.audiences, "audience")?;
    let redirect_uris = redirect_uris_arg(&new.redirect_uris)?;
    if let Some(application_type) = new.application_type {
        redirect_uris_fit(application_type, &redirect_uris)
            .map_err(|why| AdminError::Invalid(format!("redirect URIs: {why}")))?;
    }
    let grant_types = if new.grant_types.is_empty() && !redirect_uris.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        parse_grant_types(&new.grant_types)?
    };
    check_public_grants(auth_method, &grant_types)?;
    let policy = ClientPolicy {
        grant_types,
        resources: uris_arg(&new.resources, "resource")?,
        strict_auth_method: new.strict_auth_method,
        inactive_budget: new
            .inactive_budget
            .as_deref()
            .map(parse_inactive_budget)
            .transpose()?
            .unwrap_or_default(),
    };
    let client_id = random_string(16);
    let client_secret = ClientSecret::new(random_string(32));
    // argon2id takes its time and memory: off the threads that answer requests.
    let hashed = client_secret.clone();
    let secret_hash = tokio::task::spawn_blocking(move || hash_secret(&hashed))
        .await
        .map_err(|_| AdminError::Invalid("hashing the client secret failed".to_owned()))?;
    let created = now;
    let record = ClientRecord {
        client_id: client_id.clone(),
        name,
        secret_hash,
        auth_method,
        scope,
        audiences,
        redirect_uris,
        policy,
        disabled: false,
        created_at: created,
        updated_at: created,
        origin: new.origin,
        last_used_at: None,
        client_uri: new.client_uri,
        logo_uri: new.logo_uri,
        application_type: new.application_type,
        previous_secret: None,
    };
    store.insert_client(&record, jwks.as_deref()).await?;
    Ok(IssuedSecret {
        client_id,
        client_secret,
        auth_method,
    })
}

/// Changes a client in place, keeping its id, secret and tokens. Takes effect on the
/// next request of every instance, like disabling does.
pub async fn update_client(
    store: &Store,
    client_id: &str,
    changes: ClientChanges,
    now: i64,
) -> Result<ClientView, AdminError> {
    let mut client = existing(store, client_id).await?;
    if let Some(name) = &changes.name {
        client.name = normalize_name(name)?;
    }
    if let Some(method) = &changes.auth_method {
        let method = parse_auth_method(method)?;
        // A secret cannot become keys or nothing, nor the reverse: the client would be
        // left proving itself with what it never had, or with a secret it was never shown.
        if method != client.auth_method
            && !(method.uses_secret() && client.auth_method.uses_secret())
        {
            return Err(AdminError::Invalid(
                "--auth-method can only switch between client_secret_basic and \
                 client_secret_post; create a new client"
                    .to_owned(),
            ));
        }
        client.auth_method = method;
    }
    if let Some(scope) = &changes.scope {
        client.scope = scope_arg(scope)?;
    }
    if let Some(audiences) = &changes.audiences {
        client.audiences = uris_arg(audiences, "audience")?;
    }
    if let Some(redirect_uris) = &changes.redirect_uris {
        client.redirect_uris = redirect_uris_arg(redirect_uris)?;
    }
    let policy = &mut client.policy;
    if let Some(grant_types) = &changes.grant_types {
        policy.grant_types = parse_grant_types(grant_types)?;
    }
    if let Some(resources) = &changes.resources {
        policy.resources = uris_arg(resources, "resource")?;
    }
    if let Some(strict) = changes.strict_auth_method {
        policy.strict_auth_method = strict;
    }
    if let Some(budget) = &changes.inactive_budget {
        policy.inactive_budget = parse_inactive_budget(budget)?;
    }
    check_public_grants(client.auth_method, &client.policy.grant_types)?;
    client.updated_at = now;
    if !store.update_client(&client).await? {
        return Err(AdminError::UnknownClient(client_id.to_owned()));
    }
    show_client(store, client_id).await
}

pub async fn show_client(store: &Store, client_id: &str) -> Result<ClientView, AdminError> {
    let mut view = ClientView::from(existing(store, client_id).await?);
    if let Some(jwks) = store.client_jwks(client_id).await? {
        view.jwks = serde_json::from_str(&jwks).ok();
    }
    Ok(view)
}

/// Replaces the JWK Set of a `private_key_jwt` client, for a client rotating its keys:
/// assertions signed by a key no longer in the set fail from the next request on.
pub async fn set_client_jwks(
    store: &Store,
    client_id: &str,
    text: &str,
    now: i64,
) -> Result<ClientView, AdminError> {
    let client = existing(store, client_id).await?;
    if client.auth_method != AuthMethod::PrivateKeyJwt {
        return Err(AdminError::Invalid(format!(
            "client {client_id:?} does not authenticate with private_key_jwt"
        )));
    }
    let jwks =
        parse_client_jwks(text).map_err(|why| AdminError::Invalid(format!("--jwks: {why}")))?;
    if !store.set_client_jwks(client_id, &jwks, now).await? {
        return Err(AdminError::UnknownClient(client_id.to_owned()));
    }
    show_client(store, client_id).await
}

pub async fn list_clients(store: &Store) -> Result<Vec<ClientView>, AdminError> {
    Ok(store
        .list_clients()
        .await?
        .into_iter()
        .map(ClientView::from)
        .collect())
}

/// Longest grace period of a replaced client secret: thirty days.
pub const MAX_SECRET_GRACE_SECONDS: u64 = 30 * 24 * 3_600;

/// Gives a client a new secret. The old one keeps working for `grace_seconds` after
/// `now` (for the time it takes to deploy the new one), and not at all with 0; one
/// replaced earlier stops at once, so no client ever has more than two secrets.
pub async fn rotate_secret(
    store: &Store,
    client_id: &str,
    grace_seconds: u64,
    now: i64,
) -> Result<IssuedSecret, AdminError> {
    if grace_seconds > MAX_SECRET_GRACE_SECONDS {
        return Err(AdminError::Invalid(format!(
            "--grace must be at most {MAX_SECRET_GRACE_SECONDS} seconds"
        )));
    }
    let client = existing(store, client_id).await?;
    if !client.auth_method.uses_secret() {
        return Err(AdminError::Invalid(format!(
            "client {client_id:?} authenticates with {} and has no secret",
            client.auth_method.as_str()
        )));
    }
    let client_secret = ClientSecret::new(random_string(32));
    if !store
        .set_client_secret_hash(
            client_id,
            &hash_secret(&client_secret),
            now.saturating_add_unsigned(grace_seconds),
            now,
        )
        .await?
    {
        return Err(AdminError::UnknownClient(client_id.to_owned()));
    }
    Ok(IssuedSecret {
        client_id: client_id.to_owned(),
        client_secret,
        auth_method: client.auth_method,
    })
}

pub async fn disable_client(
    store: &Store,
    client_id: &str,
    now: i64,
) -> Result<ClientView, AdminError> {
    set_client_disabled(store, client_id, true, now).await
}

/// Undoes [`disable_client`]: the client authenticates again and the tokens it holds
/// read active again, on every instance's next request, as a disable takes effect.
pub async fn enable_client(
    store: &Store,
    client_id: &str,
    now: i64,
) -> Result<ClientView, AdminError> {
    set_client_disabled(store, client_id, false, now).await
}

async fn set_client_disabled(
    store: &Store,
    client_id: &str,
    disabled: bool,
    now: i64,
) -> Result<ClientView, AdminError> {
    if !store.set_client_disabled(client_id, disabled, now).await? {
        return Err(AdminError::UnknownClient(client_id.to_owned()));
    }
    show_client(store, client_id).await
}

/// Deletes a client with its opaque tokens and the consents users gave it.
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

/// What a generated key does at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Signs new tokens (and verifies).
    Signing,
    /// Published and verifying, signing from its activation time (`keys rotate`).
    Next,
    /// Replaced by a newer key; verifies the tokens it signed until removed.
    Retired,
}

/// A generated signing key as shown to operators: never its private part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    pub created_at: i64,
    /// When it signs (or signed) from.
    pub activates_at: i64,
    pub state: KeyState,
    /// Whether new tokens are signed with it now (`state` is `signing`).
    pub signing: bool,
}

/// The state of each stored key at `now`, in the order given (oldest activation first):
/// the latest key activated by `now` signs, later ones are next, earlier ones retired.
/// With `jwt.keys` configured, no generated key signs.
fn key_states(stored: &[StoredKey], now: i64, generated_sign: bool) -> Vec<KeyState> {
    let signing = stored
        .iter()
        .rposition(|k| k.activates_at <= now)
        .or((!stored.is_empty()).then_some(0));
    stored
        .iter()
        .enumerate()
        .map(|(i, key)| match signing {
            _ if key.activates_at > now && signing != Some(i) => KeyState::Next,
            Some(s) if s == i && generated_sign => KeyState::Signing,
            _ => KeyState::Retired,
        })
        .collect()
}

fn key_views(stored: &[StoredKey], config: &Config, now: i64) -> Vec<KeyView> {
    let states = key_states(stored, now, config.jwt.keys.is_empty());
    stored
        .iter()
        .zip(states)
        .rev()
        .map(|(key, state)| KeyView {
            kid: key.kid.clone(),
            alg: key.alg.clone(),
            created_at: key.created_at,
            activates_at: key.activates_at,
            state,
            signing: state == KeyState::Signing,
        })
        .collect()
}

/// Generated keys at `now`, latest activation (a staged key, then the signing one) first.
pub async fn list_keys(
    store: &Store,
    config: &Config,
    now: i64,
) -> Result<Vec<KeyView>, AdminError> {
    Ok(key_views(&store.signing_keys().await?, config, now))
}

/// Generates a new Ed25519 key, sealed with the key-encryption key. It is published in
/// `/jwks` at once and signs after `jwt.rotation_delay_seconds` (verifiers caching the
/// key set learn of it first), or when promoted; older keys keep verifying the tokens
/// they signed until removed. One key is staged at a time.
pub async fn rotate_key(store: &Store, config: &Config, now: i64) -> Result<KeyView, AdminError> {
    refuse_when_keys_configured(config)?;
    let kek = crate::token::kek::resolve(config)
        .map_err(|e| AdminError::Invalid(e.to_string()))?
        .ok_or_else(|| AdminError::Invalid("no key-encryption key".to_owned()))?;
    let stored = store.signing_keys().await?;
    let states = key_states(&stored, now, true);
    if let Some((staged, _)) = stored
        .iter()
        .zip(&states)
        .find(|(_, s)| **s == KeyState::Next)
    {
        return Err(AdminError::Invalid(format!(
            "key {:?} is already waiting to sign (from {}); run `keys promote {}` or wait",
            staged.kid, staged.activates_at, staged.kid
        )));
    }
    // A key sealed under another key-encryption key would split the store in two.
    for key in &stored {
        kek.open(key)
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
    }
    let mut key = generate_ed25519();
    key.created_at = next_key_time(&stored, now);
    // The first key has nothing to be published ahead of.
    let delay = if stored.is_empty() {
        0
    } else {
        i64::try_from(config.jwt.rotation_delay_seconds).unwrap_or(i64::MAX)
    };
    key.activates_at = now.saturating_add(delay);
    store.insert_signing_key(&kek.seal(&key)).await?;
    let views = list_keys(store, config, now).await?;
    views
        .into_iter()
        .find(|v| v.kid == key.kid)
        .ok_or_else(|| AdminError::Invalid(format!("key {:?} was not stored", key.kid)))
}

/// Makes a staged key sign from `now` on: every server signs with it from its next
/// request on (the change reaches them as the rotation did).
pub async fn promote_key(
    store: &Store,
    config: &Config,
    kid: &str,
    now: i64,
) -> Result<KeyView, AdminError> {
    refuse_when_keys_configured(config)?;
    let stored = store.signing_keys().await?;
    let states = key_states(&stored, now, true);
    match stored.iter().zip(&states).find(|(k, _)| k.kid == kid) {
        None => return Err(AdminError::Invalid(format!("unknown key {kid:?}"))),
        Some((_, KeyState::Next)) => {}
        Some((_, state)) => {
            let what = if *state == KeyState::Signing {
                "already signs"
            } else {
                "is retired; run `keys rotate` for a new key"
            };
            return Err(AdminError::Invalid(format!("key {kid:?} {what}")));
        }
    }
    // Newer than the signing key, it wins even on an equal activation time.
    if !store.activate_signing_key(kid, now).await? {
        return Err(AdminError::Invalid(format!("unknown key {kid:?}")));
    }
    let views = list_keys(store, config, now).await?;
    views
        .into_iter()
        .find(|v| v.kid == kid)
        .ok_or_else(|| AdminError::Invalid(format!("unknown key {kid:?}")))
}

/// Removes a generated key: tokens it signed read inactive from the servers' next
/// request on. The key that signs at `now` stays until another key replaces it; a
/// staged key may be removed, which cancels the rotation.
pub async fn remove_key(
    store: &Store,
    config: &Config,
    kid: &str,
    now: i64,
) -> Result<(), AdminError> {
    let stored = store.signing_keys().await?;
    let states = key_states(&stored, now, config.jwt.keys.is_empty());
    match stored.iter().zip(&states).find(|(k, _)| k.kid == kid) {
        None => return Err(AdminError::Invalid(format!("unknown key {kid:?}"))),
        Some((_, KeyState::Signing)) => {
            return Err(AdminError::Invalid(format!(
                "key {kid:?} signs new tokens; run `keys rotate` first"
            )));
        }
        Some(_) => {}
    }
    store.delete_signing_key(kid).await?;
    Ok(())
}

fn refuse_when_keys_configured(config: &Config) -> Result<(), AdminError> {
    if config.jwt.keys.is_empty() {
        Ok(())
    } else {
        Err(AdminError::Invalid(
            "jwt.keys is configured, so generated keys are not used; rotate the configured keys"
                .to_owned(),
        ))
    }
}

/// Among keys activated at the same time the newest signs (ordered by creation time): a
/// new key is stamped after every existing one even when created within the same second.
fn next_key_time(stored: &[StoredKey], now: i64) -> i64 {
    stored
        .iter()
        .map(|k| k.created_at.saturating_add(1))
        .fold(now, i64::max)
}

/// A user as shown to operators: never a password or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserView {
    pub user_id: String,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the user can sign in with a password.
    pub has_password: bool,
    pub disabled: bool,
    pub created_at: i64,
    /// The providers the user signs in through (`user show` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<LinkView>>,
}

/// A provider a user signs in through, and the `sub` it knows the user by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkView {
    pub provider: String,
    pub subject: String,
    pub created_at: i64,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        UserView {
            user_id: u.user_id,
            username: u.username,
            email: u.email,
            name: u.name,
            has_password: u.password_hash.is_some(),
            disabled: u.disabled,
            created_at: u.created_at,
            links: None,
        }
    }
}

/// What `user create` asks for. Without a password one is generated and shown once.
#[derive(Debug, Default)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub password: Option<Password>,
}

/// A user's id and name, with the password when it was generated: shown this once.
#[derive(Debug)]
pub struct UserPassword {
    pub user_id: String,
    pub username: String,
    pub generated: Option<Password>,
}

impl UserPassword {
    /// The JSON printed for the operator: the password only when it was generated.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({"user_id": self.user_id, "username": self.username});
        if let Some(password) = &self.generated {
            json["password"] = password.expose().into();
        }
        json
    }
}

/// Registers a user with a fresh id, created at `now`; only the password's argon2id hash
/// is stored.
pub async fn create_user(
    store: &Store,
    new: NewUser,
    now: i64,
) -> Result<UserPassword, AdminError> {
    let username = normalize_username(&new.username).ok_or_else(|| {
        AdminError::Invalid(format!(
            "--username must be 1 to {} characters of a-z, 0-9 and . _ @ + -",
            crate::policy::MAX_USERNAME_LEN
        ))
    })?;
    let email = new.email.as_deref().map(email_arg).transpose()?;
    let name = new.name.as_deref().map(normalize_name).transpose()?;
    let (password, generated) = password_or_generated(new.password)?;
    let user = UserRecord {
        user_id: random_string(16),
        username,
        email,
        name,
        password_hash: Some(crate::auth::hash_password(&password)),
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    if !store.insert_user(&user).await? {
        return Err(AdminError::UsernameTaken(user.username));
    }
    Ok(UserPassword {
        user_id: user.user_id,
        username: user.username,
        generated,
    })
}

pub async fn list_users(store: &Store) -> Result<Vec<UserView>, AdminError> {
    Ok(store
        .list_users()
        .await?
        .into_iter()
        .map(UserView::from)
        .collect())
}

/// A user by id or by username, with the providers they sign in through.
pub async fn show_user(store: &Store, user: &str) -> Result<UserView, AdminError> {
    let user = existing_user(store, user).await?;
    let links = store.user_links(&user.user_id).await?;
    let links = links.into_iter().map(|link| LinkView {
        provider: link.provider_id,
        subject: link.subject,
        created_at: link.created_at,
    });
    Ok(UserView {
        links: Some(links.collect()),
        ..UserView::from(user)
    })
}

/// Replaces a user's password (a generated one, shown once, when none is given) and
/// signs the user out everywhere: whoever knew the old password is signed in nowhere.
pub async fn set_user_password(
    store: &Store,
    user: &str,
    password: Option<Password>,
    now: i64,
) -> Result<UserPassword, AdminError> {
    let found = existing_user(store, user).await?;
    let (password, generated) = password_or_generated(password)?;
    let hash = crate::auth::hash_password(&password);
    if !store
        .set_user_password_hash(&found.user_id, &hash, now)
        .await?
    {
        return Err(AdminError::UnknownUser(user.to_owned()));
    }
    store.delete_user_sessions(&found.user_id).await?;
    Ok(UserPassword {
        user_id: found.user_id,
        username: found.username,
        generated,
    })
}

/// Disables a user: they can no longer sign in, their sessions end and every token
/// issued to them reads inactive, on every instance's next request.
pub async fn disable_user(store: &Store, user: &str, now: i64) -> Result<UserView, AdminError> {
    set_user_disabled(store, user, true, now).await
}

/// Undoes [`disable_user`]: the user may sign in again from every instance's next
/// request on. What the disable ended (sessions, tokens) stays ended.
pub async fn enable_user(store: &Store, user: &str, now: i64) -> Result<UserView, AdminError> {
    set_user_disabled(store, user, false, now).await
}

async fn set_user_disabled(
    store: &Store,
    user: &str,
    disabled: bool,
    now: i64,
) -> Result<UserView, AdminError> {
    let found = existing_user(store, user).await?;
    if !store
        .set_user_disabled(&found.user_id, disabled, now)
        .await?
    {
        return Err(AdminError::UnknownUser(user.to_owned()));
    }
    show_user(store, &found.user_id).await
}

/// Deletes a user with their sessions and consents; every token issued to them reads
/// inactive. Returns the user's id.
pub async fn delete_user(store: &Store, user: &str, now: i64) -> Result<String, AdminError> {
    let found = existing_user(store, user).await?;
    if !store.delete_user(&found.user_id, now).await? {
        return Err(AdminError::UnknownUser(user.to_owned()));
    }
    Ok(found.user_id)
}

/// What `user revoke-consent` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsentRevoked {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Remembered consents forgotten: the next sign-in asks again.
    pub consents_revoked: u64,
    /// Tokens of the grants the consent allowed, now revoked.
    pub tokens_revoked: u64,
}

/// Withdraws what a user allowed one client, or every client: the remembered consents
/// are forgotten, so the next sign-in asks again, and the grants given under them are
/// revoked.
pub async fn revoke_consent(
    store: &Store,
    user: &str,
    client_id: Option<&str>,
    now: i64,
) -> Result<ConsentRevoked, AdminError> {
    let found = existing_user(store, user).await?;
    if let Some(client_id) = client_id {
        existing(store, client_id).await?;
    }
    let user_id = found.user_id;
    let consents_revoked = store.forget_consents(Some(&user_id), client_id).await?;
    let tokens_revoked = match client_id {
        Some(client_id) => {
            store
                .revoke_user_client_tokens(&user_id, client_id, now)
                .await?
        }
        None => store.revoke_user_tokens(&user_id, now).await?,
    };
    Ok(ConsentRevoked {
        user_id,
        client_id: client_id.map(str::to_owned),
        consents_revoked,
        tokens_revoked,
    })
}

/// A user named by id, or else by username.
async fn existing_user(store: &Store, user: &str) -> Result<UserRecord, AdminError> {
    if let Some(found) = store.user_by_id(user).await? {
        return Ok(found);
    }
    if let Some(username) = normalize_username(user) {
        if let Some(found) = store.user_by_username(&username).await? {
            return Ok(found);
        }
    }
    Err(AdminError::UnknownUser(user.to_owned()))
}

/// The password given, checked, or a generated one (144 random bits), which is also
/// returned to be shown once.
fn password_or_generated(
    given: Option<Password>,
) -> Result<(Password, Option<Password>), AdminError> {
    match given {
        Some(password) if valid_password(password.expose()) => Ok((password, None)),
        Some(_) => Err(AdminError::Invalid(format!(
            "the password must have at least {} characters, at most {} bytes and no \
             control characters",
            crate::policy::MIN_PASSWORD_CHARS,
            crate::policy::MAX_PASSWORD_BYTES
        ))),
        None => {
            let generated = Password::new(random_string(18));
            Ok((generated.clone(), Some(generated)))
        }
    }
}

/// An email address as an operator gives it: trimmed, one `@` between two non-empty
/// parts, no spaces or control characters, at most 254 bytes (RFC 5321 §4.5.3.1.3).
fn email_arg(email: &str) -> Result<String, AdminError> {
    let email = email.trim();
    let well_formed = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if well_formed {
        Ok(email.to_owned())
    } else {
        Err(AdminError::Invalid(
            "--email must be an address such as someone@example.com".to_owned(),
        ))
    }
}

async fn existing(store: &Store, client_id: &str) -> Result<ClientRecord, AdminError> {
    store
        .client_by_id(client_id)
        .await?
        .ok_or_else(|| AdminError::UnknownClient(client_id.to_owned()))
}

/// Checks scope syntax (RFC 6749 §3.3) and returns the distinct items space-joined.
fn scope_arg(scope: &str) -> Result<String, AdminError> {
    normalize_scope(scope)
        .map_err(|bad| AdminError::Invalid(format!("scope {bad:?} is not a valid scope token")))
}

/// Audiences and resources: absolute URIs without a fragment (RFC 8707 §2), repeats
/// dropped.
fn uris_arg(uris: &[String], what: &str) -> Result<Vec<String>, AdminError> {
    normalize_resource_uris(uris).map_err(|bad| {
        AdminError::Invalid(format!(
            "{what} {bad:?} is not an absolute URI without a fragment"
        ))
    })
}

/// A client's or user's `--name`, by the rule the consent page relies on.
fn normalize_name(name: &str) -> Result<String, AdminError> {
    normalize_display_name(name).map_err(|why| AdminError::Invalid(format!("--name {why}")))
}

fn parse_auth_method(method: &str) -> Result<AuthMethod, AdminError> {
    AuthMethod::parse(method).ok_or_else(|| {
        AdminError::Invalid(format!(
            "--auth-method must be client_secret_basic, client_secret_post, \
             private_key_jwt or none, not {method:?}"
        ))
    })
}

/// Redirect URIs (RFC 8252 §8.4: https, loopback http, or a private-use scheme) in their
/// stored form ([`normalize_redirect_uri`]), repeats dropped.
fn redirect_uris_arg(uris: &[String]) -> Result<Vec<String>, AdminError> {
    let mut out: Vec<String> = Vec::new();
    for uri in uris {
        let uri = normalize_redirect_uri(uri)
            .map_err(|why| AdminError::Invalid(format!("--redirect-uri {uri:?}: {why}")))?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

/// RFC 6749 §4.4: the client credentials grant is for confidential clients only; a
/// public client has no credentials to present.
fn check_public_grants(method: AuthMethod, grant_types: &[GrantType]) -> Result<(), AdminError> {
    if method == AuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(AdminError::Invalid(
            "a public client (--auth-method none) cannot use client_credentials".to_owned(),
        ));
    }
    Ok(())
}

/// Grant types by name, repeats dropped.
pub fn parse_grant_types(names: &[String]) -> Result<Vec<GrantType>, AdminError> {
    let mut out = Vec::new();
    for name in names {
        let grant_type = GrantType::parse(name).ok_or_else(|| {
            AdminError::Invalid(format!(
                "--grant-type must be client_credentials, refresh_token or \
                 authorization_code, not {name:?}"
            ))
        })?;
        if !out.contains(&grant_type) {
            out.push(grant_type);
        }
    }
    Ok(out)
}

/// `N` (at least 1), `off` (no limit) or `configured` (`rate_limit.inactive_per_client`).
pub fn parse_inactive_budget(value: &str) -> Result<InactiveBudget, AdminError> {
    match value {
        "off" => Ok(InactiveBudget::Off),
        "configured" => Ok(InactiveBudget::Configured),
        n => match n.parse::<u32>() {
            Ok(n) if n > 0 => Ok(InactiveBudget::Limit(n)),
            _ => Err(AdminError::Invalid(format!(
                "--inactive-budget must be a positive number, off or configured, not {n:?}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_types_and_budgets_parse() {
        let names = ["refresh_token", "client_credentials", "refresh_token"].map(String::from);
        assert_eq!(
            parse_grant_types(&names).unwrap(),
            vec![GrantType::RefreshToken, GrantType::ClientCredentials]
        );
        assert!(parse_grant_types(&["password".to_owned()]).is_err());
        assert_eq!(parse_inactive_budget("off").unwrap(), InactiveBudget::Off);
        assert_eq!(
            parse_inactive_budget("configured").unwrap(),
            InactiveBudget::Configured
        );
        assert_eq!(
            parse_inactive_budget("25").unwrap(),
            InactiveBudget::Limit(25)
        );
        for bad in ["0", "-1", "many", ""] {
            assert!(parse_inactive_budget(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn audiences_and_resources_follow_one_uri_rule() {
        for what in ["audience", "resource"] {
            assert!(uris_arg(&["https://api.example".to_owned()], what).is_ok());
            assert!(uris_arg(&["https://api.example#x".to_owned()], what).is_err());
            assert!(uris_arg(&["api".to_owned()], what).is_err());
        }
    }

    #[test]
    fn rotated_key_is_newer_than_every_stored_key() {
        let mut key = generate_ed25519();
        key.created_at = 100;
        assert_eq!(next_key_time(std::slice::from_ref(&key), 100), 101);
        assert_eq!(next_key_time(std::slice::from_ref(&key), 500), 500);
        assert_eq!(next_key_time(&[], 7), 7);
    }

    fn key_at(kid: &str, activates_at: i64) -> StoredKey {
        StoredKey {
            kid: kid.to_owned(),
            activates_at,
            ..generate_ed25519()
        }
    }

    #[test]
    fn key_states_follow_activation_times() {
        use KeyState::*;
        let keys = [key_at("a", 100), key_at("b", 200), key_at("c", 500)];
        assert_eq!(key_states(&keys, 300, true), [Retired, Signing, Next]);
        assert_eq!(key_states(&keys, 500, true), [Retired, Retired, Signing]);
        assert_eq!(key_states(&keys, 150, true), [Signing, Next, Next]);
        // A clock set back before every activation: the earliest still signs.
        assert_eq!(key_states(&keys, 50, true), [Signing, Next, Next]);
        // With jwt.keys configured, no generated key signs.
        assert_eq!(key_states(&keys, 300, false), [Retired, Retired, Next]);
        assert!(key_states(&[], 0, true).is_empty());
    }

    #[test]
    fn private_key_jwt_credentials_show_no_secret() {
        let credentials = IssuedSecret {
            client_id: "c".to_owned(),
            client_secret: ClientSecret::new("s"),
            auth_method: AuthMethod::PrivateKeyJwt,
        };
        assert_eq!(credentials.to_json(), serde_json::json!({"client_id": "c"}));
    }

    #[test]
    fn scope_is_normalized() {
        assert_eq!(scope_arg("  b a b ").unwrap(), "b a");
        assert!(scope_arg("a\\b").is_err());
    }

    #[test]
    fn audiences_must_be_absolute_uris() {
        assert!(uris_arg(&["https://api.example".to_owned()], "audience").is_ok());
        assert!(uris_arg(&["api".to_owned()], "audience").is_err());
        let twice = vec!["urn:a".to_owned(), "urn:a".to_owned()];
        assert_eq!(uris_arg(&twice, "audience").unwrap(), vec!["urn:a"]);
    }
}
