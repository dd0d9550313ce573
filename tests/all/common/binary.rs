//! The real binary: CLI commands in their own processes, and the server as a child
//! process whose log is collected line by line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use introspectd::config::DatabaseUrl;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_introspectd");

/// How long a server may take to start, or to react to what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A command line with the test's database and a scratch working directory.
pub fn command(dir: &Path, db: &DatabaseUrl) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        .env("INTROSPECTD_DATABASE_URL", db.as_str())
        .env("INTROSPECTD_LISTEN", "127.0.0.1:0")
        .env("INTROSPECTD_METRICS__LISTEN", "127.0.0.1:0")
        .env("INTROSPECTD_RATE_LIMIT__ENABLED", "false");
    if let Some(key) = super::postgres_key(db) {
        // Every process of a test shares its database's key, as instances must.
        let text = std::fs::read_to_string(key).expect("key file");
        cmd.env(
            "INTROSPECTD_JWT__KEY_ENCRYPTION_KEY_ENV",
            "TEST_POSTGRES_KEK",
        )
        .env("TEST_POSTGRES_KEK", text.trim());
    }
    cmd
}

/// Runs `cmd` to its end, as `output()` does, but kills it past [`PATIENCE`]: a server
/// that should have refused to start fails the test instead of hanging it.
pub fn output_within_patience(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run binary");
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("wait for binary")
}

pub fn run(dir: &Path, db: &DatabaseUrl, args: &[&str]) -> Output {
    command(dir, db).args(args).output().expect("run binary")
}

/// Runs a command with `input` on its stdin.
pub fn run_with_stdin(dir: &Path, db: &DatabaseUrl, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = command(dir, db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run binary");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for binary")
}

pub fn run_json(dir: &Path, db: &DatabaseUrl, args: &[&str]) -> Value {
    let output = run(dir, db, args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

/// A configuration for a server that will listen on a port known in advance, so that
/// the commands run before it mint for the issuer it will answer as: `issuer` and then
/// `extra` (TOML) in `dir`'s `config/introspectd.toml`. Returns the port and the issuer.
pub fn known_issuer_config(dir: &Path, extra: &str) -> (u16, String) {
    let port = super::oidc::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    std::fs::create_dir(dir.join("config")).unwrap();
    std::fs::write(
        dir.join("config/introspectd.toml"),
        format!("issuer = \"{issuer}\"\n{extra}"),
    )
    .unwrap();
    (port, issuer)
}

/// The server of [`known_issuer_config`], started on its port.
pub fn serve_on(dir: &Path, db: &DatabaseUrl, port: u16) -> Server {
    let mut command = command(dir, db);
    command.env("INTROSPECTD_LISTEN", format!("127.0.0.1:{port}"));
    Server::start_with(command)
}

/// Creates a client with the CLI; returns its id and secret.
pub fn create_client(dir: &Path, db: &DatabaseUrl, extra: &[&str]) -> (String, String) {
    let mut args = vec!["client", "create", "--name", "test"];
    args.extend_from_slice(extra);
    let created = run_json(dir, db, &args);
    (
        created["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// Issues a token with the CLI.
pub fn issue_token(dir: &Path, db: &DatabaseUrl, client_id: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "token",
        "issue",
        "--client-id",
        client_id,
        "--subject",
        "alice",
    ];
    args.extend_from_slice(extra);
    run_json(dir, db, &args)["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The log a server wrote so far, and a way to wait for a line.
#[derive(Default)]
struct Log {
    text: Mutex<String>,
    grew: Condvar,
}

/// The server process, its address and everything it logged.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The metrics listener's address, when metrics are on.
    pub metrics_addr: Option<SocketAddr>,
    log: Arc<Log>,
}

/// The socket address after `prefix` in a log line, text or JSON.
fn address_after(line: &str, prefix: &str) -> Option<SocketAddr> {
    let rest = line.split(prefix).nth(1)?;
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    addr.parse().ok()
}

impl Server {
    pub fn start(dir: &Path, db: &DatabaseUrl) -> Server {
        Server::start_with(command(dir, db))
    }

    /// Starts `serve` with the given command line and waits until it listens.
    pub fn start_with(mut cmd: Command) -> Server {
        let mut child = cmd
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Log::default());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut text = sink.text.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
                sink.grew.notify_all();
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: None,
            log,
        };
        let line = server.wait_for_log("listening on ");
        server.addr = address_after(&line, "listening on ").expect("listen address in the log");
        // Logged before the main listener's line, when metrics are on.
        server.metrics_addr = server
            .log()
            .lines()
            .find_map(|line| address_after(line, "serving metrics at http://"));
        server
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.text.lock().unwrap().clone()
    }

    /// Waits until a logged line contains `needle`, and returns that line.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut text = self.log.text.lock().unwrap();
        loop {
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no log line with {needle:?} in:\n{text}");
            text = self.log.grew.wait_timeout(text, left).unwrap().0;
        }
    }

    /// Sends a signal (`TERM`, `INT`) to the server.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit by itself, within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server still running after {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, waits for a clean exit and returns the whole log.
    pub fn stop(mut self) -> String {
        self.signal("TERM");
        let exit = self.wait_exit(PATIENCE);
        assert!(exit.success(), "server exit {exit:?}:\n{}", self.log());
        // The reader thread may still hold the last lines.
        self.wait_for_log("stopped");
        self.log()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response from a server over a real socket, body read as JSON when it is JSON.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub text: String,
    pub json: Value,
}

/// Sends one request over a real connection.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client.request(request).await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    HttpResponse {
        status,
        headers,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// POST /introspect over a real connection with client_secret_basic.
pub async fn introspect(addr: SocketAddr, id: &str, secret: &str, token: &str) -> (u16, Value) {
    post_basic(addr, "/introspect", (id, secret), &[("token", token)]).await
}

/// POST a form to `path` over a real connection with client_secret_basic.
pub async fn post_basic(
    addr: SocketAddr,
    path: &str,
    (id, secret): (&str, &str),
    params: &[(&str, &str)],
) -> (u16, Value) {
    let response = http(
        addr,
        "POST",
        path,
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &super::basic(id, secret)),
        ],
        &super::form(params),
    )
    .await;
    (response.status, response.json)
}
