//! A real browser signs a user in: headless Chromium, driven through WebDriver
//! (chromedriver), against the real binary over a real socket. It opens the authorization
//! URL of a public client, types a username and password into the login page, answers the
//! consent page, and lands on the client's loopback redirect URI, whose code is then
//! exchanged and introspected. A wrong password and a denial are followed the same way.
//!
//! Screenshots of the login page, the login page with its error and the consent page, at a
//! phone's and a desktop's width, are written to `screenshots/` in the target directory.
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver` (`.ci/run`
//! installs them). Without them the tests are skipped with a `SKIPPED` line, unless
//! `BROWSER_TESTS_REQUIRED=1`, which CI sets.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::extract::RawQuery;
use axum::http::Method;
use axum::routing::get;
use common::binary::{
    HttpResponse, PATIENCE, Server, command, create_client, http, introspect, run_json,
    run_with_stdin,
};
use common::fresh_db;
use common::oidc::{OidcProvider, ProviderOptions, oidc_present, wait_discovered};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use introspectd::config::DatabaseUrl;
use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const RESOURCE: &str = "https://mcp.example/";
const USERNAME: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

/// Whether the browser tests can run; `None` (after a loud line) when Chromium is not
/// installed, as the Postgres tests skip when Postgres is down. With
/// `BROWSER_TESTS_REQUIRED=1` (CI sets it) a missing browser fails the test instead.
fn browser_present() -> Option<()> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    if missing.is_empty() {
        return Some(());
    }
    let required = std::env::var("BROWSER_TESTS_REQUIRED").is_ok_and(|v| v == "1" || v == "true");
    assert!(
        !required,
        "{missing:?} missing and BROWSER_TESTS_REQUIRED is set: install Debian's `chromium` \
         and `chromium-driver` packages (apt-get install chromium chromium-driver)"
    );
    // Straight to stderr, past the test harness's capture, so a skip is never silent.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED browser test: {missing:?} missing (apt-get install chromium \
         chromium-driver; BROWSER_TESTS_REQUIRED=1 fails instead)"
    );
    None
}

/// chromedriver in a process group of its own, with the Chromium it starts; dropping it
/// kills the whole group, whichever way the test ends.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        use std::os::unix::process::CommandExt;
        let child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn chromedriver");
        let mut driver = Driver { child, port: 0 };
        let stdout = driver.child.stdout.take().unwrap();
        let (found, port) = std::sync::mpsc::channel();
        // Reads the port it chose, then drains the rest so it never blocks on the pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let _ = found.send(rest.trim_end_matches('.').parse::<u16>());
                }
            }
        });
        driver.port = port
            .recv_timeout(PATIENCE)
            .expect("chromedriver names its port")
            .expect("a port number");
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// One browser session: its driver and profile go when it is dropped.
struct Browser {
    client: Client,
    // Dropped after the driver (fields drop in order), so Chromium is gone first.
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// A viewport to look at a page in.
#[derive(Clone, Copy)]
struct Viewport {
    name: &'static str,
    width: u32,
    height: u32,
    scale: f64,
    mobile: bool,
    /// `prefers-color-scheme: dark`, as a phone set to dark mode asks.
    dark: bool,
}

const PHONE: Viewport = Viewport {
    name: "phone",
    width: 390,
    height: 844,
    scale: 2.0,
    mobile: true,
    dark: false,
};
const PHONE_DARK: Viewport = Viewport {
    name: "phone-dark",
    dark: true,
    ..PHONE
};
const DESKTOP: Viewport = Viewport {
    name: "desktop",
    width: 1280,
    height: 800,
    scale: 1.0,
    mobile: false,
    dark: false,
};

/// A Chrome DevTools Protocol command, sent through chromedriver.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (Method::POST, Some(body.to_string()))
    }
}

impl Browser {
    async fn start() -> Browser {
        let driver = Driver::start();
        let profile = tempfile::tempdir().expect("profile directory");
        let options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                // CI runs as root, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                format!("--user-data-dir={}", profile.path().display()),
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-proxy-server",
                // Every name but the loopback address fails to resolve: the browser
                // reaches nothing but the test's own listeners.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--window-size=1280,800",
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a Chromium session");
        Browser {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    async fn emulate(&self, viewport: Viewport) {
        self.client
            .issue_cmd(Cdp {
                cmd: "Emulation.setDeviceMetricsOverride",
                params: json!({
                    "width": viewport.width,
                    "height": viewport.height,
                    "deviceScaleFactor": viewport.scale,
                    "mobile": viewport.mobile,
                }),
            })
            .await
            .expect("emulate the viewport");
        let scheme = if viewport.dark { "dark" } else { "light" };
        self.client
            .issue_cmd(Cdp {
                cmd: "Emulation.setEmulatedMedia",
                params: json!({
                    "features": [{"name": "prefers-color-scheme", "value": scheme}],
                }),
            })
            .await
            .expect("emulate the colour scheme");
    }

    /// Saves the page as a phone (in light and dark mode) and a desktop show it, as
    /// `{page}-{phone|phone-dark|desktop}.png`; the desktop's viewport stays.
    async fn screenshots(&self, page: &str) {
        let dir = screenshot_dir();
        for viewport in [PHONE, PHONE_DARK, DESKTOP] {
            self.emulate(viewport).await;
            let png = self.client.screenshot().await.expect("screenshot");
            let path = dir.join(format!("{page}-{}.png", viewport.name));
            std::fs::write(&path, png).expect("write the screenshot");
        }
    }

    async fn close(self) {
        self.client.clone().close().await.expect("end the session");
    }
}

/// `screenshots/` in the target directory, created on first use.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    dir
}

/// The client's redirect URI: a loopback listener (RFC 8252 §7.3) that reports the query
/// of every request to `/callback`.
struct Callback {
    addr: SocketAddr,
    queries: mpsc::UnboundedReceiver<String>,
}

impl Callback {
    async fn start() -> Callback {
        let (sender, queries) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/callback",
            get(move |RawQuery(query): RawQuery| async move {
                let _ = sender.send(query.unwrap_or_default());
                axum::response::Html("<p>The client received the answer.</p>")
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the callback listener");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Callback { addr, queries }
    }

    fn redirect_uri(&self) -> String {
        format!("http://{}/callback", self.addr)
    }

    /// The query of the next redirect the browser follows here.
    async fn next(&mut self) -> Vec<(String, String)> {
        let query = tokio::time::timeout(PATIENCE, self.queries.recv())
            .await
            .expect("the browser lands on the redirect URI")
            .expect("the listener runs");
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The server, its users and clients, and the redirect listener of one test.
struct SignIn {
    server: Server,
    issuer: String,
    user_id: String,
    client_id: String,
    api: (String, String),
    callback: Callback,
    _db: common::TestDb,
    _dir: tempfile::TempDir,
}

impl SignIn {
    async fn start() -> SignIn {
        Self::start_with(None).await
    }

    /// A server on `port` whose login page also offers `provider` (`[[login.providers]]`,
    /// id `corp`), discovered before this returns.
    async fn start_with(provider: Option<(&OidcProvider, u16)>) -> SignIn {
        let (db, guard) = fresh_db(common::Backend::Sqlite).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let callback = Callback::start().await;
        let user_id = create_user(dir.path(), &db);
        let api = create_client(dir.path(), &db, &["--audience", RESOURCE]);
        let client = run_json(
            dir.path(),
            &db,
            &[
                "client",
                "create",
                "--name",
                "Example MCP client",
                "--auth-method",
                "none",
                "--scope",
                "read write",
                "--redirect-uri",
                &callback.redirect_uri(),
            ],
        );
        let port = provider.map_or_else(free_port, |(_, port)| port);
        let issuer = format!("http://127.0.0.1:{port}");
        let mut cmd = command(dir.path(), &db);
        cmd.env("INTROSPECTD_LISTEN", format!("127.0.0.1:{port}"))
            .env("INTROSPECTD_ISSUER", &issuer);
        if let Some((provider, _)) = provider {
            let config = format!(
                "[[login.providers]]\nid = \"corp\"\nname = \"Corp SSO\"\nissuer = \"{}\"\n\
                 client_id = \"{}\"\nclient_secret_env = \"CORP_CLIENT_SECRET\"\n",
                provider.issuer, provider.options.client_id
            );
            std::fs::write(dir.path().join("federation.toml"), config).unwrap();
            cmd.env("CORP_CLIENT_SECRET", &provider.options.client_secret)
                .args(["--config", "federation.toml"]);
        }
        let server = Server::start_with(cmd);
        if provider.is_some() {
            wait_discovered(server.addr, "corp").await;
        }
        SignIn {
            server,
            issuer,
            user_id,
            client_id: client["client_id"].as_str().unwrap().to_owned(),
            api,
            callback,
            _db: guard,
            _dir: dir,
        }
    }

    fn authorize_url(&self, challenge: &PkceCodeChallenge, state: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", &self.callback.redirect_uri())
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", state)
            .append_pair("scope", "read")
            .append_pair("resource", RESOURCE)
            .finish();
        format!("http://{}/authorize?{query}", self.server.addr)
    }
}

/// A port free on the loopback interface now, for a server that must know its own
/// address (its issuer) before it starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Creates the user with `user create --password-stdin`; returns its id.
fn create_user(dir: &Path, db: &DatabaseUrl) -> String {
    let args = ["user", "create", "--username", USERNAME, "--password-stdin"];
    let output = run_with_stdin(dir, db, &args, &format!("{PASSWORD}\n"));
    assert!(
        output.status.success(),
        "user create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    created["user_id"].as_str().unwrap().to_owned()
}

/// Waits for an element of the page the browser is on or navigating to.
async fn element(browser: &Browser, css: &str) -> fantoccini::elements::Element {
    browser
        .client
        .wait()
        .at_most(PATIENCE)
        .every(Duration::from_millis(50))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css:?} on the page: {e}"))
}

/// The text a person reads on the current page. A page still being replaced by the
/// next one (a form's redirect) can take the body away between finding and reading it:
/// then it is read again, from the page that came.
async fn page_text(browser: &Browser) -> String {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        match element(browser, "body").await.text().await {
            Ok(text) => return text,
            Err(_) if std::time::Instant::now() < deadline => continue,
            Err(err) => panic!("page text: {err}"),
        }
    }
}

/// Types the credentials into the login page and submits it.
async fn sign_in(browser: &Browser, username: &str, password: &str) {
    for (field, value) in [("username", username), ("password", password)] {
        let input = element(browser, &format!("input[name={field}]")).await;
        input.clear().await.expect("clear the field");
        input
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("type the {field}: {e}"));
    }
    element(
        browser,
        "form:has(input[name=password]) button[type=submit]",
    )
    .await
    .click()
    .await
    .expect("submit the login form");
}

/// A fresh server and browser, the browser on the authorization URL with `state`; the
/// PKCE verifier that goes with it.
/// The public client's code exchange at `/token`, which must succeed.
async fn exchange(signin: &SignIn, code: &str, verifier: &PkceCodeVerifier) -> HttpResponse {
    let exchanged = http(
        signin.server.addr,
        "POST",
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        &common::form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &signin.callback.redirect_uri()),
            ("code_verifier", verifier.secret()),
            ("client_id", &signin.client_id),
        ]),
    )
    .await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.text);
    exchanged
}

async fn open_authorization(state: &str) -> (SignIn, Browser, PkceCodeVerifier) {
    let signin = SignIn::start().await;
    let browser = Browser::start().await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    browser
        .client
        .goto(&signin.authorize_url(&challenge, state))
        .await
        .expect("open the authorization URL");
    (signin, browser, verifier)
}

#[tokio::test]
async fn a_browser_signs_in_consents_and_the_code_buys_a_token_for_the_user() {
    let Some(()) = browser_present() else { return };
    let state = introspectd::token::random_string(16);
    let (mut signin, browser, verifier) = open_authorization(&state).await;
    element(&browser, "input[name=password]").await;
    let radius = element(&browser, "main")
        .await
        .css_value("border-top-left-radius")
        .await
        .expect("a style of the page");
    assert_ne!(
        radius, "0px",
        "the stylesheet loads under the page's Content-Security-Policy"
    );
    browser.screenshots("login").await;
    sign_in(&browser, USERNAME, PASSWORD).await;

    let allow = element(&browser, "button[name=decision][value=allow]").await;
    let consent = page_text(&browser).await;
    for shown in [
        "Example MCP client",
        "an application on this computer",
        "read",
        RESOURCE,
    ] {
        assert!(
            consent.contains(shown),
            "consent page lacks {shown:?}:\n{consent}"
        );
    }
    browser.screenshots("consent").await;
    allow.click().await.expect("press allow");

    let query = signin.callback.next().await;
    assert_eq!(param(&query, "state"), Some(state.as_str()));
    assert_eq!(param(&query, "iss"), Some(signin.issuer.as_str()));
    assert_eq!(param(&query, "error"), None, "{query:?}");
    let code = param(&query, "code").expect("a code").to_owned();

    let exchanged = exchange(&signin, &code, &verifier).await;
    let access_token = exchanged.json["access_token"]
        .as_str()
        .expect("an access token");
    let (api_id, api_secret) = &signin.api;
    let (status, answer) = introspect(signin.server.addr, api_id, api_secret, access_token).await;
    assert_eq!(status, 200);
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], signin.user_id.as_str());
    assert_eq!(answer["username"], USERNAME);
    assert_eq!(answer["client_id"], signin.client_id.as_str());
    assert_eq!(answer["aud"], RESOURCE);
    browser.close().await;
}

#[tokio::test]
async fn a_wrong_password_shows_the_login_page_again_and_goes_nowhere() {
    let Some(()) = browser_present() else { return };
    let (mut signin, browser, _) = open_authorization("wrong-password").await;
    let wrong = "not the password";
    sign_in(&browser, USERNAME, wrong).await;

    element(&browser, "[role=alert]").await;
    element(&browser, "input[name=password]").await;
    browser.screenshots("login-error").await;
    let url = browser.client.current_url().await.expect("the current URL");
    assert_eq!(
        url.port(),
        Some(signin.server.addr.port()),
        "still on the server: {url}"
    );
    let source = browser.client.source().await.expect("page source");
    assert!(!source.contains(wrong), "the password is echoed back");
    assert!(
        signin.callback.queries.try_recv().is_err(),
        "nothing reached the redirect URI"
    );

    // The page shown again is a working login form.
    sign_in(&browser, USERNAME, PASSWORD).await;
    element(&browser, "button[name=decision][value=allow]").await;
    browser.close().await;
}

#[tokio::test]
async fn denying_consent_lands_on_the_redirect_uri_with_access_denied() {
    let Some(()) = browser_present() else { return };
    let state = introspectd::token::random_string(16);
    let (mut signin, browser, _) = open_authorization(&state).await;
    sign_in(&browser, USERNAME, PASSWORD).await;
    element(&browser, "button[name=decision][value=deny]")
        .await
        .click()
        .await
        .expect("press deny");

    let query = signin.callback.next().await;
    assert_eq!(param(&query, "error"), Some("access_denied"), "{query:?}");
    assert_eq!(param(&query, "state"), Some(state.as_str()));
    assert_eq!(param(&query, "iss"), Some(signin.issuer.as_str()));
    assert_eq!(param(&query, "code"), None);
    browser.close().await;
}

/// Signing in through the organisation's provider in a real browser: the login page offers
/// its button (next to the password form), the provider's own page takes the account, and
/// the browser lands back at the client's redirect URI with a code, which buys a token for
/// the user the provider named.
#[tokio::test]
async fn a_browser_signs_in_through_the_provider_and_lands_with_a_code() {
    let Some(()) = browser_present() else { return };
    if !oidc_present() {
        return;
    }
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/login/callback/corp");
    let provider = OidcProvider::start(ProviderOptions::new(&redirect)).await;
    let claims = json!({"email": "carol@example.com", "email_verified": true,
        "preferred_username": "carol", "name": "Carol Example"});
    provider.account("sub-carol", claims).await;
    let mut signin = SignIn::start_with(Some((&provider, port))).await;
    let browser = Browser::start().await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = introspectd::token::random_string(16);
    browser
        .client
        .goto(&signin.authorize_url(&challenge, &state))
        .await
        .expect("open the authorization URL");
    let button = element(&browser, "form[action='login/provider/corp'] button").await;
    assert_eq!(button.text().await.unwrap(), "Sign in with Corp SSO");
    element(&browser, "input[name=password]").await;
    browser.screenshots("login-providers").await;
    button.click().await.expect("press the provider's button");

    let account = element(&browser, "input#login").await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(
        url.port(),
        url::Url::parse(&provider.issuer).unwrap().port(),
        "{url}"
    );
    account
        .send_keys("sub-carol")
        .await
        .expect("type the account");
    element(&browser, "button#submit")
        .await
        .click()
        .await
        .expect("sign in at the provider");

    let allow = element(&browser, "button[name=decision][value=allow]").await;
    assert!(page_text(&browser).await.contains("carol"));
    allow.click().await.expect("press allow");
    let query = signin.callback.next().await;
    assert_eq!(param(&query, "state"), Some(state.as_str()));
    assert_eq!(param(&query, "iss"), Some(signin.issuer.as_str()));
    let code = param(&query, "code").expect("a code").to_owned();

    let exchanged = exchange(&signin, &code, &verifier).await;
    let token = exchanged.json["access_token"].as_str().unwrap();
    let (api_id, api_secret) = &signin.api;
    let (_, answer) = introspect(signin.server.addr, api_id, api_secret, token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["username"], "carol");
    assert_ne!(answer["sub"], signin.user_id.as_str());
    browser.close().await;
}

/// Opens `url` and waits for `css` on the page it shows.
async fn back_to(browser: &Browser, url: &str, css: &str) {
    browser.client.goto(url).await.expect("open the URL");
    element(browser, css).await;
}

/// Signing out in a real browser: a sign-out form without its token ends nothing, the
/// consent page's own sign-out button ends the session. A second cookie of one of the
/// server's names (as a sibling site of the domain can set one: cookie tossing) makes
/// the browser signed out.
#[tokio::test]
async fn a_browser_signs_out_only_with_its_token_and_a_tossed_cookie_signs_it_out() {
    let Some(()) = browser_present() else { return };
    let (signin, browser, _) = open_authorization("sign-out").await;
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let again = signin.authorize_url(&challenge, "again");
    sign_in(&browser, USERNAME, PASSWORD).await;
    element(&browser, "button[name=decision][value=allow]").await;

    // A sign-out form without the token, posted with the browser's cookies.
    let forged = "const f = document.createElement('form'); f.method = 'post'; \
                  f.action = '/logout'; document.body.appendChild(f); f.submit();";
    browser
        .client
        .execute(forged, vec![])
        .await
        .expect("post a sign-out form without its token");
    let refused = element(&browser, "h1").await.text().await.unwrap();
    assert!(refused.contains("not accepted"), "{refused}");
    back_to(&browser, &again, "button[name=decision][value=allow]").await;

    // The consent page's own sign-out button.
    element(&browser, "form[action=logout] button")
        .await
        .click()
        .await
        .expect("press sign out");
    let out = page_text(&browser).await;
    assert!(out.to_lowercase().contains("signed out"), "{out}");
    back_to(&browser, &again, "input[name=password]").await;

    // Signed in again, then a second session cookie tossed in for /authorize.
    sign_in(&browser, USERNAME, PASSWORD).await;
    element(&browser, "button[name=decision][value=allow]").await;
    // As a sibling site sets it: not HttpOnly, for a narrower path.
    let toss = "document.cookie = 'introspectd_session=tossed.AAAA; path=/authorize'";
    browser
        .client
        .execute(toss, vec![])
        .await
        .expect("set a second cookie");
    let cookies = browser.client.get_all_cookies().await.unwrap();
    let sessions = cookies.iter().filter(|c| c.name() == "introspectd_session");
    assert_eq!(sessions.count(), 2, "{cookies:?}");
    back_to(&browser, &again, "input[name=password]").await;
    assert!(!page_text(&browser).await.contains("Allow"));
    browser.close().await;
}
