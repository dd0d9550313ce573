//! Upgrades and rollbacks: the previous release runs against a schema the next one
//! migrated (migrations only expand it), and a binary runs against a database that
//! holds migrations it does not know; `database.migrate_on_start`.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use common::binary::{self, Server, command, http, introspect, run_json};
use common::{Backend, fresh_db};
use introspectd::config::DatabaseUrl;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{PgPool, SqlitePool};

/// A database of either backend, opened directly: these tests look beneath the store.
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same expression against whichever pool `db` holds.
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

async fn open(url: &DatabaseUrl) -> Db {
    if url.is_postgres() {
        Db::Postgres(PgPool::connect(url.as_str()).await.unwrap())
    } else {
        let options = SqliteConnectOptions::from_str(url.as_str())
            .unwrap()
            .create_if_missing(true);
        Db::Sqlite(SqlitePool::connect_with(options).await.unwrap())
    }
}

/// One column as an INSERT or SELECT of the previous release meets it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Column {
    data_type: String,
    nullable: bool,
    has_default: bool,
}

/// Every column of every table, by (table, column), but sqlx's own bookkeeping.
async fn columns(db: &Db) -> BTreeMap<(String, String), Column> {
    let rows: Vec<(String, String, String, bool, bool)> = match db {
        Db::Postgres(pool) => sqlx::query_as(
            "SELECT table_name::TEXT, column_name::TEXT, data_type::TEXT, \
             is_nullable = 'YES', column_default IS NOT NULL \
             FROM information_schema.columns WHERE table_schema = 'public'",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        Db::Sqlite(pool) => sqlx::query_as(
            "SELECT m.name, p.name, p.type, p.\"notnull\" = 0 AND p.pk = 0, \
             p.dflt_value IS NOT NULL \
             FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    };
    rows.into_iter()
        .filter(|(table, ..)| table != "_sqlx_migrations")
        .map(|(table, column, data_type, nullable, has_default)| {
            let column_info = Column {
                data_type: data_type.to_lowercase(),
                nullable,
                has_default,
            };
            ((table, column), column_info)
        })
        .collect()
}

/// What makes the previous release's queries fail when a migration goes from `before`
/// to `after`: a table or column it reads gone or retyped, a column it leaves out of an
/// INSERT that must now be given.
fn contractions(
    before: &BTreeMap<(String, String), Column>,
    after: &BTreeMap<(String, String), Column>,
) -> Vec<String> {
    let mut found = Vec::new();
    for ((table, column), old) in before {
        match after.get(&(table.clone(), column.clone())) {
            None => found.push(format!("{table}.{column} is dropped or renamed")),
            Some(new) if new.data_type != old.data_type => found.push(format!(
                "{table}.{column} changes type from {} to {}",
                old.data_type, new.data_type
            )),
            Some(new) if old.nullable && !new.nullable && !new.has_default => found.push(format!(
                "{table}.{column} becomes NOT NULL without a default"
            )),
            Some(_) => {}
        }
    }
    let old_tables: Vec<&String> = before.keys().map(|(t, _)| t).collect();
    for ((table, column), new) in after {
        let added = !before.contains_key(&(table.clone(), column.clone()));
        if added && old_tables.contains(&table) && !new.nullable && !new.has_default {
            found.push(format!(
                "{table}.{column} is added NOT NULL without a default: the previous \
                 release's INSERTs into {table} fail"
            ));
        }
    }
    found
}

/// Each migration so far, applied one by one on a fresh database, only adds to what
/// the previous release reads and writes: no table or column goes away or changes type,
/// and no column appears that the previous release's INSERTs would have to give.
/// Contracting (dropping what no release reads any more) waits a release; see README,
/// Upgrading.
async fn every_migration_keeps_the_previous_release_working(backend: Backend) {
    let Some((url, _guard)) = fresh_db(backend).await else {
        return;
    };
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    let migrator = Migrator::new(dir).await.unwrap();
    let db = open(&url).await;
    let mut before = columns(&db).await;
    let mut problems = Vec::new();
    for migration in migrator.iter() {
        on_db!(&db, pool => migrator.run_to(migration.version, pool).await).unwrap();
        let after = columns(&db).await;
        problems.extend(
            contractions(&before, &after)
                .into_iter()
                .map(|p| format!("migration {}: {p}", migration.version)),
        );
        before = after;
    }
    assert!(!before.is_empty(), "the migrations made no tables");
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The check itself: it sees the contractions it is there to see.
#[test]
fn contractions_are_found() {
    let column = |data_type: &str, nullable: bool, has_default: bool| Column {
        data_type: data_type.to_owned(),
        nullable,
        has_default,
    };
    let key = |t: &str, c: &str| (t.to_owned(), c.to_owned());
    let before = BTreeMap::from([
        (key("clients", "id"), column("text", false, false)),
        (key("clients", "note"), column("text", true, false)),
        (key("clients", "size"), column("bigint", true, false)),
    ]);
    let mut after = before.clone();
    assert!(contractions(&before, &after).is_empty());
    after.insert(key("clients", "added"), column("text", true, false));
    after.insert(key("clients", "defaulted"), column("text", false, true));
    after.insert(key("new_table", "id"), column("text", false, false));
    assert!(contractions(&before, &after).is_empty(), "expansions pass");
    after.remove(&key("clients", "note"));
    after.insert(key("clients", "size"), column("text", true, false));
    after.insert(key("clients", "required"), column("text", false, false));
    let found = contractions(&before, &after);
    assert_eq!(found.len(), 3, "{found:?}");
    after = before.clone();
    after.insert(key("clients", "note"), column("text", false, false));
    assert_eq!(contractions(&before, &after).len(), 1);
}

/// A later release's migration: it expands the schema (a column, a table) and is
/// recorded under a version this binary does not know.
async fn apply_a_later_release(url: &DatabaseUrl) {
    let db = open(url).await;
    let statements = [
        "ALTER TABLE clients ADD COLUMN later_release_note TEXT",
        "CREATE TABLE later_release_things (id TEXT PRIMARY KEY)",
    ];
    let record = "INSERT INTO _sqlx_migrations \
                  (version, description, success, checksum, execution_time) \
                  VALUES ($1, 'a later release', $2, $3, 0)";
    let version: i64 = 99_990_101_000_000;
    on_db!(&db, pool => {
        for sql in statements {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        sqlx::query(record)
            .bind(version)
            .bind(true)
            .bind(vec![0u8; 48])
            .execute(pool)
            .await
            .unwrap();
        pool.close().await;
    });
}

/// After a later release migrated the database (a rolling update, then a rollback),
/// this release still runs: every CLI command, `migrate`, and `serve` with or without
/// `database.migrate_on_start`, which says what it found.
async fn a_database_a_later_release_migrated_still_serves(backend: Backend) {
    let Some((db, _guard)) = fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    run_json(dir, &db, &["migrate"]);
    apply_a_later_release(&db).await;

    let migrated = run_json(dir, &db, &["migrate"]);
    assert_eq!(migrated["migrated"], true);
    let (app_id, _) = binary::create_client(dir, &db, &[]);
    let (api_id, api_secret) =
        binary::create_client(dir, &db, &["--audience", "https://api.example"]);
    assert_eq!(
        run_json(dir, &db, &["client", "list"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let token = binary::issue_token(dir, &db, &app_id, &["--audience", "https://api.example"]);

    for migrate_on_start in ["true", "false"] {
        let mut cmd = command(dir, &db);
        cmd.env("INTROSPECTD_DATABASE__MIGRATE_ON_START", migrate_on_start);
        let server = Server::start_with(cmd);
        let (status, body) = introspect(server.addr, &api_id, &api_secret, &token).await;
        assert_eq!((status, &body["active"]), (200, &true.into()), "{body}");
        assert_eq!(
            http(server.addr, "GET", "/readyz", &[], "").await.status,
            200
        );
        let log = server.stop();
        assert!(
            log.contains("the database holds migrations of a later release"),
            "{log}"
        );
    }
}

/// With `database.migrate_on_start = false`, `serve` leaves the schema alone: it refuses
/// a database that lacks this release's migrations, with one line saying to run
/// `introspectd migrate`, and serves once that has run.
async fn serve_without_migrating_refuses_an_older_schema(backend: Backend) {
    let Some((db, _guard)) = fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let serve = || {
        let mut cmd = command(dir, &db);
        cmd.env("INTROSPECTD_DATABASE__MIGRATE_ON_START", "false");
        cmd
    };
    let output = binary::output_within_patience(serve().arg("serve"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ")
            && last.contains("database.migrate_on_start is false")
            && last.contains("run `introspectd migrate`"),
        "{stderr}"
    );
    let schema = match open(&db).await {
        Db::Postgres(pool) => {
            sqlx::query_scalar::<_, bool>("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        Db::Sqlite(pool) => sqlx::query_scalar::<_, bool>(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = '_sqlx_migrations'",
        )
        .fetch_one(&pool)
        .await
        .unwrap(),
    };
    assert!(!schema, "serve wrote no schema");

    run_json(dir, &db, &["migrate"]);
    let server = Server::start_with(serve());
    assert_eq!(
        http(server.addr, "GET", "/readyz", &[], "").await.status,
        200
    );
    server.stop();
}

both_backends!(
    every_migration_keeps_the_previous_release_working,
    a_database_a_later_release_migrated_still_serves,
    serve_without_migrating_refuses_an_older_schema,
);
