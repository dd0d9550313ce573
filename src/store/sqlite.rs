//! Embedded SQLite: the default store, created on first use.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

pub(super) async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let filename = options.get_filename();
    let in_memory =
        filename.as_os_str().is_empty() || filename.to_string_lossy().contains(":memory:");
    if !in_memory {
        if let Some(dir) = filename.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(e.into()))?;
        }
    }
    let pool = SqlitePoolOptions::new()
        // An in-memory database lives in one connection; several would see several databases.
        .max_connections(if in_memory { 1 } else { max_connections })
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(super::pool::ping_when_idle::<sqlx::SqliteConnection>)
        .connect_with(options)
        .await?;
    Ok(pool)
}

pub(super) async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
