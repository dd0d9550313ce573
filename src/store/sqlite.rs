//! Embedded SQLite: the default store, created on first use.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;
use crate::private_files;

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

/// What an operator should change when SQLite could not open or write the database at
/// `path`, said with the path; `None` when `err` is not a matter of access. SQLite's own
/// words (`code: 1544`, "attempt to write a readonly database") name neither the file
/// nor the fix.
pub fn access_problem(path: &Path, err: &StoreError) -> Option<String> {
    let sqlx_error = match err {
        StoreError::Unavailable(e) | StoreError::Database(e) => e,
        StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => e,
        _ => return None,
    };
    let cause = match sqlx_error {
        sqlx::Error::Io(io) => AccessCause::Io(io.kind()),
        sqlx::Error::Database(db) => AccessCause::Code(db.code()?.parse().ok()?),
        _ => return None,
    };
    explain_access(path, cause)
}

/// Why SQLite could not use a database file: an I/O error of this process, or SQLite's
/// (extended) result code.
#[derive(Clone, Copy, Debug)]
enum AccessCause {
    Io(std::io::ErrorKind),
    Code(i64),
}

fn explain_access(path: &Path, cause: AccessCause) -> Option<String> {
    use std::io::ErrorKind;
    let file = path.display();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = dir.display();
    let advice = "fix the owner or mode (chown, chmod) for the user introspectd runs as, \
                  or point database_url elsewhere";
    Some(match cause {
        // SQLITE_READONLY_DIRECTORY: no journal or -wal file can be made beside it.
        AccessCause::Code(1544) => format!(
            "SQLite cannot write in the directory {dir}, which holds the database {file} \
             and must also hold its -wal and -shm files: {advice}"
        ),
        // SQLITE_READONLY and its other extended codes.
        AccessCause::Code(code) if code & 0xff == 8 => format!(
            "SQLite may only read the database {file} (or its -wal and -shm files beside \
             it): make them writable, {advice}"
        ),
        // SQLITE_CANTOPEN.
        AccessCause::Code(code) if code & 0xff == 14 => format!(
            "SQLite cannot open the database {file}: the directory {dir} must exist and be \
             readable and writable, {advice}"
        ),
        AccessCause::Io(ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem) => {
            format!("permission denied on the database {file} or its directory {dir}: {advice}")
        }
        AccessCause::Io(ErrorKind::NotADirectory) => {
            format!("cannot create the database {file}: a part of {dir} is not a directory")
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_problems_name_the_path_and_the_fix() {
        let path = Path::new("/srv/data/introspectd.db");
        for (cause, says) in [
            (AccessCause::Code(1544), "directory /srv/data"),
            (
                AccessCause::Code(8),
                "may only read the database /srv/data/introspectd.db",
            ),
            (AccessCause::Code(1032), "may only read"),
            (
                AccessCause::Code(14),
                "cannot open the database /srv/data/introspectd.db",
            ),
            (
                AccessCause::Io(std::io::ErrorKind::PermissionDenied),
                "permission denied on the database /srv/data/introspectd.db",
            ),
        ] {
            let text = explain_access(path, cause).unwrap();
            assert!(text.contains(says), "{cause:?}: {text}");
        }
        assert_eq!(explain_access(path, AccessCause::Code(19)), None);
        assert_eq!(
            explain_access(path, AccessCause::Io(std::io::ErrorKind::TimedOut)),
            None
        );
    }
}
