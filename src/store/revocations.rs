//! Revocation: of opaque tokens, of JWT ids, of whole grants; and forgetting what
//! expired.

use super::{Change, Store, StoreError};

impl Store {
    /// Marks an opaque token revoked; false when no such token exists.
    pub async fn revoke_token(&self, digest: &[u8; 32], now: i64) -> Result<bool, StoreError> {
        let sql = "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE digest = $2";
        let done = execute!(self, sql, now, &digest[..])?;
        self.changed(Change::Token(*digest));
        Ok(done == 1)
    }

    /// Revokes every token of a grant: its stored tokens and the JWT access tokens
    /// minted from it (RFC 7009 §2.1, RFC 9700 §4.14.2). Returns how many stored tokens
    /// were newly revoked.
    pub async fn revoke_family(&self, family_id: &str, now: i64) -> Result<u64, StoreError> {
        let tokens = "UPDATE tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
                      AND (family_id = $2 OR (family_id IS NULL AND jti = $3)) RETURNING digest";
        let jtis = "INSERT INTO revoked_jtis (jti, exp, revoked_at) \
                    SELECT jti, exp, $1 FROM family_jtis WHERE family_id = $2 \
                    ON CONFLICT (jti) DO NOTHING RETURNING jti";
        let (digests, jtis) = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let digests: Vec<Vec<u8>> = sqlx::query_scalar(tokens)
                .bind(now)
                .bind(family_id)
                .bind(family_id)
                .fetch_all(&mut *tx)
                .await?;
            let jtis: Vec<String> = sqlx::query_scalar(jtis)
                .bind(now)
                .bind(family_id)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            (digests, jtis)
        });
        for digest in &digests {
            if let Ok(digest) = <[u8; 32]>::try_from(digest.as_slice()) {
                self.changed(Change::Token(digest));
            }
        }
        for jti in jtis {
            self.changed(Change::Jti(jti));
        }
        Ok(digests.len() as u64)
    }

    /// Records a revoked JWT id until `exp`, when the token would have expired anyway.
    pub async fn revoke_jti(&self, jti: &str, exp: i64, now: i64) -> Result<(), StoreError> {
        let sql = "INSERT INTO revoked_jtis (jti, exp, revoked_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (jti) DO NOTHING";
        execute!(self, sql, jti, exp, now)?;
        self.changed(Change::Jti(jti.to_owned()));
        Ok(())
    }

    pub async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let sql = "SELECT 1 FROM revoked_jtis WHERE jti = $1";
        let row = on_pool!(self, pool => sqlx::query(sql)
            .bind(jti)
            .fetch_optional(pool)
            .await
            .map(|row| row.is_some()))?;
        Ok(row)
    }

    /// Revoked JWT ids, at most `limit` of them.
    pub async fn revoked_jti_ids(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let ids = on_pool!(self, pool => sqlx::query_scalar::<_, String>(
            "SELECT jti FROM revoked_jtis LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        Ok(ids)
    }

    /// Forgets revoked JWT ids, opaque tokens, sessions and failed sign-in windows that
    /// expired before `before`.
    /// Returns how many rows went.
    pub async fn purge_expired(&self, before: i64) -> Result<u64, StoreError> {
        let jtis = execute!(self, "DELETE FROM revoked_jtis WHERE exp < $1", before)?;
        let tokens = self.purge_tokens(before).await?;
        // The SQLite change log only needs to outlive the slowest reader, by far.
        let log = self.purge_change_log(before - 3_600).await?;
        let sessions = self.purge_sessions(before).await?;
        let codes = self.purge_authorization_codes(before).await?;
        let failures = self.purge_signin_failures(before).await?;
        let assertions = self.purge_assertion_jtis(before).await?;
        let federated = self.purge_federated_logins(before).await?;
        Ok(jtis + tokens + log + sessions + codes + failures + assertions + federated)
    }
}
