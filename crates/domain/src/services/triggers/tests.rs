//! The trigger use cases against an in-memory trigger store that keeps versions as the real
//! ones do, mockall workflows and queues, and a clock the test sets.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use serde_json::json;
use time::Duration;
use time::macros::datetime;

use super::memory::{Call, Counter, MemoryTriggers, TestClock};
use super::*;
use crate::ids::WorkflowId;
use crate::job::Priority;
use crate::ports::{MockQueueRepository, MockWorkflowRepository};
use crate::queue::QueueName;
use crate::trigger::TriggerType;
use crate::workflow::{Workflow, WorkflowGraph, WorkflowName};

const NOW: Timestamp = datetime!(2025-05-05 10:15:30 UTC);
const WORKFLOW: u128 = 0xAAAA;

fn workflow_id() -> WorkflowId {
    WorkflowId::from_uuid(uuid::Uuid::from_u128(WORKFLOW))
}

fn a_workflow() -> Workflow {
    Workflow::new(
        workflow_id(),
        WorkflowName::parse("Invoices").unwrap(),
        None,
        WorkflowGraph::parse(json!({"nodes": [{"id": "start", "type": "StartNode"}]})).unwrap(),
        serde_json::Map::new(),
        NOW,
    )
    .unwrap()
}

/// Workflows holding only [`a_workflow`].
fn workflows() -> MockWorkflowRepository {
    let mut repo = MockWorkflowRepository::new();
    repo.expect_get_workflow().returning(|id| {
        if id == workflow_id() {
            Ok(a_workflow())
        } else {
            Err(RepoError::NotFound("workflow"))
        }
    });
    repo
}

/// Queues where `invoices` holds `new_items` NEW items.
fn queues(new_items: u64) -> MockQueueRepository {
    let mut repo = MockQueueRepository::new();
    repo.expect_count_items().returning(move |queue, status| {
        assert_eq!(status, QueueItemStatus::New);
        Ok(if queue.as_str() == "invoices" {
            new_items
        } else {
            0
        })
    });
    repo
}

struct Fixture {
    service: TriggerService,
    store: Arc<MemoryTriggers>,
    clock: Arc<TestClock>,
}

impl Fixture {
    fn new() -> Self {
        Self::with(workflows(), queues(0))
    }

    fn with(workflows: MockWorkflowRepository, queues: MockQueueRepository) -> Self {
        let store = Arc::new(MemoryTriggers::default());
        let clock = Arc::new(TestClock(Mutex::new(NOW)));
        let service = TriggerService::new(
            store.clone(),
            Arc::new(workflows),
            Arc::new(queues),
            clock.clone(),
            Arc::new(Counter(AtomicU64::new(0))),
        );
        Self {
            service,
            store,
            clock,
        }
    }

    fn set_now(&self, now: Timestamp) {
        *self.clock.0.lock().unwrap() = now;
    }

    async fn create(&self, input: TriggerInput) -> Trigger {
        self.service.create(input).await.unwrap()
    }

    async fn fire(&self, now: Timestamp) -> FireRound {
        self.service.fire_due(now, 100).await.unwrap()
    }

    fn fired_jobs(&self) -> Vec<Job> {
        self.store
            .fires
            .lock()
            .unwrap()
            .iter()
            .map(|(job, _)| job.clone())
            .collect()
    }
}

fn input(name: &str, trigger_type: &str) -> TriggerInput {
    TriggerInput {
        trigger_name: Some(name.into()),
        trigger_type: Some(trigger_type.into()),
        workflow_id: Some(workflow_id().to_string()),
        ..TriggerInput::default()
    }
}

fn scheduled(name: &str, cron: &str) -> TriggerInput {
    TriggerInput {
        cron_expression: Some(cron.into()),
        ..input(name, "SCHEDULED")
    }
}

fn queue_input(name: &str, min: Option<i64>) -> TriggerInput {
    TriggerInput {
        queue_name: Some("invoices".into()),
        min_batch_size: min,
        ..input(name, "QUEUE")
    }
}

fn invalid_fields(err: ServiceError) -> Vec<String> {
    match err {
        ServiceError::Invalid(e) => e.errors.into_iter().map(|f| f.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn job_with(id: JobId, status: JobStatus) -> Job {
    let mut job = NewJob {
        workflow_id: workflow_id(),
        workflow_name: WorkflowName::parse("Invoices").unwrap(),
        priority: Priority::default(),
        execution_mode: ExecutionMode::Lan,
        input: serde_json::Map::new(),
        origin: JobOrigin::Manual,
        max_retries: 3,
    }
    .into_job(id, NOW);
    job.edit(|r| r.status = status);
    job
}

// ---- create ----

#[tokio::test]
async fn a_single_trigger_gets_the_documented_defaults() {
    let f = Fixture::new();
    let t = f.create(input("nightly", "single")).await;
    assert_eq!(t.kind, TriggerKind::Single);
    assert_eq!(t.process_status, ProcessStatus::Idle);
    assert!(t.enabled);
    assert!(t.is_blocking);
    assert_eq!(t.priority, Priority::default());
    assert_eq!(t.next_run, None);
    assert_eq!(t.created_at, NOW);
    assert_eq!(f.store.stored(t.id), t);
}

#[tokio::test]
async fn every_given_field_is_stored() {
    let f = Fixture::new();
    let mut args = serde_json::Map::new();
    args.insert("case".into(), json!(7));
    let t = f
        .create(TriggerInput {
            process_status: Some("paused".into()),
            enabled: Some(false),
            priority: Some(0),
            is_blocking: Some(false),
            execution_mode: Some("internet".into()),
            process_args: Some(args.clone()),
            next_run: Some(NOW + Duration::hours(1)),
            ..input("later", "SINGLE")
        })
        .await;
    assert_eq!(t.process_status, ProcessStatus::Paused);
    assert!(!t.enabled);
    assert_eq!(t.priority, Priority::HIGHEST);
    assert!(!t.is_blocking);
    assert_eq!(t.execution_mode, ExecutionMode::Internet);
    assert_eq!(t.process_args, args);
    assert_eq!(t.next_run, Some(NOW + Duration::hours(1)));
}

#[tokio::test]
async fn a_scheduled_trigger_takes_its_next_run_from_its_cron_in_its_zone() {
    let f = Fixture::new();
    let t = f
        .create(TriggerInput {
            timezone: Some("Europe/Paris".into()),
            ..scheduled("morning", "0 9 * * *")
        })
        .await;
    let cron = t.cron().unwrap();
    assert_eq!(cron.expression(), "0 9 * * *");
    assert_eq!(cron.timezone(), "Europe/Paris");
    // 09:00 in Paris in May is 07:00 UTC; 10:15 UTC has passed it, so tomorrow.
    assert_eq!(t.next_run, Some(datetime!(2025-05-06 07:00 UTC)));
}

#[tokio::test]
async fn a_queue_trigger_needs_a_queue_and_defaults_to_a_batch_of_one() {
    let f = Fixture::new();
    let t = f.create(queue_input("inbox", None)).await;
    assert_eq!(
        t.kind,
        TriggerKind::Queue {
            queue_name: QueueName::parse("invoices").unwrap(),
            min_batch_size: 1
        }
    );
    let err = f
        .service
        .create(input("no-queue", "QUEUE"))
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), ["queue_name"]);
}

#[tokio::test]
async fn missing_required_fields_are_all_reported() {
    let f = Fixture::new();
    let err = f.service.create(TriggerInput::default()).await.unwrap_err();
    assert_eq!(invalid_fields(err), ["trigger_name", "type", "workflow_id"]);
    assert!(f.store.rows.lock().unwrap().is_empty());
}

#[tokio::test]
async fn every_broken_rule_is_reported_at_once() {
    let f = Fixture::new();
    let err = f
        .service
        .create(TriggerInput {
            trigger_name: Some("n".repeat(101)),
            trigger_type: Some("CRON".into()),
            workflow_id: Some("not-a-uuid".into()),
            cron_expression: Some("every day".into()),
            timezone: Some("Mars/Olympus".into()),
            queue_name: Some(String::new()),
            min_batch_size: Some(0),
            process_status: Some("SLEEPING".into()),
            priority: Some(21),
            execution_mode: Some("cloud".into()),
            ..TriggerInput::default()
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
            "min_batch_size",
            "priority",
            "process_status",
            "queue_name",
            "timezone",
            "trigger_name",
            "type",
            "workflow_id"
        ]
    );
}

#[tokio::test]
async fn fields_of_another_type_are_refused() {
    let f = Fixture::new();
    let err = f
        .service
        .create(TriggerInput {
            cron_expression: Some("0 * * * *".into()),
            timezone: Some("UTC".into()),
            queue_name: Some("invoices".into()),
            min_batch_size: Some(2),
            ..input("single", "SINGLE")
        })
        .await
        .unwrap_err();
    assert_eq!(
        invalid_fields(err),
        [
            "cron_expression",
            "timezone",
            "queue_name",
            "min_batch_size"
        ]
    );
    let err = f
        .service
        .create(TriggerInput {
            queue_name: Some("invoices".into()),
            next_run: Some(NOW),
            ..scheduled("sched", "0 * * * *")
        })
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), ["queue_name", "next_run"]);
    let err = f
        .service
        .create(TriggerInput {
            cron_expression: Some("0 * * * *".into()),
            ..queue_input("queue", Some(1))
        })
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), ["cron_expression"]);
}

#[tokio::test]
async fn a_scheduled_trigger_needs_a_cron_expression() {
    let f = Fixture::new();
    let err = f
        .service
        .create(input("sched", "SCHEDULED"))
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), ["cron_expression"]);
}

#[tokio::test]
async fn an_unknown_workflow_is_a_broken_rule_of_workflow_id() {
    let f = Fixture::new();
    let err = f
        .service
        .create(TriggerInput {
            workflow_id: Some(uuid::Uuid::from_u128(1).to_string()),
            priority: Some(-1),
            ..input("orphan", "SINGLE")
        })
        .await
        .unwrap_err();
    // The workflow is looked up once the other rules are judged, so it is reported last.
    assert_eq!(invalid_fields(err), ["priority", "workflow_id"]);
}

#[tokio::test]
async fn unreadable_fields_are_reported_with_the_rules_and_not_as_missing() {
    let f = Fixture::new();
    let err = f
        .service
        .create(TriggerInput {
            trigger_name: None,
            priority: Some(99),
            unreadable: vec![FieldError {
                field: "trigger_name".into(),
                message: "must be a string, not a number".into(),
            }],
            ..input("ignored", "SINGLE")
        })
        .await
        .unwrap_err();
    match err {
        ServiceError::Invalid(e) => {
            assert_eq!(e.errors.len(), 2);
            assert_eq!(e.errors[0].field, "trigger_name");
            assert_eq!(e.errors[0].message, "must be a string, not a number");
            assert_eq!(e.errors[1].field, "priority");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_taken_name_is_a_conflict() {
    let f = Fixture::new();
    f.create(input("twice", "SINGLE")).await;
    let err = f
        .service
        .create(input("twice", "SINGLE"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::Repo(RepoError::Conflict(_))),
        "{err:?}"
    );
}

// ---- update ----

#[tokio::test]
async fn an_update_changes_only_the_fields_given() {
    let f = Fixture::new();
    let t = f.create(queue_input("inbox", Some(3))).await;
    f.set_now(NOW + Duration::minutes(1));
    let changed = f
        .service
        .update(
            t.id,
            TriggerInput {
                priority: Some(2),
                min_batch_size: Some(5),
                ..TriggerInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.priority.value(), 2);
    assert_eq!(
        changed.kind,
        TriggerKind::Queue {
            queue_name: QueueName::parse("invoices").unwrap(),
            min_batch_size: 5
        }
    );
    assert_eq!(changed.name, t.name);
    assert_eq!(changed.updated_at, NOW + Duration::minutes(1));
    assert_eq!(changed.created_at, NOW);
    assert_eq!(changed.version, t.version + 1);
    assert_eq!(f.store.stored(t.id), changed);
}

#[tokio::test]
async fn a_new_time_zone_keeps_the_expression_and_moves_the_next_run() {
    let f = Fixture::new();
    let t = f.create(scheduled("morning", "0 9 * * *")).await;
    assert_eq!(t.next_run, Some(datetime!(2025-05-06 09:00 UTC)));
    let changed = f
        .service
        .update(
            t.id,
            TriggerInput {
                timezone: Some("America/New_York".into()),
                ..TriggerInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.cron().unwrap().expression(), "0 9 * * *");
    assert_eq!(changed.next_run, Some(datetime!(2025-05-05 13:00 UTC)));
}

#[tokio::test]
async fn changing_the_type_asks_for_the_new_types_fields_and_drops_the_old_ones() {
    let f = Fixture::new();
    let t = f.create(queue_input("inbox", Some(3))).await;
    let err = f
        .service
        .update(
            t.id,
            TriggerInput {
                trigger_type: Some("SCHEDULED".into()),
                ..TriggerInput::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), ["cron_expression"]);
    let changed = f
        .service
        .update(
            t.id,
            TriggerInput {
                trigger_type: Some("SCHEDULED".into()),
                cron_expression: Some("30 * * * *".into()),
                ..TriggerInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.kind.type_name(), TriggerType::Scheduled);
    assert_eq!(changed.next_run, Some(datetime!(2025-05-05 10:30 UTC)));
    let single = f
        .service
        .update(
            t.id,
            TriggerInput {
                trigger_type: Some("SINGLE".into()),
                ..TriggerInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(single.kind, TriggerKind::Single);
    assert_eq!(single.next_run, None);
}

#[tokio::test]
async fn an_update_refuses_fields_of_the_triggers_type_and_writes_nothing() {
    let f = Fixture::new();
    let t = f.create(input("single", "SINGLE")).await;
    let err = f
        .service
        .update(
            t.id,
            TriggerInput {
                cron_expression: Some("0 * * * *".into()),
                priority: Some(3),
                ..TriggerInput::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), ["cron_expression"]);
    assert_eq!(f.store.stored(t.id), t);
}

#[tokio::test]
async fn renaming_onto_another_triggers_name_is_a_conflict() {
    let f = Fixture::new();
    f.create(input("first", "SINGLE")).await;
    let second = f.create(input("second", "SINGLE")).await;
    let err = f
        .service
        .update(
            second.id,
            TriggerInput {
                trigger_name: Some("first".into()),
                ..TriggerInput::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::Repo(RepoError::Conflict(_))),
        "{err:?}"
    );
    // Keeping its own name is no conflict.
    f.service
        .update(
            second.id,
            TriggerInput {
                trigger_name: Some("second".into()),
                ..TriggerInput::default()
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_update_of_an_unknown_trigger_is_not_found() {
    let f = Fixture::new();
    let err = f
        .service
        .update(
            TriggerId::from_uuid(uuid::Uuid::from_u128(404)),
            TriggerInput::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Repo(RepoError::NotFound(_))));
}

#[tokio::test]
async fn an_update_that_loses_a_race_starts_over_from_the_stored_trigger() {
    let f = Fixture::new();
    let t = f.create(input("racy", "SINGLE")).await;
    *f.store.lose_next_write.lock().unwrap() = true;
    let changed = f
        .service
        .update(
            t.id,
            TriggerInput {
                priority: Some(1),
                ..TriggerInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.priority.value(), 1);
    assert_eq!(changed.version, t.version + 2);
}

#[tokio::test]
async fn re_enabling_a_schedule_starts_from_now() {
    let f = Fixture::new();
    let t = f.create(scheduled("hourly", "0 * * * *")).await;
    f.service
        .update(
            t.id,
            TriggerInput {
                enabled: Some(false),
                ..TriggerInput::default()
            },
        )
        .await
        .unwrap();
    f.set_now(datetime!(2025-05-05 15:42 UTC));
    let back = f
        .service
        .update(
            t.id,
            TriggerInput {
                enabled: Some(true),
                ..TriggerInput::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(back.next_run, Some(datetime!(2025-05-05 16:00 UTC)));
}

#[tokio::test]
async fn deleting_removes_the_trigger_and_an_unknown_one_is_not_found() {
    let f = Fixture::new();
    let t = f.create(input("gone", "SINGLE")).await;
    f.service.delete(t.id).await.unwrap();
    let err = f.service.delete(t.id).await.unwrap_err();
    assert!(matches!(err, ServiceError::Repo(RepoError::NotFound(_))));
}

// ---- set_status_by_name ----

fn status_change(name: &str, status: Option<&str>) -> StatusChange {
    StatusChange {
        trigger_name: Some(name.into()),
        process_status: status.map(Into::into),
        unreadable: Vec::new(),
    }
}

#[tokio::test]
async fn the_status_of_a_single_trigger_is_set_by_name_idle_by_default() {
    let f = Fixture::new();
    let t = f
        .create(TriggerInput {
            process_status: Some("DONE".into()),
            ..input("MyAutomationTrigger", "SINGLE")
        })
        .await;
    let changed = f
        .service
        .set_status_by_name(status_change("MyAutomationTrigger", None))
        .await
        .unwrap();
    assert_eq!(changed.process_status, ProcessStatus::Idle);
    assert_eq!(f.store.stored(t.id).process_status, ProcessStatus::Idle);
    let changed = f
        .service
        .set_status_by_name(status_change("MyAutomationTrigger", Some("running")))
        .await
        .unwrap();
    assert_eq!(changed.process_status, ProcessStatus::Running);
}

#[tokio::test]
async fn an_unknown_or_non_single_trigger_is_not_found() {
    let f = Fixture::new();
    let t = f.create(scheduled("sched", "0 * * * *")).await;
    f.create(queue_input("queue", None)).await;
    for name in ["nobody", "sched", "queue"] {
        let err = f
            .service
            .set_status_by_name(status_change(name, Some("IDLE")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ServiceError::Repo(RepoError::NotFound(_))),
            "{name}"
        );
    }
    assert_eq!(f.store.stored(t.id), t);
}

#[tokio::test]
async fn a_status_change_is_validated_before_anything_is_looked_up() {
    let f = Fixture::new();
    let err = f
        .service
        .set_status_by_name(StatusChange::default())
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), ["trigger_name"]);
    let err = f
        .service
        .set_status_by_name(status_change("", Some("ASLEEP")))
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), ["trigger_name", "process_status"]);
    let err = f
        .service
        .set_status_by_name(StatusChange {
            trigger_name: None,
            process_status: Some("nope".into()),
            unreadable: vec![FieldError {
                field: "trigger_name".into(),
                message: "must be a string".into(),
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(invalid_fields(err), ["trigger_name", "process_status"]);
}

// ---- fire_due ----

#[tokio::test]
async fn an_idle_single_trigger_fires_once_and_setting_it_idle_re_arms_it() {
    let f = Fixture::new();
    let t = f
        .create(TriggerInput {
            priority: Some(4),
            ..input("once", "SINGLE")
        })
        .await;
    let round = f.fire(NOW).await;
    assert_eq!(round.fired.len(), 1);
    let (trigger_id, job_id) = round.fired[0];
    assert_eq!(trigger_id, t.id);
    let stored = f.store.stored(t.id);
    assert_eq!(stored.process_status, ProcessStatus::Running);
    assert_eq!(stored.current_job_id, Some(job_id));
    assert_eq!(stored.run_count, 1);
    assert_eq!(stored.last_run, Some(NOW));

    let jobs = f.fired_jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id(), job_id);
    assert_eq!(jobs[0].workflow_id(), workflow_id());
    assert_eq!(jobs[0].workflow_name().as_str(), "Invoices");
    assert_eq!(jobs[0].status(), JobStatus::Pending);
    assert_eq!(jobs[0].priority().value(), 4);
    assert_eq!(jobs[0].origin(), &JobOrigin::Trigger(t.id));

    assert!(f.fire(NOW + Duration::seconds(1)).await.fired.is_empty());
    f.service
        .set_status_by_name(status_change("once", Some("IDLE")))
        .await
        .unwrap();
    assert_eq!(f.fire(NOW + Duration::seconds(2)).await.fired.len(), 1);
    assert_eq!(f.fired_jobs().len(), 2);
    assert_eq!(f.store.stored(t.id).run_count, 2);
}

#[tokio::test]
async fn a_fire_records_the_job_created_and_trigger_fired_events() {
    let f = Fixture::new();
    f.create(input("events", "SINGLE")).await;
    f.fire(NOW).await;
    let fires = f.store.fires.lock().unwrap();
    let (job, events) = &fires[0];
    let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::JobCreated, EventType::TriggerFired]);
    assert!(events.iter().all(|e| e.job_id == Some(job.id())));
    assert_eq!(events[1].data["trigger_name"], "events");
    assert_eq!(events[1].data["trigger_type"], "SINGLE");
}

#[tokio::test]
async fn a_single_trigger_with_a_future_next_run_waits_for_it() {
    let f = Fixture::new();
    f.create(TriggerInput {
        next_run: Some(NOW + Duration::minutes(5)),
        ..input("later", "SINGLE")
    })
    .await;
    assert!(f.fire(NOW).await.fired.is_empty());
    assert_eq!(f.fire(NOW + Duration::minutes(5)).await.fired.len(), 1);
}

#[tokio::test]
async fn a_queue_trigger_fires_at_min_batch_size_new_items() {
    let f = Fixture::with(workflows(), queues(4));
    f.create(queue_input("five", Some(5))).await;
    let four = f.create(queue_input("four", Some(4))).await;
    let round = f.fire(NOW).await;
    assert_eq!(round.fired.len(), 1);
    assert_eq!(round.fired[0].0, four.id);
}

#[tokio::test]
async fn a_scheduled_trigger_fires_when_its_time_comes_and_moves_on() {
    let f = Fixture::new();
    let t = f.create(scheduled("hourly", "0 * * * *")).await;
    assert!(f.fire(NOW).await.fired.is_empty());
    let due = datetime!(2025-05-05 11:00 UTC);
    assert_eq!(f.fire(due).await.fired.len(), 1);
    let stored = f.store.stored(t.id);
    assert_eq!(stored.next_run, Some(datetime!(2025-05-05 12:00 UTC)));
    let fires = f.store.fires.lock().unwrap();
    assert_eq!(fires[0].1[1].event_type, EventType::ScheduleTriggered);
}

#[tokio::test]
async fn disabled_and_busy_triggers_do_not_fire() {
    let f = Fixture::with(workflows(), queues(10));
    f.create(TriggerInput {
        enabled: Some(false),
        ..input("off", "SINGLE")
    })
    .await;
    f.create(TriggerInput {
        process_status: Some("RUNNING".into()),
        ..queue_input("busy", None)
    })
    .await;
    f.create(TriggerInput {
        process_status: Some("DONE".into()),
        ..input("done", "SINGLE")
    })
    .await;
    assert!(f.fire(NOW).await.fired.is_empty());
    assert!(f.fired_jobs().is_empty());
}

#[tokio::test]
async fn a_fire_another_server_won_is_skipped_without_a_job() {
    let f = Fixture::new();
    f.create(input("contested", "SINGLE")).await;
    *f.store.lose_next_write.lock().unwrap() = true;
    let round = f.fire(NOW).await;
    assert!(round.fired.is_empty());
    assert_eq!(round.lost_races, 1);
    assert!(f.fired_jobs().is_empty());
}

#[tokio::test]
async fn a_trigger_whose_workflow_is_gone_is_reported_and_the_others_still_fire() {
    let f = Fixture::new();
    let orphan = f.create(input("orphan", "SINGLE")).await;
    let mut gone = f.store.stored(orphan.id);
    gone.workflow_id = WorkflowId::from_uuid(uuid::Uuid::from_u128(1));
    f.store.put(gone);
    let fine = f.create(input("fine", "SINGLE")).await;
    let round = f.fire(NOW).await;
    assert_eq!(round.orphaned, [orphan.id]);
    assert_eq!(round.fired.len(), 1);
    assert_eq!(round.fired[0].0, fine.id);
}

/// A SINGLE trigger stored directly (not through `create`, which reads the workflow).
fn stored_single(f: &Fixture, n: u128, workflow: WorkflowId) -> TriggerId {
    let id = TriggerId::from_uuid(uuid::Uuid::from_u128(n));
    f.store.put(Trigger::new(
        id,
        TriggerName::parse_trigger(format!("t{n}")).unwrap(),
        TriggerKind::Single,
        workflow,
        true,
        Priority::default(),
        ExecutionMode::Lan,
        NOW,
    ));
    id
}

#[tokio::test]
async fn a_storage_failure_on_one_workflow_does_not_stop_the_round() {
    let unreachable = WorkflowId::from_uuid(uuid::Uuid::from_u128(0xBBBB));
    let mut workflows = MockWorkflowRepository::new();
    workflows.expect_get_workflow().returning(move |id| {
        if id == workflow_id() {
            Ok(a_workflow())
        } else {
            Err(RepoError::Unavailable("pool timed out".into()))
        }
    });
    let f = Fixture::with(workflows, queues(0));
    let fine = stored_single(&f, 1, workflow_id());
    let failing = stored_single(&f, 2, unreachable);
    let round = f.fire(NOW).await;
    assert_eq!(round.fired.len(), 1);
    assert_eq!(round.fired[0].0, fine);
    assert_eq!(round.failed.len(), 1);
    assert_eq!(round.failed[0].0, failing);
    assert!(matches!(round.failed[0].1, RepoError::Unavailable(_)));
}

#[tokio::test]
async fn a_rounds_workflows_are_read_once_each_and_its_fires_stored_together() {
    let mut workflows = MockWorkflowRepository::new();
    workflows
        .expect_get_workflow()
        .times(1)
        .returning(|_| Ok(a_workflow()));
    let f = Fixture::with(workflows, queues(0));
    let ids: Vec<TriggerId> = (1..=3)
        .map(|n| stored_single(&f, n, workflow_id()))
        .collect();
    let round = f.fire(NOW).await;
    assert_eq!(round.candidates, 3);
    let fired: Vec<TriggerId> = round.fired.iter().map(|(t, _)| *t).collect();
    assert_eq!(fired, ids, "in candidate order");
    assert_eq!(
        *f.store.batches.lock().unwrap(),
        [3],
        "one write for the round"
    );
    for (trigger, job) in &round.fired {
        assert_eq!(f.store.stored(*trigger).current_job_id, Some(*job));
    }
}

#[tokio::test]
async fn a_lost_race_among_winners_costs_only_its_own_fire() {
    let f = Fixture::new();
    let ids: Vec<TriggerId> = (1..=3)
        .map(|n| stored_single(&f, n, workflow_id()))
        .collect();
    f.store.fired_elsewhere.lock().unwrap().insert(ids[1]);
    let before = f.store.stored(ids[1]);

    let round = f.fire(NOW).await;
    let fired: Vec<TriggerId> = round.fired.iter().map(|(t, _)| *t).collect();
    assert_eq!(fired, [ids[0], ids[2]]);
    assert_eq!(round.lost_races, 1);
    assert!(round.failed.is_empty() && round.orphaned.is_empty());
    assert_eq!(*f.store.batches.lock().unwrap(), [3]);
    let jobs = f.fired_jobs();
    assert_eq!(jobs.len(), 2, "no job for the lost race");
    assert!(
        jobs.iter()
            .all(|j| j.origin() != &JobOrigin::Trigger(ids[1]))
    );
    let loser = f.store.stored(ids[1]);
    assert_eq!(
        loser.run_count, before.run_count,
        "the winner's fire is not ours"
    );
    assert_eq!(loser.current_job_id, None);
}

#[tokio::test]
async fn an_orphaned_trigger_among_winners_is_reported_and_the_others_fire_together() {
    let f = Fixture::new();
    let first = stored_single(&f, 1, workflow_id());
    let orphan = stored_single(&f, 2, WorkflowId::from_uuid(uuid::Uuid::from_u128(1)));
    let last = stored_single(&f, 3, workflow_id());
    let round = f.fire(NOW).await;
    assert_eq!(round.orphaned, [orphan]);
    let fired: Vec<TriggerId> = round.fired.iter().map(|(t, _)| *t).collect();
    assert_eq!(fired, [first, last]);
    assert_eq!(
        *f.store.batches.lock().unwrap(),
        [2],
        "the orphan is not written"
    );
    assert_eq!(f.store.stored(orphan).run_count, 0);
}

#[tokio::test]
async fn a_batch_that_fails_whole_reports_each_fire_and_the_next_round_fires_them() {
    let f = Fixture::new();
    let ids: Vec<TriggerId> = (1..=2)
        .map(|n| stored_single(&f, n, workflow_id()))
        .collect();
    *f.store.fail_next_batch.lock().unwrap() =
        Some(RepoError::Unavailable("connection lost".into()));
    let round = f.fire(NOW).await;
    assert!(round.fired.is_empty());
    let failed: Vec<TriggerId> = round.failed.iter().map(|(t, _)| *t).collect();
    assert_eq!(failed, ids);
    assert!(
        round
            .failed
            .iter()
            .all(|(_, e)| matches!(e, RepoError::Unavailable(_)))
    );
    assert!(f.fired_jobs().is_empty());

    let again = f.fire(NOW + Duration::seconds(1)).await;
    assert_eq!(again.fired.len(), 2);
}

#[tokio::test]
async fn a_large_round_is_stored_in_batches_of_at_most_fires_per_write() {
    let f = Fixture::new();
    let n = FIRES_PER_WRITE as u128 + 1;
    for i in 1..=n {
        stored_single(&f, i, workflow_id());
    }
    let round = f.service.fire_due(NOW, 1_000).await.unwrap();
    assert_eq!(round.candidates, FIRES_PER_WRITE + 1);
    assert_eq!(round.fired.len(), FIRES_PER_WRITE + 1);
    assert_eq!(*f.store.batches.lock().unwrap(), [FIRES_PER_WRITE, 1]);
}

#[tokio::test]
async fn queue_triggers_of_one_queue_count_its_items_once_per_round() {
    let mut queues = MockQueueRepository::new();
    queues.expect_count_items().times(1).returning(|_, _| Ok(3));
    let f = Fixture::with(workflows(), queues);
    f.create(queue_input("three", Some(3))).await;
    f.create(queue_input("four", Some(4))).await;
    let round = f.fire(NOW).await;
    assert_eq!(round.fired.len(), 1);
}

// ---- job_finished ----

async fn fired_trigger(f: &Fixture, trigger: TriggerInput) -> (Trigger, JobId) {
    let t = f.create(trigger).await;
    let round = f.fire(NOW + Duration::hours(2)).await;
    let job = round
        .fired
        .iter()
        .find(|(id, _)| *id == t.id)
        .map(|(_, job)| *job)
        .unwrap();
    (t, job)
}

#[tokio::test]
async fn a_completed_job_leaves_a_single_trigger_done_and_a_schedule_idle() {
    let f = Fixture::new();
    let (single, job) = fired_trigger(&f, input("single", "SINGLE")).await;
    let changed = f
        .service
        .job_finished(&job_with(job, JobStatus::Completed))
        .await
        .unwrap();
    assert_eq!(changed.len(), 1);
    let stored = f.store.stored(single.id);
    assert_eq!(stored.process_status, ProcessStatus::Done);
    assert_eq!(stored.current_job_id, None);

    let (sched, job) = fired_trigger(&f, scheduled("sched", "0 * * * *")).await;
    f.service
        .job_finished(&job_with(job, JobStatus::Completed))
        .await
        .unwrap();
    assert_eq!(f.store.stored(sched.id).process_status, ProcessStatus::Idle);
}

#[tokio::test]
async fn a_failed_job_counts_a_failure_and_a_cancelled_one_kills() {
    let f = Fixture::with(workflows(), queues(1));
    let (failing, job) = fired_trigger(&f, input("failing", "SINGLE")).await;
    f.service
        .job_finished(&job_with(job, JobStatus::Failed))
        .await
        .unwrap();
    let stored = f.store.stored(failing.id);
    assert_eq!(stored.process_status, ProcessStatus::Failed);
    assert_eq!(stored.failure_count, 1);

    let (killed, job) = fired_trigger(&f, queue_input("killed", None)).await;
    f.service
        .job_finished(&job_with(job, JobStatus::Cancelled))
        .await
        .unwrap();
    let stored = f.store.stored(killed.id);
    assert_eq!(stored.process_status, ProcessStatus::Killed);
    assert_eq!(stored.failure_count, 0);
}

#[tokio::test]
async fn a_job_still_running_changes_nothing() {
    let f = Fixture::new();
    let (t, job) = fired_trigger(&f, input("running", "SINGLE")).await;
    let before = f.store.stored(t.id);
    for status in [JobStatus::Pending, JobStatus::Claimed, JobStatus::Running] {
        let changed = f
            .service
            .job_finished(&job_with(job, status))
            .await
            .unwrap();
        assert!(changed.is_empty());
    }
    assert_eq!(f.store.stored(t.id), before);
}

#[tokio::test]
async fn a_job_end_that_loses_a_race_is_applied_once_from_a_fresh_read() {
    let f = Fixture::new();
    let (t, job) = fired_trigger(&f, input("racy", "SINGLE")).await;
    *f.store.lose_next_write.lock().unwrap() = true;
    f.service
        .job_finished(&job_with(job, JobStatus::Failed))
        .await
        .unwrap();
    let stored = f.store.stored(t.id);
    assert_eq!(stored.process_status, ProcessStatus::Failed);
    assert_eq!(stored.failure_count, 1);
    // Reported twice (two servers, or a retried report): counted once.
    let again = f
        .service
        .job_finished(&job_with(job, JobStatus::Failed))
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(f.store.stored(t.id).failure_count, 1);
}

#[tokio::test]
async fn a_job_no_trigger_started_changes_nothing() {
    let f = Fixture::new();
    let changed = f
        .service
        .job_finished(&job_with(
            JobId::from_uuid(uuid::Uuid::from_u128(77)),
            JobStatus::Completed,
        ))
        .await
        .unwrap();
    assert!(changed.is_empty());
}

// ---- fire_round ----

/// A SINGLE trigger due since `seconds_ago`, stored directly.
fn overdue_single(f: &Fixture, n: u128, seconds_ago: i64) -> TriggerId {
    let id = stored_single(f, n, workflow_id());
    let mut trigger = f.store.stored(id);
    trigger.next_run = Some(NOW - Duration::seconds(seconds_ago));
    f.store.put(trigger);
    id
}

fn cursor_at(f: &Fixture, id: TriggerId) -> DueCursor {
    let trigger = f.store.stored(id);
    DueCursor {
        next_run: trigger.next_run.unwrap(),
        id,
    }
}

fn fired_ids(report: &RoundReport) -> Vec<TriggerId> {
    report.fires.fired.iter().map(|(t, _)| *t).collect()
}

#[tokio::test]
async fn a_round_reads_the_next_batch_while_the_last_one_is_stored() {
    let f = Fixture::new();
    let ids: Vec<TriggerId> = (1..=5).map(|n| overdue_single(&f, n, 10)).collect();
    let after = |i: usize| Call::ReadAfter(cursor_at(&f, ids[i]));
    let (second, fourth) = (after(1), after(3));

    let report = f.service.fire_round(2, Duration::seconds(1)).await;
    assert!(report.read_error.is_none());
    assert_eq!(
        fired_ids(&report),
        ids,
        "each once, the longest overdue first"
    );
    assert_eq!(report.batches, 3);
    assert_eq!(
        *f.store.calls.lock().unwrap(),
        [
            Call::Read,
            second,
            Call::Store(2),
            fourth,
            Call::Store(2),
            Call::Store(1)
        ],
        "each batch's successor is read before the batch is stored; the short last one ends it"
    );
    assert_eq!(f.fired_jobs().len(), 5);
}

#[tokio::test]
async fn a_full_batch_without_due_times_is_stored_before_the_next_fresh_read() {
    let f = Fixture::new();
    let ids: Vec<TriggerId> = (1..=3)
        .map(|n| stored_single(&f, n, workflow_id()))
        .collect();
    let report = f.service.fire_round(2, Duration::seconds(1)).await;
    assert_eq!(fired_ids(&report), ids);
    assert_eq!(
        *f.store.calls.lock().unwrap(),
        [Call::Read, Call::Store(2), Call::Read, Call::Store(1)],
        "a trigger without a due time has no place in the order to read on from"
    );
}

#[tokio::test]
async fn a_failed_read_ends_the_round_after_the_batch_being_stored() {
    let f = Fixture::new();
    let ids: Vec<TriggerId> = (1..=3).map(|n| overdue_single(&f, n, 10)).collect();
    *f.store.fail_next_read_after.lock().unwrap() =
        Some(RepoError::Unavailable("connection lost".into()));
    let report = f.service.fire_round(2, Duration::seconds(1)).await;
    assert!(matches!(
        report.read_error,
        Some(ServiceError::Repo(RepoError::Unavailable(_)))
    ));
    assert_eq!(
        fired_ids(&report),
        ids[..2],
        "the batch read before is stored"
    );
    assert_eq!(f.store.stored(ids[2]).run_count, 0);
}

#[tokio::test]
async fn a_round_out_of_time_stops_after_storing_its_batch() {
    let f = Fixture::new();
    for n in 1..=3 {
        overdue_single(&f, n, 10);
    }
    let report = f.service.fire_round(2, Duration::ZERO).await;
    assert_eq!(report.fires.fired.len(), 2);
    assert_eq!(*f.store.calls.lock().unwrap(), [Call::Read, Call::Store(2)]);
}
