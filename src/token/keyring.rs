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

pub struct KeyRing {
    config: Arc<Config>,
    store: Store,
    current: RwLock<Arc<KeySet>>,
    /// The keys generation of the state cache the current set was loaded at.
    loaded: AtomicU64,
    reloading: tokio::sync::Mutex<()>,
    /// Claims of JWTs whose signature and issuer verified, by SHA-256 of the token.
    verified: Cache<[u8; 32], Arc<AccessClaims>>,
}

impl KeyRing {
    pub async fn load(
        config: Arc<Config>,
        store: Store,
        generation: u64,
    ) -> Result<Self, KeyError> {
        let set = KeySet::load(&config, &store).await?;
        Ok(KeyRing {
            verified: Cache::new(config.cache.capacity.max(16)),
            current: RwLock::new(Arc::new(set)),
            loaded: AtomicU64::new(generation),
            reloading: tokio::sync::Mutex::new(()),
            config,
            store,
        })
    }

    /// The key set as last loaded: for signing and for answers that need no store.
    pub fn keys(&self) -> Arc<KeySet> {
        self.current
            .read()
            .map(|set| set.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Verifies a JWT's header, signature and issuer, from the cache when it verified
    /// before under the same keys. Times are the caller's to check.
    pub async fn verify(
        &self,
        view: &View<'_>,
        token: &str,
    ) -> Result<Arc<AccessClaims>, JwtRejection> {
        self.reload_if_changed(view.keys_generation()).await;
        let digest = opaque::digest(token);
        if view.cached() {
            if let Some(claims) = self.verified.get(&digest) {
                return Ok(claims);
            }
        }
        let claims = Arc::new(self.keys().verify_ignoring_time(token)?);
        self.verified.insert(digest, claims.clone());
        Ok(claims)
    }

    async fn reload_if_changed(&self, generation: u64) {
        if self.loaded.load(Ordering::Acquire) == generation {
            return;
        }
        let _one = self.reloading.lock().await;
        if self.loaded.load(Ordering::Acquire) == generation {
            return;
        }
        match KeySet::load(&self.config, &self.store).await {
            Ok(set) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(set);
                }
                self.verified.clear();
                self.loaded.store(generation, Ordering::Release);
                tracing::info!("signing keys reloaded");
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot reload signing keys; keeping the loaded ones")
            }
        }
    }
}
