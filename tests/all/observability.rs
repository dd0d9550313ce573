//! Metrics, request ids and logs: what operators see, and that no token or secret is
//! ever part of it.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::binary::{Server, command, create_client, http, issue_token, run_json};
use common::{Backend, TestApp, basic, form, fresh_db, metric_value, scrape};
use introspectd::metrics::{AUTH_FAILURES, HTTP_REQUESTS, INTROSPECTIONS, RATE_LIMITED};
use introspectd::vocabulary::TokenUse;
use serde_json::Value;
use tower::ServiceExt;

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn requests(exposition: &str, method: &str, route: &str, status: &str) -> f64 {
    metric_value(
        exposition,
        HTTP_REQUESTS,
        &[("method", method), ("route", route), ("status", status)],
    )
}

fn outcome(exposition: &str, reason: Option<&str>) -> f64 {
    match reason {
        None => metric_value(exposition, INTROSPECTIONS, &[("result", "active")]),
        Some(reason) => metric_value(
            exposition,
            INTROSPECTIONS,
            &[("result", "inactive"), ("reason", reason)],
        ),
    }
}

/// Metrics are process-wide and other tests run beside this one, so counters are
/// compared as "grew by at least"; the real-binary test below checks exact counts.
async fn metrics_move_as_requests_are_made(app: TestApp) {
    let client = app.client("app", &[]).await;
    let live = app.opaque_for(&client, TokenUse::AccessToken).await;
    let revoked = app.opaque_for(&client, TokenUse::RefreshToken).await;
    introspectd::admin::revoke_token(
        &app.store,
        &app.state.keys.keys(),
        &introspectd::secret::RawToken::new(revoked.as_str()),
        introspectd::token::now(),
    )
    .await
    .unwrap();
    let before = scrape(&app.metrics).await;

    for token in [&live, &live, &revoked, &"no-such-token".to_owned()] {
        assert_eq!(app.introspect(&client, token).await.status, StatusCode::OK);
    }
    let wrong = common::TestClient {
        id: client.id.clone(),
        secret: "wrong".to_owned(),
    };
    assert_eq!(
        app.introspect(&wrong, &live).await.status,
        StatusCode::UNAUTHORIZED
    );
    let secret_path = format!("/introspect/{live}");
    assert_eq!(
        app.send(get(&secret_path)).await.status,
        StatusCode::NOT_FOUND
    );

    let after = scrape(&app.metrics).await;
    let grew = |f: &dyn Fn(&str) -> f64| f(&after) - f(&before);
    assert!(grew(&|e| requests(e, "POST", "/introspect", "200")) >= 4.0);
    assert!(grew(&|e| requests(e, "POST", "/introspect", "401")) >= 1.0);
    assert!(grew(&|e| requests(e, "GET", "unmatched", "404")) >= 1.0);
    assert!(grew(&|e| requests(e, "GET", "/metrics", "200")) >= 1.0);
    assert_eq!(
        app.send(get("/metrics")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(grew(&|e| outcome(e, None)) >= 2.0);
    assert!(grew(&|e| outcome(e, Some("revoked"))) >= 1.0);
    assert!(grew(&|e| outcome(e, Some("unknown"))) >= 1.0);
    assert!(grew(&|e| metric_value(e, AUTH_FAILURES, &[("reason", "bad_credentials")])) >= 1.0);
    assert!(after.contains("introspectd_http_request_duration_seconds_bucket{"));
    for secret in [&live, &revoked, &client.secret, &client.id] {
        assert!(
            !after.contains(secret.as_str()),
            "a secret or id in metrics"
        );
    }
}

both_stores!(metrics_move_as_requests_are_made);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_refusals_are_counted_and_metrics_stay_reachable() {
    let Some(app) = TestApp::start(Backend::Sqlite, |config| {
        config.rate_limit.enabled = true;
        config.rate_limit.metadata_per_second = 1;
        config.rate_limit.metadata_burst = 1;
    })
    .await
    else {
        return;
    };
    let before = scrape(&app.metrics).await;
    let mut refused = 0.0;
    for _ in 0..3 {
        if app
            .send(get("/.well-known/oauth-authorization-server"))
            .await
            .status
            == StatusCode::TOO_MANY_REQUESTS
        {
            refused += 1.0;
        }
    }
    assert!(refused >= 1.0);
    for _ in 0..3 {
        scrape(&app.metrics).await;
    }
    let after = scrape(&app.metrics).await;
    assert!(
        metric_value(&after, RATE_LIMITED, &[]) - metric_value(&before, RATE_LIMITED, &[])
            >= refused
    );
}

/// Metrics tell why introspections were inactive: the API's listener does not serve
/// them, whatever the configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_router_does_not_serve_metrics() {
    let Some(app) = TestApp::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let response = app.send(get("/metrics")).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(response.json["error"], "not_found");
    assert!(
        scrape(&app.metrics)
            .await
            .contains("introspectd_build_info")
    );
    let other = app
        .metrics
        .clone()
        .oneshot(get("/healthz"))
        .await
        .unwrap()
        .status();
    assert_eq!(other, StatusCode::NOT_FOUND);
}

/// The real binary serves metrics on `metrics.listen` only, and not at all when they
/// are off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_metrics_on_their_own_listener() {
    let Some((db, _guard)) = fresh_db(Backend::Sqlite).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &db);
    let metrics = server.metrics_addr.expect("a metrics listener in the log");
    assert_ne!(metrics, server.addr);
    assert_eq!(
        http(server.addr, "GET", "/metrics", &[], "").await.status,
        404
    );
    let scraped = http(metrics, "GET", "/metrics", &[], "").await;
    assert_eq!(scraped.status, 200);
    assert!(
        scraped.text.contains("introspectd_build_info"),
        "{scraped:?}"
    );
    assert_eq!(http(metrics, "GET", "/healthz", &[], "").await.status, 404);
    server.stop();

    let mut cmd = command(dir.path(), &db);
    cmd.env("INTROSPECTD_METRICS__ENABLED", "false");
    let server = Server::start_with(cmd);
    assert_eq!(server.metrics_addr, None);
    assert_eq!(
        http(server.addr, "GET", "/metrics", &[], "").await.status,
        404
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_switched_off() {
    let Some(app) = TestApp::start(Backend::Sqlite, |config| config.metrics.enabled = false).await
    else {
        return;
    };
    let response = app.send(get("/metrics")).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

async fn request_id_is_echoed_or_generated(app: TestApp) {
    let mut request = get("/healthz");
    request
        .headers_mut()
        .insert("x-request-id", "caller-chosen-id.42".parse().unwrap());
    let response = app.send(request).await;
    assert_eq!(response.headers["x-request-id"], "caller-chosen-id.42");

    let one = app.send(get("/healthz")).await.headers["x-request-id"].clone();
    let two = app.send(get("/nope")).await.headers["x-request-id"].clone();
    assert!(!one.is_empty());
    assert_ne!(one, two);

    let mut request = get("/readyz");
    request
        .headers_mut()
        .insert("x-request-id", "not acceptable".parse().unwrap());
    let response = app.send(request).await;
    assert_ne!(response.headers["x-request-id"], "not acceptable");
}

both_stores!(request_id_is_echoed_or_generated);

/// One request of the log test, with the status it must get.
struct Case {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: String,
    status: u16,
}

/// One JSON log line per request, with route, status, latency, request id and, once
/// authenticated, the client; and nothing anywhere that was a token or a secret.
async fn logs_carry_no_token_or_secret(backend: Backend) {
    let Some((db, _guard)) = fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (api_id, api_secret) = create_client(
        dir,
        &db,
        &[
            "--audience",
            "https://api.example",
            "--grant-type",
            "client_credentials",
        ],
    );
    let (post_id, post_secret) = create_client(dir, &db, &["--auth-method", "client_secret_post"]);
    let jwt = issue_token(dir, &db, &post_id, &["--audience", "https://api.example"]);
    let refresh = issue_token(dir, &db, &post_id, &["--type", "refresh"]);
    let revoked = issue_token(dir, &db, &post_id, &["--format", "opaque"]);
    run_json(dir, &db, &["token", "revoke", &revoked]);
    let rotated = run_json(dir, &db, &["client", "rotate-secret", &api_id]);
    let old_api_secret = api_secret;
    let api_secret = rotated["client_secret"].as_str().unwrap().to_owned();

    let mut cmd = command(dir, &db);
    cmd.env("INTROSPECTD_LOG__FORMAT", "json")
        .env("INTROSPECTD_LOG__LEVEL", "debug");
    let server = Server::start_with(cmd);
    let addr = server.addr;
    let form_type = ("content-type", "application/x-www-form-urlencoded");
    let api_basic = basic(&api_id, &api_secret);
    let api_auth = ("authorization", api_basic.as_str());
    let old_basic = basic(&api_id, &old_api_secret);

    let post_body = |token: &str| {
        form(&[
            ("token", token),
            ("client_id", &post_id),
            ("client_secret", &post_secret),
        ])
    };
    let introspect = |headers: Vec<(&'static str, &str)>, body: String, status| Case {
        method: "POST",
        path: "/introspect".to_owned(),
        headers: headers
            .into_iter()
            .map(|(n, v)| (n, v.to_owned()))
            .collect(),
        body,
        status,
    };
    let bare = |method, path: String, headers: &[(&'static str, &str)], status| Case {
        method,
        path,
        headers: headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
        body: String::new(),
        status,
    };
    let cases = [
        introspect(vec![form_type, api_auth], form(&[("token", &jwt)]), 200),
        introspect(vec![form_type], post_body(&refresh), 200),
        introspect(vec![form_type], post_body(&revoked), 200),
        introspect(
            vec![form_type, ("authorization", &old_basic)],
            form(&[("token", &jwt)]),
            401,
        ),
        bare(
            "POST",
            format!("/introspect?token={jwt}"),
            &[form_type, api_auth],
            400,
        ),
        bare("GET", format!("/introspect/{refresh}"), &[], 404),
        introspect(vec![api_auth], form(&[("token", &jwt)]), 400),
        bare(
            "GET",
            "/readyz".to_owned(),
            &[("x-request-id", "trace-me-1")],
            200,
        ),
        Case {
            method: "POST",
            path: "/token".to_owned(),
            headers: vec![form_type, api_auth]
                .into_iter()
                .map(|(n, v)| (n, v.to_owned()))
                .collect(),
            body: form(&[("grant_type", "client_credentials")]),
            status: 200,
        },
    ];
    // The id each request got, to find its line in the log.
    let mut ids = Vec::new();
    for case in &cases {
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = http(addr, case.method, &case.path, &headers, &case.body).await;
        assert_eq!(response.status, case.status, "{}: {response:?}", case.path);
        ids.push(
            response.headers["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(ids[7], "trace-me-1");

    // This process served exactly these requests, so its counters are exact.
    let metrics = server.metrics_addr.expect("a metrics listener");
    let exposition = http(metrics, "GET", "/metrics", &[], "").await.text;
    assert_eq!(requests(&exposition, "POST", "/introspect", "200"), 3.0);
    assert_eq!(requests(&exposition, "POST", "/introspect", "401"), 1.0);
    assert_eq!(requests(&exposition, "POST", "/introspect", "400"), 2.0);
    assert_eq!(requests(&exposition, "GET", "unmatched", "404"), 1.0);
    assert_eq!(outcome(&exposition, None), 2.0);
    assert_eq!(outcome(&exposition, Some("revoked")), 1.0);
    assert_eq!(
        metric_value(&exposition, AUTH_FAILURES, &[("reason", "bad_credentials")]),
        1.0
    );

    let log = server.stop();
    let secrets = [
        &jwt,
        &refresh,
        &revoked,
        &api_secret,
        &old_api_secret,
        &post_secret,
    ];
    for secret in secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a token or secret reached the log:\n{log}"
        );
        assert!(!exposition.contains(secret.as_str()));
    }
    assert!(!log.contains("argon2"), "a secret hash reached the log");

    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let answered: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request answered")
        .collect();
    // Every case plus the scrape.
    assert_eq!(answered.len(), cases.len() + 1, "{log}");
    for (case, id) in cases.iter().zip(&ids) {
        let line = answered
            .iter()
            .find(|l| l["span"]["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no log line for request {id}:\n{log}"));
        assert_eq!(line["fields"]["status"], case.status, "{line}");
        assert_eq!(line["span"]["method"], case.method, "{line}");
        assert!(line["fields"]["latency_ms"].is_number(), "{line}");
        assert!(line["span"]["route"].is_string(), "{line}");
    }
    let client_of = |id: &str| {
        answered
            .iter()
            .find(|l| l["span"]["request_id"] == id)
            .map(|l| l["span"]["client_id"].clone())
            .unwrap()
    };
    assert_eq!(client_of(&ids[0]), api_id.as_str());
    assert_eq!(client_of(&ids[1]), post_id.as_str());
    assert!(client_of(&ids[3]).is_null(), "a failed caller is not named");
    assert_eq!(
        client_of(&ids[8]),
        api_id.as_str(),
        "every endpoint names its caller"
    );
    let unmatched = answered
        .iter()
        .find(|l| l["span"]["request_id"] == ids[5].as_str())
        .unwrap();
    assert_eq!(unmatched["span"]["route"], "unmatched");
}

both_backends!(logs_carry_no_token_or_secret);

/// Forwarding headers from a peer outside `rate_limit.trusted_proxies` are ignored, and
/// the first one is logged once, naming the setting: behind an ingress left out of it
/// every user would share the ingress's address and budgets. From a trusted proxy, or
/// without such headers, nothing is said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_an_untrusted_peer_are_reported_once() {
    let Some((db, _guard)) = fresh_db(Backend::Sqlite).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let warning = "not in rate_limit.trusted_proxies";
    let headers: [&[(&str, &str)]; 3] = [
        &[("x-forwarded-for", "198.51.100.7")],
        &[("forwarded", "for=198.51.100.8")],
        &[("x-forwarded-for", "198.51.100.9")],
    ];

    let plain = Server::start(dir.path(), &db);
    assert_eq!(
        http(plain.addr, "GET", "/healthz", &[], "").await.status,
        200
    );
    let log = plain.stop();
    assert!(!log.contains(warning), "no header, no warning: {log}");

    let untrusted = Server::start(dir.path(), &db);
    for sent in headers {
        let response = http(untrusted.addr, "GET", "/healthz", sent, "").await;
        assert_eq!(response.status, 200);
    }
    let log = untrusted.stop();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(warning)).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains("x-forwarded-for"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("127.0.0.1"),
        "names the peer: {}",
        lines[0]
    );

    let mut cmd = command(dir.path(), &db);
    cmd.env(
        "INTROSPECTD_RATE_LIMIT__TRUSTED_PROXIES",
        "[\"127.0.0.1/32\"]",
    );
    let trusted = Server::start_with(cmd);
    for sent in headers {
        http(trusted.addr, "GET", "/healthz", sent, "").await;
    }
    let log = trusted.stop();
    assert!(!log.contains(warning), "a trusted proxy: {log}");
}
