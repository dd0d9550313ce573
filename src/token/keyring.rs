//! The key set in use, reloaded when the stored keys change, and the cache of JWTs
//! whose signature already verified under it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use quick_cache::sync::Cache;

use super::claims::AccessClaims;
use super::jwt::{JwtRejection, KeyError, KeySet};
use super::opaque;
use crate::cache::View;
use crate::config::Config;
use crate::store::Store;

/// A key set and the keys generation of the state cache it was loaded at.
type Loaded = (u64, Arc<KeySet>);

pub struct KeyRing {
    config: Arc<Config>,
    store: Store,
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
        let set = KeySet::load(&config, &store).await?;
        Ok(KeyRing {
            verified: crate::cache::table(config.cache.capacity),
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

    /// The key set, reloaded first if the stored keys changed since it was loaded.
    pub async fn current(&self, view: &View<'_>) -> Arc<KeySet> {
        self.reload_if_changed(view.keys_generation()).await;
        self.keys()
    }

    /// Verifies a JWT's header, signature and issuer, from the cache when it verified
    /// before under the same keys. Times are the caller's to check.
    pub async fn verify(
        &self,
        view: &View<'_>,
        token: &str,
    ) -> Result<Arc<AccessClaims>, JwtRejection> {
        self.reload_if_changed(view.keys_generation()).await;
        let (generation, keys) = self.loaded();
        let digest = opaque::digest(token);
        if view.cached() {
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
        match KeySet::load(&self.config, &self.store).await {
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
