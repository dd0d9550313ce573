//! The signing keys the service generated for itself.

use std::fmt;

use super::{Change, Store, StoreError};

/// A signing key the service generated for itself. It is published and verifies from
/// its creation, and signs from `activates_at` until a key activated later takes over.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    /// The private key: PKCS#8 DER when `encryption` is `None` (as generated, or stored
    /// before keys were encrypted), else sealed by the key-encryption key.
    pub private_key: Vec<u8>,
    /// How `private_key` is sealed (`A256GCM:` and the key-encryption key's id).
    pub encryption: Option<String>,
    pub created_at: i64,
    pub activates_at: i64,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private_key", &"[redacted]")
            .field("encryption", &self.encryption)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    private_der: Vec<u8>,
    encryption: Option<String>,
    created_at: i64,
    activates_at: i64,
}

impl Store {
    /// Stores a generated key unless one with that kid exists.
    pub async fn insert_signing_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let sql = "INSERT INTO signing_keys \
                   (kid, alg, private_der, encryption, created_at, activates_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kid) DO NOTHING";
        execute!(
            self,
            sql,
            &key.kid,
            &key.alg,
            &key.private_key,
            &key.encryption,
            key.created_at,
            key.activates_at
        )?;
        self.changed(Change::Keys);
        Ok(())
    }

    /// Generated keys, by activation, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let sql = "SELECT kid, alg, private_der, encryption, created_at, activates_at \
                   FROM signing_keys ORDER BY activates_at, created_at, kid";
        let rows = on_pool!(self, pool => sqlx::query_as::<_, KeyRow>(sql)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|r| StoredKey {
                kid: r.kid,
                alg: r.alg,
                private_key: r.private_der,
                encryption: r.encryption,
                created_at: r.created_at,
                activates_at: r.activates_at,
            })
            .collect())
    }

    /// Replaces a key stored in plain PKCS#8 by its sealed form; false when the key is
    /// gone or another process sealed it first.
    pub async fn seal_signing_key(&self, sealed: &StoredKey) -> Result<bool, StoreError> {
        let sql = "UPDATE signing_keys SET private_der = $1, encryption = $2 \
                   WHERE kid = $3 AND encryption IS NULL";
        let done = execute!(
            self,
            sql,
            &sealed.private_key,
            &sealed.encryption,
            &sealed.kid
        )?;
        self.changed(Change::Keys);
        Ok(done == 1)
    }

    /// Sets when a key begins to sign; false when there is no such key.
    pub async fn activate_signing_key(&self, kid: &str, at: i64) -> Result<bool, StoreError> {
        let sql = "UPDATE signing_keys SET activates_at = $1 WHERE kid = $2";
        let done = execute!(self, sql, at, kid)?;
        self.changed(Change::Keys);
        Ok(done == 1)
    }

    /// Deletes a generated signing key; false when there is no such key.
    pub async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError> {
        let done = execute!(self, "DELETE FROM signing_keys WHERE kid = $1", kid)?;
        self.changed(Change::Keys);
        Ok(done == 1)
    }
}

/// A secret of the service kept in the store sealed by the key-encryption key (the
/// sign-in key), by name.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub name: String,
    pub sealed: Vec<u8>,
    /// How `sealed` is sealed (`A256GCM:` and the key-encryption key's id).
    pub encryption: String,
    pub created_at: i64,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("name", &self.name)
            .field("encryption", &self.encryption)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct SecretRow {
    name: String,
    sealed: Vec<u8>,
    encryption: String,
    created_at: i64,
}

impl From<SecretRow> for SealedSecret {
    fn from(r: SecretRow) -> Self {
        SealedSecret {
            name: r.name,
            sealed: r.sealed,
            encryption: r.encryption,
            created_at: r.created_at,
        }
    }
}

impl Store {
    /// The sealed secret of that name, if one was stored.
    pub async fn sealed_secret(&self, name: &str) -> Result<Option<SealedSecret>, StoreError> {
        let sql = "SELECT name, sealed, encryption, created_at FROM signin_keys WHERE name = $1";
        let row = on_pool!(self, pool => sqlx::query_as::<_, SecretRow>(sql)
            .bind(name)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(SealedSecret::from))
    }

    /// Stores a sealed secret unless one of that name exists (another instance may have
    /// stored it first; read it back to use the one that won).
    pub async fn insert_sealed_secret(&self, secret: &SealedSecret) -> Result<(), StoreError> {
        let sql = "INSERT INTO signin_keys (name, sealed, encryption, created_at) \
                   VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING";
        execute!(
            self,
            sql,
            &secret.name,
            &secret.sealed,
            &secret.encryption,
            secret.created_at
        )?;
        Ok(())
    }
}

/// Every sealed key rewritten at once (`keys reseal`): keys sealed anew, keys discarded
/// (their key-encryption key is lost), keys generated in their place.
#[derive(Debug, Default)]
pub struct Reseal {
    /// The `encryption` label every key carries afterwards.
    pub label: String,
    pub resealed: Vec<StoredKey>,
    pub discarded: Vec<String>,
    pub generated: Vec<StoredKey>,
    pub secrets_resealed: Vec<SealedSecret>,
    pub secrets_discarded: Vec<String>,
}

impl Store {
    /// Writes a [`Reseal`] in one transaction, which fails (and changes nothing) when a
    /// key or secret not sealed under `label` would remain: one was added meanwhile.
    pub async fn reseal_keys(&self, reseal: &Reseal) -> Result<bool, StoreError> {
        let update = "UPDATE signing_keys SET private_der = $1, encryption = $2 WHERE kid = $3";
        let delete = "DELETE FROM signing_keys WHERE kid = $1";
        let insert = "INSERT INTO signing_keys \
                      (kid, alg, private_der, encryption, created_at, activates_at) \
                      VALUES ($1, $2, $3, $4, $5, $6)";
        let update_secret = "UPDATE signin_keys SET sealed = $1, encryption = $2 WHERE name = $3";
        let delete_secret = "DELETE FROM signin_keys WHERE name = $1";
        let left = "SELECT (SELECT COUNT(*) FROM signing_keys \
                            WHERE encryption IS NULL OR encryption <> $1) \
                         + (SELECT COUNT(*) FROM signin_keys WHERE encryption <> $1)";
        let done = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for key in &reseal.resealed {
                sqlx::query(update)
                    .bind(&key.private_key)
                    .bind(&key.encryption)
                    .bind(&key.kid)
                    .execute(&mut *tx)
                    .await?;
            }
            for kid in &reseal.discarded {
                sqlx::query(delete).bind(kid).execute(&mut *tx).await?;
            }
            for key in &reseal.generated {
                sqlx::query(insert)
                    .bind(&key.kid)
                    .bind(&key.alg)
                    .bind(&key.private_key)
                    .bind(&key.encryption)
                    .bind(key.created_at)
                    .bind(key.activates_at)
                    .execute(&mut *tx)
                    .await?;
            }
            for secret in &reseal.secrets_resealed {
                sqlx::query(update_secret)
                    .bind(&secret.sealed)
                    .bind(&secret.encryption)
                    .bind(&secret.name)
                    .execute(&mut *tx)
                    .await?;
            }
            for name in &reseal.secrets_discarded {
                sqlx::query(delete_secret).bind(name).execute(&mut *tx).await?;
            }
            let left: i64 = sqlx::query_scalar(left)
                .bind(&reseal.label)
                .fetch_one(&mut *tx)
                .await?;
            if left == 0 {
                tx.commit().await?;
            }
            left == 0
        });
        if done {
            self.changed(Change::Keys);
        }
        Ok(done)
    }

    /// Every sealed secret (the sign-in key), by name.
    pub async fn sealed_secrets(&self) -> Result<Vec<SealedSecret>, StoreError> {
        let sql = "SELECT name, sealed, encryption, created_at FROM signin_keys ORDER BY name";
        let rows = on_pool!(self, pool => sqlx::query_as::<_, SecretRow>(sql)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(SealedSecret::from).collect())
    }
}
