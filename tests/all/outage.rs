//! A Postgres outage under a running instance: the database is taken away from this one
//! instance by cutting a TCP proxy between them, then given back.

use crate::common;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::proxy::Proxy;
use common::{Backend, TestApp, TestResponse};
use introspectd::admin;
use introspectd::config::DatabaseUrl;
use introspectd::secret::RawToken;
use introspectd::vocabulary::TokenUse;
use serde_json::json;

/// The Postgres server the tests use, as a socket address.
fn postgres_address() -> SocketAddr {
    let url = url::Url::parse(&common::postgres_admin_url()).expect("admin URL");
    (
        url.host_str().expect("host"),
        url.port_or_known_default().unwrap_or(5432),
    )
        .to_socket_addrs()
        .expect("resolve Postgres host")
        .next()
        .expect("an address")
}

/// The same database reached through `proxy`.
fn through(url: &DatabaseUrl, proxy: SocketAddr) -> DatabaseUrl {
    let mut url = url::Url::parse(url.as_str()).expect("database URL");
    url.set_ip_host(proxy.ip()).unwrap();
    url.set_port(Some(proxy.port())).unwrap();
    DatabaseUrl(url.to_string())
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// During an outage an answer is either the right inactive answer or a refusal to
/// answer; for a live token it may also be the right active answer.
fn assert_safe(response: &TestResponse, may_be_active: bool) {
    match response.status {
        StatusCode::OK if may_be_active && response.json["active"] == true => {}
        StatusCode::OK => assert_eq!(response.json, json!({"active": false}), "{response:?}"),
        StatusCode::SERVICE_UNAVAILABLE => {
            assert_eq!(
                response.json["error"], "temporarily_unavailable",
                "{response:?}"
            );
        }
        _ => panic!("unexpected answer during the outage: {response:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_takes_readiness_down_and_never_revives_a_revoked_token() {
    let proxy = Proxy::start(postgres_address()).await;
    let Some(app) = TestApp::start(Backend::Postgres, |config| {
        config.database_url = through(&config.database_url, proxy.addr);
        config.database.acquire_timeout_ms = 500;
    })
    .await
    else {
        return;
    };
    let api = app.client("api", &["https://api.example"]).await;
    let owner = app.client("app", &[]).await;
    let live_jwt = app.jwt_for(&owner, &["https://api.example"]).await;
    let live_opaque = app.opaque_for(&owner, TokenUse::RefreshToken).await;
    let revoked_jwt = app.jwt_for(&owner, &["https://api.example"]).await;
    let revoked_opaque = app.opaque_for(&owner, TokenUse::AccessToken).await;
    for token in [&revoked_jwt, &revoked_opaque] {
        admin::revoke_token(
            &app.store,
            &app.state.keys.keys(),
            &RawToken::new(token.as_str()),
            introspectd::token::now(),
        )
        .await
        .unwrap();
    }
    let cases = [
        (&api, &live_jwt, true),
        (&owner, &live_opaque, true),
        (&api, &revoked_jwt, false),
        (&owner, &revoked_opaque, false),
    ];
    for (caller, token, active) in cases {
        assert_eq!(app.introspect(caller, token).await.json["active"], active);
    }

    proxy.cut();
    let ready = app.send(get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{ready:?}");
    assert_eq!(ready.json["error"], "temporarily_unavailable");
    for (caller, token, active) in cases {
        assert_safe(&app.introspect(caller, token).await, active);
    }
    assert_eq!(app.send(get("/healthz")).await.status, StatusCode::OK);
    let metrics = common::send(&app.metrics, get("/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);

    proxy.restore();
    let ready = app.send(get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK, "{ready:?}");
    for (caller, token, active) in cases {
        let response = app.introspect(caller, token).await;
        assert_eq!(response.status, StatusCode::OK, "{response:?}");
        assert_eq!(response.json["active"], active, "{response:?}");
    }
    admin::revoke_token(
        &app.store,
        &app.state.keys.keys(),
        &RawToken::new(live_jwt.as_str()),
        introspectd::token::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        app.introspect(&api, &live_jwt).await.json,
        json!({"active": false})
    );
}

/// Ends every other session on the app's Postgres database, as a database restart would.
async fn terminate_sessions(app: &TestApp) {
    let admin = introspectd::store::connect_postgres_admin(&common::postgres_admin_url())
        .await
        .unwrap();
    let database = url::Url::parse(app.config.database_url.as_str()).unwrap();
    let name = database.path().trim_start_matches('/');
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(!ended.is_empty(), "no session to end");
    admin.close().await;
}

/// Pooled connections are not pinged before every use; one that sat idle beyond the
/// bound still is, so a database restart while it was idle costs no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_died_while_idle_are_replaced_unseen() {
    let more_connections = |config: &mut introspectd::config::Config| {
        config.database.max_connections = 8;
    };
    common::run_with(Backend::Postgres, more_connections, |app| async move {
        let api = app.client("api", &[]).await;
        // Fill the pool with idle connections: pings sent at once each need one.
        let admin = introspectd::store::connect_postgres_admin(&common::postgres_admin_url())
            .await
            .unwrap();
        let database = url::Url::parse(app.config.database_url.as_str()).unwrap();
        let name = database.path().trim_start_matches('/').to_owned();
        let start = std::time::Instant::now();
        loop {
            let idle: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND state = 'idle' AND query NOT ILIKE 'LISTEN%'",
            )
            .bind(&name)
            .fetch_one(&admin)
            .await
            .unwrap();
            if idle >= 5 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "connections not back"
            );
            let ping = || app.store.ping();
            let done = tokio::join!(ping(), ping(), ping(), ping(), ping(), ping());
            for result in [done.0, done.1, done.2, done.3, done.4, done.5] {
                result.unwrap();
            }
        }
        admin.close().await;
        terminate_sessions(&app).await;
        // Idle past the bound below which a connection is used without a ping; the
        // change feed's heartbeat meets one or two of them meanwhile. A real wait: sqlx
        // measures how long a connection sat idle on the system clock, which no test moves.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let ready = app.send(get("/readyz")).await;
        assert_eq!(ready.status, StatusCode::OK, "{ready:?}");
        let answer = app.introspect(&api, "never issued").await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        assert_eq!(answer.json, json!({"active": false}));
    })
    .await;
}
