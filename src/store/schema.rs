//! The schema's version: which migrations the database holds against the ones this
//! release embeds. A database may hold migrations of a later release (a rolling update,
//! a rollback); this release runs against it, since migrations only expand the schema
//! and contract it a release after nothing reads what they remove.

use sqlx::migrate::Migrator;

use super::{Pool, Store, StoreError};

/// The migrations this release embeds, one set per backend.
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// This release's migrator, minus its refusal of migrations it does not know.
fn tolerant(embedded: &Migrator) -> Migrator {
    let mut migrator = Migrator::with_migrations(embedded.iter().cloned().collect());
    migrator.set_ignore_missing(true);
    migrator
}

/// How the database's migrations compare with this release's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaVersion {
    /// Migrations of this release the database lacks: it needs `introspectd migrate`.
    pub missing: Vec<i64>,
    /// Migrations the database holds that this release does not know: a later
    /// release's, which this one tolerates.
    pub later: Vec<i64>,
}

impl Store {
    /// Applies pending migrations of this backend; migrations of a later release that
    /// the database already holds are left alone.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => tolerant(&SQLITE).run(pool).await?,
            Pool::Postgres(pool) => tolerant(&POSTGRES).run(pool).await?,
        }
        Ok(())
    }

    /// Compares the database's applied migrations with this release's, without writing.
    pub async fn schema_version(&self) -> Result<SchemaVersion, StoreError> {
        let (embedded, exists) = match &self.pool {
            Pool::Sqlite(pool) => {
                let sql = "SELECT COUNT(*) FROM sqlite_master \
                           WHERE type = 'table' AND name = '_sqlx_migrations'";
                let n: i64 = sqlx::query_scalar(sql).fetch_one(pool).await?;
                (&SQLITE, n > 0)
            }
            Pool::Postgres(pool) => {
                let sql = "SELECT to_regclass('_sqlx_migrations') IS NOT NULL";
                let exists: bool = sqlx::query_scalar(sql).fetch_one(pool).await?;
                (&POSTGRES, exists)
            }
        };
        let applied: Vec<i64> = if exists {
            let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
            on_pool!(self, pool => sqlx::query_scalar(sql).fetch_all(pool).await)?
        } else {
            Vec::new()
        };
        Ok(SchemaVersion {
            missing: embedded
                .iter()
                .map(|m| m.version)
                .filter(|v| !applied.contains(v))
                .collect(),
            later: applied
                .into_iter()
                .filter(|v| !embedded.version_exists(*v))
                .collect(),
        })
    }
}
