//! CasareRPA's metrics endpoints under `/api/v1/metrics`: the fleet, robots, job history and
//! details, analytics and the activity feed. Every one needs the Read permission; their
//! per-route rate limits are the seed's table, listed in [`crate::rate_limit`] by these route
//! patterns. The figures come from the domain's [`MetricsService`]; docs/metrics.md says what
//! each one covers where the seed is silent.
//!
//! Query strings are read after authentication, so an anonymous caller learns nothing about
//! its parameters; each parameter is checked by the domain, and every broken one is a 400
//! naming it.

use actix_web::{HttpRequest, HttpResponse, web};
use baton_domain::RepoError;
use baton_domain::event::Event;
use baton_domain::job::Job;
use baton_domain::ports::{ErrorCount, WorkflowDuration};
use baton_domain::robot::RobotId;
use baton_domain::services::ServiceError;
use baton_domain::services::metrics::{
    ActivityParams, Analytics, AnalyticsDays, FleetMetrics, JobParams, MetricsPorts,
    MetricsService, RobotMetrics, robot_status_filter, stats,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::jobs::{JobView, job_id};
use super::robots::RobotView;
use crate::auth::{Authorized, Read};
use crate::errors::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time_format::rfc3339;

/// The routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics/fleet").route(web::get().to(fleet)))
        .service(web::resource("/metrics/robots").route(web::get().to(robots)))
        .service(web::resource("/metrics/robots/{robot_id}").route(web::get().to(robot)))
        .service(web::resource("/metrics/jobs").route(web::get().to(jobs)))
        .service(web::resource("/metrics/jobs/{job_id}").route(web::get().to(job)))
        .service(web::resource("/metrics/analytics").route(web::get().to(analytics)))
        .service(web::resource("/metrics/activity").route(web::get().to(activity)));
}

fn service(state: &AppState) -> MetricsService {
    MetricsService::new(MetricsPorts::from_store(&state.store), state.clock.clone())
}

/// The query string as `T` (each field an optional text for the domain to judge).
fn query<T: DeserializeOwned>(req: &HttpRequest) -> ApiResult<T> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| {
            ApiError::bad_request(format!(
                "the query string has a missing or invalid parameter: {e}"
            ))
        })
}

// ---- responses ----

#[derive(Serialize)]
struct FleetView {
    total_robots: u64,
    active_robots: u64,
    idle_robots: u64,
    offline_robots: u64,
    total_jobs_today: u64,
    active_jobs: u64,
    queue_depth: u64,
    average_job_duration_seconds: f64,
}

impl From<FleetMetrics> for FleetView {
    fn from(m: FleetMetrics) -> Self {
        Self {
            total_robots: m.total_robots,
            active_robots: m.active_robots,
            idle_robots: m.idle_robots,
            offline_robots: m.offline_robots,
            total_jobs_today: m.total_jobs_today,
            active_jobs: m.active_jobs,
            queue_depth: m.queue_depth,
            average_job_duration_seconds: m.average_job_duration_seconds,
        }
    }
}

/// A robot as the robot list shows it, with its work of the day.
#[derive(Serialize)]
struct RobotDetailView {
    #[serde(flatten)]
    robot: RobotView,
    jobs_completed_today: u64,
    jobs_failed_today: u64,
    average_job_duration_seconds: f64,
}

impl From<&RobotMetrics> for RobotDetailView {
    fn from(m: &RobotMetrics) -> Self {
        Self {
            robot: RobotView::from(&m.robot),
            jobs_completed_today: m.jobs_completed_today,
            jobs_failed_today: m.jobs_failed_today,
            average_job_duration_seconds: m.average_job_duration_seconds,
        }
    }
}

/// One job of the history: the seed's fields and the few that explain them, without the
/// input, output and node executions that `/metrics/jobs/{job_id}` shows.
#[derive(Serialize)]
struct JobSummaryView {
    job_id: String,
    workflow_id: String,
    workflow_name: String,
    robot_id: Option<String>,
    status: &'static str,
    priority: u8,
    created_at: String,
    claimed_at: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    duration_ms: Option<i64>,
    retry_count: u32,
    error_type: Option<String>,
    error_message: Option<String>,
}

impl From<&Job> for JobSummaryView {
    fn from(job: &Job) -> Self {
        Self {
            job_id: job.id().to_string(),
            workflow_id: job.workflow_id().to_string(),
            workflow_name: job.workflow_name().to_string(),
            robot_id: job.robot_id().map(|r| r.as_str().to_owned()),
            status: job.status().as_str(),
            priority: job.priority().value(),
            created_at: rfc3339(job.created_at()),
            claimed_at: job.claimed_at().map(rfc3339),
            started_at: job.started_at().map(rfc3339),
            completed_at: job.completed_at().map(rfc3339),
            duration_ms: job.duration_ms(),
            retry_count: job.retry_count(),
            error_type: job.error_type().map(str::to_owned),
            error_message: job.error_message().map(str::to_owned),
        }
    }
}

#[derive(Serialize)]
struct SlowWorkflowView {
    workflow_id: String,
    workflow_name: String,
    average_duration_ms: i64,
    completed_jobs: u64,
}

impl From<&WorkflowDuration> for SlowWorkflowView {
    fn from(w: &WorkflowDuration) -> Self {
        Self {
            workflow_id: w.workflow_id.to_string(),
            workflow_name: w.workflow_name.clone(),
            average_duration_ms: stats::whole_ms(w.average_duration_ms),
            completed_jobs: w.completed_jobs,
        }
    }
}

#[derive(Serialize)]
struct ErrorCountView {
    error_type: Option<String>,
    count: u64,
}

impl From<&ErrorCount> for ErrorCountView {
    fn from(e: &ErrorCount) -> Self {
        Self {
            error_type: e.error_type.clone(),
            count: e.count,
        }
    }
}

#[derive(Serialize)]
struct AnalyticsView {
    days: u32,
    since: String,
    total_jobs: u64,
    completed_jobs: u64,
    failed_jobs: u64,
    cancelled_jobs: u64,
    success_rate: f64,
    failure_rate: f64,
    average_duration_ms: i64,
    p50_duration_ms: i64,
    p90_duration_ms: i64,
    p99_duration_ms: i64,
    slowest_workflows: Vec<SlowWorkflowView>,
    error_distribution: Vec<ErrorCountView>,
    self_healing_success_rate: f64,
}

impl From<&Analytics> for AnalyticsView {
    fn from(a: &Analytics) -> Self {
        Self {
            days: a.days.get(),
            since: rfc3339(a.since),
            total_jobs: a.total_jobs,
            completed_jobs: a.completed_jobs,
            failed_jobs: a.failed_jobs,
            cancelled_jobs: a.cancelled_jobs,
            success_rate: a.success_rate,
            failure_rate: a.failure_rate,
            average_duration_ms: a.average_duration_ms,
            p50_duration_ms: a.p50_duration_ms,
            p90_duration_ms: a.p90_duration_ms,
            p99_duration_ms: a.p99_duration_ms,
            slowest_workflows: a.slowest_workflows.iter().map(Into::into).collect(),
            error_distribution: a.error_distribution.iter().map(Into::into).collect(),
            self_healing_success_rate: a.self_healing_success_rate,
        }
    }
}

/// One entry of the activity feed.
#[derive(Serialize)]
struct EventView<'a> {
    id: String,
    #[serde(rename = "type")]
    event_type: &'static str,
    timestamp: String,
    title: &'a str,
    details: Option<&'a str>,
    robot_id: Option<&'a str>,
    job_id: Option<String>,
    workflow_id: Option<String>,
    /// The job's status after the change, for job events.
    job_status: Option<&'static str>,
    /// What else the event recorded (a trigger's id and name, …), a JSON object.
    data: &'a Map<String, Value>,
}

impl<'a> From<&'a Event> for EventView<'a> {
    fn from(e: &'a Event) -> Self {
        Self {
            id: e.id.to_string(),
            event_type: e.event_type.as_str(),
            timestamp: rfc3339(e.timestamp),
            title: &e.title,
            details: e.details.as_deref(),
            robot_id: e.robot_id.as_ref().map(RobotId::as_str),
            job_id: e.job_id.map(|id| id.to_string()),
            workflow_id: e.workflow_id.map(|id| id.to_string()),
            job_status: e.job_status.map(|s| s.as_str()),
            data: &e.data,
        }
    }
}

#[derive(Serialize)]
struct ActivityView<'a> {
    events: Vec<EventView<'a>>,
    /// How many events match the filters in all, beyond this page too.
    total: u64,
}

// ---- queries ----

#[derive(Deserialize)]
struct RobotsQuery {
    status: Option<String>,
}

#[derive(Deserialize)]
struct JobsQuery {
    limit: Option<String>,
    status: Option<String>,
    workflow_id: Option<String>,
    robot_id: Option<String>,
}

#[derive(Deserialize)]
struct AnalyticsQuery {
    days: Option<String>,
}

#[derive(Deserialize)]
struct ActivityQuery {
    limit: Option<String>,
    since: Option<String>,
    event_type: Option<String>,
}

// ---- handlers ----

/// `GET /metrics/fleet`.
async fn fleet(state: web::Data<AppState>, _: Authorized<Read>) -> ApiResult<HttpResponse> {
    let fleet = service(&state).fleet().await?;
    Ok(HttpResponse::Ok().json(FleetView::from(fleet)))
}

/// `GET /metrics/robots?status=idle|busy|offline`: robots by id.
async fn robots(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let RobotsQuery { status } = query(&req)?;
    let status = robot_status_filter(status.as_deref())?;
    let robots = service(&state).robots(status).await?;
    let views: Vec<RobotView> = robots.iter().map(RobotView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `GET /metrics/robots/{robot_id}`: 400 for an id that breaks the documented alphabet, 404
/// for one no robot has.
async fn robot(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = RobotId::parse(path.into_inner())?;
    let metrics = service(&state).robot(&id).await.map_err(|e| match e {
        ServiceError::Repo(RepoError::NotFound(_)) => {
            ApiError::not_found(format!("robot not found: no robot has the id '{id}'"))
        }
        other => ApiError::from(other),
    })?;
    Ok(HttpResponse::Ok().json(RobotDetailView::from(&metrics)))
}

/// `GET /metrics/jobs?limit=&status=&workflow_id=&robot_id=`: jobs newest first.
async fn jobs(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let JobsQuery {
        limit,
        status,
        workflow_id,
        robot_id,
    } = query(&req)?;
    let filter = JobParams {
        limit,
        status,
        workflow_id,
        robot_id,
    }
    .parse()?;
    let jobs = service(&state).jobs(&filter).await?;
    let views: Vec<JobSummaryView> = jobs.iter().map(JobSummaryView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `GET /metrics/jobs/{job_id}`: every field of the job, its node executions included.
async fn job(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = job_id(&path)?;
    let job = service(&state).job(id).await.map_err(|e| match e {
        ServiceError::Repo(RepoError::NotFound(_)) => {
            ApiError::not_found(format!("job not found: no job has the id {id}"))
        }
        other => ApiError::from(other),
    })?;
    Ok(HttpResponse::Ok().json(JobView::from(&job)))
}

/// `GET /metrics/analytics?days=1..90` (7 by default).
async fn analytics(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let AnalyticsQuery { days } = query(&req)?;
    let days = AnalyticsDays::parse(days.as_deref())?;
    let analytics = service(&state).analytics(days).await?;
    Ok(HttpResponse::Ok().json(AnalyticsView::from(&analytics)))
}

/// `GET /metrics/activity?limit=&since=&event_type=`: events newest first and the total.
async fn activity(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let ActivityQuery {
        limit,
        since,
        event_type,
    } = query(&req)?;
    let filter = ActivityParams {
        limit,
        since,
        event_type,
    }
    .parse()?;
    let (events, total) = service(&state).activity(&filter).await?;
    Ok(HttpResponse::Ok().json(ActivityView {
        events: events.iter().map(EventView::from).collect(),
        total,
    }))
}
