//! Test helpers: a fresh store per test (a temporary SQLite file, or a fresh Postgres
//! database), the real router driven with `oneshot`, and a macro that runs one test body
//! against both backends.

#![allow(dead_code)]

pub mod binary;
pub mod documents;
pub mod idp;
pub mod logs;
pub mod oidc;
pub mod proxy;

use std::future::Future;
use std::io::Write;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::BodyExt;
use introspectd::admin::{self, IssueToken, NewClient};
use introspectd::config::{Config, DatabaseUrl};
use introspectd::http::{AppState, metrics_router, router};
use introspectd::store::Store;
use introspectd::token::mint::TokenFormat;
use introspectd::vocabulary::TokenUse;
use serde_json::Value;
use tower::ServiceExt;

/// Admin connection used to create and drop per-test Postgres databases.
pub fn postgres_admin_url() -> String {
    std::env::var("POSTGRES_TEST_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether Postgres tests must run (CI) rather than be skipped when Postgres is down.
pub fn postgres_required() -> bool {
    std::env::var("POSTGRES_TESTS_REQUIRED").is_ok_and(|v| v == "1" || v == "true")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test and is removed after it.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name } = self {
            let _ = std::fs::remove_file(postgres_key_file(name));
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime, so the cleanup gets a runtime of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("cleanup runtime");
                runtime.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&admin_url).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Postgres tests of this test binary skipped because Postgres is unreachable, and where.
static SKIPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static UNREACHABLE_AT: OnceLock<String> = OnceLock::new();

/// Counts a skipped Postgres test; the first one arranges for one summary line, written
/// to stderr when the test binary exits, so a run without Postgres never looks green by
/// accident.
fn count_skipped(admin_url: &str) {
    SKIPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    UNREACHABLE_AT.get_or_init(|| {
        unsafe extern "C" {
            fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
        }
        // SAFETY: atexit only records a callback, one that touches no thread-locals.
        unsafe { atexit(skip_summary) };
        DatabaseUrl(admin_url.to_owned()).redacted()
    });
}

extern "C" fn skip_summary() {
    let skipped = SKIPPED.load(std::sync::atomic::Ordering::Relaxed);
    let at = UNREACHABLE_AT.get().map_or("?", String::as_str);
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {skipped} Postgres tests: Postgres unreachable at {at}; \
         set POSTGRES_TESTS_REQUIRED=1 to fail instead"
    );
}

async fn postgres_reachable(admin_url: &str) -> bool {
    static REACHABLE: tokio::sync::OnceCell<bool> = tokio::sync::OnceCell::const_new();
    *REACHABLE
        .get_or_init(|| async {
            let attempt = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                sqlx::PgPool::connect(admin_url),
            )
            .await;
            matches!(attempt, Ok(Ok(_)))
        })
        .await
}

/// A fresh, empty database of the backend, or `None` when Postgres is unreachable and
/// not required.
pub async fn fresh_db(backend: Backend) -> Option<(DatabaseUrl, TestDb)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite://{}", dir.path().join("introspectd.db").display());
            Some((DatabaseUrl(url), TestDb::Sqlite(dir)))
        }
        Backend::Postgres => {
            let admin_url = postgres_admin_url();
            if !postgres_reachable(&admin_url).await {
                assert!(
                    !postgres_required(),
                    "Postgres at {admin_url} is unreachable and POSTGRES_TESTS_REQUIRED is set"
                );
                count_skipped(&admin_url);
                return None;
            }
            let name = format!(
                "introspectd_test_{}",
                introspectd::token::random_string(9)
                    .to_lowercase()
                    .replace(['-', '_'], "x")
            );
            let pool = sqlx::PgPool::connect(&admin_url)
                .await
                .expect("admin connection");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&pool)
                .await
                .expect("create test database");
            pool.close().await;
            let mut url = url::Url::parse(&admin_url).expect("admin URL");
            url.set_path(&name);
            Some((
                DatabaseUrl(url.to_string()),
                TestDb::Postgres { admin_url, name },
            ))
        }
    }
}

/// Where the key-encryption key of a test's Postgres database is generated: a file of
/// the system's temporary directory that [`TestDb`] removes, never `data/` of the
/// working directory.
pub fn postgres_key_file(database: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{database}.key-encryption-key"))
}

/// The key-encryption key file of a Postgres test database, written with a fresh key
/// on first use (as an operator makes one: a Postgres store never generates its own);
/// `None` for SQLite.
pub fn postgres_key(database_url: &DatabaseUrl) -> Option<std::path::PathBuf> {
    if !database_url.is_postgres() {
        return None;
    }
    let url = url::Url::parse(database_url.as_str()).expect("database URL");
    let path = postgres_key_file(url.path().trim_start_matches('/'));
    if !path.exists() {
        // 24 random bytes spelled as 32 characters: a 32-byte key.
        let key = STANDARD.encode(introspectd::token::random_string(24));
        std::fs::write(&path, format!("{key}\n")).expect("write key file");
    }
    Some(path)
}

/// Configuration for tests: the given database, rate limiting off unless a test turns
/// it on, a Postgres database's key-encryption key in a file of its own.
pub fn test_config(database_url: DatabaseUrl) -> Config {
    let key_file = postgres_key(&database_url);
    let mut config = Config {
        database_url,
        ..Config::default()
    };
    config.jwt.key_encryption_key_file = key_file;
    config.rate_limit.enabled = false;
    config.database.max_connections = 4;
    config
}

/// A client's credentials.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: String,
}

impl TestClient {
    pub fn basic(&self) -> String {
        basic(&self.id, &self.secret)
    }
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// A response with its body, also read as JSON (or `Null` when empty or not JSON).
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: axum::body::Bytes,
    pub json: Value,
}

/// The whole application over a fresh store.
pub struct TestApp {
    pub backend: Backend,
    pub config: Config,
    pub store: Store,
    pub state: AppState,
    pub router: Router,
    /// What the metrics listener serves.
    pub metrics: Router,
    pub db: TestDb,
}

impl TestApp {
    pub async fn start(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        let (url, db) = fresh_db(backend).await?;
        let mut config = test_config(url);
        adjust(&mut config);
        if config.jwt.key_encryption_key_env.is_some() {
            config.jwt.key_encryption_key_file = None;
        }
        config.validate().expect("valid test configuration");
        let store = Store::connect(&config).await.expect("connect");
        store.migrate().await.expect("migrate");
        let state = AppState::build(config.clone(), store.clone())
            .await
            .expect("state");
        Some(TestApp {
            backend,
            router: router(state.clone()),
            metrics: metrics_router(state.clone()),
            config,
            store,
            state,
            db,
        })
    }

    /// A second instance over the same database, as another process would be.
    pub async fn sibling(&self) -> (Store, Router) {
        let store = Store::connect(&self.config).await.expect("connect");
        let state = AppState::build(self.config.clone(), store.clone())
            .await
            .expect("state");
        (store, router(state))
    }

    /// A local user who signs in with `password`; answers the user id.
    pub async fn user(&self, username: &str, password: &str) -> String {
        let new = introspectd::admin::NewUser {
            username: username.to_owned(),
            email: None,
            name: None,
            password: Some(introspectd::secret::Password::new(password)),
        };
        introspectd::admin::create_user(&self.store, new, introspectd::token::now())
            .await
            .expect("create user")
            .user_id
    }

    pub async fn client(&self, name: &str, audiences: &[&str]) -> TestClient {
        self.client_with(NewClient {
            name: name.to_owned(),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            ..NewClient::default()
        })
        .await
    }

    /// A client that may obtain tokens: both grant types, `scope`, and `resources`, which
    /// it may also introspect for.
    pub async fn app_client(&self, name: &str, scope: &str, resources: &[&str]) -> TestClient {
        self.client_with(granted(NewClient {
            name: name.to_owned(),
            scope: Some(scope.to_owned()).filter(|s| !s.is_empty()),
            audiences: resources.iter().map(|a| (*a).to_owned()).collect(),
            ..NewClient::default()
        }))
        .await
    }

    pub async fn client_with(&self, new: NewClient) -> TestClient {
        let created = admin::create_client(&self.store, new, introspectd::token::now())
            .await
            .expect("create client");
        TestClient {
            id: created.client_id,
            secret: created.client_secret.expose().to_owned(),
        }
    }

    /// Issues a token the way `token issue` does.
    pub async fn issue(&self, request: IssueToken) -> String {
        admin::issue_token(
            &self.store,
            &self.state.keys.keys(),
            &self.config,
            request,
            introspectd::token::now(),
        )
        .await
        .expect("issue token")
        .token
        .expose()
        .to_owned()
    }

    pub async fn jwt_for(&self, client: &TestClient, audiences: &[&str]) -> String {
        self.issue(issue_request(
            client,
            TokenUse::AccessToken,
            None,
            audiences,
        ))
        .await
    }

    pub async fn opaque_for(&self, client: &TestClient, token_use: TokenUse) -> String {
        self.issue(issue_request(
            client,
            token_use,
            Some(TokenFormat::Opaque),
            &[],
        ))
        .await
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        send(&self.router, request).await
    }

    /// POST /introspect with a form body and the given Authorization header.
    pub async fn introspect_with(&self, authorization: Option<&str>, body: &str) -> TestResponse {
        introspect_on(&self.router, authorization, body).await
    }

    /// POST a form to `path` authenticated with client_secret_basic.
    pub async fn post(
        &self,
        caller: &TestClient,
        path: &str,
        params: &[(&str, &str)],
    ) -> TestResponse {
        post_form(&self.router, path, Some(&caller.basic()), &form(params)).await
    }

    /// POST /token for client credentials, with `extra` parameters.
    pub async fn client_credentials(
        &self,
        client: &TestClient,
        extra: &[(&str, &str)],
    ) -> TestResponse {
        let mut params = vec![("grant_type", "client_credentials")];
        params.extend_from_slice(extra);
        self.post(client, "/token", &params).await
    }

    /// POST /token exchanging `token` as a refresh token, with `extra` parameters.
    pub async fn refresh(
        &self,
        client: &TestClient,
        token: &str,
        extra: &[(&str, &str)],
    ) -> TestResponse {
        let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
        params.extend_from_slice(extra);
        self.post(client, "/token", &params).await
    }

    /// POST /introspect authenticated with client_secret_basic.
    pub async fn introspect(&self, caller: &TestClient, token: &str) -> TestResponse {
        self.introspect_with(Some(&caller.basic()), &form(&[("token", token)]))
            .await
    }
}

/// `new` with both token-endpoint grant types, and its audiences as the resources it may
/// obtain tokens for.
pub fn granted(new: NewClient) -> NewClient {
    NewClient {
        grant_types: vec!["client_credentials".to_owned(), "refresh_token".to_owned()],
        resources: new.audiences.clone(),
        ..new
    }
}

pub fn issue_request(
    client: &TestClient,
    token_use: TokenUse,
    format: Option<TokenFormat>,
    audiences: &[&str],
) -> IssueToken {
    IssueToken {
        client_id: client.id.clone(),
        subject: "alice".to_owned(),
        username: None,
        scope: None,
        audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
        ttl: None,
        token_use,
        format,
    }
}

/// Stores a refresh token of `client` for alice that expires at `exp`, as an issuer
/// sharing the store would; returns its value.
pub async fn insert_refresh_token(store: &Store, client: &TestClient, exp: i64) -> String {
    let value = introspectd::token::opaque::generate();
    store
        .insert_token(&introspectd::store::TokenRecord {
            digest: introspectd::token::opaque::digest(value.expose()),
            token_use: TokenUse::RefreshToken,
            client_id: client.id.clone(),
            sub: Some("alice".to_owned()),
            username: None,
            scope: None,
            audiences: vec![],
            jti: introspectd::token::new_jti(),
            iat: introspectd::token::now() - 100,
            nbf: None,
            exp,
            revoked_at: None,
            user_id: None,
        })
        .await
        .expect("insert token");
    value.expose().to_owned()
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("form encoding")
}

pub async fn introspect_on(
    router: &Router,
    authorization: Option<&str>,
    body: &str,
) -> TestResponse {
    post_form(router, "/introspect", authorization, body).await
}

/// POST /introspect of `token` on `router`, as `caller` with client_secret_basic.
pub async fn introspect_as(router: &Router, caller: &TestClient, token: &str) -> TestResponse {
    introspect_on(router, Some(&caller.basic()), &form(&[("token", token)])).await
}

/// POST a form body to `path` with the given Authorization header.
pub async fn post_form(
    router: &Router,
    path: &str,
    authorization: Option<&str>,
    body: &str,
) -> TestResponse {
    let mut request =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    send(router, request.body(Body::from(body.to_owned())).unwrap()).await
}

/// POST /introspect as if from the socket peer `peer`, with extra headers.
pub async fn introspect_from(
    router: &Router,
    peer: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> TestResponse {
    post_from(router, "/introspect", peer, headers, body).await
}

/// POST a form to `path` as if from the socket peer `peer` (an IPv4 address), with
/// extra headers.
pub async fn post_from(
    router: &Router,
    path: &str,
    peer: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> TestResponse {
    let mut request =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::from(body.to_owned())).unwrap();
    let peer: std::net::SocketAddr = format!("{peer}:40000").parse().expect("peer address");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    send(router, request).await
}

pub async fn send(router: &Router, request: Request<Body>) -> TestResponse {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    TestResponse {
        status,
        headers,
        body: bytes,
        json,
    }
}

/// An OAuth error answer (RFC 6749 §5.2) with its status and code, never cached.
pub fn assert_error(response: &TestResponse, status: StatusCode, error: &str) {
    assert_eq!(response.status, status, "{response:?}");
    assert_eq!(response.json["error"], error, "{response:?}");
    assert!(
        response.json["error_description"].is_string(),
        "{response:?}"
    );
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
}

/// POST /register with a JSON body from the address `peer` (IPv4 or IPv6).
pub fn registration_request(body: &Value, peer: &str) -> Request<Body> {
    let mut request = Request::post("/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let peer = std::net::SocketAddr::new(peer.parse().unwrap(), 40000);
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    request
}

/// Runs `test` against a fresh app of `backend`, skipping when Postgres is unavailable.
pub async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    run_with(backend, |_| {}, test).await;
}

pub async fn run_with<F, Fut>(backend: Backend, adjust: impl FnOnce(&mut Config), test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(app) = TestApp::start(backend, adjust).await {
        test(app).await;
    }
}

/// Defines, for each named async fn taking a `TestApp`, one test per backend:
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run($crate::common::Backend::Sqlite, super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run($crate::common::Backend::Postgres, super::$name).await;
            }
        }
    )*};
}

/// The value of one sample in a Prometheus exposition, 0 when absent. `labels` must be
/// the sample's whole label set, in any order.
pub fn metric_value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            if metric != name {
                return None;
            }
            let mut got: Vec<String> = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            got.sort();
            (got == wanted).then(|| value.parse().expect("sample value"))
        })
        .unwrap_or(0.0)
}

/// GET /metrics through the metrics listener's router, as text.
pub async fn scrape(router: &Router) -> String {
    let response = send(
        router,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);
    String::from_utf8(response.body.to_vec()).expect("UTF-8 exposition")
}

/// Defines, for each named async fn taking a `Backend` (for tests that configure their
/// own app), one test per backend: `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await;
            }
        }
    )*};
}

/// Like `both_backends!`, on the current-thread runtime: the one whose clock
/// [`jump`] can move.
#[macro_export]
macro_rules! both_backends_current_thread {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await;
            }
        }
    )*};
}

/// Moves the test's tokio clock `by` ahead at once, as if that long had passed: the
/// timers due meanwhile fire, and whatever ages on the tokio clock (the credential
/// cache, the budgets) is that much older. The clock is paused only for the jump, so
/// nothing waiting on the store or the network sees time run ahead of it. Needs the
/// current-thread runtime (`both_backends_current_thread!`); the clock is the test's
/// own runtime's, so no other test sees the jump.
pub async fn jump(by: std::time::Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

/// How long a change made elsewhere may take to reach an instance over Postgres.
pub const BOUND: std::time::Duration = std::time::Duration::from_secs(1);

/// Asks until `accept` holds, failing past [`BOUND`]. On SQLite, where a change made by
/// another process shows on the next request, the first answer must already hold.
pub async fn within_bound<T, F, Fut>(backend: Backend, mut ask: F, accept: impl Fn(&T) -> bool)
where
    T: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let start = std::time::Instant::now();
    loop {
        let answer = ask().await;
        if accept(&answer) {
            return;
        }
        assert!(
            backend == Backend::Postgres,
            "SQLite must answer from the changed store at once: {answer:?}"
        );
        assert!(
            start.elapsed() < BOUND,
            "still not applied after {:?}: {answer:?}",
            start.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A response body as text.
pub fn page_text(response: &TestResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

/// The value of a hidden field of a page's form.
pub fn hidden_field(page: &TestResponse, name: &str) -> String {
    let body = page_text(page);
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {body}"))
        + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

/// The value of the first query parameter `name` of `params`.
pub fn query_param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// Keeps the cookies `headers` set in `cookies`, forgetting one cleared with `Max-Age=0`.
pub fn keep_cookies(cookies: &mut Vec<(String, String)>, headers: &HeaderMap) {
    for value in headers.get_all(header::SET_COOKIE) {
        let value = value.to_str().unwrap();
        let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
        let (name, cookie) = pair.split_once('=').unwrap();
        cookies.retain(|(n, _)| n != name);
        if !attributes.contains("Max-Age=0") {
            cookies.push((name.to_owned(), cookie.to_owned()));
        }
    }
}

/// A browser on the router: the cookies it was given go back with each request, and a
/// cookie cleared with `Max-Age=0` is forgotten.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub cookies: Vec<(String, String)>,
    /// The socket peer its requests come from (none: the router's default).
    pub peer: Option<std::net::IpAddr>,
    /// Another instance to send to instead of the app's router.
    pub router: Option<Router>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            cookies: Vec::new(),
            peer: None,
            router: None,
        }
    }

    /// A browser whose requests come from `peer`.
    pub fn at(app: &'a TestApp, peer: &str) -> Self {
        Browser {
            peer: Some(peer.parse().expect("peer address")),
            ..Browser::new(app)
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn keep_cookies(&mut self, response: &TestResponse) {
        keep_cookies(&mut self.cookies, &response.headers);
    }

    pub async fn send(
        &mut self,
        request: axum::http::request::Builder,
        body: Body,
    ) -> TestResponse {
        let request = match self.cookies.is_empty() {
            true => request,
            false => request.header(header::COOKIE, self.cookie_header()),
        };
        let mut request = request.body(body).unwrap();
        if let Some(peer) = self.peer {
            let peer = std::net::SocketAddr::new(peer, 40000);
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        let response = match &self.router {
            Some(router) => send(router, request).await,
            None => self.app.send(request).await,
        };
        self.keep_cookies(&response);
        response
    }

    pub async fn get(&mut self, path_and_query: &str) -> TestResponse {
        self.send(Request::get(path_and_query), Body::empty()).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(request, Body::from(form(fields))).await
    }
}
