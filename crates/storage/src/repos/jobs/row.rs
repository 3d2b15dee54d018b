//! The job as stored: its row, how a `Job` becomes one and back, and the INSERTs that store it.
//! Below the job repository and its batch UPDATE, which both write these rows, and below the
//! repositories that create jobs in their own transactions (trigger fires, flow starts).

use baton_domain::RepoError;
use baton_domain::flow::FlowId;
use baton_domain::ids::{JobId, TriggerId, WorkflowId};
use baton_domain::job::{
    CancelMode, Job, JobOrigin, JobRecord, JobStatus, NodeExecution, Priority,
};
use baton_domain::robot::RobotId;
use baton_domain::workflow::{ExecutionMode, WorkflowName};
use diesel::prelude::*;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::error::{DbError, DbResult, corrupt};
use crate::repos::rows::{object_to_text, text_to_object, text_to_value, to_i32, to_u32};
use crate::schema::jobs;
use crate::sql_types::{DbTime, DbUuid};

/// A job as stored. Shared with the repositories that create jobs in their own transactions
/// (trigger fires, flow starts): see `insert_job_row!`.
///
/// It is also what `update_job` writes: the changeset skips the primary key, and `None` clears a
/// column rather than leaving it as it was.
#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = jobs)]
#[diesel(treat_none_as_null = true)]
// No nullable column of `jobs` has a default, so `None` is written as NULL rather than DEFAULT: the
// INSERT's text is then the same for every job, and PostgreSQL prepares it once per connection
// instead of parsing and planning it for each job.
#[diesel(treat_none_as_default_value = false)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct JobRow {
    pub(super) id: DbUuid,
    pub(super) workflow_id: DbUuid,
    pub(super) workflow_name: String,
    pub(super) status: String,
    pub(super) priority: i32,
    pub(super) execution_mode: String,
    pub(super) input: String,
    pub(super) output: Option<String>,
    pub(super) origin_kind: String,
    pub(super) origin_ref: Option<String>,
    pub(super) robot_id: Option<String>,
    pub(super) created_at: DbTime,
    pub(super) claimed_at: Option<DbTime>,
    pub(super) started_at: Option<DbTime>,
    pub(super) completed_at: Option<DbTime>,
    pub(super) lease_expires_at: Option<DbTime>,
    pub(super) retry_count: i32,
    pub(super) max_retries: i32,
    pub(super) error_message: Option<String>,
    pub(super) error_type: Option<String>,
    pub(super) cancel_requested: Option<String>,
    pub(super) node_executions: String,
    pub(super) updated_at: DbTime,
    pub(super) version: i64,
    /// Derived from the times above ([`Job::duration_ms`]) on every write, so the metrics can
    /// aggregate durations in SQL; never read back into a `Job`.
    pub(super) duration_ms: Option<i64>,
    pub(super) attempt: i32,
}

impl JobRow {
    pub(crate) fn from_domain(job: &Job) -> DbResult<Self> {
        let (origin_kind, origin_ref) = origin_to_columns(job.origin());
        Ok(Self {
            id: DbUuid(*job.id().as_uuid()),
            workflow_id: DbUuid(*job.workflow_id().as_uuid()),
            workflow_name: job.workflow_name().as_str().to_owned(),
            status: job.status().as_str().to_owned(),
            priority: i32::from(job.priority().value()),
            execution_mode: job.execution_mode().as_str().to_owned(),
            input: object_to_text(job.input()),
            output: job.output().map(Value::to_string),
            origin_kind: origin_kind.to_owned(),
            origin_ref,
            robot_id: job.robot_id().map(|r| r.as_str().to_owned()),
            created_at: DbTime(job.created_at()),
            claimed_at: job.claimed_at().map(DbTime),
            started_at: job.started_at().map(DbTime),
            completed_at: job.completed_at().map(DbTime),
            lease_expires_at: job.lease_expires_at().map(DbTime),
            retry_count: to_i32(job.retry_count()),
            max_retries: to_i32(job.max_retries()),
            error_message: job.error_message().map(str::to_owned),
            error_type: job.error_type().map(str::to_owned),
            cancel_requested: job.cancel_requested().map(|c| c.as_str().to_owned()),
            node_executions: nodes_to_text(job.node_executions())?,
            updated_at: DbTime(job.updated_at()),
            version: job.version(),
            duration_ms: job.duration_ms(),
            attempt: to_i32(job.attempt()),
        })
    }

    pub(crate) fn into_domain(self) -> DbResult<Job> {
        Ok(Job::from_record(JobRecord {
            id: JobId::from_uuid(self.id.0),
            workflow_id: WorkflowId::from_uuid(self.workflow_id.0),
            workflow_name: WorkflowName::from_stored(self.workflow_name)
                .map_err(|e| corrupt("job workflow name", e))?,
            status: parse_status(&self.status)?,
            priority: Priority::new(i64::from(self.priority))
                .map_err(|e| corrupt("job priority", e))?,
            execution_mode: ExecutionMode::parse(&self.execution_mode)
                .map_err(|e| corrupt("job execution mode", e))?,
            input: text_to_object(&self.input, "job input")?,
            output: self
                .output
                .map(|text| text_to_value(&text, "job output"))
                .transpose()?,
            origin: origin_from_columns(&self.origin_kind, self.origin_ref)?,
            robot_id: self
                .robot_id
                .map(RobotId::parse)
                .transpose()
                .map_err(|e| corrupt("job robot id", e))?,
            created_at: self.created_at.0,
            claimed_at: self.claimed_at.map(|t| t.0),
            started_at: self.started_at.map(|t| t.0),
            completed_at: self.completed_at.map(|t| t.0),
            lease_expires_at: self.lease_expires_at.map(|t| t.0),
            retry_count: to_u32(self.retry_count, "job retry_count")?,
            max_retries: to_u32(self.max_retries, "job max_retries")?,
            attempt: to_u32(self.attempt, "job attempt")?,
            error_message: self.error_message,
            error_type: self.error_type,
            cancel_requested: self
                .cancel_requested
                .as_deref()
                .map(parse_cancel_mode)
                .transpose()?,
            node_executions: text_to_nodes(&self.node_executions)?,
            updated_at: self.updated_at.0,
            version: self.version,
        }))
    }
}

pub(super) fn parse_status(text: &str) -> DbResult<JobStatus> {
    text.parse().map_err(|e| corrupt("job status", e))
}

fn parse_cancel_mode(text: &str) -> DbResult<CancelMode> {
    match text {
        "soft" => Ok(CancelMode::Soft),
        "hard" => Ok(CancelMode::Hard),
        other => Err(corrupt(
            "job cancel mode",
            format!("'{other}' is neither soft nor hard"),
        )),
    }
}

/// The origin as two columns: its kind, and the trigger id or flow id it refers to.
fn origin_to_columns(origin: &JobOrigin) -> (&'static str, Option<String>) {
    match origin {
        JobOrigin::Manual => ("manual", None),
        JobOrigin::Trigger(id) => ("trigger", Some(id.to_string())),
        JobOrigin::Flow(id) => ("flow", Some(id.as_str().to_owned())),
        JobOrigin::Webhook => ("webhook", None),
    }
}

fn origin_from_columns(kind: &str, reference: Option<String>) -> DbResult<JobOrigin> {
    match (kind, reference) {
        ("manual", _) => Ok(JobOrigin::Manual),
        ("webhook", _) => Ok(JobOrigin::Webhook),
        ("trigger", Some(id)) => Ok(JobOrigin::Trigger(
            id.parse::<TriggerId>()
                .map_err(|e| corrupt("job origin trigger id", e))?,
        )),
        ("flow", Some(id)) => Ok(JobOrigin::Flow(
            FlowId::from_stored(id).map_err(|e| corrupt("job origin flow id", e))?,
        )),
        (kind, _) => Err(corrupt(
            "job origin",
            format!("kind '{kind}' is unknown or lacks its reference"),
        )),
    }
}

/// Node executions as a JSON array of objects, their finish times in RFC 3339 (UTC).
fn nodes_to_text(nodes: &[NodeExecution]) -> DbResult<String> {
    let values = nodes
        .iter()
        .map(|node| {
            let finished_at = node
                .finished_at
                .to_offset(UtcOffset::UTC)
                .format(&Rfc3339)
                .map_err(|e| {
                    DbError(RepoError::Internal(format!(
                        "cannot store the finish time of node '{}': {e}",
                        node.node_id
                    )))
                })?;
            Ok(json!({
                "node_id": node.node_id,
                "status": node.status,
                "duration_ms": node.duration_ms,
                "error_message": node.error_message,
                "finished_at": finished_at,
            }))
        })
        .collect::<DbResult<Vec<Value>>>()?;
    Ok(Value::Array(values).to_string())
}

fn text_to_nodes(text: &str) -> DbResult<Vec<NodeExecution>> {
    match text_to_value(text, "job node executions")? {
        Value::Array(values) => values.into_iter().map(node_from_value).collect(),
        _ => Err(corrupt("job node executions", "not a JSON array")),
    }
}

fn node_from_value(value: Value) -> DbResult<NodeExecution> {
    const WHAT: &str = "job node execution";
    let Value::Object(mut fields) = value else {
        return Err(corrupt(WHAT, "not a JSON object"));
    };
    let Some(Value::String(node_id)) = fields.remove("node_id") else {
        return Err(corrupt(WHAT, "node_id is not a string"));
    };
    let Some(Value::String(status)) = fields.remove("status") else {
        return Err(corrupt(WHAT, "status is not a string"));
    };
    let Some(duration_ms) = fields.get("duration_ms").and_then(Value::as_u64) else {
        return Err(corrupt(WHAT, "duration_ms is not a whole number"));
    };
    let error_message = match fields.remove("error_message") {
        None | Some(Value::Null) => None,
        Some(Value::String(message)) => Some(message),
        Some(_) => return Err(corrupt(WHAT, "error_message is not a string")),
    };
    let Some(Value::String(finished_at)) = fields.remove("finished_at") else {
        return Err(corrupt(WHAT, "finished_at is not a string"));
    };
    let finished_at = OffsetDateTime::parse(&finished_at, &Rfc3339)
        .map_err(|e| corrupt(WHAT, e))?
        .to_offset(UtcOffset::UTC);
    NodeExecution::new(node_id, &status, duration_ms, error_message, finished_at)
        .map_err(|e| corrupt(WHAT, e))
}

/// Inserts a job (`$job: &Job`) on `$conn` inside the caller's transaction; a taken id is
/// `RepoError::Conflict`. A macro rather than a function so it expands against each backend's
/// connection type; the caller needs `diesel_async::RunQueryDsl` in scope.
#[macro_export]
#[doc(hidden)]
macro_rules! insert_job_row {
    ($conn:expr, $job:expr) => {{
        let job: &baton_domain::job::Job = $job;
        let row = $crate::repos::jobs::row::JobRow::from_domain(job)?;
        diesel::insert_into($crate::schema::jobs::table)
            .values(&row)
            .execute($conn)
            .await
            .map_err(|e| match $crate::error::map_diesel(e) {
                baton_domain::RepoError::Conflict(_) => {
                    baton_domain::RepoError::Conflict(format!("job {} already exists", job.id()))
                }
                other => other,
            })?;
    }};
}

/// Inserts jobs (`$jobs`: an iterator of `&Job`) on `$conn` inside the caller's transaction with
/// multi-row INSERTs (`insert_rows_sized!`), through the same row mapping as `insert_job_row!`,
/// so a job is stored one way only; a taken id is `RepoError::Conflict`.
#[macro_export]
#[doc(hidden)]
macro_rules! insert_job_rows {
    ($conn:expr, $jobs:expr) => {{
        let rows = $jobs
            .map($crate::repos::jobs::row::JobRow::from_domain)
            .collect::<$crate::error::DbResult<Vec<_>>>()?;
        $crate::insert_rows_sized!($conn, $crate::schema::jobs::table, rows).map_err(|e| {
            match $crate::error::map_diesel(e) {
                baton_domain::RepoError::Conflict(_) => baton_domain::RepoError::Conflict(
                    "a job id of the batch is already taken".to_owned(),
                ),
                other => other,
            }
        })?;
    }};
}
