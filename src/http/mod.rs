//! The HTTP layer: shared state, the router and its layers.

mod caller;
pub mod form;
mod health;
mod introspect;
mod jwks;
pub mod metadata;
pub mod ratelimit;
mod revoke;
mod token;

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
use crate::auth::assertion::AssertionVerifier;
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
    /// Verifies `private_key_jwt` client assertions (RFC 7523).
    pub assertions: AssertionVerifier,
}

/// Where the public keys are published (`jwks_uri`).
pub const JWKS_PATH: &str = "/jwks";

impl AppState {
    /// Builds the state over a migrated store: loads (or creates) the signing keys.
    pub async fn build(config: Config, store: Store) -> Result<Self, KeyError> {
        let keys = Arc::new(KeySet::load(&config, &store).await?);
        let signing_alg = keys
            .public_signing_alg()
            .and_then(|alg| serde_json::to_value(alg).ok())
            .and_then(|alg| alg.as_str().map(str::to_owned));
        Ok(AppState {
            auth: Authenticator::new(store.clone()),
            introspector: Introspector::new(store.clone(), keys.clone(), &config.issuer),
            metadata: Arc::new(Metadata::new(&config, signing_alg.as_deref())),
            rate_limit: ratelimit::config(&config.rate_limit),
            assertions: AssertionVerifier::new(
                store.clone(),
                &config.issuer,
                config.jwt.leeway_seconds,
            ),
            keys,
            store,
            config: Arc::new(config),
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
        .layer(cors.clone());
    let jwks = get(jwks::jwks)
        .fallback(|| async { ApiError::MethodNotAllowed { allow: "GET" } })
        .layer(cors);
    let post_only = || async { ApiError::MethodNotAllowed { allow: "POST" } };
    let mut limited = Router::new()
        .route(
            introspect::PATH,
            post(introspect::introspect).fallback(post_only),
        )
        .route(token::PATH, post(token::token).fallback(post_only))
        .route(revoke::PATH, post(revoke::revoke).fallback(post_only))
        .route(JWKS_PATH, jwks)
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
