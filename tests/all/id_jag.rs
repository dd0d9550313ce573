//! Enterprise-managed authorization (the MCP extension): an MCP client presents an
//! Identity Assertion JWT Authorization Grant (ID-JAG) from the organisation's provider
//! at POST /token with the JWT bearer grant, and gets a token for the person without any
//! page. The provider is a real HTTP server on loopback that serves discovery and a
//! JWKS and signs with its own key (`common::idp`); against SQLite and Postgres.

use crate::common;

use std::time::Duration;

use axum::http::StatusCode;
use common::idp::{IdentityProvider, SigningKey, id_jag_header};
use common::{Backend, TestApp, TestClient, TestResponse, assert_error, introspect_as};
use introspectd::admin::{self, NewClient};
use introspectd::config::{Config, ProviderConfig};
use introspectd::http::{AppState, router};
use introspectd::secret::ProviderSecret;
use introspectd::store::Store;
use introspectd::token::now;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const MCP: &str = "https://mcp.example/";
const OTHER_MCP: &str = "https://other-mcp.example/";
const NEXT: &str = "https://next.example/api";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const REFUSED: &str = "the assertion is invalid";

/// The provider as `[[login.providers]]` names it, trusted for identity assertions.
fn provider_config(idp: &IdentityProvider) -> ProviderConfig {
    ProviderConfig {
        id: "corp".to_owned(),
        name: "Corp".to_owned(),
        issuer: idp.issuer.clone(),
        client_id: "introspectd".to_owned(),
        client_secret: Some(ProviderSecret::new("provider-secret")),
        client_secret_env: None,
        scopes: vec!["openid".to_owned()],
        allowed_email_domains: Vec::new(),
        id_jag: true,
    }
}

/// The provider, the app trusting it, an MCP client given the grant, and the MCP server
/// its tokens are for.
struct Scene {
    idp: IdentityProvider,
    app: TestApp,
    agent: TestClient,
    server: TestClient,
}

async fn scene(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<Scene> {
    let idp = IdentityProvider::start().await;
    let provider = provider_config(&idp);
    let app = TestApp::start(backend, |c| {
        c.login.providers = vec![provider];
        adjust(c);
    })
    .await?;
    discovered(&app.state).await;
    let agent = app.client_with(agent_client("agent")).await;
    let server = app.client("mcp-server", &[MCP, OTHER_MCP]).await;
    Some(Scene {
        idp,
        app,
        agent,
        server,
    })
}

/// An MCP client given the JWT bearer grant, `read write` and two MCP servers.
fn agent_client(name: &str) -> NewClient {
    NewClient {
        name: name.to_owned(),
        scope: Some("read write".to_owned()),
        grant_types: vec!["jwt-bearer".to_owned()],
        resources: vec![MCP.to_owned(), OTHER_MCP.to_owned()],
        ..NewClient::default()
    }
}

/// Waits until every provider of `state` is discovered.
async fn discovered(state: &AppState) {
    let signin = state.signin.as_ref().expect("sign-in on");
    for provider in signin.providers.iter() {
        tokio::time::timeout(Duration::from_secs(30), provider.wait_available())
            .await
            .expect("the provider is discovered");
    }
}

impl Scene {
    /// Claims for `sub` and the agent, meant for this server.
    fn claims(&self, sub: &str) -> Value {
        self.idp
            .claims(&self.app.config.issuer, &self.agent.id, sub)
    }

    /// Alice, as the provider names her, with her verified email.
    fn alice(&self) -> Value {
        let mut claims = self.claims("00u-alice");
        claims["email"] = json!("alice@corp.example");
        claims["email_verified"] = json!(true);
        claims["preferred_username"] = json!("alice");
        claims
    }

    async fn present(&self, client: &TestClient, assertion: &str) -> TestResponse {
        let params = [("grant_type", GRANT_TYPE), ("assertion", assertion)];
        self.app.post(client, "/token", &params).await
    }

    /// Presents `claims`, signed by the provider, as the agent.
    async fn assert_claims(&self, claims: &Value) -> TestResponse {
        self.present(&self.agent, &self.idp.mint(claims)).await
    }

    async fn user_id(&self, username: &str) -> String {
        admin::show_user(&self.app.store, username)
            .await
            .expect("the user exists")
            .user_id
    }
}

fn grants_jwt_bearer(metadata: &Value) -> bool {
    metadata["grant_types_supported"]
        .as_array()
        .expect("grant_types_supported")
        .contains(&json!(GRANT_TYPE))
}

async fn metadata(app: &TestApp) -> Value {
    let request = axum::http::Request::get("/.well-known/oauth-authorization-server")
        .body(axum::body::Body::empty())
        .unwrap();
    app.send(request).await.json
}

async fn an_enterprise_client_gets_a_token_for_the_user_without_a_page(backend: Backend) {
    let Some(s) = scene(backend, |_| {}).await else {
        return;
    };
    assert!(grants_jwt_bearer(&metadata(&s.app).await));
    let mut claims = s.alice();
    claims["scope"] = json!("read");
    claims["resource"] = json!(MCP);
    let response = s.assert_claims(&claims).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    assert_eq!(response.headers["cache-control"], "no-store");
    assert_eq!(response.json["token_type"], "Bearer");
    assert_eq!(response.json["scope"], "read");
    assert!(response.json.get("refresh_token").is_none(), "{response:?}");
    assert!(response.json.get("issued_token_type").is_none());
    let expires_in = response.json["expires_in"].as_i64().unwrap();
    assert!(expires_in > 0, "{response:?}");
    let token = response.json["access_token"].as_str().unwrap();

    // The person became a local user linked to the provider's `sub`, named as the
    // provider would have her named at a first sign-in.
    let alice = s.user_id("alice").await;
    assert_ne!(alice, "00u-alice");
    let answer = introspect_as(&s.app.router, &s.server, token).await;
    assert_eq!(answer.json["active"], true, "{answer:?}");
    assert_eq!(answer.json["sub"], alice.as_str());
    assert_eq!(answer.json["username"], "alice");
    assert_eq!(answer.json["client_id"], s.agent.id.as_str());
    assert_eq!(answer.json["aud"], MCP);
    assert_eq!(answer.json["scope"], "read");

    // The next assertion for her finds the same user; naming no resource and no scope,
    // it gets what the client may hold.
    let response = s.assert_claims(&s.alice()).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    assert_eq!(response.json["scope"], "read write");
    let token = response.json["access_token"].as_str().unwrap();
    let answer = introspect_as(&s.app.router, &s.server, token).await;
    assert_eq!(answer.json["sub"], alice.as_str());
    assert_eq!(answer.json["aud"], json!([MCP, OTHER_MCP]));
    assert_eq!(admin::list_users(&s.app.store).await.unwrap().len(), 1);
}

/// Every assertion that cannot be used, for whatever reason, gets the one answer, and
/// none of them creates a user.
async fn every_unusable_assertion_gets_one_answer(backend: Backend) {
    let Some(s) = scene(backend, |_| {}).await else {
        return;
    };
    let now = now();
    type Spoil = fn(&mut Value, i64);
    let spoiled: [(&str, Spoil); 12] = [
        ("another issuer", |c, _| {
            c["iss"] = json!("https://idp.other.example")
        }),
        ("another audience", |c, _| {
            c["aud"] = json!("https://as.other.example")
        }),
        ("a second audience", |c, _| {
            c["aud"] = json!([c["aud"].clone(), "https://as.other.example"])
        }),
        ("another client", |c, _| {
            c["client_id"] = json!("someone-else")
        }),
        ("no subject", |c, _| c["sub"] = json!("")),
        ("no jti", |c, _| {
            c.as_object_mut().unwrap().remove("jti");
        }),
        ("expired", |c, now| {
            c["iat"] = json!(now - 100);
            c["exp"] = json!(now - 1);
        }),
        ("issued in the future", |c, now| {
            c["iat"] = json!(now + 120);
            c["exp"] = json!(now + 200);
        }),
        ("lives too long", |c, now| c["exp"] = json!(now + 301)),
        ("no exp", |c, _| {
            c.as_object_mut().unwrap().remove("exp");
        }),
        ("a sub that names no one", |c, _| {
            c["sub"] = json!("a\u{7}b")
        }),
        ("a jti too long", |c, _| c["jti"] = json!("j".repeat(257))),
    ];
    let mut assertions: Vec<(String, String)> = spoiled
        .iter()
        .map(|(why, spoil)| {
            let mut claims = s.alice();
            spoil(&mut claims, now);
            (why.to_string(), s.idp.mint(&claims))
        })
        .collect();
    let claims = s.alice();
    let mut header = id_jag_header();
    header.typ = Some("JWT".to_owned());
    assertions.push(("an ID token's type".into(), s.idp.key.sign(header, &claims)));
    let mut header = id_jag_header();
    header.typ = None;
    assertions.push(("no type".into(), s.idp.key.sign(header, &claims)));
    // Another key under the provider's `kid`, and a key the provider never published.
    let forger = SigningKey::generate("k1");
    assertions.push((
        "a forged signature".into(),
        forger.sign(id_jag_header(), &claims),
    ));
    let stranger = SigningKey::generate("k9");
    assertions.push((
        "an unknown key".into(),
        stranger.sign(id_jag_header(), &claims),
    ));
    let mut hmac = Header::new(Algorithm::HS256);
    hmac.typ = Some("oauth-id-jag+jwt".to_owned());
    let secret = EncodingKey::from_secret(b"provider-secret");
    let hs256 = jsonwebtoken::encode(&hmac, &claims, &secret).unwrap();
    assertions.push(("HS256 with the client secret".into(), hs256));
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "oauth-id-jag+jwt"})),
        b64(&claims)
    );
    assertions.push(("alg none".into(), unsigned));
    assertions.push(("not a JWT".into(), "not-a-jwt".to_owned()));
    let signed = s.idp.mint(&claims);
    let (head, _) = signed.rsplit_once('.').unwrap();
    let mut tampered = claims.clone();
    tampered["sub"] = json!("00u-mallory");
    let (_, sig) = signed.rsplit_once('.').unwrap();
    let swapped = format!(
        "{}.{}.{sig}",
        head.split('.').next().unwrap(),
        b64(&tampered)
    );
    assertions.push(("claims swapped under a signature".into(), swapped));

    for (why, assertion) in &assertions {
        let response = s.present(&s.agent, assertion).await;
        assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
        assert_eq!(response.json["error_description"], REFUSED, "{why}");
    }
    assert!(
        admin::list_users(&s.app.store).await.unwrap().is_empty(),
        "no refused assertion created a user"
    );
    // The claims themselves were fine: signed by the provider, they are taken.
    let response = s.assert_claims(&claims).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
}

fn b64(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A second instance over the same database, its provider discovered.
async fn sibling(app: &TestApp) -> axum::Router {
    let store = Store::connect(&app.config).await.expect("connect");
    let state = AppState::build(app.config.clone(), store)
        .await
        .expect("state");
    discovered(&state).await;
    router(state)
}

/// The `jti` is used once, whichever instance sees the assertion first.
async fn an_assertion_is_used_once_on_every_instance(backend: Backend) {
    let Some(s) = scene(backend, |_| {}).await else {
        return;
    };
    let other = sibling(&s.app).await;
    let on = |router: &axum::Router, assertion: &str| {
        let body = common::form(&[("grant_type", GRANT_TYPE), ("assertion", assertion)]);
        let (router, auth) = (router.clone(), s.agent.basic());
        async move { common::post_form(&router, "/token", Some(&auth), &body).await }
    };
    let first = s.idp.mint(&s.alice());
    assert_eq!(on(&s.app.router, &first).await.status, StatusCode::OK);
    let again = on(&s.app.router, &first).await;
    assert_error(&again, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(again.json["error_description"], REFUSED);
    let elsewhere = on(&other, &first).await;
    assert_error(&elsewhere, StatusCode::BAD_REQUEST, "invalid_grant");

    let second = s.idp.mint(&s.alice());
    assert_eq!(on(&other, &second).await.status, StatusCode::OK);
    let back = on(&s.app.router, &second).await;
    assert_error(&back, StatusCode::BAD_REQUEST, "invalid_grant");
    // A `jti` is the provider's: the same one presented by another client is spent.
    let twin = s.app.client_with(agent_client("twin")).await;
    let mut mine = s.alice();
    mine["jti"] = json!("shared-jti");
    assert_eq!(s.assert_claims(&mine).await.status, StatusCode::OK);
    let mut theirs = s.idp.claims(&s.app.config.issuer, &twin.id, "00u-alice");
    theirs["jti"] = json!("shared-jti");
    let reused = s.present(&twin, &s.idp.mint(&theirs)).await;
    assert_error(&reused, StatusCode::BAD_REQUEST, "invalid_grant");
}

/// A disabled user gets no token, and the tokens she had, and what was exchanged from
/// them, read inactive.
async fn a_disabled_user_is_refused(backend: Backend) {
    let Some(s) = scene(backend, |_| {}).await else {
        return;
    };
    let response = s.assert_claims(&s.alice()).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    let token = response.json["access_token"].as_str().unwrap().to_owned();
    // The MCP server exchanges it for the next service (RFC 8693).
    let mcp = s
        .app
        .client_with(NewClient {
            name: "mcp".to_owned(),
            audiences: vec![MCP.to_owned()],
            grant_types: vec!["token-exchange".to_owned()],
            exchange_targets: vec![NEXT.to_owned()],
            ..NewClient::default()
        })
        .await;
    let next = s.app.client("next", &[NEXT]).await;
    let params = [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", token.as_str()),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("resource", NEXT),
    ];
    let exchanged = s.app.post(&mcp, "/token", &params).await;
    assert_eq!(exchanged.status, StatusCode::OK, "{exchanged:?}");
    let exchanged = exchanged.json["access_token"].as_str().unwrap().to_owned();
    let answer = introspect_as(&s.app.router, &next, &exchanged).await;
    assert_eq!(answer.json["active"], true, "{answer:?}");

    admin::disable_user(&s.app.store, "alice", now())
        .await
        .unwrap();
    let response = s.assert_claims(&s.alice()).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(response.json["error_description"], REFUSED);
    // Her tokens end with her, and so does what was exchanged from them.
    let answer = introspect_as(&s.app.router, &s.server, &token).await;
    assert_eq!(answer.json, json!({"active": false}));
    let answer = introspect_as(&s.app.router, &next, &exchanged).await;
    assert_eq!(answer.json, json!({"active": false}));
    admin::enable_user(&s.app.store, "alice", now())
        .await
        .unwrap();
    let response = s.assert_claims(&s.alice()).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
}

/// The assertion's `resource` and `scope` stay within what the client may hold.
async fn resource_and_scope_stay_within_the_clients(backend: Backend) {
    let Some(s) = scene(backend, |_| {}).await else {
        return;
    };
    let cases: [(&str, Value, &str); 4] = [
        (
            "resource",
            json!("https://unregistered.example/"),
            "invalid_target",
        ),
        (
            "resource",
            json!([MCP, "https://unregistered.example/"]),
            "invalid_target",
        ),
        ("resource", json!("mcp.example"), "invalid_target"),
        ("scope", json!("read admin"), "invalid_scope"),
    ];
    for (claim, value, error) in cases {
        let mut claims = s.alice();
        claims[claim] = value;
        let response = s.assert_claims(&claims).await;
        assert_error(&response, StatusCode::BAD_REQUEST, error);
    }
    let mut claims = s.alice();
    claims["resource"] = json!([OTHER_MCP]);
    claims["scope"] = json!("write");
    let response = s.assert_claims(&claims).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    assert_eq!(response.json["scope"], "write");
    let token = response.json["access_token"].as_str().unwrap();
    let answer = introspect_as(&s.app.router, &s.server, token).await;
    assert_eq!(answer.json["aud"], OTHER_MCP);
}

/// Deny by default: the grant type is the client's to be given, a public client never
/// holds it, and only a provider trusted for assertions is listened to.
async fn identity_assertions_are_denied_by_default(backend: Backend) {
    let Some(s) = scene(backend, |_| {}).await else {
        return;
    };
    let plain = s
        .app
        .client_with(NewClient {
            grant_types: Vec::new(),
            ..agent_client("plain")
        })
        .await;
    let claims = s.idp.claims(&s.app.config.issuer, &plain.id, "00u-alice");
    let response = s.present(&plain, &s.idp.mint(&claims)).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "unauthorized_client");
    let public = NewClient {
        auth_method: Some("none".to_owned()),
        redirect_uris: vec!["http://127.0.0.1:7777/callback".to_owned()],
        grant_types: vec!["authorization_code".to_owned(), "jwt-bearer".to_owned()],
        ..agent_client("public")
    };
    let refused = admin::create_client(&s.app.store, public, now()).await;
    assert!(refused.is_err(), "a public client cannot hold the grant");

    // The same provider, not trusted for assertions.
    let idp = IdentityProvider::start().await;
    let untrusted = ProviderConfig {
        id_jag: false,
        ..provider_config(&idp)
    };
    let Some(app) = TestApp::start(backend, |c| c.login.providers = vec![untrusted]).await else {
        return;
    };
    discovered(&app.state).await;
    assert!(!grants_jwt_bearer(&metadata(&app).await));
    let agent = app.client_with(agent_client("agent")).await;
    let claims = idp.claims(&app.config.issuer, &agent.id, "00u-alice");
    let params = [
        ("grant_type", GRANT_TYPE),
        ("assertion", &idp.mint(&claims)),
    ];
    let response = app.post(&agent, "/token", &params).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(response.json["error_description"], REFUSED);
}

/// `allowed_email_domains` admits only verified emails of its domains, as at sign-in.
async fn the_providers_email_domains_apply(backend: Backend) {
    let only_corp = |c: &mut Config| {
        c.login.providers[0].allowed_email_domains = vec!["corp.example".to_owned()];
    };
    let Some(s) = scene(backend, only_corp).await else {
        return;
    };
    let mut elsewhere = s.alice();
    elsewhere["email"] = json!("alice@other.example");
    let mut unverified = s.alice();
    unverified["email_verified"] = json!(false);
    let mut no_email = s.alice();
    no_email.as_object_mut().unwrap().remove("email");
    for claims in [elsewhere, unverified, no_email] {
        let response = s.assert_claims(&claims).await;
        assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let response = s.assert_claims(&s.alice()).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
}

/// A key the provider starts signing with is fetched once; a stream of unknown keys
/// does not make this server hammer the provider.
async fn a_new_provider_key_is_fetched_once(backend: Backend) {
    let Some(s) = scene(backend, |_| {}).await else {
        return;
    };
    let fetched = s.idp.fetches();
    let rotated = SigningKey::generate("k2");
    s.idp.publish(&rotated);
    let response = s
        .present(&s.agent, &rotated.sign(id_jag_header(), &s.alice()))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    assert_eq!(s.idp.fetches(), fetched + 1);
    for kid in ["k3", "k4", "k5"] {
        let unknown = SigningKey::generate(kid).sign(id_jag_header(), &s.alice());
        let response = s.present(&s.agent, &unknown).await;
        assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    }
    assert_eq!(s.idp.fetches(), fetched + 1, "refetches are rate limited");
}

async fn unusable_assertions_spend_the_inactive_budget(backend: Backend) {
    let Some(s) = scene(backend, |c| c.rate_limit.enabled = true).await else {
        return;
    };
    let limited = s
        .app
        .client_with(NewClient {
            inactive_budget: Some("2".to_owned()),
            ..agent_client("limited")
        })
        .await;
    for _ in 0..2 {
        let response = s.present(&limited, "not-a-jwt").await;
        assert_error(&response, StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let response = s.present(&limited, "not-a-jwt").await;
    assert_eq!(
        response.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{response:?}"
    );
    let response = s.assert_claims(&s.alice()).await;
    assert_eq!(response.status, StatusCode::OK, "others are untouched");
}

both_backends!(
    an_enterprise_client_gets_a_token_for_the_user_without_a_page,
    every_unusable_assertion_gets_one_answer,
    an_assertion_is_used_once_on_every_instance,
    a_disabled_user_is_refused,
    resource_and_scope_stay_within_the_clients,
    identity_assertions_are_denied_by_default,
    the_providers_email_domains_apply,
    a_new_provider_key_is_fetched_once,
    unusable_assertions_spend_the_inactive_budget,
);

/// openid-client, a client library nobody here wrote, discovers the real binary over a
/// real socket and presents an ID-JAG that the provider (on loopback) signed; the MCP
/// server's introspection then vouches for the token, for the person the provider named.
async fn a_third_party_client_presents_an_assertion_over_a_real_socket(backend: Backend) {
    use common::binary::{self, create_client, run_json};
    if !common::oidc::oidc_present() {
        return;
    }
    let Some((db, _guard)) = common::fresh_db(backend).await else {
        return;
    };
    let idp = IdentityProvider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let provider = format!(
        "\n[[login.providers]]\nid = \"corp\"\nname = \"Corp\"\nissuer = \"{}\"\n\
         client_id = \"introspectd\"\nclient_secret = \"provider-secret\"\n\
         scopes = [\"openid\"]\nid_jag = true\n",
        idp.issuer
    );
    let (port, issuer) = binary::known_issuer_config(dir, &provider);
    let (agent, agent_secret) = create_client(
        dir,
        &db,
        &[
            "--grant-type",
            "jwt-bearer",
            "--resource",
            MCP,
            "--scope",
            "read",
        ],
    );
    let shown = run_json(dir, &db, &["client", "show", &agent]);
    assert_eq!(shown["grant_types"], json!([GRANT_TYPE]));
    let (server_id, server_secret) = create_client(dir, &db, &["--audience", MCP]);

    let server = binary::serve_on(dir, &db, port);
    common::oidc::wait_discovered(server.addr, "corp").await;
    let mut claims = idp.claims(&issuer, &agent, "00u-alice");
    claims["email"] = json!("alice@corp.example");
    claims["email_verified"] = json!(true);
    let assertion = idp.mint(&claims);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider/id_jag.mjs");
    let output = std::process::Command::new("node")
        .arg(script)
        .env("ISSUER", &issuer)
        .env("CLIENT_ID", &agent)
        .env("CLIENT_SECRET", &agent_secret)
        .env("ASSERTION", &assertion)
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
    assert!(output.status.success(), "{answer}\n{}", server.log());
    assert_eq!(answer["scope"], "read", "{answer}");
    assert!(answer.get("refresh_token").is_none(), "{answer}");
    let token = answer["access_token"].as_str().expect("access_token");
    let (status, info) = binary::introspect(server.addr, &server_id, &server_secret, token).await;
    assert_eq!(status, 200);
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(
        info["username"], "alice@corp.example",
        "named from the verified email"
    );
    assert_eq!(info["client_id"], agent.as_str());
    assert_eq!(info["aud"], MCP);
    // Presented again, it is refused with the one answer; the log says why, to the
    // operator, and never holds the assertion.
    let params = [
        ("grant_type", GRANT_TYPE),
        ("assertion", assertion.as_str()),
    ];
    let (status, refused) =
        binary::post_basic(server.addr, "/token", (&agent, &agent_secret), &params).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error_description"], REFUSED);
    let line = server.wait_for_log("identity assertion refused");
    assert!(line.contains("the jti was used before"), "{line}");
    assert!(
        !server.log().contains(&assertion),
        "the assertion is never logged"
    );
    let users = run_json(dir, &db, &["user", "list"]);
    assert_eq!(users[0]["username"], "alice@corp.example", "{users}");
    assert_eq!(users[0]["user_id"], info["sub"], "{users}");
}

both_backends!(a_third_party_client_presents_an_assertion_over_a_real_socket);
