//! Scenario 2: 32 simulated robots claim and complete jobs through the robot protocol, each
//! with its own token. A backlog is queued first (`POST /api/v1/jobs` at 64 connections for the
//! planned duration, which is measured too); the robots then drain it with the batched calls:
//! `claim-batch` (up to 100 jobs, the most the call takes, no wait), then `finish-batch`
//! completing them all. Every job must be completed once: a job id seen twice, or a refused
//! completion, is a failure.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{Context, Figure, ScenarioName, Target, Unit};
use crate::load::{self, Plan, Step};
use crate::server::Backend;

/// Simulated robots of the robots target (docs/performance.md, "Targets").
const ROBOTS: usize = 32;
/// Connections queueing the backlog.
const SUBMITTERS: usize = 64;
/// Jobs per second the target asks for.
const TARGET_JOBS_PER_SECOND: f64 = 5_000.0;
/// Jobs per `claim-batch` call, each reported by one `finish-batch` call: the most either call
/// takes, as a robot working through a backlog would ask for.
const BATCH: usize = 100;

pub async fn run(context: &Context, backend: Backend) -> anyhow::Result<Vec<Figure>> {
    let running = context.start(backend).await?;
    let api = running.api();
    let key = api
        .api_key(&running.admin, "bench-submitter", &["operator"])
        .await?;
    let workflow = api.workflow(&running.admin, "bench-robots").await?;
    let mut robots = Vec::with_capacity(ROBOTS);
    for n in 0..ROBOTS {
        let id = format!("bench-robot-{n:02}");
        let token = api.robot(&running.admin, &id).await?;
        robots.push((id, token));
    }

    // The backlog.
    let jobs_url: Arc<str> = running.server.url("/api/v1/jobs").into();
    let submit_body: Arc<str> = json!({"workflow_id": workflow}).to_string().into();
    let submit_key: Arc<str> = key.into();
    let submitted = load::run(
        Plan {
            workers: SUBMITTERS,
            warmup: context.warmup,
            measure: context.duration,
        },
        move |_, _, client| {
            let (url, body, key) = (
                Arc::clone(&jobs_url),
                Arc::clone(&submit_body),
                Arc::clone(&submit_key),
            );
            async move {
                let result = client
                    .post(&*url)
                    .header("X-API-Key", &*key)
                    .header("Content-Type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                match &result {
                    Ok(response) if response.status().as_u16() == 201 => Step::Done,
                    _ => Step::Failed(load::failure(&result)),
                }
            }
        },
    )
    .await;

    // The robots drain it, a batch per claim and per report.
    let base: Arc<str> = running.server.url("/api/v1/robots").into();
    let robots = Arc::new(robots);
    let completed: Arc<Mutex<HashSet<String>>> = Arc::default();
    let twice = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cpu_before = running.cpu().await;
    let drained = {
        let (completed, twice) = (Arc::clone(&completed), Arc::clone(&twice));
        load::run(
            Plan {
                workers: ROBOTS,
                warmup: std::time::Duration::ZERO,
                measure: context.duration,
            },
            move |worker, _, client| {
                let (base, robots) = (Arc::clone(&base), Arc::clone(&robots));
                let (completed, twice) = (Arc::clone(&completed), Arc::clone(&twice));
                async move {
                    let (robot, token) = &robots[worker];
                    let ids = match claim_batch(&client, &base, robot, token).await {
                        Ok(Some(ids)) => ids,
                        Ok(None) => return Step::Exhausted,
                        Err(reason) => return Step::Failed(reason),
                    };
                    if let Err(reason) = finish_batch(&client, &base, robot, token, &ids).await {
                        return Step::Failed(reason);
                    }
                    let units = ids.len() as u64;
                    if let Ok(mut seen) = completed.lock() {
                        for id in ids {
                            if !seen.insert(id) {
                                twice.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    }
                    Step::DoneMany(units)
                }
            },
        )
        .await
    };
    let cost = running
        .cpu_since(&cpu_before, drained.succeeded, backend)
        .await;
    running.stop().await?;

    let figure = |what: &str, unit| Figure::new(ScenarioName::Robots, Some(backend), what, unit);
    let backlog = submitted.succeeded + 1; // the workflow's submission ran one job too
    let drained_all = drained.succeeded >= backlog;
    Ok(vec![
        figure(
            "POST /api/v1/jobs throughput (64 connections, the backlog)",
            Unit::PerSecond("jobs"),
        )
        .measured(submitted.per_second())
        .note(submitted.failure_summary()),
        figure(
            "jobs claimed and completed by 32 robots",
            Unit::PerSecond("jobs"),
        )
        .measured(drained.per_second())
        .target(Target::AtLeast(TARGET_JOBS_PER_SECOND))
        .note(format!(
            "batches of up to {BATCH}; {} of {} queued jobs completed in {:.1} s{}",
            super::thousands(drained.succeeded as f64),
            super::thousands(backlog as f64),
            drained.window.as_secs_f64(),
            if drained_all {
                " (backlog drained)"
            } else {
                ""
            }
        )),
        figure(
            "claim-batch + finish-batch latency p99 (one batch)",
            Unit::Millis,
        )
        .measured(drained.percentile_ms(99.0)),
        figure(
            "capacity at this CPU cost, if nothing else ran",
            Unit::PerSecond("jobs"),
        )
        .measured(cost.capacity(super::cpus()))
        .note(cost.describe().replace("per request", "per job")),
        figure("jobs completed twice", Unit::Count("jobs"))
            .measured(twice.load(std::sync::atomic::Ordering::Relaxed) as f64)
            .target(Target::AtMost(0.0)),
        figure("failed robot calls", Unit::Count("calls"))
            .measured(drained.failed() as f64)
            .target(Target::AtMost(0.0))
            .note(drained.failure_summary()),
    ])
}

/// One `claim-batch` without waiting: the claimed jobs' ids, or `None` when nothing is pending.
async fn claim_batch(
    client: &reqwest::Client,
    base: &str,
    robot: &str,
    token: &str,
) -> Result<Option<Vec<String>>, String> {
    let response = client
        .post(format!("{base}/{robot}/jobs/claim-batch"))
        .header("X-Api-Token", token)
        .json(&json!({"limit": BATCH, "wait_seconds": 0}))
        .send()
        .await;
    match response {
        Ok(response) if response.status().as_u16() == 204 => Ok(None),
        Ok(response) if response.status().as_u16() == 200 => {
            let body: Value = response
                .json()
                .await
                .map_err(|_| "claim-batch: unreadable answer".to_owned())?;
            let ids = body["jobs"]
                .as_array()
                .map(|jobs| {
                    jobs.iter()
                        .filter_map(|job| job["job_id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            Ok(Some(ids))
        }
        other => Err(format!("claim-batch: {}", load::failure(&other))),
    }
}

/// One `finish-batch` completing `ids`; every job must be answered 200.
async fn finish_batch(
    client: &reqwest::Client,
    base: &str,
    robot: &str,
    token: &str,
    ids: &[String],
) -> Result<(), String> {
    let report: Vec<Value> = ids
        .iter()
        .map(|id| json!({"job_id": id, "outcome": "completed", "output": {"ok": true}}))
        .collect();
    let response = client
        .post(format!("{base}/{robot}/jobs/finish-batch"))
        .header("X-Api-Token", token)
        .json(&json!({"jobs": report}))
        .send()
        .await;
    let body: Value = match response {
        Ok(response) if response.status().as_u16() == 200 => response
            .json()
            .await
            .map_err(|_| "finish-batch: unreadable answer".to_owned())?,
        other => return Err(format!("finish-batch: {}", load::failure(&other))),
    };
    let results = body["results"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if results.len() != ids.len() {
        return Err("finish-batch: not one result per job".to_owned());
    }
    match results.iter().find(|result| result["status"] != 200) {
        Some(refused) => Err(format!(
            "finish-batch: a job answered {}",
            refused["status"]
        )),
        None => Ok(()),
    }
}
