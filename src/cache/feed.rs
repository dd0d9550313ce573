//! How an instance learns of changes made by other processes, and whether its caches
//! are current enough to answer from.
//!
//! - Postgres: triggers NOTIFY every change on `introspectd_changes`. A listener applies
//!   them; a heartbeat this instance sends on the same channel comes back behind every
//!   change committed before it was sent, so once it is back the caches hold everything
//!   older than its send time. Caches are used only while the last heartbeat back was
//!   sent less than [`PG_BOUND`] ago; otherwise every lookup goes to the store. After the
//!   listener reconnects, the caches are cleared before they are trusted again.
//! - SQLite: triggers append to `change_log`. Each request first compares the WAL-index
//!   header, which SQLite rewrites on every commit, with the one last seen; when another
//!   process has written, the new log rows are applied before the request reads anything.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use super::StateCache;
use crate::store::{
    Change, ChangeListener, ChangeLog, ChangeSource, Notifications, Store, StoreError,
};

/// Caches are trusted until this long after the send time of the last heartbeat back:
/// under the one-second propagation bound, with room for processing.
const PG_BOUND: Duration = Duration::from_millis(900);
/// How often the heartbeat is sent.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(100);
/// Pause between reconnection attempts of the listener.
const RECONNECT_PAUSE: Duration = Duration::from_millis(250);
/// Log rows read at once; more than this and the caches are simply cleared.
const CATCH_UP_LIMIT: i64 = 1_000;

pub enum Feed {
    Postgres(PgFeed),
    Sqlite(SqliteFeed),
    /// An in-memory SQLite database: no other process can write to it.
    Private,
}

impl Feed {
    pub async fn start(store: &Store, cache: Arc<StateCache>) -> Result<Feed, StoreError> {
        match store.change_source().await? {
            ChangeSource::Notifications(channel) => {
                Ok(Feed::Postgres(PgFeed::start(channel, &cache)))
            }
            ChangeSource::Log(log) => Ok(Feed::Sqlite(SqliteFeed::open(log).await?)),
            ChangeSource::Private => Ok(Feed::Private),
        }
    }

    /// Whether the caches may serve the request starting now; for SQLite, first applies
    /// any changes other processes committed.
    pub async fn current(&self, cache: &StateCache) -> bool {
        match self {
            Feed::Postgres(feed) => feed.fresh(),
            Feed::Sqlite(feed) => feed.catch_up(cache).await,
            Feed::Private => true,
        }
    }
}

/// Reads a change as written by the triggers: kind and key.
fn parse_change(kind: &str, key: &str) -> Option<Change> {
    match kind {
        "client" => Some(Change::Client(key.to_owned())),
        "jti" => Some(Change::Jti(key.to_owned())),
        "keys" => Some(Change::Keys),
        "token" => parse_digest(key).map(Change::Token),
        "token_added" => parse_digest(key).map(Change::TokenAdded),
        "user" => Some(Change::User(key.to_owned())),
        _ => None,
    }
}

/// A digest as the triggers write it: 64 hex digits.
fn parse_digest(key: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    if key.len() != 64 {
        return None;
    }
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(key.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

fn apply(cache: &StateCache, kind: &str, key: &str) {
    match parse_change(kind, key) {
        Some(change) => cache.invalidate(&change),
        // Something we do not understand changed: forget everything rather than guess.
        None => cache.clear(),
    }
}

pub struct PgFeed {
    /// Nanoseconds after `base` until which the caches are current.
    fresh_until: Arc<AtomicU64>,
    base: Instant,
}

impl PgFeed {
    fn start(channel: Notifications, cache: &Arc<StateCache>) -> PgFeed {
        let base = Instant::now();
        let fresh_until = Arc::new(AtomicU64::new(0));
        let instance = crate::token::random_string(9);
        tokio::spawn(listen(
            channel.clone(),
            Arc::downgrade(cache),
            fresh_until.clone(),
            instance.clone(),
        ));
        tokio::spawn(heartbeat(channel, Arc::downgrade(cache), base, instance));
        PgFeed { fresh_until, base }
    }

    fn fresh(&self) -> bool {
        elapsed_nanos(self.base) < self.fresh_until.load(Ordering::Acquire)
    }
}

fn elapsed_nanos(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

async fn listen(
    channel: Notifications,
    cache: Weak<StateCache>,
    fresh_until: Arc<AtomicU64>,
    instance: String,
) {
    let heartbeat_prefix = format!("hb:{instance}:");
    let mut listener: Option<ChangeListener> = None;
    // Whether changes may have been missed since the caches were last cleared.
    let mut missed = true;
    loop {
        let Some(cache) = cache.upgrade() else {
            return;
        };
        let active = match listener.as_mut() {
            Some(active) => active,
            None => match channel.listen().await {
                Ok(fresh) => listener.insert(fresh),
                Err(err) => {
                    tracing::warn!(error = %err, "change feed unavailable; answering from the store");
                    drop(cache);
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        match active.next().await {
            Ok(Some(payload)) => {
                let payload = payload.as_str();
                if let Some(sent) = payload.strip_prefix(&heartbeat_prefix) {
                    if missed {
                        cache.clear();
                        missed = false;
                        tracing::info!("change feed connected; caches in use");
                    }
                    if let Ok(sent) = sent.parse::<u64>() {
                        let until = sent.saturating_add(PG_BOUND.as_nanos() as u64);
                        fresh_until.fetch_max(until, Ordering::AcqRel);
                    }
                } else if !payload.starts_with("hb:") {
                    let (kind, key) = payload.split_once(':').unwrap_or((payload, ""));
                    apply(&cache, kind, key);
                }
            }
            // The connection dropped; notifications sent meanwhile are lost.
            Ok(None) => {
                fresh_until.store(0, Ordering::Release);
                missed = true;
                tracing::warn!("change feed lost; answering from the store until it is back");
                drop(cache);
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
            Err(err) => {
                fresh_until.store(0, Ordering::Release);
                missed = true;
                listener = None;
                tracing::warn!(error = %err, "change feed failed; answering from the store");
                drop(cache);
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        }
    }
}

async fn heartbeat(
    channel: Notifications,
    cache: Weak<StateCache>,
    base: Instant,
    instance: String,
) {
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if cache.strong_count() == 0 {
            return;
        }
        // Taken before sending: every change committed before this instant is
        // delivered ahead of this heartbeat.
        let payload = format!("hb:{instance}:{}", elapsed_nanos(base));
        if let Err(err) = channel.notify(&payload).await {
            tracing::debug!(error = %err, "heartbeat not sent");
        }
    }
}

/// Bytes of the WAL-index header: change counter, last valid frame, salts and checksums
/// (SQLite's `WalIndexHdr`, the first of the two copies at the start of the `-shm` file).
const WAL_INDEX_HEADER: usize = 48;

/// What changes whenever any process commits to the SQLite database.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FileSignature {
    /// WAL mode: the WAL-index header and the inode of the `-shm` file holding it. The
    /// header changes with every commit, also when the WAL restarts from its beginning
    /// and keeps its length.
    WalIndex(u64, [u8; WAL_INDEX_HEADER]),
    /// No WAL index: the database file's inode, length and modification time.
    Database(Option<(u64, u64, i64, i64)>),
}

/// The files a signature is read from. The `-shm` file is held open, so that a request
/// costs two system calls and no path lookup.
struct DatabaseFiles {
    db: PathBuf,
    shm: PathBuf,
    held_shm: RwLock<Option<File>>,
}

impl DatabaseFiles {
    fn new(db: PathBuf) -> Self {
        let mut shm = db.clone().into_os_string();
        shm.push("-shm");
        DatabaseFiles {
            db,
            shm: PathBuf::from(shm),
            held_shm: RwLock::new(None),
        }
    }

    fn signature(&self) -> FileSignature {
        let held = self
            .held_shm
            .read()
            .ok()
            .and_then(|held| held.as_ref().and_then(wal_index));
        if let Some(signature) = held {
            return signature;
        }
        // Not held yet, or unlinked: the last connection closed and took it along.
        if let Ok(file) = File::open(&self.shm) {
            if let Some(signature) = wal_index(&file) {
                if let Ok(mut held) = self.held_shm.write() {
                    *held = Some(file);
                }
                return signature;
            }
        }
        FileSignature::Database(
            std::fs::metadata(&self.db)
                .ok()
                .map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec())),
        )
    }
}

/// The WAL-index signature of an open `-shm` file, unless it was unlinked or is too
/// short to hold a header.
fn wal_index(file: &File) -> Option<FileSignature> {
    let meta = file.metadata().ok()?;
    if meta.nlink() == 0 {
        return None;
    }
    let mut header = [0u8; WAL_INDEX_HEADER];
    file.read_exact_at(&mut header, 0).ok()?;
    Some(FileSignature::WalIndex(meta.ino(), header))
}

pub struct SqliteFeed {
    log: ChangeLog,
    files: DatabaseFiles,
    /// The file signature when the log was last read, and the last log row applied.
    seen: RwLock<(FileSignature, i64)>,
    /// One catch-up at a time.
    catching_up: tokio::sync::Mutex<()>,
}

impl SqliteFeed {
    async fn open(log: ChangeLog) -> Result<SqliteFeed, StoreError> {
        let files = DatabaseFiles::new(log.database_file().to_path_buf());
        let signature = files.signature();
        let version = log.newest().await?;
        Ok(SqliteFeed {
            log,
            files,
            seen: RwLock::new((signature, version)),
            catching_up: tokio::sync::Mutex::new(()),
        })
    }

    fn unchanged(&self, signature: &FileSignature) -> bool {
        self.seen
            .read()
            .map(|seen| seen.0 == *signature)
            .unwrap_or(false)
    }

    /// Applies changes committed since the last look; false when they could not be read,
    /// so the request must not use the caches.
    async fn catch_up(&self, cache: &StateCache) -> bool {
        let signature = self.files.signature();
        if self.unchanged(&signature) {
            return true;
        }
        let _one = self.catching_up.lock().await;
        // Read again: another request may have caught up while this one waited.
        let signature = self.files.signature();
        if self.unchanged(&signature) {
            return true;
        }
        let last = self.seen.read().map(|seen| seen.1).unwrap_or(0);
        let rows = match self.log.since(last, CATCH_UP_LIMIT).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the change log; answering from the store");
                return false;
            }
        };
        let contiguous = rows.first().is_none_or(|(v, _, _)| *v == last + 1);
        let newest = if contiguous && (rows.len() as i64) < CATCH_UP_LIMIT {
            for (_, kind, key) in &rows {
                apply(cache, kind, key);
            }
            rows.last().map_or(last, |(v, _, _)| *v)
        } else {
            // Rows were purged before this instance read them, or there are too many:
            // start over from an empty cache at the newest row.
            let Ok(newest) = self.log.newest().await else {
                return false;
            };
            cache.clear();
            newest
        };
        if let Ok(mut seen) = self.seen.write() {
            *seen = (signature, newest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_payloads_parse_into_changes() {
        assert_eq!(
            parse_change("client", "abc"),
            Some(Change::Client("abc".to_owned()))
        );
        assert_eq!(
            parse_change("jti", "j1"),
            Some(Change::Jti("j1".to_owned()))
        );
        assert_eq!(parse_change("keys", ""), Some(Change::Keys));
        assert_eq!(
            parse_change("user", "u1"),
            Some(Change::User("u1".to_owned()))
        );
        let hex = "00ff".repeat(16);
        let mut digest = [0u8; 32];
        for pair in digest.chunks_mut(2) {
            pair[1] = 0xff;
        }
        assert_eq!(parse_change("token", &hex), Some(Change::Token(digest)));
        assert_eq!(
            parse_change("token_added", &hex),
            Some(Change::TokenAdded(digest))
        );
        assert_eq!(parse_change("token", "zz"), None);
        assert_eq!(parse_change("mystery", "x"), None);
    }

    #[test]
    fn signature_follows_the_wal_index_and_a_replaced_shm_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::fs::write(&db, b"database").unwrap();
        let files = DatabaseFiles::new(db.clone());
        assert!(matches!(
            files.signature(),
            FileSignature::Database(Some(_))
        ));

        let shm = dir.path().join("x.db-shm");
        std::fs::write(&shm, [1u8; 2 * WAL_INDEX_HEADER]).unwrap();
        let first = files.signature();
        assert!(matches!(first, FileSignature::WalIndex(..)));
        assert_eq!(files.signature(), first);
        // A commit rewrites the header in place.
        std::fs::File::options()
            .write(true)
            .open(&shm)
            .unwrap()
            .write_all_at(&[2], 8)
            .unwrap();
        let second = files.signature();
        assert_ne!(second, first);
        // The last connection closed (unlinking it) and a new one made another file
        // with the same content; the held one keeps its inode number from being reused.
        std::fs::remove_file(&shm).unwrap();
        std::fs::write(&shm, [1u8; 2 * WAL_INDEX_HEADER]).unwrap();
        let third = files.signature();
        assert!(matches!(third, FileSignature::WalIndex(..)));
        assert_ne!(third, first);
    }

    #[test]
    fn an_unknown_change_clears_everything() {
        let cache = StateCache::new(16, 16, 16);
        let generation = cache.generation();
        cache.remember(&cache.revoked_jtis, generation, "a".to_owned(), false);
        apply(&cache, "mystery", "x");
        assert_eq!(cache.revoked_jtis.get("a"), None);
    }
}
