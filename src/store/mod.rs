//! The data store: one interface over SQLite (embedded, the default) and Postgres.
//!
//! Both backends accept the same SQL (`$n` placeholders work in SQLite too), so each query
//! is written once below and compiled for each pool; what differs between the backends
//! (connecting, migrations) lives in `sqlite.rs` and `postgres.rs`. Changes made by
//! other processes reach the caches through `crate::cache` (its change feed).

mod pool;
mod postgres;
mod sqlite;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::{PgPool, SqlitePool};

use crate::config::Config;
use crate::secret::SecretHash;

pub use postgres::connect_admin as connect_postgres_admin;
pub use sqlite::database_path as sqlite_database_path;

/// Errors of the store. None of them carries a secret, a hash or a token.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or did not answer in time.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database answered with an error.
    #[error("store error: {0}")]
    Database(#[source] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value could not be read back.
    #[error("stored {what} is malformed")]
    Corrupt { what: &'static str },
}

impl StoreError {
    /// A short label of the kind of failure, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Database(_) => "database",
            StoreError::Migrate(_) => "migrate",
            StoreError::Corrupt { .. } => "corrupt",
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => {
                pool::connection_failed();
                StoreError::Unavailable(err)
            }
            other => StoreError::Database(other),
        }
    }
}

/// How a client authenticates (RFC 7591 `token_endpoint_auth_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 §2.2: a JWT signed with a key from the client's registered JWK Set.
    PrivateKeyJwt,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 3] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == value)
    }
}

/// What a token is for (`token_use` in introspection answers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenUse {
    AccessToken,
    RefreshToken,
}

impl TokenUse {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenUse::AccessToken => "access_token",
            TokenUse::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "access_token" => Some(TokenUse::AccessToken),
            "refresh_token" => Some(TokenUse::RefreshToken),
            _ => None,
        }
    }
}

/// A grant type a client may use at the token endpoint (RFC 7591 `grant_types`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    ClientCredentials,
    RefreshToken,
    /// Sign-in of users (RFC 6749 §4.1); registered ahead of the endpoints that use it.
    AuthorizationCode,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        GrantType::ClientCredentials,
        GrantType::RefreshToken,
        GrantType::AuthorizationCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::RefreshToken => "refresh_token",
            GrantType::AuthorizationCode => "authorization_code",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == value)
    }
}

/// How many `{"active": false}` answers (and other answers that tell whether a token
/// exists) a client may receive per window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InactiveBudget {
    /// `rate_limit.inactive_per_client`.
    #[default]
    Configured,
    /// No limit: for a gateway that forwards the public's tokens.
    Off,
    Limit(u32),
}

impl InactiveBudget {
    /// Stored as NULL (configured), 0 (off) or the limit.
    fn from_column(value: Option<i64>) -> Result<Self, StoreError> {
        match value {
            None => Ok(InactiveBudget::Configured),
            Some(0) => Ok(InactiveBudget::Off),
            Some(n) => {
                u32::try_from(n)
                    .map(InactiveBudget::Limit)
                    .map_err(|_| StoreError::Corrupt {
                        what: "client inactive_budget",
                    })
            }
        }
    }

    fn to_column(self) -> Option<i64> {
        match self {
            InactiveBudget::Configured => None,
            InactiveBudget::Off => Some(0),
            InactiveBudget::Limit(n) => Some(i64::from(n)),
        }
    }
}

/// What a client may obtain at the token endpoint and how strictly it authenticates.
/// Nothing unless granted: no grant type, no resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientPolicy {
    pub grant_types: Vec<GrantType>,
    /// Resources (RFC 8707) it may obtain tokens for: the `aud` of its tokens.
    pub resources: Vec<String>,
    /// Only the registered `auth_method` is accepted, not its secret sibling.
    pub strict_auth_method: bool,
    pub inactive_budget: InactiveBudget,
}

/// A registered client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub name: String,
    pub secret_hash: SecretHash,
    pub auth_method: AuthMethod,
    /// Registered scopes, space-separated as in RFC 6749 §3.3.
    pub scope: String,
    /// Audiences whose tokens this client may introspect (RFC 7662 §4).
    pub audiences: Vec<String>,
    pub policy: ClientPolicy,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An opaque token, known only by the SHA-256 digest of its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub digest: [u8; 32],
    pub token_use: TokenUse,
    pub client_id: String,
    pub sub: Option<String>,
    pub username: Option<String>,
    pub scope: Option<String>,
    pub audiences: Vec<String>,
    pub jti: String,
    pub iat: i64,
    pub nbf: Option<i64>,
    pub exp: i64,
    pub revoked_at: Option<i64>,
}

/// A signing key the service generated for itself. It is published and verifies from
/// its creation, and signs from `activates_at` until a key activated later takes over.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    /// The private key: PKCS#8 DER when `encryption` is `None` (as generated, or stored
    /// before keys were encrypted), else sealed by the key-encryption key.
    pub private_key: Vec<u8>,
    /// How `private_key` is sealed (`A256GCM:` and the key-encryption key's id).
    pub encryption: Option<String>,
    pub created_at: i64,
    pub activates_at: i64,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_key", &"[redacted]")
            .field("encryption", &self.encryption)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct ClientRow {
    client_id: String,
    name: String,
    secret_hash: String,
    auth_method: String,
    scope: String,
    audiences: String,
    disabled: bool,
    created_at: i64,
    updated_at: i64,
    grant_types: String,
    resources: String,
    strict_auth_method: bool,
    inactive_budget: Option<i64>,
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> Result<Self, StoreError> {
        Ok(ClientRecord {
            client_id: row.client_id,
            name: row.name,
            secret_hash: SecretHash::new(row.secret_hash),
            auth_method: AuthMethod::parse(&row.auth_method).ok_or(StoreError::Corrupt {
                what: "client auth_method",
            })?,
            scope: row.scope,
            audiences: decode_list(&row.audiences, "client audiences")?,
            policy: ClientPolicy {
                grant_types: decode_list(&row.grant_types, "client grant_types")?
                    .iter()
                    .map(|g| GrantType::parse(g))
                    .collect::<Option<_>>()
                    .ok_or(StoreError::Corrupt {
                        what: "client grant_types",
                    })?,
                resources: decode_list(&row.resources, "client resources")?,
                strict_auth_method: row.strict_auth_method,
                inactive_budget: InactiveBudget::from_column(row.inactive_budget)?,
            },
            disabled: row.disabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    digest: Vec<u8>,
    token_use: String,
    client_id: String,
    sub: Option<String>,
    username: Option<String>,
    scope: Option<String>,
    audiences: String,
    jti: String,
    iat: i64,
    nbf: Option<i64>,
    exp: i64,
    revoked_at: Option<i64>,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;

    fn try_from(row: TokenRow) -> Result<Self, StoreError> {
        Ok(TokenRecord {
            digest: row.digest.try_into().map_err(|_| StoreError::Corrupt {
                what: "token digest",
            })?,
            token_use: TokenUse::parse(&row.token_use)
                .ok_or(StoreError::Corrupt { what: "token_use" })?,
            client_id: row.client_id,
            sub: row.sub,
            username: row.username,
            scope: row.scope,
            audiences: decode_list(&row.audiences, "token audiences")?,
            jti: row.jti,
            iat: row.iat,
            nbf: row.nbf,
            exp: row.exp,
            revoked_at: row.revoked_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    private_der: Vec<u8>,
    encryption: Option<String>,
    created_at: i64,
    activates_at: i64,
}

fn decode_list(text: &str, what: &'static str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt { what })
}

fn encode_list(values: &[String]) -> String {
    serde_json::Value::from(values.to_vec()).to_string()
}

fn encode_grant_types(grant_types: &[GrantType]) -> String {
    serde_json::Value::from(grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>()).to_string()
}

/// What a write changed, for caches that must forget it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Client(String),
    Token([u8; 32]),
    /// A new opaque token, by digest.
    TokenAdded([u8; 32]),
    Jti(String),
    Keys,
}

/// Told of every write this process makes, right after it commits.
pub trait ChangeSink: Send + Sync {
    fn changed(&self, change: &Change);
}

/// The connection pool of one backend.
#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The store. Cheap to clone: a connection pool, and the sink (shared by every clone)
/// that this process's caches register to hear of its own writes.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    sink: Arc<OnceLock<Arc<dyn ChangeSink>>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("pool", &self.pool).finish()
    }
}

/// Runs the same expression against whichever pool the store holds.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

macro_rules! client_columns {
    () => {
        "client_id, name, secret_hash, auth_method, scope, audiences, disabled, created_at, \
         updated_at, grant_types, resources, strict_auth_method, inactive_budget"
    };
}

macro_rules! token_columns {
    () => {
        "digest, token_use, client_id, sub, username, scope, audiences, jti, iat, nbf, exp, \
         revoked_at"
    };
}

/// Binds the columns of `token_columns!` in order.
macro_rules! bind_token {
    ($query:expr, $token:expr) => {
        $query
            .bind(&$token.digest[..])
            .bind($token.token_use.as_str())
            .bind(&$token.client_id)
            .bind(&$token.sub)
            .bind(&$token.username)
            .bind(&$token.scope)
            .bind(encode_list(&$token.audiences))
            .bind(&$token.jti)
            .bind($token.iat)
            .bind($token.nbf)
            .bind($token.exp)
            .bind($token.revoked_at)
    };
}

// After the query macros, which they use.
mod changes;
mod lifecycle;

pub use changes::{ChangeListener, ChangeLog, ChangeSource, LoggedChange, Notifications};
pub use lifecycle::{FamilyRecord, Rotation};

impl Store {
    /// Opens the configured database, creating an embedded SQLite file on first use.
    /// Does not migrate: call [`Store::migrate`].
    pub async fn connect(config: &Config) -> Result<Self, StoreError> {
        let acquire_timeout = Duration::from_millis(config.database.acquire_timeout_ms);
        let max = config.database.max_connections;
        let pool = if config.database_url.is_postgres() {
            Pool::Postgres(
                postgres::connect(config.database_url.as_str(), max, acquire_timeout).await?,
            )
        } else {
            Pool::Sqlite(sqlite::connect(config.database_url.as_str(), max, acquire_timeout).await?)
        };
        Ok(Store {
            pool,
            sink: Arc::new(OnceLock::new()),
        })
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlite::migrate(pool).await,
            Pool::Postgres(pool) => postgres::migrate(pool).await,
        }
    }

    /// Registers the sink told of this process's writes; the first registration wins.
    pub fn set_change_sink(&self, sink: Arc<dyn ChangeSink>) {
        let _ = self.sink.set(sink);
    }

    fn changed(&self, change: Change) {
        if let Some(sink) = self.sink.get() {
            sink.changed(&change);
        }
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Answers whether the database is reachable now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Registers a client and, for `private_key_jwt`, its JWK Set (stored JSON), in one
    /// transaction: a client is never left behind without the keys it was created with.
    pub async fn insert_client(
        &self,
        client: &ClientRecord,
        jwks: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        let keys = "INSERT INTO client_jwks (client_id, jwks) VALUES ($1, $2)";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(sql)
                .bind(&client.client_id)
                .bind(&client.name)
                .bind(client.secret_hash.expose())
                .bind(client.auth_method.as_str())
                .bind(&client.scope)
                .bind(encode_list(&client.audiences))
                .bind(client.disabled)
                .bind(client.created_at)
                .bind(client.updated_at)
                .bind(encode_grant_types(&client.policy.grant_types))
                .bind(encode_list(&client.policy.resources))
                .bind(client.policy.strict_auth_method)
                .bind(client.policy.inactive_budget.to_column())
                .execute(&mut *tx)
                .await?;
            if let Some(jwks) = jwks {
                sqlx::query(keys)
                    .bind(&client.client_id)
                    .bind(jwks)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        self.changed(Change::Client(client.client_id.clone()));
        Ok(())
    }

    pub async fn client_by_id(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE client_id = $1"
        );
        let row = on_pool!(self, pool => sqlx::query_as::<_, ClientRow>(sql)
            .bind(client_id)
            .fetch_optional(pool)
            .await)?;
        row.map(ClientRecord::try_from).transpose()
    }

    pub async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients ORDER BY created_at, client_id"
        );
        let rows = on_pool!(self, pool => sqlx::query_as::<_, ClientRow>(sql)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(ClientRecord::try_from).collect()
    }

    /// Replaces a client's secret hash; false when the client does not exist.
    pub async fn set_client_secret_hash(
        &self,
        client_id: &str,
        hash: &SecretHash,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE clients SET secret_hash = $1, updated_at = $2 WHERE client_id = $3";
        let done = on_pool!(self, pool => sqlx::query(sql)
            .bind(hash.expose())
            .bind(now)
            .bind(client_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.changed(Change::Client(client_id.to_owned()));
        Ok(done == 1)
    }

    /// Rewrites what an operator may change of a client in place (name, method, scope,
    /// audiences, policy); false when the client does not exist. Announced like every
    /// client change, so caches forget the old record before the next request.
    pub async fn update_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        let sql = "UPDATE clients SET name = $1, auth_method = $2, scope = $3, audiences = $4, \
                   grant_types = $5, resources = $6, strict_auth_method = $7, \
                   inactive_budget = $8, updated_at = $9 WHERE client_id = $10";
        let done = on_pool!(self, pool => sqlx::query(sql)
            .bind(&client.name)
            .bind(client.auth_method.as_str())
            .bind(&client.scope)
            .bind(encode_list(&client.audiences))
            .bind(encode_grant_types(&client.policy.grant_types))
            .bind(encode_list(&client.policy.resources))
            .bind(client.policy.strict_auth_method)
            .bind(client.policy.inactive_budget.to_column())
            .bind(client.updated_at)
            .bind(&client.client_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.changed(Change::Client(client.client_id.clone()));
        Ok(done == 1)
    }

    /// Disables or re-enables a client; false when the client does not exist.
    pub async fn set_client_disabled(
        &self,
        client_id: &str,
        disabled: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE clients SET disabled = $1, updated_at = $2 WHERE client_id = $3";
        let done = on_pool!(self, pool => sqlx::query(sql)
            .bind(disabled)
            .bind(now)
            .bind(client_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.changed(Change::Client(client_id.to_owned()));
        Ok(done == 1)
    }

    /// Deletes a client and the opaque tokens it holds; false when it does not exist.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.changed(Change::Client(client_id.to_owned()));
        Ok(done == 1)
    }

    pub async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let sql = concat!(
            "INSERT INTO tokens (",
            token_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        on_pool!(self, pool => bind_token!(sqlx::query(sql), token)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.changed(Change::TokenAdded(token.digest));
        Ok(())
    }

    pub async fn token_by_digest(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE digest = $1"
        );
        let row = on_pool!(self, pool => sqlx::query_as::<_, TokenRow>(sql)
            .bind(&digest[..])
            .fetch_optional(pool)
            .await)?;
        row.map(TokenRecord::try_from).transpose()
    }

    /// Marks an opaque token revoked; false when no such token exists.
    pub async fn revoke_token(&self, digest: &[u8; 32], now: i64) -> Result<bool, StoreError> {
        let sql = "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE digest = $2";
        let done = on_pool!(self, pool => sqlx::query(sql)
            .bind(now)
            .bind(&digest[..])
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.changed(Change::Token(*digest));
        Ok(done == 1)
    }

    /// Records a revoked JWT id until `exp`, when the token would have expired anyway.
    pub async fn revoke_jti(&self, jti: &str, exp: i64, now: i64) -> Result<(), StoreError> {
        let sql = "INSERT INTO revoked_jtis (jti, exp, revoked_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (jti) DO NOTHING";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(jti)
            .bind(exp)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.changed(Change::Jti(jti.to_owned()));
        Ok(())
    }

    pub async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let sql = "SELECT 1 FROM revoked_jtis WHERE jti = $1";
        let row = on_pool!(self, pool => sqlx::query(sql)
            .bind(jti)
            .fetch_optional(pool)
            .await
            .map(|row| row.is_some()))?;
        Ok(row)
    }

    /// Up to `limit` opaque token digests in ascending order, from just after `after`:
    /// one page of every digest the store holds.
    pub async fn token_digests(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after: &[u8] = after.map_or(&[], |a| &a[..]);
        let sql = "SELECT digest FROM tokens WHERE digest > $1 ORDER BY digest LIMIT $2";
        let rows = on_pool!(self, pool => sqlx::query_scalar::<_, Vec<u8>>(sql)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter()
            .map(|row| {
                <[u8; 32]>::try_from(row.as_slice()).map_err(|_| StoreError::Corrupt {
                    what: "token digest",
                })
            })
            .collect()
    }

    /// Revoked JWT ids, at most `limit` of them.
    pub async fn revoked_jti_ids(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let ids = on_pool!(self, pool => sqlx::query_scalar::<_, String>(
            "SELECT jti FROM revoked_jtis LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        Ok(ids)
    }

    /// Forgets revoked JWT ids and opaque tokens that expired before `before`.
    /// Returns how many rows went.
    pub async fn purge_expired(&self, before: i64) -> Result<u64, StoreError> {
        let jtis = on_pool!(self, pool => sqlx::query("DELETE FROM revoked_jtis WHERE exp < $1")
            .bind(before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        let tokens = on_pool!(self, pool => sqlx::query("DELETE FROM tokens WHERE exp < $1")
            .bind(before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        // The SQLite change log only needs to outlive the slowest reader, by far.
        let log = self.purge_change_log(before - 3_600).await?;
        Ok(jtis + tokens + log + self.purge_lifecycle(before).await?)
    }

    /// Stores a generated key unless one with that kid exists.
    pub async fn insert_signing_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let sql = "INSERT INTO signing_keys \
                   (kid, alg, private_der, encryption, created_at, activates_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kid) DO NOTHING";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.private_key)
            .bind(&key.encryption)
            .bind(key.created_at)
            .bind(key.activates_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.changed(Change::Keys);
        Ok(())
    }

    /// Generated keys, by activation, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let sql = "SELECT kid, alg, private_der, encryption, created_at, activates_at \
                   FROM signing_keys ORDER BY activates_at, created_at, kid";
        let rows = on_pool!(self, pool => sqlx::query_as::<_, KeyRow>(sql)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|r| StoredKey {
                kid: r.kid,
                alg: r.alg,
                private_key: r.private_der,
                encryption: r.encryption,
                created_at: r.created_at,
                activates_at: r.activates_at,
            })
            .collect())
    }

    /// Replaces a key stored in plain PKCS#8 by its sealed form; false when the key is
    /// gone or another process sealed it first.
    pub async fn seal_signing_key(&self, sealed: &StoredKey) -> Result<bool, StoreError> {
        let sql = "UPDATE signing_keys SET private_der = $1, encryption = $2 \
                   WHERE kid = $3 AND encryption IS NULL";
        let done = on_pool!(self, pool => sqlx::query(sql)
            .bind(&sealed.private_key)
            .bind(&sealed.encryption)
            .bind(&sealed.kid)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.changed(Change::Keys);
        Ok(done == 1)
    }

    /// Sets when a key begins to sign; false when there is no such key.
    pub async fn activate_signing_key(&self, kid: &str, at: i64) -> Result<bool, StoreError> {
        let sql = "UPDATE signing_keys SET activates_at = $1 WHERE kid = $2";
        let done = on_pool!(self, pool => sqlx::query(sql)
            .bind(at)
            .bind(kid)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.changed(Change::Keys);
        Ok(done == 1)
    }
}
