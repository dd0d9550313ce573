//! Whole requests through the real router over an in-memory store: the first input
//! byte picks the endpoint (the OAuth endpoints and the sign-in forms) and content type, the bytes up to the first newline become
//! the Authorization header, the rest is the body. Any 5xx or panic is a finding.

#![no_main]

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use introspectd::config::{Config, DatabaseUrl};
use introspectd::http::{AppState, router};
use introspectd::store::Store;
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tower::ServiceExt;

const PATHS: [&str; 6] = [
    "/introspect",
    "/token",
    "/revoke",
    "/login",
    "/consent",
    "/logout",
];
const CONTENT_TYPES: [&str; 3] = ["application/x-www-form-urlencoded", "application/json", ""];

fn app() -> &'static (Runtime, Router) {
    static APP: OnceLock<(Runtime, Router)> = OnceLock::new();
    APP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let router = runtime.block_on(async {
            let mut config = Config {
                database_url: DatabaseUrl("sqlite::memory:".to_owned()),
                ..Config::default()
            };
            config.rate_limit.enabled = false;
            // A client id that is an https URL is fetched as a metadata document: only
            // from `localhost`, which resolves locally and is refused before any
            // connection, so fuzzing runs the whole path and sends nothing anywhere.
            config.registration.allowed_hosts = vec!["localhost".to_owned()];
            let store = Store::connect(&config).await.expect("store");
            store.migrate().await.expect("migrate");
            let state = AppState::build(config, store).await.expect("state");
            router(state)
        });
        (runtime, router)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (authorization, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut request = Request::post(PATHS[usize::from(selector) % PATHS.len()]);
    let content_type = CONTENT_TYPES[usize::from(selector) / PATHS.len() % CONTENT_TYPES.len()];
    if !content_type.is_empty() {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(value) = authorization.and_then(|a| HeaderValue::from_bytes(a).ok()) {
        request = request.header(header::AUTHORIZATION, value);
    }
    let request = request.body(Body::from(body.to_vec())).expect("request");
    let (runtime, router) = app();
    let response = runtime
        .block_on(router.clone().oneshot(request))
        .expect("infallible");
    assert!(
        !response.status().is_server_error(),
        "{} for a malformed request",
        response.status()
    );
});
