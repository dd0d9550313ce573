//! Dynamic client registration (RFC 7591) through the real router, on both stores: every
//! rule of the metadata, the registered clients themselves (whole bodies against their
//! snapshots), the budget per address, the initial access token (against the real
//! binary, which reads it from its environment), CORS, the metadata field, and the
//! deletion of self-registered clients nobody uses.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{
    Backend, TestApp, TestResponse, assert_error, basic, form, post_form, registration_request,
};
use introspectd::admin::{self, NewClient};
use introspectd::registration;
use introspectd::store::TOUCH_EVERY;
use introspectd::token::now;
use introspectd::vocabulary::{AuthMethod, ClientOrigin};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

async fn register(app: &TestApp, body: Value) -> TestResponse {
    app.send(registration_request(&body, "192.0.2.1")).await
}

/// An app whose self-registered clients may hold `mcp` and `read`.
async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    common::run_with(
        backend,
        |config| config.registration.max_scope = Some("mcp read".to_owned()),
        test,
    )
    .await;
}

macro_rules! both_stores_with_scopes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::run($crate::common::Backend::Sqlite, super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::run($crate::common::Backend::Postgres, super::$name).await;
            }
        }
    )*};
}

/// A value that must never come back in an error body.
const MARK: &str = "MARKED";

async fn every_field_is_checked_and_named_without_its_value(app: TestApp) {
    let ok = "https://app.example/cb";
    let cases: Vec<(&str, Value, &str)> = vec![
        ("invalid_redirect_uri", json!({}), "redirect_uris"),
        (
            "invalid_redirect_uri",
            json!({"redirect_uris": []}),
            "redirect_uris",
        ),
        (
            "invalid_redirect_uri",
            json!({"redirect_uris": MARK}),
            "redirect_uris",
        ),
        (
            "invalid_redirect_uri",
            json!({"redirect_uris": [7]}),
            "redirect_uris",
        ),
        (
            "invalid_redirect_uri",
            json!({"redirect_uris": [ok, format!("http://{MARK}.example/cb")]}),
            "redirect_uris[1]",
        ),
        (
            "invalid_redirect_uri",
            json!({"redirect_uris": [format!("https://a.example/cb#{MARK}")]}),
            "redirect_uris[0]",
        ),
        (
            "invalid_redirect_uri",
            json!({"redirect_uris": [format!("{MARK}:/cb")]}),
            "redirect_uris[0]",
        ),
        (
            "invalid_redirect_uri",
            json!({"redirect_uris": vec![ok; 11]}),
            "redirect_uris",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "token_endpoint_auth_method": MARK}),
            "token_endpoint_auth_method",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "token_endpoint_auth_method": "private_key_jwt"}),
            "token_endpoint_auth_method",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "token_endpoint_auth_method": 1}),
            "token_endpoint_auth_method",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "grant_types": [MARK]}),
            "grant_types",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "grant_types": ["authorization_code", "client_credentials"]}),
            "grant_types",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "grant_types": ["refresh_token"]}),
            "grant_types",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "grant_types": "authorization_code"}),
            "grant_types",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "response_types": [MARK]}),
            "response_types",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "response_types": []}),
            "response_types",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "scope": format!("mcp {MARK}")}),
            "scope",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "scope": format!("\"{MARK}")}),
            "scope",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "scope": ["mcp"]}),
            "scope",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "client_name": MARK.repeat(50)}),
            "client_name",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "client_name": format!("{MARK}\u{7}")}),
            "client_name",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "client_name": {"a": MARK}}),
            "client_name",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "client_uri": format!("http://{MARK}.example/")}),
            "client_uri",
        ),
        (
            "invalid_client_metadata",
            json!({"redirect_uris": [ok], "logo_uri": format!("javascript:{MARK}")}),
            "logo_uri",
        ),
        ("invalid_client_metadata", json!([MARK]), "body"),
    ];
    for (error, body, field) in cases {
        let response = register(&app, body.clone()).await;
        assert_error(&response, StatusCode::BAD_REQUEST, error);
        let description = response.json["error_description"].as_str().unwrap();
        assert!(description.contains(field), "{body}: {description}");
        let text = String::from_utf8_lossy(&response.body);
        assert!(!text.contains(MARK), "{body}: {description}");
    }
    assert!(
        app.store.list_clients().await.unwrap().is_empty(),
        "nothing refused was registered"
    );
}

async fn the_request_must_be_json(app: TestApp) {
    let mut request = registration_request(
        &json!({"redirect_uris": ["https://a.example/"]}),
        "192.0.2.1",
    );
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    let response = app.send(request).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
    let request = Request::post("/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"redirect_uris\": [\"https://a.example/\""))
        .unwrap();
    let response = app.send(request).await;
    assert_error(
        &response,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    );
    let big = json!({"redirect_uris": ["https://a.example/"], "x": "a".repeat(64 * 1024)});
    let response = register(&app, big).await;
    assert_error(&response, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request");
    let response = app
        .send(Request::get("/register").body(Body::empty()).unwrap())
        .await;
    assert_error(&response, StatusCode::METHOD_NOT_ALLOWED, "invalid_request");
}

async fn a_public_client_registers_with_its_metadata(app: TestApp) {
    let response = register(
        &app,
        json!({
            "client_name": "  Inspector  ",
            "redirect_uris": ["http://127.0.0.1:6274/oauth/callback", "com.example.app:/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "mcp",
            "client_uri": "https://inspector.example/",
            "logo_uri": "https://inspector.example/logo.png",
            "software_id": "ignored",
            "contacts": ["ignored@example.com"],
        }),
    )
    .await;
    assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
    let issued_at = response.json["client_id_issued_at"].as_i64().unwrap();
    assert!((now() - issued_at).abs() < 60);
    insta::assert_json_snapshot!("public_client", response.json, {
        ".client_id" => "[client_id]",
        ".client_id_issued_at" => "[client_id_issued_at]",
    });
    let client_id = response.json["client_id"].as_str().unwrap();
    let shown = admin::show_client(&app.store, client_id).await.unwrap();
    assert_eq!(shown.origin, ClientOrigin::Dynamic);
    assert_eq!(shown.name, "Inspector");
    assert_eq!(shown.auth_method, AuthMethod::None);
    assert_eq!(shown.scope, "mcp");
    assert_eq!(shown.grant_types, ["authorization_code", "refresh_token"]);
    assert!(shown.resources.is_empty() && shown.audiences.is_empty());
    assert_eq!(
        shown.logo_uri.as_deref(),
        Some("https://inspector.example/logo.png")
    );
    let listed = serde_json::to_value(admin::list_clients(&app.store).await.unwrap()).unwrap();
    assert_eq!(listed[0]["origin"], "dynamic");
}

async fn a_minimal_registration_gets_the_defaults_and_a_secret(app: TestApp) {
    let response = register(&app, json!({"redirect_uris": ["https://app.example/cb"]})).await;
    assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
    insta::assert_json_snapshot!("confidential_client", response.json, {
        ".client_id" => "[client_id]",
        ".client_id_issued_at" => "[client_id_issued_at]",
        ".client_secret" => "[client_secret]",
    });
    let (id, secret) = (
        response.json["client_id"].as_str().unwrap(),
        response.json["client_secret"].as_str().unwrap(),
    );
    let stored = app.store.client_by_id(id).await.unwrap().unwrap();
    assert!(stored.secret_hash.expose().starts_with("$argon2id$"));
    assert!(!stored.secret_hash.expose().contains(secret));
    // The secret authenticates; the client is simply not one that gets tokens without
    // a user.
    let grant = form(&[("grant_type", "client_credentials")]);
    let response = post_form(&app.router, "/token", Some(&basic(id, secret)), &grant).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "unauthorized_client");
    let wrong = basic(id, "not-the-secret");
    let response = post_form(&app.router, "/token", Some(&wrong), &grant).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
}

async fn client_secret_post_is_registered_as_asked(app: TestApp) {
    let body = json!({
        "redirect_uris": ["https://app.example/cb"],
        "token_endpoint_auth_method": "client_secret_post",
        "scope": null,
    });
    let response = register(&app, body).await;
    assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
    assert_eq!(
        response.json["token_endpoint_auth_method"],
        "client_secret_post"
    );
    assert_eq!(response.json["client_secret_expires_at"], 0);
    assert_eq!(
        response.json["scope"], "mcp read",
        "all of max_scope when not given"
    );
}

/// MCP 2026-07-28 (OpenID Connect registration §2): `application_type` is `native` or
/// `web`, inferred from the redirect URIs when absent, always answered and kept.
async fn application_type_is_inferred_given_and_returned(app: TestApp) {
    let native = ["http://127.0.0.1/cb"];
    for (body, expected) in [
        (json!({"redirect_uris": ["https://app.example/cb"]}), "web"),
        (json!({"redirect_uris": native}), "native"),
        (json!({"redirect_uris": ["com.example.app:/cb"]}), "native"),
        (
            json!({"redirect_uris": ["http://127.0.0.1:33418", "https://vscode.dev/redirect"]}),
            "native",
        ),
        (
            json!({"redirect_uris": ["com.example.app:/cb"], "application_type": "native"}),
            "native",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "application_type": "web"}),
            "web",
        ),
        (
            json!({"redirect_uris": native, "application_type": null}),
            "native",
        ),
    ] {
        let response = register(&app, body.clone()).await;
        assert_eq!(response.status, StatusCode::CREATED, "{body}: {response:?}");
        assert_eq!(response.json["application_type"], expected, "{body}");
        let id = response.json["client_id"].as_str().unwrap();
        let shown =
            serde_json::to_value(admin::show_client(&app.store, id).await.unwrap()).unwrap();
        assert_eq!(shown["application_type"], expected, "kept: {body}");
    }
    let registered = app.store.list_clients().await.unwrap().len();
    for (body, error) in [
        (
            json!({"redirect_uris": native, "application_type": "web"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["com.example.app:/cb"], "application_type": "web"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb", "http://127.0.0.1/cb"],
                "application_type": "web"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "application_type": "native"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": native, "application_type": MARK}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": native, "application_type": ["native"]}),
            "invalid_client_metadata",
        ),
    ] {
        let response = register(&app, body.clone()).await;
        assert_error(&response, StatusCode::BAD_REQUEST, error);
        let description = response.json["error_description"].as_str().unwrap();
        assert!(
            description.contains("redirect_uris") || description.contains("application_type"),
            "{body}: {description}"
        );
        assert!(!String::from_utf8_lossy(&response.body).contains(MARK));
    }
    assert_eq!(app.store.list_clients().await.unwrap().len(), registered);
    // An operator's client never said: nothing is shown.
    let operator = app.client("gateway", &[]).await;
    let shown =
        serde_json::to_value(admin::show_client(&app.store, &operator.id).await.unwrap()).unwrap();
    assert_eq!(shown.get("application_type"), None);
}

/// Unicode format characters (category Cf: bidi overrides and isolates, the Arabic
/// letter mark, zero-width characters) can make a name read as another on the consent
/// page: refused, at `/register` and from the command line alike.
async fn names_with_format_characters_are_refused(app: TestApp) {
    let ok = "https://app.example/cb";
    for format in [
        '\u{202E}', '\u{202D}', '\u{200B}', '\u{200D}', '\u{2066}', '\u{2067}', '\u{2068}',
        '\u{2069}', '\u{061C}', '\u{200F}', '\u{FEFF}',
    ] {
        let name = format!("Good App{format}{MARK}");
        let response = register(&app, json!({"redirect_uris": [ok], "client_name": name})).await;
        assert_error(
            &response,
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        );
        let description = response.json["error_description"].as_str().unwrap();
        assert!(description.contains("client_name"), "{description}");
        assert!(description.contains("format characters"), "{description}");
        assert!(!String::from_utf8_lossy(&response.body).contains(MARK));

        let created = admin::create_client(
            &app.store,
            NewClient {
                name: name.clone(),
                ..NewClient::default()
            },
            now(),
        )
        .await;
        assert!(created.is_err(), "client create --name with {format:?}");
    }
    assert!(app.store.list_clients().await.unwrap().is_empty());
    // Renaming is held to the same rule.
    let client = app.client("gateway", &[]).await;
    let renamed = admin::update_client(
        &app.store,
        &client.id,
        admin::ClientChanges {
            name: Some("gate\u{202E}yawa".to_owned()),
            ..admin::ClientChanges::default()
        },
        now(),
    )
    .await;
    assert!(renamed.is_err());
    // Letters of every script, and spaces, are names.
    let response = register(
        &app,
        json!({"redirect_uris": [ok], "client_name": "Éditeur 日本 عربي"}),
    )
    .await;
    assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
}

/// RFC 8252 §7.1: a private-use scheme names no host, and any application may claim
/// it. The consent page says the browser returns to "an application on this device",
/// never the scheme as if it were a host; an error goes back there with `iss` too.
async fn a_private_use_redirect_is_an_application_on_this_device(app: TestApp) {
    const REDIRECT: &str = "com.example.app:/oauth/cb";
    let response = register(
        &app,
        json!({"client_name": "Phone App", "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
    assert_eq!(response.json["application_type"], "native");
    let client_id = response.json["client_id"].as_str().unwrap();
    app.user("alice", "correct horse battery").await;
    let query = form(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
        ("state", "st4te"),
    ]);
    let mut browser = common::Browser::new(&app);
    let login = browser.get(&format!("/authorize?{query}")).await;
    assert_eq!(login.status, StatusCode::OK);
    let fields = [
        ("request", common::hidden_field(&login, "request")),
        ("csrf_token", common::hidden_field(&login, "csrf_token")),
        ("username", "alice".to_owned()),
        ("password", "correct horse battery".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let signed_in = browser.post("/login", &fields).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let next = signed_in.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let consent = browser.get(&format!("/{next}")).await;
    let page = common::page_text(&consent);
    assert_eq!(consent.status, StatusCode::OK, "{page}");
    assert!(page.contains("Phone App"), "{page}");
    assert!(
        page.contains("<dd>an application on this device</dd>"),
        "{page}"
    );
    assert!(!page.contains("class=\"host\">com.example.app"), "{page}");
    let fields = [
        ("request", common::hidden_field(&consent, "request")),
        ("csrf_token", common::hidden_field(&consent, "csrf_token")),
        ("decision", "deny".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let denied = browser.post("/consent", &fields).await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER);
    let to = denied.headers[header::LOCATION].to_str().unwrap();
    assert!(to.starts_with(&format!("{REDIRECT}?")), "{to}");
    assert!(to.contains("error=access_denied"), "{to}");
    assert!(to.contains("iss=http%3A%2F%2F127.0.0.1%3A8080"), "{to}");
}

both_stores_with_scopes!(
    application_type_is_inferred_given_and_returned,
    names_with_format_characters_are_refused,
    a_private_use_redirect_is_an_application_on_this_device,
    every_field_is_checked_and_named_without_its_value,
    the_request_must_be_json,
    a_public_client_registers_with_its_metadata,
    a_minimal_registration_gets_the_defaults_and_a_secret,
    client_secret_post_is_registered_as_asked,
);

/// Without `registration.max_scope`, the scopes the metadata offers; without those, none.
async fn max_scope_defaults_to_scopes_supported(backend: Backend) {
    let asked = json!({"redirect_uris": ["https://a.example/"], "scope": "files"});
    common::run_with(
        backend,
        |config| {
            config
                .metadata
                .insert("scopes_supported".to_owned(), json!(["files", "mail"]));
        },
        async |app| {
            let response = register(&app, asked.clone()).await;
            assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
            let response = register(&app, json!({"redirect_uris": ["https://a.example/"]})).await;
            assert_eq!(response.json["scope"], "files mail");
        },
    )
    .await;
    common::run(backend, async |app| {
        let response = register(&app, asked.clone()).await;
        assert_error(
            &response,
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        );
        let response = register(&app, json!({"redirect_uris": ["https://a.example/"]})).await;
        assert_eq!(response.status, StatusCode::CREATED);
        assert_eq!(response.json.get("scope"), None, "no scope at all");
    })
    .await;
}

/// `rate_limit.registrations_per_hour` per address: every request counts, the next one
/// gets 429 with Retry-After, and other addresses keep their own budget.
async fn registrations_are_budgeted_per_address(backend: Backend) {
    common::run_with(
        backend,
        |config| {
            config.rate_limit.enabled = true;
            config.rate_limit.registrations_per_hour = 3;
        },
        async |app| {
            let good = json!({"redirect_uris": ["https://a.example/"]});
            let bad = json!({"redirect_uris": []});
            for body in [&good, &bad, &good] {
                let response = app.send(registration_request(body, "198.51.100.7")).await;
                assert_ne!(response.status, StatusCode::TOO_MANY_REQUESTS);
            }
            let response = app.send(registration_request(&good, "198.51.100.7")).await;
            assert_error(&response, StatusCode::TOO_MANY_REQUESTS, "slow_down");
            let wait: u64 = response.headers[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((3_500..=3_600).contains(&wait), "{wait}");
            let response = app.send(registration_request(&good, "198.51.100.8")).await;
            assert_eq!(response.status, StatusCode::CREATED);
            assert_eq!(app.store.list_clients().await.unwrap().len(), 3);
        },
    )
    .await;
}

/// An IPv6 caller's registrations are counted per /64: other addresses of the /64 share
/// its budget, another /64 has its own.
async fn ipv6_registrations_are_budgeted_per_64(backend: Backend) {
    common::run_with(
        backend,
        |config| {
            config.rate_limit.enabled = true;
            config.rate_limit.registrations_per_hour = 2;
        },
        async |app| {
            let good = json!({"redirect_uris": ["https://a.example/"]});
            for (peer, expected) in [
                ("2001:db8:7:7::1", StatusCode::CREATED),
                ("2001:db8:7:7:ffff::2", StatusCode::CREATED),
                ("2001:db8:7:7::3", StatusCode::TOO_MANY_REQUESTS),
                ("2001:db8:7:8::1", StatusCode::CREATED),
            ] {
                let response = app.send(registration_request(&good, peer)).await;
                assert_eq!(response.status, expected, "{peer}: {response:?}");
            }
        },
    )
    .await;
}

/// The metadata names the endpoint exactly when it is served; switched off, or with
/// sign-in off, `/register` is not served at all.
async fn registration_endpoint_exactly_when_registration_is_on(backend: Backend) {
    let metadata = Request::get("/.well-known/oauth-authorization-server");
    common::run(backend, async |app| {
        let doc = app.send(metadata.body(Body::empty()).unwrap()).await.json;
        assert_eq!(
            doc["registration_endpoint"],
            "http://127.0.0.1:8080/register"
        );
    })
    .await;
    for off in [
        (|c: &mut introspectd::config::Config| c.registration.dynamic = false) as fn(&mut _),
        |c| c.login.enabled = false,
    ] {
        common::run_with(backend, off, async |app| {
            let request = Request::get("/.well-known/oauth-authorization-server");
            let doc = app.send(request.body(Body::empty()).unwrap()).await.json;
            assert!(doc.get("issuer").is_some());
            assert_eq!(doc.get("registration_endpoint"), None, "{doc}");
            // Documents describe clients that sign users in: not without sign-in.
            if !app.config.login.enabled {
                assert_eq!(doc.get("client_id_metadata_document_supported"), None);
            } else {
                assert_eq!(doc["client_id_metadata_document_supported"], true);
            }
            let body = json!({"redirect_uris": ["https://a.example/"]});
            let response = register(&app, body).await;
            assert_error(&response, StatusCode::NOT_FOUND, "not_found");
        })
        .await;
    }
}

both_backends!(
    max_scope_defaults_to_scopes_supported,
    registrations_are_budgeted_per_address,
    ipv6_registrations_are_budgeted_per_64,
    registration_endpoint_exactly_when_registration_is_on,
);

/// Browser-based clients register from their own origin: preflight and answer carry
/// CORS headers, never credentials.
async fn registration_answers_cors(app: TestApp) {
    let preflight = Request::options("/register")
        .header(header::ORIGIN, "https://spa.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .body(Body::empty())
        .unwrap();
    let response = app.send(preflight).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(
        response.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        response.headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("content-type")
    );
    assert!(
        response
            .headers
            .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .is_none()
    );
    let mut request = registration_request(
        &json!({"redirect_uris": ["https://a.example/"]}),
        "192.0.2.9",
    );
    request
        .headers_mut()
        .insert(header::ORIGIN, "https://spa.example".parse().unwrap());
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(response.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
}

/// Self-registered clients that obtained no token for `registration.unused_client_days`
/// are deleted, judged at an injected `now`; a token obtained keeps a client, and
/// operators' clients are never deleted.
async fn unused_self_registered_clients_are_deleted(app: TestApp) {
    let t0 = now();
    let body =
        json!({"redirect_uris": ["https://a.example/"], "token_endpoint_auth_method": "none"});
    let unused = register(&app, body.clone()).await.json["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let used = register(&app, body).await.json["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let operator = app.client("operator", &[]).await.id;
    let days = i64::from(app.config.registration.unused_client_days);
    assert_eq!(days, 30);

    app.store.touch_client(&used, t0 + 20 * DAY).await.unwrap();
    let deleted =
        registration::delete_unused_clients(&app.store, &app.config, t0 + days * DAY - 60)
            .await
            .unwrap();
    assert!(deleted.is_empty(), "{deleted:?}");
    let deleted =
        registration::delete_unused_clients(&app.store, &app.config, t0 + days * DAY + 60)
            .await
            .unwrap();
    assert_eq!(deleted, [unused.as_str()]);
    assert!(app.store.client_by_id(&unused).await.unwrap().is_none());
    let deleted = registration::delete_unused_clients(
        &app.store,
        &app.config,
        t0 + 20 * DAY + days * DAY + 60,
    )
    .await
    .unwrap();
    assert_eq!(deleted, [used.as_str()]);
    let deleted = registration::delete_unused_clients(&app.store, &app.config, t0 + 10_000 * DAY)
        .await
        .unwrap();
    assert!(deleted.is_empty());
    assert!(app.store.client_by_id(&operator).await.unwrap().is_some());
}

/// A client's use is written at most once per [`TOUCH_EVERY`], so a busy client costs no
/// write per token.
async fn last_use_is_written_at_most_hourly(app: TestApp) {
    let id = admin::create_client(
        &app.store,
        NewClient {
            name: "self".to_owned(),
            auth_method: Some("none".to_owned()),
            redirect_uris: vec!["https://a.example/".to_owned()],
            origin: ClientOrigin::Dynamic,
            ..NewClient::default()
        },
        1_000,
    )
    .await
    .unwrap()
    .client_id;
    let last_used = async || {
        app.store
            .client_by_id(&id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };
    assert_eq!(last_used().await, None);
    app.store.touch_client(&id, 5_000).await.unwrap();
    assert_eq!(last_used().await, Some(5_000));
    app.store
        .touch_client(&id, 5_000 + TOUCH_EVERY - 1)
        .await
        .unwrap();
    assert_eq!(last_used().await, Some(5_000));
    app.store
        .touch_client(&id, 5_000 + TOUCH_EVERY)
        .await
        .unwrap();
    assert_eq!(last_used().await, Some(5_000 + TOUCH_EVERY));
}

/// The body of the README's `curl … /register` example, exactly as written there.
fn readme_registration_body() -> Value {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("curl -s http://127.0.0.1:8080/register "))
        .expect("the README's registration example");
    let body = line
        .split_once(" -d '")
        .and_then(|(_, rest)| rest.strip_suffix('\''))
        .expect("a body in single quotes");
    serde_json::from_str(body).expect("JSON")
}

/// With the default configuration, the README's registration request registers a
/// client that can sign users in, and the variant the README warns of is refused.
async fn the_readmes_registration_example_works_as_written(app: TestApp) {
    let body = readme_registration_body();
    let registered = register(&app, body.clone()).await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{:?}",
        registered.json
    );
    assert_eq!(registered.json["client_name"], "My MCP client");
    let id = registered.json["client_id"].as_str().unwrap();
    let client = admin::show_client(&app.store, id).await.unwrap();
    assert_eq!(client.grant_types, ["authorization_code", "refresh_token"]);
    let mut with_scope = body;
    with_scope["scope"] = "mcp".into();
    let refused = register(&app, with_scope).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
}

both_stores!(
    registration_answers_cors,
    unused_self_registered_clients_are_deleted,
    last_use_is_written_at_most_hourly,
    the_readmes_registration_example_works_as_written,
);

/// `registration.initial_access_token_env`: the real binary reads the token from its
/// environment and requires it as a Bearer token.
async fn registration_requires_the_initial_access_token(backend: Backend) {
    use common::binary::{Server, command, http};

    let Some((db, _guard)) = common::fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = "initial-access-token-0123456789";
    let mut cmd = command(dir.path(), &db);
    cmd.env(
        "INTROSPECTD_REGISTRATION__INITIAL_ACCESS_TOKEN_ENV",
        "TEST_INITIAL_ACCESS_TOKEN",
    )
    .env("TEST_INITIAL_ACCESS_TOKEN", token);
    let server = Server::start_with(cmd);
    let body = json!({"redirect_uris": ["https://a.example/"]}).to_string();
    let json = ("content-type", "application/json");
    let missing = http(server.addr, "POST", "/register", &[json], &body).await;
    assert_eq!(missing.status, 401, "{}", missing.text);
    assert_eq!(missing.json["error"], "invalid_token");
    assert_eq!(
        missing.headers["www-authenticate"],
        "Bearer realm=\"introspectd\""
    );
    for wrong in [
        "Bearer not-the-token",
        "Basic aW5pdGlhbDp0b2tlbg==",
        "Bearer ",
    ] {
        let response = http(
            server.addr,
            "POST",
            "/register",
            &[json, ("authorization", wrong)],
            &body,
        )
        .await;
        assert_eq!(response.status, 401, "{wrong}: {}", response.text);
        assert_eq!(response.json["error"], "invalid_token");
        assert!(
            response.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer realm=\"introspectd\"")
        );
    }
    let bearer = format!("Bearer {token}");
    let right = http(
        server.addr,
        "POST",
        "/register",
        &[json, ("authorization", &bearer)],
        &body,
    )
    .await;
    assert_eq!(right.status, 201, "{}", right.text);
    let log = server.stop();
    assert!(!log.contains(token), "the token in the log");
    assert!(!log.contains(right.json["client_secret"].as_str().unwrap()));
}

both_backends!(registration_requires_the_initial_access_token);
