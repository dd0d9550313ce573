//! Prometheus metrics: every name and label the service exports, and one function per
//! event so call sites never spell a metric name. Labels carry routes, statuses and
//! reasons only; never a token, a secret or a client id.

use std::sync::OnceLock;
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
pub const CLIENT_DOCUMENTS: &str = "introspectd_client_documents_total";
pub const AUDIT_DROPPED: &str = "introspectd_audit_events_dropped_total";
pub const SIGNINS: &str = "introspectd_signins_total";
pub const TOKENS_ISSUED: &str = "introspectd_tokens_issued_total";

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
    describe_counter!(
        CLIENT_DOCUMENTS,
        "Client ID metadata documents resolved, by outcome"
    );
    describe_gauge!(
        STORE_READY,
        "1 when the last readiness check reached the store"
    );
    describe_counter!(CACHE_LOOKUPS, "Cache lookups, by cache and hit or miss");
    describe_counter!(
        AUDIT_DROPPED,
        "Audit events dropped: the buffer was full or the store refused them"
    );
    describe_counter!(
        SIGNINS,
        "Sign-ins, by outcome (succeeded, failed, locked) and method (password, provider)"
    );
    describe_counter!(TOKENS_ISSUED, "Tokens issued at /token, by grant type");
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

/// The handle a slot holds, resolved on first use. `None` without the recorder (metrics
/// off): there is nowhere to record to, and a handle taken now would stay a no-op.
fn resolved<T>(slot: &OnceLock<T>, resolve: impl FnOnce() -> T) -> Option<&T> {
    HANDLE.get()?;
    Some(slot.get_or_init(resolve))
}

/// The `method` labels, in the order of [`method_slot`].
const METHODS: [&str; 8] = [
    "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];

fn method_slot(label: &str) -> usize {
    METHODS
        .iter()
        .position(|m| *m == label)
        .unwrap_or(METHODS.len() - 1)
}

/// Statuses whose counters are resolved once per route and method; any other status is
/// looked up in the registry when it occurs.
const STATUSES: [u16; 16] = [
    200, 201, 204, 304, 400, 401, 403, 404, 405, 408, 413, 415, 429, 431, 500, 503,
];

/// The request metrics of every route of a router, resolved once per route, method and
/// status, so that recording a request touches no lock and no registry: a scan of a
/// few route names, then one counter and one histogram. Routes it was not built with
/// are recorded through the registry.
pub struct RequestMetrics {
    routes: Vec<RouteMetrics>,
}

struct RouteMetrics {
    route: String,
    methods: [MethodMetrics; METHODS.len()],
}

#[derive(Default)]
struct MethodMetrics {
    duration: OnceLock<Histogram>,
    requests: [OnceLock<Counter>; STATUSES.len()],
}

impl RequestMetrics {
    /// Metrics for the given route templates and [`UNMATCHED_ROUTE`].
    pub fn new<'a>(routes: impl IntoIterator<Item = &'a str>) -> Self {
        let routes = routes
            .into_iter()
            .chain([UNMATCHED_ROUTE])
            .map(|route| RouteMetrics {
                route: route.to_owned(),
                methods: Default::default(),
            })
            .collect();
        RequestMetrics { routes }
    }

    /// One answered request. `route` is the matched route template, never the raw path.
    pub fn record(&self, method: &Method, route: &str, status: u16, latency: Duration) {
        let label = method_label(method);
        let Some(metrics) = self.routes.iter().find(|r| r.route == route) else {
            return http_request(label, route, status, latency);
        };
        let slots = &metrics.methods[method_slot(label)];
        let duration = resolved(&slots.duration, || duration_histogram(label, route));
        let Some(duration) = duration else {
            return;
        };
        duration.record(latency.as_secs_f64());
        match STATUSES.iter().position(|s| *s == status) {
            Some(i) => resolved(&slots.requests[i], || {
                requests_counter(label, route, status)
            })
            .into_iter()
            .for_each(|requests| requests.increment(1)),
            None => requests_counter(label, route, status).increment(1),
        }
    }
}

/// One answered request of a route no [`RequestMetrics`] knows, through the registry.
fn http_request(method: &'static str, route: &str, status: u16, latency: Duration) {
    if HANDLE.get().is_none() {
        return;
    }
    duration_histogram(method, route).record(latency.as_secs_f64());
    requests_counter(method, route, status).increment(1);
}

fn duration_histogram(method: &'static str, route: &str) -> Histogram {
    ::metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route.to_owned())
}

fn requests_counter(method: &'static str, route: &str, status: u16) -> Counter {
    ::metrics::counter!(
        HTTP_REQUESTS,
        "method" => method,
        "route" => route.to_owned(),
        "status" => status.to_string(),
    )
}

/// One introspection answer (RFC 7662 §2.2): active, or inactive with its reason. The
/// counters are resolved once per outcome.
pub fn introspection_outcome(answer: &Answer) {
    static OUTCOMES: [OnceLock<Counter>; 16] = [const { OnceLock::new() }; 16];
    let (slot, reason) = match answer {
        Answer::Active(_) => (0, None),
        Answer::Inactive(reason) => (*reason as usize + 1, Some(reason.as_str())),
    };
    let resolve = || match reason {
        None => ::metrics::counter!(INTROSPECTIONS, "result" => "active"),
        Some(reason) => ::metrics::counter!(
            INTROSPECTIONS,
            "result" => "inactive",
            "reason" => reason,
        ),
    };
    match OUTCOMES.get(slot) {
        Some(slot) => resolved(slot, resolve)
            .into_iter()
            .for_each(|c| c.increment(1)),
        None => resolve().increment(1),
    }
}

/// The `reason` labels of failed authentications whose counters are resolved once.
const AUTH_FAILURE_REASONS: [&str; 8] = [
    "missing_credentials",
    "malformed_credentials",
    "malformed_request",
    "unsupported_scheme",
    "bad_credentials",
    "client_disabled",
    "wrong_method",
    "throttled",
];

/// One failed client authentication. Store failures are not the caller's fault and
/// are counted as store errors instead.
pub fn auth_failure(err: &AuthError) {
    static FAILURES: [OnceLock<Counter>; AUTH_FAILURE_REASONS.len()] =
        [const { OnceLock::new() }; AUTH_FAILURE_REASONS.len()];
    let Some(reason) = err.reason() else {
        return;
    };
    let resolve = || ::metrics::counter!(AUTH_FAILURES, "reason" => reason);
    match AUTH_FAILURE_REASONS.iter().position(|r| *r == reason) {
        Some(i) => resolved(&FAILURES[i], resolve)
            .into_iter()
            .for_each(|c| c.increment(1)),
        None => resolve().increment(1),
    }
}

/// One request refused by the rate limiter.
pub fn rate_limited() {
    static REFUSED: OnceLock<Counter> = OnceLock::new();
    if let Some(refused) = resolved(&REFUSED, || ::metrics::counter!(RATE_LIMITED)) {
        refused.increment(1);
    }
}

/// One failed store operation.
pub fn store_error(err: &StoreError) {
    ::metrics::counter!(STORE_ERRORS, "kind" => err.kind()).increment(1);
}

/// What became of a client ID metadata document that was not in the cache: `fetched`
/// (and stored), `refused` (the reason is logged), `stale` (the last good document stands
/// in for a refetch that got no answer or was not made for a limit), or `limited` (not
/// fetched, and no good document to stand in: the requester's or the host's budget was
/// spent, or no fetch ended within the wait).
pub fn client_document(outcome: &'static str) {
    ::metrics::counter!(CLIENT_DOCUMENTS, "outcome" => outcome).increment(1);
}

/// One sign-in: `outcome` (`succeeded`, `failed`, `locked`) by `method` (`password`,
/// `provider`).
pub fn signin(outcome: &'static str, method: &'static str) {
    ::metrics::counter!(SIGNINS, "outcome" => outcome, "method" => method).increment(1);
}

/// One token issued at `/token`, by grant type.
pub fn token_issued(grant_type: &'static str) {
    ::metrics::counter!(TOKENS_ISSUED, "grant_type" => grant_type).increment(1);
}

/// Audit events that could not be kept.
pub fn audit_dropped(events: u64) {
    ::metrics::counter!(AUDIT_DROPPED).increment(events);
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
        let metrics = RequestMetrics::new([route]);
        // 200 has a resolved counter, 299 does not.
        for status in [200, 200, 404, 299] {
            metrics.record(&Method::POST, route, status, Duration::from_millis(3));
        }
        metrics.record(&Method::GET, route, 200, Duration::from_millis(3));
        let odd = Method::from_bytes(b"SECRETMETHOD").unwrap();
        metrics.record(&odd, route, 200, Duration::from_millis(3));
        // A route the table was not built with still counts.
        let other = "/unit-test-other-route";
        metrics.record(&Method::GET, other, 200, Duration::from_millis(3));
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
            text.contains(&format!("{} 1\n", count("POST", "299"))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{} 1\n", count("other", "200"))),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{HTTP_DURATION}_count{{method=\"POST\",route=\"{route}\"}} 4\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{HTTP_REQUESTS}{{method=\"GET\",route=\"{other}\",status=\"200\"}} 1\n"
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
