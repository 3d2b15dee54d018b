//! The schedule use cases against the in-memory trigger store, a mockall workflow repository and
//! a clock the test moves: the field rules, the name mapping, and the schedule math as the
//! engine lives it (daylight-saving changes, second-level crons, a missed window after downtime).

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use serde_json::json;
use time::Duration;
use time::macros::datetime;

use super::*;
use crate::error::FieldError;
use crate::ids::WorkflowId;
use crate::job::{JobOrigin, Priority};
use crate::ports::{MockQueueRepository, MockWorkflowRepository};
use crate::services::triggers::memory::{Counter, MemoryTriggers, TestClock};
use crate::trigger::ProcessStatus;
use crate::workflow::{ExecutionMode, Workflow, WorkflowGraph, WorkflowName};

const NOW: Timestamp = datetime!(2025-05-05 10:15:30 UTC);
const WORKFLOW: u128 = 0xAAAA;

fn workflow_id() -> WorkflowId {
    WorkflowId::from_uuid(uuid::Uuid::from_u128(WORKFLOW))
}

fn workflows() -> MockWorkflowRepository {
    let mut repo = MockWorkflowRepository::new();
    repo.expect_get_workflow().returning(|id| {
        if id == workflow_id() {
            Ok(Workflow::new(
                workflow_id(),
                WorkflowName::parse("Reports").unwrap(),
                None,
                WorkflowGraph::parse(json!({"nodes": [{"id": "start", "type": "StartNode"}]}))
                    .unwrap(),
                serde_json::Map::new(),
                NOW,
            )
            .unwrap())
        } else {
            Err(RepoError::NotFound("workflow"))
        }
    });
    repo
}

struct Fixture {
    service: ScheduleService,
    engine: TriggerService,
    store: Arc<MemoryTriggers>,
    clock: Arc<TestClock>,
}

impl Fixture {
    fn at(now: Timestamp) -> Self {
        let store = Arc::new(MemoryTriggers::default());
        let clock = Arc::new(TestClock(Mutex::new(now)));
        let ids: Arc<dyn IdGenerator> = Arc::new(Counter(AtomicU64::new(0)));
        let workflows: Arc<MockWorkflowRepository> = Arc::new(workflows());
        let service = ScheduleService::new(
            store.clone(),
            workflows.clone(),
            Arc::new(MockQueueRepository::new()),
            clock.clone(),
            ids.clone(),
        );
        let engine = TriggerService::new(
            store.clone(),
            workflows,
            Arc::new(MockQueueRepository::new()),
            clock.clone(),
            ids,
        );
        Self {
            service,
            engine,
            store,
            clock,
        }
    }

    fn new() -> Self {
        Self::at(NOW)
    }

    fn set_now(&self, now: Timestamp) {
        *self.clock.0.lock().unwrap() = now;
    }

    async fn create(&self, input: ScheduleInput) -> Trigger {
        self.service.create(input).await.unwrap()
    }

    /// One engine round at `now`, as a server's trigger task runs it; the fire times.
    async fn round(&self, now: Timestamp) -> usize {
        self.set_now(now);
        let round = self.engine.fire_due(now, 100).await.unwrap();
        assert!(round.failed.is_empty(), "{:?}", round.failed);
        round.fired.len()
    }

    /// The creation times of the jobs fired so far.
    fn fire_times(&self) -> Vec<Timestamp> {
        self.store
            .fires
            .lock()
            .unwrap()
            .iter()
            .map(|(job, _)| job.created_at())
            .collect()
    }
}

fn input(cron: &str) -> ScheduleInput {
    ScheduleInput {
        workflow_id: Some(workflow_id().to_string()),
        schedule_name: Some("Daily Report".into()),
        cron_expression: Some(cron.into()),
        ..ScheduleInput::default()
    }
}

fn in_zone(cron: &str, zone: &str) -> ScheduleInput {
    ScheduleInput {
        timezone: Some(zone.into()),
        ..input(cron)
    }
}

fn invalid_fields(err: ServiceError) -> Vec<String> {
    match err {
        ServiceError::Invalid(e) => e.errors.into_iter().map(|f| f.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

// ---- create ----

#[tokio::test]
async fn a_schedule_gets_the_documented_defaults() {
    let f = Fixture::new();
    let s = f.create(input("0 9 * * 1-5")).await;
    assert_eq!(s.kind.type_name(), TriggerType::Scheduled);
    assert_eq!(s.schedule_name(), "Daily Report");
    assert_eq!(s.name.as_str(), "Daily Report");
    assert_eq!(s.cron().unwrap().expression(), "0 9 * * 1-5");
    assert_eq!(s.cron().unwrap().timezone(), "UTC");
    assert!(s.enabled);
    assert_eq!(s.priority, Priority::default());
    assert_eq!(s.execution_mode, ExecutionMode::Lan);
    assert!(!s.is_blocking, "a schedule queues a job at every due time");
    assert!(s.metadata.is_empty());
    assert_eq!(s.process_status, ProcessStatus::Idle);
    // 2025-05-05 is a Monday, past 09:00: the next weekday 09:00 is Tuesday's.
    assert_eq!(s.next_run, Some(datetime!(2025-05-06 09:00 UTC)));
    assert_eq!((s.last_run, s.run_count, s.failure_count), (None, 0, 0));
    assert_eq!((s.created_at, s.updated_at), (NOW, NOW));
    assert_eq!(f.store.stored(s.id), s);
}

#[tokio::test]
async fn every_given_field_is_kept() {
    let f = Fixture::new();
    let s = f
        .create(ScheduleInput {
            enabled: Some(false),
            priority: Some(0),
            execution_mode: Some("internet".into()),
            is_blocking: Some(true),
            metadata: Some(serde_json::Map::from_iter([("team".into(), json!("ops"))])),
            ..in_zone("0 9 * * *", "Europe/Berlin")
        })
        .await;
    assert!(!s.enabled);
    assert_eq!(s.priority, Priority::HIGHEST);
    assert_eq!(s.execution_mode, ExecutionMode::Internet);
    assert!(s.is_blocking);
    assert_eq!(s.metadata["team"], "ops");
    assert_eq!(s.cron().unwrap().timezone(), "Europe/Berlin");
    // 09:00 in Berlin in May is 07:00 UTC; today's has passed.
    assert_eq!(s.next_run, Some(datetime!(2025-05-06 07:00 UTC)));
    assert_eq!(
        shown_next_run(&s),
        None,
        "a disabled schedule shows no next run"
    );
}

#[tokio::test]
async fn schedule_names_repeat_while_trigger_names_stay_unique() {
    let f = Fixture::new();
    let first = f.create(input("0 * * * *")).await;
    let second = f.create(input("0 * * * *")).await;
    assert_eq!(first.schedule_name(), "Daily Report");
    assert_eq!(second.schedule_name(), "Daily Report");
    assert_eq!(first.name.as_str(), "Daily Report");
    assert_eq!(
        second.name.as_str(),
        format!("Daily Report ({})", second.id)
    );
}

#[tokio::test]
async fn a_long_schedule_name_is_kept_whole_and_its_trigger_name_fits_100_characters() {
    let f = Fixture::new();
    let long = "é".repeat(255);
    let s = f
        .create(ScheduleInput {
            schedule_name: Some(long.clone()),
            ..input("0 * * * *")
        })
        .await;
    assert_eq!(s.schedule_name(), long);
    assert_eq!(s.name.as_str().chars().count(), 100);
    assert!(s.name.as_str().ends_with(&format!(" ({})", s.id)));
}

#[tokio::test]
async fn every_broken_rule_is_reported_at_once_and_nothing_is_stored() {
    let f = Fixture::new();
    let err = f
        .service
        .create(ScheduleInput {
            workflow_id: Some("not-a-uuid".into()),
            schedule_name: Some(String::new()),
            cron_expression: Some("61 * * * *".into()),
            timezone: Some("Mars/Olympus".into()),
            priority: Some(21),
            execution_mode: Some("LAN!".into()),
            ..ScheduleInput::default()
        })
        .await
        .unwrap_err();
    let mut fields = invalid_fields(err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "cron_expression",
            "execution_mode",
            "priority",
            "schedule_name",
            "timezone",
            "workflow_id"
        ]
    );
    assert!(f.store.rows.lock().unwrap().is_empty());
}

#[tokio::test]
async fn required_fields_are_named_unless_they_were_unreadable() {
    let f = Fixture::new();
    let err = f
        .service
        .create(ScheduleInput::default())
        .await
        .unwrap_err();
    assert_eq!(
        invalid_fields(err),
        ["workflow_id", "schedule_name", "cron_expression"]
    );
    let err = f
        .service
        .create(ScheduleInput {
            unreadable: vec![FieldError {
                field: "schedule_name".into(),
                message: "must be a string, not a number".into(),
            }],
            ..input("0 * * * *")
        })
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), ["schedule_name"]);
}

#[tokio::test]
async fn an_expression_that_never_fires_again_is_refused() {
    let f = Fixture::new();
    // 30 February never comes.
    let err = f.service.create(input("0 0 30 2 *")).await.unwrap_err();
    assert_eq!(invalid_fields(err), ["cron_expression"]);
}

#[tokio::test]
async fn an_unknown_workflow_is_not_found_after_the_fields_pass() {
    let f = Fixture::new();
    let err = f
        .service
        .create(ScheduleInput {
            workflow_id: Some(uuid::Uuid::from_u128(1).to_string()),
            ..input("0 * * * *")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::Repo(RepoError::NotFound("workflow"))),
        "{err:?}"
    );
    assert!(f.store.rows.lock().unwrap().is_empty());
}

// ---- read, list, enable, trigger, delete ----

#[tokio::test]
async fn triggers_of_other_types_are_not_schedules() {
    let f = Fixture::new();
    let single = Trigger::new(
        TriggerId::from_uuid(uuid::Uuid::from_u128(99)),
        TriggerName::parse_trigger("once").unwrap(),
        TriggerKind::Single,
        workflow_id(),
        true,
        Priority::default(),
        ExecutionMode::Lan,
        NOW,
    );
    f.store.put(single.clone());
    for err in [
        f.service.get(single.id).await.unwrap_err(),
        f.service.set_enabled(single.id, false).await.unwrap_err(),
        f.service.trigger_now(single.id).await.unwrap_err(),
        f.service.delete(single.id).await.unwrap_err(),
    ] {
        assert!(
            matches!(err, ServiceError::Repo(RepoError::NotFound("schedule"))),
            "{err:?}"
        );
    }
    assert!(
        f.service
            .list(ScheduleQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.store.stored(single.id), single, "untouched");
}

#[tokio::test]
async fn lists_filter_by_workflow_and_enabled_and_stop_at_the_limit() {
    let f = Fixture::new();
    let a = f.create(input("0 * * * *")).await;
    f.set_now(NOW + Duration::seconds(1));
    let b = f
        .create(ScheduleInput {
            enabled: Some(false),
            ..input("0 * * * *")
        })
        .await;
    let ids = |list: Vec<Trigger>| list.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let all = f.service.list(ScheduleQuery::default()).await.unwrap();
    assert_eq!(ids(all), [a.id, b.id]);
    let enabled = ScheduleQuery {
        enabled: Some(true),
        ..ScheduleQuery::default()
    };
    assert_eq!(ids(f.service.list(enabled).await.unwrap()), [a.id]);
    let one = ScheduleQuery {
        limit: Some(1),
        ..ScheduleQuery::default()
    };
    assert_eq!(ids(f.service.list(one).await.unwrap()), [a.id]);
    let other_workflow = ScheduleQuery {
        workflow_id: Some(uuid::Uuid::from_u128(5).to_string()),
        ..ScheduleQuery::default()
    };
    assert!(f.service.list(other_workflow).await.unwrap().is_empty());
}

#[tokio::test]
async fn list_parameters_are_checked_by_name() {
    let f = Fixture::new();
    for limit in [0, 1001, -1, i64::MAX] {
        let err = f
            .service
            .list(ScheduleQuery {
                limit: Some(limit),
                ..ScheduleQuery::default()
            })
            .await
            .unwrap_err();
        assert_eq!(invalid_fields(err), ["limit"], "{limit}");
    }
    let err = f
        .service
        .list(ScheduleQuery {
            workflow_id: Some("x".into()),
            limit: Some(0),
            ..ScheduleQuery::default()
        })
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), ["workflow_id", "limit"]);
    let filter = ScheduleQuery::default().check().unwrap();
    assert_eq!(filter.limit, DEFAULT_LIST_LIMIT);
    let filter = ScheduleQuery {
        limit: Some(1000),
        ..ScheduleQuery::default()
    }
    .check()
    .unwrap();
    assert_eq!(filter.limit, MAX_LIST_LIMIT);
}

#[tokio::test]
async fn re_enabling_starts_from_now_and_skips_what_was_missed() {
    let f = Fixture::new();
    let s = f.create(input("0 * * * *")).await;
    f.set_now(NOW + Duration::minutes(1));
    let off = f.service.set_enabled(s.id, false).await.unwrap();
    assert!(!off.enabled);
    assert_eq!(off.updated_at, NOW + Duration::minutes(1));
    let back = datetime!(2025-05-05 14:20 UTC);
    f.set_now(back);
    let on = f.service.set_enabled(s.id, true).await.unwrap();
    assert!(on.enabled);
    assert_eq!(on.next_run, Some(datetime!(2025-05-05 15:00 UTC)));
    assert_eq!(f.round(back).await, 0, "the hours missed while disabled");
    // Enabling an enabled schedule writes nothing.
    f.set_now(back + Duration::minutes(1));
    let again = f.service.set_enabled(s.id, true).await.unwrap();
    assert_eq!(again, on);
}

#[tokio::test]
async fn enabling_survives_a_race_with_a_fire() {
    let f = Fixture::new();
    let s = f.create(input("0 * * * *")).await;
    *f.store.lose_next_write.lock().unwrap() = true;
    let off = f.service.set_enabled(s.id, false).await.unwrap();
    assert!(!off.enabled);
    assert!(!f.store.stored(s.id).enabled);
}

#[tokio::test]
async fn triggering_now_starts_one_job_and_keeps_the_rhythm() {
    let f = Fixture::new();
    let s = f
        .create(ScheduleInput {
            enabled: Some(false),
            priority: Some(3),
            ..input("0 9 * * *")
        })
        .await;
    let later = NOW + Duration::minutes(2);
    f.set_now(later);
    let (after, job) = f.service.trigger_now(s.id).await.unwrap();
    assert_eq!(job.origin(), &JobOrigin::Trigger(s.id));
    assert_eq!(job.workflow_id(), workflow_id());
    assert_eq!(job.priority(), Priority::new(3).unwrap());
    assert_eq!(job.created_at(), later);
    assert_eq!(after.next_run, s.next_run, "the rhythm does not move");
    assert_eq!(after.last_run, Some(later));
    assert_eq!(after.run_count, 1);
    assert_eq!(after.current_job_id, Some(job.id()));
    assert_eq!(f.store.stored(s.id), after);
    let fires = f.store.fires.lock().unwrap();
    assert_eq!(fires.len(), 1);
    let kinds: Vec<_> = fires[0].1.iter().map(|e| e.event_type).collect();
    assert_eq!(
        kinds,
        [
            crate::event::EventType::JobCreated,
            crate::event::EventType::ScheduleTriggered
        ]
    );
}

#[tokio::test]
async fn triggering_now_retries_a_lost_race() {
    let f = Fixture::new();
    let s = f.create(input("0 9 * * *")).await;
    *f.store.lose_next_write.lock().unwrap() = true;
    let (after, _) = f.service.trigger_now(s.id).await.unwrap();
    assert_eq!(after.run_count, 1);
    assert_eq!(f.store.fires.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn deleting_removes_the_schedule() {
    let f = Fixture::new();
    let s = f.create(input("0 9 * * *")).await;
    f.service.delete(s.id).await.unwrap();
    let err = f.service.get(s.id).await.unwrap_err();
    assert!(matches!(
        err,
        ServiceError::Repo(RepoError::NotFound("schedule"))
    ));
    let err = f.service.delete(s.id).await.unwrap_err();
    assert!(matches!(
        err,
        ServiceError::Repo(RepoError::NotFound("schedule"))
    ));
}

// ---- the schedule math, as the engine lives it ----

/// Runs engine rounds every `step` from `from` to `to` (a server ticking), returning the fires.
async fn run_engine(f: &Fixture, from: Timestamp, to: Timestamp, step: Duration) -> Vec<Timestamp> {
    let mut now = from;
    while now <= to {
        f.round(now).await;
        now += step;
    }
    f.fire_times()
}

#[tokio::test]
async fn berlin_spring_forward_fires_the_skipped_0230_once_at_0300() {
    // 2025-03-30: Berlin's clocks jump from 02:00 CET to 03:00 CEST; 02:30 does not exist.
    let f = Fixture::at(datetime!(2025-03-28 12:00 UTC));
    f.create(in_zone("30 2 * * *", "Europe/Berlin")).await;
    let fires = run_engine(
        &f,
        datetime!(2025-03-28 12:00 UTC),
        datetime!(2025-03-31 12:00 UTC),
        Duration::minutes(10),
    )
    .await;
    assert_eq!(
        fires,
        [
            datetime!(2025-03-29 01:30 UTC), // 02:30 CET
            datetime!(2025-03-30 01:00 UTC), // 03:00 CEST, right after the gap
            datetime!(2025-03-31 00:30 UTC), // 02:30 CEST
        ]
    );
}

#[tokio::test]
async fn berlin_fall_back_fires_the_repeated_0230_once() {
    // 2025-10-26: Berlin's clocks go back from 03:00 CEST to 02:00 CET; 02:30 happens twice.
    let f = Fixture::at(datetime!(2025-10-24 12:00 UTC));
    f.create(in_zone("30 2 * * *", "Europe/Berlin")).await;
    let fires = run_engine(
        &f,
        datetime!(2025-10-24 12:00 UTC),
        datetime!(2025-10-27 12:00 UTC),
        Duration::minutes(10),
    )
    .await;
    assert_eq!(
        fires,
        [
            datetime!(2025-10-25 00:30 UTC), // 02:30 CEST
            datetime!(2025-10-26 00:30 UTC), // the first 02:30 (CEST); not again at 01:30 UTC
            datetime!(2025-10-27 01:30 UTC), // 02:30 CET
        ]
    );
}

#[tokio::test]
async fn a_six_field_cron_fires_on_its_seconds() {
    let start = datetime!(2025-01-01 00:00:00.100 UTC);
    let f = Fixture::at(start);
    let s = f.create(input("*/5 * * * * *")).await;
    assert_eq!(s.next_run, Some(datetime!(2025-01-01 00:00:05 UTC)));
    // A server ticking every 250 ms for 21 seconds.
    let fires = run_engine(
        &f,
        start,
        start + Duration::seconds(21),
        Duration::milliseconds(250),
    )
    .await;
    assert_eq!(
        fires,
        [
            datetime!(2025-01-01 00:00:05.100 UTC),
            datetime!(2025-01-01 00:00:10.100 UTC),
            datetime!(2025-01-01 00:00:15.100 UTC),
            datetime!(2025-01-01 00:00:20.100 UTC),
        ],
        "each due time fires once, at the first round at or after it"
    );
    let stored = f.store.stored(s.id);
    assert_eq!(stored.run_count, 4);
    assert_eq!(
        stored.last_run,
        Some(datetime!(2025-01-01 00:00:20.100 UTC))
    );
    assert_eq!(stored.next_run, Some(datetime!(2025-01-01 00:00:25 UTC)));
}

#[tokio::test]
async fn a_window_missed_during_downtime_fires_once_then_the_next_regular_time() {
    let f = Fixture::new();
    let s = f.create(input("*/5 * * * *")).await;
    assert_eq!(s.next_run, Some(datetime!(2025-05-05 10:20 UTC)));
    // The servers were down from before 10:20 until 13:02:10: 33 due times passed unfired.
    let back = datetime!(2025-05-05 13:02:10 UTC);
    assert_eq!(f.round(back).await, 1, "the missed window fires once");
    let after = f.store.stored(s.id);
    assert_eq!(after.next_run, Some(datetime!(2025-05-05 13:05 UTC)));
    assert_eq!(after.last_run, Some(back));
    assert_eq!(after.run_count, 1);
    for late in [1, 30, 120, 169] {
        assert_eq!(
            f.round(back + Duration::seconds(late)).await,
            0,
            "nothing more before the next regular time"
        );
    }
    assert_eq!(f.round(datetime!(2025-05-05 13:05 UTC)).await, 1);
    assert_eq!(f.fire_times(), [back, datetime!(2025-05-05 13:05 UTC)]);
}
