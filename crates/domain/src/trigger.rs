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
    /// A trigger's unique name. Clients give 1–100 characters ([`TriggerName::parse_trigger`]);
    /// up to 255 are kept, since a scheduled workflow submission names its trigger after the
    /// workflow (1–255). A schedule's own, not necessarily unique, name is a [`ScheduleName`].
    TriggerName, field = "trigger_name", min = 1, max = 255
);

crate::bounded_text!(
    /// What a schedule is called (CasareRPA's `schedule_name`): 1–255 characters and, unlike a
    /// trigger's name, not unique: two schedules may share a name.
    ScheduleName, field = "schedule_name", min = 1, max = 255
);

impl TriggerName {
    /// The longest name a client may give a trigger (OpenOrchestrator's limit).
    pub const API_MAX_CHARS: usize = 100;

    /// Triggers created through `/triggers` keep OpenOrchestrator's 100-character limit.
    pub fn parse_trigger(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        crate::text::check_name("trigger_name", &value, 1, Self::API_MAX_CHARS)?;
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
///
/// Its fields are private to this crate: outside it, a trigger is read through methods and
/// changes only through its transitions and the trigger and schedule services, which apply
/// checked changes. Stores move it in and out of storage as a [`TriggerRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub(crate) id: TriggerId,
    pub(crate) name: TriggerName,
    pub(crate) kind: TriggerKind,
    pub(crate) workflow_id: WorkflowId,
    pub(crate) process_status: ProcessStatus,
    pub(crate) enabled: bool,
    /// A blocking trigger does not fire again while the job it started is still running.
    pub(crate) is_blocking: bool,
    pub(crate) priority: Priority,
    pub(crate) execution_mode: ExecutionMode,
    /// Handed to each job as its input, a JSON object.
    pub(crate) process_args: serde_json::Map<String, Value>,
    pub(crate) metadata: serde_json::Map<String, Value>,
    /// The name `/schedules` shows, when it differs from the unique `name` (a schedule's name
    /// need not be unique); `None` shows `name`. See [`Trigger::schedule_name`].
    pub(crate) schedule_name: Option<ScheduleName>,
    pub(crate) next_run: Option<Timestamp>,
    pub(crate) last_run: Option<Timestamp>,
    pub(crate) run_count: u64,
    pub(crate) failure_count: u64,
    pub(crate) current_job_id: Option<JobId>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    /// Optimistic-concurrency counter: a fire succeeds only against the version it read, which
    /// is what makes one due trigger fire exactly once across servers.
    pub(crate) version: i64,
}

/// A trigger's stored state, field by field: what a store writes and reads back.
///
/// A record is plain data and checks nothing; [`Trigger::from_record`] trusts it to be what
/// [`Trigger::into_record`] gave, which is why only stores and tests should build one.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerRecord {
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
    /// The name `/schedules` shows, when it differs from the unique `name` (a schedule's name
    /// need not be unique); `None` shows `name`. See [`Trigger::schedule_name`].
    pub schedule_name: Option<ScheduleName>,
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
    /// The trigger as a store kept it.
    pub fn from_record(record: TriggerRecord) -> Self {
        let TriggerRecord {
            id,
            name,
            kind,
            workflow_id,
            process_status,
            enabled,
            is_blocking,
            priority,
            execution_mode,
            process_args,
            metadata,
            schedule_name,
            next_run,
            last_run,
            run_count,
            failure_count,
            current_job_id,
            created_at,
            updated_at,
            version,
        } = record;
        Self {
            id,
            name,
            kind,
            workflow_id,
            process_status,
            enabled,
            is_blocking,
            priority,
            execution_mode,
            process_args,
            metadata,
            schedule_name,
            next_run,
            last_run,
            run_count,
            failure_count,
            current_job_id,
            created_at,
            updated_at,
            version,
        }
    }

    /// Its state for a store to write.
    pub fn into_record(self) -> TriggerRecord {
        let Self {
            id,
            name,
            kind,
            workflow_id,
            process_status,
            enabled,
            is_blocking,
            priority,
            execution_mode,
            process_args,
            metadata,
            schedule_name,
            next_run,
            last_run,
            run_count,
            failure_count,
            current_job_id,
            created_at,
            updated_at,
            version,
        } = self;
        TriggerRecord {
            id,
            name,
            kind,
            workflow_id,
            process_status,
            enabled,
            is_blocking,
            priority,
            execution_mode,
            process_args,
            metadata,
            schedule_name,
            next_run,
            last_run,
            run_count,
            failure_count,
            current_job_id,
            created_at,
            updated_at,
            version,
        }
    }

    /// A store calls this once it has written the trigger's change: the optimistic-concurrency
    /// counter moves one on, as the stored copy's did.
    pub fn mark_stored(&mut self) {
        self.version += 1;
    }

    /// Changes the record behind the trigger directly, bypassing its transitions: for tests
    /// that need a state no short path of transitions reaches. Built only for tests and with
    /// the `testing` feature.
    #[cfg(any(test, feature = "testing"))]
    pub fn edit(&mut self, change: impl FnOnce(&mut TriggerRecord)) {
        let mut record = self.to_record();
        change(&mut record);
        *self = Self::from_record(record);
    }

    /// [`Trigger::into_record`] of a copy.
    pub fn to_record(&self) -> TriggerRecord {
        self.clone().into_record()
    }

    pub fn id(&self) -> TriggerId {
        self.id
    }

    pub fn name(&self) -> &TriggerName {
        &self.name
    }

    pub fn kind(&self) -> &TriggerKind {
        &self.kind
    }

    pub fn workflow_id(&self) -> WorkflowId {
        self.workflow_id
    }

    pub fn process_status(&self) -> ProcessStatus {
        self.process_status
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// A blocking trigger does not fire again while the job it started is still running.
    pub fn is_blocking(&self) -> bool {
        self.is_blocking
    }

    pub fn priority(&self) -> Priority {
        self.priority
    }

    pub fn execution_mode(&self) -> ExecutionMode {
        self.execution_mode
    }

    /// Handed to each job as its input, a JSON object.
    pub fn process_args(&self) -> &serde_json::Map<String, Value> {
        &self.process_args
    }

    pub fn metadata(&self) -> &serde_json::Map<String, Value> {
        &self.metadata
    }

    pub fn next_run(&self) -> Option<Timestamp> {
        self.next_run
    }

    pub fn last_run(&self) -> Option<Timestamp> {
        self.last_run
    }

    pub fn run_count(&self) -> u64 {
        self.run_count
    }

    pub fn failure_count(&self) -> u64 {
        self.failure_count
    }

    pub fn current_job_id(&self) -> Option<JobId> {
        self.current_job_id
    }

    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }

    /// Optimistic-concurrency counter: a fire succeeds only against the version it read, which
    /// is what makes one due trigger fire exactly once across servers.
    pub fn version(&self) -> i64 {
        self.version
    }
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
            schedule_name: None,
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

    /// The job this trigger started ended; the status follows it: SINGLE → DONE, SCHEDULED and
    /// QUEUE → IDLE (PAUSED if PAUSING), failure → FAILED, a kill → KILLED.
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
        if outcome == JobOutcome::Failed {
            self.failure_count += 1;
        }
        // An operator's pending pause or kill outlasts the job's outcome: a paused schedule must
        // not start firing again because its last run happened to fail.
        self.process_status = match (self.process_status, outcome) {
            (ProcessStatus::Killing, _) | (_, JobOutcome::Cancelled) => ProcessStatus::Killed,
            (ProcessStatus::Pausing, _) => ProcessStatus::Paused,
            (_, JobOutcome::Failed) => ProcessStatus::Failed,
            (_, JobOutcome::Completed) if self.kind == TriggerKind::Single => ProcessStatus::Done,
            (_, JobOutcome::Completed) => ProcessStatus::Idle,
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

    /// The schedule name given to the trigger itself, if any; [`Trigger::schedule_name`] is the
    /// name a schedule shows.
    pub fn own_schedule_name(&self) -> Option<&ScheduleName> {
        self.schedule_name.as_ref()
    }

    /// The name a schedule shows: its own schedule name when it has one, else the trigger's.
    pub fn schedule_name(&self) -> &str {
        self.schedule_name
            .as_ref()
            .map_or(self.name.as_str(), ScheduleName::as_str)
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;
    use uuid::Uuid;

    const NOW: Timestamp = datetime!(2025-05-05 10:15:30 UTC);

    fn job(n: u128) -> JobId {
        JobId::from_uuid(Uuid::from_u128(n))
    }

    fn hourly() -> TriggerKind {
        TriggerKind::Scheduled(Box::new(CronSchedule::parse("0 * * * *", None).unwrap()))
    }

    fn queue_kind(min_batch_size: u32) -> TriggerKind {
        TriggerKind::Queue {
            queue_name: QueueName::parse("invoices").unwrap(),
            min_batch_size,
        }
    }

    fn trigger(kind: TriggerKind) -> Trigger {
        Trigger::new(
            TriggerId::from_uuid(Uuid::from_u128(7)),
            TriggerName::parse_trigger("nightly").unwrap(),
            kind,
            WorkflowId::from_uuid(Uuid::from_u128(8)),
            true,
            Priority::default(),
            ExecutionMode::Lan,
            NOW,
        )
    }

    fn single() -> Trigger {
        trigger(TriggerKind::Single)
    }

    fn scheduled() -> Trigger {
        trigger(hourly())
    }

    // ---- TriggerName ----

    #[test]
    fn a_trigger_name_of_1_to_100_characters_is_accepted() {
        assert!(TriggerName::parse_trigger("t").is_ok());
        let name = TriggerName::parse_trigger("t".repeat(100)).unwrap();
        assert_eq!(name.as_str().len(), 100);
        assert!(TriggerName::parse_trigger("é".repeat(100)).is_ok());
    }

    #[test]
    fn a_trigger_name_over_100_characters_is_refused() {
        let err = TriggerName::parse_trigger("t".repeat(101)).unwrap_err();
        assert_eq!(err.errors.len(), 1);
        assert_eq!(err.errors[0].field, "trigger_name");
    }

    #[test]
    fn an_empty_trigger_name_is_refused() {
        let err = TriggerName::parse_trigger("").unwrap_err();
        assert_eq!(err.errors[0].field, "trigger_name");
        assert!(TriggerName::parse("").is_err());
    }

    #[test]
    fn a_schedule_name_may_reach_255_characters() {
        assert!(TriggerName::parse("s".repeat(255)).is_ok());
        assert!(TriggerName::parse("s".repeat(256)).is_err());
        assert!(ScheduleName::parse("s".repeat(255)).is_ok());
        let err = ScheduleName::parse("s".repeat(256)).unwrap_err();
        assert_eq!(err.errors[0].field, "schedule_name");
        assert_eq!(
            ScheduleName::parse("").unwrap_err().errors[0].field,
            "schedule_name"
        );
    }

    #[test]
    fn a_trigger_shows_its_schedule_name_else_its_name() {
        let mut t = scheduled();
        assert_eq!(t.schedule_name(), "nightly");
        t.schedule_name = Some(ScheduleName::parse("Daily Report").unwrap());
        assert_eq!(t.schedule_name(), "Daily Report");
        assert_eq!(t.name.as_str(), "nightly");
    }

    // ---- TriggerType and ProcessStatus ----

    #[test]
    fn trigger_types_parse_in_any_case() {
        for (given, expected) in [
            ("SINGLE", TriggerType::Single),
            ("single", TriggerType::Single),
            ("Scheduled", TriggerType::Scheduled),
            ("qUeUe", TriggerType::Queue),
        ] {
            assert_eq!(given.parse::<TriggerType>().unwrap(), expected, "{given}");
        }
    }

    #[test]
    fn an_unknown_trigger_type_is_refused() {
        for bad in ["", "CRON", "SINGLE ", "schedule"] {
            let err = bad.parse::<TriggerType>().unwrap_err();
            assert_eq!(err.errors[0].field, "type", "{bad:?}");
        }
    }

    #[test]
    fn trigger_types_round_trip_through_their_names() {
        for t in [
            TriggerType::Single,
            TriggerType::Scheduled,
            TriggerType::Queue,
        ] {
            assert_eq!(t.as_str().parse::<TriggerType>().unwrap(), t);
        }
        assert_eq!(TriggerType::Scheduled.as_str(), "SCHEDULED");
    }

    #[test]
    fn a_kind_names_its_type() {
        assert_eq!(TriggerKind::Single.type_name(), TriggerType::Single);
        assert_eq!(hourly().type_name(), TriggerType::Scheduled);
        assert_eq!(queue_kind(1).type_name(), TriggerType::Queue);
    }

    #[test]
    fn process_statuses_parse_in_any_case() {
        for status in ProcessStatus::ALL {
            let upper = status.as_str();
            assert_eq!(upper.parse::<ProcessStatus>().unwrap(), status);
            assert_eq!(
                upper.to_lowercase().parse::<ProcessStatus>().unwrap(),
                status
            );
        }
        assert_eq!(
            "Pausing".parse::<ProcessStatus>().unwrap(),
            ProcessStatus::Pausing
        );
    }

    #[test]
    fn an_unknown_process_status_is_refused() {
        for bad in ["", "STOPPED", "KILL", "idle!"] {
            let err = bad.parse::<ProcessStatus>().unwrap_err();
            assert_eq!(err.errors[0].field, "process_status", "{bad:?}");
        }
    }

    #[test]
    fn process_statuses_display_upper_case() {
        let shown: Vec<String> = ProcessStatus::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "IDLE", "RUNNING", "FAILED", "DONE", "PAUSED", "PAUSING", "KILLING", "KILLED"
            ]
        );
    }

    // ---- Trigger::new ----

    #[test]
    fn a_scheduled_trigger_gets_its_first_next_run_from_its_cron() {
        let t = scheduled();
        assert_eq!(t.next_run, Some(datetime!(2025-05-05 11:00 UTC)));
        assert_eq!(t.cron().unwrap().expression(), "0 * * * *");
    }

    #[test]
    fn single_and_queue_triggers_start_without_a_next_run() {
        assert_eq!(single().next_run, None);
        assert_eq!(trigger(queue_kind(5)).next_run, None);
        assert!(single().cron().is_none());
    }

    #[test]
    fn a_new_trigger_is_idle_blocking_and_unrun() {
        let t = single();
        assert_eq!(t.process_status, ProcessStatus::Idle);
        assert!(t.enabled);
        assert!(t.is_blocking);
        assert_eq!(t.last_run, None);
        assert_eq!(t.run_count, 0);
        assert_eq!(t.failure_count, 0);
        assert_eq!(t.current_job_id, None);
        assert_eq!(t.created_at, NOW);
        assert_eq!(t.updated_at, NOW);
        assert_eq!(t.version, 0);
    }

    // ---- is_due: SINGLE ----

    #[test]
    fn an_idle_single_trigger_without_next_run_is_due() {
        assert!(single().is_due(NOW, 0));
    }

    #[test]
    fn an_idle_single_trigger_is_due_once_its_next_run_arrives() {
        let mut t = single();
        t.next_run = Some(NOW + Duration::minutes(5));
        assert!(!t.is_due(NOW, 0));
        assert!(t.is_due(NOW + Duration::minutes(5), 0));
        assert!(t.is_due(NOW + Duration::minutes(6), 0));
    }

    #[test]
    fn a_single_trigger_fires_only_when_idle() {
        for status in ProcessStatus::ALL {
            let mut t = single();
            t.process_status = status;
            assert_eq!(t.is_due(NOW, 0), status == ProcessStatus::Idle, "{status}");
        }
    }

    // ---- is_due: QUEUE ----

    #[test]
    fn an_idle_queue_trigger_fires_at_min_batch_size_new_items() {
        let t = trigger(queue_kind(5));
        assert!(!t.is_due(NOW, 0));
        assert!(!t.is_due(NOW, 4));
        assert!(t.is_due(NOW, 5));
        assert!(t.is_due(NOW, 500));
    }

    #[test]
    fn a_queue_trigger_fires_only_when_idle() {
        for status in ProcessStatus::ALL {
            let mut t = trigger(queue_kind(1));
            t.process_status = status;
            assert_eq!(t.is_due(NOW, 10), status == ProcessStatus::Idle, "{status}");
        }
    }

    // ---- is_due: SCHEDULED ----

    #[test]
    fn a_scheduled_trigger_is_due_only_once_its_next_run_arrives() {
        let t = scheduled();
        let next = t.next_run.unwrap();
        assert!(!t.is_due(next - Duration::seconds(1), 0));
        assert!(t.is_due(next, 0));
        assert!(t.is_due(next + Duration::hours(5), 0));
    }

    #[test]
    fn a_scheduled_trigger_keeps_firing_after_a_failed_run() {
        let mut t = scheduled();
        t.process_status = ProcessStatus::Failed;
        assert!(t.is_due(t.next_run.unwrap(), 0));
    }

    #[test]
    fn a_scheduled_trigger_fires_when_idle_done_or_killed() {
        for status in [
            ProcessStatus::Idle,
            ProcessStatus::Done,
            ProcessStatus::Killed,
        ] {
            let mut t = scheduled();
            t.process_status = status;
            assert!(t.is_due(t.next_run.unwrap(), 0), "{status}");
        }
    }

    #[test]
    fn a_paused_pausing_or_killing_scheduled_trigger_does_not_fire() {
        for status in [
            ProcessStatus::Paused,
            ProcessStatus::Pausing,
            ProcessStatus::Killing,
        ] {
            let mut t = scheduled();
            t.process_status = status;
            t.is_blocking = false;
            assert!(!t.is_due(t.next_run.unwrap(), 0), "{status}");
        }
    }

    #[test]
    fn a_blocking_scheduled_trigger_does_not_fire_while_running() {
        let mut t = scheduled();
        t.process_status = ProcessStatus::Running;
        assert!(t.is_blocking);
        assert!(!t.is_due(t.next_run.unwrap(), 0));
    }

    #[test]
    fn a_non_blocking_scheduled_trigger_fires_while_running() {
        let mut t = scheduled();
        t.process_status = ProcessStatus::Running;
        t.is_blocking = false;
        assert!(t.is_due(t.next_run.unwrap(), 0));
    }

    #[test]
    fn a_scheduled_trigger_with_no_next_run_never_fires() {
        let mut t = scheduled();
        t.next_run = None;
        assert!(!t.is_due(NOW + Duration::days(365), 0));
    }

    #[test]
    fn a_disabled_trigger_is_never_due() {
        for kind in [TriggerKind::Single, hourly(), queue_kind(1)] {
            let mut t = trigger(kind);
            t.enabled = false;
            assert!(!t.is_due(NOW + Duration::days(1), 1000));
        }
    }

    // ---- fire ----

    #[test]
    fn firing_records_the_run_and_its_job() {
        let mut t = single();
        t.fire(job(1), NOW);
        assert_eq!(t.process_status, ProcessStatus::Running);
        assert_eq!(t.current_job_id, Some(job(1)));
        assert_eq!(t.last_run, Some(NOW));
        assert_eq!(t.run_count, 1);
        assert_eq!(t.updated_at, NOW);
        assert!(!t.is_due(NOW, 0), "a fired SINGLE trigger is no longer due");
    }

    #[test]
    fn firing_a_scheduled_trigger_moves_next_run_to_the_following_tick() {
        let mut t = scheduled();
        let due = t.next_run.unwrap();
        t.fire(job(1), due);
        assert_eq!(t.next_run, Some(datetime!(2025-05-05 12:00 UTC)));
    }

    #[test]
    fn a_missed_window_fires_once_not_once_per_missed_tick() {
        let mut t = scheduled();
        // Down from 10:15 until 15:42: five hourly ticks were missed.
        let back = datetime!(2025-05-05 15:42 UTC);
        assert!(t.is_due(back, 0));
        t.fire(job(1), back);
        assert_eq!(t.next_run, Some(datetime!(2025-05-05 16:00 UTC)));
        t.job_finished(job(1), JobOutcome::Completed, back + Duration::seconds(5));
        assert!(!t.is_due(back + Duration::seconds(5), 0));
        assert_eq!(t.run_count, 1);
    }

    #[test]
    fn firing_single_and_queue_triggers_leaves_next_run_alone() {
        let mut s = single();
        s.next_run = Some(NOW);
        s.fire(job(1), NOW);
        assert_eq!(s.next_run, Some(NOW));
        let mut q = trigger(queue_kind(1));
        q.fire(job(2), NOW);
        assert_eq!(q.next_run, None);
    }

    #[test]
    fn run_count_grows_with_each_fire() {
        let mut t = scheduled();
        t.is_blocking = false;
        t.fire(job(1), NOW);
        t.fire(job(2), NOW + Duration::hours(1));
        assert_eq!(t.run_count, 2);
        assert_eq!(t.current_job_id, Some(job(2)));
    }

    #[test]
    fn firing_manually_keeps_the_schedule_rhythm() {
        let mut t = scheduled();
        let next = t.next_run;
        t.fire_manually(job(1), NOW + Duration::minutes(1));
        assert_eq!(t.next_run, next);
        assert_eq!(t.process_status, ProcessStatus::Running);
        assert_eq!(t.current_job_id, Some(job(1)));
        assert_eq!(t.last_run, Some(NOW + Duration::minutes(1)));
        assert_eq!(t.run_count, 1);
    }

    // ---- job_finished ----

    #[test]
    fn a_completed_job_leaves_a_single_trigger_done() {
        let mut t = single();
        t.fire(job(1), NOW);
        t.job_finished(job(1), JobOutcome::Completed, NOW + Duration::minutes(1));
        assert_eq!(t.process_status, ProcessStatus::Done);
        assert_eq!(t.current_job_id, None);
        assert_eq!(t.updated_at, NOW + Duration::minutes(1));
        assert!(!t.is_due(NOW + Duration::days(1), 0), "SINGLE fires once");
    }

    #[test]
    fn a_completed_job_leaves_scheduled_and_queue_triggers_idle() {
        for kind in [hourly(), queue_kind(1)] {
            let mut t = trigger(kind);
            t.fire(job(1), NOW);
            t.job_finished(job(1), JobOutcome::Completed, NOW);
            assert_eq!(t.process_status, ProcessStatus::Idle);
            assert_eq!(t.current_job_id, None);
            assert_eq!(t.failure_count, 0);
        }
    }

    #[test]
    fn a_completed_job_of_a_pausing_trigger_leaves_it_paused() {
        for kind in [TriggerKind::Single, hourly(), queue_kind(1)] {
            let mut t = trigger(kind);
            t.fire(job(1), NOW);
            t.pause(NOW).unwrap();
            assert_eq!(t.process_status, ProcessStatus::Pausing);
            t.job_finished(job(1), JobOutcome::Completed, NOW);
            assert_eq!(t.process_status, ProcessStatus::Paused);
        }
    }

    #[test]
    fn a_failed_job_of_a_pausing_trigger_still_leaves_it_paused() {
        let mut t = trigger(hourly());
        t.fire(job(1), NOW);
        t.pause(NOW).unwrap();
        t.job_finished(job(1), JobOutcome::Failed, NOW);
        assert_eq!(t.process_status, ProcessStatus::Paused);
        assert_eq!(t.failure_count, 1);
        assert!(
            !t.is_due(NOW + time::Duration::days(1), 0),
            "a paused schedule stays quiet"
        );
    }

    #[test]
    fn a_killing_trigger_ends_killed_whatever_its_job_did() {
        for outcome in [
            JobOutcome::Completed,
            JobOutcome::Failed,
            JobOutcome::Cancelled,
        ] {
            let mut t = trigger(TriggerKind::Single);
            t.fire(job(1), NOW);
            t.set_process_status(ProcessStatus::Killing, NOW);
            t.job_finished(job(1), outcome, NOW);
            assert_eq!(t.process_status, ProcessStatus::Killed, "{outcome:?}");
        }
    }

    #[test]
    fn a_failed_job_leaves_the_trigger_failed_and_counts_the_failure() {
        for kind in [TriggerKind::Single, hourly(), queue_kind(1)] {
            let mut t = trigger(kind);
            t.fire(job(1), NOW);
            t.job_finished(job(1), JobOutcome::Failed, NOW);
            assert_eq!(t.process_status, ProcessStatus::Failed);
            assert_eq!(t.failure_count, 1);
            assert_eq!(t.current_job_id, None);
        }
    }

    #[test]
    fn a_cancelled_job_leaves_the_trigger_killed() {
        for kind in [TriggerKind::Single, hourly(), queue_kind(1)] {
            let mut t = trigger(kind);
            t.fire(job(1), NOW);
            t.process_status = ProcessStatus::Killing;
            t.job_finished(job(1), JobOutcome::Cancelled, NOW);
            assert_eq!(t.process_status, ProcessStatus::Killed);
            assert_eq!(t.failure_count, 0);
            assert_eq!(t.current_job_id, None);
        }
    }

    #[test]
    fn a_stale_job_only_changes_the_counts() {
        let mut t = scheduled();
        t.is_blocking = false;
        t.fire(job(1), NOW);
        t.fire(job(2), NOW + Duration::hours(1));
        let later = NOW + Duration::hours(2);
        t.job_finished(job(1), JobOutcome::Failed, later);
        assert_eq!(t.process_status, ProcessStatus::Running);
        assert_eq!(t.current_job_id, Some(job(2)));
        assert_eq!(t.failure_count, 1);
        assert_eq!(t.updated_at, later);
        t.job_finished(job(1), JobOutcome::Completed, later);
        t.job_finished(job(1), JobOutcome::Cancelled, later);
        assert_eq!(t.process_status, ProcessStatus::Running);
        assert_eq!(t.current_job_id, Some(job(2)));
        assert_eq!(t.failure_count, 1);
    }

    #[test]
    fn a_scheduled_trigger_fires_again_at_its_next_tick_after_a_failure() {
        let mut t = scheduled();
        let first = t.next_run.unwrap();
        t.fire(job(1), first);
        t.job_finished(job(1), JobOutcome::Failed, first + Duration::minutes(1));
        let second = t.next_run.unwrap();
        assert_eq!(second, first + Duration::hours(1));
        assert!(!t.is_due(second - Duration::seconds(1), 0));
        assert!(t.is_due(second, 0));
    }

    // ---- set_process_status ----

    #[test]
    fn setting_a_done_single_trigger_idle_re_arms_it() {
        let mut t = single();
        t.next_run = Some(NOW);
        t.fire(job(1), NOW);
        t.job_finished(job(1), JobOutcome::Completed, NOW);
        assert!(!t.is_due(NOW + Duration::minutes(1), 0));
        t.set_process_status(ProcessStatus::Idle, NOW + Duration::minutes(1));
        assert_eq!(t.process_status, ProcessStatus::Idle);
        assert_eq!(t.next_run, None, "a past next_run is spent");
        assert!(t.is_due(NOW + Duration::minutes(1), 0));
    }

    #[test]
    fn re_arming_a_single_trigger_keeps_a_future_next_run() {
        let mut t = single();
        let future = NOW + Duration::hours(3);
        t.next_run = Some(future);
        t.process_status = ProcessStatus::Done;
        t.set_process_status(ProcessStatus::Idle, NOW);
        assert_eq!(t.next_run, Some(future));
        assert!(!t.is_due(NOW, 0));
        assert!(t.is_due(future, 0));
    }

    #[test]
    fn setting_a_scheduled_trigger_idle_keeps_its_next_run() {
        let mut t = scheduled();
        let next = t.next_run;
        t.process_status = ProcessStatus::Failed;
        t.set_process_status(ProcessStatus::Idle, NOW + Duration::hours(2));
        assert_eq!(t.next_run, next);
    }

    #[test]
    fn set_process_status_stores_any_status() {
        for status in ProcessStatus::ALL {
            let mut t = trigger(queue_kind(1));
            t.set_process_status(status, NOW + Duration::seconds(1));
            assert_eq!(t.process_status, status);
            assert_eq!(t.updated_at, NOW + Duration::seconds(1));
        }
    }

    // ---- pause ----

    #[test]
    fn pausing_a_running_trigger_lets_its_job_finish_first() {
        let mut t = scheduled();
        t.fire(job(1), NOW);
        t.pause(NOW + Duration::seconds(1)).unwrap();
        assert_eq!(t.process_status, ProcessStatus::Pausing);
        assert_eq!(t.current_job_id, Some(job(1)));
        assert_eq!(t.updated_at, NOW + Duration::seconds(1));
    }

    #[test]
    fn pausing_a_trigger_that_is_not_running_pauses_it_at_once() {
        for status in [
            ProcessStatus::Idle,
            ProcessStatus::Failed,
            ProcessStatus::Done,
            ProcessStatus::Paused,
            ProcessStatus::Pausing,
            ProcessStatus::Killed,
        ] {
            let mut t = scheduled();
            t.process_status = status;
            t.pause(NOW).unwrap();
            assert_eq!(t.process_status, ProcessStatus::Paused, "{status}");
        }
    }

    #[test]
    fn a_trigger_being_killed_cannot_be_paused() {
        let mut t = scheduled();
        t.process_status = ProcessStatus::Killing;
        let before = t.clone();
        let err = t.pause(NOW + Duration::seconds(1)).unwrap_err();
        assert_eq!(err.entity, "trigger");
        assert_eq!(err.state, "KILLING");
        assert_eq!(t, before);
    }

    #[test]
    fn a_paused_scheduled_trigger_does_not_fire() {
        let mut t = scheduled();
        t.pause(NOW).unwrap();
        assert!(!t.is_due(t.next_run.unwrap(), 0));
    }

    // ---- set_enabled ----

    #[test]
    fn re_enabling_a_scheduled_trigger_recomputes_next_run_from_now() {
        let mut t = scheduled();
        t.set_enabled(false, NOW);
        assert!(!t.enabled);
        let back = datetime!(2025-05-06 09:30 UTC);
        t.set_enabled(true, back);
        assert!(t.enabled);
        assert_eq!(t.next_run, Some(datetime!(2025-05-06 10:00 UTC)));
        assert!(
            !t.is_due(back, 0),
            "windows missed while disabled are not replayed"
        );
        assert_eq!(t.updated_at, back);
    }

    #[test]
    fn enabling_an_already_enabled_trigger_keeps_next_run() {
        let mut t = scheduled();
        let next = t.next_run;
        t.set_enabled(true, NOW + Duration::days(2));
        assert_eq!(t.next_run, next);
    }

    #[test]
    fn disabling_a_trigger_keeps_next_run_and_stops_it_firing() {
        let mut t = scheduled();
        let next = t.next_run;
        t.set_enabled(false, NOW);
        assert_eq!(t.next_run, next);
        assert!(!t.is_due(next.unwrap(), 0));
    }

    #[test]
    fn re_enabling_a_single_trigger_leaves_next_run_alone() {
        let mut t = single();
        t.next_run = Some(NOW);
        t.set_enabled(false, NOW);
        t.set_enabled(true, NOW + Duration::hours(1));
        assert_eq!(t.next_run, Some(NOW));
        assert!(t.is_due(NOW + Duration::hours(1), 0));
    }
}
