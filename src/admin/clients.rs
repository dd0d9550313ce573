//! Clients: create, update, show, list, rotate their secrets, disable, enable, delete.

use serde::Serialize;

use super::{AdminError, existing, normalize_name, scope_arg, uris_arg};
use crate::auth::assertion::parse_client_jwks;
use crate::auth::hash_secret;
use crate::policy::{normalize_redirect_uri, redirect_uris_fit};
use crate::secret::ClientSecret;
use crate::store::{ClientPolicy, ClientRecord, Store};
use crate::token::random_string;
use crate::vocabulary::{ApplicationType, AuthMethod, ClientOrigin, GrantType, InactiveBudget};

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
    /// Targets it may exchange a user's token for (RFC 8693).
    pub exchange_targets: Vec<String>,
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
            exchange_targets: c.policy.exchange_targets,
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
    /// Targets it may exchange a user's token for; none unless given.
    pub exchange_targets: Vec<String>,
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
    pub exchange_targets: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub strict_auth_method: Option<bool>,
    pub inactive_budget: Option<String>,
}

impl ClientChanges {
    /// The attributes this changes, by name: what the audit trail says of an update
    /// (never their values, which may name secrets' holders or URIs at length).
    pub fn named(&self) -> Vec<&'static str> {
        let given = [
            ("name", self.name.is_some()),
            ("audiences", self.audiences.is_some()),
            ("scope", self.scope.is_some()),
            ("auth_method", self.auth_method.is_some()),
            ("grant_types", self.grant_types.is_some()),
            ("resources", self.resources.is_some()),
            ("exchange_targets", self.exchange_targets.is_some()),
            ("redirect_uris", self.redirect_uris.is_some()),
            ("strict_auth_method", self.strict_auth_method.is_some()),
            ("inactive_budget", self.inactive_budget.is_some()),
        ];
        given
            .into_iter()
            .filter_map(|(name, given)| given.then_some(name))
            .collect()
    }
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
        exchange_targets: uris_arg(&new.exchange_targets, "exchange-target")?,
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
    if let Some(targets) = &changes.exchange_targets {
        policy.exchange_targets = uris_arg(targets, "exchange-target")?;
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
/// public client has no credentials to present. Token exchange and identity assertions
/// neither: they give the caller a user's token without the user at hand, so the caller
/// must prove who it is.
fn check_public_grants(method: AuthMethod, grant_types: &[GrantType]) -> Result<(), AdminError> {
    if method != AuthMethod::None {
        return Ok(());
    }
    let confidential_only = [
        GrantType::ClientCredentials,
        GrantType::TokenExchange,
        GrantType::JwtBearer,
    ];
    for confidential in confidential_only {
        if grant_types.contains(&confidential) {
            return Err(AdminError::Invalid(format!(
                "a public client (--auth-method none) cannot use {}",
                confidential.alias().unwrap_or(confidential.as_str())
            )));
        }
    }
    Ok(())
}

/// Grant types by name, repeats dropped.
pub fn parse_grant_types(names: &[String]) -> Result<Vec<GrantType>, AdminError> {
    let mut out = Vec::new();
    for name in names {
        let grant_type = GrantType::ALL
            .into_iter()
            .find(|g| g.as_str() == name || g.alias() == Some(name))
            .ok_or_else(|| {
                AdminError::Invalid(format!(
                    "--grant-type must be client_credentials, refresh_token, \
                     authorization_code, token-exchange or jwt-bearer, not {name:?}"
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
        // The short name an operator types, and the URN, name the same grant type.
        for name in [
            "token-exchange",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ] {
            assert_eq!(
                parse_grant_types(&[name.to_owned()]).unwrap(),
                vec![GrantType::TokenExchange]
            );
        }
        for name in ["jwt-bearer", "urn:ietf:params:oauth:grant-type:jwt-bearer"] {
            assert_eq!(
                parse_grant_types(&[name.to_owned()]).unwrap(),
                vec![GrantType::JwtBearer]
            );
        }
        assert!(check_public_grants(AuthMethod::None, &[GrantType::TokenExchange]).is_err());
        assert!(check_public_grants(AuthMethod::None, &[GrantType::JwtBearer]).is_err());
        assert!(
            check_public_grants(AuthMethod::PrivateKeyJwt, &[GrantType::TokenExchange]).is_ok()
        );
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
    fn private_key_jwt_credentials_show_no_secret() {
        let credentials = IssuedSecret {
            client_id: "c".to_owned(),
            client_secret: ClientSecret::new("s"),
            auth_method: AuthMethod::PrivateKeyJwt,
        };
        assert_eq!(credentials.to_json(), serde_json::json!({"client_id": "c"}));
    }
}
