//! A trigger as stored: its row, how a `Trigger` becomes one and back (its schedule parsed once
//! per process), and the row of its next version. Below the trigger repository and its fires,
//! which both write these rows.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use baton_domain::ids::{JobId, TriggerId, WorkflowId};
use baton_domain::job::Priority;
use baton_domain::queue::QueueName;
use baton_domain::schedule::CronSchedule;
use baton_domain::trigger::{
    ProcessStatus, ScheduleName, Trigger, TriggerKind, TriggerName, TriggerRecord, TriggerType,
};
use baton_domain::workflow::ExecutionMode;
use diesel::prelude::*;

use crate::error::{DbResult, corrupt};
use crate::repos::rows::{object_to_text, text_to_object, to_i32, to_i64, to_u32, to_u64};
use crate::schema::triggers;
use crate::sql_types::{DbTime, DbUuid};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = triggers)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
// On update a `None` must clear the stored value (e.g. the finished current job).
#[diesel(treat_none_as_null = true)]
pub(super) struct TriggerRow {
    pub(super) id: DbUuid,
    pub(super) name: String,
    pub(super) trigger_type: String,
    pub(super) workflow_id: DbUuid,
    pub(super) process_status: String,
    pub(super) enabled: bool,
    pub(super) is_blocking: bool,
    pub(super) priority: i32,
    pub(super) execution_mode: String,
    pub(super) cron_expression: Option<String>,
    pub(super) timezone: Option<String>,
    pub(super) queue_name: Option<String>,
    pub(super) min_batch_size: Option<i32>,
    pub(super) process_args: String,
    pub(super) metadata: String,
    pub(super) schedule_name: Option<String>,
    pub(super) next_run: Option<DbTime>,
    pub(super) last_run: Option<DbTime>,
    pub(super) run_count: i64,
    pub(super) failure_count: i64,
    pub(super) current_job_id: Option<DbUuid>,
    /// A trigger's creation does not move when it is updated.
    #[diesel(skip_update)]
    pub(super) created_at: DbTime,
    pub(super) updated_at: DbTime,
    pub(super) version: i64,
}

impl TriggerRow {
    pub(super) fn from_domain(trigger: &Trigger) -> Self {
        let (cron_expression, timezone, queue_name, min_batch_size) = match trigger.kind() {
            TriggerKind::Single => (None, None, None, None),
            TriggerKind::Scheduled(cron) => (
                Some(cron.expression().to_owned()),
                Some(cron.timezone().to_owned()),
                None,
                None,
            ),
            TriggerKind::Queue {
                queue_name,
                min_batch_size,
            } => (
                None,
                None,
                Some(queue_name.as_str().to_owned()),
                Some(to_i32(*min_batch_size)),
            ),
        };
        Self {
            id: DbUuid(*trigger.id().as_uuid()),
            name: trigger.name().as_str().to_owned(),
            trigger_type: trigger.kind().type_name().as_str().to_owned(),
            workflow_id: DbUuid(*trigger.workflow_id().as_uuid()),
            process_status: trigger.process_status().as_str().to_owned(),
            enabled: trigger.enabled(),
            is_blocking: trigger.is_blocking(),
            priority: i32::from(trigger.priority().value()),
            execution_mode: trigger.execution_mode().as_str().to_owned(),
            cron_expression,
            timezone,
            queue_name,
            min_batch_size,
            process_args: object_to_text(trigger.process_args()),
            metadata: object_to_text(trigger.metadata()),
            schedule_name: trigger.own_schedule_name().map(|n| n.as_str().to_owned()),
            next_run: trigger.next_run().map(DbTime),
            last_run: trigger.last_run().map(DbTime),
            run_count: to_i64(trigger.run_count()),
            failure_count: to_i64(trigger.failure_count()),
            current_job_id: trigger.current_job_id().map(|j| DbUuid(*j.as_uuid())),
            created_at: DbTime(trigger.created_at()),
            updated_at: DbTime(trigger.updated_at()),
            version: trigger.version(),
        }
    }

    pub(super) fn into_domain(self) -> DbResult<Trigger> {
        let kind = match self
            .trigger_type
            .parse::<TriggerType>()
            .map_err(|e| corrupt("trigger type", e))?
        {
            TriggerType::Single => TriggerKind::Single,
            TriggerType::Scheduled => {
                let expression = self
                    .cron_expression
                    .ok_or_else(|| corrupt("trigger cron expression", "missing"))?;
                TriggerKind::Scheduled(Box::new(parse_schedule(expression, self.timezone)?))
            }
            TriggerType::Queue => TriggerKind::Queue {
                queue_name: QueueName::from_stored(
                    self.queue_name
                        .ok_or_else(|| corrupt("trigger queue name", "missing"))?,
                )
                .map_err(|e| corrupt("trigger queue name", e))?,
                min_batch_size: to_u32(
                    self.min_batch_size
                        .ok_or_else(|| corrupt("trigger batch size", "missing"))?,
                    "trigger batch size",
                )?,
            },
        };
        Ok(Trigger::from_record(TriggerRecord {
            id: TriggerId::from_uuid(self.id.0),
            name: TriggerName::from_stored(self.name).map_err(|e| corrupt("trigger name", e))?,
            kind,
            workflow_id: WorkflowId::from_uuid(self.workflow_id.0),
            process_status: self
                .process_status
                .parse::<ProcessStatus>()
                .map_err(|e| corrupt("trigger process status", e))?,
            enabled: self.enabled,
            is_blocking: self.is_blocking,
            priority: Priority::new(i64::from(self.priority))
                .map_err(|e| corrupt("trigger priority", e))?,
            execution_mode: ExecutionMode::parse(&self.execution_mode)
                .map_err(|e| corrupt("trigger execution mode", e))?,
            process_args: text_to_object(&self.process_args, "trigger process args")?,
            metadata: text_to_object(&self.metadata, "trigger metadata")?,
            schedule_name: self
                .schedule_name
                .map(ScheduleName::from_stored)
                .transpose()
                .map_err(|e| corrupt("schedule name", e))?,
            next_run: self.next_run.map(|t| t.0),
            last_run: self.last_run.map(|t| t.0),
            run_count: to_u64(self.run_count, "trigger run count")?,
            failure_count: to_u64(self.failure_count, "trigger failure count")?,
            current_job_id: self.current_job_id.map(|j| JobId::from_uuid(j.0)),
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
            version: self.version,
        }))
    }
}

/// Schedules parsed so far, by time zone and expression: see [`parse_schedule`].
type ParsedSchedules = HashMap<(Option<String>, String), CronSchedule>;
static PARSED_SCHEDULES: LazyLock<Mutex<ParsedSchedules>> = LazyLock::new(Mutex::default);
/// How many parsed schedules are kept before the memo starts afresh.
const PARSED_SCHEDULES_KEPT: usize = 1_024;

/// A stored schedule, parsed once per process. Every candidate the engine reads carries its cron
/// expression, and parsing one cost more than reading the rest of the row (a tenth of the
/// server's CPU per fire with 10,000 per-second schedules); schedules mostly share a handful of
/// expressions. The memo is emptied when full, so odd expressions cannot make it grow for ever.
fn parse_schedule(expression: String, timezone: Option<String>) -> DbResult<CronSchedule> {
    let key = (timezone, expression);
    // A poisoned memo (a panic while it was held) is skipped, not trusted or fatal.
    if let Ok(parsed) = PARSED_SCHEDULES.lock()
        && let Some(schedule) = parsed.get(&key)
    {
        return Ok(schedule.clone());
    }
    let schedule = CronSchedule::parse(&key.1, key.0.as_deref())
        .map_err(|e| corrupt("trigger cron expression", e))?;
    if let Ok(mut parsed) = PARSED_SCHEDULES.lock() {
        if parsed.len() >= PARSED_SCHEDULES_KEPT {
            parsed.clear();
        }
        parsed.insert(key, schedule.clone());
    }
    Ok(schedule)
}

/// A row of `trigger` carrying the version it will have once stored.
pub(super) fn bumped_row(trigger: &Trigger) -> TriggerRow {
    let mut row = TriggerRow::from_domain(trigger);
    row.version = trigger.version() + 1;
    row
}
