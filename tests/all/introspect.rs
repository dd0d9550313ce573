//! POST /introspect, every rule of the contract, against SQLite and Postgres.

use crate::common;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{TestApp, TestClient, TestResponse, assert_error, basic, form, issue_request};
use introspectd::admin::{self, NewClient};
use introspectd::secret::RawToken;
use introspectd::store::TokenRecord;
use introspectd::token::claims::{AccessClaims, Audience};
use introspectd::token::mint::TokenFormat;
use introspectd::token::{now, opaque};
use introspectd::vocabulary::TokenUse;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const API: &str = "https://api.example";

fn assert_inactive(response: &TestResponse) {
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    assert_eq!(response.json, json!({"active": false}), "{response:?}");
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
}

fn assert_active(response: &TestResponse) {
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    assert_eq!(response.json["active"], true, "{response:?}");
}

/// Claims the service itself would mint for `client`, valid now.
fn claims_for(app: &TestApp, client: &TestClient) -> AccessClaims {
    let now = now();
    AccessClaims {
        iss: app.config.issuer.clone(),
        sub: "alice".to_owned(),
        aud: Audience(vec![API.to_owned()]),
        client_id: client.id.clone(),
        scope: Some("read".to_owned()),
        username: None,
        exp: now + 600,
        iat: now,
        nbf: None,
        jti: introspectd::token::new_jti(),
        act: None,
    }
}

fn sign(app: &TestApp, claims: &AccessClaims) -> String {
    app.state
        .keys
        .keys()
        .sign(claims)
        .expect("sign")
        .expose()
        .to_owned()
}

/// The service's generated key, for forging tokens with chosen headers.
async fn service_key(app: &TestApp) -> (String, Vec<u8>) {
    let keys = app.store.signing_keys().await.expect("keys");
    let key = keys.last().expect("a generated key");
    let kek = introspectd::token::kek::resolve(&app.config)
        .expect("the key-encryption key")
        .expect("generated keys");
    (
        key.kid.clone(),
        kek.open(key).expect("the stored key opens"),
    )
}

fn at_jwt_header(alg: Algorithm, kid: &str) -> Header {
    let mut header = Header::new(alg);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(kid.to_owned());
    header
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

// --- active answers -------------------------------------------------------------------

async fn active_jwt_carries_rfc7662_fields(app: TestApp) {
    let client = app
        .client_with(NewClient {
            name: "app".to_owned(),
            scope: Some("read write".to_owned()),
            ..NewClient::default()
        })
        .await;
    let mut request = issue_request(&client, TokenUse::AccessToken, None, &[API]);
    request.username = Some("alice@example.com".to_owned());
    request.scope = Some("read".to_owned());
    let token = app.issue(request).await;
    let response = app.introspect(&client, &token).await;
    assert_active(&response);
    let body = response.json.as_object().unwrap();
    assert_eq!(body["client_id"], client.id.as_str());
    let (exp, iat) = (body["exp"].as_i64().unwrap(), body["iat"].as_i64().unwrap());
    assert_eq!(exp - iat, 3_600);
    // The whole answer: absent claims (`nbf`) are omitted, never null.
    assert_whole_answer("introspection_active_jwt", &response.json);
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
}

/// An introspection answer compared whole with its committed snapshot
/// (`tests/all/snapshots/`), with the values that differ on every run redacted.
fn assert_whole_answer(name: &str, answer: &Value) {
    let mut settings = insta::Settings::clone_current();
    for field in ["client_id", "jti", "exp", "iat"] {
        settings.add_redaction(&format!(".{field}"), format!("[{field}]"));
    }
    settings.bind(|| insta::assert_json_snapshot!(name, answer));
}

async fn active_opaque_access_token(app: TestApp) {
    let client = app.client("app", &[]).await;
    let mut request = issue_request(
        &client,
        TokenUse::AccessToken,
        Some(TokenFormat::Opaque),
        &[API],
    );
    request.scope = Some("read".to_owned());
    let token = app.issue(request).await;
    assert!(!token.contains('.'));
    let response = app.introspect(&client, &token).await;
    assert_active(&response);
    assert_eq!(response.json["client_id"], client.id.as_str());
    assert_whole_answer("introspection_active_opaque", &response.json);
}

async fn refresh_token_reads_active_without_token_type(app: TestApp) {
    let client = app.client("app", &[]).await;
    let token = app.opaque_for(&client, TokenUse::RefreshToken).await;
    let response = app.introspect(&client, &token).await;
    assert_active(&response);
    assert_eq!(response.json["token_use"], "refresh_token");
    assert!(response.json.get("token_type").is_none());
}

async fn client_secret_post_authenticates_post_clients(app: TestApp) {
    let client = app
        .client_with(NewClient {
            name: "post".to_owned(),
            auth_method: Some("client_secret_post".to_owned()),
            ..NewClient::default()
        })
        .await;
    let token = app.jwt_for(&client, &[]).await;
    let body = form(&[
        ("token", &token),
        ("client_id", &client.id),
        ("client_secret", &client.secret),
    ]);
    assert_active(&app.introspect_with(None, &body).await);
    // A client with a secret may send it either way unless it is strict.
    assert_active(&app.introspect(&client, &token).await);
    let strict = app
        .client_with(NewClient {
            name: "strict-post".to_owned(),
            auth_method: Some("client_secret_post".to_owned()),
            strict_auth_method: true,
            ..NewClient::default()
        })
        .await;
    let response = app.introspect(&strict, &token).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
}

async fn strict_basic_client_may_not_authenticate_with_post(app: TestApp) {
    let client = app
        .client_with(NewClient {
            name: "basic".to_owned(),
            strict_auth_method: true,
            ..NewClient::default()
        })
        .await;
    let token = app.jwt_for(&client, &[]).await;
    let body = form(&[
        ("token", &token),
        ("client_id", &client.id),
        ("client_secret", &client.secret),
    ]);
    let response = app.introspect_with(None, &body).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
}

async fn client_id_parameter_beside_basic_is_accepted_when_it_matches(app: TestApp) {
    let client = app.client("app", &[]).await;
    let token = app.jwt_for(&client, &[]).await;
    let body = form(&[("token", &token), ("client_id", &client.id)]);
    assert_active(&app.introspect_with(Some(&client.basic()), &body).await);
    let body = form(&[("token", &token), ("client_id", "someone-else")]);
    let response = app.introspect_with(Some(&client.basic()), &body).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
}

// --- visibility (RFC 7662 §4) ------------------------------------------------------------

async fn resource_server_sees_tokens_for_its_audience(app: TestApp) {
    let owner = app.client("app", &[]).await;
    let rs = app.client("api", &[API]).await;
    let token = app.jwt_for(&owner, &[API, "https://other.example"]).await;
    let response = app.introspect(&rs, &token).await;
    assert_active(&response);
    assert_eq!(response.json["client_id"], owner.id.as_str());
    assert_eq!(response.json["aud"], json!([API, "https://other.example"]));
}

async fn inactive_when_caller_is_neither_owner_nor_audience(app: TestApp) {
    let owner = app.client("app", &[]).await;
    let stranger = app.client("stranger", &[]).await;
    let other_rs = app.client("other", &["https://other.example"]).await;
    for token in [
        app.jwt_for(&owner, &[API]).await,
        app.opaque_for(&owner, TokenUse::AccessToken).await,
        app.opaque_for(&owner, TokenUse::RefreshToken).await,
    ] {
        assert_inactive(&app.introspect(&stranger, &token).await);
        assert_inactive(&app.introspect(&other_rs, &token).await);
        assert_active(&app.introspect(&owner, &token).await);
    }
}

async fn opaque_token_audience_makes_it_visible(app: TestApp) {
    let owner = app.client("app", &[]).await;
    let rs = app.client("api", &[API]).await;
    let token = app
        .issue(issue_request(
            &owner,
            TokenUse::AccessToken,
            Some(TokenFormat::Opaque),
            &[API],
        ))
        .await;
    let response = app.introspect(&rs, &token).await;
    assert_active(&response);
    assert_eq!(response.json["aud"], API);
}

async fn refresh_token_is_seen_by_its_own_client_only(app: TestApp) {
    let owner = app.client("app", &[]).await;
    let rs = app.client("api", &[API]).await;
    let refresh = app
        .issue(issue_request(&owner, TokenUse::RefreshToken, None, &[API]))
        .await;
    // The audience that shows an access token to the resource server
    // (opaque_token_audience_makes_it_visible) never shows it a refresh token
    // (RFC 9700 §4.14), whatever the hint says.
    for hint in [None, Some("refresh_token"), Some("access_token")] {
        let mut body = vec![("token", refresh.as_str())];
        body.extend(hint.map(|h| ("token_type_hint", h)));
        let response = app.introspect_with(Some(&rs.basic()), &form(&body)).await;
        assert_eq!(response.json, json!({"active": false}), "hint {hint:?}");
    }
    let response = app.introspect(&owner, &refresh).await;
    assert_active(&response);
    assert_eq!(response.json["token_use"], "refresh_token");
}

// --- inactive answers ---------------------------------------------------------------------

async fn inactive_when_token_is_unknown(app: TestApp) {
    let client = app.client("app", &[]).await;
    for token in [
        opaque::generate().expose().to_owned(),
        "not-a-token".to_owned(),
        "a.b.c".to_owned(),
        "..".to_owned(),
        "eyJhbGciOiJub25lIn0.e30.".to_owned(),
        "\u{0}\u{7f}☃".to_owned(),
        "x".repeat(8_000),
    ] {
        assert_inactive(&app.introspect(&client, &token).await);
    }
}

async fn inactive_when_opaque_token_expired(app: TestApp) {
    let client = app.client("app", &[]).await;
    let token = opaque::generate();
    let now = now();
    let mut record = TokenRecord {
        digest: opaque::digest(token.expose()),
        token_use: TokenUse::AccessToken,
        client_id: client.id.clone(),
        sub: Some("alice".to_owned()),
        username: None,
        scope: None,
        audiences: vec![],
        jti: "expired".to_owned(),
        iat: now - 120,
        nbf: None,
        exp: now - 60,
        revoked_at: None,
        user_id: None,
    };
    app.store.insert_token(&record).await.unwrap();
    assert_inactive(&app.introspect(&client, token.expose()).await);

    let later = opaque::generate();
    record.digest = opaque::digest(later.expose());
    record.jti = "later".to_owned();
    record.nbf = Some(now + 600);
    record.exp = now + 1_200;
    app.store.insert_token(&record).await.unwrap();
    assert_inactive(&app.introspect(&client, later.expose()).await);
}

async fn inactive_when_opaque_token_revoked(app: TestApp) {
    let client = app.client("app", &[]).await;
    for token_use in [TokenUse::AccessToken, TokenUse::RefreshToken] {
        let token = app.opaque_for(&client, token_use).await;
        assert_active(&app.introspect(&client, &token).await);
        let revoked = admin::revoke_token(
            &app.store,
            &app.state.keys.keys(),
            &RawToken::new(&token),
            introspectd::token::now(),
        )
        .await
        .unwrap();
        assert_eq!(revoked.token_use, token_use);
        assert_inactive(&app.introspect(&client, &token).await);
    }
}

async fn inactive_when_jwt_revoked(app: TestApp) {
    let client = app.client("app", &[]).await;
    let token = app.jwt_for(&client, &[]).await;
    assert_active(&app.introspect(&client, &token).await);
    admin::revoke_token(
        &app.store,
        &app.state.keys.keys(),
        &RawToken::new(&token),
        introspectd::token::now(),
    )
    .await
    .unwrap();
    assert_inactive(&app.introspect(&client, &token).await);
}

async fn inactive_when_jwt_expired(app: TestApp) {
    let client = app.client("app", &[]).await;
    let mut claims = claims_for(&app, &client);
    claims.iat -= 7_200;
    claims.exp = now() - 3_600;
    assert_inactive(&app.introspect(&client, &sign(&app, &claims)).await);
}

async fn inactive_when_jwt_not_yet_valid(app: TestApp) {
    let client = app.client("app", &[]).await;
    let mut claims = claims_for(&app, &client);
    claims.nbf = Some(now() + 3_600);
    assert_inactive(&app.introspect(&client, &sign(&app, &claims)).await);
    let mut claims = claims_for(&app, &client);
    claims.iat = now() + 3_600;
    claims.exp = now() + 7_200;
    assert_inactive(&app.introspect(&client, &sign(&app, &claims)).await);
}

async fn inactive_when_jwt_from_untrusted_issuer(app: TestApp) {
    let client = app.client("app", &[]).await;
    let mut claims = claims_for(&app, &client);
    claims.iss = "https://evil.example".to_owned();
    assert_inactive(&app.introspect(&client, &sign(&app, &claims)).await);
}

async fn inactive_when_jwt_alg_is_none(app: TestApp) {
    let client = app.client("app", &[]).await;
    let (kid, _) = service_key(&app).await;
    let claims = serde_json::to_value(claims_for(&app, &client)).unwrap();
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        let token = format!("{}.{}.", b64(&header), b64(&claims));
        assert_inactive(&app.introspect(&client, &token).await);
    }
}

async fn inactive_when_jwt_is_hs256_keyed_with_the_public_key(app: TestApp) {
    let client = app.client("app", &[]).await;
    let (kid, der) = service_key(&app).await;
    let public = Ed25519KeyPair::from_pkcs8(&der)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let claims = claims_for(&app, &client);
    let token = jsonwebtoken::encode(
        &at_jwt_header(Algorithm::HS256, &kid),
        &claims,
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_inactive(&app.introspect(&client, &token).await);
}

async fn inactive_when_jwt_payload_is_tampered(app: TestApp) {
    let client = app.client("app", &[]).await;
    let token = sign(&app, &claims_for(&app, &client));
    assert_active(&app.introspect(&client, &token).await);
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = json!("admin");
    let forged = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert_inactive(&app.introspect(&client, &forged).await);
}

async fn inactive_when_jwt_signed_with_unknown_kid(app: TestApp) {
    let client = app.client("app", &[]).await;
    let (kid, _) = service_key(&app).await;
    let stranger = introspectd::token::jwt::generate_ed25519();
    let key = EncodingKey::from_ed_der(&stranger.private_key);
    let claims = claims_for(&app, &client);
    // A key we do not know, under its own kid and under ours.
    for kid in [stranger.kid.as_str(), kid.as_str()] {
        let token =
            jsonwebtoken::encode(&at_jwt_header(Algorithm::EdDSA, kid), &claims, &key).unwrap();
        assert_inactive(&app.introspect(&client, &token).await);
    }
}

async fn inactive_when_jwt_is_not_an_access_token(app: TestApp) {
    let client = app.client("app", &[]).await;
    let (kid, der) = service_key(&app).await;
    let key = EncodingKey::from_ed_der(&der);
    let claims = claims_for(&app, &client);
    let mut header = at_jwt_header(Algorithm::EdDSA, &kid);
    header.typ = Some("JWT".to_owned());
    let id_token_like = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_inactive(&app.introspect(&client, &id_token_like).await);
    // The same token with the right typ is active: the typ is what made the difference.
    let good = jsonwebtoken::encode(&at_jwt_header(Algorithm::EdDSA, &kid), &claims, &key).unwrap();
    assert_active(&app.introspect(&client, &good).await);
    // RFC 7515 §4.1.11: an extension we do not understand invalidates the token.
    let mut header = at_jwt_header(Algorithm::EdDSA, &kid);
    header.crit = Some(vec!["exp".to_owned()]);
    let critical = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_inactive(&app.introspect(&client, &critical).await);
}

async fn inactive_when_jwt_lacks_a_required_claim(app: TestApp) {
    let client = app.client("app", &[]).await;
    let (kid, der) = service_key(&app).await;
    let key = EncodingKey::from_ed_der(&der);
    for missing in ["client_id", "jti", "exp", "iss", "sub", "iat"] {
        let mut claims = serde_json::to_value(claims_for(&app, &client)).unwrap();
        claims.as_object_mut().unwrap().remove(missing);
        let token =
            jsonwebtoken::encode(&at_jwt_header(Algorithm::EdDSA, &kid), &claims, &key).unwrap();
        let response = app.introspect(&client, &token).await;
        assert_eq!(response.json, json!({"active": false}), "without {missing}");
    }
}

/// The README: a token must name its key. One without `kid` is not ours, even though
/// the only key would verify it.
async fn inactive_when_jwt_names_no_kid(app: TestApp) {
    let client = app.client("app", &[]).await;
    let (kid, der) = service_key(&app).await;
    let key = EncodingKey::from_ed_der(&der);
    let claims = claims_for(&app, &client);
    let good = jsonwebtoken::encode(&at_jwt_header(Algorithm::EdDSA, &kid), &claims, &key).unwrap();
    assert_active(&app.introspect(&client, &good).await);
    let mut header = at_jwt_header(Algorithm::EdDSA, &kid);
    header.kid = None;
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    assert_eq!(
        app.introspect(&client, &token).await.json,
        json!({"active": false})
    );
}

/// An empty `sub`, `client_id` or `jti` names nothing: inactive, like a missing one.
async fn inactive_when_jwt_has_an_empty_identifying_claim(app: TestApp) {
    let client = app.client("app", &[]).await;
    let (kid, der) = service_key(&app).await;
    let key = EncodingKey::from_ed_der(&der);
    for empty in ["sub", "jti", "client_id"] {
        let mut claims = serde_json::to_value(claims_for(&app, &client)).unwrap();
        claims[empty] = json!("");
        let token =
            jsonwebtoken::encode(&at_jwt_header(Algorithm::EdDSA, &kid), &claims, &key).unwrap();
        let response = app.introspect(&client, &token).await;
        assert_eq!(response.json, json!({"active": false}), "empty {empty}");
    }
}

async fn inactive_when_owning_client_is_disabled(app: TestApp) {
    let owner = app.client("app", &[]).await;
    let rs = app.client("api", &[API]).await;
    let jwt = app.jwt_for(&owner, &[API]).await;
    let opaque = app
        .issue(issue_request(
            &owner,
            TokenUse::AccessToken,
            Some(TokenFormat::Opaque),
            &[API],
        ))
        .await;
    assert_active(&app.introspect(&rs, &jwt).await);
    admin::disable_client(&app.store, &owner.id, introspectd::token::now())
        .await
        .unwrap();
    assert_inactive(&app.introspect(&rs, &jwt).await);
    assert_inactive(&app.introspect(&rs, &opaque).await);
    // The disabled client itself can no longer ask.
    let response = app.introspect(&owner, &jwt).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
}

async fn inactive_when_owning_client_is_deleted(app: TestApp) {
    let owner = app.client("app", &[]).await;
    let rs = app.client("api", &[API]).await;
    let jwt = app.jwt_for(&owner, &[API]).await;
    let refresh = app.opaque_for(&owner, TokenUse::RefreshToken).await;
    assert_active(&app.introspect(&rs, &jwt).await);
    admin::delete_client(&app.store, &owner.id).await.unwrap();
    assert_inactive(&app.introspect(&rs, &jwt).await);
    assert_inactive(&app.introspect(&rs, &refresh).await);
    let response = app.introspect(&owner, &jwt).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
}

async fn hint_never_changes_the_answer(app: TestApp) {
    let client = app.client("app", &[]).await;
    let tokens = [
        app.jwt_for(&client, &[]).await,
        app.opaque_for(&client, TokenUse::AccessToken).await,
        app.opaque_for(&client, TokenUse::RefreshToken).await,
        "unknown-token".to_owned(),
    ];
    for token in &tokens {
        let plain = app.introspect(&client, token).await;
        assert_eq!(plain.status, StatusCode::OK);
        for hint in ["access_token", "refresh_token", "id_token", "bogus"] {
            let body = form(&[("token", token), ("token_type_hint", hint)]);
            let hinted = app.introspect_with(Some(&client.basic()), &body).await;
            assert_eq!(hinted.json, plain.json, "hint {hint}");
        }
    }
}

// --- client authentication ----------------------------------------------------------------

async fn missing_credentials_are_invalid_client_with_challenge(app: TestApp) {
    let response = app.introspect_with(None, "token=abc").await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(
        response.headers[header::WWW_AUTHENTICATE],
        "Basic realm=\"introspectd\""
    );
}

async fn wrong_or_unknown_credentials_are_invalid_client(app: TestApp) {
    let client = app.client("app", &[]).await;
    let token = app.jwt_for(&client, &[]).await;
    let body = form(&[("token", &token)]);
    for authorization in [
        basic(&client.id, "wrong-secret"),
        basic("no-such-client", &client.secret),
        basic(&client.id, ""),
        "Basic !!!not-base64".to_owned(),
        "Bearer something".to_owned(),
        "Basic".to_owned(),
    ] {
        let response = app.introspect_with(Some(&authorization), &body).await;
        assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
        assert!(response.headers.contains_key(header::WWW_AUTHENTICATE));
    }
    // A client_id without a secret is not an authentication.
    let body = form(&[("token", &token), ("client_id", &client.id)]);
    let response = app.introspect_with(None, &body).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
}

async fn rotated_secret_stops_working_at_once(app: TestApp) {
    let client = app.client("app", &[]).await;
    let token = app.jwt_for(&client, &[]).await;
    assert_active(&app.introspect(&client, &token).await);
    let rotated = admin::rotate_secret(&app.store, &client.id, 0, introspectd::token::now())
        .await
        .unwrap();
    let response = app.introspect(&client, &token).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, "invalid_client");
    let fresh = TestClient {
        id: client.id.clone(),
        secret: rotated.client_secret.expose().to_owned(),
    };
    assert_active(&app.introspect(&fresh, &token).await);
}

async fn two_authentication_methods_are_invalid_request(app: TestApp) {
    let client = app.client("app", &[]).await;
    let body = form(&[
        ("token", "abc"),
        ("client_id", &client.id),
        ("client_secret", &client.secret),
    ]);
    let response = app.introspect_with(Some(&client.basic()), &body).await;
    assert_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
}

// --- malformed requests -----------------------------------------------------------------

async fn repeated_authorization_header_is_invalid_request(app: TestApp) {
    let client = app.client("app", &[]).await;
    let token = app.jwt_for(&client, &[]).await;
    // Whether the right credentials come first or last, two headers are refused.
    let orders = [
        [client.basic(), basic(&client.id, "wrong")],
        [basic(&client.id, "wrong"), client.basic()],
        [client.basic(), client.basic()],
    ];
    let request = |path: &str, authorizations: &[String]| {
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for value in authorizations {
            request = request.header(header::AUTHORIZATION, value);
        }
        let body = form(&[("token", token.as_str())]);
        request.body(Body::from(body)).unwrap()
    };
    for path in ["/introspect", "/revoke"] {
        let one = app.send(request(path, &orders[0][..1])).await;
        assert_eq!(one.status, StatusCode::OK, "one header: {one:?}");
        for pair in &orders {
            let response = app.send(request(path, pair)).await;
            assert_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
        }
    }
}

async fn missing_token_is_invalid_request(app: TestApp) {
    let client = app.client("app", &[]).await;
    for body in ["", "token=", "token_type_hint=access_token", "tok=abc"] {
        let response = app.introspect_with(Some(&client.basic()), body).await;
        assert_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

async fn repeated_parameter_is_invalid_request(app: TestApp) {
    let client = app.client("app", &[]).await;
    for body in [
        "token=a&token=b",
        "token=a&token_type_hint=access_token&token_type_hint=refresh_token",
        "token=a&token=a",
    ] {
        let response = app.introspect_with(Some(&client.basic()), body).await;
        assert_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

async fn wrong_content_type_is_invalid_request(app: TestApp) {
    let client = app.client("app", &[]).await;
    for content_type in [
        Some("application/json"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let mut request =
            Request::post("/introspect").header(header::AUTHORIZATION, client.basic());
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = app
            .send(request.body(Body::from("{\"token\":\"abc\"}")).unwrap())
            .await;
        assert_error(&response, StatusCode::BAD_REQUEST, "invalid_request");
    }
}

async fn other_methods_are_not_allowed(app: TestApp) {
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let request = Request::builder()
            .method(method)
            .uri("/introspect")
            .body(Body::empty())
            .unwrap();
        let response = app.send(request).await;
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(response.headers[header::ALLOW], "POST");
        assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
    }
}

async fn oversized_body_is_payload_too_large(app: TestApp) {
    let client = app.client("app", &[]).await;
    let body = format!("token={}", "a".repeat(app.config.http.max_body_bytes + 1));
    let response = app.introspect_with(Some(&client.basic()), &body).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers[header::CACHE_CONTROL], "no-store");
    // Just under the limit is an ordinary (inactive) token.
    let body = format!("token={}", "a".repeat(app.config.http.max_body_bytes - 10));
    assert_inactive(&app.introspect_with(Some(&client.basic()), &body).await);
}

async fn malformed_bodies_get_a_4xx_or_an_inactive_answer(app: TestApp) {
    let client = app.client("app", &[]).await;
    for body in [
        "%",
        "%zz",
        "token=%ff%fe",
        "&&&&",
        "=",
        "token",
        "token=a%00b",
        "token=a&=b",
        "\u{0}\u{0}",
        "token=eyJ.eyJ.x&token_type_hint=%ff",
    ] {
        let response = app.introspect_with(Some(&client.basic()), body).await;
        assert!(
            response.status.is_client_error() || response.json == json!({"active": false}),
            "{body:?}: {response:?}"
        );
    }
}

async fn unknown_paths_are_not_found(app: TestApp) {
    let request = Request::get("/introspect/extra")
        .body(Body::empty())
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(response.json["error"], "not_found");
}

both_stores!(
    active_jwt_carries_rfc7662_fields,
    active_opaque_access_token,
    refresh_token_reads_active_without_token_type,
    client_secret_post_authenticates_post_clients,
    strict_basic_client_may_not_authenticate_with_post,
    client_id_parameter_beside_basic_is_accepted_when_it_matches,
    resource_server_sees_tokens_for_its_audience,
    inactive_when_caller_is_neither_owner_nor_audience,
    opaque_token_audience_makes_it_visible,
    refresh_token_is_seen_by_its_own_client_only,
    inactive_when_token_is_unknown,
    inactive_when_opaque_token_expired,
    inactive_when_opaque_token_revoked,
    inactive_when_jwt_revoked,
    inactive_when_jwt_expired,
    inactive_when_jwt_not_yet_valid,
    inactive_when_jwt_from_untrusted_issuer,
    inactive_when_jwt_alg_is_none,
    inactive_when_jwt_is_hs256_keyed_with_the_public_key,
    inactive_when_jwt_payload_is_tampered,
    inactive_when_jwt_signed_with_unknown_kid,
    inactive_when_jwt_is_not_an_access_token,
    inactive_when_jwt_lacks_a_required_claim,
    inactive_when_jwt_names_no_kid,
    inactive_when_jwt_has_an_empty_identifying_claim,
    inactive_when_owning_client_is_disabled,
    inactive_when_owning_client_is_deleted,
    hint_never_changes_the_answer,
    missing_credentials_are_invalid_client_with_challenge,
    wrong_or_unknown_credentials_are_invalid_client,
    rotated_secret_stops_working_at_once,
    two_authentication_methods_are_invalid_request,
    repeated_authorization_header_is_invalid_request,
    missing_token_is_invalid_request,
    repeated_parameter_is_invalid_request,
    wrong_content_type_is_invalid_request,
    other_methods_are_not_allowed,
    oversized_body_is_payload_too_large,
    malformed_bodies_get_a_4xx_or_an_inactive_answer,
    unknown_paths_are_not_found,
);
