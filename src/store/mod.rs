//! The data store: one interface over SQLite (embedded, the default) and Postgres.
//!
//! Both backends accept the same SQL (`$n` placeholders work in SQLite too), so each query
//! is written once and compiled for each pool by `on_pool!`. The queries live by aggregate:
//! `clients.rs`, `tokens.rs` (and refresh families), `revocations.rs`, `keys.rs`,
//! `assertions.rs`, `users.rs` (and what disabling or deleting one revokes),
//! `sessions.rs` (browser sessions and consents), `failures.rs` (failed password
//! sign-ins, shared by every instance) and `changes.rs` (what the change feed
//! reads). What differs between the
//! backends (connecting, migrations) lives in `sqlite.rs` and `postgres.rs`. Changes made
//! by other processes reach the caches through `crate::cache` (its change feed).

mod pool;
mod postgres;
mod sqlite;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::{PgPool, SqlitePool};

use crate::config::Config;

pub use postgres::connect_admin as connect_postgres_admin;
pub use sqlite::{access_problem as sqlite_access_problem, database_path as sqlite_database_path};

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

fn decode_list(text: &str, what: &'static str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt { what })
}

fn encode_list(values: &[String]) -> String {
    serde_json::Value::from(values.to_vec()).to_string()
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
    User(String),
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
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}

/// Runs one statement, its parameters bound in order, against whichever pool the store
/// holds; answers how many rows it changed.
macro_rules! execute {
    ($store:expr, $sql:expr $(, $param:expr)* $(,)?) => {
        on_pool!($store, pool => sqlx::query($sql)
            $(.bind($param))*
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
    };
}

// After `on_pool!` and `execute!`, which they use: the queries, by aggregate.
// `tokens` first: its column macros serve `codes` too.
#[macro_use]
mod tokens;
mod assertions;
mod changes;
mod clients;
mod codes;
mod events;
mod failures;
mod federation;
mod keys;
mod revocations;
mod schema;
mod sessions;
mod users;

/// Whether `name` can name a stored row at all: Postgres text holds no NUL, so a client
/// id, user id or username with one names nobody. Lookups answer "none" for it rather
/// than asking the store, which would fail where an unknown name is an answer.
fn nameable(name: &str) -> bool {
    !name.contains('\0')
}

pub use changes::{ChangeListener, ChangeLog, ChangeSource, LoggedChange, Notifications};
pub use clients::{ClientPolicy, ClientRecord, PreviousSecret, TOUCH_EVERY};
pub use codes::{CodeRecord, Redemption};
pub use events::{EventQuery, EventRow};
pub use failures::{FailureCount, FailureWindow, MAX_FAILURE_ROWS};
pub use federation::{FederatedLoginRecord, LinkRecord, NewLink, PendingBounds};
pub use keys::{Reseal, SealedSecret, StoredKey};
pub use schema::SchemaVersion;
pub use sessions::{ConsentRecord, SessionRecord};
pub use tokens::{ExchangedSubject, FamilyRecord, Rotation, TokenRecord};
pub use users::UserRecord;

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
}
