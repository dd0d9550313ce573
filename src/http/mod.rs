//! The HTTP layer: shared state, the router and its layers.

mod assets;
mod authorize;
mod caller;
pub mod client_ip;
mod consent;
pub mod cookies;
pub mod docs;
mod health;
mod introspect;
mod jwks;
pub mod listener;
mod login;
mod login_callback;
mod login_provider;
mod logout;
pub mod metadata;
pub mod observe;
pub mod openapi;
mod oracle;
pub mod pages;
pub mod params;
mod prometheus;
pub mod ratelimit;
pub mod register;
mod revoke;
pub mod tls;
mod token;
mod visit;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::cors::{AllowHeaders, Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::RefOr;
use utoipa::openapi::path::Paths;
use utoipa::openapi::schema::Schema;
use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;

use crate::auth::Authenticator;
use crate::auth::assertion::AssertionVerifier;
use crate::cache::Directory;
use crate::config::Config;
use crate::documents::Documents;
use crate::error::ApiError;
use crate::introspection::Introspector;
use crate::limits::Budget;
use crate::metrics::RequestMetrics;
use crate::signin::{self, Signin};
use crate::store::{Store, StoreError};
use crate::token::jwt::KeyError;
use crate::token::keyring::KeyRing;
use client_ip::TrustedProxies;
use metadata::Metadata;

/// The URL of an endpoint this server serves at `path`.
pub fn endpoint_url(issuer: &str, path: &str) -> String {
    format!("{}{path}", issuer.trim_end_matches('/'))
}

/// Everything a request needs, behind one `Arc`: axum clones the state for every
/// request, and one reference count is cheaper than one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub config: Arc<Config>,
    /// The store, and its caches: the one path to the store.
    pub directory: Directory,
    /// The signing and verification keys: the one path to them.
    pub keys: Arc<KeyRing>,
    pub auth: Authenticator,
    pub introspector: Introspector,
    pub metadata: Metadata,
    pub rate_limit: Option<ratelimit::Limiters>,
    pub proxies: Arc<TrustedProxies>,
    /// Inactive answers per client (RFC 7662 §4: introspection is an oracle).
    pub inactive_budget: Budget<oracle::Spender>,
    /// Verifies `private_key_jwt` client assertions (RFC 7523).
    pub assertions: AssertionVerifier,
    /// Signing users in (`login.enabled`): `/authorize` and its pages.
    pub signin: Option<Arc<Signin>>,
    /// Dynamic client registration (`registration.dynamic`): `POST /register`.
    pub registrar: Option<register::Registrar>,
    /// Client ID metadata documents (`registration.metadata_documents`).
    pub documents: Option<Arc<Documents>>,
    /// The audit trail: events handed to a writer off the request path.
    pub audit: crate::audit::Recorder,
}

/// Where the public keys are published (`jwks_uri`).
pub const JWKS_PATH: &str = "/jwks";

/// Why the application state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Signin(#[from] signin::LoadError),
    #[error("{0}")]
    Registration(String),
}

impl AppState {
    /// Builds the state over a migrated store: starts the change feed and loads (or
    /// creates) the signing keys.
    pub async fn build(config: Config, store: Store) -> Result<Self, StateError> {
        let config = Arc::new(config);
        let directory = Directory::start(store.clone(), &config.cache).await?;
        let keys = Arc::new(
            KeyRing::load(config.clone(), store.clone(), directory.keys_generation()).await?,
        );
        let signing_alg = keys
            .keys()
            .public_signing_alg(crate::token::now())
            .and_then(|alg| serde_json::to_value(alg).ok())
            .and_then(|alg| alg.as_str().map(str::to_owned));
        let signin = match config.login.enabled {
            true => Some(Arc::new(Signin::load(&config, &store).await?)),
            false => None,
        };
        let registrar = register::Registrar::new(&config).map_err(StateError::Registration)?;
        let documents = Documents::new(&config)
            .map_err(StateError::Registration)?
            .map(Arc::new);
        let limits = &config.rate_limit;
        let inactive_limit = limits.budget(limits.inactive_per_client);
        Ok(AppState(Arc::new(Shared {
            auth: Authenticator::new(&config),
            introspector: Introspector::new(&config),
            metadata: Metadata::new(&config, signing_alg.as_deref()),
            rate_limit: ratelimit::Limiters::new(limits),
            proxies: Arc::new(TrustedProxies::new(
                limits.trusted_proxies.clone(),
                config.http.client_ip_header,
            )),
            inactive_budget: Budget::new(
                inactive_limit,
                Duration::from_secs(limits.inactive_window_seconds),
            ),
            assertions: AssertionVerifier::new(&config.issuer, config.jwt.leeway_seconds),
            signin,
            registrar,
            documents,
            audit: crate::audit::Recorder::start(store),
            directory,
            keys,
            config,
        })))
    }
}

impl Shared {
    /// The store, uncached, reached through the directory.
    pub fn store(&self) -> &Store {
        self.directory.store()
    }
}

/// The metrics listener's application: `GET /metrics` and nothing else. It has a
/// listener of its own (`metrics.listen`) because metrics tell why introspections were
/// inactive, which a caller of the API must not learn.
pub fn metrics_router(state: AppState) -> Router {
    crate::metrics::handle();
    let metrics = Some(Arc::new(RequestMetrics::new([prometheus::PATH])));
    let metrics_only =
        get(prometheus::metrics).fallback(|| async { ApiError::MethodNotAllowed { allow: "GET" } });
    Router::new()
        .route(prometheus::PATH, metrics_only)
        .fallback(|| async { ApiError::NotFound })
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(
                    metrics,
                    observe::observe,
                ))
                .layer(no_store()),
        )
        .with_state(state)
}

fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    )
}

/// Which per-address rate limit an endpoint shares.
#[derive(Clone, Copy)]
enum Limit {
    /// Public documents: the generous limit (`rate_limit.metadata_*`).
    Documents,
    /// Endpoints that take credentials or drive a sign-in.
    Endpoints,
    /// Probes: never limited.
    Unlimited,
}

/// Whether a browser may read an endpoint's answers from another origin.
#[derive(Clone, Copy)]
enum Cors {
    No,
    /// Public documents, read by GET from any origin.
    Documents,
    /// Browser-based clients exchange codes, refresh and register from their own
    /// origin: any origin, never with cookies (SPEC: "CORS where browsers need it").
    Clients,
}

/// When an endpoint is served.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Served {
    Always,
    /// With sign-in on (`login.enabled`); never CORS-readable.
    WithSignin,
    /// With dynamic registration on (`registration.dynamic`).
    WithRegistration,
    /// On the metrics listener only ([`metrics_router`]): metrics tell why
    /// introspections were inactive, which a caller of the API must not learn.
    OnMetricsListener,
}

/// One endpoint, declared once: its handler with its documentation and method (the
/// route), how it is limited, who may read it cross-origin and when it is served. The
/// path is the documented one, except for the metadata document, served where the
/// issuer puts it (RFC 8414 §3.1). Requests are counted in metrics by this path.
struct Endpoint {
    route: UtoipaMethodRouter<AppState>,
    limit: Limit,
    cors: Cors,
    served: Served,
}

fn endpoint(
    route: UtoipaMethodRouter<AppState>,
    limit: Limit,
    cors: Cors,
    served: Served,
) -> Endpoint {
    Endpoint {
        route,
        limit,
        cors,
        served,
    }
}

/// Every endpoint, in the order the OpenAPI description lists them.
fn endpoints() -> Vec<Endpoint> {
    use {Cors as C, Limit as L, Served as S};
    vec![
        endpoint(
            routes!(introspect::introspect),
            L::Endpoints,
            C::No,
            S::Always,
        ),
        endpoint(routes!(token::token), L::Endpoints, C::Clients, S::Always),
        endpoint(routes!(revoke::revoke), L::Endpoints, C::Clients, S::Always),
        endpoint(routes!(jwks::jwks), L::Documents, C::Documents, S::Always),
        endpoint(
            routes!(metadata::metadata),
            L::Documents,
            C::Documents,
            S::Always,
        ),
        endpoint(routes!(health::healthz), L::Unlimited, C::No, S::Always),
        endpoint(routes!(health::readyz), L::Unlimited, C::No, S::Always),
        endpoint(
            routes!(prometheus::metrics),
            L::Unlimited,
            C::No,
            S::OnMetricsListener,
        ),
        endpoint(routes!(openapi::openapi), L::Documents, C::No, S::Always),
        endpoint(
            routes!(authorize::authorize),
            L::Endpoints,
            C::No,
            S::WithSignin,
        ),
        endpoint(routes!(login::login), L::Endpoints, C::No, S::WithSignin),
        endpoint(
            routes!(login_provider::start),
            L::Endpoints,
            C::No,
            S::WithSignin,
        ),
        endpoint(
            routes!(login_callback::callback),
            L::Endpoints,
            C::No,
            S::WithSignin,
        ),
        endpoint(
            routes!(consent::consent),
            L::Endpoints,
            C::No,
            S::WithSignin,
        ),
        endpoint(routes!(logout::logout), L::Endpoints, C::No, S::WithSignin),
        endpoint(
            routes!(assets::stylesheet),
            L::Documents,
            C::No,
            S::WithSignin,
        ),
        endpoint(
            routes!(register::register),
            L::Endpoints,
            C::Clients,
            S::WithRegistration,
        ),
    ]
}

/// The documentation of every endpoint: its path item and the schemas it names.
fn documented() -> impl Iterator<Item = (Paths, Vec<(String, RefOr<Schema>)>)> {
    endpoints()
        .into_iter()
        .map(|Endpoint { route, .. }| (route.1, route.0))
}

impl Endpoint {
    /// The documented path and the methods the endpoint takes, for `Allow`.
    fn path_and_allow(&self) -> (String, &'static str) {
        let (path, item) = self
            .route
            .1
            .paths
            .iter()
            .next()
            .expect("every endpoint documents its path");
        let allow = if item.post.is_some() { "POST" } else { "GET" };
        (path.clone(), allow)
    }
}

/// The application: every endpoint with its layers.
pub fn router(state: AppState) -> Router {
    let cors_documents = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET])
        .allow_headers(Any);
    let cors_clients = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER])
        .max_age(Duration::from_secs(600));
    let governed = |config: &Arc<ratelimit::Config>| {
        tower_governor::GovernorLayer::new(config.clone()).error_handler(ratelimit::refusal)
    };
    let mut router = Router::new();
    let mut counted = Vec::new();
    for endpoint in endpoints() {
        let (documented_path, allow) = endpoint.path_and_allow();
        let path = match documented_path == metadata::WELL_KNOWN {
            true => state.metadata.path.clone(),
            false => documented_path,
        };
        let served = match endpoint.served {
            Served::Always => true,
            Served::WithSignin => state.signin.is_some(),
            Served::WithRegistration => state.registrar.is_some(),
            Served::OnMetricsListener => continue,
        };
        counted.push(path.clone());
        if !served {
            continue;
        }
        let mut method = endpoint
            .route
            .2
            .fallback(move || async move { ApiError::MethodNotAllowed { allow } });
        if let Some(limits) = &state.rate_limit {
            method = match endpoint.limit {
                Limit::Documents => method.layer(governed(&limits.metadata)),
                Limit::Endpoints => method.layer(governed(&limits.endpoints)),
                Limit::Unlimited => method,
            };
        }
        method = match endpoint.cors {
            Cors::No => method,
            Cors::Documents => method.layer(cors_documents.clone()),
            Cors::Clients => method.layer(cors_clients.clone()),
        };
        router = router.route(&path, method);
    }
    // Request metrics resolved once for every path above.
    let metrics = state.config.metrics.enabled.then(|| {
        crate::metrics::handle();
        Arc::new(RequestMetrics::new(counted.iter().map(String::as_str)))
    });
    let timeout = Duration::from_millis(state.config.http.request_timeout_ms);
    let max_body = state.config.http.max_body_bytes;
    let max_head = state.config.http.max_header_bytes;
    let proxies = state.proxies.clone();
    router
        .fallback(|| async { ApiError::NotFound })
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(
                    metrics,
                    observe::observe,
                ))
                .layer(axum::middleware::from_fn_with_state(
                    max_head,
                    listener::limit_head,
                ))
                .layer(no_store())
                .layer(axum::middleware::from_fn_with_state(
                    proxies,
                    client_ip::resolve,
                ))
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    ApiError::Timeout
                }))
                .timeout(timeout)
                .layer(DefaultBodyLimit::max(max_body)),
        )
        .with_state(state)
}
