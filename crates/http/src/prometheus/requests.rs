//! Request counts and latencies, kept in memory per server and written at each scrape.
//!
//! Series are keyed by route pattern, method and status. Every dimension is bounded: patterns
//! come from the route table (an unmatched path shares one fixed label), methods outside the
//! standard ones share `OTHER`, and statuses are three digits. The raw path is never a label:
//! it would grow without bound and would put webhook tokens (`/api/v1/webhooks/{token}`) into
//! the scrape.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use actix_web::http::Method;

use super::text::{Exposition, HistogramSample, MetricType};

/// Upper bounds of the latency buckets, in seconds: Prometheus' client default, which spans a
/// cached read (5 ms) to a long-poll claim (10 s).
pub const LATENCY_BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One bucket per bound plus one for the observations above the last bound.
const BUCKETS: usize = LATENCY_BOUNDS.len() + 1;

pub const REQUESTS_TOTAL: &str = "baton_http_requests_total";
pub const REQUEST_DURATION: &str = "baton_http_request_duration_seconds";

/// The label of a method outside the standard set, so a client inventing verbs cannot add
/// series.
pub const OTHER_METHOD: &str = "OTHER";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SeriesKey {
    route: String,
    method: &'static str,
    status: u16,
}

/// The counts of one series. The request count is the sum of the buckets, so the counter, the
/// `+Inf` bucket and `_count` always agree, even while a request is being recorded.
#[derive(Debug, Default)]
struct Series {
    buckets: [AtomicU64; BUCKETS],
    /// Total latency in nanoseconds (u64 nanoseconds last 584 years of summed latency).
    sum_nanos: AtomicU64,
}

impl Series {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let index = LATENCY_BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BOUNDS.len());
        // Each bucket counts on its own; scrapes cumulate them. Relaxed is enough: no other
        // memory is published through these counters.
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// A snapshot of one series, taken at a scrape.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    counts: [u64; BUCKETS],
    sum_seconds: f64,
}

impl Snapshot {
    fn total(&self) -> u64 {
        self.counts.iter().copied().fold(0, u64::saturating_add)
    }
}

/// The request metrics of this server. Recording a request of a known series takes a read lock
/// and three relaxed atomic additions; only the first request of a series takes the write lock.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    series: RwLock<HashMap<SeriesKey, Series>>,
}

impl RequestMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one answered request. `route` is the matched route pattern (or the fixed label
    /// for unmatched paths), never the raw path.
    pub fn record(&self, route: &str, method: &Method, status: u16, elapsed: Duration) {
        let key = SeriesKey {
            route: route.to_owned(),
            method: method_label(method),
            status,
        };
        {
            // A poisoned lock still holds consistent counters (every write is one insert or an
            // atomic add), so counting goes on rather than failing requests.
            let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(found) = series.get(&key) {
                found.observe(elapsed);
                return;
            }
        }
        let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
        series.entry(key).or_default().observe(elapsed);
    }

    /// Copies every series, sorted by route, method and status so scrapes are stable.
    fn snapshot(&self) -> Vec<(SeriesKey, Snapshot)> {
        let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = series
            .iter()
            .map(|(key, series)| {
                let counts = std::array::from_fn(|i| {
                    series
                        .buckets
                        .get(i)
                        .map_or(0, |b| b.load(Ordering::Relaxed))
                });
                let sum_nanos = series.sum_nanos.load(Ordering::Relaxed);
                let snapshot = Snapshot {
                    counts,
                    // Precision beyond 2^53 ns (104 days of summed latency) is not needed.
                    sum_seconds: sum_nanos as f64 / 1e9,
                };
                (key.clone(), snapshot)
            })
            .collect();
        drop(series);
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Writes the request counter and the latency histogram families.
    pub fn write(&self, doc: &mut Exposition) {
        let all = self.snapshot();
        let mut counter = doc.family(
            REQUESTS_TOTAL,
            MetricType::Counter,
            "HTTP requests answered, by route pattern, method and status code.",
        );
        for (key, snapshot) in &all {
            let status = key.status.to_string();
            counter.sample(&labels(key, &status), snapshot.total());
        }
        let mut histogram = doc.family(
            REQUEST_DURATION,
            MetricType::Histogram,
            "Time from receiving an HTTP request to its response headers, in seconds, by route \
             pattern, method and status code.",
        );
        for (key, snapshot) in &all {
            let status = key.status.to_string();
            histogram.histogram(
                &labels(key, &status),
                &HistogramSample {
                    bounds: &LATENCY_BOUNDS,
                    counts: &snapshot.counts,
                    sum: snapshot.sum_seconds,
                },
            );
        }
    }
}

fn labels<'a>(key: &'a SeriesKey, status: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("route", key.route.as_str()),
        ("method", key.method),
        ("status", status),
    ]
}

/// The method's label: the standard methods by name, anything else as `OTHER_METHOD`.
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or(OTHER_METHOD, |(_, label)| label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(metrics: &RequestMetrics) -> String {
        let mut doc = Exposition::new();
        metrics.write(&mut doc);
        doc.finish()
    }

    #[test]
    fn requests_are_counted_per_route_method_and_status() {
        let metrics = RequestMetrics::new();
        let fast = Duration::from_millis(1);
        metrics.record("/api/v1/auth/me", &Method::GET, 200, fast);
        metrics.record("/api/v1/auth/me", &Method::GET, 200, fast);
        metrics.record("/api/v1/auth/me", &Method::GET, 401, fast);
        metrics.record("/api/v1/jobs/{id}", &Method::DELETE, 404, fast);
        let text = text(&metrics);
        for line in [
            r#"baton_http_requests_total{route="/api/v1/auth/me",method="GET",status="200"} 2"#,
            r#"baton_http_requests_total{route="/api/v1/auth/me",method="GET",status="401"} 1"#,
            r#"baton_http_requests_total{route="/api/v1/jobs/{id}",method="DELETE",status="404"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn latencies_fall_into_cumulative_buckets() {
        let metrics = RequestMetrics::new();
        for millis in [1, 7, 7, 300, 20_000] {
            metrics.record("/r", &Method::GET, 200, Duration::from_millis(millis));
        }
        let text = text(&metrics);
        let bucket = |le: &str| {
            let prefix = format!(
                r#"baton_http_request_duration_seconds_bucket{{route="/r",method="GET",status="200",le="{le}"}} "#
            );
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .unwrap_or_else(|| panic!("no bucket {le} in\n{text}"))
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("bucket {le}: {e}"))
        };
        assert_eq!(bucket("0.005"), 1);
        assert_eq!(bucket("0.01"), 3);
        assert_eq!(bucket("0.25"), 3);
        assert_eq!(bucket("0.5"), 4);
        assert_eq!(bucket("10"), 4);
        assert_eq!(bucket("+Inf"), 5);
        assert!(text.contains(
            "baton_http_request_duration_seconds_sum{route=\"/r\",method=\"GET\",status=\"200\"} 20.315\n"
        ), "{text}");
        assert!(text.contains(
            "baton_http_request_duration_seconds_count{route=\"/r\",method=\"GET\",status=\"200\"} 5\n"
        ), "{text}");
    }

    #[test]
    fn an_observation_on_a_bound_counts_in_that_bucket() {
        let series = Series::default();
        series.observe(Duration::from_millis(5));
        series.observe(Duration::from_secs(10));
        series.observe(Duration::from_secs(11));
        let load = |i: usize| series.buckets[i].load(Ordering::Relaxed);
        assert_eq!(load(0), 1);
        assert_eq!(load(LATENCY_BOUNDS.len() - 1), 1);
        assert_eq!(load(LATENCY_BOUNDS.len()), 1);
    }

    #[test]
    fn invented_methods_share_one_label() {
        let made_up = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), OTHER_METHOD);
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }

    #[test]
    fn an_empty_registry_still_declares_both_families() {
        let text = text(&RequestMetrics::new());
        assert_eq!(
            text.lines().filter(|l| l.starts_with("# TYPE")).count(),
            2,
            "{text}"
        );
    }

    #[test]
    fn the_registry_can_be_shared_by_workers() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RequestMetrics>();
    }
}
