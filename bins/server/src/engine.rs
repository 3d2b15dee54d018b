//! Which periodic tasks a server runs, over the same state the HTTP adapter uses.

use std::time::Duration;

use baton_http::AppState;

use crate::background::BackgroundTasks;
use crate::config::Config;

/// Starts the engine's periodic tasks: every server runs them; the storage's atomic claims and
/// version checks make concurrent rounds on several servers safe.
pub fn start(config: &Config, state: &AppState) -> BackgroundTasks {
    let tick = Duration::from_millis(u64::from(config.engine_tick_ms));
    let mut tasks = BackgroundTasks::new();
    register_queue_tasks(&mut tasks, tick, state);
    register_job_tasks(&mut tasks, tick, config, state);
    // Triggers have a tick of their own: a schedule must fire within a second of its due time.
    let trigger_tick = Duration::from_millis(u64::from(config.trigger_tick_ms));
    register_trigger_tasks(&mut tasks, trigger_tick, state);
    register_flow_tasks(&mut tasks, tick, state);
    register_access_tasks(&mut tasks, state);
    register_message_tasks(&mut tasks, tick, state);
    register_live_tasks(&mut tasks, state);
    tasks
}

/// The websockets' feeds: one tail of the event log (job updates), one look at the robots and
/// one count of the queue metrics per server, whatever the number of clients; each fans out to
/// this server's clients. Their periods are the feeds' own, not the engine tick.
fn register_live_tasks(tasks: &mut BackgroundTasks, state: &AppState) {
    use baton_http::routes::ws::LiveFeeds;
    let feeds = std::sync::Arc::new(LiveFeeds::new(state));
    let events = feeds.clone();
    tasks.every("live-jobs", LiveFeeds::EVENT_POLL, move || {
        let feeds = events.clone();
        async move {
            let round = feeds.poll_events().await?;
            if round.late > 0 || round.abandoned_gaps > 0 {
                tracing::debug!(
                    late = round.late,
                    abandoned_gaps = round.abandoned_gaps,
                    "event log: late commits delivered, empty seqs given up"
                );
            }
            Ok(())
        }
    });
    let robots = feeds.clone();
    tasks.every("live-robots", LiveFeeds::ROBOT_POLL, move || {
        let feeds = robots.clone();
        async move {
            feeds.poll_robots().await?;
            Ok(())
        }
    });
    let period = LiveFeeds::QUEUE_METRICS_PERIOD;
    tasks.every("live-queue-metrics", period, move || {
        let feeds = feeds.clone();
        async move {
            feeds.publish_queue_metrics().await?;
            Ok(())
        }
    });
}

/// Purges the messages whose node's `keep_messages_for` has passed. Expiry is a retention
/// promise measured in seconds at the finest, so a round every sixty ticks is prompt enough.
fn register_message_tasks(tasks: &mut BackgroundTasks, tick: Duration, state: &AppState) {
    let store = state.store.clone();
    let clock = state.clock.clone();
    tasks.every("message-expiry", tick.saturating_mul(60), move || {
        let store = store.clone();
        let now = clock.now();
        async move {
            let purged = store.purge_expired_messages(now).await?;
            if purged > 0 {
                tracing::debug!(purged, "expired messages purged");
            }
            Ok(())
        }
    });
}

/// Forgets token revocations once the tokens they stop could no longer be used anyway, so the
/// table stays as small as the number of live sessions logged out.
fn register_access_tasks(tasks: &mut BackgroundTasks, state: &AppState) {
    let store = state.store.clone();
    let clock = state.clock.clone();
    tasks.every("token-revocations", Duration::from_secs(600), move || {
        let store = store.clone();
        let now = clock.now();
        async move {
            let purged = store.purge_expired_revocations(now).await?;
            if purged > 0 {
                tracing::debug!(purged, "expired token revocations forgotten");
            }
            Ok(())
        }
    });
}

/// Queue-item lease recovery, and the folding of the queue counts' pending changes.
fn register_queue_tasks(tasks: &mut BackgroundTasks, tick: Duration, state: &AppState) {
    // Count changes folded per round: one change per queue and status per write statement, so
    // 10,000 items/s in batches, claims and reports append a few hundred a second; a round of
    // this many stays one short transaction and still catches up with any backlog quickly.
    const COUNT_FOLD_BATCH: u32 = 20_000;
    let store = state.store.clone();
    tasks.every("queue-counts", tick, move || {
        let store = store.clone();
        async move {
            let folded = store.fold_queue_counts(COUNT_FOLD_BATCH).await?;
            if folded > 0 {
                tracing::trace!(folded, "queue count changes folded");
            }
            Ok(())
        }
    });
    // Items recovered per round: with the default one-second tick, far above any realistic rate
    // of lapsing leases, while one round stays a short burst of queries.
    const LEASE_BATCH: u32 = 500;
    let service = std::sync::Arc::new(baton_domain::services::queue::QueueService::new(
        state.store.clone(),
        state.clock.clone(),
        state.ids.clone(),
    ));
    tasks.every("queue-leases", tick, move || {
        let service = service.clone();
        async move {
            let recovered = service.recover_expired_leases(LEASE_BATCH).await?;
            if recovered > 0 {
                tracing::info!(recovered, "expired queue-item leases recovered");
            }
            Ok(())
        }
    });
}

/// Firing due triggers and schedules, every `--trigger-tick-ms`. A round drains what is due, a
/// batch at a time, the most overdue first, and reads each batch while the one before is stored
/// (`TriggerService::fire_round`). 10,000 per-second schedules fall due together each second:
/// waiting a tick per batch would spread them over seconds.
fn register_trigger_tasks(tasks: &mut BackgroundTasks, tick: Duration, state: &AppState) {
    // Candidates judged per batch; the domain stores their fires a few hundred per transaction.
    const FIRE_BATCH: u32 = 1_000;
    // A round stops taking batches after this long and leaves the rest to the next tick, so a
    // backlog beyond what the server fires per second cannot keep one round (and a shutdown
    // waiting for it) going.
    const ROUND_BUDGET: time::Duration = time::Duration::seconds(1);
    let service = std::sync::Arc::new(baton_domain::services::triggers::TriggerService::new(
        state.store.clone(),
        state.store.clone(),
        state.store.clone(),
        state.clock.clone(),
        state.ids.clone(),
    ));
    tasks.every("triggers", tick, move || {
        let service = service.clone();
        async move {
            let started = std::time::Instant::now();
            let report = service.fire_round(FIRE_BATCH, ROUND_BUDGET).await;
            let round = &report.fires;
            // One line per fire is itself costly at thousands of fires a second: per fire at
            // debug, one summary per round below.
            for (trigger, job) in &round.fired {
                tracing::debug!(%trigger, %job, "trigger fired");
            }
            for trigger in &round.orphaned {
                tracing::warn!(%trigger, "due trigger not fired: its workflow no longer exists");
            }
            for (trigger, error) in &round.failed {
                tracing::warn!(%trigger, %error, "due trigger not fired; retrying next round");
            }
            if round.lost_races > 0 {
                tracing::debug!(
                    lost = round.lost_races,
                    "due triggers fired by another server first"
                );
            }
            if !round.fired.is_empty() {
                tracing::info!(
                    fired = round.fired.len(),
                    batches = report.batches,
                    elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "triggers fired"
                );
            }
            // A failed read ends the round, after the summary of the batches already fired.
            match report.read_error {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        }
    });
}

/// Keeping running flows going: settle the flows whose job ended (found by polling, see
/// `services::flows`), then start the next job of every running flow that is due.
fn register_flow_tasks(tasks: &mut BackgroundTasks, tick: Duration, state: &AppState) {
    let service = std::sync::Arc::new(baton_http::routes::flows::flow_service(state));
    tasks.every("flows", tick, move || {
        let service = service.clone();
        async move {
            let round = service.run_round().await?;
            for (flow, job) in &round.started {
                tracing::info!(%flow, %job, "flow started a job");
            }
            for (flow, job, status) in &round.settled {
                tracing::debug!(%flow, %job, %status, "flow noticed its job ended");
            }
            for flow in &round.stopped {
                tracing::info!(%flow, "flow stopped after its job ended (soft stop)");
            }
            for flow in &round.orphaned {
                tracing::warn!(%flow, "flow stopped: its workflow no longer exists");
            }
            if round.lost_races > 0 {
                tracing::debug!(
                    lost = round.lost_races,
                    "flows changed by another server or a client first"
                );
            }
            for (flow, error) in &round.failed {
                tracing::warn!(%flow, %error, "flow round failed; retrying next round");
            }
            Ok(())
        }
    });
}

/// Job-lease recovery and marking silent robots offline, every tick. A job whose robot stopped
/// renewing goes back to pending (or fails once its retries are spent); a robot without a
/// heartbeat for `--robot-offline-seconds` is marked offline, its job left to its lease.
fn register_job_tasks(
    tasks: &mut BackgroundTasks,
    tick: Duration,
    config: &Config,
    state: &AppState,
) {
    // Jobs recovered per round: far above any realistic rate of lapsing leases at the default
    // one-second tick, while one round stays a short burst of queries.
    const LEASE_BATCH: u32 = 500;
    let service = std::sync::Arc::new(baton_http::routes::jobs::job_service(state));
    let leases = service.clone();
    tasks.every("job-leases", tick, move || {
        let service = leases.clone();
        async move {
            let recovered = service.recover_expired_leases(LEASE_BATCH).await?;
            if recovered > 0 {
                tracing::info!(recovered, "expired job leases recovered");
            }
            Ok(())
        }
    });
    let offline_after = time::Duration::seconds(i64::from(config.robot_offline_seconds));
    tasks.every("robot-offline", tick, move || {
        let service = service.clone();
        async move {
            let marked = service.mark_silent_robots_offline(offline_after).await?;
            if marked > 0 {
                tracing::info!(marked, "robots without a heartbeat marked offline");
            }
            Ok(())
        }
    });
}
