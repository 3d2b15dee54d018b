//! `GET /metrics`: the server in Prometheus' text exposition format (docs/prometheus.md).
//!
//! Two kinds of numbers: request counts and latencies this server answered ([`RequestMetrics`],
//! recorded by the [`record_requests`] middleware), and gauges read at each scrape (jobs, queue
//! items and robots from the database, the connection pool from the health port). Names, labels
//! and decisions are documented in `docs/prometheus.md`.

mod database;
mod requests;
pub mod text;

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, web};
use baton_domain::ports::Store;

pub use self::requests::{LATENCY_BOUNDS, RequestMetrics, method_label};
use self::text::{Exposition, MetricType};
use crate::probe::{HealthProbe, PoolStats};
use crate::rate_limit::UNMATCHED_ROUTE;

/// Who may read `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrapeAccess {
    /// Any caller with the Read permission (a viewer's API key in the scraper's
    /// `authorization` setting): the default, since the scrape names queues and shows load.
    Read,
    /// Anyone who can reach the port, like the health probes (`--metrics-public`).
    Public,
}

/// The exporter's state: this server's request metrics and who may scrape them.
#[derive(Debug)]
pub struct Prometheus {
    requests: RequestMetrics,
    access: ScrapeAccess,
}

impl Prometheus {
    pub fn new(access: ScrapeAccess) -> Self {
        Self {
            requests: RequestMetrics::new(),
            access,
        }
    }

    pub fn access(&self) -> ScrapeAccess {
        self.access
    }

    pub fn requests(&self) -> &RequestMetrics {
        &self.requests
    }

    /// The whole scrape: build information, the database's gauges (left out, with
    /// `baton_database_up 0`, when it does not answer), the pool, then the request metrics.
    pub async fn render(&self, store: Arc<dyn Store>, health: &dyn HealthProbe) -> String {
        let mut doc = Exposition::new();
        doc.family(
            "baton_build_info",
            MetricType::Gauge,
            "Always 1; the version label names the running baton.",
        )
        .sample(&[("version", env!("CARGO_PKG_VERSION"))], 1);

        let gauges = database::DatabaseGauges::read(store).await;
        if let Err(reason) = &gauges {
            tracing::warn!(target: "baton_http::metrics", %reason, "metrics: database gauges unavailable");
        }
        doc.family(
            "baton_database_up",
            MetricType::Gauge,
            "1 when this scrape could read the database's gauges, 0 when it could not.",
        )
        .sample(&[], u64::from(gauges.is_ok()));
        if let Ok(gauges) = &gauges {
            gauges.write(&mut doc);
        }
        if let Some(pool) = health.pool_stats() {
            write_pool(&mut doc, pool);
        }
        self.requests.write(&mut doc);
        doc.finish()
    }
}

fn write_pool(doc: &mut Exposition, pool: PoolStats) {
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    doc.family(
        "baton_db_pool_max_connections",
        MetricType::Gauge,
        "Connections the database pool may hold.",
    )
    .sample(&[], as_u64(pool.max_size));
    doc.family(
        "baton_db_pool_connections",
        MetricType::Gauge,
        "Connections the database pool holds open, idle or in use.",
    )
    .sample(&[], as_u64(pool.size));
    doc.family(
        "baton_db_pool_idle_connections",
        MetricType::Gauge,
        "Open connections idle in the database pool.",
    )
    .sample(&[], as_u64(pool.available));
    doc.family(
        "baton_db_pool_waiting",
        MetricType::Gauge,
        "Tasks waiting for a database connection.",
    )
    .sample(&[], as_u64(pool.waiting));
}

/// Middleware (for `actix_web::middleware::from_fn`) recording every answered request under its
/// route pattern, method and final status, errors included. Register it outside the error
/// shaping, so it sees the status the client gets.
pub async fn record_requests<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    let Some(prometheus) = req.app_data::<web::Data<Prometheus>>().cloned() else {
        return next.call(req).await;
    };
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.match_pattern();
    let route = route.as_deref().unwrap_or(UNMATCHED_ROUTE);
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status(),
        // An error that reaches here is rendered by actix with this status.
        Err(error) => error.as_response_error().status_code(),
    };
    prometheus
        .requests()
        .record(route, &method, status.as_u16(), started.elapsed());
    result
}
