//! Opaque tokens, the refresh-token families they belong to, and rotation.

use super::{Change, Store, StoreError, decode_list, encode_list};
use crate::vocabulary::TokenUse;

/// An opaque token, known only by the SHA-256 digest of its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub digest: [u8; 32],
    pub token_use: TokenUse,
    pub client_id: String,
    pub sub: Option<String>,
    pub username: Option<String>,
    pub scope: Option<String>,
    pub audiences: Vec<String>,
    pub jti: String,
    pub iat: i64,
    pub nbf: Option<i64>,
    pub exp: i64,
    pub revoked_at: Option<i64>,
    /// The user the token was issued to, when one signed in for it: disabling or
    /// deleting that user revokes the token's whole grant.
    pub user_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    digest: Vec<u8>,
    token_use: String,
    client_id: String,
    sub: Option<String>,
    username: Option<String>,
    scope: Option<String>,
    audiences: String,
    jti: String,
    iat: i64,
    nbf: Option<i64>,
    exp: i64,
    revoked_at: Option<i64>,
    user_id: Option<String>,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;

    fn try_from(row: TokenRow) -> Result<Self, StoreError> {
        Ok(TokenRecord {
            digest: row.digest.try_into().map_err(|_| StoreError::Corrupt {
                what: "token digest",
            })?,
            token_use: TokenUse::parse(&row.token_use)
                .ok_or(StoreError::Corrupt { what: "token_use" })?,
            client_id: row.client_id,
            sub: row.sub,
            username: row.username,
            scope: row.scope,
            audiences: decode_list(&row.audiences, "token audiences")?,
            jti: row.jti,
            iat: row.iat,
            nbf: row.nbf,
            exp: row.exp,
            revoked_at: row.revoked_at,
            user_id: row.user_id,
        })
    }
}

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

macro_rules! token_columns {
    () => {
        "digest, token_use, client_id, sub, username, scope, audiences, jti, iat, nbf, exp, \
         revoked_at, user_id"
    };
}

/// The token given to a token exchange, as [`Store::join_subject_grant`] finds its grant:
/// a stored token by its digest, a JWT by its jti.
#[derive(Clone, Copy, Debug)]
pub struct ExchangedSubject<'a> {
    pub jti: &'a str,
    pub digest: &'a [u8; 32],
}

/// Binds the columns of `token_columns!` in order.
macro_rules! bind_token {
    ($query:expr, $token:expr) => {
        $query
            .bind(&$token.digest[..])
            .bind($token.token_use.as_str())
            .bind(&$token.client_id)
            .bind(&$token.sub)
            .bind(&$token.username)
            .bind(&$token.scope)
            .bind(encode_list(&$token.audiences))
            .bind(&$token.jti)
            .bind($token.iat)
            .bind($token.nbf)
            .bind($token.exp)
            .bind($token.revoked_at)
            .bind(&$token.user_id)
    };
}

/// Stores `$token` in the family `$family_id` inside the transaction `$tx`, and records
/// there the JWT access token minted with it (`$access`: its jti and exp), so that
/// revoking the family reaches both.
macro_rules! store_in_family {
    ($tx:expr, $token:expr, $family_id:expr, $access:expr) => {{
        let insert = concat!(
            "INSERT INTO tokens (",
            token_columns!(),
            ", family_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        );
        let remember = "INSERT INTO family_jtis (jti, family_id, exp) VALUES ($1, $2, $3)";
        let (family_id, (jti, exp)): (&str, (&str, i64)) = ($family_id, $access);
        bind_token!(sqlx::query(insert), $token)
            .bind(family_id)
            .execute(&mut *$tx)
            .await?;
        sqlx::query(remember)
            .bind(jti)
            .bind(family_id)
            .bind(exp)
            .execute(&mut *$tx)
            .await?;
    }};
}

impl Store {
    pub async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let sql = concat!(
            "INSERT INTO tokens (",
            token_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        on_pool!(self, pool => bind_token!(sqlx::query(sql), token)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.changed(Change::TokenAdded(token.digest));
        Ok(())
    }

    /// Stores the first refresh token of a new grant, whose family is named by the
    /// token's jti, and records the JWT access token minted with it (`access`: its jti
    /// and exp) in that family, in one transaction: revoking the grant (a reused refresh
    /// token, its user disabled) reaches both.
    pub async fn insert_grant(
        &self,
        refresh: &TokenRecord,
        access: (&str, i64),
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            store_in_family!(tx, refresh, &refresh.jti, access);
            tx.commit().await?;
        });
        self.changed(Change::TokenAdded(refresh.digest));
        Ok(())
    }

    /// Records the JWT access token `access` (its jti and exp), issued to `client_id` for
    /// `user_id` outside any stored grant (an identity assertion's), as a grant of its
    /// own named by its jti: disabling or deleting the user, or revoking their consent to
    /// the client, then reaches it, and what is exchanged from it joins it.
    pub async fn insert_user_grant(
        &self,
        user_id: &str,
        client_id: &str,
        access: (&str, i64),
    ) -> Result<(), StoreError> {
        let (jti, exp) = access;
        let grant = "INSERT INTO user_grants (family_id, user_id, client_id, exp) \
                     VALUES ($1, $2, $3, $4)";
        let remember = "INSERT INTO family_jtis (jti, family_id, exp) VALUES ($1, $1, $2)";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(grant)
                .bind(jti)
                .bind(user_id)
                .bind(client_id)
                .bind(exp)
                .execute(&mut *tx)
                .await?;
            sqlx::query(remember)
                .bind(jti)
                .bind(exp)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records the JWT access token `exchanged` (its jti and exp), obtained by exchanging
    /// `subject`, in the subject's grant: the family the subject belongs to, else one
    /// named by the subject's jti. Whatever ends that grant then ends it too (RFC 8693
    /// leaves this to the server; a token for the same person must not outlive the one it
    /// came from). False, and the new token revoked at once, when the subject was revoked
    /// by the time it was recorded: a revocation that ran meanwhile may not have seen it.
    pub async fn join_subject_grant(
        &self,
        subject: &ExchangedSubject<'_>,
        exchanged: (&str, i64),
        now: i64,
    ) -> Result<bool, StoreError> {
        let (jti, exp) = exchanged;
        // A stored subject's family is on its row; a JWT's, where its jti was recorded.
        let remember = "INSERT INTO family_jtis (jti, family_id, exp) VALUES ($1, COALESCE(\
                        (SELECT COALESCE(family_id, jti) FROM tokens WHERE digest = $2), \
                        (SELECT family_id FROM family_jtis WHERE jti = $3), $3), $4)";
        let revoked = "SELECT (SELECT COUNT(*) FROM revoked_jtis WHERE jti = $1) + \
                       (SELECT COUNT(*) FROM tokens WHERE digest = $2 AND revoked_at IS NOT NULL)";
        let digest = &subject.digest[..];
        execute!(self, remember, jti, digest, subject.jti, exp)?;
        let revoked: i64 = on_pool!(self, pool => sqlx::query_scalar(revoked)
            .bind(subject.jti)
            .bind(digest)
            .fetch_one(pool)
            .await)?;
        let still = revoked == 0;
        if !still {
            self.revoke_jti(jti, exp, now).await?;
        }
        Ok(still)
    }

    pub async fn token_by_digest(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.token_family_by_digest(digest).await?.map(|f| f.token))
    }

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
            store_in_family!(tx, new, family_id, access);
            tx.commit().await?;
        });
        self.changed(Change::Token(*old));
        self.changed(Change::TokenAdded(new.digest));
        Ok(Rotation::Rotated)
    }

    /// Up to `limit` opaque token digests in ascending order, from just after `after`:
    /// one page of every digest the store holds.
    pub async fn token_digests(
        &self,
        after: Option<&[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after: &[u8] = after.map_or(&[], |a| &a[..]);
        let sql = "SELECT digest FROM tokens WHERE digest > $1 ORDER BY digest LIMIT $2";
        let rows = on_pool!(self, pool => sqlx::query_scalar::<_, Vec<u8>>(sql)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter()
            .map(|row| {
                <[u8; 32]>::try_from(row.as_slice()).map_err(|_| StoreError::Corrupt {
                    what: "token digest",
                })
            })
            .collect()
    }

    /// Forgets opaque tokens, and the JWT ids remembered for their families, that
    /// expired before `before`.
    pub(super) async fn purge_tokens(&self, before: i64) -> Result<u64, StoreError> {
        let mut purged = 0;
        for sql in [
            "DELETE FROM tokens WHERE exp < $1",
            "DELETE FROM family_jtis WHERE exp < $1",
            "DELETE FROM user_grants WHERE exp < $1",
        ] {
            purged += execute!(self, sql, before)?;
        }
        Ok(purged)
    }
}
