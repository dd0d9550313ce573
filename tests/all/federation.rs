//! Signing in through an OpenID Connect provider (`[[login.providers]]`), against a real
//! provider nobody here wrote (node-oidc-provider, `tests/oidc-provider/`), through the
//! real router, on SQLite and Postgres: users created and then reused, email domains,
//! ID tokens with a wrong `nonce`, a wrong `aud` or expired, key rotation, a provider
//! down at start-up, errors at the provider, a `state` that is not this browser's, and a
//! disabled user.

use crate::common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::oidc::{OidcProvider, ProviderOptions, free_port, oidc_present};
use common::{
    Backend, Browser, TestApp, TestClient, TestResponse, form, hidden_field as hidden,
    page_text as text, post_form, query_param as param,
};
use introspectd::admin::{self, NewClient, NewUser};
use introspectd::config::{Config, ProviderConfig};
use introspectd::policy::pkce::challenge_of;
use introspectd::secret::Password;
use introspectd::secret::ProviderSecret;
use introspectd::token::now;
use serde_json::{Value, json};

const ISSUER: &str = "http://127.0.0.1:8080";
const CALLBACK: &str = "http://127.0.0.1:8080/login/callback/corp";
const REDIRECT: &str = "http://127.0.0.1:7777/callback";
const MCP: &str = "https://mcp.example/";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-more-entropy";

/// The provider as `[[login.providers]]` names it.
fn provider_config(provider: &OidcProvider) -> ProviderConfig {
    ProviderConfig {
        id: "corp".to_owned(),
        name: "Corp SSO".to_owned(),
        issuer: provider.issuer.clone(),
        client_id: provider.options.client_id.clone(),
        client_secret: Some(ProviderSecret::new(&provider.options.client_secret)),
        client_secret_env: None,
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        allowed_email_domains: Vec::new(),
        id_jag: false,
    }
}

/// A test of one backend: the provider, the app configured with it, a client that signs
/// users in and a resource server.
struct Fixture {
    provider: OidcProvider,
    app: TestApp,
    client_id: String,
    server: TestClient,
}

impl Fixture {
    async fn start(
        backend: Backend,
        options: ProviderOptions,
        adjust: impl FnOnce(&mut Config),
    ) -> Option<Fixture> {
        if !oidc_present() {
            return None;
        }
        let provider = OidcProvider::start(options).await;
        let config = provider_config(&provider);
        let app = TestApp::start(backend, |c| {
            c.login.providers = vec![config];
            adjust(c);
        })
        .await?;
        let fixture = Fixture::with(provider, app).await;
        tokio::time::timeout(Duration::from_secs(30), fixture.corp().wait_available())
            .await
            .expect("the provider is discovered");
        Some(fixture)
    }

    /// Sign-in through the provider only (no password form), with alice's account there.
    async fn provider_only(backend: Backend) -> Option<Fixture> {
        let off = |c: &mut Config| c.login.local_users = false;
        let f = Fixture::start(backend, ProviderOptions::new(CALLBACK), off).await?;
        f.provider.account("sub-alice", alice()).await;
        Some(f)
    }

    async fn with(provider: OidcProvider, app: TestApp) -> Fixture {
        let server = app.client("mcp-server", &[MCP]).await;
        let client_id = admin::create_client(
            &app.store,
            NewClient {
                name: "Inspector".to_owned(),
                scope: Some("read".to_owned()),
                auth_method: Some("none".to_owned()),
                redirect_uris: vec![REDIRECT.to_owned()],
                ..NewClient::default()
            },
            now(),
        )
        .await
        .expect("create client")
        .client_id;
        Fixture {
            provider,
            app,
            client_id,
            server,
        }
    }

    fn corp(&self) -> &introspectd::federation::Provider {
        let signin = self.app.state.signin.as_ref().expect("sign-in on");
        signin.providers.get("corp").expect("provider corp")
    }

    fn query(&self) -> String {
        let challenge = challenge_of(VERIFIER);
        form(&[
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "st4te"),
            ("resource", MCP),
        ])
    }

    /// A new browser from `/authorize` through the provider's pages as `account` (or
    /// cancelling there) and back to the callback: the browser and the callback's answer.
    async fn through_provider(&self, account: Option<&str>) -> (Browser<'_>, TestResponse) {
        self.through_provider_then(account, None).await
    }

    /// [`Fixture::through_provider`], shifting the provider's clock by `clock` seconds
    /// after its sign-in pages and before the callback exchanges the code.
    async fn through_provider_then(
        &self,
        account: Option<&str>,
        clock: Option<i64>,
    ) -> (Browser<'_>, TestResponse) {
        let mut browser = Browser::new(&self.app);
        let callback = self.provider_answer(&mut browser, account).await;
        if let Some(offset) = clock {
            self.provider.clock(offset).await;
        }
        let answer = browser.get(&callback).await;
        (browser, answer)
    }

    /// `browser` from `/authorize` to the login page, its provider button, and the
    /// provider's pages as `account` (or cancelling): the callback path it is sent back to.
    async fn provider_answer(&self, browser: &mut Browser<'_>, account: Option<&str>) -> String {
        let page = browser.get(&format!("/authorize?{}", self.query())).await;
        assert_eq!(page.status, StatusCode::OK, "{}", text(&page));
        assert!(
            text(&page).contains("Sign in with Corp SSO"),
            "{}",
            text(&page)
        );
        let fields = [
            ("request", hidden(&page, "request")),
            ("csrf_token", hidden(&page, "csrf_token")),
        ];
        let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let sent = browser.post("/login/provider/corp", &fields).await;
        let to_provider = location(&sent);
        assert!(
            to_provider.starts_with(&format!("{}/auth?", self.provider.issuer)),
            "{to_provider}"
        );
        let back = self.provider.sign_in(&to_provider, account).await;
        let callback = back.strip_prefix(ISSUER).expect("back at the callback");
        assert!(callback.starts_with("/login/callback/corp?"), "{back}");
        callback.to_owned()
    }

    /// Signs `account` in through the provider and allows the client: the code.
    async fn code_for(&self, account: &str) -> String {
        let (mut browser, answer) = self.through_provider(Some(account)).await;
        let next = location(&answer);
        assert!(next.starts_with("../../authorize?"), "{next}");
        let consent = browser
            .get(&format!("/{}", next.trim_start_matches("../")))
            .await;
        if consent.status == StatusCode::SEE_OTHER {
            return code_of(&consent);
        }
        assert!(
            text(&consent).contains("name=\"decision\""),
            "{}",
            text(&consent)
        );
        let fields = [
            ("request", hidden(&consent, "request")),
            ("csrf_token", hidden(&consent, "csrf_token")),
            ("decision", "allow".to_owned()),
        ];
        let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
        code_of(&browser.post("/consent", &fields).await)
    }

    /// The introspection of the access token a code gives.
    async fn introspect_code(&self, code: &str) -> Value {
        let exchange = form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &self.client_id),
        ]);
        let tokens = post_form(&self.app.router, "/token", None, &exchange).await;
        assert_eq!(tokens.status, StatusCode::OK, "{:?}", tokens.json);
        let token = tokens.json["access_token"].as_str().unwrap();
        let answer = self.app.introspect(&self.server, token).await;
        assert_eq!(answer.status, StatusCode::OK);
        answer.json
    }

    /// The refusal sent back to the client: its `error`.
    async fn refused(&self, account: Option<&str>) -> String {
        let (_, answer) = self.through_provider(account).await;
        let params = redirect_params(&answer);
        assert_eq!(param(&params, "state").as_deref(), Some("st4te"));
        assert_eq!(param(&params, "iss").as_deref(), Some(ISSUER));
        assert_eq!(param(&params, "code"), None);
        param(&params, "error").expect("an error")
    }

    async fn users(&self) -> Vec<admin::UserView> {
        admin::list_users(&self.app.store).await.unwrap()
    }
}

fn alice() -> Value {
    json!({
        "email": "alice@example.com",
        "email_verified": true,
        "preferred_username": "alice",
        "name": "Alice Example",
    })
}

fn location(response: &TestResponse) -> String {
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", text(response));
    response.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

fn redirect_params(response: &TestResponse) -> Vec<(String, String)> {
    let to = location(response);
    assert!(to.starts_with(&format!("{REDIRECT}?")), "{to}");
    url::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn code_of(response: &TestResponse) -> String {
    let params = redirect_params(response);
    assert_eq!(param(&params, "state").as_deref(), Some("st4te"));
    assert_eq!(param(&params, "iss").as_deref(), Some(ISSUER));
    param(&params, "code").expect("a code")
}

use common::Backend as B;

async fn the_first_sign_in_creates_a_user_and_later_ones_reuse_it(backend: B) {
    let Some(f) = Fixture::start(backend, ProviderOptions::new(CALLBACK), |_| {}).await else {
        return;
    };
    f.provider.account("sub-alice", alice()).await;
    let first = f.introspect_code(&f.code_for("sub-alice").await).await;
    assert_eq!(first["active"], true, "{first}");
    assert_eq!(first["username"], "alice");
    let users = f.users().await;
    assert_eq!(users.len(), 1);
    let user = &users[0];
    assert_eq!(first["sub"], user.user_id.as_str());
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    assert_eq!(user.name.as_deref(), Some("Alice Example"));
    assert!(!user.has_password);
    let shown = admin::show_user(&f.app.store, "alice").await.unwrap();
    let links = shown.links.expect("links shown");
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].provider.as_str(), links[0].subject.as_str()),
        ("corp", "sub-alice")
    );

    // A second sign-in, from another browser: the same user, nothing new.
    let second = f.introspect_code(&f.code_for("sub-alice").await).await;
    assert_eq!(second["sub"], first["sub"]);
    assert_eq!(f.users().await.len(), 1);
    assert_eq!(f.provider.stats().await["token"], 2);
}

async fn a_taken_username_gets_a_suffix_never_the_account(backend: B) {
    let Some(f) = Fixture::start(backend, ProviderOptions::new(CALLBACK), |_| {}).await else {
        return;
    };
    let local = admin::create_user(
        &f.app.store,
        NewUser {
            username: "alice".to_owned(),
            password: Some(Password::new("correct horse battery")),
            ..NewUser::default()
        },
        now(),
    )
    .await
    .unwrap();
    f.provider.account("sub-alice", alice()).await;
    let answer = f.introspect_code(&f.code_for("sub-alice").await).await;
    assert_eq!(answer["username"], "alice-2");
    assert_ne!(answer["sub"], local.user_id.as_str());
    let shown = admin::show_user(&f.app.store, &local.user_id)
        .await
        .unwrap();
    assert_eq!(shown.links, Some(Vec::new()));
    // The federated user has no password: the password form refuses them.
    assert!(
        !admin::show_user(&f.app.store, "alice-2")
            .await
            .unwrap()
            .has_password
    );
    let mut browser = Browser::new(&f.app);
    let page = browser.get(&format!("/authorize?{}", f.query())).await;
    let fields = [
        ("request", hidden(&page, "request")),
        ("csrf_token", hidden(&page, "csrf_token")),
        ("username", "alice-2".to_owned()),
        ("password", "any password at all".to_owned()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let refused = browser.post("/login", &fields).await;
    assert_eq!(refused.status, StatusCode::OK);
    assert!(text(&refused).contains("incorrect"), "{}", text(&refused));
}

async fn allowed_email_domains_admit_only_verified_emails_there(backend: B) {
    let domains = |c: &mut Config| {
        c.login.providers[0].allowed_email_domains = vec!["example.com".to_owned()];
    };
    let Some(f) = Fixture::start(backend, ProviderOptions::new(CALLBACK), domains).await else {
        return;
    };
    f.provider.account("sub-alice", alice()).await;
    let other = json!({"email": "mallory@example.org", "email_verified": true});
    f.provider.account("sub-mallory", other).await;
    let unverified = json!({"email": "eve@example.com", "email_verified": false});
    f.provider.account("sub-eve", unverified).await;
    assert_eq!(f.refused(Some("sub-mallory")).await, "access_denied");
    assert_eq!(f.refused(Some("sub-eve")).await, "access_denied");
    assert!(f.users().await.is_empty());
    let admitted = f.introspect_code(&f.code_for("sub-alice").await).await;
    assert_eq!(admitted["username"], "alice");
}

async fn an_id_token_with_another_nonce_is_refused(backend: B) {
    let Some(f) = Fixture::start(backend, ProviderOptions::new(CALLBACK), |_| {}).await else {
        return;
    };
    f.provider.account("sub-alice", alice()).await;
    f.provider
        .tamper(json!({"nonce": "not-the-nonce-sent"}))
        .await;
    assert_eq!(f.refused(Some("sub-alice")).await, "access_denied");
    assert!(f.users().await.is_empty());
}

async fn an_id_token_for_another_audience_is_refused(backend: B) {
    let Some(f) = Fixture::start(backend, ProviderOptions::new(CALLBACK), |_| {}).await else {
        return;
    };
    f.provider.account("sub-alice", alice()).await;
    f.provider.tamper(json!({"aud": "another-client"})).await;
    assert_eq!(f.refused(Some("sub-alice")).await, "access_denied");
    // Our client among others is refused too: those others are not trusted.
    f.provider
        .tamper(json!({"aud": [f.provider.options.client_id, "another-client"]}))
        .await;
    assert_eq!(f.refused(Some("sub-alice")).await, "access_denied");
    // And an `azp` naming another client.
    f.provider.tamper(json!({"azp": "another-client"})).await;
    assert_eq!(f.refused(Some("sub-alice")).await, "access_denied");
    assert!(f.users().await.is_empty());
}

async fn an_expired_id_token_is_refused(backend: B) {
    let Some(f) = Fixture::start(backend, ProviderOptions::new(CALLBACK), |_| {}).await else {
        return;
    };
    f.provider.account("sub-alice", alice()).await;
    // The provider's clock two hours behind when it answers the exchange: the ID token it
    // issues (one hour of life) expired an hour ago.
    let (_, answer) = f
        .through_provider_then(Some("sub-alice"), Some(-7_200))
        .await;
    let params = redirect_params(&answer);
    assert_eq!(param(&params, "error").as_deref(), Some("access_denied"));
    // Issued just now, but with an `exp` a second ago.
    f.provider.clock(0).await;
    f.provider.tamper(json!({"exp": now() - 1})).await;
    assert_eq!(f.refused(Some("sub-alice")).await, "access_denied");
    assert!(f.users().await.is_empty());
    // The same sign-in with the provider's clock right and no tampering goes through.
    f.provider.tamper(Value::Null).await;
    let admitted = f.introspect_code(&f.code_for("sub-alice").await).await;
    assert_eq!(admitted["active"], true);
}

async fn a_rotated_key_is_fetched_once_and_an_unknown_one_refused(backend: B) {
    let Some(f) = Fixture::start(backend, ProviderOptions::new(CALLBACK), |_| {}).await else {
        return;
    };
    f.provider.account("sub-alice", alice()).await;
    f.introspect_code(&f.code_for("sub-alice").await).await;
    let fetched = f.provider.stats().await["jwks"].as_u64().unwrap();
    // The provider rotates to a key it publishes: fetched again, and signing in works.
    f.provider.new_key(true).await;
    let after_rotation = f.introspect_code(&f.code_for("sub-alice").await).await;
    assert_eq!(after_rotation["active"], true);
    assert_eq!(
        f.provider.stats().await["jwks"].as_u64().unwrap(),
        fetched + 1
    );
    // A key nobody published: refused, and the key set is not fetched again so soon.
    f.provider.new_key(false).await;
    assert_eq!(f.refused(Some("sub-alice")).await, "access_denied");
    assert_eq!(
        f.provider.stats().await["jwks"].as_u64().unwrap(),
        fetched + 1
    );
}

async fn a_provider_down_at_start_up_recovers_by_itself(backend: B) {
    if !oidc_present() {
        return;
    }
    let port = free_port();
    let options = ProviderOptions {
        port: Some(port),
        ..ProviderOptions::new(CALLBACK)
    };
    let config = ProviderConfig {
        id: "corp".to_owned(),
        name: "Corp SSO".to_owned(),
        issuer: format!("http://127.0.0.1:{port}"),
        client_id: options.client_id.clone(),
        client_secret: Some(ProviderSecret::new(&options.client_secret)),
        client_secret_env: None,
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        allowed_email_domains: Vec::new(),
        id_jag: false,
    };
    let Some(app) = TestApp::start(backend, |c| c.login.providers = vec![config]).await else {
        return;
    };
    let ready = app
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(
        ready.json,
        json!({"status": "ready", "providers": {"corp": "unavailable"}})
    );
    // The login page shows the provider, unavailable.
    let client_id = admin::create_client(
        &app.store,
        NewClient {
            name: "Inspector".to_owned(),
            auth_method: Some("none".to_owned()),
            redirect_uris: vec![REDIRECT.to_owned()],
            ..NewClient::default()
        },
        now(),
    )
    .await
    .unwrap()
    .client_id;
    let challenge = challenge_of(VERIFIER);
    let query = form(&[
        ("response_type", "code"),
        ("client_id", &client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let page = app
        .send(
            Request::get(format!("/authorize?{query}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(
        text(&page).contains("Corp SSO (unavailable)"),
        "{}",
        text(&page)
    );

    let provider = OidcProvider::start(options).await;
    let f = Fixture::with(provider, app).await;
    tokio::time::timeout(Duration::from_secs(60), f.corp().wait_available())
        .await
        .expect("discovered once the provider is up");
    let ready = f
        .app
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        ready.json,
        json!({"status": "ready", "providers": {"corp": "available"}})
    );
    f.provider.account("sub-alice", alice()).await;
    let answer = f.introspect_code(&f.code_for("sub-alice").await).await;
    assert_eq!(answer["username"], "alice");
}

async fn access_denied_at_the_provider_goes_back_to_the_client(backend: B) {
    let Some(f) = Fixture::start(backend, ProviderOptions::new(CALLBACK), |_| {}).await else {
        return;
    };
    assert_eq!(f.refused(None).await, "access_denied");
    assert!(f.users().await.is_empty());
}

async fn a_state_that_is_not_this_browsers_is_refused(backend: B) {
    let Some(f) = Fixture::start(backend, ProviderOptions::new(CALLBACK), |_| {}).await else {
        return;
    };
    f.provider.account("sub-alice", alice()).await;
    // A state never sent.
    let mut browser = Browser::new(&f.app);
    let unknown = browser
        .get("/login/callback/corp?code=x&state=made-up")
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let missing = browser.get("/login/callback/corp?code=x").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let twice = browser.get("/login/callback/corp?state=a&state=b").await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
    let nobody = browser.get("/login/callback/nobody?code=x&state=y").await;
    assert_eq!(nobody.status, StatusCode::BAD_REQUEST);

    // The attacker's own answer from the provider, taken to the victim's browser (login
    // CSRF): refused, and used up.
    let mut attacker = Browser::new(&f.app);
    let callback = f.provider_answer(&mut attacker, Some("sub-alice")).await;
    let mut victim = Browser::new(&f.app);
    victim.get(&format!("/authorize?{}", f.query())).await;
    let forged = victim.get(&callback).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", text(&forged));
    let replayed = attacker.get(&callback).await;
    assert_eq!(
        replayed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        text(&replayed)
    );
    assert!(f.users().await.is_empty());
    // A state sent to one provider is not taken at another's callback path.
    let (_, answer) = f.through_provider(Some("sub-alice")).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
}

async fn a_disabled_user_cannot_sign_in_through_the_provider(backend: B) {
    let Some(f) = Fixture::start(backend, ProviderOptions::new(CALLBACK), |_| {}).await else {
        return;
    };
    f.provider.account("sub-alice", alice()).await;
    f.introspect_code(&f.code_for("sub-alice").await).await;
    admin::disable_user(&f.app.store, "alice", now())
        .await
        .unwrap();
    assert_eq!(f.refused(Some("sub-alice")).await, "access_denied");
    // Deleting the user removes the link: the next sign-in is a new user.
    admin::delete_user(&f.app.store, "alice", now())
        .await
        .unwrap();
    let again = f.introspect_code(&f.code_for("sub-alice").await).await;
    assert_eq!(again["username"], "alice");
    assert_eq!(f.users().await.len(), 1);
}

async fn a_provider_offering_only_client_secret_post_gets_it(backend: B) {
    let options = ProviderOptions {
        auth_method: "client_secret_post",
        ..ProviderOptions::new(CALLBACK)
    };
    let Some(f) = Fixture::start(backend, options, |_| {}).await else {
        return;
    };
    f.provider.account("sub-alice", alice()).await;
    let answer = f.introspect_code(&f.code_for("sub-alice").await).await;
    assert_eq!(answer["username"], "alice");
}

async fn without_local_users_authorize_goes_straight_to_the_one_provider(backend: B) {
    let Some(f) = Fixture::provider_only(backend).await else {
        return;
    };
    let mut browser = Browser::new(&f.app);
    let sent = browser.get(&format!("/authorize?{}", f.query())).await;
    let to_provider = location(&sent);
    assert!(to_provider.starts_with(&format!("{}/auth?", f.provider.issuer)));
    assert!(
        browser
            .cookies
            .iter()
            .any(|(n, _)| n == "introspectd_browser")
    );
    let back = f.provider.sign_in(&to_provider, Some("sub-alice")).await;
    let answer = browser.get(back.strip_prefix(ISSUER).unwrap()).await;
    let next = location(&answer);
    let consent = browser
        .get(&format!("/{}", next.trim_start_matches("../")))
        .await;
    assert!(text(&consent).contains("name=\"decision\""));
    // The password form is refused even when posted by hand.
    let login = post_form(
        &f.app.router,
        "/login",
        None,
        &form(&[("request", "x"), ("csrf_token", "y"), ("username", "alice")]),
    )
    .await;
    assert!(login.status.is_client_error());
}

async fn failures_at_the_provider_go_back_as_oauth_errors_never_a_5xx(backend: B) {
    let Some(f) = Fixture::start(backend, ProviderOptions::new(CALLBACK), |_| {}).await else {
        return;
    };
    f.provider.account("sub-alice", alice()).await;
    // A code the provider refuses at its token endpoint: server_error.
    let mut browser = Browser::new(&f.app);
    let callback = f.provider_answer(&mut browser, Some("sub-alice")).await;
    let altered = callback.replacen("code=", "code=altered", 1);
    let params = redirect_params(&browser.get(&altered).await);
    assert_eq!(param(&params, "error").as_deref(), Some("server_error"));

    // An answer naming another issuer (a mix-up, RFC 9207): refused before any exchange.
    let mut browser = Browser::new(&f.app);
    let callback = f.provider_answer(&mut browser, Some("sub-alice")).await;
    assert!(
        callback.contains("iss="),
        "the provider names itself: {callback}"
    );
    let tokens = f.provider.stats().await["token"].clone();
    let elsewhere = format!("{callback}&iss=https%3A%2F%2Fevil.example");
    let twice = browser.get(&elsewhere).await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "iss given twice");
    let mut browser = Browser::new(&f.app);
    let callback = f.provider_answer(&mut browser, Some("sub-alice")).await;
    let mixed_up = rewrite_query(&callback, |(k, v)| match k.as_str() {
        "iss" => Some((k, "https://evil.example".to_owned())),
        _ => Some((k, v)),
    });
    let params = redirect_params(&browser.get(&mixed_up).await);
    assert_eq!(param(&params, "error").as_deref(), Some("access_denied"));
    assert_eq!(f.provider.stats().await["token"], tokens);

    // The provider gone between its pages and the exchange: temporarily_unavailable.
    let mut browser = Browser::new(&f.app);
    let callback = f.provider_answer(&mut browser, Some("sub-alice")).await;
    let cookies = std::mem::take(&mut browser.cookies);
    let Fixture { provider, app, .. } = f;
    drop(provider);
    let mut browser = Browser::new(&app);
    browser.cookies = cookies;
    let params = redirect_params(&browser.get(&callback).await);
    assert_eq!(
        param(&params, "error").as_deref(),
        Some("temporarily_unavailable")
    );
    assert!(admin::list_users(&app.store).await.unwrap().is_empty());
}

/// `path?query` with each parameter of the query passed through `each` (`None` drops
/// it).
fn rewrite_query(
    path_and_query: &str,
    each: impl Fn((String, String)) -> Option<(String, String)>,
) -> String {
    let (path, query) = path_and_query.split_once('?').unwrap();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter_map(each)
        .collect();
    format!(
        "{path}?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    )
}

/// RFC 9207 §2.4: the provider advertises `authorization_response_iss_parameter_supported`,
/// so an answer without `iss` may be another server's (a mix-up): refused before any code
/// exchange, back to the client as `access_denied` with our own `iss`.
async fn a_callback_without_iss_is_refused_when_the_provider_names_itself(backend: B) {
    let Some(f) = Fixture::start(backend, ProviderOptions::new(CALLBACK), |_| {}).await else {
        return;
    };
    f.provider.account("sub-alice", alice()).await;
    let discovery = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        f.provider.issuer
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let discovery: Value = serde_json::from_str(&discovery).unwrap();
    assert_eq!(
        discovery["authorization_response_iss_parameter_supported"], true,
        "the provider promises iss"
    );
    assert!(f.corp().names_itself());
    let tokens = f.provider.stats().await["token"].clone();
    let mut browser = Browser::new(&f.app);
    let callback = f.provider_answer(&mut browser, Some("sub-alice")).await;
    assert!(callback.contains("iss="), "{callback}");
    let without_iss = rewrite_query(&callback, |(k, v)| (k != "iss").then_some((k, v)));
    let answer = browser.get(&without_iss).await;
    let params = redirect_params(&answer);
    assert_eq!(param(&params, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&params, "iss").as_deref(), Some(ISSUER));
    assert_eq!(param(&params, "state").as_deref(), Some("st4te"));
    assert_eq!(
        f.provider.stats().await["token"],
        tokens,
        "no code exchanged"
    );
    assert!(f.users().await.is_empty());
    // The same answer with its iss signs in (a fresh one: the state was used up).
    let (_, answer) = f.through_provider(Some("sub-alice")).await;
    assert!(location(&answer).starts_with("../../authorize?"));
}

/// With only a provider signing people in, every `/authorize` sends the browser straight
/// there and stores the sign-in: one browser doing so a thousand times keeps only its
/// newest few, and the newest still signs in.
async fn a_browser_starting_sign_in_after_sign_in_leaves_a_few_rows(backend: B) {
    let Some(f) = Fixture::provider_only(backend).await else {
        return;
    };
    let mut browser = Browser::new(&f.app);
    let path = format!("/authorize?{}", f.query());
    let mut last = String::new();
    for _ in 0..1_000 {
        let sent = browser.get(&path).await;
        last = location(&sent);
        assert!(
            last.starts_with(&format!("{}/auth?", f.provider.issuer)),
            "{last}"
        );
    }
    let pending = f.app.store.pending_federated_logins().await.unwrap();
    let bound = introspectd::signin::federated::PENDING_PROVIDER_SIGNINS.per_browser;
    assert_eq!(
        pending,
        u64::from(bound),
        "one browser's sign-ins to one provider"
    );
    let back = f.provider.sign_in(&last, Some("sub-alice")).await;
    let answer = browser.get(back.strip_prefix(ISSUER).unwrap()).await;
    assert!(
        location(&answer).starts_with("../../authorize?"),
        "{answer:?}"
    );
}

both_backends!(
    a_browser_starting_sign_in_after_sign_in_leaves_a_few_rows,
    a_callback_without_iss_is_refused_when_the_provider_names_itself,
    failures_at_the_provider_go_back_as_oauth_errors_never_a_5xx,
    the_first_sign_in_creates_a_user_and_later_ones_reuse_it,
    a_taken_username_gets_a_suffix_never_the_account,
    allowed_email_domains_admit_only_verified_emails_there,
    an_id_token_with_another_nonce_is_refused,
    an_id_token_for_another_audience_is_refused,
    an_expired_id_token_is_refused,
    a_rotated_key_is_fetched_once_and_an_unknown_one_refused,
    a_provider_down_at_start_up_recovers_by_itself,
    access_denied_at_the_provider_goes_back_to_the_client,
    a_state_that_is_not_this_browsers_is_refused,
    a_disabled_user_cannot_sign_in_through_the_provider,
    a_provider_offering_only_client_secret_post_gets_it,
    without_local_users_authorize_goes_straight_to_the_one_provider,
);
