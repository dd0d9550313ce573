//! The store interface: the same behaviour from SQLite and Postgres.

use crate::common;

use common::TestApp;
use introspectd::auth::{hash_password, hash_secret};
use introspectd::secret::{ClientSecret, Password};
use introspectd::store::{
    ClientPolicy, ClientRecord, ConsentRecord, FederatedLoginRecord, LinkRecord, NewLink,
    PendingBounds, SessionRecord, Store, TokenRecord, UserRecord,
};
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
        redirect_uris: vec!["https://app.example/cb".to_owned()],
        policy: ClientPolicy {
            grant_types: vec![
                GrantType::ClientCredentials,
                GrantType::RefreshToken,
                GrantType::TokenExchange,
            ],
            resources: vec!["https://a.example".to_owned()],
            strict_auth_method: true,
            inactive_budget: InactiveBudget::Limit(7),
            exchange_targets: vec!["https://next.example/mcp".to_owned()],
        },
        disabled: false,
        created_at: 10,
        updated_at: 10,
        origin: Default::default(),
        last_used_at: None,
        client_uri: None,
        logo_uri: None,
        application_type: None,
        previous_secret: None,
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
        user_id: None,
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

    let old_hash = store.client_by_id("c1").await.unwrap().unwrap().secret_hash;
    let grace_hash = hash_secret(&ClientSecret::new("g"));
    // Replaced with a grace until 120: the old hash is kept until then, and a later
    // replacement without grace drops it.
    assert!(
        store
            .set_client_secret_hash("c1", &grace_hash, 120, 10)
            .await
            .unwrap()
    );
    let graced = store.client_by_id("c1").await.unwrap().unwrap();
    assert_eq!(graced.secret_hash, grace_hash);
    assert_eq!(
        graced.previous_secret,
        Some(introspectd::store::PreviousSecret {
            hash: old_hash.clone(),
            expires_at: 120
        })
    );
    assert_eq!(graced.secret_hashes(119), [&grace_hash, &old_hash]);
    assert_eq!(graced.secret_hashes(120), [&grace_hash]);
    let new_hash = hash_secret(&ClientSecret::new("t"));
    assert!(
        store
            .set_client_secret_hash("c1", &new_hash, 20, 20)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .client_by_id("c1")
            .await
            .unwrap()
            .unwrap()
            .previous_secret,
        None
    );
    assert!(
        !store
            .set_client_secret_hash("nope", &new_hash, 20, 20)
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
    updated.redirect_uris = vec![
        "http://127.0.0.1/cb".to_owned(),
        "com.example.app:/cb".to_owned(),
    ];
    updated.auth_method = AuthMethod::None;
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

fn user(id: &str, username: &str) -> UserRecord {
    UserRecord {
        user_id: id.to_owned(),
        username: username.to_owned(),
        email: Some(format!("{username}@example.com")),
        name: Some(format!("User {username}")),
        password_hash: Some(hash_password(&Password::new("correct horse"))),
        disabled: false,
        created_at: 10,
        updated_at: 10,
    }
}

fn session(value: &str, user_id: &str, expires_at: i64) -> SessionRecord {
    SessionRecord {
        digest: opaque::digest(value),
        user_id: user_id.to_owned(),
        created_at: 5,
        expires_at,
    }
}

fn consent(
    user_id: &str,
    client_id: &str,
    scope: Option<&str>,
    resources: &[&str],
) -> ConsentRecord {
    ConsentRecord {
        user_id: user_id.to_owned(),
        client_id: client_id.to_owned(),
        scope: scope.map(str::to_owned),
        resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        created_at: 20,
    }
}

async fn users_round_trip(app: TestApp) {
    let store = &app.store;
    let alice = user("u1", "alice");
    assert!(store.insert_user(&alice).await.unwrap());
    assert_eq!(store.user_by_id("u1").await.unwrap(), Some(alice.clone()));
    assert_eq!(
        store.user_by_username("alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.user_by_id("alice").await.unwrap(), None);
    assert_eq!(store.user_by_username("u1").await.unwrap(), None);
    assert!(
        !store.insert_user(&user("u2", "alice")).await.unwrap(),
        "a username names one user"
    );
    assert_eq!(store.user_by_id("u2").await.unwrap(), None);
    assert!(
        store.insert_user(&user("u1", "other")).await.is_err(),
        "ids are unique"
    );
    // The store keeps usernames in the one form lookups use.
    for unnormalized in ["Bob", " bob", ""] {
        assert!(
            store.insert_user(&user("u3", unnormalized)).await.is_err(),
            "{unnormalized:?}"
        );
    }
    let bare = UserRecord {
        email: None,
        name: None,
        password_hash: None,
        ..user("u0", "aaron")
    };
    assert!(store.insert_user(&bare).await.unwrap());
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["aaron", "alice"]);
    assert_eq!(store.user_by_id("u0").await.unwrap(), Some(bare));

    let new_hash = hash_password(&Password::new("battery staple"));
    assert!(
        store
            .set_user_password_hash("u1", &new_hash, 30)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_user_password_hash("nope", &new_hash, 30)
            .await
            .unwrap()
    );
    assert!(store.set_user_disabled("u1", true, 40).await.unwrap());
    assert!(!store.set_user_disabled("nope", true, 40).await.unwrap());
    let changed = store.user_by_id("u1").await.unwrap().unwrap();
    assert_eq!(changed.password_hash, Some(new_hash));
    assert!(changed.disabled);
    assert_eq!(changed.updated_at, 40);
    // Each change reads as later than the one before, even within one second.
    assert!(store.set_user_disabled("u1", false, 40).await.unwrap());
    let enabled = store.user_by_id("u1").await.unwrap().unwrap();
    assert!(!enabled.disabled);
    assert_eq!(enabled.updated_at, 41);

    assert!(store.delete_user("u1", 60).await.unwrap());
    assert!(!store.delete_user("u1", 60).await.unwrap());
    assert_eq!(store.user_by_id("u1").await.unwrap(), None);
    assert_eq!(store.user_by_username("alice").await.unwrap(), None);
}

async fn signin_failures_count_within_their_windows(app: TestApp) {
    use introspectd::store::FailureWindow;
    let store = &app.store;
    let (a, b) = (opaque::digest("a"), opaque::digest("b"));
    let fixed = FailureWindow {
        seconds: 100,
        sliding: false,
    };
    let sliding = FailureWindow {
        seconds: 100,
        sliding: true,
    };
    assert!(
        store
            .signin_failures(&[a, b], 1_000)
            .await
            .unwrap()
            .is_empty()
    );
    let first = store
        .record_signin_failure(&a, fixed, 1_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.failures, first.first_at, first.expires_at),
        (1, 1_000, 1_100)
    );
    let second = store
        .record_signin_failure(&a, fixed, 1_050)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (second.failures, second.last_at, second.expires_at),
        (2, 1_050, 1_100)
    );
    // A fixed window ends 100 s after its first failure; the next starts over.
    assert!(store.signin_failures(&[a], 1_100).await.unwrap().is_empty());
    let again = store
        .record_signin_failure(&a, fixed, 1_100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.failures, again.first_at, again.expires_at),
        (1, 1_100, 1_200)
    );
    // A sliding one lasts 100 s past the latest failure.
    store
        .record_signin_failure(&b, sliding, 1_000)
        .await
        .unwrap();
    let later = store
        .record_signin_failure(&b, sliding, 1_090)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (later.failures, later.first_at, later.expires_at),
        (2, 1_000, 1_190)
    );
    let found = store.signin_failures(&[a, b, a], 1_150).await.unwrap();
    assert_eq!(found.len(), 2);
    // Five keys at once (read in chunks).
    let many: Vec<[u8; 32]> = (0..5).map(|i| opaque::digest(&format!("k{i}"))).collect();
    for digest in &many {
        store
            .record_signin_failure(digest, fixed, 1_000)
            .await
            .unwrap();
    }
    assert_eq!(store.signin_failures(&many, 1_000).await.unwrap().len(), 5);
    // A right password ends a count; expired windows are purged.
    assert_eq!(store.clear_signin_failures(&[b]).await.unwrap(), 1);
    assert!(store.signin_failures(&[b], 1_150).await.unwrap().is_empty());
    store.purge_expired(1_150).await.unwrap();
    assert_eq!(store.signin_failures(&many, 0).await.unwrap().len(), 0);
    assert_eq!(store.signin_failures(&[a], 1_150).await.unwrap().len(), 1);
}

async fn sessions_are_found_by_digest_and_end(app: TestApp) {
    let store = &app.store;
    store.insert_user(&user("u1", "alice")).await.unwrap();
    store.insert_user(&user("u2", "bob")).await.unwrap();
    let first = session("s1", "u1", 1_000);
    store.insert_session(&first).await.unwrap();
    store
        .insert_session(&session("s2", "u1", 2_000))
        .await
        .unwrap();
    store
        .insert_session(&session("s3", "u2", 2_000))
        .await
        .unwrap();
    assert!(
        store
            .insert_session(&session("s4", "ghost", 2_000))
            .await
            .is_err(),
        "a session belongs to a user"
    );
    assert_eq!(
        store.session_by_digest(&first.digest).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store
            .session_by_digest(&opaque::digest("s9"))
            .await
            .unwrap(),
        None
    );
    assert!(store.delete_session(&first.digest).await.unwrap());
    assert!(!store.delete_session(&first.digest).await.unwrap());
    assert_eq!(store.session_by_digest(&first.digest).await.unwrap(), None);
    assert_eq!(store.delete_user_sessions("u1").await.unwrap(), 1);
    assert_eq!(store.delete_user_sessions("u1").await.unwrap(), 0);
    let other = opaque::digest("s3");
    assert!(store.session_by_digest(&other).await.unwrap().is_some());

    // Expired sessions are purged with everything else that expired.
    store
        .insert_session(&session("old", "u2", 100))
        .await
        .unwrap();
    assert_eq!(store.purge_expired(1_000).await.unwrap(), 1);
    assert_eq!(
        store
            .session_by_digest(&opaque::digest("old"))
            .await
            .unwrap(),
        None
    );
    assert!(store.session_by_digest(&other).await.unwrap().is_some());
}

async fn disabling_or_deleting_a_user_ends_their_sessions(app: TestApp) {
    let store = &app.store;
    store.insert_user(&user("u1", "alice")).await.unwrap();
    store.insert_user(&user("u2", "bob")).await.unwrap();
    store
        .insert_session(&session("a", "u1", 2_000))
        .await
        .unwrap();
    store
        .insert_session(&session("b", "u2", 2_000))
        .await
        .unwrap();
    assert!(store.set_user_disabled("u1", true, 10).await.unwrap());
    let found = |value: &'static str| async move {
        store
            .session_by_digest(&opaque::digest(value))
            .await
            .unwrap()
            .is_some()
    };
    assert!(!found("a").await);
    assert!(found("b").await);
    assert!(store.delete_user("u2", 10).await.unwrap());
    assert!(!found("b").await);
}

async fn consents_are_remembered_in_any_order_and_forgotten(app: TestApp) {
    let store = &app.store;
    store.insert_client(&client("c1"), None).await.unwrap();
    store.insert_client(&client("c2"), None).await.unwrap();
    store.insert_user(&user("u1", "alice")).await.unwrap();
    store.insert_user(&user("u2", "bob")).await.unwrap();
    let allowed = consent(
        "u1",
        "c1",
        Some("write read"),
        &["urn:b", "https://a.example"],
    );
    store.remember_consent(&allowed).await.unwrap();
    store.remember_consent(&allowed).await.unwrap();
    let resources = |r: &[&str]| r.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
    let has = |user_id: &'static str,
               client_id: &'static str,
               scope: Option<&'static str>,
               r: Vec<String>| async move {
        store
            .has_consent(user_id, client_id, scope, &r)
            .await
            .unwrap()
    };
    let both = resources(&["https://a.example", "urn:b"]);
    assert!(has("u1", "c1", Some("read write"), both.clone()).await);
    assert!(
        has(
            "u1",
            "c1",
            Some(" write  read read"),
            resources(&["urn:b", "https://a.example", "urn:b"])
        )
        .await
    );
    // Exactly what was allowed: not less, not more, not for another client or user.
    assert!(!has("u1", "c1", Some("read"), both.clone()).await);
    assert!(!has("u1", "c1", Some("read write admin"), both.clone()).await);
    assert!(!has("u1", "c1", Some("read write"), resources(&["urn:b"])).await);
    assert!(!has("u1", "c1", None, both.clone()).await);
    assert!(!has("u1", "c2", Some("read write"), both.clone()).await);
    assert!(!has("u2", "c1", Some("read write"), both.clone()).await);
    // No scope and no resources is a decision of its own; an empty scope is no scope.
    store
        .remember_consent(&consent("u1", "c1", None, &[]))
        .await
        .unwrap();
    assert!(has("u1", "c1", Some(""), vec![]).await);
    assert!(has("u1", "c1", None, vec![]).await);
    assert!(
        store
            .remember_consent(&consent("u1", "ghost", None, &[]))
            .await
            .is_err(),
        "a consent is given to a client"
    );

    store
        .remember_consent(&consent("u1", "c2", None, &[]))
        .await
        .unwrap();
    store
        .remember_consent(&consent("u2", "c1", None, &[]))
        .await
        .unwrap();
    store
        .remember_consent(&consent("u2", "c2", None, &[]))
        .await
        .unwrap();
    assert_eq!(
        store.forget_consents(Some("u1"), Some("c1")).await.unwrap(),
        2
    );
    assert!(!has("u1", "c1", None, vec![]).await);
    assert!(has("u1", "c2", None, vec![]).await);
    assert_eq!(store.forget_consents(None, Some("c2")).await.unwrap(), 2);
    assert!(!has("u1", "c2", None, vec![]).await);
    assert_eq!(store.forget_consents(Some("u2"), None).await.unwrap(), 1);
    assert_eq!(store.forget_consents(None, None).await.unwrap(), 0);

    // Deleting the client or the user forgets what was allowed them.
    store
        .remember_consent(&consent("u1", "c1", None, &[]))
        .await
        .unwrap();
    store
        .remember_consent(&consent("u2", "c2", None, &[]))
        .await
        .unwrap();
    assert!(store.delete_client("c1").await.unwrap());
    assert!(!has("u1", "c1", None, vec![]).await);
    assert!(store.delete_user("u2", 30).await.unwrap());
    assert!(!has("u2", "c2", None, vec![]).await);
    assert_eq!(store.forget_consents(None, None).await.unwrap(), 0);
}

/// A refresh token of `user_id` (None: the client's own) stored as the first of a new
/// grant, with the access token minted beside it recorded by jti; the access jti.
async fn grant_for(store: &Store, client_id: &str, value: &str, user_id: Option<&str>) -> String {
    let record = TokenRecord {
        user_id: user_id.map(str::to_owned),
        ..token(client_id, value, now() + 600)
    };
    let access = format!("access-{value}");
    store
        .insert_grant(&record, (&access, now() + 60))
        .await
        .unwrap();
    access
}

async fn stored(store: &Store, value: &str) -> TokenRecord {
    store
        .token_by_digest(&opaque::digest(value))
        .await
        .unwrap()
        .unwrap()
}

async fn a_users_grants_are_revoked_with_every_access_token_minted_from_them(app: TestApp) {
    let store = &app.store;
    store.insert_client(&client("c1"), None).await.unwrap();
    store.insert_client(&client("c2"), None).await.unwrap();
    store.insert_user(&user("u1", "alice")).await.unwrap();
    store.insert_user(&user("u2", "bob")).await.unwrap();
    let first = grant_for(store, "c1", "r1", Some("u1")).await;
    let other_client = grant_for(store, "c2", "r2", Some("u1")).await;
    let other_user = grant_for(store, "c1", "r3", Some("u2")).await;
    let clients_own = grant_for(store, "c1", "r4", None).await;
    assert_eq!(stored(store, "r1").await.user_id.as_deref(), Some("u1"));
    assert_eq!(stored(store, "r4").await.user_id, None);
    // r1 was rotated once: the grant now holds r1 (retired), r1b and two access tokens.
    // The grant decides, not the token: a successor stored without its user (by an
    // issuer sharing the store) goes with the grant all the same.
    let successor = token("c1", "r1b", now() + 600);
    let family = store
        .token_family_by_digest(&opaque::digest("r1"))
        .await
        .unwrap()
        .unwrap()
        .family_id;
    let rotated = store
        .rotate_refresh_token(
            &opaque::digest("r1"),
            &successor,
            &family,
            ("access-r1b", now() + 60),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(rotated, introspectd::store::Rotation::Rotated);

    // Withdrawing one client's grants leaves the user's others alone.
    assert_eq!(
        store
            .revoke_user_client_tokens("u1", "c2", 70)
            .await
            .unwrap(),
        2,
        "the refresh token and its access token"
    );
    assert!(store.is_jti_revoked(&other_client).await.unwrap());
    assert!(!store.is_jti_revoked(&first).await.unwrap());
    assert_eq!(stored(store, "r1b").await.revoked_at, None);

    // r1b, and the access tokens of r1 and r1b; r1 was retired before.
    assert_eq!(store.revoke_user_tokens("u1", 80).await.unwrap(), 3);
    assert_eq!(stored(store, "r1b").await.revoked_at, Some(80));
    let retired = stored(store, "r1").await.revoked_at;
    assert!(
        retired.is_some_and(|at| at != 80),
        "retired by its rotation"
    );
    for jti in [&first, "access-r1b", &other_client] {
        assert!(store.is_jti_revoked(jti).await.unwrap(), "{jti}");
    }
    assert_eq!(
        store.revoke_user_tokens("u1", 90).await.unwrap(),
        0,
        "idempotent"
    );
    // Nobody else's grants.
    for (value, jti) in [("r3", &other_user), ("r4", &clients_own)] {
        assert_eq!(stored(store, value).await.revoked_at, None);
        assert!(!store.is_jti_revoked(jti).await.unwrap());
    }

    // Disabling or deleting a user revokes in the same stroke.
    let later = grant_for(store, "c1", "r5", Some("u2")).await;
    assert!(store.set_user_disabled("u2", true, 100).await.unwrap());
    for (value, jti) in [("r3", &other_user), ("r5", &later)] {
        assert_eq!(stored(store, value).await.revoked_at, Some(100));
        assert!(store.is_jti_revoked(jti).await.unwrap());
    }
    store.insert_user(&user("u3", "carol")).await.unwrap();
    let carols = grant_for(store, "c2", "r6", Some("u3")).await;
    assert!(store.delete_user("u3", 110).await.unwrap());
    assert_eq!(stored(store, "r6").await.revoked_at, Some(110));
    assert_eq!(stored(store, "r6").await.user_id.as_deref(), Some("u3"));
    assert!(store.is_jti_revoked(&carols).await.unwrap());
    assert_eq!(stored(store, "r4").await.revoked_at, None);
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

fn link(provider: &str, subject: &str, user_id: &str) -> LinkRecord {
    LinkRecord {
        provider_id: provider.to_owned(),
        subject: subject.to_owned(),
        user_id: user_id.to_owned(),
        created_at: 10,
    }
}

async fn linked_users_are_stored_with_their_link_or_not_at_all(app: TestApp) {
    let store = &app.store;
    let taken = user("u1", "alice");
    assert!(store.insert_user(&taken).await.unwrap());
    // A taken username stores neither the user nor the link.
    let clash = UserRecord {
        password_hash: None,
        ..user("u2", "alice")
    };
    let outcome = store
        .insert_linked_user(&clash, &link("corp", "sub-1", "u2"))
        .await
        .unwrap();
    assert_eq!(outcome, NewLink::UsernameTaken);
    assert_eq!(store.linked_user("corp", "sub-1").await.unwrap(), None);
    assert_eq!(store.user_links("u1").await.unwrap(), Vec::new());

    let new = UserRecord {
        password_hash: None,
        ..user("u2", "alice-2")
    };
    let outcome = store
        .insert_linked_user(&new, &link("corp", "sub-1", "u2"))
        .await
        .unwrap();
    assert_eq!(outcome, NewLink::Created);
    assert_eq!(
        store.linked_user("corp", "sub-1").await.unwrap(),
        Some(new.clone())
    );
    assert_eq!(store.linked_user("other", "sub-1").await.unwrap(), None);
    assert_eq!(
        store.user_links("u2").await.unwrap(),
        vec![link("corp", "sub-1", "u2")]
    );
    // The same subject linked meanwhile by another sign-in: nothing more is stored.
    let racer = UserRecord {
        password_hash: None,
        ..user("u3", "alice-3")
    };
    let outcome = store
        .insert_linked_user(&racer, &link("corp", "sub-1", "u3"))
        .await
        .unwrap();
    assert_eq!(outcome, NewLink::AlreadyLinked);
    assert_eq!(store.user_by_id("u3").await.unwrap(), None);

    // Deleting the user deletes its links.
    assert!(store.delete_user("u2", now()).await.unwrap());
    assert_eq!(store.linked_user("corp", "sub-1").await.unwrap(), None);
    assert_eq!(store.user_links("u2").await.unwrap(), Vec::new());
}

async fn a_sign_in_sent_to_a_provider_is_taken_once(app: TestApp) {
    let store = &app.store;
    let login = FederatedLoginRecord {
        state_digest: opaque::digest("state-1"),
        provider_id: "corp".to_owned(),
        browser_id: "browser-1".to_owned(),
        request: "response_type=code&client_id=x".to_owned(),
        created_at: 100,
        expires_at: 700,
    };
    store
        .insert_federated_login(&login, 100, BOUNDS)
        .await
        .unwrap();
    let digest = opaque::digest("state-1");
    assert_eq!(
        store.take_federated_login(&digest).await.unwrap(),
        Some(login.clone())
    );
    assert_eq!(store.take_federated_login(&digest).await.unwrap(), None);
    // Expired ones go when the next is stored.
    store
        .insert_federated_login(&login, 100, BOUNDS)
        .await
        .unwrap();
    let later = FederatedLoginRecord {
        state_digest: opaque::digest("state-2"),
        ..login.clone()
    };
    store
        .insert_federated_login(&later, 700, BOUNDS)
        .await
        .unwrap();
    assert_eq!(store.take_federated_login(&digest).await.unwrap(), None);
}

const BOUNDS: PendingBounds = PendingBounds {
    per_browser: 3,
    total: 10,
};

/// A sign-in sent to `provider` from `browser` at `at`, named by `state`.
fn pending(state: &str, provider: &str, browser: &str, at: i64) -> FederatedLoginRecord {
    FederatedLoginRecord {
        state_digest: opaque::digest(state),
        provider_id: provider.to_owned(),
        browser_id: browser.to_owned(),
        request: "response_type=code&client_id=x".to_owned(),
        created_at: at,
        expires_at: at + 600,
    }
}

/// One browser keeps its newest few sign-ins per provider; all browsers together keep
/// at most the total, the newest; expired ones are purged.
async fn sign_ins_sent_to_providers_are_bounded(app: TestApp) {
    let store = &app.store;
    for i in 0..20 {
        let login = pending(&format!("b1-corp-{i}"), "corp", "b1", 1_000 + i);
        store
            .insert_federated_login(&login, 1_000 + i, BOUNDS)
            .await
            .unwrap();
    }
    assert_eq!(store.pending_federated_logins().await.unwrap(), 3);
    for i in 17..20 {
        let digest = opaque::digest(&format!("b1-corp-{i}"));
        assert!(
            store.take_federated_login(&digest).await.unwrap().is_some(),
            "{i}"
        );
    }
    // Another provider, another browser: their own share.
    for (state, provider, browser) in [
        ("a", "corp", "b1"),
        ("b", "other", "b1"),
        ("c", "corp", "b2"),
    ] {
        store
            .insert_federated_login(&pending(state, provider, browser, 1_100), 1_100, BOUNDS)
            .await
            .unwrap();
    }
    assert_eq!(store.pending_federated_logins().await.unwrap(), 3);
    // A browser a request (no cookie kept): at most the total, the newest kept.
    for i in 0..25 {
        let login = pending(
            &format!("fresh-{i}"),
            "corp",
            &format!("fresh-{i}"),
            1_200 + i,
        );
        store
            .insert_federated_login(&login, 1_200 + i, BOUNDS)
            .await
            .unwrap();
    }
    assert_eq!(store.pending_federated_logins().await.unwrap(), 10);
    let newest = opaque::digest("fresh-24");
    assert!(store.take_federated_login(&newest).await.unwrap().is_some());
    let oldest = opaque::digest("fresh-0");
    assert_eq!(store.take_federated_login(&oldest).await.unwrap(), None);
    // Expired ones go with the purge.
    assert_eq!(store.purge_federated_logins(1_224 + 600).await.unwrap(), 9);
    assert_eq!(store.pending_federated_logins().await.unwrap(), 0);
}

both_stores!(
    signin_failures_count_within_their_windows,
    sign_ins_sent_to_providers_are_bounded,
    linked_users_are_stored_with_their_link_or_not_at_all,
    a_sign_in_sent_to_a_provider_is_taken_once,
    clients_round_trip,
    tokens_are_found_by_digest_and_revoked,
    tokens_need_an_existing_client_and_go_with_it,
    revoked_jtis_are_idempotent_and_purged_after_expiry,
    a_client_and_its_keys_are_written_together,
    generated_signing_key_is_kept_across_restarts,
    migrations_are_idempotent_and_ping_works,
    users_round_trip,
    sessions_are_found_by_digest_and_end,
    disabling_or_deleting_a_user_ends_their_sessions,
    consents_are_remembered_in_any_order_and_forgotten,
    a_users_grants_are_revoked_with_every_access_token_minted_from_them,
);
