//! The flows document, every endpoint with its documented status codes, and the four command
//! examples (request and response) replayed as printed.
//!
//! The document shows no body for the configuration endpoints, only what they hold ("a JSON
//! array of all configurations", "a JSON object with the error details"): those are checked as
//! such, with the configurations compared value for value with what was added. The command
//! examples show flows without a job in hand (a soft stop answers `stopped`, not `stopping`),
//! so this server's engine never ticks during the test: a started flow gets no job.

use baton_storage::testing::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use crate::check::Case;
use crate::env::{Env, send, text};
use crate::seeds::Seed;

/// The flows document's "JSON object with the error details": some object (its fields are not
/// documented; Baton's are `error`, `detail` and, for validation, `errors`).
fn error_details() -> Value {
    json!({})
}

pub async fn flows(db: TestDatabase) {
    let env = Env::start_with(db, |c| c.engine_tick_ms = 3_600_000).await;
    let submitted = env
        .submit(&Seed::Casare.example("### POST /workflows", "**Request Body**:"))
        .await;
    let workflow_id = text(&submitted, "/workflow_id");
    let flow1 = json!({"flow_id": "flow1", "workflow_id": workflow_id, "interval_seconds": 60});
    let flow2 = json!({"flow_id": "flow2", "workflow_id": workflow_id, "owner": "ops",
                       "options": {"retries": 2}});

    // POST /flows: a JSON array of configurations → 201; anything else → 400.
    let configs = json!([flow1, flow2]);
    let (status, body) = env
        .call(Method::POST, "/api/v1/flows", Some(&configs))
        .await;
    Case::new("POST /api/v1/flows", 201, json!({})).check(status, &body);
    let (status, body) = env.call(Method::POST, "/api/v1/flows", Some(&flow1)).await;
    Case::new("POST /api/v1/flows (not an array)", 400, error_details()).check(status, &body);
    let broken = json!([{"flow_id": "flow3"}]);
    let (status, body) = env.call(Method::POST, "/api/v1/flows", Some(&broken)).await;
    Case::new("POST /api/v1/flows (no workflow_id)", 400, error_details()).check(status, &body);

    // GET /flows and GET /flows/<flow_id>: the configurations as added; 404 for an unknown id.
    let (status, body) = env.get("/api/v1/flows").await;
    Case::new("GET /api/v1/flows", 200, configs.clone())
        .pin_to("", configs.clone())
        .check(status, &body);
    let (status, body) = env.get("/api/v1/flows/flow2").await;
    Case::new("GET /api/v1/flows/<flow_id>", 200, flow2.clone())
        .pin_to("", flow2.clone())
        .check(status, &body);
    let (status, body) = env.get("/api/v1/flows/nope").await;
    Case::new("GET /api/v1/flows/<unknown>", 404, error_details()).check(status, &body);

    // PUT /flows/<flow_id>: 200 and the new configuration; 400 for bad input or an unknown id.
    let updated = json!({"flow_id": "flow2", "workflow_id": workflow_id, "owner": "night shift"});
    let (status, body) = env
        .call(Method::PUT, "/api/v1/flows/flow2", Some(&updated))
        .await;
    Case::new("PUT /api/v1/flows/<flow_id>", 200, json!({})).check(status, &body);
    let (status, body) = env.get("/api/v1/flows/flow2").await;
    Case::new(
        "GET /api/v1/flows/<flow_id> after PUT",
        200,
        updated.clone(),
    )
    .pin_to("", updated)
    .check(status, &body);
    let (status, body) = env
        .call(
            Method::PUT,
            "/api/v1/flows/flow2",
            Some(&json!(["not", "an object"])),
        )
        .await;
    Case::new(
        "PUT /api/v1/flows/<flow_id> (invalid)",
        400,
        error_details(),
    )
    .check(status, &body);
    let (status, body) = env
        .call(Method::PUT, "/api/v1/flows/nope", Some(&flow1))
        .await;
    Case::new("PUT /api/v1/flows/<unknown>", 400, error_details()).check(status, &body);

    // GET /flows/status and /flows/status/<flow_id> (shapes of docs/flows.md).
    let stopped = json!({"status": "stopped", "current_job_id": null});
    let (status, body) = env.get("/api/v1/flows/status").await;
    Case::new(
        "GET /api/v1/flows/status",
        200,
        json!({"flow1": stopped, "flow2": stopped}),
    )
    .pins(&["/flow1/status", "/flow1/current_job_id", "/flow2/status"])
    .check(status, &body);
    let one = json!({"flow_id": "flow1", "status": "stopped", "current_job_id": null});
    let (status, body) = env.get("/api/v1/flows/status/flow1").await;
    Case::new("GET /api/v1/flows/status/<flow_id>", 200, one)
        .pins(&["/flow_id", "/status"])
        .check(status, &body);
    let (status, body) = env.get("/api/v1/flows/status/nope").await;
    Case::new("GET /api/v1/flows/status/<unknown>", 404, error_details()).check(status, &body);

    commands(&env).await;

    // DELETE /flows/<flow_id>: 200; 400 when the flow does not exist.
    let (status, body) = env.call(Method::DELETE, "/api/v1/flows/flow1", None).await;
    Case::new("DELETE /api/v1/flows/<flow_id>", 200, json!({})).check(status, &body);
    let (status, body) = env.call(Method::DELETE, "/api/v1/flows/flow1", None).await;
    Case::new("DELETE /api/v1/flows/<deleted>", 400, error_details()).check(status, &body);
    let (status, body) = env.get("/api/v1/flows/flow1").await;
    Case::new("GET /api/v1/flows/<deleted>", 404, error_details()).check(status, &body);
}

/// PATCH /flows/commands: the four examples, in an order each is legal in (start, pause,
/// resume, stop), every value of each answer pinned; the hard stop (`type: 1`); and the
/// documented 400s.
async fn commands(env: &Env) {
    for section in ["Start Flows", "Pause Flows", "Resume Flows", "Stop Flows"] {
        let request = Seed::Flows.bare_example(section, 0);
        let answer = Seed::Flows.bare_example(section, 1);
        let (status, body) = env
            .call(Method::PATCH, "/api/v1/flows/commands", Some(&request))
            .await;
        Case::new(
            format!("PATCH /api/v1/flows/commands ({section})"),
            200,
            answer.clone(),
        )
        .pin_to("", answer)
        .check(status, &body);
    }

    let start = Seed::Flows.bare_example("Start Flows", 0);
    let (status, _) = env
        .call(Method::PATCH, "/api/v1/flows/commands", Some(&start))
        .await;
    assert_eq!(status, 200);
    let hard = json!({"command": "stop", "flow_ids": ["flow1", "flow2"], "type": 1});
    let answer = Seed::Flows.bare_example("Stop Flows", 1);
    let (status, body) = env
        .call(Method::PATCH, "/api/v1/flows/commands", Some(&hard))
        .await;
    Case::new(
        "PATCH /api/v1/flows/commands (hard stop)",
        200,
        answer.clone(),
    )
    .pin_to("", answer)
    .check(status, &body);

    for (what, bad) in [
        (
            "an unknown command",
            json!({"command": "restart", "flow_ids": ["flow1"]}),
        ),
        ("no command", json!({"flow_ids": ["flow1"]})),
        (
            "flow_ids not an array",
            json!({"command": "start", "flow_ids": "flow1"}),
        ),
        (
            "an unknown flow",
            json!({"command": "start", "flow_ids": ["nope"]}),
        ),
        (
            "a bad stop type",
            json!({"command": "stop", "flow_ids": ["flow1"], "type": "hard"}),
        ),
    ] {
        let (status, body) = env
            .call(Method::PATCH, "/api/v1/flows/commands", Some(&bad))
            .await;
        Case::new(
            format!("PATCH /api/v1/flows/commands ({what})"),
            400,
            error_details(),
        )
        .check(status, &body);
    }
    let (status, body) = send(
        env.request(Method::PATCH, "/api/v1/flows/commands")
            .header("Content-Type", "application/json")
            .body("{\"command\": "),
    )
    .await;
    Case::new(
        "PATCH /api/v1/flows/commands (malformed JSON)",
        400,
        error_details(),
    )
    .check(status, &body);
}
