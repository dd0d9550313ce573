//! Micro-benchmarks of the introspection hot path: JWT verification per algorithm, the
//! opaque-token lookup per store, and the whole `POST /introspect` through the router.
//!
//! ```sh
//! cargo bench --bench hot_path
//! ```
//!
//! The Postgres lookups use a fresh database on `POSTGRES_TEST_URL`
//! (default postgres://postgres@127.0.0.1:5432/postgres) and are skipped, with a message,
//! when it does not answer.

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RsaKeyPair};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, criterion_group};
use http_body_util::BodyExt;
use introspectd::admin::{self, IssueToken, NewClient};
use introspectd::config::{Config, DatabaseUrl, KeyConfig};
use introspectd::http::{AppState, router};
use introspectd::store::Store;
use introspectd::token::claims::AccessClaims;
use introspectd::token::jwt::KeySet;
use introspectd::token::mint::TokenFormat;
use introspectd::token::{now, opaque};
use introspectd::vocabulary::TokenUse;
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// The environment variable the HS256 bench key is read from.
const HS256_SECRET_ENV: &str = "INTROSPECTD_BENCH_HS256_SECRET";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn sqlite_config(dir: &Path) -> Config {
    let mut config = Config {
        database_url: DatabaseUrl(format!("sqlite://{}", dir.join("bench.db").display())),
        ..Config::default()
    };
    config.rate_limit.enabled = false;
    config
}

async fn open(config: &Config) -> Store {
    let store = Store::connect(config).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn pem_file(dir: &Path, name: &str, pkcs8_der: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8_der))).unwrap();
    path
}

fn signing_key(kid: &str, alg: &str, private_key_file: Option<std::path::PathBuf>) -> KeyConfig {
    KeyConfig {
        kid: kid.to_owned(),
        alg: alg.to_owned(),
        private_key_file,
        public_key_file: None,
        secret_env: (alg == "HS256").then(|| HS256_SECRET_ENV.to_owned()),
    }
}

fn claims(issuer: &str) -> AccessClaims {
    let now = now();
    AccessClaims {
        iss: issuer.to_owned(),
        sub: "alice".to_owned(),
        aud: Default::default(),
        client_id: "bench-client".to_owned(),
        scope: Some("read write".to_owned()),
        username: None,
        exp: now + 3_600,
        iat: now,
        nbf: None,
        jti: introspectd::token::new_jti(),
        act: None,
    }
}

/// Signature, header and claim checks of one never-seen token: what a JWT costs before
/// the verified-token cache knows it.
fn jwt_verification(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let es256 = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let rs256 = RsaKeyPair::generate(KeySize::Rsa2048)
        .unwrap()
        .as_der()
        .unwrap();
    let keys: [(&str, Vec<KeyConfig>); 4] = [
        // No configured key: the Ed25519 key generated in the store, as by default.
        ("EdDSA", vec![]),
        (
            "ES256",
            vec![signing_key(
                "es",
                "ES256",
                Some(pem_file(dir.path(), "es256.pem", es256.as_ref())),
            )],
        ),
        (
            "RS256",
            vec![signing_key(
                "rs",
                "RS256",
                Some(pem_file(dir.path(), "rs256.pem", rs256.as_ref())),
            )],
        ),
        ("HS256", vec![signing_key("hs", "HS256", None)]),
    ];
    let mut group = c.benchmark_group("jwt_verify");
    for (alg, configured) in keys {
        let mut config = sqlite_config(dir.path());
        config.jwt.keys = configured;
        let set = rt.block_on(async {
            let store = open(&config).await;
            let set = KeySet::load(&config, &store).await.expect("keys");
            store.close().await;
            set
        });
        let token = set.sign(&claims(&config.issuer)).unwrap();
        let token = token.expose();
        assert!(
            set.verify_ignoring_time(token).is_ok(),
            "{alg} token must verify"
        );
        group.bench_function(alg, |b| b.iter(|| set.verify_ignoring_time(token)));
    }
    group.finish();
}

/// A registered client with a secret.
async fn client(store: &Store) -> admin::IssuedSecret {
    let new = NewClient {
        name: "bench".to_owned(),
        ..NewClient::default()
    };
    admin::create_client(store, new, introspectd::token::now())
        .await
        .expect("client")
}

/// An access token of `client_id`, minted as `token issue` does.
async fn access_token(
    store: &Store,
    keys: &KeySet,
    config: &Config,
    client_id: &str,
    format: TokenFormat,
) -> String {
    let request = IssueToken {
        client_id: client_id.to_owned(),
        subject: "alice".to_owned(),
        username: None,
        scope: None,
        audiences: vec![],
        ttl: None,
        token_use: TokenUse::AccessToken,
        format: Some(format),
    };
    let minted = admin::issue_token(store, keys, config, request, introspectd::token::now())
        .await
        .expect("token");
    minted.token.expose().to_owned()
}

/// A client and one opaque access token of it in `store`; the token's digest.
async fn opaque_token(store: &Store, config: &Config) -> [u8; 32] {
    let keys = KeySet::load(config, store).await.expect("keys");
    let client = client(store).await;
    let token = access_token(store, &keys, config, &client.client_id, TokenFormat::Opaque).await;
    opaque::digest(&token)
}

fn lookup_benches(c: &mut Criterion, rt: &Runtime, backend: &str, config: &Config) {
    let (store, digest) = rt.block_on(async {
        let store = open(config).await;
        let digest = opaque_token(&store, config).await;
        (store, digest)
    });
    let unknown = opaque::digest("not a token anyone was given");
    let mut group = c.benchmark_group("token_by_digest");
    group.bench_function(format!("{backend}/known"), |b| {
        b.to_async(rt).iter(|| async {
            let found = store.token_by_digest(&digest).await.unwrap();
            assert!(found.is_some());
        })
    });
    group.bench_function(format!("{backend}/unknown"), |b| {
        b.to_async(rt).iter(|| async {
            let found = store.token_by_digest(&unknown).await.unwrap();
            assert!(found.is_none());
        })
    });
    group.finish();
    rt.block_on(store.close());
}

/// One opaque-token lookup by digest in the store itself, without the caches.
fn store_lookup(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    lookup_benches(c, &rt, "sqlite", &sqlite_config(dir.path()));

    let admin_url = std::env::var("POSTGRES_TEST_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("introspectd_bench_{}", std::process::id());
    let created = rt.block_on(async {
        let admin = introspectd::store::connect_postgres_admin(&admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await?;
        admin.close().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    if let Err(err) = created {
        eprintln!("Postgres at {admin_url} is unreachable ({err}): skipping its lookups");
        return;
    }
    let mut url = url::Url::parse(&admin_url).expect("admin URL");
    url.set_path(&name);
    let mut config = sqlite_config(dir.path());
    config.database_url = DatabaseUrl(url.to_string());
    lookup_benches(c, &rt, "postgres", &config);
    rt.block_on(async {
        if let Ok(admin) = introspectd::store::connect_postgres_admin(&admin_url).await {
            let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&admin).await;
            admin.close().await;
        }
    });
}

fn introspect_request(authorization: &str, token: &str) -> Request<Body> {
    Request::post("/introspect")
        .header(header::AUTHORIZATION, authorization)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("token={token}")))
        .unwrap()
}

/// One answered request; the length of its body, read to the end.
async fn introspect(router: &Router, authorization: &str, token: &str) -> usize {
    let response = router
        .clone()
        .oneshot(introspect_request(authorization, token))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    body.len()
}

/// `POST /introspect` through the whole router and its layers, client_secret_basic, on
/// SQLite, with every cache warm: a JWT and an opaque access token.
fn introspect_handler(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut config = sqlite_config(dir.path());
    config.log.level = "warn".to_owned();
    let (router, authorization, jwt, opaque) = rt.block_on(async {
        let store = open(&config).await;
        let state = AppState::build(config.clone(), store.clone())
            .await
            .expect("state");
        let client = client(&store).await;
        let keys = state.keys.keys();
        let mut tokens = Vec::new();
        for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
            tokens.push(access_token(&store, &keys, &config, &client.client_id, format).await);
        }
        let credentials = format!("{}:{}", client.client_id, client.client_secret.expose());
        let authorization = format!("Basic {}", STANDARD.encode(credentials));
        (
            router(state),
            authorization,
            tokens[0].clone(),
            tokens[1].clone(),
        )
    });
    let mut group = c.benchmark_group("introspect_handler");
    for (name, token) in [("jwt_cached", &jwt), ("opaque_cached", &opaque)] {
        // The first request verifies the secret with argon2 and fills the caches.
        rt.block_on(introspect(&router, &authorization, token));
        group.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| introspect(&router, &authorization, token))
        });
    }
    group.finish();
}

fn set_hs256_secret() {
    // SAFETY: called from main before criterion or any runtime starts a thread.
    unsafe { std::env::set_var(HS256_SECRET_ENV, "bench-secret-of-at-least-32-bytes!!") };
}

criterion_group!(benches, jwt_verification, store_lookup, introspect_handler);

fn main() {
    set_hs256_secret();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
