//! CasareRPA's seven metrics endpoints, with every documented query parameter, on a fleet in the
//! state the examples show: robot `robot-001` on `desktop-abc123`, busy with a job, after a
//! completed job of "Daily Report" (nodes `start` and `scrape`) and a failed one
//! (`TimeoutError`). Then the rate limit: its headers and its 429 body.

use baton_storage::testing::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::check::Case;
use crate::env::{Env, send, text};
use crate::seeds::{Seed, substitute};

const SEED_WORKFLOW_ID: &str = "550e8400-e29b-41d4-a716-446655440000";

fn casare(section: &str, label: &str) -> Value {
    Seed::Casare.example(section, label)
}

/// What the scenario made.
struct Fleet {
    workflow_id: String,
    completed: String,
    failed: String,
    running: String,
    /// An instant before any of it.
    since: String,
}

/// Puts the server in the examples' state.
async fn fleet(env: &Env) -> Fleet {
    let since = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
    let robot = env.robot("robot-001", "desktop-abc123").await;
    env.robot_call(
        &robot,
        "heartbeat",
        json!({"cpu_percent": 45.2, "memory_mb": 1024.5, "memory_percent": 65.3,
               "hostname": "desktop-abc123"}),
    )
    .await;
    let submitted = env
        .submit(&json!({
            "workflow_name": "Daily Report",
            "workflow_json": {
                "nodes": [{"id": "start", "type": "StartNode"}, {"id": "scrape", "type": "HttpRequest"}],
                "connections": [{"from": "start", "to": "scrape"}]
            }
        }))
        .await;
    let workflow_id = text(&submitted, "/workflow_id");

    let completed = text(&submitted, "/job_id");
    env.claim_and_start(&robot, &completed).await;
    env.node_done(&robot, &completed, "start", 5, json!([]))
        .await;
    env.node_done(&robot, &completed, "scrape", 85000, json!([]))
        .await;
    env.robot_call(&robot, &format!("jobs/{completed}/complete"), json!({}))
        .await;

    let failed = env.run_job(&workflow_id).await;
    env.claim_and_start(&robot, &failed).await;
    env.robot_call(
        &robot,
        &format!("jobs/{failed}/fail"),
        json!({"error_type": "TimeoutError", "error_message": "the page did not load in 30 s"}),
    )
    .await;

    let running = env.run_job(&workflow_id).await;
    env.claim_and_start(&robot, &running).await;
    Fleet {
        workflow_id,
        completed,
        failed,
        running,
        since,
    }
}

pub async fn metrics(db: TestDatabase) {
    let env = Env::start(db).await;
    let fleet = fleet(&env).await;

    // GET /metrics/fleet.
    let (status, body) = env.get("/api/v1/metrics/fleet").await;
    Case::new(
        "GET /api/v1/metrics/fleet",
        200,
        casare("### GET /metrics/fleet", "**Response** (200 OK):"),
    )
    .pin_to("/total_robots", json!(1))
    .pin_to("/active_robots", json!(1))
    .pin_to("/active_jobs", json!(1))
    .check(status, &body);

    // GET /metrics/robots?status=busy.
    let robot_pins = |case: Case, prefix: &str| {
        case.pin_to(&format!("{prefix}/robot_id"), json!("robot-001"))
            .pin_to(&format!("{prefix}/hostname"), json!("desktop-abc123"))
            .pin_to(&format!("{prefix}/status"), json!("busy"))
            .pin_to(&format!("{prefix}/cpu_percent"), json!(45.2))
            .pin_to(&format!("{prefix}/memory_mb"), json!(1024.5))
            .pin_to(&format!("{prefix}/current_job_id"), json!(fleet.running))
    };
    let (status, body) = env.get("/api/v1/metrics/robots?status=busy").await;
    let case = Case::new(
        "GET /api/v1/metrics/robots",
        200,
        casare("### GET /metrics/robots", "**Response** (200 OK):"),
    );
    let body = robot_pins(case, "/0").check(status, &body);
    assert_eq!(body.as_array().map(Vec::len), Some(1), "{body}");

    // GET /metrics/robots/{robot_id}.
    let (status, body) = env.get("/api/v1/metrics/robots/robot-001").await;
    let case = Case::new(
        "GET /api/v1/metrics/robots/{robot_id}",
        200,
        casare(
            "### GET /metrics/robots/{robot_id}",
            "**Response** (200 OK):",
        ),
    )
    .pin_to("/memory_percent", json!(65.3))
    .pin_to("/jobs_completed_today", json!(1))
    .pin_to("/jobs_failed_today", json!(1));
    robot_pins(case, "").check(status, &body);

    // GET /metrics/jobs with every filter.
    let mut jobs = casare("### GET /metrics/jobs", "**Response** (200 OK):");
    substitute(&mut jobs, SEED_WORKFLOW_ID, &fleet.workflow_id);
    let path = format!(
        "/api/v1/metrics/jobs?limit=50&status=completed&workflow_id={}&robot_id=robot-001",
        fleet.workflow_id
    );
    let (status, body) = env.get(&path).await;
    let body = Case::new("GET /api/v1/metrics/jobs", 200, jobs)
        .pin_to("/0/job_id", json!(fleet.completed))
        .pins(&[
            "/0/workflow_id",
            "/0/workflow_name",
            "/0/robot_id",
            "/0/status",
        ])
        .check(status, &body);
    assert_eq!(body.as_array().map(Vec::len), Some(1), "{body}");

    // GET /metrics/jobs/{job_id}: the completed job with its two node executions.
    let mut job = casare("### GET /metrics/jobs/{job_id}", "**Response** (200 OK):");
    substitute(&mut job, SEED_WORKFLOW_ID, &fleet.workflow_id);
    let (status, body) = env
        .get(&format!("/api/v1/metrics/jobs/{}", fleet.completed))
        .await;
    Case::new("GET /api/v1/metrics/jobs/{job_id}", 200, job)
        .pin_to("/job_id", json!(fleet.completed))
        .pins(&["/workflow_id", "/workflow_name", "/robot_id", "/status"])
        .pins(&["/error_message", "/error_type", "/retry_count"])
        .pins(&[
            "/node_executions/0/node_id",
            "/node_executions/0/duration_ms",
        ])
        .pins(&["/node_executions/0/status", "/node_executions/1/node_id"])
        .pins(&[
            "/node_executions/1/duration_ms",
            "/node_executions/1/status",
        ])
        .check(status, &body);

    // GET /metrics/analytics?days=7.
    let (status, body) = env.get("/api/v1/metrics/analytics?days=7").await;
    Case::new(
        "GET /api/v1/metrics/analytics",
        200,
        casare("### GET /metrics/analytics", "**Response** (200 OK):"),
    )
    .pin_to("/total_jobs", json!(3))
    .pin_to("/slowest_workflows/0/workflow_id", json!(fleet.workflow_id))
    .pin_to("/slowest_workflows/0/workflow_name", json!("Daily Report"))
    .pin_to(
        "/error_distribution",
        json!([{"error_type": "TimeoutError", "count": 1}]),
    )
    .check(status, &body);

    // GET /metrics/activity with every parameter.
    let path = format!(
        "/api/v1/metrics/activity?limit=50&event_type=job_completed&since={}",
        fleet.since.replace('+', "%2B")
    );
    let (status, body) = env.get(&path).await;
    let body = Case::new(
        "GET /api/v1/metrics/activity",
        200,
        casare("### GET /metrics/activity", "**Response** (200 OK):"),
    )
    .pin_to("/events/0/type", json!("job_completed"))
    .pin_to("/events/0/robot_id", json!("robot-001"))
    .pin_to("/events/0/job_id", json!(fleet.completed))
    .pin_to("/total", json!(1))
    .check(status, &body);
    assert_ne!(body["events"][0]["job_id"], fleet.failed.as_str());

    rate_limits(&env).await;
}

/// The "Rate Limiting" section: the three headers on a metrics answer, and the 429 body once a
/// route's limit is spent (`/metrics/analytics`, 20 a minute, was called once above).
async fn rate_limits(env: &Env) {
    let response = env
        .request(Method::GET, "/api/v1/metrics/fleet")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| -> u64 {
        let value = response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header on /metrics/fleet"));
        value
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} is not a whole number: {value:?}"))
    };
    assert_eq!(header("X-RateLimit-Limit"), 100, "the documented limit");
    assert!(header("X-RateLimit-Remaining") < 100);
    let reset = header("X-RateLimit-Reset");
    let now = OffsetDateTime::now_utc().unix_timestamp().unsigned_abs();
    assert!(
        reset >= now.saturating_sub(1) && reset <= now + 61,
        "X-RateLimit-Reset {reset} is a Unix time within the minute (now {now})"
    );

    let too_many = casare("## Rate Limiting", "**429 Too Many Requests**:");
    for _ in 0..30 {
        let (status, body) = send(env.request(Method::GET, "/api/v1/metrics/analytics")).await;
        if status == 429 {
            Case::new(
                "GET /api/v1/metrics/analytics over its limit",
                429,
                too_many,
            )
            .pin("/error")
            .check(status, &body);
            return;
        }
        assert_eq!(status, 200, "{body}");
    }
    panic!("/metrics/analytics never answered 429 (its documented limit is 20 a minute)");
}
