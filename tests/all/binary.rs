//! The real binary: CLI commands in their own processes, the server over a real socket.

use crate::common;

use common::binary::{Server, command, http, introspect, run, run_json, run_with_stdin};
use common::{Backend, fresh_db, within_bound};
use introspectd::config::DatabaseUrl;
use introspectd::store::{ConsentRecord, SessionRecord, Store, TokenRecord};
use introspectd::token::{new_jti, now, opaque};
use introspectd::vocabulary::TokenUse;
use serde_json::{Value, json};

async fn cli_and_server_agree(backend: Backend) {
    let Some((db, _guard)) = fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let migrated = run_json(dir, &db, &["migrate"]);
    assert_eq!(migrated["migrated"], true);

    let app = run_json(dir, &db, &["client", "create", "--name", "app"]);
    let api = run_json(
        dir,
        &db,
        &[
            "client",
            "create",
            "--name",
            "api",
            "--audience",
            "https://api.example",
        ],
    );
    let (app_id, app_secret) = (
        app["client_id"].as_str().unwrap(),
        app["client_secret"].as_str().unwrap(),
    );
    let (api_id, api_secret) = (
        api["client_id"].as_str().unwrap(),
        api["client_secret"].as_str().unwrap(),
    );
    let issued = run_json(
        dir,
        &db,
        &[
            "token",
            "issue",
            "--client-id",
            app_id,
            "--subject",
            "alice",
            "--audience",
            "https://api.example",
            "--scope",
            "read",
        ],
    );
    assert_eq!(issued["token_type_hint"], "access_token");
    assert!(issued["exp"].is_i64());
    let jwt = issued["token"].as_str().unwrap();
    let refresh = run_json(
        dir,
        &db,
        &[
            "token",
            "issue",
            "--client-id",
            app_id,
            "--subject",
            "alice",
            "--type",
            "refresh",
        ],
    );
    assert_eq!(refresh["token_type_hint"], "refresh_token");
    let refresh = refresh["token"].as_str().unwrap();

    let server = Server::start(dir, &db);
    let (status, body) = introspect(server.addr, api_id, api_secret, jwt).await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], "read");
    assert_eq!(body["client_id"], app_id);
    let (_, body) = introspect(server.addr, app_id, app_secret, refresh).await;
    assert_eq!(body["token_use"], "refresh_token");

    // Changes made by the CLI, another process, show on the next request.
    let revoked = run_json(dir, &db, &["token", "revoke", jwt]);
    assert_eq!(revoked["revoked"], true);
    // (On Postgres, within the one-second bound of the change feed.)
    let inactive = |answer: &(u16, Value)| *answer == (200, serde_json::json!({"active": false}));
    let refused = |answer: &(u16, Value)| answer.0 == 401;
    within_bound(
        backend,
        || introspect(server.addr, api_id, api_secret, jwt),
        inactive,
    )
    .await;

    run_json(dir, &db, &["client", "rotate-secret", api_id]);
    within_bound(
        backend,
        || introspect(server.addr, api_id, api_secret, jwt),
        refused,
    )
    .await;

    run_json(dir, &db, &["client", "disable", app_id]);
    within_bound(
        backend,
        || introspect(server.addr, app_id, app_secret, refresh),
        refused,
    )
    .await;

    let listed = run(dir, &db, &["client", "list"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains(app_id));
    assert!(!listed.contains(app_secret) && !listed.contains("argon2"));

    let log = server.stop();
    assert!(log.contains("stopped"), "{log}");
    for secret in [app_secret, api_secret, jwt, refresh] {
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
}

async fn get_json(addr: std::net::SocketAddr, path: &str) -> serde_json::Value {
    let response = http(addr, "GET", path, &[], "").await;
    assert_eq!(response.status, 200);
    response.json
}

async fn keys_and_signed_clients_from_the_command_line(backend: Backend) {
    let Some((db, _guard)) = fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let first = run_json(dir, &db, &["keys", "rotate"]);
    assert_eq!(
        first["state"], "signing",
        "the first key has nothing to wait for"
    );
    let second = run_json(dir, &db, &["keys", "rotate"]);
    assert_eq!(second["state"], "next");
    let (first, second) = (
        first["kid"].as_str().unwrap(),
        second["kid"].as_str().unwrap(),
    );
    let promoted = run_json(dir, &db, &["keys", "promote", second]);
    assert_eq!(promoted["state"], "signing");
    let listed = run_json(dir, &db, &["keys", "list"]);
    assert_eq!(listed[0]["kid"], second);
    assert_eq!(listed[0]["signing"], true);
    assert_eq!(listed[1]["kid"], first);
    let refused = run(dir, &db, &["keys", "remove", second]);
    assert!(!refused.status.success(), "the signing key stays");

    let server = Server::start(dir, &db);
    let jwks = get_json(server.addr, "/jwks").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [second, first]);
    let metadata = get_json(server.addr, "/.well-known/oauth-authorization-server").await;
    assert!(
        metadata["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/token")
    );
    let log = server.stop();
    assert!(
        !log.contains("require token_endpoint"),
        "token_endpoint is served: {log}"
    );
    // Sign-in is on by default: the server serves what MCP clients require.
    assert!(!log.contains("MCP clients require"), "{log}");

    let removed = run_json(dir, &db, &["keys", "remove", first]);
    assert_eq!(removed["removed"], true);
    assert_eq!(
        run_json(dir, &db, &["keys", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let jwks_file = dir.join("client-jwks.json");
    std::fs::write(
        &jwks_file,
        serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "kid": "c1",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        }]})
        .to_string(),
    )
    .unwrap();
    let created = run_json(
        dir,
        &db,
        &[
            "client",
            "create",
            "--name",
            "signed",
            "--auth-method",
            "private_key_jwt",
            "--jwks-file",
            jwks_file.to_str().unwrap(),
        ],
    );
    assert!(created["client_id"].is_string());
    assert!(created.get("client_secret").is_none(), "{created}");
    let shown = run_json(
        dir,
        &db,
        &["client", "show", created["client_id"].as_str().unwrap()],
    );
    assert_eq!(shown["auth_method"], "private_key_jwt");
    assert_eq!(shown["jwks"]["keys"][0]["kid"], "c1");

    // The client rotates its key: the new set replaces the old one.
    let rotated = serde_json::json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "kid": "c2",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    }]})
    .to_string();
    let client_id = created["client_id"].as_str().unwrap();
    let replaced = run_json(
        dir,
        &db,
        &["client", "set-jwks", client_id, "--jwks", &rotated],
    );
    assert_eq!(replaced["jwks"]["keys"][0]["kid"], "c2");
    let shown = run_json(dir, &db, &["client", "show", client_id]);
    assert_eq!(shown["jwks"]["keys"].as_array().unwrap().len(), 1);
    assert_eq!(shown["jwks"]["keys"][0]["kid"], "c2");
}

fn cli_rejects_bad_input_with_one_line(backend: Backend, db: &DatabaseUrl) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let cases: [&[&str]; 26] = [
        &["client", "show", "no-such-client"],
        &[
            "token",
            "issue",
            "--client-id",
            "no-such-client",
            "--subject",
            "s",
        ],
        &["token", "issue", "--client-id", "x"],
        &["token", "revoke", "not-a-token"],
        &["client", "create", "--name", "x", "--audience", "not a uri"],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--auth-method",
            "nothing",
        ],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--auth-method",
            "none",
            "--grant-type",
            "client_credentials",
        ],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--redirect-uri",
            "http://app.example/callback",
        ],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--redirect-uri",
            "/callback",
        ],
        &["user", "create", "--username", "not a name"],
        &["user", "create", "--username", "x", "--email", "nowhere"],
        &["user", "create", "--username", "x", "--password-stdin"],
        &["user", "show", "nobody"],
        &["user", "set-password", "nobody"],
        &["user", "disable", "nobody"],
        &["user", "delete", "nobody"],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--auth-method",
            "private_key_jwt",
        ],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--jwks",
            "{\"keys\": []}",
        ],
        &["keys", "remove", "no-such-kid"],
        &["client", "set-jwks", "no-such-client", "--jwks", "{}"],
        &["client", "set-jwks", "no-such-client"],
        &["client", "update", "no-such-client", "--scope", "read"],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--grant-type",
            "password",
        ],
        &["client", "create", "--name", "x", "--inactive-budget", "0"],
        &["client", "create", "--name", "x", "--resource", "urn:a#f"],
        &["user", "revoke-consent", "nobody"],
    ];
    for args in cases {
        let output = run(dir, db, args);
        assert!(!output.status.success(), "{backend:?} {args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(error_lines(&stderr), 1, "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

async fn bad_input_gets_one_line(backend: Backend) {
    let Some((db, _guard)) = fresh_db(backend).await else {
        return;
    };
    cli_rejects_bad_input_with_one_line(backend, &db);
}

#[test]
fn unreachable_database_and_bad_config_fail_fast_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let unreachable = DatabaseUrl("postgres://postgres@127.0.0.1:1/none".to_owned());
    for (db, args) in [
        (&unreachable, vec!["client", "list"]),
        (&unreachable, vec!["serve"]),
    ] {
        let output = run(dir.path(), db, &args);
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("database"), "{stderr}");
        assert_eq!(error_lines(&stderr), 1, "{stderr}");
    }
    let sqlite = DatabaseUrl(format!("sqlite://{}/x.db", dir.path().display()));
    let output = command(dir.path(), &sqlite)
        .env("INTROSPECTD_RATE_LIMIT__PER_SECOND", "0")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("rate_limit.per_second"), "{stderr}");
}

#[test]
fn unreadable_or_invalid_key_file_fails_start_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseUrl(format!("sqlite://{}/x.db", dir.path().display()));
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    let missing = dir.path().join("missing.pem");
    for (file, expected) in [(&missing, "cannot read"), (&garbage, "private key")] {
        let config = dir.path().join("keys.toml");
        std::fs::write(
            &config,
            format!(
                "[[jwt.keys]]\nkid = \"signing-key\"\nalg = \"EdDSA\"\nprivate_key_file = {:?}\n",
                file.display().to_string()
            ),
        )
        .unwrap();
        let output = command(dir.path(), &db)
            .args(["--config", config.to_str().unwrap(), "serve"])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("signing-key"), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    }
}

/// Resident memory of a process, from /proc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb * 1024
}

/// Each argon2id verification takes a 19 MiB block; once freed it must not stay resident.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_of_secret_verification_is_returned() {
    let Some((db, _guard)) = fresh_db(Backend::Sqlite).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = common::binary::create_client(dir.path(), &db, &[]);
    let server = Server::start(dir.path(), &db);
    let before = resident_bytes(server.child.id());
    for presented in [secret.as_str(), "wrong", "also wrong"] {
        let (status, _) = introspect(server.addr, &id, presented, "unknown").await;
        assert_eq!(status, if presented == secret { 200 } else { 401 });
    }
    let grown = resident_bytes(server.child.id()).saturating_sub(before);
    assert!(
        grown < 8 << 20,
        "resident memory grew by {} KiB over three verifications",
        grown >> 10
    );
    server.stop();
}

/// POST /token for client credentials over a real connection.
async fn token_request(addr: std::net::SocketAddr, id: &str, secret: &str) -> (u16, Value) {
    let grant = [("grant_type", "client_credentials")];
    common::binary::post_basic(addr, "/token", (id, secret), &grant).await
}

async fn client_update_from_the_command_line_reaches_the_running_server(backend: Backend) {
    let Some((db, _guard)) = fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (app_id, app_secret) = common::binary::create_client(dir, &db, &[]);
    let (rs_id, rs_secret) =
        common::binary::create_client(dir, &db, &["--audience", "https://api.example"]);
    let server = Server::start(dir, &db);
    // Deny by default: a client created without grant types mints nothing.
    for (id, secret) in [(&app_id, &app_secret), (&rs_id, &rs_secret)] {
        let (status, body) = token_request(server.addr, id, secret).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("unauthorized_client"))
        );
    }
    let shown = run_json(
        dir,
        &db,
        &[
            "client",
            "update",
            &app_id,
            "--grant-type",
            "client_credentials",
            "--resource",
            "https://api.example",
            "--scope",
            "read",
            "--inactive-budget",
            "off",
            "--strict-auth-method",
        ],
    );
    assert_eq!(
        shown["grant_types"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(
        shown["resources"],
        serde_json::json!(["https://api.example"])
    );
    assert_eq!(shown["audiences"], serde_json::json!([]), "kept");
    assert_eq!(shown["scope"], "read");
    assert_eq!(shown["inactive_budget"], "off");
    assert_eq!(shown["strict_auth_method"], true);
    let ask = || token_request(server.addr, &app_id, &app_secret);
    within_bound(backend, ask, |(status, _): &(u16, Value)| *status == 200).await;
    let (_, issued) = ask().await;
    let token = issued["access_token"].as_str().unwrap();
    let (_, info) = introspect(server.addr, &rs_id, &rs_secret, token).await;
    assert_eq!(info["aud"], "https://api.example");
    assert_eq!(info["scope"], "read");
    // An empty value clears a list.
    run_json(dir, &db, &["client", "update", &app_id, "--grant-type", ""]);
    within_bound(backend, ask, |(status, _): &(u16, Value)| *status == 400).await;
    let listed = run_json(dir, &db, &["client", "list"]);
    let rs = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == rs_id.as_str())
        .unwrap();
    assert_eq!(rs["audiences"], serde_json::json!(["https://api.example"]));
    assert_eq!(rs["grant_types"], serde_json::json!([]));
    assert_eq!(rs["resources"], serde_json::json!([]));
    assert_eq!(rs["strict_auth_method"], false);
    assert_eq!(rs["inactive_budget"], "configured");
    server.stop();
}

/// The store the binary uses, opened in this process, to plant what the sign-in pages
/// would store (sessions, consents, a grant from a code exchange).
async fn open_store(db: &DatabaseUrl) -> Store {
    Store::connect(&common::test_config(db.clone()))
        .await
        .expect("connect")
}

fn stdout_json(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

fn one_line_error(output: &std::process::Output) -> String {
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(error_lines(&stderr), 1, "{stderr}");
    stderr
}

/// The lines of stderr but the one every command other than `serve` begins with, which
/// names the database.
fn error_lines(stderr: &str) -> usize {
    stderr
        .trim_end()
        .lines()
        .filter(|l| !l.starts_with("introspectd: database "))
        .count()
}

async fn users_from_the_command_line(backend: Backend) {
    let Some((db, _guard)) = fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let created = run_json(
        dir,
        &db,
        &[
            "user",
            "create",
            "--username",
            " Alice ",
            "--email",
            "alice@example.com",
            "--name",
            "Alice Liddell",
        ],
    );
    let alice = created["user_id"].as_str().unwrap().to_owned();
    assert_eq!(created["username"], "alice");
    let password = created["password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 24, "a generated password: {created}");
    assert_eq!(created.as_object().unwrap().len(), 3, "{created}");
    let bob = stdout_json(&run_with_stdin(
        dir,
        &db,
        &["user", "create", "--username", "bob", "--password-stdin"],
        "bobs own passphrase\n",
    ));
    assert_eq!(
        bob.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["user_id", "username"],
        "a given password is not shown"
    );
    let bob = bob["user_id"].as_str().unwrap().to_owned();
    let short = run_with_stdin(
        dir,
        &db,
        &["user", "create", "--username", "carol", "--password-stdin"],
        "short\n",
    );
    assert!(one_line_error(&short).contains("at least 8 characters"));
    let taken = run(dir, &db, &["user", "create", "--username", "ALICE"]);
    assert!(one_line_error(&taken).contains("is taken"));

    let shown = run_json(dir, &db, &["user", "show", &alice]);
    assert_eq!(
        shown,
        json!({
            "user_id": alice,
            "username": "alice",
            "email": "alice@example.com",
            "name": "Alice Liddell",
            "has_password": true,
            "disabled": false,
            "created_at": shown["created_at"],
            "links": [],
        })
    );
    assert!(shown["created_at"].is_i64());
    assert_eq!(run_json(dir, &db, &["user", "show", "Alice"]), shown);
    let listed = run(dir, &db, &["user", "list"]);
    let text = String::from_utf8(listed.stdout.clone()).unwrap();
    assert!(
        !text.contains(&password) && !text.contains("argon2"),
        "{text}"
    );
    let listed: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);

    // Clients that sign users in.
    let public = run_json(
        dir,
        &db,
        &[
            "client",
            "create",
            "--name",
            "inspector",
            "--auth-method",
            "none",
            "--redirect-uri",
            "http://localhost:6274/oauth/callback",
            "--redirect-uri",
            "http://127.0.0.1/callback",
        ],
    );
    assert_eq!(public.as_object().unwrap().len(), 1, "no secret: {public}");
    let inspector = public["client_id"].as_str().unwrap().to_owned();
    let shown = run_json(dir, &db, &["client", "show", &inspector]);
    assert_eq!(shown["auth_method"], "none");
    assert_eq!(
        shown["redirect_uris"],
        json!([
            "http://localhost:6274/oauth/callback",
            "http://127.0.0.1/callback"
        ])
    );
    assert_eq!(
        shown["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    let refused = run(dir, &db, &["client", "rotate-secret", &inspector]);
    assert!(one_line_error(&refused).contains("no secret"));
    let refused = run(
        dir,
        &db,
        &[
            "client",
            "update",
            &inspector,
            "--auth-method",
            "client_secret_basic",
        ],
    );
    one_line_error(&refused);
    let (web, web_secret) = common::binary::create_client(
        dir,
        &db,
        &[
            "--redirect-uri",
            "https://app.example/callback",
            "--grant-type",
            "authorization_code",
        ],
    );
    let shown = run_json(dir, &db, &["client", "show", &web]);
    assert_eq!(shown["grant_types"], json!(["authorization_code"]));
    let updated = run_json(
        dir,
        &db,
        &[
            "client",
            "update",
            &web,
            "--redirect-uri",
            "com.example.app:/callback",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
        ],
    );
    assert_eq!(
        updated["redirect_uris"],
        json!(["com.example.app:/callback"])
    );
    let listed = run_json(dir, &db, &["client", "list"]);
    let listed = listed.as_array().unwrap();
    let listed_public = listed.iter().find(|c| c["client_id"] == inspector.as_str());
    assert_eq!(
        listed_public.unwrap()["redirect_uris"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // What the sign-in pages store: sessions, consents, and a grant from a code exchange.
    let store = open_store(&db).await;
    let session = |value: &str, user_id: &str| SessionRecord {
        digest: opaque::digest(value),
        user_id: user_id.to_owned(),
        created_at: now(),
        expires_at: now() + 3_600,
    };
    for (value, user_id) in [("alice-browser", &alice), ("bob-browser", &bob)] {
        store
            .insert_session(&session(value, user_id))
            .await
            .unwrap();
    }
    let has_session = |value: &'static str| {
        let store = store.clone();
        async move {
            store
                .session_by_digest(&opaque::digest(value))
                .await
                .unwrap()
                .is_some()
        }
    };
    for (user_id, client_id) in [(&alice, &inspector), (&alice, &web), (&bob, &web)] {
        let consent = ConsentRecord {
            user_id: user_id.clone(),
            client_id: client_id.clone(),
            scope: None,
            resources: vec![],
            created_at: now(),
        };
        store.remember_consent(&consent).await.unwrap();
    }
    let consented = |user_id: &str, client_id: &str| {
        let (store, user_id, client_id) = (store.clone(), user_id.to_owned(), client_id.to_owned());
        async move {
            store
                .has_consent(&user_id, &client_id, None, &[])
                .await
                .unwrap()
        }
    };
    let refresh = opaque::generate();
    let access_jti = new_jti();
    let grant = TokenRecord {
        digest: opaque::digest(refresh.expose()),
        token_use: TokenUse::RefreshToken,
        client_id: web.clone(),
        sub: Some(alice.clone()),
        username: Some("alice".to_owned()),
        scope: None,
        audiences: vec![],
        jti: new_jti(),
        iat: now(),
        nbf: None,
        exp: now() + 3_600,
        revoked_at: None,
        user_id: Some(alice.clone()),
    };
    store
        .insert_grant(&grant, (&access_jti, now() + 600))
        .await
        .unwrap();

    let revoked = run_json(
        dir,
        &db,
        &["user", "revoke-consent", "alice", "--client-id", &inspector],
    );
    assert_eq!(
        revoked,
        json!({"user_id": alice, "client_id": inspector, "consents_revoked": 1, "tokens_revoked": 0})
    );
    assert!(!consented(&alice, &inspector).await);
    assert!(consented(&alice, &web).await);

    let changed = run_json(dir, &db, &["user", "set-password", "bob"]);
    assert_eq!(changed["user_id"], bob.as_str());
    assert!(changed["password"].as_str().unwrap().len() >= 24);
    assert!(
        !has_session("bob-browser").await,
        "a new password signs out"
    );
    let changed = stdout_json(&run_with_stdin(
        dir,
        &db,
        &["user", "set-password", &bob, "--password-stdin"],
        "another long passphrase\r\n",
    ));
    assert!(changed.get("password").is_none(), "{changed}");

    // Disabling reaches the running server: the grant reads inactive, the session is gone.
    let server = Server::start(dir, &db);
    let active = |answer: &(u16, Value)| answer.0 == 200 && answer.1["active"] == true;
    let inactive = |answer: &(u16, Value)| *answer == (200, json!({"active": false}));
    let ask = || introspect(server.addr, &web, &web_secret, refresh.expose());
    within_bound(backend, ask, active).await;
    let disabled = run_json(dir, &db, &["user", "disable", "alice"]);
    assert_eq!(disabled["disabled"], true);
    assert_eq!(disabled["user_id"], alice.as_str());
    within_bound(backend, ask, inactive).await;
    assert!(store.is_jti_revoked(&access_jti).await.unwrap());
    assert!(!has_session("alice-browser").await);
    assert!(
        consented(&alice, &web).await,
        "a disabled user's consents stay"
    );

    // Deleting a client forgets what users allowed it; deleting a user, theirs.
    let deleted = run_json(dir, &db, &["client", "delete", &web]);
    assert_eq!(deleted["deleted"], true);
    assert!(!consented(&alice, &web).await);
    assert!(!consented(&bob, &web).await);
    let deleted = run_json(dir, &db, &["user", "delete", &bob]);
    assert_eq!(deleted, json!({"user_id": bob, "deleted": true}));
    one_line_error(&run(dir, &db, &["user", "show", "bob"]));
    let listed = run_json(dir, &db, &["user", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    store.close().await;

    let log = server.stop();
    for secret in [password.as_str(), "bobs own passphrase", refresh.expose()] {
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
}

both_backends!(
    users_from_the_command_line,
    client_update_from_the_command_line_reaches_the_running_server,
    cli_and_server_agree,
    keys_and_signed_clients_from_the_command_line,
    bad_input_gets_one_line,
);

/// A certificate authority and a leaf for localhost and 127.0.0.1 signed by it, as PEM.
struct TestPki {
    ca_der: Vec<u8>,
    leaf_der: Vec<u8>,
    leaf_pem: String,
    key_pem: String,
}

fn test_pki(name: &str) -> TestPki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} CA"));
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    TestPki {
        ca_der: ca.der().to_vec(),
        leaf_der: leaf.der().to_vec(),
        leaf_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
    }
}

/// A TLS connection to `addr` as `localhost`, trusting `cas`, offering `alpn`.
async fn tls_connect(
    addr: std::net::SocketAddr,
    cas: &[&TestPki],
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(rustls::pki_types::CertificateDer::from(ca.ca_der.clone()))
            .unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.expect("TLS handshake")
}

/// The certificate the server presented on `stream`.
fn served_leaf(stream: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// One GET over an HTTP/1.1 or HTTP/2 client connection.
trait HttpSend {
    async fn get(&mut self, path: &str) -> u16;
}

type EmptyBody = http_body_util::Empty<hyper::body::Bytes>;

impl HttpSend for hyper::client::conn::http2::SendRequest<EmptyBody> {
    async fn get(&mut self, path: &str) -> u16 {
        let request = hyper::Request::get(format!("https://localhost{path}"))
            .body(EmptyBody::new())
            .unwrap();
        self.send_request(request).await.unwrap().status().as_u16()
    }
}

impl HttpSend for hyper::client::conn::http1::SendRequest<EmptyBody> {
    async fn get(&mut self, path: &str) -> u16 {
        let request = hyper::Request::get(path)
            .header("host", "localhost")
            .body(EmptyBody::new())
            .unwrap();
        self.send_request(request).await.unwrap().status().as_u16()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_speaks_http2_and_http1_and_reloads_its_certificate_on_sighup() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseUrl(format!("sqlite://{}/x.db", dir.path().display()));
    let (first, second) = (test_pki("first"), test_pki("second"));
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, &first.leaf_pem).unwrap();
    std::fs::write(&key_file, &first.key_pem).unwrap();
    let mut cmd = command(dir.path(), &db);
    cmd.env("INTROSPECTD_ISSUER", "https://localhost")
        .env("INTROSPECTD_HTTP__TLS__CERT_FILE", &cert_file)
        .env("INTROSPECTD_HTTP__TLS__KEY_FILE", &key_file);
    let mut server = Server::start_with(cmd);

    // HTTP/2 by ALPN, on a connection kept open across the reload.
    let stream = tls_connect(server.addr, &[&first, &second], b"h2").await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(served_leaf(&stream), first.leaf_der);
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    assert_eq!(HttpSend::get(&mut h2, "/healthz").await, 200);
    let metadata = HttpSend::get(&mut h2, "/.well-known/oauth-authorization-server").await;
    assert_eq!(metadata, 200);

    // HTTP/1.1 by ALPN.
    let stream = tls_connect(server.addr, &[&first], b"http/1.1").await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut h1, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    assert_eq!(HttpSend::get(&mut h1, "/healthz").await, 200);

    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let plain = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect(server.addr),
    )
    .await
    .unwrap()
    .unwrap();
    let (mut plain, connection) = hyper::client::conn::http1::handshake(TokioIo::new(plain))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get("/healthz")
        .header("host", "localhost")
        .body(EmptyBody::new())
        .unwrap();
    assert!(plain.send_request(request).await.is_err());

    // A broken pair on SIGHUP is refused and the certificate in use stays.
    std::fs::write(&key_file, &second.key_pem).unwrap();
    server.signal("HUP");
    server.wait_for_log("keeping the TLS certificate in use");
    let kept = tls_connect(server.addr, &[&first, &second], b"h2").await;
    assert_eq!(served_leaf(&kept), first.leaf_der);
    drop(kept);

    // The new pair on SIGHUP: new connections get it, the open one goes on.
    std::fs::write(&cert_file, &second.leaf_pem).unwrap();
    server.signal("HUP");
    server.wait_for_log("reloaded the TLS certificate and key");
    let renewed = tls_connect(server.addr, &[&first, &second], b"h2").await;
    assert_eq!(served_leaf(&renewed), second.leaf_der);
    drop(renewed);
    assert_eq!(HttpSend::get(&mut h2, "/healthz").await, 200);
    assert_eq!(HttpSend::get(&mut h1, "/healthz").await, 200);
    drop((h1, h2));

    // The container health check reaches it over HTTPS, as the configuration says.
    let addr = server.addr.to_string();
    let healthcheck = |tls: bool| {
        let mut cmd = command(dir.path(), &db);
        cmd.env("INTROSPECTD_LISTEN", &addr);
        if tls {
            cmd.env("INTROSPECTD_ISSUER", "https://localhost")
                .env("INTROSPECTD_HTTP__TLS__CERT_FILE", &cert_file)
                .env("INTROSPECTD_HTTP__TLS__KEY_FILE", &key_file);
        }
        cmd.arg("healthcheck").output().unwrap()
    };
    let output = healthcheck(true);
    assert!(output.status.success(), "{output:?}");
    let output = healthcheck(false);
    assert!(
        !output.status.success(),
        "plain HTTP gets no answer: {output:?}"
    );

    server.signal("TERM");
    assert!(
        server
            .wait_exit(std::time::Duration::from_secs(30))
            .success()
    );
    let log = server.log();
    assert!(!log.contains("PRIVATE KEY"), "{log}");
    assert!(!log.contains("grace period over"), "{log}");
}

#[test]
fn https_with_a_bad_pair_fails_start_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseUrl(format!("sqlite://{}/x.db", dir.path().display()));
    let (first, second) = (test_pki("first"), test_pki("second"));
    let cert_file = dir.path().join("tls.crt");
    let other_key = dir.path().join("other.key");
    std::fs::write(&cert_file, &first.leaf_pem).unwrap();
    std::fs::write(&other_key, &second.key_pem).unwrap();
    let missing = dir.path().join("missing.key");
    for (key, expected) in [(&other_key, "does not belong"), (&missing, "cannot read")] {
        let output = command(dir.path(), &db)
            .env("INTROSPECTD_ISSUER", "https://localhost")
            .env("INTROSPECTD_HTTP__TLS__CERT_FILE", &cert_file)
            .env("INTROSPECTD_HTTP__TLS__KEY_FILE", key)
            .arg("serve")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(stderr.contains("http.tls"), "{stderr}");
    }
    // An http issuer with TLS on is a configuration error.
    let output = command(dir.path(), &db)
        .env("INTROSPECTD_ISSUER", "http://localhost")
        .env("INTROSPECTD_HTTP__TLS__CERT_FILE", &cert_file)
        .env("INTROSPECTD_HTTP__TLS__KEY_FILE", &other_key)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("must be https:// when http.tls is set"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_that_sends_nothing_is_closed() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseUrl(format!("sqlite://{}/x.db", dir.path().display()));
    let pki = test_pki("idle");
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, &pki.leaf_pem).unwrap();
    std::fs::write(&key_file, &pki.key_pem).unwrap();
    let mut cmd = command(dir.path(), &db);
    cmd.env("INTROSPECTD_HTTP__TLS__CERT_FILE", &cert_file)
        .env("INTROSPECTD_HTTP__TLS__KEY_FILE", &key_file)
        .env("INTROSPECTD_HTTP__HEADER_READ_TIMEOUT_MS", "300");
    let mut server = Server::start_with(cmd);

    // A client that completes the handshake, is offered HTTP/2 and never sends its
    // preface: the server closes the connection instead of holding it.
    let mut idle = tls_connect(server.addr, &[&pki], b"h2").await;
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the idle HTTP/2 connection was held open");

    // One that asks at once is served.
    let stream = tls_connect(server.addr, &[&pki], b"h2").await;
    let (mut h2, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    assert_eq!(HttpSend::get(&mut h2, "/healthz").await, 200);
    drop(h2);
    server.signal("TERM");
    assert!(
        server
            .wait_exit(std::time::Duration::from_secs(30))
            .success()
    );
}
