//! Scenario 3: `--schedules` (10,000) enabled per-second schedules (`* * * * * *`) on one
//! server, created concurrently through `POST /api/v1/schedules`; then the fires are watched
//! for the planned duration.
//!
//! Every fire is read back through the API, whatever the store: a reader polls
//! `GET /api/v1/metrics/activity?event_type=schedule_triggered` all along (each event names its
//! job, its schedule in `data.trigger_id`, and carries the fire's time, which is also its job's
//! `created_at`). The **lag** of a fire is its time minus the due second it consumed: the
//! schedule's `next_run` when it fired. That is the `next_run` answered by the creation for a
//! schedule's first fire, and for each later one the first whole second after the previous fire
//! (a fire moves `next_run` to the first due time after the fire's time; missed seconds are
//! fired once, not replayed). So a schedule the engine reaches only every 25 s shows a lag of
//! about 25 s, not the fraction of a second `created_at` truncated to the second would say;
//! the seconds it skipped show as the shortfall of fires per second against the expected `N`/s.
//!
//! At the end, the schedules' `run_count`s (listed per workflow, 1,000 schedules each) are
//! compared with the fires the reader saw, so a fire the reader missed is reported.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Context, Figure, ScenarioName, Target, Unit};
use crate::server::Backend;

/// Concurrent connections creating the schedules.
const CREATORS: usize = 64;
/// Schedules per workflow: `GET /schedules?workflow_id=&limit=` lists at most 1,000.
const PER_WORKFLOW: usize = 1_000;
/// Fire lag p99 target, in milliseconds (DESIGN §3: within a second of the due time).
const P99_TARGET_MS: f64 = 1_000.0;
/// How often the reader asks for new fires. The engine fires at most 100 schedules per round
/// and a round every 250 ms, and a page holds 200 events: reading every 50 ms keeps a page to
/// the rest of one round and the next.
const POLL: Duration = Duration::from_millis(50);
/// The activity feed's largest page.
const PAGE: usize = 200;

/// One fire seen by the reader.
struct Fire {
    schedule: String,
    at: OffsetDateTime,
}

pub async fn run(context: &Context, backend: Backend) -> anyhow::Result<Vec<Figure>> {
    let running = context.start(backend).await?;
    let api = running.api();
    let n = context.schedules;
    let mut workflows = Vec::new();
    for w in 0..n.div_ceil(PER_WORKFLOW) {
        workflows.push(
            api.workflow(&running.admin, &format!("bench-schedules-{w}"))
                .await?,
        );
    }

    // The reader starts first, so the first fires are seen too.
    let fires: Arc<Mutex<HashMap<String, Fire>>> = Arc::default();
    let full_pages = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_fires(
        running.server.url("/api/v1/metrics/activity"),
        running.admin.clone(),
        Arc::clone(&fires),
        Arc::clone(&full_pages),
        Arc::clone(&stop),
    ));

    // The schedules, created by CREATORS connections taking the next number in turn.
    let created_at = std::time::Instant::now();
    let first_due: Arc<Mutex<HashMap<String, OffsetDateTime>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let url: Arc<str> = running.server.url("/api/v1/schedules").into();
    let workflows = Arc::new(workflows);
    let mut creators = Vec::new();
    for _ in 0..CREATORS {
        let (next, url, workflows) = (Arc::clone(&next), Arc::clone(&url), Arc::clone(&workflows));
        let (first_due, admin) = (Arc::clone(&first_due), running.admin.clone());
        creators.push(tokio::spawn(async move {
            let client = crate::load::connection();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let body = json!({
                    "workflow_id": workflows[i / PER_WORKFLOW],
                    "schedule_name": format!("bench-{i}"),
                    "cron_expression": "* * * * * *",
                });
                let response = client
                    .post(&*url)
                    .bearer_auth(&admin)
                    .json(&body)
                    .send()
                    .await
                    .context("creating a schedule")?;
                let status = response.status().as_u16();
                let text = response.text().await.context("creating a schedule")?;
                if status != 200 {
                    bail!("creating a schedule: HTTP {status}: {text}");
                }
                let schedule: Value = serde_json::from_str(&text)?;
                let id = schedule["schedule_id"].as_str().context("no schedule_id")?;
                let due = parse_time(&schedule["next_run"]).context("no next_run")?;
                if let Ok(mut map) = first_due.lock() {
                    map.insert(id.to_owned(), due);
                }
            }
        }));
    }
    for creator in creators {
        creator.await.context("a schedule creator panicked")??;
    }
    let creation = created_at.elapsed();

    // The window: after the warm-up, for the planned duration, in the server's time (the
    // server runs on this machine, so its clock is this one).
    tokio::time::sleep(context.warmup).await;
    let window_start = OffsetDateTime::now_utc();
    tokio::time::sleep(context.duration).await;
    let window_end = OffsetDateTime::now_utc();

    // Every fire counted in a `run_count` must have been seen: list the schedules while the
    // reader still runs, then give the reader a moment to catch up.
    let mut run_counts = 0u64;
    for workflow in workflows.iter() {
        run_counts += run_count_of(&running, workflow).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    reader.await.context("the fire reader panicked")??;
    running.stop().await?;

    let fires = std::mem::take(&mut *fires.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let first_due =
        std::mem::take(&mut *first_due.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let seen = fires.len() as u64;
    let lags = lags_in_window(fires, &first_due, window_start, window_end);
    let window = (window_end - window_start).as_seconds_f64();
    let fired_schedules = lags.iter().map(|(s, _)| s).collect::<HashSet<_>>().len();
    let mut lags: Vec<f64> = lags.into_iter().map(|(_, lag)| lag).collect();
    lags.sort_by(f64::total_cmp);

    let figure =
        |what: String, unit| Figure::new(ScenarioName::Schedules, Some(backend), what, unit);
    let count = super::thousands(n as f64);
    Ok(vec![
        figure(
            format!("{count} schedules created"),
            Unit::PerSecond("schedules"),
        )
        .measured(n as f64 / creation.as_secs_f64().max(1e-9))
        .note(format!(
            "{CREATORS} connections, {:.1} s in all",
            creation.as_secs_f64()
        )),
        figure(
            format!("{count} per-second schedules: fires"),
            Unit::PerSecond("fires"),
        )
        .measured(lags.len() as f64 / window.max(1e-9))
        .target(Target::AtLeast(n as f64))
        .note(format!(
            "{} schedules fired in the {window:.1} s window; the engine fires at most 100 \
                 due schedules per round, a round every --trigger-tick-ms (250 ms): at most \
                 400 fires/s, fewer when a round outlasts the tick",
            super::thousands(fired_schedules as f64)
        )),
        figure(
            format!("{count} per-second schedules: fire lag p50"),
            Unit::Millis,
        )
        .measured(percentile(&lags, 50.0)),
        figure(
            format!("{count} per-second schedules: fire lag p99"),
            Unit::Millis,
        )
        .measured(percentile(&lags, 99.0))
        .target(Target::AtMost(P99_TARGET_MS))
        .note("fire time minus the due second it consumed (the schedule's next_run)"),
        figure(
            "fires the activity reader missed".to_owned(),
            Unit::Count("fires"),
        )
        .measured(run_counts.saturating_sub(seen) as f64)
        .target(Target::AtMost(0.0))
        .note(format!(
            "run_count total {}, fires seen {}; full pages {}",
            super::thousands(run_counts as f64),
            super::thousands(seen as f64),
            full_pages.load(Ordering::Relaxed)
        )),
    ])
}

/// Polls the activity feed for `schedule_triggered` events until `stop`, keeping each fire by
/// its job. The cursor is the latest fire time seen minus a microsecond: `since` is strictly
/// after, and the fires of one engine round share their time, so a round still committing when
/// it was first read is read again whole. A page that comes back full may have left fires out
/// (the feed is newest first): counted in `full_pages`.
async fn read_fires(
    url: String,
    admin: String,
    fires: Arc<Mutex<HashMap<String, Fire>>>,
    full_pages: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let client = crate::load::connection();
    let mut cursor = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    while !stop.load(Ordering::Relaxed) {
        let since = cursor.format(&Rfc3339)?;
        // RFC 3339 in UTC ends in `Z` and holds no character a query must escape.
        let response = client
            .get(format!(
                "{url}?event_type=schedule_triggered&limit={PAGE}&since={since}"
            ))
            .bearer_auth(&admin)
            .send()
            .await
            .context("reading the activity feed")?;
        let status = response.status().as_u16();
        let text = response.text().await.context("reading the activity feed")?;
        if status != 200 {
            bail!("reading the activity feed: HTTP {status}: {text}");
        }
        let page: Value = serde_json::from_str(&text)?;
        let events = page["events"].as_array().context("no events list")?;
        if events.len() >= PAGE && page["total"].as_u64().unwrap_or(0) > PAGE as u64 {
            full_pages.fetch_add(1, Ordering::Relaxed);
        }
        let mut latest = None;
        if let Ok(mut fires) = fires.lock() {
            for event in events {
                let (Some(job), Some(schedule), Some(at)) = (
                    event["job_id"].as_str(),
                    event["data"]["trigger_id"].as_str(),
                    parse_time(&event["timestamp"]),
                ) else {
                    continue;
                };
                latest = latest.max(Some(at));
                fires.entry(job.to_owned()).or_insert_with(|| Fire {
                    schedule: schedule.to_owned(),
                    at,
                });
            }
        }
        if let Some(latest) = latest {
            cursor = cursor.max(latest - time::Duration::microseconds(1));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// The sum of the `run_count`s of `workflow`'s schedules (at most [`PER_WORKFLOW`]).
async fn run_count_of(running: &super::Running, workflow: &str) -> anyhow::Result<u64> {
    let response = reqwest::Client::new()
        .get(running.server.url(&format!(
            "/api/v1/schedules?workflow_id={workflow}&limit={PER_WORKFLOW}"
        )))
        .bearer_auth(&running.admin)
        .send()
        .await
        .context("listing schedules")?;
    let status = response.status().as_u16();
    let text = response.text().await.context("listing schedules")?;
    if status != 200 {
        bail!("listing schedules: HTTP {status}: {text}");
    }
    let list: Value = serde_json::from_str(&text)?;
    Ok(list
        .as_array()
        .context("GET /schedules is not a list")?
        .iter()
        .filter_map(|s| s["run_count"].as_u64())
        .sum())
}

/// The lag (ms) of each fire inside the window, with its schedule: each schedule's fires in
/// time order, the first against the `next_run` its creation answered, each later one against
/// the first whole second after the previous fire.
fn lags_in_window(
    fires: HashMap<String, Fire>,
    first_due: &HashMap<String, OffsetDateTime>,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Vec<(String, f64)> {
    let mut by_schedule: HashMap<String, Vec<OffsetDateTime>> = HashMap::new();
    for fire in fires.into_values() {
        by_schedule.entry(fire.schedule).or_default().push(fire.at);
    }
    let mut lags = Vec::new();
    for (schedule, mut times) in by_schedule {
        // A fire of a schedule this run did not create (none exist) has no known due time.
        let Some(&first) = first_due.get(&schedule) else {
            continue;
        };
        times.sort();
        let mut due = first;
        for at in times {
            if at >= start && at <= end {
                lags.push((schedule.clone(), (at - due).as_seconds_f64() * 1000.0));
            }
            due = next_second(at);
        }
    }
    lags
}

/// The first whole second strictly after `at`: when `* * * * * *` is due next.
fn next_second(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at) + time::Duration::seconds(1)
}

fn parse_time(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value.as_str()?, &Rfc3339).ok()
}

/// The nearest-rank `p`-th percentile of sorted `values`; 0 without values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_fire_consumes_the_second_after_the_previous_one() {
        let fire = |at| Fire {
            schedule: "s".to_owned(),
            at,
        };
        let fires = HashMap::from([
            ("j1".to_owned(), fire(datetime!(2026-01-01 0:00:01.2 UTC))),
            // Late by 24 s: the seconds between were missed and fire once.
            ("j2".to_owned(), fire(datetime!(2026-01-01 0:00:26.1 UTC))),
        ]);
        let first = HashMap::from([("s".to_owned(), datetime!(2026-01-01 0:00:01 UTC))]);
        let mut lags = lags_in_window(
            fires,
            &first,
            datetime!(2026-01-01 0:00:00 UTC),
            datetime!(2026-01-01 0:01:00 UTC),
        );
        lags.sort_by(|a, b| a.1.total_cmp(&b.1));
        let ms: Vec<i64> = lags.iter().map(|(_, l)| l.round() as i64).collect();
        assert_eq!(ms, vec![200, 24_100]);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}
