//! Answers that tell a client whether a token exists when it is not entitled to know
//! (RFC 7662 §4: introspection is an oracle): an inactive introspection answer, `/revoke`
//! of an unknown token or one issued to another client, `invalid_grant` for a refresh
//! token or code at `/token`. Each spends the caller's inactive-answer budget, so
//! guessing costs the same wherever it is tried.
//!
//! Whose budget is spent depends on what the caller proved. A confidential client proved
//! a secret or a key: the budget is the client's, wherever it calls from. A public client
//! (`none`) names itself by id alone, so anyone can call as it: its budget is kept per
//! (client id, address), and a party spending it spends only its own, never the budget
//! the client's users at other addresses refresh their tokens with.

use std::net::IpAddr;

use super::AppState;
use crate::error::ApiError;
use crate::limits::address_key;
use crate::store::ClientRecord;
use crate::vocabulary::{AuthMethod, InactiveBudget};

/// Whose inactive answers are counted together: a client id, and for a public client the
/// caller's address (as [`address_key`] keys it).
pub type Spender = (String, Option<IpAddr>);

/// The budget key of `client` calling from `ip`.
pub fn spender(client: &ClientRecord, ip: IpAddr) -> Spender {
    let address = (client.auth_method == AuthMethod::None).then(|| address_key(ip));
    (client.client_id.clone(), address)
}

/// The client's budget per window: its own setting, else `rate_limit.inactive_per_client`
/// (0: unlimited, as while rate limiting is off).
pub fn limit(state: &AppState, client: &ClientRecord) -> u32 {
    match client.policy.inactive_budget {
        InactiveBudget::Configured => state.inactive_budget.limit(),
        InactiveBudget::Off => 0,
        InactiveBudget::Limit(n) => state.config.rate_limit.budget(n),
    }
}

/// 429 while the caller has spent its budget.
pub fn admit(state: &AppState, client: &ClientRecord, ip: IpAddr) -> Result<(), ApiError> {
    state
        .inactive_budget
        .check_within_key(|| spender(client, ip), limit(state, client))
        .map_err(ApiError::throttled)
}

/// Counts one such answer; 429 once that went past the budget.
pub fn spend(state: &AppState, client: &ClientRecord, ip: IpAddr) -> Result<(), ApiError> {
    state
        .inactive_budget
        .spend_within(spender(client, ip), limit(state, client))
        .map_err(ApiError::throttled)
}
