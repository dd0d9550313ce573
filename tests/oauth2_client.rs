//! An independent OAuth 2.0 client library (the `oauth2` crate) against the server over a
//! real socket: discovery from the metadata, client credentials, refresh, introspection
//! and revocation.
//!
//! The client library insists on https endpoints (RFC 7009 §2 requires it for revocation),
//! so the issuer is an https URL and the transport below plays the TLS-terminating proxy
//! a deployment puts in front of the service: it sends each request, unchanged but for
//! the scheme, to the test's listener.

mod common;

use std::net::SocketAddr;

use common::{Backend, TestApp, issue_request};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use introspectd::admin::NewClient;
use introspectd::vocabulary::TokenUse;
use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, ClientSecret, HttpRequest, HttpResponse, IntrospectionUrl, RefreshToken,
    RevocationUrl, Scope, StandardRevocableToken, TokenIntrospectionResponse, TokenResponse,
    TokenUrl,
};
use serde_json::Value;

const ISSUER: &str = "https://as.example";

/// Sends an oauth2 request to the listener at `addr`.
async fn transport(addr: SocketAddr, request: HttpRequest) -> Result<HttpResponse, std::io::Error> {
    let (parts, body) = request.into_parts();
    assert_eq!(
        parts.uri.authority().map(|a| a.as_str()),
        Some("as.example"),
        "the client only talks to the discovered server"
    );
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forwarded = hyper::Request::builder()
        .method(parts.method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in &parts.headers {
        forwarded = forwarded.header(name, value);
    }
    let forwarded = forwarded
        .body(Full::new(Bytes::from(body)))
        .map_err(std::io::Error::other)?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let response = client
        .request(forwarded)
        .await
        .map_err(std::io::Error::other)?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok(HttpResponse::from_parts(parts, body.to_vec()))
}

/// Serves the app's router on a real socket for the rest of the test.
async fn serve(app: &TestApp) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let service = app
        .router
        .clone()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    addr
}

async fn discover(addr: SocketAddr) -> Value {
    let request = HttpRequest::new(Vec::new());
    let (mut parts, body) = request.into_parts();
    parts.uri = format!("{ISSUER}/.well-known/oauth-authorization-server")
        .parse()
        .unwrap();
    let response = transport(addr, HttpRequest::from_parts(parts, body))
        .await
        .expect("metadata");
    assert_eq!(response.status(), 200);
    serde_json::from_slice(response.body()).expect("metadata JSON")
}

fn field(doc: &Value, name: &str) -> String {
    doc[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {doc}"))
        .to_owned()
}

async fn oauth2_client_obtains_introspects_refreshes_and_revokes(app: TestApp) {
    let addr = serve(&app).await;
    let created = introspectd::admin::create_client(
        &app.store,
        common::granted(NewClient {
            name: "oauth2-rs".to_owned(),
            scope: Some("read write".to_owned()),
            ..NewClient::default()
        }),
        introspectd::token::now(),
    )
    .await
    .unwrap();
    let doc = discover(addr).await;
    assert_eq!(doc["issuer"], ISSUER);
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&"client_credentials".into())
    );
    let client = BasicClient::new(ClientId::new(created.client_id.clone()))
        .set_client_secret(ClientSecret::new(created.client_secret.expose().to_owned()))
        .set_token_uri(TokenUrl::new(field(&doc, "token_endpoint")).unwrap())
        .set_introspection_url(
            IntrospectionUrl::new(field(&doc, "introspection_endpoint")).unwrap(),
        )
        .set_revocation_url(RevocationUrl::new(field(&doc, "revocation_endpoint")).unwrap());
    let http = |request| transport(addr, request);

    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("read".to_owned()))
        .request_async(&http)
        .await
        .expect("client credentials grant");
    assert_eq!(
        token
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["read".to_owned()])
    );
    assert!(token.expires_in().is_some());

    let introspection = client
        .introspect(token.access_token())
        .request_async(&http)
        .await
        .expect("introspection");
    assert!(introspection.active());
    assert_eq!(
        introspection.client_id().map(|c| c.as_str()),
        Some(created.client_id.as_str())
    );
    assert_eq!(introspection.iss(), Some(ISSUER));

    client
        .revoke_token(StandardRevocableToken::AccessToken(
            token.access_token().clone(),
        ))
        .expect("https revocation endpoint")
        .request_async(&http)
        .await
        .expect("revocation");
    let introspection = client
        .introspect(token.access_token())
        .request_async(&http)
        .await
        .expect("introspection after revocation");
    assert!(!introspection.active());

    // A refresh token issued by `token issue`, exchanged and rotated by the library.
    let test_client = common::TestClient {
        id: created.client_id.clone(),
        secret: created.client_secret.expose().to_owned(),
    };
    let issued = app
        .issue(issue_request(
            &test_client,
            TokenUse::RefreshToken,
            None,
            &[],
        ))
        .await;
    let refreshed = client
        .exchange_refresh_token(&RefreshToken::new(issued.clone()))
        .request_async(&http)
        .await
        .expect("refresh grant");
    let rotated = refreshed.refresh_token().expect("a rotated refresh token");
    assert_ne!(rotated.secret(), &issued);
    let again = client
        .exchange_refresh_token(&RefreshToken::new(issued))
        .request_async(&http)
        .await;
    assert!(again.is_err(), "the retired refresh token is refused");
    let introspection = client
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(!introspection.active(), "reuse revoked the grant");
}

async fn oauth2_client_end_to_end(backend: Backend) {
    common::run_with(
        backend,
        |config| config.issuer = ISSUER.to_owned(),
        oauth2_client_obtains_introspects_refreshes_and_revokes,
    )
    .await;
}

both_backends!(oauth2_client_end_to_end);
