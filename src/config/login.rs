//! The sections of signing users in: the login pages and sessions, the OpenID Connect
//! providers users sign in through, and clients that register themselves.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::secret::ProviderSecret;

/// Signing users in (OAuth 2.1 authorization code with PKCE): the authorization
/// endpoint, its login and consent pages, and browser sessions.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// Serves `/authorize` and the sign-in pages, and publishes them in the metadata.
    pub enabled: bool,
    /// Offers the username and password form for local users (`introspectd user`).
    pub local_users: bool,
    /// How long a browser stays signed in, in seconds.
    pub session_ttl_seconds: u64,
    /// OpenID Connect providers users may sign in through (`[[login.providers]]`).
    pub providers: Vec<ProviderConfig>,
    /// Longest an identity assertion (ID-JAG) may live, from `iat` to `exp`, in seconds.
    pub id_jag_max_lifetime_seconds: u64,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            local_users: true,
            session_ttl_seconds: 28_800,
            providers: Vec::new(),
            id_jag_max_lifetime_seconds: 300,
        }
    }
}

/// An OpenID Connect provider users sign in through: its issuer (discovered from
/// `/.well-known/openid-configuration`) and this server's client registered there.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// A short slug: the callback is `/login/callback/{id}`, and links name it.
    pub id: String,
    /// What the login page's button says: "Sign in with {name}".
    pub name: String,
    /// The provider's issuer identifier (https; http only on loopback).
    pub issuer: String,
    pub client_id: String,
    /// The client secret itself; or name an environment variable in `client_secret_env`.
    #[serde(default)]
    pub client_secret: Option<ProviderSecret>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Scopes asked for; must include `openid`.
    #[serde(default = "default_provider_scopes")]
    pub scopes: Vec<String>,
    /// When not empty, only users whose verified email is at one of these domains.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// Accepts the provider's identity assertions (ID-JAG) at `/token` with the JWT
    /// bearer grant: the MCP enterprise-managed authorization extension.
    #[serde(default)]
    pub id_jag: bool,
}

fn default_provider_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(str::to_owned).to_vec()
}

/// Longest provider `id`.
pub const MAX_PROVIDER_ID_LEN: usize = 32;

impl ProviderConfig {
    /// The client secret: given inline, or read from the environment variable named.
    /// Only `serve` reads it (see [`Config::serving_problems`]): the other commands never
    /// talk to a provider, so they run without the variable.
    pub fn secret(&self) -> Result<ProviderSecret, String> {
        if let Some(why) = self.secret_source_problem() {
            return Err(why.to_owned());
        }
        match (&self.client_secret, &self.client_secret_env) {
            (Some(secret), _) => Ok(secret.clone()),
            (None, Some(name)) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(ProviderSecret::new(value)),
                _ => Err(format!("client_secret_env: {name} is not set")),
            },
            (None, None) => Err("client_secret or client_secret_env is required".to_owned()),
        }
    }

    /// What is wrong with where the secret comes from, whatever the environment holds.
    fn secret_source_problem(&self) -> Option<&'static str> {
        match (&self.client_secret, &self.client_secret_env) {
            (Some(secret), None) if secret.expose().is_empty() => {
                Some("client_secret: must not be empty")
            }
            (Some(_), None) => None,
            (None, Some(name)) if name.is_empty() => {
                Some("client_secret_env: must name a variable")
            }
            (None, Some(_)) => None,
            (Some(_), Some(_)) => Some("set client_secret or client_secret_env, not both"),
            (None, None) => Some("client_secret or client_secret_env is required"),
        }
    }

    /// Every problem of this provider, without the key prefix.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let slug = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if self.id.is_empty() || self.id.len() > MAX_PROVIDER_ID_LEN || !self.id.chars().all(slug) {
            problems.push(format!(
                "id: 1 to {MAX_PROVIDER_ID_LEN} of a-z, 0-9, - and _"
            ));
        }
        if self.name.trim().is_empty() {
            problems.push("name: must not be empty".to_owned());
        }
        if let Err(why) = validate_provider_issuer(&self.issuer) {
            problems.push(format!("issuer: {why}"));
        }
        if self.client_id.is_empty() {
            problems.push("client_id: must not be empty".to_owned());
        }
        if let Some(why) = self.secret_source_problem() {
            problems.push(why.to_owned());
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            problems.push("scopes: must include openid".to_owned());
        }
        if self
            .scopes
            .iter()
            .any(|s| crate::policy::normalize_scope(s).as_deref() != Ok(s.as_str()))
        {
            problems.push("scopes: each one scope token".to_owned());
        }
        let domain = |d: &String| {
            !d.is_empty()
                && d.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        };
        if !self.allowed_email_domains.iter().all(domain) {
            problems.push("allowed_email_domains: lower-case domain names, without @".to_owned());
        }
        problems
    }
}

/// A provider's issuer: an https URL without query or fragment; http only on loopback.
fn validate_provider_issuer(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|_| "must be a URL".to_owned())?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("must use https (http only on loopback)".to_owned()),
    }
    if url.host_str().is_none() {
        return Err("must have a host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must not have credentials, a query or a fragment".to_owned());
    }
    Ok(())
}

/// Clients that register themselves: RFC 7591 dynamic client registration, and Client ID
/// Metadata Documents (a `client_id` that is the URL of the client's own metadata).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Serves `POST /register` (with sign-in on, which is what such clients are for) and
    /// publishes it as `registration_endpoint`.
    pub dynamic: bool,
    /// The most a self-registered client may register as its scope, space-separated;
    /// when unset, the `scopes_supported` of `metadata`, or no scope at all.
    pub max_scope: Option<String>,
    /// Names an environment variable holding the initial access token that registration
    /// then requires as `Authorization: Bearer` (RFC 7591 §3).
    pub initial_access_token_env: Option<String>,
    /// Days after which a self-registered client that obtained no token is deleted.
    pub unused_client_days: u32,
    /// Accepts client ID metadata documents: a `client_id` that is an https URL is
    /// fetched (with sign-in on), and `client_id_metadata_document_supported` published.
    pub metadata_documents: bool,
    /// Lets documents be fetched from loopback, private, link-local and other non-public
    /// addresses (for a private deployment or tests); off, only public addresses.
    pub allow_private_networks: bool,
    /// Hosts documents may be fetched from: names, or `*.example.com` for any name below
    /// one; empty: any host.
    pub allowed_hosts: Vec<String>,
    /// PEM certificates trusted, beside the system's, for fetching documents.
    pub ca_file: Option<PathBuf>,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            dynamic: true,
            max_scope: None,
            initial_access_token_env: None,
            unused_client_days: 30,
            metadata_documents: true,
            allow_private_networks: false,
            allowed_hosts: Vec::new(),
            ca_file: None,
        }
    }
}

/// Longest `registration.unused_client_days`: ten years.
pub const MAX_UNUSED_CLIENT_DAYS: u32 = 3_650;

/// Shortest initial access token accepted from `registration.initial_access_token_env`.
pub const MIN_INITIAL_ACCESS_TOKEN_LEN: usize = 16;

/// Longest `login.id_jag_max_lifetime_seconds`: an hour. An assertion is a one-time
/// grant, meant to be spent at once.
pub const MAX_ID_JAG_LIFETIME_SECONDS: u64 = 3_600;

/// Longest `login.session_ttl_seconds`: thirty days.
pub const MAX_SESSION_TTL_SECONDS: u64 = 30 * 24 * 3_600;

#[cfg(test)]
// figment's Jail closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use crate::config::Config;
    fn provider(id: &str) -> ProviderConfig {
        ProviderConfig {
            id: id.to_owned(),
            name: "Corp".to_owned(),
            issuer: "https://idp.example.com".to_owned(),
            client_id: "introspectd".to_owned(),
            client_secret: Some(ProviderSecret::new("s3cret-value")),
            client_secret_env: None,
            scopes: default_provider_scopes(),
            allowed_email_domains: vec!["example.com".to_owned()],
            id_jag: false,
        }
    }

    fn provider_problems(provider: ProviderConfig) -> Vec<String> {
        let mut config = Config::default();
        config.login.providers = vec![provider];
        config.validate().err().map(|e| e.0).unwrap_or_default()
    }

    #[test]
    fn a_provider_needs_an_https_issuer_a_secret_and_openid() {
        assert_eq!(provider_problems(provider("corp")), Vec::<String>::new());
        let loopback = ProviderConfig {
            issuer: "http://127.0.0.1:9000/realms/x".to_owned(),
            ..provider("corp")
        };
        assert_eq!(provider_problems(loopback), Vec::<String>::new());
        for (bad, key) in [
            (
                ProviderConfig {
                    issuer: "http://idp.example.com".to_owned(),
                    ..provider("corp")
                },
                "issuer",
            ),
            (
                ProviderConfig {
                    issuer: "not a url".to_owned(),
                    ..provider("corp")
                },
                "issuer",
            ),
            (
                ProviderConfig {
                    issuer: "https://idp.example.com/?a=b".to_owned(),
                    ..provider("corp")
                },
                "issuer",
            ),
            (
                ProviderConfig {
                    client_secret: None,
                    ..provider("corp")
                },
                "client_secret",
            ),
            (
                ProviderConfig {
                    client_secret_env: Some("X".to_owned()),
                    ..provider("corp")
                },
                "set client_secret",
            ),
            (
                ProviderConfig {
                    scopes: vec!["email".to_owned()],
                    ..provider("corp")
                },
                "scopes",
            ),
            (
                ProviderConfig {
                    id: "Corp/1".to_owned(),
                    ..provider("corp")
                },
                "id",
            ),
            (
                ProviderConfig {
                    client_id: String::new(),
                    ..provider("corp")
                },
                "client_id",
            ),
            (
                ProviderConfig {
                    allowed_email_domains: vec!["@example.com".to_owned()],
                    ..provider("corp")
                },
                "allowed_email_domains",
            ),
        ] {
            let problems = provider_problems(bad);
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(&format!("login.providers[0].{key}"))),
                "{key}: {problems:?}"
            );
        }
    }

    #[test]
    fn provider_ids_are_unique_and_secrets_never_shown() {
        let mut config = Config::default();
        config.login.providers = vec![provider("corp"), provider("corp")];
        let problems = config.validate().unwrap_err().0;
        assert_eq!(
            problems,
            vec!["login.providers[1].id: used twice".to_owned()]
        );
        let shown = format!("{:?}", config.login.providers[0]);
        assert!(!shown.contains("s3cret-value"), "{shown}");
        let serialized = serde_json::to_string(&config.login.providers[0]).unwrap();
        assert!(!serialized.contains("s3cret-value"), "{serialized}");
    }

    #[test]
    fn a_provider_secret_comes_from_the_environment_when_named() {
        let named = ProviderConfig {
            client_secret: None,
            client_secret_env: Some("INTROSPECTD_TEST_UNSET_PROVIDER_SECRET".to_owned()),
            ..provider("corp")
        };
        assert_eq!(provider_problems(named.clone()), Vec::<String>::new());
        let mut config = Config::default();
        config.login.providers = vec![named];
        assert_eq!(
            config.serving_problems(),
            [
                "login.providers[0].client_secret_env: INTROSPECTD_TEST_UNSET_PROVIDER_SECRET \
              is not set"
            ]
        );
        assert!(
            config
                .secret_env_vars()
                .contains(&"INTROSPECTD_TEST_UNSET_PROVIDER_SECRET".to_owned())
        );
    }
}
