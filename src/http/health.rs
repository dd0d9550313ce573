//! `GET /healthz` (the process is up) and `GET /readyz` (the store answers; with the
//! status of each sign-in provider as details).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::docs::MethodNotAllowed;
use crate::error::ErrorCode;
use crate::federation::ProviderStatus;
use crate::metrics;

/// Where liveness is served.
pub const HEALTHZ: &str = "/healthz";
/// Where readiness is served.
pub const READYZ: &str = "/readyz";

/// How long readiness waits for the store before calling it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `/healthz`'s answer: `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Liveness {
    Ok,
}

/// `/readyz`'s answer: whether the store answered, and, when `[[login.providers]]` are
/// configured, whether each was discovered (a provider never makes the instance unready).
#[derive(Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Readiness {
    Ready {
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        providers: BTreeMap<String, ProviderStatus>,
    },
    Unavailable {
        error: ErrorCode,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        providers: BTreeMap<String, ProviderStatus>,
    },
}

#[utoipa::path(
    get,
    path = HEALTHZ,
    summary = "Liveness: the process is up",
    description = "Does not touch the store. Never rate limited.",
    responses(
        (status = 200, description = "The process answers.", body = Liveness),
        (status = 405, response = MethodNotAllowed),
    )
)]
pub async fn healthz() -> Json<Liveness> {
    Json(Liveness::Ok)
}

#[utoipa::path(
    get,
    path = READYZ,
    summary = "Readiness: the store answers",
    description = "Pings the store with a two-second limit. Goes unready while the store is \
        unreachable and ready again when it returns. With `[[login.providers]]`, `providers` \
        names each one `available` (discovered) or `unavailable` (discovery still retrying); \
        a provider does not change the status. Never rate limited.",
    responses(
        (status = 200, description = "The store answered: `ready`.", body = Readiness),
        (status = 405, response = MethodNotAllowed),
        (status = 503, description = "The store did not answer: `unavailable`.",
            body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
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
    let providers = state
        .signin
        .as_ref()
        .map(|signin| signin.providers.status())
        .unwrap_or_default();
    if ready {
        (StatusCode::OK, Json(Readiness::Ready { providers }))
    } else {
        let error = ErrorCode::TemporarilyUnavailable;
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness::Unavailable { error, providers }),
        )
    }
}
