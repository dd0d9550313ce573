//! `GET /metrics` on the metrics listener: Prometheus text exposition of the service's
//! metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::metrics::cache_totals;

/// Where the metrics listener serves the exposition.
pub const PATH: &str = "/metrics";

/// The exposition format's content type (Prometheus text format 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    for (cache, hits, misses) in state.directory.cache_stats() {
        cache_totals(cache, hits, misses);
    }
    let (hits, misses) = state.keys.cache_stats();
    cache_totals("verified_jwts", hits, misses);
    let (hits, misses) = state.auth.cache_stats();
    cache_totals("verified_credentials", hits, misses);
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        crate::metrics::render(),
    )
}
