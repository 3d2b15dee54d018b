//! CasareRPA's schedule endpoints, every one: create (the request body and the curl example),
//! list with its filters, get, disable, enable, trigger now, delete.

use baton_storage::testing::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, Weekday};

use crate::auth::casare_error;
use crate::check::Case;
use crate::env::{Env, text};
use crate::seeds::{Seed, set, substitute};

const SEED_WORKFLOW_ID: &str = "550e8400-e29b-41d4-a716-446655440000";
const SEED_SCHEDULE_ID: &str = "770e8400-e29b-41d4-a716-446655440002";

fn casare(section: &str, label: &str) -> Value {
    Seed::Casare.example(section, label)
}

/// The document's schedule object, with the real workflow id.
fn schedule_example(workflow_id: &str) -> Value {
    let mut schedule = casare("### POST /schedules", "**Response** (200 OK):");
    substitute(&mut schedule, SEED_WORKFLOW_ID, workflow_id);
    schedule
}

/// The fields of a schedule the create request determines.
const REQUESTED: [&str; 6] = [
    "/workflow_id",
    "/schedule_name",
    "/cron_expression",
    "/enabled",
    "/priority",
    "/execution_mode",
];

pub async fn schedules(db: TestDatabase) {
    let env = Env::start(db).await;
    let submitted = env
        .submit(&casare("### POST /workflows", "**Request Body**:"))
        .await;
    let workflow_id = text(&submitted, "/workflow_id");

    // POST /schedules with the request body as printed (the workflow id made real).
    let mut request = casare("### POST /schedules", "**Request Body**:");
    substitute(&mut request, SEED_WORKFLOW_ID, &workflow_id);
    let (status, created) = env
        .call(Method::POST, "/api/v1/schedules", Some(&request))
        .await;
    let created = Case::new(
        "POST /api/v1/schedules",
        200,
        schedule_example(&workflow_id),
    )
    .pins(&REQUESTED)
    .pins(&["/last_run", "/run_count", "/failure_count"])
    .check(status, &created);
    assert_next_run_is_a_weekday_at_nine(&created);
    let schedule_id = text(&created, "/schedule_id");

    // The curl example: only the three required fields; the documented defaults fill the rest.
    let mut curl = casare("### POST /schedules", "**curl Example**:");
    substitute(&mut curl, SEED_WORKFLOW_ID, &workflow_id);
    let (status, hourly) = env
        .call(Method::POST, "/api/v1/schedules", Some(&curl))
        .await;
    Case::new(
        "POST /api/v1/schedules (curl example)",
        200,
        schedule_example(&workflow_id),
    )
    .pin_to("/schedule_name", json!("Hourly Sync"))
    .pin_to("/cron_expression", json!("0 * * * *"))
    .pin_to("/enabled", json!(true))
    .pin_to("/priority", json!(10))
    .pin_to("/execution_mode", json!("lan"))
    .check(status, &hourly);

    // GET /schedules with every documented filter.
    let mut list = casare("### GET /schedules", "**Response** (200 OK):");
    substitute(&mut list, SEED_WORKFLOW_ID, &workflow_id);
    let path = format!("/api/v1/schedules?workflow_id={workflow_id}&enabled=true&limit=100");
    let (status, body) = env.get(&path).await;
    let body = Case::new("GET /api/v1/schedules", 200, list).check(status, &body);
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["schedule_name"].as_str())
        .collect();
    assert!(
        names.contains(&"Daily Report") && names.contains(&"Hourly Sync"),
        "{body}"
    );
    let (status, body) = env.get("/api/v1/schedules?enabled=false").await;
    assert_eq!((status, body), (200, json!([])), "no schedule is disabled");

    // GET /schedules/{id}: "the same structure as individual schedule in list response".
    let one = format!("/api/v1/schedules/{schedule_id}");
    let (status, body) = env.get(&one).await;
    Case::new(
        "GET /api/v1/schedules/{schedule_id}",
        200,
        schedule_example(&workflow_id),
    )
    .pins(&REQUESTED)
    .pin_to("/schedule_id", json!(schedule_id))
    .check(status, &body);

    // PUT …/disable and …/enable answer the updated schedule. While disabled, its `next_run`
    // is documented by Baton as null (it will not fire); the seed shows only an enabled one.
    let mut disabled = schedule_example(&workflow_id);
    set(&mut disabled, "/next_run", Value::Null);
    let (status, body) = env.call(Method::PUT, &format!("{one}/disable"), None).await;
    Case::new("PUT /api/v1/schedules/{schedule_id}/disable", 200, disabled)
        .pin_to("/schedule_id", json!(schedule_id))
        .pin_to("/enabled", json!(false))
        .check(status, &body);
    let (status, body) = env.call(Method::PUT, &format!("{one}/enable"), None).await;
    let body = Case::new(
        "PUT /api/v1/schedules/{schedule_id}/enable",
        200,
        schedule_example(&workflow_id),
    )
    .pin_to("/schedule_id", json!(schedule_id))
    .pin_to("/enabled", json!(true))
    .check(status, &body);
    assert_next_run_is_a_weekday_at_nine(&body);

    // PUT …/trigger: a job now, the message naming the schedule.
    let mut triggered = casare(
        "### PUT /schedules/{schedule_id}/trigger",
        "**Response** (200 OK):",
    );
    substitute(&mut triggered, SEED_SCHEDULE_ID, &schedule_id);
    let (status, body) = env.call(Method::PUT, &format!("{one}/trigger"), None).await;
    let body = Case::new(
        "PUT /api/v1/schedules/{schedule_id}/trigger",
        200,
        triggered,
    )
    .pins(&["/status", "/message"])
    .check(status, &body);
    let job_id = text(&body, "/job_id");
    let (status, job) = env.get(&format!("/api/v1/metrics/jobs/{job_id}")).await;
    assert_eq!(status, 200, "the triggered job exists: {job}");
    assert_eq!(job["workflow_id"], workflow_id.as_str());

    // DELETE /schedules/{id}.
    let mut deleted = casare(
        "### DELETE /schedules/{schedule_id}",
        "**Response** (200 OK):",
    );
    substitute(&mut deleted, SEED_SCHEDULE_ID, &schedule_id);
    let (status, body) = env.call(Method::DELETE, &one, None).await;
    Case::new("DELETE /api/v1/schedules/{schedule_id}", 200, deleted)
        .pins(&["/status", "/message"])
        .check(status, &body);
    let (status, body) = env.get(&one).await;
    Case::new("GET /api/v1/schedules/{deleted}", 404, casare_error()).check(status, &body);
}

/// `0 9 * * 1-5` in UTC (the default time zone): the next run is a weekday at 09:00:00Z.
fn assert_next_run_is_a_weekday_at_nine(schedule: &Value) {
    let next = text(schedule, "/next_run");
    let at = OffsetDateTime::parse(&next, &Rfc3339).unwrap();
    assert!(
        (at.hour(), at.minute(), at.second()) == (9, 0, 0)
            && !matches!(at.weekday(), Weekday::Saturday | Weekday::Sunday)
            && at > OffsetDateTime::now_utc(),
        "next_run {next} is not the next weekday at 09:00 UTC"
    );
}
