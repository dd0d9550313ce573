//! The HTTP layer: shared state, the router and its layers.

pub mod form;
mod health;
mod introspect;
pub mod metadata;
pub mod ratelimit;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, Request, header};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::cors::{Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::Authenticator;
use crate::cache::Directory;
use crate::config::Config;
use crate::error::ApiError;
use crate::introspection::Introspector;
use crate::store::{Store, StoreError};
use crate::token::jwt::KeyError;
use crate::token::keyring::KeyRing;
use metadata::Metadata;

/// Everything a request needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub directory: Directory,
    pub keys: Arc<KeyRing>,
    pub auth: Authenticator,
    pub introspector: Introspector,
    pub metadata: Arc<Metadata>,
    pub rate_limit: Option<Arc<ratelimit::Config>>,
}

/// Why the application state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppState {
    /// Builds the state over a migrated store: starts the change feed and loads (or
    /// creates) the signing keys.
    pub async fn build(config: Config, store: Store) -> Result<Self, StateError> {
        let config = Arc::new(config);
        let directory = Directory::start(store.clone(), config.cache.capacity).await?;
        let keys = Arc::new(
            KeyRing::load(config.clone(), store.clone(), directory.keys_generation()).await?,
        );
        Ok(AppState {
            auth: Authenticator::new(&config.cache),
            introspector: Introspector::new(keys.clone(), &config),
            metadata: Arc::new(Metadata::new(&config)),
            rate_limit: ratelimit::config(&config.rate_limit),
            directory,
            keys,
            store,
            config,
        })
    }
}

/// The application: every endpoint with its layers.
pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET])
        .allow_headers(Any);
    let metadata = get(metadata::metadata)
        .fallback(|| async { ApiError::MethodNotAllowed { allow: "GET" } })
        .layer(cors);
    let mut limited = Router::new()
        .route(
            "/introspect",
            post(introspect::introspect)
                .fallback(|| async { ApiError::MethodNotAllowed { allow: "POST" } }),
        )
        .route(&state.metadata.path, metadata);
    if let Some(limits) = &state.rate_limit {
        limited = limited.layer(
            tower_governor::GovernorLayer::new(limits.clone()).error_handler(ratelimit::refusal),
        );
    }
    let health = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    let timeout = Duration::from_millis(state.config.http.request_timeout_ms);
    let max_body = state.config.http.max_body_bytes;
    limited
        .merge(health)
        .fallback(|| async { ApiError::NotFound })
        .layer(
            ServiceBuilder::new()
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request<_>| {
                            // The path only: a query string could carry a token.
                            tracing::info_span!(
                                "request",
                                method = %req.method(),
                                path = %req.uri().path(),
                            )
                        })
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
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
