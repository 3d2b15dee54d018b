//! Rate limits per client IP and route, in fixed windows.
//!
//! The seeds fix the limits (1000/minute on `/api/queue`, 10/minute on `/api/trigger`, the
//! CasareRPA metrics table) and the answer to a client over its limit: 429 with
//! `{"error": "Rate limit exceeded", "detail", "retry_after"}`, `Retry-After`, and the
//! `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` headers on every limited
//! response. Counters live in this process's memory: a limit is a shield against one noisy
//! client, not shared state, so several servers behind a balancer each count on their own
//! (the operator sets limits per server, or turns them off behind a gateway that limits).
//!
//! A window starts at a client's first request to a route and lasts the limit's window; the
//! request that would exceed the count is refused and does not extend the window.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};

use crate::client_ip::TrustedProxies;
use crate::errors::ApiError;

/// The route key of requests no route pattern matched. They share one window per IP with the
/// default limit, so probing random paths is limited like any other route.
pub const UNMATCHED_ROUTE: &str = "<unmatched>";

/// The most entries the limiter keeps before it prunes; each is about a hundred bytes with the
/// map's overhead, so this bounds the counters near 10 MB whatever the traffic.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// The most distinct route keys the limiter interns. Keys come from the app's route patterns, a
/// set fixed at build time, so this is never reached in the server; it only keeps a caller of
/// [`RateLimiter::check`] with arbitrary strings from growing the table without bound (those
/// routes then share the [`UNMATCHED_ROUTE`] window).
const MAX_ROUTES: usize = 4096;

const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// At most `requests` requests in each `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub requests: u32,
    pub window: Duration,
}

impl Limit {
    /// `requests` per minute, the unit of every seeded limit.
    pub const fn per_minute(requests: u32) -> Self {
        Self {
            requests,
            window: Duration::from_secs(60),
        }
    }

    /// Parses `N/unit` where unit is `second` (`s`, `sec`, `seconds`), `minute` (`min`,
    /// `minutes`) or `hour` (`h`, `hr`, `hours`), case-insensitively, as in `10/minute`.
    ///
    /// # Errors
    ///
    /// A message naming the text when it is not of that form or N is 0: a limit of zero would
    /// refuse every request, which is what turning a route off should say instead.
    pub fn parse(text: &str) -> Result<Self, String> {
        let hint = "expected N/second, N/minute or N/hour, e.g. 10/minute";
        let (count, unit) = text
            .split_once('/')
            .ok_or_else(|| format!("rate limit `{text}` has no unit: {hint}"))?;
        let count = count.trim();
        let requests: u32 = count
            .parse()
            .ok()
            .filter(|_| count.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                format!("rate limit `{text}`: `{count}` is not a whole number of requests; {hint}")
            })?;
        if requests == 0 {
            return Err(format!(
                "rate limit `{text}`: the number of requests must be at least 1 \
                 (turn limits off with BATON_RATE_LIMITS=off instead)"
            ));
        }
        let seconds = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" | "seconds" => 1,
            "min" | "minute" | "minutes" => 60,
            "h" | "hr" | "hour" | "hours" => 3600,
            other => {
                return Err(format!(
                    "rate limit `{text}`: unknown unit `{other}`; {hint}"
                ));
            }
        };
        Ok(Self {
            requests,
            window: Duration::from_secs(seconds),
        })
    }
}

impl fmt::Display for Limit {
    /// The form [`Limit::parse`] reads, for logs and error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.window.as_secs() {
            1 if self.window.subsec_nanos() == 0 => write!(f, "{}/second", self.requests),
            60 if self.window.subsec_nanos() == 0 => write!(f, "{}/minute", self.requests),
            3600 if self.window.subsec_nanos() == 0 => write!(f, "{}/hour", self.requests),
            _ => write!(f, "{} per {:?}", self.requests, self.window),
        }
    }
}

/// Which limits apply: one per route pattern, and a default for every other route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// When false the middleware lets every request through without counting.
    pub enabled: bool,
    /// The limit of every route not listed in `routes`, and of unmatched paths.
    pub default: Limit,
    /// Limits by actix route pattern, exactly as `HttpRequest::match_pattern()` returns it
    /// (`/api/v1/metrics/robots/{robot_id}`). Later entries win over earlier ones.
    pub routes: Vec<(String, Limit)>,
}

impl RateLimitPolicy {
    /// The seeds' limits: `/api/queue` 1000/minute, `/api/trigger` 10/minute, CasareRPA's
    /// metrics table under `/api/v1`, and 1200/minute on every other route (twenty a second,
    /// far above a dashboard's polling and low enough to blunt a flood from one client).
    pub fn seeds() -> Self {
        let routes = [
            ("/api/queue", 1000),
            ("/api/trigger", 10),
            ("/api/v1/metrics/fleet", 100),
            ("/api/v1/metrics/robots", 100),
            ("/api/v1/metrics/robots/{robot_id}", 200),
            ("/api/v1/metrics/jobs", 50),
            ("/api/v1/metrics/jobs/{job_id}", 200),
            ("/api/v1/metrics/analytics", 20),
            ("/api/v1/metrics/activity", 60),
        ];
        Self {
            enabled: true,
            default: Limit::per_minute(1200),
            routes: routes
                .into_iter()
                .map(|(route, n)| (route.to_owned(), Limit::per_minute(n)))
                .collect(),
        }
    }

    /// The same limits with counting turned off.
    pub fn disabled(self) -> Self {
        Self {
            enabled: false,
            ..self
        }
    }

    /// Applies a comma-separated list of `ROUTE=N/unit` overrides, such as
    /// `/api/trigger=20/minute,default=600/minute`. ROUTE is a route pattern starting with `/`
    /// (replacing that route's limit, or adding one) or `default`. An empty spec changes
    /// nothing.
    ///
    /// # Errors
    ///
    /// A message naming the first entry that is not `ROUTE=N/unit` with a valid limit.
    pub fn with_overrides(mut self, spec: &str) -> Result<Self, String> {
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (route, limit) = entry.split_once('=').ok_or_else(|| {
                format!(
                    "rate limit override `{entry}` is not ROUTE=N/unit \
                     (e.g. /api/trigger=20/minute or default=600/minute)"
                )
            })?;
            let route = route.trim();
            let limit = Limit::parse(limit.trim())
                .map_err(|e| format!("rate limit override `{entry}`: {e}"))?;
            if route == "default" {
                self.default = limit;
            } else if route.starts_with('/') && !route.contains(char::is_whitespace) {
                match self.routes.iter_mut().find(|(r, _)| r == route) {
                    Some((_, existing)) => *existing = limit,
                    None => self.routes.push((route.to_owned(), limit)),
                }
            } else {
                return Err(format!(
                    "rate limit override `{entry}`: the route must be `default` or a route \
                     pattern starting with `/`, such as /api/v1/metrics/jobs/{{job_id}}"
                ));
            }
        }
        Ok(self)
    }

    /// The limit of `route`: its own, or the default.
    pub fn limit_for(&self, route: &str) -> Limit {
        self.routes
            .iter()
            .rev()
            .find(|(r, _)| r == route)
            .map_or(self.default, |(_, limit)| *limit)
    }
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        Self::seeds()
    }
}

/// The verdict on one request, with what the `X-RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The route's limit per window (`X-RateLimit-Limit`).
    pub limit: u32,
    /// Requests left in the current window after this one (`X-RateLimit-Remaining`).
    pub remaining: u32,
    /// When the current window ends, in unix seconds rounded up (`X-RateLimit-Reset`).
    pub reset_unix: u64,
    /// Seconds until the window ends, rounded up and at least 1, when refused; 0 when allowed.
    pub retry_after_secs: u64,
}

impl Decision {
    /// Sets the three `X-RateLimit-*` headers, replacing any a handler set.
    fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(X_RATELIMIT_LIMIT, HeaderValue::from(self.limit));
        headers.insert(X_RATELIMIT_REMAINING, HeaderValue::from(self.remaining));
        headers.insert(X_RATELIMIT_RESET, HeaderValue::from(self.reset_unix));
    }
}

/// An interned route key: an index into the limiter's route table, so the counter map's keys
/// are small and copying one allocates nothing.
type RouteId = u32;

/// One (route, IP)'s current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// When the window ends, as time since the unix epoch.
    end: Duration,
    /// Requests allowed in it so far.
    count: u32,
}

/// Everything behind the limiter's one lock.
#[derive(Debug)]
struct Counters {
    route_ids: HashMap<Box<str>, RouteId>,
    /// The limit of each route id.
    limits: Vec<Limit>,
    windows: HashMap<(RouteId, IpAddr), Window>,
}

impl Counters {
    /// The id of `route`, interning it with `default` as its limit on first sight. Past
    /// [`MAX_ROUTES`] keys, new ones share the [`UNMATCHED_ROUTE`] id instead.
    fn route_id(&mut self, route: &str, default: Limit) -> RouteId {
        if let Some(id) = self.route_ids.get(route) {
            return *id;
        }
        if self.limits.len() >= MAX_ROUTES {
            return self.route_ids.get(UNMATCHED_ROUTE).copied().unwrap_or(0);
        }
        self.intern(route, default)
    }

    /// Sets `route`'s limit, adding the route if it is new, and returns its id.
    fn intern(&mut self, route: &str, limit: Limit) -> RouteId {
        if let Some(&id) = self.route_ids.get(route) {
            if let Some(slot) = self.limits.get_mut(id as usize) {
                *slot = limit;
            }
            return id;
        }
        // The table holds the policy's routes plus at most MAX_ROUTES more, far below u32::MAX.
        let id = RouteId::try_from(self.limits.len()).unwrap_or(RouteId::MAX);
        self.limits.push(limit);
        self.route_ids.insert(route.into(), id);
        id
    }

    /// Makes room: drops every expired window, then, if live windows alone still fill more than
    /// nine tenths of `max_entries`, the ones nearest their end (the cheapest to forget: their
    /// clients at most get a fresh window early). Leaving a tenth free means this O(n) pass runs
    /// at most once per `max_entries / 10` new entries, so its cost per request stays constant.
    fn prune(&mut self, now: Duration, max_entries: usize) {
        self.windows.retain(|_, w| w.end > now);
        let live = self.windows.len();
        let target = max_entries - max_entries / 10;
        let excess = self.windows.len().saturating_sub(target);
        if excess > 0 {
            let mut ends: Vec<Duration> = self.windows.values().map(|w| w.end).collect();
            let (_, cutoff, _) = ends.select_nth_unstable(excess - 1);
            let cutoff = *cutoff;
            self.windows.retain(|_, w| w.end > cutoff);
            tracing::warn!(
                live,
                kept = self.windows.len(),
                "rate limiter full of live windows: forgot the ones nearest their end"
            );
        }
    }
}

/// The counters of every (route, client IP), shared by all actix workers through one
/// `web::Data` (an `Arc`), so a client's requests count the same whichever worker serves them.
pub struct RateLimiter {
    policy: RateLimitPolicy,
    proxies: Arc<TrustedProxies>,
    max_entries: usize,
    counters: Mutex<Counters>,
}

impl fmt::Debug for RateLimiter {
    /// The configuration only: the counters may hold a hundred thousand entries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("policy", &self.policy)
            .field("proxies", &self.proxies)
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter enforcing `policy` on client IPs found through `proxies`, keeping at most
    /// [`DEFAULT_MAX_ENTRIES`] windows.
    pub fn new(policy: RateLimitPolicy, proxies: Arc<TrustedProxies>) -> Self {
        Self::with_max_entries(policy, proxies, DEFAULT_MAX_ENTRIES)
    }

    /// As [`Self::new`] with another memory bound (at least 10 windows).
    pub fn with_max_entries(
        policy: RateLimitPolicy,
        proxies: Arc<TrustedProxies>,
        max_entries: usize,
    ) -> Self {
        let mut counters = Counters {
            route_ids: HashMap::new(),
            limits: Vec::new(),
            windows: HashMap::new(),
        };
        // Interned in order, so a route listed twice keeps its last limit, as `limit_for` says.
        counters.intern(UNMATCHED_ROUTE, policy.default);
        for (route, limit) in &policy.routes {
            counters.intern(route, *limit);
        }
        Self {
            policy,
            proxies,
            max_entries: max_entries.max(10),
            counters: Mutex::new(counters),
        }
    }

    /// The policy this limiter enforces.
    pub fn policy(&self) -> &RateLimitPolicy {
        &self.policy
    }

    /// Whether the policy is on; when off the middleware does not count.
    pub fn enabled(&self) -> bool {
        self.policy.enabled
    }

    /// The trusted proxies client IPs are resolved through.
    pub fn proxies(&self) -> &TrustedProxies {
        &self.proxies
    }

    /// How many (route, IP) windows are held, for tests and metrics.
    pub fn len(&self) -> usize {
        self.lock().windows.len()
    }

    /// Whether no window is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts one request of `ip` to `route` (a route pattern, or [`UNMATCHED_ROUTE`]) at
    /// `now` and says whether it may proceed. This counts even when the policy is disabled;
    /// the middleware checks [`Self::enabled`] first.
    pub fn check(&self, route: &str, ip: IpAddr, now: SystemTime) -> Decision {
        // A clock before 1970 is a broken host; treating it as the epoch keeps the arithmetic
        // defined, and windows simply last until the clock is sane again.
        let now = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let ip = ip.to_canonical();
        let mut counters = self.lock();
        let id = counters.route_id(route, self.policy.default);
        let limit = counters
            .limits
            .get(id as usize)
            .copied()
            .unwrap_or(self.policy.default);
        let fresh = Window {
            end: now.saturating_add(limit.window),
            count: 0,
        };

        let key = (id, ip);
        if counters.windows.len() >= self.max_entries && !counters.windows.contains_key(&key) {
            counters.prune(now, self.max_entries);
        }
        let window = counters.windows.entry(key).or_insert(fresh);
        // Expired, or the clock went back by a whole window (a window that would otherwise
        // last far longer than its length): start again.
        let start = window.end.saturating_sub(limit.window);
        if now >= window.end || now.saturating_add(limit.window) <= start {
            *window = fresh;
        }

        let allowed = window.count < limit.requests;
        if allowed {
            window.count += 1;
        }
        let until_end = window.end.saturating_sub(now).min(limit.window);
        Decision {
            allowed,
            limit: limit.requests,
            remaining: limit.requests.saturating_sub(window.count),
            reset_unix: ceil_secs(window.end),
            retry_after_secs: if allowed {
                0
            } else {
                ceil_secs(until_end).max(1)
            },
        }
    }

    /// The counters, even if a thread panicked while holding them: every update is a few field
    /// writes that leave the map consistent, so a poisoned lock holds usable data and refusing
    /// all requests from then on would be worse.
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whole seconds in `d`, rounded up.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Whether `path` is a health probe: `/health`, `/api/v1/health`, or below either. Probes are
/// never limited, so an orchestrator polling them cannot be locked out by its own polling.
fn is_health_probe(path: &str) -> bool {
    ["/health", "/api/v1/health"].iter().any(|probe| {
        path.strip_prefix(probe)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Middleware (for `actix_web::middleware::from_fn`) enforcing the app's [`RateLimiter`].
///
/// Lets the request through untouched when no `web::Data<RateLimiter>` is registered, when the
/// policy is disabled, for health probes, and when the client IP is unknown. Otherwise counts
/// it against its route pattern (or [`UNMATCHED_ROUTE`]): an allowed request goes on and its
/// response, whatever the status, gets the `X-RateLimit-*` headers; a refused one is answered
/// here with 429 in the API's error shape, `Retry-After`, and the same headers.
pub async fn enforce<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let Some(limiter) = req.app_data::<web::Data<RateLimiter>>().cloned() else {
        return pass(req, next).await;
    };
    if !limiter.enabled() || is_health_probe(req.path()) {
        return pass(req, next).await;
    }
    let Some(ip) = limiter.proxies().client_ip(req.request()) else {
        return pass(req, next).await;
    };
    let pattern = req.match_pattern();
    let route = pattern.as_deref().unwrap_or(UNMATCHED_ROUTE);
    let decision = limiter.check(route, ip, SystemTime::now());

    if decision.allowed {
        let mut res = next.call(req).await?;
        decision.write_headers(res.headers_mut());
        return Ok(res.map_into_left_body());
    }
    tracing::info!(
        target: "baton_http::rate_limit",
        %ip,
        route,
        limit = decision.limit,
        retry_after = decision.retry_after_secs,
        "rate limit exceeded"
    );
    let mut res =
        req.into_response(ApiError::too_many_requests(decision.retry_after_secs).error_response());
    decision.write_headers(res.headers_mut());
    Ok(res.map_into_right_body())
}

/// Calls the rest of the chain without counting.
async fn pass<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::http::header::RETRY_AFTER;
    use actix_web::test as atest;
    use actix_web::{App, HttpResponse, middleware};
    use serde_json::Value;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn limiter(policy: RateLimitPolicy) -> RateLimiter {
        RateLimiter::new(policy, Arc::new(TrustedProxies::none()))
    }

    fn policy(spec: &str) -> RateLimitPolicy {
        RateLimitPolicy::seeds().with_overrides(spec).unwrap()
    }

    #[test]
    fn the_limiter_can_be_shared_by_workers() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RateLimiter>();
    }

    #[test]
    fn limits_parse_every_unit_spelling() {
        for (text, requests, secs) in [
            ("10/minute", 10, 60),
            ("10/min", 10, 60),
            ("10/minutes", 10, 60),
            ("5/second", 5, 1),
            ("5/s", 5, 1),
            ("5/sec", 5, 1),
            ("3/hour", 3, 3600),
            ("3/h", 3, 3600),
            (" 7 / Minute ", 7, 60),
            ("4294967295/hour", u32::MAX, 3600),
        ] {
            assert_eq!(
                Limit::parse(text).unwrap(),
                Limit {
                    requests,
                    window: Duration::from_secs(secs)
                },
                "{text}"
            );
        }
        assert_eq!(Limit::per_minute(10).to_string(), "10/minute");
        assert_eq!(Limit::parse("2/h").unwrap().to_string(), "2/hour");
    }

    #[test]
    fn bad_limits_are_refused_with_a_reason() {
        for (text, reason) in [
            ("0/minute", "at least 1"),
            ("10", "no unit"),
            ("ten/minute", "not a whole number"),
            ("-1/minute", "not a whole number"),
            ("+1/minute", "not a whole number"),
            ("4294967296/minute", "not a whole number"),
            ("10/day", "unknown unit `day`"),
            ("10/", "unknown unit"),
        ] {
            let err = Limit::parse(text).unwrap_err();
            assert!(err.contains(reason), "{text}: {err}");
            assert!(err.contains(&format!("`{text}`")), "{text}: {err}");
        }
    }

    #[test]
    fn seeds_hold_the_documented_limits() {
        let seeds = RateLimitPolicy::seeds();
        assert!(seeds.enabled);
        assert_eq!(seeds.default, Limit::per_minute(1200));
        for (route, n) in [
            ("/api/queue", 1000),
            ("/api/trigger", 10),
            ("/api/v1/metrics/fleet", 100),
            ("/api/v1/metrics/robots", 100),
            ("/api/v1/metrics/robots/{robot_id}", 200),
            ("/api/v1/metrics/jobs", 50),
            ("/api/v1/metrics/jobs/{job_id}", 200),
            ("/api/v1/metrics/analytics", 20),
            ("/api/v1/metrics/activity", 60),
        ] {
            assert_eq!(seeds.limit_for(route), Limit::per_minute(n), "{route}");
        }
        assert_eq!(seeds.routes.len(), 9);
        assert_eq!(seeds.limit_for("/api/v1/jobs"), Limit::per_minute(1200));
        assert_eq!(seeds.limit_for(UNMATCHED_ROUTE), Limit::per_minute(1200));
        assert!(!seeds.disabled().enabled);
    }

    #[test]
    fn overrides_replace_add_and_set_the_default() {
        let p = policy("/api/trigger=20/minute, default=600/minute,/api/v1/jobs=5/s,");
        assert_eq!(p.limit_for("/api/trigger"), Limit::per_minute(20));
        assert_eq!(p.default, Limit::per_minute(600));
        assert_eq!(
            p.limit_for("/api/v1/jobs"),
            Limit {
                requests: 5,
                window: Duration::from_secs(1)
            }
        );
        assert_eq!(p.limit_for("/api/queue"), Limit::per_minute(1000));
        assert_eq!(p.routes.len(), 10, "replaced in place, one added");
        assert_eq!(policy(""), RateLimitPolicy::seeds());
    }

    #[test]
    fn bad_overrides_are_refused_naming_the_entry() {
        for (spec, needle) in [
            ("/api/trigger", "`/api/trigger` is not ROUTE=N/unit"),
            ("/api/trigger=0/minute", "at least 1"),
            ("/api/trigger=10/fortnight", "unknown unit"),
            (
                "api/trigger=10/minute",
                "must be `default` or a route pattern",
            ),
            ("=10/minute", "must be `default` or a route pattern"),
            ("/api/x=10/minute,/api/y=oops", "`/api/y=oops`"),
        ] {
            let err = RateLimitPolicy::seeds().with_overrides(spec).unwrap_err();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn a_window_allows_its_count_then_refuses_until_it_resets() {
        let l = limiter(policy("/api/trigger=3/minute"));
        let client = ip("203.0.113.1");
        for (i, remaining) in [2, 1, 0].into_iter().enumerate() {
            let d = l.check("/api/trigger", client, at(1000 + i as u64));
            assert!(d.allowed);
            assert_eq!((d.limit, d.remaining), (3, remaining));
            assert_eq!(d.reset_unix, 1060, "the window runs from the first request");
            assert_eq!(d.retry_after_secs, 0);
        }
        let refused = l.check("/api/trigger", client, at(1010));
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_unix, 1060);
        assert_eq!(refused.retry_after_secs, 50);

        // Refusals do not extend the window; the last instant of it is still refused.
        let last = l.check(
            "/api/trigger",
            client,
            at(1059) + Duration::from_millis(999),
        );
        assert!(!last.allowed);
        assert_eq!(
            last.retry_after_secs, 1,
            "a fraction of a second rounds up to 1"
        );

        let reset = l.check("/api/trigger", client, at(1060));
        assert!(reset.allowed);
        assert_eq!(reset.remaining, 2);
        assert_eq!(reset.reset_unix, 1120);
    }

    #[test]
    fn reset_rounds_up_to_the_next_second() {
        let l = limiter(policy("/r=1/s"));
        let d = l.check(
            "/r",
            ip("203.0.113.1"),
            at(100) + Duration::from_millis(250),
        );
        assert_eq!(d.reset_unix, 102);
        let refused = l.check(
            "/r",
            ip("203.0.113.1"),
            at(100) + Duration::from_millis(500),
        );
        assert_eq!(refused.retry_after_secs, 1);
    }

    #[test]
    fn a_clock_that_jumps_back_a_whole_window_starts_a_new_one() {
        let l = limiter(policy("/r=1/minute"));
        let client = ip("203.0.113.1");
        assert!(l.check("/r", client, at(10_000)).allowed);
        assert!(
            !l.check("/r", client, at(9_990)).allowed,
            "small skew: same window"
        );
        let d = l.check("/r", client, at(5_000));
        assert!(d.allowed);
        assert_eq!(d.reset_unix, 5_060);
    }

    #[test]
    fn clients_and_routes_count_separately() {
        let l = limiter(policy("/api/trigger=1/minute"));
        let (a, b) = (ip("203.0.113.1"), ip("2001:db8::1"));
        assert!(l.check("/api/trigger", a, at(0)).allowed);
        assert!(!l.check("/api/trigger", a, at(1)).allowed);
        assert!(l.check("/api/trigger", b, at(1)).allowed, "another IP");

        let other = l.check("/api/v1/jobs", a, at(1));
        assert!(other.allowed, "another route");
        assert_eq!((other.limit, other.remaining), (1200, 1199));
        let unmatched = l.check(UNMATCHED_ROUTE, a, at(1));
        assert_eq!((unmatched.limit, unmatched.remaining), (1200, 1199));
        assert_eq!(l.len(), 4);
    }

    #[test]
    fn mapped_ipv6_counts_as_the_ipv4_client() {
        let l = limiter(policy("/r=1/minute"));
        assert!(l.check("/r", ip("198.51.100.7"), at(0)).allowed);
        assert!(!l.check("/r", ip("::ffff:198.51.100.7"), at(1)).allowed);
    }

    #[test]
    fn a_full_map_drops_expired_windows_first() {
        let l = RateLimiter::with_max_entries(
            policy("/old=1/s,/live=1/hour"),
            Arc::new(TrustedProxies::none()),
            100,
        );
        for i in 0..50u32 {
            l.check("/old", IpAddr::from(i.to_be_bytes()), at(0));
        }
        for i in 0..50u32 {
            l.check("/live", IpAddr::from(i.to_be_bytes()), at(0));
        }
        assert_eq!(l.len(), 100);
        // The next new window finds the map full: the 50 one-second windows have expired.
        l.check("/live", ip("203.0.113.1"), at(10));
        assert_eq!(l.len(), 51);
        assert!(
            !l.check("/live", IpAddr::from(7u32.to_be_bytes()), at(11))
                .allowed,
            "live windows survive pruning"
        );
    }

    #[test]
    fn a_map_full_of_live_windows_stays_bounded() {
        let l = RateLimiter::with_max_entries(
            policy("/live=1/hour"),
            Arc::new(TrustedProxies::none()),
            100,
        );
        for i in 0..1000u32 {
            l.check("/live", IpAddr::from(i.to_be_bytes()), at(u64::from(i)));
            assert!(l.len() <= 100, "{} entries after {i}", l.len());
        }
        // The newest windows are the ones kept.
        assert!(
            !l.check("/live", IpAddr::from(999u32.to_be_bytes()), at(1000))
                .allowed
        );
    }

    #[test]
    fn route_keys_are_interned_once_and_bounded() {
        let l = limiter(RateLimitPolicy::seeds());
        for i in 0..(MAX_ROUTES + 10) {
            l.check(&format!("/r{i}"), ip("203.0.113.1"), at(0));
        }
        let counters = l.lock();
        assert_eq!(counters.limits.len(), MAX_ROUTES);
        assert_eq!(counters.route_ids.len(), MAX_ROUTES);
    }

    #[test]
    fn health_paths_are_recognised_exactly() {
        for path in [
            "/health",
            "/health/",
            "/health/db",
            "/api/v1/health",
            "/api/v1/health/ready",
        ] {
            assert!(is_health_probe(path), "{path}");
        }
        for path in [
            "/healthz",
            "/health-check",
            "/api/v1/healthy",
            "/api/health",
            "/",
        ] {
            assert!(!is_health_probe(path), "{path}");
        }
    }

    async fn ok() -> HttpResponse {
        HttpResponse::Ok().body("ok")
    }

    async fn created() -> HttpResponse {
        HttpResponse::Created().finish()
    }

    /// A tiny app with the middleware over `/api/trigger`, `/api/jobs/{id}` and `/health`.
    macro_rules! service {
        ($limiter:expr) => {
            atest::init_service(
                App::new()
                    .app_data(web::Data::new($limiter))
                    .wrap(middleware::from_fn(enforce))
                    .route("/api/trigger", web::post().to(created))
                    .route("/api/jobs/{id}", web::get().to(ok))
                    .route("/health", web::get().to(ok)),
            )
            .await
        };
    }

    fn from(addr: &str) -> atest::TestRequest {
        atest::TestRequest::default().peer_addr(addr.parse().unwrap())
    }

    fn header(res: &ServiceResponse<impl MessageBody>, name: &str) -> Option<String> {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[actix_web::test]
    async fn the_eleventh_trigger_in_a_minute_is_answered_429() {
        let app = service!(limiter(RateLimitPolicy::seeds()));
        for i in 0..10u32 {
            let req = from("203.0.113.1:5000").method(actix_web::http::Method::POST);
            let res = atest::call_service(&app, req.uri("/api/trigger").to_request()).await;
            assert_eq!(res.status(), StatusCode::CREATED, "call {}", i + 1);
            assert_eq!(header(&res, "x-ratelimit-limit").as_deref(), Some("10"));
            assert_eq!(
                header(&res, "x-ratelimit-remaining"),
                Some((9 - i).to_string())
            );
            let reset: u64 = header(&res, "x-ratelimit-reset").unwrap().parse().unwrap();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            assert!(reset > now && reset <= now + 61, "reset {reset}, now {now}");
        }

        let req = from("203.0.113.1:5001")
            .method(actix_web::http::Method::POST)
            .uri("/api/trigger")
            .to_request();
        let res = atest::call_service(&app, req).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header(&res, "x-ratelimit-limit").as_deref(), Some("10"));
        assert_eq!(header(&res, "x-ratelimit-remaining").as_deref(), Some("0"));
        assert!(header(&res, "x-ratelimit-reset").is_some());
        assert_eq!(
            header(&res, "content-type").as_deref(),
            Some("application/json")
        );
        let retry_after: u64 = header(&res, RETRY_AFTER.as_str()).unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        let body: Value = atest::read_body_json(res).await;
        assert_eq!(body["error"], "Rate limit exceeded");
        assert!(body["detail"].is_string());
        assert_eq!(body["retry_after"], retry_after);

        // Another client is not affected.
        let req = from("203.0.113.2:5000")
            .method(actix_web::http::Method::POST)
            .uri("/api/trigger")
            .to_request();
        assert_eq!(
            atest::call_service(&app, req).await.status(),
            StatusCode::CREATED
        );
    }

    #[actix_web::test]
    async fn routes_are_keyed_by_pattern_and_errors_get_headers_too() {
        let app = service!(limiter(policy("/api/jobs/{id}=2/minute")));
        for id in ["1", "2"] {
            let req = from("203.0.113.1:5000").uri(&format!("/api/jobs/{id}"));
            let res = atest::call_service(&app, req.to_request()).await;
            assert_eq!(res.status(), StatusCode::OK);
        }
        let req = from("203.0.113.1:5000").uri("/api/jobs/3").to_request();
        assert_eq!(
            atest::call_service(&app, req).await.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "/api/jobs/{{id}} is one route whatever the id"
        );

        // A response that is an error (here actix's 404 for an unknown path) is still counted,
        // under the unmatched key with the default limit, and carries the headers.
        let req = from("203.0.113.1:5000").uri("/nowhere").to_request();
        let res = atest::call_service(&app, req).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(header(&res, "x-ratelimit-limit").as_deref(), Some("1200"));
        assert_eq!(
            header(&res, "x-ratelimit-remaining").as_deref(),
            Some("1199")
        );
    }

    #[actix_web::test]
    async fn scoped_routes_are_keyed_by_their_full_pattern() {
        // The seeds name routes as `/api/v1/metrics/jobs/{job_id}`; a resource mounted in a
        // `/api/v1` scope must be counted under that full pattern (50 vs 200 per minute).
        let app = atest::init_service(
            App::new()
                .app_data(web::Data::new(limiter(RateLimitPolicy::seeds())))
                .wrap(middleware::from_fn(enforce))
                .service(
                    web::scope("/api/v1")
                        .route("/metrics/jobs", web::get().to(ok))
                        .route("/metrics/jobs/{job_id}", web::get().to(ok)),
                ),
        )
        .await;
        for (uri, limit) in [
            ("/api/v1/metrics/jobs", "50"),
            ("/api/v1/metrics/jobs/42", "200"),
        ] {
            let req = from("203.0.113.1:5000").uri(uri).to_request();
            let res = atest::call_service(&app, req).await;
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(
                header(&res, "x-ratelimit-limit").as_deref(),
                Some(limit),
                "{uri}"
            );
        }
    }

    #[actix_web::test]
    async fn health_probes_are_never_limited() {
        let app = service!(limiter(policy("default=1/minute")));
        for _ in 0..5 {
            let req = from("203.0.113.1:5000").uri("/health").to_request();
            let res = atest::call_service(&app, req).await;
            assert_eq!(res.status(), StatusCode::OK);
            assert!(header(&res, "x-ratelimit-limit").is_none());
        }
    }

    #[actix_web::test]
    async fn a_disabled_policy_counts_nothing() {
        let l = web::Data::new(limiter(RateLimitPolicy::seeds().disabled()));
        let app = atest::init_service(
            App::new()
                .app_data(l.clone())
                .wrap(middleware::from_fn(enforce))
                .route("/api/trigger", web::post().to(created)),
        )
        .await;
        for _ in 0..20 {
            let req = from("203.0.113.1:5000")
                .method(actix_web::http::Method::POST)
                .uri("/api/trigger")
                .to_request();
            let res = atest::call_service(&app, req).await;
            assert_eq!(res.status(), StatusCode::CREATED);
            assert!(header(&res, "x-ratelimit-limit").is_none());
        }
        assert!(l.is_empty());
    }

    #[actix_web::test]
    async fn without_a_limiter_or_a_peer_requests_pass() {
        let app = atest::init_service(
            App::new()
                .wrap(middleware::from_fn(enforce))
                .route("/api/trigger", web::post().to(created)),
        )
        .await;
        for _ in 0..20 {
            let req = from("203.0.113.1:5000")
                .method(actix_web::http::Method::POST)
                .uri("/api/trigger")
                .to_request();
            assert_eq!(
                atest::call_service(&app, req).await.status(),
                StatusCode::CREATED
            );
        }

        let app = service!(limiter(policy("/api/trigger=1/minute")));
        for _ in 0..3 {
            let req = atest::TestRequest::post().uri("/api/trigger").to_request();
            assert_eq!(
                atest::call_service(&app, req).await.status(),
                StatusCode::CREATED
            );
        }
    }

    #[actix_web::test]
    async fn forwarded_clients_behind_a_trusted_proxy_count_separately() {
        let proxies = Arc::new(TrustedProxies::parse("10.0.0.0/8").unwrap());
        let app = service!(RateLimiter::new(policy("/api/trigger=1/minute"), proxies));
        for client in ["198.51.100.1", "198.51.100.2"] {
            let req = from("10.0.0.1:5000")
                .method(actix_web::http::Method::POST)
                .uri("/api/trigger")
                .insert_header(("x-forwarded-for", client))
                .to_request();
            assert_eq!(
                atest::call_service(&app, req).await.status(),
                StatusCode::CREATED
            );
        }
        let req = from("10.0.0.1:5000")
            .method(actix_web::http::Method::POST)
            .uri("/api/trigger")
            .insert_header(("x-forwarded-for", "198.51.100.1"))
            .to_request();
        assert_eq!(
            atest::call_service(&app, req).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}
