//! PyOrchestrator's `POST /api/queue` and `POST /api/trigger`, at the root, with `X-API-Key`:
//! the example requests and responses, the documented defaults, and every status code of the
//! document's table: 200, 201, 400, 401, 403 (a banned address), 404 (an unknown trigger, or
//! one of another type than SINGLE) and 429 (the two documented rate limits).
//!
//! The document shows no error body; errors are checked to be JSON objects with an `error`
//! string (the API's one error shape).

use std::time::{Duration, Instant};

use baton_storage::testing::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use crate::check::Case;
use crate::env::{Env, send, text};
use crate::seeds::Seed;

const QUEUE_SECTION: &str = "Create a new queue item in the system.";
const TRIGGER_SECTION: &str = "Update the process_status";

fn error() -> Value {
    json!({"error": "a short reason"})
}

/// A server and an integrator's API key (operator: it may add items and set trigger states).
async fn start(db: TestDatabase) -> (Env, String) {
    let env = Env::start(db).await;
    let key = env.app.api_key("integration", &["operator"]).await;
    (env, key)
}

/// `POST path` with `body` and the key in `X-API-Key`.
async fn post(env: &Env, key: &str, path: &str, body: &Value) -> (u16, Value) {
    send(
        env.anonymous(Method::POST, path)
            .header("X-API-Key", key)
            .json(body),
    )
    .await
}

pub async fn queue(db: TestDatabase) {
    let (env, key) = start(db).await;

    // The example request, as printed: 201 and the example response.
    let request = Seed::PyOrchestrator.example(QUEUE_SECTION, "Example Request:");
    let (status, body) = post(&env, &key, "/api/queue", &request).await;
    let body = Case::new(
        "POST /api/queue",
        201,
        Seed::PyOrchestrator.example(QUEUE_SECTION, "Response:"),
    )
    .pin("/success")
    .check(status, &body);
    // Stored as documented: `data` stringified, `created_date` as given (no offset: UTC).
    let (status, item) = env
        .get(&format!("/api/v1/queue-items/{}", text(&body, "/id")))
        .await;
    assert_eq!(status, 200, "{item}");
    let stored = json!({
        "queue_name": item["queue_name"], "status": item["status"], "data": item["data"],
        "reference": item["reference"], "created_by": item["created_by"],
        "created_date": item["created_date"], "message": item["message"],
    });
    assert_eq!(
        stored,
        json!({
            "queue_name": "SomeQueue", "status": "NEW",
            "data": "{\"case_id\":\"ABC123\",\"reference_id\":\"XYZ-001\"}",
            "reference": "ExternalRef-456", "created_by": "MySystem",
            "created_date": "2025-04-26T12:00:00Z", "message": "Created from external system",
        })
    );

    // Only the required field: every documented default.
    let (status, body) = post(
        &env,
        &key,
        "/api/queue",
        &json!({"queue_name": "SomeQueue"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, item) = env
        .get(&format!("/api/v1/queue-items/{}", text(&body, "/id")))
        .await;
    assert_eq!(
        (
            &item["status"],
            &item["data"],
            &item["reference"],
            &item["message"],
            &item["created_by"]
        ),
        (
            &json!("NEW"),
            &Value::Null,
            &Value::Null,
            &Value::Null,
            &Value::Null
        ),
        "{item}"
    );
    assert!(item["created_date"].is_string(), "server time: {item}");
    // `data` as a string or an array is accepted too.
    for data in [json!("plain text"), json!([1, 2, 3])] {
        let (status, body) = post(
            &env,
            &key,
            "/api/queue",
            &json!({"queue_name": "SomeQueue", "data": data}),
        )
        .await;
        assert_eq!(status, 201, "data {data}: {body}");
    }

    // 400: every documented limit and rule.
    let long = |n: usize| "x".repeat(n);
    for (what, bad) in [
        ("no queue_name", json!({"status": "NEW"})),
        ("queue_name over 100", json!({"queue_name": long(101)})),
        (
            "an unknown status",
            json!({"queue_name": "q", "status": "PENDING"}),
        ),
        (
            "data over 2000",
            json!({"queue_name": "q", "data": long(2001)}),
        ),
        ("data a number", json!({"queue_name": "q", "data": 5})),
        (
            "reference over 100",
            json!({"queue_name": "q", "reference": long(101)}),
        ),
        (
            "created_by over 100",
            json!({"queue_name": "q", "created_by": long(101)}),
        ),
        (
            "created_date not ISO 8601",
            json!({"queue_name": "q", "created_date": "yesterday"}),
        ),
        ("not an object", json!(["q"])),
    ] {
        let (status, body) = post(&env, &key, "/api/queue", &bad).await;
        Case::new(format!("POST /api/queue ({what})"), 400, error()).check(status, &body);
    }
    let (status, body) = send(
        env.anonymous(Method::POST, "/api/queue")
            .header("X-API-Key", &key)
            .header("Content-Type", "application/json")
            .body("{\"queue_name\": "),
    )
    .await;
    Case::new("POST /api/queue (malformed JSON)", 400, error()).check(status, &body);

    // 401: no key, a wrong key.
    let (status, body) = send(env.anonymous(Method::POST, "/api/queue").json(&request)).await;
    Case::new("POST /api/queue without a key", 401, error()).check(status, &body);
    let (status, body) = post(&env, "not-the-key", "/api/queue", &request).await;
    Case::new("POST /api/queue with a wrong key", 401, error()).check(status, &body);
}

pub async fn trigger(db: TestDatabase) {
    let (env, key) = start(db).await;
    let submitted = env
        .submit(&Seed::Casare.example("### POST /workflows", "**Request Body**:"))
        .await;
    let workflow_id = text(&submitted, "/workflow_id");
    for (name, kind, extra) in [
        (
            "MyAutomationTrigger",
            "SINGLE",
            json!({"process_status": "DONE"}),
        ),
        (
            "NightlyRun",
            "SCHEDULED",
            json!({"cron_expression": "0 3 * * *"}),
        ),
    ] {
        let mut body = json!({"trigger_name": name, "type": kind, "workflow_id": workflow_id});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, created) = env
            .call(Method::POST, "/api/v1/triggers", Some(&body))
            .await;
        assert_eq!(status, 201, "{created}");
    }

    // The example request, as printed.
    let request = Seed::PyOrchestrator.example(TRIGGER_SECTION, "Example Request:");
    let answer = Seed::PyOrchestrator.example(TRIGGER_SECTION, "Response:");
    let (status, body) = post(&env, &key, "/api/trigger", &request).await;
    Case::new("POST /api/trigger", 200, answer.clone())
        .pins(&["/success", "/trigger_name", "/new_status"])
        .check(status, &body);

    // Another status, then the default (`IDLE`) with `process_status` left out.
    let running = json!({"trigger_name": "MyAutomationTrigger", "process_status": "RUNNING"});
    let (status, body) = post(&env, &key, "/api/trigger", &running).await;
    Case::new("POST /api/trigger (RUNNING)", 200, answer.clone())
        .pins(&["/success", "/trigger_name"])
        .pin_to("/new_status", json!("RUNNING"))
        .check(status, &body);
    let default = json!({"trigger_name": "MyAutomationTrigger"});
    let (status, body) = post(&env, &key, "/api/trigger", &default).await;
    Case::new("POST /api/trigger (default status)", 200, answer)
        .pins(&["/success", "/trigger_name", "/new_status"])
        .check(status, &body);

    // 404: no such trigger, or one that is not SINGLE.
    for name in ["NoSuchTrigger", "NightlyRun"] {
        let body = json!({"trigger_name": name, "process_status": "IDLE"});
        let (status, body) = post(&env, &key, "/api/trigger", &body).await;
        Case::new(format!("POST /api/trigger ({name})"), 404, error()).check(status, &body);
    }
    // 400: no name, an unknown status. (Eight requests in all: within ten a minute.)
    for bad in [
        json!({"process_status": "IDLE"}),
        json!({"trigger_name": "MyAutomationTrigger", "process_status": "ASLEEP"}),
    ] {
        let (status, body) = post(&env, &key, "/api/trigger", &bad).await;
        Case::new(format!("POST /api/trigger ({bad})"), 400, error()).check(status, &body);
    }
    // 401 without a key, before anything else is judged.
    let (status, body) = send(env.anonymous(Method::POST, "/api/trigger").json(&request)).await;
    Case::new("POST /api/trigger without a key", 401, error()).check(status, &body);
}

/// 429 once a route's documented limit is spent: 10 a minute on `/api/trigger`, 1000 a minute
/// on `/api/queue` (refused bodies count too: the limit is on requests).
pub async fn rate_limits(db: TestDatabase) {
    let (env, key) = start(db).await;
    let body = json!({"trigger_name": "NoSuchTrigger"});
    for i in 0..10 {
        let (status, answer) = post(&env, &key, "/api/trigger", &body).await;
        assert_eq!(status, 404, "request {i} is within the limit: {answer}");
    }
    let (status, answer) = post(&env, &key, "/api/trigger", &body).await;
    Case::new("POST /api/trigger, the 11th in a minute", 429, error()).check(status, &answer);

    let empty = json!({});
    for i in 0..1000 {
        let (status, answer) = post(&env, &key, "/api/queue", &empty).await;
        assert_eq!(status, 400, "request {i} is within the limit: {answer}");
    }
    let (status, answer) = post(&env, &key, "/api/queue", &empty).await;
    Case::new("POST /api/queue, the 1001st in a minute", 429, error()).check(status, &answer);
}

/// "Brute-force protection with IP banning after 5 failed attempts": five wrong keys are 401,
/// then even the right key is 403 on both routes.
pub async fn bans(db: TestDatabase) {
    let (env, key) = start(db).await;
    let item = json!({"queue_name": "SomeQueue"});
    for i in 0..5 {
        let (status, body) = post(&env, &format!("wrong-key-{i}"), "/api/queue", &item).await;
        Case::new(
            format!("POST /api/queue, wrong key {}", i + 1),
            401,
            error(),
        )
        .check(status, &body);
    }
    // The ban is stored in the database; this server sees it at once or within a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = post(&env, &key, "/api/queue", &item).await;
        if status == 403 || Instant::now() > deadline {
            Case::new("POST /api/queue from a banned address", 403, error()).check(status, &body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = json!({"trigger_name": "MyAutomationTrigger"});
    let (status, body) = post(&env, &key, "/api/trigger", &body).await;
    Case::new("POST /api/trigger from a banned address", 403, error()).check(status, &body);
}
