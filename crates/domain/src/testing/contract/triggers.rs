//! `TriggerRepository`, including the fire that must happen exactly once across servers.

// Helpers here are not `#[test]` functions, so clippy's test exemption does not reach them; a
// failed unwrap in a contract test is a failed assertion with a location.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::{Barrier, SharedStore};
use baton_domain::event::{Event, EventType};
use baton_domain::ids::{JobId, TriggerId};
use baton_domain::job::{JobOrigin, Priority};
use baton_domain::ports::{DueCursor, EventFilter, FireRecord, TriggerCursor, TriggerFilter};
use baton_domain::queue::QueueName;
use baton_domain::schedule::CronSchedule;
use baton_domain::trigger::{
    ProcessStatus, ScheduleName, Trigger, TriggerKind, TriggerName, TriggerType,
};
use baton_domain::workflow::ExecutionMode;
use baton_domain::{RepoError, Timestamp};
use futures_util::future::join_all;
use serde_json::json;

use super::fixtures::{T0, at};
use super::workflows::{
    event, job, job_id, micros, single_trigger, stored_workflow, trigger_id, workflow_id,
};

fn trigger(n: u128, kind: TriggerKind) -> Trigger {
    Trigger {
        kind,
        ..single_trigger(n, workflow_id(1))
    }
}

fn cron(expression: &str, timezone: Option<&str>) -> TriggerKind {
    TriggerKind::Scheduled(Box::new(CronSchedule::parse(expression, timezone).unwrap()))
}

fn queue(name: &str, min_batch_size: u32) -> TriggerKind {
    TriggerKind::Queue {
        queue_name: QueueName::parse(name).unwrap(),
        min_batch_size,
    }
}

/// Every optional field set, counters past `u32::MAX`, every instant with microseconds.
fn full(n: u128, kind: TriggerKind) -> Trigger {
    let mut t = trigger(n, kind);
    t.process_status = ProcessStatus::Pausing;
    t.enabled = false;
    t.is_blocking = false;
    t.priority = Priority::new(0).unwrap();
    t.execution_mode = ExecutionMode::Internet;
    t.process_args =
        serde_json::Map::from_iter([("invoice".to_owned(), json!({"id": 7, "lines": [1, 2]}))]);
    t.metadata = serde_json::Map::from_iter([("team".to_owned(), json!("ops"))]);
    t.schedule_name =
        Some(ScheduleName::parse(format!("Report {n}: {}", "é".repeat(240))).unwrap());
    t.next_run = Some(micros(at(3_600), 1));
    t.last_run = Some(micros(at(60), 999_999));
    t.run_count = 5_000_000_000;
    t.failure_count = 3;
    t.current_job_id = Some(job_id(n));
    t.created_at = micros(T0, 123_456);
    t.updated_at = micros(at(60), 654_321);
    t.version = 17;
    t
}

fn ids(triggers: &[Trigger]) -> Vec<TriggerId> {
    triggers.iter().map(|t| t.id).collect()
}

pub async fn event_count(db: &SharedStore) -> u64 {
    db.list_events(&EventFilter {
        limit: 1,
        ..EventFilter::default()
    })
    .await
    .unwrap()
    .1
}

pub async fn job_count(db: &SharedStore) -> u64 {
    db.count_jobs_by_status()
        .await
        .unwrap()
        .into_iter()
        .map(|(_, n)| n)
        .sum()
}

pub async fn each_kind_reads_back_as_written(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let triggers = [
        full(1, TriggerKind::Single),
        full(2, cron("*/10 * * * * *", Some("Europe/Paris"))),
        full(3, queue("invoices", 25)),
        trigger(4, TriggerKind::Single),
        trigger(5, cron("0 9 * * 1-5", None)),
        trigger(6, queue("emails", 1)),
    ];
    for t in &triggers {
        db.insert_trigger(t).await.unwrap();
    }
    for t in &triggers {
        assert_eq!(&db.get_trigger(t.id).await.unwrap(), t);
        assert_eq!(&db.get_trigger_by_name(&t.name).await.unwrap(), t);
    }
    let paris = db.get_trigger(trigger_id(2)).await.unwrap();
    assert_eq!(paris.cron().unwrap().timezone(), "Europe/Paris");
    assert_eq!(
        db.get_trigger(trigger_id(5))
            .await
            .unwrap()
            .cron()
            .unwrap()
            .timezone(),
        "UTC"
    );
}

pub async fn a_taken_name_or_id_conflicts(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let first = trigger(1, TriggerKind::Single);
    db.insert_trigger(&first).await.unwrap();
    let same_name = Trigger {
        id: trigger_id(2),
        ..first.clone()
    };
    assert!(matches!(
        db.insert_trigger(&same_name).await,
        Err(RepoError::Conflict(_))
    ));
    let same_id = Trigger {
        name: TriggerName::parse_trigger("another").unwrap(),
        ..first.clone()
    };
    assert!(matches!(
        db.insert_trigger(&same_id).await,
        Err(RepoError::Conflict(_))
    ));
    assert_eq!(
        db.list_triggers(&TriggerFilter::default()).await.unwrap(),
        vec![first]
    );
}

/// A schedule's name is a label, not a key: two triggers may show the same one.
pub async fn schedule_names_may_repeat(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let name = ScheduleName::parse("Daily Report").unwrap();
    let mut first = trigger(1, cron("0 9 * * *", None));
    first.schedule_name = Some(name.clone());
    let mut second = trigger(2, cron("0 9 * * *", None));
    second.schedule_name = Some(name);
    db.insert_trigger(&first).await.unwrap();
    db.insert_trigger(&second).await.unwrap();
    assert_eq!(
        db.list_triggers(&TriggerFilter::default()).await.unwrap(),
        vec![first, second]
    );
}

pub async fn missing_triggers_are_not_found(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let ghost = trigger(9, TriggerKind::Single);
    assert!(matches!(
        db.get_trigger(ghost.id).await,
        Err(RepoError::NotFound(_))
    ));
    assert!(matches!(
        db.get_trigger_by_name(&ghost.name).await,
        Err(RepoError::NotFound(_))
    ));
    assert!(matches!(
        db.update_trigger(&ghost).await,
        Err(RepoError::NotFound(_))
    ));
    assert!(matches!(
        db.delete_trigger(ghost.id).await,
        Err(RepoError::NotFound(_))
    ));
}

pub async fn triggers_are_deleted(db: SharedStore) {
    stored_workflow(&db, 1).await;
    db.insert_trigger(&trigger(1, TriggerKind::Single))
        .await
        .unwrap();
    db.insert_trigger(&trigger(2, TriggerKind::Single))
        .await
        .unwrap();
    db.delete_trigger(trigger_id(1)).await.unwrap();
    assert!(matches!(
        db.get_trigger(trigger_id(1)).await,
        Err(RepoError::NotFound(_))
    ));
    assert_eq!(
        ids(&db.list_triggers(&TriggerFilter::default()).await.unwrap()),
        [trigger_id(2)]
    );
}

pub async fn triggers_list_oldest_first_by_filter(db: SharedStore) {
    stored_workflow(&db, 1).await;
    stored_workflow(&db, 2).await;
    let mut made = vec![
        trigger(1, TriggerKind::Single),
        trigger(2, cron("0 * * * *", None)),
        trigger(3, queue("q", 1)),
        Trigger {
            enabled: false,
            ..trigger(4, TriggerKind::Single)
        },
        Trigger {
            workflow_id: workflow_id(2),
            ..trigger(5, cron("0 * * * *", None))
        },
    ];
    // Creation order differs from id order.
    for (t, created) in made.iter_mut().zip([50, 40, 30, 20, 10]) {
        t.created_at = at(created);
    }
    for t in &made {
        db.insert_trigger(t).await.unwrap();
    }
    let list = |filter: TriggerFilter| {
        let db = db.clone();
        async move { ids(&db.list_triggers(&filter).await.unwrap()) }
    };
    let id = trigger_id;
    assert_eq!(
        list(TriggerFilter::default()).await,
        [id(5), id(4), id(3), id(2), id(1)]
    );
    let scheduled = TriggerFilter {
        trigger_type: Some(TriggerType::Scheduled),
        ..TriggerFilter::default()
    };
    assert_eq!(list(scheduled).await, [id(5), id(2)]);
    let of_workflow = TriggerFilter {
        workflow_id: Some(workflow_id(2)),
        ..TriggerFilter::default()
    };
    assert_eq!(list(of_workflow).await, [id(5)]);
    let disabled = TriggerFilter {
        enabled: Some(false),
        ..TriggerFilter::default()
    };
    assert_eq!(list(disabled).await, [id(4)]);
    let combined = TriggerFilter {
        trigger_type: Some(TriggerType::Single),
        workflow_id: Some(workflow_id(1)),
        enabled: Some(true),
        limit: 0,
        after: None,
    };
    assert_eq!(list(combined).await, [id(1)]);
    let limited = TriggerFilter {
        limit: 2,
        ..TriggerFilter::default()
    };
    assert_eq!(list(limited).await, [id(5), id(4)]);
    // A page goes on after the cursor, in the same order and with the same filters.
    let all = db.list_triggers(&TriggerFilter::default()).await.unwrap();
    let cursor = |t: &Trigger| TriggerCursor {
        created_at: t.created_at(),
        id: t.id(),
    };
    let next = TriggerFilter {
        limit: 2,
        after: Some(cursor(&all[1])),
        ..TriggerFilter::default()
    };
    assert_eq!(list(next).await, [id(3), id(2)]);
    let last = TriggerFilter {
        after: Some(cursor(&all[4])),
        ..TriggerFilter::default()
    };
    assert_eq!(list(last).await, Vec::<TriggerId>::new());
    let scheduled_after = TriggerFilter {
        trigger_type: Some(TriggerType::Scheduled),
        after: Some(cursor(&all[0])),
        ..TriggerFilter::default()
    };
    assert_eq!(list(scheduled_after).await, [id(2)]);
}

pub async fn updates_are_optimistic(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let original = trigger(1, TriggerKind::Single);
    db.insert_trigger(&original).await.unwrap();
    db.insert_trigger(&trigger(2, TriggerKind::Single))
        .await
        .unwrap();

    // Every field but the id and the creation time may change, the kind included.
    let mut changed = full(1, queue("orders", 3));
    changed.created_at = original.created_at;
    changed.version = original.version;
    changed.name = TriggerName::parse_trigger("renamed").unwrap();
    let stored = db.update_trigger(&changed).await.unwrap();
    assert_eq!(stored.version, original.version + 1);
    assert_eq!(
        stored,
        Trigger {
            version: original.version + 1,
            ..changed.clone()
        }
    );
    assert_eq!(db.get_trigger(original.id).await.unwrap(), stored);

    let mut reverted = stored.clone();
    reverted.kind = TriggerKind::Single;
    reverted.next_run = None;
    reverted.current_job_id = None;
    reverted.schedule_name = None;
    let back = db.update_trigger(&reverted).await.unwrap();
    assert_eq!(
        db.get_trigger(original.id).await.unwrap(),
        back,
        "None clears a stored value"
    );

    // A write based on an old read loses, and changes nothing.
    let err = db.update_trigger(&stored).await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert_eq!(db.get_trigger(original.id).await.unwrap(), back);

    let taken = Trigger {
        name: TriggerName::parse_trigger("trigger 2").unwrap(),
        ..back.clone()
    };
    let err = db.update_trigger(&taken).await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert_eq!(db.get_trigger(original.id).await.unwrap(), back);
}

pub async fn due_candidates_are_enabled_ones_that_may_fire_now(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let now = micros(at(1_000), 500);
    let timed = |n, kind, next_run: Option<Timestamp>| Trigger {
        next_run,
        ..trigger(n, kind)
    };
    let hourly = || cron("0 * * * *", None);
    let candidates = [
        timed(1, TriggerKind::Single, None),
        timed(2, TriggerKind::Single, Some(micros(now, 1))),
        timed(3, TriggerKind::Single, Some(now)),
        timed(4, hourly(), Some(at(10))),
        timed(5, hourly(), Some(micros(now, 1))),
        timed(6, hourly(), Some(at(500))),
        timed(7, queue("q", 5), None),
        Trigger {
            enabled: false,
            ..timed(8, TriggerKind::Single, None)
        },
        Trigger {
            enabled: false,
            ..timed(9, queue("q", 1), None)
        },
        // Running but not blocking: a SCHEDULED trigger keeps its rhythm, so still a candidate.
        Trigger {
            process_status: ProcessStatus::Running,
            is_blocking: false,
            ..timed(10, hourly(), Some(at(20)))
        },
        // Statuses in which the trigger cannot fire are left out, so that they never fill a
        // round's `limit` and starve triggers that are due.
        Trigger {
            process_status: ProcessStatus::Done,
            ..timed(11, TriggerKind::Single, Some(at(5)))
        },
        Trigger {
            process_status: ProcessStatus::Running,
            ..timed(12, queue("q", 1), None)
        },
        Trigger {
            process_status: ProcessStatus::Paused,
            ..timed(13, hourly(), Some(at(5)))
        },
        Trigger {
            process_status: ProcessStatus::Running,
            is_blocking: true,
            ..timed(14, hourly(), Some(at(5)))
        },
    ];
    for t in &candidates {
        db.insert_trigger(t).await.unwrap();
    }
    let due = db.due_trigger_candidates(now, 100).await.unwrap();
    let id = trigger_id;
    assert_eq!(
        ids(&due),
        [id(4), id(10), id(6), id(3), id(1), id(7)],
        "oldest next_run first, then the ones without a time"
    );
    assert_eq!(
        ids(&db.due_trigger_candidates(now, 2).await.unwrap()),
        [id(4), id(10)]
    );
    assert_eq!(due[0], candidates[3], "candidates read back whole");
}

pub async fn due_candidates_after_a_cursor_continue_the_due_ones_in_order(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let now = at(1_000);
    let timed = |n, kind, next_run: Option<Timestamp>| Trigger {
        next_run,
        ..trigger(n, kind)
    };
    let hourly = || cron("0 * * * *", None);
    let stored = [
        timed(1, TriggerKind::Single, Some(at(10))),
        // Two due at the same instant: the id orders them.
        timed(2, TriggerKind::Single, Some(at(20))),
        timed(3, TriggerKind::Single, Some(at(20))),
        timed(4, hourly(), Some(micros(at(20), 1))),
        // Not due by time: only the full read takes them.
        timed(5, TriggerKind::Single, None),
        timed(6, queue("q", 1), None),
        timed(7, TriggerKind::Single, Some(at(2_000))),
        // Due by time, in a status that cannot fire.
        Trigger {
            process_status: ProcessStatus::Done,
            ..timed(8, TriggerKind::Single, Some(at(15)))
        },
    ];
    for t in &stored {
        db.insert_trigger(t).await.unwrap();
    }
    let id = trigger_id;
    assert_eq!(
        ids(&db.due_trigger_candidates(now, 100).await.unwrap()),
        [id(1), id(2), id(3), id(4), id(5), id(6)]
    );
    let after = |next_run, n| DueCursor {
        next_run,
        id: id(n),
    };
    assert_eq!(
        ids(&db
            .due_trigger_candidates_after(now, after(at(20), 2), 100)
            .await
            .unwrap()),
        [id(3), id(4)],
        "past the cursor: a later id at its instant, then later instants"
    );
    assert_eq!(
        ids(&db
            .due_trigger_candidates_after(now, after(at(10), 1), 2)
            .await
            .unwrap()),
        [id(2), id(3)]
    );
    assert!(
        db.due_trigger_candidates_after(now, after(micros(at(20), 1), 4), 100)
            .await
            .unwrap()
            .is_empty()
    );
    let read = db
        .due_trigger_candidates_after(now, after(at(0), 0), 1)
        .await
        .unwrap();
    assert_eq!(read, [stored[0].clone()], "candidates read back whole");
}

pub async fn a_fire_stores_the_trigger_the_job_and_the_events(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let original = trigger(1, cron("*/5 * * * *", Some("Europe/Paris")));
    db.insert_trigger(&original).await.unwrap();

    let now = micros(at(600), 42);
    let job = job(1, JobOrigin::Trigger(original.id), now);
    let mut fired = original.clone();
    fired.fire(job.id(), now);
    db.record_fire(
        &fired,
        &job,
        &[
            event(1, EventType::TriggerFired, now),
            event(2, EventType::JobCreated, now),
        ],
    )
    .await
    .unwrap();

    let stored = db.get_trigger(original.id).await.unwrap();
    assert_eq!(
        stored,
        Trigger {
            version: original.version + 1,
            ..fired.clone()
        }
    );
    assert_eq!(stored.run_count, 1);
    assert_eq!(stored.current_job_id, Some(job.id()));
    assert_eq!(db.get_job(job.id()).await.unwrap(), job);
    assert_eq!(event_count(&db).await, 2);
    assert_eq!(db.triggers_for_job(job.id()).await.unwrap(), vec![stored]);
    assert!(db.triggers_for_job(job_id(99)).await.unwrap().is_empty());
}

pub async fn a_stale_fire_writes_nothing(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let original = trigger(1, TriggerKind::Single);
    db.insert_trigger(&original).await.unwrap();

    let first_job = job(1, JobOrigin::Trigger(original.id), at(1));
    let mut first = original.clone();
    first.fire(first_job.id(), at(1));
    db.record_fire(
        &first,
        &first_job,
        &[event(1, EventType::TriggerFired, at(1))],
    )
    .await
    .unwrap();
    let after_first = db.get_trigger(original.id).await.unwrap();

    // A second server read the trigger before the first fire.
    let late_job = job(2, JobOrigin::Trigger(original.id), at(2));
    let mut late = original.clone();
    late.fire(late_job.id(), at(2));
    let err = db
        .record_fire(
            &late,
            &late_job,
            &[event(2, EventType::TriggerFired, at(2))],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");

    assert!(
        matches!(db.get_job(late_job.id()).await, Err(RepoError::NotFound(_))),
        "no job row"
    );
    assert_eq!(event_count(&db).await, 1, "no event");
    assert_eq!(job_count(&db).await, 1);
    assert_eq!(
        db.get_trigger(original.id).await.unwrap(),
        after_first,
        "trigger unchanged"
    );
    assert!(db.triggers_for_job(late_job.id()).await.unwrap().is_empty());
}

pub async fn a_fire_with_a_taken_job_id_writes_nothing(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let original = trigger(1, TriggerKind::Single);
    db.insert_trigger(&original).await.unwrap();
    let existing = job(1, JobOrigin::Manual, at(1));
    db.insert_job(&existing, &[]).await.unwrap();

    let mut fired = original.clone();
    fired.fire(existing.id(), at(2));
    let err = db
        .record_fire(
            &fired,
            &job(1, JobOrigin::Trigger(original.id), at(2)),
            &[event(1, EventType::TriggerFired, at(2))],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert_eq!(
        db.get_trigger(original.id).await.unwrap(),
        original,
        "the trigger update rolled back"
    );
    assert_eq!(db.get_job(existing.id()).await.unwrap(), existing);
    assert_eq!(event_count(&db).await, 0);
}

/// Eight servers race to fire one trigger, round after round, each from the same read: every
/// round exactly one fire wins, and only winners leave a job and an event behind.
pub async fn concurrent_fires_of_one_version_succeed_exactly_once(db: SharedStore) {
    const TASKS: u128 = 8;
    const ROUNDS: u128 = 50;
    stored_workflow(&db, 1).await;
    let original = trigger(1, TriggerKind::Single);
    db.insert_trigger(&original).await.unwrap();

    let barrier = Arc::new(Barrier::new(TASKS as usize));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let db = db.clone();
        let barrier = barrier.clone();
        tasks.push(async move {
            let mut wins = Vec::new();
            for round in 0..ROUNDS {
                let current = db.get_trigger(trigger_id(1)).await.unwrap();
                // Everyone has read the same version before anyone fires.
                barrier.wait().await;
                let n = 1_000 + round * TASKS + task;
                let now = at(round as i64);
                let job = job(n, JobOrigin::Trigger(current.id), now);
                let mut fired = current.clone();
                fired.fire(job.id(), now);
                let won = match db
                    .record_fire(&fired, &job, &[event(n, EventType::TriggerFired, now)])
                    .await
                {
                    Ok(()) => true,
                    Err(RepoError::Conflict(_)) => false,
                    Err(other) => panic!("task {task}, round {round}: {other:?}"),
                };
                wins.push(won);
                // Every fire of this round has finished before anyone reads again.
                barrier.wait().await;
            }
            wins
        });
    }
    let mut winners_per_round = vec![0u32; ROUNDS as usize];
    for task in join_all(tasks).await {
        for (round, won) in task.into_iter().enumerate() {
            winners_per_round[round] += u32::from(won);
        }
    }
    assert!(
        winners_per_round.iter().all(|&w| w == 1),
        "winners per round: {winners_per_round:?}"
    );

    let stored = db.get_trigger(trigger_id(1)).await.unwrap();
    assert_eq!(stored.run_count, ROUNDS as u64);
    assert_eq!(stored.version, ROUNDS as i64);
    assert_eq!(
        job_count(&db).await,
        ROUNDS as u64,
        "one job per winning fire"
    );
    assert_eq!(
        event_count(&db).await,
        ROUNDS as u64,
        "one event per winning fire"
    );
}

/// A fire of `read` (the trigger as read) at `now`, with job and events numbered `n`: a
/// `job_created` and a `trigger_fired` event naming the job.
fn fire_of(read: &Trigger, n: u128, now: Timestamp) -> FireRecord {
    let job = job(n, JobOrigin::Trigger(read.id), now);
    let mut trigger = read.clone();
    trigger.fire(job.id(), now);
    let events = [EventType::JobCreated, EventType::TriggerFired]
        .into_iter()
        .enumerate()
        .map(|(k, event_type)| Event {
            job_id: Some(job.id()),
            ..event(n * 2 + k as u128, event_type, now)
        })
        .collect();
    FireRecord {
        trigger,
        job,
        events,
    }
}

/// The jobs the stored events name, one entry per event.
pub async fn jobs_of_events(db: &SharedStore) -> Vec<JobId> {
    let (events, _) = db
        .list_events(&EventFilter {
            limit: 10_000,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    let mut jobs: Vec<JobId> = events.into_iter().filter_map(|e| e.job_id).collect();
    jobs.sort();
    jobs
}

pub async fn a_batch_stores_every_fire_with_its_job_and_events(db: SharedStore) {
    stored_workflow(&db, 1).await;
    // Every optional field set on one of them, so each column goes through the batch's write.
    let mut read: Vec<Trigger> = (1..=3)
        .map(|n| trigger(n, cron("* * * * * *", None)))
        .collect();
    read.push(full(4, queue("invoices", 25)));
    read.push(full(5, cron("*/10 * * * * *", Some("Europe/Paris"))));
    for t in &read {
        db.insert_trigger(t).await.unwrap();
    }
    // Not in id order: the outcomes follow the fires' order, whatever order rows are locked in.
    let fires = vec![
        fire_of(&read[2], 3, at(5)),
        fire_of(&read[0], 1, at(5)),
        fire_of(&read[4], 5, micros(at(5), 7)),
        fire_of(&read[1], 2, at(5)),
        fire_of(&read[3], 4, micros(at(5), 7)),
    ];
    let outcomes = db.record_fires(&fires).await.unwrap();
    assert_eq!(outcomes.len(), 5);
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    for fire in &fires {
        assert_eq!(
            db.get_trigger(fire.trigger.id).await.unwrap(),
            Trigger {
                version: fire.trigger.version + 1,
                ..fire.trigger.clone()
            }
        );
        assert_eq!(db.get_job(fire.job.id()).await.unwrap(), fire.job);
    }
    let mut expected: Vec<JobId> = fires
        .iter()
        .flat_map(|f| [f.job.id(), f.job.id()])
        .collect();
    expected.sort();
    assert_eq!(jobs_of_events(&db).await, expected, "two events per fire");
    assert!(db.record_fires(&[]).await.unwrap().is_empty());
}

pub async fn a_stale_fire_in_a_batch_is_refused_alone(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let read: Vec<Trigger> = (1..=3).map(|n| trigger(n, TriggerKind::Single)).collect();
    for t in &read {
        db.insert_trigger(t).await.unwrap();
    }
    // Another server fired the second trigger after this one read it.
    let elsewhere = fire_of(&read[1], 20, at(1));
    db.record_fires(std::slice::from_ref(&elsewhere))
        .await
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    let after_elsewhere = db.get_trigger(read[1].id).await.unwrap();
    // And a trigger this server read was deleted meanwhile.
    let deleted = trigger(4, TriggerKind::Single);

    let fires = vec![
        fire_of(&read[0], 1, at(2)),
        fire_of(&read[1], 2, at(2)),
        fire_of(&deleted, 4, at(2)),
        fire_of(&read[2], 3, at(2)),
    ];
    let outcomes = db.record_fires(&fires).await.unwrap();
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert!(
        matches!(outcomes[1], Err(RepoError::Conflict(_))),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[2], Err(RepoError::Conflict(_))),
        "{outcomes:?}"
    );
    assert!(outcomes[3].is_ok(), "{outcomes:?}");

    assert_eq!(
        db.get_trigger(read[1].id).await.unwrap(),
        after_elsewhere,
        "the stale fire left the trigger as the other server stored it"
    );
    for refused in [&fires[1], &fires[2]] {
        assert!(
            matches!(
                db.get_job(refused.job.id()).await,
                Err(RepoError::NotFound(_))
            ),
            "no job of a refused fire"
        );
    }
    assert!(matches!(
        db.get_trigger(deleted.id).await,
        Err(RepoError::NotFound(_))
    ));
    for stored in [&fires[0], &fires[3]] {
        assert_eq!(db.get_job(stored.job.id()).await.unwrap(), stored.job);
        assert_eq!(
            db.get_trigger(stored.trigger.id)
                .await
                .unwrap()
                .current_job_id,
            Some(stored.job.id())
        );
    }
    let mut expected: Vec<JobId> = [&elsewhere, &fires[0], &fires[3]]
        .iter()
        .flat_map(|f| [f.job.id(), f.job.id()])
        .collect();
    expected.sort();
    assert_eq!(
        jobs_of_events(&db).await,
        expected,
        "no event of a refused fire"
    );
    assert_eq!(job_count(&db).await, 3);
}

pub async fn a_trigger_twice_in_one_batch_fires_once(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let read = trigger(1, TriggerKind::Single);
    db.insert_trigger(&read).await.unwrap();
    let fires = vec![fire_of(&read, 1, at(2)), fire_of(&read, 2, at(2))];
    let outcomes = db.record_fires(&fires).await.unwrap();
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert!(
        matches!(outcomes[1], Err(RepoError::Conflict(_))),
        "{outcomes:?}"
    );
    let stored = db.get_trigger(read.id).await.unwrap();
    assert_eq!(stored.current_job_id, Some(fires[0].job.id()));
    assert_eq!(stored.run_count, 1);
    assert_eq!(job_count(&db).await, 1);
    assert_eq!(event_count(&db).await, 2);
}

pub async fn a_batch_with_a_taken_job_id_writes_nothing(db: SharedStore) {
    stored_workflow(&db, 1).await;
    let read: Vec<Trigger> = (1..=2).map(|n| trigger(n, TriggerKind::Single)).collect();
    for t in &read {
        db.insert_trigger(t).await.unwrap();
    }
    let existing = job(2, JobOrigin::Manual, at(1));
    db.insert_job(&existing, &[]).await.unwrap();

    let fires = vec![fire_of(&read[0], 1, at(2)), fire_of(&read[1], 2, at(2))];
    let err = db.record_fires(&fires).await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    for t in &read {
        assert_eq!(&db.get_trigger(t.id).await.unwrap(), t, "rolled back");
    }
    assert_eq!(job_count(&db).await, 1);
    assert_eq!(event_count(&db).await, 0);
}

/// Four servers fire the same twenty triggers round after round, each from the same read and
/// each batch in an order of its own: every trigger fires exactly once per round, only winners
/// leave a job and events, and no batch fails (overlapping batches must not deadlock).
pub async fn concurrent_batches_fire_each_trigger_exactly_once(db: SharedStore) {
    const TASKS: u128 = 4;
    const TRIGGERS: u128 = 20;
    const ROUNDS: u128 = 15;
    stored_workflow(&db, 1).await;
    for n in 1..=TRIGGERS {
        db.insert_trigger(&trigger(n, cron("* * * * * *", None)))
            .await
            .unwrap();
    }

    let barrier = Arc::new(Barrier::new(TASKS as usize));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let db = db.clone();
        let barrier = barrier.clone();
        tasks.push(async move {
            let mut wins = Vec::new();
            for round in 0..ROUNDS {
                let mut read = Vec::new();
                for n in 1..=TRIGGERS {
                    read.push((n, db.get_trigger(trigger_id(n)).await.unwrap()));
                }
                // Each task its own order: rotated, and reversed for odd tasks.
                read.rotate_left((task * 5) as usize);
                if task % 2 == 1 {
                    read.reverse();
                }
                barrier.wait().await;
                let now = at(round as i64);
                let fires: Vec<FireRecord> = read
                    .iter()
                    .map(|(n, t)| fire_of(t, 1_000 + (round * TASKS + task) * TRIGGERS + n, now))
                    .collect();
                let outcomes = db.record_fires(&fires).await.unwrap_or_else(|e| {
                    panic!("task {task}, round {round}: the batch failed: {e:?}")
                });
                for (fire, outcome) in fires.iter().zip(outcomes) {
                    match outcome {
                        Ok(()) => wins.push((round, fire.trigger.id)),
                        Err(RepoError::Conflict(_)) => {}
                        Err(other) => panic!("task {task}, round {round}: {other:?}"),
                    }
                }
                barrier.wait().await;
            }
            wins
        });
    }
    let mut wins: Vec<(u128, TriggerId)> = Vec::new();
    for task in join_all(tasks).await {
        wins.extend(task);
    }
    wins.sort();
    let expected: Vec<(u128, TriggerId)> = (0..ROUNDS)
        .flat_map(|round| (1..=TRIGGERS).map(move |n| (round, trigger_id(n))))
        .collect();
    assert_eq!(wins, expected, "one winner per trigger and round");
    for n in 1..=TRIGGERS {
        let stored = db.get_trigger(trigger_id(n)).await.unwrap();
        assert_eq!(stored.run_count, ROUNDS as u64);
        assert_eq!(stored.version, ROUNDS as i64);
    }
    assert_eq!(job_count(&db).await, (ROUNDS * TRIGGERS) as u64);
    assert_eq!(event_count(&db).await, (2 * ROUNDS * TRIGGERS) as u64);
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_triggers {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(triggers [
    each_kind_reads_back_as_written,
    a_taken_name_or_id_conflicts,
    schedule_names_may_repeat,
    missing_triggers_are_not_found,
    triggers_are_deleted,
    triggers_list_oldest_first_by_filter,
    updates_are_optimistic,
    due_candidates_are_enabled_ones_that_may_fire_now,
    due_candidates_after_a_cursor_continue_the_due_ones_in_order,
    a_fire_stores_the_trigger_the_job_and_the_events,
    a_stale_fire_writes_nothing,
    a_fire_with_a_taken_job_id_writes_nothing,
    concurrent_fires_of_one_version_succeed_exactly_once,
    a_batch_stores_every_fire_with_its_job_and_events,
    a_stale_fire_in_a_batch_is_refused_alone,
    a_trigger_twice_in_one_batch_fires_once,
    a_batch_with_a_taken_job_id_writes_nothing,
    concurrent_batches_fire_each_trigger_exactly_once,
        ] $($backend => $fixture),+);
    };
}
