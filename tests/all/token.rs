//! POST /token (client credentials, refresh with rotation and reuse detection) and
//! POST /revoke, against SQLite and Postgres.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{TestApp, TestClient, TestResponse, assert_error, form, issue_request, post_form};
use introspectd::admin::NewClient;
use introspectd::secret::RawToken;
use introspectd::token::opaque;
use introspectd::vocabulary::TokenUse;
use serde_json::json;

const API: &str = "https://api.example";
const OTHER_API: &str = "https://other.example";

fn assert_issued(response: &TestResponse) {
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    assert_eq!(response.headers[header::CONTENT_TYPE], "application/json");
    // RFC 6749 §5.1.
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(response.headers[header::PRAGMA], "no-cache");
    assert_eq!(response.json["token_type"], "Bearer", "{response:?}");
    assert!(response.json["access_token"].is_string(), "{response:?}");
    assert!(response.json["expires_in"].as_i64().unwrap() > 0);
}

fn text<'a>(response: &'a TestResponse, field: &str) -> &'a str {
    response.json[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {response:?}"))
}

/// A client with both grant types, `scope`, and `resources` it may obtain tokens for
/// (and introspect).
async fn scoped_client(app: &TestApp, scope: &str, resources: &[&str]) -> TestClient {
    app.app_client("app", scope, resources).await
}

async fn client_credentials(
    app: &TestApp,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> TestResponse {
    app.client_credentials(client, extra).await
}

async fn refresh(app: &TestApp, client: &TestClient, token: &str) -> TestResponse {
    refresh_with(app, client, token, &[]).await
}

async fn refresh_with(
    app: &TestApp,
    client: &TestClient,
    token: &str,
    extra: &[(&str, &str)],
) -> TestResponse {
    app.refresh(client, token, extra).await
}

async fn revoke(app: &TestApp, client: &TestClient, params: &[(&str, &str)]) -> TestResponse {
    app.post(client, "/revoke", params).await
}

async fn assert_active(app: &TestApp, client: &TestClient, token: &str) -> serde_json::Value {
    let response = app.introspect(client, token).await;
    assert_eq!(response.json["active"], true, "{response:?}");
    response.json
}

async fn assert_inactive(app: &TestApp, client: &TestClient, token: &str) {
    let response = app.introspect(client, token).await;
    assert_eq!(response.json, json!({"active": false}), "{response:?}");
}

async fn refresh_token_for(app: &TestApp, client: &TestClient, scope: Option<&str>) -> String {
    let mut request = issue_request(client, TokenUse::RefreshToken, None, &[API]);
    request.scope = scope.map(str::to_owned);
    app.issue(request).await
}

// --- client credentials (RFC 6749 §4.4) --------------------------------------------------

async fn client_credentials_issues_a_jwt_with_the_registered_scope(app: TestApp) {
    let client = scoped_client(&app, "read write", &[API]).await;
    let response = client_credentials(&app, &client, &[]).await;
    assert_issued(&response);
    assert_eq!(response.json["scope"], "read write");
    assert_eq!(response.json["expires_in"], 3_600);
    // RFC 6749 §4.4.3: no refresh token for client credentials.
    assert!(response.json.get("refresh_token").is_none());
    let token = text(&response, "access_token");
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid.as_deref(), app.state.keys.keys().signing_kid());
    let info = assert_active(&app, &client, token).await;
    assert_eq!(info["client_id"], client.id.as_str());
    assert_eq!(info["sub"], client.id.as_str(), "RFC 9068 §2.2");
    assert_eq!(info["scope"], "read write");
    assert_eq!(
        info["aud"], API,
        "no resource asked: the registered audience"
    );
    assert_eq!(info["iss"], app.config.issuer.as_str());
}

async fn client_credentials_scope_is_limited_to_the_registered_scope(app: TestApp) {
    let client = scoped_client(&app, "read write", &[]).await;
    let response = client_credentials(&app, &client, &[("scope", "read")]).await;
    assert_issued(&response);
    assert_eq!(response.json["scope"], "read");
    let info = assert_active(&app, &client, text(&response, "access_token")).await;
    assert_eq!(info["scope"], "read");
    let response = client_credentials(&app, &client, &[("scope", "read admin")]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_scope");
    let response = client_credentials(&app, &client, &[("scope", "bad\"scope")]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_scope");
}

async fn client_credentials_resource_is_limited_to_registered_audiences(app: TestApp) {
    let client = scoped_client(&app, "read", &[API, OTHER_API]).await;
    let response = client_credentials(&app, &client, &[("resource", OTHER_API)]).await;
    assert_issued(&response);
    let info = assert_active(&app, &client, text(&response, "access_token")).await;
    assert_eq!(info["aud"], OTHER_API);
    // RFC 8707 §2: several resources, each repeated parameter adding one.
    let response =
        client_credentials(&app, &client, &[("resource", API), ("resource", OTHER_API)]).await;
    assert_issued(&response);
    let info = assert_active(&app, &client, text(&response, "access_token")).await;
    assert_eq!(info["aud"], json!([API, OTHER_API]));
    for bad in [
        "https://unregistered.example",
        "not-a-uri",
        "https://api.example#x",
    ] {
        let response = client_credentials(&app, &client, &[("resource", bad)]).await;
        assert_error(&response, StatusCode::BAD_REQUEST, "invalid_target");
    }
}

async fn token_endpoint_refuses_bad_requests_with_rfc6749_codes(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    let response = app
        .post(&client, "/token", &[("grant_type", "password")])
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "unsupported_grant_type");
    let response = app.post(&client, "/token", &[("scope", "read")]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
    let response = app
        .post(&client, "/token", &[("grant_type", "refresh_token")])
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
    let body = form(&[("grant_type", "client_credentials")]);
    let response = post_form(&app.router, "/token", None, &body).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
    let wrong = common::basic(&client.id, "wrong");
    let response = post_form(&app.router, "/token", Some(&wrong), &body).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
    let response = app
        .send(Request::get("/token").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers[header::ALLOW], "POST");
}

async fn client_secret_post_authenticates_at_the_token_endpoint(app: TestApp) {
    let client = app
        .client_with(common::granted(NewClient {
            name: "post".to_owned(),
            auth_method: Some("client_secret_post".to_owned()),
            ..NewClient::default()
        }))
        .await;
    let body = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &client.id),
        ("client_secret", &client.secret),
    ]);
    assert_issued(&post_form(&app.router, "/token", None, &body).await);
}

async fn disabled_client_gets_no_token(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    introspectd::admin::disable_client(&app.store, &client.id, introspectd::token::now())
        .await
        .unwrap();
    let response = client_credentials(&app, &client, &[]).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
}

// --- refresh tokens (RFC 6749 §6, RFC 9700 §4.14.2) ------------------------------------------

async fn refresh_token_is_rotated_on_every_use(app: TestApp) {
    let client = scoped_client(&app, "read write", &[API]).await;
    let first = refresh_token_for(&app, &client, Some("read")).await;
    let response = refresh(&app, &client, &first).await;
    assert_issued(&response);
    assert_eq!(response.json["scope"], "read");
    let second = text(&response, "refresh_token").to_owned();
    assert_ne!(second, first);
    let access = text(&response, "access_token");
    let info = assert_active(&app, &client, access).await;
    assert_eq!(info["sub"], "alice", "the subject of the grant");
    assert_eq!(info["aud"], API);
    assert_eq!(info["scope"], "read");
    // The presented token is retired; the new one is live.
    assert_inactive(&app, &client, &first).await;
    let info = assert_active(&app, &client, &second).await;
    assert_eq!(info["token_use"], "refresh_token");
    let response = refresh(&app, &client, &second).await;
    assert_issued(&response);
    assert_inactive(&app, &client, &second).await;
    assert_active(&app, &client, text(&response, "refresh_token")).await;
}

async fn rotation_never_extends_the_grant(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    let mut request = issue_request(&client, TokenUse::RefreshToken, None, &[]);
    request.ttl = Some(1_000);
    let first = app.issue(request).await;
    let exp = assert_active(&app, &client, &first).await["exp"].clone();
    let response = refresh(&app, &client, &first).await;
    let second = text(&response, "refresh_token");
    assert_eq!(assert_active(&app, &client, second).await["exp"], exp);
}

async fn reused_refresh_token_revokes_its_whole_grant(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    let first = refresh_token_for(&app, &client, None).await;
    let response = refresh(&app, &client, &first).await;
    assert_issued(&response);
    let access = text(&response, "access_token").to_owned();
    let second = text(&response, "refresh_token").to_owned();
    assert_active(&app, &client, &access).await;
    // The retired token comes back: someone else holds a copy.
    let response = refresh(&app, &client, &first).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_inactive(&app, &client, &second).await;
    assert_inactive(&app, &client, &access).await;
    let response = refresh(&app, &client, &second).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
}

async fn reuse_revokes_access_tokens_of_every_rotation(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    let mut refresh_token = refresh_token_for(&app, &client, None).await;
    let mut retired = Vec::new();
    let mut access_tokens = Vec::new();
    for _ in 0..3 {
        let response = refresh(&app, &client, &refresh_token).await;
        assert_issued(&response);
        access_tokens.push(text(&response, "access_token").to_owned());
        retired.push(std::mem::replace(
            &mut refresh_token,
            text(&response, "refresh_token").to_owned(),
        ));
    }
    let response = refresh(&app, &client, &retired[1]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    for access in &access_tokens {
        assert_inactive(&app, &client, access).await;
    }
    assert_inactive(&app, &client, &refresh_token).await;
}

async fn concurrent_use_of_one_refresh_token_lets_one_win_and_revokes_the_grant(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    let token = refresh_token_for(&app, &client, None).await;
    let (a, b) = tokio::join!(
        refresh(&app, &client, &token),
        refresh(&app, &client, &token)
    );
    let (won, lost) = if a.status == StatusCode::OK {
        (a, b)
    } else {
        (b, a)
    };
    assert_issued(&won);
    assert_error(&lost, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_inactive(&app, &client, text(&won, "refresh_token")).await;
    assert_inactive(&app, &client, text(&won, "access_token")).await;
}

async fn refresh_token_of_another_client_is_invalid_grant(app: TestApp) {
    let owner = app.app_client("owner", "", &[]).await;
    let thief = app.app_client("thief", "", &[]).await;
    let token = refresh_token_for(&app, &owner, None).await;
    let response = refresh(&app, &thief, &token).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_issued(&refresh(&app, &owner, &token).await);
}

async fn refresh_scope_may_narrow_but_never_widen(app: TestApp) {
    let client = scoped_client(&app, "read write admin", &[]).await;
    let first = refresh_token_for(&app, &client, Some("read write")).await;
    let response = refresh_with(&app, &client, &first, &[("scope", "read admin")]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_scope");
    let response = refresh_with(&app, &client, &first, &[("scope", "read")]).await;
    assert_issued(&response);
    assert_eq!(response.json["scope"], "read");
    // RFC 6749 §6: the new refresh token keeps the original scope.
    let response = refresh(&app, &client, text(&response, "refresh_token")).await;
    assert_issued(&response);
    assert_eq!(response.json["scope"], "read write");
}

async fn refresh_resource_stays_within_the_grant(app: TestApp) {
    let client = scoped_client(&app, "read", &[API, OTHER_API]).await;
    let mut request = issue_request(&client, TokenUse::RefreshToken, None, &[API, OTHER_API]);
    request.scope = None;
    let token = app.issue(request).await;
    let response = refresh_with(&app, &client, &token, &[("resource", OTHER_API)]).await;
    assert_issued(&response);
    let info = assert_active(&app, &client, text(&response, "access_token")).await;
    assert_eq!(info["aud"], OTHER_API);
    let next = text(&response, "refresh_token");
    let response = refresh_with(
        &app,
        &client,
        next,
        &[("resource", "https://third.example")],
    )
    .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_target");
}

// --- revocation (RFC 7009) ----------------------------------------------------------------

async fn owner_revokes_access_tokens(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    let jwt = text(
        &client_credentials(&app, &client, &[]).await,
        "access_token",
    )
    .to_owned();
    let opaque = app.opaque_for(&client, TokenUse::AccessToken).await;
    let response = revoke(&app, &client, &[("token", &jwt)]).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    assert!(response.body.is_empty());
    assert_inactive(&app, &client, &jwt).await;
    let response = revoke(
        &app,
        &client,
        &[("token", &opaque), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_inactive(&app, &client, &opaque).await;
    // Revoking again changes nothing and is still a success.
    assert_eq!(
        revoke(&app, &client, &[("token", &jwt)]).await.status,
        StatusCode::OK
    );
}

async fn revoking_a_refresh_token_revokes_its_grant(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    let first = refresh_token_for(&app, &client, None).await;
    let response = refresh(&app, &client, &first).await;
    let access = text(&response, "access_token").to_owned();
    let second = text(&response, "refresh_token").to_owned();
    let unrelated = app.jwt_for(&client, &[]).await;
    let response = revoke(
        &app,
        &client,
        &[("token", &second), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_inactive(&app, &client, &second).await;
    assert_inactive(&app, &client, &access).await;
    assert_active(&app, &client, &unrelated).await;
    let response = refresh(&app, &client, &second).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
}

async fn revocation_of_another_clients_token_answers_as_an_unknown_one(app: TestApp) {
    let owner = app.app_client("owner", "", &[]).await;
    let rs = app.client("rs", &[API]).await;
    let jwt = app.jwt_for(&owner, &[API]).await;
    let refresh_token = refresh_token_for(&app, &owner, None).await;
    for token in [&jwt, &refresh_token] {
        let response = revoke(&app, &rs, &[("token", token)]).await;
        assert_eq!(response.status, StatusCode::OK, "{response:?}");
        assert!(response.body.is_empty());
        assert_active(&app, &owner, token).await;
    }
}

async fn revocation_answers_200_for_unknown_tokens(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    for token in [opaque::generate().expose(), "a.b.c", "x"] {
        let response = revoke(&app, &client, &[("token", token)]).await;
        assert_eq!(response.status, StatusCode::OK, "{response:?}");
    }
}

async fn wrong_hint_still_finds_the_token(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    let jwt = app.jwt_for(&client, &[]).await;
    let response = revoke(
        &app,
        &client,
        &[("token", &jwt), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_inactive(&app, &client, &jwt).await;
    let refresh_token = refresh_token_for(&app, &client, None).await;
    let response = revoke(
        &app,
        &client,
        &[
            ("token", &refresh_token),
            ("token_type_hint", "no_such_type"),
        ],
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_inactive(&app, &client, &refresh_token).await;
}

async fn revocation_needs_an_authenticated_client_and_a_token(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    let jwt = app.jwt_for(&client, &[]).await;
    let response = post_form(&app.router, "/revoke", None, &form(&[("token", &jwt)])).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
    let response = revoke(&app, &client, &[("token_type_hint", "access_token")]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
    assert_active(&app, &client, &jwt).await;
}

async fn cli_revocation_of_a_refresh_token_revokes_its_grant(app: TestApp) {
    let client = app.app_client("app", "", &[]).await;
    let first = refresh_token_for(&app, &client, None).await;
    let response = refresh(&app, &client, &first).await;
    let access = text(&response, "access_token").to_owned();
    let second = text(&response, "refresh_token").to_owned();
    introspectd::admin::revoke_token(
        &app.store,
        &app.state.keys.keys(),
        &RawToken::new(&*second),
        introspectd::token::now(),
    )
    .await
    .unwrap();
    assert_inactive(&app, &client, &access).await;
    assert_inactive(&app, &client, &second).await;
}

both_stores!(
    client_credentials_issues_a_jwt_with_the_registered_scope,
    client_credentials_scope_is_limited_to_the_registered_scope,
    client_credentials_resource_is_limited_to_registered_audiences,
    token_endpoint_refuses_bad_requests_with_rfc6749_codes,
    client_secret_post_authenticates_at_the_token_endpoint,
    disabled_client_gets_no_token,
    refresh_token_is_rotated_on_every_use,
    rotation_never_extends_the_grant,
    reused_refresh_token_revokes_its_whole_grant,
    reuse_revokes_access_tokens_of_every_rotation,
    concurrent_use_of_one_refresh_token_lets_one_win_and_revokes_the_grant,
    refresh_token_of_another_client_is_invalid_grant,
    refresh_scope_may_narrow_but_never_widen,
    refresh_resource_stays_within_the_grant,
    owner_revokes_access_tokens,
    revoking_a_refresh_token_revokes_its_grant,
    revocation_of_another_clients_token_answers_as_an_unknown_one,
    revocation_answers_200_for_unknown_tokens,
    wrong_hint_still_finds_the_token,
    revocation_needs_an_authenticated_client_and_a_token,
    cli_revocation_of_a_refresh_token_revokes_its_grant,
);
