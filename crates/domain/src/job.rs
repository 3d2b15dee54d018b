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
        crate::text::check_length("node_id", &node_id, 1, 255)?;
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
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
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
    pub error_message: Option<String>,
    pub error_type: Option<String>,
    pub cancel_requested: Option<CancelMode>,
    pub node_executions: Vec<NodeExecution>,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency counter, bumped by every stored change.
    pub version: i64,
}

impl Job {
    /// A claim holds a job for this long unless the robot renews it.
    pub const DEFAULT_LEASE_SECONDS: u32 = 60;
    pub const MAX_ERROR_MESSAGE: usize = 4000;
    pub const MAX_ERROR_TYPE: usize = 100;
    pub const LEASE_EXPIRED: &'static str = "LeaseExpired";

    /// A robot takes a pending job.
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

    /// Milliseconds between the claim (or creation) and the end, once the job has ended.
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

fn truncate(mut text: String, max_chars: usize) -> String {
    if let Some((idx, _)) = text.char_indices().nth(max_chars) {
        text.truncate(idx);
    }
    text
}
