//! The flow use cases against an in-memory flow store that keeps versions as the real ones do,
//! jobs in a shared map, mockall workflows, a canceller that records what it cancels, and a
//! clock the test moves.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use time::Duration;
use time::macros::datetime;

use super::*;
use crate::error::RepoResult;
use crate::job::{Job, JobOrigin, JobStatus};
use crate::ports::{MockJobRepository, MockWorkflowRepository};
use crate::robot::RobotId;
use crate::workflow::{Workflow, WorkflowGraph, WorkflowName};

const NOW: Timestamp = datetime!(2025-07-01 09:00 UTC);
const WORKFLOW: u128 = 0xF10;

fn workflow_id() -> WorkflowId {
    WorkflowId::from_uuid(uuid::Uuid::from_u128(WORKFLOW))
}

fn other_workflow_id() -> WorkflowId {
    WorkflowId::from_uuid(uuid::Uuid::from_u128(WORKFLOW + 1))
}

fn id(text: &str) -> FlowId {
    FlowId::parse(text).unwrap()
}

fn config(flow: &str, interval: u32) -> Value {
    json!({"flow_id": flow, "workflow_id": workflow_id().to_string(), "interval_seconds": interval})
}

struct TestClock(Mutex<Timestamp>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

struct Counter(AtomicU64);

impl IdGenerator for Counter {
    fn new_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::SeqCst) + 1))
    }
}

type Jobs = Arc<Mutex<HashMap<JobId, Job>>>;

/// Flows in a map with the storage's version rules; the jobs they start land in `jobs`, and
/// every event written is kept.
#[derive(Default)]
struct MemoryFlows {
    rows: Mutex<HashMap<FlowId, Flow>>,
    jobs: Jobs,
    events: Mutex<Vec<Event>>,
    /// How many of the next writes lose a version race (another writer got there first).
    lose_writes: Mutex<usize>,
}

impl MemoryFlows {
    fn stored(&self, flow: &str) -> Flow {
        self.rows.lock().unwrap()[&id(flow)].clone()
    }

    fn put(&self, flow: Flow) {
        self.rows
            .lock()
            .unwrap()
            .insert(flow.flow_id().clone(), flow);
    }

    fn event_types(&self) -> Vec<EventType> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event_type)
            .collect()
    }

    fn store_checked(&self, flow: &Flow, events: &[Event]) -> RepoResult<Flow> {
        let mut rows = self.rows.lock().unwrap();
        let Some(row) = rows.get_mut(flow.flow_id()) else {
            return Err(RepoError::NotFound("flow"));
        };
        let mut lose = self.lose_writes.lock().unwrap();
        if *lose > 0 {
            *lose -= 1;
            row.edit(|r| r.version += 1);
            return Err(RepoError::Conflict("changed meanwhile".into()));
        }
        if row.version() != flow.version() {
            return Err(RepoError::Conflict("changed meanwhile".into()));
        }
        *row = {
            let mut stored = flow.clone();
            stored.mark_stored();
            stored
        };
        self.events.lock().unwrap().extend_from_slice(events);
        Ok(row.clone())
    }
}

#[async_trait]
impl FlowRepository for MemoryFlows {
    async fn insert_flows(&self, flows: &[Flow]) -> RepoResult<()> {
        let mut rows = self.rows.lock().unwrap();
        if flows.iter().any(|f| rows.contains_key(f.flow_id())) {
            return Err(RepoError::Conflict("exists".into()));
        }
        for flow in flows {
            rows.insert(flow.flow_id().clone(), flow.clone());
        }
        Ok(())
    }
    async fn get_flow(&self, id: &FlowId) -> RepoResult<Flow> {
        self.rows
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or(RepoError::NotFound("flow"))
    }
    async fn list_flows(&self) -> RepoResult<Vec<Flow>> {
        let mut flows: Vec<Flow> = self.rows.lock().unwrap().values().cloned().collect();
        flows.sort_by(|a, b| a.flow_id().cmp(b.flow_id()));
        Ok(flows)
    }
    async fn update_flow(&self, flow: &Flow, events: &[Event]) -> RepoResult<Flow> {
        self.store_checked(flow, events)
    }
    async fn record_flow_job(&self, flow: &Flow, job: &Job, events: &[Event]) -> RepoResult<()> {
        self.store_checked(flow, events)?;
        self.jobs.lock().unwrap().insert(job.id(), job.clone());
        Ok(())
    }
    async fn delete_flow(&self, id: &FlowId) -> RepoResult<()> {
        self.rows
            .lock()
            .unwrap()
            .remove(id)
            .map(|_| ())
            .ok_or(RepoError::NotFound("flow"))
    }
}

impl MemoryFlows {
    /// The flow whose current job is `job`, if any.
    fn flow_for_job(&self, job: JobId) -> Option<Flow> {
        self.rows
            .lock()
            .unwrap()
            .values()
            .find(|f| f.current_job_id() == Some(job))
            .cloned()
    }
}

/// Cancels jobs in the shared map as the job service's hard cancel does, and keeps their ids
/// and the status their flow was stored with at that moment.
struct RecordingCanceller {
    jobs: Jobs,
    flows: Arc<MemoryFlows>,
    cancelled: Mutex<Vec<JobId>>,
    flow_status_at_cancel: Mutex<Vec<Option<FlowStatus>>>,
}

#[async_trait]
impl JobCanceller for RecordingCanceller {
    async fn cancel_hard(&self, job: JobId) -> Result<(), ServiceError> {
        let flow = self.flows.flow_for_job(job);
        self.flow_status_at_cancel
            .lock()
            .unwrap()
            .push(flow.map(|f| f.status()));
        let mut jobs = self.jobs.lock().unwrap();
        let Some(stored) = jobs.get_mut(&job) else {
            return Err(RepoError::NotFound("job").into());
        };
        stored.cancel(CancelMode::Hard, NOW)?;
        self.cancelled.lock().unwrap().push(job);
        Ok(())
    }
}

fn a_workflow() -> Workflow {
    Workflow::new(
        workflow_id(),
        WorkflowName::parse("Inbox").unwrap(),
        None,
        WorkflowGraph::parse(json!({"nodes": [{"id": "start", "type": "StartNode"}]})).unwrap(),
        Map::new(),
        NOW,
    )
    .unwrap()
}

/// A service over one memory store, as one server sees it.
struct Env {
    flows: Arc<MemoryFlows>,
    canceller: Arc<RecordingCanceller>,
    clock: Arc<TestClock>,
    service: FlowService,
}

impl Env {
    fn new() -> Self {
        let flows = Arc::new(MemoryFlows::default());
        let jobs = flows.jobs.clone();
        let mut job_repo = MockJobRepository::new();
        job_repo.expect_get_job().returning(move |id| {
            jobs.lock()
                .unwrap()
                .get(&id)
                .cloned()
                .ok_or(RepoError::NotFound("job"))
        });
        let mut workflows = MockWorkflowRepository::new();
        workflows.expect_get_workflow().returning(|id| {
            if id == workflow_id() {
                Ok(a_workflow())
            } else {
                Err(RepoError::NotFound("workflow"))
            }
        });
        let canceller = Arc::new(RecordingCanceller {
            jobs: flows.jobs.clone(),
            flows: flows.clone(),
            cancelled: Mutex::new(Vec::new()),
            flow_status_at_cancel: Mutex::new(Vec::new()),
        });
        let clock = Arc::new(TestClock(Mutex::new(NOW)));
        let service = FlowService::new(
            FlowPorts {
                flows: flows.clone(),
                jobs: Arc::new(job_repo),
                workflows: Arc::new(workflows),
            },
            canceller.clone(),
            clock.clone(),
            Arc::new(Counter(AtomicU64::new(0))),
        );
        Self {
            flows,
            canceller,
            clock,
            service,
        }
    }

    fn advance(&self, by: Duration) {
        *self.clock.0.lock().unwrap() += by;
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    async fn add(&self, flow: &str, interval: u32) {
        self.service
            .create(vec![config(flow, interval)])
            .await
            .unwrap();
    }

    async fn command(
        &self,
        command: FlowCommand,
        flows: Option<&[&str]>,
    ) -> Result<Vec<Flow>, ServiceError> {
        self.service
            .command(CommandRequest {
                command,
                flow_ids: flows.map(|f| f.iter().map(|s| (*s).to_owned()).collect()),
            })
            .await
    }

    /// Adds a running flow and runs a round, so it holds a job; returns the job's id.
    async fn running_with_job(&self, flow: &str, interval: u32) -> JobId {
        self.add(flow, interval).await;
        self.command(FlowCommand::Start, Some(&[flow]))
            .await
            .unwrap();
        let round = self.service.run_round().await.unwrap();
        assert_eq!(round.started.len(), 1, "{round:?}");
        self.flows.stored(flow).current_job_id().unwrap()
    }

    fn job(&self, job: JobId) -> Job {
        self.flows.jobs.lock().unwrap()[&job].clone()
    }

    fn job_count(&self) -> usize {
        self.flows.jobs.lock().unwrap().len()
    }

    /// Ends a job as a robot would: claimed, started, completed at the clock's now.
    fn complete(&self, job: JobId) {
        let robot = RobotId::parse("robot-1").unwrap();
        let now = self.now();
        let mut jobs = self.flows.jobs.lock().unwrap();
        let stored = jobs.get_mut(&job).unwrap();
        stored.claim(robot.clone(), now, 60).unwrap();
        stored.start(&robot, now).unwrap();
        stored.complete(&robot, None, now).unwrap();
    }
}

fn fields(err: ServiceError) -> Vec<String> {
    match err {
        ServiceError::Invalid(e) => e.errors.into_iter().map(|f| f.field).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn is_conflict(err: &ServiceError) -> bool {
    matches!(err, ServiceError::Repo(RepoError::Conflict(_)))
}

fn is_not_found(err: &ServiceError) -> bool {
    matches!(err, ServiceError::Repo(RepoError::NotFound(_)))
}

// ---- create ----

#[tokio::test]
async fn added_flows_are_stopped_and_keep_their_configuration() {
    let env = Env::new();
    let mut extra = config("a", 5);
    extra["owner"] = json!({"team": "ops"});
    let flows = env
        .service
        .create(vec![extra.clone(), config("b", 0)])
        .await
        .unwrap();
    assert_eq!(flows.len(), 2);
    let a = env.flows.stored("a");
    assert_eq!(a.status(), FlowStatus::Stopped);
    assert_eq!(a.current_job_id(), None);
    assert_eq!(a.next_run_at(), None);
    assert_eq!(Value::Object(a.config().document().clone()), extra);
    assert_eq!(env.flows.stored("b").config().interval_seconds(), 0);
    assert!(
        a.created_at() < env.flows.stored("b").created_at(),
        "oldest first lists a batch in the order posted"
    );
}

#[tokio::test]
async fn one_broken_configuration_writes_none_and_every_problem_is_named_by_index() {
    let env = Env::new();
    let err = env
        .service
        .create(vec![
            config("good", 5),
            json!({"flow_id": "", "workflow_id": "nope"}),
            json!([1]),
            json!({"flow_id": "x", "workflow_id": workflow_id().to_string(), "interval_seconds": -1}),
        ])
        .await
        .unwrap_err();
    assert_eq!(
        fields(err),
        [
            "[1].flow_id",
            "[1].workflow_id",
            "[2]",
            "[3].interval_seconds"
        ]
    );
    assert!(env.flows.rows.lock().unwrap().is_empty());
}

#[tokio::test]
async fn taken_and_repeated_ids_and_unknown_workflows_write_nothing() {
    let env = Env::new();
    env.add("taken", 5).await;
    let mut ghost = config("ghost", 5);
    ghost["workflow_id"] = json!(other_workflow_id().to_string());
    let err = env
        .service
        .create(vec![
            config("new", 5),
            config("taken", 5),
            config("new", 5),
            ghost,
        ])
        .await
        .unwrap_err();
    assert_eq!(
        fields(err),
        ["[1].flow_id", "[2].flow_id", "[3].workflow_id"]
    );
    assert_eq!(env.flows.rows.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_empty_or_oversized_batch_is_refused() {
    let env = Env::new();
    assert_eq!(
        fields(env.service.create(vec![]).await.unwrap_err()),
        ["body"]
    );
    let many = (0..=MAX_BATCH)
        .map(|i| config(&format!("f{i}"), 5))
        .collect();
    assert_eq!(
        fields(env.service.create(many).await.unwrap_err()),
        ["body"]
    );
}

// ---- get, replace, delete ----

#[tokio::test]
async fn text_that_cannot_be_a_flow_id_names_no_flow() {
    let env = Env::new();
    assert!(is_not_found(&env.service.get("").await.unwrap_err()));
    assert!(is_not_found(&env.service.get("status").await.unwrap_err()));
    assert!(is_not_found(
        &env.service.delete(&"x".repeat(101)).await.unwrap_err()
    ));
    assert!(is_not_found(
        &env.service.delete("missing").await.unwrap_err()
    ));
}

#[tokio::test]
async fn a_replaced_configuration_keeps_the_run_state_and_takes_the_path_id() {
    let env = Env::new();
    let job = env.running_with_job("sync", 5).await;
    let doc = json!({"workflow_id": workflow_id().to_string(), "interval_seconds": 9, "note": 1});
    let stored = env
        .service
        .replace("sync", doc.as_object().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(stored.status(), FlowStatus::Running);
    assert_eq!(stored.current_job_id(), Some(job));
    assert_eq!(stored.config().interval_seconds(), 9);
    assert_eq!(stored.config().document()["flow_id"], "sync");
    assert_eq!(stored.config().document()["note"], 1);
    assert_eq!(env.flows.stored("sync"), stored);
}

#[tokio::test]
async fn a_replacement_is_checked_like_a_new_configuration() {
    let env = Env::new();
    env.add("sync", 5).await;
    let before = env.flows.stored("sync");
    let doc = |v: Value| v.as_object().unwrap().clone();
    let err = env
        .service
        .replace("sync", doc(config("other", 5)))
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["flow_id"]);
    let err = env
        .service
        .replace(
            "sync",
            doc(json!({"workflow_id": other_workflow_id().to_string()})),
        )
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["workflow_id"]);
    let err = env
        .service
        .replace("sync", doc(json!({"interval_seconds": "5"})))
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["workflow_id", "interval_seconds"]);
    assert_eq!(env.flows.stored("sync"), before);
    let err = env
        .service
        .replace("missing", doc(config("missing", 5)))
        .await
        .unwrap_err();
    assert!(is_not_found(&err));
}

#[tokio::test]
async fn a_replacement_that_loses_a_race_is_applied_to_the_newer_flow() {
    let env = Env::new();
    env.add("sync", 5).await;
    *env.flows.lose_writes.lock().unwrap() = 1;
    let stored = env
        .service
        .replace("sync", config("sync", 7).as_object().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(stored.config().interval_seconds(), 7);
    assert_eq!(
        stored.version(),
        2,
        "the lost race moved the version on once"
    );
}

// ---- commands ----

#[tokio::test]
async fn start_runs_a_stopped_flow_now_and_records_it() {
    let env = Env::new();
    env.add("a", 5).await;
    let flows = env.command(FlowCommand::Start, Some(&["a"])).await.unwrap();
    assert_eq!(flows[0].status(), FlowStatus::Running);
    assert_eq!(flows[0].next_run_at(), Some(NOW));
    assert_eq!(env.flows.stored("a"), flows[0]);
    assert_eq!(env.flows.event_types(), [EventType::FlowStarted]);
    let event = env.flows.events.lock().unwrap()[0].clone();
    assert_eq!(event.data["flow_id"], "a");
    assert_eq!(event.workflow_id, Some(workflow_id()));
}

#[tokio::test]
async fn unknown_ids_are_named_and_nothing_changes() {
    let env = Env::new();
    env.add("a", 5).await;
    let err = env
        .command(FlowCommand::Start, Some(&["a", "nope", "", "a"]))
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["flow_ids[1]", "flow_ids[2]"]);
    assert_eq!(env.flows.stored("a").status(), FlowStatus::Stopped);
    let err = env
        .command(FlowCommand::Start, Some(&[]))
        .await
        .unwrap_err();
    assert_eq!(fields(err), ["flow_ids"]);
}

#[tokio::test]
async fn a_flow_named_twice_is_commanded_once() {
    let env = Env::new();
    env.add("a", 5).await;
    let flows = env
        .command(FlowCommand::Start, Some(&["a", "a"]))
        .await
        .unwrap();
    assert_eq!(flows.len(), 1);
}

#[tokio::test]
async fn pausing_a_stopped_flow_is_refused_and_no_named_flow_changes() {
    let env = Env::new();
    env.add("running", 5).await;
    env.add("stopped", 5).await;
    env.command(FlowCommand::Start, Some(&["running"]))
        .await
        .unwrap();
    let before = env.flows.stored("running");
    let err = env
        .command(FlowCommand::Pause, Some(&["running", "stopped"]))
        .await
        .unwrap_err();
    assert!(is_conflict(&err), "{err:?}");
    assert!(err.to_string().contains("'stopped'"), "{err}");
    assert_eq!(env.flows.stored("running"), before);
    let err = env
        .command(FlowCommand::Resume, Some(&["stopped"]))
        .await
        .unwrap_err();
    assert!(is_conflict(&err));
}

#[tokio::test]
async fn without_ids_pause_and_resume_reach_the_flows_they_can_change() {
    let env = Env::new();
    for flow in ["a", "b", "c"] {
        env.add(flow, 5).await;
    }
    env.command(FlowCommand::Start, Some(&["a", "b"]))
        .await
        .unwrap();
    let paused = env.command(FlowCommand::Pause, None).await.unwrap();
    let names: Vec<&str> = paused.iter().map(|f| f.flow_id().as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(paused.iter().all(|f| f.status() == FlowStatus::Paused));
    assert_eq!(env.flows.stored("c").status(), FlowStatus::Stopped);
    let resumed = env.command(FlowCommand::Resume, None).await.unwrap();
    assert_eq!(resumed.len(), 2);
    assert!(resumed.iter().all(|f| f.status() == FlowStatus::Running));
    let started = env.command(FlowCommand::Start, None).await.unwrap();
    assert_eq!(started.len(), 3);
    let stopped = env
        .command(FlowCommand::Stop { hard: false }, None)
        .await
        .unwrap();
    assert!(stopped.iter().all(|f| f.status() == FlowStatus::Stopped));
}

#[tokio::test]
async fn a_hard_stop_cancels_the_current_job_and_stops_the_flow() {
    let env = Env::new();
    let job = env.running_with_job("a", 5).await;
    let flows = env
        .command(FlowCommand::Stop { hard: true }, Some(&["a"]))
        .await
        .unwrap();
    assert_eq!(flows[0].status(), FlowStatus::Stopped);
    assert_eq!(flows[0].current_job_id(), None);
    assert_eq!(*env.canceller.cancelled.lock().unwrap(), [job]);
    assert_eq!(
        *env.canceller.flow_status_at_cancel.lock().unwrap(),
        [Some(FlowStatus::Stopping)],
        "stored stopping before its job is cancelled: a running flow whose job ended would get \
         its next job from the engine before the stop is stored"
    );
    assert_eq!(env.job(job).status(), JobStatus::Cancelled);
    let stopped = env.flows.events.lock().unwrap().last().cloned().unwrap();
    assert_eq!(stopped.event_type, EventType::FlowStopped);
    assert_eq!(stopped.data["stop"], "hard");
    // The engine has nothing left to do for it.
    env.advance(Duration::hours(1));
    let round = env.service.run_round().await.unwrap();
    assert!(
        round.started.is_empty() && round.settled.is_empty(),
        "{round:?}"
    );
    assert_eq!(env.job_count(), 1);
}

#[tokio::test]
async fn a_hard_stop_of_a_job_that_already_ended_still_stops_the_flow() {
    let env = Env::new();
    let job = env.running_with_job("a", 5).await;
    env.complete(job);
    let flows = env
        .command(FlowCommand::Stop { hard: true }, Some(&["a"]))
        .await
        .unwrap();
    assert_eq!(flows[0].status(), FlowStatus::Stopped);
    assert_eq!(env.job(job).status(), JobStatus::Completed);
    assert!(env.canceller.cancelled.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_soft_stop_waits_for_the_job_and_then_stops() {
    let env = Env::new();
    let job = env.running_with_job("a", 0).await;
    let flows = env
        .command(FlowCommand::Stop { hard: false }, Some(&["a"]))
        .await
        .unwrap();
    assert_eq!(flows[0].status(), FlowStatus::Stopping);
    assert_eq!(flows[0].current_job_id(), Some(job));
    assert!(env.canceller.cancelled.lock().unwrap().is_empty());
    assert_eq!(env.job(job).status(), JobStatus::Pending);

    let round = env.service.run_round().await.unwrap();
    assert!(round.settled.is_empty(), "the job has not ended yet");
    env.complete(job);
    let round = env.service.run_round().await.unwrap();
    assert_eq!(round.stopped, [id("a")]);
    assert!(round.started.is_empty(), "a stopped flow starts nothing");
    let flow = env.flows.stored("a");
    assert_eq!(flow.status(), FlowStatus::Stopped);
    assert_eq!(flow.current_job_id(), None);
    assert_eq!(
        env.flows.event_types().last(),
        Some(&EventType::FlowStopped)
    );
    assert_eq!(env.job_count(), 1);
}

#[tokio::test]
async fn a_command_that_loses_a_race_is_judged_again_on_the_newer_flow() {
    let env = Env::new();
    let first = env.running_with_job("a", 0).await;
    // The hard stop cancels `first`; its store then loses to the engine of another server,
    // which settled `first` and started `second` in between.
    *env.flows.lose_writes.lock().unwrap() = 1;
    let second = {
        let mut flow = env.flows.stored("a");
        env.flows
            .jobs
            .lock()
            .unwrap()
            .get_mut(&first)
            .unwrap()
            .edit(|r| r.status = JobStatus::Cancelled);
        flow.job_finished(first, NOW);
        let mut next = env.job(first);
        next.edit(|r| {
            r.id = JobId::from_uuid(uuid::Uuid::from_u128(999));
            r.status = JobStatus::Pending;
            r.cancel_requested = None;
            r.completed_at = None;
        });
        flow.job_started(next.id(), NOW);
        flow.edit(|r| r.version += 1);
        env.flows
            .jobs
            .lock()
            .unwrap()
            .insert(next.id(), next.clone());
        env.flows.put(flow);
        next.id()
    };
    let flows = env
        .command(FlowCommand::Stop { hard: true }, Some(&["a"]))
        .await
        .unwrap();
    assert_eq!(flows[0].status(), FlowStatus::Stopped);
    assert_eq!(env.job(second).status(), JobStatus::Cancelled);
    assert!(env.canceller.cancelled.lock().unwrap().contains(&second));
}

#[tokio::test]
async fn pause_lets_the_job_run_on_and_resume_starts_the_next() {
    let env = Env::new();
    let job = env.running_with_job("a", 30).await;
    let flows = env.command(FlowCommand::Pause, Some(&["a"])).await.unwrap();
    assert_eq!(flows[0].status(), FlowStatus::Paused);
    assert_eq!(env.job(job).status(), JobStatus::Pending, "the job runs on");
    env.advance(Duration::seconds(10));
    env.complete(job);
    env.service.run_round().await.unwrap();
    let flow = env.flows.stored("a");
    assert_eq!(flow.current_job_id(), None);
    assert_eq!(flow.next_run_at(), Some(env.now() + Duration::seconds(30)));
    env.advance(Duration::hours(1));
    let round = env.service.run_round().await.unwrap();
    assert!(round.started.is_empty(), "a paused flow starts nothing");
    env.command(FlowCommand::Resume, Some(&["a"]))
        .await
        .unwrap();
    let round = env.service.run_round().await.unwrap();
    assert_eq!(round.started.len(), 1);
}

// ---- the engine round ----

#[tokio::test]
async fn a_started_flow_gets_one_job_of_its_workflow() {
    let env = Env::new();
    let job = env.running_with_job("a", 5).await;
    let stored = env.job(job);
    assert_eq!(stored.workflow_id(), workflow_id());
    assert_eq!(stored.workflow_name().to_string(), "Inbox");
    assert_eq!(stored.origin(), &JobOrigin::Flow(id("a")));
    assert_eq!(stored.status(), JobStatus::Pending);
    assert_eq!(stored.created_at(), NOW);
    assert!(env.flows.event_types().contains(&EventType::JobCreated));
    // While the job runs, rounds start nothing more.
    for _ in 0..3 {
        env.advance(Duration::minutes(5));
        let round = env.service.run_round().await.unwrap();
        assert!(round.started.is_empty() && round.settled.is_empty());
    }
    assert_eq!(env.job_count(), 1);
}

#[tokio::test]
async fn the_next_job_starts_interval_seconds_after_the_last_one_ended() {
    let env = Env::new();
    let first = env.running_with_job("a", 30).await;
    env.advance(Duration::seconds(7));
    let ended = env.now();
    env.complete(first);
    // The round notices a little later; the interval counts from the job's recorded end.
    env.advance(Duration::seconds(2));
    let round = env.service.run_round().await.unwrap();
    assert_eq!(round.settled, [(id("a"), first, JobStatus::Completed)]);
    assert!(round.started.is_empty());
    let flow = env.flows.stored("a");
    assert_eq!(flow.next_run_at(), Some(ended + Duration::seconds(30)));
    assert_eq!(flow.status(), FlowStatus::Running);

    env.advance(Duration::seconds(27));
    assert!(env.service.run_round().await.unwrap().started.is_empty());
    env.advance(Duration::seconds(1));
    let round = env.service.run_round().await.unwrap();
    assert_eq!(round.started.len(), 1);
    assert_ne!(round.started[0].1, first);
    assert_eq!(env.job_count(), 2);
}

#[tokio::test]
async fn with_no_interval_the_next_job_starts_in_the_round_that_settles_the_last() {
    let env = Env::new();
    let first = env.running_with_job("a", 0).await;
    env.complete(first);
    let round = env.service.run_round().await.unwrap();
    assert_eq!(round.settled.len(), 1);
    assert_eq!(round.started.len(), 1);
}

#[tokio::test]
async fn a_failed_job_does_not_stop_the_flow() {
    let env = Env::new();
    let first = env.running_with_job("a", 0).await;
    {
        let robot = RobotId::parse("robot-1").unwrap();
        let mut jobs = env.flows.jobs.lock().unwrap();
        let job = jobs.get_mut(&first).unwrap();
        job.claim(robot.clone(), NOW, 60).unwrap();
        job.fail(&robot, "Boom".into(), "it broke".into(), NOW)
            .unwrap();
    }
    let round = env.service.run_round().await.unwrap();
    assert_eq!(round.settled, [(id("a"), first, JobStatus::Failed)]);
    assert_eq!(round.started.len(), 1);
}

#[tokio::test]
async fn a_start_that_loses_the_race_records_no_job() {
    let env = Env::new();
    env.add("a", 5).await;
    env.command(FlowCommand::Start, Some(&["a"])).await.unwrap();
    *env.flows.lose_writes.lock().unwrap() = 1;
    let round = env.service.run_round().await.unwrap();
    assert_eq!(round.lost_races, 1);
    assert!(round.started.is_empty());
    assert_eq!(env.job_count(), 0);
    assert_eq!(env.flows.stored("a").current_job_id(), None);
}

#[tokio::test]
async fn two_servers_on_one_store_start_one_job() {
    let env = Env::new();
    env.add("a", 5).await;
    env.command(FlowCommand::Start, Some(&["a"])).await.unwrap();
    // A second server: its own service over the same flows and jobs.
    let other = FlowService::new(
        env.service.ports.clone(),
        env.canceller.clone(),
        env.clock.clone(),
        Arc::new(Counter(AtomicU64::new(500))),
    );
    // Both read the flow before either writes: the second write is refused.
    let seen = env.flows.stored("a");
    let mut one = FlowRound::default();
    let mut two = FlowRound::default();
    env.service.step(seen.clone(), &mut one).await.unwrap();
    other.step(seen, &mut two).await.unwrap();
    assert_eq!(one.started.len() + two.started.len(), 1);
    assert_eq!(two.lost_races, 1);
    assert_eq!(env.job_count(), 1);
}

#[tokio::test]
async fn a_flow_whose_workflow_is_gone_is_stopped() {
    let env = Env::new();
    env.add("a", 5).await;
    env.command(FlowCommand::Start, Some(&["a"])).await.unwrap();
    // The workflow was deleted after the flow was configured.
    let mut flow = env.flows.stored("a");
    let mut doc = flow.config().document().clone();
    doc.insert("workflow_id".into(), json!(other_workflow_id().to_string()));
    flow.edit(|r| r.config = FlowConfig::parse(Value::Object(doc)).unwrap());
    env.flows.put(flow);
    let round = env.service.run_round().await.unwrap();
    assert_eq!(round.orphaned, [id("a")]);
    assert_eq!(env.flows.stored("a").status(), FlowStatus::Stopped);
    assert_eq!(env.job_count(), 0);
    let event = env.flows.events.lock().unwrap().last().cloned().unwrap();
    assert_eq!(event.event_type, EventType::FlowStopped);
    assert!(
        event.data["reason"]
            .as_str()
            .unwrap()
            .contains("no longer exists")
    );
}

#[tokio::test]
async fn a_deleted_flow_leaves_its_job_running() {
    let env = Env::new();
    let job = env.running_with_job("a", 5).await;
    env.service.delete("a").await.unwrap();
    assert_eq!(env.job(job).status(), JobStatus::Pending);
    assert!(env.canceller.cancelled.lock().unwrap().is_empty());
    let round = env.service.run_round().await.unwrap();
    assert!(round.started.is_empty() && round.failed.is_empty());
}
