//! Several instances of the real binary on one Postgres database, each started from a
//! working directory of its own, as replicas run: they serve the same answers.

use crate::common;

use std::path::Path;

use common::binary::{HttpResponse, Server, command, http, introspect, post_basic, run_json};
use common::{Backend, fresh_db, within_bound};
use introspectd::config::DatabaseUrl;
use serde_json::Value;

const API: &str = "https://api.example";
const REDIRECT: &str = "http://127.0.0.1/cb";
const PASSWORD: &str = "correct horse battery";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Three servers on `db`, each in its own working directory, with `env` set.
fn three(db: &DatabaseUrl, env: &[(&str, &str)]) -> (Vec<tempfile::TempDir>, Vec<Server>) {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let servers = dirs
        .iter()
        .map(|dir| {
            let mut cmd = command(dir.path(), db);
            cmd.envs(env.iter().copied());
            Server::start_with(cmd)
        })
        .collect();
    (dirs, servers)
}

/// What the CLI sets up: a resource server, an application, a public sign-in client
/// and a user.
struct Setup {
    api: (String, String),
    app: (String, String),
    public_client: String,
}

fn set_up(dir: &Path, db: &DatabaseUrl) -> Setup {
    let id_secret = |v: Value| {
        (
            v["client_id"].as_str().unwrap().to_owned(),
            v["client_secret"].as_str().unwrap().to_owned(),
        )
    };
    let api = id_secret(run_json(
        dir,
        db,
        &["client", "create", "--name", "api", "--audience", API],
    ));
    let app = id_secret(run_json(
        dir,
        db,
        &[
            "client",
            "create",
            "--name",
            "app",
            "--grant-type",
            "client_credentials",
            "--resource",
            API,
        ],
    ));
    let public_client = run_json(
        dir,
        db,
        &[
            "client",
            "create",
            "--name",
            "mcp",
            "--auth-method",
            "none",
            "--redirect-uri",
            REDIRECT,
            "--resource",
            API,
        ],
    )["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let output = common::binary::run_with_stdin(
        dir,
        db,
        &["user", "create", "--username", "alice", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(output.status.success(), "{output:?}");
    Setup {
        api,
        app,
        public_client,
    }
}

/// A browser across servers: the cookies any of them set go to all of them, as they
/// would behind one load balancer.
#[derive(Default)]
struct Browser {
    cookies: Vec<(String, String)>,
}

impl Browser {
    async fn send(
        &mut self,
        server: &Server,
        method: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> HttpResponse {
        let cookie = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if !cookie.is_empty() {
            headers.push(("cookie", &cookie));
        }
        let response = http(server.addr, method, path, &headers, &common::form(fields)).await;
        common::keep_cookies(&mut self.cookies, &response.headers);
        response
    }

    /// Posts the form of `page` (its signed `request` and `csrf_token`) plus `fields`.
    async fn submit(
        &mut self,
        server: &Server,
        path: &str,
        page: &HttpResponse,
        fields: &[(&str, &str)],
    ) -> HttpResponse {
        let (request, csrf) = (hidden(page, "request"), hidden(page, "csrf_token"));
        let mut all = vec![("request", request.as_str()), ("csrf_token", csrf.as_str())];
        all.extend_from_slice(fields);
        self.send(server, "POST", path, &all).await
    }
}

fn hidden(page: &HttpResponse, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .text
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {}", page.text))
        + marker.len();
    page.text[start..].split('"').next().unwrap().to_owned()
}

fn location(response: &HttpResponse) -> String {
    assert_eq!(response.status, 303, "{}", response.text);
    let to = response.headers["location"].to_str().unwrap();
    match to.starts_with('/') || to.starts_with("http") {
        true => to.to_owned(),
        false => format!("/{to}"),
    }
}

fn authorize_path(client_id: &str) -> String {
    let query = common::form(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "st4te"),
        ("resource", API),
    ]);
    format!("/authorize?{query}")
}

/// Three instances from three working directories on one database start (each with
/// the one configured key-encryption key, none with a key file of its own); a token
/// issued by one is active on the others; a revocation on any reaches the others within
/// a second; a sign-in begun on one finishes on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_serve_one_database_as_one() {
    let Some((db, _guard)) = fresh_db(Backend::Postgres).await else {
        return;
    };
    let (dirs, servers) = three(&db, &[]);
    for dir in &dirs {
        assert!(!dir.path().join("data").exists(), "no data of its own");
    }
    let setup = set_up(dirs[0].path(), &db);
    let (api_id, api_secret) = (&setup.api.0, &setup.api.1);
    let (app_id, app_secret) = (setup.app.0.as_str(), setup.app.1.as_str());

    // Issued by each, active on every one.
    for issuer in &servers {
        let (status, issued) = post_basic(
            issuer.addr,
            "/token",
            (app_id, app_secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(status, 200, "{issued}");
        let token = issued["access_token"].as_str().unwrap();
        for server in &servers {
            let (status, answer) = introspect(server.addr, api_id, api_secret, token).await;
            assert_eq!((status, &answer["active"]), (200, &Value::Bool(true)));
        }
    }

    // Revoked on each in turn, inactive on the others within a second.
    for (i, revoker) in servers.iter().enumerate() {
        let (_, issued) = post_basic(
            servers[(i + 1) % 3].addr,
            "/token",
            (app_id, app_secret),
            &[("grant_type", "client_credentials")],
        )
        .await;
        let token = issued["access_token"].as_str().unwrap().to_owned();
        for server in &servers {
            let (_, answer) = introspect(server.addr, api_id, api_secret, &token).await;
            assert_eq!(answer["active"], true, "cached as active first");
        }
        let (status, _) = post_basic(
            revoker.addr,
            "/revoke",
            (app_id, app_secret),
            &[("token", &token)],
        )
        .await;
        assert_eq!(status, 200);
        for server in &servers {
            within_bound(
                Backend::Postgres,
                || introspect(server.addr, api_id, api_secret, &token),
                |(_, answer): &(u16, Value)| answer["active"] == false,
            )
            .await;
        }
    }

    // A sign-in: the login page from one, the password to another, the consent page
    // from the third, the decision back to the first; the code exchanged at the second.
    let mut browser = Browser::default();
    let login = browser
        .send(
            &servers[0],
            "GET",
            &authorize_path(&setup.public_client),
            &[],
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let signed_in = browser
        .submit(
            &servers[1],
            "/login",
            &login,
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    let consent = browser
        .send(&servers[2], "GET", &location(&signed_in), &[])
        .await;
    assert!(
        consent.text.contains("name=\"decision\""),
        "{}",
        consent.text
    );
    let decided = browser
        .submit(&servers[0], "/consent", &consent, &[("decision", "allow")])
        .await;
    let back = url::Url::parse(&location(&decided)).unwrap();
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let exchanged = http(
        servers[1].addr,
        "POST",
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        &common::form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &setup.public_client),
        ]),
    )
    .await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.text);
    let token = exchanged.json["access_token"].as_str().unwrap();
    let (_, answer) = introspect(servers[2].addr, api_id, api_secret, token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["username"], "alice");
}

/// The failed-password budget of a username is spent across instances: wrong passwords
/// sent to one use up what the others allow too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_password_budget_spent_on_one_instance_is_spent_on_all() {
    let Some((db, _guard)) = fresh_db(Backend::Postgres).await else {
        return;
    };
    let (dirs, servers) = three(
        &db,
        &[
            ("INTROSPECTD_RATE_LIMIT__ENABLED", "true"),
            (
                "INTROSPECTD_RATE_LIMIT__PASSWORD_FAILURES_PER_USERNAME",
                "3",
            ),
        ],
    );
    let setup = set_up(dirs[0].path(), &db);
    let attempt = |server: usize, password: &'static str| {
        let (servers, client) = (&servers, setup.public_client.clone());
        async move {
            // A fresh browser each time: a browser that proved the password before
            // would be let past the budget.
            let mut browser = Browser::default();
            let login = browser
                .send(&servers[server], "GET", &authorize_path(&client), &[])
                .await;
            browser
                .submit(
                    &servers[server],
                    "/login",
                    &login,
                    &[("username", "alice"), ("password", password)],
                )
                .await
                .status
        }
    };
    for _ in 0..3 {
        assert_ne!(attempt(0, "wrong password").await, 303);
    }
    assert_eq!(attempt(0, PASSWORD).await, 429, "spent where it was spent");
    for server in 1..3 {
        assert_eq!(
            attempt(server, PASSWORD).await,
            429,
            "instance {server} still allows alice's username"
        );
    }
}
