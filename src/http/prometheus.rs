//! `GET /metrics`: Prometheus text exposition of the service's metrics.

use axum::http::header;
use axum::response::IntoResponse;

/// The exposition format's content type (Prometheus text format 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        crate::metrics::render(),
    )
}
