//! Replay protection of client assertions (RFC 7523) and of identity assertions
//! (ID-JAG) from the organisation's providers.

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

    /// Records the `jti` of an identity assertion from the provider `issuer` until `exp`;
    /// false when it was used before, on any instance.
    pub async fn use_identity_assertion_jti(
        &self,
        issuer: &str,
        jti: &str,
        exp: i64,
    ) -> Result<bool, StoreError> {
        let sql = "INSERT INTO identity_assertion_jtis (issuer, jti, exp) VALUES ($1, $2, $3) \
                   ON CONFLICT (issuer, jti) DO NOTHING";
        let inserted = execute!(self, sql, issuer, jti, exp)?;
        Ok(inserted == 1)
    }

    /// Forgets client and identity assertion ids that expired before `before`.
    pub(super) async fn purge_assertion_jtis(&self, before: i64) -> Result<u64, StoreError> {
        let clients = execute!(
            self,
            "DELETE FROM client_assertion_jtis WHERE exp < $1",
            before
        )?;
        let identities = execute!(
            self,
            "DELETE FROM identity_assertion_jtis WHERE exp < $1",
            before
        )?;
        Ok(clients + identities)
    }
}
