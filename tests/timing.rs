//! Timing as an oracle: failures for unknown client ids and for wrong secrets must
//! take the same time, or a caller could learn which client ids exist; an opaque token
//! the caller may not see and an unknown one must take the same time, or a caller could
//! learn which tokens exist.
//!
//! A binary of its own, apart from `tests/all/`: the medians compare latencies, which the
//! tests of other areas running in the same process would skew.

#[path = "all/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Backend, TestClient};
use introspectd::token::opaque;
use introspectd::vocabulary::TokenUse;
use serde_json::json;

/// The tests of this binary run one at a time, so no test's load skews another's series.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn wrong(client: &TestClient) -> TestClient {
    TestClient {
        id: client.id.clone(),
        secret: "wrong-secret".to_owned(),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Unknown client ids cost the same argon2 work as wrong secrets: comparing medians over
/// many interleaved tries, neither is distinguishable from the other.
async fn unknown_client_and_wrong_secret_fail_in_the_same_time(backend: Backend) {
    common::run(backend, |app| async move {
        let client = app.client("app", &[]).await;
        let unknown = TestClient {
            id: "no-such-client".to_owned(),
            secret: "whatever".to_owned(),
        };
        let (mut wrong_times, mut unknown_times) = (Vec::new(), Vec::new());
        for _ in 0..40 {
            for (caller, times) in [
                (&wrong(&client), &mut wrong_times),
                (&unknown, &mut unknown_times),
            ] {
                let started = Instant::now();
                let r = app.introspect(caller, "token").await;
                times.push(started.elapsed());
                assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            }
        }
        let (wrong_median, unknown_median) = (median(wrong_times), median(unknown_times));
        let ratio = unknown_median.as_secs_f64() / wrong_median.as_secs_f64();
        // Shown with --nocapture: the figures behind the verdict.
        eprintln!(
            "{backend:?}: median of 40 unknown-client failures {unknown_median:?}, \
             of 40 wrong-secret failures {wrong_median:?}, ratio {ratio:.2}"
        );
        assert!(
            // Skipping argon2 for unknown ids would make this ratio about 0.01; the wide
            // band only absorbs the noise of a shared machine.
            (0.5..2.0).contains(&ratio),
            "unknown client {unknown_median:?} vs wrong secret {wrong_median:?}"
        );
    })
    .await;
}

/// Run alone in this binary, both backends in turn, so no other test's load skews one
/// series more than the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_client_ids_cost_the_same_argon2_work_as_wrong_secrets() {
    let _alone = ALONE.lock().await;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        unknown_client_and_wrong_secret_fail_in_the_same_time(backend).await;
    }
}

/// An existing opaque token the caller may not see is found in the cache; an unknown one
/// is known absent from the in-memory set of stored digests. Neither asks the store, so
/// over many interleaved requests their medians agree.
async fn invisible_and_unknown_opaque_tokens_answer_in_the_same_time(backend: Backend) {
    common::run(backend, |app| async move {
        let owner = app.client("owner", &[]).await;
        let caller = app.client("caller", &[]).await;
        let invisible = app.opaque_for(&owner, TokenUse::AccessToken).await;
        // Until the feed is current and the digests are loaded, unknown tokens go to the
        // store; a request is what starts the read.
        let started = Instant::now();
        while !(app.state.directory.view().await.cached()
            && app.state.directory.token_digests_loaded())
        {
            app.introspect(&caller, opaque::generate().expose()).await;
            assert!(started.elapsed() < Duration::from_secs(10), "never loaded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        const ROUNDS: usize = 1_000;
        let unknown: Vec<String> = (0..ROUNDS + 100)
            .map(|_| opaque::generate().expose().to_owned())
            .collect();
        let (mut invisible_times, mut unknown_times) = (Vec::new(), Vec::new());
        for (round, unknown) in unknown.iter().enumerate() {
            for (token, times) in [
                (invisible.as_str(), &mut invisible_times),
                (unknown.as_str(), &mut unknown_times),
            ] {
                let started = Instant::now();
                let r = app.introspect(&caller, token).await;
                let elapsed = started.elapsed();
                assert_eq!(r.json, json!({"active": false}));
                // The first rounds warm the caches and the connection.
                if round >= 100 {
                    times.push(elapsed);
                }
            }
        }
        let (invisible_median, unknown_median) = (median(invisible_times), median(unknown_times));
        let ratio = unknown_median.as_secs_f64() / invisible_median.as_secs_f64();
        eprintln!(
            "{backend:?}: median of {ROUNDS} unknown opaque tokens {unknown_median:?}, \
             of {ROUNDS} invisible ones {invisible_median:?}, ratio {ratio:.3}"
        );
        assert!(
            (1.0 / 1.1..=1.1).contains(&ratio),
            "unknown {unknown_median:?} vs invisible {invisible_median:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_opaque_tokens_cost_the_same_as_invisible_ones() {
    let _alone = ALONE.lock().await;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        invisible_and_unknown_opaque_tokens_answer_in_the_same_time(backend).await;
    }
}
