//! `GET /metrics` on the metrics listener: Prometheus text exposition of the service's
//! metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use super::docs::MethodNotAllowed;
use crate::metrics::cache_totals;

/// Where the metrics listener serves the exposition.
pub const PATH: &str = "/metrics";

/// The exposition format's content type (Prometheus text format 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[utoipa::path(
    get,
    path = PATH,
    summary = "Prometheus metrics",
    description = "Served on the metrics listener (`metrics.listen`, default \
        `127.0.0.1:9464`) when `metrics.enabled` is true (the default), never on the API's \
        listener: the inactive reasons would tell callers of the API what they must not \
        learn. Without authentication and never rate limited; keep the metrics listener off \
        public networks. Requests by method, matched route and status; latency histograms \
        by method and route; introspection answers (`result` active or inactive, with \
        `reason`); client authentication failures by reason; rate-limit refusals; store \
        errors by kind; store readiness; cache lookups. No label carries a token, a secret \
        or a client id.",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4.",
            content_type = "text/plain", body = String),
        (status = 405, response = MethodNotAllowed),
    )
)]
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
