//! The robot protocol over HTTP (docs/robot-protocol.md): claim with long-poll, start,
//! progress with messages, renew, complete, fail, cancelled and release; cancellation; lease
//! recovery and offline robots by the engine; who may act for whom; and concurrent claims that
//! never hand one job to two robots; the batched calls (`batches.rs`). The key flows run on
//! SQLite and on PostgreSQL.

// A test crate: a panic is a failed assertion with its location, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use baton_domain::agent::Agent;
use baton_domain::ids::{AgentId, JobId, WorkflowId};
use baton_domain::job::{Job, JobRecord, JobStatus};
use baton_domain::ports::{
    EventFilter, EventRepository, JobRepository, MessageRepository, RobotRepository,
    WorkflowRepository,
};
use baton_domain::robot::{RobotId, RobotStatus};
use baton_domain::workflow::{Workflow, WorkflowGraph, WorkflowName};
use baton_domain::{IdGenerator, UuidV7Generator};
use baton_storage::testing::TestDatabase;
use baton_storage::{ConnectOptions, Db};
use baton_tests::{TestApp, expect_error, json};
use serde_json::{Value, json};

/// The batched claim and report (`claim-batch`, `finish-batch`).
mod batches;

/// A server, a handle on its database, and the tokens the tests act with.
struct Harness {
    app: TestApp,
    db: Db,
    operator: String,
    admin: String,
}

impl Harness {
    async fn new(app: TestApp) -> Self {
        let db = Db::connect(app.database().url(), ConnectOptions::default())
            .await
            .expect("connect to the test database");
        let operator = app.user_token("ops", &["operator"]).await;
        let admin = app.admin_token().await;
        Self {
            app,
            db,
            operator,
            admin,
        }
    }

    async fn sqlite() -> Self {
        Self::new(TestApp::spawn_sqlite().await).await
    }

    async fn postgres() -> Self {
        Self::new(TestApp::spawn_postgres().await).await
    }

    /// A server whose engine runs every 50 ms, with `customise` applied.
    async fn fast_engine(customise: impl FnOnce(&mut baton_server::config::Config)) -> Self {
        Self::fast_engine_on(TestDatabase::sqlite().await, customise).await
    }

    /// [`Harness::fast_engine`] over `db`.
    async fn fast_engine_on(
        db: TestDatabase,
        customise: impl FnOnce(&mut baton_server::config::Config),
    ) -> Self {
        let app = TestApp::spawn_with(db, |c| {
            c.engine_tick_ms = 50;
            customise(c);
        })
        .await;
        Self::new(app).await
    }

    /// Stores a workflow `fetch → mail` with its agents; returns its id and agents.
    async fn workflow(&self) -> (WorkflowId, Vec<Agent>) {
        let graph = WorkflowGraph::parse(json!({
            "nodes": [
                {"id": "fetch", "type": "HttpRequest", "config": {"keep_messages_for": 3600}},
                {"id": "mail", "type": "Log"}
            ],
            "connections": [{"from": "fetch", "to": "mail"}]
        }))
        .unwrap();
        let workflow = Workflow::new(
            WorkflowId::from_uuid(UuidV7Generator.new_uuid()),
            WorkflowName::parse("nightly report").unwrap(),
            None,
            graph,
            serde_json::Map::new(),
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let agents = Agent::from_workflow(&workflow, &[], || {
            AgentId::from_uuid(UuidV7Generator.new_uuid())
        });
        self.db.insert_workflow(&workflow, &agents).await.unwrap();
        (workflow.id, agents)
    }

    /// Creates a robot as the admin and returns its token.
    async fn robot(&self, robot_id: &str) -> String {
        let (status, body) = json(
            self.app
                .client
                .post(self.app.url("/api/v1/robots"))
                .bearer_auth(&self.admin)
                .json(&json!({"robot_id": robot_id}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Runs the workflow now as the operator; returns the job's id.
    async fn run(&self, workflow: WorkflowId, priority: u8) -> String {
        let (status, body) = json(
            self.app
                .client
                .post(self.app.url("/api/v1/jobs"))
                .bearer_auth(&self.operator)
                .json(&json!({"workflow_id": workflow.to_string(), "priority": priority}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        body["job_id"].as_str().unwrap().to_owned()
    }

    /// A robot-protocol call as `robot_id` with `token`; `path` follows `/robots/{robot_id}`.
    async fn call(
        &self,
        robot_id: &str,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .app
            .client
            .post(self.app.url(&format!("/api/v1/robots/{robot_id}{path}")))
            .header("X-Api-Token", token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// A job call (`start`, `progress`, …) answered 200; returns the body.
    async fn job_call(
        &self,
        robot: (&str, &str),
        job: &str,
        action: &str,
        body: Option<Value>,
    ) -> Value {
        let response = self
            .call(robot.0, robot.1, &format!("/jobs/{job}/{action}"), body)
            .await;
        let (status, body) = json(response).await;
        assert_eq!(status, 200, "{action}: {body}");
        body
    }

    /// A claim that must hand out a job; returns it.
    async fn claim(&self, robot: (&str, &str), wait_seconds: u64) -> Value {
        let response = self
            .call(
                robot.0,
                robot.1,
                "/jobs/claim",
                Some(json!({"wait_seconds": wait_seconds})),
            )
            .await;
        let (status, body) = json(response).await;
        assert_eq!(status, 200, "claim: {body}");
        body
    }

    async fn job(&self, id: &str) -> Value {
        let (status, body) = json(
            self.app
                .client
                .get(self.app.url(&format!("/api/v1/jobs/{id}")))
                .bearer_auth(&self.operator)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Job `id` as `GET /jobs` lists it.
    async fn listed_job(&self, id: &str) -> Value {
        let (status, body) = json(
            self.app
                .client
                .get(self.app.url("/api/v1/jobs"))
                .bearer_auth(&self.operator)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .unwrap()
            .iter()
            .find(|job| job["job_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("job {id} is not listed: {body}"))
    }

    async fn cancel(&self, id: &str, hard: bool) -> Value {
        let (status, body) = json(
            self.app
                .client
                .post(self.app.url(&format!("/api/v1/jobs/{id}/cancel")))
                .bearer_auth(&self.operator)
                .json(&json!({"hard": hard}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The types of the events recorded about job `id`, oldest first.
    async fn job_events(&self, id: &str) -> Vec<String> {
        let id: JobId = id.parse().unwrap();
        let (events, _) = self
            .db
            .list_events(&EventFilter {
                limit: 1000,
                ..EventFilter::default()
            })
            .await
            .unwrap();
        let mut types: Vec<String> = events
            .iter()
            .filter(|e| e.job_id == Some(id))
            .map(|e| e.event_type.to_string())
            .collect();
        types.reverse();
        types
    }

    /// Waits (up to 5 s) until the stored job satisfies `done`.
    async fn wait_for_job(&self, id: &str, done: impl Fn(&Job) -> bool) -> Job {
        let id: JobId = id.parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let job = self.db.get_job(id).await.unwrap();
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "job never got there: {job:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn progress(node: &str, messages: Value) -> Value {
    json!({"node_id": node, "node_type": "Log", "status": "completed", "duration_ms": 12,
           "output": {"ok": true}, "error": null, "messages": messages})
}

// ---- the whole loop ----

async fn a_job_runs_from_claim_to_completion(h: Harness) {
    let (workflow, agents) = h.workflow().await;
    let token = h.robot("robot-1").await;
    let robot = ("robot-1", token.as_str());
    let beat = h
        .call(
            "robot-1",
            &token,
            "/heartbeat",
            Some(json!({"cpu_percent": 5.0, "hostname": "host-1",
                        "capabilities": ["StartNode", "Log"]})),
        )
        .await;
    let (status, beat) = json(beat).await;
    assert_eq!(status, 200, "{beat}");
    assert_eq!(beat["hostname"], "host-1");
    assert_eq!(beat["capabilities"], json!(["StartNode", "Log"]));
    assert_eq!(beat["status"], "idle");

    let id = h.run(workflow, 10).await;
    let claimed = h.claim(robot, 0).await;
    assert_eq!(claimed["job_id"], id);
    assert_eq!(claimed["workflow_id"], workflow.to_string());
    assert_eq!(claimed["workflow_name"], "nightly report");
    assert_eq!(claimed["workflow_json"]["nodes"][0]["id"], "fetch");
    assert_eq!(claimed["input"], json!({}));
    assert_eq!(claimed["priority"], 10);
    assert_eq!(claimed["execution_mode"], "lan");
    assert_eq!(claimed["retry_count"], 0);
    assert_eq!(claimed["attempt"], 1, "a first claim is the first attempt");
    assert!(claimed["lease_expires_at"].is_string());
    let job = h.job(&id).await;
    assert_eq!(job["status"], "claimed");
    assert_eq!(job["robot_id"], "robot-1");
    assert_eq!(job["attempt"], 1);

    let (_, beat) = json(
        h.call("robot-1", &token, "/heartbeat", Some(json!({})))
            .await,
    )
    .await;
    assert_eq!(beat["status"], "busy");
    assert_eq!(beat["current_job_id"], id);

    let ack = h.job_call(robot, &id, "start", None).await;
    assert_eq!(
        ack,
        json!({"job_id": id, "status": "running", "cancel": null,
               "lease_expires_at": ack["lease_expires_at"]})
    );
    let ack = h
        .job_call(
            robot,
            &id,
            "progress",
            Some(progress("fetch", json!([{"status": 200}, {"rows": 3}]))),
        )
        .await;
    assert_eq!(ack["cancel"], Value::Null);
    assert_eq!(ack["status"], "running");
    let ack = h.job_call(robot, &id, "renew", None).await;
    assert_eq!(ack["cancel"], Value::Null);
    h.job_call(
        robot,
        &id,
        "progress",
        Some(progress("mail", json!([{"message": "sent"}]))),
    )
    .await;
    let done = h
        .job_call(robot, &id, "complete", Some(json!({"output": {"rows": 3}})))
        .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"], json!({"rows": 3}));

    let job = h.job(&id).await;
    assert_eq!(job["status"], "completed");
    let nodes: Vec<&str> = job["node_executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["fetch", "mail"]);
    assert_eq!(job["node_executions"][0]["duration_ms"], 12);
    assert_eq!(job["node_executions"][0]["status"], "completed");
    assert!(job["duration_ms"].is_i64());
    assert!(job["completed_at"].is_string());
    assert_eq!(job["lease_expires_at"], Value::Null);

    let now = time::OffsetDateTime::now_utc();
    let fetch = agents.iter().find(|a| a.node_id == "fetch").unwrap();
    let messages = h.db.list_messages(fetch.id, None, None, now).await.unwrap();
    let mut payloads: Vec<String> = messages.iter().map(|m| m.payload.to_string()).collect();
    payloads.sort();
    assert_eq!(payloads, [r#"{"rows":3}"#, r#"{"status":200}"#]);
    assert!(
        messages
            .iter()
            .all(|m| m.job_id == Some(id.parse().unwrap()))
    );
    let expires = messages[0].expires_at.unwrap() - messages[0].created_at;
    assert_eq!(
        expires,
        time::Duration::hours(1),
        "keep_messages_for applies"
    );
    let mail = agents.iter().find(|a| a.node_id == "mail").unwrap();
    assert_eq!(
        h.db.list_messages(mail.id, None, None, now)
            .await
            .unwrap()
            .len(),
        1
    );

    assert_eq!(
        h.job_events(&id).await,
        ["job_created", "job_claimed", "job_started", "job_completed"]
    );
    let (_, beat) = json(
        h.call("robot-1", &token, "/heartbeat", Some(json!({})))
            .await,
    )
    .await;
    assert_eq!(beat["status"], "idle");
    assert_eq!(beat["current_job_id"], Value::Null);
    assert_eq!(
        beat["hostname"], "host-1",
        "a heartbeat without one keeps it"
    );
}

#[tokio::test]
async fn a_job_runs_from_claim_to_completion_on_sqlite() {
    a_job_runs_from_claim_to_completion(Harness::sqlite().await).await;
}

#[tokio::test]
async fn a_job_runs_from_claim_to_completion_on_postgres() {
    a_job_runs_from_claim_to_completion(Harness::postgres().await).await;
}

#[tokio::test]
async fn a_failure_keeps_its_texts_truncated_to_their_limits() {
    let h = Harness::sqlite().await;
    let (workflow, _) = h.workflow().await;
    let token = h.robot("robot-1").await;
    let robot = ("robot-1", token.as_str());
    let id = h.run(workflow, 10).await;
    h.claim(robot, 0).await;
    let failed = h
        .job_call(
            robot,
            &id,
            "fail",
            Some(json!({"error_type": "E".repeat(150), "error_message": "é".repeat(5000)})),
        )
        .await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error_type"], "E".repeat(100));
    assert_eq!(failed["error_message"], "é".repeat(4000));
    assert_eq!(h.job_events(&id).await.last().unwrap(), "job_failed");
    let late = h
        .call("robot-1", &token, &format!("/jobs/{id}/complete"), None)
        .await;
    expect_error(late, 409).await;
}

#[tokio::test]
async fn progress_bodies_are_checked_field_by_field() {
    let h = Harness::sqlite().await;
    let (workflow, _) = h.workflow().await;
    let token = h.robot("robot-1").await;
    let id = h.run(workflow, 10).await;
    h.claim(("robot-1", &token), 0).await;
    let path = format!("/jobs/{id}/progress");
    let bad = h
        .call(
            "robot-1",
            &token,
            &path,
            Some(json!({"status": "exploded", "duration_ms": -5, "messages": "x"})),
        )
        .await;
    let body = expect_error(bad, 400).await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["node_id", "duration_ms", "messages"]);
    let bad_status = h
        .call(
            "robot-1",
            &token,
            &path,
            Some(json!({"node_id": "fetch", "status": "exploded"})),
        )
        .await;
    let body = expect_error(bad_status, 400).await;
    assert_eq!(body["errors"][0]["field"], "status");
    let unknown = h
        .call(
            "robot-1",
            &token,
            &format!("/jobs/{}/start", UuidV7Generator.new_uuid()),
            None,
        )
        .await;
    expect_error(unknown, 404).await;
    let not_an_id = h.call("robot-1", &token, "/jobs/nope/start", None).await;
    expect_error(not_an_id, 404).await;
}

// ---- claims ----

#[tokio::test]
async fn claims_take_the_highest_priority_then_the_oldest() {
    let h = Harness::sqlite().await;
    let (workflow, _) = h.workflow().await;
    let token = h.robot("robot-1").await;
    let robot = ("robot-1", token.as_str());
    let older = h.run(workflow, 10).await;
    let urgent = h.run(workflow, 0).await;
    let newer = h.run(workflow, 10).await;
    let lowest = h.run(workflow, 20).await;
    let mut order = Vec::new();
    for _ in 0..4 {
        let job = h.claim(robot, 0).await;
        let id = job["job_id"].as_str().unwrap().to_owned();
        h.job_call(robot, &id, "complete", None).await;
        order.push(id);
    }
    assert_eq!(order, [urgent, older, newer, lowest]);
}

#[tokio::test]
async fn a_long_poll_returns_a_job_queued_during_the_wait_and_204_without_one() {
    let h = Harness::sqlite().await;
    let (workflow, _) = h.workflow().await;
    let token = h.robot("robot-1").await;

    let started = Instant::now();
    let none = h
        .call(
            "robot-1",
            &token,
            "/jobs/claim",
            Some(json!({"wait_seconds": 1})),
        )
        .await;
    let waited = started.elapsed();
    assert_eq!(none.status().as_u16(), 204);
    assert!(none.bytes().await.unwrap().is_empty(), "204 has no body");
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");

    let client = h.app.client.clone();
    let url = h.app.url("/api/v1/robots/robot-1/jobs/claim");
    let robot_token = token.clone();
    let started = Instant::now();
    let waiting = tokio::spawn(async move {
        client
            .post(url)
            .header("X-Api-Token", robot_token)
            .json(&json!({"wait_seconds": 10}))
            .send()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    let id = h.run(workflow, 10).await;
    let (status, claimed) = json(waiting.await.unwrap()).await;
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(claimed["job_id"], id);
    assert!(started.elapsed() < Duration::from_secs(3));

    let bad = h
        .call(
            "robot-1",
            &token,
            "/jobs/claim",
            Some(json!({"wait_seconds": 31})),
        )
        .await;
    let body = expect_error(bad, 400).await;
    assert_eq!(body["errors"][0]["field"], "wait_seconds");
}

async fn concurrent_robots_never_share_a_job(h: Harness) {
    const JOBS: usize = 100;
    const ROBOTS: usize = 4;
    let (workflow, _) = h.workflow().await;
    let mut robots = Vec::new();
    for i in 0..ROBOTS {
        let id = format!("robot-{i}");
        let token = h.robot(&id).await;
        robots.push((id, token));
    }
    let mut queued = HashSet::new();
    for _ in 0..JOBS {
        queued.insert(h.run(workflow, 10).await);
    }
    let mut workers = Vec::new();
    for (robot_id, token) in robots {
        let client = h.app.client.clone();
        let base = h.app.url(&format!("/api/v1/robots/{robot_id}/jobs"));
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let response = client
                    .post(format!("{base}/claim"))
                    .header("X-Api-Token", &token)
                    .json(&json!({"wait_seconds": 1}))
                    .send()
                    .await
                    .unwrap();
                if response.status().as_u16() == 204 {
                    return mine;
                }
                let (status, job) = json(response).await;
                assert_eq!(status, 200, "{job}");
                let id = job["job_id"].as_str().unwrap().to_owned();
                let done = client
                    .post(format!("{base}/{id}/complete"))
                    .header("X-Api-Token", &token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(done.status().as_u16(), 200, "{id} was not this robot's");
                mine.push(id);
            }
        }));
    }
    let mut claimed = Vec::new();
    for worker in workers {
        claimed.extend(worker.await.unwrap());
    }
    let unique: HashSet<String> = claimed.iter().cloned().collect();
    assert_eq!(claimed.len(), JOBS, "every job claimed exactly once");
    assert_eq!(unique, queued);
}

#[tokio::test]
async fn concurrent_robots_never_share_a_job_on_sqlite() {
    concurrent_robots_never_share_a_job(Harness::sqlite().await).await;
}

#[tokio::test]
async fn concurrent_robots_never_share_a_job_on_postgres() {
    concurrent_robots_never_share_a_job(Harness::postgres().await).await;
}

// ---- cancellation and release ----

async fn a_soft_cancel_is_honoured_at_the_next_node(h: Harness) {
    let (workflow, _) = h.workflow().await;
    let token = h.robot("robot-1").await;
    let robot = ("robot-1", token.as_str());
    let id = h.run(workflow, 10).await;
    h.claim(robot, 0).await;
    h.job_call(robot, &id, "start", None).await;
    let asked = h.cancel(&id, false).await;
    assert_eq!(asked["status"], "running", "the robot still holds it");
    assert_eq!(asked["cancel_requested"], "soft");
    let ack = h
        .job_call(robot, &id, "progress", Some(progress("fetch", json!([]))))
        .await;
    assert_eq!(ack["cancel"], "soft");
    assert_eq!(ack["status"], "running");
    let done = h.job_call(robot, &id, "cancelled", None).await;
    assert_eq!(done["status"], "cancelled");
    assert_eq!(done["node_executions"].as_array().unwrap().len(), 1);
    assert_eq!(
        h.job_events(&id).await,
        ["job_created", "job_claimed", "job_started", "job_cancelled"]
    );
    let again = h
        .app
        .client
        .post(h.app.url(&format!("/api/v1/jobs/{id}/cancel")))
        .bearer_auth(&h.operator)
        .send()
        .await
        .unwrap();
    expect_error(again, 409).await;
}

#[tokio::test]
async fn a_soft_cancel_is_honoured_at_the_next_node_on_sqlite() {
    a_soft_cancel_is_honoured_at_the_next_node(Harness::sqlite().await).await;
}

#[tokio::test]
async fn a_soft_cancel_is_honoured_at_the_next_node_on_postgres() {
    a_soft_cancel_is_honoured_at_the_next_node(Harness::postgres().await).await;
}

async fn a_hard_cancel_stops_the_robot_at_its_next_call(h: Harness) {
    let (workflow, _) = h.workflow().await;
    let token = h.robot("robot-1").await;
    let robot = ("robot-1", token.as_str());
    let id = h.run(workflow, 10).await;
    h.claim(robot, 0).await;
    h.job_call(robot, &id, "start", None).await;
    let cancelled = h.cancel(&id, true).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_requested"], "hard");
    let ack = h
        .job_call(robot, &id, "progress", Some(progress("fetch", json!([1]))))
        .await;
    assert_eq!(ack["cancel"], "hard");
    assert_eq!(ack["status"], "cancelled");
    let ack = h.job_call(robot, &id, "renew", None).await;
    assert_eq!(ack["cancel"], "hard");
    let complete = h
        .call("robot-1", &token, &format!("/jobs/{id}/complete"), None)
        .await;
    expect_error(complete, 409).await;
    let fail = h
        .call("robot-1", &token, &format!("/jobs/{id}/fail"), None)
        .await;
    expect_error(fail, 409).await;
    let job = h.job(&id).await;
    assert!(job["node_executions"].as_array().unwrap().is_empty());
    let (_, beat) = json(
        h.call("robot-1", &token, "/heartbeat", Some(json!({})))
            .await,
    )
    .await;
    assert_eq!(beat["current_job_id"], Value::Null);
}

#[tokio::test]
async fn a_hard_cancel_stops_the_robot_at_its_next_call_on_sqlite() {
    a_hard_cancel_stops_the_robot_at_its_next_call(Harness::sqlite().await).await;
}

#[tokio::test]
async fn a_hard_cancel_stops_the_robot_at_its_next_call_on_postgres() {
    a_hard_cancel_stops_the_robot_at_its_next_call(Harness::postgres().await).await;
}

#[tokio::test]
async fn a_released_job_is_pending_again_without_spending_a_retry() {
    let h = Harness::sqlite().await;
    let (workflow, _) = h.workflow().await;
    let token = h.robot("robot-1").await;
    let other = h.robot("robot-2").await;
    let id = h.run(workflow, 10).await;
    h.claim(("robot-1", &token), 0).await;
    h.job_call(("robot-1", &token), &id, "start", None).await;
    let released = h.job_call(("robot-1", &token), &id, "release", None).await;
    assert_eq!(released["status"], "pending");
    assert_eq!(released["retry_count"], 0);
    assert_eq!(released["robot_id"], Value::Null);
    assert_eq!(h.job_events(&id).await.last().unwrap(), "job_requeued");
    let again = h.claim(("robot-2", &other), 0).await;
    assert_eq!(again["job_id"], id);
    assert_eq!(again["retry_count"], 0);
}

/// A robot gives a job back after running a node; the next robot's claim says it is the second
/// attempt, so its nodes know the first node's side effects may already have happened.
async fn a_job_claimed_again_after_a_release_is_its_second_attempt(h: Harness) {
    let (workflow, _) = h.workflow().await;
    let token = h.robot("robot-1").await;
    let other = h.robot("robot-2").await;
    let id = h.run(workflow, 10).await;
    let first = h.claim(("robot-1", &token), 0).await;
    assert_eq!(first["attempt"], 1);
    h.job_call(("robot-1", &token), &id, "start", None).await;
    h.job_call(
        ("robot-1", &token),
        &id,
        "progress",
        Some(progress("fetch", json!([{"sent": 1}]))),
    )
    .await;
    let released = h.job_call(("robot-1", &token), &id, "release", None).await;
    assert_eq!(released["status"], "pending");
    assert_eq!(released["attempt"], 1, "a release starts no attempt");
    let again = h.claim(("robot-2", &other), 0).await;
    assert_eq!(again["job_id"], id);
    assert_eq!(again["attempt"], 2);
    assert_eq!(again["retry_count"], 0, "a release spends no retry");
    let job = h.job(&id).await;
    assert_eq!(job["attempt"], 2);
    assert_eq!(job["robot_id"], "robot-2");
    let listed = h.listed_job(&id).await;
    assert_eq!(listed["attempt"], 2);
}

#[tokio::test]
async fn a_job_claimed_again_after_a_release_is_its_second_attempt_on_sqlite() {
    a_job_claimed_again_after_a_release_is_its_second_attempt(Harness::sqlite().await).await;
}

#[tokio::test]
async fn a_job_claimed_again_after_a_release_is_its_second_attempt_on_postgres() {
    a_job_claimed_again_after_a_release_is_its_second_attempt(Harness::postgres().await).await;
}

// ---- the engine ----

/// Moves a held job's lease into the past, as if its robot had stopped renewing long ago.
async fn lapse_lease(h: &Harness, id: &str, change: impl FnOnce(&mut JobRecord)) {
    let mut job = h.db.get_job(id.parse().unwrap()).await.unwrap();
    job.edit(|r| {
        r.lease_expires_at = Some(time::OffsetDateTime::now_utc() - time::Duration::seconds(1));
        change(r);
    });
    h.db.update_job(&job, &[]).await.unwrap();
}

#[tokio::test]
async fn expired_leases_requeue_then_fail_and_a_late_robot_is_refused() {
    let h = Harness::fast_engine(|_| {}).await;
    let (workflow, _) = h.workflow().await;
    let token = h.robot("robot-1").await;
    let robot = ("robot-1", token.as_str());

    let id = h.run(workflow, 10).await;
    h.claim(robot, 0).await;
    h.job_call(robot, &id, "start", None).await;
    lapse_lease(&h, &id, |_| {}).await;
    let job = h
        .wait_for_job(&id, |j| j.status() == JobStatus::Pending)
        .await;
    assert_eq!(job.retry_count(), 1);
    assert_eq!(job.robot_id(), None);
    assert_eq!(h.job_events(&id).await.last().unwrap(), "job_requeued");
    let late = h
        .call("robot-1", &token, &format!("/jobs/{id}/complete"), None)
        .await;
    expect_error(late, 409).await;

    h.claim(robot, 0).await;
    lapse_lease(&h, &id, |job| job.retry_count = job.max_retries).await;
    let job = h.wait_for_job(&id, |j| j.status().is_final()).await;
    assert_eq!(job.status(), JobStatus::Failed);
    assert_eq!(job.error_type(), Some(Job::LEASE_EXPIRED));

    let cancelled = h.run(workflow, 10).await;
    h.claim(robot, 0).await;
    h.cancel(&cancelled, false).await;
    lapse_lease(&h, &cancelled, |_| {}).await;
    let job = h.wait_for_job(&cancelled, |j| j.status().is_final()).await;
    assert_eq!(job.status(), JobStatus::Cancelled);
    // The robot that held it learns of the cancel, and may acknowledge it.
    let ack = h.job_call(robot, &cancelled, "renew", None).await;
    assert_eq!(ack["cancel"], "soft");
    h.job_call(robot, &cancelled, "cancelled", None).await;
}

/// A robot crashes mid-job: the engine recovers the job when its lease runs out, and the claim
/// that picks it up again is the second attempt.
async fn a_job_claimed_again_after_its_lease_ran_out_is_its_second_attempt(h: Harness) {
    let (workflow, _) = h.workflow().await;
    let token = h.robot("robot-1").await;
    let other = h.robot("robot-2").await;
    let id = h.run(workflow, 10).await;
    assert_eq!(h.claim(("robot-1", &token), 0).await["attempt"], 1);
    h.job_call(("robot-1", &token), &id, "start", None).await;
    lapse_lease(&h, &id, |_| {}).await;
    let recovered = h
        .wait_for_job(&id, |j| j.status() == JobStatus::Pending)
        .await;
    assert_eq!(
        recovered.attempt(),
        1,
        "the recovery itself starts no attempt"
    );
    assert_eq!(h.job(&id).await["attempt"], 1);
    let again = h.claim(("robot-2", &other), 0).await;
    assert_eq!(again["job_id"], id);
    assert_eq!(again["attempt"], 2);
    assert_eq!(again["retry_count"], 1);
    assert_eq!(h.job(&id).await["attempt"], 2);
}

#[tokio::test]
async fn a_job_claimed_again_after_its_lease_ran_out_is_its_second_attempt_on_sqlite() {
    let h = Harness::fast_engine(|_| {}).await;
    a_job_claimed_again_after_its_lease_ran_out_is_its_second_attempt(h).await;
}

#[tokio::test]
async fn a_job_claimed_again_after_its_lease_ran_out_is_its_second_attempt_on_postgres() {
    let h = Harness::fast_engine_on(TestDatabase::postgres().await, |_| {}).await;
    a_job_claimed_again_after_its_lease_ran_out_is_its_second_attempt(h).await;
}

#[tokio::test]
async fn a_robot_without_a_heartbeat_is_marked_offline() {
    let h = Harness::fast_engine(|c| c.robot_offline_seconds = 1).await;
    let token = h.robot("robot-1").await;
    let beat = h
        .call("robot-1", &token, "/heartbeat", Some(json!({})))
        .await;
    assert_eq!(beat.status().as_u16(), 200);
    let robot_id = RobotId::parse("robot-1").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let robot = h.db.get_robot(&robot_id).await.unwrap();
        if robot.status() == RobotStatus::Offline {
            let seen = robot.last_heartbeat().unwrap();
            let silent = time::OffsetDateTime::now_utc() - seen;
            assert!(silent >= time::Duration::seconds(1), "{silent}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the robot was never marked offline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (events, _) =
        h.db.list_events(&EventFilter {
            event_type: Some("robot_offline".parse().unwrap()),
            limit: 10,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].robot_id, Some(robot_id));
    let (_, back) = json(
        h.call("robot-1", &token, "/heartbeat", Some(json!({})))
            .await,
    )
    .await;
    assert_eq!(back["status"], "idle", "a heartbeat brings it back");
}

// ---- who may act for whom ----

#[tokio::test]
async fn a_robot_acts_only_as_itself_and_only_on_its_own_jobs() {
    let h = Harness::sqlite().await;
    let (workflow, _) = h.workflow().await;
    let token_a = h.robot("robot-a").await;
    let token_b = h.robot("robot-b").await;
    let id = h.run(workflow, 10).await;
    h.claim(("robot-a", &token_a), 0).await;

    let posing = h
        .call("robot-a", &token_b, &format!("/jobs/{id}/start"), None)
        .await;
    expect_error(posing, 403).await;
    let posing_claim = h
        .call(
            "robot-a",
            &token_b,
            "/jobs/claim",
            Some(json!({"wait_seconds": 0})),
        )
        .await;
    expect_error(posing_claim, 403).await;
    for action in ["start", "renew", "complete", "fail", "release", "cancelled"] {
        let theirs = h
            .call("robot-b", &token_b, &format!("/jobs/{id}/{action}"), None)
            .await;
        expect_error(theirs, 409).await;
    }
    let theirs = h
        .call(
            "robot-b",
            &token_b,
            &format!("/jobs/{id}/progress"),
            Some(progress("fetch", json!([]))),
        )
        .await;
    expect_error(theirs, 409).await;
    let anonymous = h
        .app
        .client
        .post(h.app.url("/api/v1/robots/robot-a/jobs/claim"))
        .send()
        .await
        .unwrap();
    expect_error(anonymous, 401).await;

    // With ROBOT_AUTH_ENABLED off (the default) an operator may act for an existing robot.
    let for_robot = h
        .app
        .client
        .post(
            h.app
                .url(&format!("/api/v1/robots/robot-a/jobs/{id}/renew")),
        )
        .bearer_auth(&h.operator)
        .send()
        .await
        .unwrap();
    assert_eq!(for_robot.status().as_u16(), 200);
    let invented = h
        .app
        .client
        .post(h.app.url("/api/v1/robots/nobody/jobs/claim"))
        .bearer_auth(&h.operator)
        .json(&json!({"wait_seconds": 0}))
        .send()
        .await
        .unwrap();
    expect_error(invented, 404).await;
    let viewer = h.app.user_token("watcher", &["viewer"]).await;
    let refused = h
        .app
        .client
        .post(
            h.app
                .url(&format!("/api/v1/robots/robot-a/jobs/{id}/renew")),
        )
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    expect_error(refused, 403).await;
}
