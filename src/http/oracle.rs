//! Answers that tell a client whether a token exists when it is not entitled to know
//! (RFC 7662 §4: introspection is an oracle): an inactive introspection answer, `/revoke`
//! of an unknown token or one issued to another client, `invalid_grant` for a refresh
//! token at `/token`. Each spends the calling client's inactive-answer budget, so
//! guessing costs the same wherever it is tried.

use super::AppState;
use crate::error::ApiError;
use crate::store::ClientRecord;
use crate::vocabulary::InactiveBudget;

/// The client's budget per window: its own setting, else `rate_limit.inactive_per_client`
/// (0: unlimited, as while rate limiting is off).
pub fn limit(state: &AppState, client: &ClientRecord) -> u32 {
    match client.policy.inactive_budget {
        InactiveBudget::Configured => state.inactive_budget.limit(),
        InactiveBudget::Off => 0,
        InactiveBudget::Limit(n) => state.config.rate_limit.budget(n),
    }
}

/// 429 while the client has spent its budget.
pub fn admit(state: &AppState, client: &ClientRecord) -> Result<(), ApiError> {
    state
        .inactive_budget
        .check_within(&client.client_id, limit(state, client))
        .map_err(ApiError::throttled)
}

/// Counts one such answer; 429 once that went past the budget.
pub fn spend(state: &AppState, client: &ClientRecord) -> Result<(), ApiError> {
    state
        .inactive_budget
        .spend_within(client.client_id.clone(), limit(state, client))
        .map_err(ApiError::throttled)
}
