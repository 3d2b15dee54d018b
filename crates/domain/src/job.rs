//! Jobs: executions of a workflow, claimed and leased by robots.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::{TransitionError, ValidationError};
use crate::flow::FlowId;
use crate::ids::{JobId, TriggerId, WorkflowId};
use crate::robot::RobotId;
use crate::workflow::{ExecutionMode, WorkflowName};

/// 0 is the highest priority, 20 the lowest; 10 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Priority(u8);

impl Priority {
    pub const HIGHEST: Priority = Priority(0);
    pub const LOWEST: Priority = Priority(20);

    pub fn new(value: i64) -> Result<Self, ValidationError> {
        u8::try_from(value)
            .ok()
            .filter(|v| *v <= Self::LOWEST.0)
            .map(Self)
            .ok_or_else(|| {
                ValidationError::field(
                    "priority",
                    "must be an integer from 0 (highest) to 20 (lowest)",
                )
            })
    }

    pub fn value(self) -> u8 {
        self.0
    }
}

impl Default for Priority {
    fn default() -> Self {
        Self(10)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Pending,
    Claimed,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        Self::Pending,
        Self::Claimed,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Claimed => "claimed",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// Held by a robot under a lease.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Claimed | Self::Running)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                ValidationError::field(
                    "status",
                    "must be one of pending, claimed, running, completed, failed, cancelled",
                )
            })
    }
}

/// How a cancellation treats a job a robot is working on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelMode {
    /// The robot finishes the node it is running, then stops and reports the job cancelled.
    Soft,
    /// The job is cancelled at once; the robot aborts the node it is running.
    Hard,
}

impl CancelMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Soft => "soft",
            Self::Hard => "hard",
        }
    }
}

/// What started a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOrigin {
    /// `POST /jobs` or a workflow submitted with trigger_type manual.
    Manual,
    /// A trigger or schedule fired.
    Trigger(TriggerId),
    /// A running flow started it.
    Flow(FlowId),
    /// A workflow's webhook URL was called.
    Webhook,
}

/// The outcome of one node within a job.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeExecution {
    pub node_id: String,
    /// `completed`, `failed` or `skipped`.
    pub status: String,
    pub duration_ms: u64,
    pub error_message: Option<String>,
    pub finished_at: Timestamp,
}

impl NodeExecution {
    pub const STATUSES: [&'static str; 4] = ["running", "completed", "failed", "skipped"];

    pub fn new(
        node_id: String,
        status: &str,
        duration_ms: u64,
        error_message: Option<String>,
        finished_at: Timestamp,
    ) -> Result<Self, ValidationError> {
        crate::text::check_name("node_id", &node_id, 1, 255)?;
        if !Self::STATUSES.contains(&status) {
            return Err(ValidationError::field(
                "status",
                "must be one of running, completed, failed, skipped",
            ));
        }
        let error_message =
            crate::text::check_optional("error_message", error_message, Job::MAX_ERROR_MESSAGE)?;
        Ok(Self {
            node_id,
            status: status.to_owned(),
            duration_ms,
            error_message,
            finished_at,
        })
    }
}

/// What a client asks for when it runs a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub workflow_id: WorkflowId,
    pub workflow_name: WorkflowName,
    pub priority: Priority,
    pub execution_mode: ExecutionMode,
    /// Input handed to the robot, a JSON object.
    pub input: serde_json::Map<String, Value>,
    pub origin: JobOrigin,
    pub max_retries: u32,
}

impl NewJob {
    /// Lease expiries a job survives before it fails with `LeaseExpired`.
    pub const DEFAULT_MAX_RETRIES: u32 = 3;

    pub fn into_job(self, id: JobId, now: Timestamp) -> Job {
        Job {
            id,
            workflow_id: self.workflow_id,
            workflow_name: self.workflow_name,
            status: JobStatus::Pending,
            priority: self.priority,
            execution_mode: self.execution_mode,
            input: self.input,
            output: None,
            origin: self.origin,
            robot_id: None,
            created_at: now,
            claimed_at: None,
            started_at: None,
            completed_at: None,
            lease_expires_at: None,
            retry_count: 0,
            max_retries: self.max_retries,
            attempt: 0,
            error_message: None,
            error_type: None,
            cancel_requested: None,
            node_executions: Vec::new(),
            updated_at: now,
            version: 0,
        }
    }
}

/// One execution of a workflow.
///
/// Its fields are private: it changes only through its transitions, so its status, holder and
/// dates always agree. Stores move it in and out of storage as a [`JobRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    id: JobId,
    workflow_id: WorkflowId,
    workflow_name: WorkflowName,
    status: JobStatus,
    priority: Priority,
    execution_mode: ExecutionMode,
    input: serde_json::Map<String, Value>,
    output: Option<Value>,
    origin: JobOrigin,
    robot_id: Option<RobotId>,
    created_at: Timestamp,
    claimed_at: Option<Timestamp>,
    started_at: Option<Timestamp>,
    completed_at: Option<Timestamp>,
    lease_expires_at: Option<Timestamp>,
    retry_count: u32,
    max_retries: u32,
    /// How many times the job was claimed; see [`Job::attempt`].
    attempt: u32,
    error_message: Option<String>,
    error_type: Option<String>,
    cancel_requested: Option<CancelMode>,
    node_executions: Vec<NodeExecution>,
    updated_at: Timestamp,
    /// Optimistic-concurrency counter, bumped by every stored change.
    version: i64,
}

/// A job's stored state, field by field: what a store writes and reads back.
///
/// A record is plain data and checks nothing; [`Job::from_record`] trusts it to be what
/// [`Job::into_record`] gave, which is why only stores and tests should build one.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: JobId,
    pub workflow_id: WorkflowId,
    pub workflow_name: WorkflowName,
    pub status: JobStatus,
    pub priority: Priority,
    pub execution_mode: ExecutionMode,
    pub input: serde_json::Map<String, Value>,
    pub output: Option<Value>,
    pub origin: JobOrigin,
    pub robot_id: Option<RobotId>,
    pub created_at: Timestamp,
    pub claimed_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub lease_expires_at: Option<Timestamp>,
    pub retry_count: u32,
    pub max_retries: u32,
    /// How many times the job was claimed: 0 until its first claim, then 1, and one more at
    /// each claim after a robot gave it back or lost its lease. A robot runs a job from its
    /// first node at every claim, so an attempt above 1 tells its nodes that some of them may
    /// already have run (and had their side effects) in an earlier attempt.
    pub attempt: u32,
    pub error_message: Option<String>,
    pub error_type: Option<String>,
    pub cancel_requested: Option<CancelMode>,
    pub node_executions: Vec<NodeExecution>,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency counter, bumped by every stored change.
    pub version: i64,
}

impl Job {
    /// The job as a store kept it.
    pub fn from_record(record: JobRecord) -> Self {
        let JobRecord {
            id,
            workflow_id,
            workflow_name,
            status,
            priority,
            execution_mode,
            input,
            output,
            origin,
            robot_id,
            created_at,
            claimed_at,
            started_at,
            completed_at,
            lease_expires_at,
            retry_count,
            max_retries,
            attempt,
            error_message,
            error_type,
            cancel_requested,
            node_executions,
            updated_at,
            version,
        } = record;
        Self {
            id,
            workflow_id,
            workflow_name,
            status,
            priority,
            execution_mode,
            input,
            output,
            origin,
            robot_id,
            created_at,
            claimed_at,
            started_at,
            completed_at,
            lease_expires_at,
            retry_count,
            max_retries,
            attempt,
            error_message,
            error_type,
            cancel_requested,
            node_executions,
            updated_at,
            version,
        }
    }

    /// Its state for a store to write.
    pub fn into_record(self) -> JobRecord {
        let Self {
            id,
            workflow_id,
            workflow_name,
            status,
            priority,
            execution_mode,
            input,
            output,
            origin,
            robot_id,
            created_at,
            claimed_at,
            started_at,
            completed_at,
            lease_expires_at,
            retry_count,
            max_retries,
            attempt,
            error_message,
            error_type,
            cancel_requested,
            node_executions,
            updated_at,
            version,
        } = self;
        JobRecord {
            id,
            workflow_id,
            workflow_name,
            status,
            priority,
            execution_mode,
            input,
            output,
            origin,
            robot_id,
            created_at,
            claimed_at,
            started_at,
            completed_at,
            lease_expires_at,
            retry_count,
            max_retries,
            attempt,
            error_message,
            error_type,
            cancel_requested,
            node_executions,
            updated_at,
            version,
        }
    }

    /// A store calls this once it has written the job's change: the optimistic-concurrency
    /// counter moves one on, as the stored copy's did.
    pub fn mark_stored(&mut self) {
        self.version += 1;
    }

    /// Changes the record behind the job directly, bypassing its transitions: for tests
    /// that need a state (an old version, a lapsed lease, another id) no short path of
    /// transitions reaches. Built only for tests and with the `testing` feature.
    #[cfg(any(test, feature = "testing"))]
    pub fn edit(&mut self, change: impl FnOnce(&mut JobRecord)) {
        let mut record = self.to_record();
        change(&mut record);
        *self = Self::from_record(record);
    }

    /// [`Job::into_record`] of a copy.
    pub fn to_record(&self) -> JobRecord {
        self.clone().into_record()
    }

    pub fn id(&self) -> JobId {
        self.id
    }

    pub fn workflow_id(&self) -> WorkflowId {
        self.workflow_id
    }

    pub fn workflow_name(&self) -> &WorkflowName {
        &self.workflow_name
    }

    pub fn status(&self) -> JobStatus {
        self.status
    }

    pub fn priority(&self) -> Priority {
        self.priority
    }

    pub fn execution_mode(&self) -> ExecutionMode {
        self.execution_mode
    }

    pub fn input(&self) -> &serde_json::Map<String, Value> {
        &self.input
    }

    pub fn output(&self) -> Option<&Value> {
        self.output.as_ref()
    }

    pub fn origin(&self) -> &JobOrigin {
        &self.origin
    }

    pub fn robot_id(&self) -> Option<&RobotId> {
        self.robot_id.as_ref()
    }

    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    pub fn claimed_at(&self) -> Option<Timestamp> {
        self.claimed_at
    }

    pub fn started_at(&self) -> Option<Timestamp> {
        self.started_at
    }

    pub fn completed_at(&self) -> Option<Timestamp> {
        self.completed_at
    }

    pub fn lease_expires_at(&self) -> Option<Timestamp> {
        self.lease_expires_at
    }

    pub fn retry_count(&self) -> u32 {
        self.retry_count
    }

    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// How many times the job was claimed: 0 until its first claim, then 1, and one more at
    /// each claim after a robot gave it back or lost its lease. A robot runs a job from its
    /// first node at every claim, so an attempt above 1 tells its nodes that some of them may
    /// already have run (and had their side effects) in an earlier attempt.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn error_message(&self) -> Option<&str> {
        self.error_message.as_deref()
    }

    pub fn error_type(&self) -> Option<&str> {
        self.error_type.as_deref()
    }

    pub fn cancel_requested(&self) -> Option<CancelMode> {
        self.cancel_requested
    }

    pub fn node_executions(&self) -> &[NodeExecution] {
        &self.node_executions
    }

    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }

    /// Optimistic-concurrency counter, bumped by every stored change.
    pub fn version(&self) -> i64 {
        self.version
    }
}

impl Job {
    /// A claim holds a job for this long unless the robot renews it.
    pub const DEFAULT_LEASE_SECONDS: u32 = 60;
    pub const MAX_ERROR_MESSAGE: usize = 4000;
    pub const MAX_ERROR_TYPE: usize = 100;
    pub const LEASE_EXPIRED: &'static str = "LeaseExpired";

    /// A robot takes a pending job: its next attempt begins.
    pub fn claim(
        &mut self,
        robot: RobotId,
        now: Timestamp,
        lease_seconds: u32,
    ) -> Result<(), TransitionError> {
        if self.status != JobStatus::Pending {
            return Err(self.refuse("claim"));
        }
        self.status = JobStatus::Claimed;
        self.robot_id = Some(robot);
        self.attempt = self.attempt.saturating_add(1);
        self.claimed_at = Some(now);
        self.lease_expires_at = Some(lease_end(now, lease_seconds));
        self.updated_at = now;
        Ok(())
    }

    /// The robot began executing the graph.
    pub fn start(&mut self, robot: &RobotId, now: Timestamp) -> Result<(), TransitionError> {
        self.check_holder(robot, "start")?;
        if self.status == JobStatus::Claimed {
            self.status = JobStatus::Running;
            self.started_at = Some(now);
            self.updated_at = now;
        }
        Ok(())
    }

    /// The robot is still working: the lease moves forward.
    pub fn renew_lease(
        &mut self,
        robot: &RobotId,
        now: Timestamp,
        lease_seconds: u32,
    ) -> Result<(), TransitionError> {
        self.check_holder(robot, "renew the lease of")?;
        self.lease_expires_at = Some(lease_end(now, lease_seconds));
        self.updated_at = now;
        Ok(())
    }

    /// A node finished; a claimed job counts as running from its first report.
    pub fn record_node(
        &mut self,
        robot: &RobotId,
        execution: NodeExecution,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        self.start(robot, now)?;
        self.node_executions.push(execution);
        self.updated_at = now;
        Ok(())
    }

    pub fn complete(
        &mut self,
        robot: &RobotId,
        output: Option<Value>,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        self.check_holder(robot, "complete")?;
        self.finish(JobStatus::Completed, now);
        self.output = output;
        Ok(())
    }

    pub fn fail(
        &mut self,
        robot: &RobotId,
        error_type: String,
        error_message: String,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        self.check_holder(robot, "fail")?;
        self.finish(JobStatus::Failed, now);
        self.error_type = Some(truncate(error_type, Self::MAX_ERROR_TYPE));
        self.error_message = Some(truncate(error_message, Self::MAX_ERROR_MESSAGE));
        Ok(())
    }

    /// A client cancels. A pending job, or any job cancelled hard, ends at once; a soft cancel of
    /// a job in a robot's hands is a request the robot honours at its next node boundary.
    pub fn cancel(&mut self, mode: CancelMode, now: Timestamp) -> Result<(), TransitionError> {
        match (self.status, mode) {
            (s, _) if s.is_final() => Err(self.refuse("cancel")),
            (JobStatus::Pending, _) | (_, CancelMode::Hard) => {
                self.cancel_requested = Some(mode);
                self.finish(JobStatus::Cancelled, now);
                Ok(())
            }
            (_, CancelMode::Soft) => {
                self.cancel_requested = Some(CancelMode::Soft);
                self.updated_at = now;
                Ok(())
            }
        }
    }

    /// The robot stopped because a soft cancel asked it to.
    pub fn acknowledge_cancel(
        &mut self,
        robot: &RobotId,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        self.check_holder(robot, "acknowledge the cancellation of")?;
        if self.cancel_requested.is_none() {
            return Err(self.refuse("acknowledge an unrequested cancellation of"));
        }
        self.finish(JobStatus::Cancelled, now);
        Ok(())
    }

    /// The robot gives the job back unfinished (e.g. it is shutting down): pending again, and the
    /// retry budget is untouched because nothing failed.
    pub fn release(&mut self, robot: &RobotId, now: Timestamp) -> Result<(), TransitionError> {
        self.check_holder(robot, "release")?;
        if self.cancel_requested.is_some() {
            self.finish(JobStatus::Cancelled, now);
            return Ok(());
        }
        self.back_to_pending(now);
        Ok(())
    }

    /// The holder stopped renewing: pending again while retries remain, else failed with
    /// `LeaseExpired`; a job whose cancellation was requested ends cancelled.
    pub fn expire_lease(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        let expired =
            self.status.is_active() && self.lease_expires_at.is_some_and(|end| end <= now);
        if !expired {
            return Err(self.refuse("expire the lease of"));
        }
        if self.cancel_requested.is_some() {
            self.finish(JobStatus::Cancelled, now);
        } else if self.retry_count < self.max_retries {
            self.retry_count += 1;
            self.back_to_pending(now);
        } else {
            self.finish(JobStatus::Failed, now);
            self.error_type = Some(Self::LEASE_EXPIRED.to_owned());
            self.error_message = Some("the robot stopped renewing its lease".to_owned());
        }
        Ok(())
    }

    /// Milliseconds the job took once it has ended: from the robot's start, else its claim,
    /// else its creation (a job cancelled while pending).
    pub fn duration_ms(&self) -> Option<i64> {
        let end = self.completed_at?;
        let start = self
            .started_at
            .or(self.claimed_at)
            .unwrap_or(self.created_at);
        i64::try_from((end - start).whole_milliseconds()).ok()
    }

    fn back_to_pending(&mut self, now: Timestamp) {
        self.status = JobStatus::Pending;
        self.robot_id = None;
        self.claimed_at = None;
        self.started_at = None;
        self.lease_expires_at = None;
        self.node_executions.clear();
        self.updated_at = now;
    }

    fn finish(&mut self, status: JobStatus, now: Timestamp) {
        self.status = status;
        self.completed_at = Some(now);
        self.lease_expires_at = None;
        self.updated_at = now;
    }

    fn check_holder(&self, robot: &RobotId, action: &'static str) -> Result<(), TransitionError> {
        if !self.status.is_active() {
            return Err(self.refuse(action));
        }
        if self.robot_id.as_ref() != Some(robot) {
            return Err(TransitionError {
                entity: "job",
                action,
                state: format!("held by another robot ({})", self.status),
            });
        }
        Ok(())
    }

    fn refuse(&self, action: &'static str) -> TransitionError {
        TransitionError {
            entity: "job",
            action,
            state: self.status.to_string(),
        }
    }
}

fn lease_end(now: Timestamp, lease_seconds: u32) -> Timestamp {
    now + time::Duration::seconds(i64::from(lease_seconds))
}

/// A failure's text as it is kept: at most `max_chars` characters, and any NUL, which no text
/// may hold (see `text`), replaced by U+FFFD. A robot's report of a failure is kept whatever
/// its error says, so its text is mended rather than refused.
fn truncate(text: String, max_chars: usize) -> String {
    let mut text = if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    };
    if let Some((idx, _)) = text.char_indices().nth(max_chars) {
        text.truncate(idx);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failures_text_never_keeps_nul() {
        assert_eq!(truncate("a\0b".to_owned(), 10), "a\u{FFFD}b");
        assert_eq!(truncate("\0\0\0".to_owned(), 2), "\u{FFFD}\u{FFFD}");
        assert_eq!(truncate("plain".to_owned(), 10), "plain");
    }
    use time::Duration;
    use time::macros::datetime;
    use uuid::Uuid;

    const T0: Timestamp = datetime!(2025-03-01 08:00 UTC);
    const T1: Timestamp = datetime!(2025-03-01 08:00:10 UTC);
    const T2: Timestamp = datetime!(2025-03-01 08:00:20 UTC);
    const T3: Timestamp = datetime!(2025-03-01 08:05 UTC);

    fn robot_a() -> RobotId {
        RobotId::parse("robot-a").unwrap()
    }

    fn robot_b() -> RobotId {
        RobotId::parse("robot-b").unwrap()
    }

    fn pending() -> Job {
        NewJob {
            workflow_id: WorkflowId::from_uuid(Uuid::from_u128(10)),
            workflow_name: WorkflowName::parse("nightly").unwrap(),
            priority: Priority::default(),
            execution_mode: ExecutionMode::Lan,
            input: serde_json::Map::new(),
            origin: JobOrigin::Manual,
            max_retries: NewJob::DEFAULT_MAX_RETRIES,
        }
        .into_job(JobId::from_uuid(Uuid::from_u128(1)), T0)
    }

    fn claimed() -> Job {
        let mut job = pending();
        job.claim(robot_a(), T0, 60).unwrap();
        job
    }

    fn running() -> Job {
        let mut job = claimed();
        job.start(&robot_a(), T1).unwrap();
        job
    }

    fn completed() -> Job {
        let mut job = running();
        job.complete(&robot_a(), None, T2).unwrap();
        job
    }

    fn failed() -> Job {
        let mut job = running();
        job.fail(&robot_a(), "Boom".into(), "it broke".into(), T2)
            .unwrap();
        job
    }

    fn cancelled() -> Job {
        let mut job = pending();
        job.cancel(CancelMode::Hard, T1).unwrap();
        job
    }

    fn finals() -> [Job; 3] {
        [completed(), failed(), cancelled()]
    }

    fn node(id: &str) -> NodeExecution {
        NodeExecution::new(id.to_owned(), "completed", 5, None, T1).unwrap()
    }

    /// Asserts the call was refused and left the job exactly as it was.
    fn assert_refused(
        mut job: Job,
        act: impl FnOnce(&mut Job) -> Result<(), TransitionError>,
    ) -> TransitionError {
        let before = job.clone();
        let err = act(&mut job).unwrap_err();
        assert_eq!(err.entity, "job");
        assert_eq!(job, before, "a refused transition changes nothing");
        err
    }

    // ---- Priority ----

    #[test]
    fn priority_defaults_to_10() {
        assert_eq!(Priority::default().value(), 10);
    }

    #[test]
    fn priority_accepts_every_value_from_0_to_20() {
        for v in 0..=20 {
            assert_eq!(Priority::new(v).unwrap().value(), u8::try_from(v).unwrap());
        }
        assert_eq!(Priority::new(0).unwrap(), Priority::HIGHEST);
        assert_eq!(Priority::new(20).unwrap(), Priority::LOWEST);
    }

    #[test]
    fn priority_outside_0_to_20_is_refused() {
        for v in [-1, 21, 255, 256, i64::MIN, i64::MAX] {
            let err = Priority::new(v).unwrap_err();
            assert_eq!(err.errors[0].field, "priority", "{v}");
        }
    }

    #[test]
    fn a_lower_number_is_a_higher_priority_and_sorts_first() {
        assert!(Priority::HIGHEST < Priority::default());
        assert!(Priority::default() < Priority::LOWEST);
    }

    // ---- JobStatus ----

    #[test]
    fn job_status_parses_every_status_it_prints() {
        for status in JobStatus::ALL {
            assert_eq!(status.to_string().parse::<JobStatus>().unwrap(), status);
        }
        assert_eq!("running".parse::<JobStatus>().unwrap(), JobStatus::Running);
    }

    #[test]
    fn an_unknown_job_status_is_refused() {
        for bad in ["", "done", "queued", "cancelled "] {
            let err = bad.parse::<JobStatus>().unwrap_err();
            assert_eq!(err.errors[0].field, "status", "{bad:?}");
        }
    }

    #[test]
    fn only_completed_failed_and_cancelled_are_final() {
        let finals: Vec<_> = JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(
            finals,
            [
                JobStatus::Completed,
                JobStatus::Failed,
                JobStatus::Cancelled
            ]
        );
    }

    #[test]
    fn only_claimed_and_running_jobs_are_held_by_a_robot() {
        let active: Vec<_> = JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(active, [JobStatus::Claimed, JobStatus::Running]);
    }

    // ---- creation ----

    #[test]
    fn a_new_job_is_pending_and_unheld() {
        let job = pending();
        assert_eq!(job.status, JobStatus::Pending);
        assert_eq!(job.robot_id, None);
        assert_eq!(job.created_at, T0);
        assert_eq!(job.updated_at, T0);
        assert_eq!(job.retry_count, 0);
        assert_eq!(job.max_retries, 3);
        assert_eq!(job.lease_expires_at, None);
        assert_eq!(job.cancel_requested, None);
        assert!(job.node_executions.is_empty());
        assert_eq!(job.duration_ms(), None);
    }

    // ---- claim ----

    #[test]
    fn claiming_a_pending_job_gives_the_robot_a_lease() {
        let job = claimed();
        assert_eq!(job.status, JobStatus::Claimed);
        assert_eq!(job.robot_id, Some(robot_a()));
        assert_eq!(job.claimed_at, Some(T0));
        assert_eq!(job.lease_expires_at, Some(T0 + Duration::seconds(60)));
        assert_eq!(job.updated_at, T0);
        assert_eq!(job.attempt, 1, "the first claim is the first attempt");
    }

    #[test]
    fn a_new_job_has_made_no_attempt() {
        assert_eq!(pending().attempt, 0);
    }

    #[test]
    fn every_claim_after_a_release_or_a_lost_lease_is_one_more_attempt() {
        let mut job = claimed();
        job.start(&robot_a(), T1).unwrap();
        job.release(&robot_a(), T1).unwrap();
        assert_eq!(job.attempt, 1, "giving a job back is no new attempt");
        job.claim(robot_b(), T2, 60).unwrap();
        assert_eq!(job.attempt, 2);
        job.expire_lease(T3).unwrap();
        assert_eq!(job.attempt, 2, "losing the lease is no new attempt");
        job.claim(robot_a(), T3, 60).unwrap();
        assert_eq!(job.attempt, 3);
        job.complete(&robot_a(), None, T3).unwrap();
        assert_eq!(
            job.attempt, 3,
            "the attempt that ended the job stays on record"
        );
    }

    #[test]
    fn only_a_pending_job_can_be_claimed() {
        for job in [claimed(), running(), completed(), failed(), cancelled()] {
            let status = job.status;
            let err = assert_refused(job, |j| j.claim(robot_b(), T3, 60));
            assert_eq!(err.state, status.as_str());
        }
    }

    // ---- start ----

    #[test]
    fn starting_a_claimed_job_makes_it_running() {
        let job = running();
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.started_at, Some(T1));
        assert_eq!(job.updated_at, T1);
    }

    #[test]
    fn starting_a_running_job_again_changes_nothing() {
        let mut job = running();
        let before = job.clone();
        job.start(&robot_a(), T3).unwrap();
        assert_eq!(job, before);
    }

    #[test]
    fn a_robot_cannot_start_a_job_held_by_another_robot() {
        let err = assert_refused(claimed(), |j| j.start(&robot_b(), T1));
        assert!(err.state.contains("another robot"), "{}", err.state);
    }

    #[test]
    fn a_pending_or_finished_job_cannot_be_started() {
        for job in [pending(), completed(), failed(), cancelled()] {
            assert_refused(job, |j| j.start(&robot_a(), T3));
        }
    }

    // ---- renew_lease ----

    #[test]
    fn renewing_moves_the_lease_forward_from_now() {
        let mut job = running();
        job.renew_lease(&robot_a(), T2, 90).unwrap();
        assert_eq!(job.lease_expires_at, Some(T2 + Duration::seconds(90)));
        assert_eq!(job.updated_at, T2);
        assert_eq!(job.status, JobStatus::Running);
    }

    #[test]
    fn a_claimed_job_can_have_its_lease_renewed() {
        let mut job = claimed();
        job.renew_lease(&robot_a(), T1, 60).unwrap();
        assert_eq!(job.lease_expires_at, Some(T1 + Duration::seconds(60)));
        assert_eq!(job.status, JobStatus::Claimed);
    }

    #[test]
    fn a_robot_cannot_renew_the_lease_of_a_job_held_by_another_robot() {
        assert_refused(running(), |j| j.renew_lease(&robot_b(), T2, 60));
    }

    #[test]
    fn a_pending_or_finished_job_has_no_lease_to_renew() {
        for job in [pending(), completed(), failed(), cancelled()] {
            assert_refused(job, |j| j.renew_lease(&robot_a(), T3, 60));
        }
    }

    // ---- record_node ----

    #[test]
    fn recording_a_node_on_a_claimed_job_starts_it() {
        let mut job = claimed();
        job.record_node(&robot_a(), node("n1"), T1).unwrap();
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.started_at, Some(T1));
        assert_eq!(job.node_executions, [node("n1")]);
    }

    #[test]
    fn recorded_nodes_accumulate_in_order() {
        let mut job = running();
        job.record_node(&robot_a(), node("n1"), T2).unwrap();
        job.record_node(&robot_a(), node("n2"), T3).unwrap();
        let ids: Vec<_> = job
            .node_executions
            .iter()
            .map(|n| n.node_id.as_str())
            .collect();
        assert_eq!(ids, ["n1", "n2"]);
        assert_eq!(job.started_at, Some(T1), "the start time does not move");
        assert_eq!(job.updated_at, T3);
    }

    #[test]
    fn a_robot_cannot_record_a_node_on_a_job_held_by_another_robot() {
        assert_refused(running(), |j| j.record_node(&robot_b(), node("n1"), T2));
    }

    #[test]
    fn nodes_cannot_be_recorded_on_a_pending_or_finished_job() {
        for job in [pending(), completed(), failed(), cancelled()] {
            assert_refused(job, |j| j.record_node(&robot_a(), node("n1"), T3));
        }
    }

    #[test]
    fn node_executions_validate_their_fields() {
        assert!(NodeExecution::new("n".into(), "skipped", 0, None, T0).is_ok());
        assert_eq!(
            NodeExecution::new(String::new(), "completed", 0, None, T0)
                .unwrap_err()
                .errors[0]
                .field,
            "node_id"
        );
        assert!(NodeExecution::new("n".repeat(255), "completed", 0, None, T0).is_ok());
        assert!(NodeExecution::new("n".repeat(256), "completed", 0, None, T0).is_err());
        assert_eq!(
            NodeExecution::new("n".into(), "done", 0, None, T0)
                .unwrap_err()
                .errors[0]
                .field,
            "status"
        );
        assert!(NodeExecution::new("n".into(), "failed", 0, Some("e".repeat(4000)), T0).is_ok());
        assert_eq!(
            NodeExecution::new("n".into(), "failed", 0, Some("e".repeat(4001)), T0)
                .unwrap_err()
                .errors[0]
                .field,
            "error_message"
        );
    }

    // ---- complete ----

    #[test]
    fn completing_a_running_job_ends_it_with_its_output() {
        let mut job = running();
        job.complete(&robot_a(), Some(json!({"rows": 3})), T2)
            .unwrap();
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(job.output, Some(json!({"rows": 3})));
        assert_eq!(job.completed_at, Some(T2));
        assert_eq!(job.lease_expires_at, None);
        assert_eq!(job.updated_at, T2);
    }

    #[test]
    fn a_claimed_job_can_complete_without_a_start_report() {
        let mut job = claimed();
        job.complete(&robot_a(), None, T2).unwrap();
        assert_eq!(job.status, JobStatus::Completed);
    }

    #[test]
    fn completing_a_cancelled_job_is_illegal() {
        let err = assert_refused(cancelled(), |j| j.complete(&robot_a(), None, T3));
        assert_eq!(err.state, "cancelled");
        assert_eq!(err.to_string(), "cannot complete a job that is cancelled");
    }

    #[test]
    fn a_hard_cancelled_running_job_cannot_be_completed_by_its_robot() {
        let mut job = running();
        job.cancel(CancelMode::Hard, T2).unwrap();
        assert_refused(job, |j| j.complete(&robot_a(), None, T3));
    }

    #[test]
    fn a_finished_or_pending_job_cannot_be_completed() {
        for job in [pending(), completed(), failed()] {
            assert_refused(job, |j| j.complete(&robot_a(), None, T3));
        }
    }

    #[test]
    fn a_robot_cannot_complete_a_job_held_by_another_robot() {
        let err = assert_refused(running(), |j| j.complete(&robot_b(), None, T2));
        assert_eq!(err.state, "held by another robot (running)");
    }

    // ---- fail ----

    #[test]
    fn failing_a_running_job_records_the_error() {
        let job = failed();
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.error_type.as_deref(), Some("Boom"));
        assert_eq!(job.error_message.as_deref(), Some("it broke"));
        assert_eq!(job.completed_at, Some(T2));
        assert_eq!(job.lease_expires_at, None);
    }

    #[test]
    fn a_robot_cannot_fail_a_job_held_by_another_robot() {
        assert_refused(running(), |j| {
            j.fail(&robot_b(), "E".into(), "m".into(), T2)
        });
    }

    #[test]
    fn a_finished_or_pending_job_cannot_be_failed() {
        for job in [pending(), completed(), failed(), cancelled()] {
            assert_refused(job, |j| j.fail(&robot_a(), "E".into(), "m".into(), T3));
        }
    }

    #[test]
    fn error_type_is_truncated_to_100_characters() {
        let mut job = running();
        job.fail(&robot_a(), "t".repeat(150), "m".into(), T2)
            .unwrap();
        assert_eq!(job.error_type.unwrap(), "t".repeat(100));
    }

    #[test]
    fn error_message_is_truncated_to_4000_characters() {
        let mut job = running();
        job.fail(&robot_a(), "E".into(), "m".repeat(5000), T2)
            .unwrap();
        assert_eq!(job.error_message.unwrap(), "m".repeat(4000));
    }

    #[test]
    fn errors_at_their_limit_are_kept_whole() {
        let mut job = running();
        job.fail(&robot_a(), "t".repeat(100), "m".repeat(4000), T2)
            .unwrap();
        assert_eq!(job.error_type.unwrap().len(), 100);
        assert_eq!(job.error_message.unwrap().len(), 4000);
    }

    #[test]
    fn truncation_counts_characters_and_never_splits_one() {
        let mut job = running();
        job.fail(&robot_a(), "é".repeat(101), "日".repeat(4001), T2)
            .unwrap();
        assert_eq!(job.error_type.unwrap(), "é".repeat(100));
        assert_eq!(job.error_message.unwrap(), "日".repeat(4000));
    }

    // ---- cancel ----

    #[test]
    fn cancelling_a_pending_job_ends_it_at_once_in_either_mode() {
        for mode in [CancelMode::Soft, CancelMode::Hard] {
            let mut job = pending();
            job.cancel(mode, T1).unwrap();
            assert_eq!(job.status, JobStatus::Cancelled);
            assert_eq!(job.cancel_requested, Some(mode));
            assert_eq!(job.completed_at, Some(T1));
        }
    }

    #[test]
    fn a_hard_cancel_ends_a_claimed_or_running_job_at_once() {
        for mut job in [claimed(), running()] {
            job.cancel(CancelMode::Hard, T2).unwrap();
            assert_eq!(job.status, JobStatus::Cancelled);
            assert_eq!(job.cancel_requested, Some(CancelMode::Hard));
            assert_eq!(job.completed_at, Some(T2));
            assert_eq!(job.lease_expires_at, None);
        }
    }

    #[test]
    fn a_soft_cancel_of_a_held_job_only_asks_the_robot_to_stop() {
        for mut job in [claimed(), running()] {
            let status = job.status;
            job.cancel(CancelMode::Soft, T2).unwrap();
            assert_eq!(job.status, status, "the robot still holds it");
            assert_eq!(job.cancel_requested, Some(CancelMode::Soft));
            assert_eq!(job.completed_at, None);
            assert!(job.lease_expires_at.is_some());
            assert_eq!(job.updated_at, T2);
        }
    }

    #[test]
    fn a_hard_cancel_after_a_soft_one_ends_the_job() {
        let mut job = running();
        job.cancel(CancelMode::Soft, T2).unwrap();
        job.cancel(CancelMode::Hard, T3).unwrap();
        assert_eq!(job.status, JobStatus::Cancelled);
        assert_eq!(job.cancel_requested, Some(CancelMode::Hard));
    }

    #[test]
    fn a_finished_job_cannot_be_cancelled() {
        for job in finals() {
            for mode in [CancelMode::Soft, CancelMode::Hard] {
                let status = job.status;
                let err = assert_refused(job.clone(), |j| j.cancel(mode, T3));
                assert_eq!(err.state, status.as_str());
            }
        }
    }

    #[test]
    fn cancel_modes_have_their_wire_names() {
        assert_eq!(CancelMode::Soft.as_str(), "soft");
        assert_eq!(CancelMode::Hard.as_str(), "hard");
    }

    // ---- acknowledge_cancel ----

    #[test]
    fn acknowledging_a_soft_cancel_ends_the_job_cancelled() {
        let mut job = running();
        job.cancel(CancelMode::Soft, T2).unwrap();
        job.acknowledge_cancel(&robot_a(), T3).unwrap();
        assert_eq!(job.status, JobStatus::Cancelled);
        assert_eq!(job.completed_at, Some(T3));
        assert_eq!(job.lease_expires_at, None);
    }

    #[test]
    fn a_cancellation_nobody_requested_cannot_be_acknowledged() {
        let err = assert_refused(running(), |j| j.acknowledge_cancel(&robot_a(), T2));
        assert_eq!(err.state, "running");
    }

    #[test]
    fn a_robot_cannot_acknowledge_a_cancel_of_a_job_held_by_another_robot() {
        let mut job = running();
        job.cancel(CancelMode::Soft, T2).unwrap();
        assert_refused(job, |j| j.acknowledge_cancel(&robot_b(), T3));
    }

    #[test]
    fn a_hard_cancelled_job_needs_no_acknowledgement() {
        let mut job = running();
        job.cancel(CancelMode::Hard, T2).unwrap();
        assert_refused(job, |j| j.acknowledge_cancel(&robot_a(), T3));
    }

    #[test]
    fn a_robot_may_still_complete_a_soft_cancelled_job_it_finished() {
        let mut job = running();
        job.cancel(CancelMode::Soft, T2).unwrap();
        job.complete(&robot_a(), None, T3).unwrap();
        assert_eq!(job.status, JobStatus::Completed);
    }

    // ---- release ----

    #[test]
    fn releasing_a_job_makes_it_pending_again_without_spending_a_retry() {
        let mut job = running();
        job.record_node(&robot_a(), node("n1"), T2).unwrap();
        job.release(&robot_a(), T3).unwrap();
        assert_eq!(job.status, JobStatus::Pending);
        assert_eq!(job.retry_count, 0);
        assert_eq!(job.robot_id, None);
        assert_eq!(job.claimed_at, None);
        assert_eq!(job.started_at, None);
        assert_eq!(job.lease_expires_at, None);
        assert!(job.node_executions.is_empty());
        assert_eq!(job.updated_at, T3);
    }

    #[test]
    fn a_released_job_can_be_claimed_by_another_robot() {
        let mut job = claimed();
        job.release(&robot_a(), T1).unwrap();
        job.claim(robot_b(), T2, 60).unwrap();
        assert_eq!(job.robot_id, Some(robot_b()));
    }

    #[test]
    fn releasing_a_job_with_a_cancel_requested_ends_it_cancelled() {
        let mut job = running();
        job.cancel(CancelMode::Soft, T2).unwrap();
        job.release(&robot_a(), T3).unwrap();
        assert_eq!(job.status, JobStatus::Cancelled);
        assert_eq!(job.completed_at, Some(T3));
    }

    #[test]
    fn a_robot_cannot_release_a_job_held_by_another_robot() {
        assert_refused(running(), |j| j.release(&robot_b(), T2));
    }

    #[test]
    fn a_pending_or_finished_job_cannot_be_released() {
        for job in [pending(), completed(), failed(), cancelled()] {
            assert_refused(job, |j| j.release(&robot_a(), T3));
        }
    }

    // ---- expire_lease ----

    #[test]
    fn an_expired_lease_makes_the_job_pending_again_while_retries_remain() {
        let mut job = running();
        job.record_node(&robot_a(), node("n1"), T1).unwrap();
        job.expire_lease(T3).unwrap();
        assert_eq!(job.status, JobStatus::Pending);
        assert_eq!(job.retry_count, 1);
        assert_eq!(job.robot_id, None);
        assert_eq!(job.lease_expires_at, None);
        assert!(job.node_executions.is_empty());
        assert_eq!(job.error_type, None);
    }

    #[test]
    fn an_expired_lease_fails_the_job_once_retries_are_spent() {
        let mut job = running();
        job.retry_count = job.max_retries;
        job.expire_lease(T3).unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.error_type.as_deref(), Some("LeaseExpired"));
        assert!(job.error_message.is_some());
        assert_eq!(job.completed_at, Some(T3));
        assert_eq!(job.retry_count, 3);
    }

    #[test]
    fn a_job_survives_exactly_max_retries_lease_expiries() {
        let mut job = pending();
        job.max_retries = 2;
        let mut now = T0;
        for expected_retry in 1..=2 {
            job.claim(robot_a(), now, 60).unwrap();
            now += Duration::seconds(60);
            job.expire_lease(now).unwrap();
            assert_eq!(job.status, JobStatus::Pending);
            assert_eq!(job.retry_count, expected_retry);
        }
        job.claim(robot_a(), now, 60).unwrap();
        now += Duration::seconds(60);
        job.expire_lease(now).unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.error_type.as_deref(), Some(Job::LEASE_EXPIRED));
    }

    #[test]
    fn with_no_retries_the_first_lease_expiry_fails_the_job() {
        let mut job = claimed();
        job.max_retries = 0;
        job.expire_lease(T3).unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.error_type.as_deref(), Some("LeaseExpired"));
    }

    #[test]
    fn an_expired_lease_with_a_cancel_requested_ends_the_job_cancelled() {
        let mut job = running();
        job.cancel(CancelMode::Soft, T2).unwrap();
        job.expire_lease(T3).unwrap();
        assert_eq!(job.status, JobStatus::Cancelled);
        assert_eq!(job.retry_count, 0);
        assert_eq!(job.error_type, None);
    }

    #[test]
    fn a_lease_that_has_not_lapsed_cannot_expire() {
        let err = assert_refused(claimed(), |j| j.expire_lease(T0 + Duration::seconds(59)));
        assert_eq!(err.state, "claimed");
    }

    #[test]
    fn a_lease_expires_at_its_exact_end() {
        let mut job = claimed();
        job.expire_lease(T0 + Duration::seconds(60)).unwrap();
        assert_eq!(job.status, JobStatus::Pending);
    }

    #[test]
    fn a_pending_or_finished_job_has_no_lease_to_expire() {
        for job in [pending(), completed(), failed(), cancelled()] {
            assert_refused(job, |j| j.expire_lease(T3));
        }
    }

    // ---- duration_ms ----

    #[test]
    fn an_unfinished_job_has_no_duration() {
        assert_eq!(pending().duration_ms(), None);
        assert_eq!(claimed().duration_ms(), None);
        assert_eq!(running().duration_ms(), None);
    }

    #[test]
    fn duration_runs_from_the_start_of_work_to_the_end() {
        let mut job = pending();
        job.claim(robot_a(), T1, 60).unwrap();
        job.start(&robot_a(), T1).unwrap();
        job.complete(&robot_a(), None, T1 + Duration::milliseconds(1_234))
            .unwrap();
        assert_eq!(job.duration_ms(), Some(1_234));
    }

    #[test]
    fn a_job_claimed_but_never_started_is_timed_from_its_claim() {
        let mut job = claimed();
        job.cancel(CancelMode::Hard, T2).unwrap();
        assert_eq!(job.duration_ms(), Some(20_000));
    }

    #[test]
    fn a_job_cancelled_before_any_claim_is_timed_from_its_creation() {
        let job = cancelled();
        assert_eq!(job.duration_ms(), Some(10_000));
    }
}
