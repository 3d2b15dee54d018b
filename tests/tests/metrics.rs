//! CasareRPA's metrics endpoints over HTTP (`/api/v1/metrics/*`), on SQLite and PostgreSQL:
//! every field of every answer checked against robots, workflows and jobs the test created
//! (through the HTTP API and the robot protocol, or stored directly with known times), every
//! query parameter's range edges and filters, 404s, the activity feed of real events, the
//! permission they need, and their seeded rate limits. docs/metrics.md states what each figure
//! covers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use baton_domain::agent::Agent;
use baton_domain::ids::{AgentId, JobId, WorkflowId};
use baton_domain::job::{Job, JobOrigin, JobStatus, NewJob, Priority};
use baton_domain::ports::{JobRepository, WorkflowRepository};
use baton_domain::robot::RobotId;
use baton_domain::workflow::{ExecutionMode, Workflow, WorkflowGraph, WorkflowName};
use baton_domain::{IdGenerator, Timestamp, UuidV7Generator};
use baton_storage::Db;
use baton_storage::testing::TestDatabase;
use baton_tests::{TestApp, expect_error, json};
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
    fleet_robots_and_job_history_show_what_happened,
    analytics_compute_rates_percentiles_and_distributions,
    the_activity_feed_lists_real_events_with_filters,
    metrics_need_the_read_permission,
    each_metrics_route_has_its_seeded_rate_limit,
);

/// A server, a handle on its database, an admin token (to set things up) and a viewer token
/// (what reads the metrics: they need only the Read permission).
struct Env {
    app: TestApp,
    db: Db,
    admin: String,
    viewer: String,
}

impl Env {
    async fn start(
        db: TestDatabase,
        customise: impl FnOnce(&mut baton_server::config::Config),
    ) -> Self {
        let app = TestApp::spawn_with(db, customise).await;
        let db = app.database().connect().await;
        let admin = app.admin_token().await;
        let viewer = app.user_token("watcher", &["viewer"]).await;
        Env {
            app,
            db,
            admin,
            viewer,
        }
    }

    /// A server without rate limits, so the tests may call as often as they check.
    async fn unlimited(db: TestDatabase) -> Self {
        Self::start(db, |c| c.rate_limits = false).await
    }

    /// `GET path` as the viewer.
    async fn get(&self, path: &str) -> (u16, Value) {
        json(self.get_raw(path).await).await
    }

    async fn get_raw(&self, path: &str) -> reqwest::Response {
        self.app
            .client
            .get(self.app.url(path))
            .bearer_auth(&self.viewer)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` answered 200; its body.
    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// `GET path` answered 400 naming exactly `fields`.
    async fn refused(&self, path: &str, fields: &[&str]) {
        let body = expect_error(self.get_raw(path).await, 400).await;
        let named: Vec<&str> = body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no field list in {body}"))
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{path}: {body}");
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, body) = json(
            self.app
                .client
                .post(self.app.url(path))
                .bearer_auth(&self.admin)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(status == 200 || status == 201, "{path}: {status} {body}");
        body
    }

    /// Stores a workflow `fetch → mail` named `name`.
    async fn workflow(&self, name: &str) -> WorkflowId {
        let graph = WorkflowGraph::parse(json!({
            "nodes": [{"id": "fetch", "type": "Log"}, {"id": "mail", "type": "Log"}],
            "connections": [{"from": "fetch", "to": "mail"}]
        }))
        .unwrap();
        let workflow = Workflow::new(
            WorkflowId::from_uuid(UuidV7Generator.new_uuid()),
            WorkflowName::parse(name).unwrap(),
            None,
            graph,
            serde_json::Map::new(),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let agents = Agent::from_workflow(&workflow, &[], || {
            AgentId::from_uuid(UuidV7Generator.new_uuid())
        });
        self.db.insert_workflow(&workflow, &agents).await.unwrap();
        workflow.id
    }

    /// Creates a robot (as the admin) and returns its token.
    async fn robot(&self, robot_id: &str, hostname: Option<&str>) -> String {
        let body = self
            .post(
                "/api/v1/robots",
                json!({"robot_id": robot_id, "hostname": hostname}),
            )
            .await;
        body["token"].as_str().unwrap().to_owned()
    }

    /// A robot-protocol call answered 200; `path` follows `/robots/{robot_id}`.
    async fn as_robot(&self, robot: (&str, &str), path: &str, body: Value) -> Value {
        let (status, answer) = json(
            self.app
                .client
                .post(self.app.url(&format!("/api/v1/robots/{}{path}", robot.0)))
                .header("X-Api-Token", robot.1)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{path}: {answer}");
        answer
    }

    /// Runs the workflow now; returns the job's id.
    async fn run(&self, workflow: WorkflowId) -> String {
        let job = self
            .post("/api/v1/jobs", json!({"workflow_id": workflow.to_string()}))
            .await;
        job["job_id"].as_str().unwrap().to_owned()
    }

    /// The robot claims the job it is expected to get.
    async fn claim(&self, robot: (&str, &str), expected: &str) {
        let claimed = self
            .as_robot(robot, "/jobs/claim", json!({"wait_seconds": 0}))
            .await;
        assert_eq!(claimed["job_id"], expected);
    }

    async fn job_call(&self, robot: (&str, &str), job: &str, action: &str, body: Value) -> Value {
        self.as_robot(robot, &format!("/jobs/{job}/{action}"), body)
            .await
    }
}

/// Now, to the microsecond as stored.
fn now() -> Timestamp {
    baton_domain::clock::truncate_to_micros(OffsetDateTime::now_utc())
}

fn instant(value: &Value) -> Timestamp {
    OffsetDateTime::parse(value.as_str().unwrap(), &Rfc3339).unwrap()
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["job_id"].as_str().unwrap())
        .collect()
}

fn strs<const N: usize>(ids: [&String; N]) -> [&str; N] {
    ids.map(String::as_str)
}

/// Seconds to the millisecond, as the API rounds a mean of milliseconds.
fn seconds(ms: i64) -> f64 {
    (ms as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// Tests about "today" run their days' worth of work within one UTC day: within two minutes of
/// midnight, wait until it has passed (this rarely waits at all).
async fn clear_of_midnight() {
    let now = OffsetDateTime::now_utc();
    let into_day = i64::from(now.hour()) * 3600 + i64::from(now.minute()) * 60;
    let left = 86_400 - into_day - i64::from(now.second());
    if left < 120 {
        tokio::time::sleep(Duration::from_secs(u64::try_from(left).unwrap() + 1)).await;
    }
}

/// A job of `workflow` stored directly: created at `created`, started a second later by
/// `robot`, and `status` after `ms` milliseconds of work (no end for pending or running jobs).
fn stored(
    workflow: (WorkflowId, &str),
    status: JobStatus,
    created: Timestamp,
    ms: i64,
    robot: Option<&str>,
) -> Job {
    let mut job = NewJob {
        workflow_id: workflow.0,
        workflow_name: WorkflowName::parse(workflow.1).unwrap(),
        priority: Priority::default(),
        execution_mode: ExecutionMode::Lan,
        input: serde_json::Map::new(),
        origin: JobOrigin::Manual,
        max_retries: NewJob::DEFAULT_MAX_RETRIES,
    }
    .into_job(JobId::from_uuid(UuidV7Generator.new_uuid()), created);
    job.edit(|r| r.status = status);
    if status != JobStatus::Pending {
        let start = created + time::Duration::seconds(1);
        job.edit(|r| r.robot_id = robot.map(|r| RobotId::parse(r).unwrap()));
        job.edit(|r| r.claimed_at = Some(start));
        job.edit(|r| r.started_at = Some(start));
        if status.is_final() {
            job.edit(|r| r.completed_at = Some(start + time::Duration::milliseconds(ms)));
        }
    }
    job
}

// ---- fleet, robots, job history ----

/// Five robots (two busy, two idle, one never seen), six jobs today in every state, and a job
/// robot-a finished two days ago; then every figure of the fleet, robots and jobs endpoints.
async fn fleet_robots_and_job_history_show_what_happened(db: TestDatabase) {
    clear_of_midnight().await;
    let env = Env::unlimited(db).await;
    let reports = env.workflow("Daily Report").await;
    let invoices = env.workflow("Invoices").await;

    let mut tokens = Vec::new();
    for (id, host) in [
        ("robot-a", None),
        ("robot-b", None),
        ("robot-c", None),
        ("robot-d", Some("desk-d")),
        ("robot-e", None),
    ] {
        tokens.push(env.robot(id, host).await);
    }
    let robot = |i: usize| {
        (
            ["robot-a", "robot-b", "robot-c", "robot-d", "robot-e"][i],
            tokens[i].as_str(),
        )
    };
    for (i, load) in [
        (
            0,
            json!({"cpu_percent": 45.2, "memory_mb": 1024.5, "memory_percent": 65.3, "hostname": "desktop-a"}),
        ),
        (
            1,
            json!({"cpu_percent": 10.0, "memory_mb": 512.0, "memory_percent": 20.0}),
        ),
        (2, json!({})),
        (4, json!({"cpu_percent": 1.5})),
    ] {
        env.as_robot(robot(i), "/heartbeat", load).await;
    }

    // robot-a completes job 1 (one node reported) and fails job 2.
    let job1 = env.run(reports).await;
    env.claim(robot(0), &job1).await;
    env.job_call(robot(0), &job1, "start", json!({})).await;
    env.job_call(
        robot(0),
        &job1,
        "progress",
        json!({"node_id": "fetch", "status": "completed", "duration_ms": 85, "messages": []}),
    )
    .await;
    env.job_call(robot(0), &job1, "complete", json!({"output": {"rows": 3}}))
        .await;
    let job2 = env.run(invoices).await;
    env.claim(robot(0), &job2).await;
    env.job_call(robot(0), &job2, "start", json!({})).await;
    env.job_call(
        robot(0),
        &job2,
        "fail",
        json!({"error_type": "TimeoutError", "error_message": "the page took too long"}),
    )
    .await;
    // robot-b runs job 3, robot-c has claimed job 4, job 5 waits, job 6 was cancelled.
    let job3 = env.run(reports).await;
    env.claim(robot(1), &job3).await;
    env.job_call(robot(1), &job3, "start", json!({})).await;
    let job4 = env.run(invoices).await;
    env.claim(robot(2), &job4).await;
    let job5 = env.run(reports).await;
    let job6 = env.run(invoices).await;
    env.post(
        &format!("/api/v1/jobs/{job6}/cancel"),
        json!({"hard": true}),
    )
    .await;
    // robot-a finished a job two days ago: it is history, not today's work.
    let midnight = now().replace_time(time::Time::MIDNIGHT);
    let earlier = stored(
        (reports, "Daily Report"),
        JobStatus::Completed,
        midnight - time::Duration::days(2),
        5_000,
        Some("robot-a"),
    );
    env.db.insert_job(&earlier, &[]).await.unwrap();
    let old = earlier.id().to_string();

    // Every job as /metrics/jobs/{job_id} shows it.
    let detail1 = env.ok(&format!("/api/v1/metrics/jobs/{job1}")).await;
    let job1_ms = (instant(&detail1["completed_at"]) - instant(&detail1["started_at"]))
        .whole_milliseconds() as i64;
    check_job_detail(&env, &detail1, &job1, &job2, reports, invoices, job1_ms).await;

    // ---- fleet ----
    let fleet = env.ok("/api/v1/metrics/fleet").await;
    assert_eq!(
        fleet,
        json!({
            "total_robots": 5,
            "active_robots": 2,
            "idle_robots": 2,
            "offline_robots": 1,
            "total_jobs_today": 6,
            "active_jobs": 2,
            "queue_depth": 1,
            "average_job_duration_seconds": seconds(job1_ms),
        })
    );

    // ---- robots ----
    let robots = env.ok("/api/v1/metrics/robots").await;
    let listed: Vec<&str> = robots
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["robot_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ["robot-a", "robot-b", "robot-c", "robot-d", "robot-e"]
    );
    let a = &robots[0];
    assert_eq!(a["hostname"], "desktop-a");
    assert_eq!(a["status"], "idle");
    assert_eq!(a["cpu_percent"], 45.2);
    assert_eq!(a["memory_mb"], 1024.5);
    assert_eq!(a["memory_percent"], 65.3);
    assert_eq!(a["current_job_id"], Value::Null);
    let beat = instant(&a["last_heartbeat"]);
    assert!(now() - beat < time::Duration::minutes(1), "{beat}");
    assert_eq!(robots[1]["status"], "busy");
    assert_eq!(robots[1]["current_job_id"], job3);
    assert_eq!(robots[1]["cpu_percent"], 10.0);
    assert_eq!(robots[1]["memory_mb"], 512.0);
    assert_eq!(robots[2]["status"], "busy");
    assert_eq!(robots[2]["current_job_id"], job4);
    assert_eq!(robots[3]["status"], "offline");
    assert_eq!(robots[3]["hostname"], "desk-d");
    assert_eq!(robots[3]["last_heartbeat"], Value::Null);
    assert_eq!(robots[3]["cpu_percent"], 0.0);
    assert_eq!(robots[4]["status"], "idle");
    assert_eq!(robots[4]["hostname"], Value::Null);
    for (status, expected) in [
        ("idle", &["robot-a", "robot-e"][..]),
        ("busy", &["robot-b", "robot-c"]),
        ("offline", &["robot-d"]),
        ("", &["robot-a", "robot-b", "robot-c", "robot-d", "robot-e"]),
    ] {
        let list = env
            .ok(&format!("/api/v1/metrics/robots?status={status}"))
            .await;
        let got: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["robot_id"].as_str().unwrap())
            .collect();
        assert_eq!(got, expected, "status={status}");
    }
    env.refused("/api/v1/metrics/robots?status=asleep", &["status"])
        .await;
    env.refused("/api/v1/metrics/robots?status=IDLE", &["status"])
        .await;

    // ---- one robot ----
    let detail = env.ok("/api/v1/metrics/robots/robot-a").await;
    assert_eq!(detail["robot_id"], "robot-a");
    assert_eq!(detail["hostname"], "desktop-a");
    assert_eq!(detail["status"], "idle");
    assert_eq!(detail["cpu_percent"], 45.2);
    assert_eq!(detail["memory_mb"], 1024.5);
    assert_eq!(detail["memory_percent"], 65.3);
    assert_eq!(detail["current_job_id"], Value::Null);
    assert_eq!(detail["last_heartbeat"], a["last_heartbeat"]);
    assert_eq!(detail["jobs_completed_today"], 1);
    assert_eq!(detail["jobs_failed_today"], 1);
    assert_eq!(detail["average_job_duration_seconds"], seconds(job1_ms));
    let b = env.ok("/api/v1/metrics/robots/robot-b").await;
    assert_eq!(b["status"], "busy");
    assert_eq!(b["current_job_id"], job3);
    assert_eq!(
        (&b["jobs_completed_today"], &b["jobs_failed_today"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(b["average_job_duration_seconds"], 0.0);
    let d = env.ok("/api/v1/metrics/robots/robot-d").await;
    assert_eq!(d["status"], "offline");
    assert_eq!(d["last_heartbeat"], Value::Null);
    let unknown = expect_error(env.get_raw("/api/v1/metrics/robots/ghost").await, 404).await;
    assert!(
        unknown["detail"].as_str().unwrap().contains("ghost"),
        "{unknown}"
    );
    env.refused("/api/v1/metrics/robots/bad%20id", &["robot_id"])
        .await;
    env.refused(
        &format!("/api/v1/metrics/robots/{}", "r".repeat(65)),
        &["robot_id"],
    )
    .await;
    // 64 characters are well formed: no robot has this id, so it is a 404, not a 400.
    expect_error(
        env.get_raw(&format!("/api/v1/metrics/robots/{}", "r".repeat(64)))
            .await,
        404,
    )
    .await;

    // ---- job history ----
    let all = env.ok("/api/v1/metrics/jobs").await;
    assert_eq!(
        ids(&all),
        [&job6, &job5, &job4, &job3, &job2, &job1, &old],
        "newest first"
    );
    for entry in all.as_array().unwrap() {
        let id = entry["job_id"].as_str().unwrap();
        let full = env.ok(&format!("/api/v1/metrics/jobs/{id}")).await;
        for field in [
            "job_id",
            "workflow_id",
            "workflow_name",
            "robot_id",
            "status",
            "created_at",
            "completed_at",
            "duration_ms",
        ] {
            assert_eq!(entry[field], full[field], "{id}: {field}");
        }
    }
    let expect = [
        (&job6, invoices, "Invoices", Value::Null, "cancelled"),
        (&job5, reports, "Daily Report", Value::Null, "pending"),
        (&job4, invoices, "Invoices", json!("robot-c"), "claimed"),
        (&job3, reports, "Daily Report", json!("robot-b"), "running"),
        (&job2, invoices, "Invoices", json!("robot-a"), "failed"),
        (
            &job1,
            reports,
            "Daily Report",
            json!("robot-a"),
            "completed",
        ),
        (&old, reports, "Daily Report", json!("robot-a"), "completed"),
    ];
    for (entry, (id, workflow, name, robot, status)) in all.as_array().unwrap().iter().zip(expect) {
        assert_eq!(entry["job_id"], *id);
        assert_eq!(entry["workflow_id"], workflow.to_string(), "{id}");
        assert_eq!(entry["workflow_name"], name, "{id}");
        assert_eq!(entry["robot_id"], robot, "{id}");
        assert_eq!(entry["status"], status, "{id}");
        assert!(entry["created_at"].is_string(), "{id}");
    }
    assert_eq!(all[1]["completed_at"], Value::Null, "pending");
    assert_eq!(all[1]["duration_ms"], Value::Null, "pending");
    assert_eq!(all[3]["duration_ms"], Value::Null, "running");
    assert_eq!(all[5]["duration_ms"], job1_ms);
    assert_eq!(all[6]["duration_ms"], 5_000);
    assert_eq!(all[4]["error_type"], "TimeoutError");

    let env_ref = &env;
    let filtered = |query: &'static str| async move {
        let list = env_ref.ok(&format!("/api/v1/metrics/jobs?{query}")).await;
        ids(&list)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(filtered("status=completed").await, strs([&job1, &old]));
    assert_eq!(filtered("status=failed").await, strs([&job2]));
    assert_eq!(filtered("status=pending").await, strs([&job5]));
    assert_eq!(filtered("status=claimed").await, strs([&job4]));
    assert_eq!(filtered("status=running").await, strs([&job3]));
    assert_eq!(filtered("status=cancelled").await, strs([&job6]));
    let by_workflow = env
        .ok(&format!("/api/v1/metrics/jobs?workflow_id={invoices}"))
        .await;
    assert_eq!(ids(&by_workflow), [&job6, &job4, &job2]);
    assert_eq!(
        filtered("robot_id=robot-a").await,
        strs([&job2, &job1, &old])
    );
    assert_eq!(filtered("robot_id=robot-e").await, Vec::<String>::new());
    let combined = env
        .ok(&format!(
            "/api/v1/metrics/jobs?status=completed&robot_id=robot-a&workflow_id={reports}"
        ))
        .await;
    assert_eq!(ids(&combined), [&job1, &old]);
    let none = env
        .ok(&format!(
            "/api/v1/metrics/jobs?workflow_id={}",
            WorkflowId::from_uuid(UuidV7Generator.new_uuid())
        ))
        .await;
    assert_eq!(none, json!([]));
    // limit: 1–500, 50 by default.
    assert_eq!(filtered("limit=1").await, strs([&job6]));
    assert_eq!(filtered("limit=2").await, strs([&job6, &job5]));
    assert_eq!(filtered("limit=500").await.len(), 7);
    for bad in ["0", "501", "-1", "1.5", "ten", "", "99999999999"] {
        env.refused(&format!("/api/v1/metrics/jobs?limit={bad}"), &["limit"])
            .await;
    }
    env.refused("/api/v1/metrics/jobs?status=done", &["status"])
        .await;
    env.refused("/api/v1/metrics/jobs?workflow_id=wf-1", &["workflow_id"])
        .await;
    env.refused("/api/v1/metrics/jobs?robot_id=bad%20id", &["robot_id"])
        .await;
    env.refused(
        "/api/v1/metrics/jobs?limit=0&status=done&workflow_id=x&robot_id=%2F",
        &["limit", "status", "workflow_id", "robot_id"],
    )
    .await;
    expect_error(
        env.get_raw("/api/v1/metrics/jobs?limit=1&limit=2").await,
        400,
    )
    .await;
}

/// Every field of `/metrics/jobs/{job_id}` of job 1 (completed) and job 2 (failed), and 404s.
async fn check_job_detail(
    env: &Env,
    detail: &Value,
    job1: &str,
    job2: &str,
    reports: WorkflowId,
    invoices: WorkflowId,
    job1_ms: i64,
) {
    assert_eq!(detail["job_id"], job1);
    assert_eq!(detail["workflow_id"], reports.to_string());
    assert_eq!(detail["workflow_name"], "Daily Report");
    assert_eq!(detail["robot_id"], "robot-a");
    assert_eq!(detail["status"], "completed");
    let created = instant(&detail["created_at"]);
    let claimed = instant(&detail["claimed_at"]);
    let completed = instant(&detail["completed_at"]);
    assert!(created <= claimed && claimed <= completed, "{detail}");
    assert!(now() - created < time::Duration::minutes(1));
    assert_eq!(detail["duration_ms"], job1_ms);
    assert_eq!(detail["error_message"], Value::Null);
    assert_eq!(detail["error_type"], Value::Null);
    assert_eq!(detail["retry_count"], 0);
    assert_eq!(detail["output"], json!({"rows": 3}));
    let nodes = detail["node_executions"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["node_id"], "fetch");
    assert_eq!(nodes[0]["duration_ms"], 85);
    assert_eq!(nodes[0]["status"], "completed");

    let failed = env.ok(&format!("/api/v1/metrics/jobs/{job2}")).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["workflow_id"], invoices.to_string());
    assert_eq!(failed["workflow_name"], "Invoices");
    assert_eq!(failed["error_type"], "TimeoutError");
    assert_eq!(failed["error_message"], "the page took too long");
    assert_eq!(failed["node_executions"], json!([]));
    assert!(failed["duration_ms"].as_i64().unwrap() >= 0);

    let unknown = JobId::from_uuid(UuidV7Generator.new_uuid());
    expect_error(
        env.get_raw(&format!("/api/v1/metrics/jobs/{unknown}"))
            .await,
        404,
    )
    .await;
    expect_error(env.get_raw("/api/v1/metrics/jobs/job-123").await, 404).await;
}

// ---- analytics ----

/// The analytics of the jobs [`analytics_data`] stores, over a window of `days`.
fn analytics_expected(days: u32, since: &Value, workflows: &[(WorkflowId, &str)]) -> Value {
    let slow = |i: usize, average: i64, completed: u64| {
        json!({"workflow_id": workflows[i].0.to_string(), "workflow_name": workflows[i].1,
               "average_duration_ms": average, "completed_jobs": completed})
    };
    let error = |error_type: &str, count: u64| json!({"error_type": error_type, "count": count});
    if days < 3 {
        json!({
            "days": days,
            "since": since,
            "total_jobs": 37,
            "completed_jobs": 27,
            "failed_jobs": 6,
            "cancelled_jobs": 1,
            "success_rate": 81.82,
            "failure_rate": 18.18,
            "average_duration_ms": 18_020,
            "p50_duration_ms": 10_000,
            "p90_duration_ms": 30_000,
            "p99_duration_ms": 140_000,
            "slowest_workflows": [
                slow(0, 120_000, 2), slow(2, 30_000, 1), slow(1, 10_500, 20),
                slow(3, 3_000, 2), slow(4, 500, 1),
            ],
            "error_distribution": [
                error("TimeoutError", 3), error("SelectorNotFound", 2), error("LeaseExpired", 1),
            ],
            "self_healing_success_rate": 75.0,
        })
    } else {
        json!({
            "days": days,
            "since": since,
            "total_jobs": 39,
            "completed_jobs": 28,
            "failed_jobs": 7,
            "cancelled_jobs": 1,
            "success_rate": 80.0,
            "failure_rate": 20.0,
            "average_duration_ms": 53_091,
            "p50_duration_ms": 10_000,
            "p90_duration_ms": 100_000,
            "p99_duration_ms": 1_000_000,
            "slowest_workflows": [
                slow(6, 1_000_000, 1), slow(0, 120_000, 2), slow(2, 30_000, 1),
                slow(1, 10_500, 20), slow(3, 3_000, 2),
            ],
            "error_distribution": [
                error("TimeoutError", 3), error("SelectorNotFound", 2),
                error("LeaseExpired", 1), error("OldError", 1),
            ],
            "self_healing_success_rate": 75.0,
        })
    }
}

/// Jobs of seven workflows, created half an hour ago unless said otherwise:
/// - completed: Heavy Report 100 s and 140 s; Daily Report 1, 2, …, 20 s (the 1 s and 2 s ones
///   after a retry); Invoices 30 s (after two retries); Mailer 2 s and 4 s; Sync 0.5 s;
///   Ping 0.05 s. Sorted: 0.05, 0.5, 1, 2, 2, 3, 4, 4, 5, …, 20, 30, 100, 140 s (27 jobs).
/// - failed: three TimeoutError, two SelectorNotFound, one LeaseExpired after three retries.
/// - one cancelled, two pending, one running.
/// - three days ago: Archive completed in 1000 s, and failed with OldError.
fn analytics_data(workflows: &[(WorkflowId, &str)]) -> Vec<Job> {
    let recent = now() - time::Duration::minutes(30);
    let old = now() - time::Duration::days(3);
    let robot = Some("robot-1");
    let job =
        |w: usize, status: JobStatus, ms: i64| stored(workflows[w], status, recent, ms, robot);
    let retried = |mut job: Job, times: u32| {
        job.edit(|r| r.retry_count = times);
        job
    };
    let failed = |w: usize, error: &str, at: Timestamp| {
        let mut job = stored(workflows[w], JobStatus::Failed, at, 10, robot);
        job.edit(|r| r.error_type = Some(error.to_owned()));
        job.edit(|r| r.error_message = Some("it broke".to_owned()));
        job
    };
    let mut jobs = vec![
        job(0, JobStatus::Completed, 100_000),
        job(0, JobStatus::Completed, 140_000),
        retried(job(2, JobStatus::Completed, 30_000), 2),
        job(3, JobStatus::Completed, 2_000),
        job(3, JobStatus::Completed, 4_000),
        job(4, JobStatus::Completed, 500),
        job(5, JobStatus::Completed, 50),
        failed(1, "TimeoutError", recent),
        failed(1, "TimeoutError", recent),
        failed(1, "TimeoutError", recent),
        failed(3, "SelectorNotFound", recent),
        failed(3, "SelectorNotFound", recent),
        retried(failed(4, "LeaseExpired", recent), 3),
        job(1, JobStatus::Cancelled, 10),
        stored(workflows[0], JobStatus::Pending, recent, 0, None),
        stored(workflows[0], JobStatus::Pending, recent, 0, None),
        job(1, JobStatus::Running, 0),
        stored(workflows[6], JobStatus::Completed, old, 1_000_000, robot),
        failed(6, "OldError", old),
    ];
    for s in 1..=20 {
        let daily = job(1, JobStatus::Completed, s * 1000);
        jobs.push(if s <= 2 { retried(daily, 1) } else { daily });
    }
    jobs
}

async fn analytics_compute_rates_percentiles_and_distributions(db: TestDatabase) {
    let env = Env::unlimited(db).await;

    // Nothing ran yet: every figure is zero, over the default seven days.
    let empty = env.ok("/api/v1/metrics/analytics").await;
    let since = instant(&empty["since"]);
    let week_ago = now() - time::Duration::days(7);
    assert!(
        (since - week_ago).abs() < time::Duration::minutes(1),
        "{since}"
    );
    assert_eq!(
        empty,
        json!({
            "days": 7, "since": empty["since"], "total_jobs": 0, "completed_jobs": 0,
            "failed_jobs": 0, "cancelled_jobs": 0, "success_rate": 0.0, "failure_rate": 0.0,
            "average_duration_ms": 0, "p50_duration_ms": 0, "p90_duration_ms": 0,
            "p99_duration_ms": 0, "slowest_workflows": [], "error_distribution": [],
            "self_healing_success_rate": 0.0,
        })
    );

    let names = [
        "Heavy Report",
        "Daily Report",
        "Invoices",
        "Mailer",
        "Sync",
        "Ping",
        "Archive",
    ];
    let workflows: Vec<(WorkflowId, &str)> = names
        .iter()
        .map(|name| (WorkflowId::from_uuid(UuidV7Generator.new_uuid()), *name))
        .collect();
    for job in analytics_data(&workflows) {
        env.db.insert_job(&job, &[]).await.unwrap();
    }

    for (query, days) in [
        ("?days=1", 1),
        ("?days=2", 2),
        ("", 7),
        ("?days=7", 7),
        ("?days=90", 90),
    ] {
        let answer = env.ok(&format!("/api/v1/metrics/analytics{query}")).await;
        let since = instant(&answer["since"]);
        let expected_since = now() - time::Duration::days(days.into());
        assert!(
            (since - expected_since).abs() < time::Duration::minutes(1),
            "{query}: {since}"
        );
        assert_eq!(
            answer,
            analytics_expected(days, &answer["since"], &workflows),
            "{query}"
        );
    }
    for bad in ["0", "91", "-1", "1.5", "week", "", "4294967296"] {
        env.refused(&format!("/api/v1/metrics/analytics?days={bad}"), &["days"])
            .await;
    }
}

// ---- activity ----

/// Events of a robot's work, two robots going offline and a schedule firing, read back whole
/// and through every filter.
async fn the_activity_feed_lists_real_events_with_filters(db: TestDatabase) {
    let env = Env::start(db, |c| {
        c.rate_limits = false;
        c.engine_tick_ms = 50;
        c.trigger_tick_ms = 50;
        c.robot_offline_seconds = 1;
    })
    .await;
    let workflow = env.workflow("Daily Report").await;
    let token1 = env.robot("robot-1", None).await;
    let token2 = env.robot("robot-2", None).await;
    let robot1 = ("robot-1", token1.as_str());
    env.as_robot(robot1, "/heartbeat", json!({})).await;
    env.as_robot(("robot-2", token2.as_str()), "/heartbeat", json!({}))
        .await;
    let job1 = env.run(workflow).await;
    env.claim(robot1, &job1).await;
    env.job_call(robot1, &job1, "start", json!({})).await;
    env.job_call(robot1, &job1, "complete", json!({})).await;
    let job2 = env.run(workflow).await;
    env.claim(robot1, &job2).await;
    env.job_call(robot1, &job2, "start", json!({})).await;
    env.job_call(robot1, &job2, "fail", json!({"error_type": "TimeoutError"}))
        .await;
    // A blocking schedule fires once: its job waits for a robot, so it does not fire again.
    env.post(
        "/api/v1/triggers",
        json!({"trigger_name": "every second", "type": "SCHEDULED",
               "workflow_id": workflow.to_string(), "cron_expression": "* * * * * *"}),
    )
    .await;

    // Wait until the schedule fired and both robots (silent for a second) went offline.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fired = env
            .ok("/api/v1/metrics/activity?event_type=schedule_triggered")
            .await;
        let offline = env.ok("/api/v1/metrics/robots?status=offline").await;
        if fired["total"] == 1 && offline.as_array().unwrap().len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{fired} {offline}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let feed = env.ok("/api/v1/metrics/activity?limit=200").await;
    let events = feed["events"].as_array().unwrap();
    assert_eq!(feed["total"], events.len());
    let of_type = |t: &str| -> Vec<&Value> { events.iter().filter(|e| e["type"] == t).collect() };
    for (event_type, count) in [
        ("robot_online", 2),
        ("job_created", 3),
        ("job_claimed", 2),
        ("job_started", 2),
        ("job_completed", 1),
        ("job_failed", 1),
        ("schedule_triggered", 1),
    ] {
        assert_eq!(of_type(event_type).len(), count, "{event_type}: {feed}");
    }
    // A robot that took a job after going offline counts as busy, so robot-1 may go offline
    // twice if its work outlasted the second; robot-2, silent after one heartbeat, goes once.
    let offline = of_type("robot_offline");
    let offline_robot2: Vec<_> = offline
        .iter()
        .filter(|e| e["robot_id"] == "robot-2")
        .collect();
    assert_eq!(offline_robot2.len(), 1, "{feed}");
    assert!(offline.iter().any(|e| e["robot_id"] == "robot-1"), "{feed}");
    assert_eq!(
        events.len(),
        12 + offline.len(),
        "nothing else happened: {feed}"
    );

    // Newest first, each with its own id.
    let times: Vec<Timestamp> = events.iter().map(|e| instant(&e["timestamp"])).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{feed}");
    let mut event_ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(
        event_ids
            .iter()
            .all(|id| id.parse::<baton_domain::ids::EventId>().is_ok())
    );
    event_ids.sort_unstable();
    event_ids.dedup();
    assert_eq!(event_ids.len(), events.len());

    // Every field of one event of each seeded type.
    let detail1 = env.ok(&format!("/api/v1/metrics/jobs/{job1}")).await;
    let completed = of_type("job_completed")[0];
    assert_eq!(completed["title"], "Job completed successfully");
    let whole_seconds = detail1["duration_ms"].as_i64().unwrap() / 1000;
    assert_eq!(
        completed["details"],
        format!("Daily Report finished in {whole_seconds}s")
    );
    assert_eq!(completed["robot_id"], "robot-1");
    assert_eq!(completed["job_id"], job1);
    assert_eq!(completed["workflow_id"], workflow.to_string());
    assert_eq!(completed["job_status"], "completed");
    assert_eq!(
        instant(&completed["timestamp"]),
        instant(&detail1["completed_at"]),
        "recorded with the change"
    );
    let failed = of_type("job_failed")[0];
    assert_eq!(failed["title"], "Job failed");
    assert_eq!(failed["details"], "Daily Report failed: TimeoutError");
    assert_eq!(failed["robot_id"], "robot-1");
    assert_eq!(failed["job_id"], job2);
    let started: Vec<&Value> = of_type("job_started");
    assert_eq!(started[0]["job_id"], job2, "newest first");
    assert_eq!(started[1]["job_id"], job1);
    assert_eq!(started[1]["title"], "Job started");
    assert_eq!(started[1]["details"], "Daily Report");
    assert_eq!(started[1]["robot_id"], "robot-1");
    let online = of_type("robot_online");
    let online2 = online.iter().find(|e| e["robot_id"] == "robot-2").unwrap();
    assert_eq!(online2["title"], "Robot online");
    assert_eq!(online2["details"], "robot-2");
    assert_eq!(online2["job_id"], Value::Null);
    assert_eq!(offline_robot2[0]["title"], "Robot offline");
    assert_eq!(offline_robot2[0]["job_id"], Value::Null);
    let pending = env.ok("/api/v1/metrics/jobs?status=pending").await;
    let fired = of_type("schedule_triggered")[0];
    assert_eq!(fired["title"], "Trigger every second fired");
    assert_eq!(fired["details"], "Daily Report");
    assert_eq!(fired["job_id"], pending[0]["job_id"]);
    assert_eq!(fired["robot_id"], Value::Null);
    assert_eq!(fired["data"]["trigger_name"], "every second");

    // event_type: each listed type alone, with its own total.
    for event_type in [
        "job_started",
        "job_completed",
        "job_failed",
        "robot_online",
        "robot_offline",
        "schedule_triggered",
        "job_created",
    ] {
        let filtered = env
            .ok(&format!("/api/v1/metrics/activity?event_type={event_type}"))
            .await;
        let expected: Vec<&Value> = of_type(event_type);
        assert_eq!(
            filtered["events"]
                .as_array()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            expected
        );
        assert_eq!(filtered["total"], expected.len());
    }
    // limit: 1–200, 50 by default; the total counts beyond the page.
    let newest = env.ok("/api/v1/metrics/activity?limit=1").await;
    assert_eq!(newest["events"], json!([events[0]]));
    assert_eq!(newest["total"], events.len());
    assert_eq!(
        env.ok("/api/v1/metrics/activity").await,
        feed,
        "all fit in 50"
    );
    for bad in ["0", "201", "-1", "2.5", "many", ""] {
        env.refused(&format!("/api/v1/metrics/activity?limit={bad}"), &["limit"])
            .await;
    }
    // since: strictly after, in any ISO form, alone or with a type.
    let cut = instant(&completed["timestamp"]);
    let after: Vec<&Value> = events
        .iter()
        .filter(|e| instant(&e["timestamp"]) > cut)
        .collect();
    assert!(!after.is_empty() && after.len() < events.len());
    let utc = cut.format(&Rfc3339).unwrap();
    let plus_one = cut
        .to_offset(time::macros::offset!(+1))
        .format(&Rfc3339)
        .unwrap();
    for since in [
        utc.replace('+', "%2B"),
        plus_one.replace('+', "%2B"),
        plus_one.clone(),
        utc.trim_end_matches('Z').to_owned(),
    ] {
        let page = env
            .ok(&format!("/api/v1/metrics/activity?since={since}"))
            .await;
        assert_eq!(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            after,
            "since={since}"
        );
        assert_eq!(page["total"], after.len());
    }
    let both = env
        .ok(&format!(
            "/api/v1/metrics/activity?event_type=job_started&since={}",
            utc.replace('+', "%2B")
        ))
        .await;
    assert_eq!(both["events"], json!([started[0]]));
    assert_eq!(both["total"], 1);
    let future = env
        .ok("/api/v1/metrics/activity?since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(future, json!({"events": [], "total": 0}));
    env.refused("/api/v1/metrics/activity?since=yesterday", &["since"])
        .await;
    env.refused(
        "/api/v1/metrics/activity?event_type=job_exploded",
        &["event_type"],
    )
    .await;
    env.refused(
        "/api/v1/metrics/activity?limit=0&since=x&event_type=y",
        &["limit", "since", "event_type"],
    )
    .await;
}

// ---- access ----

/// Every metrics route for a caller: 401 without credentials, 403 for a robot's token, and
/// an answer for a viewer, by token or API key.
async fn metrics_need_the_read_permission(db: TestDatabase) {
    let env = Env::unlimited(db).await;
    let workflow = env.workflow("Daily Report").await;
    let robot_token = env.robot("robot-1", None).await;
    let job = env.run(workflow).await;
    let key = env.app.api_key("dashboard", &["viewer"]).await;
    let paths = [
        "/api/v1/metrics/fleet".to_owned(),
        "/api/v1/metrics/robots".to_owned(),
        "/api/v1/metrics/robots/robot-1".to_owned(),
        "/api/v1/metrics/jobs".to_owned(),
        format!("/api/v1/metrics/jobs/{job}"),
        "/api/v1/metrics/analytics".to_owned(),
        "/api/v1/metrics/activity".to_owned(),
    ];
    for path in &paths {
        let client = &env.app.client;
        let anonymous = client.get(env.app.url(path)).send().await.unwrap();
        expect_error(anonymous, 401).await;
        let robot = client
            .get(env.app.url(path))
            .header("X-Api-Token", &robot_token)
            .send()
            .await
            .unwrap();
        expect_error(robot, 403).await;
        env.ok(path).await;
        let (status, body) = json(
            client
                .get(env.app.url(path))
                .header("X-API-Key", &key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // Authentication comes before the query is judged.
    let anonymous = env
        .app
        .client
        .get(env.app.url("/api/v1/metrics/jobs?limit=0"))
        .send()
        .await
        .unwrap();
    expect_error(anonymous, 401).await;
}

/// The seed's table: each route its own limit per client, a 429 with the JSON body past it.
async fn each_metrics_route_has_its_seeded_rate_limit(db: TestDatabase) {
    let env = Env::start(db, |_| {}).await;
    let unknown_job = JobId::from_uuid(UuidV7Generator.new_uuid());
    let header = |response: &reqwest::Response, name: &str| -> u64 {
        response.headers()[name].to_str().unwrap().parse().unwrap()
    };
    for (path, limit) in [
        ("/api/v1/metrics/fleet".to_owned(), 100),
        ("/api/v1/metrics/robots".to_owned(), 100),
        ("/api/v1/metrics/robots/robot-1".to_owned(), 200),
        ("/api/v1/metrics/jobs".to_owned(), 50),
        (format!("/api/v1/metrics/jobs/{unknown_job}"), 200),
        ("/api/v1/metrics/analytics".to_owned(), 20),
        ("/api/v1/metrics/activity".to_owned(), 60),
    ] {
        let response = env.get_raw(&path).await;
        assert_eq!(header(&response, "x-ratelimit-limit"), limit, "{path}");
        assert_eq!(
            header(&response, "x-ratelimit-remaining"),
            limit - 1,
            "{path}"
        );
        assert!(header(&response, "x-ratelimit-reset") > 0);
    }
    // Analytics: 20 a minute, one used above.
    for used in 2..=20 {
        let response = env.get_raw("/api/v1/metrics/analytics").await;
        assert_eq!(response.status().as_u16(), 200, "call {used}");
        assert_eq!(header(&response, "x-ratelimit-remaining"), 20 - used);
    }
    let refused = env.get_raw("/api/v1/metrics/analytics").await;
    let retry_after = header(&refused, "retry-after");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&refused, "x-ratelimit-remaining"), 0);
    let body = expect_error(refused, 429).await;
    assert_eq!(body["error"], "Rate limit exceeded");
    assert_eq!(body["retry_after"], retry_after);
    // The other routes keep their own windows.
    let fleet = env.get_raw("/api/v1/metrics/fleet").await;
    assert_eq!(fleet.status().as_u16(), 200);
    assert_eq!(header(&fleet, "x-ratelimit-remaining"), 98);
}
