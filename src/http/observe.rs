//! Per-request observability: a request id, a span, one log line and the request metrics.
//!
//! Only the matched route is logged and counted, never the raw path or query, which a
//! careless caller could fill with a token.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::metrics::{self, RequestMetrics, UNMATCHED_ROUTE};

/// The header carrying the request id, in and out.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id that is kept.
const MAX_REQUEST_ID_LEN: usize = 128;

/// An incoming request id worth keeping: short, and only characters that ids in common
/// use (UUIDs, ULIDs, trace ids, base64) are made of.
fn acceptable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b))
}

/// The caller's `x-request-id` when acceptable, otherwise a fresh random one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    match headers.get(&X_REQUEST_ID) {
        Some(value) if acceptable_request_id(value) => value.clone(),
        _ => HeaderValue::from_str(&crate::token::random_string(12))
            .expect("base64url is a valid header value"),
    }
}

/// Records the authenticated client in the current request's span, so the request's
/// log line names it.
pub fn record_client(client_id: &str) {
    tracing::Span::current().record("client_id", client_id);
}

/// Wraps every request: span with request id and route, one line when answered
/// (status, latency, client), request metrics (unless metrics are off), and the id
/// echoed in the response.
pub async fn observe(
    State(metrics): State<Option<Arc<RequestMetrics>>>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let id = request_id(request.headers());
    let method = request.method().clone();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched
        .as_ref()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let span = tracing::info_span!(
        "request",
        method = %metrics::method_label(&method),
        route = %route,
        request_id = %id.to_str().unwrap_or_default(),
        client_id = tracing::field::Empty,
    );
    let request_id = id.to_str().unwrap_or_default().to_owned();
    let answered = crate::audit::with_request_id(request_id, next.run(request));
    let mut response = answered.instrument(span.clone()).await;
    let latency = start.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| {
        let latency_ms = latency.as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(status, latency_ms, "request answered");
        } else {
            tracing::info!(status, latency_ms, "request answered");
        }
    });
    if let Some(metrics) = metrics {
        metrics.record(&method, route, status, latency);
    }
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_id(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID.clone(), HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn incoming_request_id_is_kept() {
        let id = "7f1c2a9e-4b1d-4c8e-9a51-0d2f6e3b8c41";
        assert_eq!(request_id(&with_id(id)), id);
    }

    #[test]
    fn odd_or_long_request_ids_are_replaced() {
        for bad in ["has space", "quote\"", "{json}", &"a".repeat(129), ""] {
            let got = request_id(&with_id(bad));
            assert_ne!(got, bad);
            assert!(acceptable_request_id(&got), "{got:?}");
        }
    }

    #[test]
    fn missing_request_id_is_generated() {
        let one = request_id(&HeaderMap::new());
        let two = request_id(&HeaderMap::new());
        assert_ne!(one, two);
        assert!(acceptable_request_id(&one));
    }
}
