//! Token exchange (RFC 8693) at POST /token: an MCP server trades the user's token it
//! received for one meant for the next service, for the same user, against SQLite and
//! Postgres.

use crate::common;
use crate::users::{Grant, grant, sign_in_client, user};

use axum::http::{StatusCode, header};
use common::{
    Backend, TestApp, TestClient, TestResponse, assert_error, introspect_as, issue_request,
    within_bound,
};
use introspectd::admin::{self, NewClient};
use introspectd::token::mint::TokenFormat;
use introspectd::token::now;
use introspectd::vocabulary::TokenUse;
use serde_json::{Value, json};

const API: &str = "https://api.example";
const NEXT: &str = "https://next.example/mcp";
const THIRD: &str = "https://third.example/api";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A resource server that receives tokens for `audience` and may exchange them for
/// `targets`.
async fn exchanger(app: &TestApp, name: &str, audience: &str, targets: &[&str]) -> TestClient {
    app.client_with(exchanger_client(name, audience, targets))
        .await
}

fn exchanger_client(name: &str, audience: &str, targets: &[&str]) -> NewClient {
    NewClient {
        name: name.to_owned(),
        audiences: vec![audience.to_owned()],
        grant_types: vec!["token-exchange".to_owned()],
        exchange_targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        ..NewClient::default()
    }
}

async fn exchange(
    app: &TestApp,
    caller: &TestClient,
    subject: &str,
    extra: &[(&str, &str)],
) -> TestResponse {
    let mut params = vec![
        ("grant_type", GRANT_TYPE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    params.extend_from_slice(extra);
    app.post(caller, "/token", &params).await
}

fn access_token(response: &TestResponse) -> &str {
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    response.json["access_token"]
        .as_str()
        .expect("access_token")
}

/// A user's grant from a sign-in, the MCP server that receives its tokens, and the
/// service after it.
struct Scene {
    alice: String,
    app_client: TestClient,
    mcp: TestClient,
    next: TestClient,
    grant: Grant,
}

async fn scene(app: &TestApp) -> Scene {
    let app_client = sign_in_client(app, "app").await;
    let alice = user(app, "alice").await;
    let grant = grant(app, &app_client, &alice, "alice").await;
    Scene {
        mcp: exchanger(app, "mcp", API, &[NEXT]).await,
        next: exchanger(app, "next", NEXT, &[THIRD]).await,
        alice,
        app_client,
        grant,
    }
}

async fn a_resource_server_exchanges_the_users_token_for_the_next_service(app: TestApp) {
    let s = scene(&app).await;
    let response = exchange(&app, &s.mcp, &s.grant.access, &[("resource", NEXT)]).await;
    let token = access_token(&response);
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(response.json["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(response.json["token_type"], "Bearer");
    assert_eq!(response.json["scope"], "read");
    assert!(
        response.json.get("refresh_token").is_none(),
        "RFC 8693 §2.2.1: no refresh token here"
    );
    let expires_in = response.json["expires_in"].as_i64().unwrap();
    assert!(expires_in > 0 && expires_in <= 600, "{response:?}");
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));

    let answer = introspect_as(&app.router, &s.next, token).await;
    assert_eq!(answer.json["active"], true, "{answer:?}");
    assert_eq!(answer.json["sub"], s.alice.as_str());
    assert_eq!(answer.json["username"], "alice");
    assert_eq!(answer.json["client_id"], s.mcp.id.as_str());
    assert_eq!(answer.json["aud"], NEXT);
    assert_eq!(answer.json["act"], json!({"sub": s.mcp.id}));
    // Meant for the next service, not for the one that exchanged it.
    let theirs = introspect_as(&app.router, &s.mcp, token).await;
    assert_eq!(theirs.json["active"], true, "issued to the caller itself");
    let unrelated = app.client("unrelated", &[API]).await;
    let answer = introspect_as(&app.router, &unrelated, token).await;
    assert_eq!(answer.json, json!({"active": false}));
    // `audience` names a target as `resource` does.
    let response = exchange(&app, &s.mcp, &s.grant.access, &[("audience", NEXT)]).await;
    let answer = introspect_as(&app.router, &s.next, access_token(&response)).await;
    assert_eq!(answer.json["aud"], NEXT);
}

async fn the_actor_chain_nests_the_earlier_actor(app: TestApp) {
    let s = scene(&app).await;
    let first = exchange(&app, &s.mcp, &s.grant.access, &[("resource", NEXT)]).await;
    let second = exchange(&app, &s.next, access_token(&first), &[("resource", THIRD)]).await;
    let third = app.client("third", &[THIRD]).await;
    let answer = introspect_as(&app.router, &third, access_token(&second)).await;
    assert_eq!(answer.json["active"], true, "{answer:?}");
    assert_eq!(answer.json["sub"], s.alice.as_str());
    assert_eq!(answer.json["client_id"], s.next.id.as_str());
    assert_eq!(
        answer.json["act"],
        json!({"sub": s.next.id, "act": {"sub": s.mcp.id}}),
        "RFC 8693 §4.1: the current actor outermost"
    );
    let claims: Value = {
        let payload = access_token(&second).split('.').nth(1).unwrap();
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    assert_eq!(claims["act"]["act"]["sub"], s.mcp.id.as_str());
}

/// A chain that keeps growing is a loop: the fifth actor is the last.
async fn an_actor_chain_is_bounded(app: TestApp) {
    let s = scene(&app).await;
    let looping = exchanger(&app, "loop", NEXT, &[NEXT]).await;
    let first = exchange(&app, &s.mcp, &s.grant.access, &[("resource", NEXT)]).await;
    let mut token = access_token(&first).to_owned();
    for depth in 2..=5 {
        let response = exchange(&app, &looping, &token, &[("resource", NEXT)]).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "depth {depth}: {response:?}"
        );
        token = access_token(&response).to_owned();
    }
    let response = exchange(&app, &looping, &token, &[("resource", NEXT)]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
}

/// Every subject token the caller could not use gets the one answer, whatever the reason.
async fn every_unusable_subject_token_gets_one_answer(app: TestApp) {
    let s = scene(&app).await;
    let elsewhere = app
        .client("elsewhere", &["https://elsewhere.example"])
        .await;
    let other_audience = app
        .jwt_for(&elsewhere, &["https://elsewhere.example"])
        .await;
    let expired = {
        let mut request = issue_request(&s.app_client, TokenUse::AccessToken, None, &[API]);
        request.ttl = Some(60);
        let keys = app.state.keys.keys();
        let issued = admin::issue_token(&app.store, &keys, &app.config, request, now() - 600);
        issued.await.unwrap().token.expose().to_owned()
    };
    let revoked = app.jwt_for(&s.app_client, &[API]).await;
    let revoking = app
        .post(&s.app_client, "/revoke", &[("token", &revoked)])
        .await;
    assert_eq!(revoking.status, StatusCode::OK);
    let refresh = s.grant.refresh.clone();
    // A character in the middle of the signature, changed.
    let mut tampered = s.grant.access.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unusable = [
        ("garbage", "not-a-token".to_owned()),
        ("another audience", other_audience),
        ("expired", expired),
        ("revoked", revoked),
        ("a refresh token", refresh),
        ("tampered", tampered),
    ];
    let mut descriptions = Vec::new();
    for (what, token) in &unusable {
        let response = exchange(&app, &s.mcp, token, &[("resource", NEXT)]).await;
        assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
        let body = String::from_utf8_lossy(&response.body);
        assert!(!body.contains(token.as_str()), "{what}: {body}");
        descriptions.push(response.json["error_description"].clone());
    }
    assert!(
        descriptions.iter().all(|d| *d == descriptions[0]),
        "{descriptions:?}"
    );
}

async fn unusable_subject_tokens_spend_the_inactive_budget(backend: Backend) {
    let enable = |config: &mut introspectd::config::Config| config.rate_limit.enabled = true;
    common::run_with(backend, enable, |app| async move {
        let s = scene(&app).await;
        let limited = app
            .client_with(NewClient {
                inactive_budget: Some("2".to_owned()),
                ..exchanger_client("limited", API, &[NEXT])
            })
            .await;
        for _ in 0..2 {
            let response = exchange(&app, &limited, "unknown", &[("resource", NEXT)]).await;
            assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
        }
        let response = exchange(&app, &limited, "unknown", &[("resource", NEXT)]).await;
        assert_eq!(
            response.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{response:?}"
        );
        // As at introspection, a spent budget refuses the caller whatever it asks; other
        // callers are untouched.
        let response = exchange(&app, &limited, &s.grant.access, &[("resource", NEXT)]).await;
        assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
        let response = exchange(&app, &s.mcp, &s.grant.access, &[("resource", NEXT)]).await;
        assert_eq!(response.status, StatusCode::OK, "{response:?}");
    })
    .await;
}

/// Deny by default: the grant type, the targets and the scope are each the caller's to
/// be given, and the request's token types are the ones this server exchanges.
async fn exchanges_are_denied_by_default(app: TestApp) {
    let s = scene(&app).await;
    let plain = app.client("plain", &[API]).await;
    let response = exchange(&app, &plain, &s.grant.access, &[("resource", NEXT)]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "unauthorized_client");

    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("resource", THIRD)], "invalid_target"),
        (&[("resource", NEXT), ("audience", THIRD)], "invalid_target"),
        (&[], "invalid_request"),
        (
            &[("resource", NEXT), ("scope", "read write")],
            "invalid_scope",
        ),
        (
            &[
                ("resource", NEXT),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
            "invalid_request",
        ),
        (
            &[
                ("resource", NEXT),
                ("actor_token", "x"),
                ("actor_token_type", ACCESS_TOKEN),
            ],
            "invalid_request",
        ),
    ];
    for (extra, error) in cases {
        let response = exchange(&app, &s.mcp, &s.grant.access, extra).await;
        assert_error(&response, StatusCode::BAD_REQUEST, error);
    }
    let wrong_type = app
        .post(
            &s.mcp,
            "/token",
            &[
                ("grant_type", GRANT_TYPE),
                ("subject_token", &s.grant.access),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
                ("resource", NEXT),
            ],
        )
        .await;
    assert_error(&wrong_type, StatusCode::BAD_REQUEST, "invalid_request");
    let missing = app
        .post(
            &s.mcp,
            "/token",
            &[("grant_type", GRANT_TYPE), ("resource", NEXT)],
        )
        .await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "invalid_request");
    // A narrower scope is given.
    let response = exchange(
        &app,
        &s.mcp,
        &s.grant.access,
        &[("resource", NEXT), ("scope", "read")],
    )
    .await;
    assert_eq!(response.json["scope"], "read", "{response:?}");

    // A public client never exchanges.
    let refused = admin::create_client(
        &app.store,
        NewClient {
            auth_method: Some("none".to_owned()),
            redirect_uris: vec!["http://127.0.0.1/cb".to_owned()],
            ..exchanger_client("public", API, &[NEXT])
        },
        now(),
    )
    .await;
    let err = refused.expect_err("a public client with token-exchange");
    assert!(err.to_string().contains("token-exchange"), "{err}");
}

/// The new token never outlives the token it came from.
async fn the_exchanged_token_expires_with_its_subject(app: TestApp) {
    let s = scene(&app).await;
    let owner = app.client("owner", &[API]).await;
    let mut request = issue_request(&owner, TokenUse::AccessToken, None, &[API]);
    request.ttl = Some(90);
    let subject = app.issue(request).await;
    let subject_exp = introspect_as(&app.router, &s.mcp, &subject).await.json["exp"]
        .as_i64()
        .unwrap();
    let response = exchange(&app, &s.mcp, &subject, &[("resource", NEXT)]).await;
    assert!(
        response.json["expires_in"].as_i64().unwrap() <= 90,
        "{response:?}"
    );
    let answer = introspect_as(&app.router, &s.next, access_token(&response)).await;
    assert_eq!(answer.json["exp"].as_i64().unwrap(), subject_exp);
    assert_eq!(answer.json["sub"], "alice");
}

/// Whatever ends the subject token's grant ends the exchanged token, on every instance:
/// the grant revoked through its refresh token, and the user disabled.
async fn ending_the_subject_grant_ends_the_exchanged_token_everywhere(app: TestApp) {
    let (_other_store, other) = app.sibling().await;
    let s = scene(&app).await;
    let first = exchange(&app, &s.mcp, &s.grant.access, &[("resource", NEXT)]).await;
    let first = access_token(&first).to_owned();
    let second = exchange(&app, &s.next, &first, &[("resource", THIRD)]).await;
    let second = access_token(&second).to_owned();
    let third = app.client("third", &[THIRD]).await;
    for router in [&app.router, &other] {
        assert_eq!(
            introspect_as(router, &s.next, &first).await.json["active"],
            true
        );
        assert_eq!(
            introspect_as(router, &third, &second).await.json["active"],
            true
        );
    }
    let revoked = app
        .post(&s.app_client, "/revoke", &[("token", &s.grant.refresh)])
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let inactive = |r: &TestResponse| r.json == json!({"active": false});
    for router in [&app.router, &other] {
        within_bound(
            app.backend,
            || introspect_as(router, &s.next, &first),
            inactive,
        )
        .await;
        within_bound(
            app.backend,
            || introspect_as(router, &third, &second),
            inactive,
        )
        .await;
    }

    // Disabling the user reaches a token exchanged from a later grant of theirs.
    let later = grant(&app, &s.app_client, &s.alice, "alice").await;
    let exchanged = exchange(&app, &s.mcp, &later.access, &[("resource", NEXT)]).await;
    let exchanged = access_token(&exchanged).to_owned();
    admin::disable_user(&app.store, "alice", now())
        .await
        .unwrap();
    for router in [&app.router, &other] {
        within_bound(
            app.backend,
            || introspect_as(router, &s.next, &exchanged),
            inactive,
        )
        .await;
    }
    let response = exchange(&app, &s.mcp, &later.access, &[("resource", NEXT)]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
}

/// A subject token issued outside any grant (client credentials, the command line) is
/// its own grant: revoking it revokes what was exchanged from it. Opaque subject tokens
/// are exchanged as JWTs are.
async fn revoking_a_grantless_subject_revokes_its_exchanges(app: TestApp) {
    let s = scene(&app).await;
    let owner = app.client("owner", &[API]).await;
    for format in [None, Some(TokenFormat::Opaque)] {
        let subject = app
            .issue(issue_request(&owner, TokenUse::AccessToken, format, &[API]))
            .await;
        let response = exchange(&app, &s.mcp, &subject, &[("resource", NEXT)]).await;
        let exchanged = access_token(&response).to_owned();
        let answer = introspect_as(&app.router, &s.next, &exchanged).await;
        assert_eq!(answer.json["active"], true, "{format:?}: {answer:?}");
        assert_eq!(answer.json["sub"], "alice");
        let revoked = app.post(&owner, "/revoke", &[("token", &subject)]).await;
        assert_eq!(revoked.status, StatusCode::OK);
        let answer = introspect_as(&app.router, &s.next, &exchanged).await;
        assert_eq!(answer.json, json!({"active": false}), "{format:?}");
    }
}

both_stores!(
    a_resource_server_exchanges_the_users_token_for_the_next_service,
    the_actor_chain_nests_the_earlier_actor,
    an_actor_chain_is_bounded,
    every_unusable_subject_token_gets_one_answer,
    exchanges_are_denied_by_default,
    the_exchanged_token_expires_with_its_subject,
    ending_the_subject_grant_ends_the_exchanged_token_everywhere,
    revoking_a_grantless_subject_revokes_its_exchanges,
);

/// openid-client, a client library nobody here wrote, discovers the real binary over a
/// real socket and exchanges a token that the command line issued; the next service's
/// introspection then vouches for the new token and names the actor.
async fn a_third_party_client_exchanges_over_a_real_socket(backend: Backend) {
    use common::binary::{self, create_client, issue_token, run_json};
    if !common::oidc::oidc_present() {
        return;
    }
    let Some((db, _guard)) = common::fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (port, issuer) = binary::known_issuer_config(dir, "");
    let (owner, _) = create_client(dir, &db, &["--audience", API]);
    let (mcp, mcp_secret) = create_client(
        dir,
        &db,
        &[
            "--audience",
            API,
            "--grant-type",
            "token-exchange",
            "--exchange-target",
            NEXT,
        ],
    );
    let shown = run_json(dir, &db, &["client", "show", &mcp]);
    assert_eq!(shown["grant_types"], json!([GRANT_TYPE]));
    assert_eq!(shown["exchange_targets"], json!([NEXT]));
    let (next, next_secret) = create_client(dir, &db, &["--audience", NEXT]);
    let subject = issue_token(dir, &db, &owner, &["--audience", API]);

    let server = binary::serve_on(dir, &db, port);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider/exchange.mjs");
    let output = std::process::Command::new("node")
        .arg(script)
        .env("ISSUER", &issuer)
        .env("CLIENT_ID", &mcp)
        .env("CLIENT_SECRET", &mcp_secret)
        .env("SUBJECT_TOKEN", &subject)
        .env("RESOURCE", NEXT)
        .output()
        .expect("run node");
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "{}\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            server.log()
        )
    });
    assert!(output.status.success(), "{answer}");
    assert_eq!(answer["issued_token_type"], ACCESS_TOKEN, "{answer}");
    assert_eq!(
        answer["token_type"], "bearer",
        "openid-client writes it in lower case"
    );
    let token = answer["access_token"].as_str().expect("access_token");
    let (status, info) = binary::introspect(server.addr, &next, &next_secret, token).await;
    assert_eq!(status, 200);
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["sub"], "alice");
    assert_eq!(info["aud"], NEXT);
    assert_eq!(info["act"], json!({"sub": mcp}));
}

both_backends!(
    unusable_subject_tokens_spend_the_inactive_budget,
    a_third_party_client_exchanges_over_a_real_socket,
);
