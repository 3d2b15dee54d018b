//! Workflows over HTTP against the real server (docs/workflows.md): CasareRPA's submit with each
//! trigger type, its upload, get and delete; ActiveWorkflow's list; every limit and rule of a
//! submission, refused by field; the webhook that starts a job; the permission matrix; and the
//! file backups of `WORKFLOW_BACKUP_ENABLED`.
//!
//! Every flow runs on SQLite and on PostgreSQL. What the API does not show (a job's origin and
//! input, a schedule's trigger) is read back through the storage ports of the same database.
//! No flow presents a wrong credential, so none comes near the ban threshold.

// A test crate: a panic is a failed assertion with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use baton_domain::RepoError;
use baton_domain::ids::{JobId, TriggerId, WorkflowId};
use baton_domain::job::{JobOrigin, JobStatus};
use baton_domain::ports::{JobFilter, JobRepository, TriggerRepository};
use baton_domain::trigger::TriggerKind;
use baton_storage::Db;
use baton_storage::testing::TestDatabase;
use baton_tests::{TestApp, json};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// Runs each named `async fn(TestDatabase)` on a fresh SQLite and a fresh PostgreSQL database.
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
    the_seed_example_is_submitted_read_back_and_deleted,
    every_limit_and_rule_is_refused_by_field,
    wrong_types_and_malformed_bodies_are_400,
    scheduled_workflows_get_a_schedule_and_no_job,
    a_webhook_starts_a_job_per_call_until_its_workflow_is_deleted,
    uploads_read_the_workflow_from_the_file_and_the_form,
    the_permission_matrix_applies,
);

/// A test server, an admin token, and its database for reading back what the API hides.
struct Api {
    app: TestApp,
    token: String,
    db: Db,
}

/// A response's status and JSON body, with the request for assertion messages.
struct Reply {
    request: String,
    status: u16,
    body: Value,
}

impl Reply {
    fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {} {}",
            self.request, self.status, self.body
        );
        &self.body
    }

    /// Asserts the API's error shape and status.
    fn expect_error(&self, status: u16) -> &Value {
        self.expect(status);
        assert!(self.body["error"].is_string(), "{}", self.body);
        assert!(self.body["detail"].is_string(), "{}", self.body);
        &self.body
    }

    /// The fields named in a 400's `errors` list.
    fn error_fields(&self) -> BTreeSet<String> {
        self.expect_error(400)["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no `errors` list in {}", self.request, self.body))
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn fields(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// The CasareRPA document's submit example, verbatim.
fn seed_example() -> Value {
    json!({
        "workflow_name": "My Workflow",
        "workflow_json": {
            "nodes": [
                {"id": "start", "type": "StartNode"},
                {"id": "end", "type": "EndNode"}
            ],
            "connections": []
        },
        "trigger_type": "manual",
        "execution_mode": "lan",
        "schedule_cron": null,
        "priority": 10,
        "metadata": {
            "description": "Example workflow"
        }
    })
}

/// A valid body with `changes` merged over the top level.
fn body_with(changes: Value) -> Value {
    let mut body = seed_example();
    for (key, value) in changes.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

fn nodes(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"id": format!("n{i}"), "type": "Log"}))
            .collect(),
    )
}

impl Api {
    async fn spawn(db: TestDatabase) -> Self {
        let app = TestApp::spawn(db).await;
        let token = app.admin_token().await;
        let db = app.database().connect().await;
        Api { app, token, db }
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: String) -> Reply {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: status {status}, body not JSON ({e}): {text}"));
        Reply {
            request: what,
            status,
            body,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self.app.client.request(method.clone(), self.app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request, format!("{method} {path}")).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, Some(&self.token), None).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, Some(&self.token), None)
            .await
    }

    async fn submit(&self, body: Value) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/workflows",
            Some(&self.token),
            Some(&body),
        )
        .await
    }

    /// A raw body with the admin's token, for malformed JSON.
    async fn submit_raw(&self, body: impl Into<reqwest::Body>) -> Reply {
        let request = self
            .app
            .client
            .post(self.app.url("/api/v1/workflows"))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/json")
            .body(body);
        self.send(request, "POST /api/v1/workflows (raw)".to_owned())
            .await
    }

    async fn upload(&self, form: Form) -> Reply {
        let request = self
            .app
            .client
            .post(self.app.url("/api/v1/workflows/upload"))
            .bearer_auth(&self.token)
            .multipart(form);
        self.send(request, "POST /api/v1/workflows/upload".to_owned())
            .await
    }

    async fn job(&self, id: &Value) -> baton_domain::job::Job {
        let id: JobId = id.as_str().unwrap().parse().unwrap();
        self.db.get_job(id).await.unwrap()
    }

    async fn jobs_of(&self, workflow: &Value) -> Vec<baton_domain::job::Job> {
        let workflow: WorkflowId = workflow.as_str().unwrap().parse().unwrap();
        self.db
            .list_jobs(&JobFilter {
                workflow_id: Some(workflow),
                limit: 100,
                ..JobFilter::default()
            })
            .await
            .unwrap()
    }
}

async fn the_seed_example_is_submitted_read_back_and_deleted(db: TestDatabase) {
    let api = Api::spawn(db).await;
    let reply = api.submit(seed_example()).await;
    let body = reply.expect(200).clone();
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "workflow_id",
            "job_id",
            "schedule_id",
            "status",
            "message",
            "created_at"
        ]),
        "{body}"
    );
    assert_eq!(body["status"], "success");
    assert_eq!(body["schedule_id"], Value::Null);
    assert_eq!(
        body["message"],
        "Workflow submitted and queued for lan execution"
    );
    let created_at = body["created_at"].as_str().unwrap();
    assert!(created_at.ends_with('Z'), "{created_at}");

    // The job is pending, of this workflow, with the submitted priority and mode.
    let job = api.job(&body["job_id"]).await;
    assert_eq!(job.status(), JobStatus::Pending);
    assert_eq!(
        job.workflow_id().to_string(),
        body["workflow_id"].as_str().unwrap()
    );
    assert_eq!(job.workflow_name().as_str(), "My Workflow");
    assert_eq!(job.priority().value(), 10);
    assert_eq!(job.origin(), &JobOrigin::Manual);

    // The curl example: one node, priority 5, everything else by default.
    let curl = api
        .submit(json!({
            "workflow_name": "Web Scraper",
            "workflow_json": {"nodes": [{"id": "1", "type": "StartNode"}]},
            "trigger_type": "manual",
            "priority": 5
        }))
        .await;
    let curl = curl.expect(200).clone();
    assert_eq!(api.job(&curl["job_id"]).await.priority().value(), 5);

    // Read back: both documents' fields.
    let id = body["workflow_id"].as_str().unwrap();
    let workflow = api
        .get(&format!("/api/v1/workflows/{id}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(workflow["id"], id);
    assert_eq!(workflow["workflow_id"], id);
    assert_eq!(workflow["name"], "My Workflow");
    assert_eq!(workflow["workflow_name"], "My Workflow");
    assert_eq!(workflow["description"], "Example workflow");
    assert_eq!(workflow["workflow_json"], seed_example()["workflow_json"]);
    assert_eq!(workflow["version"], 1);
    assert_eq!(workflow["created_at"], created_at);
    assert_eq!(workflow["updated_at"], created_at);
    let agents = workflow["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2);
    assert_eq!(agents[0]["name"], "start");
    assert_eq!(agents[0]["type"], "StartNode");
    assert_eq!(agents[1]["type"], "EndNode");
    assert_eq!(agents[1]["sources"], json!([]));
    assert_eq!(agents[1]["messages_count"], 0);

    // ActiveWorkflow's list, oldest first.
    let list = api.get("/api/v1/workflows").await.expect(200).clone();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["name"], "My Workflow");
    assert_eq!(list[0]["description"], "Example workflow");
    assert_eq!(list[1]["name"], "Web Scraper");
    assert_eq!(list[1]["description"], Value::Null);

    // Delete: the seed's answer, then the workflow is gone; its job keeps its record.
    let deleted = api.delete(&format!("/api/v1/workflows/{id}")).await;
    assert_eq!(
        *deleted.expect(200),
        json!({"status": "success", "message": format!("Workflow deleted: {id}")})
    );
    api.get(&format!("/api/v1/workflows/{id}"))
        .await
        .expect_error(404);
    api.delete(&format!("/api/v1/workflows/{id}"))
        .await
        .expect_error(404);
    assert_eq!(api.job(&body["job_id"]).await.status(), JobStatus::Pending);
    let list = api.get("/api/v1/workflows").await.expect(200).clone();
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Ids that are not UUIDs name nothing.
    for path in ["/api/v1/workflows/42", "/api/v1/workflows/not-a-uuid"] {
        api.get(path).await.expect_error(404);
        api.delete(path).await.expect_error(404);
    }
    api.get("/api/v1/workflows/00000000-0000-4000-8000-000000000007")
        .await
        .expect_error(404);
}

async fn every_limit_and_rule_is_refused_by_field(db: TestDatabase) {
    let api = Api::spawn(db).await;
    // The accepted edges.
    for ok in [
        body_with(json!({"workflow_name": "x".repeat(255)})),
        body_with(json!({"priority": 0})),
        body_with(json!({"priority": 20})),
        body_with(json!({"workflow_json": {"nodes": nodes(1000)}})),
        body_with(json!({"execution_mode": "internet", "trigger_type": "webhook"})),
    ] {
        api.submit(ok).await.expect(200);
    }
    let cycle = json!({
        "nodes": [{"id": "a", "type": "Log"}, {"id": "b", "type": "Log"}],
        "connections": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]
    });
    let cases: Vec<(Value, &[&str])> = vec![
        (
            body_with(json!({"workflow_name": "x".repeat(256)})),
            &["workflow_name"],
        ),
        (body_with(json!({"workflow_name": ""})), &["workflow_name"]),
        (body_with(json!({"priority": 21})), &["priority"]),
        (body_with(json!({"priority": -1})), &["priority"]),
        (
            body_with(json!({"workflow_json": {"nodes": nodes(1001)}})),
            &["workflow_json.nodes"],
        ),
        (
            body_with(json!({"workflow_json": cycle})),
            &["workflow_json.connections"],
        ),
        (
            body_with(json!({"workflow_json": {
                "nodes": [{"id": "a", "type": "Log"}],
                "connections": [{"from": "a", "to": "ghost"}]
            }})),
            &["workflow_json.connections[0].to"],
        ),
        (
            body_with(json!({"workflow_json": {
                "nodes": [{"id": "a", "type": "Log"}, {"id": "a", "type": "Log"}]
            }})),
            &["workflow_json.nodes[1].id"],
        ),
        (
            body_with(json!({"workflow_json": {"connections": []}})),
            &["workflow_json.nodes"],
        ),
        (
            body_with(json!({"workflow_json": [1, 2]})),
            &["workflow_json"],
        ),
        (
            body_with(json!({"trigger_type": "sometimes"})),
            &["trigger_type"],
        ),
        (
            body_with(json!({"execution_mode": "cloud"})),
            &["execution_mode"],
        ),
        (
            body_with(json!({"trigger_type": "scheduled"})),
            &["schedule_cron"],
        ),
        (
            body_with(json!({"trigger_type": "scheduled", "schedule_cron": "61 * * * *"})),
            &["schedule_cron"],
        ),
        (
            body_with(json!({"trigger_type": "scheduled", "schedule_cron": "every day"})),
            &["schedule_cron"],
        ),
        (json!({}), &["workflow_name", "workflow_json"]),
        // Every broken rule at once.
        (
            json!({
                "workflow_name": "",
                "workflow_json": {"nodes": [{"id": "a"}]},
                "trigger_type": "never",
                "execution_mode": "moon",
                "priority": 99
            }),
            &[
                "workflow_name",
                "workflow_json.nodes[0].type",
                "trigger_type",
                "execution_mode",
                "priority",
            ],
        ),
    ];
    for (body, expected) in cases {
        let reply = api.submit(body.clone()).await;
        assert_eq!(reply.error_fields(), fields(expected), "for {body:.200}");
    }
    // Only the accepted submissions were stored, with their jobs.
    let list = api.get("/api/v1/workflows").await.expect(200).clone();
    assert_eq!(list.as_array().unwrap().len(), 5);
}

async fn wrong_types_and_malformed_bodies_are_400(db: TestDatabase) {
    let api = Api::spawn(db).await;
    let cases: Vec<(Value, &[&str])> = vec![
        (body_with(json!({"workflow_name": 5})), &["workflow_name"]),
        (body_with(json!({"priority": "high"})), &["priority"]),
        (body_with(json!({"priority": 1.5})), &["priority"]),
        (body_with(json!({"metadata": ["a"]})), &["metadata"]),
        (
            body_with(json!({"trigger_type": 1, "execution_mode": true})),
            &["trigger_type", "execution_mode"],
        ),
        (body_with(json!({"schedule_cron": 5})), &["schedule_cron"]),
        (json!([seed_example()]), &["body"]),
        (json!("text"), &["body"]),
    ];
    for (body, expected) in cases {
        let reply = api.submit(body.clone()).await;
        assert_eq!(reply.error_fields(), fields(expected), "for {body}");
    }
    for raw in [r#"{"workflow_name": "#, "", "not json", r#"{"a": 1,}"#] {
        api.submit_raw(raw).await.expect_error(400);
    }
    // Bodies over 10 MB are refused before they are parsed.
    let huge = format!(r#"{{"workflow_name": "{}"}}"#, "x".repeat(10 * 1024 * 1024));
    api.submit_raw(huge).await.expect_error(413);
    let list = api.get("/api/v1/workflows").await.expect(200).clone();
    assert_eq!(list, json!([]));
}

async fn scheduled_workflows_get_a_schedule_and_no_job(db: TestDatabase) {
    let api = Api::spawn(db).await;
    let scheduled =
        json!({"trigger_type": "scheduled", "schedule_cron": "0 9 * * *", "priority": 3});
    let first = api
        .submit(body_with(scheduled.clone()))
        .await
        .expect(200)
        .clone();
    assert_eq!(first["job_id"], Value::Null);
    assert_eq!(first["status"], "success");
    let schedule_id: TriggerId = first["schedule_id"].as_str().unwrap().parse().unwrap();
    let trigger = api.db.get_trigger(schedule_id).await.unwrap();
    assert_eq!(trigger.name().as_str(), "My Workflow");
    assert_eq!(
        trigger.workflow_id().to_string(),
        first["workflow_id"].as_str().unwrap()
    );
    assert!(trigger.enabled());
    assert_eq!(trigger.priority().value(), 3);
    let TriggerKind::Scheduled(cron) = &trigger.kind() else {
        panic!("not a SCHEDULED trigger: {trigger:?}");
    };
    assert_eq!(cron.expression(), "0 9 * * *");
    assert_eq!(cron.timezone(), "UTC");
    assert!(trigger.next_run().is_some());
    assert!(api.jobs_of(&first["workflow_id"]).await.is_empty());

    // Workflow names may repeat; schedule names may not, so the second takes the workflow id.
    let second = api.submit(body_with(scheduled)).await.expect(200).clone();
    let second_id: TriggerId = second["schedule_id"].as_str().unwrap().parse().unwrap();
    let second_trigger = api.db.get_trigger(second_id).await.unwrap();
    let workflow_id = second["workflow_id"].as_str().unwrap();
    assert_eq!(
        second_trigger.name().as_str(),
        format!("My Workflow ({workflow_id})")
    );

    // Deleting the workflow deletes its schedule.
    let id = first["workflow_id"].as_str().unwrap();
    api.delete(&format!("/api/v1/workflows/{id}"))
        .await
        .expect(200);
    assert!(matches!(
        api.db.get_trigger(schedule_id).await,
        Err(RepoError::NotFound(_))
    ));
}

async fn a_webhook_starts_a_job_per_call_until_its_workflow_is_deleted(db: TestDatabase) {
    let api = Api::spawn(db).await;
    let submitted = api
        .submit(body_with(json!({
            "trigger_type": "webhook",
            "execution_mode": "internet",
            "priority": 2
        })))
        .await
        .expect(200)
        .clone();
    assert_eq!(submitted["job_id"], Value::Null);
    assert_eq!(submitted["schedule_id"], Value::Null);
    let url = submitted["webhook_url"].as_str().unwrap().to_owned();
    let prefix = api.app.url("/api/v1/webhooks/bw_");
    assert!(url.starts_with(&prefix), "{url} should start with {prefix}");
    assert_eq!(url.len(), prefix.len() + 64);
    assert!(api.jobs_of(&submitted["workflow_id"]).await.is_empty());

    // The URL alone authenticates; a JSON object body is the job's input.
    let call = |body: Option<&'static str>| {
        let mut request = api.app.client.post(&url);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        api.send(request, "POST webhook".to_owned())
    };
    let started = call(Some(r#"{"order": 7}"#)).await.expect(200).clone();
    assert_eq!(started["status"], "success");
    assert_eq!(started["workflow_id"], submitted["workflow_id"]);
    let job = api.job(&started["job_id"]).await;
    assert_eq!(job.origin(), &JobOrigin::Webhook);
    assert_eq!(job.status(), JobStatus::Pending);
    assert_eq!(Value::Object(job.input().clone()), json!({"order": 7}));
    assert_eq!(job.priority().value(), 2);
    assert_eq!(job.execution_mode().as_str(), "internet");
    call(None).await.expect(200);
    assert_eq!(api.jobs_of(&submitted["workflow_id"]).await.len(), 2);
    call(Some("[1, 2]")).await.expect_error(400);
    call(Some("{oops")).await.expect_error(400);

    // The token is never shown again.
    let id = submitted["workflow_id"].as_str().unwrap();
    let workflow = api
        .get(&format!("/api/v1/workflows/{id}"))
        .await
        .expect(200)
        .clone();
    let token = url.rsplit('/').next().unwrap();
    assert!(!workflow.to_string().contains(token));

    // Unknown tokens are 404, however many: they are not failed authentications, so the
    // address is not banned (the fifth failure would be).
    for n in 0..6 {
        let unknown = api.app.url(&format!("/api/v1/webhooks/bw_{n:064}"));
        let reply = api
            .send(
                api.app.client.post(&unknown),
                "POST unknown webhook".to_owned(),
            )
            .await;
        reply.expect_error(404);
    }
    api.get("/api/v1/workflows").await.expect(200);

    // Deleting the workflow kills its URL; the jobs keep their records.
    api.delete(&format!("/api/v1/workflows/{id}"))
        .await
        .expect(200);
    call(None).await.expect_error(404);
    assert_eq!(api.jobs_of(&submitted["workflow_id"]).await.len(), 2);
}

fn file_part(name: &str, content: impl Into<Vec<u8>>) -> Part {
    Part::bytes(content.into())
        .file_name(name.to_owned())
        .mime_str("application/json")
        .unwrap()
}

async fn uploads_read_the_workflow_from_the_file_and_the_form(db: TestDatabase) {
    let api = Api::spawn(db).await;
    let graph = json!({
        "nodes": [{"id": "start", "type": "StartNode"}, {"id": "end", "type": "EndNode"}],
        "connections": [{"from": "start", "to": "end"}]
    });

    // The seed's curl example: -F file=@my_workflow.json -F trigger_type=manual -F priority=5.
    let form = Form::new()
        .part("file", file_part("my_workflow.json", graph.to_string()))
        .text("trigger_type", "manual")
        .text("priority", "5");
    let reply = api.upload(form).await;
    let body = reply.expect(200).clone();
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "workflow_id",
            "job_id",
            "schedule_id",
            "status",
            "message",
            "created_at"
        ])
    );
    assert_eq!(api.job(&body["job_id"]).await.priority().value(), 5);
    let id = body["workflow_id"].as_str().unwrap();
    let workflow = api
        .get(&format!("/api/v1/workflows/{id}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        workflow["workflow_name"], "my_workflow",
        "the file name's stem"
    );
    assert_eq!(workflow["workflow_json"], graph);

    // The name comes from the file when it has one; the form's execution mode applies.
    let mut named = graph.clone();
    named["name"] = json!("Invoices");
    named["description"] = json!("Moves invoices");
    let form = Form::new()
        .part("file", file_part("export.JSON", named.to_string()))
        .text("execution_mode", "internet");
    let body = api.upload(form).await.expect(200).clone();
    assert_eq!(
        api.job(&body["job_id"]).await.execution_mode().as_str(),
        "internet"
    );
    let id = body["workflow_id"].as_str().unwrap();
    let workflow = api
        .get(&format!("/api/v1/workflows/{id}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(workflow["name"], "Invoices");
    assert_eq!(workflow["description"], "Moves invoices");

    // A saved submit body uploads as it submits: workflow_name and workflow_json are read.
    let form = Form::new()
        .part("file", file_part("body.json", seed_example().to_string()))
        .text("trigger_type", "scheduled")
        .text("schedule_cron", "*/5 * * * *");
    let body = api.upload(form).await.expect(200).clone();
    assert_eq!(body["job_id"], Value::Null);
    assert!(body["schedule_id"].is_string());
    let id = body["workflow_id"].as_str().unwrap();
    let workflow = api
        .get(&format!("/api/v1/workflows/{id}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(workflow["name"], "My Workflow");
    assert_eq!(workflow["workflow_json"], seed_example()["workflow_json"]);

    // Refusals, by field.
    let refusals: Vec<(Form, &[&str])> = vec![
        (
            Form::new().part("file", file_part("graph.txt", graph.to_string())),
            &["file"],
        ),
        (Form::new().text("file", graph.to_string()), &["file"]),
        (Form::new().text("trigger_type", "manual"), &["file"]),
        (
            Form::new().part("file", file_part("bad.json", "{not json")),
            &["file"],
        ),
        (
            Form::new().part("file", file_part("list.json", "[1]")),
            &["file"],
        ),
        (
            Form::new()
                .part("file", file_part("w.json", graph.to_string()))
                .text("priority", "high"),
            &["priority"],
        ),
        (
            Form::new()
                .part("file", file_part("w.json", graph.to_string()))
                .text("priority", "21")
                .text("trigger_type", "later"),
            &["priority", "trigger_type"],
        ),
        (
            Form::new().part(
                "file",
                file_part("w.json", json!({"nodes": nodes(1001)}).to_string()),
            ),
            &["workflow_json.nodes"],
        ),
        (
            Form::new().part("file", file_part(".json", graph.to_string())),
            &["workflow_name"],
        ),
    ];
    for (form, expected) in refusals {
        assert_eq!(api.upload(form).await.error_fields(), fields(expected));
    }

    // Not a multipart body at all.
    let not_multipart = api
        .call(
            Method::POST,
            "/api/v1/workflows/upload",
            Some(&api.token),
            Some(&graph),
        )
        .await;
    not_multipart.expect_error(400);

    // Files over 50 MB are refused with 413; exactly 50 MB is read (and then judged).
    let limit = 50 * 1024 * 1024;
    let over = Form::new().part("file", file_part("big.json", vec![b' '; limit + 1]));
    api.upload(over).await.expect_error(413);
    let at_limit = Form::new().part("file", file_part("big.json", vec![b' '; limit]));
    assert_eq!(api.upload(at_limit).await.error_fields(), fields(&["file"]));

    // Only the accepted uploads were stored.
    let list = api.get("/api/v1/workflows").await.expect(200).clone();
    assert_eq!(list.as_array().unwrap().len(), 3);
}

async fn the_permission_matrix_applies(db: TestDatabase) {
    let api = Api::spawn(db).await;
    let viewer = api.app.user_token("vera", &["viewer"]).await;
    let operator = api.app.user_token("otto", &["operator"]).await;
    let developer = api.app.user_token("dev", &["developer"]).await;

    // Develop creates and deletes.
    let submitted = api
        .call(
            Method::POST,
            "/api/v1/workflows",
            Some(&developer),
            Some(&seed_example()),
        )
        .await;
    let id = submitted.expect(200)["workflow_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for token in [&viewer, &operator] {
        api.call(
            Method::POST,
            "/api/v1/workflows",
            Some(token),
            Some(&seed_example()),
        )
        .await
        .expect_error(403);
        let request = api
            .app
            .client
            .post(api.app.url("/api/v1/workflows/upload"))
            .bearer_auth(token)
            .multipart(Form::new().part("file", file_part("w.json", r#"{"nodes": []}"#)));
        api.send(request, "upload".to_owned())
            .await
            .expect_error(403);
        api.call(
            Method::DELETE,
            &format!("/api/v1/workflows/{id}"),
            Some(token),
            None,
        )
        .await
        .expect_error(403);
    }

    // Read covers every GET, for viewers too.
    for path in [
        "/api/v1/workflows".to_owned(),
        format!("/api/v1/workflows/{id}"),
        "/api/v1/agents".to_owned(),
    ] {
        api.call(Method::GET, &path, Some(&viewer), None)
            .await
            .expect(200);
    }

    // No credentials: 401 (and not counted toward a ban).
    api.call(Method::GET, "/api/v1/workflows", None, None)
        .await
        .expect_error(401);
    api.call(
        Method::POST,
        "/api/v1/workflows",
        None,
        Some(&seed_example()),
    )
    .await
    .expect_error(401);

    api.call(
        Method::DELETE,
        &format!("/api/v1/workflows/{id}"),
        Some(&developer),
        None,
    )
    .await
    .expect(200);
}

/// With `WORKFLOW_BACKUP_ENABLED`, each workflow is also `<WORKFLOWS_DIR>/<workflow_id>.json`,
/// written atomically and removed with the workflow.
#[tokio::test(flavor = "multi_thread")]
async fn backups_are_written_and_removed_with_their_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("workflows");
    let path = backups.clone();
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| {
        c.workflows_dir = path;
        c.workflow_backup_enabled = true;
    })
    .await;
    let token = app.admin_token().await;
    let response = app
        .client
        .post(app.url("/api/v1/workflows"))
        .bearer_auth(&token)
        .json(&seed_example())
        .send()
        .await
        .unwrap();
    let (status, body) = baton_tests::json(response).await;
    assert_eq!(status, 200, "{body}");
    let id = body["workflow_id"].as_str().unwrap();
    let file = backups.join(format!("{id}.json"));
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["workflow_id"], id);
    assert_eq!(saved["workflow_name"], "My Workflow");
    assert_eq!(saved["workflow_json"], seed_example()["workflow_json"]);
    assert_eq!(saved["version"], 1);
    // Only the file itself: the temporary file was renamed over it.
    let names: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    let response = app
        .client
        .delete(app.url(&format!("/api/v1/workflows/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(!file.exists(), "the backup file outlived its workflow");
}

/// A backup that cannot be written is logged and does not fail the submission.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_backup_does_not_fail_the_request() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the directory should be: every write fails.
    let blocked = dir.path().join("not-a-dir");
    std::fs::write(&blocked, b"").unwrap();
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| {
        c.workflows_dir = blocked;
        c.workflow_backup_enabled = true;
    })
    .await;
    let token = app.admin_token().await;
    let response = app
        .client
        .post(app.url("/api/v1/workflows"))
        .bearer_auth(&token)
        .json(&seed_example())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// A webhook URL is built on forwarding headers only when a trusted proxy sent them: from
/// anyone else, `X-Forwarded-Host` could point the URL Baton hands out at another host.
#[tokio::test(flavor = "multi_thread")]
async fn webhook_urls_believe_forwarding_headers_only_from_trusted_proxies() {
    async fn webhook_url(api: &Api) -> String {
        let response = api
            .app
            .client
            .post(api.app.url("/api/v1/workflows"))
            .bearer_auth(&api.token)
            .header("X-Forwarded-Host", "elsewhere.example")
            .header("X-Forwarded-Proto", "https")
            .json(&body_with(json!({"trigger_type": "webhook"})))
            .send()
            .await
            .unwrap();
        let (status, body) = json(response).await;
        assert_eq!(status, 200, "{body}");
        body["webhook_url"].as_str().unwrap().to_owned()
    }

    let untrusted = Api::spawn(TestDatabase::sqlite().await).await;
    let url = webhook_url(&untrusted).await;
    let own = untrusted.app.url("/api/v1/webhooks/");
    assert!(url.starts_with(&own), "{url} should start with {own}");

    let behind_proxy = TestApp::spawn_with(TestDatabase::sqlite().await, |c| {
        c.trusted_proxies = Some("127.0.0.1".into());
    })
    .await;
    let token = behind_proxy.admin_token().await;
    let db = behind_proxy.database().connect().await;
    let trusted = Api {
        app: behind_proxy,
        token,
        db,
    };
    let url = webhook_url(&trusted).await;
    assert!(
        url.starts_with("https://elsewhere.example/api/v1/webhooks/"),
        "{url} should be built on the trusted proxy's headers"
    );
}
