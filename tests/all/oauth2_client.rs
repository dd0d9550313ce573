//! An independent OAuth 2.0 client library (the `oauth2` crate) against the server over a
//! real socket: discovery from the metadata, client credentials, refresh, introspection
//! and revocation; and, against the real binary, a user signed in with the
//! authorization code grant and PKCE by a client that knows only an MCP server's URL
//! (protected resource metadata, RFC 9728), whose calls the MCP server then serves on
//! introspection's word.
//!
//! The client library insists on https endpoints (RFC 7009 §2 requires it for revocation),
//! so the issuer is an https URL and the transport below plays the TLS-terminating proxy
//! a deployment puts in front of the service: it sends each request, unchanged but for
//! the scheme, to the test's listener.

use crate::common;

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
/// The operator's public MCP client: auth method `none`, the loopback callback, scope
/// `mcp`; its client id.
fn public_mcp_client(dir: &std::path::Path, db: &introspectd::config::DatabaseUrl) -> String {
    let public = common::binary::run_json(
        dir,
        db,
        &[
            "client",
            "create",
            "--name",
            "MCP client",
            "--auth-method",
            "none",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--scope",
            "mcp",
        ],
    );
    public["client_id"].as_str().unwrap().to_owned()
}

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

/// The resource an MCP server registers itself for, and the client's redirect URI (a
/// loopback one: any port matches).
const MCP: &str = "https://mcp.example/mcp";
const CALLBACK: &str = "http://127.0.0.1:49152/callback";

/// The cookies a response sets, as a browser sends them back with `kept` ones.
fn with_cookies(kept: &str, response: &common::binary::HttpResponse) -> String {
    let mut cookies: Vec<String> = kept
        .split("; ")
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    for value in response.headers.get_all(hyper::header::SET_COOKIE) {
        let pair = value
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let name = pair.split('=').next().unwrap().to_owned();
        cookies.retain(|c| !c.starts_with(&format!("{name}=")));
        cookies.push(pair);
    }
    cookies.join("; ")
}

/// The value of a hidden field of a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// A browser's form post to the server.
async fn post_page(
    addr: SocketAddr,
    path: &str,
    cookies: &str,
    fields: &[(&str, &str)],
) -> common::binary::HttpResponse {
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("cookie", cookies),
    ];
    common::binary::http(addr, "POST", path, &headers, &common::form(fields)).await
}

fn location(response: &common::binary::HttpResponse) -> String {
    assert_eq!(response.status, 303, "{}", response.text);
    response.headers["location"].to_str().unwrap().to_owned()
}

/// The client an MCP client builds from the discovered metadata.
type SignInClient = BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn sign_in_client(doc: &Value, client_id: &str) -> SignInClient {
    use oauth2::{AuthUrl, RedirectUrl};
    BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_auth_uri(AuthUrl::new(field(doc, "authorization_endpoint")).unwrap())
        .set_token_uri(TokenUrl::new(field(doc, "token_endpoint")).unwrap())
        .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).unwrap())
}

/// The browser's way through the login and consent pages (a plain HTTP client carrying
/// the cookies) for `client`, then the code exchange by the `oauth2` crate: the tokens,
/// and the consent page as the user saw it.
async fn sign_in(
    addr: SocketAddr,
    client: &SignInClient,
    password: &str,
) -> (oauth2::basic::BasicTokenResponse, String) {
    use common::binary::http;
    use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge};

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("mcp".to_owned()))
        .add_extra_param("resource", MCP)
        .set_pkce_challenge(challenge)
        .url();
    assert_eq!(url.host_str(), Some("as.example"));

    let path = format!("{}?{}", url.path(), url.query().unwrap());
    let login = http(addr, "GET", &path, &[], "").await;
    assert_eq!(login.status, 200, "{}", login.text);
    let cookies = with_cookies("", &login);
    let fields = [
        ("request", hidden(&login.text, "request")),
        ("csrf_token", hidden(&login.text, "csrf_token")),
        ("username", "alice".to_owned()),
        ("password", password.to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let signed_in = post_page(addr, "/login", &cookies, &fields).await;
    let session = signed_in.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        session.contains("Secure"),
        "an https issuer's cookie: {session}"
    );
    let cookies = with_cookies(&cookies, &signed_in);
    let next = format!("/{}", location(&signed_in));
    let consent = http(addr, "GET", &next, &[("cookie", &cookies)], "").await;
    assert_eq!(consent.status, 200, "{}", consent.text);
    let allow = [
        ("request", hidden(&consent.text, "request")),
        ("csrf_token", hidden(&consent.text, "csrf_token")),
        ("decision", "allow".to_owned()),
    ];
    let allow: Vec<(&str, &str)> = allow.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let back = location(&post_page(addr, "/consent", &cookies, &allow).await);
    let back = url::Url::parse(&back).unwrap();
    assert!(back.as_str().starts_with(&format!("{CALLBACK}?")), "{back}");
    let param = |name: &str| {
        back.query_pairs()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("{name} in {back}"))
    };
    assert_eq!(param("state"), *state.secret());
    assert_eq!(param("iss"), ISSUER, "RFC 9207");

    let tokens = client
        .exchange_code(AuthorizationCode::new(param("code")))
        .set_pkce_verifier(verifier)
        .add_extra_param("resource", MCP)
        .request_async(&|request| transport(addr, request))
        .await
        .expect("authorization code exchange");
    (tokens, consent.text)
}

/// The protected resource metadata path of [`MCP`] (RFC 9728 §3.1).
const MCP_METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

/// An MCP server as a resource server, on loopback: it publishes protected resource
/// metadata naming the issuer (RFC 9728), answers a call without a token with `401` and
/// `WWW-Authenticate: Bearer resource_metadata=…` (MCP authorization, RFC 9728 §5.1), and
/// serves a call only when introspectd, asked with the server's own credentials, answers
/// active with [`MCP`] in `aud`. Answers the introspected user's `sub` and `username`.
async fn mcp_server(introspectd: SocketAddr, id: String, secret: String) -> SocketAddr {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;

    let metadata = axum::routing::get(|| async {
        axum::Json(serde_json::json!({
            "resource": MCP,
            "authorization_servers": [ISSUER],
            "bearer_methods_supported": ["header"],
        }))
    });
    let call = axum::routing::post(move |headers: HeaderMap| {
        let (id, secret) = (id.clone(), secret.clone());
        async move { answer_call(introspectd, &id, &secret, &headers).await }
    });
    async fn answer_call(
        introspectd: SocketAddr,
        id: &str,
        secret: &str,
        headers: &HeaderMap,
    ) -> axum::response::Response {
        let challenge =
            format!("Bearer resource_metadata=\"https://mcp.example{MCP_METADATA_PATH}\"");
        let unauthorized = (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
        );
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(token) = token else {
            return unauthorized.into_response();
        };
        let (status, answer) = common::binary::introspect(introspectd, id, secret, token).await;
        let audience = &answer["aud"];
        let for_this_server = audience == MCP
            || audience
                .as_array()
                .is_some_and(|all| all.iter().any(|a| a == MCP));
        if status != 200 || answer["active"] != true || !for_this_server {
            return unauthorized.into_response();
        }
        let user = serde_json::json!({"sub": answer["sub"], "username": answer["username"]});
        axum::Json(user).into_response()
    }
    let app = axum::Router::new()
        .route(MCP_METADATA_PATH, metadata)
        .route("/mcp", call);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the MCP server");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// What an MCP client that knows only [`MCP`] does first: call it, follow the
/// `resource_metadata` of the `401` to the protected resource metadata, and take the
/// authorization server from there (the server at `mcp.example` is the one at `mcp`).
async fn authorization_server_of_mcp(mcp: SocketAddr) -> String {
    let call = common::binary::http(mcp, "POST", "/mcp", &[], "").await;
    assert_eq!(call.status, 401);
    let challenge = call.headers["www-authenticate"].to_str().unwrap();
    let metadata_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no resource_metadata in {challenge}"));
    let metadata_url = url::Url::parse(metadata_url).unwrap();
    assert_eq!(metadata_url.host_str(), Some("mcp.example"));
    let metadata = common::binary::http(mcp, "GET", metadata_url.path(), &[], "").await;
    assert_eq!(metadata.status, 200);
    assert_eq!(metadata.json["resource"], MCP);
    let servers = &metadata.json["authorization_servers"];
    servers[0]
        .as_str()
        .expect("an authorization server")
        .to_owned()
}

/// The authorization code flow with PKCE, as an MCP client runs it against the real
/// binary: discovery, the browser's way through the login and consent pages, the code
/// exchange by the `oauth2` crate, the MCP server's introspection, and a refresh.
/// A fresh store with the user `alice` and the MCP server as a resource server that may
/// introspect tokens for [`MCP`].
struct SignInSetup {
    db: introspectd::config::DatabaseUrl,
    _guard: common::TestDb,
    dir: tempfile::TempDir,
    user: Value,
    server_id: String,
    server_secret: String,
}

impl SignInSetup {
    async fn new(backend: Backend) -> Option<Self> {
        use common::binary::{create_client, run_json};
        let (db, guard) = common::fresh_db(backend).await?;
        let dir = tempfile::tempdir().unwrap();
        let user = run_json(dir.path(), &db, &["user", "create", "--username", "alice"]);
        let (server_id, server_secret) = create_client(dir.path(), &db, &["--audience", MCP]);
        Some(SignInSetup {
            db,
            _guard: guard,
            dir,
            user,
            server_id,
            server_secret,
        })
    }

    fn password(&self) -> &str {
        self.user["password"].as_str().unwrap()
    }

    /// The real binary over this store, with `env` set, behind the https issuer.
    fn serve(&self, env: &[(&str, &str)]) -> common::binary::Server {
        let mut cmd = common::binary::command(self.dir.path(), &self.db);
        cmd.env("INTROSPECTD_ISSUER", ISSUER)
            .envs(env.iter().copied());
        common::binary::Server::start_with(cmd)
    }

    /// The MCP server's introspection of `token`: active, for `alice`, `mcp` at [`MCP`],
    /// issued to `client_id`.
    async fn assert_introspects(&self, addr: SocketAddr, token: &str, client_id: &str) {
        let (server_id, secret) = (&self.server_id, &self.server_secret);
        let (status, answer) = common::binary::introspect(addr, server_id, secret, token).await;
        assert_eq!(status, 200);
        assert_eq!(answer["active"], true, "{answer}");
        assert_eq!(answer["sub"], self.user["user_id"]);
        assert_eq!(answer["username"], "alice");
        assert_eq!(answer["aud"], MCP);
        assert_eq!(answer["scope"], "mcp");
        assert_eq!(answer["client_id"], client_id);
    }

    /// An MCP server for [`MCP`] that asks the server at `addr` about the tokens it is
    /// called with, with the credentials of this setup's resource server; and a client
    /// that knows only [`MCP`] finds the issuer from it.
    async fn mcp_server(&self, addr: SocketAddr) -> SocketAddr {
        let (id, secret) = (self.server_id.clone(), self.server_secret.clone());
        let mcp = mcp_server(addr, id, secret).await;
        assert_eq!(authorization_server_of_mcp(mcp).await, ISSUER);
        mcp
    }

    /// The client calls the MCP server with `token`, which the server's introspection
    /// vouches for: served, as `alice`.
    async fn assert_mcp_serves(&self, mcp: SocketAddr, token: &str) {
        let bearer = format!("Bearer {token}");
        let headers = [("authorization", bearer.as_str())];
        let called = common::binary::http(mcp, "POST", "/mcp", &headers, "").await;
        assert_eq!(called.status, 200, "{}", called.text);
        assert_eq!(called.json["sub"], self.user["user_id"]);
        assert_eq!(called.json["username"], "alice");
    }
}

async fn oauth2_client_signs_a_user_in(backend: Backend) {
    use common::binary::introspect;

    let Some(setup) = SignInSetup::new(backend).await else {
        return;
    };
    let (dir, db) = (setup.dir.path(), &setup.db);
    let (user, password) = (&setup.user, setup.password());
    let (server_id, server_secret) = (&setup.server_id, &setup.server_secret);
    let client_id = &public_mcp_client(dir, db);
    let server = setup.serve(&[]);
    let addr = server.addr;

    // The client knows only the MCP server's URL; it finds introspectd from there.
    let mcp = setup.mcp_server(addr).await;
    let doc = discover(addr).await;
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let client = sign_in_client(&doc, client_id);
    let (tokens, consent) = sign_in(addr, &client, password).await;
    assert!(consent.contains("MCP client") && consent.contains(MCP));
    assert!(
        !consent.contains("registered itself"),
        "an operator's client is not called self-registered"
    );

    let access = tokens.access_token().secret();
    setup.assert_introspects(addr, access, client_id).await;
    setup.assert_mcp_serves(mcp, access).await;

    let http_client = |request| transport(addr, request);
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("a refresh token"))
        .request_async(&http_client)
        .await
        .expect("refresh");
    let (_, answer) = introspect(
        addr,
        server_id,
        server_secret,
        refreshed.access_token().secret(),
    )
    .await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], user["user_id"]);
    assert_eq!(answer["aud"], MCP);
    let again = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&http_client)
        .await;
    assert!(again.is_err(), "the rotated refresh token is refused");
    let log = server.stop();
    for secret in [password, access.as_str(), server_secret.as_str()] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}

both_backends!(oauth2_client_signs_a_user_in);

/// An MCP client the operator never heard of: it finds `registration_endpoint` in the
/// metadata, registers itself as a public client (RFC 7591), and signs the user in with
/// the id it was given; the consent page says it registered itself, and the token it
/// obtains introspects as its own. `client show` tells the operator how it came to be.
async fn registered_client_signs_a_user_in(backend: Backend) {
    use common::binary::{http, run_json};

    let Some(setup) = SignInSetup::new(backend).await else {
        return;
    };
    let server = setup.serve(&[("INTROSPECTD_REGISTRATION__MAX_SCOPE", "mcp")]);
    let addr = server.addr;

    let mcp = setup.mcp_server(addr).await;
    let doc = discover(addr).await;
    let endpoint = url::Url::parse(&field(&doc, "registration_endpoint")).unwrap();
    assert_eq!(endpoint.host_str(), Some("as.example"));
    let metadata = serde_json::json!({
        "client_name": "Look-alike Inspector",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "mcp",
    });
    let registered = http(
        addr,
        "POST",
        endpoint.path(),
        &[("content-type", "application/json")],
        &metadata.to_string(),
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    assert_eq!(
        registered.json.get("client_secret"),
        None,
        "a public client"
    );
    let client_id = registered.json["client_id"].as_str().unwrap();

    let client = sign_in_client(&doc, client_id);
    let (tokens, consent) = sign_in(addr, &client, setup.password()).await;
    assert!(consent.contains("Look-alike Inspector"));
    assert!(consent.contains("This application registered itself"));
    assert!(
        consent.contains("an application on this computer"),
        "where it returns to is shown"
    );

    let access = tokens.access_token().secret();
    setup.assert_introspects(addr, access, client_id).await;
    setup.assert_mcp_serves(mcp, access).await;
    assert!(tokens.refresh_token().is_some());
    let log = server.stop();
    assert!(!log.contains(access.as_str()), "a token in the log");

    let (dir, db) = (setup.dir.path(), &setup.db);
    let shown = run_json(dir, db, &["client", "show", client_id]);
    assert_eq!(shown["origin"], "dynamic");
    assert!(shown["last_used_at"].is_i64(), "its use is noted: {shown}");
    let listed = run_json(dir, db, &["client", "list"]);
    let mut origins: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["origin"].as_str().unwrap())
        .collect();
    origins.sort_unstable();
    assert_eq!(origins, ["dynamic", "operator"]);
}

both_backends!(registered_client_signs_a_user_in);

/// An MCP client the operator never heard of, named by the URL of its client ID
/// metadata document: the metadata says documents are supported, the server fetches the
/// document over https (from loopback, so with `registration.allow_private_networks` and
/// the test's CA in `registration.ca_file`), and the user signs in; the consent page says
/// the client registered itself and where its document lives, and the token it obtains
/// introspects as the document's URL. `client list` shows it as a `metadata_document`.
async fn metadata_document_client_signs_a_user_in(backend: Backend) {
    use common::binary::run_json;
    use common::documents::DocServer;

    let Some(setup) = SignInSetup::new(backend).await else {
        return;
    };
    let documents = DocServer::start().await;
    let client_id = documents.serve_document(
        "/oauth/client.json",
        serde_json::json!({
            "client_name": "Document Inspector",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "mcp",
        }),
    );
    let ca_file = documents.ca_file.path().to_str().unwrap().to_owned();
    let server = setup.serve(&[
        ("INTROSPECTD_REGISTRATION__MAX_SCOPE", "mcp"),
        ("INTROSPECTD_REGISTRATION__ALLOW_PRIVATE_NETWORKS", "true"),
        ("INTROSPECTD_REGISTRATION__CA_FILE", &ca_file),
    ]);
    let addr = server.addr;

    let mcp = setup.mcp_server(addr).await;
    let doc = discover(addr).await;
    assert_eq!(doc["client_id_metadata_document_supported"], true);
    let client = sign_in_client(&doc, &client_id);
    let (tokens, consent) = sign_in(addr, &client, setup.password()).await;
    assert!(consent.contains("Document Inspector"));
    assert!(consent.contains("This application registered itself"));
    let publisher = format!("localhost:{}", documents.port);
    assert!(consent.contains(&publisher), "the document's host is shown");
    assert_eq!(documents.hits("/oauth/client.json"), 1);

    let access = tokens.access_token().secret();
    setup.assert_introspects(addr, access, &client_id).await;
    setup.assert_mcp_serves(mcp, access).await;
    assert!(tokens.refresh_token().is_some());
    let log = server.stop();
    assert!(!log.contains(access.as_str()), "a token in the log");
    assert!(
        log.contains("client ID metadata document fetched"),
        "the fetch is logged"
    );

    let (dir, db) = (setup.dir.path(), &setup.db);
    let shown = run_json(dir, db, &["client", "show", &client_id]);
    assert_eq!(shown["origin"], "metadata_document");
    assert_eq!(shown["name"], "Document Inspector");
}

both_backends!(metadata_document_client_signs_a_user_in);
/// The issue's whole story: only an OpenID provider configured, no password form and no
/// local user. An MCP client that knows only the MCP server's URL sends the browser to
/// `/authorize`, which goes straight to the provider; the user signs in there (a real
/// node-oidc-provider on loopback) and comes back through `/login/callback/corp`, allows
/// the client, and the client calls the MCP server, whose introspection names the user
/// as the provider identified them: `sub` the linked local user, `username` the
/// provider's `preferred_username`.
async fn oauth2_client_signs_a_user_in_through_the_provider(backend: Backend) {
    use common::binary::{http, run_json};
    use common::oidc::{OidcProvider, ProviderOptions, oidc_present};

    if !oidc_present() {
        return;
    }
    let Some((db, _guard)) = common::fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let callback = format!("{ISSUER}/login/callback/corp");
    let provider = OidcProvider::start(ProviderOptions::new(&callback)).await;
    let claims = serde_json::json!({
        "email": "alice@example.com",
        "email_verified": true,
        "preferred_username": "alice",
        "name": "Alice Example",
    });
    provider.account("sub-alice-at-corp", claims).await;
    // Only the server reads it; the CLI commands below go without.
    let config = format!(
        "[login]\nlocal_users = false\n\n[[login.providers]]\nid = \"corp\"\n\
         name = \"Corp SSO\"\nissuer = \"{}\"\nclient_id = \"{}\"\n\
         client_secret_env = \"CORP_CLIENT_SECRET\"\nallowed_email_domains = [\"example.com\"]\n",
        provider.issuer, provider.options.client_id
    );
    std::fs::write(dir.path().join("federation.toml"), config).unwrap();
    let (server_id, server_secret) =
        common::binary::create_client(dir.path(), &db, &["--audience", MCP]);
    let client_id = &public_mcp_client(dir.path(), &db);
    let mut cmd = common::binary::command(dir.path(), &db);
    cmd.env("INTROSPECTD_ISSUER", ISSUER)
        .env("CORP_CLIENT_SECRET", &provider.options.client_secret)
        .args(["--config", "federation.toml"]);
    let server = common::binary::Server::start_with(cmd);
    let addr = server.addr;
    // Discovery runs in the background: ready when /readyz says so.
    common::oidc::wait_discovered(addr, "corp").await;

    let mcp = mcp_server(addr, server_id.clone(), server_secret.clone()).await;
    assert_eq!(authorization_server_of_mcp(mcp).await, ISSUER);
    let doc = discover(addr).await;
    let client = sign_in_client(&doc, client_id);
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(oauth2::CsrfToken::new_random)
        .add_scope(Scope::new("mcp".to_owned()))
        .add_extra_param("resource", MCP)
        .set_pkce_challenge(challenge)
        .url();
    let path = format!("{}?{}", url.path(), url.query().unwrap());
    let sent = http(addr, "GET", &path, &[], "").await;
    let to_provider = location(&sent);
    assert!(to_provider.starts_with(&provider.issuer), "{to_provider}");
    let cookies = with_cookies("", &sent);
    let back = provider
        .sign_in(&to_provider, Some("sub-alice-at-corp"))
        .await;
    let back = back.strip_prefix(ISSUER).expect("back at this issuer");
    assert!(back.starts_with("/login/callback/corp?"), "{back}");
    let signed_in = http(addr, "GET", back, &[("cookie", &cookies)], "").await;
    let cookies = with_cookies(&cookies, &signed_in);
    let next = location(&signed_in);
    let next = format!("/{}", next.trim_start_matches("../"));
    let consent = http(addr, "GET", &next, &[("cookie", &cookies)], "").await;
    assert_eq!(consent.status, 200, "{}", consent.text);
    assert!(consent.text.contains("alice"), "{}", consent.text);
    let allow = [
        ("request", hidden(&consent.text, "request")),
        ("csrf_token", hidden(&consent.text, "csrf_token")),
        ("decision", "allow".to_owned()),
    ];
    let allow: Vec<(&str, &str)> = allow.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let to_client = location(&post_page(addr, "/consent", &cookies, &allow).await);
    let to_client = url::Url::parse(&to_client).unwrap();
    let param = |name: &str| {
        to_client
            .query_pairs()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("{name} in {to_client}"))
    };
    assert_eq!(param("state"), *state.secret());
    let tokens = client
        .exchange_code(oauth2::AuthorizationCode::new(param("code")))
        .set_pkce_verifier(verifier)
        .add_extra_param("resource", MCP)
        .request_async(&|request| transport(addr, request))
        .await
        .expect("authorization code exchange");
    let access = tokens.access_token().secret();

    let user = run_json(dir.path(), &db, &["user", "show", "alice"]);
    assert_eq!(user["links"][0]["provider"], "corp");
    assert_eq!(user["links"][0]["subject"], "sub-alice-at-corp");
    assert_eq!(user["has_password"], false);
    let (status, answer) =
        common::binary::introspect(addr, &server_id, &server_secret, access).await;
    assert_eq!(status, 200);
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], user["user_id"]);
    assert_eq!(answer["username"], "alice");
    assert_eq!(answer["aud"], MCP);
    let bearer = format!("Bearer {access}");
    let called = http(mcp, "POST", "/mcp", &[("authorization", &bearer)], "").await;
    assert_eq!(called.status, 200, "{}", called.text);
    assert_eq!(called.json["sub"], user["user_id"]);
    assert_eq!(called.json["username"], "alice");

    let log = server.stop();
    for secret in [access.as_str(), provider.options.client_secret.as_str()] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}

both_backends!(oauth2_client_signs_a_user_in_through_the_provider);
