//! Typed configuration: plain data, read from defaults, then the TOML file, then
//! `INTROSPECTD_*` environment variables (`__` separates nested keys), then command-line
//! flags (`read.rs`), and checked against its rules without touching the environment or
//! the filesystem (`validate.rs`). The sections are here and in `login.rs` (sign-in,
//! providers and self-registered clients).

mod login;
mod read;
mod validate;

pub use login::*;
pub use read::{ENV_PREFIX, Overrides, issuer_following, unrelated_env_vars};

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    pub events: EventsConfig,
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
            events: EventsConfig::default(),
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
    #[serde(deserialize_with = "read::addresses_or_ranges")]
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

/// The audit trail (`introspectd events`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// How long events are kept, in days.
    pub retention_days: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self { retention_days: 90 }
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

/// Everything wrong with a configuration, one line per problem, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
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

    /// Accepted `iss` values of JWT access tokens.
    pub fn trusted_issuers(&self) -> Vec<String> {
        self.jwt
            .issuers
            .clone()
            .unwrap_or_else(|| vec![self.issuer.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
