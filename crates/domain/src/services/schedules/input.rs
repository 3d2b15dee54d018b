//! Checking a schedule as a client sends it (`POST /schedules`) and the filters of a list.
//!
//! The rules are the CasareRPA document's: a workflow id; a name of 1–255 characters; a cron
//! expression of 5 fields, or 6 with seconds first, that fires again after now; a priority of
//! 0–20; an execution mode of `lan` or `internet`; metadata as a JSON object. Baton adds an IANA
//! `timezone` (UTC by default) and `is_blocking`. Every broken rule is collected, so a client
//! learns all of them from one answer.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::error::{FieldError, ValidationError, Validator};
use crate::ids::WorkflowId;
use crate::job::Priority;
use crate::ports::TriggerCursor;
use crate::schedule::CronSchedule;
use crate::trigger::ScheduleName;
use crate::workflow::ExecutionMode;

/// Schedules a list shows when the client does not say (the CasareRPA document's default).
pub const DEFAULT_LIST_LIMIT: u32 = 100;
/// The longest list a client may ask for (the CasareRPA document's bound).
pub const MAX_LIST_LIMIT: u32 = 1000;

/// A new schedule's fields as the client sent them; `None` is a field left out (or `null`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleInput {
    pub workflow_id: Option<String>,
    pub schedule_name: Option<String>,
    pub cron_expression: Option<String>,
    /// Baton's extension: the IANA zone the expression is read in; UTC when left out.
    pub timezone: Option<String>,
    pub enabled: Option<bool>,
    pub priority: Option<i64>,
    pub execution_mode: Option<String>,
    /// Baton's extension: a blocking schedule does not fire while its last job still runs.
    pub is_blocking: Option<bool>,
    pub metadata: Option<Map<String, Value>>,
    /// Fields the adapter could not read (e.g. a number where a string belongs). They are
    /// reported together with the broken rules of the other fields, and not judged again.
    pub unreadable: Vec<FieldError>,
}

/// A new schedule's checked fields, defaults applied.
#[derive(Debug, Clone)]
pub(super) struct Checked {
    pub workflow_id: WorkflowId,
    pub name: ScheduleName,
    pub cron: CronSchedule,
    pub enabled: bool,
    pub priority: Priority,
    pub execution_mode: ExecutionMode,
    pub is_blocking: bool,
    pub metadata: Map<String, Value>,
}

/// Checks `input` at `now`, reporting every broken rule at once.
pub(super) fn check(input: ScheduleInput, now: Timestamp) -> Result<Checked, ValidationError> {
    let mut v = Validator::new();
    let unreadable: HashSet<String> = input.unreadable.iter().map(|e| e.field.clone()).collect();
    for e in input.unreadable {
        v.push(e.field, e.message);
    }
    // A field sent with the wrong type was given: no "is required" on top of its type error.
    let required = |v: &mut Validator, field: &str, what: &str| {
        if !unreadable.contains(field) {
            v.push(field, format!("is required: {what}"));
        }
    };

    let workflow_id = match input.workflow_id {
        Some(text) => v.check(parse_workflow_id(&text)),
        None => {
            required(&mut v, "workflow_id", "the id of the workflow to run");
            None
        }
    };
    let name = match input.schedule_name {
        Some(text) => v.check(ScheduleName::parse(text)),
        None => {
            required(&mut v, "schedule_name", "1 to 255 characters");
            None
        }
    };
    let zone_ok = input
        .timezone
        .as_deref()
        .is_none_or(|tz| v.check(CronSchedule::check_timezone(tz)).is_some());
    let cron = match input.cron_expression {
        Some(expression) => {
            // With a bad zone the expression is still judged (in UTC), so both mistakes show.
            let zone = if zone_ok {
                input.timezone.as_deref()
            } else {
                None
            };
            let cron = v.check(CronSchedule::parse(&expression, zone));
            match cron {
                Some(c) if c.next_after(now).is_none() => {
                    v.push(
                        "cron_expression",
                        "never fires after now: choose an expression with a future date",
                    );
                    None
                }
                other => other.filter(|_| zone_ok),
            }
        }
        None => {
            required(
                &mut v,
                "cron_expression",
                "5 fields (minute hour day month weekday), or 6 with seconds first, e.g. \
                 \"0 9 * * 1-5\"",
            );
            None
        }
    };
    let priority = match input.priority {
        Some(p) => v.check(Priority::new(p)),
        None => Some(Priority::default()),
    };
    let execution_mode = match input.execution_mode {
        Some(mode) => v.check(ExecutionMode::parse(&mode)),
        None => Some(ExecutionMode::Lan),
    };
    v.finish()?;
    match (workflow_id, name, cron, priority, execution_mode) {
        (Some(workflow_id), Some(name), Some(cron), Some(priority), Some(execution_mode)) => {
            Ok(Checked {
                workflow_id,
                name,
                cron,
                enabled: input.enabled.unwrap_or(true),
                priority,
                execution_mode,
                is_blocking: input.is_blocking.unwrap_or(false),
                metadata: input.metadata.unwrap_or_default(),
            })
        }
        // Every `None` above recorded an error, so `finish` returned already; this arm only
        // keeps the match total.
        _ => Err(ValidationError::field(
            "body",
            "the schedule could not be read",
        )),
    }
}

/// The filters of a schedule list as the client sent them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleQuery {
    pub workflow_id: Option<String>,
    pub enabled: Option<bool>,
    pub limit: Option<i64>,
    /// Only schedules after this position: where the previous page ended.
    pub after: Option<TriggerCursor>,
    /// Parameters the adapter could not read (e.g. `limit=ten`).
    pub unreadable: Vec<FieldError>,
}

/// The checked filters of a schedule list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleFilter {
    pub workflow_id: Option<WorkflowId>,
    pub enabled: Option<bool>,
    /// 1–1000.
    pub limit: u32,
    pub after: Option<TriggerCursor>,
}

impl ScheduleQuery {
    /// Checks every parameter at once: `workflow_id` a UUID, `limit` 1–1000 (100 when left out).
    pub fn check(self) -> Result<ScheduleFilter, ValidationError> {
        let mut v = Validator::new();
        for e in self.unreadable {
            v.push(e.field, e.message);
        }
        let workflow_id = self
            .workflow_id
            .and_then(|text| v.check(parse_workflow_id(&text)));
        let limit = match self.limit {
            None => Some(DEFAULT_LIST_LIMIT),
            Some(n) => v.check(
                u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ValidationError::field(
                            "limit",
                            format!("must be a whole number from 1 to {MAX_LIST_LIMIT}"),
                        )
                    }),
            ),
        };
        v.finish()?;
        Ok(ScheduleFilter {
            workflow_id,
            enabled: self.enabled,
            limit: limit.unwrap_or(DEFAULT_LIST_LIMIT),
            after: self.after,
        })
    }
}

fn parse_workflow_id(text: &str) -> Result<WorkflowId, ValidationError> {
    text.parse::<WorkflowId>().map_err(|_| {
        ValidationError::field(
            "workflow_id",
            "must be a workflow id, a UUID such as 0190f2a4-9c1e-7d3a-8b5e-2f4c6a8d0e1b",
        )
    })
}
