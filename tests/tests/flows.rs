//! Flows over HTTP (`tests/fixtures/seeds/flows-api.txt` under `/api/v1`, docs/flows.md): the CRUD
//! with the exact bodies docs/flows.md gives, `POST` all or nothing, `DELETE` of a missing flow
//! answered 400 as the seed says, the status endpoints, each command's answer, every validation
//! rule naming its field, the permission matrix, and the engine: a running flow keeps one job
//! going with `interval_seconds` between one job's end and the next one's start, pause and
//! resume, a soft stop, and two servers on one database never giving a flow two jobs. Jobs are
//! finished through the robot protocol over HTTP.
//!
//! The last test is about processes: a real `baton` server and a real `baton-robot` run a flow
//! whose workflow waits on a long `Delay`; a hard stop cancels the job and the robot drops it
//! within seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use baton_domain::ids::WorkflowId;
use baton_domain::job::{Job, JobOrigin};
use baton_domain::ports::{JobFilter, JobRepository, WorkflowRepository};
use baton_domain::workflow::{Workflow, WorkflowGraph, WorkflowName};
use baton_domain::{Clock, IdGenerator, SystemClock, UuidV7Generator};
use baton_storage::Db;
use baton_storage::testing::TestDatabase;
use baton_tests::{
    BatonProcess, RobotProcess, TEST_ADMIN_PASSWORD, TEST_JWT_SECRET, TestApp, json,
};
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
    configurations_read_back_exactly_and_are_replaced_and_deleted,
    a_post_is_all_or_nothing,
    wrong_types_and_missing_fields_are_400s_naming_the_field,
    the_status_endpoints_show_each_flows_run_state,
    each_command_answers_the_documents_body,
    commands_are_checked_before_anything_changes,
    the_permission_matrix_guards_every_route,
    a_running_flow_keeps_one_job_going_with_its_interval_between_runs,
    pause_lets_the_job_finish_and_resume_starts_the_next,
    a_soft_stop_lets_the_job_finish_then_stops,
    two_servers_never_give_a_flow_two_jobs,
);

/// How long the engine may take to do something due in these tests (its tick is 20 ms).
const WITHIN: Duration = Duration::from_secs(10);

/// A server whose engine ticks every 20 ms, an admin token, and a pool on its database.
struct Env {
    app: TestApp,
    token: String,
    db: Db,
}

impl Env {
    async fn start(db: TestDatabase) -> Self {
        let app = TestApp::spawn_with(db, |c| {
            c.engine_tick_ms = 20;
            c.rate_limits = false;
        })
        .await;
        let token = app.admin_token().await;
        let db = app.database().connect().await;
        Env { app, token, db }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        call_with(&self.app, &self.token, method, path, body).await
    }

    async fn raw(&self, method: Method, path: &str, body: &str) -> (u16, Value) {
        json(
            self.app
                .client
                .request(method, self.app.url(path))
                .bearer_auth(&self.token)
                .header("Content-Type", "application/json")
                .body(body.to_owned())
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Adds configurations; panics unless they are all added.
    async fn add(&self, configs: Value) {
        let (status, body) = self
            .call(Method::POST, "/api/v1/flows", Some(configs))
            .await;
        assert_eq!(status, 201, "{body}");
    }

    async fn command(&self, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, "/api/v1/flows/commands", Some(body))
            .await
    }

    /// Applies a command that must succeed; returns the answer.
    async fn ok_command(&self, body: Value) -> Value {
        let (status, answer) = self.command(body).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    async fn flows(&self) -> Value {
        let (status, body) = self.call(Method::GET, "/api/v1/flows", None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn status(&self, flow: &str) -> Value {
        let (status, body) = self
            .call(Method::GET, &format!("/api/v1/flows/status/{flow}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Polls the flow's status until `done` holds.
    async fn wait_for_status(&self, flow: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WITHIN;
        loop {
            let status = self.status(flow).await;
            if done(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the flow never got there: {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn job(&self, id: &str) -> Value {
        let (status, body) = self
            .call(Method::GET, &format!("/api/v1/jobs/{id}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn workflow(&self, name: &str) -> String {
        insert_workflow(&self.db, name).await.to_string()
    }

    async fn jobs(&self, workflow: &str) -> Vec<Job> {
        self.db
            .list_jobs(&JobFilter {
                workflow_id: Some(workflow.parse().unwrap()),
                limit: 1000,
                ..JobFilter::default()
            })
            .await
            .unwrap()
    }

    /// Creates a robot and returns a client acting as it.
    async fn robot(&self, robot_id: &str) -> Robot {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/robots",
                Some(json!({"robot_id": robot_id})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Robot {
            id: robot_id.to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    /// The robot's call `POST /robots/{id}/{path}`: status and body (`null` for 204).
    async fn robot_call(&self, robot: &Robot, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .app
            .client
            .post(self.app.url(&format!("/api/v1/robots/{}/{path}", robot.id)))
            .header("X-Api-Token", &robot.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 204 {
            return (204, Value::Null);
        }
        json(response).await
    }

    /// A claim that does not wait: the job's id, or `None` when nothing is pending.
    async fn claim(&self, robot: &Robot) -> Option<String> {
        let (status, body) = self
            .robot_call(robot, "jobs/claim", json!({"wait_seconds": 0}))
            .await;
        match status {
            200 => Some(body["job_id"].as_str().unwrap().to_owned()),
            204 => None,
            other => panic!("claim answered {other}: {body}"),
        }
    }

    /// Claims until a job is handed out, for up to [`WITHIN`], and starts it.
    async fn take_job(&self, robot: &Robot) -> String {
        let deadline = Instant::now() + WITHIN;
        loop {
            if let Some(job) = self.claim(robot).await {
                let (status, body) = self
                    .robot_call(robot, &format!("jobs/{job}/start"), json!({}))
                    .await;
                assert_eq!(status, 200, "{body}");
                return job;
            }
            assert!(Instant::now() < deadline, "no job was started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn complete(&self, robot: &Robot, job: &str) {
        let (status, body) = self
            .robot_call(robot, &format!("jobs/{job}/complete"), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Waits a few engine ticks, then asserts that no job is pending.
    async fn expect_no_new_job(&self, robot: &Robot) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(self.claim(robot).await, None, "a job was started");
    }
}

/// A robot the tests act as, through the robot protocol.
struct Robot {
    id: String,
    token: String,
}

async fn call_with(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    json(request.send().await.unwrap()).await
}

/// Stores a workflow of one start node, as the workflow API does.
async fn insert_workflow(db: &Db, name: &str) -> WorkflowId {
    let id = WorkflowId::from_uuid(UuidV7Generator.new_uuid());
    let graph =
        WorkflowGraph::parse(json!({"nodes": [{"id": "start", "type": "StartNode"}]})).unwrap();
    let workflow = Workflow::new(
        id,
        WorkflowName::parse(name).unwrap(),
        None,
        graph,
        serde_json::Map::new(),
        SystemClock.now(),
    )
    .unwrap();
    db.insert_workflow(&workflow, &[]).await.unwrap();
    id
}

/// The field names of a 400's `errors` list, after checking the error shape.
fn error_fields(status: u16, body: &Value) -> Vec<String> {
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors list: {body}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_error(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert!(
        body["error"].is_string() && body["detail"].is_string(),
        "{body}"
    );
}

fn instant(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap(), &Rfc3339).unwrap()
}

// ---- CRUD ----

async fn configurations_read_back_exactly_and_are_replaced_and_deleted(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Inbox").await;
    let first = json!({
        "flow_id": "inbox", "workflow_id": workflow, "interval_seconds": 30,
        "description": "keeps the inbox empty", "options": {"retries": [1, 2], "dry_run": false}
    });
    let second = json!({"flow_id": "Nightly Sync", "workflow_id": workflow});
    let (status, body) = env
        .call(Method::POST, "/api/v1/flows", Some(json!([first, second])))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body,
        json!({"message": "Configurations added successfully", "flow_ids": ["inbox", "Nightly Sync"]})
    );

    assert_eq!(env.flows().await, json!([first, second]));
    let (status, body) = env.call(Method::GET, "/api/v1/flows/inbox", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, first, "the configuration exactly as given");
    let (status, body) = env
        .call(Method::GET, "/api/v1/flows/Nightly%20Sync", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, second);
    let (status, body) = env.call(Method::GET, "/api/v1/flows/nope", None).await;
    assert_error(status, &body, 404);

    // PUT replaces the whole configuration; a document without `flow_id` takes the path's.
    let replacement = json!({"workflow_id": workflow, "interval_seconds": 5, "owner": "ops"});
    let (status, body) = env
        .call(Method::PUT, "/api/v1/flows/inbox", Some(replacement))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"message": "Configuration updated successfully", "flow_id": "inbox"})
    );
    let (_, body) = env.call(Method::GET, "/api/v1/flows/inbox", None).await;
    assert_eq!(
        body,
        json!({"workflow_id": workflow, "interval_seconds": 5, "owner": "ops", "flow_id": "inbox"})
    );
    let (status, body) = env
        .call(
            Method::PUT,
            "/api/v1/flows/inbox",
            Some(json!({"flow_id": "renamed", "workflow_id": workflow})),
        )
        .await;
    assert_eq!(error_fields(status, &body), ["flow_id"]);
    let (status, body) = env
        .call(
            Method::PUT,
            "/api/v1/flows/nope",
            Some(json!({"workflow_id": workflow})),
        )
        .await;
    assert_eq!(
        error_fields(status, &body),
        ["flow_id"],
        "a missing flow is a 400"
    );

    let (status, body) = env.call(Method::DELETE, "/api/v1/flows/inbox", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"message": "Configuration deleted successfully", "flow_id": "inbox"})
    );
    let (status, body) = env.call(Method::DELETE, "/api/v1/flows/inbox", None).await;
    assert_eq!(
        error_fields(status, &body),
        ["flow_id"],
        "DELETE of a missing flow is a 400, as the seed says"
    );
    assert_eq!(env.flows().await, json!([second]));

    // The fixed paths are not flows.
    let (status, body) = env.call(Method::GET, "/api/v1/flows/commands", None).await;
    assert_error(status, &body, 405);
    let (status, body) = env.call(Method::DELETE, "/api/v1/flows/status", None).await;
    assert_error(status, &body, 405);
}

async fn a_post_is_all_or_nothing(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Inbox").await;
    let ok = |id: &str| json!({"flow_id": id, "workflow_id": workflow});
    env.add(json!([ok("taken")])).await;

    let (status, body) = env
        .call(
            Method::POST,
            "/api/v1/flows",
            Some(json!([
                ok("a"),
                ok("taken"),
                ok("a"),
                {"flow_id": "b", "workflow_id": "01234567-89ab-7def-8123-456789abcdef"},
                {"flow_id": "status", "workflow_id": workflow},
                "not an object",
                {"flow_id": "c", "workflow_id": workflow, "interval_seconds": -1},
            ])),
        )
        .await;
    assert_eq!(
        error_fields(status, &body),
        [
            "[1].flow_id",
            "[2].flow_id",
            "[3].workflow_id",
            "[4].flow_id",
            "[5]",
            "[6].interval_seconds"
        ]
    );
    let (status, body) = env
        .call(Method::POST, "/api/v1/flows", Some(json!([ok("a"), {}])))
        .await;
    assert_eq!(
        error_fields(status, &body),
        ["[1].flow_id", "[1].workflow_id"]
    );
    assert_eq!(
        env.flows().await,
        json!([ok("taken")]),
        "nothing was written"
    );

    // The body must be a non-empty JSON array.
    for (body, field) in [
        (json!({"flow_id": "a", "workflow_id": workflow}), "body"),
        (json!("a"), "body"),
        (json!(null), "body"),
        (json!([]), "body"),
    ] {
        let (status, answer) = env
            .call(Method::POST, "/api/v1/flows", Some(body.clone()))
            .await;
        assert_eq!(error_fields(status, &answer), [field], "{body}");
    }
    for raw in ["", "[", "[{\"flow_id\": }]"] {
        let (status, answer) = env.raw(Method::POST, "/api/v1/flows", raw).await;
        assert_error(status, &answer, 400);
    }
    assert_eq!(env.flows().await, json!([ok("taken")]));
}

async fn wrong_types_and_missing_fields_are_400s_naming_the_field(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Inbox").await;
    let (status, body) = env
        .call(
            Method::POST,
            "/api/v1/flows",
            Some(json!([
                {"flow_id": 5, "workflow_id": workflow},
                {"flow_id": "a", "workflow_id": ["x"]},
                {"flow_id": "b", "workflow_id": workflow, "interval_seconds": "60"},
                {"flow_id": "c", "workflow_id": workflow, "interval_seconds": 1.5},
                {"workflow_id": workflow},
                {"flow_id": "x".repeat(101), "workflow_id": workflow},
            ])),
        )
        .await;
    assert_eq!(
        error_fields(status, &body),
        [
            "[0].flow_id",
            "[1].workflow_id",
            "[2].interval_seconds",
            "[3].interval_seconds",
            "[4].flow_id",
            "[5].flow_id"
        ]
    );
    assert_eq!(env.flows().await, json!([]));

    env.add(json!([{"flow_id": "a", "workflow_id": workflow}]))
        .await;
    for (body, field) in [
        (json!({"workflow_id": 7}), "workflow_id"),
        (json!({"interval_seconds": 1}), "workflow_id"),
        (
            json!({"workflow_id": workflow, "interval_seconds": "1"}),
            "interval_seconds",
        ),
        (json!({"flow_id": 1, "workflow_id": workflow}), "flow_id"),
        (json!([]), "body"),
        (json!("a"), "body"),
    ] {
        let (status, answer) = env
            .call(Method::PUT, "/api/v1/flows/a", Some(body.clone()))
            .await;
        assert_eq!(error_fields(status, &answer), [field], "{body}");
    }
    let (status, answer) = env.raw(Method::PUT, "/api/v1/flows/a", "{").await;
    assert_error(status, &answer, 400);
    assert_eq!(
        env.flows().await,
        json!([{"flow_id": "a", "workflow_id": workflow}]),
        "a refused PUT changes nothing"
    );

    for (body, fields) in [
        (json!({}), vec!["command"]),
        (json!({"flow_ids": ["a"]}), vec!["command"]),
        (json!({"command": 5, "flow_ids": ["a"]}), vec!["command"]),
        (
            json!({"command": "restart", "flow_ids": ["a"]}),
            vec!["command"],
        ),
        (
            json!({"command": "start", "flow_ids": "a"}),
            vec!["flow_ids"],
        ),
        (
            json!({"command": "start", "flow_ids": ["a", 2]}),
            vec!["flow_ids[1]"],
        ),
        (
            json!({"command": "start", "flow_ids": []}),
            vec!["flow_ids"],
        ),
        (
            json!({"command": "start", "flow_ids": ["a", "ghost"]}),
            vec!["flow_ids[1]"],
        ),
        (
            json!({"command": "stop", "flow_ids": ["a"], "type": "1"}),
            vec!["type"],
        ),
        (
            json!({"command": "stop", "flow_ids": ["a"], "type": 2}),
            vec!["type"],
        ),
        (
            json!({"command": "stop", "flow_ids": ["a"], "type": -1}),
            vec!["type"],
        ),
        (
            json!({"command": 1, "flow_ids": 2, "type": []}),
            vec!["command", "type", "flow_ids"],
        ),
        (json!(["start"]), vec!["body"]),
    ] {
        let (status, answer) = env.command(body.clone()).await;
        assert_eq!(error_fields(status, &answer), fields, "{body}");
    }
    for raw in ["", "{", "null"] {
        let (status, answer) = env.raw(Method::PATCH, "/api/v1/flows/commands", raw).await;
        assert_error(status, &answer, 400);
    }
    assert_eq!(env.status("a").await["status"], "stopped");
}

// ---- status ----

async fn the_status_endpoints_show_each_flows_run_state(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Inbox").await;
    env.add(json!([
        {"flow_id": "idle", "workflow_id": workflow},
        {"flow_id": "busy", "workflow_id": workflow, "interval_seconds": 0}
    ]))
    .await;
    let (status, body) = env.call(Method::GET, "/api/v1/flows/status", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "idle": {"status": "stopped", "current_job_id": null, "next_run_at": null},
            "busy": {"status": "stopped", "current_job_id": null, "next_run_at": null}
        })
    );
    assert_eq!(
        env.status("idle").await,
        json!({"flow_id": "idle", "status": "stopped", "current_job_id": null, "next_run_at": null})
    );
    let (status, body) = env
        .call(Method::GET, "/api/v1/flows/status/ghost", None)
        .await;
    assert_error(status, &body, 404);

    env.ok_command(json!({"command": "start", "flow_ids": ["busy"]}))
        .await;
    let busy = env
        .wait_for_status("busy", |s| s["current_job_id"].is_string())
        .await;
    assert_eq!(busy["status"], "running");
    assert_eq!(busy["next_run_at"], Value::Null);
    let job = busy["current_job_id"].as_str().unwrap();
    let stored = env.job(job).await;
    assert_eq!(stored["workflow_id"], workflow);
    assert_eq!(stored["status"], "pending");
    let (_, all) = env.call(Method::GET, "/api/v1/flows/status", None).await;
    assert_eq!(all["busy"]["current_job_id"], job);
    assert_eq!(all["idle"]["status"], "stopped");
    let jobs = env.jobs(&workflow).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].origin(),
        &JobOrigin::Flow(baton_domain::flow::FlowId::parse("busy").unwrap())
    );
}

// ---- commands ----

async fn each_command_answers_the_documents_body(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Inbox").await;
    env.add(json!([
        {"flow_id": "flow1", "workflow_id": workflow},
        {"flow_id": "flow2", "workflow_id": workflow}
    ]))
    .await;
    let details = |status: &str| json!([{"flow_id": "flow1", "status": status}, {"flow_id": "flow2", "status": status}]);
    let flows = json!(["flow1", "flow2"]);

    // A soft stop of flows without a job stops them at once.
    assert_eq!(
        env.ok_command(json!({"command": "stop", "flow_ids": flows, "type": 0}))
            .await,
        json!({"status": "Flows stopped", "details": details("stopped")})
    );
    assert_eq!(
        env.ok_command(json!({"command": "start", "flow_ids": flows}))
            .await,
        json!({"status": "Flows started", "details": details("running")})
    );
    assert_eq!(
        env.ok_command(json!({"command": "pause", "flow_ids": flows}))
            .await,
        json!({"status": "Flows paused", "details": details("paused")})
    );
    assert_eq!(
        env.ok_command(json!({"command": "resume", "flow_ids": flows}))
            .await,
        json!({"status": "Flows resumed", "details": details("running")})
    );
    for flow in ["flow1", "flow2"] {
        env.wait_for_status(flow, |s| s["current_job_id"].is_string())
            .await;
    }
    // A hard stop cancels the jobs and stops the flows at once.
    assert_eq!(
        env.ok_command(json!({"command": "stop", "flow_ids": flows, "type": 1}))
            .await,
        json!({"status": "Flows stopped", "details": details("stopped")})
    );
    let jobs = env.jobs(&workflow).await;
    assert_eq!(jobs.len(), 2);
    assert!(
        jobs.iter()
            .all(|j| j.status() == baton_domain::job::JobStatus::Cancelled),
        "{jobs:?}"
    );

    // Without `flow_ids` a command reaches every flow it applies to.
    env.add(json!([{"flow_id": "flow3", "workflow_id": workflow}]))
        .await;
    env.ok_command(json!({"command": "start", "flow_ids": ["flow1"]}))
        .await;
    assert_eq!(
        env.ok_command(json!({"command": "pause"})).await,
        json!({"status": "Flows paused", "details": [{"flow_id": "flow1", "status": "paused"}]})
    );
    let answer = env.ok_command(json!({"command": "stop", "type": 1})).await;
    assert_eq!(answer["status"], "Flows stopped");
    assert_eq!(answer["details"].as_array().unwrap().len(), 3);
}

async fn commands_are_checked_before_anything_changes(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Inbox").await;
    env.add(json!([
        {"flow_id": "on", "workflow_id": workflow, "interval_seconds": 3600},
        {"flow_id": "off", "workflow_id": workflow}
    ]))
    .await;
    env.ok_command(json!({"command": "start", "flow_ids": ["on"]}))
        .await;
    let (status, body) = env
        .command(json!({"command": "pause", "flow_ids": ["on", "off"]}))
        .await;
    assert_error(status, &body, 409);
    assert!(body["detail"].as_str().unwrap().contains("'off'"), "{body}");
    assert_eq!(env.status("on").await["status"], "running");
    let (status, body) = env
        .command(json!({"command": "resume", "flow_ids": ["off"]}))
        .await;
    assert_error(status, &body, 409);
    let (status, body) = env
        .command(json!({"command": "stop", "flow_ids": ["on", "ghost"], "type": 1}))
        .await;
    assert_eq!(error_fields(status, &body), ["flow_ids[1]"]);
    assert_eq!(env.status("on").await["status"], "running");
    // A flow named twice is commanded once.
    let answer = env
        .ok_command(json!({"command": "start", "flow_ids": ["on", "on"]}))
        .await;
    assert_eq!(
        answer["details"],
        json!([{"flow_id": "on", "status": "running"}])
    );
}

async fn the_permission_matrix_guards_every_route(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Inbox").await;
    env.add(json!([{"flow_id": "a", "workflow_id": workflow}]))
        .await;
    let viewer = env.app.user_token("viewer", &["viewer"]).await;
    let operator = env.app.user_token("operator", &["operator"]).await;
    let developer = env.app.user_token("developer", &["developer"]).await;
    let config = |id: &str| json!([{"flow_id": id, "workflow_id": workflow}]);
    let command = json!({"command": "pause", "flow_ids": ["a"]});
    let put = json!({"workflow_id": workflow});

    for path in [
        "/api/v1/flows",
        "/api/v1/flows/a",
        "/api/v1/flows/status",
        "/api/v1/flows/status/a",
    ] {
        let status = env
            .app
            .client
            .get(env.app.url(path))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401, "{path}");
        let (status, body) = call_with(&env.app, &viewer, Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let cases: [(&str, Method, String, Option<Value>, u16); 9] = [
        (
            &viewer,
            Method::POST,
            "/api/v1/flows".into(),
            Some(config("v")),
            403,
        ),
        (
            &operator,
            Method::POST,
            "/api/v1/flows".into(),
            Some(config("o")),
            403,
        ),
        (
            &developer,
            Method::POST,
            "/api/v1/flows".into(),
            Some(config("d")),
            201,
        ),
        (
            &operator,
            Method::PUT,
            "/api/v1/flows/a".into(),
            Some(put.clone()),
            403,
        ),
        (
            &developer,
            Method::PUT,
            "/api/v1/flows/a".into(),
            Some(put),
            200,
        ),
        (
            &operator,
            Method::DELETE,
            "/api/v1/flows/d".into(),
            None,
            403,
        ),
        (
            &developer,
            Method::DELETE,
            "/api/v1/flows/d".into(),
            None,
            200,
        ),
        (
            &viewer,
            Method::PATCH,
            "/api/v1/flows/commands".into(),
            Some(json!({"command": "start", "flow_ids": ["a"]})),
            403,
        ),
        (
            &operator,
            Method::PATCH,
            "/api/v1/flows/commands".into(),
            Some(json!({"command": "start", "flow_ids": ["a"]})),
            200,
        ),
    ];
    for (token, method, path, body, expected) in cases {
        let (status, answer) = call_with(&env.app, token, method.clone(), &path, body).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
    }
    let (status, _) = call_with(
        &env.app,
        &developer,
        Method::PATCH,
        "/api/v1/flows/commands",
        Some(command),
    )
    .await;
    assert_eq!(status, 200, "a developer may operate too");
}

// ---- the engine ----

async fn a_running_flow_keeps_one_job_going_with_its_interval_between_runs(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Inbox").await;
    let robot = env.robot("robot-1").await;
    env.add(json!([{"flow_id": "loop", "workflow_id": workflow, "interval_seconds": 1}]))
        .await;
    env.ok_command(json!({"command": "start", "flow_ids": ["loop"]}))
        .await;

    let mut previous: Option<Value> = None;
    for run in 0..3 {
        let job = env.take_job(&robot).await;
        let status = env.status("loop").await;
        assert_eq!(status["current_job_id"], job.as_str(), "run {run}");
        let started = env.job(&job).await;
        if let Some(previous) = &previous {
            // The next job was created no sooner than one interval after the last one ended.
            let gap = instant(&started["created_at"]) - instant(&previous["completed_at"]);
            assert!(gap >= time::Duration::seconds(1), "run {run}: {gap}");
        }
        // While a job runs the flow starts no other.
        assert_eq!(env.claim(&robot).await, None);
        env.complete(&robot, &job).await;
        let ended = env.job(&job).await;
        assert_eq!(ended["status"], "completed");
        let waiting = env
            .wait_for_status("loop", |s| s["current_job_id"] != job.as_str())
            .await;
        assert_eq!(waiting["status"], "running");
        // Between runs the status shows when the next one starts (a slow test may only see
        // the next job, whose start the gap check above covers).
        if waiting["current_job_id"].is_null() {
            assert_eq!(
                instant(&waiting["next_run_at"]),
                instant(&ended["completed_at"]) + time::Duration::seconds(1),
                "the interval counts from the job's end"
            );
        }
        previous = Some(ended);
    }
    let jobs = env.jobs(&workflow).await;
    let active = jobs.iter().filter(|j| !j.status().is_final()).count();
    assert!(active <= 1, "{jobs:?}");
}

async fn pause_lets_the_job_finish_and_resume_starts_the_next(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Inbox").await;
    let robot = env.robot("robot-1").await;
    env.add(json!([{"flow_id": "f", "workflow_id": workflow, "interval_seconds": 0}]))
        .await;
    env.ok_command(json!({"command": "start", "flow_ids": ["f"]}))
        .await;
    let job = env.take_job(&robot).await;
    let answer = env
        .ok_command(json!({"command": "pause", "flow_ids": ["f"]}))
        .await;
    assert_eq!(
        answer,
        json!({"status": "Flows paused", "details": [{"flow_id": "f", "status": "paused"}]})
    );
    assert_eq!(env.job(&job).await["status"], "running", "the job runs on");
    env.complete(&robot, &job).await;
    let paused = env
        .wait_for_status("f", |s| s["current_job_id"].is_null())
        .await;
    assert_eq!(paused["status"], "paused");
    env.expect_no_new_job(&robot).await;

    let answer = env
        .ok_command(json!({"command": "resume", "flow_ids": ["f"]}))
        .await;
    assert_eq!(
        answer,
        json!({"status": "Flows resumed", "details": [{"flow_id": "f", "status": "running"}]})
    );
    let next = env.take_job(&robot).await;
    assert_ne!(next, job);
    assert_eq!(env.jobs(&workflow).await.len(), 2);
}

async fn a_soft_stop_lets_the_job_finish_then_stops(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Inbox").await;
    let robot = env.robot("robot-1").await;
    env.add(json!([{"flow_id": "f", "workflow_id": workflow, "interval_seconds": 0}]))
        .await;
    env.ok_command(json!({"command": "start", "flow_ids": ["f"]}))
        .await;
    let job = env.take_job(&robot).await;

    let answer = env
        .ok_command(json!({"command": "stop", "flow_ids": ["f"], "type": 0}))
        .await;
    assert_eq!(
        answer,
        json!({"status": "Flows stopped", "details": [{"flow_id": "f", "status": "stopping"}]})
    );
    let stopping = env.status("f").await;
    assert_eq!(stopping["status"], "stopping");
    assert_eq!(stopping["current_job_id"], job.as_str());
    let running = env.job(&job).await;
    assert_eq!(running["status"], "running");
    assert_eq!(
        running["cancel_requested"],
        Value::Null,
        "the job is left alone"
    );

    env.complete(&robot, &job).await;
    assert_eq!(env.job(&job).await["status"], "completed");
    let stopped = env.wait_for_status("f", |s| s["status"] == "stopped").await;
    assert_eq!(
        stopped,
        json!({"flow_id": "f", "status": "stopped", "current_job_id": null, "next_run_at": null})
    );
    env.expect_no_new_job(&robot).await;
    assert_eq!(env.jobs(&workflow).await.len(), 1);
}

async fn two_servers_never_give_a_flow_two_jobs(db: TestDatabase) {
    let env = Env::start(db).await;
    let other = env
        .app
        .another_server(|c| {
            c.engine_tick_ms = 20;
            c.rate_limits = false;
        })
        .await;
    let workflow = env.workflow("Inbox").await;
    let robot = env.robot("robot-1").await;
    env.add(json!([{"flow_id": "f", "workflow_id": workflow, "interval_seconds": 0}]))
        .await;
    // The command goes to the second server; both engines run the flow.
    let (status, body) = call_with(
        &other,
        &env.token,
        Method::PATCH,
        "/api/v1/flows/commands",
        Some(json!({"command": "start", "flow_ids": ["f"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    const RUNS: usize = 8;
    let mut last = String::new();
    for run in 0..RUNS {
        let job = env.take_job(&robot).await;
        for _ in 0..3 {
            let jobs = env.jobs(&workflow).await;
            let active = jobs.iter().filter(|j| !j.status().is_final()).count();
            assert_eq!(active, 1, "run {run}: {jobs:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        env.complete(&robot, &job).await;
        last = job;
    }
    env.wait_for_status("f", |s| {
        s["current_job_id"].is_string() && s["current_job_id"] != last.as_str()
    })
    .await;
    let jobs = env.jobs(&workflow).await;
    assert_eq!(jobs.len(), RUNS + 1, "{jobs:?}");
    assert_eq!(jobs.iter().filter(|j| !j.status().is_final()).count(), 1);
}

// ---- processes ----

/// A `baton-robot` process, killed when dropped, its log collected.

#[tokio::test(flavor = "multi_thread")]
async fn a_hard_stop_cancels_the_job_of_a_real_robot_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = BatonProcess::start(
        dir.path(),
        &["--engine-tick-ms", "50"],
        &[
            ("JWT_SECRET_KEY", TEST_JWT_SECRET),
            ("BATON_ADMIN_PASSWORD", TEST_ADMIN_PASSWORD),
        ],
    );
    server.wait_until_healthy().await;
    let client = reqwest::Client::new();
    let (status, login) = json(
        client
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": TEST_ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let call = |method: Method, path: &str, body: Option<Value>| {
        let mut request = client.request(method, server.url(path)).bearer_auth(&token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move { json(request.send().await.unwrap()).await }
    };

    let (status, robot) = call(
        Method::POST,
        "/api/v1/robots",
        Some(json!({"robot_id": "robot-1"})),
    )
    .await;
    assert_eq!(status, 201, "{robot}");
    // A webhook workflow is stored without a job of its own: the flow starts the only one.
    let (status, submitted) = call(
        Method::POST,
        "/api/v1/workflows",
        Some(json!({
            "workflow_name": "sleepy",
            "trigger_type": "webhook",
            "workflow_json": {"nodes": [
                {"id": "start", "type": "StartNode"},
                {"id": "wait", "type": "Delay", "config": {"seconds": 120}},
                {"id": "end", "type": "EndNode"}
            ], "connections": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "end"}]}
        })),
    )
    .await;
    assert_eq!(status, 200, "{submitted}");
    let workflow = submitted["workflow_id"].as_str().unwrap();
    let (status, body) = call(
        Method::POST,
        "/api/v1/flows",
        Some(json!([{"flow_id": "sleeper", "workflow_id": workflow, "interval_seconds": 0}])),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        Method::PATCH,
        "/api/v1/flows/commands",
        Some(json!({"command": "start", "flow_ids": ["sleeper"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let robot = RobotProcess::start(&server.url(""), "robot-1", robot["token"].as_str().unwrap());
    // Wait until the robot is inside the Delay of the flow's job.
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let (_, status) = call(Method::GET, "/api/v1/flows/status/sleeper", None).await;
        if let Some(job) = status["current_job_id"].as_str() {
            let (_, stored) = call(Method::GET, &format!("/api/v1/jobs/{job}"), None).await;
            // The start node is reported once it ran: the robot is then inside the Delay.
            let nodes = stored["node_executions"].as_array().map_or(0, Vec::len);
            if stored["status"] == "running" && nodes >= 1 {
                break job.to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the robot never ran the flow's job: {status}\nrobot log:\n{}\nserver log:\n{}",
            robot.log(),
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let (status, answer) = call(
        Method::PATCH,
        "/api/v1/flows/commands",
        Some(json!({"command": "stop", "flow_ids": ["sleeper"], "type": 1})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"status": "Flows stopped", "details": [{"flow_id": "sleeper", "status": "stopped"}]})
    );
    let (_, stored) = call(Method::GET, &format!("/api/v1/jobs/{job}"), None).await;
    assert_eq!(stored["status"], "cancelled", "{stored}");
    assert_eq!(stored["cancel_requested"], "hard");

    // The robot learns of the cancel at its next renewal (every second here) and drops the
    // Delay, long before its 120 seconds are up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !robot.log().contains("job cancelled hard") {
        assert!(
            Instant::now() < deadline,
            "the robot never stopped the job; log:\n{}",
            robot.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, status) = call(Method::GET, "/api/v1/flows/status/sleeper", None).await;
    assert_eq!(
        status,
        json!({"flow_id": "sleeper", "status": "stopped", "current_job_id": null, "next_run_at": null})
    );
    // The stopped flow starts nothing more: its job is the workflow's only one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, jobs) = call(
        Method::GET,
        &format!("/api/v1/jobs?workflow_id={workflow}"),
        None,
    )
    .await;
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    assert!(server.terminate().await.success());
}
