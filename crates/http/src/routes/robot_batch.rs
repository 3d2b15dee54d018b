//! The robot protocol's batched calls (docs/robot-protocol.md, "Batches"): a robot working
//! through many short jobs claims up to [`MAX_BATCH`] at once and reports how they ended in one
//! call. The one-job calls of [`super::robot_protocol`] stay as they are; these only save round
//! trips and transactions.

use actix_web::{HttpResponse, web};
use baton_domain::ValidationError;
use baton_domain::ids::JobId;
use baton_domain::services::jobs::{FinishedJob, JobEnd};
use serde::Serialize;
use serde_json::{Map, Value};

use super::jobs::{JobView, job_service};
use super::robot_protocol::{ClaimView, ensure_known_robot, poll_until, read_wait};
use crate::auth::RobotCaller;
use crate::body::{Fields, json_object, optional_json_object};
use crate::errors::{ApiError, ApiResult};
use crate::extract::{BodyLimit, limit_body};
use crate::state::AppState;

/// The most jobs one batched call claims or reports: a claim of a hundred small jobs is one
/// short transaction, and a report of a hundred stays far below the body limit.
pub const MAX_BATCH: u64 = 100;

/// The routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/robots/{robot_id}/jobs/claim-batch").route(web::post().to(claim_batch)),
    )
    .service(limit_body(
        web::resource("/robots/{robot_id}/jobs/finish-batch").route(web::post().to(finish_batch)),
        BodyLimit::DOCUMENT,
    ));
}

/// The answer to a batched claim.
#[derive(Serialize)]
struct ClaimedBatch<'a> {
    jobs: Vec<ClaimView<'a>>,
}

/// One job's outcome in the answer to a batched report: `status` is the HTTP status the
/// one-job call would have answered, with the job (200) or the error's `error` and `detail`.
#[derive(Serialize)]
struct FinishOutcome {
    job_id: String,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<JobView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize)]
struct FinishedBatch {
    results: Vec<FinishOutcome>,
}

/// `POST /robots/{robot_id}/jobs/claim-batch` `{"limit": n, "wait_seconds": s}`: 200 with up to
/// `limit` (1–100, default 10) jobs as soon as at least one is pending, or 204 after the wait.
async fn claim_batch(
    state: web::Data<AppState>,
    caller: RobotCaller,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let body = optional_json_object(&body)?;
    let (wait, limit) = read_claim(&body)?;
    ensure_known_robot(&state, &caller).await?;
    let service = job_service(&state);
    let claimed = poll_until(wait, async || {
        let jobs = service.claim_many(&caller.robot_id, limit).await?;
        Ok((!jobs.is_empty()).then_some(jobs))
    })
    .await?;
    let Some(claimed) = claimed else {
        return Ok(HttpResponse::NoContent().finish());
    };
    tracing::info!(robot = %caller.robot_id, count = claimed.len(), "jobs claimed in a batch");
    Ok(HttpResponse::Ok().json(ClaimedBatch {
        jobs: claimed.iter().map(ClaimView::from).collect(),
    }))
}

/// `POST /robots/{robot_id}/jobs/finish-batch` `{"jobs": [{"job_id", "outcome", …}]}`: each job
/// is completed or failed as its one-job call would, all in one transaction; 200 with one
/// outcome per job, in order. A broken report refuses the whole batch with 400 before anything
/// is stored.
async fn finish_batch(
    state: web::Data<AppState>,
    caller: RobotCaller,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let ends = read_report(&json_object(&body)?)?;
    ensure_known_robot(&state, &caller).await?;
    let outcomes = job_service(&state)
        .finish_many(&caller.robot_id, &ends)
        .await?;
    let mut finished = 0;
    let results = ends
        .iter()
        .zip(outcomes)
        .map(|(end, outcome)| match outcome {
            Ok(job) => {
                finished += 1;
                FinishOutcome {
                    job_id: end.job_id.to_string(),
                    status: 200,
                    job: Some(JobView::from(&job)),
                    error: None,
                    detail: None,
                }
            }
            Err(refused) => {
                let refused = ApiError::from(refused);
                FinishOutcome {
                    job_id: end.job_id.to_string(),
                    status: refused.status().as_u16(),
                    job: None,
                    error: Some(refused.error().to_owned()),
                    detail: Some(refused.detail().to_owned()),
                }
            }
        })
        .collect::<Vec<_>>();
    tracing::info!(robot = %caller.robot_id, finished, refused = results.len() - finished, "jobs finished in a batch");
    Ok(HttpResponse::Ok().json(FinishedBatch { results }))
}

/// `wait_seconds` (as the one-job claim) and `limit` (1–100, default 10).
fn read_claim(body: &Map<String, Value>) -> Result<(std::time::Duration, u32), ValidationError> {
    let wait = read_wait(body);
    let mut fields = Fields::new(body);
    let limit = fields.whole("limit");
    if limit.is_some_and(|n| !(1..=MAX_BATCH).contains(&n)) {
        fields.push(
            "limit",
            format!("must be a whole number from 1 to {MAX_BATCH}"),
        );
    }
    let limit = fields.finish().map(|()| limit.unwrap_or(10));
    match (wait, limit) {
        (Ok(wait), Ok(limit)) => Ok((wait, u32::try_from(limit).unwrap_or(10))),
        (Err(a), Err(b)) => Err(a.merge(b)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// The report's `jobs`: 1–100 objects, each with a `job_id`, an `outcome` (`completed` or
/// `failed`) and that outcome's fields. Every broken field is named by its place
/// (`jobs[3].outcome`), all of them in one answer.
fn read_report(body: &Map<String, Value>) -> Result<Vec<FinishedJob>, ValidationError> {
    let mut fields = Fields::new(body);
    let jobs = fields.array("jobs");
    fields.finish()?;
    let Some(jobs) = jobs else {
        return Err(ValidationError::field("jobs", "is required"));
    };
    if jobs.is_empty() || jobs.len() as u64 > MAX_BATCH {
        return Err(ValidationError::field(
            "jobs",
            format!("must hold 1 to {MAX_BATCH} jobs"),
        ));
    }
    let mut ends = Vec::with_capacity(jobs.len());
    let mut errors: Option<ValidationError> = None;
    for (index, job) in jobs.iter().enumerate() {
        match read_end(job) {
            Ok(end) => ends.push(end),
            Err(mut broken) => {
                for error in &mut broken.errors {
                    error.field = format!("jobs[{index}].{}", error.field);
                }
                errors = Some(match errors {
                    Some(earlier) => earlier.merge(broken),
                    None => broken,
                });
            }
        }
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(ends),
    }
}

/// One job of a report.
fn read_end(job: &Value) -> Result<FinishedJob, ValidationError> {
    let Value::Object(job) = job else {
        return Err(ValidationError::field(
            "job_id",
            "each job must be a JSON object",
        ));
    };
    let mut fields = Fields::new(job);
    let job_id = fields.required_text("job_id");
    let job_id = job_id.and_then(|text| match text.parse::<JobId>() {
        Ok(id) => Some(id),
        Err(_) => {
            fields.push("job_id", "must be a job id (a UUID)");
            None
        }
    });
    let outcome = fields.required_text("outcome");
    let output = fields.value("output").cloned();
    let error_type = fields.text("error_type");
    let error_message = fields.text("error_message");
    let end = match outcome.as_deref() {
        Some("completed") => Some(JobEnd::Completed { output }),
        Some("failed") => Some(JobEnd::Failed {
            error_type: error_type.unwrap_or_else(|| "Error".to_owned()),
            error_message: error_message
                .unwrap_or_else(|| "the robot gave no error message".to_owned()),
        }),
        Some(_) => {
            fields.push("outcome", "must be \"completed\" or \"failed\"");
            None
        }
        None => None,
    };
    fields.finish()?;
    match (job_id, end) {
        (Some(job_id), Some(end)) => Ok(FinishedJob { job_id, end }),
        // Each missing part recorded an error, so `finish` has returned it already.
        _ => Err(ValidationError::field("job_id", "is required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields_of(err: &ValidationError) -> Vec<&str> {
        err.errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_claim_takes_ten_by_default_and_at_most_a_hundred() {
        let read = |v: Value| read_claim(v.as_object().unwrap());
        assert_eq!(read(json!({})).unwrap().1, 10);
        assert_eq!(read(json!({"limit": 100})).unwrap().1, 100);
        assert_eq!(
            read(json!({"limit": 1, "wait_seconds": 0}))
                .unwrap()
                .0
                .as_secs(),
            0
        );
        let err = read(json!({"limit": 0, "wait_seconds": 31})).unwrap_err();
        assert_eq!(fields_of(&err), ["wait_seconds", "limit"]);
        let err = read(json!({"limit": 101})).unwrap_err();
        assert_eq!(fields_of(&err), ["limit"]);
    }

    #[test]
    fn a_report_names_each_broken_field_by_its_place() {
        let id = uuid::Uuid::nil().to_string();
        let body = json!({"jobs": [
            {"job_id": id, "outcome": "completed", "output": {"n": 1}},
            {"job_id": "nope", "outcome": "done"},
            {"outcome": "failed", "error_type": 5},
            "text",
        ]});
        let err = read_report(body.as_object().unwrap()).unwrap_err();
        assert_eq!(
            fields_of(&err),
            [
                "jobs[1].job_id",
                "jobs[1].outcome",
                "jobs[2].job_id",
                "jobs[2].error_type",
                "jobs[3].job_id"
            ]
        );
    }

    #[test]
    fn a_report_holds_one_to_a_hundred_jobs() {
        for body in [json!({}), json!({"jobs": []}), json!({"jobs": {}})] {
            let err = read_report(body.as_object().unwrap()).unwrap_err();
            assert_eq!(fields_of(&err), ["jobs"], "{body}");
        }
        let one = json!({"job_id": uuid::Uuid::nil().to_string(), "outcome": "failed"});
        let many = json!({"jobs": vec![one.clone(); 101]});
        assert!(read_report(many.as_object().unwrap()).is_err());
        let ends = read_report(json!({"jobs": [one]}).as_object().unwrap()).unwrap();
        assert_eq!(
            ends[0].end,
            JobEnd::Failed {
                error_type: "Error".to_owned(),
                error_message: "the robot gave no error message".to_owned()
            }
        );
    }
}
