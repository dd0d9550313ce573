//! The key set in use, reloaded when the stored keys change, and the cache of JWTs
//! whose signature already verified under it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use quick_cache::sync::Cache;

use super::claims::AccessClaims;
use super::jwt::{JwtRejection, KeyError, KeySet};
use super::kek::{self, KeyEncryptionKey, Origin};
use super::opaque;
use crate::config::Config;
use crate::store::Store;

/// A key set and the keys generation of the state cache it was loaded at.
type Loaded = (u64, Arc<KeySet>);

pub struct KeyRing {
    config: Arc<Config>,
    store: Store,
    /// Resolved once, so every reload opens the stored keys with the same key.
    kek: Option<KeyEncryptionKey>,
    loaded: RwLock<Loaded>,
    /// Generation of the set in `loaded`, readable without the lock.
    generation: AtomicU64,
    reloading: tokio::sync::Mutex<()>,
    /// Claims of JWTs whose signature and issuer verified, by SHA-256 of the token,
    /// with the generation of the keys that verified them.
    verified: Cache<[u8; 32], (u64, Arc<AccessClaims>)>,
}

impl KeyRing {
    pub async fn load(
        config: Arc<Config>,
        store: Store,
        generation: u64,
    ) -> Result<Self, KeyError> {
        let kek = kek::resolve(&config)?;
        if let Some(kek) = &kek {
            announce(kek, config.database_url.is_postgres());
        }
        let set = KeySet::load_with(&config, &store, kek.as_ref()).await?;
        Ok(KeyRing {
            kek,
            // Sized like the state caches, and never below 16 entries.
            verified: Cache::new(config.cache.capacity.max(16)),
            loaded: RwLock::new((generation, Arc::new(set))),
            generation: AtomicU64::new(generation),
            reloading: tokio::sync::Mutex::new(()),
            config,
            store,
        })
    }

    fn loaded(&self) -> Loaded {
        self.loaded
            .read()
            .map(|loaded| loaded.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The key set as last loaded, for work that has no request view.
    pub fn keys(&self) -> Arc<KeySet> {
        self.loaded().1
    }

    /// The key set, reloaded first if the stored keys changed since it was loaded
    /// (`keys_generation` comes from the caller's view of the store's changes).
    pub async fn current(&self, keys_generation: u64) -> Arc<KeySet> {
        self.reload_if_changed(keys_generation).await;
        self.keys()
    }

    /// Verifies a JWT's header, signature and issuer, from the cache when it verified
    /// before under the same keys and `cached` allows it. Times are the caller's to check.
    pub async fn verify(
        &self,
        keys_generation: u64,
        cached: bool,
        token: &str,
    ) -> Result<Arc<AccessClaims>, JwtRejection> {
        self.reload_if_changed(keys_generation).await;
        let (generation, keys) = self.loaded();
        let digest = opaque::digest(token);
        if cached {
            if let Some((verified_at, claims)) = self.verified.get(&digest) {
                if verified_at == generation {
                    return Ok(claims);
                }
            }
        }
        let claims = Arc::new(keys.verify_ignoring_time(token)?);
        self.verified.insert(digest, (generation, claims.clone()));
        Ok(claims)
    }

    /// Hits and misses of the verified-JWT cache since start-up.
    pub fn cache_stats(&self) -> (u64, u64) {
        (self.verified.hits(), self.verified.misses())
    }

    async fn reload_if_changed(&self, generation: u64) {
        if self.generation.load(Ordering::Acquire) == generation {
            return;
        }
        let _one = self.reloading.lock().await;
        if self.generation.load(Ordering::Acquire) == generation {
            return;
        }
        match KeySet::load_with(&self.config, &self.store, self.kek.as_ref()).await {
            Ok(set) => {
                if let Ok(mut loaded) = self.loaded.write() {
                    *loaded = (generation, Arc::new(set));
                }
                self.generation.store(generation, Ordering::Release);
                tracing::info!("signing keys reloaded");
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot reload signing keys; keeping the loaded ones");
            }
        }
    }
}

/// Says at start-up where the key that encrypts the stored signing keys is kept (never
/// the key itself).
fn announce(kek: &KeyEncryptionKey, shared_store: bool) {
    let id = kek.id();
    match kek.origin() {
        Origin::Env(name) => {
            tracing::info!(
                kek_id = id,
                "stored signing keys are encrypted with the key in {name}"
            );
        }
        Origin::File { path, created } => {
            let path = path.display();
            let verb = if *created { "generated" } else { "kept" };
            if shared_store {
                tracing::info!(
                    kek_id = id,
                    "stored signing keys are encrypted with the key in {path}; every \
                     instance sharing this database needs the same key"
                );
            } else {
                tracing::info!(
                    kek_id = id,
                    "stored signing keys are encrypted with the key {verb} in {path} (mode \
                     0600); back it up with the database, or set jwt.key_encryption_key_env"
                );
            }
        }
        Origin::Ephemeral => {
            tracing::info!(
                kek_id = id,
                "in-memory store: its signing keys are encrypted with a key held in memory"
            );
        }
    }
}
