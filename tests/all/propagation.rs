//! Caches never outlive a change: what one instance (or the CLI) changes, another
//! instance sharing the store answers accordingly within the bound of SPEC.md — at once
//! on SQLite, within one second on Postgres, and correctly while the change feed is down.

use crate::common;

use std::time::{Duration, Instant};

use axum::Router;
use common::{Backend, TestApp, TestClient, TestResponse, introspect_as as ask};
use introspectd::admin;
use introspectd::secret::RawToken;
use introspectd::store::{Rotation, TokenRecord};
use introspectd::token::opaque;
use introspectd::vocabulary::TokenUse;
use serde_json::json;

/// SPEC.md: changes reach every other instance sharing a Postgres store within a second.
use common::{BOUND, within_bound};

fn inactive(response: &TestResponse) -> bool {
    response.json == json!({"active": false})
}

fn unauthorized(response: &TestResponse) -> bool {
    response.status.as_u16() == 401
}

async fn changes_through_one_instance_reach_another(app: TestApp) {
    let (_other_store, other) = app.sibling().await;
    let owner = app.client("app", &[]).await;
    let rs = app.client("api", &["https://api.example"]).await;
    let jwt = app.jwt_for(&owner, &["https://api.example"]).await;
    let opaque = app
        .issue(common::issue_request(
            &owner,
            TokenUse::AccessToken,
            Some(introspectd::token::mint::TokenFormat::Opaque),
            &["https://api.example"],
        ))
        .await;
    let spare = app.jwt_for(&owner, &["https://api.example"]).await;
    // Warm the other instance's caches with active answers.
    for token in [&jwt, &opaque, &spare] {
        for _ in 0..2 {
            assert_eq!(ask(&other, &rs, token).await.json["active"], true);
        }
    }

    let keys = app.state.keys.keys();
    admin::revoke_token(
        &app.store,
        &keys,
        &RawToken::new(&jwt),
        introspectd::token::now(),
    )
    .await
    .unwrap();
    within_bound(app.backend, || ask(&other, &rs, &jwt), inactive).await;
    admin::revoke_token(
        &app.store,
        &keys,
        &RawToken::new(&opaque),
        introspectd::token::now(),
    )
    .await
    .unwrap();
    within_bound(app.backend, || ask(&other, &rs, &opaque), inactive).await;
    assert_eq!(ask(&other, &rs, &spare).await.json["active"], true);

    admin::rotate_secret(&app.store, &rs.id, 0, introspectd::token::now())
        .await
        .unwrap();
    within_bound(app.backend, || ask(&other, &rs, &spare), unauthorized).await;

    let rs = TestClient {
        secret: admin::rotate_secret(&app.store, &rs.id, 0, introspectd::token::now())
            .await
            .unwrap()
            .client_secret
            .expose()
            .to_owned(),
        ..rs
    };
    within_bound(
        app.backend,
        || ask(&other, &rs, &spare),
        |r| r.json["active"] == true,
    )
    .await;
    admin::disable_client(&app.store, &owner.id, introspectd::token::now())
        .await
        .unwrap();
    within_bound(app.backend, || ask(&other, &rs, &spare), inactive).await;
}

async fn deleted_client_reads_inactive_on_another_instance(app: TestApp) {
    let (_other_store, other) = app.sibling().await;
    let owner = app.client("app", &[]).await;
    let rs = app.client("api", &["https://api.example"]).await;
    let jwt = app.jwt_for(&owner, &["https://api.example"]).await;
    assert_eq!(ask(&other, &rs, &jwt).await.json["active"], true);
    admin::delete_client(&app.store, &owner.id).await.unwrap();
    within_bound(app.backend, || ask(&other, &rs, &jwt), inactive).await;
}

async fn a_token_first_seen_after_its_revocation_reads_inactive(app: TestApp) {
    let (_other_store, other) = app.sibling().await;
    let owner = app.client("app", &[]).await;
    let rs = app.client("api", &["https://api.example"]).await;
    let warm = app.jwt_for(&owner, &["https://api.example"]).await;
    assert_eq!(ask(&other, &rs, &warm).await.json["active"], true);
    // Revoked through one instance before the other has ever seen it.
    let unseen = app.jwt_for(&owner, &["https://api.example"]).await;
    let keys = app.state.keys.keys();
    admin::revoke_token(
        &app.store,
        &keys,
        &RawToken::new(&unseen),
        introspectd::token::now(),
    )
    .await
    .unwrap();
    within_bound(app.backend, || ask(&other, &rs, &unseen), inactive).await;
    assert_eq!(ask(&other, &rs, &warm).await.json["active"], true);
}

/// The kid of the access token in a `/token` answer.
fn signed_by(response: &TestResponse) -> Option<String> {
    let token = response.json["access_token"].as_str()?;
    jsonwebtoken::decode_header(token).ok()?.kid
}

async fn a_promoted_key_signs_on_every_running_instance(app: TestApp) {
    let (_, other) = app.sibling().await;
    let client = app.app_client("app", "", &[]).await;
    let (basic, body) = (
        client.basic(),
        common::form(&[("grant_type", "client_credentials")]),
    );
    let token = || common::post_form(&other, "/token", Some(&basic), &body);
    let old_kid = signed_by(&token().await).expect("a signed token");
    let now = introspectd::token::now;
    let rotated = admin::rotate_key(&app.store, &app.config, now())
        .await
        .unwrap();
    // Published everywhere within the bound; signing waits.
    within_bound(
        app.backend,
        || published(&other),
        |kids| kids.contains(&rotated.kid),
    )
    .await;
    assert_eq!(signed_by(&token().await), Some(old_kid));
    admin::promote_key(&app.store, &app.config, &rotated.kid, now())
        .await
        .unwrap();
    within_bound(app.backend, token, |response| {
        signed_by(response).as_deref() == Some(rotated.kid.as_str())
    })
    .await;
}

/// The kids a running instance publishes at `/jwks`.
async fn published(router: &Router) -> Vec<String> {
    let request = axum::http::Request::get("/jwks")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = common::send(router, request).await;
    let keys = response.json["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    keys.iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

/// `keys rotate` and `keys remove` reach an instance that is already running and has
/// answered with the old set, not only one started afterwards: a removed key stops
/// being published and stops verifying there within the bound.
async fn rotated_and_removed_keys_reach_every_running_instance(app: TestApp) {
    let (_, other) = app.sibling().await;
    let client = app.client("app", &[]).await;
    let old_kid = published(&other).await.pop().expect("one key");
    let old_token = app.jwt_for(&client, &[]).await;
    assert!(active(&ask(&other, &client, &old_token).await));
    let now = introspectd::token::now;

    let cancelled = admin::rotate_key(&app.store, &app.config, now())
        .await
        .unwrap();
    within_bound(
        app.backend,
        || published(&other),
        |kids| kids.contains(&cancelled.kid),
    )
    .await;
    admin::remove_key(&app.store, &app.config, &cancelled.kid, now())
        .await
        .unwrap();
    within_bound(
        app.backend,
        || published(&other),
        |kids| !kids.contains(&cancelled.kid),
    )
    .await;

    let rotated = admin::rotate_key(&app.store, &app.config, now())
        .await
        .unwrap();
    admin::promote_key(&app.store, &app.config, &rotated.kid, now())
        .await
        .unwrap();
    admin::remove_key(&app.store, &app.config, &old_kid, now())
        .await
        .unwrap();
    within_bound(
        app.backend,
        || published(&other),
        |kids| kids == std::slice::from_ref(&rotated.kid),
    )
    .await;
    within_bound(app.backend, || ask(&other, &client, &old_token), inactive).await;
}

/// Another instance over the same store, with its state, once its change feed is
/// current and it holds every opaque token digest in memory (so it answers unknown
/// tokens without asking the store). `caller` asks about unknown tokens meanwhile: a
/// request is what starts reading the digests again after the feed (re)connects.
async fn loaded_sibling(
    app: &TestApp,
    caller: &TestClient,
) -> (introspectd::http::AppState, Router) {
    let store = introspectd::store::Store::connect(&app.config)
        .await
        .unwrap();
    let state = introspectd::http::AppState::build(app.config.clone(), store)
        .await
        .unwrap();
    let router = introspectd::http::router(state.clone());
    let start = Instant::now();
    while !(feed_is_current(&state).await && state.directory.token_digests_loaded()) {
        assert!(inactive(
            &ask(&router, caller, opaque::generate().expose()).await
        ));
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the token digests were never loaded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (state, router)
}

fn active(response: &TestResponse) -> bool {
    response.json["active"] == true
}

/// A new opaque record for `client`, as rotation stores it.
fn opaque_record(client: &TestClient, token: &RawToken, token_use: TokenUse) -> TokenRecord {
    let now = introspectd::token::now();
    TokenRecord {
        digest: opaque::digest(token.expose()),
        token_use,
        client_id: client.id.clone(),
        sub: Some("alice".to_owned()),
        username: None,
        scope: None,
        audiences: Vec::new(),
        jti: introspectd::token::new_jti(),
        iat: now,
        nbf: None,
        exp: now + 3_600,
        revoked_at: None,
        user_id: None,
    }
}

/// Opaque tokens stored by another writer after an instance loaded every digest (issued
/// by the CLI or another instance, or made by refresh rotation elsewhere) read active on
/// that instance: at once on SQLite, within the bound on Postgres.
async fn opaque_tokens_stored_elsewhere_read_active(app: TestApp) {
    let owner = app.client("app", &[]).await;
    let before = app.opaque_for(&owner, TokenUse::RefreshToken).await;
    let (_state, other) = loaded_sibling(&app, &owner).await;
    assert!(active(&ask(&other, &owner, &before).await));
    assert!(inactive(
        &ask(&other, &owner, opaque::generate().expose()).await
    ));
    for token_use in [TokenUse::AccessToken, TokenUse::RefreshToken] {
        let issued = app.opaque_for(&owner, token_use).await;
        within_bound(app.backend, || ask(&other, &owner, &issued), active).await;
    }
    // Refresh rotation through another store handle stores the successor.
    let successor = opaque::generate();
    let record = opaque_record(&owner, &successor, TokenUse::RefreshToken);
    let rotated = app
        .store
        .rotate_refresh_token(
            &opaque::digest(&before),
            &record,
            "family",
            (&introspectd::token::new_jti(), record.exp),
            introspectd::token::now(),
        )
        .await
        .unwrap();
    assert_eq!(rotated, Rotation::Rotated);
    within_bound(
        app.backend,
        || ask(&other, &owner, successor.expose()),
        active,
    )
    .await;
    within_bound(app.backend, || ask(&other, &owner, &before), inactive).await;
}

both_stores!(
    opaque_tokens_stored_elsewhere_read_active,
    a_token_first_seen_after_its_revocation_reads_inactive,
    changes_through_one_instance_reach_another,
    deleted_client_reads_inactive_on_another_instance,
    a_promoted_key_signs_on_every_running_instance,
    rotated_and_removed_keys_reach_every_running_instance,
);

/// Kills every LISTEN connection on the test database from within `tx`, then commits:
/// what `tx` wrote commits while no listener is connected.
async fn cut_the_feed_and_commit(mut tx: sqlx::Transaction<'_, sqlx::Postgres>) {
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "no listener to cut");
    tx.commit().await.unwrap();
}

/// A connection pool of its own on the app's Postgres database.
async fn postgres_pool(app: &TestApp) -> sqlx::PgPool {
    sqlx::PgPool::connect(app.config.database_url.as_str())
        .await
        .unwrap()
}

/// Revokes a JWT id and kills every LISTEN connection on the test database in one
/// transaction, so the revocation commits while no listener is connected.
async fn revoke_while_cutting_the_feed(app: &TestApp, jti: &str, exp: i64) {
    let pool = postgres_pool(app).await;
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO revoked_jtis (jti, exp, revoked_at) VALUES ($1, $2, 0)")
        .bind(jti)
        .bind(exp)
        .execute(&mut *tx)
        .await
        .unwrap();
    cut_the_feed_and_commit(tx).await;
}

/// Stores an opaque token and kills every LISTEN connection on the test database in one
/// transaction, so the new token's announcement never arrives.
async fn insert_while_cutting_the_feed(app: &TestApp, record: &TokenRecord) {
    let pool = postgres_pool(app).await;
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO tokens (digest, token_use, client_id, audiences, jti, iat, exp) \
         VALUES ($1, 'access_token', $2, '[]', $3, $4, $5)",
    )
    .bind(&record.digest[..])
    .bind(&record.client_id)
    .bind(&record.jti)
    .bind(record.iat)
    .bind(record.exp)
    .execute(&mut *tx)
    .await
    .unwrap();
    cut_the_feed_and_commit(tx).await;
}

/// A token whose announcement was lost with the feed still reads active: while the feed
/// is down the store answers, and after it returns the digests are read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_added_while_the_feed_is_down_reads_active() {
    common::run(Backend::Postgres, |app| async move {
        let owner = app.client("app", &[]).await;
        let (state, other) = loaded_sibling(&app, &owner).await;
        let token = opaque::generate();
        let record = opaque_record(&owner, &token, TokenUse::AccessToken);
        insert_while_cutting_the_feed(&app, &record).await;
        within_bound(
            Backend::Postgres,
            || ask(&other, &owner, token.expose()),
            active,
        )
        .await;
        // Back on the feed, a request starts reading the digests again; once they are
        // in, the token still reads active.
        let start = Instant::now();
        loop {
            let loaded = state.directory.token_digests_loaded();
            assert!(active(&ask(&other, &owner, token.expose()).await));
            if loaded && feed_is_current(&state).await {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "feed never came back"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

async fn feed_is_current(router_app: &introspectd::http::AppState) -> bool {
    router_app.directory.view().await.cached()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_stay_correct_while_the_change_feed_is_down_and_after_it_returns() {
    common::run(Backend::Postgres, |app| async move {
        let other_store = introspectd::store::Store::connect(&app.config)
            .await
            .unwrap();
        let other_state = introspectd::http::AppState::build(app.config.clone(), other_store)
            .await
            .unwrap();
        let other = introspectd::http::router(other_state.clone());
        let owner = app.client("app", &[]).await;
        let rs = app.client("api", &["https://api.example"]).await;
        let tokens: Vec<String> = {
            let mut tokens = Vec::new();
            for _ in 0..3 {
                tokens.push(app.jwt_for(&owner, &["https://api.example"]).await);
            }
            tokens
        };
        let start = Instant::now();
        while !feed_is_current(&other_state).await {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "feed never came up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for token in &tokens {
            assert_eq!(ask(&other, &rs, token).await.json["active"], true);
        }

        // Revoke in the transaction that cuts the feed: the notification never reaches
        // the other instance. It must notice the loss, answer from the store, and so
        // read the token inactive within the bound.
        let keys = app.state.keys.keys();
        let claims = keys.verify_ignoring_time(&tokens[0]).unwrap();
        revoke_while_cutting_the_feed(&app, &claims.jti, claims.exp).await;
        let cut = Instant::now();
        while feed_is_current(&other_state).await {
            assert!(cut.elapsed() < BOUND, "the lost feed went unnoticed");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        within_bound(Backend::Postgres, || ask(&other, &rs, &tokens[0]), inactive).await;
        assert!(cut.elapsed() < BOUND);
        assert_eq!(ask(&other, &rs, &tokens[1]).await.json["active"], true);

        // Once the feed is back, its caches are in use and changes still arrive.
        let start = Instant::now();
        while !feed_is_current(&other_state).await {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "feed never came back"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(inactive(&ask(&other, &rs, &tokens[0]).await));
        assert_eq!(ask(&other, &rs, &tokens[1]).await.json["active"], true);
        admin::revoke_token(
            &app.store,
            &keys,
            &RawToken::new(&tokens[1]),
            introspectd::token::now(),
        )
        .await
        .unwrap();
        within_bound(Backend::Postgres, || ask(&other, &rs, &tokens[1]), inactive).await;
        assert_eq!(ask(&other, &rs, &tokens[2]).await.json["active"], true);
    })
    .await;
}

/// SQLite rewrites its WAL from the start once a checkpoint has copied it all back; the
/// commits after that leave the WAL file's length and header as they were. Another
/// instance must still see them at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_changes_after_the_wal_restarts_reach_another_instance() {
    common::run(Backend::Sqlite, |app| async move {
        let (_other_store, other) = app.sibling().await;
        let owner = app.client("app", &[]).await;
        let rs = app.client("api", &["https://api.example"]).await;
        let first = app.jwt_for(&owner, &["https://api.example"]).await;
        let second = app.jwt_for(&owner, &["https://api.example"]).await;
        for token in [&first, &second] {
            assert_eq!(ask(&other, &rs, token).await.json["active"], true);
        }
        // A WAL longer than what the commits below write once it restarts.
        for _ in 0..20 {
            app.opaque_for(&owner, TokenUse::RefreshToken).await;
        }
        let pool = sqlx::SqlitePool::connect(app.config.database_url.as_str())
            .await
            .unwrap();
        let (busy, log, done): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!((busy, log), (0, done), "the checkpoint did not complete");

        let keys = app.state.keys.keys();
        admin::revoke_token(
            &app.store,
            &keys,
            &RawToken::new(&first),
            introspectd::token::now(),
        )
        .await
        .unwrap();
        assert!(inactive(&ask(&other, &rs, &first).await));
        admin::revoke_token(
            &app.store,
            &keys,
            &RawToken::new(&second),
            introspectd::token::now(),
        )
        .await
        .unwrap();
        assert!(inactive(&ask(&other, &rs, &second).await));
    })
    .await;
}
