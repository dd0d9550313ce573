//! Typed configuration: defaults, then the TOML file, then `INTROSPECTD_*` environment
//! variables (`__` separates nested keys), then command-line flags.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "config/introspectd.toml";

/// Algorithms a configured key may use.
pub const SUPPORTED_ALGS: [&str; 4] = ["EdDSA", "ES256", "RS256", "HS256"];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Socket address the HTTP server binds.
    pub listen: SocketAddr,
    /// `iss` of minted tokens and `issuer` of the metadata document.
    pub issuer: String,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: DatabaseUrl,
    pub database: DatabaseConfig,
    pub rate_limit: RateLimitConfig,
    pub jwt: JwtConfig,
    pub tokens: TokenConfig,
    pub http: HttpConfig,
    pub cache: CacheConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub login: LoginConfig,
    pub registration: RegistrationConfig,
    /// Extra RFC 8414 fields merged into the published metadata document.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: "http://127.0.0.1:8080".to_owned(),
            database_url: DatabaseUrl("sqlite://data/introspectd.db".to_owned()),
            database: DatabaseConfig::default(),
            rate_limit: RateLimitConfig::default(),
            jwt: JwtConfig::default(),
            tokens: TokenConfig::default(),
            http: HttpConfig::default(),
            cache: CacheConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            login: LoginConfig::default(),
            registration: RegistrationConfig::default(),
            metadata: serde_json::Map::new(),
        }
    }
}

/// A database URL; it may carry a password, so `Debug` shows it [`redacted`](Self::redacted).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://") || self.0.starts_with("postgresql://")
    }

    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite:")
    }

    /// The URL for messages: a password, in the user part or in a query parameter
    /// (`?password=…`, `?sslpassword=…`), is replaced; a URL that cannot be parsed shows
    /// its scheme only, as it might hold a password where none was expected.
    pub fn redacted(&self) -> String {
        let Ok(mut url) = url::Url::parse(&self.0) else {
            return match self.0.split_once(':') {
                Some((scheme, _)) if is_scheme(scheme) => format!("{scheme}:…"),
                _ => "…".to_owned(),
            };
        };
        if url.password().is_some() {
            let _ = url.set_password(Some("redacted"));
        }
        let secret = |name: &str| name.to_ascii_lowercase().contains("password");
        if url.query_pairs().any(|(name, _)| secret(&name)) {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(name, value)| {
                    let value = if secret(&name) {
                        "redacted".into()
                    } else {
                        value
                    };
                    (name.into_owned(), value.into_owned())
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        url.to_string()
    }
}

/// Whether `text` is a URL scheme (RFC 3986 §3.1).
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a connection before the store counts as unavailable.
    pub acquire_timeout_ms: u64,
    /// Whether `serve` applies pending migrations at start; when false it leaves them to
    /// `introspectd migrate` and refuses a schema older than it needs.
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout_ms: 2_000,
            migrate_on_start: true,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Turns every limit below off (for example behind a gateway that limits already).
    pub enabled: bool,
    /// Sustained requests per second allowed from one client address.
    pub per_second: u32,
    /// Requests one client address may make at once before the sustained rate applies.
    pub burst: u32,
    /// Peers whose `Forwarded` / `X-Forwarded-For` headers name the client address:
    /// CIDR ranges or single addresses.
    #[serde(deserialize_with = "addresses_or_ranges")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The metadata document's own limit per client address.
    pub metadata_per_second: u32,
    pub metadata_burst: u32,
    /// Failed client authentications allowed per client address per window.
    pub auth_failures_per_ip: u32,
    /// Failed authentications allowed per client id from one address per window; past
    /// it, that address is refused for the client until the window ends, except with a
    /// secret this process has verified within `cache.credential_ttl_seconds`.
    pub auth_failures_per_client: u32,
    pub auth_failure_window_seconds: u64,
    /// `{"active": false}` answers allowed per authenticated client per window (0: no
    /// limit); past it the client gets 429 until the window ends. A public client, which
    /// anyone may call as, has this budget per client address.
    pub inactive_per_client: u32,
    pub inactive_window_seconds: u64,
    /// Wrong passwords allowed per client address per window at the login page.
    pub password_failures_per_ip: u32,
    /// Wrong passwords allowed per username at one address per window, whether or not
    /// such a user exists; and the consecutive failures of a username from anywhere
    /// after which each attempt waits a growing delay (none admitted past 100). A
    /// browser its user signed in from before has a small budget of its own past these.
    pub password_failures_per_username: u32,
    pub password_failure_window_seconds: u64,
    /// Clients one address may register at `POST /register` per hour.
    pub registrations_per_hour: u32,
}

impl RateLimitConfig {
    /// A budget as configured, or 0 (unlimited) while limits are turned off.
    pub fn budget(&self, limit: u32) -> u32 {
        if self.enabled { limit } else { 0 }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        // A resource server or gateway introspects once per API call it serves, so one
        // address legitimately sends a lot; the per-address limit exists to blunt floods.
        // Guessing is what the failure and inactive budgets stop.
        Self {
            enabled: true,
            per_second: 1_000,
            burst: 2_000,
            trusted_proxies: Vec::new(),
            metadata_per_second: 50,
            metadata_burst: 100,
            auth_failures_per_ip: 30,
            auth_failures_per_client: 10,
            auth_failure_window_seconds: 60,
            inactive_per_client: 6_000,
            inactive_window_seconds: 60,
            password_failures_per_ip: 30,
            password_failures_per_username: 10,
            password_failure_window_seconds: 300,
            registrations_per_hour: 20,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// Configured keys; when empty, one Ed25519 key is generated and kept in the store.
    pub keys: Vec<KeyConfig>,
    /// Accepted `iss` values of JWT access tokens; defaults to `[issuer]`.
    pub issuers: Option<Vec<String>>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_seconds: u64,
    /// Name of the environment variable holding the key that encrypts generated private
    /// keys in the store (32 random bytes, base64 or hex). Unset: a key generated into
    /// `key-encryption-key` beside the SQLite database, mode 0600. Postgres needs this or
    /// `key_encryption_key_file`.
    pub key_encryption_key_env: Option<String>,
    /// Path of the key-encryption key file to read, or with SQLite to generate (mode
    /// 0600) when it does not exist; unset: the default place above. Not with
    /// `key_encryption_key_env`.
    pub key_encryption_key_file: Option<PathBuf>,
    /// How long a key made by `keys rotate` is published before it signs, in seconds:
    /// at least as long as verifiers cache `/jwks`.
    pub rotation_delay_seconds: u64,
}

/// Longest `jwt.rotation_delay_seconds`: thirty days.
pub const MAX_ROTATION_DELAY_SECONDS: u64 = 30 * 24 * 3_600;

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            issuers: None,
            leeway_seconds: 30,
            key_encryption_key_env: None,
            key_encryption_key_file: None,
            rotation_delay_seconds: 300,
        }
    }
}

/// One configured key: `kid`, `alg` and exactly one source of key material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub kid: String,
    pub alg: String,
    pub private_key_file: Option<PathBuf>,
    pub public_key_file: Option<PathBuf>,
    /// Name of the environment variable holding an HS256 secret.
    pub secret_env: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// Lifetime of access tokens minted without `--ttl`, in seconds.
    pub access_token_ttl: u64,
    /// Lifetime of refresh tokens minted without `--ttl`, in seconds.
    pub refresh_token_ttl: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: 3_600,
            refresh_token_ttl: 30 * 24 * 3_600,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// A request taking longer than this is answered 503, in milliseconds.
    pub request_timeout_ms: u64,
    /// How long shutdown waits for in-flight requests, in seconds.
    pub shutdown_grace_seconds: u64,
    /// How long a client may take to send a request's headers, in milliseconds.
    pub header_read_timeout_ms: u64,
    /// Most header fields a request may carry (431 beyond).
    pub max_headers: usize,
    /// Most bytes of request line and headers (431 beyond).
    pub max_header_bytes: usize,
    /// The one forwarding header read from `rate_limit.trusted_proxies`; the other is
    /// ignored entirely, so a client cannot inject the header its proxy does not set.
    pub client_ip_header: ClientIpHeader,
    /// HTTPS on the main listener: the certificate chain and key, re-read on `SIGHUP`.
    pub tls: Option<TlsConfig>,
}

/// The PEM files of the main listener's certificate chain and private key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, the server's own certificate first.
    pub cert_file: PathBuf,
    /// The private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// Which forwarding header names the client address behind a trusted proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    /// `X-Forwarded-For`, as most proxies and load balancers set it.
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239).
    Forwarded,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            request_timeout_ms: 10_000,
            shutdown_grace_seconds: 10,
            header_read_timeout_ms: 10_000,
            max_headers: 64,
            max_header_bytes: 32 * 1024,
            client_ip_header: ClientIpHeader::default(),
            tls: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Entries kept in each cache (clients, tokens, revocations, verified JWTs,
    /// verified credentials).
    pub capacity: usize,
    /// How long a verified client secret is remembered, in seconds.
    pub credential_ttl_seconds: u64,
    /// Revoked JWT ids kept in memory, so tokens never seen before need no store lookup
    /// to be known unrevoked; with more, the store is asked for each new token.
    pub max_revocations: usize,
    /// Opaque tokens (access and refresh) whose digests are held in memory, so an
    /// unknown token is answered without a store lookup; with more, the store is asked
    /// for each token not in the cache. About 10 to 20 bytes per token.
    pub max_opaque_tokens: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            credential_ttl_seconds: 600,
            max_revocations: 100_000,
            max_opaque_tokens: 1_000_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `introspectd=debug,info`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".to_owned(),
            level: "info".to_owned(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Records metrics and serves them at `GET /metrics` on their own listener.
    pub enabled: bool,
    /// Socket address of the metrics listener, apart from the main one: the metrics
    /// tell why introspections were inactive, which callers of the API must not learn.
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

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
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            local_users: true,
            session_ttl_seconds: 28_800,
            providers: Vec::new(),
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
}

fn default_provider_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(str::to_owned).to_vec()
}

/// Longest provider `id`.
pub const MAX_PROVIDER_ID_LEN: usize = 32;

/// A provider's client secret as configured. `Debug` and `Serialize` never show it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct ProviderSecret(String);

impl ProviderSecret {
    pub fn new(value: impl Into<String>) -> Self {
        ProviderSecret(value.into())
    }

    /// The secret itself: for the provider's token endpoint only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ProviderSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProviderSecret([redacted])")
    }
}

impl Serialize for ProviderSecret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

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
                Ok(value) if !value.is_empty() => Ok(ProviderSecret(value)),
                _ => Err(format!("client_secret_env: {name} is not set")),
            },
            (None, None) => Err("client_secret or client_secret_env is required".to_owned()),
        }
    }

    /// What is wrong with where the secret comes from, whatever the environment holds.
    fn secret_source_problem(&self) -> Option<&'static str> {
        match (&self.client_secret, &self.client_secret_env) {
            (Some(secret), None) if secret.0.is_empty() => Some("client_secret: must not be empty"),
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
    fn problems(&self) -> Vec<String> {
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

/// Longest `login.session_ttl_seconds`: thirty days.
pub const MAX_SESSION_TTL_SECONDS: u64 = 30 * 24 * 3_600;

/// Values given on the command line; they override the file and the environment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

/// Reads `10.0.0.0/8` as a range and `10.0.0.1` as that one address.
fn addresses_or_ranges<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let items = Vec::<String>::deserialize(deserializer)?;
    items
        .iter()
        .map(|item| {
            let item = item.trim();
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("{item:?} is not an address or CIDR range"))
                })
        })
        .collect()
}

/// Prefix of configuration environment variables.
pub const ENV_PREFIX: &str = "INTROSPECTD_";

/// Top-level configuration keys, as environment variables name them.
fn top_level_keys() -> Vec<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn first_segment(key: &str) -> String {
    key.split('.').next().unwrap_or(key).to_ascii_lowercase()
}

/// `INTROSPECTD_*` variables that name no configuration key, for a start-up warning.
pub fn unrelated_env_vars() -> Vec<String> {
    let sections = top_level_keys();
    std::env::vars()
        .filter_map(|(name, _)| {
            let key = name.strip_prefix(ENV_PREFIX)?;
            let section = first_segment(&key.replace("__", "."));
            (!sections.contains(&section)).then_some(name)
        })
        .collect()
}

/// Everything wrong with a configuration, one line per problem, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Loads defaults, the file, the environment and the overrides, then validates,
    /// reporting every problem at once: unknown keys (with the nearest known one),
    /// values of the wrong kind, and broken rules. `INTROSPECTD_*` variables that name no
    /// configuration key at all are left alone (see [`unrelated_env_vars`]); a wrong
    /// nested key is an error. When `issuer` is given nowhere, it follows `listen`.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let sections = top_level_keys();
        let env = Env::prefixed(ENV_PREFIX)
            .split("__")
            .filter(move |key| sections.iter().any(|s| first_segment(key.as_str()) == *s));
        let mut given = Figment::new();
        match path {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(vec![format!(
                        "config file {} does not exist or is not a file",
                        path.display()
                    )]));
                }
                given = given.merge(Toml::file_exact(path));
            }
            None if Path::new(DEFAULT_CONFIG_PATH).is_file() => {
                given = given.merge(Toml::file_exact(DEFAULT_CONFIG_PATH));
            }
            None => {}
        }
        let given = given.merge(env).merge(Serialized::defaults(overrides));
        let issuer_given = given.contains("issuer");
        let figment = Figment::from(Serialized::defaults(Config::default())).merge(given);
        let (mut config, mut problems) = extract_reporting_all(&figment);
        if !issuer_given {
            config.issuer = issuer_following(config.listen, config.http.tls.is_some());
        }
        if let Err(ConfigError(more)) = config.validate() {
            problems.extend(more);
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Checks every rule and reports all problems at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if let Err(why) = validate_issuer(&self.issuer) {
            problems.push(format!("issuer: {why}"));
        }
        if !self.database_url.is_sqlite() && !self.database_url.is_postgres() {
            problems.push(format!(
                "database_url: {} is neither sqlite://… nor postgres://…",
                self.database_url.redacted()
            ));
        }
        if self.database.max_connections == 0 {
            problems.push("database.max_connections: must be at least 1".to_owned());
        }
        if self.rate_limit.per_second == 0 {
            problems.push("rate_limit.per_second: must be at least 1".to_owned());
        }
        if self.rate_limit.burst == 0 {
            problems.push("rate_limit.burst: must be at least 1".to_owned());
        }
        if self.rate_limit.metadata_per_second == 0 || self.rate_limit.metadata_burst == 0 {
            problems.push(
                "rate_limit.metadata_per_second, rate_limit.metadata_burst: must be at least 1"
                    .to_owned(),
            );
        }
        if self.rate_limit.auth_failure_window_seconds == 0 {
            problems.push("rate_limit.auth_failure_window_seconds: must be at least 1".to_owned());
        }
        if self.rate_limit.inactive_window_seconds == 0 {
            problems.push("rate_limit.inactive_window_seconds: must be at least 1".to_owned());
        }
        if self.rate_limit.password_failure_window_seconds == 0 {
            problems
                .push("rate_limit.password_failure_window_seconds: must be at least 1".to_owned());
        }
        if !(1..=MAX_SESSION_TTL_SECONDS).contains(&self.login.session_ttl_seconds) {
            problems.push(format!(
                "login.session_ttl_seconds: must be between 1 and {MAX_SESSION_TTL_SECONDS}"
            ));
        }
        problems.extend(self.registration_problems());
        problems.extend(self.provider_problems());
        if self.metrics.enabled && self.metrics.listen == self.listen && self.listen.port() != 0 {
            problems.push(format!(
                "metrics.listen: {} is the main listener's address; give metrics their own",
                self.metrics.listen
            ));
        }
        if self.tokens.access_token_ttl == 0 {
            problems.push("tokens.access_token_ttl: must be at least 1".to_owned());
        }
        if self.tokens.refresh_token_ttl == 0 {
            problems.push("tokens.refresh_token_ttl: must be at least 1".to_owned());
        }
        if self.http.tls.is_some() && !self.issuer.starts_with("https://") {
            problems.push(format!(
                "issuer: {:?} must be https:// when http.tls is set (the listener then speaks \
                 HTTPS only)",
                self.issuer
            ));
        }
        if self.http.max_body_bytes < 1024 {
            problems.push("http.max_body_bytes: must be at least 1024".to_owned());
        }
        if self.http.header_read_timeout_ms == 0 {
            problems.push("http.header_read_timeout_ms: must be at least 1".to_owned());
        }
        if self.http.max_headers < 16 {
            problems.push("http.max_headers: must be at least 16".to_owned());
        }
        if self.http.max_header_bytes < 8 * 1024 {
            problems.push("http.max_header_bytes: must be at least 8192".to_owned());
        }
        if self.http.request_timeout_ms == 0 {
            problems.push("http.request_timeout_ms: must be at least 1".to_owned());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            problems.push(format!(
                "log.format: {:?} is neither \"text\" nor \"json\"",
                self.log.format
            ));
        }
        if self.jwt.leeway_seconds > 600 {
            problems.push("jwt.leeway_seconds: at most 600".to_owned());
        }
        if let Some(issuers) = &self.jwt.issuers {
            if issuers.is_empty() {
                problems.push("jwt.issuers: must not be empty".to_owned());
            }
        }
        if let Some(name) = &self.jwt.key_encryption_key_env {
            // Checked here so that a bad key stops start-up before anything else runs.
            if let Err(err) = crate::token::kek::from_env(name) {
                problems.push(err.to_string());
            }
        }
        if let Some(path) = &self.jwt.key_encryption_key_file {
            problems.extend(
                validate_key_file(path, self.jwt.key_encryption_key_env.is_some())
                    .map(|why| format!("jwt.key_encryption_key_file: {why}")),
            );
        }
        if self.jwt.rotation_delay_seconds > MAX_ROTATION_DELAY_SECONDS {
            problems.push(format!(
                "jwt.rotation_delay_seconds: at most {MAX_ROTATION_DELAY_SECONDS}"
            ));
        }
        for (i, key) in self.jwt.keys.iter().enumerate() {
            problems.extend(
                validate_key(key)
                    .into_iter()
                    .map(|why| format!("jwt.keys[{i}]: {why}")),
            );
            if self.jwt.keys[..i].iter().any(|k| k.kid == key.kid) {
                problems.push(format!("jwt.keys[{i}]: kid {:?} is used twice", key.kid));
            }
        }
        for (name, value) in &self.metadata {
            if name == "issuer" {
                problems.push("metadata.issuer: set `issuer` instead".to_owned());
            } else if name.ends_with("_endpoint") || name.ends_with("_uri") {
                match value.as_str().map(url::Url::parse) {
                    Some(Ok(url)) if matches!(url.scheme(), "https" | "http") => {}
                    _ => problems.push(format!("metadata.{name}: must be an http(s) URL")),
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }

    /// What only `serve` needs beyond a valid configuration: the providers' client
    /// secrets named in `client_secret_env`, each under its key.
    pub fn serving_problems(&self) -> Vec<String> {
        let providers = self.login.providers.iter().enumerate();
        providers
            .filter_map(|(i, provider)| {
                let why = provider.secret().err()?;
                Some(format!("login.providers[{i}].{why}"))
            })
            .collect()
    }

    /// Environment variables named by the configuration as holding secrets (an
    /// `INTROSPECTD_` prefix is then no configuration key gone wrong).
    pub fn secret_env_vars(&self) -> Vec<String> {
        let keys = self.jwt.keys.iter().filter_map(|k| k.secret_env.clone());
        let providers = self.login.providers.iter();
        keys.chain(self.jwt.key_encryption_key_env.clone())
            .chain(self.registration.initial_access_token_env.clone())
            .chain(providers.filter_map(|p| p.client_secret_env.clone()))
            .collect()
    }

    /// Whether `POST /register` is served: dynamic registration creates clients that
    /// sign users in, so it needs sign-in on too.
    pub fn registration_enabled(&self) -> bool {
        self.registration.dynamic && self.login.enabled
    }

    /// Whether client ID metadata documents are accepted: they describe clients that
    /// sign users in, so sign-in must be on too.
    pub fn metadata_documents_enabled(&self) -> bool {
        self.registration.metadata_documents && self.login.enabled
    }

    /// The most a self-registered client may hold: `registration.max_scope`, else the
    /// string items of the metadata's `scopes_supported`, else nothing.
    pub fn registration_max_scope(&self) -> String {
        if let Some(scope) = &self.registration.max_scope {
            return crate::policy::normalize_scope(scope).unwrap_or_default();
        }
        let supported = self
            .metadata
            .get("scopes_supported")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        crate::policy::normalize_scope(&supported).unwrap_or_default()
    }

    /// The initial access token registration requires, read from the environment;
    /// `Ok(None)` when none is configured.
    pub fn initial_access_token(
        &self,
    ) -> Result<Option<crate::secret::InitialAccessToken>, String> {
        let Some(name) = &self.registration.initial_access_token_env else {
            return Ok(None);
        };
        match std::env::var(name) {
            Ok(value) if value.len() >= MIN_INITIAL_ACCESS_TOKEN_LEN => {
                Ok(Some(crate::secret::InitialAccessToken::new(value)))
            }
            Ok(_) => Err(format!(
                "registration.initial_access_token_env: {name} must hold at least \
                 {MIN_INITIAL_ACCESS_TOKEN_LEN} characters"
            )),
            Err(_) => Err(format!(
                "registration.initial_access_token_env: {name} is not set"
            )),
        }
    }

    /// Problems of `[[login.providers]]`, each under its key.
    fn provider_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let providers = &self.login.providers;
        for (i, provider) in providers.iter().enumerate() {
            for why in provider.problems() {
                problems.push(format!("login.providers[{i}].{why}"));
            }
            if providers[..i].iter().any(|p| p.id == provider.id) {
                problems.push(format!("login.providers[{i}].id: used twice"));
            }
        }
        problems
    }

    fn registration_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let registration = &self.registration;
        if !(1..=MAX_UNUSED_CLIENT_DAYS).contains(&registration.unused_client_days) {
            problems.push(format!(
                "registration.unused_client_days: must be between 1 and {MAX_UNUSED_CLIENT_DAYS}"
            ));
        }
        if let Some(scope) = &registration.max_scope {
            if crate::policy::normalize_scope(scope).is_err() {
                problems.push(
                    "registration.max_scope: must be scope tokens separated by spaces".to_owned(),
                );
            }
        }
        if let Err(why) = self.initial_access_token() {
            problems.push(why);
        }
        for (i, pattern) in registration.allowed_hosts.iter().enumerate() {
            if !crate::documents::address::valid_host_pattern(pattern) {
                problems.push(format!(
                    "registration.allowed_hosts[{i}]: must be a lower-case host name or \
                     *. followed by one"
                ));
            }
        }
        if let Some(path) = &registration.ca_file {
            match std::fs::read(path) {
                Ok(pem)
                    if ::pem::parse_many(&pem).is_ok_and(|certs| {
                        !certs.is_empty() && certs.iter().all(|c| c.tag() == "CERTIFICATE")
                    }) => {}
                Ok(_) => problems.push(format!(
                    "registration.ca_file: {} holds no PEM certificates",
                    path.display()
                )),
                Err(err) => problems.push(format!(
                    "registration.ca_file: cannot read {}: {err}",
                    path.display()
                )),
            }
        }
        problems
    }

    /// Accepted `iss` values of JWT access tokens.
    pub fn trusted_issuers(&self) -> Vec<String> {
        self.jwt
            .issuers
            .clone()
            .unwrap_or_else(|| vec![self.issuer.clone()])
    }
}

/// Most problems one configuration is read for: past them, the rest go unreported.
const MAX_PROBLEMS: usize = 64;

/// Reads the configuration, carrying on past a key that cannot be read: each unknown key
/// and each value of the wrong kind is reported, in our words and under its full key, and
/// left out (its default applies) so that every other key is still read.
fn extract_reporting_all(figment: &Figment) -> (Config, Vec<String>) {
    let mut value = match figment.extract::<serde_json::Value>() {
        Ok(value) => value,
        // The file itself cannot be read or parsed: nothing in it can be judged.
        Err(err) => {
            return (
                Config::default(),
                err.into_iter().map(|e| e.to_string()).collect(),
            );
        }
    };
    let mut problems = Vec::new();
    while problems.len() < MAX_PROBLEMS {
        let err = match Figment::from(Serialized::defaults(&value)).extract::<Config>() {
            Ok(config) => return (config, problems),
            Err(err) => err,
        };
        problems.push(describe_key_problem(figment, &err));
        if err.path.is_empty() || !remove_key(&mut value, &err.path) {
            break;
        }
    }
    (Config::default(), problems)
}

/// One unreadable key, said the way an operator writes it, with where it came from.
fn describe_key_problem(figment: &Figment, err: &figment::Error) -> String {
    use figment::error::Kind;
    let key = dotted_key(&err.path);
    let source = figment
        .find_metadata(&err.path.join("."))
        .map(|metadata| match &metadata.source {
            Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
            _ if metadata.name.contains("environment") => {
                format!(" (from {ENV_PREFIX}{})", err.path.join("__").to_uppercase())
            }
            _ => String::new(),
        })
        .unwrap_or_default();
    match &err.kind {
        Kind::UnknownField(name, known) => {
            let parent = dotted_key(&err.path[..err.path.len().saturating_sub(1)]);
            let within = |name: &str| match parent.as_str() {
                "" => name.to_owned(),
                parent => format!("{parent}.{name}"),
            };
            match nearest(name, known) {
                Some(guess) => format!(
                    "unknown key `{key}`{source}; did you mean `{}`?",
                    within(guess)
                ),
                None => format!("unknown key `{key}`{source}"),
            }
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("`{key}`{source}: expected {expected}, found {actual}")
        }
        Kind::UnknownVariant(actual, expected) => format!(
            "`{key}`{source}: {actual:?} is not one of {}",
            expected.join(", ")
        ),
        Kind::MissingField(field) => format!("`{key}`{source}: `{field}` is required"),
        Kind::Message(message) => format!("`{key}`{source}: {message}"),
        other => format!("`{key}`{source}: {other}"),
    }
}

/// `jwt.keys[0].kid` from the path `["jwt", "keys", "0", "kid"]`.
fn dotted_key(path: &[String]) -> String {
    let mut key = String::new();
    for segment in path {
        if segment.parse::<usize>().is_ok() {
            key.push_str(&format!("[{segment}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(segment);
        }
    }
    key
}

/// The known name a misspelt one most likely meant: at most two edits away, or one for
/// names of up to four characters.
fn nearest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let most = if name.chars().count() <= 4 { 1 } else { 2 };
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(distance, _)| *distance <= most)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`: the
/// optimal string alignment distance, for the short names of configuration keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the table: two back (for swaps), the last, and this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut last, row);
    }
    last[b.len()]
}

/// Removes the key at `path` (object keys and array indexes); false when it is not there.
fn remove_key(value: &mut serde_json::Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut at = value;
    for segment in parents {
        let next = match at {
            serde_json::Value::Object(map) => map.get_mut(segment),
            serde_json::Value::Array(items) => {
                segment.parse::<usize>().ok().and_then(|i| items.get_mut(i))
            }
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        at = next;
    }
    match at {
        serde_json::Value::Object(map) => map.remove(last).is_some(),
        serde_json::Value::Array(items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// The issuer when none is configured: this server at its `listen` address, with an
/// unspecified address (`0.0.0.0`, `::`) read as loopback, over https when the listener
/// has TLS.
pub fn issuer_following(listen: SocketAddr, tls: bool) -> String {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

/// RFC 8414 §2: the issuer is an https URL (http allowed for local use) with no query or
/// fragment.
/// Why `jwt.key_encryption_key_file` cannot be used, if it cannot.
fn validate_key_file(path: &Path, env_too: bool) -> Option<String> {
    if env_too {
        Some("set this or jwt.key_encryption_key_env, not both".to_owned())
    } else if path.file_name().is_none() {
        Some("must name a file".to_owned())
    } else if path.is_dir() {
        Some(format!("{} is a directory", path.display()))
    } else {
        None
    }
}

fn validate_issuer(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("{issuer:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("{issuer:?} must use https or http"));
    }
    if url.host_str().is_none() {
        return Err(format!("{issuer:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{issuer:?} must not have a query or fragment"));
    }
    Ok(())
}

fn validate_key(key: &KeyConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if key.kid.is_empty() {
        problems.push("kid must not be empty".to_owned());
    }
    if !SUPPORTED_ALGS.contains(&key.alg.as_str()) {
        problems.push(format!(
            "alg {:?} is not one of {}",
            key.alg,
            SUPPORTED_ALGS.join(", ")
        ));
    }
    let sources = [
        key.private_key_file.is_some(),
        key.public_key_file.is_some(),
        key.secret_env.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        problems
            .push("give exactly one of private_key_file, public_key_file, secret_env".to_owned());
    } else if key.alg == "HS256" && key.secret_env.is_none() {
        problems.push("HS256 keys take their secret from secret_env".to_owned());
    } else if key.alg != "HS256" && key.secret_env.is_some() {
        problems.push(format!("{} keys are read from a PEM file", key.alg));
    }
    problems
}

#[cfg(test)]
// figment's Jail closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

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

    #[test]
    fn defaults_serve_a_single_machine() {
        let config = Config::default();
        config.validate().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.metrics.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(config.trusted_issuers(), vec!["http://127.0.0.1:8080"]);
        assert!(config.database_url.is_sqlite());
    }

    #[test]
    fn environment_nests_with_double_underscore() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("INTROSPECTD_RATE_LIMIT__PER_SECOND", "500");
            jail.set_env("INTROSPECTD_ISSUER", "https://auth.example.com/tenant");
            let config = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(config.rate_limit.per_second, 500);
            assert_eq!(config.issuer, "https://auth.example.com/tenant");
            Ok(())
        });
    }

    #[test]
    fn providers_are_read_from_the_file_with_default_scopes() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "providers.toml",
                r#"
                [login]
                local_users = false

                [[login.providers]]
                id = "corp"
                name = "Corp SSO"
                issuer = "https://login.example.com/realms/staff"
                client_id = "introspectd"
                client_secret_env = "CORP_OIDC_SECRET"
                allowed_email_domains = ["example.com"]
                "#,
            )?;
            jail.set_env("CORP_OIDC_SECRET", "from-the-environment");
            let path = std::path::Path::new("providers.toml");
            let config = Config::load(Some(path), &Overrides::default()).unwrap();
            assert!(!config.login.local_users);
            let provider = &config.login.providers[0];
            assert_eq!(provider.scopes, ["openid", "email", "profile"]);
            assert_eq!(provider.secret().unwrap().expose(), "from-the-environment");
            Ok(())
        });
    }

    #[test]
    fn trusted_proxies_take_ranges_and_addresses() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "INTROSPECTD_RATE_LIMIT__TRUSTED_PROXIES",
                "[10.0.0.0/8, 127.0.0.1, \"::1\"]",
            );
            let config = Config::load(None, &Overrides::default()).unwrap();
            let nets: Vec<String> = config
                .rate_limit
                .trusted_proxies
                .iter()
                .map(|n| n.to_string())
                .collect();
            assert_eq!(nets, vec!["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
            jail.set_env("INTROSPECTD_RATE_LIMIT__TRUSTED_PROXIES", "[bogus]");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(
                err.to_string().to_lowercase().contains("trusted_proxies"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn client_ip_header_is_one_of_two_names() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let config = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(config.http.client_ip_header, ClientIpHeader::XForwardedFor);
            jail.set_env("INTROSPECTD_HTTP__CLIENT_IP_HEADER", "forwarded");
            let config = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(config.http.client_ip_header, ClientIpHeader::Forwarded);
            jail.set_env("INTROSPECTD_HTTP__CLIENT_IP_HEADER", "x-real-ip");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(
                err.to_string().to_lowercase().contains("client_ip_header"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn unrelated_environment_variables_are_left_alone() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("INTROSPECTD_VERSION", "1.2.3");
            let config = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(config.listen, Config::default().listen);
            assert!(unrelated_env_vars().contains(&"INTROSPECTD_VERSION".to_owned()));
            jail.set_env("INTROSPECTD_RATE_LIMIT__PER_SECNOD", "5");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("per_secnod"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn flags_override_file_and_environment() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "c.toml",
                "listen = \"127.0.0.1:9000\"\nissuer = \"https://a.example\"",
            )?;
            jail.set_env("INTROSPECTD_ISSUER", "https://b.example");
            let overrides = Overrides {
                listen: Some("0.0.0.0:9100".parse().unwrap()),
                ..Overrides::default()
            };
            let config = Config::load(Some(Path::new("c.toml")), &overrides).unwrap();
            assert_eq!(config.listen.to_string(), "0.0.0.0:9100");
            assert_eq!(config.issuer, "https://b.example");
            Ok(())
        });
    }

    #[test]
    fn issuer_follows_listen_unless_set() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let listen = |addr: &str| Overrides {
                listen: Some(addr.parse().unwrap()),
                ..Overrides::default()
            };
            let load = |overrides: &Overrides| Config::load(None, overrides).unwrap().issuer;
            assert_eq!(load(&Overrides::default()), "http://127.0.0.1:8080");
            assert_eq!(load(&listen("127.0.0.1:9000")), "http://127.0.0.1:9000");
            assert_eq!(load(&listen("0.0.0.0:9000")), "http://127.0.0.1:9000");
            assert_eq!(load(&listen("[::]:9000")), "http://[::1]:9000");
            assert_eq!(load(&listen("[::1]:9001")), "http://[::1]:9001");
            assert_eq!(
                issuer_following("0.0.0.0:8443".parse().unwrap(), true),
                "https://127.0.0.1:8443"
            );
            jail.set_env("INTROSPECTD_LISTEN", "127.0.0.1:9100");
            assert_eq!(load(&Overrides::default()), "http://127.0.0.1:9100");
            jail.set_env("INTROSPECTD_ISSUER", "https://auth.example.com");
            assert_eq!(load(&listen("127.0.0.1:9000")), "https://auth.example.com");
            Ok(())
        });
    }

    #[test]
    fn every_unreadable_key_is_reported_at_once_in_our_words() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "c.toml",
                "lisen = \"127.0.0.1:9000\"\n\
                 [rate_limit]\nper_secnd = 5\nburst = \"lots\"\n\
                 [[jwt.keys]]\nkid = \"k\"\nalg = \"EdDSA\"\nsecret_env = \"X\"\nprivte_key_file = \"k.pem\"\n\
                 [tokens]\nwhatever = 1\n",
            )?;
            jail.set_env("INTROSPECTD_HTTP__CLIENT_IP_HEADER", "x-real-ip");
            let err = Config::load(Some(Path::new("c.toml")), &Overrides::default()).unwrap_err();
            let problems = err.0;
            for expected in [
                "unknown key `lisen` (in ",
                "did you mean `listen`?",
                "unknown key `rate_limit.per_secnd` (in ",
                "did you mean `rate_limit.per_second`?",
                "`rate_limit.burst` (in ",
                "unknown key `jwt.keys[0].privte_key_file`; did you mean \
                 `jwt.keys[0].private_key_file`?",
                "`http.client_ip_header` (from INTROSPECTD_HTTP__CLIENT_IP_HEADER): \
                 \"x-real-ip\" is not one of x-forwarded-for, forwarded",
            ] {
                assert!(
                    problems.iter().any(|p| p.contains(expected)),
                    "{expected:?} in {problems:#?}"
                );
            }
            // Too far from any key for a guess.
            let whatever = problems
                .iter()
                .find(|p| p.contains("tokens.whatever"))
                .unwrap();
            assert!(!whatever.contains("did you mean"), "{whatever}");
            Ok(())
        });
    }

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        for (a, b, d) in [
            ("", "", 0),
            ("", "abc", 3),
            ("listen", "listen", 0),
            ("lisen", "listen", 1),
            ("lsiten", "listen", 1),
            ("per_secnd", "per_second", 1),
            ("burts", "burst", 1),
            ("kitten", "sitting", 3),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
            assert_eq!(edit_distance(b, a), d, "{b} {a}");
        }
    }

    #[test]
    fn near_names_are_suggested_far_ones_not() {
        let known = ["listen", "issuer", "per_second", "burst", "log"];
        assert_eq!(nearest("lisen", &known), Some("listen"));
        assert_eq!(nearest("isuser", &known), Some("issuer"));
        assert_eq!(nearest("per_secodn", &known), Some("per_second"));
        assert_eq!(nearest("lgo", &known), Some("log"));
        assert_eq!(nearest("xyz", &known), None);
        assert_eq!(nearest("threads", &known), None);
        assert_eq!(
            dotted_key(&["jwt".into(), "keys".into(), "0".into(), "kid".into()]),
            "jwt.keys[0].kid"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("c.toml", "lisen = \"127.0.0.1:9000\"")?;
            let err = Config::load(Some(Path::new("c.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("lisen"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let mut config = Config {
            issuer: "ftp://x".to_owned(),
            ..Config::default()
        };
        config.rate_limit.per_second = 0;
        config.jwt.keys.push(KeyConfig {
            kid: "k".to_owned(),
            alg: "none".to_owned(),
            private_key_file: None,
            public_key_file: None,
            secret_env: None,
        });
        config
            .metadata
            .insert("issuer".to_owned(), "https://other".into());
        let err = config.validate().unwrap_err().0;
        let text = err.join("\n");
        assert!(text.contains("issuer:"), "{text}");
        assert!(text.contains("rate_limit.per_second"), "{text}");
        assert!(text.contains("jwt.keys[0]: alg"), "{text}");
        assert!(text.contains("jwt.keys[0]: give exactly one"), "{text}");
        assert!(text.contains("metadata.issuer"), "{text}");
    }

    #[test]
    fn tls_is_read_whole_and_wants_an_https_issuer() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "tls.toml",
                "[http.tls]\ncert_file = \"/etc/tls.crt\"\nkey_file = \"/etc/tls.key\"\n",
            )?;
            let config = Config::load(Some(Path::new("tls.toml")), &Overrides::default()).unwrap();
            assert_eq!(
                config.issuer, "https://127.0.0.1:8080",
                "follows listen, over https"
            );
            jail.set_env("INTROSPECTD_ISSUER", "http://auth.example");
            let err = Config::load(Some(Path::new("tls.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("must be https:// when http.tls is set"),
                "{err}"
            );
            jail.set_env("INTROSPECTD_ISSUER", "https://auth.example");
            let config = Config::load(Some(Path::new("tls.toml")), &Overrides::default()).unwrap();
            let tls = config.http.tls.unwrap();
            assert_eq!(tls.cert_file, Path::new("/etc/tls.crt"));
            assert_eq!(tls.key_file, Path::new("/etc/tls.key"));
            jail.create_file("half.toml", "[http.tls]\ncert_file = \"/etc/tls.crt\"\n")?;
            let err = Config::load(Some(Path::new("half.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("key_file"), "{err}");
            assert!(Config::default().http.tls.is_none());
            Ok(())
        });
    }

    #[test]
    fn example_config_is_valid() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let path =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("config/introspectd.example.toml");
            let config = Config::load(Some(&path), &Overrides::default()).unwrap();
            assert_eq!(
                config.jwt.leeway_seconds,
                Config::default().jwt.leeway_seconds
            );
            Ok(())
        });
    }

    #[test]
    fn key_encryption_key_is_checked_at_load_without_showing_it() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("INTROSPECTD_JWT__KEY_ENCRYPTION_KEY_ENV", "INTROSPECTD_KEK");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(
                err.to_string().contains("INTROSPECTD_KEK is not set"),
                "{err}"
            );
            jail.set_env("INTROSPECTD_KEK", "c2hvcnQ=");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("must hold 32 random bytes"), "{text}");
            assert!(!text.contains("c2hvcnQ") && !text.contains('\n'), "{text}");
            jail.set_env("INTROSPECTD_KEK", "ab".repeat(32));
            let config = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(config.secret_env_vars(), vec!["INTROSPECTD_KEK"]);
            assert!(
                !unrelated_env_vars()
                    .into_iter()
                    .any(|name| !config.secret_env_vars().contains(&name)),
                "the named variable is not reported as an unknown setting"
            );
            jail.set_env("INTROSPECTD_JWT__ROTATION_DELAY_SECONDS", "99999999");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(
                err.to_string().contains("jwt.rotation_delay_seconds"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn session_lifetime_is_bounded() {
        let mut config = Config::default();
        config.login.session_ttl_seconds = 0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("login.session_ttl_seconds"), "{err}");
        config.login.session_ttl_seconds = MAX_SESSION_TTL_SECONDS + 1;
        assert!(config.validate().is_err());
        config.login.session_ttl_seconds = MAX_SESSION_TTL_SECONDS;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn metrics_need_a_listener_of_their_own() {
        let mut config = Config::default();
        config.metrics.listen = config.listen;
        let text = config.validate().unwrap_err().0.join("\n");
        assert!(text.contains("metrics.listen"), "{text}");
        config.metrics.enabled = false;
        config.validate().unwrap();
        config.metrics.enabled = true;
        config.listen.set_port(0);
        config.metrics.listen.set_port(0);
        config.validate().unwrap();
    }

    #[test]
    fn registration_keys_are_checked_at_start_up() {
        let mut config = Config::default();
        config.registration.unused_client_days = 0;
        config.registration.max_scope = Some("read \"quoted\"".to_owned());
        config.registration.initial_access_token_env =
            Some("INTROSPECTD_TEST_NEVER_SET_REGISTRATION_TOKEN".to_owned());
        let problems = config.validate().unwrap_err().0;
        for key in [
            "registration.unused_client_days",
            "registration.max_scope",
            "registration.initial_access_token_env",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(key)),
                "{key}: {problems:?}"
            );
        }
        assert!(
            !problems.iter().any(|p| p.contains("quoted")),
            "values are not echoed: {problems:?}"
        );
    }

    #[test]
    fn self_registered_scope_defaults_to_the_scopes_supported() {
        let mut config = Config::default();
        assert_eq!(
            config.registration_max_scope(),
            "",
            "none unless configured"
        );
        config.metadata.insert(
            "scopes_supported".to_owned(),
            serde_json::json!(["mcp", "files"]),
        );
        assert_eq!(config.registration_max_scope(), "mcp files");
        config.registration.max_scope = Some(" mcp ".to_owned());
        assert_eq!(config.registration_max_scope(), "mcp");
        assert!(config.registration_enabled());
        assert!(config.metadata_documents_enabled(), "on by default");
        assert!(
            !config.registration.allow_private_networks,
            "public addresses only"
        );
        config.login.enabled = false;
        assert!(!config.registration_enabled(), "registration needs sign-in");
        assert!(
            !config.metadata_documents_enabled(),
            "documents need sign-in"
        );
    }

    #[test]
    fn issuer_with_query_is_rejected() {
        assert!(validate_issuer("https://a.example/?x=1").is_err());
        assert!(validate_issuer("https://a.example/tenant").is_ok());
    }

    #[test]
    fn key_encryption_key_file_names_a_file_and_excludes_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.jwt.key_encryption_key_file = Some(dir.path().join("kek"));
        assert!(config.validate().is_ok());
        config.jwt.key_encryption_key_file = Some(dir.path().to_owned());
        let problems = config.validate().unwrap_err().0;
        assert!(problems[0].contains("is a directory"), "{problems:?}");
        config.jwt.key_encryption_key_file = Some(PathBuf::from("/"));
        let problems = config.validate().unwrap_err().0;
        assert!(problems[0].contains("must name a file"), "{problems:?}");
        config.jwt.key_encryption_key_file = Some(dir.path().join("kek"));
        config.jwt.key_encryption_key_env = Some("SOME_KEK".to_owned());
        let problems = config.validate().unwrap_err().0;
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("jwt.key_encryption_key_file: set this or")),
            "{problems:?}"
        );
    }

    #[test]
    fn database_url_debug_hides_password() {
        let url = DatabaseUrl("postgres://app:hunter2@db/introspectd".to_owned());
        let shown = format!("{url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn database_url_debug_hides_a_password_wherever_it_is() {
        for text in [
            // A password in the query, as sqlx reads it.
            "postgres://app@db/introspectd?password=hunter2&sslmode=require",
            "postgres://app@db/introspectd?sslpassword=hunter2",
            // Unparsable (bad port): nothing after the scheme is shown.
            "postgres://app:hunter2@db:port/introspectd",
            "hunter2",
        ] {
            let shown = format!("{:?}", DatabaseUrl(text.to_owned()));
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let url = DatabaseUrl("postgres://app@db/x?password=p&sslmode=require".to_owned());
        assert_eq!(
            url.redacted(),
            "postgres://app@db/x?password=redacted&sslmode=require"
        );
        let bad = DatabaseUrl("postgres://app:hunter2@db:port/x".to_owned());
        assert_eq!(bad.redacted(), "postgres:…");
        let plain = DatabaseUrl("sqlite://data/introspectd.db".to_owned());
        assert_eq!(plain.redacted(), "sqlite://data/introspectd.db");
    }
}
