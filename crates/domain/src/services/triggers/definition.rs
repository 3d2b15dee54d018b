//! Checking a trigger's fields as a client sends them, for a new trigger or a change to one.
//!
//! The rules (docs/triggers.md): a name of 1–100 characters; a type of SINGLE,
//! SCHEDULED or QUEUE; a workflow id that is a UUID; a cron expression (and optionally a time
//! zone) for SCHEDULED triggers only and required there; a queue name and a batch size of at
//! least 1 for QUEUE triggers only, the queue name required there; one of the eight process
//! statuses; a priority of 0–20. Every broken rule is collected, so a client learns all of them
//! from one answer.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::error::{FieldError, Validator};
use crate::ids::WorkflowId;
use crate::job::Priority;
use crate::queue::QueueName;
use crate::schedule::CronSchedule;
use crate::trigger::{ProcessStatus, TriggerKind, TriggerName, TriggerType};
use crate::workflow::ExecutionMode;

/// The largest `min_batch_size`: far beyond any real queue's backlog, and within what every
/// storage backend keeps as an integer.
pub const MAX_BATCH_SIZE: i64 = 1_000_000;

/// An always-valid expression, used to judge a time zone on its own when the client's cron
/// expression is itself invalid, so both mistakes are reported at once.
const PROBE_EXPRESSION: &str = "0 * * * *";

/// A trigger's fields as a client sent them. `None` is a field left out: for a new trigger the
/// default applies (or the field is reported as required); for a change the trigger keeps its
/// value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriggerInput {
    pub trigger_name: Option<String>,
    /// `type` on the wire.
    pub trigger_type: Option<String>,
    pub workflow_id: Option<String>,
    pub cron_expression: Option<String>,
    pub timezone: Option<String>,
    pub queue_name: Option<String>,
    pub min_batch_size: Option<i64>,
    pub process_status: Option<String>,
    pub enabled: Option<bool>,
    pub priority: Option<i64>,
    pub is_blocking: Option<bool>,
    pub execution_mode: Option<String>,
    /// Handed to each job the trigger starts as its input.
    pub process_args: Option<Map<String, Value>>,
    /// When a SINGLE trigger becomes due (at once when never given).
    pub next_run: Option<Timestamp>,
    /// Fields the adapter could not read (e.g. a number where a string belongs). They are
    /// reported together with the broken rules of the other fields, and not judged again.
    pub unreadable: Vec<FieldError>,
}

/// The checked values of a [`TriggerInput`]; `None` where the client left a field out.
#[derive(Debug, Default)]
pub(super) struct Checked {
    pub name: Option<TriggerName>,
    /// The kind the trigger has once the input applies (for a change: merged with the current
    /// kind, e.g. a new time zone keeps the current cron expression).
    pub kind: Option<TriggerKind>,
    pub workflow_id: Option<WorkflowId>,
    pub process_status: Option<ProcessStatus>,
    pub enabled: Option<bool>,
    pub priority: Option<Priority>,
    pub is_blocking: Option<bool>,
    pub execution_mode: Option<ExecutionMode>,
    pub process_args: Option<Map<String, Value>>,
    pub next_run: Option<Timestamp>,
}

/// Checks `input` as a new trigger (`current` is `None`) or as a change to a trigger of kind
/// `current`. Returns the checked values and the validator holding every broken rule, so the
/// caller can add the rules that need storage (the workflow exists) before answering.
pub(super) fn check(input: TriggerInput, current: Option<&TriggerKind>) -> (Checked, Validator) {
    let creating = current.is_none();
    let mut v = Validator::new();
    let unreadable: HashSet<String> = input.unreadable.iter().map(|e| e.field.clone()).collect();
    for e in input.unreadable {
        v.push(e.field, e.message);
    }
    // A field counts as given when it was sent, readable or not: no "is required" on top of a
    // wrong type.
    let given = |field: &str, value_given: bool| value_given || unreadable.contains(field);

    let name = match input.trigger_name {
        Some(name) => v.check(TriggerName::parse_trigger(name)),
        None => {
            if creating && !given("trigger_name", false) {
                v.push("trigger_name", "is required");
            }
            None
        }
    };
    let type_sent = given("type", input.trigger_type.is_some());
    if creating && !type_sent {
        v.push("type", "is required: one of SINGLE, SCHEDULED, QUEUE");
    }
    // The type the rules of the type-specific fields follow: the one sent (when valid), else
    // the trigger's current one; unknown when the type sent is invalid.
    let trigger_type = match input.trigger_type {
        Some(text) => v.check(text.parse::<TriggerType>()),
        None if type_sent => None,
        None => current.map(TriggerKind::type_name),
    };
    let workflow_id = match input.workflow_id {
        Some(text) => v.check(parse_workflow_id(&text)),
        None => {
            if creating && !given("workflow_id", false) {
                v.push(
                    "workflow_id",
                    "is required: the id of the workflow the trigger runs",
                );
            }
            None
        }
    };
    let fields = KindFields {
        cron_expression: input.cron_expression,
        timezone: input.timezone,
        queue_name: input.queue_name,
        min_batch_size: input.min_batch_size,
        next_run_given: input.next_run.is_some(),
        unreadable: &unreadable,
    };
    let kind = fields.resolve(&mut v, trigger_type, current);
    let process_status = input
        .process_status
        .and_then(|s| v.check(s.parse::<ProcessStatus>()));
    let priority = input.priority.and_then(|p| v.check(Priority::new(p)));
    let execution_mode = input
        .execution_mode
        .and_then(|m| v.check(ExecutionMode::parse(&m)));
    let checked = Checked {
        name,
        kind,
        workflow_id,
        process_status,
        enabled: input.enabled,
        priority,
        is_blocking: input.is_blocking,
        execution_mode,
        process_args: input.process_args,
        next_run: input.next_run,
    };
    (checked, v)
}

fn parse_workflow_id(text: &str) -> Result<WorkflowId, crate::ValidationError> {
    text.parse::<WorkflowId>().map_err(|_| {
        crate::ValidationError::field(
            "workflow_id",
            "must be a workflow id, a UUID such as 0190f2a4-9c1e-7d3a-8b5e-2f4c6a8d0e1b",
        )
    })
}

/// The fields whose meaning depends on the trigger's type.
struct KindFields<'a> {
    cron_expression: Option<String>,
    timezone: Option<String>,
    queue_name: Option<String>,
    min_batch_size: Option<i64>,
    next_run_given: bool,
    unreadable: &'a HashSet<String>,
}

impl KindFields<'_> {
    /// The kind the trigger gets, or `None` when a rule is broken or the type is unknown. Every
    /// given value is judged even then, so all mistakes come back in one answer.
    fn resolve(
        self,
        v: &mut Validator,
        trigger_type: Option<TriggerType>,
        current: Option<&TriggerKind>,
    ) -> Option<TriggerKind> {
        let queue_name = self
            .queue_name
            .clone()
            .and_then(|q| v.check(QueueName::parse(q)));
        let min_batch_size = self
            .min_batch_size
            .and_then(|n| v.check(check_batch_size(n)));
        match trigger_type {
            Some(TriggerType::Single) => {
                self.refuse_scheduled_fields(v, "SINGLE");
                self.refuse_queue_fields(v, "SINGLE");
                Some(TriggerKind::Single)
            }
            Some(TriggerType::Scheduled) => {
                self.refuse_queue_fields(v, "SCHEDULED");
                self.refuse_next_run(
                    v,
                    "a SCHEDULED trigger's next run comes from its cron_expression",
                );
                self.scheduled(v, current)
            }
            Some(TriggerType::Queue) => {
                self.refuse_scheduled_fields(v, "QUEUE");
                self.refuse_next_run(v, "a QUEUE trigger fires when its queue fills");
                let (current_queue, current_min) = match current {
                    Some(TriggerKind::Queue {
                        queue_name,
                        min_batch_size,
                    }) => (Some(queue_name.clone()), Some(*min_batch_size)),
                    _ => (None, None),
                };
                if self.queue_name.is_none()
                    && !self.unreadable.contains("queue_name")
                    && current_queue.is_none()
                {
                    v.push(
                        "queue_name",
                        "is required for QUEUE triggers: the queue it watches",
                    );
                }
                let min_failed = self.min_batch_size.is_some() && min_batch_size.is_none();
                match (queue_name.or(current_queue), min_failed) {
                    (Some(queue_name), false) => Some(TriggerKind::Queue {
                        queue_name,
                        min_batch_size: min_batch_size.or(current_min).unwrap_or(1),
                    }),
                    _ => None,
                }
            }
            None => {
                // The type is unknown: judge the schedule on its own so its mistakes show too.
                if let Some(expression) = &self.cron_expression {
                    parse_cron(v, expression, self.timezone.as_deref());
                } else if let Some(timezone) = &self.timezone {
                    parse_cron(v, PROBE_EXPRESSION, Some(timezone));
                }
                None
            }
        }
    }

    /// The schedule of a SCHEDULED trigger: the expression and zone sent, each falling back to
    /// the trigger's current one.
    fn scheduled(&self, v: &mut Validator, current: Option<&TriggerKind>) -> Option<TriggerKind> {
        let current = match current {
            Some(TriggerKind::Scheduled(cron)) => Some(cron),
            _ => None,
        };
        let expression = self
            .cron_expression
            .as_deref()
            .or(current.map(|c| c.expression()));
        let timezone = self.timezone.as_deref().or(current.map(|c| c.timezone()));
        match expression {
            Some(expression) => {
                parse_cron(v, expression, timezone).map(|c| TriggerKind::Scheduled(Box::new(c)))
            }
            None => {
                if !self.unreadable.contains("cron_expression") {
                    v.push(
                        "cron_expression",
                        "is required for SCHEDULED triggers, e.g. \"0 9 * * 1-5\"",
                    );
                }
                if let Some(timezone) = timezone {
                    parse_cron(v, PROBE_EXPRESSION, Some(timezone));
                }
                None
            }
        }
    }

    fn refuse_scheduled_fields(&self, v: &mut Validator, kind: &str) {
        let message = format!("is only for SCHEDULED triggers, not {kind} ones: leave it out");
        if self.cron_expression.is_some() {
            v.push("cron_expression", message.clone());
        }
        if self.timezone.is_some() {
            v.push("timezone", message);
        }
    }

    fn refuse_queue_fields(&self, v: &mut Validator, kind: &str) {
        let message = format!("is only for QUEUE triggers, not {kind} ones: leave it out");
        if self.queue_name.is_some() {
            v.push("queue_name", message.clone());
        }
        if self.min_batch_size.is_some() {
            v.push("min_batch_size", message);
        }
    }

    fn refuse_next_run(&self, v: &mut Validator, why: &str) {
        if self.next_run_given {
            v.push(
                "next_run",
                format!("can be set on SINGLE triggers only: {why}"),
            );
        }
    }
}

/// Parses a schedule, recording its mistakes. When the expression is invalid the zone is judged
/// on its own too, since the schedule's parser stops at the first mistake.
fn parse_cron(v: &mut Validator, expression: &str, timezone: Option<&str>) -> Option<CronSchedule> {
    match CronSchedule::parse(expression, timezone) {
        Ok(cron) => Some(cron),
        Err(err) => {
            let expression_failed = err.errors.iter().any(|e| e.field == "cron_expression");
            v.check::<()>(Err(err));
            if expression_failed && timezone.is_some() {
                v.check(CronSchedule::parse(PROBE_EXPRESSION, timezone));
            }
            None
        }
    }
}

fn check_batch_size(n: i64) -> Result<u32, crate::ValidationError> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_BATCH_SIZE).contains(&i64::from(*n)))
        .ok_or_else(|| {
            crate::ValidationError::field(
                "min_batch_size",
                format!("must be a whole number from 1 to {MAX_BATCH_SIZE}"),
            )
        })
}
