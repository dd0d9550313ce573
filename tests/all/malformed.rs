//! Malformed input of any shape: property-based tests of form parsing, client
//! authentication, token decoding and whole requests through the router. Every case
//! gets a 4xx or `{"active": false}`, never a 5xx or a panic.

use crate::common;

use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{TestApp, TestResponse};
use introspectd::auth;
use introspectd::config::Config;
use introspectd::params::{self, Parameters};
use introspectd::token::claims::{AccessClaims, Audience};
use introspectd::token::jwt::KeySet;
use proptest::prelude::*;
use proptest::test_runner::{Config as Cases, TestRunner};

/// Any form whose names are all different, read as a map.
#[derive(serde::Deserialize)]
#[serde(transparent)]
struct AnyForm(std::collections::BTreeMap<String, String>);

impl Parameters for AnyForm {}

/// Parameter names the service reads, and some it does not.
fn param_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("token".to_owned()),
        Just("token_type_hint".to_owned()),
        Just("client_id".to_owned()),
        Just("client_secret".to_owned()),
        Just("client_assertion".to_owned()),
        Just("client_assertion_type".to_owned()),
        Just("grant_type".to_owned()),
        "[a-z_]{0,12}",
        any::<String>(),
    ]
}

/// Values of every kind: empty, JWT-shaped, long, binary-ish, unicode.
fn param_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9_-]{1,60}",
        "[A-Za-z0-9_-]{1,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}",
        "eyJ[A-Za-z0-9_-]{0,80}\\.eyJ[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,90}",
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

/// Request bodies: raw bytes, form-like text, and well-formed forms of odd parameters.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        "[a-z_%=&+0-9A-F.\\-]{0,200}".prop_map(String::into_bytes),
        proptest::collection::vec((param_name(), param_value()), 0..6).prop_map(|pairs| {
            serde_urlencoded::to_string(&pairs)
                .unwrap_or_default()
                .into_bytes()
        }),
    ]
}

fn authorization() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        proptest::collection::vec(any::<u8>(), 0..120).prop_map(Some),
        proptest::collection::vec(any::<u8>(), 0..80)
            .prop_map(|raw| Some(format!("Basic {}", STANDARD.encode(raw)).into_bytes())),
        "[ -~]{0,40}".prop_map(|s| Some(format!("Basic {s}").into_bytes())),
        "[ -~]{0,60}".prop_map(|s| Some(s.into_bytes())),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(Some("application/x-www-form-urlencoded".to_owned())),
        Just(Some(
            "application/x-www-form-urlencoded; charset=utf-8".to_owned()
        )),
        Just(Some("application/json".to_owned())),
        Just(None),
        "[ -~]{0,40}".prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(Cases::with_cases(512))]

    #[test]
    fn form_parsing_never_panics_and_keeps_unique_values(bytes in body()) {
        if let Ok(form) = params::parse::<AnyForm>(&bytes) {
            if let Some(token) = form.0.get("token") {
                prop_assert!(!token.is_empty(), "empty values count as omitted");
            }
        }
    }

    #[test]
    fn a_form_of_distinct_names_reads_back(pairs in proptest::collection::btree_map("[a-z_]{1,10}", "[ -~]{1,30}", 0..6)) {
        let encoded = serde_urlencoded::to_string(&pairs).unwrap();
        let form = params::parse::<AnyForm>(encoded.as_bytes()).unwrap();
        prop_assert_eq!(form.0, pairs);
    }

    #[test]
    fn credentials_never_panic(
        header in authorization(),
        id in proptest::option::of(param_value()),
        secret in proptest::option::of(param_value()),
        assertion in proptest::option::of(param_value()),
    ) {
        let header = header.and_then(|h| HeaderValue::from_bytes(&h).ok());
        let id = id.filter(|v| !v.is_empty());
        let secret = secret.filter(|v| !v.is_empty());
        let assertion = assertion.filter(|v| !v.is_empty());
        let presented = auth::ClientAuthentication {
            client_assertion_type: assertion
                .as_ref()
                .map(|_| "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
            client_id: id,
            client_secret: secret.map(introspectd::secret::ClientSecret::new),
            client_assertion: assertion.map(introspectd::secret::RawToken::new),
        };
        let result = auth::credentials(header.as_ref(), &presented);
        if let Ok(auth::Credentials::Secret(presented)) = result {
            prop_assert!(!presented.client_id.is_empty());
            prop_assert!(!presented.secret.expose().is_empty());
        }
    }

    #[test]
    fn arbitrary_strings_never_verify(token in param_value()) {
        let keys = key_set();
        prop_assert!(keys.verify_ignoring_time(&token).is_err());
    }
}

fn key_set() -> &'static KeySet {
    use std::sync::OnceLock;
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let config = Config {
                database_url: introspectd::config::DatabaseUrl(format!(
                    "sqlite://{}/keys.db",
                    dir.path().display()
                )),
                ..Config::default()
            };
            let store = introspectd::store::Store::connect(&config).await.unwrap();
            store.migrate().await.unwrap();
            KeySet::load(&config, &store).await.unwrap()
        })
    })
}

fn valid_token(keys: &KeySet) -> String {
    let now = introspectd::token::now();
    keys.sign(&AccessClaims {
        iss: "http://127.0.0.1:8080".to_owned(),
        sub: "alice".to_owned(),
        aud: Audience(vec!["https://api.example".to_owned()]),
        client_id: "c".to_owned(),
        scope: Some("read".to_owned()),
        username: None,
        exp: now + 600,
        iat: now,
        nbf: None,
        jti: "j".to_owned(),
        act: None,
    })
    .unwrap()
    .expose()
    .to_owned()
}

proptest! {
    #![proptest_config(Cases::with_cases(512))]

    /// Changing any one character of a signed token, or cutting it short, breaks it.
    #[test]
    fn any_change_to_a_signed_token_breaks_it(
        position in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9_.=-]",
        cut in any::<bool>(),
    ) {
        let keys = key_set();
        let token = valid_token(keys);
        prop_assert!(keys.verify_ignoring_time(&token).is_ok());
        let at = position.index(token.len());
        let changed = if cut {
            token[..at].to_owned()
        } else {
            let mut bytes = token.clone().into_bytes();
            bytes[at] = replacement.as_bytes()[0];
            String::from_utf8(bytes).unwrap()
        };
        prop_assume!(changed != token);
        prop_assert!(keys.verify_ignoring_time(&changed).is_err(), "{} verified", changed);
    }

    /// A token whose payload is re-encoded with any claims, signature kept, fails.
    #[test]
    fn a_swapped_payload_never_verifies(claims in any::<String>()) {
        let keys = key_set();
        let token = valid_token(keys);
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims), parts[2]);
        prop_assert!(keys.verify_ignoring_time(&forged).is_err());
    }
}

fn request(
    path: &str,
    content_type: Option<&str>,
    authorization: Option<&[u8]>,
    body: Vec<u8>,
) -> Request<Body> {
    let mut request = Request::post(path);
    if let Some(value) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        request = request.header(header::CONTENT_TYPE, value);
    }
    if let Some(value) = authorization.and_then(|a| HeaderValue::from_bytes(a).ok()) {
        request = request.header(header::AUTHORIZATION, value);
    }
    request.body(Body::from(body)).unwrap()
}

fn acceptable(path: &str, response: &TestResponse) -> bool {
    let status = response.status.as_u16();
    match status {
        // RFC 7009 §2.2: a revocation answers 200 with no body.
        200 if path == "/revoke" => response.body.is_empty(),
        200 => response.json.is_object(),
        400..=499 => response.json["error"].is_string() || status == 404,
        _ => false,
    }
}

/// Whole requests through the real router: every answer is a 200 with a JSON body or a
/// JSON 4xx (an empty 200 for revocation), never a 5xx, whatever the body, content type
/// and credentials.
async fn hostile_requests_get_clear_answers(app: TestApp) {
    let client = app.client("app", &[]).await;
    let honest = client.basic();
    let runtime = tokio::runtime::Handle::current();
    let router = app.router.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Cases {
            failure_persistence: None,
            ..Cases::with_cases(300)
        });
        let strategy = (
            prop_oneof![Just("/introspect"), Just("/token"), Just("/revoke")],
            content_type(),
            prop_oneof![authorization(), Just(Some(honest.into_bytes()))],
            body(),
        );
        runner.run(&strategy, |(path, content_type, authorization, body)| {
            let response = runtime.block_on(common::send(
                &router,
                request(
                    path,
                    content_type.as_deref(),
                    authorization.as_deref(),
                    body,
                ),
            ));
            prop_assert!(acceptable(path, &response), "{:?}", response);
            Ok(())
        })
    })
    .await
    .unwrap();
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    // The honest client is still served after all that.
    let token = app.jwt_for(&client, &[]).await;
    let answer = app.introspect(&client, &token).await;
    assert_eq!(answer.json["active"], true);
}

both_stores!(hostile_requests_get_clear_answers);

/// A NUL byte in a client id or username names nobody: Postgres cannot hold one in text,
/// so asking it would be a store error (a 503) where every other unknown name is a 4xx.
async fn nul_bytes_in_names_are_unknown_names(app: TestApp) {
    let post = |path: &'static str, authorization: Option<String>, body: &'static str| {
        let router = app.router.clone();
        async move { common::post_form(&router, path, authorization.as_deref(), body).await }
    };
    let basic = format!("Basic {}", STANDARD.encode("a%00b:secret"));
    for (path, authorization, body) in [
        (
            "/token",
            None,
            "grant_type=authorization_code&code=x&client_id=%00",
        ),
        (
            "/token",
            Some(basic.clone()),
            "grant_type=client_credentials",
        ),
        ("/revoke", None, "token=x&client_id=a%00b"),
        ("/introspect", Some(basic.clone()), "token=x"),
        (
            "/token",
            None,
            "grant_type=client_credentials&client_id=%00&client_secret=s",
        ),
    ] {
        let answer = post(path, authorization, body).await;
        assert_eq!(answer.status.as_u16(), 401, "{path} {body}: {answer:?}");
        assert_eq!(answer.json["error"], "invalid_client", "{path}: {answer:?}");
    }
    let page = app
        .send(
            Request::get(
                "/authorize?response_type=code&client_id=%00&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb\
                 &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=s",
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(page.status.as_u16(), 400, "{page:?}");
}

both_stores!(nul_bytes_in_names_are_unknown_names);
