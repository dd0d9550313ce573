//! Embedded SQLite: the default store, created on first use.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;
use crate::private_files;

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
    let in_memory = file_path(&options).is_none();
    if let Some(path) = file_path(&options) {
        prepare_files(&path).map_err(|e| StoreError::Unavailable(e.into()))?;
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

/// The database file of a `sqlite:` URL; `None` for an in-memory database.
pub fn database_path(url: &str) -> Option<PathBuf> {
    file_path(&SqliteConnectOptions::from_str(url).ok()?)
}

fn file_path(options: &SqliteConnectOptions) -> Option<PathBuf> {
    let filename = options.get_filename();
    let in_memory =
        filename.as_os_str().is_empty() || filename.to_string_lossy().contains(":memory:");
    (!in_memory).then(|| filename.to_path_buf())
}

/// Only this service's user may read the store: a directory created for it gets mode
/// 0700, and the database file 0600 before SQLite first opens it (SQLite gives its `-wal`
/// and `-shm` files the database file's mode). A store created before this keeps its
/// directory but loses group and other access to its files.
fn prepare_files(db: &Path) -> std::io::Result<()> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_files::create_private_dir(dir)?;
    }
    match private_files::create_private_file(db) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = db.as_os_str().to_owned();
                path.push(suffix);
                match private_files::restrict_file(Path::new(&path)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    super::schema::tolerant(&MIGRATOR).run(pool).await?;
    Ok(())
}

/// The migrations this release embeds.
pub(super) fn migrator() -> &'static Migrator {
    &MIGRATOR
}
