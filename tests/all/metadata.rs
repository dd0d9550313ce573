//! GET /.well-known/oauth-authorization-server (RFC 8414), health and rate limiting.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Backend, TestApp, form, run_with};
use serde_json::json;

const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::ORIGIN, "https://mcp-client.example")
        .body(Body::empty())
        .unwrap()
}

async fn metadata_lists_what_is_served(app: TestApp) {
    let response = app.send(get(WELL_KNOWN)).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(response.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let doc = &response.json;
    assert_eq!(doc["issuer"], "http://127.0.0.1:8080");
    assert_eq!(
        doc["introspection_endpoint"],
        "http://127.0.0.1:8080/introspect"
    );
    let methods = json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt"
    ]);
    // Public clients (`none`) sign users in and use /token and /revoke, never
    // /introspect.
    let with_public = json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none"
    ]);
    assert_eq!(
        doc["introspection_endpoint_auth_methods_supported"],
        methods
    );
    assert_eq!(doc["token_endpoint"], "http://127.0.0.1:8080/token");
    assert_eq!(doc["token_endpoint_auth_methods_supported"], with_public);
    assert_eq!(doc["revocation_endpoint"], "http://127.0.0.1:8080/revoke");
    assert_eq!(
        doc["revocation_endpoint_auth_methods_supported"],
        with_public
    );
    assert_eq!(doc["jwks_uri"], "http://127.0.0.1:8080/jwks");
    assert_eq!(
        doc["grant_types_supported"],
        json!([
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(
        doc["introspection_signing_alg_values_supported"],
        json!(["EdDSA"])
    );
    // What the MCP authorization specification requires of a server that signs users in.
    assert_eq!(
        doc["authorization_endpoint"],
        "http://127.0.0.1:8080/authorize"
    );
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    // Client ID metadata documents are accepted by default, with sign-in.
    assert_eq!(doc["client_id_metadata_document_supported"], true);
}

async fn metadata_answers_cors_preflight(app: TestApp) {
    let request = Request::builder()
        .method("OPTIONS")
        .uri(WELL_KNOWN)
        .header(header::ORIGIN, "https://mcp-client.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "mcp-protocol-version",
        )
        .body(Body::empty())
        .unwrap();
    let response = app.send(request).await;
    assert!(response.status.is_success(), "{response:?}");
    assert_eq!(response.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

async fn metadata_is_get_only(app: TestApp) {
    let request = Request::post(WELL_KNOWN).body(Body::empty()).unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers[header::ALLOW], "GET");
}

async fn health_and_readiness(app: TestApp) {
    let response = app.send(get("/healthz")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json["status"], "ok");
    let response = app.send(get("/readyz")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json["status"], "ready");
}

async fn readiness_fails_and_introspection_is_unavailable_when_the_store_is_gone(app: TestApp) {
    let client = app.client("app", &[]).await;
    let token = app
        .opaque_for(&client, introspectd::vocabulary::TokenUse::AccessToken)
        .await;
    app.store.close().await;
    let response = app.send(get("/readyz")).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    let response = app.introspect(&client, &token).await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json["error"], "temporarily_unavailable");
    // Liveness does not depend on the store.
    assert_eq!(app.send(get("/healthz")).await.status, StatusCode::OK);
}

both_stores!(
    metadata_lists_what_is_served,
    metadata_answers_cors_preflight,
    metadata_is_get_only,
    health_and_readiness,
    readiness_fails_and_introspection_is_unavailable_when_the_store_is_gone,
);

async fn metadata_path_follows_the_issuer_path(backend: Backend) {
    run_with(
        backend,
        |config| {
            config.issuer = "https://as.example/tenant/one".to_owned();
            config.metadata.insert(
                "token_endpoint".to_owned(),
                json!("https://as.example/tenant/one/token"),
            );
            config
                .metadata
                .insert("scopes_supported".to_owned(), json!(["read", "write"]));
        },
        |app| async move {
            let response = app.send(get(&format!("{WELL_KNOWN}/tenant/one"))).await;
            assert_eq!(response.status, StatusCode::OK);
            let doc = &response.json;
            assert_eq!(doc["issuer"], "https://as.example/tenant/one");
            assert_eq!(
                doc["introspection_endpoint"],
                "https://as.example/tenant/one/introspect"
            );
            assert_eq!(doc["token_endpoint"], "https://as.example/tenant/one/token");
            assert_eq!(doc["scopes_supported"], json!(["read", "write"]));
            // RFC 8414 §3.1: not at the bare well-known path of another issuer.
            assert_eq!(
                app.send(get(WELL_KNOWN)).await.status,
                StatusCode::NOT_FOUND
            );
        },
    )
    .await;
}

async fn rate_limit_answers_429_with_retry_after(backend: Backend) {
    run_with(
        backend,
        |config| {
            config.rate_limit.enabled = true;
            config.rate_limit.per_second = 1;
            config.rate_limit.burst = 2;
            config.rate_limit.metadata_per_second = 1;
            config.rate_limit.metadata_burst = 3;
        },
        |app| async move {
            let body = form(&[("token", "x")]);
            for _ in 0..2 {
                let response = app.introspect_with(None, &body).await;
                assert_eq!(response.status, StatusCode::UNAUTHORIZED);
            }
            let response = app.introspect_with(None, &body).await;
            assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.json["error"], "slow_down");
            let retry: u64 = response.headers[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
            // The metadata document has a budget of its own.
            for _ in 0..3 {
                assert_eq!(app.send(get(WELL_KNOWN)).await.status, StatusCode::OK);
            }
            let response = app.send(get(WELL_KNOWN)).await;
            assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
            assert!(response.headers.contains_key(header::RETRY_AFTER));
            // Health checks are never limited.
            for _ in 0..5 {
                assert_eq!(app.send(get("/healthz")).await.status, StatusCode::OK);
                assert_eq!(app.send(get("/readyz")).await.status, StatusCode::OK);
            }
        },
    )
    .await;
}

both_backends!(
    metadata_path_follows_the_issuer_path,
    rate_limit_answers_429_with_retry_after,
);
