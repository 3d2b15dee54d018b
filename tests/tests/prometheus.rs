//! `GET /metrics` over HTTP (docs/prometheus.md): every scrape is parsed by a strict reader of
//! the text exposition format 0.0.4 written here, and its numbers are checked against what the test did:
//! request counters move by exactly the calls made, under route patterns (never raw paths, so
//! webhook tokens stay out), and the jobs, queue items and robots gauges match the database.
//! Scraping needs the read permission unless `--metrics-public`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use baton_domain::job::JobStatus;
use baton_domain::ports::JobRepository;
use baton_storage::testing::TestDatabase;
use baton_tests::{TestApp, json};
use reqwest::Method;
use serde_json::{Value, json};

/// Runs each named `async fn(TestDatabase)` on a fresh SQLite and a fresh PostgreSQL database,
/// as the tests `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_databases {
    ($($flow:ident),* $(,)?) => {$(
        mod $flow {
            use super::*;

            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$flow(TestDatabase::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$flow(TestDatabase::postgres().await).await;
            }
        }
    )*};
}

on_both_databases!(
    request_counters_move_by_exactly_the_calls_made_under_route_patterns,
    database_gauges_match_what_was_done,
    scraping_needs_the_read_permission_unless_public,
);

// ---------------------------------------------------------------------------------------------
// A strict reader of the text exposition format.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    /// The sample's own name (`x_bucket` for a histogram `x`).
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

#[derive(Debug)]
struct Family {
    kind: Kind,
    samples: Vec<Sample>,
}

/// One histogram series as read: its buckets (`le`, cumulative count) in order, `_sum`, `_count`.
#[derive(Debug, Default)]
struct HistogramSeries {
    buckets: Vec<(f64, f64)>,
    sum: Option<f64>,
    count: Option<f64>,
}

/// A parsed scrape: families by name.
#[derive(Debug)]
struct Scrape {
    families: HashMap<String, Family>,
    text: String,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text
            .parse::<f64>()
            .map_err(|e| format!("bad value {text:?}: {e}")),
    }
}

/// `name{a="x",b="y"}` → name and labels, and the rest of the line after the series.
fn parse_series(line: &str) -> Result<(String, BTreeMap<String, String>, &str), String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after_brace) = rest.strip_prefix('{') {
        let mut chars = after_brace.char_indices().peekable();
        loop {
            // A label name up to '='.
            let start = chars.peek().map(|(i, _)| *i).ok_or("unterminated labels")?;
            let mut eq = None;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    eq = Some(i);
                    break;
                }
            }
            let eq = eq.ok_or("label without '='")?;
            let label = &after_brace[start..eq];
            if !is_label_name(label) {
                return Err(format!("bad label name {label:?} in {line:?}"));
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label value not quoted in {line:?}"));
            }
            let mut value = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    None => return Err(format!("unterminated label value in {line:?}")),
                    Some('"') => break,
                    Some('\\') => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => return Err(format!("bad escape {other:?} in {line:?}")),
                    },
                    Some('\n') => return Err(format!("raw newline in a label of {line:?}")),
                    Some(c) => value.push(c),
                }
            }
            if labels.insert(label.to_owned(), value).is_some() {
                return Err(format!("label {label} repeated in {line:?}"));
            }
            match chars.next() {
                Some((_, ',')) => continue,
                Some((i, '}')) => {
                    rest = &after_brace[i + 1..];
                    break;
                }
                other => return Err(format!("expected ',' or '}}', got {other:?} in {line:?}")),
            }
        }
    }
    Ok((name.to_owned(), labels, rest))
}

/// The family a sample name belongs to, given the family being read.
fn belongs_to(sample: &str, family: &str, kind: Kind) -> bool {
    match kind {
        Kind::Counter | Kind::Gauge => sample == family,
        Kind::Histogram => ["_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| sample.strip_suffix(suffix) == Some(family)),
    }
}

impl Scrape {
    /// Parses a whole scrape, refusing anything the format (as Baton writes it) does not allow.
    fn parse(text: &str) -> Result<Self, String> {
        if !text.ends_with('\n') {
            return Err("the scrape does not end with a newline".into());
        }
        let mut families: HashMap<String, Family> = HashMap::new();
        let mut helped: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        let mut series_seen: HashSet<String> = HashSet::new();
        for line in text.lines() {
            if let Some(comment) = line.strip_prefix("# ") {
                let (keyword, rest) = comment
                    .split_once(' ')
                    .ok_or_else(|| format!("bad comment {line:?}"))?;
                let (name, arg) = rest.split_once(' ').unwrap_or((rest, ""));
                if !is_metric_name(name) {
                    return Err(format!("bad metric name in {line:?}"));
                }
                match keyword {
                    "HELP" => {
                        if families.contains_key(name) || !helped.insert(name.to_owned()) {
                            return Err(format!("HELP of {name} after its TYPE or repeated"));
                        }
                        // Help text escapes only backslash and newline.
                        let mut chars = arg.chars();
                        while let Some(c) = chars.next() {
                            if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                                return Err(format!("bad escape in {line:?}"));
                            }
                        }
                    }
                    "TYPE" => {
                        let kind = match arg {
                            "counter" => Kind::Counter,
                            "gauge" => Kind::Gauge,
                            "histogram" => Kind::Histogram,
                            other => return Err(format!("unexpected type {other:?}")),
                        };
                        if families.contains_key(name) {
                            return Err(format!("second TYPE for {name}"));
                        }
                        families.insert(
                            name.to_owned(),
                            Family {
                                kind,
                                samples: Vec::new(),
                            },
                        );
                        current = Some(name.to_owned());
                    }
                    other => return Err(format!("unexpected comment keyword {other:?}")),
                }
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                return Err(format!("unexpected line {line:?}"));
            }
            let (name, labels, rest) = parse_series(line)?;
            let value_text = rest
                .strip_prefix(' ')
                .ok_or_else(|| format!("no space before the value in {line:?}"))?;
            if value_text.contains(' ') {
                return Err(format!("unexpected timestamp or garbage in {line:?}"));
            }
            let value = parse_value(value_text)?;
            let family_name = current
                .clone()
                .ok_or_else(|| format!("sample before any TYPE: {line:?}"))?;
            let family = families.get_mut(&family_name).expect("current family");
            if !belongs_to(&name, &family_name, family.kind) {
                return Err(format!(
                    "sample {name} is not of the family {family_name} being read (no TYPE?)"
                ));
            }
            let series_key = format!("{name}{labels:?}");
            if !series_seen.insert(series_key) {
                return Err(format!("series repeated: {line:?}"));
            }
            if family.kind == Kind::Counter && (value < 0.0 || value.is_nan()) {
                return Err(format!("negative counter {line:?}"));
            }
            if name.ends_with("_bucket") != labels.contains_key("le") {
                return Err(format!(
                    "`le` on a non-bucket or missing on a bucket: {line:?}"
                ));
            }
            family.samples.push(Sample {
                name,
                labels,
                value,
            });
        }
        let scrape = Scrape {
            families,
            text: text.to_owned(),
        };
        scrape.check_histograms()?;
        Ok(scrape)
    }

    /// Each histogram series: buckets in increasing `le`, counts never decreasing, a last
    /// `+Inf` bucket equal to `_count`, and a `_sum`.
    fn check_histograms(&self) -> Result<(), String> {
        for (name, family) in &self.families {
            if family.kind != Kind::Histogram {
                continue;
            }
            let mut series: BTreeMap<String, HistogramSeries> = BTreeMap::new();
            for sample in &family.samples {
                let mut labels = sample.labels.clone();
                let le = labels.remove("le");
                let entry = series.entry(format!("{labels:?}")).or_default();
                if sample.name.ends_with("_bucket") {
                    let le = parse_value(&le.expect("checked"))?;
                    entry.buckets.push((le, sample.value));
                } else if sample.name.ends_with("_sum") {
                    entry.sum = Some(sample.value);
                } else {
                    entry.count = Some(sample.value);
                }
            }
            for (
                labels,
                HistogramSeries {
                    buckets,
                    sum,
                    count,
                },
            ) in series
            {
                let count = count.ok_or_else(|| format!("{name}{labels}: no _count"))?;
                sum.ok_or_else(|| format!("{name}{labels}: no _sum"))?;
                let last = buckets
                    .last()
                    .ok_or_else(|| format!("{name}{labels}: no buckets"))?;
                if last.0 != f64::INFINITY || last.1 != count {
                    return Err(format!(
                        "{name}{labels}: last bucket {last:?} is not +Inf = _count {count}"
                    ));
                }
                for pair in buckets.windows(2) {
                    if pair[0].0.partial_cmp(&pair[1].0) != Some(Ordering::Less)
                        || pair[0].1 > pair[1].1
                    {
                        return Err(format!("{name}{labels}: buckets not cumulative: {pair:?}"));
                    }
                }
            }
        }
        Ok(())
    }

    fn kind(&self, family: &str) -> Kind {
        self.families
            .get(family)
            .unwrap_or_else(|| panic!("no family {family} in\n{}", self.text))
            .kind
    }

    /// The value of the sample `name` with exactly these labels, if there is one.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.families
            .values()
            .flat_map(|f| &f.samples)
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value)
    }

    /// Like [`Scrape::value`], but the sample must exist.
    fn expect(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name}{labels:?} in\n{}", self.text))
    }

    /// Every sample of a family.
    fn samples(&self, family: &str) -> &[Sample] {
        self.families
            .get(family)
            .map_or(&[], |f| f.samples.as_slice())
    }
}

#[test]
fn the_parser_refuses_what_the_format_does_not_allow() {
    let ok = "# HELP a A.\n# TYPE a counter\na{x=\"1\"} 2\n";
    assert!(Scrape::parse(ok).is_ok());
    for (bad, why) in [
        ("a 1\n", "a sample before its TYPE"),
        ("# TYPE a counter\na 1", "no final newline"),
        ("# TYPE a gauge\nb 1\n", "a sample of another family"),
        ("# TYPE a gauge\n# TYPE a gauge\n", "a second TYPE"),
        ("# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n", "a repeated label"),
        ("# TYPE a gauge\na{x=1} 1\n", "an unquoted label value"),
        ("# TYPE a gauge\na{x=\"\\t\"} 1\n", "an unknown escape"),
        ("# TYPE a gauge\na one\n", "a value that is not a number"),
        ("# TYPE a gauge\na 1\na 2\n", "a repeated series"),
        ("# TYPE 1a gauge\n", "a bad metric name"),
        ("# TYPE a summary\n", "an unexpected type"),
        ("# a comment\n", "a free comment"),
        ("# TYPE a gauge\n\na 1\n", "an empty line"),
        (
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n",
            "buckets that decrease",
        ),
        (
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0\nh_count 3\n",
            "+Inf different from _count",
        ),
        (
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0\nh_count 1\n",
            "no +Inf bucket",
        ),
    ] {
        assert!(Scrape::parse(bad).is_err(), "accepted {why}: {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The server under test.
// ---------------------------------------------------------------------------------------------

struct Env {
    app: TestApp,
    admin: String,
    /// A viewer's API key: the least a scraper needs.
    scraper: String,
}

impl Env {
    async fn start(db: TestDatabase) -> Self {
        let app = TestApp::spawn(db).await;
        let admin = app.admin_token().await;
        let scraper = app.api_key("prometheus", &["viewer"]).await;
        Env {
            app,
            admin,
            scraper,
        }
    }

    async fn scrape(&self) -> Scrape {
        let response = self
            .app
            .client
            .get(self.app.url("/metrics"))
            .bearer_auth(&self.scraper)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        let text = response.text().await.unwrap();
        Scrape::parse(&text).unwrap_or_else(|e| panic!("invalid exposition ({e}):\n{text}"))
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.admin);
        if let Some(body) = body {
            request = request.json(&body);
        }
        json(request.send().await.unwrap()).await
    }

    async fn status_of(&self, request: reqwest::RequestBuilder) -> u16 {
        request.send().await.unwrap().status().as_u16()
    }

    /// Submits a one-node workflow with `trigger_type` and returns the response body.
    async fn submit_workflow(&self, trigger_type: &str) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/workflows",
                Some(json!({
                    "workflow_name": "metrics",
                    "workflow_json": {"nodes": [{"id": "start", "type": "StartNode"}]},
                    "trigger_type": trigger_type,
                })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

const REQUESTS: &str = "baton_http_requests_total";
const DURATION_COUNT: &str = "baton_http_request_duration_seconds_count";

fn requests(scrape: &Scrape, route: &str, method: &str, status: &str) -> f64 {
    scrape
        .value(
            REQUESTS,
            &[("route", route), ("method", method), ("status", status)],
        )
        .unwrap_or(0.0)
}

async fn request_counters_move_by_exactly_the_calls_made_under_route_patterns(db: TestDatabase) {
    let env = Env::start(db).await;
    let before = env.scrape().await;
    assert_eq!(before.kind(REQUESTS), Kind::Counter);
    assert_eq!(
        before.kind("baton_http_request_duration_seconds"),
        Kind::Histogram
    );
    let me = "/api/v1/auth/me";

    for _ in 0..7 {
        let status = env
            .status_of(env.app.client.get(env.app.url(me)).bearer_auth(&env.admin))
            .await;
        assert_eq!(status, 200);
    }
    for _ in 0..3 {
        assert_eq!(
            env.status_of(env.app.client.get(env.app.url(me))).await,
            401
        );
    }
    // A method the resource lacks is still counted under its pattern, and an invented method
    // shares one label.
    assert_eq!(
        env.status_of(env.app.client.delete(env.app.url(me))).await,
        405
    );
    let brew = Method::from_bytes(b"BREW").unwrap();
    env.status_of(env.app.client.request(brew, env.app.url(me)))
        .await;

    // Paths with ids are counted under their pattern; unknown paths under one fixed label,
    // whatever they contain.
    let unknown_job = "/api/v1/jobs/00000000-0000-0000-0000-000000000000";
    for _ in 0..2 {
        let status = env
            .status_of(
                env.app
                    .client
                    .get(env.app.url(unknown_job))
                    .bearer_auth(&env.admin),
            )
            .await;
        assert_eq!(status, 404);
    }
    let secret_path = "/api/v1/no-such-route/leaked-secret-in-path";
    assert_eq!(
        env.status_of(env.app.client.get(env.app.url(secret_path)))
            .await,
        404
    );
    assert_eq!(
        env.status_of(env.app.client.get(env.app.url("/definitely/not/here")))
            .await,
        404
    );

    // A webhook's URL carries its secret token: only the pattern may be exposed.
    let webhook = env.submit_workflow("webhook").await;
    let url = webhook["webhook_url"].as_str().unwrap();
    let token = url.rsplit('/').next().unwrap().to_owned();
    let path = format!("/api/v1/webhooks/{token}");
    for _ in 0..2 {
        let status = env.status_of(env.app.client.post(env.app.url(&path))).await;
        assert_eq!(status, 200);
    }

    // The rate limiter's refusals are counted with the status the client got: `/api/trigger`
    // allows 10 a minute.
    for _ in 0..11 {
        env.status_of(
            env.app
                .client
                .post(env.app.url("/api/trigger"))
                .json(&json!({})),
        )
        .await;
    }

    let after = env.scrape().await;
    let delta = |route: &str, method: &str, status: &str| {
        requests(&after, route, method, status) - requests(&before, route, method, status)
    };
    let all_statuses = |scrape: &Scrape, route: &str| -> f64 {
        scrape
            .samples(REQUESTS)
            .iter()
            .filter(|s| s.labels["route"] == route)
            .map(|s| s.value)
            .sum()
    };
    assert_eq!(delta("/api/trigger", "POST", "429"), 1.0);
    assert_eq!(
        all_statuses(&after, "/api/trigger") - all_statuses(&before, "/api/trigger"),
        11.0
    );
    assert_eq!(delta(me, "GET", "200"), 7.0);
    assert_eq!(delta(me, "GET", "401"), 3.0);
    assert_eq!(delta(me, "DELETE", "405"), 1.0);
    assert_eq!(
        delta(me, "OTHER", "405") + delta(me, "OTHER", "400") + delta(me, "OTHER", "404"),
        1.0,
        "the invented method is counted once as OTHER:\n{}",
        after.text
    );
    assert_eq!(delta("/api/v1/jobs/{id}", "GET", "404"), 2.0);
    assert_eq!(delta("<unmatched>", "GET", "404"), 2.0);
    assert_eq!(delta("/api/v1/webhooks/{token}", "POST", "200"), 2.0);
    assert_eq!(delta("/api/v1/workflows", "POST", "200"), 1.0);
    // The first scrape is counted by the second; a scrape does not count itself.
    assert_eq!(delta("/metrics", "GET", "200"), 1.0);
    assert_eq!(requests(&before, "/metrics", "GET", "200"), 0.0);

    for secret in [
        token.as_str(),
        "leaked-secret-in-path",
        "00000000-0000",
        "BREW",
    ] {
        assert!(
            !after.text.contains(secret),
            "{secret} leaked into the scrape:\n{}",
            after.text
        );
    }
    // Every label value of the request families is a route pattern or the unmatched label.
    for family in [REQUESTS, "baton_http_request_duration_seconds"] {
        for sample in after.samples(family) {
            let route = &sample.labels["route"];
            assert!(
                route == "<unmatched>" || route.starts_with('/'),
                "odd route label {route:?}"
            );
            let status = &sample.labels["status"];
            assert!(
                status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()),
                "odd status label {status:?}"
            );
        }
    }
    // The histogram counts the same requests as the counter, series by series.
    for sample in after.samples(REQUESTS) {
        let labels: Vec<(&str, &str)> = sample
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(after.expect(DURATION_COUNT, &labels), sample.value);
    }
}

async fn database_gauges_match_what_was_done(db: TestDatabase) {
    let env = Env::start(db).await;
    let empty = env.scrape().await;
    assert_eq!(empty.expect("baton_database_up", &[]), 1.0);
    for status in JobStatus::ALL {
        assert_eq!(
            empty.expect("baton_jobs", &[("status", status.as_str())]),
            0.0
        );
    }
    assert!(empty.samples("baton_queue_items").is_empty());
    assert_eq!(empty.kind("baton_queue_items"), Kind::Gauge);

    // Jobs: four submitted, one cancelled, one claimed and started by a robot.
    let workflow = env.submit_workflow("manual").await;
    let workflow_id = workflow["workflow_id"].as_str().unwrap().to_owned();
    let mut jobs = vec![workflow["job_id"].as_str().unwrap().to_owned()];
    for _ in 0..3 {
        let (status, job) = env
            .call(
                Method::POST,
                "/api/v1/jobs",
                Some(json!({"workflow_id": workflow_id})),
            )
            .await;
        assert_eq!(status, 201, "{job}");
        jobs.push(job["job_id"].as_str().unwrap().to_owned());
    }
    let (status, body) = env
        .call(
            Method::POST,
            &format!("/api/v1/jobs/{}/cancel", jobs[1]),
            Some(json!({"hard": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Robots: one idle, one busy with a job, one never heard from (offline).
    let mut tokens = HashMap::new();
    for robot in ["r-idle", "r-busy", "r-silent"] {
        let (status, body) = env
            .call(
                Method::POST,
                "/api/v1/robots",
                Some(json!({"robot_id": robot})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        tokens.insert(robot, body["token"].as_str().unwrap().to_owned());
    }
    let robot_call = |robot: &str, path: &str, body: Value| {
        env.app
            .client
            .post(env.app.url(&format!("/api/v1/robots/{robot}{path}")))
            .header("X-Api-Token", &tokens[robot])
            .json(&body)
    };
    for robot in ["r-idle", "r-busy"] {
        let (status, body) = json(
            robot_call(robot, "/heartbeat", json!({"cpu_percent": 1.0}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, claimed) = json(
        robot_call("r-busy", "/jobs/claim", json!({"wait_seconds": 0}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{claimed}");
    let claimed_id = claimed["job_id"].as_str().unwrap();
    let (status, body) = json(
        robot_call("r-busy", &format!("/jobs/{claimed_id}/start"), json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Queue items, in a queue whose name needs the escapes a queue name can hold: a quote and a
    // backslash (a newline, the format's third escape, is a control character no name may
    // hold; the exporter's unit tests cover it).
    let odd_queue = "ops \"night\" \\ shift B";
    for (queue, status) in [
        (odd_queue, "NEW"),
        (odd_queue, "NEW"),
        (odd_queue, "new"),
        (odd_queue, "DONE"),
        ("plain", "FAILED"),
        ("plain", "NEW"),
    ] {
        let (code, body) = env
            .call(
                Method::POST,
                "/api/queue",
                Some(json!({"queue_name": queue, "status": status})),
            )
            .await;
        assert_eq!(code, 201, "{body}");
    }

    let scrape = env.scrape().await;
    let expected_jobs = [
        ("pending", 2.0),
        ("claimed", 0.0),
        ("running", 1.0),
        ("completed", 0.0),
        ("failed", 0.0),
        ("cancelled", 1.0),
    ];
    for (status, count) in expected_jobs {
        assert_eq!(
            scrape.expect("baton_jobs", &[("status", status)]),
            count,
            "jobs {status}"
        );
    }
    // The same numbers the storage port gives.
    let store = env.app.database().connect().await;
    for (status, count) in store.count_jobs_by_status().await.unwrap() {
        assert_eq!(
            scrape.expect("baton_jobs", &[("status", status.as_str())]),
            count as f64
        );
    }

    let items = |queue: &str, status: &str| {
        scrape.expect("baton_queue_items", &[("queue", queue), ("status", status)])
    };
    assert_eq!(items(odd_queue, "NEW"), 3.0);
    assert_eq!(items(odd_queue, "DONE"), 1.0);
    assert_eq!(items(odd_queue, "IN_PROGRESS"), 0.0);
    assert_eq!(items(odd_queue, "FAILED"), 0.0);
    assert_eq!(items(odd_queue, "ABANDONED"), 0.0);
    assert_eq!(items("plain", "NEW"), 1.0);
    assert_eq!(items("plain", "FAILED"), 1.0);
    assert_eq!(scrape.samples("baton_queue_items").len(), 10);
    assert!(
        scrape.text.contains(r#"queue="ops \"night\" \\ shift B""#),
        "the queue name is escaped as the format says:\n{}",
        scrape.text
    );

    for (status, count) in [("idle", 1.0), ("busy", 1.0), ("offline", 1.0)] {
        assert_eq!(
            scrape.expect("baton_robots", &[("status", status)]),
            count,
            "robots {status}"
        );
    }

    // The pool: occupancy within the configured maximum.
    let max = scrape.expect("baton_db_pool_max_connections", &[]);
    let open = scrape.expect("baton_db_pool_connections", &[]);
    let idle = scrape.expect("baton_db_pool_idle_connections", &[]);
    let waiting = scrape.expect("baton_db_pool_waiting", &[]);
    assert!(max >= 1.0, "max {max}");
    assert!((1.0..=max).contains(&open), "open {open} of {max}");
    assert!(idle <= open, "idle {idle} of {open}");
    assert!(waiting >= 0.0);
    assert_eq!(
        scrape.expect(
            "baton_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(scrape.expect("baton_database_up", &[]), 1.0);
}

async fn scraping_needs_the_read_permission_unless_public(db: TestDatabase) {
    let env = Env::start(db).await;
    let metrics = env.app.url("/metrics");

    let anonymous = env.app.client.get(&metrics).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert!(
        body["error"].is_string() && body["detail"].is_string(),
        "{body}"
    );

    // A robot token is not a reader's credential.
    let (status, robot) = env
        .call(
            Method::POST,
            "/api/v1/robots",
            Some(json!({"robot_id": "scraper-bot"})),
        )
        .await;
    assert_eq!(status, 201);
    let as_robot = env
        .status_of(
            env.app
                .client
                .get(&metrics)
                .header("X-Api-Token", robot["token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(as_robot, 403);

    // A viewer (API key as a bearer token, as Prometheus' `authorization` sends it, or in
    // X-API-Key; or a user's JWT) may scrape; the scrape is rate limited like any route.
    let viewer = env.app.user_token("watcher", &["viewer"]).await;
    for request in [
        env.app.client.get(&metrics).bearer_auth(&env.scraper),
        env.app
            .client
            .get(&metrics)
            .header("X-API-Key", &env.scraper),
        env.app.client.get(&metrics).bearer_auth(&viewer),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.headers().contains_key("x-ratelimit-limit"));
        let text = response.text().await.unwrap();
        Scrape::parse(&text).unwrap();
    }
    let scrape = env.scrape().await;
    assert_eq!(requests(&scrape, "/metrics", "GET", "401"), 1.0);
    assert_eq!(requests(&scrape, "/metrics", "GET", "403"), 1.0);
    assert_eq!(requests(&scrape, "/metrics", "GET", "200"), 3.0);

    // `--metrics-public` serves it to anyone, like the health probes. Each server counts its own
    // requests: the second server has answered none of the first one's.
    let public = env.app.another_server(|c| c.metrics_public = true).await;
    let response = public.get("/metrics").await;
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    let scrape = Scrape::parse(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert_eq!(requests(&scrape, "/metrics", "GET", "200"), 0.0);
    assert_eq!(requests(&scrape, "/api/v1/auth/me", "GET", "200"), 0.0);
    assert_eq!(scrape.expect("baton_robots", &[("status", "offline")]), 1.0);
}
