//! Authorization codes (OAuth 2.1 §4.1.2): stored by digest, exchanged once.

use super::{Store, StoreError, TokenRecord, decode_list, encode_list};

/// An authorization code, known only by the SHA-256 digest of its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRecord {
    pub digest: [u8; 32],
    pub client_id: String,
    pub user_id: String,
    /// The redirect URI of the authorization request, which the exchange must repeat.
    pub redirect_uri: String,
    /// The `S256` PKCE challenge (RFC 7636 §4.3).
    pub code_challenge: String,
    pub scope: Option<String>,
    /// RFC 8707 resources of the authorization request.
    pub resources: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// When the code was exchanged; presenting it again revokes what it gave.
    pub used_at: Option<i64>,
    /// The refresh-token family of the tokens the exchange gives.
    pub family_id: String,
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    digest: Vec<u8>,
    client_id: String,
    user_id: String,
    redirect_uri: String,
    code_challenge: String,
    scope: Option<String>,
    resources: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    family_id: String,
}

impl TryFrom<CodeRow> for CodeRecord {
    type Error = StoreError;

    fn try_from(row: CodeRow) -> Result<Self, StoreError> {
        Ok(CodeRecord {
            digest: row.digest.try_into().map_err(|_| StoreError::Corrupt {
                what: "authorization code digest",
            })?,
            client_id: row.client_id,
            user_id: row.user_id,
            redirect_uri: row.redirect_uri,
            code_challenge: row.code_challenge,
            scope: row.scope,
            resources: decode_list(&row.resources, "authorization code resources")?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            used_at: row.used_at,
            family_id: row.family_id,
        })
    }
}

/// Takes a lock on the row of an enabled user (a write that changes nothing), or
/// matches no row.
const HOLD_ENABLED_USER: &str =
    "UPDATE users SET updated_at = updated_at WHERE user_id = $1 AND disabled = $2";

/// The outcome of exchanging a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redemption {
    /// The code is marked used and the tokens it gave are stored.
    Redeemed,
    /// The code was already used: nothing was stored.
    AlreadyUsed,
    /// The code's user is disabled or deleted: nothing was stored, and the code stays
    /// unused.
    UserGone,
}

/// How long a code is kept after it expired, at least: a second use within that time
/// is still recognised, and revokes what the first one gave.
const KEPT_AFTER_EXPIRY: i64 = 24 * 3_600;

/// Records the access token of a grant without a refresh token in the code's family.
const REMEMBER_JTI: &str = "INSERT INTO family_jtis (jti, family_id, exp) VALUES ($1, $2, $3)";

impl Store {
    pub async fn insert_authorization_code(&self, code: &CodeRecord) -> Result<(), StoreError> {
        let sql = "INSERT INTO authorization_codes (digest, client_id, user_id, redirect_uri, \
                   code_challenge, scope, resources, created_at, expires_at, used_at, family_id) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
        execute!(
            self,
            sql,
            &code.digest[..],
            &code.client_id,
            &code.user_id,
            &code.redirect_uri,
            &code.code_challenge,
            &code.scope,
            encode_list(&code.resources),
            code.created_at,
            code.expires_at,
            code.used_at,
            &code.family_id
        )?;
        Ok(())
    }

    pub async fn authorization_code(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<CodeRecord>, StoreError> {
        let sql = "SELECT digest, client_id, user_id, redirect_uri, code_challenge, scope, \
                   resources, created_at, expires_at, used_at, family_id \
                   FROM authorization_codes WHERE digest = $1";
        let row = on_pool!(self, pool => sqlx::query_as::<_, CodeRow>(sql)
            .bind(&digest[..])
            .fetch_optional(pool)
            .await)?;
        row.map(CodeRecord::try_from).transpose()
    }

    /// Marks the code used and stores what its exchange gave, in one transaction: the
    /// refresh token (if any) in the code's family, and the access token's (jti, exp) so
    /// that revoking the family reaches it. Only one exchange of a code can win; once it
    /// has, a second use finds the tokens already stored and can revoke them. Nothing is
    /// stored for a user who is disabled or deleted by the time of the transaction, and a
    /// user disabled or deleted during it has what it stored revoked.
    pub async fn redeem_authorization_code(
        &self,
        code: &CodeRecord,
        refresh: Option<&TokenRecord>,
        access: (&str, i64),
        now: i64,
    ) -> Result<Redemption, StoreError> {
        let mark = "UPDATE authorization_codes SET used_at = $1 \
                    WHERE digest = $2 AND used_at IS NULL";
        let redeemed = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let marked = sqlx::query(mark)
                .bind(now)
                .bind(&code.digest[..])
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if marked != 1 {
                tx.rollback().await?;
                return Ok(Redemption::AlreadyUsed);
            }
            // Holds the user's row until commit, so that disabling or deleting the user
            // (which takes it first) either comes before, and is seen here, or waits, and
            // then revokes what this stores.
            let user_enabled = sqlx::query(HOLD_ENABLED_USER)
                .bind(&code.user_id)
                .bind(false)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if !user_enabled {
                tx.rollback().await?;
                return Ok(Redemption::UserGone);
            }
            match refresh {
                Some(refresh) => store_in_family!(tx, refresh, &code.family_id, access),
                None => {
                    sqlx::query(REMEMBER_JTI)
                        .bind(access.0)
                        .bind(&code.family_id)
                        .bind(access.1)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            refresh.map(|r| r.digest)
        });
        if let Some(digest) = redeemed {
            self.changed(super::Change::TokenAdded(digest));
        }
        Ok(Redemption::Redeemed)
    }

    /// Forgets codes that expired more than a day before `before` and whose access
    /// tokens have all expired: until then a code names its user's grant, which disabling
    /// the user revokes.
    pub(super) async fn purge_authorization_codes(&self, before: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM authorization_codes WHERE expires_at < $1 \
                   AND family_id NOT IN (SELECT family_id FROM family_jtis)";
        Ok(execute!(
            self,
            sql,
            before.saturating_sub(KEPT_AFTER_EXPIRY)
        )?)
    }
}
