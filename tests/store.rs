//! The store interface: the same behaviour from SQLite and Postgres.

mod common;

use common::TestApp;
use introspectd::auth::hash_secret;
use introspectd::secret::ClientSecret;
use introspectd::store::{ClientPolicy, ClientRecord, TokenRecord};
use introspectd::token::jwt::KeySet;
use introspectd::token::{now, opaque};
use introspectd::vocabulary::{AuthMethod, GrantType, InactiveBudget, TokenUse};

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.to_owned(),
        name: format!("client {id}"),
        secret_hash: hash_secret(&ClientSecret::new("s")),
        auth_method: AuthMethod::ClientSecretPost,
        scope: "read write".to_owned(),
        audiences: vec!["https://a.example".to_owned(), "urn:b".to_owned()],
        policy: ClientPolicy {
            grant_types: vec![GrantType::ClientCredentials, GrantType::RefreshToken],
            resources: vec!["https://a.example".to_owned()],
            strict_auth_method: true,
            inactive_budget: InactiveBudget::Limit(7),
        },
        disabled: false,
        created_at: 10,
        updated_at: 10,
    }
}

fn token(client_id: &str, value: &str, exp: i64) -> TokenRecord {
    TokenRecord {
        digest: opaque::digest(value),
        token_use: TokenUse::RefreshToken,
        client_id: client_id.to_owned(),
        sub: Some("alice".to_owned()),
        username: Some("Alice".to_owned()),
        scope: Some("read".to_owned()),
        audiences: vec!["urn:b".to_owned()],
        jti: format!("jti-{value}"),
        iat: 1,
        nbf: Some(2),
        exp,
        revoked_at: None,
    }
}

async fn clients_round_trip(app: TestApp) {
    let store = &app.store;
    let record = client("c1");
    store.insert_client(&record, None).await.unwrap();
    assert_eq!(
        store.client_by_id("c1").await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(store.client_by_id("nope").await.unwrap(), None);
    store.insert_client(&client("c2"), None).await.unwrap();
    let ids: Vec<String> = store
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(ids, vec!["c1", "c2"]);
    assert!(
        store.insert_client(&record, None).await.is_err(),
        "ids are unique"
    );

    let new_hash = hash_secret(&ClientSecret::new("t"));
    assert!(
        store
            .set_client_secret_hash("c1", &new_hash, 20)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_client_secret_hash("nope", &new_hash, 20)
            .await
            .unwrap()
    );
    assert!(store.set_client_disabled("c1", true, 30).await.unwrap());
    let changed = store.client_by_id("c1").await.unwrap().unwrap();
    assert_eq!(changed.secret_hash, new_hash);
    assert!(changed.disabled);
    assert_eq!(changed.updated_at, 30);

    // An update rewrites the policy and keeps the secret and the disabled flag.
    let mut updated = changed.clone();
    updated.scope = String::new();
    updated.audiences = vec![];
    updated.policy = ClientPolicy {
        inactive_budget: InactiveBudget::Off,
        ..ClientPolicy::default()
    };
    updated.updated_at = 40;
    assert!(store.update_client(&updated).await.unwrap());
    assert_eq!(
        store.client_by_id("c1").await.unwrap(),
        Some(updated.clone())
    );
    updated.client_id = "nope".to_owned();
    assert!(!store.update_client(&updated).await.unwrap());

    assert!(store.delete_client("c1").await.unwrap());
    assert!(!store.delete_client("c1").await.unwrap());
    assert_eq!(store.client_by_id("c1").await.unwrap(), None);
}

async fn tokens_are_found_by_digest_and_revoked(app: TestApp) {
    let store = &app.store;
    store.insert_client(&client("c1"), None).await.unwrap();
    let record = token("c1", "value-1", now() + 60);
    store.insert_token(&record).await.unwrap();
    assert_eq!(
        store
            .token_by_digest(&opaque::digest("value-1"))
            .await
            .unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        store
            .token_by_digest(&opaque::digest("value-2"))
            .await
            .unwrap(),
        None
    );
    assert!(store.revoke_token(&record.digest, 99).await.unwrap());
    // Revoking again keeps the first revocation time.
    assert!(store.revoke_token(&record.digest, 150).await.unwrap());
    let revoked = store
        .token_by_digest(&record.digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(99));
    assert!(
        !store
            .revoke_token(&opaque::digest("value-2"), 1)
            .await
            .unwrap()
    );
}

async fn tokens_need_an_existing_client_and_go_with_it(app: TestApp) {
    let store = &app.store;
    assert!(store.insert_token(&token("ghost", "v", 100)).await.is_err());
    store.insert_client(&client("c1"), None).await.unwrap();
    store.insert_token(&token("c1", "v", 100)).await.unwrap();
    store.delete_client("c1").await.unwrap();
    assert_eq!(
        store.token_by_digest(&opaque::digest("v")).await.unwrap(),
        None
    );
}

async fn revoked_jtis_are_idempotent_and_purged_after_expiry(app: TestApp) {
    let store = &app.store;
    store.revoke_jti("old", 100, 50).await.unwrap();
    store.revoke_jti("old", 100, 60).await.unwrap();
    store.revoke_jti("new", 10_000, 50).await.unwrap();
    store.insert_client(&client("c1"), None).await.unwrap();
    store
        .insert_token(&token("c1", "expired", 100))
        .await
        .unwrap();
    store
        .insert_token(&token("c1", "live", 10_000))
        .await
        .unwrap();
    assert!(store.is_jti_revoked("old").await.unwrap());
    assert!(!store.is_jti_revoked("other").await.unwrap());
    assert_eq!(store.purge_expired(1_000).await.unwrap(), 2);
    assert!(!store.is_jti_revoked("old").await.unwrap());
    assert!(store.is_jti_revoked("new").await.unwrap());
    assert!(
        store
            .token_by_digest(&opaque::digest("live"))
            .await
            .unwrap()
            .is_some()
    );
}

async fn a_client_and_its_keys_are_written_together(app: TestApp) {
    let store = &app.store;
    let jwks = r#"{"keys":[]}"#;
    store
        .insert_client(&client("c1"), Some(jwks))
        .await
        .unwrap();
    assert_eq!(
        store.client_jwks("c1").await.unwrap().as_deref(),
        Some(jwks)
    );
    assert_eq!(store.client_jwks("nope").await.unwrap(), None);

    // The database refuses the keys: the client must not be left without them.
    let url = app.config.database_url.as_str();
    let refuse: &[&'static str] = match store.backend() {
        "sqlite" => &["CREATE TRIGGER refuse_keys BEFORE INSERT ON client_jwks \
              BEGIN SELECT RAISE(ABORT, 'keys refused'); END"],
        _ => &[
            "CREATE FUNCTION refuse_keys() RETURNS trigger LANGUAGE plpgsql \
             AS $$ BEGIN RAISE EXCEPTION 'keys refused'; END $$",
            "CREATE TRIGGER refuse_keys BEFORE INSERT ON client_jwks \
             FOR EACH ROW EXECUTE FUNCTION refuse_keys()",
        ],
    };
    for &sql in refuse {
        match store.backend() {
            "sqlite" => sqlx::query(sql)
                .execute(&sqlx::SqlitePool::connect(url).await.unwrap())
                .await
                .map(|_| ()),
            _ => sqlx::query(sql)
                .execute(&sqlx::PgPool::connect(url).await.unwrap())
                .await
                .map(|_| ()),
        }
        .unwrap();
    }
    assert!(
        store
            .insert_client(&client("c2"), Some(jwks))
            .await
            .is_err()
    );
    assert_eq!(store.client_by_id("c2").await.unwrap(), None);
    // Without keys to write, registration is untouched by the refusal.
    store.insert_client(&client("c3"), None).await.unwrap();
    assert!(store.client_by_id("c3").await.unwrap().is_some());
}

async fn generated_signing_key_is_kept_across_restarts(app: TestApp) {
    let first = app.state.keys.keys().signing_kid().unwrap().to_owned();
    let (store, _) = app.sibling().await;
    let again = KeySet::load(&app.config, &store).await.unwrap();
    assert_eq!(again.signing_kid(), Some(first.as_str()));
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
    let key = &store.signing_keys().await.unwrap()[0];
    assert!(!format!("{key:?}").contains(&format!("{:?}", key.private_key)));
}

async fn migrations_are_idempotent_and_ping_works(app: TestApp) {
    app.store.migrate().await.unwrap();
    app.store.ping().await.unwrap();
}

both_stores!(
    clients_round_trip,
    tokens_are_found_by_digest_and_revoked,
    tokens_need_an_existing_client_and_go_with_it,
    revoked_jtis_are_idempotent_and_purged_after_expiry,
    a_client_and_its_keys_are_written_together,
    generated_signing_key_is_kept_across_restarts,
    migrations_are_idempotent_and_ping_works,
);
