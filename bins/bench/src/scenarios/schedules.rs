//! Scenario 3: `--schedules` (10,000) enabled per-second schedules (`* * * * * *`) on one
//! server, created concurrently through `POST /api/v1/schedules`; then the fires are watched
//! for the planned duration.
//!
//! Every fire is read back from the event log once the window has passed, through the storage
//! port (`EventRepository::events_after`, in `seq` order, whatever the store): each
//! `schedule_triggered` event names its job, its schedule in `data.trigger_id`, and carries the
//! fire's time, which is also its job's `created_at`. (The activity API pages newest first, 200
//! at a time: a reader polling it cannot keep up with 10,000 fires a second.) The **lag** of a
//! fire is its time minus the due second it consumed: the schedule's `next_run` when it fired.
//! That is the `next_run` answered by the creation for a schedule's first fire, and for each
//! later one the first whole second after the previous fire (a fire moves `next_run` to the
//! first due time after the fire's time; missed seconds are fired once, not replayed). So a
//! schedule the engine reaches only every 25 s shows a lag of about 25 s, not the fraction of a
//! second `created_at` truncated to the second would say; the seconds it skipped show as the
//! shortfall of fires per second against the expected `N`/s. Fires per second count the fires
//! of the window's whole due seconds (the last at least two seconds before its end), each by
//! the second it consumed: counted by when they happened, fires that come in one burst a
//! second are a burst too many or too few at a window's edges.
//!
//! The schedules' `run_count`s (listed per workflow, 1,000 schedules each) are summed when the
//! window ends and compared with the fires in the log up to then, so a fire recorded in a
//! trigger without its event would be reported.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
/// Fire lag p99 target, in milliseconds: a schedule fires within a second of its due time.
const P99_TARGET_MS: f64 = 1_000.0;
/// Events read from the log per query.
const PAGE: u32 = 5_000;

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

    // Every fire counted in a `run_count` by now must be in the log by now.
    let mut run_counts = 0u64;
    for workflow in workflows.iter() {
        run_counts += run_count_of(&running, workflow).await?;
    }
    let listed = OffsetDateTime::now_utc();
    let fires = read_fires(running.database_url()).await?;
    running.stop().await?;

    let logged = fires.values().filter(|fire| fire.at <= listed).count() as u64;
    let first_due =
        std::mem::take(&mut *first_due.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let consumed = due_fires(fires, &first_due);
    let in_window = |at: OffsetDateTime| at >= window_start && at <= window_end;
    let mut lags: Vec<f64> = consumed
        .iter()
        .filter(|fire| in_window(fire.at))
        .map(DueFire::lag_ms)
        .collect();
    lags.sort_by(f64::total_cmp);
    // Fires per second counted by the seconds they were due at, not by when they happened:
    // fires come in one burst a second, so a window's edges cut bursts and a count by time is
    // a burst too many or too few (±1 % of 10 s).
    let (due_from, due_to) = due_seconds_of(window_start, window_end);
    let due_in_seconds: Vec<&DueFire> = consumed
        .iter()
        .filter(|fire| fire.due >= due_from && fire.due < due_to)
        .collect();
    let seconds = (due_to - due_from).whole_seconds();
    let fired_schedules = due_in_seconds
        .iter()
        .map(|fire| &fire.schedule)
        .collect::<HashSet<_>>()
        .len();

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
        .measured(due_in_seconds.len() as f64 / (seconds.max(1) as f64))
        // A schedule more than a second late skips the seconds it missed (they fire once), so
        // each second skipped by every schedule costs 1/`seconds` of the figure; 1 % is a
        // second skipped by one schedule in a hundred.
        .target(Target::AtLeast(n as f64 * 0.99))
        .note(format!(
            "fires of the {seconds} whole due seconds of the window, by {} schedules",
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
            "fires counted by schedules but missing from the event log".to_owned(),
            Unit::Count("fires"),
        )
        .measured(run_counts.saturating_sub(logged) as f64)
        .target(Target::AtMost(0.0))
        .note(format!(
            "run_count total {} when the window ended, schedule_triggered events by then {}",
            super::thousands(run_counts as f64),
            super::thousands(logged as f64),
        )),
    ])
}

/// Every fire in the server's event log, by job: the log read in `seq` order, page by page.
async fn read_fires(database_url: &str) -> anyhow::Result<HashMap<String, Fire>> {
    use baton_domain::event::EventType;
    use baton_domain::ports::EventRepository;

    let db = baton_storage::Db::connect(database_url, baton_storage::ConnectOptions::default())
        .await
        .context("opening the server's database")?;
    let mut fires = HashMap::new();
    let mut cursor = 0;
    loop {
        let events = db
            .events_after(cursor, PAGE)
            .await
            .context("reading the event log")?;
        let Some(last) = events.last() else {
            break;
        };
        cursor = last.seq;
        for event in events {
            if event.event_type != EventType::ScheduleTriggered {
                continue;
            }
            let (Some(job), Some(Value::String(schedule))) =
                (event.job_id, event.data.get("trigger_id"))
            else {
                continue;
            };
            fires.insert(
                job.to_string(),
                Fire {
                    schedule: schedule.clone(),
                    at: event.timestamp,
                },
            );
        }
    }
    Ok(fires)
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

/// A fire with the due second it consumed.
struct DueFire {
    schedule: String,
    due: OffsetDateTime,
    at: OffsetDateTime,
}

impl DueFire {
    fn lag_ms(&self) -> f64 {
        (self.at - self.due).as_seconds_f64() * 1000.0
    }
}

/// Every fire with the due second it consumed: each schedule's fires in time order, the first
/// against the `next_run` its creation answered, each later one against the first whole second
/// after the previous fire.
fn due_fires(
    fires: HashMap<String, Fire>,
    first_due: &HashMap<String, OffsetDateTime>,
) -> Vec<DueFire> {
    let mut by_schedule: HashMap<String, Vec<OffsetDateTime>> = HashMap::new();
    for fire in fires.into_values() {
        by_schedule.entry(fire.schedule).or_default().push(fire.at);
    }
    let mut consumed = Vec::new();
    for (schedule, mut times) in by_schedule {
        // A fire of a schedule this run did not create (none exist) has no known due time.
        let Some(&first) = first_due.get(&schedule) else {
            continue;
        };
        times.sort();
        let mut due = first;
        for at in times {
            consumed.push(DueFire {
                schedule: schedule.clone(),
                due,
                at,
            });
            due = next_second(at);
        }
    }
    consumed
}

/// The whole due seconds `[from, to)` of the window whose fires can all have happened by its
/// end: from its first whole second to at least two seconds before its end, so that a fire up
/// to two seconds late has happened by then.
fn due_seconds_of(start: OffsetDateTime, end: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let from = next_second(start - time::Duration::NANOSECOND);
    let to = next_second(end) - time::Duration::seconds(3);
    (from, to.max(from))
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
            ("j3".to_owned(), fire(datetime!(2026-01-01 0:00:27.3 UTC))),
        ]);
        let first = HashMap::from([("s".to_owned(), datetime!(2026-01-01 0:00:01 UTC))]);
        let mut consumed = due_fires(fires, &first);
        consumed.sort_by_key(|fire| fire.at);
        let ms: Vec<i64> = consumed.iter().map(|f| f.lag_ms().round() as i64).collect();
        assert_eq!(ms, vec![200, 24_100, 300]);
        let due: Vec<u8> = consumed.iter().map(|f| f.due.second()).collect();
        assert_eq!(due, vec![1, 2, 27]);
    }

    #[test]
    fn the_counted_due_seconds_are_whole_and_leave_a_second_for_late_fires() {
        let (from, to) = due_seconds_of(
            datetime!(2026-01-01 0:00:05.4 UTC),
            datetime!(2026-01-01 0:00:15.4 UTC),
        );
        assert_eq!(from, datetime!(2026-01-01 0:00:06 UTC));
        assert_eq!(to, datetime!(2026-01-01 0:00:13 UTC));
        let (from, _) = due_seconds_of(
            datetime!(2026-01-01 0:00:05 UTC),
            datetime!(2026-01-01 0:00:15 UTC),
        );
        assert_eq!(from, datetime!(2026-01-01 0:00:05 UTC));
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}
