//! The audit trail of the operator's commands, read back with `introspectd events` and
//! its filters, and followed as it grows: through the real binary, on SQLite and
//! Postgres. (The events of sign-ins and grants are tested with them, in `signin.rs`.)

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::Backend;
use common::binary::{self, PATIENCE, create_client, issue_token, run, run_json};
use introspectd::config::DatabaseUrl;
use serde_json::{Value, json};

const API: &str = "https://api.example";

/// `introspectd events` with `args`: one JSON object a line.
fn events(dir: &Path, db: &DatabaseUrl, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["events"];
    all.extend_from_slice(args);
    let output = run(dir, db, &all);
    assert!(
        output.status.success(),
        "{all:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

async fn operator_changes_are_in_the_audit_trail(backend: Backend) {
    let Some((db, _guard)) = common::fresh_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (client, secret) = create_client(dir, &db, &["--audience", API]);
    run_json(
        dir,
        &db,
        &["client", "update", &client, "--scope", "read write"],
    );
    let rotated = run_json(dir, &db, &["client", "rotate-secret", &client]);
    let user = run_json(dir, &db, &["user", "create", "--username", "alice"]);
    let user_id = user["user_id"].as_str().unwrap();
    run_json(dir, &db, &["user", "disable", "alice"]);
    let token = issue_token(dir, &db, &client, &["--audience", API]);

    let all = events(dir, &db, &[]);
    assert_eq!(
        types(&all),
        [
            "client.created",
            "client.updated",
            "client.secret_rotated",
            "user.created",
            "user.disabled",
            "token.issued",
        ],
        "{all:#?}"
    );
    for event in &all {
        assert_eq!(event["detail"]["by"], "operator", "{event}");
        assert!(
            event["id"].is_string() && event["time"].is_string(),
            "{event}"
        );
    }
    assert_eq!(all[0]["client_id"], client.as_str());
    assert_eq!(all[1]["detail"]["changed"], json!(["scope"]));
    assert_eq!(all[3]["user_id"], user_id);
    assert_eq!(all[5]["detail"]["grant_type"], "operator");
    assert_eq!(all[5]["detail"]["aud"], json!([API]));

    // Filters.
    let updated = events(dir, &db, &["--type", "client.updated"]);
    assert_eq!(types(&updated), ["client.updated"]);
    let two = events(
        dir,
        &db,
        &["--type", "user.created", "--type", "user.disabled"],
    );
    assert_eq!(types(&two), ["user.created", "user.disabled"]);
    assert_eq!(events(dir, &db, &["--user", "alice"]).len(), 2);
    assert_eq!(events(dir, &db, &["--user", user_id]).len(), 2);
    assert_eq!(events(dir, &db, &["--client-id", &client]).len(), 4);
    assert_eq!(events(dir, &db, &["--since", "1h"]).len(), all.len());
    assert!(events(dir, &db, &["--since", "2099-01-01T00:00:00Z"]).is_empty());
    let refused = run(dir, &db, &["events", "--type", "signin"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--type must be one of"));

    // Nothing secret is in the trail.
    let trail = serde_json::to_string(&all).unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap();
    let password = user["password"].as_str().unwrap();
    for secret in [secret.as_str(), new_secret, password, token.as_str()] {
        assert!(!trail.contains(secret), "{secret} is in the trail");
    }

    // `--follow` prints what is recorded after it started.
    let mut follower = binary::command(dir, &db)
        .args(["events", "--follow", "--type", "client.disabled"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run events --follow");
    let stdout = follower.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    run_json(dir, &db, &["client", "disable", &client]);
    let line = received
        .recv_timeout(PATIENCE)
        .expect("a line within patience")
        .unwrap();
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["type"], "client.disabled");
    assert_eq!(event["client_id"], client.as_str());
    assert!(
        received.recv_timeout(Duration::from_millis(0)).is_err(),
        "only the type asked for"
    );
    follower.kill().unwrap();
    follower.wait().unwrap();
}

both_backends!(operator_changes_are_in_the_audit_trail);
