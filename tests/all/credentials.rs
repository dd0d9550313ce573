//! The verified-credential cache under load: concurrent requests share one argon2
//! verification, a credential in use is renewed before it expires, and a rotated secret
//! still stops working at once. On both stores, through the real router.

use crate::common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Backend, TestApp, TestClient, introspect_on, run_with};
use introspectd::admin;

/// How many requests present the same credentials at once.
const CONCURRENT: usize = 16;

async fn introspect_concurrently(app: &TestApp, client: &TestClient, token: &str) {
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENT {
        let router = app.router.clone();
        let authorization = client.basic();
        let body = common::form(&[("token", token)]);
        requests.spawn(async move { introspect_on(&router, Some(&authorization), &body).await });
    }
    while let Some(response) = requests.join_next().await {
        let response = response.unwrap();
        assert_eq!(response.status, StatusCode::OK, "{response:?}");
        assert_eq!(response.json["active"], true);
    }
}

/// A cold cache and sixteen requests with the same credentials: one argon2 run.
async fn concurrent_requests_share_one_verification(app: TestApp) {
    let client = app.client("app", &[]).await;
    let token = app.jwt_for(&client, &[]).await;
    assert_eq!(app.state.auth.verifications(), 0);
    introspect_concurrently(&app, &client, &token).await;
    assert_eq!(app.state.auth.verifications(), 1);
    // Wrong secrets are shared the same way and never remembered.
    let wrong = TestClient {
        id: client.id.clone(),
        secret: "wrong".to_owned(),
    };
    let response = app.introspect(&wrong, &token).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.state.auth.verifications(), 2);
    introspect_concurrently(&app, &client, &token).await;
    assert_eq!(app.state.auth.verifications(), 2, "answered from the cache");
}

both_stores!(concurrent_requests_share_one_verification);

/// Waits until the authenticator has run `count` verifications.
async fn verifications_reach(app: &TestApp, count: u64) {
    let started = Instant::now();
    while app.state.auth.verifications() < count {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still {} verifications",
            app.state.auth.verifications()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// With a TTL of 2 s, a request 1.6 s after the first verification (in the last quarter of
/// its TTL, timed from its answer, so a slow verification cannot make it early) is
/// answered from the cache and renews the entry in the background, so the credentials still need no
/// verification past the first entry's expiry. Rotating the secret still refuses the
/// old one on the next request. The cache ages on the tokio clock, which the test moves
/// ahead (`common::jump`) instead of waiting.
async fn credentials_in_use_are_renewed_before_they_expire(backend: Backend) {
    run_with(
        backend,
        |config| config.cache.credential_ttl_seconds = 2,
        |app| async move {
            let client = app.client("app", &[]).await;
            let token = app.jwt_for(&client, &[]).await;
            assert_eq!(app.introspect(&client, &token).await.json["active"], true);
            // The verification was remembered before the answer: it is at least this old.
            let first = tokio::time::Instant::now();
            assert_eq!(app.state.auth.verifications(), 1);

            common::jump(Duration::from_millis(1600).saturating_sub(first.elapsed())).await;
            let asked = Instant::now();
            assert_eq!(app.introspect(&client, &token).await.json["active"], true);
            let answered_in = asked.elapsed();
            verifications_reach(&app, 2).await;
            assert!(
                answered_in < Duration::from_secs(1),
                "the answer waited for the renewal: {answered_in:?}"
            );

            // Past the first verification's TTL: the renewed entry answers.
            common::jump(Duration::from_millis(2300).saturating_sub(first.elapsed())).await;
            assert_eq!(app.introspect(&client, &token).await.json["active"], true);
            assert_eq!(app.state.auth.verifications(), 2);

            let rotated =
                admin::rotate_secret(&app.store, &client.id, 0, introspectd::token::now())
                    .await
                    .unwrap();
            let response = app.introspect(&client, &token).await;
            assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{response:?}");
            let fresh = TestClient {
                id: client.id.clone(),
                secret: rotated.client_secret.expose().to_owned(),
            };
            assert_eq!(app.introspect(&fresh, &token).await.json["active"], true);
        },
    )
    .await;
}

both_backends_current_thread!(credentials_in_use_are_renewed_before_they_expire);
