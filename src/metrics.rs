//! Prometheus metrics: every name and label the service exports, and one function per
//! event so call sites never spell a metric name. Labels carry routes, statuses and
//! reasons only; never a token, a secret or a client id.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use ::metrics::{Counter, Histogram};
use axum::http::Method;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::auth::AuthError;
use crate::introspection::Answer;
use crate::store::StoreError;

pub const HTTP_REQUESTS: &str = "introspectd_http_requests_total";
pub const HTTP_DURATION: &str = "introspectd_http_request_duration_seconds";
pub const INTROSPECTIONS: &str = "introspectd_introspections_total";
pub const AUTH_FAILURES: &str = "introspectd_auth_failures_total";
pub const RATE_LIMITED: &str = "introspectd_rate_limited_total";
pub const STORE_ERRORS: &str = "introspectd_store_errors_total";
pub const STORE_READY: &str = "introspectd_store_ready";
pub const CACHE_LOOKUPS: &str = "introspectd_cache_lookups_total";
pub const BUILD_INFO: &str = "introspectd_build_info";

/// The `route` label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Upper bounds of the latency histogram's buckets, in seconds: argon2 verification puts
/// authenticated requests in the tens of milliseconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// How often histograms are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on first use. Metrics recorded before it is
/// installed, or when another recorder was installed first, are dropped.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), &LATENCY_BUCKETS)
            .expect("latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if ::metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        ::metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    })
}

/// The exposition text of every metric recorded so far.
pub fn render() -> String {
    handle().render()
}

/// Folds recorded histogram samples into buckets now and then, so memory stays bounded
/// between scrapes. Runs until aborted.
pub async fn upkeep() {
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tick.tick().await;
        handle().run_upkeep();
    }
}

fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by method and route"
    );
    describe_counter!(
        INTROSPECTIONS,
        "Introspection answers: result active, or inactive with its reason"
    );
    describe_counter!(AUTH_FAILURES, "Failed client authentications, by reason");
    describe_counter!(RATE_LIMITED, "Requests refused by the rate limiter");
    describe_counter!(STORE_ERRORS, "Failed store operations, by kind");
    describe_gauge!(
        STORE_READY,
        "1 when the last readiness check reached the store"
    );
    describe_counter!(CACHE_LOOKUPS, "Cache lookups, by cache and hit or miss");
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label names the running build"
    );
}

/// The `method` label: standard methods by name, anything else as `other`, so a caller
/// cannot mint label values.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One answered request. `route` is the matched route template, never the raw path.
pub fn http_request(method: &Method, route: &str, status: u16, latency: Duration) {
    let method = method_label(method);
    // Without the recorder (metrics off) there is nowhere to record to, and handles
    // taken now would stay no-ops.
    if HANDLE.get().is_none() {
        return;
    }
    let routes = ROUTES.get_or_init(Default::default);
    let recorded = routes.read().ok().is_some_and(|routes| {
        routes
            .get(route)
            .is_some_and(|handles| handles.record(method, status, latency))
    });
    if !recorded {
        if let Ok(mut routes) = routes.write() {
            let handles = routes.entry(route.to_owned()).or_default();
            handles.register(method, route, status);
            handles.record(method, status, latency);
        }
    }
}

/// The request metrics of every route seen, kept so that recording a request is a map
/// lookup and two atomic updates instead of building labels and searching the registry.
/// Bounded: routes are templates, methods and statuses a short list.
static ROUTES: OnceLock<RwLock<HashMap<String, RouteHandles>>> = OnceLock::new();

#[derive(Default)]
struct RouteHandles {
    durations: Vec<(&'static str, Histogram)>,
    requests: Vec<(&'static str, u16, Counter)>,
}

impl RouteHandles {
    /// Records one request; false when its handles are not registered yet.
    fn record(&self, method: &str, status: u16, latency: Duration) -> bool {
        let duration = self.durations.iter().find(|(m, _)| *m == method);
        let requests = self
            .requests
            .iter()
            .find(|(m, s, _)| *m == method && *s == status);
        let (Some((_, duration)), Some((_, _, requests))) = (duration, requests) else {
            return false;
        };
        requests.increment(1);
        duration.record(latency.as_secs_f64());
        true
    }

    fn register(&mut self, method: &'static str, route: &str, status: u16) {
        if !self.durations.iter().any(|(m, _)| *m == method) {
            let histogram = ::metrics::histogram!(
                HTTP_DURATION,
                "method" => method,
                "route" => route.to_owned(),
            );
            self.durations.push((method, histogram));
        }
        if !self
            .requests
            .iter()
            .any(|(m, s, _)| *m == method && *s == status)
        {
            let counter = ::metrics::counter!(
                HTTP_REQUESTS,
                "method" => method,
                "route" => route.to_owned(),
                "status" => status.to_string(),
            );
            self.requests.push((method, status, counter));
        }
    }
}

/// One introspection answer (RFC 7662 §2.2): active, or inactive with its reason.
pub fn introspection_outcome(answer: &Answer) {
    match answer {
        Answer::Active(_) => ::metrics::counter!(INTROSPECTIONS, "result" => "active"),
        Answer::Inactive(reason) => ::metrics::counter!(
            INTROSPECTIONS,
            "result" => "inactive",
            "reason" => reason.as_str(),
        ),
    }
    .increment(1);
}

/// One failed client authentication. Store failures are not the caller's fault and
/// are counted as store errors instead.
pub fn auth_failure(err: &AuthError) {
    if let Some(reason) = err.reason() {
        ::metrics::counter!(AUTH_FAILURES, "reason" => reason).increment(1);
    }
}

/// One request refused by the rate limiter.
pub fn rate_limited() {
    ::metrics::counter!(RATE_LIMITED).increment(1);
}

/// One failed store operation.
pub fn store_error(err: &StoreError) {
    ::metrics::counter!(STORE_ERRORS, "kind" => err.kind()).increment(1);
}

/// The outcome of a readiness check.
pub fn store_ready(ready: bool) {
    ::metrics::gauge!(STORE_READY).set(if ready { 1.0 } else { 0.0 });
}

/// The lookups a named cache has answered and missed since start-up, as the cache
/// counts them: read at scrape time, so the hot path pays nothing for them.
pub fn cache_totals(cache: &'static str, hits: u64, misses: u64) {
    ::metrics::counter!(CACHE_LOOKUPS, "cache" => cache, "result" => "hit").absolute(hits);
    ::metrics::counter!(CACHE_LOOKUPS, "cache" => cache, "result" => "miss").absolute(misses);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        let odd = Method::from_bytes(b"SECRETMETHOD").unwrap();
        assert_eq!(method_label(&odd), "other");
    }

    #[test]
    fn every_request_is_counted_by_method_route_and_status() {
        handle();
        let route = "/unit-test-route";
        for status in [200, 200, 404] {
            http_request(&Method::POST, route, status, Duration::from_millis(3));
        }
        http_request(&Method::GET, route, 200, Duration::from_millis(3));
        let text = render();
        let count = |method: &str, status: &str| {
            format!("{HTTP_REQUESTS}{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}")
        };
        assert!(
            text.contains(&format!("{} 2\n", count("POST", "200"))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{} 1\n", count("POST", "404"))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{} 1\n", count("GET", "200"))),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{HTTP_DURATION}_count{{method=\"POST\",route=\"{route}\"}} 3\n"
            )),
            "{text}"
        );
    }

    #[test]
    fn rendered_metrics_carry_their_labels() {
        handle();
        cache_totals("unit_test_cache", 1, 2);
        let text = render();
        assert!(
            text.contains(
                "introspectd_cache_lookups_total{cache=\"unit_test_cache\",result=\"miss\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE introspectd_cache_lookups_total counter"));
    }
}
