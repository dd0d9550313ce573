//! Per-client-address rate limiting (tower-governor), answered as an OAuth-style 429.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::response::IntoResponse;
use governor::middleware::NoOpMiddleware;
use tower_governor::GovernorError;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;

use crate::config::RateLimitConfig;
use crate::error::ApiError;

/// Keys requests by the address of the socket peer.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddress;

impl KeyExtractor for PeerAddress {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<IpAddr, GovernorError> {
        // Without connection info (an in-process caller) every request shares one key.
        Ok(req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()))
    }
}

pub type Config = GovernorConfig<PeerAddress, NoOpMiddleware>;

/// The limiter configuration, or `None` when rate limiting is off.
pub fn config(limits: &RateLimitConfig) -> Option<Arc<Config>> {
    if !limits.enabled {
        return None;
    }
    let period = Duration::from_nanos(1_000_000_000 / u64::from(limits.per_second.max(1)));
    GovernorConfigBuilder::default()
        .period(period)
        .burst_size(limits.burst)
        .key_extractor(PeerAddress)
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
