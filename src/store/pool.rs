//! Connection pool settings shared by both backends.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::pool::PoolConnectionMetadata;

/// Connections idle for longer than this are pinged before they are handed out.
pub(super) const PING_WHEN_IDLE_FOR: Duration = Duration::from_millis(100);

type Check<'c> = Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + 'c>>;

/// When this process last saw a connection to a database fail, in nanoseconds after
/// [`clock_base`] (0: never).
static LAST_CONNECTION_FAILURE: AtomicU64 = AtomicU64::new(0);

fn clock_base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn nanos_since_base() -> u64 {
    u64::try_from(clock_base().elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Notes that a connection failed (the database went away, or the network to it): every
/// pooled connection opened before now is pinged before its next use.
pub(super) fn connection_failed() {
    LAST_CONNECTION_FAILURE.fetch_max(nanos_since_base(), Ordering::Relaxed);
}

/// Whether a connection of age `age` was opened before the last failure seen at `failed`
/// (nanoseconds after the base, 0 for never), the time now being `now`.
fn older_than_failure(now: u64, age: Duration, failed: u64) -> bool {
    let age = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
    failed != 0 && now.saturating_sub(age) <= failed
}

/// sqlx pings a connection both when it goes back to the pool and, by default, again
/// before handing it out: a lookup then costs three round trips instead of one. A
/// connection that came back moments ago was pinged then and is used at once; one that
/// sat idle longer is pinged first, so that a database restarted meanwhile costs no
/// request its answer. So is every connection opened before a connection last failed:
/// after an outage, one that went back to the pool just before it is dead, however
/// briefly it sat idle.
pub(super) fn ping_when_idle<C: Connection>(
    connection: &mut C,
    meta: PoolConnectionMetadata,
) -> Check<'_> {
    Box::pin(async move {
        let failed = LAST_CONNECTION_FAILURE.load(Ordering::Relaxed);
        if meta.idle_for > PING_WHEN_IDLE_FOR
            || older_than_failure(nanos_since_base(), meta.age, failed)
        {
            connection.ping().await?;
        }
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_opened_before_a_failure_are_suspect() {
        let ms = |n: u64| n * 1_000_000;
        // Now is 10 ms after the base; a failure at 5 ms.
        assert!(older_than_failure(ms(10), Duration::from_millis(6), ms(5)));
        assert!(!older_than_failure(ms(10), Duration::from_millis(4), ms(5)));
        assert!(!older_than_failure(ms(10), Duration::from_millis(9), 0));
    }
}
