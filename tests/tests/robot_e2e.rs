//! The reference robot end to end: a real `baton` server (in this process) and a real
//! `baton-robot` process speaking the robot protocol to it. A workflow runs to completion with
//! its node executions and agents' messages; a hard cancel stops a long `Delay` within seconds
//! and the robot claims on; a robot killed mid-job leaves its job to lease recovery and shows
//! offline; SIGTERM gives the job back and exits 0; a wrong token exits non-zero at once.

// A test crate: a panic is a failed assertion with its location, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use baton_domain::job::JobStatus;
use baton_domain::ports::{JobRepository, RobotRepository};
use baton_domain::robot::{RobotId, RobotStatus};
use baton_server::config::Config;
use baton_storage::testing::TestDatabase;
use baton_storage::{ConnectOptions, Db};
use baton_tests::{RobotProcess, TestApp, json};
use serde_json::{Value, json};

/// A server whose engine runs every 50 ms, and an admin token to drive it.
struct Server {
    app: TestApp,
    admin: String,
}

impl Server {
    async fn start(customise: impl FnOnce(&mut Config)) -> Self {
        let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| {
            c.engine_tick_ms = 50;
            customise(c);
        })
        .await;
        let admin = app.admin_token().await;
        Self { app, admin }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        json(
            self.app
                .client
                .post(self.app.url(path))
                .bearer_auth(&self.admin)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = json(
            self.app
                .client
                .get(self.app.url(path))
                .bearer_auth(&self.admin)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Creates a robot and returns its token.
    async fn robot(&self, robot_id: &str) -> String {
        let (status, body) = self
            .post("/api/v1/robots", json!({ "robot_id": robot_id }))
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Submits a workflow to run now; returns its workflow id and job id.
    async fn submit(&self, name: &str, workflow_json: Value) -> (String, String) {
        let (status, body) = self
            .post(
                "/api/v1/workflows",
                json!({"workflow_name": name, "workflow_json": workflow_json,
                       "trigger_type": "manual"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        (
            body["workflow_id"].as_str().unwrap().to_owned(),
            body["job_id"].as_str().unwrap().to_owned(),
        )
    }

    async fn job(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/jobs/{id}")).await
    }

    /// Polls the job until `done` holds, for up to `within`; panics with the robot's log.
    async fn wait_for_job(
        &self,
        id: &str,
        robot: &RobotProcess,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let job = self.job(id).await;
            if done(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job never got there: {job}\nrobot log:\n{}",
                robot.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The payloads of the messages of node `node_id`'s agent, newest first.
    async fn messages(&self, workflow_id: &str, node_id: &str) -> Vec<Value> {
        let agents = self.get("/api/v1/agents").await;
        let agent = agents
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["workflow_id"] == workflow_id && a["node_id"] == node_id)
            .unwrap_or_else(|| panic!("no agent for node {node_id} in {agents}"));
        let listed = self
            .get(&format!(
                "/api/v1/agents/{}/messages",
                agent["id"].as_str().unwrap()
            ))
            .await;
        let mut payloads = Vec::new();
        for message in listed.as_array().unwrap() {
            let full = self
                .get(&format!(
                    "/api/v1/messages/{}",
                    message["id"].as_str().unwrap()
                ))
                .await;
            payloads.push(full["payload"].clone());
        }
        payloads
    }
}

fn long_delay() -> Value {
    json!({"nodes": [
        {"id": "start", "type": "StartNode"},
        {"id": "wait", "type": "Delay", "config": {"seconds": 60}},
        {"id": "end", "type": "EndNode"}
    ], "connections": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "end"}]})
}

fn is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |job| job["status"] == status
}

#[tokio::test]
async fn a_workflow_runs_to_completion_with_its_nodes_and_messages() {
    let server = Server::start(|_| {}).await;
    let token = server.robot("robot-1").await;
    let robot = RobotProcess::start(&server.app.address, "robot-1", &token);
    let data = json!({"customer": "ACME", "total": 42});
    let (workflow, job) = server
        .submit(
            "greeting",
            json!({
                "nodes": [
                    {"id": "start", "type": "StartNode"},
                    {"id": "set", "type": "SetData", "config": {"data": data.clone()}},
                    {"id": "log", "type": "Log", "config": {"message": "hello from the robot"}},
                    {"id": "end", "type": "EndNode"}
                ],
                "connections": [{"from": "start", "to": "set"}, {"from": "set", "to": "log"},
                                {"from": "log", "to": "end"}]
            }),
        )
        .await;

    let done = server
        .wait_for_job(&job, &robot, Duration::from_secs(15), |j| {
            j["status"] != "pending" && j["status"] != "claimed" && j["status"] != "running"
        })
        .await;
    assert_eq!(done["status"], "completed", "{done}\n{}", robot.log());
    assert_eq!(done["robot_id"], "robot-1");
    let nodes: Vec<(&str, &str)> = done["node_executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node_id"].as_str().unwrap(),
                n["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        [
            ("start", "completed"),
            ("set", "completed"),
            ("log", "completed"),
            ("end", "completed")
        ]
    );
    assert_eq!(
        done["output"],
        json!({"set": data, "log": {"message": "hello from the robot"}})
    );

    assert_eq!(server.messages(&workflow, "set").await, [data]);
    assert_eq!(
        server.messages(&workflow, "log").await,
        [json!({"message": "hello from the robot"})]
    );
    assert!(server.messages(&workflow, "start").await.is_empty());
    assert!(server.messages(&workflow, "end").await.is_empty());
    assert!(robot.log().contains("hello from the robot"));
    assert!(
        !robot.log().contains(&token),
        "the token must never be logged"
    );
}

#[tokio::test]
async fn a_hard_cancel_stops_a_long_delay_and_the_robot_claims_on() {
    let server = Server::start(|_| {}).await;
    let token = server.robot("robot-1").await;
    let robot = RobotProcess::start(&server.app.address, "robot-1", &token);
    let (_, job) = server.submit("sleepy", long_delay()).await;
    server
        .wait_for_job(&job, &robot, Duration::from_secs(15), is("running"))
        .await;

    let cancelled_at = Instant::now();
    let (status, body) = server
        .post(&format!("/api/v1/jobs/{job}/cancel"), json!({"hard": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.job(&job).await["status"], "cancelled");
    // The next renewal (every second here) answers `hard`: the Delay is dropped at once.
    robot
        .wait_for_log("job cancelled hard", Duration::from_secs(5))
        .await;
    assert!(cancelled_at.elapsed() < Duration::from_secs(5));

    let (_, second) = server
        .submit(
            "quick",
            json!({"nodes": [{"id": "set", "type": "SetData", "config": {"data": {"ok": true}}}]}),
        )
        .await;
    server
        .wait_for_job(&second, &robot, Duration::from_secs(10), is("completed"))
        .await;
    let first = server.job(&job).await;
    assert_eq!(first["status"], "cancelled");
    assert_eq!(
        first["node_executions"].as_array().unwrap().len(),
        1,
        "{first}"
    );
}

#[tokio::test]
async fn a_robot_killed_mid_job_leaves_it_to_lease_recovery_and_goes_offline() {
    let server = Server::start(|c| c.robot_offline_seconds = 2).await;
    let db = Db::connect(server.app.database().url(), ConnectOptions::default())
        .await
        .unwrap();
    let token = server.robot("robot-1").await;
    let mut robot = RobotProcess::start(&server.app.address, "robot-1", &token);
    let (_, job) = server.submit("sleepy", long_delay()).await;
    server
        .wait_for_job(&job, &robot, Duration::from_secs(15), is("running"))
        .await;

    robot.kill(); // SIGKILL: no release, no more renewals or heartbeats
    // The server's lease is 60 s, with no setting to shorten it: move its end into the past,
    // as if the robot had been gone that long.
    let id = job.parse().unwrap();
    let mut held = db.get_job(id).await.unwrap();
    assert_eq!(held.status(), JobStatus::Running);
    held.edit(|r| {
        r.lease_expires_at = Some(time::OffsetDateTime::now_utc() - time::Duration::seconds(1))
    });
    db.update_job(&held, &[]).await.unwrap();

    let pending = server
        .wait_for_job(&job, &robot, Duration::from_secs(5), is("pending"))
        .await;
    assert_eq!(pending["retry_count"], 1);
    assert_eq!(pending["robot_id"], Value::Null);

    let robot_id = RobotId::parse("robot-1").unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while db.get_robot(&robot_id).await.unwrap().status() != RobotStatus::Offline {
        assert!(
            Instant::now() < deadline,
            "the robot was never marked offline"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sigterm_mid_job_releases_the_job_and_exits_zero() {
    let server = Server::start(|_| {}).await;
    let token = server.robot("robot-1").await;
    let mut robot = RobotProcess::start(&server.app.address, "robot-1", &token);
    let (_, job) = server.submit("sleepy", long_delay()).await;
    server
        .wait_for_job(&job, &robot, Duration::from_secs(15), is("running"))
        .await;

    let stopped_at = Instant::now();
    robot.terminate();
    let status = robot.wait_for_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit {status}; log:\n{}", robot.log());
    assert!(stopped_at.elapsed() < Duration::from_secs(5));
    assert!(robot.log().contains("job released"), "{}", robot.log());

    let released = server.job(&job).await;
    assert_eq!(released["status"], "pending", "{released}");
    assert_eq!(released["retry_count"], 0, "a release spends no retry");
    assert_eq!(released["robot_id"], Value::Null);
}

#[tokio::test]
async fn a_refused_token_exits_non_zero_with_the_reason() {
    let server = Server::start(|_| {}).await;
    server.robot("robot-1").await;
    let mut robot = RobotProcess::start(&server.app.address, "robot-1", "br_not-the-token");
    let status = robot.wait_for_exit(Duration::from_secs(10)).await;
    assert!(!status.success());
    let log = robot.log();
    assert!(
        log.contains("refused the token of robot 'robot-1'"),
        "{log}"
    );
    assert!(log.contains("BATON_ROBOT_TOKEN"), "{log}");
}
