//! The HTTP layer: shared state, the router and its layers.

pub mod form;
mod health;
mod introspect;
pub mod metadata;
pub mod observe;
pub mod openapi;
mod prometheus;
pub mod ratelimit;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{MethodRouter, get, post};
use tower::ServiceBuilder;
use tower_http::cors::{Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::ApiError;
use crate::introspection::Introspector;
use crate::store::Store;
use crate::token::jwt::{KeyError, KeySet};
use metadata::Metadata;

/// Everything a request needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub keys: Arc<KeySet>,
    pub auth: Authenticator,
    pub introspector: Introspector,
    pub metadata: Arc<Metadata>,
    pub rate_limit: Option<Arc<ratelimit::Config>>,
}

impl AppState {
    /// Builds the state over a migrated store: loads (or creates) the signing keys.
    pub async fn build(config: Config, store: Store) -> Result<Self, KeyError> {
        let keys = Arc::new(KeySet::load(&config, &store).await?);
        Ok(AppState {
            auth: Authenticator::new(store.clone()),
            introspector: Introspector::new(store.clone(), keys.clone(), &config.issuer),
            metadata: Arc::new(Metadata::new(&config)),
            rate_limit: ratelimit::config(&config.rate_limit),
            keys,
            store,
            config: Arc::new(config),
        })
    }
}

/// A GET endpoint whose other methods get our JSON 405 with `Allow: GET`.
fn get_only<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    get(handler).fallback(|| async { ApiError::MethodNotAllowed { allow: "GET" } })
}

/// The application: every endpoint with its layers.
pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET])
        .allow_headers(Any);
    let metadata = get_only(metadata::metadata).layer(cors);
    let mut limited = Router::new()
        .route(
            "/introspect",
            post(introspect::introspect)
                .fallback(|| async { ApiError::MethodNotAllowed { allow: "POST" } }),
        )
        .route(&state.metadata.path, metadata)
        .route("/openapi.json", get_only(openapi::openapi));
    if let Some(limits) = &state.rate_limit {
        limited = limited.layer(
            tower_governor::GovernorLayer::new(limits.clone()).error_handler(ratelimit::refusal),
        );
    }
    // Probes and scrapes are never rate limited.
    let mut unlimited = Router::new()
        .route("/healthz", get_only(health::healthz))
        .route("/readyz", get_only(health::readyz));
    if state.config.metrics.enabled {
        crate::metrics::handle();
        unlimited = unlimited.route("/metrics", get_only(prometheus::metrics));
    }
    let timeout = Duration::from_millis(state.config.http.request_timeout_ms);
    let max_body = state.config.http.max_body_bytes;
    limited
        .merge(unlimited)
        .fallback(|| async { ApiError::NotFound })
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(observe::observe))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ))
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    ApiError::Timeout
                }))
                .timeout(timeout)
                .layer(DefaultBodyLimit::max(max_body)),
        )
        .with_state(state)
}
