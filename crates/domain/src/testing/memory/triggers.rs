//! [`TriggerRepository`] in memory.

use std::collections::HashSet;

use async_trait::async_trait;

use super::{InMemoryStore, State, limited};
use crate::clock::Timestamp;
use crate::error::{RepoError, RepoResult};
use crate::event::Event;
use crate::ids::{JobId, TriggerId};
use crate::job::Job;
use crate::ports::{DueCursor, FireRecord, TriggerFilter, TriggerRepository};
use crate::trigger::{ProcessStatus, Trigger, TriggerKind, TriggerName};

/// The message of a fire that lost its race.
const MOVED: &str = "the trigger changed meanwhile; another fire or change came first";

/// Whether the trigger's state lets it fire at all, whatever the time: the databases' partial
/// index `triggers_fireable` holds exactly these.
fn fireable(trigger: &Trigger) -> bool {
    if !trigger.enabled {
        return false;
    }
    match trigger.kind {
        TriggerKind::Single | TriggerKind::Queue { .. } => {
            trigger.process_status == ProcessStatus::Idle
        }
        TriggerKind::Scheduled(_) => match trigger.process_status {
            ProcessStatus::Paused | ProcessStatus::Pausing | ProcessStatus::Killing => false,
            ProcessStatus::Running => !trigger.is_blocking,
            _ => true,
        },
    }
}

/// Fireable triggers due by time at `now`, in `(next_run, id)` order.
fn due_by_time(state: &State, now: Timestamp) -> Vec<&Trigger> {
    let mut due: Vec<&Trigger> = state
        .triggers
        .values()
        .filter(|t| fireable(t) && t.next_run.is_some_and(|run| run <= now))
        .collect();
    due.sort_by_key(|t| (t.next_run, t.id));
    due
}

impl State {
    fn check_trigger_name(&self, trigger: &Trigger) -> RepoResult<()> {
        let taken = self
            .triggers
            .values()
            .any(|other| other.id != trigger.id && other.name == trigger.name);
        if taken {
            return Err(RepoError::Conflict(format!(
                "a trigger named '{}' already exists",
                trigger.name
            )));
        }
        Ok(())
    }

    /// Whether a fire read at `trigger.version` may still store it.
    fn fire_stands(&self, trigger: &Trigger) -> bool {
        self.triggers
            .get(&trigger.id)
            .is_some_and(|stored| stored.version == trigger.version)
    }
}

#[async_trait]
impl TriggerRepository for InMemoryStore {
    async fn insert_trigger(&self, trigger: &Trigger) -> RepoResult<()> {
        let mut state = self.state();
        if state.triggers.contains_key(&trigger.id) {
            return Err(RepoError::Conflict(format!(
                "a trigger with id {} already exists",
                trigger.id
            )));
        }
        state.check_trigger_name(trigger)?;
        state.triggers.insert(trigger.id, trigger.clone());
        Ok(())
    }

    async fn get_trigger(&self, id: TriggerId) -> RepoResult<Trigger> {
        self.state()
            .triggers
            .get(&id)
            .cloned()
            .ok_or(RepoError::NotFound("trigger"))
    }

    async fn get_trigger_by_name(&self, name: &TriggerName) -> RepoResult<Trigger> {
        self.state()
            .triggers
            .values()
            .find(|t| t.name == *name)
            .cloned()
            .ok_or(RepoError::NotFound("trigger"))
    }

    async fn list_triggers(&self, filter: &TriggerFilter) -> RepoResult<Vec<Trigger>> {
        let state = self.state();
        let mut triggers: Vec<&Trigger> = state
            .triggers
            .values()
            .filter(|t| filter.trigger_type.is_none_or(|k| t.kind.type_name() == k))
            .filter(|t| filter.workflow_id.is_none_or(|w| t.workflow_id == w))
            .filter(|t| filter.enabled.is_none_or(|e| t.enabled == e))
            .filter(|t| {
                filter
                    .after
                    .is_none_or(|c| (t.created_at, t.id) > (c.created_at, c.id))
            })
            .collect();
        triggers.sort_by_key(|t| (t.created_at, t.id));
        let triggers = triggers.into_iter().cloned();
        // A limit of 0 lists every trigger.
        Ok(if filter.limit > 0 {
            limited(triggers, filter.limit)
        } else {
            triggers.collect()
        })
    }

    async fn update_trigger(&self, trigger: &Trigger) -> RepoResult<Trigger> {
        let mut state = self.state();
        let stored = state
            .triggers
            .get(&trigger.id)
            .ok_or(RepoError::NotFound("trigger"))?;
        if stored.version != trigger.version {
            return Err(RepoError::Conflict(
                "the trigger changed meanwhile; reload it and retry".to_owned(),
            ));
        }
        state.check_trigger_name(trigger)?;
        let updated = Trigger {
            version: trigger.version + 1,
            ..trigger.clone()
        };
        state.triggers.insert(updated.id, updated.clone());
        Ok(updated)
    }

    async fn delete_trigger(&self, id: TriggerId) -> RepoResult<()> {
        self.state()
            .triggers
            .remove(&id)
            .map(drop)
            .ok_or(RepoError::NotFound("trigger"))
    }

    async fn due_trigger_candidates(&self, now: Timestamp, limit: u32) -> RepoResult<Vec<Trigger>> {
        let state = self.state();
        let mut due = limited(due_by_time(&state, now).into_iter(), limit);
        let rest = usize::try_from(limit).unwrap_or(usize::MAX) - due.len();
        if rest > 0 {
            // Then those without a due time, or QUEUE ones whose time is still ahead: those
            // with a time first, by it, then by id.
            let mut waiting: Vec<&Trigger> = state
                .triggers
                .values()
                .filter(|t| fireable(t))
                .filter(|t| match t.next_run {
                    None => true,
                    Some(run) => matches!(t.kind, TriggerKind::Queue { .. }) && run > now,
                })
                .collect();
            waiting.sort_by_key(|t| (t.next_run.is_none(), t.next_run, t.id));
            due.extend(waiting.into_iter().take(rest));
        }
        Ok(due.into_iter().cloned().collect())
    }

    async fn due_trigger_candidates_after(
        &self,
        now: Timestamp,
        after: DueCursor,
        limit: u32,
    ) -> RepoResult<Vec<Trigger>> {
        let state = self.state();
        let due = due_by_time(&state, now)
            .into_iter()
            .filter(|t| (t.next_run, t.id) > (Some(after.next_run), after.id))
            .cloned();
        Ok(limited(due, limit))
    }

    async fn record_fire(&self, trigger: &Trigger, job: &Job, events: &[Event]) -> RepoResult<()> {
        let fire = FireRecord {
            trigger: trigger.clone(),
            job: job.clone(),
            events: events.to_vec(),
        };
        self.record_fires(std::slice::from_ref(&fire))
            .await?
            .pop()
            .unwrap_or_else(|| Err(RepoError::Internal("no outcome for the fire".to_owned())))
    }

    async fn record_fires(&self, fires: &[FireRecord]) -> RepoResult<Vec<RepoResult<()>>> {
        let mut state = self.state();
        // A trigger named twice is judged by its first fire.
        let mut seen = HashSet::new();
        let stands: Vec<bool> = fires
            .iter()
            .map(|fire| seen.insert(fire.trigger.id) && state.fire_stands(&fire.trigger))
            .collect();
        let winners = || {
            fires
                .iter()
                .zip(&stands)
                .filter(|(_, stands)| **stands)
                .map(|(fire, _)| fire)
        };
        // Taken job or event ids fail the whole call: ids are fresh, so that is a bug.
        let mut job_ids = HashSet::new();
        for fire in winners() {
            state.check_new_job(&fire.job)?;
            if !job_ids.insert(fire.job.id()) {
                return Err(RepoError::Conflict(format!(
                    "a job with id {} already exists",
                    fire.job.id()
                )));
            }
        }
        state.check_events(winners().flat_map(|fire| &fire.events))?;
        for fire in winners() {
            let stored = Trigger {
                version: fire.trigger.version + 1,
                ..fire.trigger.clone()
            };
            state.triggers.insert(stored.id, stored);
            state.jobs.insert(fire.job.id(), fire.job.clone());
            state.append_events(&fire.events);
        }
        Ok(stands
            .into_iter()
            .map(|stands| {
                if stands {
                    Ok(())
                } else {
                    Err(RepoError::Conflict(MOVED.to_owned()))
                }
            })
            .collect())
    }

    async fn triggers_for_job(&self, job: JobId) -> RepoResult<Vec<Trigger>> {
        let state = self.state();
        let mut triggers: Vec<&Trigger> = state
            .triggers
            .values()
            .filter(|t| t.current_job_id == Some(job))
            .collect();
        triggers.sort_by_key(|t| (t.created_at, t.id));
        Ok(triggers.into_iter().cloned().collect())
    }
}
