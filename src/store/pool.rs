//! Connection pool settings shared by both backends.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::Connection;
use sqlx::pool::PoolConnectionMetadata;

/// Connections idle for longer than this are pinged before they are handed out.
pub(super) const PING_WHEN_IDLE_FOR: Duration = Duration::from_millis(100);

type Check<'c> = Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + 'c>>;

/// sqlx pings a connection both when it goes back to the pool and, by default, again
/// before handing it out: a lookup then costs three round trips instead of one. A
/// connection that came back moments ago was pinged then and is used at once; one that
/// sat idle longer is pinged first, so that a database restarted meanwhile costs no
/// request its answer.
pub(super) fn ping_when_idle<C: Connection>(
    connection: &mut C,
    meta: PoolConnectionMetadata,
) -> Check<'_> {
    Box::pin(async move {
        if meta.idle_for > PING_WHEN_IDLE_FOR {
            connection.ping().await?;
        }
        Ok(true)
    })
}
