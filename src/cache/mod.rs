//! Cached store state: client records, users, opaque token records, JWT revocations and
//! the digests of every opaque token, kept only while the change feed proves them current.
//!
//! Writes made by this process invalidate at once (through the store's change sink);
//! writes made elsewhere arrive through the feed (Postgres LISTEN/NOTIFY, or the SQLite
//! change log). While the feed cannot vouch for the caches, every lookup goes to the
//! store: stale state is never served.

mod feed;
mod known;

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::sync::Cache;

use crate::config::CacheConfig;
use crate::store::{Change, ChangeSink, ClientRecord, Store, StoreError, TokenRecord, UserRecord};
pub use feed::Feed;
use known::{KnownSet, Snapshot};

/// Digests read from the store per query while the token digests are loaded.
const DIGEST_PAGE: usize = 10_000;

/// What the set of opaque token digests keeps of a digest: its first eight bytes. A
/// SHA-256 prefix is as uniform as the digest, so a stranger's digest matches a stored
/// one by chance with odds of n in 2^64; a match only means the store is asked.
fn digest_prefix(digest: &[u8; 32]) -> u64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(prefix)
}

/// A bounded map whose entries are dropped by invalidation.
type Table<K, V> = Cache<K, V>;

/// A cache of `cache.capacity` entries, and never fewer than 16.
pub fn table<K: Eq + Hash + Clone, V: Clone>(capacity: usize) -> Cache<K, V> {
    Cache::new(capacity.max(16))
}

/// The caches of store state, with the generation that guards them against races
/// between a lookup and an invalidation.
pub struct StateCache {
    clients: Table<String, Option<Arc<ClientRecord>>>,
    /// The JWK Sets of `private_key_jwt` clients; a change to one is announced as a
    /// change to its client.
    client_jwks: Table<String, Option<Arc<str>>>,
    users: Table<String, Option<Arc<UserRecord>>>,
    /// Known tokens only: `None` is never kept.
    tokens: Table<[u8; 32], Option<Arc<TokenRecord>>>,
    revoked_jtis: Table<String, bool>,
    /// Every revoked JWT id, when it fits: answers for tokens never seen before.
    revoked: KnownSet<String>,
    /// Every opaque token digest the store holds (by prefix), when it fits: an unknown
    /// token is answered without a store lookup, as fast as a cached one.
    token_digests: KnownSet<u64>,
    /// Bumped before every invalidation; a lookup stores what it read only if no
    /// invalidation happened since it began.
    generation: AtomicU64,
    /// Bumped when the stored signing keys may have changed.
    keys_generation: AtomicU64,
}

impl StateCache {
    pub fn new(capacity: usize, max_revocations: usize, max_opaque_tokens: usize) -> Self {
        StateCache {
            clients: table(capacity),
            client_jwks: table(capacity),
            users: table(capacity),
            tokens: table(capacity),
            revoked_jtis: table(capacity),
            revoked: KnownSet::new(max_revocations),
            token_digests: KnownSet::new(max_opaque_tokens),
            generation: AtomicU64::new(0),
            keys_generation: AtomicU64::new(0),
        }
    }

    /// Forgets whatever `change` may have made stale.
    pub fn invalidate(&self, change: &Change) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        match change {
            Change::Client(id) => {
                self.clients.remove(id);
                self.client_jwks.remove(id);
            }
            Change::Token(digest) => {
                self.tokens.remove(digest);
            }
            Change::TokenAdded(digest) => {
                self.token_digests.add(digest_prefix(digest));
            }
            Change::Jti(jti) => {
                self.revoked.add(jti.clone());
                self.revoked_jtis.remove(jti);
            }
            Change::Keys => {
                self.keys_generation.fetch_add(1, Ordering::SeqCst);
            }
            Change::User(id) => {
                self.users.remove(id);
            }
        }
    }

    /// Hits and misses of each cache since start-up, by cache name.
    pub fn stats(&self) -> [(&'static str, u64, u64); 3] {
        [
            ("clients", self.clients.hits(), self.clients.misses()),
            ("tokens", self.tokens.hits(), self.tokens.misses()),
            (
                "revoked_jtis",
                self.revoked_jtis.hits(),
                self.revoked_jtis.misses(),
            ),
        ]
    }

    /// Forgets everything, when changes may have been missed.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.keys_generation.fetch_add(1, Ordering::SeqCst);
        self.clients.clear();
        self.client_jwks.clear();
        self.users.clear();
        self.tokens.clear();
        self.revoked_jtis.clear();
        self.revoked.forget();
        self.token_digests.forget();
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Stores a value read at `generation`, and takes it back if an invalidation
    /// raced with the read.
    fn remember<K: Eq + Hash + Clone, V: Clone>(
        &self,
        table: &Table<K, V>,
        generation: u64,
        key: K,
        value: V,
    ) {
        if self.generation() != generation {
            return;
        }
        table.insert(key.clone(), value);
        if self.generation() != generation {
            table.remove(&key);
        }
    }
}

impl ChangeSink for StateCache {
    fn changed(&self, change: &Change) {
        self.invalidate(change);
    }
}

/// Store reads through the caches. Cheap to clone.
#[derive(Clone)]
pub struct Directory {
    store: Store,
    cache: Arc<StateCache>,
    feed: Arc<Feed>,
}

/// One request's view of the store: whether the caches may be used is decided once,
/// when the request begins. Owns a handle to the directory, so it can outlive the borrow
/// it was made from.
pub struct View {
    directory: Directory,
    cached: bool,
}

impl Directory {
    /// Wraps `store` with caches and starts the change feed and the first read of the
    /// revoked JWT ids.
    pub async fn start(store: Store, config: &CacheConfig) -> Result<Self, StoreError> {
        let cache = Arc::new(StateCache::new(
            config.capacity,
            config.max_revocations,
            config.max_opaque_tokens,
        ));
        store.set_change_sink(cache.clone());
        let feed = Feed::start(&store, cache.clone()).await?;
        let directory = Directory {
            store,
            cache,
            feed: Arc::new(feed),
        };
        directory.refresh_known_sets();
        Ok(directory)
    }

    /// Reads the revoked JWT ids and the opaque token digests again (see
    /// [`Directory::refresh_revocations`], [`Directory::refresh_token_digests`]).
    pub fn refresh_known_sets(&self) {
        self.refresh_revocations();
        self.refresh_token_digests();
    }

    /// Reads every opaque token digest from the store in the background, page by page,
    /// unless a read is under way; the set in use keeps answering meanwhile. Tokens added
    /// while it reads arrive through the feed; tokens deleted meanwhile may stay, which
    /// only costs a store lookup.
    pub fn refresh_token_digests(&self) {
        if !self.cache.token_digests.begin() {
            return;
        }
        let (store, cache) = (self.store.clone(), self.cache.clone());
        tokio::spawn(async move {
            let max = cache.token_digests.max();
            let mut digests = std::collections::HashSet::new();
            let mut after = None;
            let snapshot = loop {
                match store.token_digests(after.as_ref(), DIGEST_PAGE).await {
                    Ok(page) => {
                        digests.extend(page.iter().map(digest_prefix));
                        if digests.len() > max {
                            tracing::warn!(
                                max,
                                "more opaque tokens than cache.max_opaque_tokens; asking the store for unknown ones"
                            );
                            break Snapshot::TooLarge;
                        }
                        match page.last() {
                            Some(last) if page.len() == DIGEST_PAGE => after = Some(*last),
                            _ => break Snapshot::Read(digests),
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read the opaque token digests");
                        break Snapshot::Failed;
                    }
                }
            };
            cache.token_digests.finish(snapshot);
        });
    }

    /// Reads every revoked JWT id from the store in the background, unless a read is
    /// under way; the set in use keeps answering meanwhile. Also drops expired ids.
    pub fn refresh_revocations(&self) {
        if !self.cache.revoked.begin() {
            return;
        }
        let (store, cache) = (self.store.clone(), self.cache.clone());
        tokio::spawn(async move {
            let limit = cache.revoked.max().saturating_add(1);
            let snapshot = match store.revoked_jti_ids(limit).await {
                Ok(ids) if ids.len() >= limit => {
                    tracing::warn!(
                        max = cache.revoked.max(),
                        "more revoked JWT ids than cache.max_revocations; asking the store each time"
                    );
                    Snapshot::TooLarge
                }
                Ok(ids) => Snapshot::Read(ids.into_iter().collect()),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the revoked JWT ids");
                    Snapshot::Failed
                }
            };
            cache.revoked.finish(snapshot);
        });
    }

    /// Whether every opaque token digest of the store is held in memory, so unknown
    /// tokens are answered without a lookup.
    pub fn token_digests_loaded(&self) -> bool {
        self.cache.token_digests.contains(&0).is_some()
    }

    /// The store behind the caches: the one path the service takes to it.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Changes whenever the stored signing keys may have changed.
    pub fn keys_generation(&self) -> u64 {
        self.cache.keys_generation.load(Ordering::SeqCst)
    }

    /// Hits and misses of the state caches, by cache name.
    pub fn cache_stats(&self) -> [(&'static str, u64, u64); 3] {
        self.cache.stats()
    }

    /// Brings the caches up to date with changes made elsewhere, then decides whether
    /// this request may use them.
    pub async fn view(&self) -> View {
        let cached = self.feed.current(&self.cache).await;
        View {
            directory: self.clone(),
            cached,
        }
    }
}

impl View {
    /// Whether this request is served from the caches (false: straight from the store).
    pub fn cached(&self) -> bool {
        self.cached
    }

    /// Changes whenever the stored signing keys may have changed.
    pub fn keys_generation(&self) -> u64 {
        self.directory.keys_generation()
    }

    /// The read-through every lookup shares. When this request may use the caches: an
    /// entry of `table`, else whatever `known` answers without the store. Otherwise the
    /// store's answer from `read`, kept in `table` when `keep` says so and no
    /// invalidation raced with the read.
    async fn read_through<K, Q, V, F>(
        &self,
        table: &Table<K, V>,
        key: &Q,
        known: impl FnOnce() -> Option<V>,
        read: impl FnOnce() -> F,
        keep: fn(&V) -> bool,
    ) -> Result<V, StoreError>
    where
        K: Eq + Hash + Clone + Borrow<Q>,
        Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
        V: Clone,
        F: Future<Output = Result<V, StoreError>>,
    {
        let cache = &self.directory.cache;
        if self.cached {
            if let Some(found) = table.get(key) {
                return Ok(found);
            }
            if let Some(found) = known() {
                return Ok(found);
            }
        }
        // Taken before the read begins: an invalidation during the read is noticed.
        let generation = cache.generation();
        let found = read().await?;
        if self.cached && keep(&found) {
            cache.remember(table, generation, key.to_owned(), found.clone());
        }
        Ok(found)
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError> {
        let store = &self.directory.store;
        let read = || async { Ok(store.client_by_id(client_id).await?.map(Arc::new)) };
        let cache = &self.directory.cache;
        self.read_through(&cache.clients, client_id, || None, read, |_| true)
            .await
    }

    /// The JWK Set a `private_key_jwt` client registered, if any.
    pub async fn client_jwks(&self, client_id: &str) -> Result<Option<Arc<str>>, StoreError> {
        let store = &self.directory.store;
        let read = || async { Ok(store.client_jwks(client_id).await?.map(Arc::from)) };
        let cache = &self.directory.cache;
        self.read_through(&cache.client_jwks, client_id, || None, read, |_| true)
            .await
    }

    /// A user by id, as the store has it now (a disabled or deleted user reaches every
    /// instance through the change feed, like a client).
    pub async fn user(&self, user_id: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        let store = &self.directory.store;
        let read = || async { Ok(store.user_by_id(user_id).await?.map(Arc::new)) };
        let cache = &self.directory.cache;
        self.read_through(&cache.users, user_id, || None, read, |_| true)
            .await
    }

    /// An opaque token by digest. Unknown digests are not cached: a token may be minted
    /// at any moment. A digest absent from the complete set of stored digests is
    /// unknown without asking the store, so unknown tokens answer as fast as cached ones.
    pub async fn token(&self, digest: &[u8; 32]) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        let store = &self.directory.store;
        let read = || async { Ok(store.token_by_digest(digest).await?.map(Arc::new)) };
        let cache = &self.directory.cache;
        let known = || match cache.token_digests.contains(&digest_prefix(digest)) {
            Some(false) => Some(None),
            Some(true) => None,
            // Lost with the change feed, or never read: read it again.
            None => {
                if cache.token_digests.wanted() {
                    self.directory.refresh_token_digests();
                }
                None
            }
        };
        self.read_through(&cache.tokens, digest, known, read, Option::is_some)
            .await
    }

    pub async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let cache = &self.directory.cache;
        if self.cached {
            // The set of every revoked id answers before the table is consulted.
            match cache.revoked.contains(jti) {
                Some(revoked) => return Ok(revoked),
                // Lost with the change feed, or never read: read it again.
                None if cache.revoked.wanted() => self.directory.refresh_revocations(),
                None => {}
            }
        }
        let store = &self.directory.store;
        let read = || store.is_jti_revoked(jti);
        self.read_through(&cache.revoked_jtis, jti, || None, read, |_| true)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_kept() {
        let cache = StateCache::new(16, 16, 16);
        let before = cache.generation();
        cache.invalidate(&Change::Jti("j".to_owned()));
        cache.remember(&cache.revoked_jtis, before, "j".to_owned(), false);
        assert_eq!(cache.revoked_jtis.get("j"), None);
    }

    #[test]
    fn new_tokens_join_the_digest_set_and_a_loss_forgets_it() {
        let cache = StateCache::new(16, 16, 16);
        let (old, new) = ([1u8; 32], [2u8; 32]);
        assert!(cache.token_digests.begin());
        cache
            .token_digests
            .finish(Snapshot::Read([digest_prefix(&old)].into()));
        assert_eq!(
            cache.token_digests.contains(&digest_prefix(&new)),
            Some(false)
        );
        cache.invalidate(&Change::TokenAdded(new));
        assert_eq!(
            cache.token_digests.contains(&digest_prefix(&new)),
            Some(true)
        );
        assert_eq!(
            cache.token_digests.contains(&digest_prefix(&old)),
            Some(true)
        );
        cache.clear();
        assert_eq!(cache.token_digests.contains(&digest_prefix(&old)), None);
    }

    #[test]
    fn a_user_change_forgets_that_user_only() {
        let cache = StateCache::new(16, 16, 16);
        let generation = cache.generation();
        cache.remember(&cache.users, generation, "u1".to_owned(), None);
        cache.remember(&cache.users, generation, "u2".to_owned(), None);
        cache.invalidate(&Change::User("u1".to_owned()));
        assert!(cache.users.get("u1").is_none());
        assert!(cache.users.get("u2").is_some());
        cache.clear();
        assert!(cache.users.get("u2").is_none());
    }

    #[test]
    fn invalidation_forgets_the_named_entry_only() {
        let cache = StateCache::new(16, 16, 16);
        let generation = cache.generation();
        cache.remember(&cache.revoked_jtis, generation, "a".to_owned(), false);
        cache.remember(&cache.revoked_jtis, generation, "b".to_owned(), false);
        cache.invalidate(&Change::Jti("a".to_owned()));
        assert_eq!(cache.revoked_jtis.get("a"), None);
        assert_eq!(cache.revoked_jtis.get("b"), Some(false));
        cache.clear();
        assert_eq!(cache.revoked_jtis.get("b"), None);
    }
}
