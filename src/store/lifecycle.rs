//! Queries of the token lifecycle: refresh-token families and rotation, revocation of a
//! whole grant, client JWK Sets and replay protection of client assertions.

use super::{Change, Pool, Store, StoreError, TokenRecord, TokenRow, encode_list};

/// A stored token with the grant it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyRecord {
    pub token: TokenRecord,
    /// Tokens minted from one grant share this id; a token stored without one (by an
    /// issuer that knows nothing of families) is a family of its own, named by its jti.
    pub family_id: String,
    /// When this refresh token was exchanged for a new one (RFC 9700 §4.14.2); it was
    /// revoked at the same moment.
    pub rotated_at: Option<i64>,
}

/// The outcome of exchanging a refresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The old token is retired and the new one stored.
    Rotated,
    /// The old token was already retired or revoked: nothing was stored.
    AlreadyUsed,
}

#[derive(sqlx::FromRow)]
struct FamilyRow {
    #[sqlx(flatten)]
    token: TokenRow,
    family_id: String,
    rotated_at: Option<i64>,
}

impl Store {
    /// A stored token with its family, found by digest.
    pub async fn token_family_by_digest(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<FamilyRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            ", COALESCE(family_id, jti) AS family_id, rotated_at FROM tokens WHERE digest = $1"
        );
        let row = on_pool!(self, pool => sqlx::query_as::<_, FamilyRow>(sql)
            .bind(&digest[..])
            .fetch_optional(pool)
            .await)?;
        row.map(|r| {
            Ok(FamilyRecord {
                token: TokenRecord::try_from(r.token)?,
                family_id: r.family_id,
                rotated_at: r.rotated_at,
            })
        })
        .transpose()
    }

    /// Retires the refresh token `old` and stores `new` in its family, in one
    /// transaction; `access` is the (jti, exp) of the JWT access token minted with it, so
    /// that revoking the family reaches it too. Only one exchange of `old` can win.
    pub async fn rotate_refresh_token(
        &self,
        old: &[u8; 32],
        new: &TokenRecord,
        family_id: &str,
        access: (&str, i64),
        now: i64,
    ) -> Result<Rotation, StoreError> {
        // A retired token reads inactive at once; rotated_at tells reuse from revocation.
        let retire = "UPDATE tokens SET rotated_at = $1, revoked_at = $2, \
                      family_id = COALESCE(family_id, $3) \
                      WHERE digest = $4 AND rotated_at IS NULL AND revoked_at IS NULL";
        let insert = concat!(
            "INSERT INTO tokens (",
            token_columns!(),
            ", family_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        let remember = "INSERT INTO family_jtis (jti, family_id, exp) VALUES ($1, $2, $3)";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let retired = sqlx::query(retire)
                .bind(now)
                .bind(now)
                .bind(family_id)
                .bind(&old[..])
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if retired != 1 {
                tx.rollback().await?;
                return Ok(Rotation::AlreadyUsed);
            }
            bind_token!(sqlx::query(insert), new)
                .bind(family_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(remember)
                .bind(access.0)
                .bind(family_id)
                .bind(access.1)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        self.changed(Change::Token(*old));
        self.changed(Change::TokenAdded(new.digest));
        Ok(Rotation::Rotated)
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

    /// The JWK Set a `private_key_jwt` client registered, as stored JSON.
    pub async fn client_jwks(&self, client_id: &str) -> Result<Option<String>, StoreError> {
        let sql = "SELECT jwks FROM client_jwks WHERE client_id = $1";
        let jwks = on_pool!(self, pool => sqlx::query_scalar::<_, String>(sql)
            .bind(client_id)
            .fetch_optional(pool)
            .await)?;
        Ok(jwks)
    }

    /// Replaces the JWK Set of an existing `private_key_jwt` client and touches its
    /// `updated_at`; false when there is no such client.
    pub async fn set_client_jwks(
        &self,
        client_id: &str,
        jwks: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let touch = "UPDATE clients SET updated_at = $1 \
                     WHERE client_id = $2 AND auth_method = 'private_key_jwt'";
        let keys = "INSERT INTO client_jwks (client_id, jwks) VALUES ($1, $2) \
                    ON CONFLICT (client_id) DO UPDATE SET jwks = excluded.jwks";
        let found = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let found = sqlx::query(touch)
                .bind(now)
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if found {
                sqlx::query(keys)
                    .bind(client_id)
                    .bind(jwks)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            found
        });
        if found {
            self.changed(Change::Client(client_id.to_owned()));
        }
        Ok(found)
    }

    /// Records the `jti` of a client assertion until `exp`; false when the client used
    /// it before (RFC 7523 §3, item 7).
    pub async fn use_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        exp: i64,
    ) -> Result<bool, StoreError> {
        let sql = "INSERT INTO client_assertion_jtis (client_id, jti, exp) VALUES ($1, $2, $3) \
                   ON CONFLICT (client_id, jti) DO NOTHING";
        let inserted = on_pool!(self, pool => sqlx::query(sql)
            .bind(client_id)
            .bind(jti)
            .bind(exp)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(inserted == 1)
    }

    /// Deletes a generated signing key; false when there is no such key.
    pub async fn delete_signing_key(&self, kid: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.changed(Change::Keys);
        Ok(done == 1)
    }

    /// Forgets family records and assertion ids that expired before `before`.
    pub(super) async fn purge_lifecycle(&self, before: i64) -> Result<u64, StoreError> {
        let mut purged = 0;
        for sql in [
            "DELETE FROM family_jtis WHERE exp < $1",
            "DELETE FROM client_assertion_jtis WHERE exp < $1",
        ] {
            purged += on_pool!(self, pool => sqlx::query(sql)
                .bind(before)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
        }
        Ok(purged)
    }
}
