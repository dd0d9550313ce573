//! The HTTP layer: shared state, the router and its layers.

mod assets;
mod authorize;
mod caller;
pub mod client_ip;
mod consent;
pub mod form;
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
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{MethodRouter, get, post};
use tower::ServiceBuilder;
use tower_http::cors::{AllowHeaders, Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

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

/// A GET endpoint whose other methods get our JSON 405 with `Allow: GET`.
fn get_only<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    get(handler).fallback(|| async { ApiError::MethodNotAllowed { allow: "GET" } })
}

/// The metrics listener's application: `GET /metrics` and nothing else. It has a
/// listener of its own (`metrics.listen`) because metrics tell why introspections were
/// inactive, which a caller of the API must not learn.
pub fn metrics_router(state: AppState) -> Router {
    crate::metrics::handle();
    let metrics = Some(Arc::new(RequestMetrics::new([prometheus::PATH])));
    Router::new()
        .route(prometheus::PATH, get_only(prometheus::metrics))
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

/// The application: every endpoint with its layers.
pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET])
        .allow_headers(Any);
    // Browser-based clients exchange codes and refresh tokens from their own origin:
    // any origin, never with cookies (SPEC: "CORS where browsers need it").
    let cors_post = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER])
        .max_age(Duration::from_secs(600));
    let post_only = || async { ApiError::MethodNotAllowed { allow: "POST" } };
    let mut metadata = get_only(metadata::metadata);
    let mut jwks = get_only(jwks::jwks);
    let mut openapi = get_only(openapi::openapi);
    let mut introspect = post(introspect::introspect).fallback(post_only);
    let mut token = post(token::token).fallback(post_only);
    let mut revoke = post(revoke::revoke).fallback(post_only);
    let mut authorize = get_only(authorize::authorize);
    let mut login = post(login::login).fallback(post_only);
    let mut login_provider = post(login_provider::start).fallback(post_only);
    let mut login_callback = get_only(login_callback::callback);
    let mut consent = post(consent::consent).fallback(post_only);
    let mut logout = post(logout::logout).fallback(post_only);
    let mut assets = get_only(assets::stylesheet);
    let mut register = post(register::register).fallback(post_only);
    if let Some(limits) = &state.rate_limit {
        let governed = |config: &Arc<ratelimit::Config>| {
            tower_governor::GovernorLayer::new(config.clone()).error_handler(ratelimit::refusal)
        };
        // Public documents share the generous limit; endpoints that take credentials
        // share the other.
        metadata = metadata.layer(governed(&limits.metadata));
        jwks = jwks.layer(governed(&limits.metadata));
        openapi = openapi.layer(governed(&limits.metadata));
        introspect = introspect.layer(governed(&limits.endpoints));
        token = token.layer(governed(&limits.endpoints));
        revoke = revoke.layer(governed(&limits.endpoints));
        authorize = authorize.layer(governed(&limits.endpoints));
        login = login.layer(governed(&limits.endpoints));
        login_provider = login_provider.layer(governed(&limits.endpoints));
        login_callback = login_callback.layer(governed(&limits.endpoints));
        consent = consent.layer(governed(&limits.endpoints));
        logout = logout.layer(governed(&limits.endpoints));
        assets = assets.layer(governed(&limits.metadata));
        register = register.layer(governed(&limits.endpoints));
    }
    let mut limited = Router::new()
        .route(introspect::PATH, introspect)
        .route(token::PATH, token.layer(cors_post.clone()))
        .route(revoke::PATH, revoke.layer(cors_post.clone()))
        .route(JWKS_PATH, jwks.layer(cors.clone()))
        .route(&state.metadata.path, metadata.layer(cors))
        .route(openapi::PATH, openapi);
    // The sign-in pages: served only with sign-in on, and never CORS-readable.
    if state.signin.is_some() {
        limited = limited
            .route(authorize::PATH, authorize)
            .route(login::PATH, login)
            .route(login_provider::PATH, login_provider)
            .route(login_callback::PATH, login_callback)
            .route(consent::PATH, consent)
            .route(logout::PATH, logout)
            .route(assets::PATH, assets);
    }
    // Browser-based clients register from their own origin, like they use `/token`.
    if state.registrar.is_some() {
        limited = limited.route(register::PATH, register.layer(cors_post));
    }
    // Probes are never rate limited. Metrics are served by [`metrics_router`] only.
    let unlimited = Router::new()
        .route(health::HEALTHZ, get_only(health::healthz))
        .route(health::READYZ, get_only(health::readyz));
    // Request metrics resolved once for every route above.
    let metrics = state.config.metrics.enabled.then(|| {
        crate::metrics::handle();
        Arc::new(RequestMetrics::new([
            introspect::PATH,
            token::PATH,
            revoke::PATH,
            JWKS_PATH,
            &state.metadata.path,
            openapi::PATH,
            health::HEALTHZ,
            health::READYZ,
            authorize::PATH,
            login::PATH,
            login_provider::PATH,
            login_callback::PATH,
            consent::PATH,
            logout::PATH,
            assets::PATH,
            register::PATH,
        ]))
    });
    let timeout = Duration::from_millis(state.config.http.request_timeout_ms);
    let max_body = state.config.http.max_body_bytes;
    let max_head = state.config.http.max_header_bytes;
    let proxies = state.proxies.clone();
    limited
        .merge(unlimited)
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
