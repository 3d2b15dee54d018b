//! Flows: long-running automation configurations that keep one job of a workflow going.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::{TransitionError, ValidationError, Validator};
use crate::ids::{JobId, WorkflowId};

/// A flow's identifier, chosen by the user: 1–100 characters, not `status` or `commands`
/// (those are paths of the flows API).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(String);

impl FlowId {
    pub fn parse(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        crate::text::check_length("flow_id", &value, 1, 100)?;
        if value == "status" || value == "commands" {
            return Err(ValidationError::field(
                "flow_id",
                "must not be 'status' or 'commands' (they are paths of the flows API)",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A flow's configuration: a JSON object with `flow_id` and `workflow_id`, other keys kept as given.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowConfig {
    flow_id: FlowId,
    workflow_id: WorkflowId,
    interval_seconds: u32,
    document: serde_json::Map<String, Value>,
}

impl FlowConfig {
    pub const DEFAULT_INTERVAL_SECONDS: u32 = 60;
    pub const MAX_INTERVAL_SECONDS: u32 = 31 * 24 * 3600;
    pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

    pub fn parse(value: Value) -> Result<Self, ValidationError> {
        let Value::Object(document) = value else {
            return Err(ValidationError::field("config", "must be a JSON object"));
        };
        if Value::Object(document.clone()).to_string().len() > Self::MAX_DOCUMENT_BYTES {
            return Err(ValidationError::field(
                "config",
                "must be at most 1 MB of JSON",
            ));
        }
        let mut v = Validator::new();
        let flow_id = match document.get("flow_id") {
            Some(Value::String(s)) => v.check(FlowId::parse(s.clone())),
            _ => {
                v.push("flow_id", "is required and must be a string");
                None
            }
        };
        let workflow_id = match document.get("workflow_id") {
            Some(Value::String(s)) => match s.parse::<WorkflowId>() {
                Ok(id) => Some(id),
                Err(_) => {
                    v.push("workflow_id", "must be a workflow's UUID");
                    None
                }
            },
            _ => {
                v.push("workflow_id", "is required and must be a string");
                None
            }
        };
        let interval_seconds = match document.get("interval_seconds") {
            None | Some(Value::Null) => Some(Self::DEFAULT_INTERVAL_SECONDS),
            Some(Value::Number(n)) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n <= Self::MAX_INTERVAL_SECONDS => Some(n),
                _ => {
                    v.push(
                        "interval_seconds",
                        format!(
                            "must be an integer from 0 to {}",
                            Self::MAX_INTERVAL_SECONDS
                        ),
                    );
                    None
                }
            },
            Some(_) => {
                v.push("interval_seconds", "must be an integer");
                None
            }
        };
        v.finish()?;
        match (flow_id, workflow_id, interval_seconds) {
            (Some(flow_id), Some(workflow_id), Some(interval_seconds)) => Ok(Self {
                flow_id,
                workflow_id,
                interval_seconds,
                document,
            }),
            // Each `None` above pushed an error that `finish` returned.
            _ => Err(ValidationError::field("config", "is invalid")),
        }
    }

    pub fn flow_id(&self) -> &FlowId {
        &self.flow_id
    }

    pub fn workflow_id(&self) -> WorkflowId {
        self.workflow_id
    }

    pub fn interval_seconds(&self) -> u32 {
        self.interval_seconds
    }

    /// The configuration exactly as the user gave it.
    pub fn document(&self) -> &serde_json::Map<String, Value> {
        &self.document
    }
}

/// Where a flow is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowStatus {
    Stopped,
    Running,
    Paused,
    /// A soft stop waits for the current job to finish.
    Stopping,
}

impl FlowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopping => "stopping",
        }
    }
}

impl fmt::Display for FlowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FlowStatus {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stopped" => Ok(Self::Stopped),
            "running" => Ok(Self::Running),
            "paused" => Ok(Self::Paused),
            "stopping" => Ok(Self::Stopping),
            _ => Err(ValidationError::field(
                "status",
                "must be one of stopped, running, paused, stopping",
            )),
        }
    }
}

/// The commands of `PATCH /flows/commands`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowCommand {
    Start,
    /// `hard`: cancel the current job (type 1); otherwise let it finish (type 0).
    Stop {
        hard: bool,
    },
    Pause,
    Resume,
}

impl FlowCommand {
    /// Parses the command name and the stop type (0 soft, 1 hard; default soft).
    pub fn parse(command: &str, stop_type: Option<i64>) -> Result<Self, ValidationError> {
        match command {
            "start" => Ok(Self::Start),
            "pause" => Ok(Self::Pause),
            "resume" => Ok(Self::Resume),
            "stop" => match stop_type {
                None | Some(0) => Ok(Self::Stop { hard: false }),
                Some(1) => Ok(Self::Stop { hard: true }),
                Some(_) => Err(ValidationError::field(
                    "type",
                    "must be 0 (soft stop) or 1 (hard stop)",
                )),
            },
            _ => Err(ValidationError::field(
                "command",
                "must be one of start, stop, pause, resume",
            )),
        }
    }
}

/// What the flow runner must do after a command, beyond storing the new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEffect {
    None,
    /// Cancel this job at once (hard stop).
    CancelJob(JobId),
}

/// A flow and its run state.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub config: FlowConfig,
    pub status: FlowStatus,
    pub current_job_id: Option<JobId>,
    /// When the next job may start (`interval_seconds` after the previous one ended).
    pub next_run_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

impl Flow {
    pub fn new(config: FlowConfig, now: Timestamp) -> Self {
        Self {
            config,
            status: FlowStatus::Stopped,
            current_job_id: None,
            next_run_at: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    pub fn flow_id(&self) -> &FlowId {
        self.config.flow_id()
    }

    /// Replaces the configuration (PUT); the flow id cannot change.
    pub fn reconfigure(
        &mut self,
        config: FlowConfig,
        now: Timestamp,
    ) -> Result<(), ValidationError> {
        if config.flow_id() != self.config.flow_id() {
            return Err(ValidationError::field(
                "flow_id",
                "must match the flow id in the path",
            ));
        }
        self.config = config;
        self.updated_at = now;
        Ok(())
    }

    /// Applies a command; every command is accepted in every state where it makes sense and is
    /// idempotent (starting a running flow keeps it running).
    pub fn apply(
        &mut self,
        command: FlowCommand,
        now: Timestamp,
    ) -> Result<FlowEffect, TransitionError> {
        use FlowStatus::*;
        let mut effect = FlowEffect::None;
        self.status = match (command, self.status) {
            (FlowCommand::Start, Stopped | Stopping) => {
                self.next_run_at = Some(now);
                Running
            }
            (FlowCommand::Start, s @ (Running | Paused)) => s,
            (FlowCommand::Stop { hard: true }, _) => {
                if let Some(job) = self.current_job_id.take() {
                    effect = FlowEffect::CancelJob(job);
                }
                self.next_run_at = None;
                Stopped
            }
            (FlowCommand::Stop { hard: false }, _) => {
                self.next_run_at = None;
                if self.current_job_id.is_some() {
                    Stopping
                } else {
                    Stopped
                }
            }
            (FlowCommand::Pause, Running | Paused) => Paused,
            (FlowCommand::Resume, Paused | Running) => {
                self.next_run_at.get_or_insert(now);
                Running
            }
            (FlowCommand::Pause | FlowCommand::Resume, s @ (Stopped | Stopping)) => {
                return Err(TransitionError {
                    entity: "flow",
                    action: if matches!(command, FlowCommand::Pause) {
                        "pause"
                    } else {
                        "resume"
                    },
                    state: s.to_string(),
                });
            }
        };
        self.updated_at = now;
        Ok(effect)
    }

    /// Whether the runner should start a job now.
    pub fn wants_job(&self, now: Timestamp) -> bool {
        self.status == FlowStatus::Running
            && self.current_job_id.is_none()
            && self.next_run_at.is_some_and(|t| t <= now)
    }

    pub fn job_started(&mut self, job: JobId, now: Timestamp) {
        self.current_job_id = Some(job);
        self.next_run_at = None;
        self.updated_at = now;
    }

    /// The current job ended: wait `interval_seconds`, or finish a soft stop.
    pub fn job_finished(&mut self, job: JobId, now: Timestamp) {
        if self.current_job_id != Some(job) {
            return;
        }
        self.current_job_id = None;
        match self.status {
            FlowStatus::Stopping => self.status = FlowStatus::Stopped,
            FlowStatus::Running | FlowStatus::Paused => {
                self.next_run_at =
                    Some(now + time::Duration::seconds(i64::from(self.config.interval_seconds())));
            }
            FlowStatus::Stopped => {}
        }
        self.updated_at = now;
    }
}
