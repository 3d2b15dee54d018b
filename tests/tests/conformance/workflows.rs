//! CasareRPA's workflow endpoints: submit (manual, scheduled, webhook, and the curl example),
//! upload, get, delete; the list is ActiveWorkflow's (see `activeworkflow.rs`).

use baton_storage::testing::TestDatabase;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::auth::casare_error;
use crate::check::Case;
use crate::env::{Env, send, text};
use crate::seeds::{Seed, set, substitute};

/// The seed's placeholder workflow id.
const SEED_WORKFLOW_ID: &str = "550e8400-e29b-41d4-a716-446655440000";

fn casare(section: &str, label: &str) -> Value {
    Seed::Casare.example(section, label)
}

fn submit_answer() -> Value {
    casare("### POST /workflows", "**Response** (200 OK):")
}

pub async fn workflows(db: TestDatabase) {
    let env = Env::start(db).await;

    // A manual submission, the request body as printed.
    let request = casare("### POST /workflows", "**Request Body**:");
    let (status, submitted) = env
        .call(Method::POST, "/api/v1/workflows", Some(&request))
        .await;
    let submitted = Case::new("POST /api/v1/workflows (manual)", 200, submit_answer())
        .pins(&["/schedule_id", "/status", "/message"])
        .check(status, &submitted);
    let workflow_id = text(&submitted, "/workflow_id");

    // The curl example: only name, graph, trigger type and priority; `lan` by default.
    let curl = casare("### POST /workflows", "**curl Example**:");
    let (status, body) = env
        .call(Method::POST, "/api/v1/workflows", Some(&curl))
        .await;
    let body = Case::new(
        "POST /api/v1/workflows (curl example)",
        200,
        submit_answer(),
    )
    .pins(&["/schedule_id", "/status", "/message"])
    .check(status, &body);
    assert_job_priority(&env, &body, 5).await;

    // `trigger_type: scheduled` with `schedule_cron`: a schedule instead of a job.
    let mut scheduled = request.clone();
    set(&mut scheduled, "/trigger_type", json!("scheduled"));
    set(&mut scheduled, "/schedule_cron", json!("0 9 * * 1-5"));
    let mut answer = submit_answer();
    set(&mut answer, "/job_id", Value::Null);
    set(&mut answer, "/schedule_id", json!("schedule-uuid"));
    let (status, body) = env
        .call(Method::POST, "/api/v1/workflows", Some(&scheduled))
        .await;
    let body = Case::new("POST /api/v1/workflows (scheduled)", 200, answer)
        .pins(&["/job_id", "/status"])
        .check(status, &body);
    let schedule_id = text(&body, "/schedule_id");
    let (status, schedule) = env.get(&format!("/api/v1/schedules/{schedule_id}")).await;
    assert_eq!(status, 200, "the submission's schedule exists: {schedule}");
    assert_eq!(schedule["cron_expression"], "0 9 * * 1-5");

    // `trigger_type: webhook`: neither a job nor a schedule yet.
    let mut webhook = request.clone();
    set(&mut webhook, "/trigger_type", json!("webhook"));
    let mut answer = submit_answer();
    set(&mut answer, "/job_id", Value::Null);
    let (status, body) = env
        .call(Method::POST, "/api/v1/workflows", Some(&webhook))
        .await;
    Case::new("POST /api/v1/workflows (webhook)", 200, answer)
        .pins(&["/job_id", "/schedule_id", "/status"])
        .check(status, &body);

    // The upload, as the curl example sends it: the file, `trigger_type=manual`, `priority=5`.
    let file = serde_json::to_vec(&request["workflow_json"]).unwrap();
    let form = Form::new()
        .part(
            "file",
            Part::bytes(file)
                .file_name("my_workflow.json")
                .mime_str("application/json")
                .unwrap(),
        )
        .text("trigger_type", "manual")
        .text("priority", "5");
    let (status, body) = send(
        env.request(Method::POST, "/api/v1/workflows/upload")
            .multipart(form),
    )
    .await;
    let body = Case::new("POST /api/v1/workflows/upload", 200, submit_answer())
        .pins(&["/schedule_id", "/status", "/message"])
        .check(status, &body);
    assert_job_priority(&env, &body, 5).await;

    // GET /workflows/{id}: the submitted workflow. Its `description` is the one the request's
    // metadata carries ("Example workflow" in both examples), its graph the one submitted.
    let mut detail = casare("### GET /workflows/{workflow_id}", "**Response** (200 OK):");
    substitute(&mut detail, SEED_WORKFLOW_ID, &workflow_id);
    let (status, body) = env.get(&format!("/api/v1/workflows/{workflow_id}")).await;
    Case::new("GET /api/v1/workflows/{workflow_id}", 200, detail)
        .pins(&["/workflow_id", "/workflow_name", "/version", "/description"])
        .pin_to("/workflow_json", request["workflow_json"].clone())
        .check(status, &body);

    // Its documented error: 404 for a workflow that does not exist.
    let unknown = "/api/v1/workflows/00000000-0000-4000-8000-000000000000";
    let (status, body) = env.get(unknown).await;
    Case::new("GET /api/v1/workflows/{unknown}", 404, casare_error()).check(status, &body);

    limits(&env, &request).await;

    // DELETE /workflows/{id}: the message names the id; the workflow is gone.
    let mut deleted = casare(
        "### DELETE /workflows/{workflow_id}",
        "**Response** (200 OK):",
    );
    substitute(&mut deleted, SEED_WORKFLOW_ID, &workflow_id);
    let path = format!("/api/v1/workflows/{workflow_id}");
    let (status, body) = env.call(Method::DELETE, &path, None).await;
    Case::new("DELETE /api/v1/workflows/{workflow_id}", 200, deleted)
        .pins(&["/status", "/message"])
        .check(status, &body);
    let (status, body) = env.get(&path).await;
    Case::new("GET /api/v1/workflows/{deleted}", 404, casare_error()).check(status, &body);
}

/// The submission's job carries the requested priority (and the default `lan` mode).
async fn assert_job_priority(env: &Env, submitted: &Value, priority: i64) {
    let job_id = text(submitted, "/job_id");
    let (status, job) = env.get(&format!("/api/v1/metrics/jobs/{job_id}")).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(
        (&job["priority"], &job["execution_mode"]),
        (&json!(priority), &json!("lan")),
        "{job}"
    );
}

/// The "Security Limits" of `POST /workflows` (10 MB, 1000 nodes), the upload's `.json` rule,
/// and the 403 of a role without the permission, each in the document's error format.
async fn limits(env: &Env, request: &Value) {
    let error = casare_error();
    let mut too_large = request.clone();
    set(
        &mut too_large,
        "/metadata",
        json!({"padding": "x".repeat(10 * 1024 * 1024)}),
    );
    let (status, body) = env
        .call(Method::POST, "/api/v1/workflows", Some(&too_large))
        .await;
    Case::new("POST /api/v1/workflows (over 10 MB)", 413, error.clone()).check(status, &body);

    let nodes: Vec<Value> = (0..1001)
        .map(|i| json!({"id": format!("n{i}"), "type": "Log"}))
        .collect();
    let mut too_many = request.clone();
    set(
        &mut too_many,
        "/workflow_json",
        json!({"nodes": nodes, "connections": []}),
    );
    let (status, body) = env
        .call(Method::POST, "/api/v1/workflows", Some(&too_many))
        .await;
    Case::new("POST /api/v1/workflows (1001 nodes)", 400, error.clone()).check(status, &body);

    let form = Form::new().part(
        "file",
        Part::bytes(b"{}".to_vec()).file_name("my_workflow.txt"),
    );
    let (status, body) = send(
        env.request(Method::POST, "/api/v1/workflows/upload")
            .multipart(form),
    )
    .await;
    Case::new(
        "POST /api/v1/workflows/upload (not .json)",
        400,
        error.clone(),
    )
    .check(status, &body);

    let viewer = env.app.user_token("dashboard-viewer", &["viewer"]).await;
    let (status, body) = send(
        env.anonymous(Method::POST, "/api/v1/workflows")
            .bearer_auth(&viewer)
            .json(request),
    )
    .await;
    Case::new("POST /api/v1/workflows (a viewer)", 403, error).check(status, &body);
}
