//! What a client may obtain and learn: grant types, scope and resources denied by
//! default, `client update` taking effect at once, secret methods alike unless strict,
//! the per-client inactive-answer budget, and answers at /token and /revoke that tell
//! nothing of tokens the caller does not hold. Against SQLite and Postgres.

use crate::common;

use axum::http::{StatusCode, header};
use common::{Backend, TestApp, TestClient, TestResponse, assert_error, form, post_form};
use introspectd::admin::{self, ClientChanges, IssueToken, NewClient};
use introspectd::secret::RawToken;
use introspectd::store::Store;
use introspectd::token::{now, opaque};
use introspectd::vocabulary::TokenUse;
use serde_json::json;

const API: &str = "https://api.example";
const OTHER_API: &str = "https://other.example";

/// `client update` with the changes `change` makes.
async fn update(app: &TestApp, client: &TestClient, change: impl FnOnce(&mut ClientChanges)) {
    let mut changes = ClientChanges::default();
    change(&mut changes);
    admin::update_client(&app.store, &client.id, changes, introspectd::token::now())
        .await
        .expect("update client");
}

fn grant_types(names: &[&str]) -> Option<Vec<String>> {
    Some(names.iter().map(|n| (*n).to_owned()).collect())
}

fn access_token(response: &TestResponse) -> String {
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    response.json["access_token"].as_str().unwrap().to_owned()
}

async fn refresh_token(app: &TestApp, client: &TestClient, scope: &str, aud: &[&str]) -> String {
    let mut request = common::issue_request(client, TokenUse::RefreshToken, None, aud);
    request.scope = Some(scope.to_owned());
    app.issue(request).await
}

/// Header names and values, sorted.
type Headers = Vec<(String, Vec<u8>)>;

/// Everything a caller sees of an answer but the request id, which differs per request.
fn seen(response: &TestResponse) -> (StatusCode, Headers, Vec<u8>) {
    let mut headers: Vec<(String, Vec<u8>)> = response
        .headers
        .iter()
        .filter(|(name, _)| name.as_str() != "x-request-id")
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect();
    headers.sort();
    (response.status, headers, response.body.to_vec())
}

// --- deny by default ------------------------------------------------------------------

/// Two clients registered as a gateway is: neither may mint a token, with any scope.
async fn a_client_registered_to_introspect_mints_nothing(app: TestApp) {
    let first = app.client("gateway-1", &[API]).await;
    let second = app.client("gateway-2", &[API]).await;
    let response = app
        .client_credentials(&first, &[("scope", "admin root:all")])
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "unauthorized_client");
    let response = app.client_credentials(&first, &[]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "unauthorized_client");
    // Granted client_credentials but no scope and no resource: it gets neither.
    update(&app, &first, |c| {
        c.grant_types = grant_types(&["client_credentials"]);
    })
    .await;
    let response = app
        .client_credentials(&first, &[("scope", "admin root:all")])
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_scope");
    let response = app.client_credentials(&first, &[("resource", API)]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_target");
    let token = access_token(&app.client_credentials(&first, &[]).await);
    let own = app.introspect(&first, &token).await.json;
    assert_eq!(own["active"], true);
    assert!(
        own.get("scope").is_none() && own.get("aud").is_none(),
        "{own}"
    );
    let response = app.introspect(&second, &token).await;
    assert_eq!(response.json, json!({"active": false}));
}

async fn refresh_needs_its_grant_type(app: TestApp) {
    let client = app
        .client_with(NewClient {
            name: "cc-only".to_owned(),
            grant_types: vec!["client_credentials".to_owned()],
            ..NewClient::default()
        })
        .await;
    let token = refresh_token(&app, &client, "", &[]).await;
    let response = app.refresh(&client, &token, &[]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "unauthorized_client");
    access_token(&app.client_credentials(&client, &[]).await);
}

async fn audiences_and_resources_are_separate(app: TestApp) {
    let client = app
        .client_with(NewClient {
            name: "both".to_owned(),
            audiences: vec![API.to_owned()],
            resources: vec![OTHER_API.to_owned()],
            grant_types: vec!["client_credentials".to_owned()],
            ..NewClient::default()
        })
        .await;
    let token = access_token(&app.client_credentials(&client, &[]).await);
    assert_eq!(app.introspect(&client, &token).await.json["aud"], OTHER_API);
    // It may introspect for API, not obtain tokens for it.
    let response = app.client_credentials(&client, &[("resource", API)]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_target");
    let owner = app.client("owner", &[]).await;
    let for_api = app.jwt_for(&owner, &[API]).await;
    assert_eq!(app.introspect(&client, &for_api).await.json["active"], true);
    let for_other = app.jwt_for(&owner, &[OTHER_API]).await;
    assert_eq!(
        app.introspect(&client, &for_other).await.json,
        json!({"active": false})
    );
    let shown = admin::show_client(&app.store, &client.id).await.unwrap();
    assert_eq!(shown.audiences, vec![API]);
    assert_eq!(shown.resources, vec![OTHER_API]);
    assert_eq!(shown.grant_types, vec!["client_credentials"]);
}

/// `token issue` is the operator's own act: no grant type, scope or resource limits it.
async fn token_issue_stays_unlimited(app: TestApp) {
    let client = app.client("bare", &[]).await;
    let rs = app.client("rs", &[API]).await;
    let token = app
        .issue(IssueToken {
            scope: Some("admin".to_owned()),
            ..common::issue_request(&client, TokenUse::AccessToken, None, &[API])
        })
        .await;
    let info = app.introspect(&rs, &token).await.json;
    assert_eq!(
        (info["active"].clone(), info["scope"].clone()),
        (json!(true), json!("admin"))
    );
}

// --- client update --------------------------------------------------------------------

/// An update goes through the same change path as disable: the running router, its
/// client cache warm, answers the next request with the new record.
async fn an_update_takes_effect_on_the_next_request(app: TestApp) {
    let client = app.app_client("app", "read write", &[API]).await;
    let token = access_token(&app.client_credentials(&client, &[]).await);
    let owner = app.client("owner", &[]).await;
    let for_other = app.jwt_for(&owner, &[OTHER_API]).await;
    assert_eq!(
        app.introspect(&client, &for_other).await.json["active"],
        false
    );
    update(&app, &client, |c| {
        c.scope = Some("read".to_owned());
        c.audiences = Some(vec![OTHER_API.to_owned()]);
    })
    .await;
    let response = app.client_credentials(&client, &[("scope", "write")]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_scope");
    assert_eq!(
        app.introspect(&client, &for_other).await.json["active"],
        true
    );
    assert_eq!(app.introspect(&client, &token).await.json["active"], true);
    update(&app, &client, |c| {
        c.grant_types = Some(vec![]);
    })
    .await;
    let response = app.client_credentials(&client, &[]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "unauthorized_client");
    let shown = admin::show_client(&app.store, &client.id).await.unwrap();
    assert_eq!(shown.scope, "read", "omitted attributes are kept");
    assert_eq!(shown.resources, vec![API]);
    assert!(shown.grant_types.is_empty());
    let unknown = admin::update_client(
        &app.store,
        "nobody",
        ClientChanges::default(),
        introspectd::token::now(),
    )
    .await;
    assert!(matches!(unknown, Err(admin::AdminError::UnknownClient(_))));
    let switch = ClientChanges {
        auth_method: Some("private_key_jwt".to_owned()),
        ..ClientChanges::default()
    };
    assert!(
        admin::update_client(&app.store, &client.id, switch, introspectd::token::now())
            .await
            .is_err()
    );
}

/// A refresh is judged by what the client may hold now; the grant itself keeps what it
/// was given, so widening the client again restores it.
async fn narrowing_a_client_limits_its_existing_grants(app: TestApp) {
    let client = app.app_client("app", "read write", &[API, OTHER_API]).await;
    let first = refresh_token(&app, &client, "read write", &[API, OTHER_API]).await;
    update(&app, &client, |c| {
        c.scope = Some("read".to_owned());
        c.resources = Some(vec![API.to_owned()]);
    })
    .await;
    let response = app.refresh(&client, &first, &[]).await;
    let access = access_token(&response);
    assert_eq!(response.json["scope"], "read");
    let info = app.introspect(&client, &access).await.json;
    assert_eq!(
        (info["scope"].clone(), info["aud"].clone()),
        (json!("read"), json!(API))
    );
    let next = response.json["refresh_token"].as_str().unwrap().to_owned();
    let response = app.refresh(&client, &next, &[("scope", "write")]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_scope");
    let response = app
        .refresh(&client, &next, &[("resource", OTHER_API)])
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_target");
    // Without the refresh_token grant type the grant cannot be used, and is not lost.
    update(&app, &client, |c| {
        c.grant_types = grant_types(&["client_credentials"]);
    })
    .await;
    let response = app.refresh(&client, &next, &[]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "unauthorized_client");
    update(&app, &client, |c| {
        c.grant_types = grant_types(&["refresh_token"]);
        c.scope = Some("read write".to_owned());
        c.resources = Some(vec![API.to_owned(), OTHER_API.to_owned()]);
    })
    .await;
    let response = app.refresh(&client, &next, &[]).await;
    assert_eq!(response.json["scope"], "read write", "{response:?}");
    let info = app.introspect(&client, &access_token(&response)).await.json;
    assert_eq!(info["aud"], json!([API, OTHER_API]));
    // Nothing registered any more: the access token carries no scope and no audience.
    update(&app, &client, |c| {
        c.scope = Some(String::new());
        c.resources = Some(vec![]);
    })
    .await;
    let next = response.json["refresh_token"].as_str().unwrap().to_owned();
    let response = app.refresh(&client, &next, &[]).await;
    assert!(response.json.get("scope").is_none(), "{response:?}");
    let info = app.introspect(&client, &access_token(&response)).await.json;
    assert!(
        info.get("aud").is_none() && info.get("scope").is_none(),
        "{info}"
    );
}

// --- authentication methods -----------------------------------------------------------

async fn with_post(app: &TestApp, client: &TestClient, token: &str) -> TestResponse {
    let body = form(&[
        ("token", token),
        ("client_id", &client.id),
        ("client_secret", &client.secret),
    ]);
    post_form(&app.router, "/introspect", None, &body).await
}

async fn secret_clients_accept_basic_and_post_unless_strict(app: TestApp) {
    let basic = app.client("basic", &[]).await;
    let post = app
        .client_with(NewClient {
            name: "post".to_owned(),
            auth_method: Some("client_secret_post".to_owned()),
            ..NewClient::default()
        })
        .await;
    assert_eq!(with_post(&app, &basic, "x").await.status, StatusCode::OK);
    assert_eq!(app.introspect(&post, "x").await.status, StatusCode::OK);
    let strict = app
        .client_with(NewClient {
            name: "strict".to_owned(),
            strict_auth_method: true,
            ..NewClient::default()
        })
        .await;
    assert_eq!(app.introspect(&strict, "x").await.status, StatusCode::OK);
    let response = with_post(&app, &strict, "x").await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
    update(&app, &strict, |c| {
        c.strict_auth_method = Some(false);
    })
    .await;
    assert_eq!(with_post(&app, &strict, "x").await.status, StatusCode::OK);
    update(&app, &post, |c| {
        c.strict_auth_method = Some(true);
    })
    .await;
    let response = app.introspect(&post, "x").await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
}

// --- answers that could tell whether a token exists ------------------------------------

/// Unknown, expired, revoked, another client's (live or rotated), an access token, a JWT:
/// one `invalid_grant` answer, byte for byte; and another client's presentation harms
/// nothing.
async fn refresh_failures_are_one_answer(app: TestApp) {
    let owner = app.app_client("owner", "", &[]).await;
    let caller = app.app_client("caller", "", &[]).await;
    let owners_live = refresh_token(&app, &owner, "", &[]).await;
    let owners_rotated = refresh_token(&app, &owner, "", &[]).await;
    let rotated_to = app.refresh(&owner, &owners_rotated, &[]).await;
    let owners_next = rotated_to.json["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = refresh_token(&app, &caller, "", &[]).await;
    admin::revoke_token(
        &app.store,
        &app.state.keys.keys(),
        &RawToken::new(&*revoked),
        introspectd::token::now(),
    )
    .await
    .unwrap();
    let expired = common::insert_refresh_token(&app.store, &caller, now() - 1).await;
    let access = app.opaque_for(&caller, TokenUse::AccessToken).await;
    let jwt = app.jwt_for(&caller, &[]).await;
    let unknown = opaque::generate().expose().to_owned();
    let response = app.refresh(&caller, &unknown, &[]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    let expected = seen(&response);
    for token in [
        &owners_live,
        &owners_rotated,
        &revoked,
        &expired,
        &access,
        &jwt,
        &"x".to_owned(),
    ] {
        let response = app.refresh(&caller, token, &[]).await;
        assert_eq!(seen(&response), expected, "{response:?}");
    }
    // The owner's grants are untouched by the other client's attempts.
    access_token(&app.refresh(&owner, &owners_live, &[]).await);
    access_token(&app.refresh(&owner, &owners_next, &[]).await);
    // The owner's own reuse revokes its grant and answers the same.
    let response = app.refresh(&owner, &owners_rotated, &[]).await;
    assert_eq!(seen(&response), expected);
}

async fn revoke_answers_another_clients_token_as_an_unknown_one(app: TestApp) {
    let owner = app.app_client("owner", "", &[API]).await;
    let caller = app.client("caller", &[API]).await;
    let jwt = app.jwt_for(&owner, &[API]).await;
    let opaque_access = app.opaque_for(&owner, TokenUse::AccessToken).await;
    let refresh_token = refresh_token(&app, &owner, "", &[]).await;
    let unknown = opaque::generate().expose().to_owned();
    let expected = seen(&app.post(&caller, "/revoke", &[("token", &unknown)]).await);
    assert_eq!(expected.0, StatusCode::OK);
    for token in [&jwt, &opaque_access, &refresh_token] {
        for hint in ["access_token", "refresh_token"] {
            let params = [("token", token.as_str()), ("token_type_hint", hint)];
            let response = app.post(&caller, "/revoke", &params).await;
            assert_eq!(seen(&response), expected, "{response:?}");
        }
        let info = app.introspect(&owner, token).await.json;
        assert_eq!(info["active"], true, "another client's token stays valid");
    }
}

/// Each answer that may tell whether a token exists spends the caller's budget: inactive
/// introspection, /revoke of an unknown or another client's token, `invalid_grant`.
async fn telling_answers_spend_the_inactive_budget(backend: Backend) {
    common::run_with(
        backend,
        |config| {
            config.rate_limit.enabled = true;
            config.rate_limit.inactive_per_client = 3;
        },
        |app| async move {
            let owner = app.app_client("owner", "", &[]).await;
            let caller = app.app_client("caller", "", &[]).await;
            let owners = app.jwt_for(&owner, &[]).await;
            let unknown = opaque::generate().expose().to_owned();
            // The caller's own revocation tells it nothing new and costs nothing.
            let own = app.jwt_for(&caller, &[]).await;
            for _ in 0..4 {
                let response = app.post(&caller, "/revoke", &[("token", &own)]).await;
                assert_eq!(response.status, StatusCode::OK);
            }
            let revoked = app.post(&caller, "/revoke", &[("token", &owners)]).await;
            assert_eq!(revoked.status, StatusCode::OK);
            let revoked = app.post(&caller, "/revoke", &[("token", &unknown)]).await;
            assert_eq!(revoked.status, StatusCode::OK);
            let response = app.refresh(&caller, &unknown, &[]).await;
            assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
            for response in [
                app.introspect(&caller, &unknown).await,
                app.post(&caller, "/revoke", &[("token", &unknown)]).await,
                app.refresh(&caller, &unknown, &[]).await,
            ] {
                assert_eq!(
                    response.status,
                    StatusCode::TOO_MANY_REQUESTS,
                    "{response:?}"
                );
                assert!(response.headers.contains_key(header::RETRY_AFTER));
            }
            // Other clients keep theirs; a client's own setting replaces the default.
            assert_eq!(
                app.introspect(&owner, &unknown).await.status,
                StatusCode::OK
            );
            update(&app, &owner, |c| {
                c.inactive_budget = Some("off".to_owned());
            })
            .await;
            for _ in 0..10 {
                assert_eq!(
                    app.introspect(&owner, &unknown).await.status,
                    StatusCode::OK
                );
            }
            let limited = app
                .client_with(NewClient {
                    name: "limited".to_owned(),
                    inactive_budget: Some("1".to_owned()),
                    ..NewClient::default()
                })
                .await;
            assert_eq!(
                app.introspect(&limited, &unknown).await.status,
                StatusCode::OK
            );
            let response = app.introspect(&limited, &unknown).await;
            assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
        },
    )
    .await;
}

/// No error body repeats what the request sent.
async fn error_bodies_never_echo_input(app: TestApp) {
    const MARK: &str = "zzhostilezz";
    let client = app.app_client("app", "read", &[API]).await;
    let refresh_token = refresh_token(&app, &client, "read", &[API]).await;
    let scopes = ["zzhostilezz\"x", "read zzhostilezz", "<zzhostilezz>"];
    let resources = [
        "https://zzhostilezz.example",
        "zzhostilezz",
        "https://api.example#zzhostilezz",
    ];
    let mut responses = Vec::new();
    for scope in scopes {
        responses.push(app.client_credentials(&client, &[("scope", scope)]).await);
        responses.push(
            app.refresh(&client, &refresh_token, &[("scope", scope)])
                .await,
        );
    }
    for resource in resources {
        responses.push(
            app.client_credentials(&client, &[("resource", resource)])
                .await,
        );
        responses.push(
            app.refresh(&client, &refresh_token, &[("resource", resource)])
                .await,
        );
    }
    responses.push(app.post(&client, "/token", &[("grant_type", MARK)]).await);
    responses.push(app.refresh(&client, MARK, &[]).await);
    for path in ["/token", "/revoke", "/introspect"] {
        let repeated = format!("{MARK}=1&{MARK}=2&token=t&grant_type=client_credentials");
        responses.push(post_form(&app.router, path, Some(&client.basic()), &repeated).await);
        let hostile_id = form(&[
            ("client_id", MARK),
            ("client_secret", MARK),
            ("token", MARK),
        ]);
        responses.push(post_form(&app.router, path, None, &hostile_id).await);
        let basic = common::basic(MARK, MARK);
        responses.push(post_form(&app.router, path, Some(&basic), "token=t").await);
    }
    let mut errors = 0;
    for response in &responses {
        let body = String::from_utf8_lossy(&response.body).to_lowercase();
        assert!(!body.contains(MARK), "{response:?}");
        errors += usize::from(response.status.is_client_error());
    }
    assert!(errors >= responses.len() - 2, "most of these are refused");
}

// --- migration ------------------------------------------------------------------------

/// Migrates a fresh database up to `last`, writes a client and a token as that schema
/// had them, then applies the remaining migrations.
async fn migration_keeps_existing_clients_introspecting_and_grants_nothing(backend: Backend) {
    let Some((url, _db)) = common::fresh_db(backend).await else {
        return;
    };
    let config = common::test_config(url.clone());
    let store = Store::connect(&config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(store.backend());
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0005" {
            std::fs::copy(&path, dir.path().join(name)).unwrap();
        }
    }
    let old = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    let insert_client = "INSERT INTO clients (client_id, name, secret_hash, auth_method, \
                         scope, audiences, disabled, created_at, updated_at) VALUES \
                         ('gw', 'gateway', 'x', 'client_secret_basic', 'read', \
                         '[\"https://api.example\"]', FALSE, 1, 1)";
    let digest = opaque::digest("old-token");
    let insert_token = "INSERT INTO tokens (digest, token_use, client_id, audiences, jti, \
                        iat, exp) VALUES ($1, 'access_token', 'gw', '[]', 'j', 1, $2)";
    // The same statements on either pool.
    macro_rules! seed {
        ($pool:expr) => {{
            old.run($pool).await.unwrap();
            sqlx::query(insert_client).execute($pool).await.unwrap();
            sqlx::query(insert_token)
                .bind(&digest[..])
                .bind(now() + 600)
                .execute($pool)
                .await
                .unwrap();
        }};
    }
    match store.backend() {
        "sqlite" => seed!(&sqlx::SqlitePool::connect(url.as_str()).await.unwrap()),
        _ => seed!(&sqlx::PgPool::connect(url.as_str()).await.unwrap()),
    }
    store.migrate().await.unwrap();
    let client = store.client_by_id("gw").await.unwrap().unwrap();
    assert_eq!(client.audiences, vec!["https://api.example"]);
    assert_eq!(client.scope, "read");
    assert_eq!(client.policy, introspectd::store::ClientPolicy::default());
    assert!(store.token_by_digest(&digest).await.unwrap().is_some());
    store.close().await;
}

both_stores!(
    a_client_registered_to_introspect_mints_nothing,
    refresh_needs_its_grant_type,
    audiences_and_resources_are_separate,
    token_issue_stays_unlimited,
    an_update_takes_effect_on_the_next_request,
    narrowing_a_client_limits_its_existing_grants,
    secret_clients_accept_basic_and_post_unless_strict,
    refresh_failures_are_one_answer,
    revoke_answers_another_clients_token_as_an_unknown_one,
    error_bodies_never_echo_input,
);

both_backends!(
    telling_answers_spend_the_inactive_budget,
    migration_keeps_existing_clients_introspecting_and_grants_nothing,
);
