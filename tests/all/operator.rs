//! Mistakes an operator makes, and what introspectd says about them: the CLI naming its
//! database and never creating one to read, undoing a disable, rotating a secret without
//! an outage, redirect URIs as typed, configuration keys misspelt, an address in use, a
//! provider's secret missing, a database it may not write, a provider it cannot reach,
//! and the Compose file's health check.

use crate::common;

use std::path::Path;

use axum::http::StatusCode;
use common::binary::{Server, command, run, run_json};
use common::{TestApp, TestClient, introspect_as, registration_request, within_bound};
use introspectd::admin::{self, NewClient};
use introspectd::config::DatabaseUrl;
use introspectd::token::now;
use serde_json::json;

/// The line every command but `serve` writes first on stderr.
const DATABASE_LINE: &str = "introspectd: database ";

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// stderr without the line naming the database, which must come first.
fn after_database_line(output: &std::process::Output) -> String {
    let text = stderr(output);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    assert!(first.starts_with(DATABASE_LINE), "{text}");
    lines.collect::<Vec<_>>().join("\n")
}

/// A scratch working directory with a SQLite database in it (not created yet).
fn scratch() -> (tempfile::TempDir, DatabaseUrl) {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("introspectd.db").display());
    (dir, DatabaseUrl(db))
}

/// A configuration file in `dir` with `text`.
fn config_file(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("introspectd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

// --- the CLI's database -----------------------------------------------------------------

#[test]
fn a_command_names_its_database_and_one_that_reads_never_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let relative = DatabaseUrl("sqlite://data/introspectd.db".to_owned());
    let file = dir.path().join("data/introspectd.db");
    for args in [
        &["client", "list"][..],
        &["client", "show", "some-id"],
        &["user", "list"],
        &["user", "show", "alice"],
        &["keys", "list"],
    ] {
        let output = run(dir.path(), &relative, args);
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty());
        let text = stderr(&output);
        let shown = format!(
            "{DATABASE_LINE}sqlite://data/introspectd.db ({})",
            file.display()
        );
        assert_eq!(text.lines().next(), Some(shown.as_str()), "{text}");
        let error = after_database_line(&output);
        assert_eq!(error.lines().count(), 1, "{text}");
        assert!(error.contains(&file.display().to_string()), "{error}");
        assert!(error.contains("does not exist"), "{error}");
        assert!(!file.exists(), "{args:?} created {}", file.display());
        assert!(!dir.path().join("data").exists(), "{args:?}");
    }
    // A command that writes creates it, and says where.
    let output = run(
        dir.path(),
        &relative,
        &["client", "create", "--name", "app"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).starts_with(DATABASE_LINE));
    assert!(file.exists());
    let output = run(dir.path(), &relative, &["client", "list"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(after_database_line(&output), "");
}

#[test]
fn the_database_line_never_shows_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseUrl("postgres://postgres:hunter2-secret@127.0.0.1:1/none".to_owned());
    let output = run(dir.path(), &db, &["client", "list"]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.starts_with(&format!(
            "{DATABASE_LINE}postgres://postgres:redacted@127.0.0.1:1/none\n"
        )),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    // serve and healthcheck open no store through the CLI, and say nothing of one.
    let output = run(dir.path(), &db, &["healthcheck"]);
    assert!(!stderr(&output).contains(DATABASE_LINE));
}

// --- enable -----------------------------------------------------------------------------

/// A disabled client enabled again authenticates on the next request of every instance.
async fn an_enabled_client_authenticates_again_everywhere(app: TestApp) {
    let (_other_store, other) = app.sibling().await;
    let api = app.client("api", &["https://api.example"]).await;
    let issuer = app.app_client("app", "", &["https://api.example"]).await;
    let token = app.jwt_for(&issuer, &["https://api.example"]).await;
    let ask = || introspect_as(&other, &api, &token);
    assert_eq!(ask().await.status, StatusCode::OK);
    admin::disable_client(&app.store, &api.id, now())
        .await
        .unwrap();
    within_bound(app.backend, ask, |r| r.status == StatusCode::UNAUTHORIZED).await;
    let shown = admin::enable_client(&app.store, &api.id, now())
        .await
        .unwrap();
    assert!(!shown.disabled);
    within_bound(app.backend, ask, |r| {
        r.status == StatusCode::OK && r.json["active"] == true
    })
    .await;
    assert!(matches!(
        admin::enable_client(&app.store, "no-such-client", now()).await,
        Err(admin::AdminError::UnknownClient(_))
    ));
}

#[test]
fn enable_commands_print_the_enabled_record() {
    let (dir, db) = scratch();
    let created = run_json(dir.path(), &db, &["client", "create", "--name", "app"]);
    let id = created["client_id"].as_str().unwrap();
    let disabled = run_json(dir.path(), &db, &["client", "disable", id]);
    assert_eq!(disabled["disabled"], true);
    let enabled = run_json(dir.path(), &db, &["client", "enable", id]);
    assert_eq!(enabled["disabled"], false);
    assert_eq!(enabled["client_id"], id);
    let user = run_json(dir.path(), &db, &["user", "create", "--username", "alice"]);
    run_json(dir.path(), &db, &["user", "disable", "alice"]);
    let enabled = run_json(dir.path(), &db, &["user", "enable", "alice"]);
    assert_eq!(enabled["disabled"], false);
    assert_eq!(enabled["user_id"], user["user_id"]);
    for args in [["client", "enable", "nobody"], ["user", "enable", "nobody"]] {
        let output = run(dir.path(), &db, &args);
        assert!(!output.status.success());
        assert_eq!(after_database_line(&output).lines().count(), 1);
    }
}

// --- rotate-secret --grace --------------------------------------------------------------

async fn introspect_status(app: &TestApp, caller: &TestClient, token: &str) -> StatusCode {
    app.introspect(caller, token).await.status
}

/// Rotates `client`'s secret at `now` with `grace` seconds for the old one.
async fn rotate(app: &TestApp, client: &TestClient, grace: u64, now: i64) -> TestClient {
    let rotated = admin::rotate_secret(&app.store, &client.id, grace, now)
        .await
        .unwrap();
    TestClient {
        id: client.id.clone(),
        secret: rotated.client_secret.expose().to_owned(),
    }
}

/// The old secret works for the grace period and not a moment past it, beside the new
/// one; a second rotation ends the first one's grace at once, so a client never has more
/// than two secrets. Grace is judged at the request's time against the stored end, so
/// an end put in the past (an injected `now`) reads as a grace that has run out.
async fn a_rotated_secret_keeps_working_for_its_grace_only(app: TestApp) {
    let issuer = app.app_client("app", "", &["https://api.example"]).await;
    let token = app.jwt_for(&issuer, &["https://api.example"]).await;
    let first = app.client("api", &["https://api.example"]).await;
    let second = rotate(&app, &first, 600, now()).await;
    assert_eq!(
        introspect_status(&app, &first, &token).await,
        StatusCode::OK
    );
    assert_eq!(
        introspect_status(&app, &second, &token).await,
        StatusCode::OK
    );
    // Rotated again: the first secret's grace ends, the second's begins.
    let third = rotate(&app, &first, 600, now()).await;
    assert_eq!(
        introspect_status(&app, &first, &token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        introspect_status(&app, &second, &token).await,
        StatusCode::OK
    );
    assert_eq!(
        introspect_status(&app, &third, &token).await,
        StatusCode::OK
    );
    // A rotation made ten minutes ago with a five-minute grace: the old secret is over.
    let fourth = rotate(&app, &first, 300, now() - 600).await;
    assert_eq!(
        introspect_status(&app, &third, &token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        introspect_status(&app, &fourth, &token).await,
        StatusCode::OK
    );
    // No grace: the old secret stops at once, even one this process verified before.
    let fifth = rotate(&app, &first, 0, now()).await;
    assert_eq!(
        introspect_status(&app, &fourth, &token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        introspect_status(&app, &fifth, &token).await,
        StatusCode::OK
    );
    let too_long = admin::rotate_secret(&app.store, &first.id, 31 * 86_400, now()).await;
    assert!(matches!(too_long, Err(admin::AdminError::Invalid(_))));
}

/// Another instance honours the grace too: the old secret, which it verified and
/// remembered before the rotation, keeps working there.
async fn the_grace_holds_on_every_instance(app: TestApp) {
    let (_other_store, other) = app.sibling().await;
    let issuer = app.app_client("app", "", &["https://api.example"]).await;
    let token = app.jwt_for(&issuer, &["https://api.example"]).await;
    let old = app.client("api", &["https://api.example"]).await;
    assert_eq!(
        introspect_as(&other, &old, &token).await.status,
        StatusCode::OK
    );
    let new = rotate(&app, &old, 600, now()).await;
    within_bound(
        app.backend,
        || introspect_as(&other, &new, &token),
        |r| r.status == StatusCode::OK,
    )
    .await;
    assert_eq!(
        introspect_as(&other, &old, &token).await.status,
        StatusCode::OK
    );
}

#[test]
fn rotate_secret_takes_a_grace_on_the_command_line() {
    let (dir, db) = scratch();
    let created = run_json(dir.path(), &db, &["client", "create", "--name", "api"]);
    let id = created["client_id"].as_str().unwrap();
    let rotated = run_json(
        dir.path(),
        &db,
        &["client", "rotate-secret", id, "--grace", "300"],
    );
    assert_eq!(rotated["client_id"], id);
    assert_ne!(rotated["client_secret"], created["client_secret"]);
    let output = run(
        dir.path(),
        &db,
        &["client", "rotate-secret", id, "--grace", "-5"],
    );
    assert!(!output.status.success());
}

// --- redirect URIs ----------------------------------------------------------------------

async fn redirect_uris_are_stored_normalised_and_malformed_ones_refused(app: TestApp) {
    let created = admin::create_client(
        &app.store,
        NewClient {
            name: "app".to_owned(),
            auth_method: Some("none".to_owned()),
            redirect_uris: vec![
                "HTTPS://App.Example.com:443/cb".to_owned(),
                "https://app.example.com/cb".to_owned(),
                "HTTP://LocalHost:6274/oauth/callback".to_owned(),
            ],
            ..NewClient::default()
        },
        now(),
    )
    .await
    .unwrap();
    let shown = admin::show_client(&app.store, &created.client_id)
        .await
        .unwrap();
    assert_eq!(
        shown.redirect_uris,
        [
            "https://app.example.com/cb",
            "http://localhost:6274/oauth/callback"
        ]
    );
    for (bad, says) in [
        ("https:/app.example.com/cb", "after //"),
        ("https:\\\\app.example.com\\cb", "backslash"),
    ] {
        let refused = admin::create_client(
            &app.store,
            NewClient {
                name: "app".to_owned(),
                redirect_uris: vec![bad.to_owned()],
                ..NewClient::default()
            },
            now(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            refused.contains("--redirect-uri") && refused.contains(says),
            "{refused}"
        );
    }
    // POST /register stores the same form, and names the field it refuses.
    let register = |uri: &str| {
        let body = json!({
            "client_name": "self",
            "redirect_uris": [uri],
            "token_endpoint_auth_method": "none",
        });
        registration_request(&body, "192.0.2.7")
    };
    let registered = app.send(register("HTTPS://Self.Example:443/cb")).await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{:?}",
        registered.json
    );
    assert_eq!(
        registered.json["redirect_uris"],
        json!(["https://self.example/cb"])
    );
    let refused = app.send(register("https:/self.example/cb")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json["error"], "invalid_redirect_uri");
    let description = refused.json["error_description"].as_str().unwrap();
    assert!(description.contains("redirect_uris[0]"), "{description}");
}

// --- configuration ----------------------------------------------------------------------

#[test]
fn every_configuration_problem_is_reported_at_once_with_a_suggestion() {
    let (dir, db) = scratch();
    let config = config_file(
        dir.path(),
        "lisen = \"127.0.0.1:9000\"\n\
         [rate_limit]\nper_secnd = 5\nburst = \"lots\"\n\
         [http]\nclient_ip_header = \"x-real-ip\"\n",
    );
    let output = command(dir.path(), &db)
        .env("INTROSPECTD_LOG__LEVL", "debug")
        .args(["--config", config.to_str().unwrap(), "client", "list"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    for needle in [
        "unknown key `lisen`",
        "did you mean `listen`?",
        "unknown key `rate_limit.per_secnd`",
        "did you mean `rate_limit.per_second`?",
        "`rate_limit.burst`",
        "`http.client_ip_header`",
        "unknown key `log.levl` (from INTROSPECTD_LOG__LEVL); did you mean `log.level`?",
        &format!("(in {})", config.display()),
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    assert!(!dir.path().join("introspectd.db").exists());
}

#[test]
fn an_address_in_use_names_its_setting() {
    let (dir, db) = scratch();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for (variable, setting) in [
        ("INTROSPECTD_LISTEN", "`listen`"),
        ("INTROSPECTD_METRICS__LISTEN", "`metrics.listen`"),
    ] {
        let output = command(dir.path(), &db)
            .env(variable, &addr)
            .arg("serve")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let text = stderr(&output);
        let last = text.lines().last().unwrap_or_default();
        assert!(last.contains(&addr) && last.contains(setting), "{text}");
    }
}

/// A provider's secret is for `serve` alone: every other command runs without it, and
/// `serve` names the variable it misses.
#[test]
fn only_serve_needs_a_providers_secret() {
    let (dir, db) = scratch();
    let config = config_file(
        dir.path(),
        "[[login.providers]]\nid = \"corp\"\nname = \"Corp\"\n\
         issuer = \"https://idp.example.com\"\nclient_id = \"introspectd\"\n\
         client_secret_env = \"INTROSPECTD_TEST_CORP_SECRET\"\n",
    );
    let with_config = |args: &[&str]| {
        command(dir.path(), &db)
            .env_remove("INTROSPECTD_TEST_CORP_SECRET")
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    for args in [&["migrate"][..], &["client", "list"], &["user", "list"]] {
        let output = with_config(args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    }
    let output = with_config(&["serve"]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains(
            "login.providers[0].client_secret_env: INTROSPECTD_TEST_CORP_SECRET is not set"
        ),
        "{text}"
    );
}

// --- a database introspectd may not use -------------------------------------------------

#[test]
fn a_database_it_cannot_open_is_named_with_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    // Where a directory should be, a file: the database cannot be made there.
    let blocker = dir.path().join("data");
    std::fs::write(&blocker, "").unwrap();
    let below_a_file = DatabaseUrl(format!("sqlite://{}/introspectd.db", blocker.display()));
    // Opened read-only: SQLite cannot set it up for writing.
    let file = dir.path().join("read-only.db");
    let read_only = DatabaseUrl(format!("sqlite://{}?mode=ro", file.display()));
    let says_read_only = format!("SQLite may only read the database {}", file.display());
    for (db, says) in [
        (&below_a_file, "is not a directory"),
        (&read_only, says_read_only.as_str()),
    ] {
        for args in [&["migrate"][..], &["serve"]] {
            let output = run(dir.path(), db, args);
            assert!(!output.status.success());
            let text = stderr(&output);
            let last = text.lines().last().unwrap_or_default();
            assert!(last.contains(says), "{args:?}: {text}");
            assert!(!last.contains("code:"), "{text}");
        }
    }
}

// --- providers it cannot reach ----------------------------------------------------------

#[test]
fn a_failed_discovery_names_the_url_and_the_cause() {
    let (dir, db) = scratch();
    let config = config_file(
        dir.path(),
        "[[login.providers]]\nid = \"corp\"\nname = \"Corp\"\n\
         issuer = \"https://idp.nowhere.invalid/realms/x\"\nclient_id = \"introspectd\"\n\
         client_secret = \"not-a-real-secret\"\n",
    );
    let mut cmd = command(dir.path(), &db);
    cmd.arg("--config").arg(&config);
    let server = Server::start_with(cmd);
    let line = server.wait_for_log("provider discovery failed");
    assert!(
        line.contains("https://idp.nowhere.invalid/realms/x/.well-known/openid-configuration"),
        "{line}"
    );
    assert!(line.to_lowercase().contains("dns"), "{line}");
    assert!(!line.contains("not-a-real-secret"), "{line}");
}

// --- Docker Compose ---------------------------------------------------------------------

/// During its first start the Postgres image runs a server on its Unix socket only, so a
/// health check over the socket passes before introspectd could connect over TCP.
#[test]
fn the_compose_health_check_goes_over_tcp() {
    let compose =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker-compose.yml"))
            .unwrap();
    let check = compose
        .lines()
        .find(|l| l.contains("pg_isready"))
        .expect("a pg_isready health check");
    assert!(check.contains("-h 127.0.0.1"), "{check}");
}

both_stores!(
    an_enabled_client_authenticates_again_everywhere,
    a_rotated_secret_keeps_working_for_its_grace_only,
    the_grace_holds_on_every_instance,
    redirect_uris_are_stored_normalised_and_malformed_ones_refused,
);
