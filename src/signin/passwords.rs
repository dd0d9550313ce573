//! Password sign-in within failure budgets kept in the store, so that every instance
//! spends the same ones (failures only are written; a right password reads them once).
//!
//! Each attempt is checked before argon2 runs, and a refused one is never verified:
//! - per client address: `rate_limit.password_failures_per_ip` per window;
//! - per username at an address: `rate_limit.password_failures_per_username` per window;
//! - per username from anywhere: past as many consecutive failures, each attempt waits
//!   a delay that doubles with every further failure (up to [`MAX_DELAY_SECONDS`]), and
//!   at [`MAX_CONSECUTIVE_FAILURES`] (NIST SP 800-63B §5.2.2) none is admitted until
//!   [`USER_FAILURES_KEPT_SECONDS`] pass without one. A right password ends the count.
//! - A browser its user proved their password from (while that user's credentials are
//!   unchanged) is admitted past all three on a budget of its own, which only that
//!   browser spends: [`PROVEN_BROWSER_FAILURES`] a day. Past it, it is budgeted as any.
//!
//! Unknown usernames are budgeted and timed alike: argon2 runs for them too, against a
//! hash made at start-up, so neither the answer nor its timing tells which usernames
//! exist; a disabled user with the right password is refused like a wrong password.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::binding::Browser;
use super::key::SigninKey;
use crate::auth::{hash_password, verify_password};
use crate::config::RateLimitConfig;
use crate::policy::{MAX_USERNAME_LEN, normalize_username};
use crate::secret::{Password, SecretHash};
use crate::store::{FailureCount, FailureWindow, Store, StoreError, UserRecord};
use crate::token::opaque;

/// Consecutive failures of a username after which no attempt is admitted (but from a
/// browser its user proved their password from): NIST SP 800-63B §5.2.2 allows 100.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 100;

/// The longest delay between two attempts of a username past its free failures.
pub const MAX_DELAY_SECONDS: i64 = 900;

/// How long a username's consecutive failures are remembered after the last one.
pub const USER_FAILURES_KEPT_SECONDS: i64 = 86_400;

/// Wrong passwords a browser may try for a user it proved, per day, past the budgets
/// of the username and the address.
pub const PROVEN_BROWSER_FAILURES: u32 = 5;

/// How long the budget of a browser for its proven user lasts.
const PROVEN_BROWSER_WINDOW_SECONDS: i64 = 86_400;

/// Why a password sign-in was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No such user, a wrong password, or a disabled user: one answer for all.
    Wrong,
    /// A failure budget is spent: the password was not checked. Retry after this long.
    Throttled(Duration),
}

/// The budgets, as configured: plain data. A limit of 0 is no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Whether failures are counted at all (`rate_limit.enabled`).
    pub enabled: bool,
    pub per_address: u32,
    /// Per username at one address, and the consecutive failures of a username from
    /// anywhere before delays begin.
    pub per_username: u32,
    /// The window of the per-address budgets, in seconds.
    pub window: i64,
}

impl Limits {
    pub fn of(config: &RateLimitConfig) -> Self {
        Limits {
            enabled: config.enabled,
            per_address: config.password_failures_per_ip,
            per_username: config.password_failures_per_username,
            window: i64::try_from(config.password_failure_window_seconds).unwrap_or(i64::MAX),
        }
    }
}

/// One password attempt: who it names, from where, and when.
pub struct Attempt<'a> {
    pub username: &'a str,
    pub password: &'a Password,
    pub browser: &'a Browser,
    pub ip: IpAddr,
    pub now: i64,
}

/// The budgets one attempt is judged by, by the digest of their keys.
#[derive(Clone, Copy, Debug)]
struct Keys {
    address: [u8; 32],
    user_address: [u8; 32],
    user: [u8; 32],
    /// The browser's own budget for its proven user.
    browser: Option<[u8; 32]>,
}

impl Keys {
    fn of(username: &str, ip: IpAddr, proven: Option<(&str, &str)>) -> Self {
        Keys {
            address: opaque::digest(&format!("address\n{ip}")),
            user_address: opaque::digest(&format!("username-address\n{username}\n{ip}")),
            user: opaque::digest(&format!("username\n{username}")),
            browser: proven.map(|(browser_id, user_id)| {
                opaque::digest(&format!("proven-browser\n{browser_id}\n{user_id}"))
            }),
        }
    }

    fn all(&self) -> Vec<[u8; 32]> {
        let mut all = vec![self.address, self.user_address, self.user];
        all.extend(self.browser);
        all
    }
}

/// What the store counts under each budget of an attempt now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub address: Option<FailureCount>,
    pub user_address: Option<FailureCount>,
    pub user: Option<FailureCount>,
    pub browser: Option<FailureCount>,
}

impl Counts {
    fn of(keys: &Keys, found: &[FailureCount]) -> Self {
        let find = |digest: [u8; 32]| found.iter().find(|c| c.digest == digest).copied();
        Counts {
            address: find(keys.address),
            user_address: find(keys.user_address),
            user: find(keys.user),
            browser: keys.browser.and_then(find),
        }
    }
}

/// How an attempt was admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// On the budget of a browser for the user it proved.
    ProvenBrowser,
    /// On the budgets of the address and the username.
    Budgets,
}

/// Whether an attempt with these counts is admitted at `now`, or how long to wait. A
/// browser that proved the user (`proven`) is admitted on its own budget while it lasts.
pub fn admit(limits: &Limits, counts: &Counts, proven: bool, now: i64) -> Result<Admitted, i64> {
    let spent = |count: Option<FailureCount>| count.map_or(0, |c| c.failures);
    if proven && spent(counts.browser) < PROVEN_BROWSER_FAILURES {
        return Ok(Admitted::ProvenBrowser);
    }
    let mut wait = 0;
    let mut windowed = |count: Option<FailureCount>, limit: u32| {
        if let Some(c) = count.filter(|c| limit > 0 && c.failures >= limit) {
            wait = wait.max(c.expires_at - now);
        }
    };
    windowed(counts.address, limits.per_address);
    windowed(counts.user_address, limits.per_username);
    if let Some(user) = counts.user {
        let until = match user_delay(user.failures, limits.per_username) {
            Delay::None => now,
            Delay::Seconds(delay) => user.last_at.saturating_add(delay),
            Delay::UntilForgotten => user.expires_at,
        };
        wait = wait.max(until - now);
    }
    if wait > 0 {
        Err(wait)
    } else {
        Ok(Admitted::Budgets)
    }
}

/// How long a username waits after its latest failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delay {
    None,
    Seconds(i64),
    /// No attempt until the count is forgotten.
    UntilForgotten,
}

/// The delay of a username after `consecutive` failures: none within its `free`
/// failures (0: no delays), then one second doubled with each failure past them, at
/// most [`MAX_DELAY_SECONDS`]; at [`MAX_CONSECUTIVE_FAILURES`], until forgotten.
pub fn user_delay(consecutive: u32, free: u32) -> Delay {
    if consecutive >= MAX_CONSECUTIVE_FAILURES {
        return Delay::UntilForgotten;
    }
    match consecutive.checked_sub(free) {
        Some(past) if free > 0 => {
            let delay = 1_i64.checked_shl(past.min(30)).unwrap_or(MAX_DELAY_SECONDS);
            Delay::Seconds(delay.min(MAX_DELAY_SECONDS))
        }
        _ => Delay::None,
    }
}

/// The failure budgets and the argon2 work of password sign-in.
pub struct Passwords {
    limits: Limits,
    dummy_hash: SecretHash,
    permits: Arc<Semaphore>,
}

impl fmt::Debug for Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwords")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Passwords {
    pub fn new(limits: &RateLimitConfig) -> Self {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        Passwords {
            limits: Limits::of(limits),
            dummy_hash: hash_password(&Password::new(crate::token::random_string(32))),
            permits: Arc::new(Semaphore::new(workers)),
        }
    }

    /// The user whose password this is, when they may sign in. The budgets are read
    /// and judged before argon2 runs, while holding one of the instance's argon2
    /// permits, so that concurrent attempts cannot all pass one check; a failure is
    /// counted before the permit is let go.
    pub async fn verify(
        &self,
        store: &Store,
        key: &SigninKey,
        attempt: &Attempt<'_>,
    ) -> Result<Result<UserRecord, Refused>, StoreError> {
        let name = budget_key(attempt.username);
        let user = match normalize_username(attempt.username) {
            Some(name) => store.user_by_username(&name).await?,
            None => None,
        };
        let proven = user
            .as_ref()
            .filter(|u| attempt.browser.has_proved(key, u))
            .map(|u| (attempt.browser.id.as_str(), u.user_id.as_str()));
        let keys = Keys::of(&name, crate::limits::address_key(attempt.ip), proven);
        let Ok(_permit) = self.permits.acquire().await else {
            return Ok(Err(Refused::Wrong));
        };
        let counts = match self.limits.enabled {
            true => Counts::of(
                &keys,
                &store.signin_failures(&keys.all(), attempt.now).await?,
            ),
            false => Counts::default(),
        };
        let admitted = match admit(&self.limits, &counts, proven.is_some(), attempt.now) {
            Ok(admitted) => admitted,
            Err(wait) => {
                crate::metrics::rate_limited();
                let wait = Duration::from_secs(u64::try_from(wait).unwrap_or(1));
                return Ok(Err(Refused::Throttled(wait)));
            }
        };
        let hash = user
            .as_ref()
            .and_then(|u| u.password_hash.as_ref())
            .unwrap_or(&self.dummy_hash);
        let verified = argon2(attempt.password, hash).await;
        match user {
            Some(user) if verified && !user.disabled && user.password_hash.is_some() => {
                if self.limits.enabled {
                    self.succeeded(store, &keys, &counts).await?;
                }
                Ok(Ok(user))
            }
            _ => {
                if self.limits.enabled {
                    self.failed(store, &keys, admitted, attempt.now).await?;
                }
                Ok(Err(Refused::Wrong))
            }
        }
    }

    /// Counts a failure: on the browser's own budget when it was admitted on it, else
    /// on the address and the username at it; on the username's consecutive failures
    /// either way.
    async fn failed(
        &self,
        store: &Store,
        keys: &Keys,
        admitted: Admitted,
        now: i64,
    ) -> Result<(), StoreError> {
        let window = FailureWindow {
            seconds: self.limits.window,
            sliding: false,
        };
        let mut spend = vec![(
            keys.user,
            FailureWindow {
                seconds: USER_FAILURES_KEPT_SECONDS,
                sliding: true,
            },
        )];
        match (admitted, keys.browser) {
            (Admitted::ProvenBrowser, Some(browser)) => spend.push((
                browser,
                FailureWindow {
                    seconds: PROVEN_BROWSER_WINDOW_SECONDS,
                    sliding: false,
                },
            )),
            _ => spend.extend([(keys.address, window), (keys.user_address, window)]),
        }
        for (digest, window) in spend {
            if store
                .record_signin_failure(&digest, window, now)
                .await?
                .is_none()
            {
                tracing::warn!("failed sign-ins are not counted: the store holds too many");
            }
        }
        Ok(())
    }

    /// A right password ends the username's count of failures, and those of this
    /// address and browser for it; the address keeps its own.
    async fn succeeded(
        &self,
        store: &Store,
        keys: &Keys,
        counts: &Counts,
    ) -> Result<(), StoreError> {
        let spent: Vec<[u8; 32]> = [counts.user, counts.user_address, counts.browser]
            .into_iter()
            .flatten()
            .map(|c| c.digest)
            .collect();
        debug_assert!(spent.iter().all(|d| keys.all().contains(d)));
        if !spent.is_empty() {
            store.clear_signin_failures(&spent).await?;
        }
        Ok(())
    }
}

/// argon2 off the async workers.
async fn argon2(password: &Password, hash: &SecretHash) -> bool {
    let (password, hash) = (password.clone(), hash.clone());
    tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false)
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

    const LIMITS: Limits = Limits {
        enabled: true,
        per_address: 30,
        per_username: 10,
        window: 300,
    };

    fn count(failures: u32, last_at: i64, expires_at: i64) -> Option<FailureCount> {
        Some(FailureCount {
            digest: [0; 32],
            failures,
            first_at: last_at,
            last_at,
            expires_at,
        })
    }

    #[test]
    fn delays_double_past_the_free_failures_up_to_a_bound() {
        assert_eq!(user_delay(9, 10), Delay::None);
        assert_eq!(user_delay(10, 10), Delay::Seconds(1));
        assert_eq!(user_delay(11, 10), Delay::Seconds(2));
        assert_eq!(user_delay(15, 10), Delay::Seconds(32));
        assert_eq!(user_delay(20, 10), Delay::Seconds(MAX_DELAY_SECONDS));
        assert_eq!(user_delay(99, 10), Delay::Seconds(MAX_DELAY_SECONDS));
        let bound = Delay::UntilForgotten;
        assert_eq!(user_delay(100, 10), bound, "NIST SP 800-63B: 100 at most");
        assert_eq!(user_delay(50, 0), Delay::None, "0: no delays");
        assert_eq!(user_delay(100, 0), bound, "but the bound holds");
        // From the first delay to the bound takes an attacker about 20 hours.
        let total: i64 = (10..100)
            .map(|n| match user_delay(n, 10) {
                Delay::Seconds(s) => s,
                _ => 0,
            })
            .sum();
        assert_eq!(total, 1_023 + 80 * MAX_DELAY_SECONDS);
    }

    #[test]
    fn an_attempt_waits_for_every_spent_budget() {
        let now = 1_000;
        assert_eq!(
            admit(&LIMITS, &Counts::default(), false, now),
            Ok(Admitted::Budgets)
        );
        let address = Counts {
            address: count(30, now - 10, now + 200),
            ..Counts::default()
        };
        assert_eq!(admit(&LIMITS, &address, false, now), Err(200));
        let user_address = Counts {
            user_address: count(10, now - 10, now + 100),
            ..Counts::default()
        };
        assert_eq!(admit(&LIMITS, &user_address, false, now), Err(100));
        // The username from anywhere: a delay from its latest failure.
        let user = |failures, last_at| Counts {
            user: count(failures, last_at, last_at + USER_FAILURES_KEPT_SECONDS),
            ..Counts::default()
        };
        assert_eq!(
            admit(&LIMITS, &user(9, now), false, now),
            Ok(Admitted::Budgets)
        );
        assert_eq!(admit(&LIMITS, &user(12, now - 1), false, now), Err(3));
        assert_eq!(
            admit(&LIMITS, &user(12, now - 4), false, now),
            Ok(Admitted::Budgets)
        );
        assert_eq!(
            admit(&LIMITS, &user(100, now - 5_000), false, now),
            Err(USER_FAILURES_KEPT_SECONDS - 5_000)
        );
        // The longest wait is the one said.
        let both = Counts {
            user: count(12, now, now + USER_FAILURES_KEPT_SECONDS),
            ..user_address
        };
        assert_eq!(admit(&LIMITS, &both, false, now), Err(100));
    }

    #[test]
    fn a_proven_browser_has_a_budget_of_its_own() {
        let now = 1_000;
        let attacked = Counts {
            address: count(30, now, now + 300),
            user_address: count(10, now, now + 300),
            user: count(100, now, now + USER_FAILURES_KEPT_SECONDS),
            browser: None,
        };
        assert!(admit(&LIMITS, &attacked, false, now).is_err());
        assert_eq!(
            admit(&LIMITS, &attacked, true, now),
            Ok(Admitted::ProvenBrowser)
        );
        let spent = Counts {
            browser: count(PROVEN_BROWSER_FAILURES, now, now + 86_400),
            ..attacked
        };
        assert!(
            admit(&LIMITS, &spent, true, now).is_err(),
            "then budgeted as any"
        );
        let spent_alone = Counts {
            browser: spent.browser,
            ..Counts::default()
        };
        assert_eq!(
            admit(&LIMITS, &spent_alone, true, now),
            Ok(Admitted::Budgets)
        );
    }

    #[test]
    fn budget_keys_are_distinct() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let keys = Keys::of("alice", ip, Some(("browser", "user")));
        let all = keys.all();
        assert_eq!(all.len(), 4);
        for (i, a) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|b| a != b));
        }
        let other = Keys::of("alice", "192.0.2.2".parse().unwrap(), None);
        assert_eq!(other.user, keys.user);
        assert_ne!(other.user_address, keys.user_address);
        assert_eq!(other.all().len(), 3);
    }

    #[test]
    fn usernames_are_budgeted_in_their_stored_form() {
        assert_eq!(budget_key("  Alice "), "alice");
        assert_eq!(budget_key("ALICE"), budget_key("alice"));
        let long = "X".repeat(500);
        assert_eq!(budget_key(&long).len(), MAX_USERNAME_LEN);
        assert_eq!(budget_key("Bad Name"), "bad name");
    }
}
