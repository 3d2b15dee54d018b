//! ActiveWorkflow's API: agents, an agent, its messages (with the document's `limit` and
//! `after`), a message, the workflows and a workflow, and the documented errors (401, 404).
//!
//! The scenario is the examples' own: a workflow "My Workflow" ("This workflow does stuff.") whose
//! agent "Rerieve" (`Agents::WebsiteAgent`) feeds "Email" (`Agents::EmailAgent`), after a run in
//! which Rerieve emitted two messages with the example's payload and Email none. So the names,
//! types, flags, counts and sources of the examples are values the requests determine, and they are
//! pinned. Ids are UUID strings (as all of Baton's are), not the examples' integers: see
//! [`ids_as_uuid_strings`].

use baton_storage::testing::TestDatabase;
use reqwest::Method;
use serde_json::{Value, json};

use crate::check::Case;
use crate::env::{Env, send, text};
use crate::seeds::{Seed, ids_as_uuid_strings};

/// An ActiveWorkflow example with its ids turned into strings.
fn example(section: &str) -> Value {
    let mut value = Seed::ActiveWorkflow.example(section, "Example:");
    ids_as_uuid_strings(&mut value);
    value
}

/// The pointers of an agent's fields the scenario determines, under `prefix`.
fn agent_pins(case: Case, prefix: &str) -> Case {
    ["name", "type", "disabled", "messages_count"]
        .iter()
        .fold(case, |case, field| case.pin(&format!("{prefix}/{field}")))
}

pub async fn activeworkflow(db: TestDatabase) {
    let env = Env::start(db).await;
    let submitted = env
        .submit(&json!({
            "workflow_name": "My Workflow",
            "description": "This workflow does stuff.",
            "workflow_json": {
                "nodes": [
                    {"id": "retrieve", "type": "Agents::WebsiteAgent", "name": "Rerieve"},
                    {"id": "email", "type": "Agents::EmailAgent", "name": "Email"}
                ],
                "connections": [{"from": "retrieve", "to": "email"}]
            }
        }))
        .await;
    let workflow_id = text(&submitted, "/workflow_id");
    let job_id = text(&submitted, "/job_id");
    let payload =
        Seed::ActiveWorkflow.example("GET /api/v1/messages/:message_id", "Example:")["payload"]
            .clone();
    let robot = env.robot("robot-aw", "aw-host").await;
    env.claim_and_start(&robot, &job_id).await;
    env.node_done(&robot, &job_id, "retrieve", 10, json!([payload, payload]))
        .await;
    env.node_done(&robot, &job_id, "email", 10, json!([])).await;
    env.robot_call(&robot, &format!("jobs/{job_id}/complete"), json!({}))
        .await;

    // GET /api/v1/agents.
    let (status, agents) = env.get("/api/v1/agents").await;
    let case = Case::new("GET /api/v1/agents", 200, example("GET /api/v1/agents"));
    let agents = agent_pins(agent_pins(case, "/0"), "/1")
        .pin("/0/sources")
        .check(status, &agents);
    let retrieve = text(&agents, "/0/id");
    assert_eq!(agents.as_array().map(Vec::len), Some(2), "{agents}");
    assert_eq!(agents[1]["sources"], json!([{"id": retrieve}]));

    // GET /api/v1/agents/:agent_id.
    let (status, agent) = env.get(&format!("/api/v1/agents/{retrieve}")).await;
    let case = Case::new(
        "GET /api/v1/agents/:agent_id",
        200,
        example("GET /api/v1/agents/:agent_id"),
    );
    agent_pins(case, "")
        .pin("/sources")
        .pin_to("/id", json!(retrieve))
        .check(status, &agent);

    // GET /api/v1/agents/:agent_id/messages?limit=1&after=…, the document's query as printed.
    let path =
        format!("/api/v1/agents/{retrieve}/messages?limit=1&after=2019-10-20T01:10:10.256-8:00");
    let (status, messages) = env.get(&path).await;
    let messages = Case::new(
        "GET /api/v1/agents/:agent_id/messages",
        200,
        example("GET /api/v1/agents/:agent_id/messages"),
    )
    .pin_to("/0/agent_id", json!(retrieve))
    .check(status, &messages);
    assert_eq!(
        messages.as_array().map(Vec::len),
        Some(1),
        "limit=1: {messages}"
    );
    let (status, all) = env
        .get(&format!("/api/v1/agents/{retrieve}/messages"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(2),
        "all by default: {all}"
    );

    // GET /api/v1/messages/:message_id, with the payload.
    let message_id = text(&messages, "/0/id");
    let (status, message) = env.get(&format!("/api/v1/messages/{message_id}")).await;
    Case::new(
        "GET /api/v1/messages/:message_id",
        200,
        example("GET /api/v1/messages/:message_id"),
    )
    .pin_to("/id", json!(message_id))
    .pin_to("/agent_id", json!(retrieve))
    .pin("/payload")
    .check(status, &message);

    // GET /api/v1/workflows.
    let (status, workflows) = env.get("/api/v1/workflows").await;
    Case::new(
        "GET /api/v1/workflows",
        200,
        example("GET /api/v1/workflows"),
    )
    .pin_to("/0/id", json!(workflow_id))
    .pins(&["/0/name", "/0/description"])
    .check(status, &workflows);

    // GET /workflows/:workflow_id (served under /api/v1, as the example's own path says).
    let (status, workflow) = env.get(&format!("/api/v1/workflows/{workflow_id}")).await;
    let case = Case::new(
        "GET /api/v1/workflows/:workflow_id",
        200,
        example("GET /workflows/:workflow_id"),
    )
    .pin_to("/id", json!(workflow_id))
    .pins(&["/name", "/description", "/agents/0/sources"]);
    agent_pins(agent_pins(case, "/agents/0"), "/agents/1")
        .pin_to("/agents/1/sources", json!([{"id": retrieve}]))
        .check(status, &workflow);

    errors(&env).await;
}

/// The "Errors" section: 401 without a valid token, 404 for an unknown agent, workflow or
/// message, each with an `error` string.
async fn errors(env: &Env) {
    let error = Seed::ActiveWorkflow.example("Errors", "For example:");
    let (status, body) = send(env.anonymous(Method::GET, "/api/v1/agents")).await;
    Case::new("GET /api/v1/agents without a token", 401, error.clone()).check(status, &body);
    let (status, body) = send(
        env.anonymous(Method::GET, "/api/v1/workflows")
            .bearer_auth("not-a-token"),
    )
    .await;
    Case::new("GET /api/v1/workflows with a bad token", 401, error.clone()).check(status, &body);

    let unknown = "00000000-0000-4000-8000-000000000000";
    for path in [
        format!("/api/v1/agents/{unknown}"),
        format!("/api/v1/agents/{unknown}/messages"),
        format!("/api/v1/messages/{unknown}"),
        format!("/api/v1/workflows/{unknown}"),
        "/api/v1/agents/1".to_owned(),
    ] {
        let (status, body) = env.get(&path).await;
        Case::new(format!("GET {path}"), 404, error.clone()).check(status, &body);
    }
}
