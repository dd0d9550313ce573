//! Signing users in through the real router, on SQLite and Postgres: the authorization
//! request and its errors (OAuth 2.1 §4.1.2.1), the login and consent pages, sessions,
//! remembered consent, the code exchange with PKCE (RFC 7636) and its errors, public
//! clients, CORS where browsers need it, and the password failure budgets.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{
    Backend, Browser, TestApp, TestClient, TestResponse, assert_error, form,
    hidden_field as hidden, page_text as text, post_form, query_param as param,
};
use introspectd::admin::{self, NewClient};
use introspectd::policy::pkce::challenge_of;
use introspectd::signin::key::Purpose;
use introspectd::store::{CodeRecord, Redemption, SessionRecord, TokenRecord};
use introspectd::token::{new_jti, now, opaque};
use introspectd::vocabulary::TokenUse;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:7777/callback";
const MCP: &str = "https://mcp.example/";
const PASSWORD: &str = "correct horse battery";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-more-entropy";
const ISSUER: &str = "http://127.0.0.1:8080";

/// A public client that signs users in, a resource server that introspects their
/// tokens, and a user.
struct Fixture {
    app: TestApp,
    client_id: String,
    server: TestClient,
    user_id: String,
}

async fn fixture(app: TestApp) -> Fixture {
    let server = app.client("mcp-server", &[MCP]).await;
    let client_id = public_client(&app, "Inspector", &[REDIRECT]).await;
    let user_id = app.user("Alice", PASSWORD).await;
    Fixture {
        app,
        client_id,
        server,
        user_id,
    }
}

async fn public_client(app: &TestApp, name: &str, redirect_uris: &[&str]) -> String {
    admin::create_client(
        &app.store,
        NewClient {
            name: name.to_owned(),
            scope: Some("read write".to_owned()),
            auth_method: Some("none".to_owned()),
            redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
            ..NewClient::default()
        },
        now(),
    )
    .await
    .expect("create client")
    .client_id
}

/// The query of an authorization request of `client_id` with PKCE, plus `extra`.
fn authorize_query(client_id: &str, extra: &[(&str, &str)]) -> String {
    let challenge = challenge_of(VERIFIER);
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "st4te"),
    ];
    for (name, value) in extra {
        pairs.retain(|(n, _)| n != name || *name == "resource");
        if !value.is_empty() {
            pairs.push((name, value));
        }
    }
    form(&pairs)
}

impl Browser<'_> {
    async fn authorize(&mut self, query: &str) -> TestResponse {
        self.get(&format!("/authorize?{query}")).await
    }

    /// Posts the login form of `page` with these credentials.
    async fn login(&mut self, page: &TestResponse, username: &str, password: &str) -> TestResponse {
        let (request, csrf) = (hidden(page, "request"), hidden(page, "csrf_token"));
        let fields = [
            ("request", request.as_str()),
            ("csrf_token", csrf.as_str()),
            ("username", username),
            ("password", password),
        ];
        self.post("/login", &fields).await
    }

    /// Follows a redirect back to a page of this server.
    async fn follow(&mut self, response: &TestResponse) -> TestResponse {
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", text(response));
        let location = location(response);
        assert!(!location.starts_with("http"), "{location}");
        self.get(&format!("/{location}")).await
    }

    /// From the login page of `query` to its consent page.
    async fn sign_in(&mut self, query: &str) -> TestResponse {
        let page = self.authorize(query).await;
        assert_page(&page, StatusCode::OK, "name=\"password\"");
        let signed_in = self.login(&page, "alice", PASSWORD).await;
        self.follow(&signed_in).await
    }

    /// Posts the consent form of `page` with `decision`.
    async fn decide(&mut self, page: &TestResponse, decision: &str) -> TestResponse {
        assert_page(page, StatusCode::OK, "name=\"decision\"");
        let (request, csrf) = (hidden(page, "request"), hidden(page, "csrf_token"));
        let fields = [
            ("request", request.as_str()),
            ("csrf_token", csrf.as_str()),
            ("decision", decision),
        ];
        self.post("/consent", &fields).await
    }
}

fn location(response: &TestResponse) -> String {
    response.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A page as a person sees it: its status and text without the form's signed fields,
/// which differ on every page.
fn seen_page(page: &TestResponse) -> (StatusCode, String) {
    let mut body = text(page);
    for name in ["request", "csrf_token"] {
        let value = hidden(page, name);
        body = body.replace(&value, "");
    }
    (page.status, body)
}

/// A sign-in page with its status, the headers every page carries, and `needle`.
fn assert_page(response: &TestResponse, status: StatusCode, needle: &str) {
    let body = text(response);
    assert_eq!(response.status, status, "{body} {:?}", response.headers);
    assert_eq!(
        response.headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let csp = response.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(response.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(response.headers[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
    assert!(
        !response
            .headers
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
    assert!(body.contains(needle), "no {needle:?} in {body}");
}

/// The parameters of a redirect back to the client, which must go to [`REDIRECT`].
fn redirect_params(response: &TestResponse) -> Vec<(String, String)> {
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", text(response));
    let to = location(response);
    assert!(to.starts_with(&format!("{REDIRECT}?")), "{to}");
    url::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// An error sent back to the client: its code, with the state and the issuer.
fn assert_redirected_error(response: &TestResponse, error: &str) {
    let params = redirect_params(response);
    assert_eq!(
        param(&params, "error").as_deref(),
        Some(error),
        "{params:?}"
    );
    assert!(param(&params, "error_description").is_some());
    assert_eq!(param(&params, "iss").as_deref(), Some(ISSUER));
    assert_eq!(param(&params, "code"), None);
}

/// The code of a redirect back to the client, checking `state` and `iss`.
fn code_of(response: &TestResponse) -> String {
    let params = redirect_params(response);
    assert_eq!(param(&params, "state").as_deref(), Some("st4te"));
    assert_eq!(param(&params, "iss").as_deref(), Some(ISSUER));
    param(&params, "code").expect("a code")
}

/// POST /token exchanging `code` as the public client `client_id`.
async fn exchange(
    app: &TestApp,
    client_id: &str,
    code: &str,
    extra: &[(&str, &str)],
) -> TestResponse {
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", client_id),
    ];
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        if !value.is_empty() {
            params.push((name, value));
        }
    }
    post_form(&app.router, "/token", None, &form(&params)).await
}

/// A code for the fixture's user and client, through the pages of a new browser (and
/// the consent page unless the user allowed the same before).
async fn code_for(f: &Fixture, extra: &[(&str, &str)]) -> String {
    let mut browser = Browser::new(&f.app);
    let consent = browser.sign_in(&authorize_query(&f.client_id, extra)).await;
    if consent.status == StatusCode::SEE_OTHER {
        return code_of(&consent);
    }
    code_of(&browser.decide(&consent, "allow").await)
}

async fn introspect(f: &Fixture, token: &str) -> Value {
    let response = f.app.introspect(&f.server, token).await;
    assert_eq!(response.status, StatusCode::OK);
    response.json
}

// --- the whole flow -------------------------------------------------------------------

async fn a_user_signs_in_consents_and_the_client_gets_tokens(app: TestApp) {
    let f = fixture(app).await;
    let mut browser = Browser::new(&f.app);
    let query = authorize_query(&f.client_id, &[("scope", "read"), ("resource", MCP)]);
    let login = browser.authorize(&query).await;
    assert_page(&login, StatusCode::OK, "Inspector");
    assert!(text(&login).contains("name=\"username\""));
    assert!(
        login.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("form-action 'self' http://127.0.0.1:7777"),
        "a form may end up at the client"
    );
    let signed_in = browser.login(&login, "alice", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let session = signed_in
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("introspectd_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "http issuer: {session}");
    let consent = browser.follow(&signed_in).await;
    assert_page(&consent, StatusCode::OK, "Inspector");
    let body = text(&consent);
    for shown in ["127.0.0.1", "read", MCP, "alice"] {
        assert!(body.contains(shown), "{shown} not on the consent page");
    }
    assert!(
        !body.contains("registered itself"),
        "an operator registered it"
    );
    let code = code_of(&browser.decide(&consent, "allow").await);

    let tokens = exchange(&f.app, &f.client_id, &code, &[]).await;
    assert_eq!(tokens.status, StatusCode::OK, "{:?}", tokens.json);
    assert_eq!(tokens.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(tokens.json["token_type"], "Bearer");
    assert_eq!(tokens.json["scope"], "read");
    let access = tokens.json["access_token"].as_str().unwrap();
    let answer = introspect(&f, access).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["sub"], f.user_id.as_str());
    assert_eq!(answer["username"], "alice");
    assert_eq!(answer["client_id"], f.client_id.as_str());
    assert_eq!(answer["aud"], MCP);
    assert_eq!(answer["iss"], ISSUER);

    // The refresh token rotates with the existing reuse detection.
    let refresh = tokens.json["refresh_token"].as_str().unwrap();
    let params = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", f.client_id.as_str()),
    ];
    let refreshed = post_form(&f.app.router, "/token", None, &form(&params)).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{:?}", refreshed.json);
    let again = introspect(&f, refreshed.json["access_token"].as_str().unwrap()).await;
    assert_eq!(again["sub"], f.user_id.as_str());
    assert_eq!(again["username"], "alice");
    let reused = post_form(&f.app.router, "/token", None, &form(&params)).await;
    assert_error(&reused, StatusCode::BAD_REQUEST, "invalid_grant");
    let after = introspect(&f, refreshed.json["access_token"].as_str().unwrap()).await;
    assert_eq!(after["active"], false, "reuse revoked the grant");
}

async fn no_resource_asked_means_the_clients_registered_resources(app: TestApp) {
    let f = fixture(app).await;
    // A confidential client that signs users in, registered for the MCP server.
    let created = admin::create_client(
        &f.app.store,
        NewClient {
            name: "Desktop".to_owned(),
            redirect_uris: vec![REDIRECT.to_owned()],
            resources: vec![MCP.to_owned()],
            ..NewClient::default()
        },
        now(),
    )
    .await
    .unwrap();
    let caller = TestClient {
        id: created.client_id.clone(),
        secret: created.client_secret.expose().to_owned(),
    };
    let mut browser = Browser::new(&f.app);
    let consent = browser.sign_in(&authorize_query(&caller.id, &[])).await;
    assert!(
        text(&consent).contains(MCP),
        "the audience the token will carry is shown"
    );
    let code = code_of(&browser.decide(&consent, "allow").await);
    // Its client_id alone does not authenticate it: it is not public.
    let alone = exchange(&f.app, &caller.id, &code, &[]).await;
    assert_error(&alone, StatusCode::UNAUTHORIZED, "invalid_client");
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let tokens = f.app.post(&caller, "/token", &params).await;
    assert_eq!(tokens.status, StatusCode::OK, "{:?}", tokens.json);
    let answer = introspect(&f, tokens.json["access_token"].as_str().unwrap()).await;
    assert_eq!(answer["aud"], MCP);
    assert_eq!(answer["sub"], f.user_id.as_str());
}

// --- errors of the authorization request (OAuth 2.1 §4.1.2.1) ---------------------------

/// An unknown client, or a redirect URI not registered for it, is an error page and
/// never a redirect, whatever else the request says.
async fn unverified_clients_and_redirects_are_shown_never_redirected_to(app: TestApp) {
    let f = fixture(app).await;
    let mut browser = Browser::new(&f.app);
    let evil = "https://evil.example/cb";
    for query in [
        authorize_query("no-such-client", &[]),
        authorize_query(&f.client_id, &[("redirect_uri", evil)]),
        authorize_query(&f.client_id, &[("redirect_uri", "")]),
        authorize_query("", &[]),
        authorize_query(
            &f.client_id,
            &[("redirect_uri", evil), ("response_type", "token")],
        ),
        format!("{}&client_id=other", authorize_query(&f.client_id, &[])),
    ] {
        let response = browser.authorize(&query).await;
        assert_page(&response, StatusCode::BAD_REQUEST, "cannot continue");
        assert!(!response.headers.contains_key(header::LOCATION), "{query}");
        assert!(
            !text(&response).contains("evil.example"),
            "no echo of input"
        );
    }
    // A disabled client is answered as an unknown one.
    admin::disable_client(&f.app.store, &f.client_id, now())
        .await
        .unwrap();
    let response = browser.authorize(&authorize_query(&f.client_id, &[])).await;
    assert_page(&response, StatusCode::BAD_REQUEST, "not registered");
}

async fn request_errors_go_back_to_the_client(app: TestApp) {
    let f = fixture(app).await;
    let mut browser = Browser::new(&f.app);
    let cases: [(&[(&str, &str)], &str); 9] = [
        (&[("response_type", "")], "invalid_request"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("code_challenge", "")], "invalid_request"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge_method", "")], "invalid_request"),
        (&[("scope", "admin")], "invalid_scope"),
        (
            &[("resource", "https://unknown.example/")],
            "invalid_target",
        ),
        (&[("resource", "not a uri")], "invalid_target"),
        (&[("resource", "https://mcp.example/#f")], "invalid_target"),
    ];
    for (extra, error) in cases {
        let response = browser
            .authorize(&authorize_query(&f.client_id, extra))
            .await;
        assert_redirected_error(&response, error);
        let params = redirect_params(&response);
        assert_eq!(
            param(&params, "state").as_deref(),
            Some("st4te"),
            "{extra:?}"
        );
    }
    // A client not registered for the grant.
    let other = admin::create_client(
        &f.app.store,
        NewClient {
            name: "machine".to_owned(),
            redirect_uris: vec![REDIRECT.to_owned()],
            grant_types: vec!["client_credentials".to_owned()],
            ..NewClient::default()
        },
        now(),
    )
    .await
    .unwrap();
    let response = browser
        .authorize(&authorize_query(&other.client_id, &[]))
        .await;
    assert_redirected_error(&response, "unauthorized_client");
}

async fn denying_sends_access_denied(app: TestApp) {
    let f = fixture(app).await;
    let mut browser = Browser::new(&f.app);
    let consent = browser.sign_in(&authorize_query(&f.client_id, &[])).await;
    let response = browser.decide(&consent, "deny").await;
    assert_redirected_error(&response, "access_denied");
    assert_eq!(
        param(&redirect_params(&response), "state").as_deref(),
        Some("st4te")
    );
    // Nothing was remembered: the next request asks again.
    let again = browser.authorize(&authorize_query(&f.client_id, &[])).await;
    assert_page(&again, StatusCode::OK, "name=\"decision\"");
    // Any other decision is a malformed form.
    let odd = browser.decide(&again, "maybe").await;
    assert_page(&odd, StatusCode::BAD_REQUEST, "cannot continue");
}

// --- the code exchange (OAuth 2.1 §4.1.3, RFC 7636) -----------------------------------

async fn pkce_errors_at_the_token_endpoint(app: TestApp) {
    let f = fixture(app).await;
    let code = code_for(&f, &[]).await;
    let missing = exchange(&f.app, &f.client_id, &code, &[("code_verifier", "")]).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "invalid_request");
    let wrong = "A".repeat(43);
    let wrong = exchange(&f.app, &f.client_id, &code, &[("code_verifier", &wrong)]).await;
    assert_error(&wrong, StatusCode::BAD_REQUEST, "invalid_grant");
    let plain = challenge_of(VERIFIER);
    let plain = exchange(&f.app, &f.client_id, &code, &[("code_verifier", &plain)]).await;
    assert_error(&plain, StatusCode::BAD_REQUEST, "invalid_grant");
    let short = exchange(&f.app, &f.client_id, &code, &[("code_verifier", "abc")]).await;
    assert_error(&short, StatusCode::BAD_REQUEST, "invalid_grant");
    // None of those used the code up.
    let right = exchange(&f.app, &f.client_id, &code, &[]).await;
    assert_eq!(right.status, StatusCode::OK, "{:?}", right.json);
}

async fn code_errors_are_one_invalid_grant(app: TestApp) {
    let f = fixture(app).await;
    let code = code_for(&f, &[]).await;
    let other_client = public_client(&f.app, "Other", &[REDIRECT]).await;
    let answers = [
        exchange(&f.app, &other_client, &code, &[]).await,
        exchange(
            &f.app,
            &f.client_id,
            &code,
            &[("redirect_uri", "http://127.0.0.1:7777/other")],
        )
        .await,
        exchange(&f.app, &f.client_id, "no-such-code", &[]).await,
    ];
    for answer in &answers {
        assert_error(answer, StatusCode::BAD_REQUEST, "invalid_grant");
        assert_eq!(
            answer.body, answers[0].body,
            "one answer for every unusable code"
        );
    }
    let missing = exchange(&f.app, &f.client_id, &code, &[("redirect_uri", "")]).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "invalid_request");
    // The code is still its client's to use.
    let right = exchange(&f.app, &f.client_id, &code, &[]).await;
    assert_eq!(right.status, StatusCode::OK, "{:?}", right.json);
    // A resource outside the grant is invalid_target.
    let code = code_for(&f, &[("resource", MCP)]).await;
    let other = exchange(
        &f.app,
        &f.client_id,
        &code,
        &[("resource", "https://other.example/")],
    )
    .await;
    assert_error(&other, StatusCode::BAD_REQUEST, "invalid_target");
}

async fn a_code_used_twice_revokes_what_it_gave(app: TestApp) {
    let f = fixture(app).await;
    let code = code_for(&f, &[("resource", MCP)]).await;
    let first = exchange(&f.app, &f.client_id, &code, &[]).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.json);
    let access = first.json["access_token"].as_str().unwrap();
    let refresh = first.json["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&f, access).await["active"], true);
    let second = exchange(&f.app, &f.client_id, &code, &[]).await;
    assert_error(&second, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        introspect(&f, access).await["active"],
        false,
        "access token revoked"
    );
    let params = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", f.client_id.as_str()),
    ];
    let refreshed = post_form(&f.app.router, "/token", None, &form(&params)).await;
    assert_error(&refreshed, StatusCode::BAD_REQUEST, "invalid_grant");
}

/// A code of the fixture's user and client, with the test's PKCE verifier, issued at
/// `issued` for 60 seconds; stored.
async fn stored_code(f: &Fixture, code: &str, issued: i64) -> CodeRecord {
    let record = CodeRecord {
        digest: opaque::digest(code),
        client_id: f.client_id.clone(),
        user_id: f.user_id.clone(),
        redirect_uri: REDIRECT.to_owned(),
        code_challenge: challenge_of(VERIFIER),
        scope: None,
        resources: vec![],
        created_at: issued,
        expires_at: issued + 60,
        used_at: None,
        family_id: new_jti(),
    };
    f.app
        .store
        .insert_authorization_code(&record)
        .await
        .unwrap();
    record
}

async fn an_expired_code_is_refused(app: TestApp) {
    let f = fixture(app).await;
    let code = opaque::generate();
    stored_code(&f, code.expose(), now() - 61).await;
    let response = exchange(&f.app, &f.client_id, code.expose(), &[]).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
}

/// The exchange checks the user before it mints; a user disabled or deleted between
/// that check and the transaction that stores the tokens must not keep them. The store
/// refuses to redeem a code of a user who is gone by then, and leaves the code unused.
async fn a_code_is_never_redeemed_for_a_user_disabled_meanwhile(app: TestApp) {
    let f = fixture(app).await;
    let issued = now();
    let code = stored_code(&f, opaque::generate().expose(), issued).await;
    let store = &f.app.store;
    let refresh = opaque::generate();
    let record = TokenRecord {
        digest: opaque::digest(refresh.expose()),
        token_use: TokenUse::RefreshToken,
        client_id: f.client_id.clone(),
        sub: Some(f.user_id.clone()),
        username: Some("alice".to_owned()),
        scope: None,
        audiences: vec![],
        jti: new_jti(),
        iat: issued,
        nbf: None,
        exp: issued + 3_600,
        revoked_at: None,
        user_id: Some(f.user_id.clone()),
    };
    admin::disable_user(store, &f.user_id, issued)
        .await
        .unwrap();
    // Redeems the code; whatever the outcome, no token of the user is stored.
    let redeem = || async {
        let access = (new_jti(), issued + 3_600);
        let redeemed = store
            .redeem_authorization_code(&code, Some(&record), (&access.0, access.1), issued)
            .await
            .unwrap();
        let stored = store.token_by_digest(&record.digest).await.unwrap();
        assert!(stored.is_none(), "a token stored for a user who is gone");
        redeemed
    };
    assert_eq!(redeem().await, Redemption::UserGone);
    let kept = store.authorization_code(&code.digest).await.unwrap();
    assert_eq!(kept.unwrap().used_at, None, "the code stays unused");

    // Deleted rather than disabled: nothing is stored either.
    admin::delete_user(store, &f.user_id, issued).await.unwrap();
    assert_ne!(redeem().await, Redemption::Redeemed);
}

// --- sessions and consent -------------------------------------------------------------

/// A confidential client that signs users in at [`REDIRECT`].
async fn confidential_client(app: &TestApp) -> TestClient {
    app.client_with(NewClient {
        name: "Web app".to_owned(),
        scope: Some("read write".to_owned()),
        auth_method: Some("client_secret_basic".to_owned()),
        redirect_uris: vec![REDIRECT.to_owned()],
        ..NewClient::default()
    })
    .await
}

async fn remembered_consent_skips_the_pages_of_a_confidential_client(app: TestApp) {
    let f = fixture(app).await;
    let web = confidential_client(&f.app).await;
    let mut browser = Browser::new(&f.app);
    let query = authorize_query(&web.id, &[("scope", "read"), ("resource", MCP)]);
    let consent = browser.sign_in(&query).await;
    code_of(&browser.decide(&consent, "allow").await);
    // Same user, client, scope and resources: straight back with a code.
    let again = browser.authorize(&query).await;
    let code = code_of(&again);
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]);
    let exchanged = post_form(&f.app.router, "/token", Some(&web.basic()), &body).await;
    assert_eq!(exchanged.status, StatusCode::OK, "{:?}", exchanged.json);
    // A wider scope asks again.
    let wider = authorize_query(&web.id, &[("scope", "read write"), ("resource", MCP)]);
    let asked = browser.authorize(&wider).await;
    assert_page(&asked, StatusCode::OK, "name=\"decision\"");
    // Forgetting the consent asks again too.
    admin::revoke_consent(&f.app.store, &f.user_id, Some(&web.id), now())
        .await
        .unwrap();
    let forgotten = browser.authorize(&query).await;
    assert_page(&forgotten, StatusCode::OK, "name=\"decision\"");
}

/// RFC 8252 §8.6: a public client cannot prove who it is, and its loopback redirect URI
/// matches on any port, so any program could be it: the consent page every time, one
/// click for the signed-in user.
async fn a_public_client_is_asked_again_on_every_sign_in(app: TestApp) {
    let f = fixture(app).await;
    let mut browser = Browser::new(&f.app);
    let query = authorize_query(&f.client_id, &[("scope", "read"), ("resource", MCP)]);
    let consent = browser.sign_in(&query).await;
    code_of(&browser.decide(&consent, "allow").await);
    assert!(
        f.app
            .store
            .has_consent(&f.user_id, &f.client_id, Some("read"), &[MCP.to_owned()])
            .await
            .unwrap(),
        "the decision is still remembered"
    );
    let other_port = "http://127.0.0.1:45678/callback";
    for query in [
        query.clone(),
        authorize_query(
            &f.client_id,
            &[
                ("scope", "read"),
                ("resource", MCP),
                ("redirect_uri", other_port),
            ],
        ),
    ] {
        let again = browser.authorize(&query).await;
        assert_page(&again, StatusCode::OK, "name=\"decision\"");
        // One click, without signing in again.
        let allowed = browser.decide(&again, "allow").await;
        assert_eq!(allowed.status, StatusCode::SEE_OTHER);
        let to = location(&allowed);
        assert!(to.contains("code=") && to.contains("iss="), "{to}");
    }
}

/// A session cookie for `user_id` whose session expired a second ago.
async fn expired_session_cookie(f: &Fixture) -> String {
    let session_id = introspectd::token::random_string(32);
    f.app
        .store
        .insert_session(&SessionRecord {
            digest: opaque::digest(&session_id),
            user_id: f.user_id.clone(),
            created_at: now() - 100,
            expires_at: now() - 1,
        })
        .await
        .unwrap();
    let signin = f.app.state.signin.as_ref().expect("sign-in on");
    signin.key.sign(Purpose::Session, &session_id)
}

async fn an_expired_session_signs_in_again(app: TestApp) {
    let f = fixture(app).await;
    let mut browser = Browser::new(&f.app);
    let cookie = expired_session_cookie(&f).await;
    browser
        .cookies
        .push(("introspectd_session".to_owned(), cookie));
    let page = browser.authorize(&authorize_query(&f.client_id, &[])).await;
    assert_page(&page, StatusCode::OK, "name=\"password\"");
    // A session cookie that is not ours is no session either.
    browser.cookies = vec![("introspectd_session".to_owned(), "forged.AAAA".to_owned())];
    let page = browser.authorize(&authorize_query(&f.client_id, &[])).await;
    assert_page(&page, StatusCode::OK, "name=\"password\"");
}

async fn signing_out_ends_the_session(app: TestApp) {
    let f = fixture(app).await;
    let mut browser = Browser::new(&f.app);
    let consent = browser.sign_in(&authorize_query(&f.client_id, &[])).await;
    let token = {
        let body = text(&consent);
        let form = &body[body.find("action=\"logout\"").expect("a sign-out form")..];
        let marker = "name=\"csrf_token\" value=\"";
        let start = form.find(marker).unwrap() + marker.len();
        form[start..].split('"').next().unwrap().to_owned()
    };
    let forged = browser.post("/logout", &[("csrf_token", "AAAA")]).await;
    assert_page(&forged, StatusCode::FORBIDDEN, "not accepted");
    let out = browser
        .post("/logout", &[("csrf_token", token.as_str())])
        .await;
    assert_page(&out, StatusCode::OK, "signed out");
    assert!(
        !browser
            .cookies
            .iter()
            .any(|(n, _)| n == "introspectd_session")
    );
    // The session row is gone: the old cookie signs in nobody, on any instance.
    let page = browser.authorize(&authorize_query(&f.client_id, &[])).await;
    assert_page(&page, StatusCode::OK, "name=\"password\"");
    // The consent form of the ended session goes back to the login page.
    let after = browser.decide(&consent, "allow").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(
        location(&after).starts_with("authorize?"),
        "{}",
        location(&after)
    );
}

async fn a_disabled_user_cannot_sign_in(app: TestApp) {
    let f = fixture(app).await;
    let mut browser = Browser::new(&f.app);
    let consent = browser.sign_in(&authorize_query(&f.client_id, &[])).await;
    let code = code_of(&browser.decide(&consent, "allow").await);
    let tokens = exchange(&f.app, &f.client_id, &code, &[]).await;
    let access = tokens.json["access_token"].as_str().unwrap().to_owned();
    let pending = code_for(&f, &[]).await;
    admin::disable_user(&f.app.store, &f.user_id, now())
        .await
        .unwrap();
    assert_eq!(introspect(&f, &access).await["active"], false);
    // The session ended with it, and the right password no longer signs in.
    let page = browser.authorize(&authorize_query(&f.client_id, &[])).await;
    assert_page(&page, StatusCode::OK, "name=\"password\"");
    let refused = browser.login(&page, "alice", PASSWORD).await;
    let wrong = browser.login(&page, "alice", "not the password").await;
    assert_page(&refused, StatusCode::OK, "incorrect");
    assert_eq!(
        seen_page(&refused),
        seen_page(&wrong),
        "a disabled user reads like a wrong password"
    );
    // A code issued before cannot be exchanged any more.
    let late = exchange(&f.app, &f.client_id, &pending, &[]).await;
    assert_error(&late, StatusCode::BAD_REQUEST, "invalid_grant");
}

async fn an_enabled_user_signs_in_again(app: TestApp) {
    let f = fixture(app).await;
    admin::disable_user(&f.app.store, "alice", now())
        .await
        .unwrap();
    let enabled = admin::enable_user(&f.app.store, "alice", now())
        .await
        .unwrap();
    assert!(!enabled.disabled);
    let code = code_for(&f, &[("resource", MCP)]).await;
    let tokens = exchange(&f.app, &f.client_id, &code, &[]).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", text(&tokens));
    let access = tokens.json["access_token"].as_str().unwrap();
    assert_eq!(introspect(&f, access).await["active"], true);
    assert!(matches!(
        admin::enable_user(&f.app.store, "nobody", now()).await,
        Err(admin::AdminError::UnknownUser(_))
    ));
}

/// A client that asked for no resource and is registered for none gets a token no
/// resource server may introspect: the operator is told which client, the token is not.
async fn a_token_without_audience_is_logged_with_its_client(app: TestApp) {
    let f = fixture(app).await;
    let (logs, _guard) = common::logs::capture();
    let code = code_for(&f, &[]).await;
    let tokens = exchange(&f.app, &f.client_id, &code, &[]).await;
    let access = tokens.json["access_token"].as_str().unwrap();
    let warned = logs.lines_with("no audience");
    assert_eq!(warned.len(), 1, "{}", logs.text());
    assert!(warned[0].contains("WARN"), "{}", warned[0]);
    assert!(warned[0].contains(&f.client_id), "{}", warned[0]);
    assert!(warned[0].contains("--resource"), "{}", warned[0]);
    assert!(!logs.text().contains(access));
    // With a resource, nothing to say.
    let code = code_for(&f, &[("resource", MCP)]).await;
    let tokens = exchange(&f.app, &f.client_id, &code, &[]).await;
    assert_eq!(tokens.status, StatusCode::OK);
    assert_eq!(logs.lines_with("no audience").len(), 1, "{}", logs.text());
}

/// A redirect URI that matches none registered is shown an error page, and the operator
/// reads in the log which one the client sent and which ones it registered.
async fn a_refused_redirect_uri_is_logged_with_the_registered_ones(app: TestApp) {
    let f = fixture(app).await;
    let (logs, _guard) = common::logs::capture();
    let mut browser = Browser::new(&f.app);
    let sent = "http://127.0.0.1:7777/callback/";
    let query = authorize_query(&f.client_id, &[("redirect_uri", sent)]);
    let page = browser.authorize(&query).await;
    assert_page(&page, StatusCode::BAD_REQUEST, "cannot continue");
    let logged = logs.lines_with("matches none registered");
    assert_eq!(logged.len(), 1, "{}", logs.text());
    for needle in [f.client_id.as_str(), sent, REDIRECT] {
        assert!(logged[0].contains(needle), "{needle} in {}", logged[0]);
    }
    // A line break sent in the URI cannot start a line of its own.
    let forged = "https://evil.example/\nINFO forged line";
    let query = authorize_query(&f.client_id, &[("redirect_uri", forged)]);
    browser.authorize(&query).await;
    assert!(logs.lines_with("matches none registered").len() == 2);
    assert!(
        !logs.text().lines().any(|l| l.starts_with("INFO forged")),
        "{}",
        logs.text()
    );
}

// --- forms: CSRF, binding to the browser, expiry --------------------------------------

async fn forms_from_elsewhere_are_refused(app: TestApp) {
    let f = fixture(app).await;
    let mut victim = Browser::new(&f.app);
    let mut attacker = Browser::new(&f.app);
    let query = authorize_query(&f.client_id, &[]);
    let page = attacker.authorize(&query).await;
    // Login CSRF: the attacker's own form, posted from the victim's browser.
    victim.authorize(&query).await;
    let posted = victim.login(&page, "alice", PASSWORD).await;
    assert_page(&posted, StatusCode::FORBIDDEN, "not accepted");
    // Without the browser cookie at all.
    let mut bare = Browser::new(&f.app);
    let posted = bare.login(&page, "alice", PASSWORD).await;
    assert_page(&posted, StatusCode::BAD_REQUEST, "Cookies are needed");
    // A wrong or missing CSRF token in the right browser.
    let request = hidden(&page, "request");
    for csrf in ["", "AAAA"] {
        let fields = [
            ("request", request.as_str()),
            ("csrf_token", csrf),
            ("username", "alice"),
            ("password", PASSWORD),
        ];
        let posted = attacker.post("/login", &fields).await;
        assert_page(&posted, StatusCode::FORBIDDEN, "not accepted");
    }
    // An altered request.
    let altered = request.replacen('~', "~x", 1);
    let csrf = hidden(&page, "csrf_token");
    let fields = [
        ("request", altered.as_str()),
        ("csrf_token", csrf.as_str()),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    let posted = attacker.post("/login", &fields).await;
    assert_page(&posted, StatusCode::FORBIDDEN, "not accepted");
    // Nobody was signed in by any of it.
    assert!(
        !victim
            .cookies
            .iter()
            .any(|(n, _)| n == "introspectd_session")
    );
    // A form that is not form-encoded, or without its request.
    let missing = attacker.post("/login", &[("username", "alice")]).await;
    assert_page(&missing, StatusCode::BAD_REQUEST, "cannot continue");
}

async fn wrong_passwords_are_budgeted(backend: Backend) {
    common::run_with(
        backend,
        |config| {
            config.rate_limit.enabled = true;
            config.rate_limit.password_failures_per_username = 2;
        },
        |app| async move {
            let f = fixture(app).await;
            let query = authorize_query(&f.client_id, &[]);
            // Alice signed in from her own browser before.
            let mut alice = Browser::new(&f.app);
            let consent = alice.sign_in(&query).await;
            code_of(&alice.decide(&consent, "allow").await);
            alice.post("/logout", &[]).await;
            alice.cookies.retain(|(n, _)| n != "introspectd_session");
            // A guesser spends the username's budget.
            let mut guesser = Browser::new(&f.app);
            let page = guesser.authorize(&query).await;
            for _ in 0..2 {
                let refused = guesser.login(&page, "alice", "guess-guess").await;
                assert_page(&refused, StatusCode::OK, "incorrect");
            }
            let throttled = guesser.login(&page, "alice", "guess-guess").await;
            assert_page(&throttled, StatusCode::TOO_MANY_REQUESTS, "Try again in");
            assert!(throttled.headers.contains_key(header::RETRY_AFTER));
            // Even the right password is refused to the guesser now...
            let right = guesser.login(&page, "ALICE", PASSWORD).await;
            assert_page(&right, StatusCode::TOO_MANY_REQUESTS, "Try again in");
            // ...and unknown usernames are budgeted alike.
            for _ in 0..2 {
                guesser.login(&page, "nobody", "guess-guess").await;
            }
            let nobody = guesser.login(&page, "nobody", "guess-guess").await;
            assert_eq!(nobody.status, StatusCode::TOO_MANY_REQUESTS);
            // Alice's browser, which proved her password before, is never refused it.
            let page = alice.authorize(&query).await;
            let signed_in = alice.login(&page, "alice", PASSWORD).await;
            assert_eq!(
                signed_in.status,
                StatusCode::SEE_OTHER,
                "{}",
                text(&signed_in)
            );
            // A public client: the consent page again, one click.
            let back = alice.follow(&signed_in).await;
            code_of(&alice.decide(&back, "allow").await);
        },
    )
    .await;
}

// --- public clients, CORS, metadata ---------------------------------------------------

async fn public_clients_revoke_but_never_introspect(app: TestApp) {
    let f = fixture(app).await;
    let code = code_for(&f, &[]).await;
    let tokens = exchange(&f.app, &f.client_id, &code, &[]).await;
    let refresh = tokens.json["refresh_token"].as_str().unwrap();
    let access = tokens.json["access_token"].as_str().unwrap();
    let by_id = form(&[("token", access), ("client_id", f.client_id.as_str())]);
    let introspected = post_form(&f.app.router, "/introspect", None, &by_id).await;
    assert_error(&introspected, StatusCode::UNAUTHORIZED, "invalid_client");
    let by_id = form(&[("token", refresh), ("client_id", f.client_id.as_str())]);
    let revoked = post_form(&f.app.router, "/revoke", None, &by_id).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(
        introspect(&f, access).await["active"],
        false,
        "the grant is gone"
    );
}

fn cors_request(method: &str, path: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::ORIGIN, "https://inspector.example")
}

async fn token_and_revoke_answer_cors_and_nothing_else_does(app: TestApp) {
    let f = fixture(app).await;
    for path in ["/token", "/revoke"] {
        let preflight = cors_request("OPTIONS", path)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization, content-type",
            )
            .body(Body::empty())
            .unwrap();
        let answer = f.app.send(preflight).await;
        assert!(answer.status.is_success(), "{path}: {answer:?}");
        assert_eq!(answer.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let methods = answer.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap();
        assert!(methods.contains("POST"), "{methods}");
        let allowed = answer.headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap();
        assert!(
            allowed.to_ascii_lowercase().contains("authorization"),
            "{allowed}"
        );
        assert!(
            !answer
                .headers
                .contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
        );
        let post = cors_request("POST", path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form(&[
                ("grant_type", "x"),
                ("client_id", f.client_id.as_str()),
            ])))
            .unwrap();
        let answer = f.app.send(post).await;
        assert_eq!(
            answer.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "*",
            "{path}"
        );
    }
    for (method, path) in [
        ("POST", "/introspect"),
        ("GET", "/authorize"),
        ("POST", "/login"),
        ("POST", "/consent"),
        ("POST", "/logout"),
    ] {
        let request = cors_request(method, path).body(Body::empty()).unwrap();
        let answer = f.app.send(request).await;
        assert!(
            !answer
                .headers
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            "{method} {path}"
        );
        let preflight = cors_request("OPTIONS", path)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, method)
            .body(Body::empty())
            .unwrap();
        let answer = f.app.send(preflight).await;
        assert!(
            !answer
                .headers
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            "OPTIONS {path}"
        );
    }
}

async fn the_stylesheet_is_served_for_long(app: TestApp) {
    let response = app
        .send(
            Request::get("/assets/introspectd.css")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.headers[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
    assert!(
        response.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    assert!(text(&response).contains("prefers-color-scheme"));
}

both_stores!(
    a_user_signs_in_consents_and_the_client_gets_tokens,
    no_resource_asked_means_the_clients_registered_resources,
    unverified_clients_and_redirects_are_shown_never_redirected_to,
    request_errors_go_back_to_the_client,
    denying_sends_access_denied,
    pkce_errors_at_the_token_endpoint,
    code_errors_are_one_invalid_grant,
    a_code_used_twice_revokes_what_it_gave,
    an_expired_code_is_refused,
    a_code_is_never_redeemed_for_a_user_disabled_meanwhile,
    remembered_consent_skips_the_pages_of_a_confidential_client,
    a_public_client_is_asked_again_on_every_sign_in,
    an_expired_session_signs_in_again,
    signing_out_ends_the_session,
    a_disabled_user_cannot_sign_in,
    an_enabled_user_signs_in_again,
    a_token_without_audience_is_logged_with_its_client,
    a_refused_redirect_uri_is_logged_with_the_registered_ones,
    forms_from_elsewhere_are_refused,
    public_clients_revoke_but_never_introspect,
    token_and_revoke_answer_cors_and_nothing_else_does,
    the_stylesheet_is_served_for_long,
);

both_backends!(wrong_passwords_are_budgeted);

async fn sign_in_off_serves_no_pages(backend: Backend) {
    common::run_with(
        backend,
        |config| config.login.enabled = false,
        |app| async move {
            let response = app
                .send(Request::get("/authorize").body(Body::empty()).unwrap())
                .await;
            assert_eq!(response.status, StatusCode::NOT_FOUND);
            let doc = app
                .send(
                    Request::get("/.well-known/oauth-authorization-server")
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .json;
            assert!(doc.get("authorization_endpoint").is_none(), "{doc}");
        },
    )
    .await;
}

both_backends!(sign_in_off_serves_no_pages);

/// `login.local_users = false`: no password form is shown, and none is taken.
async fn without_local_users_no_password_signs_in(backend: Backend) {
    common::run_with(
        backend,
        |config| config.login.local_users = false,
        |app| async move {
            let f = fixture(app).await;
            let mut browser = Browser::new(&f.app);
            let page = browser.authorize(&authorize_query(&f.client_id, &[])).await;
            assert_page(&page, StatusCode::OK, "turned off");
            assert!(!text(&page).contains("name=\"password\""));
            // A form made up from a page with one is refused all the same.
            let request = introspectd::signin::binding::pending_form(
                &f.app.state.signin.as_ref().unwrap().key,
                &introspectd::signin::binding::Browser::from_cookie(
                    &f.app.state.signin.as_ref().unwrap().key,
                    &browser.cookies[0].1,
                )
                .unwrap(),
                &authorize_query(&f.client_id, &[]),
                now(),
            );
            let fields = [
                ("request", request.request.as_str()),
                ("csrf_token", request.csrf_token.as_str()),
                ("username", "alice"),
                ("password", PASSWORD),
            ];
            let posted = browser.post("/login", &fields).await;
            assert_page(&posted, StatusCode::BAD_REQUEST, "cannot continue");
            assert!(
                !browser
                    .cookies
                    .iter()
                    .any(|(n, _)| n == "introspectd_session")
            );
        },
    )
    .await;
}

both_backends!(without_local_users_no_password_signs_in);

// --- failure budgets shared through the store, proven browsers ------------------------

/// Sign-in with the password budgets on: `per_username` wrong passwords per username at
/// one address, and as many from anywhere before delays begin.
async fn with_budgets<F, Fut>(backend: Backend, per_username: u32, test: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    common::run_with(
        backend,
        |config| {
            config.rate_limit.enabled = true;
            config.rate_limit.per_second = 10_000;
            config.rate_limit.burst = 10_000;
            config.rate_limit.password_failures_per_username = per_username;
        },
        |app| async move { test(fixture(app).await).await },
    )
    .await;
}

/// Moves every counted failure `seconds` into the past, as if that long went by.
async fn age_failures(app: &TestApp, seconds: i64) {
    let sql = "UPDATE signin_failures SET first_at = first_at - $1, \
               last_at = last_at - $1, expires_at = expires_at - $1";
    let url = app.config.database_url.as_str();
    match app.store.backend() {
        "sqlite" => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(sql).bind(seconds).execute(&pool).await.unwrap();
            pool.close().await;
        }
        _ => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).bind(seconds).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

/// The seconds a throttled answer says to wait.
fn retry_after(response: &TestResponse) -> u64 {
    response.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

impl Browser<'_> {
    /// Signs Alice in from this browser, then ends the session as the cookie's
    /// expiry would: the browser keeps only what it proved.
    async fn prove_alice(&mut self, query: &str) {
        let consent = self.sign_in(query).await;
        assert_page(&consent, StatusCode::OK, "name=\"decision\"");
        self.cookies.retain(|(n, _)| n != "introspectd_session");
    }

    /// One login attempt from a fresh login page.
    async fn try_password(&mut self, query: &str, username: &str, password: &str) -> TestResponse {
        let page = self.authorize(query).await;
        assert_page(&page, StatusCode::OK, "name=\"password\"");
        self.login(&page, username, password).await
    }
}

/// A browser that proved its user may try wrong passwords on a budget of its own only:
/// past it, it is budgeted as any browser, refused before the password is checked, so
/// that even the right password is refused (had it been checked, it would sign in).
async fn a_proven_browser_guesses_within_its_own_budget_only(backend: Backend) {
    with_budgets(backend, 3, |f| async move {
        let query = authorize_query(&f.client_id, &[]);
        let mut stolen = Browser::at(&f.app, "198.51.100.7");
        stolen.prove_alice(&query).await;
        for guess in 0..5 {
            let wrong = stolen.try_password(&query, "alice", "guess-guess").await;
            assert_page(&wrong, StatusCode::OK, "incorrect");
            assert!(!wrong.headers.contains_key(header::RETRY_AFTER), "{guess}");
        }
        // Five consecutive failures of alice: past her three free ones, a delay.
        let throttled = stolen.try_password(&query, "alice", "guess-guess").await;
        assert_page(&throttled, StatusCode::TOO_MANY_REQUESTS, "Try again in");
        assert!(retry_after(&throttled) >= 1);
        let right = stolen.try_password(&query, "alice", PASSWORD).await;
        assert_page(&right, StatusCode::TOO_MANY_REQUESTS, "Try again in");
        assert!(
            !stolen
                .cookies
                .iter()
                .any(|(n, _)| n == "introspectd_session")
        );
    })
    .await;
}

/// A guesser spends alice's budget at its address: the right password is refused there.
async fn spend_alices_budget(guesser: &mut Browser<'_>, query: &str) {
    let wrong = guesser.try_password(query, "alice", "guess-guess").await;
    assert_page(&wrong, StatusCode::OK, "incorrect");
    let refused = guesser.try_password(query, "alice", PASSWORD).await;
    assert_page(&refused, StatusCode::TOO_MANY_REQUESTS, "Try again in");
}

/// What a browser remembers of a user ends when their password is set again, or they
/// are disabled (even once enabled again) or deleted.
async fn proven_browsers_are_forgotten_when_credentials_change(backend: Backend) {
    with_budgets(backend, 1, |f| async move {
        let query = authorize_query(&f.client_id, &[]);
        // Alice's browser and a guesser behind one address.
        let shared = "203.0.113.40";
        let mut alice = Browser::at(&f.app, shared);
        let mut guesser = Browser::at(&f.app, shared);
        alice.prove_alice(&query).await;
        spend_alices_budget(&mut guesser, &query).await;
        let signed_in = alice.try_password(&query, "alice", PASSWORD).await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            text(&signed_in)
        );
        alice.cookies.retain(|(n, _)| n != "introspectd_session");

        // A new password (the same one, even) ends what the browser proved.
        let same = Some(introspectd::secret::Password::new(PASSWORD));
        admin::set_user_password(&f.app.store, "alice", same, now())
            .await
            .unwrap();
        spend_alices_budget(&mut guesser, &query).await;
        let forgotten = alice.try_password(&query, "alice", PASSWORD).await;
        assert_page(&forgotten, StatusCode::TOO_MANY_REQUESTS, "Try again in");

        // Proven again once the budgets are forgotten; then disabled and enabled.
        age_failures(&f.app, 100_000).await;
        alice.prove_alice(&query).await;
        admin::disable_user(&f.app.store, "alice", now())
            .await
            .unwrap();
        f.app
            .store
            .set_user_disabled(&f.user_id, false, now())
            .await
            .unwrap();
        spend_alices_budget(&mut guesser, &query).await;
        let forgotten = alice.try_password(&query, "alice", PASSWORD).await;
        assert_page(&forgotten, StatusCode::TOO_MANY_REQUESTS, "Try again in");

        // Deleted, and a new alice made: nothing proven of her.
        age_failures(&f.app, 100_000).await;
        alice.prove_alice(&query).await;
        admin::delete_user(&f.app.store, "alice", now())
            .await
            .unwrap();
        f.app.user("alice", PASSWORD).await;
        spend_alices_budget(&mut guesser, &query).await;
        let forgotten = alice.try_password(&query, "alice", PASSWORD).await;
        assert_page(&forgotten, StatusCode::TOO_MANY_REQUESTS, "Try again in");
    })
    .await;
}

/// Wrong passwords from other addresses slow a user down, more with each, but never
/// lock the user out: her own browser signs in at once, and any other after the delay.
async fn outsiders_slow_a_user_down_but_never_lock_her_out(backend: Backend) {
    with_budgets(backend, 2, |f| async move {
        let query = authorize_query(&f.client_id, &[]);
        let home = "192.0.2.10";
        let mut alice = Browser::at(&f.app, home);
        alice.prove_alice(&query).await;
        // Past two wrong passwords at one address, that address waits out the window.
        let mut attacker = Browser::at(&f.app, "203.0.113.1");
        for _ in 0..2 {
            let wrong = attacker.try_password(&query, "alice", "guess-guess").await;
            assert_page(&wrong, StatusCode::OK, "incorrect");
        }
        let window = attacker.try_password(&query, "alice", "guess-guess").await;
        assert_page(
            &window,
            StatusCode::TOO_MANY_REQUESTS,
            "Try again in 5 minutes",
        );
        assert!(retry_after(&window) > 200);
        // From other addresses each further failure doubles alice's delay.
        let mut waits = Vec::new();
        for i in 2..6 {
            age_failures(&f.app, 1_000).await;
            let mut other = Browser::at(&f.app, &format!("203.0.113.{i}"));
            let wrong = other.try_password(&query, "alice", "guess-guess").await;
            assert_page(&wrong, StatusCode::OK, "incorrect");
            let slowed = other.try_password(&query, "alice", "guess-guess").await;
            assert_page(
                &slowed,
                StatusCode::TOO_MANY_REQUESTS,
                "Try again in 1 minute",
            );
            waits.push(retry_after(&slowed));
        }
        // 2, 4, 8 and 16 seconds after the latest failure (less what has passed).
        for (wait, delay) in waits.iter().zip([2, 4, 8, 16]) {
            assert!((delay - 1..=delay).contains(wait), "{waits:?}");
        }
        // Alice's own browser signs in at once, whatever the delay.
        let signed_in = alice.try_password(&query, "alice", PASSWORD).await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            text(&signed_in)
        );
        // That ended the count: a new browser at home signs in too.
        let mut laptop = Browser::at(&f.app, home);
        let signed_in = laptop.try_password(&query, "alice", PASSWORD).await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            text(&signed_in)
        );
        // Counted again, a new browser waits out the delay, then signs in.
        for i in 2..7 {
            age_failures(&f.app, 1_000).await;
            let mut other = Browser::at(&f.app, &format!("203.0.113.{i}"));
            other.try_password(&query, "alice", "guess-guess").await;
        }
        let mut phone = Browser::at(&f.app, home);
        let slowed = phone.try_password(&query, "alice", PASSWORD).await;
        assert_page(
            &slowed,
            StatusCode::TOO_MANY_REQUESTS,
            "Try again in 1 minute",
        );
        age_failures(&f.app, 20).await;
        let signed_in = phone.try_password(&query, "alice", PASSWORD).await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            text(&signed_in)
        );
    })
    .await;
}

/// Several instances on one store spend one budget.
async fn instances_share_the_failure_budgets(backend: Backend) {
    with_budgets(backend, 2, |f| async move {
        let query = authorize_query(&f.client_id, &[]);
        let (_, sibling) = f.app.sibling().await;
        let mut guesser = Browser::at(&f.app, "203.0.113.9");
        for _ in 0..2 {
            let wrong = guesser.try_password(&query, "alice", "guess-guess").await;
            assert_page(&wrong, StatusCode::OK, "incorrect");
        }
        guesser.router = Some(sibling);
        let elsewhere = guesser.try_password(&query, "alice", "guess-guess").await;
        assert_page(&elsewhere, StatusCode::TOO_MANY_REQUESTS, "Try again in");
        // Unknown usernames alike, begun on the sibling and refused on the first.
        for _ in 0..2 {
            let wrong = guesser.try_password(&query, "nobody", "guess-guess").await;
            assert_page(&wrong, StatusCode::OK, "incorrect");
        }
        guesser.router = None;
        let nobody = guesser.try_password(&query, "nobody", "guess-guess").await;
        assert_page(&nobody, StatusCode::TOO_MANY_REQUESTS, "Try again in");
    })
    .await;
}

both_backends!(
    a_proven_browser_guesses_within_its_own_budget_only,
    proven_browsers_are_forgotten_when_credentials_change,
    outsiders_slow_a_user_down_but_never_lock_her_out,
    instances_share_the_failure_budgets,
);

// --- cookies: tossing, binding, sign-out ----------------------------------------------

/// Two cookies of one of our names (another site of the domain set one) read as a
/// signed-out visit of a new browser.
async fn two_cookies_of_one_name_are_signed_out(app: TestApp) {
    let f = fixture(app).await;
    let query = authorize_query(&f.client_id, &[]);
    let mut browser = Browser::new(&f.app);
    let consent = browser.sign_in(&query).await;
    assert_page(&consent, StatusCode::OK, "name=\"decision\"");
    for name in ["introspectd_session", "introspectd_browser"] {
        let tossed = || {
            let mut tossed = Browser::new(&f.app);
            tossed.cookies = browser.cookies.clone();
            let value = tossed
                .cookies
                .iter()
                .find(|(n, _)| n == name)
                .unwrap()
                .1
                .clone();
            tossed.cookies.push((name.to_owned(), value));
            tossed
        };
        let decided = tossed().decide(&consent, "allow").await;
        assert_page(&decided, StatusCode::BAD_REQUEST, "Cookies are needed");
        let page = tossed().authorize(&query).await;
        assert_page(&page, StatusCode::OK, "name=\"password\"");
    }
    // One of each still signs in.
    let page = browser.authorize(&query).await;
    assert_page(&page, StatusCode::OK, "name=\"decision\"");
}

/// A session cookie counts only with the browser cookie it was made with: a pair
/// tossed in from another browser is no session.
async fn a_session_is_bound_to_its_browser(app: TestApp) {
    let f = fixture(app).await;
    let query = authorize_query(&f.client_id, &[]);
    let mut attacker = Browser::new(&f.app);
    attacker.sign_in(&query).await;
    let session = |b: &Browser<'_>| {
        b.cookies
            .iter()
            .find(|(n, _)| n == "introspectd_session")
            .unwrap()
            .clone()
    };
    let mut victim = Browser::new(&f.app);
    victim.authorize(&query).await;
    victim.cookies.push(session(&attacker));
    let page = victim.authorize(&query).await;
    assert_page(&page, StatusCode::OK, "name=\"password\"");
    // The attacker's own browser is still signed in.
    let page = attacker.authorize(&query).await;
    assert_page(&page, StatusCode::OK, "name=\"decision\"");
}

/// `POST /logout` without cookies, or without the sign-out token, ends nothing and
/// clears no cookie.
async fn logout_without_its_token_ends_nothing(app: TestApp) {
    let f = fixture(app).await;
    let query = authorize_query(&f.client_id, &[]);
    let mut browser = Browser::new(&f.app);
    browser.sign_in(&query).await;
    // A cross-site form: the browser sends no SameSite=Lax cookie with it.
    let mut cross_site = Browser::new(&f.app);
    let posted = cross_site.post("/logout", &[("csrf_token", "")]).await;
    assert_page(&posted, StatusCode::OK, "signed out");
    assert!(
        !posted.headers.contains_key(header::SET_COOKIE),
        "{:?}",
        posted.headers
    );
    // The browser's own cookies without the token.
    let forged = browser.post("/logout", &[]).await;
    assert_page(&forged, StatusCode::FORBIDDEN, "not accepted");
    assert!(!forged.headers.contains_key(header::SET_COOKIE));
    let page = browser.authorize(&query).await;
    assert_page(&page, StatusCode::OK, "name=\"decision\"");
}

both_stores!(
    two_cookies_of_one_name_are_signed_out,
    a_session_is_bound_to_its_browser,
    logout_without_its_token_ends_nothing,
);

/// On https the cookies are `__Host-` ones (`Secure`, `Path=/`, no `Domain`): no other
/// site of the domain can set them. Cookies without the prefix are not ours.
async fn https_issuers_set_host_cookies(backend: Backend) {
    common::run_with(
        backend,
        |config| config.issuer = "https://auth.example".to_owned(),
        |app| async move {
            let f = fixture(app).await;
            let query = authorize_query(&f.client_id, &[]);
            let mut browser = Browser::new(&f.app);
            let page = browser.authorize(&query).await;
            let set: Vec<&str> = page
                .headers
                .get_all(header::SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(set.len(), 1, "{set:?}");
            assert!(set[0].starts_with("__Host-introspectd_browser="), "{set:?}");
            assert!(set[0].contains("; Secure") && set[0].contains("; Path=/"));
            assert!(!set[0].contains("Domain"), "{set:?}");
            let signed_in = browser.login(&page, "alice", PASSWORD).await;
            assert!(
                browser
                    .cookies
                    .iter()
                    .any(|(n, _)| n == "__Host-introspectd_session"),
                "{:?}",
                signed_in.headers
            );
            let consent = browser.follow(&signed_in).await;
            assert_page(&consent, StatusCode::OK, "name=\"decision\"");
            // The same values under the plain names sign nobody in.
            let mut plain = Browser::new(&f.app);
            plain.cookies = browser
                .cookies
                .iter()
                .map(|(n, v)| (n.trim_start_matches("__Host-").to_owned(), v.clone()))
                .collect();
            let page = plain.authorize(&query).await;
            assert_page(&page, StatusCode::OK, "name=\"password\"");
        },
    )
    .await;
}

both_backends!(https_issuers_set_host_cookies);

// --- the audit trail ------------------------------------------------------------------

/// The events stored so far, once the writer has written what it was handed.
async fn events(app: &TestApp) -> Vec<Value> {
    app.state.audit.flush().await;
    let query = introspectd::store::EventQuery {
        limit: 1_000,
        ..Default::default()
    };
    let rows = app.store.events(&query).await.unwrap();
    rows.iter().map(introspectd::audit::view).collect()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// A whole sign-in, a refused and a throttled one, and a refresh token presented twice
/// each leave their events, with the client, the user, the address and the request id;
/// no event holds a password, a code or a token.
async fn sign_ins_leave_an_audit_trail(backend: Backend) {
    common::run_with(
        backend,
        |config| {
            config.rate_limit.enabled = true;
            config.rate_limit.password_failures_per_username = 2;
        },
        |app| async move {
            let f = fixture(app).await;
            let query = authorize_query(&f.client_id, &[("scope", "read")]);
            let mut browser = Browser::new(&f.app);
            let consent = browser.sign_in(&query).await;
            let code = code_of(&browser.decide(&consent, "allow").await);
            let tokens = exchange(&f.app, &f.client_id, &code, &[]).await;
            assert_eq!(tokens.status, StatusCode::OK, "{tokens:?}");
            let access = tokens.json["access_token"].as_str().unwrap().to_owned();
            let refresh = tokens.json["refresh_token"].as_str().unwrap().to_owned();
            let params = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("client_id", f.client_id.as_str()),
            ];
            let body = form(&params);
            let rotated = post_form(&f.app.router, "/token", None, &body).await;
            assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");
            let reused = post_form(&f.app.router, "/token", None, &body).await;
            assert_error(&reused, StatusCode::BAD_REQUEST, "invalid_grant");
            // A guesser, refused twice, then throttled.
            let mut guesser = Browser::new(&f.app);
            let page = guesser.authorize(&query).await;
            for _ in 0..2 {
                let refused = guesser.login(&page, "alice", "guess-guess").await;
                assert_page(&refused, StatusCode::OK, "incorrect");
            }
            let throttled = guesser.login(&page, "alice", "guess-guess").await;
            assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
            // Someone who is no user at all.
            let nobody = guesser.login(&page, "nobody", "guess-guess").await;
            assert_page(&nobody, StatusCode::OK, "incorrect");

            let events = events(&f.app).await;
            let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
            assert_eq!(
                kinds,
                [
                    "signin.succeeded",
                    "consent.granted",
                    "token.issued",
                    "token.issued",
                    "token.reuse_detected",
                    "signin.failed",
                    "signin.failed",
                    "signin.locked",
                    "signin.failed",
                ],
                "{events:#?}"
            );
            for event in &events[..5] {
                assert_eq!(event["client_id"], f.client_id.as_str(), "{event}");
                assert_eq!(event["user_id"], f.user_id.as_str(), "{event}");
                assert!(event["address"].is_string(), "{event}");
                assert!(event["request_id"].is_string(), "{event}");
                assert!(event["time"].as_str().unwrap().ends_with('Z'), "{event}");
            }
            let signed_in = &of_type(&events, "signin.succeeded")[0];
            assert_eq!(signed_in["detail"]["method"], "password");
            let issued = of_type(&events, "token.issued");
            assert_eq!(issued[0]["detail"]["grant_type"], "authorization_code");
            assert_eq!(issued[1]["detail"]["grant_type"], "refresh_token");
            let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&access).unwrap();
            let jti = claims["jti"].clone();
            assert_eq!(issued[0]["detail"]["jti"], jti);
            let reuse = &of_type(&events, "token.reuse_detected")[0];
            assert_eq!(reuse["detail"]["presented"], "refresh_token");
            // The guesser's refusals name the user they aimed at; the unknown name, no one.
            let failed = of_type(&events, "signin.failed");
            assert_eq!(failed[0]["user_id"], f.user_id.as_str());
            assert!(failed[2].get("user_id").is_none(), "{}", failed[2]);
            assert_eq!(
                of_type(&events, "signin.locked")[0]["user_id"],
                f.user_id.as_str()
            );

            let trail = serde_json::to_string(&events).unwrap();
            let rotated_refresh = rotated.json["refresh_token"].as_str().unwrap();
            for secret in [
                PASSWORD,
                "guess-guess",
                &code,
                &access,
                &refresh,
                rotated_refresh,
                VERIFIER,
            ] {
                assert!(!trail.contains(secret), "{secret} is in the trail");
            }
            let scraped = common::scrape(&f.app.metrics).await;
            let signins = |outcome| {
                let labels = [("outcome", outcome), ("method", "password")];
                common::metric_value(&scraped, "introspectd_signins_total", &labels)
            };
            assert!(signins("succeeded") >= 1.0, "{scraped}");
            assert!(signins("locked") >= 1.0, "{scraped}");
        },
    )
    .await;
}

both_backends!(sign_ins_leave_an_audit_trail);
