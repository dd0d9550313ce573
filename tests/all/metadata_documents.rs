//! Client ID Metadata Documents through the real router, on both stores, fetched over
//! https from a server on loopback whose certificate authority is made in the test
//! (`registration.ca_file`), with `registration.allow_private_networks` on: a good
//! document signs a user in; a mismatched `client_id`, a redirect, an oversized body, a
//! slow server and a non-JSON body are an unknown client; a changed document is seen
//! only after its cache time; disabling sticks and deletion lasts until a fresh fetch.
//! The fetch limits fall on the requester: made-up ids spend their sender's budget, a
//! known good document outlives a limited or unanswered refetch, and a request past the
//! fetches at once waits its turn. With private networks off, loopback, private, link-local addresses and a name that
//! resolves to loopback are refused before any connection; `allowed_hosts` before any
//! lookup.

use crate::common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::documents::{DocServer, REDIRECT, Reply};
use common::{Backend, TestApp, TestResponse, assert_error, form, post_form};
use introspectd::admin;
use introspectd::config::Config;
use introspectd::documents::Documents;
use introspectd::policy::pkce::challenge_of;
use introspectd::token::now;
use introspectd::vocabulary::ClientOrigin;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-more-entropy";

// --- signing in -------------------------------------------------------------------------

fn authorize_path(client_id: &str, redirect_uri: &str) -> String {
    let challenge = challenge_of(VERIFIER);
    let query = form(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "st4te"),
    ]);
    format!("/authorize?{query}")
}

fn text(response: &TestResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

fn hidden(page: &TestResponse, name: &str) -> String {
    let body = text(page);
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

fn location(response: &TestResponse) -> String {
    let at = response.headers.get(header::LOCATION);
    at.unwrap_or_else(|| panic!("no redirect: {} {}", response.status, text(response)))
        .to_str()
        .unwrap()
        .to_owned()
}

/// A browser's cookies, carried from response to request.
#[derive(Default)]
struct Cookies(Vec<(String, String)>);

impl Cookies {
    async fn send(
        &mut self,
        app: &TestApp,
        request: axum::http::request::Builder,
        body: Body,
    ) -> TestResponse {
        let header = self
            .0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = request.header(header::COOKIE, header);
        let response = app.send(request.body(body).unwrap()).await;
        for value in response.headers.get_all(header::SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, cookie) = pair.split_once('=').unwrap();
            self.0.retain(|(n, _)| n != name);
            self.0.push((name.to_owned(), cookie.to_owned()));
        }
        response
    }

    async fn post(&mut self, app: &TestApp, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(app, request, Body::from(form(fields))).await
    }
}

/// `/authorize` for `client_id`: the login page, then the consent page (returned).
async fn consent_page(app: &TestApp, cookies: &mut Cookies, client_id: &str) -> TestResponse {
    let page = cookies
        .send(
            app,
            Request::get(authorize_path(client_id, REDIRECT)),
            Body::empty(),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", text(&page));
    let (request, csrf) = (hidden(&page, "request"), hidden(&page, "csrf_token"));
    let fields = [
        ("request", request.as_str()),
        ("csrf_token", csrf.as_str()),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    let signed_in = cookies.post(app, "/login", &fields).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        text(&signed_in)
    );
    let next = format!("/{}", location(&signed_in));
    cookies.send(app, Request::get(next), Body::empty()).await
}

/// Allows on the consent page; the code sent back to [`REDIRECT`].
async fn allow(app: &TestApp, cookies: &mut Cookies, page: &TestResponse) -> String {
    let (request, csrf) = (hidden(page, "request"), hidden(page, "csrf_token"));
    let fields = [
        ("request", request.as_str()),
        ("csrf_token", csrf.as_str()),
        ("decision", "allow"),
    ];
    let back = cookies.post(app, "/consent", &fields).await;
    let to = url::Url::parse(&location(&back)).unwrap();
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    to.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code")
}

async fn exchange(app: &TestApp, client_id: &str, code: &str) -> TestResponse {
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", client_id),
    ];
    post_form(&app.router, "/token", None, &form(&params)).await
}

/// `/authorize` shows the unknown-client error page: never a redirect, never a 5xx.
/// `GET /authorize` for `client_id` and [`REDIRECT`], without cookies.
async fn authorize(app: &TestApp, client_id: &str) -> TestResponse {
    let request = Request::get(authorize_path(client_id, REDIRECT));
    app.send(request.body(Body::empty()).unwrap()).await
}

async fn assert_unknown(app: &TestApp, client_id: &str) {
    let page = authorize(app, client_id).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", text(&page));
    assert!(page.headers.get(header::LOCATION).is_none());
    assert!(text(&page).contains("not registered"), "{}", text(&page));
}

/// Whether the document client is usable at `at`, as a request then would find it:
/// the server's clock seam (each request is judged at one `now`).
async fn usable_at(app: &TestApp, client_id: &str, at: i64) -> bool {
    usable_from(app, client_id, USER, at).await
}

/// [`usable_at`] for a request from `ip`.
async fn usable_from(app: &TestApp, client_id: &str, ip: &str, at: i64) -> bool {
    documents(app)
        .resolve(&app.store, client_id, ip.parse().unwrap(), at)
        .await
        .unwrap()
}

/// The address of the real user's requests, where a test names addresses.
const USER: &str = "203.0.113.10";

/// Our proxy, which names each client in `X-Forwarded-For`.
const PROXY: &str = "10.0.0.7";

/// Rate limits on (generous but for the per-address budgets named in
/// `introspectd::documents`), behind [`PROXY`].
fn limited(config: &mut Config) {
    let limits = &mut config.rate_limit;
    limits.enabled = true;
    limits.per_second = 10_000;
    limits.burst = 10_000;
    limits.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
}

/// `GET /authorize` for `client_id` from `ip`, as [`PROXY`] names it.
async fn authorize_from(app: &TestApp, client_id: &str, ip: &str) -> TestResponse {
    let mut request = Request::get(authorize_path(client_id, REDIRECT))
        .header("x-forwarded-for", ip)
        .body(Body::empty())
        .unwrap();
    let peer: std::net::SocketAddr = format!("{PROXY}:40000").parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    app.send(request).await
}

/// Hits of every path of the server that starts with `prefix`.
fn hits_under(server: &DocServer, prefix: &str) -> usize {
    let hits = server.hits.lock().unwrap();
    hits.iter()
        .filter(|(path, _)| path.starts_with(prefix))
        .map(|(_, n)| n)
        .sum()
}

fn documents(app: &TestApp) -> &Documents {
    app.state.documents.as_deref().expect("documents accepted")
}

async fn start(
    backend: Backend,
    server: &DocServer,
    adjust: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    let app = TestApp::start(backend, |config| {
        server.trusted(config);
        adjust(config);
    })
    .await?;
    app.user("alice", PASSWORD).await;
    Some(app)
}

// --- the tests --------------------------------------------------------------------------

async fn a_good_document_signs_a_user_in(backend: Backend) {
    let server = DocServer::start().await;
    let Some(app) = start(backend, &server, |_| {}).await else {
        return;
    };
    let client_id = server.serve_document("/client.json", json!({"scope": "mcp"}));
    let mut cookies = Cookies::default();
    let page = consent_page(&app, &mut cookies, &client_id).await;
    let body = text(&page);
    assert_eq!(page.status, StatusCode::OK, "{body}");
    assert!(body.contains("Doc Inspector"), "{body}");
    assert!(body.contains("registered itself"), "{body}");
    // Every redirect URI of the document is loopback: the page says plainly where the
    // browser goes, never "127.0.0.1" as if it were a site.
    assert!(
        body.contains("<dd>an application on this computer</dd>"),
        "where it returns to: {body}"
    );
    assert!(
        body.contains("This application runs on this computer."),
        "{body}"
    );
    assert!(
        body.contains(&format!("localhost:{}", server.port)),
        "the document's host: {body}"
    );
    let code = allow(&app, &mut cookies, &page).await;
    let token = exchange(&app, &client_id, &code).await;
    assert_eq!(token.status, StatusCode::OK, "{:?}", token.json);
    assert_eq!(token.json["scope"], "mcp");
    // Fetched once: the login, consent and token steps used what was fetched.
    assert_eq!(server.hits("/client.json"), 1);

    let listed = admin::list_clients(&app.store).await.unwrap();
    let stored = listed
        .iter()
        .find(|c| c.client_id == client_id)
        .expect("listed");
    assert_eq!(stored.origin, ClientOrigin::MetadataDocument);
    assert_eq!(stored.name, "Doc Inspector");
    assert_eq!(stored.redirect_uris, [REDIRECT]);
    assert_eq!(
        stored.client_uri.as_deref(),
        Some("https://inspector.example/")
    );

    // A secret never authenticates a metadata-document client.
    let basic = common::basic(&client_id, "anything");
    let params = form(&[("grant_type", "client_credentials")]);
    let response = post_form(&app.router, "/token", Some(&basic), &params).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
    // Counted for operators (the recorder is shared by the tests of this process).
    assert!(documents_counted(&app, "fetched").await >= 1.0);
}

/// `introspectd_client_documents_total` of `outcome`, as scraped.
async fn documents_counted(app: &TestApp, outcome: &str) -> f64 {
    let exposition = common::scrape(&app.metrics).await;
    let name = introspectd::metrics::CLIENT_DOCUMENTS;
    common::metric_value(&exposition, name, &[("outcome", outcome)])
}

async fn bad_documents_are_unknown_clients(backend: Backend) {
    let server = DocServer::start().await;
    let Some(app) = start(backend, &server, |_| {}).await else {
        return;
    };
    // Its client_id names another URL.
    let other = server.url("/other.json");
    server.serve(
        "/mismatch.json",
        Reply::json(&json!({"client_id": other, "redirect_uris": [REDIRECT]})),
    );
    // A redirect to a good document is not followed.
    let good = server.serve_document("/good.json", json!({}));
    let mut moved = Reply::json(&json!({}));
    moved.status = 302;
    server.serve("/moved.json", moved.with_header("location", &good));
    // Larger than 5 KiB, announced, and chunked without a length.
    let padding = "x".repeat(6 * 1024);
    let big = server.url("/big.json");
    server.serve("/big.json", Reply::json(&json!({"client_id": big, "redirect_uris": [REDIRECT], "client_name": "B", "p": padding})));
    let chunked = server.url("/chunked.json");
    let mut reply =
        Reply::json(&json!({"client_id": chunked, "redirect_uris": [REDIRECT], "p": padding}));
    reply.chunked = true;
    server.serve("/chunked.json", reply);
    // Not JSON, and JSON under another type.
    server.serve(
        "/page.html",
        Reply::json(&json!({})).with_header("content-type", "text/html"),
    );
    let plain = server.url("/plain.json");
    server.serve(
        "/plain.json",
        Reply::json(&json!({"client_id": plain, "redirect_uris": [REDIRECT]}))
            .with_header("content-type", "text/plain"),
    );
    let mut garbage = Reply::json(&json!({}));
    garbage.body = b"<html>not json</html>".to_vec();
    server.serve("/garbage.json", garbage);
    // A secret, and a redirect URI that is not the one asked for.
    let secret = server.serve_document(
        "/secret.json",
        json!({"token_endpoint_auth_method": "client_secret_basic"}),
    );
    let elsewhere = server.serve_document(
        "/elsewhere.json",
        json!({"redirect_uris": ["https://elsewhere.example/cb"]}),
    );

    for path in [
        "/mismatch.json",
        "/moved.json",
        "/big.json",
        "/chunked.json",
        "/page.html",
        "/plain.json",
        "/garbage.json",
        "/missing.json",
    ] {
        assert_unknown(&app, &server.url(path)).await;
        assert_eq!(server.hits(path), 1, "{path} fetched once");
    }
    assert_eq!(
        server.hits("/good.json"),
        0,
        "the redirect was not followed"
    );
    assert_unknown(&app, &secret).await;
    // A document that is fine but lists another redirect URI: the error page too.
    let page = authorize(&app, &elsewhere).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.headers.get(header::LOCATION).is_none());
    // A client id that is no document URL is not fetched at all.
    for id in [
        format!("https://localhost:{}/", server.port),
        format!("https://localhost:{}/a/../good.json", server.port),
        format!("{good}#frag"),
        format!("{good}?q=1"),
        format!("http://localhost:{}/good.json", server.port),
    ] {
        assert_unknown(&app, &id).await;
    }
    assert_eq!(server.hits("/good.json"), 0);
    // The failure is remembered for a while, not forever.
    assert_unknown(&app, &server.url("/mismatch.json")).await;
    assert_eq!(server.hits("/mismatch.json"), 1);
    let later = now() + introspectd::documents::RETRY_SECONDS + 1;
    let usable = usable_at(&app, &server.url("/mismatch.json"), later).await;
    assert!(!usable);
    assert_eq!(server.hits("/mismatch.json"), 2);
    // At the token endpoint: invalid_client.
    let response = exchange(&app, &server.url("/mismatch.json"), "code").await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
    // Every refusal counted, the id-only ones (not fetched) included.
    assert!(documents_counted(&app, "refused").await >= 14.0);
}

async fn a_slow_server_is_given_up_on(backend: Backend) {
    let server = DocServer::start().await;
    let Some(app) = start(backend, &server, |_| {}).await else {
        return;
    };
    let client_id = server.serve_document("/slow.json", json!({}));
    let mut reply = server.routes.lock().unwrap()["/slow.json"].clone();
    reply.delay = Duration::from_secs(30);
    server.serve("/slow.json", reply);
    let started = Instant::now();
    assert_unknown(&app, &client_id).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(4), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

async fn a_changed_document_is_seen_after_its_cache_time(backend: Backend) {
    let server = DocServer::start().await;
    let Some(app) = start(backend, &server, |_| {}).await else {
        return;
    };
    let path = "/changing.json";
    let client_id = server.serve_document(path, json!({"client_name": "First"}));
    let reply = server.routes.lock().unwrap()[path].clone();
    server.serve(
        path,
        reply.with_header("cache-control", "public, max-age=3600"),
    );
    let mut cookies = Cookies::default();
    let page = consent_page(&app, &mut cookies, &client_id).await;
    assert!(text(&page).contains("First"));
    allow(&app, &mut cookies, &page).await;

    let moved = "http://127.0.0.1:8888/new-callback";
    server.serve_document(
        path,
        json!({"client_name": "Second", "redirect_uris": [moved]}),
    );
    // Within the hour: what was fetched holds, and the new document is not asked for.
    // (A public client is asked again on every sign-in, RFC 8252 §8.6.)
    let again = Request::get(authorize_path(&client_id, REDIRECT));
    let page = cookies.send(&app, again, Body::empty()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", text(&page));
    assert!(text(&page).contains("First"), "the name fetched first");
    assert_eq!(server.hits(path), 1);
    let hour = now() + 3_600;
    assert!(usable_at(&app, &client_id, hour - 5).await);
    assert_eq!(server.hits(path), 1);

    // After it: fetched again, and the stored client follows the document.
    assert!(usable_at(&app, &client_id, hour + 1).await);
    assert_eq!(server.hits(path), 2);
    let stored = admin::show_client(&app.store, &client_id).await.unwrap();
    assert_eq!(stored.name, "Second");
    assert_eq!(stored.redirect_uris, [moved]);
    let page = authorize(&app, &client_id).await;
    assert_eq!(
        page.status,
        StatusCode::BAD_REQUEST,
        "the old redirect URI is gone"
    );
    // The user allowed "First" returning to another place: asked again.
    let to_moved = Request::get(authorize_path(&client_id, moved));
    let page = cookies.send(&app, to_moved, Body::empty()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", text(&page));
    assert!(
        text(&page).contains("name=\"decision\""),
        "the consent page"
    );
    assert!(text(&page).contains("Second"));

    // A refetch answered 404 leaves the client unknown, however good it was.
    server.routes.lock().unwrap().remove(path);
    let later = hour + 1 + introspectd::documents::document::MIN_CACHE_SECONDS + 1;
    assert!(!usable_at(&app, &client_id, later).await);
    assert_eq!(server.hits(path), 3);
}

/// A client that authenticates with keys: `private_key_jwt`, its JWK Set at `jwks_uri`,
/// fetched like the document. It exchanges its code with a signed assertion naming
/// itself only by `sub`, and cannot pass for a public client.
async fn a_key_holding_client_signs_with_keys_from_its_jwks_uri(backend: Backend) {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use introspectd::auth::assertion::JWT_BEARER;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    let server = DocServer::start().await;
    let Some(app) = start(backend, &server, |_| {}).await else {
        return;
    };
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "k1",
        "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
    server.serve("/jwks.json", Reply::json(&json!({"keys": [jwk]})));
    let client_id = server.serve_document(
        "/signed.json",
        json!({"token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": server.url("/jwks.json")}),
    );
    let mut cookies = Cookies::default();
    let page = consent_page(&app, &mut cookies, &client_id).await;
    let code = allow(&app, &mut cookies, &page).await;
    assert_eq!(server.hits("/jwks.json"), 1);

    let public = exchange(&app, &client_id, &code).await;
    assert_error(&public, StatusCode::UNAUTHORIZED, "invalid_client");
    let at = now();
    let claims = json!({"iss": client_id, "sub": client_id, "aud": app.config.issuer,
        "exp": at + 60, "iat": at, "jti": introspectd::token::new_jti()});
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".to_owned());
    let key = EncodingKey::from_ed_der(pkcs8.as_ref());
    let jwt = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", jwt.as_str()),
    ];
    let token = post_form(&app.router, "/token", None, &form(&params)).await;
    assert_eq!(token.status, StatusCode::OK, "{:?}", token.json);

    // Without its keys, a refetched document leaves the client unknown.
    server.routes.lock().unwrap().remove("/jwks.json");
    assert!(!usable_at(&app, &client_id, now() + 301).await);
}

/// Requests for one document while it is being fetched wait for that fetch: the host
/// sees one request, however many sign-ins start at once.
async fn concurrent_requests_share_one_fetch(backend: Backend) {
    let server = DocServer::start().await;
    let Some(app) = start(backend, &server, |_| {}).await else {
        return;
    };
    let client_id = server.serve_document("/client.json", json!({}));
    let mut reply = server.routes.lock().unwrap()["/client.json"].clone();
    // Slow enough that every request below arrives while the fetch is under way.
    reply.delay = Duration::from_millis(500);
    server.serve("/client.json", reply);
    let at = now();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (state, store, client_id) = (app.state.clone(), app.store.clone(), client_id.clone());
        requests.spawn(async move {
            let documents = state.documents.as_deref().expect("documents accepted");
            documents
                .resolve(&store, &client_id, USER.parse().unwrap(), at)
                .await
                .unwrap()
        });
    }
    let answers = requests.join_all().await;
    assert!(answers.iter().all(|usable| *usable), "{answers:?}");
    assert_eq!(server.hits("/client.json"), 1);
}

/// One host gets at most so many first fetches a minute, whatever the paths and
/// whoever asks: `/authorize` cannot be used to flood it. Past the limit the client is
/// unknown, nothing is asked of the host, and nothing is remembered.
async fn fetches_are_limited_per_host(backend: Backend) {
    let server = DocServer::start().await;
    let Some(app) = start(backend, &server, limited).await else {
        return;
    };
    let limit = introspectd::documents::FETCHES_PER_HOST_PER_MINUTE;
    for i in 0..limit {
        let client_id = server.serve_document(&format!("/c{i}.json"), json!({}));
        let ip = format!("198.51.100.{i}");
        assert!(usable_from(&app, &client_id, &ip, now()).await, "{i}");
    }
    let over = server.serve_document("/over.json", json!({}));
    assert_eq!(
        authorize_from(&app, &over, "192.0.2.1").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(server.hits("/over.json"), 0);
    assert!(documents_counted(&app, "limited").await >= 1.0);
}

/// Made-up client ids on a host spend the budget of the address that sends them (an
/// IPv6 /64 being one address): past it that address is refused without a fetch, the
/// host's budget is left alone, and a real document there is fetched for its user.
async fn junk_ids_on_a_host_do_not_stop_its_real_documents(backend: Backend) {
    let server = DocServer::start().await;
    let Some(app) = start(backend, &server, limited).await else {
        return;
    };
    let client_id = server.serve_document("/real.json", json!({}));
    for i in 0..40 {
        let junk = server.url(&format!("/junk/{i}.json"));
        let attacker = format!("2001:db8:66:1::{i:x}");
        let page = authorize_from(&app, &junk, &attacker).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", text(&page));
    }
    let per_address = introspectd::documents::FETCHES_PER_ADDRESS_PER_MINUTE;
    assert_eq!(hits_under(&server, "/junk/"), per_address as usize);
    // Another /64 has a budget of its own.
    let junk = server.url("/junk/other.json");
    authorize_from(&app, &junk, "2001:db8:66:2::1").await;
    assert_eq!(server.hits("/junk/other.json"), 1);
    // The real user gets the login page: the client is known.
    let page = authorize_from(&app, &client_id, USER).await;
    assert_eq!(page.status, StatusCode::OK, "{}", text(&page));
    assert!(text(&page).contains("name=\"password\""), "{}", text(&page));
    assert_eq!(server.hits("/real.json"), 1);
}

/// A document known good stays usable when its refetch is limited (its host's budget
/// spent by made-up ids from many addresses, or the requester's own), or gets no answer
/// (a 5xx, a server too slow), for up to a day past its cache time; a definite answer
/// (404) ends it at once, as does the day's end.
async fn a_known_good_document_outlives_a_limited_or_failed_refetch(backend: Backend) {
    let server = DocServer::start().await;
    let Some(app) = start(backend, &server, limited).await else {
        return;
    };
    let path = "/client.json";
    let client_id = server.serve_document(path, json!({}));
    let fetched = now();
    assert!(usable_from(&app, &client_id, USER, fetched).await);
    // Enough addresses to spend the host's budget with ids that name nothing.
    let host_limit = introspectd::documents::FETCHES_PER_HOST_PER_MINUTE;
    for i in 0..host_limit + 5 {
        let junk = server.url(&format!("/junk/{i}.json"));
        assert!(!usable_from(&app, &junk, &format!("198.51.100.{i}"), fetched).await);
    }
    // The good document's first fetch counted too.
    assert_eq!(hits_under(&server, "/junk/"), host_limit as usize - 1);
    let new = server.serve_document("/new.json", json!({}));
    assert!(
        !usable_from(&app, &new, USER, fetched).await,
        "a first fetch waits"
    );

    // Past its cache time: the refetch of the known good document is still made.
    let cache = introspectd::documents::document::MIN_CACHE_SECONDS;
    let mut at = fetched + cache + 1;
    assert!(usable_from(&app, &client_id, USER, at).await);
    assert_eq!(server.hits(path), 2);

    // The host answers 503: the document stands, and is asked for again later.
    let good = server.routes.lock().unwrap()[path].clone();
    let mut down = good.clone();
    down.status = 503;
    server.serve(path, down);
    at += cache + 1;
    assert!(usable_from(&app, &client_id, USER, at).await);
    assert_eq!(server.hits(path), 3);
    assert!(documents_counted(&app, "stale").await >= 1.0);
    assert!(usable_from(&app, &client_id, USER, at + 1).await);
    assert_eq!(server.hits(path), 3, "not asked again at once");
    // Too slow to answer: the document stands.
    let mut slow = good;
    slow.delay = Duration::from_secs(30);
    server.serve(path, slow);
    at += introspectd::documents::RETRY_SECONDS + 1;
    assert!(usable_from(&app, &client_id, USER, at).await);
    assert_eq!(server.hits(path), 4);
    // The requester has spent its own budget: the document stands, unfetched.
    let spender = "192.0.2.77";
    let per_address = introspectd::documents::FETCHES_PER_ADDRESS_PER_MINUTE;
    for i in 0..per_address {
        let junk = server.url(&format!("/spent/{i}.json"));
        usable_from(&app, &junk, spender, at).await;
    }
    at += introspectd::documents::RETRY_SECONDS + 1;
    assert!(usable_from(&app, &client_id, spender, at).await);
    assert_eq!(server.hits(path), 4);
    // A day past the last good document's cache time, it no longer stands: a refetch
    // is a first fetch again, and the host's budget is still spent.
    let good_until = fetched + cache + 1 + cache;
    let day_after = good_until + introspectd::documents::STALE_SECONDS;
    assert!(!usable_from(&app, &client_id, USER, day_after).await);
    assert_eq!(server.hits(path), 4);

    // A definite answer (404) ends a good document at once. (Named by the server's
    // address, another host with a budget of its own.)
    let ended = format!("https://127.0.0.1:{}/ended.json", server.port);
    server.serve(
        "/ended.json",
        Reply::json(&json!({"client_id": ended, "redirect_uris": [REDIRECT]})),
    );
    assert!(usable_from(&app, &ended, USER, at).await);
    server.routes.lock().unwrap().remove("/ended.json");
    assert!(!usable_from(&app, &ended, USER, at + cache + 1).await);
    assert_eq!(server.hits("/ended.json"), 2);
}

/// With the most fetches under way, a request waits for a turn (up to
/// `introspectd::documents::QUEUE_WAIT`) instead of finding the client unknown at once;
/// past the wait it is not fetched.
async fn fetches_past_the_limit_at_once_wait_their_turn(backend: Backend) {
    let server = DocServer::start().await;
    let Some(app) = start(backend, &server, |_| {}).await else {
        return;
    };
    let at_once = introspectd::documents::MAX_FETCHES_AT_ONCE;
    let slow_fetches = |delay: Duration, prefix: &str| {
        let mut fetches = tokio::task::JoinSet::new();
        for i in 0..at_once {
            let path = format!("{prefix}{i}.json");
            let client_id = server.serve_document(&path, json!({}));
            let mut reply = server.routes.lock().unwrap()[&path].clone();
            reply.delay = delay;
            server.serve(&path, reply);
            let (state, store) = (app.state.clone(), app.store.clone());
            fetches.spawn(async move {
                let documents = state.documents.as_deref().expect("documents accepted");
                let ip = USER.parse().unwrap();
                documents
                    .resolve(&store, &client_id, ip, now())
                    .await
                    .unwrap()
            });
        }
        fetches
    };
    let all_under_way = |prefix: &'static str| {
        let server = &server;
        async move {
            while hits_under(server, prefix) < at_once {
                tokio::task::yield_now().await;
            }
        }
    };
    // Fetches that end within the wait: the next request gets its turn.
    let slow = slow_fetches(Duration::from_millis(600), "/slow/");
    all_under_way("/slow/").await;
    let waiting = server.serve_document("/waiting.json", json!({}));
    assert!(usable_at(&app, &waiting, now()).await, "waited for a turn");
    assert!(slow.join_all().await.iter().all(|usable| *usable));
    // Fetches that outlast the wait: the request gives up after it.
    let mut stuck = slow_fetches(Duration::from_secs(30), "/stuck/");
    all_under_way("/stuck/").await;
    let late = server.serve_document("/late.json", json!({}));
    let started = Instant::now();
    assert!(!usable_at(&app, &late, now()).await);
    let waited = started.elapsed();
    assert!(waited >= introspectd::documents::QUEUE_WAIT, "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    assert_eq!(server.hits("/late.json"), 0);
    stuck.abort_all();
}

async fn disabling_sticks_and_deletion_lasts_until_a_fresh_fetch(backend: Backend) {
    let server = DocServer::start().await;
    let Some(app) = start(backend, &server, |_| {}).await else {
        return;
    };
    let client_id = server.serve_document("/client.json", json!({}));
    let mut cookies = Cookies::default();
    let page = consent_page(&app, &mut cookies, &client_id).await;
    assert_eq!(page.status, StatusCode::OK);

    admin::disable_client(&app.store, &client_id, now())
        .await
        .unwrap();
    assert_unknown(&app, &client_id).await;
    // A refetch of the same document, or of a changed one, keeps it disabled.
    server.serve_document("/client.json", json!({"client_name": "Renamed"}));
    let later = now() + 301;
    assert!(usable_at(&app, &client_id, later).await);
    let stored = admin::show_client(&app.store, &client_id).await.unwrap();
    assert!(stored.disabled);
    assert_eq!(stored.name, "Renamed");
    assert_unknown(&app, &client_id).await;

    // Deleted: gone until its document is fetched again.
    admin::delete_client(&app.store, &client_id).await.unwrap();
    assert_unknown(&app, &client_id).await;
    assert!(admin::show_client(&app.store, &client_id).await.is_err());
    let later = now() + 2 * 86_400;
    assert!(usable_at(&app, &client_id, later).await);
    let stored = admin::show_client(&app.store, &client_id).await.unwrap();
    assert!(!stored.disabled, "a fresh fetch makes a new client");
}

async fn private_addresses_are_refused_before_connecting(backend: Backend) {
    let server = DocServer::start().await;
    let Some(app) = TestApp::start(backend, |config| {
        config.registration.ca_file = Some(server.ca_file.path().to_owned());
    })
    .await
    else {
        return;
    };
    let port = server.port;
    server.serve_document("/client.json", json!({}));
    let literals = [
        format!("https://127.0.0.1:{port}/client.json"),
        "https://10.0.0.1/client.json".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        format!("https://[::1]:{port}/client.json"),
        format!("https://[::ffff:7f00:1]:{port}/client.json"),
        "https://[::ffff:a9fe:a9fe]/latest/meta-data".to_owned(),
        "https://[fd00::1]/client.json".to_owned(),
        "https://100.64.0.1/client.json".to_owned(),
    ];
    for client_id in &literals {
        assert_unknown(&app, client_id).await;
    }
    // An address in the URL is refused before any request is made.
    assert_eq!(documents(&app).fetches(), 0);
    // A name that resolves to loopback: looked up, and refused before connecting.
    assert_unknown(&app, &server.url("/client.json")).await;
    assert_eq!(documents(&app).fetches(), 1);
    let response = exchange(&app, &literals[0], "code").await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(server.connections(), 0, "nothing connected to the server");
    assert_eq!(server.hits("/client.json"), 0);
}

/// A server with a good document at `/client.json`, and an app that trusts it,
/// configured further by `adjust`.
async fn with_document(
    backend: Backend,
    adjust: impl FnOnce(&mut Config),
) -> Option<(DocServer, TestApp, String)> {
    let server = DocServer::start().await;
    let app = start(backend, &server, adjust).await?;
    let client_id = server.serve_document("/client.json", json!({}));
    Some((server, app, client_id))
}

async fn allowed_hosts_are_checked_before_any_lookup(backend: Backend) {
    let elsewhere = |c: &mut Config| c.registration.allowed_hosts = vec!["*.example.com".into()];
    let Some((server, app, client_id)) = with_document(backend, elsewhere).await else {
        return;
    };
    assert_unknown(&app, &client_id).await;
    assert_eq!(documents(&app).fetches(), 0);
    assert_eq!(server.connections(), 0);

    let here = |c: &mut Config| c.registration.allowed_hosts = vec!["localhost".into()];
    let (_server, app, client_id) = with_document(backend, here).await.expect("started before");
    let mut cookies = Cookies::default();
    let page = consent_page(&app, &mut cookies, &client_id).await;
    assert_eq!(page.status, StatusCode::OK, "{}", text(&page));
}

async fn off_means_unknown_and_unpublished(backend: Backend) {
    let off = |c: &mut Config| c.registration.metadata_documents = false;
    let Some((server, app, client_id)) = with_document(backend, off).await else {
        return;
    };
    assert_unknown(&app, &client_id).await;
    assert_eq!(server.connections(), 0);
    let metadata = app
        .send(
            Request::get("/.well-known/oauth-authorization-server")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(metadata.status, StatusCode::OK);
    assert!(
        metadata
            .json
            .get("client_id_metadata_document_supported")
            .is_none()
    );
}

/// A document is checked like a registration: a name with a Unicode format character
/// (a bidi override, a zero-width space) is refused, and the client is unknown; an
/// `application_type` its redirect URIs do not fit too. One that fits is kept.
async fn a_document_name_with_format_characters_is_refused(backend: Backend) {
    let server = DocServer::start().await;
    let Some(app) = start(backend, &server, |_| {}).await else {
        return;
    };
    let reversed = server.serve_document(
        "/reversed.json",
        json!({"client_name": "Inspector\u{202E}exe.txt"}),
    );
    let hidden = server.serve_document("/hidden.json", json!({"client_name": "Insp\u{200B}ector"}));
    let web = server.serve_document("/web.json", json!({"application_type": "web"}));
    for client_id in [&reversed, &hidden, &web] {
        assert_unknown(&app, client_id).await;
        assert_eq!(app.store.client_by_id(client_id).await.unwrap(), None);
    }
    let native = server.serve_document("/native.json", json!({"application_type": "native"}));
    let page = authorize(&app, &native).await;
    assert_eq!(page.status, StatusCode::OK, "{}", text(&page));
    let stored = app.store.client_by_id(&native).await.unwrap().unwrap();
    assert_eq!(
        stored.application_type,
        Some(introspectd::vocabulary::ApplicationType::Native)
    );
}

both_backends!(
    a_document_name_with_format_characters_is_refused,
    a_good_document_signs_a_user_in,
    concurrent_requests_share_one_fetch,
    fetches_are_limited_per_host,
    junk_ids_on_a_host_do_not_stop_its_real_documents,
    a_known_good_document_outlives_a_limited_or_failed_refetch,
    a_key_holding_client_signs_with_keys_from_its_jwks_uri,
    bad_documents_are_unknown_clients,
    a_changed_document_is_seen_after_its_cache_time,
    disabling_sticks_and_deletion_lasts_until_a_fresh_fetch,
    private_addresses_are_refused_before_connecting,
    allowed_hosts_are_checked_before_any_lookup,
    off_means_unknown_and_unpublished,
);

/// One store suffices: the store plays no part in giving up on a slow server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_is_given_up_on_sqlite() {
    a_slow_server_is_given_up_on(Backend::Sqlite).await;
}

/// One store suffices: the store plays no part in waiting for a turn to fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_past_the_limit_at_once_wait_their_turn_sqlite() {
    fetches_past_the_limit_at_once_wait_their_turn(Backend::Sqlite).await;
}

#[test]
fn start_up_refuses_bad_keys() {
    let mut config = Config::default();
    config.registration.allowed_hosts = vec!["*.Example.com".to_owned(), "a b".to_owned()];
    config.registration.ca_file = Some("/nonexistent/ca.pem".into());
    // `check`, as `load` does: the rules, then the files the configuration names.
    let problems = config.check().unwrap_err().to_string();
    assert!(
        problems.contains("registration.allowed_hosts[0]"),
        "{problems}"
    );
    assert!(
        problems.contains("registration.allowed_hosts[1]"),
        "{problems}"
    );
    assert!(problems.contains("registration.ca_file"), "{problems}");
    let not_pem = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_pem.path(), "hello").unwrap();
    let mut config = Config::default();
    config.registration.ca_file = Some(not_pem.path().to_owned());
    let problems = config.check().unwrap_err().to_string();
    assert!(problems.contains("no PEM certificates"), "{problems}");
}
