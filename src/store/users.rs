//! Local users who sign in, and what happens to their sessions, consents and grants when
//! they are disabled or deleted.

use super::{Change, Store, StoreError};
use crate::secret::SecretHash;

/// A user who may sign in to authorize clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// Random and never reused: the `sub` of the user's tokens.
    pub user_id: String,
    /// As [`crate::policy::normalize_username`] makes it: lookups expect the same form.
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The argon2id PHC string of the password; `None`: no password sign-in.
    pub password_hash: Option<SecretHash>,
    pub disabled: bool,
    pub created_at: i64,
    /// When the password, or whether the user is disabled, last changed: later with each
    /// change, so that what was proven of the user before can be told from now.
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    user_id: String,
    username: String,
    email: Option<String>,
    name: Option<String>,
    password_hash: Option<String>,
    disabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl From<UserRow> for UserRecord {
    fn from(row: UserRow) -> Self {
        UserRecord {
            user_id: row.user_id,
            username: row.username,
            email: row.email,
            name: row.name,
            password_hash: row.password_hash.map(SecretHash::new),
            disabled: row.disabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

macro_rules! user_columns {
    () => {
        "user_id, username, email, name, password_hash, disabled, created_at, updated_at"
    };
}

/// A new `updated_at`: `$now`, or one more than the stored one when that is not earlier,
/// so that two changes within one second still read as two.
macro_rules! later {
    ($now:literal) => {
        concat!(
            "CASE WHEN updated_at >= ",
            $now,
            " THEN updated_at + 1 ELSE ",
            $now,
            " END"
        )
    };
}

/// Revokes, inside the transaction `$tx`, every grant holding a token issued to user
/// `$user` (of client `$client` only, when that is `Some`) at `$now`: its stored tokens
/// and the JWT access tokens recorded for it. Evaluates to the digests and the jtis newly
/// revoked. Repeated until a pass finds nothing: on Postgres each statement sees what
/// committed before it began, so a refresh token rotated while the first pass ran is
/// caught by the next, and a rotation cannot retire a token already revoked here.
macro_rules! revoke_user_grants {
    ($tx:expr, $user:expr, $client:expr, $now:expr) => {{
        let tokens = "UPDATE tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND \
                      ((user_id = $2 AND ($3 IS NULL OR client_id = $3)) OR family_id IN \
                      (SELECT family_id FROM tokens WHERE user_id = $2 \
                       AND ($3 IS NULL OR client_id = $3) AND family_id IS NOT NULL)) \
                      RETURNING digest";
        // A code exchanged without a refresh token left only its access token's jti,
        // in the code's family; an identity assertion's token, in a user grant.
        let jtis = "INSERT INTO revoked_jtis (jti, exp, revoked_at) \
                    SELECT jti, exp, $1 FROM family_jtis WHERE family_id IN \
                    (SELECT COALESCE(family_id, jti) FROM tokens WHERE user_id = $2 \
                     AND ($3 IS NULL OR client_id = $3)) OR family_id IN \
                    (SELECT family_id FROM authorization_codes WHERE user_id = $2 \
                     AND ($3 IS NULL OR client_id = $3)) OR family_id IN \
                    (SELECT family_id FROM user_grants WHERE user_id = $2 \
                     AND ($3 IS NULL OR client_id = $3)) \
                    ON CONFLICT (jti) DO NOTHING RETURNING jti";
        let (user, client, now): (&str, Option<&str>, i64) = ($user, $client, $now);
        let mut digests: Vec<Vec<u8>> = Vec::new();
        let mut revoked_jtis: Vec<String> = Vec::new();
        loop {
            let new_digests: Vec<Vec<u8>> = sqlx::query_scalar(tokens)
                .bind(now)
                .bind(user)
                .bind(client)
                .fetch_all(&mut *$tx)
                .await?;
            let new_jtis: Vec<String> = sqlx::query_scalar(jtis)
                .bind(now)
                .bind(user)
                .bind(client)
                .fetch_all(&mut *$tx)
                .await?;
            if new_digests.is_empty() && new_jtis.is_empty() {
                break;
            }
            digests.extend(new_digests);
            revoked_jtis.extend(new_jtis);
        }
        (digests, revoked_jtis)
    }};
}

impl Store {
    /// Registers a user; false when the username is taken (usernames are unique).
    pub async fn insert_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let sql = concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (username) DO NOTHING"
        );
        let inserted = execute!(
            self,
            sql,
            &user.user_id,
            &user.username,
            &user.email,
            &user.name,
            user.password_hash.as_ref().map(SecretHash::expose),
            user.disabled,
            user.created_at,
            user.updated_at
        )?;
        if inserted == 1 {
            self.changed(Change::User(user.user_id.clone()));
        }
        Ok(inserted == 1)
    }

    pub async fn user_by_id(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE user_id = $1");
        self.one_user(sql, user_id).await
    }

    /// The user of a username as [`crate::policy::normalize_username`] makes it; a
    /// username in another form finds nobody.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username = $1"
        );
        self.one_user(sql, username).await
    }

    async fn one_user(
        &self,
        sql: &'static str,
        key: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        if !super::nameable(key) {
            return Ok(None);
        }
        let row = on_pool!(self, pool => sqlx::query_as::<_, UserRow>(sql)
            .bind(key)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(UserRecord::from))
    }

    /// Every user, by username.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users ORDER BY username");
        let rows = on_pool!(self, pool => sqlx::query_as::<_, UserRow>(sql)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(UserRecord::from).collect())
    }

    /// Replaces a user's password hash; false when there is no such user.
    pub async fn set_user_password_hash(
        &self,
        user_id: &str,
        hash: &SecretHash,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = concat!(
            "UPDATE users SET password_hash = $1, updated_at = ",
            later!("$2"),
            " WHERE user_id = $3"
        );
        let done = execute!(self, sql, hash.expose(), now, user_id)?;
        self.changed(Change::User(user_id.to_owned()));
        Ok(done == 1)
    }

    /// Disables or re-enables a user; false when there is no such user. Disabling also
    /// ends the user's sessions and revokes every grant issued to them, in the same
    /// transaction: a disabled user is signed in nowhere and holds no active token.
    pub async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = concat!(
            "UPDATE users SET disabled = $1, updated_at = ",
            later!("$2"),
            " WHERE user_id = $3"
        );
        let sessions = "DELETE FROM sessions WHERE user_id = $1";
        let (found, revoked) = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let found = sqlx::query(update)
                .bind(disabled)
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            let revoked = if found && disabled {
                sqlx::query(sessions).bind(user_id).execute(&mut *tx).await?;
                revoke_user_grants!(tx, user_id, None, now)
            } else {
                (Vec::new(), Vec::new())
            };
            tx.commit().await?;
            (found, revoked)
        });
        self.changed(Change::User(user_id.to_owned()));
        self.announce_revoked(revoked);
        Ok(found)
    }

    /// Deletes a user, ending their sessions, forgetting their consents and links to
    /// providers and revoking every grant issued to them, in one transaction; false when
    /// there is no such user.
    /// Their revoked tokens stay stored (still naming the user) until they expire.
    pub async fn delete_user(&self, user_id: &str, now: i64) -> Result<bool, StoreError> {
        let deletes = [
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM consents WHERE user_id = $1",
            "DELETE FROM user_links WHERE user_id = $1",
            "DELETE FROM users WHERE user_id = $1",
        ];
        // The user's row first: a code exchange under way finishes before the grants
        // are revoked, and one after finds no user (`Store::redeem_authorization_code`).
        let hold = "UPDATE users SET updated_at = updated_at WHERE user_id = $1";
        let (found, revoked) = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(hold).bind(user_id).execute(&mut *tx).await?;
            let revoked = revoke_user_grants!(tx, user_id, None, now);
            let mut found = false;
            for sql in deletes {
                found = sqlx::query(sql)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
            }
            if found {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            (found, revoked)
        });
        if found {
            self.changed(Change::User(user_id.to_owned()));
            self.announce_revoked(revoked);
        }
        Ok(found)
    }

    /// Revokes every grant holding a token issued to the user: each such grant's stored
    /// tokens and the JWT access tokens recorded for it (RFC 7009 §2.1). Returns how many
    /// tokens were newly revoked, stored and JWT together.
    pub async fn revoke_user_tokens(&self, user_id: &str, now: i64) -> Result<u64, StoreError> {
        self.revoke_grants_of(user_id, None, now).await
    }

    /// [`Store::revoke_user_tokens`] for the grants the user gave one client only.
    pub async fn revoke_user_client_tokens(
        &self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        self.revoke_grants_of(user_id, Some(client_id), now).await
    }

    async fn revoke_grants_of(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<u64, StoreError> {
        let revoked = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let revoked = revoke_user_grants!(tx, user_id, client_id, now);
            tx.commit().await?;
            revoked
        });
        Ok(self.announce_revoked(revoked))
    }

    /// Tells this process's caches of tokens and JWT ids just revoked; how many.
    fn announce_revoked(&self, (digests, jtis): (Vec<Vec<u8>>, Vec<String>)) -> u64 {
        let count = (digests.len() + jtis.len()) as u64;
        for digest in digests {
            if let Ok(digest) = <[u8; 32]>::try_from(digest.as_slice()) {
                self.changed(Change::Token(digest));
            }
        }
        for jti in jtis {
            self.changed(Change::Jti(jti));
        }
        count
    }
}
