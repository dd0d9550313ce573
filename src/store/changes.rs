//! What the change feed reads: changes other processes committed, as the migrations'
//! triggers announce them (Postgres NOTIFY) or log them (the SQLite `change_log`).

use std::path::{Path, PathBuf};

use sqlx::postgres::{PgListener, PgPool};
use sqlx::sqlite::SqlitePool;

use super::{Pool, Store, StoreError};

/// Channel the Postgres triggers notify on.
const CHANNEL: &str = "introspectd_changes";

/// Where an instance learns of changes made by other processes.
pub enum ChangeSource {
    /// Postgres: notifications on the triggers' channel.
    Notifications(Notifications),
    /// SQLite: the change log, in a database file other processes may share.
    Log(ChangeLog),
    /// An in-memory SQLite database: no other process can write to it.
    Private,
}

impl Store {
    /// How this store announces changes made by other processes.
    pub async fn change_source(&self) -> Result<ChangeSource, StoreError> {
        match &self.pool {
            Pool::Postgres(pool) => Ok(ChangeSource::Notifications(Notifications {
                pool: pool.clone(),
            })),
            Pool::Sqlite(pool) => {
                let path: Option<String> =
                    sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                        .fetch_optional(pool)
                        .await?;
                Ok(match path.filter(|p| !p.is_empty()) {
                    Some(path) => ChangeSource::Log(ChangeLog {
                        pool: pool.clone(),
                        path: PathBuf::from(path),
                    }),
                    None => ChangeSource::Private,
                })
            }
        }
    }

    /// Forgets SQLite change log rows written before `before`; Postgres keeps none.
    pub(super) async fn purge_change_log(&self, before: i64) -> Result<u64, StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => Ok(sqlx::query("DELETE FROM change_log WHERE at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()),
            Pool::Postgres(_) => Ok(0),
        }
    }
}

/// The Postgres change channel: listen to it, or send on it.
#[derive(Clone)]
pub struct Notifications {
    pool: PgPool,
}

impl Notifications {
    /// A new connection listening on the channel.
    pub async fn listen(&self) -> Result<ChangeListener, StoreError> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(ChangeListener(listener))
    }

    /// Sends `payload` on the channel, behind every change committed before.
    pub async fn notify(&self, payload: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A connection listening on the change channel.
pub struct ChangeListener(PgListener);

impl ChangeListener {
    /// The payload of the next notification; `None` when the connection dropped, and
    /// with it the notifications sent meanwhile (the next call reconnects).
    pub async fn next(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self.0.try_recv().await?.map(|n| n.payload().to_owned()))
    }
}

/// The SQLite change log and the database file it lives in.
pub struct ChangeLog {
    pool: SqlitePool,
    path: PathBuf,
}

/// One row of the change log: its version, and the kind and key of what changed.
pub type LoggedChange = (i64, String, String);

impl ChangeLog {
    /// The database file, which other processes write to.
    pub fn database_file(&self) -> &Path {
        &self.path
    }

    /// The version of the newest row, 0 when the log is empty.
    pub async fn newest(&self) -> Result<i64, StoreError> {
        let version = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM change_log")
            .fetch_one(&self.pool)
            .await?;
        Ok(version)
    }

    /// Up to `limit` rows after version `after`, oldest first.
    pub async fn since(&self, after: i64, limit: i64) -> Result<Vec<LoggedChange>, StoreError> {
        let rows = sqlx::query_as(
            "SELECT version, kind, key FROM change_log WHERE version > $1 ORDER BY version LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}
