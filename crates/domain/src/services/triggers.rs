//! Triggers: creating, changing and deleting them, the integrator's status change
//! (PyOrchestrator's `POST /api/trigger`), firing the due ones, and following the jobs they
//! start (docs/triggers.md).
//!
//! Every write is load → domain method → store-if-version-unchanged. A fire is stored together
//! with its job, each trigger version-checked on its own, so when several servers share a
//! database a due trigger starts exactly one job: the servers that lose the race see `Conflict`
//! and move on. The engine's fires of one round are stored together, up to
//! [`FIRES_PER_WRITE`] per transaction ([`TriggerRepository::record_fires`]): a transaction per
//! fire would bound a server to what the database flushes per second, far below the thousands of
//! per-second schedules one server must fire.

mod definition;
#[cfg(test)]
pub(crate) mod memory;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use serde_json::Value;

use crate::clock::{Clock, IdGenerator, Timestamp};
use crate::error::{FieldError, RepoError, RepoResult, Validator};
use crate::event::{Event, EventType};
use crate::ids::{EventId, JobId, TriggerId, WorkflowId};
use crate::job::{Job, JobOrigin, JobStatus, NewJob};
use crate::ports::{DueCursor, FireRecord, QueueRepository, TriggerRepository, WorkflowRepository};
use crate::queue::{QueueItemStatus, QueueName};
use crate::trigger::{JobOutcome, ProcessStatus, Trigger, TriggerKind, TriggerName};
use crate::workflow::{ExecutionMode, Workflow};

pub use definition::{MAX_BATCH_SIZE, TriggerInput};

use super::ServiceError;

/// How many times a change is retried when a concurrent writer (a fire, another client) moved
/// the trigger's version on first.
const UPDATE_ATTEMPTS: usize = 3;

/// The most fires stored in one transaction. Larger batches save little more per fire, and a
/// transaction holds SQLite's write lock (and on PostgreSQL its fired triggers' row locks) while
/// it runs: a few tens of milliseconds at this size.
pub const FIRES_PER_WRITE: usize = 500;

/// The body of PyOrchestrator's `POST /api/trigger`, as the client sent it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusChange {
    pub trigger_name: Option<String>,
    /// IDLE when left out.
    pub process_status: Option<String>,
    /// Fields the adapter could not read, reported with the broken rules of the others.
    pub unreadable: Vec<FieldError>,
}

/// What one batch of due triggers came to: [`TriggerService::fire_due`]'s, or each batch of
/// [`TriggerService::fire_round`]'s (its [`RoundReport`] adds them up).
#[derive(Debug, Default)]
pub struct FireRound {
    /// How many candidates the round looked at: when it is the `limit` given, more triggers may
    /// be due, and the caller may call again at once.
    pub candidates: usize,
    /// Each trigger that fired, with the job it started.
    pub fired: Vec<(TriggerId, JobId)>,
    /// Due triggers another server fired (or a client changed) first: not fired here.
    pub lost_races: usize,
    /// Due triggers whose workflow no longer exists, so there is nothing to run.
    pub orphaned: Vec<TriggerId>,
    /// Triggers that could not be judged or fired this round; the next round tries again.
    pub failed: Vec<(TriggerId, RepoError)>,
}

/// What [`TriggerService::fire_round`] did: its batches' [`FireRound`]s added up.
#[derive(Debug, Default)]
pub struct RoundReport {
    /// How many batches were read.
    pub batches: usize,
    pub fires: FireRound,
    /// The read that ended the round, when one failed.
    pub read_error: Option<ServiceError>,
}

impl RoundReport {
    fn add(&mut self, round: FireRound) {
        let fires = &mut self.fires;
        fires.candidates += round.candidates;
        fires.fired.extend(round.fired);
        fires.lost_races += round.lost_races;
        fires.orphaned.extend(round.orphaned);
        fires.failed.extend(round.failed);
    }
}

/// A batch of candidates judged and not stored yet.
struct JudgedBatch {
    /// The candidates read, with the ones that failed or were orphaned; the fires' outcomes are
    /// added when they are stored.
    round: FireRound,
    fires: Vec<FireRecord>,
    /// Where the next batch of the round may be read from while this one is stored.
    next: Option<DueCursor>,
}

/// The trigger use cases.
pub struct TriggerService {
    triggers: Arc<dyn TriggerRepository>,
    workflows: Arc<dyn WorkflowRepository>,
    queues: Arc<dyn QueueRepository>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl TriggerService {
    pub fn new(
        triggers: Arc<dyn TriggerRepository>,
        workflows: Arc<dyn WorkflowRepository>,
        queues: Arc<dyn QueueRepository>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            triggers,
            workflows,
            queues,
            clock,
            ids,
        }
    }

    /// Creates a trigger after checking every rule at once, the workflow's existence included.
    /// Errors: `Invalid`; `Repo(Conflict)` when the name is taken.
    pub async fn create(&self, input: TriggerInput) -> Result<Trigger, ServiceError> {
        let (checked, mut v) = definition::check(input, None);
        self.check_workflow(&checked, &mut v).await?;
        v.finish()?;
        let required = |field: &str| crate::ValidationError::field(field, "is required");
        let name = checked.name.ok_or_else(|| required("trigger_name"))?;
        let kind = checked.kind.ok_or_else(|| required("type"))?;
        let workflow_id = checked.workflow_id.ok_or_else(|| required("workflow_id"))?;
        let now = self.clock.now();
        let mut trigger = Trigger::new(
            TriggerId::from_uuid(self.ids.new_uuid()),
            name,
            kind,
            workflow_id,
            checked.enabled.unwrap_or(true),
            checked.priority.unwrap_or_default(),
            checked.execution_mode.unwrap_or(ExecutionMode::Lan),
            now,
        );
        trigger.process_status = checked.process_status.unwrap_or(ProcessStatus::Idle);
        if let Some(blocking) = checked.is_blocking {
            trigger.is_blocking = blocking;
        }
        if let Some(args) = checked.process_args {
            trigger.process_args = args;
        }
        if checked.next_run.is_some() {
            trigger.next_run = checked.next_run;
        }
        self.triggers.insert_trigger(&trigger).await?;
        Ok(trigger)
    }

    /// Changes the fields given and keeps the others. A new schedule (or a change of type)
    /// starts the trigger's rhythm from now; a status of IDLE re-arms a SINGLE trigger.
    /// Errors: `Repo(NotFound)`; `Invalid`; `Repo(Conflict)` when the new name is taken.
    pub async fn update(
        &self,
        id: TriggerId,
        input: TriggerInput,
    ) -> Result<Trigger, ServiceError> {
        let mut last = None;
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.triggers.get_trigger(id).await?;
            let (checked, mut v) = definition::check(input.clone(), Some(&current.kind));
            self.check_workflow(&checked, &mut v).await?;
            v.finish()?;
            if let Some(name) = &checked.name {
                self.ensure_name_free(name, id).await?;
            }
            let changed = apply(current, checked, self.clock.now());
            match self.triggers.update_trigger(&changed).await {
                Ok(stored) => return Ok(stored),
                Err(RepoError::Conflict(reason)) => last = Some(RepoError::Conflict(reason)),
                Err(other) => return Err(other.into()),
            }
        }
        Err(gave_up(last).into())
    }

    /// Errors: `Repo(NotFound)`.
    pub async fn delete(&self, id: TriggerId) -> Result<(), ServiceError> {
        Ok(self.triggers.delete_trigger(id).await?)
    }

    /// PyOrchestrator's status change: sets the process status (IDLE when not given) of the
    /// SINGLE trigger named. Errors: `Invalid`; `Repo(NotFound)` for an unknown name or a
    /// trigger of another type, as the seed document answers both with 404.
    pub async fn set_status_by_name(&self, change: StatusChange) -> Result<Trigger, ServiceError> {
        let mut v = Validator::new();
        let name_unreadable = change.unreadable.iter().any(|e| e.field == "trigger_name");
        for e in change.unreadable {
            v.push(e.field, e.message);
        }
        let name = match change.trigger_name {
            Some(name) => v.check(TriggerName::parse_trigger(name)),
            None => {
                if !name_unreadable {
                    v.push("trigger_name", "is required: the name of a SINGLE trigger");
                }
                None
            }
        };
        let status = match change.process_status {
            Some(text) => v.check(text.parse::<ProcessStatus>()),
            None => Some(ProcessStatus::Idle),
        };
        v.finish()?;
        let (Some(name), Some(status)) = (name, status) else {
            return Err(crate::ValidationError::field("trigger_name", "is required").into());
        };
        let mut last = None;
        for _ in 0..UPDATE_ATTEMPTS {
            let mut trigger = self.triggers.get_trigger_by_name(&name).await?;
            if trigger.kind != TriggerKind::Single {
                return Err(RepoError::NotFound("SINGLE trigger").into());
            }
            trigger.set_process_status(status, self.clock.now());
            match self.triggers.update_trigger(&trigger).await {
                Ok(stored) => return Ok(stored),
                Err(RepoError::Conflict(reason)) => last = Some(RepoError::Conflict(reason)),
                Err(other) => return Err(other.into()),
            }
        }
        Err(gave_up(last).into())
    }

    /// Fires the triggers due at `now` (at most `limit` are looked at): each gets one job of its
    /// workflow. The round's workflows are read once each, and its fires are stored together,
    /// [`FIRES_PER_WRITE`] at most per transaction (the transactions concurrently), each trigger
    /// version-checked on its own. A trigger another server fired first is skipped; one
    /// trigger's failure does not hold up the others. Every fire of the round takes `now` as its
    /// time (its job's `created_at`). Errors: only when the candidates cannot be read at all.
    pub async fn fire_due(&self, now: Timestamp, limit: u32) -> Result<FireRound, ServiceError> {
        let batch = self.judge_due(now, limit, None).await?;
        Ok(self.store_batch(batch).await)
    }

    /// Fires what is due, a batch of at most `limit` candidates at a time, for as long as batches
    /// come back full and the round is within `budget`; each batch takes the clock's time when
    /// it is read. While a batch full of triggers due by time is being stored, the next one is
    /// read and judged from where it ended, so that the database's writes and the reads and
    /// judging of the next batch overlap instead of taking turns. Any other full batch (one
    /// ending in QUEUE triggers or triggers without a time) is stored first, and the next one is
    /// read afresh, as long as that batch fired or lost something: a batch of triggers that
    /// neither fired nor lost (failed, orphaned, QUEUE triggers short of items) would come back
    /// the same. A failed read ends the round, after the batches already read are stored.
    pub async fn fire_round(&self, limit: u32, budget: time::Duration) -> RoundReport {
        let started = self.clock.now();
        let mut report = RoundReport::default();
        let mut after = None;
        let mut storing = None;
        loop {
            let read = self.judge_due(self.clock.now(), limit, after.take());
            let judged = match storing.take() {
                Some(store) => {
                    let (judged, stored) = futures_util::future::join(read, store).await;
                    report.add(stored);
                    judged
                }
                None => read.await,
            };
            let batch = match judged {
                Ok(batch) => batch,
                Err(e) => {
                    report.read_error = Some(e);
                    return report;
                }
            };
            report.batches += 1;
            let full = batch.round.candidates >= limit as usize;
            let in_time = self.clock.now() - started < budget;
            match batch.next {
                Some(cursor) if in_time => {
                    after = Some(cursor);
                    storing = Some(self.store_batch(batch));
                }
                _ => {
                    let stored = self.store_batch(batch).await;
                    let moved_on = stored.fired.len() + stored.lost_races > 0;
                    report.add(stored);
                    if !(full && moved_on && in_time) {
                        return report;
                    }
                }
            }
        }
    }

    /// Reads up to `limit` candidates (after `after`, when given) and judges them at `now`: the
    /// fires to store, and the triggers that failed or whose workflow is gone.
    async fn judge_due(
        &self,
        now: Timestamp,
        limit: u32,
        after: Option<DueCursor>,
    ) -> Result<JudgedBatch, ServiceError> {
        let candidates = match after {
            Some(after) => {
                self.triggers
                    .due_trigger_candidates_after(now, after, limit)
                    .await?
            }
            None => self.triggers.due_trigger_candidates(now, limit).await?,
        };
        // A full batch that ends in a trigger due by time is followed by more of those, read
        // from where it ended.
        let next = match candidates.last() {
            Some(last) if candidates.len() >= limit as usize => last
                .next_run
                .filter(|&at| at <= now)
                .map(|next_run| DueCursor {
                    next_run,
                    id: last.id,
                }),
            _ => None,
        };
        let mut batch = JudgedBatch {
            round: FireRound {
                candidates: candidates.len(),
                ..FireRound::default()
            },
            fires: Vec::new(),
            next,
        };
        let mut judge = Judge::default();
        for mut trigger in candidates {
            let id = trigger.id;
            let new_items = match self.new_items(&mut judge, &trigger).await {
                Ok(n) => n,
                Err(e) => {
                    batch.round.failed.push((id, e));
                    continue;
                }
            };
            if !trigger.is_due(now, new_items) {
                continue;
            }
            let workflow = match self.workflow(&mut judge, trigger.workflow_id).await {
                Ok(workflow) => workflow,
                Err(RepoError::NotFound(_)) => {
                    batch.round.orphaned.push(id);
                    continue;
                }
                Err(e) => {
                    batch.round.failed.push((id, e));
                    continue;
                }
            };
            let job = self.job_of(&trigger, workflow, now);
            trigger.fire(job.id(), now);
            batch.fires.push(self.fire_record(trigger, job, now));
        }
        Ok(batch)
    }

    /// Stores a judged batch's fires; the batch's round, with each fire's outcome.
    async fn store_batch(&self, batch: JudgedBatch) -> FireRound {
        let mut round = batch.round;
        self.store_fires(&batch.fires, &mut round).await;
        round
    }

    /// Stores a round's fires and reports each one's outcome in `round`.
    async fn store_fires(&self, fires: &[FireRecord], round: &mut FireRound) {
        // The batches hold different triggers, so the store may write them side by side (two
        // PostgreSQL backends at work instead of one); their outcomes are read in order.
        let batches: Vec<&[FireRecord]> = fires.chunks(FIRES_PER_WRITE).collect();
        let written = futures_util::future::join_all(
            batches
                .iter()
                .map(|batch| self.triggers.record_fires(batch)),
        )
        .await;
        for (batch, written) in batches.into_iter().zip(written) {
            match written {
                Ok(outcomes) => {
                    // A missing outcome would be the adapter's bug: the fire counts as failed,
                    // and the next round judges its trigger again.
                    let mut outcomes = outcomes.into_iter();
                    for fire in batch {
                        let id = fire.trigger.id;
                        match outcomes.next() {
                            Some(Ok(())) => round.fired.push((id, fire.job.id())),
                            Some(Err(RepoError::Conflict(_))) => round.lost_races += 1,
                            Some(Err(e)) => round.failed.push((id, e)),
                            None => round.failed.push((
                                id,
                                RepoError::Internal("the store gave no outcome for a fire".into()),
                            )),
                        }
                    }
                }
                Err(e) => {
                    for fire in batch {
                        round.failed.push((fire.trigger.id, same_error(&e)));
                    }
                }
            }
        }
    }

    /// The NEW items an idle, enabled QUEUE trigger's queue holds, counted once per queue and
    /// round; 0 for any other trigger, whose firing does not depend on it.
    async fn new_items(&self, judge: &mut Judge, trigger: &Trigger) -> RepoResult<u64> {
        let TriggerKind::Queue { queue_name, .. } = &trigger.kind else {
            return Ok(0);
        };
        if !trigger.enabled || trigger.process_status != ProcessStatus::Idle {
            return Ok(0);
        }
        if let Some(count) = judge.new_items.get(queue_name) {
            return Ok(*count);
        }
        let count = self
            .queues
            .count_items(queue_name, QueueItemStatus::New)
            .await?;
        judge.new_items.insert(queue_name.clone(), count);
        Ok(count)
    }

    /// A workflow of the round, read on first use; a failed read is remembered too, so one
    /// unreachable workflow costs one read per round, not one per trigger.
    async fn workflow<'a>(
        &self,
        judge: &'a mut Judge,
        id: WorkflowId,
    ) -> Result<&'a Workflow, RepoError> {
        let read = match judge.workflows.entry(id) {
            Entry::Occupied(found) => found.into_mut(),
            Entry::Vacant(slot) => slot.insert(self.workflows.get_workflow(id).await),
        };
        read.as_ref().map_err(same_error)
    }

    /// The job a trigger started ended: the trigger's status follows its job (SINGLE → DONE,
    /// SCHEDULED and QUEUE → IDLE, PAUSED if PAUSING, failure → FAILED, cancelled or KILLING →
    /// KILLED) and a failure is counted. A job that has not ended changes nothing. Returns the
    /// triggers changed.
    pub async fn job_finished(&self, job: &Job) -> Result<Vec<Trigger>, ServiceError> {
        let outcome = match job.status() {
            JobStatus::Completed => JobOutcome::Completed,
            JobStatus::Failed => JobOutcome::Failed,
            JobStatus::Cancelled => JobOutcome::Cancelled,
            JobStatus::Pending | JobStatus::Claimed | JobStatus::Running => return Ok(Vec::new()),
        };
        let mut changed = Vec::new();
        for trigger in self.triggers.triggers_for_job(job.id()).await? {
            if let Some(stored) = self.finish_job_of(trigger, job.id(), outcome).await? {
                changed.push(stored);
            }
        }
        Ok(changed)
    }

    /// Applies a job's end to one trigger, retrying on a lost version race from a fresh read.
    /// A trigger whose current job is no longer this one was settled by another server (or
    /// fired again): it is left alone, so a failure is never counted twice.
    async fn finish_job_of(
        &self,
        mut trigger: Trigger,
        job: JobId,
        outcome: JobOutcome,
    ) -> Result<Option<Trigger>, ServiceError> {
        let mut last = None;
        for attempt in 0..UPDATE_ATTEMPTS {
            if attempt > 0 {
                trigger = match self.triggers.get_trigger(trigger.id).await {
                    Ok(fresh) => fresh,
                    Err(RepoError::NotFound(_)) => return Ok(None),
                    Err(other) => return Err(other.into()),
                };
            }
            if trigger.current_job_id != Some(job) {
                return Ok(None);
            }
            trigger.job_finished(job, outcome, self.clock.now());
            match self.triggers.update_trigger(&trigger).await {
                Ok(stored) => return Ok(Some(stored)),
                Err(RepoError::NotFound(_)) => return Ok(None),
                Err(RepoError::Conflict(reason)) => last = Some(RepoError::Conflict(reason)),
                Err(other) => return Err(other.into()),
            }
        }
        Err(gave_up(last).into())
    }

    /// Starts one job of the trigger's workflow now, whatever its type, status, `enabled` flag or
    /// schedule (CasareRPA's "trigger schedule now"). The fire is recorded as the engine's are
    /// (status RUNNING, `current_job_id`, `last_run`, `run_count`, the same events), but a
    /// SCHEDULED trigger keeps its rhythm: `next_run` does not move. Stored in one
    /// version-checked transaction, retried from a fresh read when a concurrent fire or change
    /// came first, so a run-now never undoes another server's fire.
    /// Errors: `Repo(NotFound("trigger"))`; `Repo(NotFound("workflow"))` when the workflow has
    /// gone; `Repo(Conflict)` when every attempt lost a race.
    pub async fn run_now(&self, id: TriggerId) -> Result<(Trigger, Job), ServiceError> {
        let mut last = None;
        for _ in 0..UPDATE_ATTEMPTS {
            let mut trigger = self.triggers.get_trigger(id).await?;
            let workflow = self.workflows.get_workflow(trigger.workflow_id).await?;
            let now = self.clock.now();
            let job = self.job_of(&trigger, &workflow, now);
            trigger.fire_manually(job.id(), now);
            let events = self.fire_events(&trigger, &job, now);
            match self.triggers.record_fire(&trigger, &job, &events).await {
                Ok(()) => {
                    trigger.version += 1;
                    return Ok((trigger, job));
                }
                Err(RepoError::Conflict(reason)) => last = Some(RepoError::Conflict(reason)),
                Err(other) => return Err(other.into()),
            }
        }
        Err(gave_up(last).into())
    }

    /// The pending job a fire of `trigger` starts: its priority, execution mode and process
    /// arguments, and the trigger as its origin.
    fn job_of(&self, trigger: &Trigger, workflow: &Workflow, now: Timestamp) -> Job {
        NewJob {
            workflow_id: workflow.id,
            workflow_name: workflow.name.clone(),
            priority: trigger.priority,
            execution_mode: trigger.execution_mode,
            input: trigger.process_args.clone(),
            origin: JobOrigin::Trigger(trigger.id),
            max_retries: NewJob::DEFAULT_MAX_RETRIES,
        }
        .into_job(JobId::from_uuid(self.ids.new_uuid()), now)
    }

    /// A fire already applied to `trigger`, with its job and events, ready to store.
    fn fire_record(&self, trigger: Trigger, job: Job, now: Timestamp) -> FireRecord {
        let events = self.fire_events(&trigger, &job, now);
        FireRecord {
            trigger,
            job,
            events,
        }
    }

    /// The events of a fire: its job's creation, then the fire itself.
    fn fire_events(&self, trigger: &Trigger, job: &Job, now: Timestamp) -> Vec<Event> {
        vec![
            Event::job_changed(EventId::from_uuid(self.ids.new_uuid()), job, false, now),
            self.fired_event(trigger, job, now),
        ]
    }

    /// The activity record of a fire: `schedule_triggered` for a SCHEDULED trigger (the
    /// CasareRPA schedules are those), `trigger_fired` for the others.
    fn fired_event(&self, trigger: &Trigger, job: &Job, now: Timestamp) -> Event {
        let event_type = match trigger.kind {
            TriggerKind::Scheduled(_) => EventType::ScheduleTriggered,
            TriggerKind::Single | TriggerKind::Queue { .. } => EventType::TriggerFired,
        };
        let mut event = Event::new(
            EventId::from_uuid(self.ids.new_uuid()),
            event_type,
            format!("Trigger {} fired", trigger.name),
            now,
        );
        event.details = Some(job.workflow_name().to_string());
        event.job_id = Some(job.id());
        event.workflow_id = Some(job.workflow_id());
        event
            .data
            .insert("trigger_id".into(), Value::String(trigger.id.to_string()));
        event.data.insert(
            "trigger_name".into(),
            Value::String(trigger.name.to_string()),
        );
        event.data.insert(
            "trigger_type".into(),
            Value::String(trigger.kind.type_name().as_str().to_owned()),
        );
        event
    }

    /// Adds a broken rule when the workflow named does not exist: a trigger must start something.
    async fn check_workflow(
        &self,
        checked: &definition::Checked,
        v: &mut Validator,
    ) -> Result<(), ServiceError> {
        let Some(id) = checked.workflow_id else {
            return Ok(());
        };
        match self.workflows.get_workflow(id).await {
            Ok(_) => Ok(()),
            Err(RepoError::NotFound(_)) => {
                v.push("workflow_id", format!("no workflow has the id {id}"));
                Ok(())
            }
            Err(other) => Err(other.into()),
        }
    }

    /// A rename must not take another trigger's name. The storage's unique index has the last
    /// word; checking first gives the client a clear answer without a pointless retry.
    async fn ensure_name_free(
        &self,
        name: &TriggerName,
        id: TriggerId,
    ) -> Result<(), ServiceError> {
        match self.triggers.get_trigger_by_name(name).await {
            Ok(other) if other.id != id => {
                Err(RepoError::Conflict(format!("a trigger named '{name}' already exists")).into())
            }
            Ok(_) | Err(RepoError::NotFound(_)) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }
}

/// What the judging of a batch has read so far, so that it reads each
/// workflow and counts each queue once.
#[derive(Default)]
struct Judge {
    workflows: HashMap<WorkflowId, RepoResult<Workflow>>,
    new_items: HashMap<QueueName, u64>,
}

/// The same error again, for each fire of a batch or trigger of a workflow it concerns
/// (`RepoError` is not `Clone`: it may one day carry a source).
fn same_error(e: &RepoError) -> RepoError {
    match e {
        RepoError::NotFound(what) => RepoError::NotFound(what),
        RepoError::Conflict(why) => RepoError::Conflict(why.clone()),
        RepoError::Unavailable(why) => RepoError::Unavailable(why.clone()),
        RepoError::Internal(why) => RepoError::Internal(why.clone()),
    }
}

/// Applies a checked change to `trigger` at `now`.
fn apply(mut trigger: Trigger, checked: definition::Checked, now: Timestamp) -> Trigger {
    if let Some(name) = checked.name {
        trigger.name = name;
    }
    if let Some(kind) = checked.kind
        && kind != trigger.kind
    {
        // A new schedule starts from now; SINGLE and QUEUE triggers have no rhythm to keep.
        trigger.next_run = match &kind {
            TriggerKind::Scheduled(cron) => cron.next_after(now),
            TriggerKind::Single | TriggerKind::Queue { .. } => None,
        };
        trigger.kind = kind;
    }
    if checked.next_run.is_some() {
        trigger.next_run = checked.next_run;
    }
    if let Some(workflow_id) = checked.workflow_id {
        trigger.workflow_id = workflow_id;
    }
    if let Some(priority) = checked.priority {
        trigger.priority = priority;
    }
    if let Some(blocking) = checked.is_blocking {
        trigger.is_blocking = blocking;
    }
    if let Some(mode) = checked.execution_mode {
        trigger.execution_mode = mode;
    }
    if let Some(args) = checked.process_args {
        trigger.process_args = args;
    }
    if let Some(enabled) = checked.enabled {
        trigger.set_enabled(enabled, now);
    }
    // Last, so re-arming a SINGLE trigger judges the next_run this change set.
    if let Some(status) = checked.process_status {
        trigger.set_process_status(status, now);
    }
    trigger.updated_at = now;
    trigger
}

/// The error after every attempt lost a version race.
fn gave_up(last: Option<RepoError>) -> RepoError {
    last.unwrap_or_else(|| RepoError::Conflict("the trigger keeps changing; retry".to_owned()))
}
