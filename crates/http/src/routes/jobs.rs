//! Jobs as users see them: run a workflow now (`POST /jobs`), cancel a job softly or hard
//! (`POST /jobs/{id}/cancel`), read one or list them. The robots' side of a job is
//! [`super::robot_protocol`]; both go through the domain's [`JobService`].
//!
//! Write bodies are read by [`crate::body`].

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use baton_domain::Timestamp;
use baton_domain::error::Validator;
use baton_domain::ids::{JobId, WorkflowId};
use baton_domain::instant::{self, parse_query_instant};
use baton_domain::job::{CancelMode, Job, JobStatus, NodeExecution, Priority};
use baton_domain::ports::{JobCursor, JobFilter};
use baton_domain::robot::RobotId;
use baton_domain::services::ServiceError;
use baton_domain::services::jobs::{FollowUpLog, JobPorts, JobService, RunRequest};
use baton_domain::workflow::ExecutionMode;
use baton_domain::{RepoError, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::{Authorized, Operate, Read};
use crate::body::{Fields, json_object, optional_json_object};
use crate::errors::{ApiError, ApiResult};
use crate::extract::{BodyLimit, limit_body};
use crate::state::AppState;
use crate::time_format::rfc3339;

/// Jobs per list when the client does not say (as `/metrics/jobs`).
const DEFAULT_LIMIT: u32 = 50;
/// The longest list a client may ask for (as `/metrics/jobs`).
const MAX_LIMIT: u32 = 500;

/// The routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(limit_body(
        web::resource("/jobs")
            .route(web::get().to(list))
            .route(web::post().to(run)),
        BodyLimit::DOCUMENT,
    ))
    .service(web::resource("/jobs/{id}").route(web::get().to(get)))
    .service(web::resource("/jobs/{id}/cancel").route(web::post().to(cancel)));
}

// ---- the service ----

/// The job service over the server's state, with the protocol's 60-second lease.
pub fn job_service(state: &AppState) -> JobService {
    JobService::new(
        JobPorts::from_store(&state.store),
        state.clock.clone(),
        state.ids.clone(),
        std::sync::Arc::new(LoggedFollowUps),
        Job::DEFAULT_LEASE_SECONDS,
    )
}

/// Logs the follow-ups of stored job changes that failed (the trigger hook, a robot's record):
/// the caller's change stands, so an operator reads about them rather than a robot.
pub struct LoggedFollowUps;

impl FollowUpLog for LoggedFollowUps {
    fn follow_up_failed(&self, job: JobId, step: &'static str, error: &ServiceError) {
        tracing::warn!(job = %job, step, error = %error, "a follow-up of a stored job change failed; the change stands");
    }
}

// ---- responses ----

/// One node's outcome within a job.
#[derive(Serialize)]
struct NodeView {
    node_id: String,
    status: String,
    duration_ms: u64,
    error_message: Option<String>,
    finished_at: String,
}

impl From<&NodeExecution> for NodeView {
    fn from(node: &NodeExecution) -> Self {
        Self {
            node_id: node.node_id.clone(),
            status: node.status.clone(),
            duration_ms: node.duration_ms,
            error_message: node.error_message.clone(),
            finished_at: rfc3339(node.finished_at),
        }
    }
}

/// A job as the API shows it: every field of CasareRPA's `/metrics/jobs/{job_id}` and more,
/// instants in RFC 3339 UTC, the version counter left out.
#[derive(Serialize)]
pub(crate) struct JobView {
    job_id: String,
    workflow_id: String,
    workflow_name: String,
    status: &'static str,
    priority: u8,
    execution_mode: &'static str,
    input: Map<String, Value>,
    output: Option<Value>,
    robot_id: Option<String>,
    created_at: String,
    claimed_at: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    lease_expires_at: Option<String>,
    retry_count: u32,
    max_retries: u32,
    /// How many times the job was claimed; above 1, its nodes ran again from the start.
    attempt: u32,
    error_type: Option<String>,
    error_message: Option<String>,
    /// `soft` or `hard` once a client asked for a cancel.
    cancel_requested: Option<&'static str>,
    node_executions: Vec<NodeView>,
    duration_ms: Option<i64>,
}

impl From<&Job> for JobView {
    fn from(job: &Job) -> Self {
        Self {
            job_id: job.id().to_string(),
            workflow_id: job.workflow_id().to_string(),
            workflow_name: job.workflow_name().to_string(),
            status: job.status().as_str(),
            priority: job.priority().value(),
            execution_mode: job.execution_mode().as_str(),
            input: job.input().clone(),
            output: job.output().cloned(),
            robot_id: job.robot_id().map(|r| r.as_str().to_owned()),
            created_at: rfc3339(job.created_at()),
            claimed_at: job.claimed_at().map(rfc3339),
            started_at: job.started_at().map(rfc3339),
            completed_at: job.completed_at().map(rfc3339),
            lease_expires_at: job.lease_expires_at().map(rfc3339),
            retry_count: job.retry_count(),
            max_retries: job.max_retries(),
            attempt: job.attempt(),
            error_type: job.error_type().map(str::to_owned),
            error_message: job.error_message().map(str::to_owned),
            cancel_requested: job.cancel_requested().map(CancelMode::as_str),
            node_executions: job.node_executions().iter().map(NodeView::from).collect(),
            duration_ms: job.duration_ms(),
        }
    }
}

// ---- handlers ----

/// `POST /jobs` `{workflow_id, priority?, execution_mode?, input?}`: queues a pending job of
/// the workflow; 404 when the workflow does not exist.
async fn run(
    state: web::Data<AppState>,
    caller: Authorized<Operate>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let body = json_object(&body)?;
    let request = read_run_request(&body)?;
    let workflow_id = request.workflow_id;
    let job = job_service(&state)
        .run_now(request)
        .await
        .map_err(|e| match e {
            ServiceError::Repo(RepoError::NotFound(_)) => ApiError::not_found(format!(
                "workflow not found: no workflow has the id {workflow_id}"
            )),
            other => other.into(),
        })?;
    tracing::info!(by = %caller.principal.display_id(), job = %job.id(), workflow = %job.workflow_id(), "job queued");
    Ok(HttpResponse::Created().json(JobView::from(&job)))
}

/// `POST /jobs/{id}/cancel` `{"hard": bool}` (body optional, soft by default): 409 when the
/// job already ended.
async fn cancel(
    state: web::Data<AppState>,
    caller: Authorized<Operate>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let id = job_id(&path)?;
    let body = optional_json_object(&body)?;
    let mut fields = Fields::new(&body);
    let hard = fields.flag("hard").unwrap_or(false);
    fields.finish()?;
    let mode = if hard {
        CancelMode::Hard
    } else {
        CancelMode::Soft
    };
    let job = job_service(&state).cancel(id, mode).await?;
    tracing::info!(by = %caller.principal.display_id(), job = %job.id(), mode = mode.as_str(), status = %job.status(), "job cancel requested");
    Ok(HttpResponse::Ok().json(JobView::from(&job)))
}

/// `GET /jobs/{id}`: every field of one job, its node executions included.
async fn get(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let job = state.store.get_job(job_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(JobView::from(&job)))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    workflow_id: Option<String>,
    robot_id: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    cursor: Option<String>,
}

/// `GET /jobs?status=&limit=&workflow_id=&robot_id=&created_after=&created_before=&cursor=`:
/// jobs newest first, as a JSON array. The body stays an array (as it always was), so the next
/// page's position travels in headers: `X-Next-Cursor` and a `Link` with `rel="next"`.
async fn list(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    request: HttpRequest,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let mut filter = read_filter(query.into_inner())?;
    let limit = filter.limit;
    // One more than asked tells whether another page follows without a second query.
    filter.limit = limit + 1;
    let mut jobs = state.store.list_jobs(&filter).await?;
    let next = if jobs.len() > limit as usize {
        jobs.truncate(limit as usize);
        jobs.last().map(encode_cursor)
    } else {
        None
    };
    let views: Vec<JobView> = jobs.iter().map(JobView::from).collect();
    let mut response = HttpResponse::Ok();
    if let Some(cursor) = next {
        let link = next_link(request.path(), request.query_string(), &cursor);
        response.insert_header(("X-Next-Cursor", cursor));
        response.insert_header((header::LINK, format!("<{link}>; rel=\"next\"")));
    }
    Ok(response.json(views))
}

/// The position after `job`: its creation instant in unix microseconds and its id. Clients
/// treat it as opaque; it names a position, not a job, so it stays valid when the job changes.
fn encode_cursor(job: &Job) -> String {
    let micros = job.created_at().unix_timestamp_nanos() / 1_000;
    format!("{micros}.{}", job.id())
}

fn decode_cursor(text: &str) -> Option<JobCursor> {
    let (micros, id) = text.split_once('.')?;
    let micros: i128 = micros.parse().ok()?;
    let created_at = Timestamp::from_unix_timestamp_nanos(micros.checked_mul(1_000)?).ok()?;
    Some(JobCursor {
        created_at,
        id: id.parse().ok()?,
    })
}

/// The next page's URI (a reference relative to the server, as RFC 8288 allows): the request's
/// own query with its `cursor` replaced, every other parameter kept as the client sent it.
fn next_link(path: &str, query: &str, cursor: &str) -> String {
    let mut parts: Vec<&str> = query
        .split('&')
        .filter(|part| !part.is_empty() && part.split('=').next() != Some("cursor"))
        .collect();
    // A cursor holds digits, a dot, hex digits and dashes only: nothing to percent-encode.
    let cursor = format!("cursor={cursor}");
    parts.push(&cursor);
    format!("{path}?{}", parts.join("&"))
}

// ---- reading requests ----

fn read_run_request(body: &Map<String, Value>) -> Result<RunRequest, ValidationError> {
    let mut fields = Fields::new(body);
    let workflow_id = fields.required_text("workflow_id").and_then(|text| {
        let parsed = text.parse::<WorkflowId>().ok();
        if parsed.is_none() {
            fields.push("workflow_id", "must be a workflow id (a UUID)");
        }
        parsed
    });
    let priority = match fields.integer("priority") {
        Some(value) => fields.check(Priority::new(value)),
        None => Some(Priority::default()),
    };
    let execution_mode = match fields.text("execution_mode") {
        Some(text) => fields.check(ExecutionMode::parse(&text)),
        None => Some(ExecutionMode::default()),
    };
    let input = fields.object("input").unwrap_or_default();
    fields.finish()?;
    match (workflow_id, priority, execution_mode) {
        (Some(workflow_id), Some(priority), Some(execution_mode)) => Ok(RunRequest {
            workflow_id,
            priority,
            execution_mode,
            input,
        }),
        // `finish` above refused every missing value with its reason.
        _ => Err(ValidationError::field("body", "is not a valid job request")),
    }
}

fn read_filter(query: ListQuery) -> Result<JobFilter, ValidationError> {
    let mut v = Validator::new();
    let given = |text: Option<String>| text.filter(|s| !s.is_empty());
    let status = given(query.status).and_then(|s| v.check(s.parse::<JobStatus>()));
    let robot_id = given(query.robot_id).and_then(|s| v.check(RobotId::parse(s)));
    let workflow_id =
        given(query.workflow_id).and_then(|s| {
            v.check(s.parse::<WorkflowId>().map_err(|_| {
                ValidationError::field("workflow_id", "must be a workflow id (a UUID)")
            }))
        });
    let mut instant = |name: &str, text: Option<String>| {
        given(text).and_then(|text| {
            let parsed = parse_query_instant(&text);
            if parsed.is_none() {
                v.push(name, instant::refusal());
            }
            parsed
        })
    };
    let created_after = instant("created_after", query.created_after);
    let created_before = instant("created_before", query.created_before);
    let after = given(query.cursor).and_then(|text| {
        let parsed = decode_cursor(&text);
        if parsed.is_none() {
            v.push(
                "cursor",
                "is not a cursor this server issued: pass X-Next-Cursor from the previous page as is",
            );
        }
        parsed
    });
    let limit = match query.limit.map(|l| l.parse::<u32>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            v.push(
                "limit",
                format!("must be a whole number between 1 and {MAX_LIMIT}"),
            );
            DEFAULT_LIMIT
        }
    };
    v.finish()?;
    Ok(JobFilter {
        status,
        workflow_id,
        robot_id,
        created_after,
        created_before,
        after,
        limit,
    })
}

/// A job id from the path; text that is not a UUID names no job, so it is a 404.
pub(crate) fn job_id(text: &str) -> ApiResult<JobId> {
    text.parse()
        .map_err(|_| ApiError::not_found("job not found: the id is not a job id (a UUID)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields_of(err: &ValidationError) -> Vec<&str> {
        err.errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_run_request_takes_defaults_for_what_is_left_out() {
        let id = "0195a3a8-7e44-7c4e-9c55-7d0b0c6c1a2b";
        let request = read_run_request(&object(json!({"workflow_id": id}))).unwrap();
        assert_eq!(request.workflow_id.to_string(), id);
        assert_eq!(request.priority, Priority::default());
        assert_eq!(request.execution_mode, ExecutionMode::Lan);
        assert!(request.input.is_empty());
    }

    #[test]
    fn every_broken_field_of_a_run_request_is_named_at_once() {
        let err = read_run_request(&object(json!({
            "workflow_id": "nope", "priority": 21, "execution_mode": "cloud", "input": [1]
        })))
        .unwrap_err();
        assert_eq!(
            fields_of(&err),
            ["workflow_id", "priority", "execution_mode", "input"]
        );
        let err = read_run_request(&object(json!({"priority": "high", "input": "x"}))).unwrap_err();
        assert_eq!(fields_of(&err), ["workflow_id", "priority", "input"]);
        let err =
            read_run_request(&object(json!({"workflow_id": 5, "priority": 1.5}))).unwrap_err();
        assert_eq!(fields_of(&err), ["workflow_id", "priority"]);
        let err =
            read_run_request(&object(json!({"priority": -1, "workflow_id": null}))).unwrap_err();
        assert_eq!(fields_of(&err), ["workflow_id", "priority"]);
    }

    #[test]
    fn list_filters_are_checked_by_name() {
        let query = |status: &str, limit: &str| ListQuery {
            status: Some(status.to_owned()),
            limit: Some(limit.to_owned()),
            workflow_id: Some("x".to_owned()),
            robot_id: Some("bad id".to_owned()),
            ..ListQuery::default()
        };
        let err = read_filter(query("done", "0")).unwrap_err();
        assert_eq!(
            fields_of(&err),
            ["status", "robot_id", "workflow_id", "limit"]
        );
        let filter = read_filter(ListQuery {
            status: Some("running".to_owned()),
            limit: None,
            workflow_id: None,
            robot_id: Some(String::new()),
            ..ListQuery::default()
        })
        .unwrap();
        assert_eq!(filter.status, Some(JobStatus::Running));
        assert_eq!(filter.limit, DEFAULT_LIMIT);
        assert_eq!(filter.robot_id, None);
    }

    #[test]
    fn times_and_cursors_are_read_and_refused_by_name() {
        let err = read_filter(ListQuery {
            created_after: Some("yesterday".to_owned()),
            created_before: Some("2025-13-01".to_owned()),
            cursor: Some("12.not-a-job".to_owned()),
            ..ListQuery::default()
        })
        .unwrap_err();
        assert_eq!(
            fields_of(&err),
            ["created_after", "created_before", "cursor"]
        );
        let id = "0195a3a8-7e44-7c4e-9c55-7d0b0c6c1a2b";
        let filter = read_filter(ListQuery {
            created_after: Some("2025-04-26".to_owned()),
            created_before: Some("2025-04-26T14:00:00 02:00".to_owned()),
            cursor: Some(format!("1745668800000001.{id}")),
            ..ListQuery::default()
        })
        .unwrap();
        assert_eq!(
            filter.created_after,
            Some(time::macros::datetime!(2025-04-26 00:00 UTC))
        );
        assert_eq!(
            filter.created_before,
            Some(time::macros::datetime!(2025-04-26 12:00 UTC))
        );
        let cursor = filter.after.unwrap();
        assert_eq!(cursor.id.to_string(), id);
        assert_eq!(
            cursor.created_at,
            time::macros::datetime!(2025-04-26 12:00:00.000001 UTC)
        );
    }

    #[test]
    fn the_next_link_keeps_the_query_and_replaces_the_cursor() {
        assert_eq!(
            next_link("/api/v1/jobs", "status=failed&cursor=1.a&limit=2", "5.b"),
            "/api/v1/jobs?status=failed&limit=2&cursor=5.b"
        );
        assert_eq!(
            next_link("/api/v1/jobs", "", "5.b"),
            "/api/v1/jobs?cursor=5.b"
        );
    }
}
