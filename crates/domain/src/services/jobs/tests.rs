//! The job use cases against mocked ports: what is written, with which events, and how a lost
//! version race is settled.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::agent::{Agent, AgentView};
use crate::ports::{
    MockJobRepository, MockMessageRepository, MockQueueRepository, MockRobotRepository,
    MockTriggerRepository, MockWorkflowRepository,
};
use crate::robot::{Robot, RobotLoad, RobotStatus};
use crate::workflow::{WorkflowGraph, WorkflowName};

const NOW: Timestamp = datetime!(2025-06-01 12:00 UTC);
const LEASE: u32 = 60;

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        NOW
    }
}

struct Counter(AtomicU64);

impl IdGenerator for Counter {
    fn new_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::SeqCst) + 1000))
    }
}

/// Keeps every reported follow-up as `step`.
#[derive(Default)]
struct Recorded(Mutex<Vec<&'static str>>);

impl FollowUpLog for Recorded {
    fn follow_up_failed(&self, _: JobId, step: &'static str, _: &ServiceError) {
        self.0.lock().unwrap().push(step);
    }
}

/// The mocks a test sets expectations on; unset ones refuse any call, except that no trigger
/// started any job.
struct Mocks {
    jobs: MockJobRepository,
    workflows: MockWorkflowRepository,
    messages: MockMessageRepository,
    robots: MockRobotRepository,
    triggers: MockTriggerRepository,
}

impl Default for Mocks {
    fn default() -> Self {
        let mut triggers = MockTriggerRepository::new();
        triggers
            .expect_triggers_for_job()
            .returning(|_| Ok(Vec::new()));
        Self {
            jobs: MockJobRepository::new(),
            workflows: MockWorkflowRepository::new(),
            messages: MockMessageRepository::new(),
            robots: MockRobotRepository::new(),
            triggers,
        }
    }
}

impl Mocks {
    /// Robots without a record: the bookkeeping of their current job is skipped.
    fn without_robot_records(mut self) -> Self {
        self.robots
            .expect_get_robot()
            .returning(|_| Err(RepoError::NotFound("robot")));
        self
    }

    fn service(self) -> (JobService, Arc<Recorded>) {
        let follow_ups = Arc::new(Recorded::default());
        let ports = JobPorts {
            jobs: Arc::new(self.jobs),
            workflows: Arc::new(self.workflows),
            messages: Arc::new(self.messages),
            robots: Arc::new(self.robots),
            triggers: Arc::new(self.triggers),
            queues: Arc::new(MockQueueRepository::new()),
        };
        let service = JobService::new(
            ports,
            Arc::new(FixedClock),
            Arc::new(Counter(AtomicU64::new(0))),
            follow_ups.clone(),
            LEASE,
        );
        (service, follow_ups)
    }
}

fn robot() -> RobotId {
    RobotId::parse("robot-a").unwrap()
}

fn other_robot() -> RobotId {
    RobotId::parse("robot-b").unwrap()
}

fn workflow_id() -> WorkflowId {
    WorkflowId::from_uuid(uuid::Uuid::from_u128(7))
}

fn job_id() -> JobId {
    JobId::from_uuid(uuid::Uuid::from_u128(1))
}

fn workflow() -> Workflow {
    let graph = WorkflowGraph::parse(json!({
        "nodes": [{"id": "fetch", "type": "HttpRequest", "config": {"keep_messages_for": 60}}],
        "connections": []
    }))
    .unwrap();
    Workflow::new(
        workflow_id(),
        WorkflowName::parse("nightly").unwrap(),
        None,
        graph,
        Map::new(),
        NOW,
    )
    .unwrap()
}

fn agent_id() -> AgentId {
    AgentId::from_uuid(uuid::Uuid::from_u128(70))
}

fn agents() -> Vec<AgentView> {
    vec![AgentView {
        agent: Agent {
            id: agent_id(),
            workflow_id: workflow_id(),
            node_id: "fetch".to_owned(),
            name: "fetch".to_owned(),
            agent_type: "HttpRequest".to_owned(),
            disabled: false,
            sources: Vec::new(),
        },
        messages_count: 0,
    }]
}

fn pending() -> Job {
    NewJob {
        workflow_id: workflow_id(),
        workflow_name: WorkflowName::parse("nightly").unwrap(),
        priority: Priority::default(),
        execution_mode: ExecutionMode::Lan,
        input: Map::new(),
        origin: JobOrigin::Manual,
        max_retries: NewJob::DEFAULT_MAX_RETRIES,
    }
    .into_job(job_id(), NOW - time::Duration::minutes(5))
}

fn claimed() -> Job {
    let mut job = pending();
    job.claim(robot(), NOW - time::Duration::minutes(1), LEASE)
        .unwrap();
    job.edit(|r| r.version = 1);
    job
}

fn running() -> Job {
    let mut job = claimed();
    job.start(&robot(), NOW - time::Duration::seconds(50))
        .unwrap();
    job.edit(|r| r.version = 2);
    job
}

fn hard_cancelled() -> Job {
    let mut job = running();
    job.cancel(CancelMode::Hard, NOW).unwrap();
    job.edit(|r| r.version = 3);
    job
}

fn report(messages: Vec<Value>) -> NodeReport {
    NodeReport {
        node_id: "fetch".to_owned(),
        status: "completed".to_owned(),
        duration_ms: 120,
        error: None,
        messages,
    }
}

/// `update_job` stores what it is given with the version bumped.
fn stores(jobs: &mut MockJobRepository) {
    jobs.expect_update_job().returning(|job, _| {
        let mut stored = job.clone();
        stored.edit(|r| r.version += 1);
        Ok(stored)
    });
}

fn event_types(events: &[Event]) -> Vec<EventType> {
    events.iter().map(|e| e.event_type).collect()
}

// ---- run_now ----

#[tokio::test]
async fn running_a_workflow_queues_a_pending_job_with_a_created_event() {
    let mut mocks = Mocks::default();
    mocks
        .workflows
        .expect_get_workflow()
        .returning(|_| Ok(workflow()));
    mocks
        .jobs
        .expect_insert_job()
        .withf(|job, events| {
            job.status() == JobStatus::Pending
                && job.workflow_name().as_str() == "nightly"
                && job.priority() == Priority::new(3).unwrap()
                && job.input().get("x") == Some(&json!(1))
                && event_types(events) == [EventType::JobCreated]
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let (service, _) = mocks.service();
    let mut input = Map::new();
    input.insert("x".to_owned(), json!(1));
    let job = service
        .run_now(RunRequest {
            workflow_id: workflow_id(),
            priority: Priority::new(3).unwrap(),
            execution_mode: ExecutionMode::Internet,
            input,
        })
        .await
        .unwrap();
    assert_eq!(job.created_at(), NOW);
    assert_eq!(job.execution_mode(), ExecutionMode::Internet);
}

#[tokio::test]
async fn running_an_unknown_workflow_is_not_found_and_stores_nothing() {
    let mut mocks = Mocks::default();
    mocks
        .workflows
        .expect_get_workflow()
        .returning(|_| Err(RepoError::NotFound("workflow")));
    mocks.jobs.expect_insert_job().times(0);
    let (service, _) = mocks.service();
    let err = service
        .run_now(RunRequest {
            workflow_id: workflow_id(),
            priority: Priority::default(),
            execution_mode: ExecutionMode::Lan,
            input: Map::new(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Repo(RepoError::NotFound(_))));
}

// ---- version races ----

#[tokio::test]
async fn a_cancel_that_loses_a_race_to_the_robot_is_judged_against_the_newer_job() {
    let mut mocks = Mocks::default().without_robot_records();
    let reads = AtomicU64::new(0);
    mocks.jobs.expect_get_job().returning(move |_| {
        Ok(if reads.fetch_add(1, Ordering::SeqCst) == 0 {
            running()
        } else {
            let mut done = running();
            done.complete(&robot(), None, NOW).unwrap();
            done.edit(|r| r.version = 3);
            done
        })
    });
    mocks
        .jobs
        .expect_update_job()
        .times(1)
        .returning(|_, _| Err(RepoError::Conflict("changed".into())));
    let (service, _) = mocks.service();
    let err = service
        .cancel(job_id(), CancelMode::Hard)
        .await
        .unwrap_err();
    let ServiceError::Transition(err) = err else {
        panic!("{err:?}")
    };
    assert_eq!(err.state, "completed");
}

#[tokio::test]
async fn a_completion_racing_a_hard_cancel_is_refused_on_the_retry() {
    let mut mocks = Mocks::default();
    let reads = AtomicU64::new(0);
    mocks.jobs.expect_get_job().returning(move |_| {
        Ok(if reads.fetch_add(1, Ordering::SeqCst) == 0 {
            running()
        } else {
            hard_cancelled()
        })
    });
    mocks
        .jobs
        .expect_update_job()
        .times(1)
        .returning(|_, _| Err(RepoError::Conflict("changed".into())));
    let (service, _) = mocks.service();
    let err = service
        .complete(job_id(), &robot(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Transition(_)), "{err:?}");
}

#[tokio::test]
async fn a_race_lost_every_time_ends_in_a_conflict() {
    let mut mocks = Mocks::default();
    mocks.jobs.expect_get_job().returning(|_| Ok(running()));
    mocks
        .jobs
        .expect_update_job()
        .times(UPDATE_ATTEMPTS)
        .returning(|_, _| Err(RepoError::Conflict("changed".into())));
    let (service, _) = mocks.service();
    let err = service.renew(job_id(), &robot()).await.unwrap_err();
    assert!(matches!(err, ServiceError::Repo(RepoError::Conflict(_))));
}

// ---- the robot's calls ----

#[tokio::test]
async fn starting_a_claimed_job_records_a_started_event_and_renews_the_lease() {
    let mut mocks = Mocks::default();
    mocks.jobs.expect_get_job().returning(|_| Ok(claimed()));
    mocks
        .jobs
        .expect_update_job()
        .withf(|job, events| {
            job.status() == JobStatus::Running
                && job.started_at() == Some(NOW)
                && job.lease_expires_at() == Some(NOW + time::Duration::seconds(60))
                && event_types(events) == [EventType::JobStarted]
        })
        .times(1)
        .returning(|job, _| Ok(job.clone()));
    let (service, _) = mocks.service();
    service.start(job_id(), &robot()).await.unwrap();
}

#[tokio::test]
async fn renewing_writes_no_event_since_the_status_stays() {
    let mut mocks = Mocks::default();
    mocks.jobs.expect_get_job().returning(|_| Ok(running()));
    mocks
        .jobs
        .expect_update_job()
        .withf(|job, events| {
            events.is_empty() && job.lease_expires_at() == Some(NOW + time::Duration::seconds(60))
        })
        .times(1)
        .returning(|job, _| Ok(job.clone()));
    let (service, _) = mocks.service();
    let job = service.renew(job_id(), &robot()).await.unwrap();
    assert_eq!(cancel_signal(&job), None);
}

#[tokio::test]
async fn a_call_about_another_robots_job_is_a_transition_error() {
    let mut mocks = Mocks::default();
    mocks.jobs.expect_get_job().returning(|_| Ok(running()));
    mocks.jobs.expect_update_job().times(0);
    let (service, _) = mocks.service();
    for result in [
        service.renew(job_id(), &other_robot()).await,
        service.start(job_id(), &other_robot()).await,
        service.complete(job_id(), &other_robot(), None).await,
        service.release(job_id(), &other_robot()).await,
        service
            .progress(job_id(), &other_robot(), report(vec![]))
            .await,
    ] {
        assert!(
            matches!(result, Err(ServiceError::Transition(_))),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn progress_stores_the_messages_under_the_nodes_agent_and_records_the_node() {
    let mut mocks = Mocks::default();
    mocks.jobs.expect_get_job().returning(|_| Ok(running()));
    mocks
        .workflows
        .expect_get_workflow()
        .returning(|_| Ok(workflow()));
    mocks
        .workflows
        .expect_list_agents()
        .returning(|_, _| Ok(agents()));
    mocks
        .messages
        .expect_insert_messages()
        .withf(|messages| {
            messages.len() == 2
                && messages.iter().all(|m| {
                    m.agent_id == agent_id()
                        && m.job_id == Some(job_id())
                        && m.expires_at == Some(NOW + time::Duration::seconds(60))
                })
                && messages[0].payload == json!({"n": 1})
        })
        .times(1)
        .returning(|_| Ok(()));
    mocks
        .jobs
        .expect_update_job()
        .withf(|job, events| {
            events.is_empty()
                && job.node_executions().len() == 1
                && job.node_executions()[0].node_id == "fetch"
                && job.node_executions()[0].duration_ms == 120
        })
        .times(1)
        .returning(|job, _| Ok(job.clone()));
    let (service, _) = mocks.service();
    service
        .progress(
            job_id(),
            &robot(),
            report(vec![json!({"n": 1}), json!({"n": 2})]),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn progress_on_a_hard_cancelled_job_answers_hard_and_writes_nothing() {
    let mut mocks = Mocks::default();
    mocks
        .jobs
        .expect_get_job()
        .returning(|_| Ok(hard_cancelled()));
    mocks.jobs.expect_update_job().times(0);
    mocks.messages.expect_insert_messages().times(0);
    let (service, _) = mocks.service();
    let job = service
        .progress(job_id(), &robot(), report(vec![json!(1)]))
        .await
        .unwrap();
    assert_eq!(cancel_signal(&job), Some(CancelMode::Hard));
    let job = service.renew(job_id(), &robot()).await.unwrap();
    assert_eq!(cancel_signal(&job), Some(CancelMode::Hard));
}

#[tokio::test]
async fn messages_of_a_node_the_workflow_lost_are_dropped_as_a_follow_up() {
    let mut mocks = Mocks::default();
    mocks.jobs.expect_get_job().returning(|_| Ok(running()));
    mocks
        .workflows
        .expect_get_workflow()
        .returning(|_| Ok(workflow()));
    mocks.messages.expect_insert_messages().times(0);
    stores(&mut mocks.jobs);
    let (service, follow_ups) = mocks.service();
    let mut gone = report(vec![json!(1)]);
    gone.node_id = "removed".to_owned();
    service.progress(job_id(), &robot(), gone).await.unwrap();
    assert_eq!(follow_ups.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_oversized_message_is_refused_by_index_before_anything_is_stored() {
    let mocks = Mocks::default();
    let (service, _) = mocks.service();
    let big = json!("x".repeat(Message::MAX_PAYLOAD_BYTES));
    let err = service
        .progress(job_id(), &robot(), report(vec![json!(1), big]))
        .await
        .unwrap_err();
    let ServiceError::Invalid(err) = err else {
        panic!("{err:?}")
    };
    assert_eq!(err.errors[0].field, "messages[1]");
}

#[tokio::test]
async fn a_long_node_error_is_truncated_rather_than_refused() {
    let mut mocks = Mocks::default();
    mocks.jobs.expect_get_job().returning(|_| Ok(running()));
    mocks
        .jobs
        .expect_update_job()
        .withf(|job, _| {
            job.node_executions()[0]
                .error_message
                .as_ref()
                .is_some_and(|e| e.chars().count() == Job::MAX_ERROR_MESSAGE)
        })
        .times(1)
        .returning(|job, _| Ok(job.clone()));
    let (service, _) = mocks.service();
    let mut failed = report(vec![]);
    failed.status = "failed".to_owned();
    failed.error = Some("é".repeat(5000));
    service.progress(job_id(), &robot(), failed).await.unwrap();
}

#[tokio::test]
async fn finishing_clears_the_robots_current_job() {
    let mut mocks = Mocks::default();
    mocks.jobs.expect_get_job().returning(|_| Ok(running()));
    mocks
        .jobs
        .expect_update_job()
        .withf(|job, events| {
            job.status() == JobStatus::Completed && event_types(events) == [EventType::JobCompleted]
        })
        .returning(|job, _| Ok(job.clone()));
    mocks.robots.expect_get_robot().returning(|_| {
        let mut record = Robot::register(robot(), None, None, NOW).unwrap();
        record.heartbeat(RobotLoad::default(), NOW);
        record.take_job(job_id());
        Ok(record)
    });
    mocks
        .robots
        .expect_save_robot()
        .withf(|record, _| {
            record.current_job_id().is_none() && record.status() == RobotStatus::Idle
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let (service, _) = mocks.service();
    service
        .complete(job_id(), &robot(), Some(json!({"rows": 3})))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failing_robot_record_update_never_fails_the_robots_call() {
    let mut mocks = Mocks::default();
    mocks.jobs.expect_get_job().returning(|_| Ok(running()));
    stores(&mut mocks.jobs);
    mocks
        .robots
        .expect_get_robot()
        .returning(|_| Err(RepoError::Unavailable("down".into())));
    let (service, follow_ups) = mocks.service();
    service
        .fail(job_id(), &robot(), "E".into(), "m".into())
        .await
        .unwrap();
    assert_eq!(follow_ups.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn acknowledging_a_cancel_twice_answers_the_cancelled_job() {
    let mut mocks = Mocks::default();
    mocks
        .jobs
        .expect_get_job()
        .returning(|_| Ok(hard_cancelled()));
    mocks.jobs.expect_update_job().times(0);
    let (service, _) = mocks.service();
    let job = service.cancelled(job_id(), &robot()).await.unwrap();
    assert_eq!(job.status(), JobStatus::Cancelled);
}

// ---- claim ----

#[tokio::test]
async fn a_claim_hands_out_the_job_with_its_workflow_and_marks_the_robot_busy() {
    let mut mocks = Mocks::default();
    mocks
        .jobs
        .expect_claim_jobs()
        .withf(|r, now, lease, limit| {
            *r == robot() && *now == NOW && *lease == LEASE && *limit == 1
        })
        .returning(|_, _, _, _| Ok(vec![claimed()]));
    mocks
        .workflows
        .expect_get_workflow()
        .returning(|_| Ok(workflow()));
    mocks
        .robots
        .expect_get_robot()
        .returning(|_| Ok(Robot::register(robot(), None, None, NOW).unwrap()));
    mocks
        .robots
        .expect_save_robot()
        .withf(|record, _| record.current_job_id() == Some(job_id()))
        .times(1)
        .returning(|_, _| Ok(()));
    let (service, _) = mocks.service();
    let claimed = service.claim(&robot()).await.unwrap().unwrap();
    assert_eq!(claimed.job.id(), job_id());
    assert_eq!(claimed.workflow.id, workflow_id());
}

#[tokio::test]
async fn a_claim_with_nothing_pending_is_none() {
    let mut mocks = Mocks::default();
    mocks
        .jobs
        .expect_claim_jobs()
        .returning(|_, _, _, _| Ok(vec![]));
    let (service, _) = mocks.service();
    assert_eq!(service.claim(&robot()).await.unwrap(), None);
}

#[tokio::test]
async fn a_claimed_job_whose_workflow_is_gone_is_failed_and_the_next_one_handed_out() {
    let mut mocks = Mocks::default().without_robot_records();
    let claims = AtomicU64::new(0);
    mocks.jobs.expect_claim_jobs().returning(move |_, _, _, _| {
        let mut job = claimed();
        if claims.fetch_add(1, Ordering::SeqCst) == 0 {
            job.edit(|r| r.workflow_id = WorkflowId::from_uuid(uuid::Uuid::from_u128(99)));
        } else {
            job.edit(|r| r.id = JobId::from_uuid(uuid::Uuid::from_u128(2)));
        }
        Ok(vec![job])
    });
    mocks.jobs.expect_get_job().returning(|_| {
        let mut job = claimed();
        job.edit(|r| r.workflow_id = WorkflowId::from_uuid(uuid::Uuid::from_u128(99)));
        Ok(job)
    });
    mocks.workflows.expect_get_workflow().returning(|id| {
        if id == workflow_id() {
            Ok(workflow())
        } else {
            Err(RepoError::NotFound("workflow"))
        }
    });
    mocks
        .jobs
        .expect_update_job()
        .withf(|job, events| {
            job.status() == JobStatus::Failed
                && job.error_type() == Some(WORKFLOW_MISSING)
                && event_types(events) == [EventType::JobFailed]
        })
        .times(1)
        .returning(|job, _| Ok(job.clone()));
    let (service, _) = mocks.service();
    let claimed = service.claim(&robot()).await.unwrap().unwrap();
    assert_eq!(claimed.job.id(), JobId::from_uuid(uuid::Uuid::from_u128(2)));
}

// ---- the engine's rounds ----

#[tokio::test]
async fn an_expired_lease_requeues_the_job_with_a_requeued_event() {
    let mut mocks = Mocks::default().without_robot_records();
    mocks.jobs.expect_expired_job_leases().returning(|_, _| {
        let mut job = running();
        job.edit(|r| r.lease_expires_at = Some(NOW - time::Duration::seconds(1)));
        Ok(vec![job])
    });
    mocks
        .jobs
        .expect_update_job()
        .withf(|job, events| {
            job.status() == JobStatus::Pending
                && job.retry_count() == 1
                && event_types(events) == [EventType::JobRequeued]
        })
        .times(1)
        .returning(|job, _| Ok(job.clone()));
    let (service, _) = mocks.service();
    assert_eq!(service.recover_expired_leases(100).await.unwrap(), 1);
}

#[tokio::test]
async fn a_lease_recovered_elsewhere_first_is_skipped() {
    let mut mocks = Mocks::default();
    mocks.jobs.expect_expired_job_leases().returning(|_, _| {
        let mut job = running();
        job.edit(|r| r.lease_expires_at = Some(NOW - time::Duration::seconds(1)));
        Ok(vec![job])
    });
    mocks
        .jobs
        .expect_update_job()
        .returning(|_, _| Err(RepoError::Conflict("changed".into())));
    let (service, _) = mocks.service();
    assert_eq!(service.recover_expired_leases(100).await.unwrap(), 0);
}

#[tokio::test]
async fn silent_robots_are_marked_offline_with_an_event() {
    let mut mocks = Mocks::default();
    let seen = NOW - time::Duration::seconds(120);
    mocks
        .robots
        .expect_stale_robots()
        .withf(|before| *before == NOW - time::Duration::seconds(90))
        .returning(move |_| {
            let mut record = Robot::register(robot(), None, None, NOW).unwrap();
            record.heartbeat(RobotLoad::default(), seen);
            Ok(vec![record])
        });
    mocks
        .robots
        .expect_mark_robot_offline()
        .withf(move |id, heartbeat, events| {
            *id == robot()
                && *heartbeat == Some(seen)
                && event_types(events) == [EventType::RobotOffline]
                && events[0].robot_id == Some(robot())
        })
        .times(1)
        .returning(|_, _, _| Ok(true));
    let (service, _) = mocks.service();
    let marked = service
        .mark_silent_robots_offline(time::Duration::seconds(90))
        .await
        .unwrap();
    assert_eq!(marked, 1);
}

// ---- the trigger hook ----

#[tokio::test]
async fn only_a_job_a_trigger_started_looks_for_its_trigger() {
    let mut mocks = Mocks::default().without_robot_records();
    mocks.triggers = MockTriggerRepository::new();
    let from_trigger = JobId::from_uuid(uuid::Uuid::from_u128(2));
    mocks
        .triggers
        .expect_triggers_for_job()
        .withf(move |id| *id == from_trigger)
        .times(1)
        .returning(|_| Ok(Vec::new()));
    mocks.jobs.expect_get_job().returning(move |id| {
        let mut job = running();
        if id == from_trigger {
            job.edit(|r| r.id = from_trigger);
            job.edit(|r| {
                r.origin =
                    JobOrigin::Trigger(crate::ids::TriggerId::from_uuid(uuid::Uuid::from_u128(9)))
            });
        }
        Ok(job)
    });
    stores(&mut mocks.jobs);
    let (service, _) = mocks.service();
    // A manual job: no look-up (the mock refuses any call but the trigger's job's).
    service.complete(job_id(), &robot(), None).await.unwrap();
    service
        .complete(from_trigger, &robot(), None)
        .await
        .unwrap();
}

// ---- batches ----

fn nth_id(n: u128) -> JobId {
    JobId::from_uuid(uuid::Uuid::from_u128(100 + n))
}

/// Running job `n` of robot-a at version 2.
fn nth_running(n: u128) -> Job {
    let mut job = running();
    job.edit(|r| r.id = nth_id(n));
    job
}

#[tokio::test]
async fn a_batched_claim_reads_each_workflow_once_and_shows_the_last_job() {
    let mut mocks = Mocks::default();
    mocks
        .jobs
        .expect_claim_jobs()
        .withf(|r, _, lease, limit| *r == robot() && *lease == LEASE && *limit == 3)
        .returning(|_, _, _, _| {
            Ok((1..=3)
                .map(|n| {
                    let mut job = claimed();
                    job.edit(|r| r.id = nth_id(n));
                    job
                })
                .collect())
        });
    mocks
        .workflows
        .expect_get_workflow()
        .times(1)
        .returning(|_| Ok(workflow()));
    mocks
        .robots
        .expect_get_robot()
        .returning(|_| Ok(Robot::register(robot(), None, None, NOW).unwrap()));
    mocks
        .robots
        .expect_save_robot()
        .withf(|record, _| record.current_job_id() == Some(nth_id(3)))
        .times(1)
        .returning(|_, _| Ok(()));
    let (service, _) = mocks.service();
    let batch = service.claim_many(&robot(), 3).await.unwrap();
    let ids: Vec<JobId> = batch.iter().map(|c| c.job.id()).collect();
    assert_eq!(ids, [nth_id(1), nth_id(2), nth_id(3)]);
    assert!(Arc::ptr_eq(&batch[0].workflow, &batch[2].workflow));
}

#[tokio::test]
async fn a_batched_claim_of_nothing_touches_no_robot_record() {
    let mut mocks = Mocks::default();
    mocks
        .jobs
        .expect_claim_jobs()
        .returning(|_, _, _, _| Ok(vec![]));
    let (service, _) = mocks.service();
    assert!(service.claim_many(&robot(), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_batched_report_stores_the_held_jobs_in_one_write_and_refuses_the_rest_alone() {
    let mut mocks = Mocks::default();
    mocks.jobs.expect_get_jobs().times(1).returning(|_| {
        let mut foreign = nth_running(2);
        foreign.edit(|r| r.robot_id = Some(other_robot()));
        Ok(vec![nth_running(1), foreign, nth_running(4)])
    });
    mocks
        .jobs
        .expect_update_jobs_each()
        .times(1)
        .returning(|changes| {
            let stored: Vec<Job> = changes.iter().map(|c| c.job.clone()).collect();
            assert_eq!(
                stored.iter().map(|j| j.id()).collect::<Vec<_>>(),
                [nth_id(1), nth_id(4)]
            );
            assert_eq!(event_types(&changes[0].events), [EventType::JobCompleted]);
            assert_eq!(event_types(&changes[1].events), [EventType::JobFailed]);
            Ok(stored
                .into_iter()
                .map(|mut job| {
                    job.edit(|r| r.version += 1);
                    Ok(job)
                })
                .collect())
        });
    mocks.robots.expect_get_robot().times(1).returning(|_| {
        let mut record = Robot::register(robot(), None, None, NOW).unwrap();
        record.take_job(nth_id(4));
        Ok(record)
    });
    mocks
        .robots
        .expect_save_robot()
        .withf(|record, _| record.current_job_id().is_none())
        .times(1)
        .returning(|_, _| Ok(()));
    let (service, _) = mocks.service();
    let ends = [
        FinishedJob {
            job_id: nth_id(1),
            end: JobEnd::Completed {
                output: Some(json!({"ok": true})),
            },
        },
        FinishedJob {
            job_id: nth_id(2),
            end: JobEnd::Completed { output: None },
        },
        FinishedJob {
            job_id: nth_id(3),
            end: JobEnd::Completed { output: None },
        },
        FinishedJob {
            job_id: nth_id(4),
            end: JobEnd::Failed {
                error_type: "Boom".to_owned(),
                error_message: "it broke".to_owned(),
            },
        },
        FinishedJob {
            job_id: nth_id(1),
            end: JobEnd::Completed { output: None },
        },
    ];
    let outcomes = service.finish_many(&robot(), &ends).await.unwrap();
    let first = outcomes[0].as_ref().unwrap();
    assert_eq!(
        (first.status(), first.output().cloned()),
        (JobStatus::Completed, Some(json!({"ok": true})))
    );
    assert!(matches!(outcomes[1], Err(ServiceError::Transition(_))));
    assert!(matches!(
        outcomes[2],
        Err(ServiceError::Repo(RepoError::NotFound(_)))
    ));
    assert_eq!(outcomes[3].as_ref().unwrap().status(), JobStatus::Failed);
    assert!(
        matches!(outcomes[4], Err(ServiceError::Transition(_))),
        "a job listed twice is finished once"
    );
}

#[tokio::test]
async fn a_batched_report_that_lost_a_race_is_judged_again_against_the_newer_job() {
    let mut mocks = Mocks::default().without_robot_records();
    mocks
        .jobs
        .expect_get_jobs()
        .returning(|_| Ok(vec![nth_running(1)]));
    mocks
        .jobs
        .expect_update_jobs_each()
        .returning(|_| Ok(vec![Err(RepoError::Conflict("changed".to_owned()))]));
    // The one-job path re-reads: a hard cancel had won.
    mocks.jobs.expect_get_job().times(1).returning(|_| {
        let mut job = hard_cancelled();
        job.edit(|r| r.id = nth_id(1));
        Ok(job)
    });
    let (service, _) = mocks.service();
    let ends = [FinishedJob {
        job_id: nth_id(1),
        end: JobEnd::Completed { output: None },
    }];
    let outcomes = service.finish_many(&robot(), &ends).await.unwrap();
    assert!(
        matches!(outcomes[0], Err(ServiceError::Transition(_))),
        "{:?}",
        outcomes[0]
    );
}

#[tokio::test]
async fn a_batched_report_whose_write_fails_fails_as_a_whole() {
    let mut mocks = Mocks::default();
    mocks
        .jobs
        .expect_get_jobs()
        .returning(|_| Ok(vec![nth_running(1)]));
    mocks
        .jobs
        .expect_update_jobs_each()
        .returning(|_| Err(RepoError::Unavailable("down".to_owned())));
    let (service, _) = mocks.service();
    let ends = [FinishedJob {
        job_id: nth_id(1),
        end: JobEnd::Completed { output: None },
    }];
    let err = service.finish_many(&robot(), &ends).await.unwrap_err();
    assert!(matches!(err, ServiceError::Repo(RepoError::Unavailable(_))));
}
