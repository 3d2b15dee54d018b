//! CasareRPA's schedules (`/api/v1/schedules`). A schedule is a SCHEDULED trigger
//! (docs/schedules.md):
//! it is stored through the [`TriggerRepository`] and fired by the trigger engine
//! ([`TriggerService::fire_round`]), so `/schedules` and `/triggers` are two views of one thing,
//! and every SCHEDULED trigger (those made by `POST /triggers` or by a workflow submitted with
//! `trigger_type: scheduled` included) is a schedule.
//!
//! A schedule's name is not unique, a trigger's is: the schedule keeps its name in
//! [`Trigger::schedule_name`], and its trigger is named after it when that name is free and
//! fits the 100 characters of a trigger name, else `<start of the name> (<schedule id>)`.

mod input;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::clock::{Clock, IdGenerator, Timestamp};
use crate::error::RepoError;
use crate::ids::TriggerId;
use crate::job::Job;
use crate::ports::{
    QueueRepository, Store, TriggerCursor, TriggerFilter, TriggerRepository, WorkflowRepository,
};
use crate::trigger::{ScheduleName, Trigger, TriggerKind, TriggerName, TriggerType};

pub use input::{DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, ScheduleFilter, ScheduleInput, ScheduleQuery};

use super::ServiceError;
use super::triggers::TriggerService;

/// How many times enabling or disabling is retried when a fire (or another client) moved the
/// trigger's version on first: a per-second schedule fires often enough to race.
const UPDATE_ATTEMPTS: usize = 3;

/// The schedule use cases.
pub struct ScheduleService {
    triggers: Arc<dyn TriggerRepository>,
    workflows: Arc<dyn WorkflowRepository>,
    /// Runs a schedule now exactly as the engine fires one.
    engine: TriggerService,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl ScheduleService {
    pub fn new(
        triggers: Arc<dyn TriggerRepository>,
        workflows: Arc<dyn WorkflowRepository>,
        queues: Arc<dyn QueueRepository>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        let engine = TriggerService::new(
            triggers.clone(),
            workflows.clone(),
            queues,
            clock.clone(),
            ids.clone(),
        );
        Self {
            triggers,
            workflows,
            engine,
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
        Self::new(store.clone(), store.clone(), store, clock, ids)
    }

    /// Creates a schedule: a SCHEDULED trigger whose first `next_run` comes from its cron.
    /// Errors: `Invalid` with every broken rule; `Repo(NotFound("workflow"))` when the fields
    /// are valid but no workflow has the id.
    pub async fn create(&self, input: ScheduleInput) -> Result<Trigger, ServiceError> {
        let now = self.clock.now();
        let checked = input::check(input, now)?;
        let workflow = self.workflows.get_workflow(checked.workflow_id).await?;
        let id = TriggerId::from_uuid(self.ids.new_uuid());
        let mut last_conflict = None;
        for name in trigger_names(&checked.name, id) {
            let mut trigger = Trigger::new(
                id,
                name,
                TriggerKind::Scheduled(Box::new(checked.cron.clone())),
                workflow.id,
                checked.enabled,
                checked.priority,
                checked.execution_mode,
                now,
            );
            trigger.schedule_name = Some(checked.name.clone());
            trigger.is_blocking = checked.is_blocking;
            trigger.metadata = checked.metadata.clone();
            match self.triggers.insert_trigger(&trigger).await {
                Ok(()) => return Ok(trigger),
                Err(RepoError::Conflict(message)) => last_conflict = Some(message),
                Err(other) => return Err(other.into()),
            }
        }
        Err(RepoError::Conflict(last_conflict.unwrap_or_default()).into())
    }

    /// Errors: `Repo(NotFound("schedule"))` for an unknown id or a trigger that is not SCHEDULED.
    pub async fn get(&self, id: TriggerId) -> Result<Trigger, ServiceError> {
        match self.triggers.get_trigger(id).await {
            Ok(trigger) if trigger.kind.type_name() == TriggerType::Scheduled => Ok(trigger),
            Ok(_) | Err(RepoError::NotFound(_)) => Err(RepoError::NotFound("schedule").into()),
            Err(other) => Err(other.into()),
        }
    }

    /// The schedules matching the filter, oldest first, at most `limit` of them.
    /// Errors: `Invalid` naming each bad parameter.
    pub async fn list(&self, query: ScheduleQuery) -> Result<Vec<Trigger>, ServiceError> {
        Ok(self.list_page(query).await?.0)
    }

    /// One page of [`Self::list`], and where the next page starts when more schedules follow
    /// (`None` on the last page). One more than the limit is read to know.
    pub async fn list_page(
        &self,
        query: ScheduleQuery,
    ) -> Result<(Vec<Trigger>, Option<TriggerCursor>), ServiceError> {
        let filter = query.check()?;
        let mut triggers = self
            .triggers
            .list_triggers(&TriggerFilter {
                trigger_type: Some(TriggerType::Scheduled),
                workflow_id: filter.workflow_id,
                enabled: filter.enabled,
                limit: filter.limit + 1,
                after: filter.after,
            })
            .await?;
        let more = triggers.len() > filter.limit as usize;
        triggers.truncate(filter.limit as usize);
        let next = more
            .then(|| triggers.last())
            .flatten()
            .map(|t| TriggerCursor {
                created_at: t.created_at(),
                id: t.id(),
            });
        Ok((triggers, next))
    }

    /// Enables or disables a schedule. Enabling a disabled one starts its rhythm from now:
    /// windows missed while it was disabled are not replayed. Setting the state it already has
    /// changes nothing. Errors: `Repo(NotFound("schedule"))`; `Repo(Conflict)` when every
    /// attempt lost a race with a fire.
    pub async fn set_enabled(&self, id: TriggerId, enabled: bool) -> Result<Trigger, ServiceError> {
        let mut last = None;
        for _ in 0..UPDATE_ATTEMPTS {
            let mut trigger = self.get(id).await?;
            if trigger.enabled == enabled {
                return Ok(trigger);
            }
            trigger.set_enabled(enabled, self.clock.now());
            match self.triggers.update_trigger(&trigger).await {
                Ok(stored) => return Ok(stored),
                Err(RepoError::NotFound(_)) => return Err(RepoError::NotFound("schedule").into()),
                Err(RepoError::Conflict(reason)) => last = Some(reason),
                Err(other) => return Err(other.into()),
            }
        }
        Err(RepoError::Conflict(
            last.unwrap_or_else(|| "the schedule keeps changing; retry".to_owned()),
        )
        .into())
    }

    /// Runs the schedule's workflow now, enabled or not, without moving its `next_run`; the
    /// fire counts in `run_count` and `last_run` as the engine's do. Returns the schedule and
    /// the job. Errors: `Repo(NotFound("schedule"))`; `Repo(NotFound("workflow"))`.
    pub async fn trigger_now(&self, id: TriggerId) -> Result<(Trigger, Job), ServiceError> {
        self.get(id).await?;
        self.engine.run_now(id).await.map_err(|e| match e {
            ServiceError::Repo(RepoError::NotFound("trigger")) => {
                RepoError::NotFound("schedule").into()
            }
            other => other,
        })
    }

    /// Deletes a schedule; the jobs it started keep their records.
    /// Errors: `Repo(NotFound("schedule"))`.
    pub async fn delete(&self, id: TriggerId) -> Result<(), ServiceError> {
        self.get(id).await?;
        match self.triggers.delete_trigger(id).await {
            Ok(()) => Ok(()),
            Err(RepoError::NotFound(_)) => Err(RepoError::NotFound("schedule").into()),
            Err(other) => Err(other.into()),
        }
    }
}

/// The next fire a schedule shows: none while it is disabled, since it will not fire then (and
/// enabling it computes a new one from that moment).
pub fn shown_next_run(schedule: &Trigger) -> Option<Timestamp> {
    schedule.next_run.filter(|_| schedule.enabled)
}

/// The unique trigger names a new schedule tries, in order: its own name when it fits a trigger
/// name, then the start of it with the schedule's id, which no other trigger can hold.
fn trigger_names(name: &ScheduleName, id: TriggerId) -> Vec<TriggerName> {
    let suffix = format!(" ({id})");
    let keep = TriggerName::API_MAX_CHARS.saturating_sub(suffix.chars().count());
    let short: String = name.as_str().chars().take(keep).collect();
    [name.as_str().to_owned(), format!("{short}{suffix}")]
        .into_iter()
        .filter_map(|n| TriggerName::parse_trigger(n).ok())
        .collect()
}
