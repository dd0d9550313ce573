//! Hostile clients: per-address limits behind proxies, credential guessing, token
//! enumeration and timing, on both stores.

use crate::common;

use std::time::Duration;

use axum::http::{StatusCode, header};
use common::{
    Backend, TestApp, TestClient, TestResponse, form, insert_refresh_token, introspect_from,
    post_from, run_with,
};
use introspectd::admin::NewClient;
use introspectd::config::{ClientIpHeader, Config};
use introspectd::token::now;
use introspectd::vocabulary::TokenUse;

fn retry_after(response: &TestResponse) -> u64 {
    assert_eq!(
        response.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{response:?}"
    );
    assert_eq!(response.json["error"], "slow_down");
    response.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn ask_as(
    app: &TestApp,
    peer: &str,
    client: &TestClient,
    token: &str,
    headers: &[(&str, &str)],
) -> TestResponse {
    let authorization = client.basic();
    let mut all = vec![("authorization", authorization.as_str())];
    all.extend_from_slice(headers);
    introspect_from(&app.router, peer, &all, &form(&[("token", token)])).await
}

fn wrong(client: &TestClient) -> TestClient {
    TestClient {
        id: client.id.clone(),
        secret: "wrong-secret".to_owned(),
    }
}

/// Limits on, and every budget but the ones a test names generous.
fn limits(config: &mut Config) {
    let limits = &mut config.rate_limit;
    limits.enabled = true;
    limits.per_second = 10_000;
    limits.burst = 10_000;
    limits.auth_failures_per_ip = 10_000;
    limits.auth_failures_per_client = 10_000;
    limits.inactive_per_client = 10_000;
}

async fn forwarded_for_counts_only_from_trusted_proxies(backend: Backend) {
    run_with(
        backend,
        |config| {
            limits(config);
            config.rate_limit.per_second = 1;
            config.rate_limit.burst = 2;
            config.rate_limit.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
        },
        |app| async move {
            let client = app.client("app", &[]).await;
            let token = app.jwt_for(&client, &[]).await;
            const OK: StatusCode = StatusCode::OK;
            const LIMITED: StatusCode = StatusCode::TOO_MANY_REQUESTS;
            let (untrusted, proxy) = ("203.0.113.5", "10.0.0.7");
            let steps = [
                // An untrusted peer cannot escape its budget by claiming other addresses.
                (untrusted, ("x-forwarded-for", "198.51.100.1"), OK),
                (untrusted, ("x-forwarded-for", "198.51.100.2"), OK),
                (untrusted, ("x-forwarded-for", "198.51.100.3"), LIMITED),
                (untrusted, ("forwarded", "for=198.51.100.4"), LIMITED),
                // Behind our proxy, each client address has its own budget.
                (proxy, ("x-forwarded-for", "198.51.100.1"), OK),
                (proxy, ("x-forwarded-for", "198.51.100.1"), OK),
                (proxy, ("x-forwarded-for", "198.51.100.1"), LIMITED),
                // A client prepending a forged hop is still known by the hop our proxy added.
                (
                    proxy,
                    ("x-forwarded-for", "198.51.100.9, 198.51.100.1"),
                    LIMITED,
                ),
                // Only X-Forwarded-For is read: an injected `Forwarded` is ignored, so
                // this is the proxy's own address, with a fresh budget.
                (proxy, ("forwarded", "for=198.51.100.1;proto=https"), OK),
            ];
            for (step, (peer, header, expected)) in steps.into_iter().enumerate() {
                let r = ask_as(&app, peer, &client, &token, &[header]).await;
                assert_eq!(
                    r.status, expected,
                    "step {step}: from {peer} with {header:?}"
                );
                if expected == LIMITED {
                    assert!(retry_after(&r) >= 1, "step {step}");
                }
            }
        },
    )
    .await;
}

/// Behind a trusted proxy that sets only `configured`, a client that injects `other`
/// naming a victim's address neither escapes its failure budget nor spends the victim's.
async fn only_the_configured_forwarding_header_counts(
    backend: Backend,
    configured: ClientIpHeader,
) {
    let (attacker, victim) = ("198.51.100.1", "198.51.100.2");
    let header = |kind: ClientIpHeader, ip: &str| match kind {
        ClientIpHeader::XForwardedFor => ("x-forwarded-for", ip.to_owned()),
        ClientIpHeader::Forwarded => ("forwarded", format!("for={ip}")),
    };
    let other = match configured {
        ClientIpHeader::XForwardedFor => ClientIpHeader::Forwarded,
        ClientIpHeader::Forwarded => ClientIpHeader::XForwardedFor,
    };
    run_with(
        backend,
        |config| {
            limits(config);
            config.rate_limit.auth_failures_per_ip = 2;
            config.rate_limit.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
            config.http.client_ip_header = configured;
        },
        |app| async move {
            let guessed = app.client("guessed", &[]).await;
            let honest = app.client("honest", &[]).await;
            let token = app.jwt_for(&honest, &[]).await;
            let proxy = "10.0.0.7";
            let (real_name, real_value) = header(configured, attacker);
            let (injected_name, injected_value) = header(other, victim);
            let headers = [
                (real_name, real_value.as_str()),
                (injected_name, &injected_value),
            ];
            for (attempt, expected) in [401, 401, 429].into_iter().enumerate() {
                let r = ask_as(&app, proxy, &wrong(&guessed), &token, &headers).await;
                assert_eq!(r.status.as_u16(), expected, "attempt {attempt}: {r:?}");
            }
            let (name, value) = header(configured, victim);
            let r = ask_as(&app, proxy, &honest, &token, &[(name, &value)]).await;
            assert_eq!(
                r.json["active"], true,
                "the victim is not locked out: {r:?}"
            );
        },
    )
    .await;
}

async fn injected_forwarded_is_ignored_behind_x_forwarded_for(backend: Backend) {
    only_the_configured_forwarding_header_counts(backend, ClientIpHeader::XForwardedFor).await;
}

async fn injected_x_forwarded_for_is_ignored_behind_forwarded(backend: Backend) {
    only_the_configured_forwarding_header_counts(backend, ClientIpHeader::Forwarded).await;
}

async fn failed_secrets_lock_the_client_out_from_that_address_only(backend: Backend) {
    run_with(
        backend,
        |config| {
            limits(config);
            config.rate_limit.auth_failures_per_client = 3;
        },
        |app| async move {
            let client = app.client("app", &[]).await;
            let token = app.jwt_for(&client, &[]).await;
            for _ in 0..3 {
                let r = ask_as(&app, "203.0.113.5", &wrong(&client), &token, &[]).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            }
            let r = ask_as(&app, "203.0.113.5", &wrong(&client), &token, &[]).await;
            let wait = retry_after(&r);
            assert!((1..=60).contains(&wait), "{wait}");
            // The right secret, never verified before, does not get through from the
            // attacking address...
            let r = ask_as(&app, "203.0.113.5", &client, &token, &[]).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
            // ...but does from anywhere else, and other clients are untouched.
            let r = ask_as(&app, "198.51.100.1", &client, &token, &[]).await;
            assert_eq!(r.json["active"], true);
            let other = app.client("other", &[]).await;
            let r = ask_as(&app, "203.0.113.5", &other, &token, &[]).await;
            assert_eq!(r.status, StatusCode::OK);
        },
    )
    .await;
}

async fn failed_authentications_lock_out_the_address(backend: Backend) {
    run_with(
        backend,
        |config| {
            limits(config);
            config.rate_limit.auth_failures_per_ip = 4;
        },
        |app| async move {
            let client = app.client("app", &[]).await;
            let token = app.jwt_for(&client, &[]).await;
            // Guessing across client ids, and malformed credentials, all count.
            for id in ["a", "b", "c"] {
                let guess = TestClient {
                    id: id.to_owned(),
                    secret: "x".to_owned(),
                };
                let r = ask_as(&app, "203.0.113.5", &guess, &token, &[]).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            }
            let r = introspect_from(
                &app.router,
                "203.0.113.5",
                &[("authorization", "Basic !!")],
                "token=x",
            )
            .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            let r = ask_as(&app, "203.0.113.5", &wrong(&client), &token, &[]).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
            let r = ask_as(&app, "203.0.113.5", &client, &token, &[]).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
            let r = ask_as(&app, "198.51.100.1", &client, &token, &[]).await;
            assert_eq!(r.json["active"], true);
        },
    )
    .await;
}

async fn inactive_answers_are_budgeted_and_the_budget_resets(backend: Backend) {
    run_with(
        backend,
        |config| {
            limits(config);
            config.rate_limit.inactive_per_client = 3;
            config.rate_limit.inactive_window_seconds = 1;
        },
        |app| async move {
            let client = app.client("app", &[]).await;
            let honest = app.client("honest", &[]).await;
            let token = app.opaque_for(&client, TokenUse::AccessToken).await;
            // Active answers cost nothing.
            for _ in 0..10 {
                let r = ask_as(&app, "203.0.113.5", &client, &token, &[]).await;
                assert_eq!(r.json["active"], true);
            }
            for guess in ["g1", "g2", "g3"] {
                let r = ask_as(&app, "203.0.113.5", &client, guess, &[]).await;
                assert_eq!(r.json, serde_json::json!({"active": false}));
            }
            let r = ask_as(&app, "203.0.113.5", &client, "g4", &[]).await;
            let wait = retry_after(&r);
            let r = ask_as(&app, "198.51.100.1", &client, &token, &[]).await;
            assert_eq!(
                r.status,
                StatusCode::TOO_MANY_REQUESTS,
                "the budget is the client's"
            );
            let r = ask_as(&app, "203.0.113.5", &honest, "g5", &[]).await;
            assert_eq!(r.json, serde_json::json!({"active": false}));
            // As long as Retry-After says brings the budget back (the budget's window is
            // on the tokio clock, moved ahead rather than waited for).
            common::jump(Duration::from_secs(wait)).await;
            let r = ask_as(&app, "203.0.113.5", &client, &token, &[]).await;
            assert_eq!(r.json["active"], true);
        },
    )
    .await;
}

async fn a_flood_of_wrong_secrets_does_not_starve_an_honest_client(backend: Backend) {
    run_with(backend, limits, |app| async move {
        let victim = app.client("victim", &[]).await;
        let honest = app.client("honest", &[]).await;
        let token = app.jwt_for(&honest, &[]).await;
        let r = ask_as(&app, "198.51.100.1", &honest, &token, &[]).await;
        assert_eq!(r.json["active"], true);
        let router = app.router.clone();
        let flood: Vec<_> = (0..64)
            .map(|i| {
                let router = router.clone();
                let guess = wrong(&victim);
                let secret = format!("guess-{i}");
                tokio::spawn(async move {
                    let auth = common::basic(&guess.id, &secret);
                    introspect_from(
                        &router,
                        "203.0.113.5",
                        &[("authorization", &auth)],
                        "token=x",
                    )
                    .await
                })
            })
            .collect();
        let mut honest_answers = Vec::new();
        while !flood.iter().all(|f| f.is_finished()) && honest_answers.len() < 200 {
            honest_answers.push(ask_as(&app, "198.51.100.1", &honest, &token, &[]).await);
        }
        for handle in flood {
            let r = handle.await.unwrap();
            assert!(matches!(r.status.as_u16(), 401 | 429), "{r:?}");
        }
        assert!(!honest_answers.is_empty());
        for r in &honest_answers {
            assert_eq!(r.json["active"], true, "{r:?}");
        }
    })
    .await;
}

/// Ten wrong secrets for a client id from one address spend both failure budgets of that
/// address; the real client, whose secret was verified before, still gets its answers
/// from there. Only credentials no verification vouches for are refused.
async fn guessers_never_lock_out_a_verified_client(backend: Backend) {
    run_with(
        backend,
        |config| {
            limits(config);
            config.rate_limit.auth_failures_per_ip = 5;
            config.rate_limit.auth_failures_per_client = 5;
        },
        |app| async move {
            let client = app.client("app", &[]).await;
            let token = app.jwt_for(&client, &[]).await;
            let r = ask_as(&app, "203.0.113.5", &client, &token, &[]).await;
            assert_eq!(r.json["active"], true, "{r:?}");
            let mut refused = 0;
            for _ in 0..10 {
                let r = ask_as(&app, "203.0.113.5", &wrong(&client), &token, &[]).await;
                match r.status {
                    StatusCode::UNAUTHORIZED => {}
                    StatusCode::TOO_MANY_REQUESTS => refused += 1,
                    other => panic!("{other}: {r:?}"),
                }
            }
            assert!(refused > 0, "the guesser was never refused");
            for _ in 0..3 {
                let r = ask_as(&app, "203.0.113.5", &client, &token, &[]).await;
                assert_eq!(r.status, StatusCode::OK, "{r:?}");
                assert_eq!(r.json["active"], true);
            }
            // A client never verified before proves nothing yet: from the guessing
            // address it waits for the window like a guesser.
            let other = app.client("other", &[]).await;
            let r = ask_as(&app, "203.0.113.5", &other, &token, &[]).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
            let r = ask_as(&app, "203.0.113.5", &wrong(&client), &token, &[]).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        },
    )
    .await;
}

/// Our proxy, which names each client in `X-Forwarded-For`.
const PROXY: &str = "10.0.0.7";

fn behind_proxy(config: &mut Config) {
    config.rate_limit.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
}

/// POST a form to `path` from `client_ip`, as our proxy names it.
async fn post_as(
    app: &TestApp,
    client_ip: &str,
    path: &str,
    params: &[(&str, &str)],
) -> TestResponse {
    post_from(
        &app.router,
        path,
        PROXY,
        &[("x-forwarded-for", client_ip)],
        &form(params),
    )
    .await
}

/// A public client (`none`, as MCP clients are) that refreshes tokens.
async fn public_client(app: &TestApp) -> TestClient {
    app.client_with(NewClient {
        name: "public".to_owned(),
        auth_method: Some("none".to_owned()),
        redirect_uris: vec!["http://127.0.0.1/callback".to_owned()],
        ..NewClient::default()
    })
    .await
}

/// Junk sent in a public client's name (which anyone may send: the client proves
/// nothing) spends the inactive-answer budget of the sender's address only. The real
/// user, refreshing from elsewhere, is never locked out.
async fn junk_in_a_public_clients_name_spends_only_the_senders_budget(backend: Backend) {
    run_with(
        backend,
        |config| {
            limits(config);
            behind_proxy(config);
            config.rate_limit.inactive_per_client = 5;
        },
        |app| async move {
            let client = public_client(&app).await;
            let refresh_token = insert_refresh_token(&app.store, &client, now() + 3_600).await;
            let (attacker, user) = ("198.51.100.66", "203.0.113.10");
            let id = client.id.as_str();
            let mut answered = 0;
            for i in 0..100 {
                let junk = format!("junk-{i}");
                let r = post_as(
                    &app,
                    attacker,
                    "/revoke",
                    &[("client_id", id), ("token", &junk)],
                )
                .await;
                match r.status {
                    StatusCode::OK => answered += 1,
                    StatusCode::TOO_MANY_REQUESTS => break,
                    other => panic!("{other}: {r:?}"),
                }
            }
            assert_eq!(answered, 5, "the budget of the attacking address");
            let junk_refresh = [
                ("grant_type", "refresh_token"),
                ("client_id", id),
                ("refresh_token", "junk"),
            ];
            let r = post_as(&app, attacker, "/token", &junk_refresh).await;
            assert!(retry_after(&r) >= 1);
            // The real user's refresh goes through from their own address.
            let refresh = [
                ("grant_type", "refresh_token"),
                ("client_id", id),
                ("refresh_token", refresh_token.as_str()),
            ];
            let r = post_as(&app, user, "/token", &refresh).await;
            assert_eq!(r.status, StatusCode::OK, "{r:?}");
            assert!(r.json["access_token"].is_string());
            // Junk refreshes from another address spend that address's budget alone.
            for _ in 0..5 {
                let r = post_as(&app, "192.0.2.9", "/token", &junk_refresh).await;
                assert_eq!(r.json["error"], "invalid_grant", "{r:?}");
            }
            let r = post_as(&app, "192.0.2.9", "/token", &junk_refresh).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        },
    )
    .await;
}

/// A confidential client proved its secret: its budget is its own wherever it calls
/// from, so a curious client cannot escape it by changing addresses.
async fn a_confidential_clients_inactive_budget_is_the_clients(backend: Backend) {
    run_with(
        backend,
        |config| {
            limits(config);
            behind_proxy(config);
            config.rate_limit.inactive_per_client = 2;
        },
        |app| async move {
            let client = app.client("app", &[]).await;
            for (ip, expected) in [
                ("198.51.100.1", StatusCode::OK),
                ("198.51.100.2", StatusCode::OK),
                ("198.51.100.3", StatusCode::TOO_MANY_REQUESTS),
            ] {
                let auth = client.basic();
                let r = post_from(
                    &app.router,
                    "/revoke",
                    PROXY,
                    &[("x-forwarded-for", ip), ("authorization", &auth)],
                    "token=junk",
                )
                .await;
                assert_eq!(r.status, expected, "{ip}: {r:?}");
            }
        },
    )
    .await;
}

/// Every budget kept per address keys an IPv6 address by its /64: addresses in one /64
/// share it, another /64 has its own.
async fn ipv6_callers_are_budgeted_per_64(backend: Backend) {
    run_with(
        backend,
        |config| {
            limits(config);
            behind_proxy(config);
            config.rate_limit.per_second = 1;
            config.rate_limit.burst = 2;
        },
        |app| async move {
            let client = app.client("app", &[]).await;
            let token = app.jwt_for(&client, &[]).await;
            const OK: StatusCode = StatusCode::OK;
            const LIMITED: StatusCode = StatusCode::TOO_MANY_REQUESTS;
            for (ip, expected) in [
                ("2001:db8:1:2::1", OK),
                ("2001:db8:1:2:ffff:ffff:ffff:ffff", OK),
                ("2001:db8:1:2:aaaa::9", LIMITED),
                ("2001:db8:1:3::1", OK),
                ("::ffff:198.51.100.1", OK),
                ("198.51.100.1", OK),
                ("198.51.100.1", LIMITED),
            ] {
                let r = ask_as(&app, PROXY, &client, &token, &[("x-forwarded-for", ip)]).await;
                assert_eq!(r.status, expected, "{ip}: {r:?}");
            }
        },
    )
    .await;
}

/// The failure and inactive-answer budgets of an address are those of its /64 too.
async fn ipv6_failure_and_inactive_budgets_are_per_64(backend: Backend) {
    run_with(
        backend,
        |config| {
            limits(config);
            behind_proxy(config);
            config.rate_limit.auth_failures_per_ip = 2;
            config.rate_limit.inactive_per_client = 2;
        },
        |app| async move {
            let client = app.client("app", &[]).await;
            let token = app.jwt_for(&client, &[]).await;
            for (ip, expected) in [
                ("2001:db8:5:6::1", StatusCode::UNAUTHORIZED),
                ("2001:db8:5:6::2", StatusCode::UNAUTHORIZED),
                ("2001:db8:5:6::3", StatusCode::TOO_MANY_REQUESTS),
                ("2001:db8:5:7::1", StatusCode::UNAUTHORIZED),
            ] {
                let r = ask_as(
                    &app,
                    PROXY,
                    &wrong(&client),
                    &token,
                    &[("x-forwarded-for", ip)],
                )
                .await;
                assert_eq!(r.status, expected, "failures from {ip}: {r:?}");
            }
            let public = public_client(&app).await;
            let junk = [("client_id", public.id.as_str()), ("token", "junk")];
            for (ip, expected) in [
                ("2001:db8:8:9::1", StatusCode::OK),
                ("2001:db8:8:9::2", StatusCode::OK),
                ("2001:db8:8:9::3", StatusCode::TOO_MANY_REQUESTS),
                ("2001:db8:8:a::1", StatusCode::OK),
            ] {
                let r = post_as(&app, ip, "/revoke", &junk).await;
                assert_eq!(r.status, expected, "junk from {ip}: {r:?}");
            }
        },
    )
    .await;
}

both_backends!(
    junk_in_a_public_clients_name_spends_only_the_senders_budget,
    a_confidential_clients_inactive_budget_is_the_clients,
    ipv6_callers_are_budgeted_per_64,
    ipv6_failure_and_inactive_budgets_are_per_64,
    guessers_never_lock_out_a_verified_client,
    forwarded_for_counts_only_from_trusted_proxies,
    injected_forwarded_is_ignored_behind_x_forwarded_for,
    injected_x_forwarded_for_is_ignored_behind_forwarded,
    failed_secrets_lock_the_client_out_from_that_address_only,
    failed_authentications_lock_out_the_address,
    a_flood_of_wrong_secrets_does_not_starve_an_honest_client,
);

// Moves the tokio clock past the budget's window (`common::jump`).
both_backends_current_thread!(inactive_answers_are_budgeted_and_the_budget_resets);
