//! Password sign-in within failure budgets per username and per client address, as
//! client secrets are budgeted. argon2 runs for unknown usernames too, against a hash
//! made at start-up, so neither the answer nor its timing tells which usernames exist;
//! a disabled user with the right password is refused like a wrong password.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::binding::Browser;
use crate::auth::{hash_password, verify_password};
use crate::config::RateLimitConfig;
use crate::limits::Budget;
use crate::policy::{MAX_USERNAME_LEN, normalize_username};
use crate::secret::{Password, SecretHash};
use crate::store::{Store, StoreError, UserRecord};

/// Why a password sign-in was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No such user, a wrong password, or a disabled user: one answer for all.
    Wrong,
    /// The address or the username spent its failure budget; retry after this long.
    Throttled(Duration),
}

/// The failure budgets and the argon2 work of password sign-in.
pub struct Passwords {
    per_ip: Budget<IpAddr>,
    per_username: Budget<String>,
    dummy_hash: SecretHash,
    permits: Arc<Semaphore>,
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

impl Passwords {
    pub fn new(limits: &RateLimitConfig) -> Self {
        let window = Duration::from_secs(limits.password_failure_window_seconds);
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        Passwords {
            per_ip: Budget::new(limits.budget(limits.password_failures_per_ip), window),
            per_username: Budget::new(limits.budget(limits.password_failures_per_username), window),
            dummy_hash: hash_password(&Password::new(crate::token::random_string(32))),
            permits: Arc::new(Semaphore::new(workers)),
        }
    }

    /// The user whose password this is, when they may sign in. The budgets of the
    /// address and the username are checked first, except for a user who proved their
    /// password from this browser before: a guesser's failures never lock them out of
    /// it. Every failure is counted against both.
    pub async fn verify(
        &self,
        store: &Store,
        username: &str,
        password: &Password,
        browser: &Browser,
        ip: IpAddr,
    ) -> Result<Result<UserRecord, Refused>, StoreError> {
        let ip = crate::limits::address_key(ip);
        let key = budget_key(username);
        let user = match normalize_username(username) {
            Some(name) => store.user_by_username(&name).await?,
            None => None,
        };
        let proven = user
            .as_ref()
            .is_some_and(|u| browser.has_proved(&u.user_id));
        if !proven {
            let admitted = self
                .per_ip
                .check(&ip)
                .and_then(|()| self.per_username.check(&key));
            if let Err(wait) = admitted {
                crate::metrics::rate_limited();
                return Ok(Err(Refused::Throttled(wait)));
            }
        }
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.as_ref())
            .unwrap_or(&self.dummy_hash);
        let verified = self.argon2(password, hash).await;
        match user {
            Some(user) if verified && !user.disabled && user.password_hash.is_some() => {
                Ok(Ok(user))
            }
            _ => Ok(Err(self.failed(ip, key))),
        }
    }

    /// Counts a failure against the address and the username.
    fn failed(&self, ip: IpAddr, key: String) -> Refused {
        let per_ip = self.per_ip.spend(ip);
        let per_username = self.per_username.spend(key);
        match per_ip.and(per_username) {
            Ok(()) => Refused::Wrong,
            Err(wait) => {
                crate::metrics::rate_limited();
                Refused::Throttled(wait)
            }
        }
    }

    /// argon2 off the async workers, at most one per core at a time.
    async fn argon2(&self, password: &Password, hash: &SecretHash) -> bool {
        let (password, hash) = (password.clone(), hash.clone());
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false)
    }

    /// Forgets failure windows that have ended.
    pub fn sweep(&self) {
        self.per_ip.sweep();
        self.per_username.sweep();
    }
}

/// The key a username's failures count under: its stored form when it is a valid
/// username, else its trimmed lower-case start, so that unknown and malformed usernames
/// are budgeted alike and a key stays small.
fn budget_key(username: &str) -> String {
    normalize_username(username).unwrap_or_else(|| {
        username
            .trim()
            .chars()
            .take(MAX_USERNAME_LEN)
            .collect::<String>()
            .to_lowercase()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_budgeted_in_their_stored_form() {
        assert_eq!(budget_key("  Alice "), "alice");
        assert_eq!(budget_key("ALICE"), budget_key("alice"));
        let long = "X".repeat(500);
        assert_eq!(budget_key(&long).len(), MAX_USERNAME_LEN);
        assert_eq!(budget_key("Bad Name"), "bad name");
    }
}
