//! Triggers: the ways a workflow starts by itself (OpenOrchestrator's triggers). The CasareRPA
//! `/schedules` are the SCHEDULED triggers.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::{TransitionError, ValidationError};
use crate::ids::{JobId, TriggerId, WorkflowId};
use crate::job::Priority;
use crate::queue::QueueName;
use crate::schedule::CronSchedule;
use crate::workflow::ExecutionMode;

crate::bounded_text!(
    /// A trigger's unique name: 1–100 characters (a schedule's name is its trigger's name, up to 255).
    TriggerName, field = "trigger_name", min = 1, max = 255
);

impl TriggerName {
    /// Triggers created through `/triggers` keep OpenOrchestrator's 100-character limit.
    pub fn parse_trigger(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        crate::text::check_length("trigger_name", &value, 1, 100)?;
        Self::parse(value)
    }
}

/// How a trigger decides to fire.
#[derive(Debug, Clone, PartialEq)]
pub enum TriggerKind {
    /// Fires once when IDLE and its `next_run` (if any) is due.
    Single,
    /// Fires on a cron schedule.
    Scheduled(Box<CronSchedule>),
    /// Fires when its queue holds at least `min_batch_size` NEW items.
    Queue {
        queue_name: QueueName,
        min_batch_size: u32,
    },
}

impl TriggerKind {
    pub fn type_name(&self) -> TriggerType {
        match self {
            Self::Single => TriggerType::Single,
            Self::Scheduled(_) => TriggerType::Scheduled,
            Self::Queue { .. } => TriggerType::Queue,
        }
    }
}

/// The trigger types as the API spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerType {
    Single,
    Scheduled,
    Queue,
}

impl TriggerType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "SINGLE",
            Self::Scheduled => "SCHEDULED",
            Self::Queue => "QUEUE",
        }
    }
}

impl FromStr for TriggerType {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "SINGLE" => Ok(Self::Single),
            "SCHEDULED" => Ok(Self::Scheduled),
            "QUEUE" => Ok(Self::Queue),
            _ => Err(ValidationError::field(
                "type",
                "must be one of SINGLE, SCHEDULED, QUEUE",
            )),
        }
    }
}

/// What the trigger's process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessStatus {
    Idle,
    Running,
    Failed,
    Done,
    Paused,
    Pausing,
    Killing,
    Killed,
}

impl ProcessStatus {
    pub const ALL: [ProcessStatus; 8] = [
        Self::Idle,
        Self::Running,
        Self::Failed,
        Self::Done,
        Self::Paused,
        Self::Pausing,
        Self::Killing,
        Self::Killed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "IDLE",
            Self::Running => "RUNNING",
            Self::Failed => "FAILED",
            Self::Done => "DONE",
            Self::Paused => "PAUSED",
            Self::Pausing => "PAUSING",
            Self::Killing => "KILLING",
            Self::Killed => "KILLED",
        }
    }
}

impl fmt::Display for ProcessStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProcessStatus {
    type Err = ValidationError;

    /// Accepts any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == upper)
            .ok_or_else(|| {
                ValidationError::field(
                    "process_status",
                    "must be one of IDLE, RUNNING, FAILED, DONE, PAUSED, PAUSING, KILLING, KILLED",
                )
            })
    }
}

/// How the job a trigger started ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Completed,
    Failed,
    Cancelled,
}

/// A named way to start a workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub id: TriggerId,
    pub name: TriggerName,
    pub kind: TriggerKind,
    pub workflow_id: WorkflowId,
    pub process_status: ProcessStatus,
    pub enabled: bool,
    /// A blocking trigger does not fire again while the job it started is still running.
    pub is_blocking: bool,
    pub priority: Priority,
    pub execution_mode: ExecutionMode,
    /// Handed to each job as its input, a JSON object.
    pub process_args: serde_json::Map<String, Value>,
    pub metadata: serde_json::Map<String, Value>,
    pub next_run: Option<Timestamp>,
    pub last_run: Option<Timestamp>,
    pub run_count: u64,
    pub failure_count: u64,
    pub current_job_id: Option<JobId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency counter: a fire succeeds only against the version it read, which
    /// is what makes one due trigger fire exactly once across servers.
    pub version: i64,
}

impl Trigger {
    /// Builds a new trigger; a SCHEDULED trigger's first `next_run` comes from its cron.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: TriggerId,
        name: TriggerName,
        kind: TriggerKind,
        workflow_id: WorkflowId,
        enabled: bool,
        priority: Priority,
        execution_mode: ExecutionMode,
        now: Timestamp,
    ) -> Self {
        let next_run = match &kind {
            TriggerKind::Scheduled(cron) => cron.next_after(now),
            TriggerKind::Single | TriggerKind::Queue { .. } => None,
        };
        Self {
            id,
            name,
            kind,
            workflow_id,
            process_status: ProcessStatus::Idle,
            enabled,
            is_blocking: true,
            priority,
            execution_mode,
            process_args: serde_json::Map::new(),
            metadata: serde_json::Map::new(),
            next_run,
            last_run: None,
            run_count: 0,
            failure_count: 0,
            current_job_id: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    /// Whether the trigger should fire now. `new_items` is its queue's NEW count (QUEUE only).
    ///
    /// SINGLE and QUEUE triggers fire only when IDLE. A SCHEDULED trigger keeps its rhythm after a
    /// failed run: it fires unless paused, being paused or killed, or (when blocking) still running.
    pub fn is_due(&self, now: Timestamp, new_items: u64) -> bool {
        if !self.enabled {
            return false;
        }
        match &self.kind {
            TriggerKind::Single => {
                self.process_status == ProcessStatus::Idle && self.next_run.is_none_or(|t| t <= now)
            }
            TriggerKind::Queue { min_batch_size, .. } => {
                self.process_status == ProcessStatus::Idle
                    && new_items >= u64::from(*min_batch_size)
            }
            TriggerKind::Scheduled(_) => {
                let status_allows = match self.process_status {
                    ProcessStatus::Idle
                    | ProcessStatus::Failed
                    | ProcessStatus::Done
                    | ProcessStatus::Killed => true,
                    ProcessStatus::Running => !self.is_blocking,
                    ProcessStatus::Paused | ProcessStatus::Pausing | ProcessStatus::Killing => {
                        false
                    }
                };
                status_allows && self.next_run.is_some_and(|t| t <= now)
            }
        }
    }

    /// Records a fire that started `job`. A SCHEDULED trigger moves `next_run` to the first tick
    /// after now, so a window missed during downtime fires once, not once per missed tick.
    pub fn fire(&mut self, job: JobId, now: Timestamp) {
        self.process_status = ProcessStatus::Running;
        self.current_job_id = Some(job);
        self.last_run = Some(now);
        self.run_count += 1;
        if let TriggerKind::Scheduled(cron) = &self.kind {
            self.next_run = cron.next_after(now);
        }
        self.updated_at = now;
    }

    /// Records a manual run (the schedule's "trigger now") without touching the rhythm.
    pub fn fire_manually(&mut self, job: JobId, now: Timestamp) {
        let next_run = self.next_run;
        self.fire(job, now);
        self.next_run = next_run;
    }

    /// The job this trigger started ended; the status follows DESIGN §3.
    pub fn job_finished(&mut self, job: JobId, outcome: JobOutcome, now: Timestamp) {
        if self.current_job_id != Some(job) {
            // A later fire already replaced it (non-blocking schedules); only counts change.
            if outcome == JobOutcome::Failed {
                self.failure_count += 1;
            }
            self.updated_at = now;
            return;
        }
        self.current_job_id = None;
        self.process_status = match outcome {
            JobOutcome::Failed => {
                self.failure_count += 1;
                ProcessStatus::Failed
            }
            JobOutcome::Cancelled => ProcessStatus::Killed,
            JobOutcome::Completed => match (&self.kind, self.process_status) {
                (_, ProcessStatus::Pausing) => ProcessStatus::Paused,
                (TriggerKind::Single, _) => ProcessStatus::Done,
                _ => ProcessStatus::Idle,
            },
        };
        self.updated_at = now;
    }

    /// An operator or integrator sets the status (`POST /api/trigger`). IDLE re-arms a SINGLE trigger.
    pub fn set_process_status(&mut self, status: ProcessStatus, now: Timestamp) {
        self.process_status = status;
        if status == ProcessStatus::Idle && self.kind == TriggerKind::Single {
            self.next_run = self.next_run.filter(|t| *t > now);
        }
        self.updated_at = now;
    }

    /// Pausing a running trigger lets its job finish first.
    pub fn pause(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        self.process_status = match self.process_status {
            ProcessStatus::Running => ProcessStatus::Pausing,
            ProcessStatus::Killing => return Err(self.refuse("pause")),
            _ => ProcessStatus::Paused,
        };
        self.updated_at = now;
        Ok(())
    }

    pub fn set_enabled(&mut self, enabled: bool, now: Timestamp) {
        if enabled && !self.enabled {
            // Re-enabling starts from now: windows missed while disabled are not replayed.
            if let TriggerKind::Scheduled(cron) = &self.kind {
                self.next_run = cron.next_after(now);
            }
        }
        self.enabled = enabled;
        self.updated_at = now;
    }

    pub fn cron(&self) -> Option<&CronSchedule> {
        match &self.kind {
            TriggerKind::Scheduled(cron) => Some(cron),
            _ => None,
        }
    }

    fn refuse(&self, action: &'static str) -> TransitionError {
        TransitionError {
            entity: "trigger",
            action,
            state: self.process_status.to_string(),
        }
    }
}
