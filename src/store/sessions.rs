//! Browser sessions of signed-in users, and the consents users gave clients.

use super::{Store, StoreError};

/// A signed-in browser, known by the SHA-256 digest of the session id its cookie holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub digest: [u8; 32],
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    digest: Vec<u8>,
    user_id: String,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self, StoreError> {
        Ok(SessionRecord {
            digest: row.digest.try_into().map_err(|_| StoreError::Corrupt {
                what: "session digest",
            })?,
            user_id: row.user_id,
            created_at: row.created_at,
            expires_at: row.expires_at,
        })
    }
}

/// What a user allowed a client: a scope and resources (RFC 8707), remembered so that the
/// same request skips the consent page next time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRecord {
    pub user_id: String,
    pub client_id: String,
    pub scope: Option<String>,
    pub resources: Vec<String>,
    pub created_at: i64,
}

/// The stored form of a consent's scope or resources: the distinct items, sorted and
/// space-joined ('' for none), so that one decision is one row whatever the order of the
/// request. Neither scope tokens (RFC 6749 §3.3) nor URIs hold a space.
fn canonical<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut items: Vec<&str> = items.filter(|i| !i.is_empty()).collect();
    items.sort_unstable();
    items.dedup();
    items.join(" ")
}

fn canonical_scope(scope: Option<&str>) -> String {
    canonical(scope.unwrap_or("").split(' '))
}

fn canonical_resources(resources: &[String]) -> String {
    canonical(resources.iter().map(String::as_str))
}

impl Store {
    pub async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let sql = "INSERT INTO sessions (digest, user_id, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4)";
        execute!(
            self,
            sql,
            &session.digest[..],
            &session.user_id,
            session.created_at,
            session.expires_at
        )?;
        Ok(())
    }

    /// The session of a digest, expired or not: the caller judges it at its `now`
    /// ([`crate::policy::session_active`]).
    pub async fn session_by_digest(
        &self,
        digest: &[u8; 32],
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = "SELECT digest, user_id, created_at, expires_at FROM sessions \
                   WHERE digest = $1";
        let row = on_pool!(self, pool => sqlx::query_as::<_, SessionRow>(sql)
            .bind(&digest[..])
            .fetch_optional(pool)
            .await)?;
        row.map(SessionRecord::try_from).transpose()
    }

    /// Ends one session (signing out); false when there was none.
    pub async fn delete_session(&self, digest: &[u8; 32]) -> Result<bool, StoreError> {
        let done = execute!(self, "DELETE FROM sessions WHERE digest = $1", &digest[..])?;
        Ok(done == 1)
    }

    /// Ends every session of a user; how many there were.
    pub async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
        let done = execute!(self, "DELETE FROM sessions WHERE user_id = $1", user_id)?;
        Ok(done)
    }

    /// Forgets sessions that expired before `before`.
    pub(super) async fn purge_sessions(&self, before: i64) -> Result<u64, StoreError> {
        let done = execute!(self, "DELETE FROM sessions WHERE expires_at < $1", before)?;
        Ok(done)
    }

    /// Remembers that the user allowed the client this scope and these resources; the
    /// same decision remembered again changes nothing.
    pub async fn remember_consent(&self, consent: &ConsentRecord) -> Result<(), StoreError> {
        let sql = "INSERT INTO consents (user_id, client_id, scope, resources, created_at) \
                   VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (user_id, client_id, scope, resources) DO NOTHING";
        execute!(
            self,
            sql,
            &consent.user_id,
            &consent.client_id,
            canonical_scope(consent.scope.as_deref()),
            canonical_resources(&consent.resources),
            consent.created_at
        )?;
        Ok(())
    }

    /// Whether the user allowed the client exactly this scope and these resources, in
    /// any order.
    pub async fn has_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: Option<&str>,
        resources: &[String],
    ) -> Result<bool, StoreError> {
        let sql = "SELECT 1 FROM consents WHERE user_id = $1 AND client_id = $2 \
                   AND scope = $3 AND resources = $4";
        let (scope, resources) = (canonical_scope(scope), canonical_resources(resources));
        let found = on_pool!(self, pool => sqlx::query(sql)
            .bind(user_id)
            .bind(client_id)
            .bind(&scope)
            .bind(&resources)
            .fetch_optional(pool)
            .await
            .map(|row| row.is_some()))?;
        Ok(found)
    }

    /// Forgets the consents of a user, of a client, of a user for a client, or, with
    /// neither given, every consent; how many there were.
    pub async fn forget_consents(
        &self,
        user_id: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let sql = "DELETE FROM consents WHERE ($1 IS NULL OR user_id = $1) \
                   AND ($2 IS NULL OR client_id = $2)";
        let done = execute!(self, sql, user_id, client_id)?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consents_are_stored_in_one_form() {
        assert_eq!(canonical_scope(Some(" write read  write")), "read write");
        assert_eq!(canonical_scope(Some("")), "");
        assert_eq!(canonical_scope(None), "");
        let resources = ["urn:b", "https://a.example", "urn:b"].map(String::from);
        assert_eq!(canonical_resources(&resources), "https://a.example urn:b");
        assert_eq!(canonical_resources(&[]), "");
    }
}
