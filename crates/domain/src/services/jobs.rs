//! Running workflows as jobs: a client runs or cancels one, a robot claims, reports on and
//! finishes it (docs/robot-protocol.md), and the engine recovers the jobs of robots that went
//! silent.
//!
//! Every change goes through [`JobService`] so the rules live in one place: the job state
//! machine of [`Job`], version-checked writes that make a robot's report and a user's cancel
//! race visibly instead of overwriting each other, and one `Event::job_changed` per status
//! change, written in the same transaction as the job.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::agent::Message;
use crate::clock::{Clock, IdGenerator, Timestamp};
use crate::error::{FieldError, RepoError, ValidationError};
use crate::event::{Event, EventType};
use crate::ids::{AgentId, EventId, JobId, MessageId, WorkflowId};
use crate::job::{CancelMode, Job, JobOrigin, JobStatus, NewJob, NodeExecution, Priority};
use crate::ports::{
    JobRepository, MessageRepository, QueueRepository, RobotRepository, Store, TriggerRepository,
    WorkflowRepository,
};
use crate::robot::RobotId;
use crate::workflow::{ExecutionMode, Workflow};

use super::ServiceError;
use super::triggers::TriggerService;

/// How many times a change is re-read and re-applied when a concurrent writer (a user's cancel,
/// the robot's own next call, another server's lease recovery) wins the version race.
const UPDATE_ATTEMPTS: usize = 3;

/// How many claimed jobs one claim may fail because their workflow was deleted before it hands
/// the robot a job or gives up; keeps one claim call bounded however many orphans wait.
const CLAIM_ATTEMPTS: usize = 5;

/// The error type of a job whose workflow was deleted before a robot could run it.
pub const WORKFLOW_MISSING: &str = "WorkflowNotFound";

/// The storage ports the job use cases need; `triggers` and `queues` serve the trigger hook a
/// finished job runs ([`TriggerService::job_finished`]).
#[derive(Clone)]
pub struct JobPorts {
    pub jobs: Arc<dyn JobRepository>,
    pub workflows: Arc<dyn WorkflowRepository>,
    pub messages: Arc<dyn MessageRepository>,
    pub robots: Arc<dyn RobotRepository>,
    pub triggers: Arc<dyn TriggerRepository>,
    pub queues: Arc<dyn QueueRepository>,
}

impl JobPorts {
    /// Every port from one store, what an adapter holds.
    pub fn from_store(store: &Arc<dyn Store>) -> Self {
        Self {
            jobs: store.clone(),
            workflows: store.clone(),
            messages: store.clone(),
            robots: store.clone(),
            triggers: store.clone(),
            queues: store.clone(),
        }
    }
}

/// Where the service reports a step that failed after the caller's change was stored (keeping
/// a robot's record current, the trigger hook, messages of a node the workflow no longer has).
/// The change stands and the caller is answered as if the step had worked, because failing a
/// robot's report over bookkeeping would make it redo work; the adapter logs these instead.
pub trait FollowUpLog: Send + Sync {
    fn follow_up_failed(&self, job: JobId, step: &'static str, error: &ServiceError);
}

/// What a client asks for when it runs a workflow now.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub workflow_id: WorkflowId,
    pub priority: Priority,
    pub execution_mode: ExecutionMode,
    /// Handed to the robot as the job's input.
    pub input: Map<String, Value>,
}

/// A job a robot just claimed, with the workflow it runs (the robot needs the graph).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    pub job: Job,
    /// Shared by the jobs of one workflow in a batched claim.
    pub workflow: Arc<Workflow>,
}

/// A robot's report of one node it ran, as the progress call carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeReport {
    pub node_id: String,
    /// `completed`, `failed` or `skipped`.
    pub status: String,
    pub duration_ms: u64,
    /// The node's error, truncated to [`Job::MAX_ERROR_MESSAGE`] characters: a long stack trace
    /// must not make the robot's report fail.
    pub error: Option<String>,
    /// Payloads the node emitted; each becomes one message of the node's agent.
    pub messages: Vec<Value>,
}

/// What a change decided about the job it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Store the changed job.
    Store,
    /// Leave the stored job as it is and answer with it.
    Keep,
}

/// The job use cases.
pub struct JobService {
    ports: JobPorts,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    follow_ups: Arc<dyn FollowUpLog>,
    lease_seconds: u32,
}

impl JobService {
    /// `lease_seconds` is how long a claim (and each renewal) holds a job for its robot; the
    /// server passes [`Job::DEFAULT_LEASE_SECONDS`], tests and embedders may choose less.
    pub fn new(
        ports: JobPorts,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        follow_ups: Arc<dyn FollowUpLog>,
        lease_seconds: u32,
    ) -> Self {
        Self {
            ports,
            clock,
            ids,
            follow_ups,
            lease_seconds,
        }
    }

    pub fn lease_seconds(&self) -> u32 {
        self.lease_seconds
    }

    /// Queues a pending job of the workflow with its `job_created` event. Errors: `NotFound`
    /// when the workflow does not exist.
    pub async fn run_now(&self, request: RunRequest) -> Result<Job, ServiceError> {
        let workflow = self
            .ports
            .workflows
            .get_workflow(request.workflow_id)
            .await?;
        let now = self.clock.now();
        let job = NewJob {
            workflow_id: workflow.id,
            workflow_name: workflow.name,
            priority: request.priority,
            execution_mode: request.execution_mode,
            input: request.input,
            origin: JobOrigin::Manual,
            max_retries: NewJob::DEFAULT_MAX_RETRIES,
        }
        .into_job(JobId::from_uuid(self.ids.new_uuid()), now);
        let event = self.job_event(&job, false, now);
        self.ports.jobs.insert_job(&job, &[event]).await?;
        Ok(job)
    }

    /// A client cancels: a pending job, or any job cancelled hard, ends at once; a soft cancel of
    /// a job in a robot's hands is recorded for the robot to honour at its next node boundary.
    /// Errors: `NotFound`; `Transition` for a job that already ended.
    pub async fn cancel(&self, id: JobId, mode: CancelMode) -> Result<Job, ServiceError> {
        self.update(id, |job, now| {
            job.cancel(mode, now)?;
            Ok(Decision::Store)
        })
        .await
    }

    /// Hands `robot` the most urgent pending job (priority 0 first, then the oldest) under a
    /// lease, or `None` when nothing is pending. The storage makes the claim atomic, so
    /// concurrent robots never receive the same job. A job whose workflow was deleted meanwhile
    /// cannot run: it is failed with [`WORKFLOW_MISSING`] and the next job is tried.
    pub async fn claim(&self, robot: &RobotId) -> Result<Option<ClaimedJob>, ServiceError> {
        for _ in 0..CLAIM_ATTEMPTS {
            let now = self.clock.now();
            let claimed = self
                .ports
                .jobs
                .claim_jobs(robot, now, self.lease_seconds, 1)
                .await?;
            let Some(job) = claimed.into_iter().next() else {
                return Ok(None);
            };
            match self.ports.workflows.get_workflow(job.workflow_id()).await {
                Ok(workflow) => {
                    self.robot_took(robot, job.id()).await;
                    return Ok(Some(ClaimedJob {
                        job,
                        workflow: Arc::new(workflow),
                    }));
                }
                // The lease recovery gives the job back if the failure below does not stick.
                Err(RepoError::NotFound(_)) => self.fail_orphan(job.id(), robot).await?,
                Err(other) => return Err(other.into()),
            }
        }
        Ok(None)
    }

    /// The robot began executing the graph: the job is running and its lease renewed.
    pub async fn start(&self, id: JobId, robot: &RobotId) -> Result<Job, ServiceError> {
        let lease = self.lease_seconds;
        self.update(id, |job, now| {
            if cancelled_in_hands_of(job, robot) {
                return Ok(Decision::Keep);
            }
            job.start(robot, now)?;
            job.renew_lease(robot, now, lease)?;
            Ok(Decision::Store)
        })
        .await
    }

    /// The robot ran one node: the node's outcome is recorded, the lease renewed, and what the
    /// node emitted stored as its agent's messages. The messages are stored first, once the
    /// robot is known to hold the job: a node that ran did emit them, even if a cancel wins the
    /// race for the job right after, and a robot that retries after an error records the node
    /// once.
    pub async fn progress(
        &self,
        id: JobId,
        robot: &RobotId,
        report: NodeReport,
    ) -> Result<Job, ServiceError> {
        let now = self.clock.now();
        let error = report.error.map(|e| truncate(e, Job::MAX_ERROR_MESSAGE));
        let execution = NodeExecution::new(
            report.node_id,
            &report.status,
            report.duration_ms,
            error,
            now,
        )?;
        check_payloads(id, &report.messages, now)?;
        let current = self.ports.jobs.get_job(id).await?;
        if cancelled_in_hands_of(&current, robot) {
            return Ok(current);
        }
        current.clone().record_node(robot, execution.clone(), now)?;
        self.store_messages(&current, &execution.node_id, report.messages)
            .await?;
        let lease = self.lease_seconds;
        self.update(id, |job, now| {
            if cancelled_in_hands_of(job, robot) {
                return Ok(Decision::Keep);
            }
            job.record_node(robot, execution.clone(), now)?;
            job.renew_lease(robot, now, lease)?;
            Ok(Decision::Store)
        })
        .await
    }

    /// The robot is still working (a long node): the lease moves forward, and the answer tells
    /// the robot whether a cancel arrived.
    pub async fn renew(&self, id: JobId, robot: &RobotId) -> Result<Job, ServiceError> {
        let lease = self.lease_seconds;
        self.update(id, |job, now| {
            if cancelled_in_hands_of(job, robot) {
                return Ok(Decision::Keep);
            }
            job.renew_lease(robot, now, lease)?;
            Ok(Decision::Store)
        })
        .await
    }

    /// The robot finished the job. Errors: `Transition` when the job is no longer the robot's
    /// (its lease expired, or it was cancelled hard meanwhile).
    pub async fn complete(
        &self,
        id: JobId,
        robot: &RobotId,
        output: Option<Value>,
    ) -> Result<Job, ServiceError> {
        self.update(id, |job, now| {
            job.complete(robot, output.clone(), now)?;
            Ok(Decision::Store)
        })
        .await
    }

    /// The robot failed the job; over-long texts are truncated by [`Job::fail`].
    pub async fn fail(
        &self,
        id: JobId,
        robot: &RobotId,
        error_type: String,
        error_message: String,
    ) -> Result<Job, ServiceError> {
        self.update(id, |job, now| {
            job.fail(robot, error_type.clone(), error_message.clone(), now)?;
            Ok(Decision::Store)
        })
        .await
    }

    /// The robot stopped because of a soft cancel. A job already cancelled while this robot
    /// held it (a hard cancel overtook the soft one, or its lease ran out) is answered as it is:
    /// the robot's intent is fulfilled, so it is not told off with a 409.
    pub async fn cancelled(&self, id: JobId, robot: &RobotId) -> Result<Job, ServiceError> {
        self.update(id, |job, now| {
            if cancelled_in_hands_of(job, robot) {
                return Ok(Decision::Keep);
            }
            job.acknowledge_cancel(robot, now)?;
            Ok(Decision::Store)
        })
        .await
    }

    /// The robot gives the job back unfinished: pending again without spending a retry, or
    /// cancelled when a cancel was requested.
    pub async fn release(&self, id: JobId, robot: &RobotId) -> Result<Job, ServiceError> {
        self.update(id, |job, now| {
            job.release(robot, now)?;
            Ok(Decision::Store)
        })
        .await
    }

    /// Applies lease expiry to jobs whose robot stopped renewing: pending again while retries
    /// remain, else failed with `LeaseExpired`; cancelled when a cancel was requested. A job
    /// changed meanwhile (finished just in time, or recovered by another server) is left alone:
    /// the version check refuses the stale write. Returns how many jobs were recovered.
    pub async fn recover_expired_leases(&self, limit: u32) -> Result<u64, ServiceError> {
        let now = self.clock.now();
        let mut recovered = 0;
        for mut job in self.ports.jobs.expired_job_leases(now, limit).await? {
            let before = job.status();
            let holder = job.robot_id().cloned();
            if job.expire_lease(now).is_err() {
                continue;
            }
            let event = self.job_event(&job, job.status() == JobStatus::Pending, now);
            match self.ports.jobs.update_job(&job, &[event]).await {
                Ok(stored) => {
                    recovered += 1;
                    self.after_change(before, holder.as_ref(), &stored).await;
                }
                Err(RepoError::Conflict(_) | RepoError::NotFound(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Ok(recovered)
    }

    /// Marks offline, with a `robot_offline` event, every robot without a heartbeat for longer
    /// than `offline_after`. A heartbeat that lands meanwhile wins (the storage checks the
    /// heartbeat it saw). The robot's job is not touched: its lease runs out on its own, so a
    /// robot cut off only from heartbeats loses nothing it is still reporting on. Returns how
    /// many robots were marked.
    pub async fn mark_silent_robots_offline(
        &self,
        offline_after: time::Duration,
    ) -> Result<u64, ServiceError> {
        let now = self.clock.now();
        let mut marked = 0;
        for robot in self.ports.robots.stale_robots(now - offline_after).await? {
            let mut event = Event::new(
                EventId::from_uuid(self.ids.new_uuid()),
                EventType::RobotOffline,
                "Robot offline",
                now,
            );
            event.details = Some(robot.robot_id().to_string());
            event.robot_id = Some(robot.robot_id().clone());
            if self
                .ports
                .robots
                .mark_robot_offline(robot.robot_id(), robot.last_heartbeat(), &[event])
                .await?
            {
                marked += 1;
            }
        }
        Ok(marked)
    }

    /// Reads the job, applies `change` at the current time and stores it (with a
    /// `job_changed` event when its status moved) if nobody changed it meanwhile; on a lost
    /// version race it starts over from the newer job, so the change is judged against what is
    /// really stored (a robot's `complete` racing a hard cancel then ends in a 409).
    async fn update<F>(&self, id: JobId, change: F) -> Result<Job, ServiceError>
    where
        F: Fn(&mut Job, Timestamp) -> Result<Decision, ServiceError> + Send + Sync,
    {
        let mut last = None;
        for _ in 0..UPDATE_ATTEMPTS {
            let mut job = self.ports.jobs.get_job(id).await?;
            let before = job.status();
            let holder = job.robot_id().cloned();
            let now = self.clock.now();
            if change(&mut job, now)? == Decision::Keep {
                return Ok(job);
            }
            let events: Vec<Event> = if job.status() == before {
                Vec::new()
            } else {
                vec![self.job_event(&job, job.status() == JobStatus::Pending, now)]
            };
            match self.ports.jobs.update_job(&job, &events).await {
                Ok(stored) => {
                    self.after_change(before, holder.as_ref(), &stored).await;
                    return Ok(stored);
                }
                Err(RepoError::Conflict(reason)) => last = Some(reason),
                Err(other) => return Err(other.into()),
            }
        }
        Err(RepoError::Conflict(last.unwrap_or_else(|| format!("job {id} keeps changing"))).into())
    }

    /// Follow-ups of a stored change: the robot that held the job no longer does once it is
    /// pending again or over, and a job that ended tells whatever started it.
    async fn after_change(&self, before: JobStatus, holder: Option<&RobotId>, job: &Job) {
        if let Some(robot) = holder
            && before.is_active()
            && !job.status().is_active()
        {
            self.robot_let_go(robot, job.id()).await;
        }
        if !before.is_final() && job.status().is_final() {
            self.after_job_finished(job).await;
        }
    }

    /// Runs once for every job that reaches a final state, whoever ended it (robot, user,
    /// lease recovery), so the trigger that started it can move on (SINGLE → DONE, a failure →
    /// FAILED, …). The job's end is already stored, so a failure here is a follow-up: the
    /// trigger stays RUNNING until an operator sets its status.
    async fn after_job_finished(&self, job: &Job) {
        // Only a fire points a trigger at its job (as `current_job_id`), and every fire's job
        // has the trigger as its origin: the jobs of clients, flows and webhooks have no
        // trigger to tell, and skip the look-up.
        if !matches!(job.origin(), &JobOrigin::Trigger(_)) {
            return;
        }
        let triggers = TriggerService::new(
            self.ports.triggers.clone(),
            self.ports.workflows.clone(),
            self.ports.queues.clone(),
            self.clock.clone(),
            self.ids.clone(),
        );
        if let Err(error) = triggers.job_finished(job).await {
            self.follow_ups.follow_up_failed(
                job.id(),
                "update the trigger that started the job",
                &error,
            );
        }
    }

    /// Fails a job that was just claimed but whose workflow no longer exists.
    async fn fail_orphan(&self, id: JobId, robot: &RobotId) -> Result<(), ServiceError> {
        let outcome = self
            .update(id, |job, now| {
                job.fail(
                    robot,
                    WORKFLOW_MISSING.to_owned(),
                    format!(
                        "workflow {} was deleted before the job ran",
                        job.workflow_id()
                    ),
                    now,
                )?;
                Ok(Decision::Store)
            })
            .await;
        match outcome {
            // Someone else (a cancel) ended it first: either way it is not this robot's job.
            Ok(_) | Err(ServiceError::Transition(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Stores a node's emitted payloads as its agent's messages, expiring after the node's
    /// `keep_messages_for`. The agent is looked up in the job's workflow as it is now; a node
    /// the workflow no longer has (it was edited while the job ran) has no agent to own them,
    /// so they are dropped and reported as a follow-up.
    async fn store_messages(
        &self,
        job: &Job,
        node_id: &str,
        payloads: Vec<Value>,
    ) -> Result<(), ServiceError> {
        if payloads.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let Some((agent, keep_for)) = self.agent_of(job.workflow_id(), node_id, now).await? else {
            let error = ServiceError::Repo(RepoError::NotFound("agent"));
            self.follow_ups.follow_up_failed(
                job.id(),
                "store the messages of an unknown node",
                &error,
            );
            return Ok(());
        };
        let messages = payloads
            .into_iter()
            .map(|payload| {
                let id = MessageId::from_uuid(self.ids.new_uuid());
                Message::new(id, agent, Some(job.id()), payload, keep_for, now)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.ports.messages.insert_messages(&messages).await?;
        Ok(())
    }

    /// The agent of `node_id` in the workflow, with how long its messages live; `None` when
    /// the workflow (or the node) is gone.
    async fn agent_of(
        &self,
        workflow: WorkflowId,
        node_id: &str,
        now: Timestamp,
    ) -> Result<Option<(AgentId, Option<time::Duration>)>, ServiceError> {
        let workflow = match self.ports.workflows.get_workflow(workflow).await {
            Ok(workflow) => workflow,
            Err(RepoError::NotFound(_)) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        let Some(node) = workflow.graph.node(node_id) else {
            return Ok(None);
        };
        let agents = self
            .ports
            .workflows
            .list_agents(Some(workflow.id), now)
            .await?;
        Ok(agents
            .into_iter()
            .find(|view| view.agent.node_id == node_id)
            .map(|view| (view.agent.id, node.keep_messages_for())))
    }

    /// Keeps the robot's record showing the job it now holds (status busy).
    async fn robot_took(&self, robot: &RobotId, job: JobId) {
        self.update_robot(robot, job, "record the robot's new job", |r| {
            r.take_job(job);
            true
        })
        .await;
    }

    /// Clears the job from the robot's record, if it still shows this one.
    async fn robot_let_go(&self, robot: &RobotId, job: JobId) {
        self.update_robot(robot, job, "clear the robot's finished job", |r| {
            if r.current_job_id() != Some(job) {
                return false;
            }
            r.release_job();
            true
        })
        .await;
    }

    /// Best-effort change of a robot's record. A robot without one (known only from
    /// `ROBOT_TOKENS` and yet to send a heartbeat) is skipped; a failure is a follow-up, since
    /// the record is informational (the job itself says who holds it).
    async fn update_robot(
        &self,
        robot: &RobotId,
        job: JobId,
        step: &'static str,
        change: impl FnOnce(&mut crate::robot::Robot) -> bool + Send,
    ) {
        let result = async {
            let mut record = match self.ports.robots.get_robot(robot).await {
                Ok(record) => record,
                Err(RepoError::NotFound(_)) => return Ok(()),
                Err(other) => return Err(other),
            };
            if change(&mut record) {
                self.ports.robots.save_robot(&record, &[]).await?;
            }
            Ok(())
        }
        .await;
        if let Err(error) = result {
            self.follow_ups
                .follow_up_failed(job, step, &ServiceError::Repo(error));
        }
    }

    fn job_event(&self, job: &Job, requeued: bool, now: Timestamp) -> Event {
        Event::job_changed(EventId::from_uuid(self.ids.new_uuid()), job, requeued, now)
    }
}

/// What the robot holding a job should do about a cancel: `None` carry on, `Soft` stop after
/// the current node and call `cancelled`, `Hard` stop at once (the job is already cancelled).
pub fn cancel_signal(job: &Job) -> Option<CancelMode> {
    job.cancel_requested()
}

/// A job that was cancelled while `robot` held it. The robot's "should I go on?" calls (start,
/// progress, renew) are answered with the cancel instead of a 409, so it stops cleanly.
fn cancelled_in_hands_of(job: &Job, robot: &RobotId) -> bool {
    job.status() == JobStatus::Cancelled && job.robot_id() == Some(robot)
}

/// Refuses a report whose messages break the message rules (payload size) before anything of
/// it is stored, naming each bad one as `messages[i]`. [`Message::new`] is the one place the
/// rules live; the agent is not known yet, so a placeholder stands in.
fn check_payloads(job: JobId, payloads: &[Value], now: Timestamp) -> Result<(), ValidationError> {
    let placeholder = AgentId::from_uuid(uuid::Uuid::nil());
    let errors: Vec<FieldError> = payloads
        .iter()
        .enumerate()
        .filter_map(|(i, payload)| {
            let id = MessageId::from_uuid(uuid::Uuid::nil());
            Message::new(id, placeholder, Some(job), payload.clone(), None, now)
                .err()
                .map(|e| (i, e))
        })
        .flat_map(|(i, e)| {
            e.errors.into_iter().map(move |f| FieldError {
                field: format!("messages[{i}]"),
                message: f.message,
            })
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationError { errors })
    }
}

/// Cuts `text` to at most `max_chars` characters, never inside one.
fn truncate(mut text: String, max_chars: usize) -> String {
    if let Some((idx, _)) = text.char_indices().nth(max_chars) {
        text.truncate(idx);
    }
    text
}

mod batch;
#[cfg(test)]
mod tests;

pub use batch::{FinishedJob, JobEnd};
