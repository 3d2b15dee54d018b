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
        crate::text::check_name("flow_id", &value, 1, 100)?;
        if value == "status" || value == "commands" {
            return Err(ValidationError::field(
                "flow_id",
                "must not be 'status' or 'commands' (they are paths of the flows API)",
            ));
        }
        Ok(Self(value))
    }

    /// An id read back from storage: only its length is checked, so an id stored before ids
    /// refused control characters still reads back.
    pub fn from_stored(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        crate::text::check_stored_length("flow_id", &value, 1, 100)?;
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
        Self::read(value, FlowId::parse)
    }

    /// A configuration read back from storage: its `flow_id` is read with
    /// [`FlowId::from_stored`], so one stored under earlier rules still reads back.
    pub fn parse_stored(value: Value) -> Result<Self, ValidationError> {
        Self::read(value, FlowId::from_stored)
    }

    fn read(
        value: Value,
        flow_id: impl Fn(String) -> Result<FlowId, ValidationError>,
    ) -> Result<Self, ValidationError> {
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
            Some(Value::String(s)) => v.check(flow_id(s.clone())),
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
///
/// Its fields are private: it changes only through its transitions, so its status, holder and
/// dates always agree. Stores move it in and out of storage as a [`FlowRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    config: FlowConfig,
    status: FlowStatus,
    current_job_id: Option<JobId>,
    /// When the next job may start (`interval_seconds` after the previous one ended).
    next_run_at: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
    version: i64,
}

/// A flow's stored state, field by field: what a store writes and reads back.
///
/// A record is plain data and checks nothing; [`Flow::from_record`] trusts it to be what
/// [`Flow::into_record`] gave, which is why only stores and tests should build one.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
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
    /// The flow as a store kept it.
    pub fn from_record(record: FlowRecord) -> Self {
        let FlowRecord {
            config,
            status,
            current_job_id,
            next_run_at,
            created_at,
            updated_at,
            version,
        } = record;
        Self {
            config,
            status,
            current_job_id,
            next_run_at,
            created_at,
            updated_at,
            version,
        }
    }

    /// Its state for a store to write.
    pub fn into_record(self) -> FlowRecord {
        let Self {
            config,
            status,
            current_job_id,
            next_run_at,
            created_at,
            updated_at,
            version,
        } = self;
        FlowRecord {
            config,
            status,
            current_job_id,
            next_run_at,
            created_at,
            updated_at,
            version,
        }
    }

    /// A store calls this once it has written the flow's change: the optimistic-concurrency
    /// counter moves one on, as the stored copy's did.
    pub fn mark_stored(&mut self) {
        self.version += 1;
    }

    /// Changes the record behind the flow directly, bypassing its transitions: for tests
    /// that need a state no short path of transitions reaches. Built only for tests and with
    /// the `testing` feature.
    #[cfg(any(test, feature = "testing"))]
    pub fn edit(&mut self, change: impl FnOnce(&mut FlowRecord)) {
        let mut record = self.to_record();
        change(&mut record);
        *self = Self::from_record(record);
    }

    /// [`Flow::into_record`] of a copy.
    pub fn to_record(&self) -> FlowRecord {
        self.clone().into_record()
    }

    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    pub fn status(&self) -> FlowStatus {
        self.status
    }

    pub fn current_job_id(&self) -> Option<JobId> {
        self.current_job_id
    }

    /// When the next job may start (`interval_seconds` after the previous one ended).
    pub fn next_run_at(&self) -> Option<Timestamp> {
        self.next_run_at
    }

    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }

    pub fn version(&self) -> i64 {
        self.version
    }
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

    /// The flow learns at `now` that its job ended at `ended_at`: the interval runs from the
    /// job's end, and the change is stamped with the time it was learnt.
    pub fn job_ended(&mut self, job: JobId, ended_at: Timestamp, now: Timestamp) {
        self.job_finished(job, ended_at);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::Duration;
    use time::macros::datetime;
    use uuid::Uuid;

    const NOW: Timestamp = datetime!(2025-07-01 09:00 UTC);
    const WORKFLOW: &str = "00000000-0000-0000-0000-00000000002a";

    fn job(n: u128) -> JobId {
        JobId::from_uuid(Uuid::from_u128(n))
    }

    fn fields(err: &ValidationError) -> Vec<&str> {
        err.errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn config_with(interval: Option<u32>) -> FlowConfig {
        let mut doc = json!({"flow_id": "sync", "workflow_id": WORKFLOW});
        if let Some(i) = interval {
            doc["interval_seconds"] = json!(i);
        }
        FlowConfig::parse(doc).unwrap()
    }

    fn flow_in(status: FlowStatus, current_job: Option<JobId>) -> Flow {
        let mut flow = Flow::new(config_with(Some(30)), NOW);
        flow.status = status;
        flow.current_job_id = current_job;
        flow
    }

    const ALL_STATUSES: [FlowStatus; 4] = [
        FlowStatus::Stopped,
        FlowStatus::Running,
        FlowStatus::Paused,
        FlowStatus::Stopping,
    ];

    // ---- FlowId ----

    #[test]
    fn a_flow_id_of_1_to_100_characters_is_accepted() {
        assert_eq!(FlowId::parse("f").unwrap().as_str(), "f");
        assert!(FlowId::parse("f".repeat(100)).is_ok());
        assert!(FlowId::parse("é".repeat(100)).is_ok());
    }

    #[test]
    fn an_empty_flow_id_is_refused() {
        assert_eq!(fields(&FlowId::parse("").unwrap_err()), ["flow_id"]);
    }

    #[test]
    fn a_flow_id_over_100_characters_is_refused() {
        assert_eq!(
            fields(&FlowId::parse("f".repeat(101)).unwrap_err()),
            ["flow_id"]
        );
    }

    #[test]
    fn the_flow_api_path_names_are_not_flow_ids() {
        assert_eq!(fields(&FlowId::parse("status").unwrap_err()), ["flow_id"]);
        assert_eq!(fields(&FlowId::parse("commands").unwrap_err()), ["flow_id"]);
    }

    #[test]
    fn names_merely_resembling_the_api_paths_are_accepted() {
        for ok in ["statuses", "my-commands", "status2"] {
            assert!(FlowId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_flow_id_displays_as_given() {
        assert_eq!(
            FlowId::parse("Nightly Sync").unwrap().to_string(),
            "Nightly Sync"
        );
    }

    // ---- FlowConfig::parse ----

    #[test]
    fn a_minimal_config_takes_the_default_interval() {
        let c = FlowConfig::parse(json!({"flow_id": "sync", "workflow_id": WORKFLOW})).unwrap();
        assert_eq!(c.flow_id().as_str(), "sync");
        assert_eq!(c.workflow_id(), WorkflowId::from_uuid(Uuid::from_u128(42)));
        assert_eq!(c.interval_seconds(), 60);
        assert_eq!(FlowConfig::DEFAULT_INTERVAL_SECONDS, 60);
    }

    #[test]
    fn a_null_interval_takes_the_default() {
        let c = FlowConfig::parse(
            json!({"flow_id": "sync", "workflow_id": WORKFLOW, "interval_seconds": null}),
        )
        .unwrap();
        assert_eq!(c.interval_seconds(), 60);
    }

    #[test]
    fn a_config_must_be_a_json_object() {
        for bad in [json!([]), json!("sync"), json!(1), json!(null), json!(true)] {
            assert_eq!(fields(&FlowConfig::parse(bad).unwrap_err()), ["config"]);
        }
    }

    #[test]
    fn flow_id_and_workflow_id_are_required() {
        let err = FlowConfig::parse(json!({})).unwrap_err();
        assert_eq!(fields(&err), ["flow_id", "workflow_id"]);
    }

    #[test]
    fn flow_id_and_workflow_id_must_be_strings() {
        let err = FlowConfig::parse(json!({"flow_id": 5, "workflow_id": 42})).unwrap_err();
        assert_eq!(fields(&err), ["flow_id", "workflow_id"]);
        let err = FlowConfig::parse(json!({"flow_id": null, "workflow_id": null})).unwrap_err();
        assert_eq!(fields(&err), ["flow_id", "workflow_id"]);
    }

    #[test]
    fn workflow_id_must_be_a_uuid() {
        let err =
            FlowConfig::parse(json!({"flow_id": "sync", "workflow_id": "nightly"})).unwrap_err();
        assert_eq!(fields(&err), ["workflow_id"]);
    }

    #[test]
    fn the_flow_id_inside_a_config_follows_the_flow_id_rules() {
        for bad in [String::new(), "status".to_owned(), "x".repeat(101)] {
            let err =
                FlowConfig::parse(json!({"flow_id": bad, "workflow_id": WORKFLOW})).unwrap_err();
            assert_eq!(fields(&err), ["flow_id"]);
        }
    }

    #[test]
    fn interval_seconds_accepts_zero_and_the_maximum() {
        assert_eq!(config_with(Some(0)).interval_seconds(), 0);
        let max = FlowConfig::MAX_INTERVAL_SECONDS;
        assert_eq!(config_with(Some(max)).interval_seconds(), max);
    }

    #[test]
    fn interval_seconds_beyond_the_maximum_is_refused() {
        let too_long = u64::from(FlowConfig::MAX_INTERVAL_SECONDS) + 1;
        let err = FlowConfig::parse(
            json!({"flow_id": "sync", "workflow_id": WORKFLOW, "interval_seconds": too_long}),
        )
        .unwrap_err();
        assert_eq!(fields(&err), ["interval_seconds"]);
    }

    #[test]
    fn interval_seconds_must_be_a_non_negative_integer() {
        for bad in [
            json!(-1),
            json!(1.5),
            json!("60"),
            json!(true),
            json!(u64::MAX),
        ] {
            let err = FlowConfig::parse(
                json!({"flow_id": "sync", "workflow_id": WORKFLOW, "interval_seconds": bad}),
            )
            .unwrap_err();
            assert_eq!(fields(&err), ["interval_seconds"], "{bad}");
        }
    }

    #[test]
    fn every_config_error_is_reported_together() {
        let err =
            FlowConfig::parse(json!({"flow_id": "", "workflow_id": "x", "interval_seconds": -5}))
                .unwrap_err();
        assert_eq!(fields(&err), ["flow_id", "workflow_id", "interval_seconds"]);
    }

    #[test]
    fn other_config_keys_are_kept_as_given() {
        let given = json!({
            "flow_id": "sync",
            "workflow_id": WORKFLOW,
            "interval_seconds": 15,
            "source": {"url": "https://example.test", "retries": [1, 2]},
            "note": null,
        });
        let c = FlowConfig::parse(given.clone()).unwrap();
        assert_eq!(Value::Object(c.document().clone()), given);
        assert_eq!(c.interval_seconds(), 15);
    }

    #[test]
    fn a_config_larger_than_a_megabyte_is_refused() {
        let big = "x".repeat(FlowConfig::MAX_DOCUMENT_BYTES);
        let err =
            FlowConfig::parse(json!({"flow_id": "sync", "workflow_id": WORKFLOW, "blob": big}))
                .unwrap_err();
        assert_eq!(fields(&err), ["config"]);
    }

    // ---- FlowCommand::parse ----

    #[test]
    fn start_pause_and_resume_parse_without_a_type() {
        assert_eq!(
            FlowCommand::parse("start", None).unwrap(),
            FlowCommand::Start
        );
        assert_eq!(
            FlowCommand::parse("pause", None).unwrap(),
            FlowCommand::Pause
        );
        assert_eq!(
            FlowCommand::parse("resume", None).unwrap(),
            FlowCommand::Resume
        );
    }

    #[test]
    fn stop_type_0_is_soft_and_1_is_hard() {
        assert_eq!(
            FlowCommand::parse("stop", Some(0)).unwrap(),
            FlowCommand::Stop { hard: false }
        );
        assert_eq!(
            FlowCommand::parse("stop", Some(1)).unwrap(),
            FlowCommand::Stop { hard: true }
        );
    }

    #[test]
    fn a_stop_without_a_type_is_soft() {
        assert_eq!(
            FlowCommand::parse("stop", None).unwrap(),
            FlowCommand::Stop { hard: false }
        );
    }

    #[test]
    fn any_other_stop_type_is_refused() {
        for t in [-1, 2, 99] {
            assert_eq!(
                fields(&FlowCommand::parse("stop", Some(t)).unwrap_err()),
                ["type"]
            );
        }
    }

    #[test]
    fn an_unknown_command_is_refused() {
        for bad in ["", "restart", "STOP", "Start", "kill"] {
            assert_eq!(
                fields(&FlowCommand::parse(bad, None).unwrap_err()),
                ["command"],
                "{bad:?}"
            );
        }
    }

    // ---- FlowStatus ----

    #[test]
    fn flow_statuses_round_trip_through_their_names() {
        for s in ALL_STATUSES {
            assert_eq!(s.to_string().parse::<FlowStatus>().unwrap(), s);
        }
        assert_eq!(
            fields(&"finished".parse::<FlowStatus>().unwrap_err()),
            ["status"]
        );
    }

    // ---- Flow::new and reconfigure ----

    #[test]
    fn a_new_flow_is_stopped_with_no_job() {
        let flow = Flow::new(config_with(None), NOW);
        assert_eq!(flow.status, FlowStatus::Stopped);
        assert_eq!(flow.current_job_id, None);
        assert_eq!(flow.next_run_at, None);
        assert_eq!(flow.flow_id().as_str(), "sync");
        assert!(!flow.wants_job(NOW));
    }

    #[test]
    fn reconfiguring_keeps_the_flow_id() {
        let mut flow = Flow::new(config_with(None), NOW);
        flow.reconfigure(config_with(Some(5)), NOW + Duration::seconds(1))
            .unwrap();
        assert_eq!(flow.config.interval_seconds(), 5);
        assert_eq!(flow.updated_at, NOW + Duration::seconds(1));
        let other =
            FlowConfig::parse(json!({"flow_id": "other", "workflow_id": WORKFLOW})).unwrap();
        let before = flow.clone();
        assert_eq!(
            fields(&flow.reconfigure(other, NOW).unwrap_err()),
            ["flow_id"]
        );
        assert_eq!(flow, before);
    }

    // ---- apply: start ----

    #[test]
    fn starting_a_stopped_flow_runs_it_at_once() {
        let mut flow = flow_in(FlowStatus::Stopped, None);
        let effect = flow.apply(FlowCommand::Start, NOW).unwrap();
        assert_eq!(effect, FlowEffect::None);
        assert_eq!(flow.status, FlowStatus::Running);
        assert_eq!(flow.next_run_at, Some(NOW));
        assert!(flow.wants_job(NOW));
    }

    #[test]
    fn starting_a_stopping_flow_keeps_it_running_after_its_job() {
        let mut flow = flow_in(FlowStatus::Stopping, Some(job(1)));
        flow.apply(FlowCommand::Start, NOW).unwrap();
        assert_eq!(flow.status, FlowStatus::Running);
        assert_eq!(flow.current_job_id, Some(job(1)));
        assert!(!flow.wants_job(NOW), "its job is still running");
        flow.job_finished(job(1), NOW + Duration::seconds(5));
        assert_eq!(flow.status, FlowStatus::Running);
        assert_eq!(flow.next_run_at, Some(NOW + Duration::seconds(35)));
    }

    #[test]
    fn starting_a_running_flow_keeps_it_running() {
        let mut flow = flow_in(FlowStatus::Running, Some(job(1)));
        flow.next_run_at = None;
        let effect = flow.apply(FlowCommand::Start, NOW).unwrap();
        assert_eq!(effect, FlowEffect::None);
        assert_eq!(flow.status, FlowStatus::Running);
        assert_eq!(flow.current_job_id, Some(job(1)));
        assert_eq!(flow.next_run_at, None);
    }

    #[test]
    fn starting_a_paused_flow_leaves_it_paused() {
        let mut flow = flow_in(FlowStatus::Paused, None);
        flow.apply(FlowCommand::Start, NOW).unwrap();
        assert_eq!(flow.status, FlowStatus::Paused);
    }

    // ---- apply: stop ----

    #[test]
    fn a_hard_stop_with_a_current_job_cancels_it() {
        for status in [
            FlowStatus::Running,
            FlowStatus::Paused,
            FlowStatus::Stopping,
        ] {
            let mut flow = flow_in(status, Some(job(9)));
            let effect = flow.apply(FlowCommand::Stop { hard: true }, NOW).unwrap();
            assert_eq!(effect, FlowEffect::CancelJob(job(9)), "{status}");
            assert_eq!(flow.status, FlowStatus::Stopped);
            assert_eq!(flow.current_job_id, None);
            assert_eq!(flow.next_run_at, None);
        }
    }

    #[test]
    fn a_hard_stop_without_a_job_just_stops() {
        for status in ALL_STATUSES {
            let mut flow = flow_in(status, None);
            flow.next_run_at = Some(NOW);
            let effect = flow.apply(FlowCommand::Stop { hard: true }, NOW).unwrap();
            assert_eq!(effect, FlowEffect::None, "{status}");
            assert_eq!(flow.status, FlowStatus::Stopped);
            assert_eq!(flow.next_run_at, None);
        }
    }

    #[test]
    fn a_soft_stop_while_a_job_runs_waits_for_it() {
        for status in [
            FlowStatus::Running,
            FlowStatus::Paused,
            FlowStatus::Stopping,
        ] {
            let mut flow = flow_in(status, Some(job(3)));
            let effect = flow.apply(FlowCommand::Stop { hard: false }, NOW).unwrap();
            assert_eq!(effect, FlowEffect::None, "{status}");
            assert_eq!(flow.status, FlowStatus::Stopping);
            assert_eq!(flow.current_job_id, Some(job(3)));
            assert_eq!(flow.next_run_at, None);
        }
    }

    #[test]
    fn a_soft_stop_without_a_job_stops_at_once() {
        for status in ALL_STATUSES {
            let mut flow = flow_in(status, None);
            flow.next_run_at = Some(NOW);
            let effect = flow.apply(FlowCommand::Stop { hard: false }, NOW).unwrap();
            assert_eq!(effect, FlowEffect::None);
            assert_eq!(flow.status, FlowStatus::Stopped, "{status}");
            assert_eq!(flow.next_run_at, None);
        }
    }

    #[test]
    fn a_soft_stop_finishes_when_the_job_ends() {
        let mut flow = flow_in(FlowStatus::Running, Some(job(3)));
        flow.apply(FlowCommand::Stop { hard: false }, NOW).unwrap();
        flow.job_finished(job(3), NOW + Duration::seconds(10));
        assert_eq!(flow.status, FlowStatus::Stopped);
        assert_eq!(flow.current_job_id, None);
        assert_eq!(flow.next_run_at, None);
        assert!(!flow.wants_job(NOW + Duration::days(1)));
    }

    // ---- apply: pause and resume ----

    #[test]
    fn pausing_a_running_flow_pauses_it_and_keeps_its_job() {
        let mut flow = flow_in(FlowStatus::Running, Some(job(2)));
        assert_eq!(
            flow.apply(FlowCommand::Pause, NOW).unwrap(),
            FlowEffect::None
        );
        assert_eq!(flow.status, FlowStatus::Paused);
        assert_eq!(flow.current_job_id, Some(job(2)));
    }

    #[test]
    fn pausing_a_paused_flow_keeps_it_paused() {
        let mut flow = flow_in(FlowStatus::Paused, None);
        flow.apply(FlowCommand::Pause, NOW).unwrap();
        assert_eq!(flow.status, FlowStatus::Paused);
    }

    #[test]
    fn a_stopped_or_stopping_flow_cannot_be_paused() {
        for status in [FlowStatus::Stopped, FlowStatus::Stopping] {
            let mut flow = flow_in(status, None);
            let before = flow.clone();
            let err = flow
                .apply(FlowCommand::Pause, NOW + Duration::seconds(1))
                .unwrap_err();
            assert_eq!(err.entity, "flow");
            assert_eq!(err.action, "pause");
            assert_eq!(err.state, status.as_str());
            assert_eq!(flow, before);
        }
    }

    #[test]
    fn a_stopped_or_stopping_flow_cannot_be_resumed() {
        for status in [FlowStatus::Stopped, FlowStatus::Stopping] {
            let mut flow = flow_in(status, None);
            let before = flow.clone();
            let err = flow
                .apply(FlowCommand::Resume, NOW + Duration::seconds(1))
                .unwrap_err();
            assert_eq!(err.action, "resume");
            assert_eq!(err.state, status.as_str());
            assert_eq!(flow, before);
        }
    }

    #[test]
    fn resuming_a_paused_flow_runs_it_now_when_no_run_was_planned() {
        let mut flow = flow_in(FlowStatus::Paused, None);
        flow.next_run_at = None;
        flow.apply(FlowCommand::Resume, NOW).unwrap();
        assert_eq!(flow.status, FlowStatus::Running);
        assert_eq!(flow.next_run_at, Some(NOW));
        assert!(flow.wants_job(NOW));
    }

    #[test]
    fn resuming_keeps_a_planned_run_time() {
        let mut flow = flow_in(FlowStatus::Paused, None);
        let planned = NOW + Duration::seconds(20);
        flow.next_run_at = Some(planned);
        flow.apply(FlowCommand::Resume, NOW).unwrap();
        assert_eq!(flow.next_run_at, Some(planned));
        assert!(!flow.wants_job(NOW));
        assert!(flow.wants_job(planned));
    }

    #[test]
    fn resuming_a_running_flow_keeps_it_running() {
        let mut flow = flow_in(FlowStatus::Running, Some(job(1)));
        flow.apply(FlowCommand::Resume, NOW).unwrap();
        assert_eq!(flow.status, FlowStatus::Running);
        assert_eq!(flow.current_job_id, Some(job(1)));
    }

    #[test]
    fn an_accepted_command_stamps_updated_at() {
        let mut flow = flow_in(FlowStatus::Stopped, None);
        flow.apply(FlowCommand::Start, NOW + Duration::minutes(3))
            .unwrap();
        assert_eq!(flow.updated_at, NOW + Duration::minutes(3));
    }

    // ---- wants_job ----

    #[test]
    fn a_running_flow_wants_a_job_only_when_idle_and_due() {
        let mut flow = flow_in(FlowStatus::Running, None);
        flow.next_run_at = Some(NOW);
        assert!(flow.wants_job(NOW));
        assert!(!flow.wants_job(NOW - Duration::seconds(1)));
        flow.next_run_at = None;
        assert!(!flow.wants_job(NOW));
        flow.next_run_at = Some(NOW);
        flow.current_job_id = Some(job(1));
        assert!(!flow.wants_job(NOW));
    }

    #[test]
    fn only_a_running_flow_wants_a_job() {
        for status in [
            FlowStatus::Stopped,
            FlowStatus::Paused,
            FlowStatus::Stopping,
        ] {
            let mut flow = flow_in(status, None);
            flow.next_run_at = Some(NOW);
            assert!(!flow.wants_job(NOW + Duration::days(1)), "{status}");
        }
    }

    // ---- job_started / job_finished ----

    #[test]
    fn a_started_job_becomes_current_and_clears_the_plan() {
        let mut flow = flow_in(FlowStatus::Stopped, None);
        flow.apply(FlowCommand::Start, NOW).unwrap();
        flow.job_started(job(5), NOW + Duration::seconds(1));
        assert_eq!(flow.current_job_id, Some(job(5)));
        assert_eq!(flow.next_run_at, None);
        assert_eq!(flow.updated_at, NOW + Duration::seconds(1));
        assert!(!flow.wants_job(NOW + Duration::days(1)));
    }

    #[test]
    fn the_next_job_waits_interval_seconds_after_the_last_one_ends() {
        let mut flow = flow_in(FlowStatus::Running, Some(job(5)));
        let end = NOW + Duration::minutes(2);
        flow.job_finished(job(5), end);
        assert_eq!(flow.current_job_id, None);
        assert_eq!(flow.status, FlowStatus::Running);
        assert_eq!(flow.next_run_at, Some(end + Duration::seconds(30)));
        assert!(!flow.wants_job(end + Duration::seconds(29)));
        assert!(flow.wants_job(end + Duration::seconds(30)));
    }

    #[test]
    fn the_default_interval_is_sixty_seconds_between_runs() {
        let mut flow = Flow::new(config_with(None), NOW);
        flow.apply(FlowCommand::Start, NOW).unwrap();
        flow.job_started(job(1), NOW);
        flow.job_finished(job(1), NOW + Duration::seconds(10));
        assert_eq!(flow.next_run_at, Some(NOW + Duration::seconds(70)));
    }

    #[test]
    fn a_paused_flow_plans_its_next_run_but_waits_for_resume() {
        let mut flow = flow_in(FlowStatus::Paused, Some(job(5)));
        flow.job_finished(job(5), NOW);
        assert_eq!(flow.status, FlowStatus::Paused);
        assert_eq!(flow.next_run_at, Some(NOW + Duration::seconds(30)));
        assert!(!flow.wants_job(NOW + Duration::hours(1)));
        flow.apply(FlowCommand::Resume, NOW + Duration::hours(1))
            .unwrap();
        assert!(flow.wants_job(NOW + Duration::hours(1)));
    }

    #[test]
    fn a_stopping_flow_stops_when_its_job_ends() {
        let mut flow = flow_in(FlowStatus::Stopping, Some(job(5)));
        flow.job_finished(job(5), NOW);
        assert_eq!(flow.status, FlowStatus::Stopped);
        assert_eq!(flow.current_job_id, None);
        assert_eq!(flow.next_run_at, None);
    }

    #[test]
    fn the_end_of_a_job_that_is_not_current_is_ignored() {
        for status in ALL_STATUSES {
            let mut flow = flow_in(status, Some(job(5)));
            let before = flow.clone();
            flow.job_finished(job(6), NOW + Duration::seconds(1));
            assert_eq!(flow, before, "{status}");
        }
        let mut stopped = flow_in(FlowStatus::Stopped, None);
        let before = stopped.clone();
        stopped.job_finished(job(6), NOW + Duration::seconds(1));
        assert_eq!(stopped, before);
    }

    #[test]
    fn a_job_cancelled_by_a_hard_stop_does_not_restart_the_flow() {
        let mut flow = flow_in(FlowStatus::Running, Some(job(5)));
        let effect = flow.apply(FlowCommand::Stop { hard: true }, NOW).unwrap();
        assert_eq!(effect, FlowEffect::CancelJob(job(5)));
        flow.job_finished(job(5), NOW + Duration::seconds(1));
        assert_eq!(flow.status, FlowStatus::Stopped);
        assert_eq!(flow.next_run_at, None);
        assert!(!flow.wants_job(NOW + Duration::days(1)));
    }
}
