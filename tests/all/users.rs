//! Users who sign in, and what their grants become when an operator disables or deletes
//! them, or withdraws their consent: every token of theirs reads inactive, on every
//! instance sharing the store. Grants are stored through the store API as the
//! authorization code exchange stores them.

use crate::common;

use axum::Router;
use common::{Backend, TestApp, TestClient, TestResponse, introspect_as as ask, within_bound};
use introspectd::admin::{self, NewClient, NewUser};
use introspectd::http::AppState;
use introspectd::secret::Password;
use introspectd::store::{ConsentRecord, Store, TokenRecord};
use introspectd::token::mint::{MintRequest, TokenFormat, mint};
use introspectd::token::{new_jti, now, opaque};
use introspectd::vocabulary::TokenUse;
use serde_json::json;

const API: &str = "https://api.example";

/// A confidential client that signs users in and may obtain tokens for [`API`].
pub(crate) async fn sign_in_client(app: &TestApp, name: &str) -> TestClient {
    app.client_with(NewClient {
        name: name.to_owned(),
        redirect_uris: vec!["https://app.example/callback".to_owned()],
        resources: vec![API.to_owned()],
        scope: Some("read".to_owned()),
        ..NewClient::default()
    })
    .await
}

pub(crate) async fn user(app: &TestApp, username: &str) -> String {
    let new = NewUser {
        username: username.to_owned(),
        password: Some(Password::new("correct horse battery")),
        ..NewUser::default()
    };
    admin::create_user(&app.store, new, now())
        .await
        .expect("create user")
        .user_id
}

/// What a code exchange hands `client` for `user_id`: a JWT access token for [`API`] and
/// a refresh token stored with the user, the access token's jti recorded in its grant.
pub(crate) struct Grant {
    pub(crate) access: String,
    pub(crate) refresh: String,
}

pub(crate) async fn grant(
    app: &TestApp,
    client: &TestClient,
    user_id: &str,
    username: &str,
) -> Grant {
    let record = app.store.client_by_id(&client.id).await.unwrap().unwrap();
    let issued_at = now();
    let access = mint(
        &app.store,
        &app.state.keys.keys(),
        &app.config.issuer,
        MintRequest {
            client: &record,
            subject: user_id.to_owned(),
            username: Some(username.to_owned()),
            scope: Some("read".to_owned()),
            audiences: vec![API.to_owned()],
            ttl: 600,
            token_use: TokenUse::AccessToken,
            format: TokenFormat::Jwt,
            act: None,
        },
        issued_at,
    )
    .await
    .unwrap();
    let refresh = opaque::generate();
    let stored = TokenRecord {
        digest: opaque::digest(refresh.expose()),
        token_use: TokenUse::RefreshToken,
        client_id: client.id.clone(),
        sub: Some(user_id.to_owned()),
        username: Some(username.to_owned()),
        scope: Some("read".to_owned()),
        audiences: vec![API.to_owned()],
        jti: new_jti(),
        iat: issued_at,
        nbf: None,
        exp: issued_at + 3_600,
        revoked_at: None,
        user_id: Some(user_id.to_owned()),
    };
    app.store
        .insert_grant(&stored, (&access.jti, access.exp))
        .await
        .unwrap();
    Grant {
        access: access.token.expose().to_owned(),
        refresh: refresh.expose().to_owned(),
    }
}

fn active(response: &TestResponse) -> bool {
    response.json["active"] == true
}

fn inactive(response: &TestResponse) -> bool {
    response.json == json!({"active": false})
}

/// The access token as the resource server sees it and the refresh token as its client
/// does, on `router`, satisfy `accept`: on SQLite at once, on Postgres within the bound.
async fn both_read(
    backend: Backend,
    router: &Router,
    (client, rs): (&TestClient, &TestClient),
    grant: &Grant,
    accept: fn(&TestResponse) -> bool,
) {
    within_bound(backend, || ask(router, rs, &grant.access), accept).await;
    within_bound(backend, || ask(router, client, &grant.refresh), accept).await;
}

/// Disables or deletes a user through one instance: their tokens then read inactive there
/// and on another instance that had answered for them before.
async fn ending_a_user_ends_their_tokens_everywhere(app: TestApp, delete: bool) {
    let (_other_store, other) = app.sibling().await;
    let client = sign_in_client(&app, "app").await;
    let rs = app.client("api", &[API]).await;
    let alice = user(&app, "alice").await;
    let bob = user(&app, "bob").await;
    let alices = grant(&app, &client, &alice, "alice").await;
    let bobs = grant(&app, &client, &bob, "bob").await;
    let pair = (&client, &rs);
    for router in [&app.router, &other] {
        let answer = ask(router, &rs, &alices.access).await;
        assert!(active(&answer), "{answer:?}");
        assert_eq!(answer.json["sub"], alice.as_str());
        assert_eq!(answer.json["username"], "alice");
        both_read(app.backend, router, pair, &alices, active).await;
    }

    if delete {
        admin::delete_user(&app.store, &alice, now()).await.unwrap();
    } else {
        let shown = admin::disable_user(&app.store, "alice", now())
            .await
            .unwrap();
        assert!(shown.disabled);
    }
    both_read(app.backend, &app.router, pair, &alices, inactive).await;
    both_read(app.backend, &other, pair, &alices, inactive).await;
    for router in [&app.router, &other] {
        both_read(app.backend, router, pair, &bobs, active).await;
    }
    let refreshed = app.refresh(&client, &alices.refresh, &[]).await;
    common::assert_error(
        &refreshed,
        axum::http::StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
}

async fn a_disabled_users_tokens_read_inactive_on_every_instance(app: TestApp) {
    ending_a_user_ends_their_tokens_everywhere(app, false).await;
}

async fn a_deleted_users_tokens_read_inactive_on_every_instance(app: TestApp) {
    ending_a_user_ends_their_tokens_everywhere(app, true).await;
}

/// A refresh keeps the grant's user, so disabling the user reaches what the refresh
/// minted too.
async fn refreshed_tokens_stay_the_users(app: TestApp) {
    let client = app
        .client_with(NewClient {
            grant_types: vec!["refresh_token".to_owned()],
            ..NewClient {
                name: "app".to_owned(),
                redirect_uris: vec!["http://127.0.0.1/cb".to_owned()],
                resources: vec![API.to_owned()],
                scope: Some("read".to_owned()),
                ..NewClient::default()
            }
        })
        .await;
    let rs = app.client("api", &[API]).await;
    let alice = user(&app, "alice").await;
    let first = grant(&app, &client, &alice, "alice").await;
    let refreshed = app.refresh(&client, &first.refresh, &[]).await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    let next = Grant {
        access: refreshed.json["access_token"].as_str().unwrap().to_owned(),
        refresh: refreshed.json["refresh_token"].as_str().unwrap().to_owned(),
    };
    let stored = app
        .store
        .token_by_digest(&opaque::digest(&next.refresh))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.user_id.as_deref(), Some(alice.as_str()));
    let answer = ask(&app.router, &rs, &next.access).await;
    assert_eq!(answer.json["sub"], alice.as_str(), "{answer:?}");
    both_read(app.backend, &app.router, (&client, &rs), &next, active).await;

    admin::disable_user(&app.store, &alice, now())
        .await
        .unwrap();
    both_read(app.backend, &app.router, (&client, &rs), &next, inactive).await;
}

/// A grant stored for a user who was disabled meanwhile (a code exchanged while the
/// operator disabled its user) cannot be refreshed, and is revoked when tried.
async fn a_grant_that_outlived_its_user_is_refused_and_revoked(app: TestApp) {
    let client = sign_in_client(&app, "app").await;
    admin::update_client(
        &app.store,
        &client.id,
        admin::ClientChanges {
            grant_types: Some(vec!["refresh_token".to_owned()]),
            ..Default::default()
        },
        introspectd::token::now(),
    )
    .await
    .unwrap();
    let rs = app.client("api", &[API]).await;
    let alice = user(&app, "alice").await;
    admin::disable_user(&app.store, &alice, now())
        .await
        .unwrap();
    let late = grant(&app, &client, &alice, "alice").await;
    assert!(active(&ask(&app.router, &client, &late.refresh).await));
    let refused = app.refresh(&client, &late.refresh, &[]).await;
    common::assert_error(
        &refused,
        axum::http::StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    both_read(app.backend, &app.router, (&client, &rs), &late, inactive).await;

    // A deleted user's: the same.
    let bob = user(&app, "bob").await;
    admin::delete_user(&app.store, &bob, now()).await.unwrap();
    let orphan = grant(&app, &client, &bob, "bob").await;
    let refused = app.refresh(&client, &orphan.refresh, &[]).await;
    common::assert_error(
        &refused,
        axum::http::StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    both_read(app.backend, &app.router, (&client, &rs), &orphan, inactive).await;
}

/// `user revoke-consent --client-id C` forgets what the user allowed C and revokes the
/// grants C holds for the user; other clients and users keep theirs.
async fn revoking_consent_withdraws_that_clients_grants(app: TestApp) {
    let first = sign_in_client(&app, "first").await;
    let second = sign_in_client(&app, "second").await;
    let rs = app.client("api", &[API]).await;
    let alice = user(&app, "alice").await;
    let bob = user(&app, "bob").await;
    for client in [&first, &second] {
        for user_id in [&alice, &bob] {
            let consent = ConsentRecord {
                user_id: user_id.clone(),
                client_id: client.id.clone(),
                scope: Some("read".to_owned()),
                resources: vec![API.to_owned()],
                created_at: now(),
            };
            app.store.remember_consent(&consent).await.unwrap();
        }
    }
    let alice_first = grant(&app, &first, &alice, "alice").await;
    let alice_second = grant(&app, &second, &alice, "alice").await;
    let bob_first = grant(&app, &first, &bob, "bob").await;

    let revoked = admin::revoke_consent(&app.store, "alice", Some(&first.id), now())
        .await
        .unwrap();
    assert_eq!(revoked.consents_revoked, 1);
    assert_eq!(revoked.tokens_revoked, 2, "{revoked:?}");
    let consented = |user_id: &str, client: &TestClient| {
        let (store, user_id, client_id) =
            (app.store.clone(), user_id.to_owned(), client.id.clone());
        async move {
            store
                .has_consent(&user_id, &client_id, Some("read"), &[API.to_owned()])
                .await
                .unwrap()
        }
    };
    assert!(!consented(&alice, &first).await);
    assert!(consented(&alice, &second).await);
    assert!(consented(&bob, &first).await);
    both_read(
        app.backend,
        &app.router,
        (&first, &rs),
        &alice_first,
        inactive,
    )
    .await;
    both_read(
        app.backend,
        &app.router,
        (&second, &rs),
        &alice_second,
        active,
    )
    .await;
    both_read(app.backend, &app.router, (&first, &rs), &bob_first, active).await;

    // Without a client: every client's.
    let revoked = admin::revoke_consent(&app.store, &alice, None, now())
        .await
        .unwrap();
    assert_eq!((revoked.consents_revoked, revoked.tokens_revoked), (1, 2));
    assert!(!consented(&alice, &second).await);
    both_read(
        app.backend,
        &app.router,
        (&second, &rs),
        &alice_second,
        inactive,
    )
    .await;
    assert!(matches!(
        admin::revoke_consent(&app.store, &alice, Some("no-such-client"), now()).await,
        Err(admin::AdminError::UnknownClient(_))
    ));
}

/// A user disabled through one instance is seen disabled by another's cached view.
async fn a_user_change_reaches_every_instances_cache(app: TestApp) {
    let other_store = Store::connect(&app.config).await.unwrap();
    let other = AppState::build(app.config.clone(), other_store)
        .await
        .unwrap();
    let alice = user(&app, "alice").await;
    let disabled = |state: AppState, user_id: String| async move {
        let view = state.directory.view().await;
        view.user(&user_id).await.unwrap().map(|u| u.disabled)
    };
    for _ in 0..2 {
        assert_eq!(disabled(other.clone(), alice.clone()).await, Some(false));
    }
    admin::disable_user(&app.store, &alice, now())
        .await
        .unwrap();
    within_bound(
        app.backend,
        || disabled(other.clone(), alice.clone()),
        |d| *d == Some(true),
    )
    .await;
    admin::delete_user(&app.store, &alice, now()).await.unwrap();
    within_bound(
        app.backend,
        || disabled(other.clone(), alice.clone()),
        Option::is_none,
    )
    .await;
}

/// A public client has no secret to show, and the one it was created with never
/// authenticates it, whatever the method.
async fn a_public_client_never_authenticates_with_a_secret(app: TestApp) {
    let created = admin::create_client(
        &app.store,
        NewClient {
            name: "inspector".to_owned(),
            auth_method: Some("none".to_owned()),
            redirect_uris: vec!["http://localhost:6274/oauth/callback".to_owned()],
            audiences: vec![API.to_owned()],
            ..NewClient::default()
        },
        introspectd::token::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        created.to_json(),
        json!({"client_id": created.client_id}),
        "no secret to show"
    );
    let client = app
        .store
        .client_by_id(&created.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        client.policy.grant_types,
        [
            introspectd::vocabulary::GrantType::AuthorizationCode,
            introspectd::vocabulary::GrantType::RefreshToken
        ]
    );
    let hidden = TestClient {
        id: created.client_id.clone(),
        secret: created.client_secret.expose().to_owned(),
    };
    let token = app.jwt_for(&hidden, &[API]).await;
    let basic = ask(&app.router, &hidden, &token).await;
    common::assert_error(
        &basic,
        axum::http::StatusCode::UNAUTHORIZED,
        "invalid_client",
    );
    let with_secret = [("client_secret", hidden.secret.as_str())];
    for extra in [&with_secret[..], &[]] {
        let mut params = vec![("token", token.as_str()), ("client_id", &hidden.id)];
        params.extend_from_slice(extra);
        let post =
            common::post_form(&app.router, "/introspect", None, &common::form(&params)).await;
        common::assert_error(
            &post,
            axum::http::StatusCode::UNAUTHORIZED,
            "invalid_client",
        );
    }
}

both_stores!(
    a_disabled_users_tokens_read_inactive_on_every_instance,
    a_deleted_users_tokens_read_inactive_on_every_instance,
    refreshed_tokens_stay_the_users,
    a_grant_that_outlived_its_user_is_refused_and_revoked,
    revoking_consent_withdraws_that_clients_grants,
    a_user_change_reaches_every_instances_cache,
    a_public_client_never_authenticates_with_a_secret,
);
