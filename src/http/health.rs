//! `GET /healthz` (the process is up) and `GET /readyz` (the store answers).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use crate::metrics;

/// Where liveness is served.
pub const HEALTHZ: &str = "/healthz";
/// Where readiness is served.
pub const READYZ: &str = "/readyz";

/// How long readiness waits for the store before calling it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let ready = match tokio::time::timeout(READY_TIMEOUT, state.store().ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(err)) => {
            metrics::store_error(&err);
            tracing::warn!(error = %err, "readiness check failed");
            false
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            false
        }
    };
    metrics::store_ready(ready);
    if ready {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        unready()
    }
}

fn unready() -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "unavailable", "error": "temporarily_unavailable"})),
    )
}
