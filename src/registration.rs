//! Dynamic client registration (RFC 7591): the metadata a client sends about itself,
//! checked field by field (deny by default), the client made from it through
//! [`admin::create_client`] like any other, and the clean-up of self-registered clients
//! nobody uses.
//!
//! What a self-registered client may be: a client that signs users in with the
//! authorization code grant (and, if it asks, refresh tokens), public (`none`) or with a
//! secret. Never `client_credentials`: a client nobody vetted gets no token without a
//! user, and never `private_key_jwt`, whose keys would have to be fetched or trusted.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::{self, AdminError, NewClient};
use crate::config::Config;
use crate::policy::{
    MAX_URI_LEN, inferred_application_type, normalize_display_name, normalize_redirect_uri,
    normalize_scope, redirect_uris_fit, scope_outside,
};
use crate::secret::ClientSecret;
use crate::store::{Store, StoreError};
use crate::vocabulary::{ApplicationType, AuthMethod, ClientOrigin, GrantType};

/// Redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 10;

/// The name a client that gave none is shown by.
pub const UNNAMED: &str = "Unnamed application";

/// Why a registration was refused. The descriptions name the field and say what is
/// wrong with it, never what it held.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// RFC 7591 §3.2.2 `invalid_redirect_uri`.
    #[error("invalid_redirect_uri: {0}")]
    InvalidRedirectUri(String),
    /// RFC 7591 §3.2.2 `invalid_client_metadata`.
    #[error("invalid_client_metadata: {0}")]
    InvalidClientMetadata(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A rule of `admin` refused what these rules let through: a bug, not the caller's.
    #[error("registration refused by admin: {0}")]
    Internal(String),
}

fn metadata_error(field: &str, why: &str) -> RegistrationError {
    RegistrationError::InvalidClientMetadata(format!("{field}: {why}"))
}

/// The metadata of a registration that passed every rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientMetadata {
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub token_endpoint_auth_method: AuthMethod,
    /// Space-separated; empty when the client may hold no scope.
    pub scope: String,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    /// As given, or inferred from the redirect URIs.
    pub application_type: ApplicationType,
}

/// The answer to a successful registration (RFC 7591 section 3.2.1): the client's id,
/// its secret if it has one, and the metadata registered.
// No `Debug`: it holds the secret, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegisteredClient {
    pub client_id: String,
    /// Only for `client_secret_basic` and `client_secret_post`; shown once, stored only
    /// as an argon2id hash.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_secret"
    )]
    #[schema(value_type = String, nullable = false)]
    pub client_secret: Option<ClientSecret>,
    /// Seconds since the epoch.
    #[schema(format = Int64)]
    pub client_id_issued_at: i64,
    /// 0: the secret does not expire. Only with a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = Int64)]
    pub client_secret_expires_at: Option<i64>,
    /// The name the consent page shows.
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    /// `authorization_code`, and `refresh_token` when asked for.
    pub grant_types: Vec<&'static str>,
    /// Always `["code"]`.
    pub response_types: Vec<&'static str>,
    #[schema(inline)]
    pub token_endpoint_auth_method: AuthMethod,
    /// `native` (loopback http or private-use scheme redirect URIs, https ones beside
    /// them allowed) or `web` (https only): as registered, or inferred from the redirect
    /// URIs (`web` when all are https).
    #[schema(inline)]
    pub application_type: ApplicationType,
    /// Space-separated; absent when the client may hold no scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub logo_uri: Option<String>,
}

fn expose_secret<S: serde::Serializer>(
    secret: &Option<ClientSecret>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_str(secret.expose()),
        None => serializer.serialize_none(),
    }
}

/// The client metadata a self-registered client sends to `POST /register` (RFC 7591
/// section 2) or publishes in its client ID metadata document. Other fields are ignored;
/// JSON `null` counts as absent.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RegistrationRequest {
    /// Where the client receives authorization codes; required.
    #[schema(required = true, nullable = false)]
    pub redirect_uris: Option<Vec<String>>,
    /// `none`, `client_secret_basic` (the default) or `client_secret_post`.
    #[schema(nullable = false)]
    pub token_endpoint_auth_method: Option<String>,
    /// `authorization_code` (the default) and optionally `refresh_token`.
    #[schema(nullable = false)]
    pub grant_types: Option<Vec<String>>,
    /// `code`.
    #[schema(nullable = false)]
    pub response_types: Option<Vec<String>>,
    /// Space-separated, within `registration.max_scope`.
    #[schema(nullable = false)]
    pub scope: Option<String>,
    /// Shown on the consent page; at most 200 characters, no control or format
    /// characters (Unicode category C: bidi controls, zero-width characters).
    #[schema(nullable = false)]
    pub client_name: Option<String>,
    /// An https URL.
    #[schema(nullable = false)]
    pub client_uri: Option<String>,
    /// An https URL.
    #[schema(nullable = false)]
    pub logo_uri: Option<String>,
    /// `native` (loopback http or private-use scheme redirect URIs, https ones beside
    /// them allowed) or `web` (https redirect URIs only); inferred from the redirect URIs
    /// when absent (`web` when all are https). Redirect URIs that do not fit are
    /// `invalid_redirect_uri`.
    #[schema(nullable = false)]
    pub application_type: Option<String>,
}

/// The fields read as arrays of strings; the others are strings.
const ARRAY_FIELDS: [&str; 3] = ["redirect_uris", "grant_types", "response_types"];

impl RegistrationRequest {
    /// Reads the metadata from a JSON object: a field of the wrong shape is refused by
    /// name, never by value.
    pub fn read(object: &Value) -> Result<Self, RegistrationError> {
        serde_path_to_error::deserialize(object).map_err(|err| {
            let field = match err.path().iter().next() {
                Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
                _ => String::new(),
            };
            let shape = match ARRAY_FIELDS.contains(&field.as_str()) {
                true => "must be an array of strings",
                false => "must be a string",
            };
            match field.as_str() {
                "redirect_uris" => refused_redirect_uris(shape),
                "" => RegistrationError::InvalidClientMetadata(
                    "the body must be a JSON object".to_owned(),
                ),
                // Our own names only: serde reports only the fields of this type.
                name => metadata_error(name, shape),
            }
        })
    }
}

fn refused_redirect_uris(why: &str) -> RegistrationError {
    RegistrationError::InvalidRedirectUri(format!("redirect_uris: {why}"))
}

/// Reads a registration request's body (RFC 7591 §2, §3.1): a JSON object whose known
/// fields are checked and whose unknown ones are ignored. `max_scope` is the most the
/// client may register; without `scope` it gets all of it.
pub fn read_metadata(body: &[u8], max_scope: &str) -> Result<ClientMetadata, RegistrationError> {
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(object @ Value::Object(_)) => object,
        _ => {
            return Err(RegistrationError::InvalidClientMetadata(
                "the body must be a JSON object".to_owned(),
            ));
        }
    };
    let request = RegistrationRequest::read(&object)?;
    let token_endpoint_auth_method = match request.token_endpoint_auth_method.as_deref() {
        // RFC 7591 §2: the default is client_secret_basic.
        None => AuthMethod::ClientSecretBasic,
        Some(method) => AuthMethod::parse(method)
            .filter(|m| *m == AuthMethod::None || m.uses_secret())
            .ok_or_else(|| {
                metadata_error(
                    "token_endpoint_auth_method",
                    "must be none, client_secret_basic or client_secret_post",
                )
            })?,
    };
    read_fields(&request, max_scope, token_endpoint_auth_method)
}

/// The fields every self-registered client's metadata is checked for, whether sent to
/// `POST /register` or published as a client ID metadata document
/// ([`crate::documents`]); the authentication method is each one's own rule.
pub fn read_fields(
    request: &RegistrationRequest,
    max_scope: &str,
    token_endpoint_auth_method: AuthMethod,
) -> Result<ClientMetadata, RegistrationError> {
    let grant_types = grant_types(request.grant_types.as_deref())?;
    response_types(request.response_types.as_deref())?;
    let redirect_uris = redirect_uris(request.redirect_uris.as_deref())?;
    let application_type = application_type(request.application_type.as_deref(), &redirect_uris)?;
    Ok(ClientMetadata {
        client_name: client_name(request.client_name.as_deref())?,
        redirect_uris,
        application_type,
        grant_types,
        token_endpoint_auth_method,
        scope: scope(request.scope.as_deref(), max_scope)?,
        client_uri: https_url(request.client_uri.as_deref(), "client_uri")?,
        logo_uri: https_url(request.logo_uri.as_deref(), "logo_uri")?,
    })
}

fn client_name(name: Option<&str>) -> Result<Option<String>, RegistrationError> {
    let Some(name) = name else {
        return Ok(None);
    };
    normalize_display_name(name)
        .map(Some)
        .map_err(|why| metadata_error("client_name", why))
}

/// RFC 7591 §2 and RFC 8252 §7: required for the authorization code grant; each one
/// https, loopback http or a private-use scheme, without a fragment; repeats dropped.
fn redirect_uris(uris: Option<&[String]>) -> Result<Vec<String>, RegistrationError> {
    let Some(uris) = uris else {
        return Err(refused_redirect_uris("required"));
    };
    if uris.is_empty() {
        return Err(refused_redirect_uris("must name at least one redirect URI"));
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(refused_redirect_uris("at most 10 redirect URIs"));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, uri) in uris.iter().enumerate() {
        let uri = normalize_redirect_uri(uri).map_err(|why| {
            RegistrationError::InvalidRedirectUri(format!("redirect_uris[{i}]: {why}"))
        })?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

/// OpenID Connect Dynamic Client Registration §2 (MCP 2026-07-28): `native` or `web`,
/// inferred from the redirect URIs when absent. Another value is
/// `invalid_client_metadata`; redirect URIs that do not fit the type given are
/// `invalid_redirect_uri` (RFC 7591 §3.2.2: the redirect URIs are what is wrong).
fn application_type(
    given: Option<&str>,
    redirect_uris: &[String],
) -> Result<ApplicationType, RegistrationError> {
    let Some(given) = given else {
        return Ok(inferred_application_type(redirect_uris));
    };
    let application_type = ApplicationType::parse(given)
        .ok_or_else(|| metadata_error("application_type", "must be native or web"))?;
    redirect_uris_fit(application_type, redirect_uris).map_err(refused_redirect_uris)?;
    Ok(application_type)
}

/// RFC 7591 §2: `authorization_code` by default; only it and `refresh_token` here, and
/// never without `authorization_code`, which is how such a client obtains anything.
fn grant_types(names: Option<&[String]>) -> Result<Vec<GrantType>, RegistrationError> {
    let Some(names) = names else {
        return Ok(vec![GrantType::AuthorizationCode]);
    };
    let mut out = Vec::new();
    for name in names {
        let grant_type = GrantType::parse(name)
            .filter(|g| matches!(g, GrantType::AuthorizationCode | GrantType::RefreshToken))
            .ok_or_else(|| {
                metadata_error(
                    "grant_types",
                    "may hold only authorization_code and refresh_token",
                )
            })?;
        if !out.contains(&grant_type) {
            out.push(grant_type);
        }
    }
    if !out.contains(&GrantType::AuthorizationCode) {
        return Err(metadata_error(
            "grant_types",
            "must include authorization_code",
        ));
    }
    Ok(out)
}

/// RFC 7591 §2.1: `code` by default, and the only one here; it goes with the
/// `authorization_code` grant every self-registered client has.
fn response_types(names: Option<&[String]>) -> Result<(), RegistrationError> {
    let Some(names) = names else {
        return Ok(());
    };
    if names.iter().any(|n| n != "code") {
        return Err(metadata_error("response_types", "may hold only code"));
    }
    if names.is_empty() {
        return Err(metadata_error(
            "response_types",
            "must include code, which goes with authorization_code",
        ));
    }
    Ok(())
}

/// RFC 7591 §2: scope tokens within what self-registered clients may hold; all of that
/// when not given.
fn scope(requested: Option<&str>, max_scope: &str) -> Result<String, RegistrationError> {
    let Some(requested) = requested else {
        return Ok(max_scope.to_owned());
    };
    let scope = normalize_scope(requested)
        .map_err(|_| metadata_error("scope", "must be scope tokens separated by spaces"))?;
    if scope_outside(&scope, max_scope).is_some() {
        return Err(metadata_error(
            "scope",
            "asks for a scope this server does not grant to self-registered clients",
        ));
    }
    Ok(scope)
}

/// `client_uri`, `logo_uri` (and a document's `jwks_uri`): kept only as https URLs
/// without user information.
pub fn https_url(value: Option<&str>, name: &str) -> Result<Option<String>, RegistrationError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let fits = value.len() <= MAX_URI_LEN
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && url::Url::parse(value).is_ok_and(|url| {
            url.scheme() == "https"
                && url.host().is_some()
                && url.username().is_empty()
                && url.password().is_none()
        });
    if !fits {
        return Err(metadata_error(name, "must be an https URL"));
    }
    Ok(Some(value.to_owned()))
}

/// Registers a client from checked metadata through the one way clients are created,
/// as a `dynamic` client, at `now`.
pub async fn register(
    store: &Store,
    metadata: ClientMetadata,
    now: i64,
) -> Result<RegisteredClient, RegistrationError> {
    let method = metadata.token_endpoint_auth_method;
    let new = NewClient {
        name: metadata
            .client_name
            .clone()
            .unwrap_or_else(|| UNNAMED.to_owned()),
        scope: Some(metadata.scope.clone()),
        auth_method: Some(method.as_str().to_owned()),
        grant_types: metadata
            .grant_types
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect(),
        redirect_uris: metadata.redirect_uris.clone(),
        origin: ClientOrigin::Dynamic,
        client_uri: metadata.client_uri.clone(),
        logo_uri: metadata.logo_uri.clone(),
        application_type: Some(metadata.application_type),
        ..NewClient::default()
    };
    let issued = admin::create_client(store, new, now)
        .await
        .map_err(|err| match err {
            AdminError::Store(err) => RegistrationError::Store(err),
            other => RegistrationError::Internal(other.to_string()),
        })?;
    let with_secret = method.uses_secret();
    Ok(RegisteredClient {
        client_id: issued.client_id,
        client_secret: with_secret.then_some(issued.client_secret),
        client_id_issued_at: now,
        client_secret_expires_at: with_secret.then_some(0),
        client_name: metadata.client_name.unwrap_or_else(|| UNNAMED.to_owned()),
        redirect_uris: metadata.redirect_uris,
        grant_types: metadata.grant_types.iter().map(|g| g.as_str()).collect(),
        response_types: vec!["code"],
        token_endpoint_auth_method: method,
        application_type: metadata.application_type,
        scope: Some(metadata.scope).filter(|s| !s.is_empty()),
        client_uri: metadata.client_uri,
        logo_uri: metadata.logo_uri,
    })
}

/// Deletes the self-registered clients that obtained no token (and were not created)
/// within `registration.unused_client_days` before `now`; answers their ids.
pub async fn delete_unused_clients(
    store: &Store,
    config: &Config,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let days = i64::from(config.registration.unused_client_days);
    store
        .delete_unused_clients(now.saturating_sub(days * 86_400))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> Result<ClientMetadata, RegistrationError> {
        read_metadata(body.as_bytes(), "read write")
    }

    fn refusal(body: &str) -> String {
        read(body).unwrap_err().to_string()
    }

    #[test]
    fn minimal_registration_gets_the_rfc_defaults() {
        let metadata = read(r#"{"redirect_uris": ["https://app.example/cb"]}"#).unwrap();
        assert_eq!(
            metadata.token_endpoint_auth_method,
            AuthMethod::ClientSecretBasic
        );
        assert_eq!(metadata.grant_types, [GrantType::AuthorizationCode]);
        assert_eq!(metadata.scope, "read write");
        assert_eq!(metadata.client_name, None);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let body = r#"{"redirect_uris": ["https://app.example/cb"], "software_id": 7,
            "contacts": ["a@b.example"], "x": {"y": null}}"#;
        assert!(read(body).is_ok());
    }

    #[test]
    fn refusals_name_the_field_and_never_echo_the_value() {
        for (body, field) in [
            (
                r#"{"redirect_uris": ["http://evil.example/SECRET"]}"#,
                "redirect_uris[0]",
            ),
            (
                r#"{"redirect_uris": ["https://a.example/#SECRET"]}"#,
                "redirect_uris[0]",
            ),
            (
                r#"{"redirect_uris": "https://a.example/SECRET"}"#,
                "redirect_uris",
            ),
            (
                r#"{"redirect_uris": ["https://a.example/"], "client_name": 7}"#,
                "client_name",
            ),
            (
                r#"{"redirect_uris": ["https://a.example/"], "scope": "admin SECRET"}"#,
                "scope",
            ),
            (
                r#"{"redirect_uris": ["https://a.example/"], "logo_uri": "http://SECRET/"}"#,
                "logo_uri",
            ),
            (
                r#"{"redirect_uris": ["https://a.example/"], "grant_types": ["SECRET"]}"#,
                "grant_types",
            ),
        ] {
            let why = refusal(body);
            assert!(why.contains(field), "{why}");
            assert!(!why.contains("SECRET"), "{why}");
        }
    }

    #[test]
    fn self_registered_clients_get_no_client_credentials_and_no_keys() {
        let body = r#"{"redirect_uris": ["https://a.example/"],
            "grant_types": ["authorization_code", "client_credentials"]}"#;
        assert!(refusal(body).starts_with("invalid_client_metadata: grant_types"));
        let body = r#"{"redirect_uris": ["https://a.example/"],
            "token_endpoint_auth_method": "private_key_jwt"}"#;
        assert!(refusal(body).contains("token_endpoint_auth_method"));
    }

    #[test]
    fn response_types_follow_the_grant_types() {
        let body = r#"{"redirect_uris": ["https://a.example/"], "response_types": []}"#;
        assert!(refusal(body).contains("response_types"));
        let body = r#"{"redirect_uris": ["https://a.example/"], "response_types": ["token"]}"#;
        assert!(refusal(body).contains("response_types"));
        let body = r#"{"redirect_uris": ["https://a.example/"], "grant_types": ["refresh_token"]}"#;
        assert!(refusal(body).contains("must include authorization_code"));
    }

    #[test]
    fn application_type_is_given_or_inferred_and_must_fit() {
        let web = r#"{"redirect_uris": ["https://a.example/cb"]}"#;
        assert_eq!(read(web).unwrap().application_type, ApplicationType::Web);
        let native = r#"{"redirect_uris": ["http://127.0.0.1/cb", "https://a.example/cb"]}"#;
        assert_eq!(
            read(native).unwrap().application_type,
            ApplicationType::Native
        );
        let given = r#"{"redirect_uris": ["com.example.app:/cb"], "application_type": "native"}"#;
        assert_eq!(
            read(given).unwrap().application_type,
            ApplicationType::Native
        );
        let mismatch = r#"{"redirect_uris": ["http://127.0.0.1/cb"], "application_type": "web"}"#;
        assert!(refusal(mismatch).starts_with("invalid_redirect_uri: redirect_uris"));
        let mismatch = r#"{"redirect_uris": ["https://a.example/"], "application_type": "native"}"#;
        assert!(refusal(mismatch).starts_with("invalid_redirect_uri: redirect_uris"));
        for bad in [r#""desktop""#, "7", r#""Native""#] {
            let body = format!(
                r#"{{"redirect_uris": ["https://a.example/"], "application_type": {bad}}}"#
            );
            assert!(
                refusal(&body).starts_with("invalid_client_metadata: application_type"),
                "{bad}"
            );
        }
    }

    #[test]
    fn no_scope_is_granted_when_none_is_configured() {
        let body = br#"{"redirect_uris": ["https://a.example/"]}"#;
        assert_eq!(read_metadata(body, "").unwrap().scope, "");
        let body = br#"{"redirect_uris": ["https://a.example/"], "scope": "read"}"#;
        assert!(read_metadata(body, "").is_err());
    }
}
