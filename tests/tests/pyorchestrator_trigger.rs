//! PyOrchestrator's `POST /api/trigger` (tests/fixtures/seeds/pyorchestrator-api.txt) as a
//! client that knows only the seed sees it: the seed example answered field for field and
//! stored, the IDLE default, every accepted status in any case, 404 for unknown and non-SINGLE
//! triggers, 400 naming the field for wrong types and bad values and for bodies that are not
//! JSON objects (never a 500), the API key, and the 10/minute rate limit. A refused request
//! must write nothing, which each flow checks by reading the trigger back.
//!
//! Every flow runs on SQLite and on PostgreSQL. Each server bans an address after five failed
//! authentications, so no flow presents more than four wrong credentials; the route allows ten
//! calls a minute per client, so flows that need more turn rate limits off.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_domain::ids::WorkflowId;
use baton_domain::ports::WorkflowRepository;
use baton_domain::workflow::{Workflow, WorkflowGraph, WorkflowName};
use baton_domain::{Clock, IdGenerator, SystemClock, UuidV7Generator};
use baton_storage::testing::TestDatabase;
use baton_tests::{TestApp, json};
use serde_json::{Value, json};

/// Runs each named `async fn(TestDatabase)` on a fresh SQLite and a fresh PostgreSQL database,
/// as the tests `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_databases {
    ($($flow:ident),* $(,)?) => {$(
        mod $flow {
            use super::*;

            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$flow(TestDatabase::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$flow(TestDatabase::postgres().await).await;
            }
        }
    )*};
}

on_both_databases!(
    the_seed_example_is_answered_and_stored_field_for_field,
    every_status_is_accepted_in_any_case_and_idle_is_the_default,
    unknown_and_non_single_triggers_are_404s_that_write_nothing,
    wrong_types_bad_values_and_malformed_bodies_are_400s_that_write_nothing,
    the_api_key_is_required_and_checked,
    the_eleventh_call_within_a_minute_is_429,
);

/// The seed's example request, verbatim.
fn seed_example() -> Value {
    json!({
        "trigger_name": "MyAutomationTrigger",
        "process_status": "IDLE"
    })
}

/// A server, an admin token to arrange triggers with, and an integrator's API key (operator
/// role), as the seed's clients hold one.
struct Client {
    app: TestApp,
    admin: String,
    key: String,
}

struct Reply {
    status: u16,
    body: Value,
    headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The fields named by a 400's `errors` list, asserting the status and the error shape.
    fn error_fields(&self) -> Vec<String> {
        self.expect_error(400);
        self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no `errors` list in {}", self.body))
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    }

    fn expect_error(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body["error"].is_string(), "{}", self.body);
        assert!(self.body["detail"].is_string(), "{}", self.body);
    }

    fn header(&self, name: &str) -> Option<u64> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().parse().unwrap())
    }
}

impl Client {
    /// Rate limits stay on (the seed's 10/minute) unless `limits` is false.
    async fn spawn(db: TestDatabase, limits: bool) -> Self {
        let app = TestApp::spawn_with(db, |c| c.rate_limits = limits).await;
        let admin = app.admin_token().await;
        let key = app.api_key("integration", &["operator"]).await;
        Client { app, admin, key }
    }

    /// Sends `body` as it is (not necessarily JSON) to `POST /api/trigger` with `key`, if any.
    async fn post_raw(&self, body: &str, key: Option<&str>) -> Reply {
        let mut request = self
            .app
            .client
            .post(self.app.url("/api/trigger"))
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        let response = request.send().await.unwrap();
        let headers = response.headers().clone();
        let (status, body) = json(response).await;
        Reply {
            status,
            body,
            headers,
        }
    }

    async fn post(&self, body: &Value) -> Reply {
        self.post_raw(&body.to_string(), Some(&self.key)).await
    }

    async fn workflow(&self) -> WorkflowId {
        let db = self.app.database().connect().await;
        let id = WorkflowId::from_uuid(UuidV7Generator.new_uuid());
        let graph =
            WorkflowGraph::parse(json!({"nodes": [{"id": "start", "type": "StartNode"}]})).unwrap();
        let workflow = Workflow::new(
            id,
            WorkflowName::parse("Automation").unwrap(),
            None,
            graph,
            serde_json::Map::new(),
            SystemClock.now(),
        )
        .unwrap();
        db.insert_workflow(&workflow, &[]).await.unwrap();
        id
    }

    /// Creates a trigger through `/api/v1/triggers`. Disabled, so the engine leaves its status
    /// alone and every value read back is the one the request stored.
    async fn create_trigger(&self, workflow: WorkflowId, body: Value) -> Value {
        let mut body = body;
        let fields = body.as_object_mut().unwrap();
        fields.insert("workflow_id".into(), json!(workflow.to_string()));
        fields.entry("enabled").or_insert(json!(false));
        let (status, trigger) = json(
            self.app
                .client
                .post(self.app.url("/api/v1/triggers"))
                .bearer_auth(&self.admin)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{trigger}");
        trigger
    }

    async fn single(&self, workflow: WorkflowId, name: &str, status: &str) -> Value {
        self.create_trigger(
            workflow,
            json!({"trigger_name": name, "type": "SINGLE", "process_status": status}),
        )
        .await
    }

    async fn read_back(&self, trigger: &Value) -> Value {
        let (status, stored) = json(
            self.app
                .client
                .get(self.app.url(&format!(
                    "/api/v1/triggers/{}",
                    trigger["id"].as_str().unwrap()
                )))
                .bearer_auth(&self.admin)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{stored}");
        stored
    }
}

async fn the_seed_example_is_answered_and_stored_field_for_field(db: TestDatabase) {
    // The seed's own limits are on: this flow stays within ten calls.
    let client = Client::spawn(db, true).await;
    let workflow = client.workflow().await;
    let trigger = client.single(workflow, "MyAutomationTrigger", "DONE").await;

    let reply = client.post(&seed_example()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "success": true,
            "trigger_name": "MyAutomationTrigger",
            "new_status": "IDLE"
        })
    );
    assert_eq!(reply.header("x-ratelimit-limit"), Some(10));
    let stored = client.read_back(&trigger).await;
    assert_eq!(stored["process_status"], "IDLE");
    assert_ne!(stored["updated_at"], trigger["updated_at"]);
    for unchanged in [
        "trigger_name",
        "type",
        "workflow_id",
        "enabled",
        "priority",
        "run_count",
    ] {
        assert_eq!(stored[unchanged], trigger[unchanged], "{unchanged}");
    }

    // The API key may also come as a bearer token (docs/security.md).
    let response = client
        .app
        .client
        .post(client.app.url("/api/trigger"))
        .bearer_auth(&client.key)
        .json(&json!({"trigger_name": "MyAutomationTrigger", "process_status": "RUNNING"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["new_status"], "RUNNING");
    assert_eq!(
        client.read_back(&trigger).await["process_status"],
        "RUNNING"
    );
}

async fn every_status_is_accepted_in_any_case_and_idle_is_the_default(db: TestDatabase) {
    let client = Client::spawn(db, false).await;
    let workflow = client.workflow().await;
    let trigger = client.single(workflow, "Nightly", "FAILED").await;
    for (sent, stored) in [
        ("RUNNING", "RUNNING"),
        ("failed", "FAILED"),
        ("Done", "DONE"),
        ("PAUSED", "PAUSED"),
        ("pausing", "PAUSING"),
        ("KILLING", "KILLING"),
        ("killed", "KILLED"),
        ("idle", "IDLE"),
    ] {
        let reply = client
            .post(&json!({"trigger_name": "Nightly", "process_status": sent}))
            .await;
        assert_eq!(reply.status, 200, "{sent}: {}", reply.body);
        assert_eq!(reply.body["new_status"], stored);
        assert_eq!(client.read_back(&trigger).await["process_status"], stored);
    }
    for body in [
        json!({"trigger_name": "Nightly"}),
        json!({"trigger_name": "Nightly", "process_status": null}),
    ] {
        client
            .post(&json!({"trigger_name": "Nightly", "process_status": "DONE"}))
            .await;
        let reply = client.post(&body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.body,
            json!({"success": true, "trigger_name": "Nightly", "new_status": "IDLE"})
        );
        assert_eq!(client.read_back(&trigger).await["process_status"], "IDLE");
    }
    // Fields the seed does not name are ignored.
    let reply = client
        .post(&json!({"trigger_name": "Nightly", "process_status": "DONE", "note": 1}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn unknown_and_non_single_triggers_are_404s_that_write_nothing(db: TestDatabase) {
    let client = Client::spawn(db, false).await;
    let workflow = client.workflow().await;
    let scheduled = client
        .create_trigger(
            workflow,
            json!({"trigger_name": "Hourly", "type": "SCHEDULED", "cron_expression": "0 * * * *"}),
        )
        .await;
    let queue = client
        .create_trigger(
            workflow,
            json!({"trigger_name": "Batches", "type": "QUEUE", "queue_name": "invoices"}),
        )
        .await;
    for name in ["NoSuchTrigger", "Hourly", "Batches", "hourly"] {
        let reply = client
            .post(&json!({"trigger_name": name, "process_status": "PAUSED"}))
            .await;
        reply.expect_error(404);
        assert!(
            reply.body["detail"].as_str().unwrap().contains(name),
            "{}",
            reply.body
        );
    }
    assert_eq!(client.read_back(&scheduled).await, scheduled);
    assert_eq!(client.read_back(&queue).await, queue);
    // Names are exact: another letter case names another trigger.
    client.single(workflow, "CaseSensitive", "DONE").await;
    client
        .post(&json!({"trigger_name": "casesensitive"}))
        .await
        .expect_error(404);
}

async fn wrong_types_bad_values_and_malformed_bodies_are_400s_that_write_nothing(db: TestDatabase) {
    let client = Client::spawn(db, false).await;
    let workflow = client.workflow().await;
    let trigger = client.single(workflow, "MyAutomationTrigger", "DONE").await;

    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"trigger_name": 5}), vec!["trigger_name"]),
        (json!({"trigger_name": true}), vec!["trigger_name"]),
        (
            json!({"trigger_name": ["MyAutomationTrigger"]}),
            vec!["trigger_name"],
        ),
        (
            json!({"trigger_name": {"name": "MyAutomationTrigger"}}),
            vec!["trigger_name"],
        ),
        (
            json!({"trigger_name": "MyAutomationTrigger", "process_status": 1}),
            vec!["process_status"],
        ),
        (
            json!({"trigger_name": "MyAutomationTrigger", "process_status": ["IDLE"]}),
            vec!["process_status"],
        ),
        (
            json!({"trigger_name": "MyAutomationTrigger", "process_status": false}),
            vec!["process_status"],
        ),
        (
            json!({"trigger_name": "MyAutomationTrigger", "process_status": "SLEEPING"}),
            vec!["process_status"],
        ),
        (
            json!({"trigger_name": "MyAutomationTrigger", "process_status": ""}),
            vec!["process_status"],
        ),
        (
            json!({"trigger_name": "MyAutomationTrigger", "process_status": " IDLE"}),
            vec!["process_status"],
        ),
        (json!({}), vec!["trigger_name"]),
        (json!({"process_status": "IDLE"}), vec!["trigger_name"]),
        (json!({"trigger_name": null}), vec!["trigger_name"]),
        (json!({"trigger_name": ""}), vec!["trigger_name"]),
        (
            json!({"trigger_name": "x".repeat(101)}),
            vec!["trigger_name"],
        ),
        (
            json!({"trigger_name": 5, "process_status": "SLEEPING"}),
            vec!["trigger_name", "process_status"],
        ),
    ];
    for (body, expected) in cases {
        let reply = client.post(&body).await;
        assert_eq!(reply.error_fields(), expected, "{body}");
    }
    for body in [
        "",
        "{",
        "{\"trigger_name\": \"MyAutomationTrigger\",}",
        "not json",
        "[]",
        "[{\"trigger_name\": \"MyAutomationTrigger\"}]",
        "\"MyAutomationTrigger\"",
        "42",
        "null",
        "true",
    ] {
        let reply = client.post_raw(body, Some(&client.key)).await;
        reply.expect_error(400);
    }
    assert_eq!(
        client.read_back(&trigger).await,
        trigger,
        "a refused request writes nothing"
    );
}

async fn the_api_key_is_required_and_checked(db: TestDatabase) {
    let client = Client::spawn(db, false).await;
    let workflow = client.workflow().await;
    let trigger = client.single(workflow, "MyAutomationTrigger", "DONE").await;
    let body = seed_example().to_string();

    let reply = client.post_raw(&body, None).await;
    reply.expect_error(401);
    // Two wrong keys: below the ban threshold of five.
    for key in [
        "your-secret-key",
        "bk_0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        client.post_raw(&body, Some(key)).await.expect_error(401);
    }
    // A viewer's key authenticates but may not change a trigger.
    let viewer = client.app.api_key("dashboard", &["viewer"]).await;
    client
        .post_raw(&body, Some(&viewer))
        .await
        .expect_error(403);
    // Authentication comes before the body is judged.
    client.post_raw("{", None).await.expect_error(401);
    assert_eq!(client.read_back(&trigger).await["process_status"], "DONE");

    let reply = client.post_raw(&body, Some(&client.key)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(client.read_back(&trigger).await["process_status"], "IDLE");
}

async fn the_eleventh_call_within_a_minute_is_429(db: TestDatabase) {
    let client = Client::spawn(db, true).await;
    let workflow = client.workflow().await;
    client.single(workflow, "MyAutomationTrigger", "DONE").await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    for call in 1..=10u64 {
        let reply = client.post(&seed_example()).await;
        assert_eq!(reply.status, 200, "call {call}: {}", reply.body);
        assert_eq!(reply.header("x-ratelimit-limit"), Some(10));
        assert_eq!(reply.header("x-ratelimit-remaining"), Some(10 - call));
        let reset = reply.header("x-ratelimit-reset").unwrap();
        assert!((now..=now + 61).contains(&reset), "{reset}");
    }
    let reply = client.post(&seed_example()).await;
    reply.expect_error(429);
    assert_eq!(reply.header("x-ratelimit-limit"), Some(10));
    assert_eq!(reply.header("x-ratelimit-remaining"), Some(0));
    assert!(reply.header("x-ratelimit-reset").is_some());
    let retry_after = reply.body["retry_after"].as_u64().unwrap();
    assert!((1..=60).contains(&retry_after), "{}", reply.body);
    assert_eq!(reply.header("retry-after"), Some(retry_after));
    // The limit is the route's: the triggers API keeps its own budget.
    let response = client
        .app
        .client
        .get(client.app.url("/api/v1/triggers"))
        .bearer_auth(&client.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
