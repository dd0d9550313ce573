//! Postgres: the production store, shareable by several instances.

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::StoreError;

pub(super) async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url)?.application_name("introspectd");
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(super::pool::ping_when_idle::<sqlx::PgConnection>)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// A pool of at most two connections for administrative work such as creating databases.
pub async fn connect_admin(url: &str) -> Result<PgPool, StoreError> {
    connect(url, 2, Duration::from_secs(5)).await
}
