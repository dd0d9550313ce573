//! Cache hit ratios in /metrics, read from the caches at scrape time. A binary of its
//! own: the metrics recorder is process-wide, and another app scraped at the same time
//! would write its own totals.

#[path = "all/common/mod.rs"]
mod common;

use common::{Backend, metric_value, scrape};

const LOOKUPS: &str = "introspectd_cache_lookups_total";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_introspection_shows_as_cache_hits() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        common::run(backend, |app| async move {
            // On Postgres the caches are used once the change feed has vouched for them.
            let started = std::time::Instant::now();
            while !app.state.directory.view().await.cached() {
                assert!(
                    started.elapsed().as_secs() < 10,
                    "the change feed never came up"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            let client = app.client("app", &[]).await;
            let token = app.jwt_for(&client, &[]).await;
            for _ in 0..3 {
                assert_eq!(app.introspect(&client, &token).await.json["active"], true);
            }
            let exposition = scrape(&app.metrics).await;
            let count = |cache: &str, result: &str| {
                metric_value(
                    &exposition,
                    LOOKUPS,
                    &[("cache", cache), ("result", result)],
                )
            };
            // The first request misses every cache; the two after it hit.
            assert!(count("verified_jwts", "hit") >= 2.0, "{exposition}");
            assert!(count("verified_jwts", "miss") >= 1.0, "{exposition}");
            assert!(count("verified_credentials", "hit") >= 2.0, "{exposition}");
            assert!(count("clients", "hit") >= 1.0, "{exposition}");
        })
        .await;
    }
}
