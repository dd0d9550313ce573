//! Replay protection of client assertions (RFC 7523).

use super::{Store, StoreError};

impl Store {
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
        let inserted = execute!(self, sql, client_id, jti, exp)?;
        Ok(inserted == 1)
    }

    /// Forgets assertion ids that expired before `before`.
    pub(super) async fn purge_assertion_jtis(&self, before: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM client_assertion_jtis WHERE exp < $1";
        let purged = execute!(self, sql, before)?;
        Ok(purged)
    }
}
