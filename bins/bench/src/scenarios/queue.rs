//! Scenario 1: `POST /api/queue` at 64 concurrent keep-alive connections, as an integrator's
//! API key. Every 201 must be durable: after the run, the queue must hold at least as many
//! items as were answered 201.

use std::sync::Arc;

use serde_json::json;

use super::{Context, Figure, ScenarioName, Target, Unit};
use crate::load::{self, Plan, Step};
use crate::server::Backend;

/// Concurrent connections of the queue target (docs/performance.md, "Targets").
const CONNECTIONS: usize = 64;
/// The queue every request adds to.
const QUEUE: &str = "bench";
/// p99 latency target, in milliseconds.
const P99_TARGET_MS: f64 = 25.0;

/// Requests per second the target asks for on each backend.
fn throughput_target(backend: Backend) -> f64 {
    match backend {
        Backend::Postgres => 10_000.0,
        Backend::Sqlite => 8_000.0,
    }
}

pub async fn run(context: &Context, backend: Backend) -> anyhow::Result<Vec<Figure>> {
    let running = context.start(backend).await?;
    let key = running
        .api()
        .api_key(&running.admin, "bench-integrator", &["operator"])
        .await?;
    let url: Arc<str> = running.server.url("/api/queue").into();
    let header_key: Arc<str> = key.clone().into();
    let plan = Plan {
        workers: CONNECTIONS,
        warmup: context.warmup,
        measure: context.duration,
    };
    let cpu_before = running.cpu().await;
    let outcome = load::run(plan, move |worker, sequence, client| {
        let url = Arc::clone(&url);
        let key = Arc::clone(&header_key);
        async move {
            // A realistic item: a small data object, a reference and its creator.
            let body = json!({
                "queue_name": QUEUE,
                "data": {"case": sequence, "worker": worker},
                "reference": format!("w{worker}-{sequence}"),
                "created_by": "baton-bench",
            });
            let result = client
                .post(&*url)
                .header("X-API-Key", &*key)
                .json(&body)
                .send()
                .await;
            match &result {
                Ok(response) if response.status().as_u16() == 201 => Step::Done,
                _ => Step::Failed(load::failure(&result)),
            }
        }
    })
    .await;
    let cost = running
        .cpu_since(&cpu_before, outcome.succeeded, backend)
        .await;
    let stored = running.api().queue_total(&key, QUEUE).await?;
    running.stop().await?;

    let figure = |what: &str, unit| Figure::new(ScenarioName::Queue, Some(backend), what, unit);
    let lost = outcome.succeeded.saturating_sub(stored);
    Ok(vec![
        figure(
            "POST /api/queue throughput (64 connections)",
            Unit::PerSecond("requests"),
        )
        .measured(outcome.per_second())
        .target(Target::AtLeast(throughput_target(backend))),
        figure("POST /api/queue latency p50", Unit::Millis).measured(outcome.percentile_ms(50.0)),
        figure("POST /api/queue latency p99", Unit::Millis)
            .measured(outcome.percentile_ms(99.0))
            .target(Target::AtMost(P99_TARGET_MS)),
        figure(
            "capacity at this CPU cost, if nothing else ran",
            Unit::PerSecond("requests"),
        )
        .measured(cost.capacity(super::cpus()))
        .note(cost.describe()),
        figure("POST /api/queue failed requests", Unit::Count("requests"))
            .measured(outcome.failed() as f64)
            .target(Target::AtMost(0.0))
            .note(outcome.failure_summary()),
        figure(
            "201 answers not found stored afterwards",
            Unit::Count("items"),
        )
        .measured(lost as f64)
        .target(Target::AtMost(0.0))
        .note(format!(
            "{} answered 201, {} stored",
            super::thousands(outcome.succeeded as f64),
            super::thousands(stored as f64)
        )),
    ])
}
