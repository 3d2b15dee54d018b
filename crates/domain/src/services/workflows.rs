//! Submitting workflows (CasareRPA's `POST /workflows` and its file upload), starting them from
//! their webhook, and deleting them.
//!
//! A submission is validated as a whole before anything is stored, so a client learns every
//! broken rule of one request at once. It is then stored in steps (the workflow with its agents,
//! then its job, schedule or webhook); when a later step fails, the workflow is deleted again, so
//! a client that was answered with an error never finds a half-submitted workflow.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::agent::Agent;
use crate::auth::constant_time_eq;
use crate::clock::{Clock, IdGenerator, Timestamp};
use crate::error::{FieldError, RepoError, ValidationError, Validator};
use crate::event::Event;
use crate::ids::{AgentId, EventId, JobId, TriggerId, WorkflowId};
use crate::job::{Job, JobOrigin, NewJob, Priority};
use crate::ports::{
    JobRepository, Store, TriggerRepository, WebhookRepository, WorkflowRepository,
};
use crate::schedule::CronSchedule;
use crate::trigger::{ScheduleName, Trigger, TriggerKind, TriggerName};
use crate::webhook::Webhook;
use crate::workflow::{ExecutionMode, Workflow, WorkflowGraph, WorkflowName};

use super::ServiceError;

/// How a submitted workflow starts: CasareRPA's `trigger_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TriggerType {
    /// A job is queued at once.
    #[default]
    Manual,
    /// A SCHEDULED trigger fires it on `schedule_cron`.
    Scheduled,
    /// A secret URL starts a job whenever it is POSTed to.
    Webhook,
}

impl TriggerType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Scheduled => "scheduled",
            Self::Webhook => "webhook",
        }
    }

    /// Accepts the seed's lower-case spellings only, as [`ExecutionMode::parse`] does.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        match value {
            "manual" => Ok(Self::Manual),
            "scheduled" => Ok(Self::Scheduled),
            "webhook" => Ok(Self::Webhook),
            _ => Err(ValidationError::field(
                "trigger_type",
                "must be one of manual, scheduled, webhook",
            )),
        }
    }
}

/// A submission as a request carried it, each field already of the right JSON type but not yet
/// checked against the domain's rules. `None` means the field was absent (or null).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawSubmission {
    pub workflow_name: Option<String>,
    pub workflow_json: Option<Value>,
    /// When absent, a string `metadata.description` is the description (the CasareRPA document
    /// submits it there and reads it back as `description`).
    pub description: Option<String>,
    pub trigger_type: Option<String>,
    pub execution_mode: Option<String>,
    pub schedule_cron: Option<String>,
    pub priority: Option<i64>,
    pub metadata: Map<String, Value>,
}

/// How a validated submission starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Start {
    Manual,
    Scheduled(Box<CronSchedule>),
    Webhook,
}

/// A submission that satisfies every rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub name: WorkflowName,
    pub description: Option<String>,
    pub graph: WorkflowGraph,
    pub start: Start,
    pub execution_mode: ExecutionMode,
    pub priority: Priority,
    pub metadata: Map<String, Value>,
}

impl Submission {
    /// Checks every field and reports every broken rule at once. `schedule_cron` is required
    /// with `trigger_type: scheduled` and ignored otherwise, as the CasareRPA document reads.
    pub fn parse(raw: RawSubmission) -> Result<Self, ValidationError> {
        let mut v = Validator::new();
        let name = required(
            &mut v,
            "workflow_name",
            raw.workflow_name,
            WorkflowName::parse,
        );
        let graph = required(
            &mut v,
            "workflow_json",
            raw.workflow_json,
            WorkflowGraph::parse,
        );
        let description = raw.description.or_else(|| {
            raw.metadata
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let description = v
            .check(crate::text::check_optional(
                "description",
                description,
                Workflow::MAX_DESCRIPTION,
            ))
            .flatten();
        let trigger_type = v.check(
            raw.trigger_type
                .as_deref()
                .map_or(Ok(TriggerType::default()), TriggerType::parse),
        );
        let execution_mode = v.check(
            raw.execution_mode
                .as_deref()
                .map_or(Ok(ExecutionMode::default()), ExecutionMode::parse),
        );
        let priority = v.check(raw.priority.map_or(Ok(Priority::default()), Priority::new));
        let start = trigger_type.and_then(|t| parse_start(&mut v, t, raw.schedule_cron));
        v.finish()?;
        match (name, graph, start, execution_mode, priority) {
            (Some(name), Some(graph), Some(start), Some(execution_mode), Some(priority)) => {
                Ok(Self {
                    name,
                    description,
                    graph,
                    start,
                    execution_mode,
                    priority,
                    metadata: raw.metadata,
                })
            }
            // Every `None` above recorded an error, which `finish` returned.
            _ => Err(ValidationError::field("body", "is not a valid submission")),
        }
    }
}

/// A required field: its parsed value, or `None` with its error recorded.
fn required<R, T>(
    v: &mut Validator,
    field: &str,
    raw: Option<R>,
    parse: impl FnOnce(R) -> Result<T, ValidationError>,
) -> Option<T> {
    match raw {
        Some(raw) => v.check(parse(raw)),
        None => {
            v.push(field, "is required");
            None
        }
    }
}

fn parse_start(v: &mut Validator, trigger: TriggerType, cron: Option<String>) -> Option<Start> {
    match (trigger, cron) {
        (TriggerType::Manual, _) => Some(Start::Manual),
        (TriggerType::Webhook, _) => Some(Start::Webhook),
        (TriggerType::Scheduled, Some(cron)) => v
            .check(CronSchedule::parse(&cron, None).map_err(|e| renamed(e, "schedule_cron")))
            .map(|cron| Start::Scheduled(Box::new(cron))),
        (TriggerType::Scheduled, None) => {
            v.push(
                "schedule_cron",
                "is required when trigger_type is scheduled",
            );
            None
        }
    }
}

/// Reports a cron error under the name the client used for the field.
fn renamed(err: ValidationError, field: &str) -> ValidationError {
    ValidationError {
        errors: err
            .errors
            .into_iter()
            .map(|e| FieldError {
                field: field.to_owned(),
                message: e.message,
            })
            .collect(),
    }
}

/// What a submission started.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    /// `manual`: the pending job.
    Job(Box<Job>),
    /// `scheduled`: the SCHEDULED trigger; its id is the schedule id.
    Schedule(Box<Trigger>),
    /// `webhook`: the token of the webhook URL, to be shown once and never again.
    Webhook { token: String },
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub workflow: Workflow,
    pub started: Started,
}

/// The workflow use cases.
pub struct WorkflowService {
    workflows: Arc<dyn WorkflowRepository>,
    jobs: Arc<dyn JobRepository>,
    triggers: Arc<dyn TriggerRepository>,
    webhooks: Arc<dyn WebhookRepository>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl WorkflowService {
    pub fn new(
        workflows: Arc<dyn WorkflowRepository>,
        jobs: Arc<dyn JobRepository>,
        triggers: Arc<dyn TriggerRepository>,
        webhooks: Arc<dyn WebhookRepository>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            workflows,
            jobs,
            triggers,
            webhooks,
            clock,
            ids,
        }
    }

    /// The service over every port of one store, what an adapter holds.
    pub fn from_store(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self::new(
            store.clone(),
            store.clone(),
            store.clone(),
            store,
            clock,
            ids,
        )
    }

    /// Stores the workflow with its agents and starts it as its trigger type asks: a pending job,
    /// a SCHEDULED trigger, or a webhook. Errors: `Invalid` for a cron expression that never
    /// fires again; storage errors, after which nothing of the submission remains.
    pub async fn submit(&self, submission: Submission) -> Result<Submitted, ServiceError> {
        let now = self.clock.now();
        if let Start::Scheduled(cron) = &submission.start
            && cron.next_after(now).is_none()
        {
            return Err(ValidationError::field("schedule_cron", "never fires after now").into());
        }
        let workflow = Workflow::new(
            WorkflowId::from_uuid(self.ids.new_uuid()),
            submission.name,
            submission.description,
            submission.graph,
            submission.metadata,
            now,
        )?;
        let agents =
            Agent::from_workflow(&workflow, &[], || AgentId::from_uuid(self.ids.new_uuid()));
        self.workflows.insert_workflow(&workflow, &agents).await?;
        let plan = StartPlan {
            priority: submission.priority,
            execution_mode: submission.execution_mode,
            now,
        };
        match self.start(&workflow, submission.start, plan).await {
            Ok(started) => Ok(Submitted { workflow, started }),
            Err(e) => {
                // Undo the first step; if even that fails, the original error is the one the
                // client needs, and the workflow is left visible for them to delete.
                let _ = self.workflows.delete_workflow(workflow.id).await;
                Err(e)
            }
        }
    }

    async fn start(
        &self,
        workflow: &Workflow,
        start: Start,
        plan: StartPlan,
    ) -> Result<Started, ServiceError> {
        match start {
            Start::Manual => {
                let job = self
                    .queue_job(workflow, plan, Map::new(), JobOrigin::Manual)
                    .await?;
                Ok(Started::Job(Box::new(job)))
            }
            Start::Scheduled(cron) => {
                let trigger = self.schedule(workflow, cron, plan).await?;
                Ok(Started::Schedule(Box::new(trigger)))
            }
            Start::Webhook => {
                let (webhook, token) =
                    Webhook::issue(workflow.id, plan.priority, plan.execution_mode, plan.now)
                        .map_err(|e| {
                            RepoError::Internal(format!("issuing a webhook token: {e}"))
                        })?;
                self.webhooks.insert_webhook(&webhook).await?;
                Ok(Started::Webhook { token })
            }
        }
    }

    /// Inserts a pending job of `workflow` with its `job_created` event.
    async fn queue_job(
        &self,
        workflow: &Workflow,
        plan: StartPlan,
        input: Map<String, Value>,
        origin: JobOrigin,
    ) -> Result<Job, ServiceError> {
        let job = NewJob {
            workflow_id: workflow.id,
            workflow_name: workflow.name.clone(),
            priority: plan.priority,
            execution_mode: plan.execution_mode,
            input,
            origin,
            max_retries: NewJob::DEFAULT_MAX_RETRIES,
        }
        .into_job(JobId::from_uuid(self.ids.new_uuid()), plan.now);
        let event = Event::job_changed(
            EventId::from_uuid(self.ids.new_uuid()),
            &job,
            false,
            plan.now,
        );
        self.jobs.insert_job(&job, &[event]).await?;
        Ok(job)
    }

    /// Creates the SCHEDULED trigger, named after the workflow. Trigger names are unique while
    /// workflow names are not, so a taken name falls back to one that carries the workflow id.
    async fn schedule(
        &self,
        workflow: &Workflow,
        cron: Box<CronSchedule>,
        plan: StartPlan,
    ) -> Result<Trigger, ServiceError> {
        let mut last_conflict = None;
        for name in schedule_names(&workflow.name, workflow.id) {
            let mut trigger = Trigger::new(
                TriggerId::from_uuid(self.ids.new_uuid()),
                name,
                TriggerKind::Scheduled(cron.clone()),
                workflow.id,
                true,
                plan.priority,
                plan.execution_mode,
                plan.now,
            );
            // `/schedules` shows the workflow's name even when the trigger's carries the id.
            trigger.schedule_name = ScheduleName::parse(workflow.name.as_str()).ok();
            match self.triggers.insert_trigger(&trigger).await {
                Ok(()) => return Ok(trigger),
                Err(RepoError::Conflict(message)) => last_conflict = Some(message),
                Err(e) => return Err(e.into()),
            }
        }
        Err(RepoError::Conflict(last_conflict.unwrap_or_default()).into())
    }

    /// Starts a job of the webhook's workflow with `input`. An unknown token, and the token of a
    /// deleted workflow, are both `NotFound("webhook")`: the URL simply does not exist.
    pub async fn run_webhook(
        &self,
        token: &str,
        input: Map<String, Value>,
    ) -> Result<Job, ServiceError> {
        let not_found = || RepoError::NotFound("webhook");
        let hash = Webhook::lookup_hash(token).ok_or_else(not_found)?;
        let webhook = self.webhooks.find_webhook_by_token_hash(&hash).await?;
        // The lookup went by hash; comparing again in constant time keeps a storage that
        // matched loosely (or by prefix) from being a timing oracle.
        if !constant_time_eq(&webhook.token_hash, &hash) {
            return Err(not_found().into());
        }
        let workflow = self
            .workflows
            .get_workflow(webhook.workflow_id)
            .await
            .map_err(|e| match e {
                RepoError::NotFound(_) => not_found(),
                other => other,
            })?;
        let plan = StartPlan {
            priority: webhook.priority,
            execution_mode: webhook.execution_mode,
            now: self.clock.now(),
        };
        self.queue_job(&workflow, plan, input, JobOrigin::Webhook)
            .await
    }

    /// Deletes a workflow with its agents, messages, triggers and webhooks; its jobs keep their
    /// records. Errors: `NotFound`.
    pub async fn delete(&self, id: WorkflowId) -> Result<(), ServiceError> {
        self.workflows.delete_workflow(id).await?;
        // The webhooks' foreign key usually took them with the workflow already. If this
        // cleanup fails, the rows left are inert: a webhook of a missing workflow answers 404.
        let _ = self.webhooks.delete_webhooks_of(id).await;
        Ok(())
    }
}

/// How the jobs a submission starts run, and when it was made.
#[derive(Debug, Clone, Copy)]
struct StartPlan {
    priority: Priority,
    execution_mode: ExecutionMode,
    now: Timestamp,
}

/// The names a workflow's schedule tries, in order: the workflow's name, then the name with the
/// workflow id (shortened so the whole fits the 255 characters of a schedule name).
fn schedule_names(name: &WorkflowName, id: WorkflowId) -> Vec<TriggerName> {
    let suffix = format!(" ({id})");
    let keep = TriggerName::MAX_CHARS - suffix.chars().count();
    let short: String = name.as_str().chars().take(keep).collect();
    [name.as_str().to_owned(), format!("{short}{suffix}")]
        .into_iter()
        .filter_map(|n| TriggerName::parse(n).ok())
        .collect()
}

#[cfg(test)]
mod tests;
