//! Whole response bodies where the whole body is the contract: the metadata document, an
//! error body of each kind and a /token answer, each compared with its committed
//! snapshot in `tests/all/snapshots/` (the active introspection answers are in
//! `tests/all/introspect.rs`). Values that differ on every run (tokens) are redacted: a field
//! added, dropped or renamed fails here, on both stores.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestApp, basic, form, post_form};
use serde_json::{Value, json};

const API: &str = "https://api.example";

async fn metadata_document(app: TestApp) {
    let request = Request::get("/.well-known/oauth-authorization-server")
        .body(Body::empty())
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::OK);
    insta::assert_json_snapshot!("metadata_document", response.json);
}

async fn token_answer(app: TestApp) {
    let client = app.app_client("app", "read write", &[API]).await;
    let response = app
        .client_credentials(&client, &[("scope", "read"), ("resource", API)])
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(
        response.json["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    insta::assert_json_snapshot!("token_client_credentials", response.json, {
        ".access_token" => "[access_token]",
    });
}

/// An error case: its name, the path posted to, the Authorization header, the form.
type Case<'a> = (&'a str, &'a str, Option<&'a str>, Vec<(&'a str, &'a str)>);

/// One request per kind of error an endpoint answers, with its status and whole body.
async fn error_bodies(app: TestApp) {
    let owner = app.app_client("app", "read", &[API]).await;
    let plain = app.client("plain", &[]).await;
    let (caller, wrong) = (owner.basic(), basic(&owner.id, "not-the-secret"));
    let plain_basic = plain.basic();
    let cases: [Case; 8] = [
        ("invalid_request", "/introspect", Some(&caller), vec![]),
        (
            "invalid_client",
            "/introspect",
            Some(&wrong),
            vec![("token", "t")],
        ),
        (
            "invalid_grant",
            "/token",
            Some(&caller),
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "unknown"),
            ],
        ),
        (
            "invalid_scope",
            "/token",
            Some(&caller),
            vec![("grant_type", "client_credentials"), ("scope", "admin")],
        ),
        (
            "invalid_target",
            "/token",
            Some(&caller),
            vec![
                ("grant_type", "client_credentials"),
                ("resource", "https://elsewhere.example"),
            ],
        ),
        (
            "unsupported_grant_type",
            "/token",
            Some(&caller),
            vec![("grant_type", "password")],
        ),
        (
            "unauthorized_client",
            "/token",
            Some(&plain_basic),
            vec![("grant_type", "client_credentials")],
        ),
        ("missing_client", "/revoke", None, vec![("token", "t")]),
    ];
    let mut answers = serde_json::Map::new();
    for (name, path, authorization, params) in cases {
        let response = post_form(&app.router, path, authorization, &form(&params)).await;
        answers.insert(
            name.to_owned(),
            json!({"status": response.status.as_u16(), "body": response.json}),
        );
    }
    for (name, request) in [
        ("not_found", Request::get("/nowhere")),
        ("method_not_allowed", Request::get("/introspect")),
    ] {
        let response = app.send(request.body(Body::empty()).unwrap()).await;
        answers.insert(
            name.to_owned(),
            json!({"status": response.status.as_u16(), "body": response.json}),
        );
    }
    insta::assert_json_snapshot!("error_bodies", Value::Object(answers));
}

both_stores!(metadata_document, token_answer, error_bodies,);
