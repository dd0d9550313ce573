//! The test OpenID provider: node-oidc-provider (`tests/oidc-provider/server.mjs`), one
//! process per test on a loopback port, killed when dropped. Its sign-in pages are driven
//! over HTTP with a cookie jar, as a browser would; its test hooks add accounts, tamper
//! with ID tokens, shift its clock and rotate its signing key.
//!
//! Without `node` or `tests/oidc-provider/node_modules` the tests are skipped with a
//! `SKIPPED` line, unless `OIDC_TESTS_REQUIRED=1` (CI sets it; `.ci/run` runs
//! `npm ci --prefix tests/oidc-provider`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// How long the provider may take to start or answer.
const PATIENCE: Duration = Duration::from_secs(20);

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

/// Whether the provider can run; `false` (after a loud line) when node or the provider's
/// packages are missing, unless `OIDC_TESTS_REQUIRED=1`, which fails instead.
pub fn oidc_present() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let modules = provider_dir().join("node_modules/oidc-provider").is_dir();
    if node && modules {
        return true;
    }
    let missing = if node {
        "tests/oidc-provider/node_modules (npm ci --prefix tests/oidc-provider)"
    } else {
        "node"
    };
    let required = std::env::var("OIDC_TESTS_REQUIRED").is_ok_and(|v| v == "1" || v == "true");
    assert!(
        !required,
        "{missing} missing and OIDC_TESTS_REQUIRED is set"
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED OpenID provider test: {missing} missing; OIDC_TESTS_REQUIRED=1 fails instead"
    );
    false
}

/// How the provider is started.
#[derive(Clone, Debug)]
pub struct ProviderOptions {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    /// `client_secret_basic` or `client_secret_post`: the one method it offers.
    pub auth_method: &'static str,
    /// A port to listen on; any free one when `None`.
    pub port: Option<u16>,
}

impl ProviderOptions {
    pub fn new(redirect_uri: &str) -> Self {
        ProviderOptions {
            client_id: "introspectd-test".to_owned(),
            client_secret: "a-long-test-client-secret-0123456789".to_owned(),
            redirect_uris: vec![redirect_uri.to_owned()],
            auth_method: "client_secret_basic",
            port: None,
        }
    }
}

/// A running provider.
pub struct OidcProvider {
    child: Child,
    pub issuer: String,
    pub options: ProviderOptions,
    hooks: reqwest::Client,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port, for a provider started later than the server that uses it.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().unwrap().port()
}

impl OidcProvider {
    /// Starts the provider; a start that names no issuer in time is tried again, twice.
    pub async fn start(options: ProviderOptions) -> OidcProvider {
        let mut logs = Vec::new();
        for _ in 0..3 {
            match Self::try_start(options.clone()).await {
                Ok(provider) => return provider,
                Err(log) => logs.push(log),
            }
        }
        panic!("the provider did not name its issuer: {logs:?}");
    }

    async fn try_start(options: ProviderOptions) -> Result<OidcProvider, String> {
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let mut child = Command::new("node")
            .arg(provider_dir().join("server.mjs"))
            .current_dir(provider_dir())
            .env("PORT", options.port.unwrap_or(0).to_string())
            .env("CLIENT_ID", &options.client_id)
            .env("CLIENT_SECRET", &options.client_secret)
            .env("REDIRECT_URIS", options.redirect_uris.join(" "))
            .env("CLIENT_AUTH_METHOD", options.auth_method)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("the log file"))
            .spawn()
            .expect("spawn node");
        let stdout = child.stdout.take().unwrap();
        let (found, line) = std::sync::mpsc::channel();
        // Reads the line naming the issuer, then drains the rest.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = found.send(line);
            }
        });
        let line = tokio::task::spawn_blocking(move || line.recv_timeout(PATIENCE))
            .await
            .unwrap();
        let Ok(line) = line else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::fs::read_to_string(log.path()).unwrap_or_default());
        };
        let started: Value = serde_json::from_str(&line).expect("a JSON line");
        Ok(OidcProvider {
            child,
            issuer: started["issuer"].as_str().unwrap().to_owned(),
            options,
            hooks: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(PATIENCE)
                .build()
                .unwrap(),
        })
    }

    async fn hook(&self, path: &str, body: Value) {
        let response = self
            .hooks
            .post(format!("{}/test/{path}", self.issuer))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("test hook");
        assert_eq!(response.status().as_u16(), 204, "hook {path}");
    }

    /// Adds an account whose `sub` is `id`.
    pub async fn account(&self, id: &str, claims: Value) {
        self.hook("accounts", json!({"id": id, "claims": claims}))
            .await;
    }

    /// ID tokens from now on carry these claims instead (re-signed); `Null` stops.
    pub async fn tamper(&self, claims: Value) {
        self.hook("tamper", json!({"claims": claims})).await;
    }

    /// Shifts the provider's clock.
    pub async fn clock(&self, offset_seconds: i64) {
        self.hook("clock", json!({"offset_seconds": offset_seconds}))
            .await;
    }

    /// Signs ID tokens with a new key from now on, published in its key set or not.
    pub async fn new_key(&self, publish: bool) {
        self.hook("keys", json!({"publish": publish})).await;
    }

    /// Requests the provider served: `jwks`, `discovery`, `token`.
    pub async fn stats(&self) -> Value {
        let response = self
            .hooks
            .get(format!("{}/test/stats", self.issuer))
            .send()
            .await
            .expect("stats");
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    /// Goes through the provider's pages from `authorization_url` as `account` (or
    /// cancels when `None`) with a fresh cookie jar; the URL it sends the browser back to.
    pub async fn sign_in(&self, authorization_url: &str, account: Option<&str>) -> String {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PATIENCE)
            .build()
            .unwrap();
        let mut url = url::Url::parse(authorization_url).expect("an authorization URL");
        for _ in 0..10 {
            if !url.as_str().starts_with(&self.issuer) {
                return url.to_string();
            }
            let response = if url.path().starts_with("/interaction/") {
                let (action, form) = match account {
                    Some(account) => ("login", vec![("login", account)]),
                    None => ("abort", vec![]),
                };
                let to = format!("{}/{action}", url.as_str().trim_end_matches('/'));
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish();
                browser
                    .post(to)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
            } else {
                browser.get(url.as_str()).send().await
            }
            .expect("the provider answers");
            let status = response.status();
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            let Some(location) = location.filter(|_| status.is_redirection()) else {
                let body = response.text().await.unwrap_or_default();
                panic!("the provider answered {status}: {body}");
            };
            url = url.join(&location).expect("a location");
        }
        panic!("the provider redirected too often");
    }
}

/// Waits until the server at `addr` has discovered the provider `id` (its `/readyz`).
pub async fn wait_discovered(addr: std::net::SocketAddr, id: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let ready = super::binary::http(addr, "GET", "/readyz", &[], "").await;
        if ready.json["providers"][id] == "available" {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{}", ready.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
