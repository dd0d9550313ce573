//! Fixed-window budgets of events per key: failed authentications per address and per
//! client, inactive answers per client. Once a key has spent its budget, it is refused
//! until its window ends. Every budget kept per address keys it by [`address_key`].

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Keys tracked at most; past this, expired windows are swept, and if none expired, new
/// keys go untracked rather than grow memory without bound.
const MAX_KEYS: usize = 100_000;

struct Window {
    start: Instant,
    spent: u32,
}

/// A budget of `limit` events per `window` for each key.
pub struct Budget<K> {
    limit: u32,
    window: Duration,
    keys: Mutex<HashMap<K, Window>>,
    /// How many keys are tracked, so the common case (nothing spent) takes no lock.
    tracked: AtomicUsize,
}

impl<K: Eq + Hash> Budget<K> {
    /// A budget of `limit` events per `window`; a limit of 0 means unlimited.
    pub fn new(limit: u32, window: Duration) -> Self {
        Budget {
            limit,
            window,
            keys: Mutex::new(HashMap::new()),
            tracked: AtomicUsize::new(0),
        }
    }

    /// `Err(wait)` while `key` has spent its budget in the current window.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.check_within(key, self.limit)
    }

    /// Spends one event for `key`; `Err(wait)` if that went past the budget.
    pub fn spend(&self, key: K) -> Result<(), Duration> {
        self.spend_within(key, self.limit)
    }

    /// The default limit of this budget (0: unlimited).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// [`Budget::check`] with a limit of the key's own (0: unlimited).
    pub fn check_within(&self, key: &K, limit: u32) -> Result<(), Duration> {
        if limit == 0 || self.tracked.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        match keys.get(key) {
            Some(w) if w.spent >= limit && now < w.start + self.window => {
                Err(w.start + self.window - now)
            }
            _ => Ok(()),
        }
    }

    /// [`Budget::check_within`] for a key made only when some key is tracked: a key that
    /// must be built (an allocation) costs nothing while nothing has been spent.
    pub fn check_within_key(&self, key: impl FnOnce() -> K, limit: u32) -> Result<(), Duration> {
        if limit == 0 || self.tracked.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        self.check_within(&key(), limit)
    }

    /// [`Budget::spend`] with a limit of the key's own (0: unlimited).
    pub fn spend_within(&self, key: K, limit: u32) -> Result<(), Duration> {
        if limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= MAX_KEYS && !keys.contains_key(&key) {
            keys.retain(|_, w| now < w.start + self.window);
            if keys.len() >= MAX_KEYS {
                return Ok(());
            }
        }
        let window = keys.entry(key).or_insert(Window {
            start: now,
            spent: 0,
        });
        if now >= window.start + self.window {
            *window = Window {
                start: now,
                spent: 0,
            };
        }
        window.spent = window.spent.saturating_add(1);
        let result = if window.spent > limit {
            Err(window.start + self.window - now)
        } else {
            Ok(())
        };
        self.tracked.store(keys.len(), Ordering::Relaxed);
        result
    }

    /// Forgets windows that have ended.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.retain(|_, w| now < w.start + self.window);
        self.tracked.store(keys.len(), Ordering::Relaxed);
    }
}

/// The key a per-address budget counts `ip` under: an IPv4 address (an IPv4-mapped IPv6
/// one as the IPv4 address it carries) alone, an IPv6 address by its /64. One subscriber
/// or host is commonly given a whole /64 (RFC 6177), so keying by the full address would
/// hand one party 2^64 budgets.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
        v4 => v4,
    }
}

/// Seconds to announce in `Retry-After`: never 0.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn budget_refuses_past_its_limit_until_the_window_ends() {
        let budget = Budget::new(2, Duration::from_secs(60));
        assert_eq!(budget.check(&"a"), Ok(()));
        assert_eq!(budget.spend("a"), Ok(()));
        assert_eq!(budget.spend("a"), Ok(()));
        assert_eq!(budget.check(&"a"), Err(Duration::from_secs(60)));
        assert_eq!(budget.check(&"b"), Ok(()), "other keys keep their budget");
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(budget.spend("a"), Err(Duration::from_secs(40)));
        tokio::time::advance(Duration::from_secs(40)).await;
        assert_eq!(budget.check(&"a"), Ok(()));
        assert_eq!(budget.spend("a"), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_may_have_a_limit_of_its_own() {
        let budget = Budget::new(1, Duration::from_secs(60));
        assert_eq!(budget.spend_within("a", 3), Ok(()));
        assert_eq!(budget.spend_within("a", 3), Ok(()));
        assert_eq!(budget.check_within(&"a", 3), Ok(()));
        assert_eq!(budget.check(&"a"), Err(Duration::from_secs(60)));
        for _ in 0..10 {
            assert_eq!(budget.spend_within("b", 0), Ok(()), "0: unlimited");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn zero_limit_is_unlimited() {
        let budget = Budget::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            assert_eq!(budget.spend("a"), Ok(()));
        }
        assert_eq!(budget.check(&"a"), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn sweep_forgets_ended_windows() {
        let budget = Budget::new(1, Duration::from_secs(1));
        budget.spend("a").unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        budget.sweep();
        assert_eq!(budget.tracked.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn ipv6_addresses_are_keyed_by_their_64() {
        let key = |text: &str| address_key(text.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(
            key("2001:db8:1:2::9"),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:198.51.100.7"), key("198.51.100.7"));
        assert_eq!(
            key("198.51.100.7"),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_ne!(key("198.51.100.7"), key("198.51.100.8"));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_seconds(Duration::from_millis(3_001)), 4);
    }
}
