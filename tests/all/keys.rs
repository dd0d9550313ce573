//! GET /jwks and key rotation, signed introspection responses (RFC 9701) and
//! private_key_jwt client authentication (RFC 7523), against SQLite and Postgres.

use crate::common;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::process::Command;

use common::{Backend, TestApp, TestClient, TestResponse, binary, form, post_form, send};
use introspectd::admin::{self, NewClient};
use introspectd::auth::assertion::JWT_BEARER;
use introspectd::http::AppState;
use introspectd::token::kek::{KeyEncryptionKey, Origin};
use introspectd::token::reseal::reseal;
use introspectd::token::{new_jti, now};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

const INTROSPECTION_JWT: &str = "application/token-introspection+jwt";

async fn jwks_of(router: &Router) -> JwkSet {
    let response = send(router, Request::get("/jwks").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    serde_json::from_slice(&response.body).expect("a JWK Set")
}

/// Verifies a JWT with the key its `kid` names in `jwks`; returns its claims.
fn verify_with(jwks: &JwkSet, jwt: &str) -> Value {
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    let kid = header.kid.expect("a kid");
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} published"));
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.set_required_spec_claims::<&str>(&[]);
    let key = DecodingKey::from_jwk(jwk).unwrap();
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .expect("signature verifies")
        .claims
}

async fn client_credentials_on(router: &Router, client: &TestClient) -> String {
    let body = form(&[("grant_type", "client_credentials")]);
    let response = post_form(router, "/token", Some(&client.basic()), &body).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    response.json["access_token"].as_str().unwrap().to_owned()
}

// --- JWKS and rotation ------------------------------------------------------------------

async fn jwks_publishes_the_public_signing_key(app: TestApp) {
    let response = app
        .send(Request::get("/jwks").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.headers[header::CONTENT_TYPE],
        "application/jwk-set+json"
    );
    let keys = response.json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    assert_eq!(key["kid"], app.state.keys.keys().signing_kid().unwrap());
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert!(!key.contains_key("d"), "never the private part");
    let client = app.client("app", &[]).await;
    let token = app.jwt_for(&client, &[]).await;
    let claims = verify_with(&jwks_of(&app.router).await, &token);
    assert_eq!(claims["client_id"], client.id.as_str());
}

fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt)
        .unwrap()
        .kid
        .expect("a kid")
}

fn states(listed: &[admin::KeyView]) -> Vec<(&str, admin::KeyState)> {
    listed.iter().map(|k| (k.kid.as_str(), k.state)).collect()
}

async fn a_rotated_key_is_published_at_once_and_signs_once_promoted(app: TestApp) {
    use admin::KeyState::{Next, Retired, Signing};
    let client = app.app_client("app", "", &[]).await;
    let old_kid = app.state.keys.keys().signing_kid().unwrap().to_owned();
    let old_token = client_credentials_on(&app.router, &client).await;
    let rotated = admin::rotate_key(&app.store, &app.config, now())
        .await
        .unwrap();
    assert_ne!(rotated.kid, old_kid);
    assert_eq!(rotated.state, Next);
    assert!(rotated.activates_at >= now() + 299, "{rotated:?}");
    // The same running instance publishes it at once, and still signs with the old key:
    // a verifier that cached /jwks a moment ago will have the new key before its tokens.
    let jwks = jwks_of(&app.router).await;
    assert!(jwks.find(&old_kid).is_some() && jwks.find(&rotated.kid).is_some());
    let staged_token = client_credentials_on(&app.router, &client).await;
    assert_eq!(kid_of(&staged_token), old_kid);
    let listed = admin::list_keys(&app.store, &app.config, now())
        .await
        .unwrap();
    assert_eq!(
        states(&listed),
        [(rotated.kid.as_str(), Next), (old_kid.as_str(), Signing)]
    );
    assert!(
        admin::rotate_key(&app.store, &app.config, now())
            .await
            .is_err(),
        "one key waits at a time"
    );

    let promoted = admin::promote_key(&app.store, &app.config, &rotated.kid, now())
        .await
        .unwrap();
    assert_eq!(promoted.state, Signing);
    // The next request of the same running router signs with it.
    let new_token = client_credentials_on(&app.router, &client).await;
    assert_eq!(kid_of(&new_token), rotated.kid);
    let jwks = jwks_of(&app.router).await;
    for token in [&old_token, &staged_token, &new_token] {
        verify_with(&jwks, token);
        let response = app.introspect(&client, token).await;
        assert_eq!(response.json["active"], true, "{response:?}");
    }
    let listed = admin::list_keys(&app.store, &app.config, now())
        .await
        .unwrap();
    assert_eq!(
        states(&listed),
        [(rotated.kid.as_str(), Signing), (old_kid.as_str(), Retired)]
    );
    for kid in [rotated.kid.as_str(), old_kid.as_str(), "no-such-kid"] {
        assert!(
            admin::promote_key(&app.store, &app.config, kid, now())
                .await
                .is_err(),
            "only a waiting key is promoted: {kid}"
        );
    }
}

async fn a_rotated_key_signs_once_the_delay_has_passed(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    let old_kid = app.state.keys.keys().signing_kid().unwrap().to_owned();
    // Rotated one delay ago: its activation time is now, with nothing promoted.
    let delay = i64::try_from(app.config.jwt.rotation_delay_seconds).unwrap();
    let rotated = admin::rotate_key(&app.store, &app.config, now() - delay)
        .await
        .unwrap();
    assert!(rotated.activates_at <= now());
    let listed = admin::list_keys(&app.store, &app.config, now())
        .await
        .unwrap();
    assert_eq!(listed[0].kid, rotated.kid);
    assert!(listed[0].signing && !listed[1].signing);
    let token = client_credentials_on(&app.router, &client).await;
    assert_eq!(kid_of(&token), rotated.kid);
    assert_ne!(rotated.kid, old_kid);
    // Another instance agrees from its first request.
    let (_, sibling) = app.sibling().await;
    assert_eq!(
        kid_of(&client_credentials_on(&sibling, &client).await),
        rotated.kid
    );
}

async fn removed_key_stops_verifying_and_the_signing_key_stays(app: TestApp) {
    let client = app.client("app", &[]).await;
    let old_kid = app.state.keys.keys().signing_kid().unwrap().to_owned();
    let old_token = app.jwt_for(&client, &[]).await;
    let remove = |kid: String| {
        let app = &app;
        async move { admin::remove_key(&app.store, &app.config, &kid, now()).await }
    };
    // A waiting key may be removed: that cancels the rotation.
    let cancelled = admin::rotate_key(&app.store, &app.config, now())
        .await
        .unwrap();
    remove(cancelled.kid.clone()).await.unwrap();
    let rotated = admin::rotate_key(&app.store, &app.config, now())
        .await
        .unwrap();
    assert!(
        remove(old_kid.clone()).await.is_err(),
        "the old key signs until the new one is promoted"
    );
    admin::promote_key(&app.store, &app.config, &rotated.kid, now())
        .await
        .unwrap();
    assert!(
        remove(rotated.kid.clone()).await.is_err(),
        "the signing key cannot be removed"
    );
    assert!(remove("no-such-kid".to_owned()).await.is_err());
    remove(old_kid.clone()).await.unwrap();
    // The running instance stops verifying it on its next request.
    let jwks = jwks_of(&app.router).await;
    assert_eq!(jwks.keys.len(), 1);
    assert!(jwks.find(&old_kid).is_none() && jwks.find(&cancelled.kid).is_none());
    let response = app.introspect(&client, &old_token).await;
    assert_eq!(response.json, json!({"active": false}));
}

async fn rotation_is_refused_while_keys_are_configured(app: TestApp) {
    let mut config = app.config.clone();
    config.jwt.keys.push(introspectd::config::KeyConfig {
        kid: "configured".to_owned(),
        alg: "EdDSA".to_owned(),
        private_key_file: Some("/etc/introspectd/signing.pem".into()),
        public_key_file: None,
        secret_env: None,
    });
    assert!(admin::rotate_key(&app.store, &config, now()).await.is_err());
    let kid = app.state.keys.keys().signing_kid().unwrap().to_owned();
    assert!(
        admin::promote_key(&app.store, &config, &kid, now())
            .await
            .is_err()
    );
}

// --- the signing key at rest -------------------------------------------------------------

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A local user who reads the database (a copy, a backup, a world-readable file) finds
/// no usable private key: only its AES-256-GCM sealing, bound to the kid.
async fn stored_private_keys_are_encrypted(app: TestApp) {
    let stored = app.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1);
    let row = &stored[0];
    assert!(
        row.encryption
            .as_deref()
            .is_some_and(|e| e.starts_with("A256GCM:")),
        "{row:?}"
    );
    assert!(Ed25519KeyPair::from_pkcs8(&row.private_key).is_err());
    assert!(!format!("{row:?}").contains(&format!("{:?}", row.private_key)));
    let kek = introspectd::token::kek::resolve(&app.config)
        .unwrap()
        .unwrap();
    let plain = kek.open(row).unwrap();
    assert_ne!(plain, row.private_key);
    // The opened key is the one that signs.
    let pair = Ed25519KeyPair::from_pkcs8(&plain).unwrap();
    let jwks = jwks_of(&app.router).await;
    let published = serde_json::to_value(jwks.find(&row.kid).unwrap()).unwrap();
    assert_eq!(published["x"], URL_SAFE_NO_PAD.encode(pair.public_key()));
    // A rotated key is sealed too.
    let rotated = admin::rotate_key(&app.store, &app.config, now())
        .await
        .unwrap();
    let stored = app.store.signing_keys().await.unwrap();
    let row = stored.iter().find(|k| k.kid == rotated.kid).unwrap();
    assert!(Ed25519KeyPair::from_pkcs8(&row.private_key).is_err());
    // A key file the service generated (SQLite) is private; with Postgres the file is
    // the operator's own (a mounted secret may be read-only) and is left as it is.
    if let (introspectd::token::kek::Origin::File { path, .. }, common::TestDb::Sqlite(_)) =
        (kek.origin(), &app.db)
    {
        assert_eq!(mode(path), 0o600);
    }
    if let common::TestDb::Sqlite(dir) = &app.db {
        let db = dir.path().join("introspectd.db");
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&dir.path().join("key-encryption-key")), 0o600);
    }
}

/// A store written before keys were encrypted keeps working: its plain keys are sealed
/// on the next start, and the tokens they signed still verify.
async fn plain_keys_of_an_older_store_are_encrypted_on_start(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    let mut plain = introspectd::token::jwt::generate_ed25519();
    plain.created_at += 1;
    app.store.insert_signing_key(&plain).await.unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(plain.kid.clone());
    let claims = json!({
        "iss": app.config.issuer, "sub": "alice", "client_id": client.id,
        "exp": now() + 600, "iat": now(), "jti": new_jti(),
    });
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ed_der(&plain.private_key),
    )
    .unwrap();
    let (store, restarted) = app.sibling().await;
    let row = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == plain.kid)
        .unwrap();
    assert!(row.encryption.is_some(), "{row:?}");
    assert!(Ed25519KeyPair::from_pkcs8(&row.private_key).is_err());
    let response = common::introspect_on(
        &restarted,
        Some(&client.basic()),
        &form(&[("token", &token)]),
    )
    .await;
    assert_eq!(response.json["active"], true, "{response:?}");
    // It was the newest key, so it signs, now sealed.
    assert_eq!(
        kid_of(&client_credentials_on(&restarted, &client).await),
        plain.kid
    );
}

// --- the real binary ------------------------------------------------------------------------

fn kek_text(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// One clear line, no panic, no key.
fn assert_one_line_failure(output: &std::process::Output, needle: &str, secret: &str) {
    let stderr = stderr_of(output);
    assert!(!output.status.success(), "{stderr}");
    // Log lines may come first; the reason is the last line, alone.
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(needle),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error: ").count(), 1, "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains(secret),
        "{stderr}"
    );
}

/// The server and the `keys` commands find the key-encryption key the same way; a
/// wrong or malformed one stops them with one line, before anything is written.
async fn the_binary_uses_the_configured_key_encryption_key(backend: Backend) {
    let Some((db, _guard)) = common::fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let with_kek = |text: &str| {
        let mut cmd = binary::command(dir.path(), &db);
        cmd.env("INTROSPECTD_JWT__KEY_ENCRYPTION_KEY_ENV", "TEST_KEK")
            .env("TEST_KEK", text);
        cmd
    };
    let right = kek_text(1);
    let log = binary::Server::start_with(with_kek(&right)).stop();
    assert!(log.contains("encrypted with the key in TEST_KEK"), "{log}");
    assert!(!log.contains(&right));
    assert!(
        !dir.path().join("data").exists(),
        "no key file when one is given"
    );
    let json = |mut cmd: Command, args: &[&str]| -> Value {
        let output = cmd.args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {}", stderr_of(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let rotated = json(with_kek(&right), &["keys", "rotate"]);
    assert_eq!(rotated["state"], "next", "{rotated}");
    let kid = rotated["kid"].as_str().unwrap();
    let listed = json(with_kek(&right), &["keys", "list"]);
    assert_eq!(listed[0]["kid"], kid);
    assert_eq!(listed[0]["state"], "next");
    assert_eq!(listed[1]["state"], "signing");
    assert!(listed[0]["activates_at"].as_i64().unwrap() > now());
    let promoted = json(with_kek(&right), &["keys", "promote", kid]);
    assert_eq!(promoted["state"], "signing", "{promoted}");

    let wrong = kek_text(2);
    for args in [&["serve"][..], &["keys", "rotate"]] {
        let output = with_kek(&wrong).args(args).output().unwrap();
        assert_one_line_failure(&output, "key-encryption key", &wrong);
    }
    let listed = json(with_kek(&right), &["keys", "list"]);
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "nothing was written: {listed}"
    );
    let output = with_kek("not-a-key").arg("serve").output().unwrap();
    assert_one_line_failure(&output, "jwt.key_encryption_key_env", "not-a-key");
    let mut unset = binary::command(dir.path(), &db);
    unset.env(
        "INTROSPECTD_JWT__KEY_ENCRYPTION_KEY_ENV",
        "NO_SUCH_VARIABLE",
    );
    let output = unset.args(["keys", "list"]).output().unwrap();
    assert_one_line_failure(&output, "NO_SUCH_VARIABLE is not set", &right);
}

/// Under umask 022, the data directory is still 0700 and the database and key files
/// 0600: another local user can read neither the key nor the store.
async fn data_files_are_private_whatever_the_umask(backend: Backend) {
    let Some((db, _guard)) = common::fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => "sqlite://data/introspectd.db".to_owned(),
        Backend::Postgres => db.as_str().to_owned(),
    };
    let mut cmd = Command::new("sh");
    cmd.current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("INTROSPECTD_DATABASE_URL", url)
        .env("INTROSPECTD_LISTEN", "127.0.0.1:0")
        .args(["-c", "umask 022 && exec \"$0\" \"$@\"", binary::BIN]);
    if backend == Backend::Postgres {
        let key = dir.path().join("secrets").join("kek");
        std::fs::create_dir(key.parent().unwrap()).unwrap();
        std::fs::write(&key, kek_text(3)).unwrap();
        cmd.env("INTROSPECTD_JWT__KEY_ENCRYPTION_KEY_FILE", &key);
    }
    let server = binary::Server::start_with(cmd);
    let data = dir.path().join("data");
    if backend == Backend::Sqlite {
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("key-encryption-key")), 0o600);
        // While the server runs, SQLite's -wal and -shm files exist too.
        for name in ["introspectd.db", "introspectd.db-wal", "introspectd.db-shm"] {
            assert_eq!(mode(&data.join(name)), 0o600, "{name}");
        }
    } else {
        assert!(!data.exists(), "a Postgres store writes no data directory");
    }
    let log = server.stop();
    match backend {
        Backend::Sqlite => assert!(log.contains("data/key-encryption-key"), "{log}"),
        Backend::Postgres => assert!(log.contains("secrets/kek"), "{log}"),
    }
}

/// With Postgres no instance makes up a key-encryption key of its own: without one
/// configured, or with a configured file that does not exist, the server and the
/// commands that need it stop with one line saying how to make one, and write nothing.
async fn postgres_requires_a_configured_key_encryption_key(backend: Backend) {
    let Some((db, _guard)) = common::fresh_db(backend).await else {
        return;
    };
    if backend == Backend::Sqlite {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bare = || {
        let mut cmd = binary::command(dir.path(), &db);
        cmd.env_remove("INTROSPECTD_JWT__KEY_ENCRYPTION_KEY_ENV");
        cmd
    };
    let key = std::fs::read_to_string(common::postgres_key(&db).unwrap()).unwrap();
    let key = key.trim();
    for args in [&["serve"][..], &["keys", "rotate"]] {
        let output = binary::output_within_patience(bare().args(args));
        assert_one_line_failure(&output, "openssl rand -base64 32", key);
        let stderr = stderr_of(&output);
        assert!(stderr.contains("jwt.key_encryption_key_env"), "{stderr}");
    }
    let missing = dir.path().join("kek");
    let output = binary::output_within_patience(
        bare()
            .env("INTROSPECTD_JWT__KEY_ENCRYPTION_KEY_FILE", &missing)
            .arg("serve"),
    );
    assert_one_line_failure(&output, "does not exist", key);
    assert!(stderr_of(&output).contains("openssl rand -base64 32"));
    assert!(!missing.exists() && !dir.path().join("data").exists());
    let keys = binary::run_json(dir.path(), &db, &["keys", "list"]);
    assert!(
        keys.as_array().unwrap().is_empty(),
        "nothing stored: {keys}"
    );
}

/// `jwt.key_encryption_key_file` places the generated key-encryption key (a mounted
/// secret, a volume); the tests' own Postgres instances keep theirs in a temporary file,
/// never in `data/` of the working directory.
async fn the_key_encryption_key_file_is_where_it_is_configured(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets").join("kek");
    if backend == Backend::Postgres {
        // Made by the operator: a Postgres store never generates its key.
        std::fs::create_dir(path.parent().unwrap()).unwrap();
        std::fs::write(&path, kek_text(4)).unwrap();
    }
    let wanted = path.clone();
    let Some(app) = TestApp::start(backend, |c| c.jwt.key_encryption_key_file = Some(wanted)).await
    else {
        return;
    };
    let kek = introspectd::token::kek::resolve(&app.config)
        .unwrap()
        .unwrap();
    let introspectd::token::kek::Origin::File { path: used, .. } = kek.origin() else {
        panic!("{:?}", kek.origin());
    };
    assert_eq!(used, &path);
    if backend == Backend::Sqlite {
        assert_eq!(mode(&path), 0o600, "generated private");
    }
    // The key sealed the generated signing key: a restart over the same file opens it.
    let (_, sibling) = app.sibling().await;
    let published = |set: JwkSet| serde_json::to_value(set).unwrap();
    assert_eq!(
        published(jwks_of(&sibling).await),
        published(jwks_of(&app.router).await)
    );
    drop(app);

    // Unconfigured, a test's Postgres key lands in a temporary file that goes with it.
    let Some(app) = TestApp::start(backend, |_| {}).await else {
        return;
    };
    let kek = introspectd::token::kek::resolve(&app.config)
        .unwrap()
        .unwrap();
    if let introspectd::token::kek::Origin::File { path, .. } = kek.origin() {
        assert!(path.is_absolute(), "{}", path.display());
        let cwd = std::env::current_dir().unwrap();
        assert!(!path.starts_with(&cwd), "{}", path.display());
        let path = path.clone();
        assert!(path.exists());
        drop(app);
        assert!(!path.exists(), "{} left behind", path.display());
    }
}

both_backends!(
    the_binary_uses_the_configured_key_encryption_key,
    data_files_are_private_whatever_the_umask,
    postgres_requires_a_configured_key_encryption_key,
    the_binary_reseals_under_the_key_in_a_variable,
    the_key_encryption_key_file_is_where_it_is_configured,
);

// --- signed introspection responses (RFC 9701) ----------------------------------------------

async fn introspect_signed(app: &TestApp, caller: &TestClient, token: &str) -> TestResponse {
    let request = Request::post("/introspect")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, caller.basic())
        .header(header::ACCEPT, INTROSPECTION_JWT)
        .body(Body::from(form(&[("token", token)])))
        .unwrap();
    app.send(request).await
}

async fn signed_introspection_response_verifies_against_jwks(app: TestApp) {
    let owner = app.client("app", &[]).await;
    let rs = app.client("api", &["https://api.example"]).await;
    let token = app.jwt_for(&owner, &["https://api.example"]).await;
    let response = introspect_signed(&app, &rs, &token).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    assert_eq!(response.headers[header::CONTENT_TYPE], INTROSPECTION_JWT);
    let jwt = std::str::from_utf8(&response.body).unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("token-introspection+jwt"));
    let claims = verify_with(&jwks_of(&app.router).await, jwt);
    assert_eq!(claims["iss"], app.config.issuer.as_str());
    assert_eq!(claims["aud"], rs.id.as_str(), "the calling resource server");
    assert!((claims["iat"].as_i64().unwrap() - now()).abs() <= 5);
    let inner = &claims["token_introspection"];
    assert_eq!(inner["active"], true);
    assert_eq!(inner["client_id"], owner.id.as_str());
    assert_eq!(inner["aud"], "https://api.example");
    // The same request without the Accept header is the plain JSON answer.
    let plain = app.introspect(&rs, &token).await;
    assert_eq!(plain.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(&plain.json, inner);
}

async fn signed_introspection_of_an_inactive_token_says_only_inactive(app: TestApp) {
    let client = app.client("app", &[]).await;
    let response = introspect_signed(&app, &client, "unknown-token").await;
    assert_eq!(response.status, StatusCode::OK);
    let claims = verify_with(
        &jwks_of(&app.router).await,
        std::str::from_utf8(&response.body).unwrap(),
    );
    assert_eq!(claims["token_introspection"], json!({"active": false}));
}

// --- private_key_jwt (RFC 7523) -------------------------------------------------------------

/// A client's key pair: the private half signs assertions, the public JWK is registered.
struct ClientKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

fn rng() -> aws_lc_rs::rand::SystemRandom {
    aws_lc_rs::rand::SystemRandom::new()
}

impl ClientKey {
    fn ed25519(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        ClientKey {
            kid: kid.to_owned(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk: json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            }),
        }
    }

    fn es256(kid: &str) -> Self {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng()).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        ClientKey {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }),
        }
    }

    fn rs256(kid: &str) -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = pair.as_der().unwrap();
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref()));
        let public = pair.public_key();
        ClientKey {
            kid: kid.to_owned(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            jwk: json!({
                "kty": "RSA", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            }),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// RFC 7523 §3 claims for `client_id`, valid for a minute, with a fresh jti.
fn claims(client_id: &str, aud: Value) -> Value {
    let now = now();
    json!({
        "iss": client_id, "sub": client_id, "aud": aud,
        "exp": now + 60, "iat": now, "jti": new_jti(),
    })
}

async fn jwt_client(app: &TestApp, keys: &[&ClientKey]) -> TestClient {
    let jwks = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    app.client_with(common::granted(NewClient {
        name: "signed".to_owned(),
        auth_method: Some("private_key_jwt".to_owned()),
        jwks: Some(jwks.to_string()),
        ..NewClient::default()
    }))
    .await
}

/// POST `params` to `path`, authenticated by the assertion `jwt`.
async fn with_assertion(
    app: &TestApp,
    path: &str,
    jwt: &str,
    params: &[(&str, &str)],
) -> TestResponse {
    let mut all = params.to_vec();
    all.extend([
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", jwt),
    ]);
    post_form(&app.router, path, None, &form(&all)).await
}

fn issuer(app: &TestApp) -> Value {
    json!(app.config.issuer)
}

/// The client credentials grant, authenticated by a fresh assertion signed with `key`.
async fn token_signed_by(app: &TestApp, key: &ClientKey, client_id: &str) -> TestResponse {
    let jwt = key.sign(&claims(client_id, issuer(app)));
    with_assertion(app, "/token", &jwt, &[("grant_type", "client_credentials")]).await
}

fn assert_invalid_client(response: &TestResponse) {
    assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{response:?}");
    assert_eq!(response.json["error"], "invalid_client", "{response:?}");
}

async fn private_key_jwt_authenticates_at_every_endpoint(app: TestApp) {
    let key = ClientKey::ed25519("k1");
    let client = jwt_client(&app, &[&key]).await;
    let response = token_signed_by(&app, &key, &client.id).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    let token = response.json["access_token"].as_str().unwrap().to_owned();
    let introspect = |jwt: String| {
        let token = token.clone();
        let app = &app;
        async move { with_assertion(app, "/introspect", &jwt, &[("token", &token)]).await }
    };
    let response = introspect(key.sign(&claims(&client.id, issuer(&app)))).await;
    assert_eq!(response.json["active"], true, "{response:?}");
    assert_eq!(response.json["client_id"], client.id.as_str());
    let response = with_assertion(
        &app,
        "/revoke",
        &key.sign(&claims(&client.id, issuer(&app))),
        &[("token", &token)],
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    let response = introspect(key.sign(&claims(&client.id, issuer(&app)))).await;
    assert_eq!(response.json, json!({"active": false}));
}

async fn private_key_jwt_accepts_es256_and_rs256_keys(app: TestApp) {
    let es = ClientKey::es256("ec");
    let rs = ClientKey::rs256("rsa");
    let client = jwt_client(&app, &[&es, &rs]).await;
    for key in [&es, &rs] {
        let response = token_signed_by(&app, key, &client.id).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{:?}: {response:?}",
            key.alg
        );
    }
}

async fn replayed_assertion_is_refused(app: TestApp) {
    let key = ClientKey::ed25519("k1");
    let client = jwt_client(&app, &[&key]).await;
    let jwt = key.sign(&claims(&client.id, issuer(&app)));
    let grant = [("grant_type", "client_credentials")];
    let first = with_assertion(&app, "/token", &jwt, &grant).await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    assert_invalid_client(&with_assertion(&app, "/token", &jwt, &grant).await);
    // Another instance sharing the store refuses it too.
    let (_, sibling) = app.sibling().await;
    let mut body = grant.to_vec();
    body.extend([
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", &jwt),
    ]);
    assert_invalid_client(&post_form(&sibling, "/token", None, &form(&body)).await);
}

async fn assertion_audience_must_be_this_server_alone(app: TestApp) {
    let key = ClientKey::ed25519("k1");
    let client = jwt_client(&app, &[&key]).await;
    let grant = [("grant_type", "client_credentials")];
    let token_url = format!("{}/token", app.config.issuer);
    let response = with_assertion(
        &app,
        "/token",
        &key.sign(&claims(&client.id, json!(token_url))),
        &grant,
    )
    .await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "the endpoint URL: {response:?}"
    );
    for aud in [
        json!("https://other-as.example"),
        json!(format!("{}/introspect", app.config.issuer)),
        json!([app.config.issuer, "https://other-as.example"]),
        json!([]),
    ] {
        let jwt = key.sign(&claims(&client.id, aud.clone()));
        let response = with_assertion(&app, "/token", &jwt, &grant).await;
        assert_invalid_client(&response);
    }
}

/// The audience an endpoint accepts is its own URL, taken from the route it matched:
/// another endpoint's URL is refused.
async fn each_endpoint_accepts_its_own_url_as_audience(app: TestApp) {
    let key = ClientKey::ed25519("k1");
    let client = jwt_client(&app, &[&key]).await;
    let token = token_signed_by(&app, &key, &client.id).await.json["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = |path: &str| json!(format!("{}{path}", app.config.issuer));
    for (path, other) in [("/introspect", "/revoke"), ("/revoke", "/introspect")] {
        let params = [("token", token.as_str())];
        let jwt = key.sign(&claims(&client.id, url(other)));
        assert_invalid_client(&with_assertion(&app, path, &jwt, &params).await);
        let jwt = key.sign(&claims(&client.id, url(path)));
        let response = with_assertion(&app, path, &jwt, &params).await;
        assert_eq!(response.status, StatusCode::OK, "{path}: {response:?}");
    }
}

async fn bad_assertions_are_invalid_client(app: TestApp) {
    let key = ClientKey::ed25519("k1");
    let stranger = ClientKey::ed25519("k1");
    let client = jwt_client(&app, &[&key]).await;
    let grant = [("grant_type", "client_credentials")];
    let good = || claims(&client.id, issuer(&app));
    let mut expired = good();
    expired["exp"] = json!(now() - 120);
    let mut far = good();
    far["exp"] = json!(now() + 3_600);
    let mut future = good();
    future["iat"] = json!(now() + 600);
    let mut not_yet = good();
    not_yet["nbf"] = json!(now() + 3_600);
    let mut no_jti = good();
    no_jti.as_object_mut().unwrap().remove("jti");
    let mut other_sub = good();
    other_sub["sub"] = json!("someone-else");
    let mut other_iss = good();
    other_iss["iss"] = json!("someone-else");
    for (why, jwt) in [
        ("expired", key.sign(&expired)),
        ("exp too far ahead", key.sign(&far)),
        ("issued in the future", key.sign(&future)),
        ("valid only in an hour", key.sign(&not_yet)),
        ("no jti", key.sign(&no_jti)),
        ("sub is not the client", key.sign(&other_sub)),
        ("iss is not the client", key.sign(&other_iss)),
        ("signed by an unregistered key", stranger.sign(&good())),
        ("unknown kid", {
            let mut renamed = ClientKey::ed25519("k2");
            renamed.encoding = key.encoding.clone();
            renamed.sign(&good())
        }),
        ("HS256", {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("k1".to_owned());
            let secret = EncodingKey::from_secret(key.jwk["x"].as_str().unwrap().as_bytes());
            jsonwebtoken::encode(&header, &good(), &secret).unwrap()
        }),
        ("alg none", {
            let body = URL_SAFE_NO_PAD.encode(good().to_string());
            format!("eyJhbGciOiJub25lIn0.{body}.")
        }),
        ("garbage", "not-a-jwt".to_owned()),
    ] {
        let response = with_assertion(&app, "/token", &jwt, &grant).await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{why}: {response:?}"
        );
        assert_eq!(response.json["error"], "invalid_client", "{why}");
    }
}

/// An assertion signed by a stranger's key tells nothing about the client it names:
/// unknown, disabled, using a secret, or holding other keys, the answer is the same to
/// the byte, and so is the reason metrics record.
async fn a_strangers_assertion_reveals_nothing_about_the_client(app: TestApp) {
    let stranger = ClientKey::ed25519("k1");
    let own = ClientKey::ed25519("k1");
    let with_keys = jwt_client(&app, &[&own]).await;
    let disabled = jwt_client(&app, &[&own]).await;
    admin::disable_client(&app.store, &disabled.id, introspectd::token::now())
        .await
        .unwrap();
    let with_secret = app.client("secret", &[]).await;
    let cases = [
        ("unknown", "no-such-client".to_owned()),
        ("disabled", disabled.id),
        ("uses a secret", with_secret.id),
        ("other keys", with_keys.id),
    ];
    let endpoint = format!("{}/introspect", app.config.issuer);
    let mut answers = Vec::new();
    for (why, client_id) in &cases {
        let jwt = stranger.sign(&claims(client_id, issuer(&app)));
        let body = form(&[
            ("token", "x"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
        ]);
        let request = Request::post("/introspect")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-request-id", "same-for-every-case")
            .body(Body::from(body))
            .unwrap();
        let response = send(&app.router, request).await;
        assert_invalid_client(&response);
        let assertion = introspectd::auth::assertion::ClientAssertion {
            client_id: None,
            jwt: introspectd::secret::RawToken::new(jwt),
        };
        let view = app.state.directory.view().await;
        let err = app
            .state
            .assertions
            .verify(&view, &assertion, &endpoint, introspectd::token::now())
            .await
            .unwrap_err();
        answers.push((
            *why,
            response.status,
            format!("{:?}", response.headers),
            response.body,
            err.reason(),
            err.to_string(),
        ));
    }
    let (first, rest) = answers.split_first().unwrap();
    for answer in rest {
        assert_eq!(answer.1, first.1, "{} vs {}", answer.0, first.0);
        assert_eq!(answer.2, first.2, "{} vs {}", answer.0, first.0);
        assert_eq!(answer.3, first.3, "{} vs {}", answer.0, first.0);
        assert_eq!(answer.4, first.4, "{} vs {}", answer.0, first.0);
        assert_eq!(answer.5, first.5, "{} vs {}", answer.0, first.0);
    }
    assert_eq!(first.4, Some("bad_credentials"));
}

async fn assertion_and_secret_together_are_two_methods(app: TestApp) {
    let key = ClientKey::ed25519("k1");
    let client = jwt_client(&app, &[&key]).await;
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        (
            "client_assertion",
            &key.sign(&claims(&client.id, issuer(&app))),
        ),
    ]);
    let other = app.client("other", &[]).await;
    let response = post_form(&app.router, "/token", Some(&other.basic()), &body).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST, "{response:?}");
    assert_eq!(response.json["error"], "invalid_request");
    let with_secret = format!("{body}&client_secret=x");
    let response = post_form(&app.router, "/token", None, &with_secret).await;
    assert_eq!(response.json["error"], "invalid_request", "{response:?}");
}

async fn clients_use_only_their_registered_method(app: TestApp) {
    let key = ClientKey::ed25519("k1");
    let jwt_client = jwt_client(&app, &[&key]).await;
    let grant = [("grant_type", "client_credentials")];
    // The private_key_jwt client's unused secret opens nothing.
    assert_invalid_client(&app.post(&jwt_client, "/token", &grant).await);
    // A secret client cannot switch to assertions, even signed by a registered key.
    // (No command gives a secret client keys; the store is written directly.)
    let secret_client = app.client("secret", &[]).await;
    let record = app
        .store
        .client_by_id(&secret_client.id)
        .await
        .unwrap()
        .unwrap();
    assert!(app.store.delete_client(&secret_client.id).await.unwrap());
    let jwks = json!({"keys": [key.jwk]}).to_string();
    app.store.insert_client(&record, Some(&jwks)).await.unwrap();
    assert!(
        app.store
            .client_jwks(&secret_client.id)
            .await
            .unwrap()
            .is_some()
    );
    let jwt = key.sign(&claims(&secret_client.id, issuer(&app)));
    assert_invalid_client(&with_assertion(&app, "/token", &jwt, &grant).await);
    // A client_id parameter must name the assertion's client.
    let jwt = key.sign(&claims(&jwt_client.id, issuer(&app)));
    let mut params = grant.to_vec();
    params.push(("client_id", &secret_client.id));
    assert_invalid_client(&with_assertion(&app, "/token", &jwt, &params).await);
    let response = with_assertion(&app, "/token", &jwt, &grant).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    let mut wrong_type = grant.to_vec();
    wrong_type.extend([
        ("client_assertion_type", "urn:example:other"),
        ("client_assertion", "a.b.c"),
    ]);
    let response = post_form(&app.router, "/token", None, &form(&wrong_type)).await;
    assert_invalid_client(&response);
}

async fn private_key_jwt_clients_need_a_public_jwk_set(app: TestApp) {
    let create = |jwks: Option<String>| {
        admin::create_client(
            &app.store,
            NewClient {
                name: "signed".to_owned(),
                auth_method: Some("private_key_jwt".to_owned()),
                jwks,
                ..NewClient::default()
            },
            introspectd::token::now(),
        )
    };
    assert!(create(None).await.is_err());
    assert!(create(Some("{}".to_owned())).await.is_err());
    let mut private = ClientKey::ed25519("k").jwk;
    private["d"] = json!("c2VjcmV0");
    assert!(
        create(Some(json!({"keys": [private]}).to_string()))
            .await
            .is_err()
    );
    let created = create(Some(
        json!({"keys": [ClientKey::ed25519("k").jwk]}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(created.to_json().get("client_secret"), None);
    let shown = admin::show_client(&app.store, &created.client_id)
        .await
        .unwrap();
    assert_eq!(shown.jwks.unwrap()["keys"][0]["kid"], "k");
    assert!(
        admin::rotate_secret(&app.store, &created.client_id, 0, introspectd::token::now())
            .await
            .is_err()
    );
}

async fn a_private_key_jwt_client_rotates_its_keys(app: TestApp) {
    let (old, new) = (ClientKey::ed25519("old"), ClientKey::es256("new"));
    let client = jwt_client(&app, &[&old]).await;
    assert_eq!(
        token_signed_by(&app, &old, &client.id).await.status,
        StatusCode::OK
    );

    let jwks = |keys: &[&ClientKey]| {
        json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
    };
    // Both keys for the changeover, then the new one alone.
    admin::set_client_jwks(
        &app.store,
        &client.id,
        &jwks(&[&old, &new]),
        introspectd::token::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        token_signed_by(&app, &old, &client.id).await.status,
        StatusCode::OK
    );
    assert_eq!(
        token_signed_by(&app, &new, &client.id).await.status,
        StatusCode::OK
    );
    let shown = admin::set_client_jwks(
        &app.store,
        &client.id,
        &jwks(&[&new]),
        introspectd::token::now(),
    )
    .await
    .unwrap();
    assert_eq!(shown.jwks.unwrap()["keys"][0]["kid"], "new");
    assert_invalid_client(&token_signed_by(&app, &old, &client.id).await);
    assert_eq!(
        token_signed_by(&app, &new, &client.id).await.status,
        StatusCode::OK
    );

    // What set-jwks refuses leaves the registered keys as they were.
    let mut private = new.jwk.clone();
    private["d"] = json!("c2VjcmV0");
    let refused = [
        json!({"keys": [private]}).to_string(),
        r#"{"keys": []}"#.to_owned(),
        "not json".to_owned(),
    ];
    for text in &refused {
        let err =
            admin::set_client_jwks(&app.store, &client.id, text, introspectd::token::now()).await;
        assert!(matches!(err, Err(admin::AdminError::Invalid(_))), "{err:?}");
    }
    assert_eq!(
        token_signed_by(&app, &new, &client.id).await.status,
        StatusCode::OK
    );
    let secret_client = app.client("secret", &[]).await;
    let err = admin::set_client_jwks(
        &app.store,
        &secret_client.id,
        &jwks(&[&new]),
        introspectd::token::now(),
    )
    .await;
    assert!(matches!(err, Err(admin::AdminError::Invalid(_))), "{err:?}");
    assert_eq!(
        app.store.client_jwks(&secret_client.id).await.unwrap(),
        None
    );
    let err = admin::set_client_jwks(
        &app.store,
        "no-such-client",
        &jwks(&[&new]),
        introspectd::token::now(),
    )
    .await;
    assert!(
        matches!(err, Err(admin::AdminError::UnknownClient(_))),
        "{err:?}"
    );
}

/// Client JWK Sets are read through the request's view of the store: a set changed by
/// another process (`client set-jwks`) holds for the next request of a running instance
/// on SQLite, and within the bound on Postgres, even after the old set was cached.
async fn a_jwk_set_changed_elsewhere_holds_on_a_running_instance(app: TestApp) {
    let (old, new) = (ClientKey::ed25519("old"), ClientKey::ed25519("new"));
    let client = jwt_client(&app, &[&old]).await;
    let (_other_store, other) = app.sibling().await;
    let signed_by = |key: &ClientKey| {
        let jwt = key.sign(&claims(&client.id, issuer(&app)));
        let body = form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
        ]);
        let other = other.clone();
        async move { post_form(&other, "/token", None, &body).await }
    };
    // The running instance has read (and cached) the old set.
    for _ in 0..2 {
        assert_eq!(signed_by(&old).await.status, StatusCode::OK);
    }
    let jwks = json!({"keys": [new.jwk.clone()]}).to_string();
    admin::set_client_jwks(&app.store, &client.id, &jwks, introspectd::token::now())
        .await
        .unwrap();
    common::within_bound(
        app.backend,
        || signed_by(&old),
        |r: &TestResponse| r.status == StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(signed_by(&new).await.status, StatusCode::OK);
}

/// The configuration of `app` with its key-encryption key in a file holding `text`, as
/// an operator switches to a new key after `keys reseal`.
fn with_kek_file(app: &TestApp, dir: &std::path::Path, text: &str) -> introspectd::config::Config {
    let path = dir.join(format!("kek-{}", introspectd::token::random_string(6)));
    std::fs::write(&path, text).unwrap();
    let mut config = app.config.clone();
    config.jwt.key_encryption_key_env = None;
    config.jwt.key_encryption_key_file = Some(path);
    config
}

fn new_kek(text: &str) -> KeyEncryptionKey {
    KeyEncryptionKey::from_text(text, Origin::Env("NEW_KEK".to_owned())).unwrap()
}

/// `keys reseal`: every stored signing key and the sign-in key are sealed under the new
/// key-encryption key in one go; an instance configured with it serves the same keys
/// and tokens, one still on the old key refuses to start, and a second reseal under
/// the same key changes nothing it can see.
async fn reseal_moves_every_sealed_key_under_the_new_key(app: TestApp) {
    let api = app.client("api", &["https://api.example"]).await;
    let token = app.jwt_for(&api, &["https://api.example"]).await;
    admin::rotate_key(&app.store, &app.config, now())
        .await
        .unwrap();
    let old = introspectd::token::kek::resolve_always(&app.config).unwrap();
    let signin_before = app.store.sealed_secret("signin").await.unwrap().unwrap();
    let signin_plain = old
        .open_secret("signin", &signin_before.sealed, &signin_before.encryption)
        .unwrap();
    let published = |set: JwkSet| serde_json::to_value(set).unwrap();
    let jwks_before = published(jwks_of(&app.router).await);

    let text = kek_text(7);
    let new = new_kek(&text);
    let done = reseal(&app.store, &app.config, &new, false, now())
        .await
        .unwrap();
    assert_eq!(done.resealed.len(), 2, "{done:?}");
    assert!(done.discarded.is_empty() && done.generated.is_none());
    assert_eq!(done.secrets_resealed, ["signin"]);
    assert!(
        done.next
            .contains("jwt.key_encryption_key_env = \"NEW_KEK\""),
        "{}",
        done.next
    );
    for key in app.store.signing_keys().await.unwrap() {
        assert_eq!(key.encryption.as_deref(), Some(new.label().as_str()));
        assert!(old.open(&key).is_err(), "no longer under the old key");
    }
    let signin = app.store.sealed_secret("signin").await.unwrap().unwrap();
    assert_eq!(
        new.open_secret("signin", &signin.sealed, &signin.encryption)
            .unwrap(),
        signin_plain,
        "the same sign-in key: sessions survive"
    );

    let dir = tempfile::tempdir().unwrap();
    let switched = with_kek_file(&app, dir.path(), &text);
    let store = introspectd::store::Store::connect(&switched).await.unwrap();
    let state = AppState::build(switched.clone(), store)
        .await
        .expect("an instance on the new key starts");
    let router = introspectd::http::router(state);
    assert_eq!(published(jwks_of(&router).await), jwks_before);
    let answer = common::introspect_as(&router, &api, &token).await;
    assert_eq!(answer.json["active"], true, "{answer:?}");
    let store = introspectd::store::Store::connect(&app.config)
        .await
        .unwrap();
    let stale = AppState::build(app.config.clone(), store).await;
    let err = stale
        .err()
        .expect("an instance on the old key refuses")
        .to_string();
    assert!(err.contains("key-encryption key"), "{err}");

    let again = reseal(&app.store, &switched, &new, false, now())
        .await
        .unwrap();
    assert_eq!(again.resealed.len(), 2);
    let wrong = new_kek(&kek_text(8));
    let refused = reseal(&app.store, &app.config, &wrong, false, now()).await;
    let err = refused
        .expect_err("the old key opens nothing now")
        .to_string();
    assert!(err.contains("--discard-unreadable"), "{err}");
    for key in app.store.signing_keys().await.unwrap() {
        assert_eq!(
            key.encryption.as_deref(),
            Some(new.label().as_str()),
            "unchanged"
        );
    }
}

/// A lost key-encryption key: `keys reseal --discard-unreadable` deletes the keys it
/// sealed (so every token they signed reads inactive, and the sign-in key is made anew:
/// sessions end) and generates a signing key that signs at once; without the flag
/// nothing is written.
async fn a_lost_key_encryption_key_is_recovered_by_discarding(app: TestApp) {
    let api = app.client("api", &["https://api.example"]).await;
    let token = app.jwt_for(&api, &["https://api.example"]).await;
    let before = app.store.signing_keys().await.unwrap();
    let mut lost = app.config.clone();
    lost.jwt.key_encryption_key_file = None;
    lost.jwt.key_encryption_key_env = Some("NO_SUCH_KEY_ENCRYPTION_KEY".to_owned());

    let text = kek_text(9);
    let new = new_kek(&text);
    let refused = reseal(&app.store, &lost, &new, false, now()).await;
    let err = refused.expect_err("refused without the flag").to_string();
    assert!(
        err.contains("NO_SUCH_KEY_ENCRYPTION_KEY") && err.contains("--discard-unreadable"),
        "{err}"
    );
    assert_eq!(app.store.signing_keys().await.unwrap(), before);

    let done = reseal(&app.store, &lost, &new, true, now()).await.unwrap();
    let old_kids: Vec<String> = before.iter().map(|k| k.kid.clone()).collect();
    assert_eq!(done.discarded, old_kids);
    assert_eq!(done.secrets_discarded, ["signin"]);
    let generated = done.generated.clone().expect("a new signing key");
    assert!(done.next.contains("reads inactive"), "{}", done.next);
    let stored = app.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].kid, generated);
    assert!(app.store.sealed_secret("signin").await.unwrap().is_none());

    let dir = tempfile::tempdir().unwrap();
    let switched = with_kek_file(&app, dir.path(), &text);
    let store = introspectd::store::Store::connect(&switched).await.unwrap();
    let state = AppState::build(switched, store)
        .await
        .expect("an instance on the new key starts");
    assert_eq!(state.keys.keys().signing_kid(), Some(generated.as_str()));
    let router = introspectd::http::router(state);
    let answer = common::introspect_as(&router, &api, &token).await;
    assert_eq!(
        answer.json,
        json!({"active": false}),
        "signed by a discarded key"
    );
    assert!(
        app.store.sealed_secret("signin").await.unwrap().is_some(),
        "made anew"
    );
}

/// The command: `keys reseal --new-key-env NAME` reads the new key from NAME, after
/// which the server starts with `jwt.key_encryption_key_env = NAME` and not with the
/// old key; a missing or malformed NAME is one line and writes nothing.
async fn the_binary_reseals_under_the_key_in_a_variable(backend: Backend) {
    let Some((db, _guard)) = common::fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A served store holds the first signing key and the sign-in key; then a second key.
    binary::Server::start(dir.path(), &db).stop();
    binary::run_json(dir.path(), &db, &["keys", "rotate"]);
    let new = kek_text(10);
    let output = binary::command(dir.path(), &db)
        .args(["keys", "reseal", "--new-key-env", "NEW_KEK"])
        .env("NEW_KEK", "not-a-key")
        .output()
        .unwrap();
    assert_one_line_failure(&output, "--new-key-env: NEW_KEK must hold", "not-a-key");
    let output = binary::command(dir.path(), &db)
        .args(["keys", "reseal", "--new-key-env", "NEW_KEK"])
        .env("NEW_KEK", &new)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let done: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(done["resealed"].as_array().unwrap().len(), 2, "{done}");
    assert_eq!(done["secrets_resealed"], json!(["signin"]), "{done}");
    assert!(!stderr_of(&output).contains(&new));

    let on_new = || {
        let mut cmd = binary::command(dir.path(), &db);
        cmd.env("INTROSPECTD_JWT__KEY_ENCRYPTION_KEY_ENV", "NEW_KEK")
            .env("NEW_KEK", &new);
        cmd
    };
    let log = binary::Server::start_with(on_new()).stop();
    assert!(log.contains("encrypted with the key in NEW_KEK"), "{log}");
    let output = binary::output_within_patience(binary::command(dir.path(), &db).arg("serve"));
    assert_one_line_failure(&output, "key-encryption key", &new);
}

both_stores!(
    jwks_publishes_the_public_signing_key,
    a_rotated_key_is_published_at_once_and_signs_once_promoted,
    a_rotated_key_signs_once_the_delay_has_passed,
    removed_key_stops_verifying_and_the_signing_key_stays,
    rotation_is_refused_while_keys_are_configured,
    stored_private_keys_are_encrypted,
    plain_keys_of_an_older_store_are_encrypted_on_start,
    signed_introspection_response_verifies_against_jwks,
    signed_introspection_of_an_inactive_token_says_only_inactive,
    private_key_jwt_authenticates_at_every_endpoint,
    private_key_jwt_accepts_es256_and_rs256_keys,
    replayed_assertion_is_refused,
    assertion_audience_must_be_this_server_alone,
    each_endpoint_accepts_its_own_url_as_audience,
    bad_assertions_are_invalid_client,
    a_strangers_assertion_reveals_nothing_about_the_client,
    assertion_and_secret_together_are_two_methods,
    clients_use_only_their_registered_method,
    private_key_jwt_clients_need_a_public_jwk_set,
    a_private_key_jwt_client_rotates_its_keys,
    a_jwk_set_changed_elsewhere_holds_on_a_running_instance,
    reseal_moves_every_sealed_key_under_the_new_key,
    a_lost_key_encryption_key_is_recovered_by_discarding,
);
