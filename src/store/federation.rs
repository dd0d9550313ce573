//! Users who sign in through an OpenID Connect provider: the link from (provider, `sub`)
//! to a local user, and the sign-ins sent to a provider and not yet back.

use super::users::UserRecord;
use super::{Change, Store, StoreError};
use crate::secret::SecretHash;

/// A local user as a provider knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRecord {
    pub provider_id: String,
    /// The provider's `sub`: stable and unique at that provider (OIDC Core §2).
    pub subject: String,
    pub user_id: String,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    provider_id: String,
    subject: String,
    user_id: String,
    created_at: i64,
}

impl From<LinkRow> for LinkRecord {
    fn from(row: LinkRow) -> Self {
        LinkRecord {
            provider_id: row.provider_id,
            subject: row.subject,
            user_id: row.user_id,
            created_at: row.created_at,
        }
    }
}

/// A sign-in sent to a provider: known by the SHA-256 digest of the `state` sent, bound
/// to the browser it started from, carrying the authorization request it continues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederatedLoginRecord {
    pub state_digest: [u8; 32],
    pub provider_id: String,
    pub browser_id: String,
    /// The authorization request's query, as the login form carried it.
    pub request: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// How many sign-ins sent to a provider are kept at most: per browser and provider, and
/// in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingBounds {
    pub per_browser: u32,
    pub total: u32,
}

#[derive(sqlx::FromRow)]
struct FederatedLoginRow {
    state_digest: Vec<u8>,
    provider_id: String,
    browser_id: String,
    request: String,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<FederatedLoginRow> for FederatedLoginRecord {
    type Error = StoreError;

    fn try_from(row: FederatedLoginRow) -> Result<Self, StoreError> {
        Ok(FederatedLoginRecord {
            state_digest: row
                .state_digest
                .try_into()
                .map_err(|_| StoreError::Corrupt {
                    what: "federated login state digest",
                })?,
            provider_id: row.provider_id,
            browser_id: row.browser_id,
            request: row.request,
            created_at: row.created_at,
            expires_at: row.expires_at,
        })
    }
}

/// What creating a linked user came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewLink {
    /// The user and the link were stored.
    Created,
    /// The username is taken: nothing was stored; try another.
    UsernameTaken,
    /// Another sign-in linked this subject first: nothing was stored; use that link.
    AlreadyLinked,
}

impl Store {
    /// The user linked to `subject` at `provider_id`, if any.
    pub async fn linked_user(
        &self,
        provider_id: &str,
        subject: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = "SELECT user_id FROM user_links WHERE provider_id = $1 AND subject = $2";
        let user_id: Option<String> = on_pool!(self, pool => sqlx::query_scalar(sql)
            .bind(provider_id)
            .bind(subject)
            .fetch_optional(pool)
            .await)?;
        match user_id {
            Some(user_id) => self.user_by_id(&user_id).await,
            None => Ok(None),
        }
    }

    /// The links of a user, by provider.
    pub async fn user_links(&self, user_id: &str) -> Result<Vec<LinkRecord>, StoreError> {
        let sql = "SELECT provider_id, subject, user_id, created_at FROM user_links \
                   WHERE user_id = $1 ORDER BY provider_id, subject";
        let rows = on_pool!(self, pool => sqlx::query_as::<_, LinkRow>(sql)
            .bind(user_id)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(LinkRecord::from).collect())
    }

    /// Stores a new user (without a password) and its link in one transaction, or
    /// nothing: a taken username never links to the user who holds it.
    pub async fn insert_linked_user(
        &self,
        user: &UserRecord,
        link: &LinkRecord,
    ) -> Result<NewLink, StoreError> {
        let insert_user = "INSERT INTO users (user_id, username, email, name, password_hash, \
                           disabled, created_at, updated_at) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                           ON CONFLICT (username) DO NOTHING";
        let insert_link = "INSERT INTO user_links (provider_id, subject, user_id, created_at) \
                           VALUES ($1, $2, $3, $4) ON CONFLICT (provider_id, subject) DO NOTHING";
        let outcome = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let users = sqlx::query(insert_user)
                .bind(&user.user_id)
                .bind(&user.username)
                .bind(&user.email)
                .bind(&user.name)
                .bind(user.password_hash.as_ref().map(SecretHash::expose))
                .bind(user.disabled)
                .bind(user.created_at)
                .bind(user.created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if users != 1 {
                tx.rollback().await?;
                NewLink::UsernameTaken
            } else {
                let links = sqlx::query(insert_link)
                    .bind(&link.provider_id)
                    .bind(&link.subject)
                    .bind(&link.user_id)
                    .bind(link.created_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if links == 1 {
                    tx.commit().await?;
                    NewLink::Created
                } else {
                    tx.rollback().await?;
                    NewLink::AlreadyLinked
                }
            }
        });
        if outcome == NewLink::Created {
            self.changed(Change::User(user.user_id.clone()));
        }
        Ok(outcome)
    }

    /// Remembers a sign-in sent to a provider within `bounds`: those expired by `now` are
    /// forgotten, then the browser's oldest sign-ins to that provider beyond
    /// `bounds.per_browser` (this one included), then the oldest of all beyond
    /// `bounds.total`, never this one. A browser (or a script without cookies) starting
    /// sign-in after sign-in leaves a bounded number of rows.
    pub async fn insert_federated_login(
        &self,
        login: &FederatedLoginRecord,
        now: i64,
        bounds: PendingBounds,
    ) -> Result<(), StoreError> {
        self.purge_federated_logins(now).await?;
        let keep_others = i64::from(bounds.per_browser.saturating_sub(1));
        let same_browser = "DELETE FROM federated_logins WHERE browser_id = $1 \
             AND provider_id = $2 AND state_digest NOT IN (SELECT state_digest \
             FROM federated_logins WHERE browser_id = $1 AND provider_id = $2 \
             ORDER BY created_at DESC, state_digest DESC LIMIT $3)";
        execute!(
            self,
            same_browser,
            &login.browser_id,
            &login.provider_id,
            keep_others
        )?;
        let sql = "INSERT INTO federated_logins (state_digest, provider_id, browser_id, request, \
                   created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
        execute!(
            self,
            sql,
            &login.state_digest[..],
            &login.provider_id,
            &login.browser_id,
            &login.request,
            login.created_at,
            login.expires_at
        )?;
        let pending = self.pending_federated_logins().await?;
        let excess = pending.saturating_sub(u64::from(bounds.total));
        if excess > 0 {
            let oldest = "DELETE FROM federated_logins WHERE state_digest IN (SELECT \
                 state_digest FROM federated_logins WHERE state_digest <> $1 \
                 ORDER BY created_at, state_digest LIMIT $2)";
            let excess = i64::try_from(excess).unwrap_or(i64::MAX);
            execute!(self, oldest, &login.state_digest[..], excess)?;
        }
        Ok(())
    }

    /// How many sign-ins sent to a provider are waiting for their callback.
    pub async fn pending_federated_logins(&self) -> Result<u64, StoreError> {
        let sql = "SELECT COUNT(*) FROM federated_logins";
        let count = on_pool!(self, pool => sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Forgets the sign-ins sent to a provider that expired by `now`; answers how many.
    pub async fn purge_federated_logins(&self, now: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM federated_logins WHERE expires_at <= $1";
        Ok(execute!(self, sql, now)?)
    }

    /// Takes the sign-in sent with this `state`: it is deleted, so a second callback with
    /// the same `state` finds nothing. Expired or not: the caller judges it at its `now`.
    pub async fn take_federated_login(
        &self,
        state_digest: &[u8; 32],
    ) -> Result<Option<FederatedLoginRecord>, StoreError> {
        let sql = "DELETE FROM federated_logins WHERE state_digest = $1 RETURNING \
                   state_digest, provider_id, browser_id, request, created_at, expires_at";
        let row = on_pool!(self, pool => sqlx::query_as::<_, FederatedLoginRow>(sql)
            .bind(&state_digest[..])
            .fetch_optional(pool)
            .await)?;
        row.map(FederatedLoginRecord::try_from).transpose()
    }
}
