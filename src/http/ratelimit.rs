//! Per-client-address rate limiting (tower-governor), answered as an OAuth-style 429.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use axum::response::IntoResponse;
use governor::middleware::NoOpMiddleware;
use tower_governor::GovernorError;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;

use super::client_ip::ClientIp;
use crate::config::RateLimitConfig;
use crate::error::ApiError;
use crate::limits::address_key;

/// Keys requests by the client address resolved by [`super::client_ip::resolve`], an
/// IPv6 one by its /64 ([`address_key`]).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress;

impl KeyExtractor for ClientAddress {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<IpAddr, GovernorError> {
        Ok(req
            .extensions()
            .get::<ClientIp>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| address_key(c.0)))
    }
}

pub type Config = GovernorConfig<ClientAddress, NoOpMiddleware>;

/// The per-address limiters: every limited endpoint's, and the metadata document's.
#[derive(Clone)]
pub struct Limiters {
    pub endpoints: Arc<Config>,
    pub metadata: Arc<Config>,
}

impl Limiters {
    /// The limiters, or `None` when rate limiting is off.
    pub fn new(limits: &RateLimitConfig) -> Option<Self> {
        if !limits.enabled {
            return None;
        }
        Some(Limiters {
            endpoints: limiter(limits.per_second, limits.burst)?,
            metadata: limiter(limits.metadata_per_second, limits.metadata_burst)?,
        })
    }

    /// Forgets addresses that have not been seen for a while.
    pub fn sweep(&self) {
        self.endpoints.limiter().retain_recent();
        self.metadata.limiter().retain_recent();
    }
}

fn limiter(per_second: u32, burst: u32) -> Option<Arc<Config>> {
    let period = Duration::from_nanos(1_000_000_000 / u64::from(per_second.max(1)));
    GovernorConfigBuilder::default()
        .period(period)
        .burst_size(burst)
        .key_extractor(ClientAddress)
        .finish()
        .map(Arc::new)
}

/// Turns a limiter refusal into our error format with `Retry-After`.
pub fn refusal(error: GovernorError) -> Response<Body> {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            crate::metrics::rate_limited();
            ApiError::RateLimited {
                retry_after: wait_time.max(1),
            }
            .into_response()
        }
        other => ApiError::Internal(other.to_string()).into_response(),
    }
}
