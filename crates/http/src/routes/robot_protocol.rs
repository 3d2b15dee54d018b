//! The robot protocol's job calls (docs/robot-protocol.md is the contract): claim with
//! long-poll, start, progress, renew, complete, fail, cancelled and release, all under
//! `/robots/{robot_id}/jobs`. [`RobotCaller`] makes sure a robot acts only as itself; the
//! domain's [`JobService`](baton_domain::services::jobs::JobService) makes sure it acts only on
//! a job it holds (409 otherwise).
//!
//! The heartbeat lives with the robot resource in [`super::robots`].

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use baton_domain::job::{CancelMode, Job};
use baton_domain::services::jobs::{ClaimedJob, NodeReport, cancel_signal};
use baton_domain::{RepoError, ValidationError};
use serde::Serialize;
use serde_json::{Map, Value};

use super::jobs::{JobView, job_id, job_service};
use crate::auth::{Principal, RobotCaller};
use crate::body::{Fields, json_object, optional_json_object};
use crate::errors::{ApiError, ApiResult};
use crate::extract::{BodyLimit, limit_body};
use crate::state::AppState;
use crate::time_format::rfc3339;

/// How long a claim waits for a job when the robot does not say.
const DEFAULT_WAIT_SECONDS: u64 = 20;
/// The longest wait a robot may ask for: below the usual 60 s idle timeout of proxies.
const MAX_WAIT_SECONDS: u64 = 30;
/// How often a waiting claim looks for a pending job. Jobs may be queued by any server sharing
/// the database (and by its triggers), so the database itself is polled: each look is one
/// short claim query on a pooled connection that is returned before the pause, so a waiting
/// robot holds no connection. 200 ms keeps the added latency small and the load at five
/// cheap queries per second per waiting robot.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let call = |path: &str| format!("/robots/{{robot_id}}/jobs/{{job_id}}/{path}");
    cfg.service(web::resource("/robots/{robot_id}/jobs/claim").route(web::post().to(claim)))
        .service(web::resource(call("start")).route(web::post().to(start)))
        .service(limit_body(
            web::resource(call("progress")).route(web::post().to(progress)),
            BodyLimit::DOCUMENT,
        ))
        .service(web::resource(call("renew")).route(web::post().to(renew)))
        .service(limit_body(
            web::resource(call("complete")).route(web::post().to(complete)),
            BodyLimit::DOCUMENT,
        ))
        .service(limit_body(
            web::resource(call("fail")).route(web::post().to(fail)),
            BodyLimit::BATCH,
        ))
        .service(web::resource(call("cancelled")).route(web::post().to(cancelled)))
        .service(web::resource(call("release")).route(web::post().to(release)));
}

// ---- responses ----

/// A claimed job: what the robot needs to run it.
#[derive(Serialize)]
pub(crate) struct ClaimView<'a> {
    job_id: String,
    workflow_id: String,
    workflow_name: String,
    workflow_json: &'a Value,
    input: &'a Map<String, Value>,
    priority: u8,
    execution_mode: &'static str,
    lease_expires_at: Option<String>,
    retry_count: u32,
    /// 1 at the job's first claim, one more at each claim after a release or a lost lease:
    /// above 1, nodes of an earlier attempt may already have run.
    attempt: u32,
}

impl<'a> From<&'a ClaimedJob> for ClaimView<'a> {
    fn from(claimed: &'a ClaimedJob) -> Self {
        let job = &claimed.job;
        Self {
            job_id: job.id().to_string(),
            workflow_id: job.workflow_id().to_string(),
            workflow_name: job.workflow_name().to_string(),
            workflow_json: claimed.workflow.graph.source(),
            input: job.input(),
            priority: job.priority().value(),
            execution_mode: job.execution_mode().as_str(),
            lease_expires_at: job.lease_expires_at().map(rfc3339),
            retry_count: job.retry_count(),
            attempt: job.attempt(),
        }
    }
}

/// The answer to start, progress and renew: where the job stands and whether to stop.
#[derive(Serialize)]
struct AckView {
    job_id: String,
    status: &'static str,
    /// `null`, `soft` (stop after this node, then call `cancelled`) or `hard` (stop now).
    cancel: Option<&'static str>,
    lease_expires_at: Option<String>,
}

impl From<&Job> for AckView {
    fn from(job: &Job) -> Self {
        Self {
            job_id: job.id().to_string(),
            status: job.status().as_str(),
            cancel: cancel_signal(job).map(CancelMode::as_str),
            lease_expires_at: job.lease_expires_at().map(rfc3339),
        }
    }
}

// ---- handlers ----

/// `POST /robots/{robot_id}/jobs/claim` `{"wait_seconds": n}`: 200 with a job as soon as one
/// is pending, or 204 after the wait.
async fn claim(
    state: web::Data<AppState>,
    caller: RobotCaller,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let wait = read_wait(&optional_json_object(&body)?)?;
    ensure_known_robot(&state, &caller).await?;
    let service = job_service(&state);
    let claimed = poll_until(wait, async || {
        service
            .claim(&caller.robot_id)
            .await
            .map_err(ApiError::from)
    })
    .await?;
    match claimed {
        Some(claimed) => {
            tracing::info!(robot = %caller.robot_id, job = %claimed.job.id(), workflow = %claimed.job.workflow_id(), "job claimed");
            Ok(HttpResponse::Ok().json(ClaimView::from(&claimed)))
        }
        None => Ok(HttpResponse::NoContent().finish()),
    }
}

/// Runs `attempt` until it finds something or `wait` has passed, pausing [`POLL_INTERVAL`]
/// between attempts: the long poll of the claim calls.
pub(crate) async fn poll_until<T>(
    wait: Duration,
    mut attempt: impl AsyncFnMut() -> ApiResult<Option<T>>,
) -> ApiResult<Option<T>> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(found) = attempt().await? {
            return Ok(Some(found));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        actix_web::rt::time::sleep(left.min(POLL_INTERVAL)).await;
    }
}

/// `POST /robots/{robot_id}/jobs/{job_id}/start`: the job is running.
async fn start(
    state: web::Data<AppState>,
    caller: RobotCaller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let id = job_id(&path.1)?;
    let job = job_service(&state).start(id, &caller.robot_id).await?;
    Ok(HttpResponse::Ok().json(AckView::from(&job)))
}

/// `POST /robots/{robot_id}/jobs/{job_id}/progress`: one node's outcome and messages.
async fn progress(
    state: web::Data<AppState>,
    caller: RobotCaller,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let id = job_id(&path.1)?;
    let report = read_report(&json_object(&body)?)?;
    let node = report.node_id.clone();
    let job = job_service(&state)
        .progress(id, &caller.robot_id, report)
        .await?;
    tracing::debug!(robot = %caller.robot_id, job = %job.id(), node = %node, "node reported");
    Ok(HttpResponse::Ok().json(AckView::from(&job)))
}

/// `POST /robots/{robot_id}/jobs/{job_id}/renew`: the lease moves on; no body.
async fn renew(
    state: web::Data<AppState>,
    caller: RobotCaller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let id = job_id(&path.1)?;
    let job = job_service(&state).renew(id, &caller.robot_id).await?;
    Ok(HttpResponse::Ok().json(AckView::from(&job)))
}

/// `POST /robots/{robot_id}/jobs/{job_id}/complete` `{"output": …}` (optional).
async fn complete(
    state: web::Data<AppState>,
    caller: RobotCaller,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let id = job_id(&path.1)?;
    let body = optional_json_object(&body)?;
    let output = body.get("output").filter(|v| !v.is_null()).cloned();
    let job = job_service(&state)
        .complete(id, &caller.robot_id, output)
        .await?;
    tracing::info!(robot = %caller.robot_id, job = %job.id(), "job completed");
    Ok(HttpResponse::Ok().json(JobView::from(&job)))
}

/// `POST /robots/{robot_id}/jobs/{job_id}/fail` `{"error_type", "error_message"}`: texts
/// longer than the limits are truncated, not refused.
async fn fail(
    state: web::Data<AppState>,
    caller: RobotCaller,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let id = job_id(&path.1)?;
    let body = optional_json_object(&body)?;
    let mut fields = Fields::new(&body);
    let error_type = fields.text("error_type");
    let error_message = fields.text("error_message");
    fields.finish()?;
    let job = job_service(&state)
        .fail(
            id,
            &caller.robot_id,
            error_type.unwrap_or_else(|| "Error".to_owned()),
            error_message.unwrap_or_else(|| "the robot gave no error message".to_owned()),
        )
        .await?;
    tracing::info!(robot = %caller.robot_id, job = %job.id(), error_type = job.error_type().unwrap_or_default(), "job failed");
    Ok(HttpResponse::Ok().json(JobView::from(&job)))
}

/// `POST /robots/{robot_id}/jobs/{job_id}/cancelled`: the robot stopped after a soft cancel.
async fn cancelled(
    state: web::Data<AppState>,
    caller: RobotCaller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let id = job_id(&path.1)?;
    let job = job_service(&state).cancelled(id, &caller.robot_id).await?;
    tracing::info!(robot = %caller.robot_id, job = %job.id(), "job cancelled by its robot");
    Ok(HttpResponse::Ok().json(JobView::from(&job)))
}

/// `POST /robots/{robot_id}/jobs/{job_id}/release`: the robot gives the job back unfinished.
async fn release(
    state: web::Data<AppState>,
    caller: RobotCaller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let id = job_id(&path.1)?;
    let job = job_service(&state).release(id, &caller.robot_id).await?;
    tracing::info!(robot = %caller.robot_id, job = %job.id(), status = %job.status(), "job released");
    Ok(HttpResponse::Ok().json(JobView::from(&job)))
}

// ---- reading requests ----

/// `wait_seconds` of a claim's body: 0–30, 20 when left out.
pub(crate) fn read_wait(body: &Map<String, Value>) -> Result<Duration, ValidationError> {
    let mut fields = Fields::new(body);
    let wait = fields.whole("wait_seconds");
    fields.finish()?;
    let seconds = wait.unwrap_or(DEFAULT_WAIT_SECONDS);
    if seconds > MAX_WAIT_SECONDS {
        return Err(ValidationError::field(
            "wait_seconds",
            format!("must be a whole number from 0 to {MAX_WAIT_SECONDS}"),
        ));
    }
    Ok(Duration::from_secs(seconds))
}

/// The progress body: `node_id` and `status` required, the rest optional (`node_type` and
/// `output` are accepted and not kept: the messages carry what a node emits).
fn read_report(body: &Map<String, Value>) -> Result<NodeReport, ValidationError> {
    let mut fields = Fields::new(body);
    let node_id = fields.required_text("node_id");
    let status = fields.required_text("status");
    let duration_ms = fields.whole("duration_ms").unwrap_or(0);
    let error = fields.text("error");
    let messages = fields.array("messages").unwrap_or_default();
    fields.text("node_type");
    fields.finish()?;
    Ok(NodeReport {
        node_id: node_id.unwrap_or_default(),
        status: status.unwrap_or_default(),
        duration_ms,
        error,
        messages,
    })
}

/// An operator acting for a robot must name one that exists, so a typo cannot hand jobs to a
/// robot nobody runs (as the heartbeat refuses to invent one). A robot's own token, or dev
/// mode, is trusted: robots of `ROBOT_TOKENS` have no record before their first heartbeat.
pub(crate) async fn ensure_known_robot(state: &AppState, caller: &RobotCaller) -> ApiResult<()> {
    if matches!(
        caller.principal,
        Principal::Robot { .. } | Principal::DevMode
    ) {
        return Ok(());
    }
    match state.store.get_robot(&caller.robot_id).await {
        Ok(_) => Ok(()),
        Err(RepoError::NotFound(_)) => Err(ApiError::not_found(format!(
            "no robot '{}': create it with POST /api/v1/robots first",
            caller.robot_id
        ))),
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_wait_defaults_to_20_seconds_and_is_bounded() {
        let read_wait =
            |body: &[u8]| read_wait(&optional_json_object(body).unwrap()).map_err(ApiError::from);
        assert_eq!(read_wait(b"").unwrap(), Duration::from_secs(20));
        assert_eq!(read_wait(b"{}").unwrap(), Duration::from_secs(20));
        assert_eq!(
            read_wait(br#"{"wait_seconds": 0}"#).unwrap(),
            Duration::ZERO
        );
        assert_eq!(
            read_wait(br#"{"wait_seconds": 30}"#).unwrap(),
            Duration::from_secs(30)
        );
        for bad in [
            &br#"{"wait_seconds": 31}"#[..],
            br#"{"wait_seconds": -1}"#,
            br#"{"wait_seconds": "5"}"#,
        ] {
            let err = read_wait(bad).unwrap_err();
            assert_eq!(err.field_errors()[0].field, "wait_seconds");
        }
    }

    #[test]
    fn a_report_needs_a_node_and_a_status() {
        let body = json!({"duration_ms": "fast", "messages": {}});
        let err = read_report(body.as_object().unwrap()).unwrap_err();
        let fields: Vec<&str> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["node_id", "status", "duration_ms", "messages"]);
        let body = json!({"node_id": "n", "status": "completed", "messages": [1, {"a": 2}]});
        let report = read_report(body.as_object().unwrap()).unwrap();
        assert_eq!(report.messages.len(), 2);
        assert_eq!(report.duration_ms, 0);
    }
}
