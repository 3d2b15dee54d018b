//! Flows (the `/flows` API, docs/flows.md): adding configurations all or nothing, replacing
//! and deleting them, the commands start, stop (soft or hard), pause and resume, and the round
//! the engine runs to keep one job of each running flow going (the `runner` module).
//!
//! Every write is load → domain method ([`Flow::apply`], [`Flow::job_started`],
//! [`Flow::job_finished`]) → store-if-version-unchanged. A flow's new job is stored with the
//! flow in one version-checked transaction ([`FlowRepository::record_flow_job`]), and a flow
//! wants a job only while it has none, so with several servers on one database a flow never has
//! two jobs at once: the servers that lose the race see `Conflict` and move on.
//!
//! A flow learns that its job ended by polling in the engine round rather than through a hook
//! in the job service: the round reads the current job of every busy flow, so a job ended by a
//! robot, a user, lease recovery or another server is noticed within one tick, and a failed
//! follow-up can never leave a flow waiting forever on a job that is long over. The interval is
//! measured from the job's recorded end, not from when the round noticed it.

mod runner;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::clock::{Clock, IdGenerator, Timestamp};
use crate::error::{RepoError, TransitionError, ValidationError, Validator};
use crate::event::{Event, EventType};
use crate::flow::{Flow, FlowCommand, FlowConfig, FlowEffect, FlowId, FlowStatus};
use crate::ids::{EventId, JobId, WorkflowId};
use crate::job::CancelMode;
use crate::ports::{FlowRepository, JobRepository, Store, WorkflowRepository};

pub use runner::FlowRound;

use super::ServiceError;
use super::jobs::JobService;

/// How many times a change is re-read and re-applied when a concurrent writer (the engine of
/// this or another server, another client) moved the flow's version on first.
const UPDATE_ATTEMPTS: usize = 3;

/// The most configurations one `POST /flows` may add.
pub const MAX_BATCH: usize = 1000;

/// The storage ports the flow use cases need.
#[derive(Clone)]
pub struct FlowPorts {
    pub flows: Arc<dyn FlowRepository>,
    pub jobs: Arc<dyn JobRepository>,
    pub workflows: Arc<dyn WorkflowRepository>,
}

impl FlowPorts {
    /// Every port from one store, what an adapter holds.
    pub fn from_store(store: &Arc<dyn Store>) -> Self {
        Self {
            flows: store.clone(),
            jobs: store.clone(),
            workflows: store.clone(),
        }
    }
}

/// How a hard stop ends a flow's current job: the job service's hard cancel, so the job's
/// events, its robot's record and its trigger follow-ups are those of any other cancel.
#[async_trait]
pub trait JobCanceller: Send + Sync {
    /// Cancels the job at once. Errors: `Transition` when it already ended; `Repo(NotFound)`.
    async fn cancel_hard(&self, job: JobId) -> Result<(), ServiceError>;
}

#[async_trait]
impl JobCanceller for JobService {
    async fn cancel_hard(&self, job: JobId) -> Result<(), ServiceError> {
        self.cancel(job, CancelMode::Hard).await.map(|_| ())
    }
}

/// `PATCH /flows/commands` as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRequest {
    pub command: FlowCommand,
    /// The flows to command, as given; `None` commands every flow the command applies to.
    pub flow_ids: Option<Vec<String>>,
}

/// The flow use cases.
pub struct FlowService {
    ports: FlowPorts,
    canceller: Arc<dyn JobCanceller>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl FlowService {
    pub fn new(
        ports: FlowPorts,
        canceller: Arc<dyn JobCanceller>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            ports,
            canceller,
            clock,
            ids,
        }
    }

    /// Adds every configuration or none: each is checked (the rules of [`FlowConfig`], an id
    /// not yet taken nor repeated in the batch, a workflow that exists) and every broken rule is
    /// reported at once, named `[i].field` after the configuration's index. New flows are
    /// stopped. Errors: `Invalid`.
    pub async fn create(&self, configs: Vec<Value>) -> Result<Vec<Flow>, ServiceError> {
        if configs.is_empty() {
            return Err(
                ValidationError::field("body", "must hold at least one configuration").into(),
            );
        }
        if configs.len() > MAX_BATCH {
            return Err(ValidationError::field(
                "body",
                format!("must hold at most {MAX_BATCH} configurations"),
            )
            .into());
        }
        let taken: HashSet<FlowId> = self
            .ports
            .flows
            .list_flows()
            .await?
            .into_iter()
            .map(|f| f.flow_id().clone())
            .collect();
        let mut v = Validator::new();
        let mut seen = HashSet::new();
        let mut workflows = HashMap::new();
        let mut parsed = Vec::with_capacity(configs.len());
        for (i, value) in configs.into_iter().enumerate() {
            let config = match FlowConfig::parse(value) {
                Ok(config) => config,
                Err(e) => {
                    for f in e.errors {
                        v.push(indexed(i, &f.field), f.message);
                    }
                    continue;
                }
            };
            let id = config.flow_id();
            if taken.contains(id) {
                v.push(
                    indexed(i, "flow_id"),
                    format!("a flow with the id '{id}' already exists: change it with PUT"),
                );
            } else if !seen.insert(id.clone()) {
                v.push(
                    indexed(i, "flow_id"),
                    format!("'{id}' appears more than once in the request"),
                );
            }
            if !self
                .workflow_exists(config.workflow_id(), &mut workflows)
                .await?
            {
                v.push(indexed(i, "workflow_id"), no_workflow(config.workflow_id()));
            }
            parsed.push(config);
        }
        v.finish()?;
        // The flows of one request are created a microsecond apart: flows are listed oldest
        // first, so the list keeps the order they were posted in, on both databases (whose text
        // orders of a tie-breaking id disagree).
        let now = self.clock.now();
        let flows: Vec<Flow> = parsed
            .into_iter()
            .zip(0i64..)
            .map(|(c, i)| Flow::new(c, now + time::Duration::microseconds(i)))
            .collect();
        match self.ports.flows.insert_flows(&flows).await {
            Ok(()) => Ok(flows),
            // Another client added one of these ids after the check above; nothing was written.
            Err(RepoError::Conflict(_)) => Err(ValidationError::field(
                "flow_id",
                "a flow with one of these ids was added meanwhile; nothing was written",
            )
            .into()),
            Err(other) => Err(other.into()),
        }
    }

    /// Every flow, oldest first.
    pub async fn list(&self) -> Result<Vec<Flow>, ServiceError> {
        Ok(self.ports.flows.list_flows().await?)
    }

    /// Errors: `Repo(NotFound)`, also for text that cannot be a flow id.
    pub async fn get(&self, id: &str) -> Result<Flow, ServiceError> {
        Ok(self.ports.flows.get_flow(&existing_id(id)?).await?)
    }

    /// Replaces a flow's configuration (PUT) and keeps its run state: a running flow goes on,
    /// and its next job runs the new workflow. A document without `flow_id` takes the path's.
    /// Errors: `Repo(NotFound)`; `Invalid` (the configuration's rules, a `flow_id` other than
    /// the path's, a workflow that does not exist).
    pub async fn replace(
        &self,
        id: &str,
        mut document: Map<String, Value>,
    ) -> Result<Flow, ServiceError> {
        let id = existing_id(id)?;
        let mut current = self.ports.flows.get_flow(&id).await?;
        document
            .entry("flow_id")
            .or_insert_with(|| Value::String(id.as_str().to_owned()));
        let config = FlowConfig::parse(Value::Object(document))?;
        if !self
            .workflow_exists(config.workflow_id(), &mut HashMap::new())
            .await?
        {
            return Err(
                ValidationError::field("workflow_id", no_workflow(config.workflow_id())).into(),
            );
        }
        let mut last = None;
        for attempt in 0..UPDATE_ATTEMPTS {
            if attempt > 0 {
                current = self.ports.flows.get_flow(&id).await?;
            }
            current.reconfigure(config.clone(), self.clock.now())?;
            match self.ports.flows.update_flow(&current, &[]).await {
                Ok(stored) => return Ok(stored),
                Err(RepoError::Conflict(reason)) => last = Some(reason),
                Err(other) => return Err(other.into()),
            }
        }
        Err(gave_up(last).into())
    }

    /// Deletes a flow's configuration. A job it started runs on as an ordinary job: deleting a
    /// configuration is not a way to kill work (a hard stop is). Errors: `Repo(NotFound)`.
    pub async fn delete(&self, id: &str) -> Result<(), ServiceError> {
        Ok(self.ports.flows.delete_flow(&existing_id(id)?).await?)
    }

    /// Applies a command to the flows named, or, without names, to every flow it applies to
    /// (start and stop: all; pause: the running ones; resume: the paused ones). Every flow is
    /// judged before any changes, so an unknown id (`Invalid`, naming `flow_ids[i]`) or a flow
    /// the command cannot apply to (`Repo(Conflict)`, naming the flow: pausing or resuming a
    /// stopped flow) changes nothing. Returns the flows as stored, in the order named.
    pub async fn command(&self, request: CommandRequest) -> Result<Vec<Flow>, ServiceError> {
        let command = request.command;
        let targets = match request.flow_ids {
            Some(ids) => self.named_flows(ids).await?,
            None => self
                .ports
                .flows
                .list_flows()
                .await?
                .into_iter()
                .filter(|f| applies_to_all(command, f.status()))
                .collect(),
        };
        let now = self.clock.now();
        for flow in &targets {
            flow.clone()
                .apply(command, now)
                .map_err(|e| refused(flow.flow_id(), e))?;
        }
        let mut stored = Vec::with_capacity(targets.len());
        for flow in targets {
            stored.push(self.apply_command(flow, command).await?);
        }
        Ok(stored)
    }

    /// The flows named in a command, each once, in the order first named; every unknown id is
    /// reported at once.
    async fn named_flows(&self, ids: Vec<String>) -> Result<Vec<Flow>, ServiceError> {
        if ids.is_empty() {
            return Err(ValidationError::field(
                "flow_ids",
                "must name at least one flow; leave it out to command every flow",
            )
            .into());
        }
        let mut v = Validator::new();
        let mut seen = HashSet::new();
        let mut flows = Vec::with_capacity(ids.len());
        for (i, raw) in ids.into_iter().enumerate() {
            if !seen.insert(raw.clone()) {
                continue;
            }
            let found = match FlowId::parse(raw.clone()) {
                Ok(id) => match self.ports.flows.get_flow(&id).await {
                    Ok(flow) => Some(flow),
                    Err(RepoError::NotFound(_)) => None,
                    Err(other) => return Err(other.into()),
                },
                Err(_) => None,
            };
            match found {
                Some(flow) => flows.push(flow),
                None => v.push(
                    format!("flow_ids[{i}]"),
                    format!("no flow has the id '{raw}'"),
                ),
            }
        }
        v.finish()?;
        Ok(flows)
    }

    /// Applies a command to one flow and stores it, re-reading it after a lost version race. A
    /// hard stop cancels the current job before the flow is stored, so a flow shown stopped
    /// never has a job still running. Before the cancel, the flow is stored stopping, as a soft
    /// stop leaves it: the engine starts a running flow's next job as soon as its current one
    /// ends, so between the cancel and the store it would start one, which the stop would then
    /// have to cancel too; a stopping flow starts nothing.
    async fn apply_command(
        &self,
        mut current: Flow,
        command: FlowCommand,
    ) -> Result<Flow, ServiceError> {
        let mut last = None;
        for attempt in 0..UPDATE_ATTEMPTS {
            if attempt > 0 {
                current = self.ports.flows.get_flow(current.flow_id()).await?;
            }
            let now = self.clock.now();
            if command == (FlowCommand::Stop { hard: true })
                && current.current_job_id().is_some()
                && current.status() != FlowStatus::Stopping
            {
                let mut stopping = current.clone();
                stopping
                    .apply(FlowCommand::Stop { hard: false }, now)
                    .map_err(|e| refused(current.flow_id(), e))?;
                match self.ports.flows.update_flow(&stopping, &[]).await {
                    Ok(stored) => current = stored,
                    Err(RepoError::Conflict(reason)) => {
                        last = Some(reason);
                        continue;
                    }
                    Err(other) => return Err(other.into()),
                }
            }
            let mut changed = current.clone();
            let effect = changed
                .apply(command, now)
                .map_err(|e| refused(current.flow_id(), e))?;
            if let FlowEffect::CancelJob(job) = effect {
                self.cancel_job(job).await?;
            }
            let events = self.status_events(&current, &changed, command, now);
            match self.ports.flows.update_flow(&changed, &events).await {
                Ok(stored) => return Ok(stored),
                Err(RepoError::Conflict(reason)) => last = Some(reason),
                Err(other) => return Err(other.into()),
            }
        }
        Err(gave_up(last).into())
    }

    /// Hard-cancels a flow's job; a job that already ended (or is gone) needs nothing more.
    async fn cancel_job(&self, job: JobId) -> Result<(), ServiceError> {
        match self.canceller.cancel_hard(job).await {
            Ok(()) | Err(ServiceError::Transition(_)) => Ok(()),
            Err(ServiceError::Repo(RepoError::NotFound(_))) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// The activity records of a command's status change: `flow_started` when a start sets a
    /// flow running, `flow_stopped` when it ends stopped.
    fn status_events(
        &self,
        before: &Flow,
        after: &Flow,
        command: FlowCommand,
        now: Timestamp,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        if command == FlowCommand::Start
            && matches!(before.status(), FlowStatus::Stopped | FlowStatus::Stopping)
            && after.status() == FlowStatus::Running
        {
            events.push(self.flow_event(after, EventType::FlowStarted, "Flow started", now));
        }
        if before.status() != FlowStatus::Stopped && after.status() == FlowStatus::Stopped {
            let mut event = self.flow_event(after, EventType::FlowStopped, "Flow stopped", now);
            if let FlowCommand::Stop { hard } = command {
                let how = if hard { "hard" } else { "soft" };
                event.data.insert("stop".into(), Value::String(how.into()));
            }
            events.push(event);
        }
        events
    }

    /// An activity record about `flow`.
    fn flow_event(&self, flow: &Flow, event_type: EventType, title: &str, now: Timestamp) -> Event {
        let mut event = Event::new(
            EventId::from_uuid(self.ids.new_uuid()),
            event_type,
            title,
            now,
        );
        event.details = Some(flow.flow_id().to_string());
        event.workflow_id = Some(flow.config().workflow_id());
        event.data.insert(
            "flow_id".into(),
            Value::String(flow.flow_id().as_str().to_owned()),
        );
        event
    }

    /// Whether the workflow exists, asking storage once per id.
    async fn workflow_exists(
        &self,
        id: WorkflowId,
        known: &mut HashMap<WorkflowId, bool>,
    ) -> Result<bool, ServiceError> {
        if let Some(exists) = known.get(&id) {
            return Ok(*exists);
        }
        let exists = match self.ports.workflows.get_workflow(id).await {
            Ok(_) => true,
            Err(RepoError::NotFound(_)) => false,
            Err(other) => return Err(other.into()),
        };
        known.insert(id, exists);
        Ok(exists)
    }
}

/// Whether a command without `flow_ids` reaches a flow in `status`: start and stop reach every
/// flow; pause and resume only those they can change, so "pause everything" is not refused
/// because one flow is stopped.
fn applies_to_all(command: FlowCommand, status: FlowStatus) -> bool {
    match command {
        FlowCommand::Start | FlowCommand::Stop { .. } => true,
        FlowCommand::Pause => status == FlowStatus::Running,
        FlowCommand::Resume => status == FlowStatus::Paused,
    }
}

/// A flow id from a path; text that cannot be one names no flow.
fn existing_id(text: &str) -> Result<FlowId, RepoError> {
    FlowId::parse(text).map_err(|_| RepoError::NotFound("flow"))
}

/// The field name of a batch entry's field: `[i]` for the entry itself, else `[i].field`.
fn indexed(i: usize, field: &str) -> String {
    if field == "config" {
        format!("[{i}]")
    } else {
        format!("[{i}].{field}")
    }
}

fn no_workflow(id: WorkflowId) -> String {
    format!("no workflow has the id {id}")
}

/// A command a flow's state refuses, as a 409 that names the flow (a command may name many).
fn refused(flow: &FlowId, err: TransitionError) -> ServiceError {
    RepoError::Conflict(format!(
        "flow '{flow}' cannot {action}: it is {state} (start it first)",
        action = err.action,
        state = err.state,
    ))
    .into()
}

/// The error after every attempt lost a version race.
fn gave_up(last: Option<String>) -> RepoError {
    RepoError::Conflict(last.unwrap_or_else(|| "the flow keeps changing; retry".to_owned()))
}
