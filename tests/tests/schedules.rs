//! CasareRPA's schedules over HTTP (`/api/v1/schedules`, `docs/schedules.md`), on SQLite and on
//! PostgreSQL: the lifecycle read back field for field, the list's filters and limit bounds,
//! every validation rule answered 400 with its field and nothing written, wrong JSON types and
//! malformed bodies, the permission matrix, schedules made by a scheduled workflow submission,
//! and a per-second schedule firing through the real engine at its default tick.
//!
//! Workflows are stored through the storage port of the server's database; jobs are read back
//! over HTTP (`GET /api/v1/jobs?workflow_id=`), each schedule having a workflow of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use baton_domain::ids::WorkflowId;
use baton_domain::ports::WorkflowRepository;
use baton_domain::workflow::{Workflow, WorkflowGraph, WorkflowName};
use baton_domain::{Clock, IdGenerator, SystemClock, UuidV7Generator};
use baton_storage::Db;
use baton_storage::testing::TestDatabase;
use baton_tests::TestApp;
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
    a_schedule_lives_from_create_to_delete,
    lists_filter_and_bound_their_limit,
    every_validation_rule_is_a_400_naming_its_field_and_writes_nothing,
    wrong_json_types_and_malformed_bodies_are_400s,
    the_permission_matrix_guards_every_route,
    a_scheduled_workflow_submission_is_a_schedule,
    a_per_second_schedule_fires_every_second,
    a_preview_shows_the_next_fire_times_or_names_the_broken_field,
    lists_page_with_a_cursor,
);

/// The schedule fields of the CasareRPA document, in its order, then Baton's extensions.
const FIELDS: [&str; 16] = [
    "schedule_id",
    "workflow_id",
    "schedule_name",
    "cron_expression",
    "enabled",
    "priority",
    "execution_mode",
    "next_run",
    "last_run",
    "run_count",
    "failure_count",
    "created_at",
    "updated_at",
    "timezone",
    "is_blocking",
    "metadata",
];

/// A server at the default engine and trigger ticks (the per-second test measures those), an
/// admin token, and a pool on its database.
struct Env {
    app: TestApp,
    token: String,
    db: Db,
}

impl Env {
    async fn start(db: TestDatabase) -> Self {
        let app = TestApp::spawn_with(db, |c| c.rate_limits = false).await;
        let token = app.admin_token().await;
        let db = app.database().connect().await;
        Env { app, token, db }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.app
            .call_as(&self.token, method, path, body.as_ref())
            .await
    }

    async fn raw(&self, body: &str) -> (u16, Value) {
        self.app
            .call_raw_as(&self.token, Method::POST, "/api/v1/schedules", body)
            .await
    }

    async fn create(&self, body: Value) -> Value {
        let (status, schedule) = self
            .call(Method::POST, "/api/v1/schedules", Some(body))
            .await;
        assert_eq!(status, 200, "{schedule}");
        schedule
    }

    async fn get(&self, id: &str) -> Value {
        let (status, schedule) = self
            .call(Method::GET, &format!("/api/v1/schedules/{id}"), None)
            .await;
        assert_eq!(status, 200, "{schedule}");
        schedule
    }

    async fn put(&self, id: &str, action: &str) -> (u16, Value) {
        self.call(
            Method::PUT,
            &format!("/api/v1/schedules/{id}/{action}"),
            None,
        )
        .await
    }

    async fn list(&self, query: &str) -> (u16, Value) {
        self.call(Method::GET, &format!("/api/v1/schedules{query}"), None)
            .await
    }

    async fn listed_ids(&self, query: &str) -> Vec<String> {
        let (status, list) = self.list(query).await;
        assert_eq!(status, 200, "{query}: {list}");
        ids(&list)
    }

    async fn workflow(&self, name: &str) -> WorkflowId {
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
        self.db.insert_workflow(&workflow, &[]).await.unwrap();
        id
    }

    /// The jobs of `workflow`, newest first, as `GET /jobs` lists them.
    async fn jobs(&self, workflow: WorkflowId) -> Vec<Value> {
        let (status, jobs) = self
            .call(
                Method::GET,
                &format!("/api/v1/jobs?workflow_id={workflow}&limit=500"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{jobs}");
        jobs.as_array().unwrap().clone()
    }

    /// Every schedule and every trigger: what a refused request must not have added to.
    async fn everything(&self) -> (Value, Value) {
        let (_, schedules) = self.list("?limit=1000").await;
        let (_, triggers) = self.call(Method::GET, "/api/v1/triggers", None).await;
        (schedules, triggers)
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|s| s["schedule_id"].as_str().unwrap().to_owned())
        .collect()
}

fn instant(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        value
            .as_str()
            .unwrap_or_else(|| panic!("not an instant: {value}")),
        &Rfc3339,
    )
    .unwrap()
}

fn error_fields(status: u16, body: &Value) -> Vec<String> {
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no `errors` list in {body}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

fn sorted(fields: &[&str]) -> Vec<String> {
    let mut fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    fields.sort();
    fields
}

async fn a_schedule_lives_from_create_to_delete(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Reports").await;
    let before = OffsetDateTime::now_utc();
    let created = env
        .create(json!({
            "workflow_id": workflow.to_string(),
            "schedule_name": "Daily Report",
            "cron_expression": "0 9 * * 1-5",
            "enabled": true,
            "priority": 3,
            "execution_mode": "internet",
            "metadata": {"team": "finance", "tags": ["daily"]},
            "timezone": "Europe/Berlin"
        }))
        .await;
    assert_eq!(keys(&created), sorted(&FIELDS));
    let id = created["schedule_id"].as_str().unwrap().to_owned();
    assert!(id.parse::<baton_domain::ids::TriggerId>().is_ok(), "{id}");
    assert_eq!(created["workflow_id"], workflow.to_string());
    assert_eq!(created["schedule_name"], "Daily Report");
    assert_eq!(created["cron_expression"], "0 9 * * 1-5");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["priority"], 3);
    assert_eq!(created["execution_mode"], "internet");
    assert_eq!(created["timezone"], "Europe/Berlin");
    assert_eq!(created["is_blocking"], false);
    assert_eq!(
        created["metadata"],
        json!({"team": "finance", "tags": ["daily"]})
    );
    assert_eq!(created["last_run"], Value::Null);
    assert_eq!(created["run_count"], 0);
    assert_eq!(created["failure_count"], 0);
    let created_at = instant(&created["created_at"]);
    assert!(created_at >= before - time::Duration::seconds(1));
    assert_eq!(created["updated_at"], created["created_at"]);
    // 09:00 in Berlin is 07:00 or 08:00 UTC, on a weekday, in the future.
    let next = instant(&created["next_run"]);
    assert!(next > created_at, "{next}");
    assert!(matches!(next.hour(), 7 | 8) && next.minute() == 0, "{next}");
    assert!(next.weekday().number_from_monday() <= 5, "{next}");

    // Read back field for field.
    assert_eq!(env.get(&id).await, created);
    assert_eq!(env.listed_ids("").await, [id.as_str()]);

    // Disable: the updated schedule, without a next run while disabled.
    let (status, disabled) = env.put(&id, "disable").await;
    assert_eq!(status, 200, "{disabled}");
    assert_eq!(disabled["enabled"], false);
    assert_eq!(disabled["next_run"], Value::Null);
    assert!(instant(&disabled["updated_at"]) >= created_at);
    assert_eq!(disabled["created_at"], created["created_at"]);
    assert_eq!(env.get(&id).await, disabled);
    // Disabling again changes nothing.
    let (status, again) = env.put(&id, "disable").await;
    assert_eq!(status, 200);
    assert_eq!(again, disabled);

    // Enable: a next run counted from now (the same one, unless 09:00 passed meanwhile).
    let (status, enabled) = env.put(&id, "enable").await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["enabled"], true);
    assert!(instant(&enabled["next_run"]) >= next, "{enabled}");
    assert_eq!(env.get(&id).await, enabled);

    // Trigger now: one job, at once, and the counters move; the rhythm does not.
    let (status, triggered) = env.put(&id, "trigger").await;
    assert_eq!(status, 200, "{triggered}");
    assert_eq!(keys(&triggered), sorted(&["status", "message", "job_id"]));
    assert_eq!(triggered["status"], "success");
    assert_eq!(triggered["message"], format!("Schedule triggered: {id}"));
    let job_id = triggered["job_id"].as_str().unwrap();
    let (status, job) = env
        .call(Method::GET, &format!("/api/v1/jobs/{job_id}"), None)
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["workflow_id"], workflow.to_string());
    assert_eq!(job["status"], "pending");
    assert_eq!(job["priority"], 3);
    assert_eq!(job["execution_mode"], "internet");
    let jobs = env.jobs(workflow).await;
    assert_eq!(jobs.len(), 1);
    let after = env.get(&id).await;
    assert_eq!(after["run_count"], 1);
    assert_eq!(after["last_run"], job["created_at"]);
    assert_eq!(after["next_run"], enabled["next_run"]);
    assert_eq!(after["failure_count"], 0);

    // A disabled schedule can still be triggered by hand.
    env.put(&id, "disable").await;
    let (status, second) = env.put(&id, "trigger").await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["job_id"], triggered["job_id"]);
    assert_eq!(env.jobs(workflow).await.len(), 2);
    assert_eq!(env.get(&id).await["run_count"], 2);

    // Delete, then the schedule is gone from every route; its jobs stay.
    let (status, deleted) = env
        .call(Method::DELETE, &format!("/api/v1/schedules/{id}"), None)
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(
        deleted,
        json!({"status": "success", "message": format!("Schedule deleted: {id}")})
    );
    let path = format!("/api/v1/schedules/{id}");
    for (method, path) in [
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::PUT, format!("{path}/enable")),
        (Method::PUT, format!("{path}/disable")),
        (Method::PUT, format!("{path}/trigger")),
    ] {
        let (status, body) = env.call(method.clone(), &path, None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert!(body["error"].is_string() && body["detail"].is_string());
    }
    assert_eq!(env.listed_ids("").await, Vec::<String>::new());
    assert_eq!(env.jobs(workflow).await.len(), 2);

    // Ids that are not UUIDs, and triggers that are not SCHEDULED, are no schedules either.
    let (status, _) = env.call(Method::GET, "/api/v1/schedules/daily", None).await;
    assert_eq!(status, 404);
    let (status, single) = env
        .call(
            Method::POST,
            "/api/v1/triggers",
            Some(json!({"trigger_name": "once", "type": "SINGLE",
                        "workflow_id": workflow.to_string(), "enabled": false})),
        )
        .await;
    assert_eq!(status, 201, "{single}");
    let single = single["id"].as_str().unwrap();
    let (status, _) = env
        .call(Method::GET, &format!("/api/v1/schedules/{single}"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = env.put(single, "trigger").await;
    assert_eq!(status, 404);
    assert_eq!(env.listed_ids("").await, Vec::<String>::new());
}

async fn lists_filter_and_bound_their_limit(db: TestDatabase) {
    let env = Env::start(db).await;
    let reports = env.workflow("Reports").await;
    let backups = env.workflow("Backups").await;
    let body = |workflow: WorkflowId, name: &str, enabled: bool| {
        json!({"workflow_id": workflow.to_string(), "schedule_name": name,
               "cron_expression": "0 3 * * *", "enabled": enabled})
    };
    let a = env.create(body(reports, "Nightly", true)).await;
    // The same name again: schedule names need not be unique.
    let b = env.create(body(reports, "Nightly", false)).await;
    let c = env.create(body(backups, "Backup", true)).await;
    let [a, b, c] = [&a, &b, &c].map(|s| s["schedule_id"].as_str().unwrap().to_owned());
    let [a, b, c] = [a.as_str(), b.as_str(), c.as_str()];
    assert_eq!(env.get(b).await["schedule_name"], "Nightly");

    assert_eq!(env.listed_ids("").await, [a, b, c], "oldest first");
    assert_eq!(
        env.listed_ids(&format!("?workflow_id={reports}")).await,
        [a, b]
    );
    assert_eq!(env.listed_ids("?enabled=true").await, [a, c]);
    assert_eq!(env.listed_ids("?enabled=false").await, [b]);
    assert_eq!(
        env.listed_ids(&format!("?workflow_id={reports}&enabled=true"))
            .await,
        [a]
    );
    assert_eq!(
        env.listed_ids(&format!(
            "?workflow_id={}",
            WorkflowId::from_uuid(UuidV7Generator.new_uuid())
        ))
        .await,
        Vec::<String>::new()
    );
    assert_eq!(env.listed_ids("?limit=1").await, [a]);
    assert_eq!(env.listed_ids("?limit=2").await, [a, b]);
    assert_eq!(env.listed_ids("?limit=1000").await, [a, b, c]);
    assert_eq!(env.listed_ids("?limit=").await, [a, b, c]);

    for (query, fields) in [
        ("?limit=0", vec!["limit"]),
        ("?limit=1001", vec!["limit"]),
        ("?limit=-5", vec!["limit"]),
        ("?limit=ten", vec!["limit"]),
        ("?limit=1.5", vec!["limit"]),
        ("?limit=99999999999999999999999", vec!["limit"]),
        ("?enabled=maybe", vec!["enabled"]),
        ("?workflow_id=reports", vec!["workflow_id"]),
        (
            "?workflow_id=x&enabled=2&limit=0",
            vec!["workflow_id", "enabled", "limit"],
        ),
    ] {
        let (status, body) = env.list(query).await;
        let mut got = error_fields(status, &body);
        got.sort();
        assert_eq!(got, sorted(&fields), "{query}: {body}");
    }
}

async fn every_validation_rule_is_a_400_naming_its_field_and_writes_nothing(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Reports").await.to_string();
    let valid = json!({"workflow_id": workflow, "schedule_name": "Hourly Sync",
                       "cron_expression": "0 * * * *"});
    let with = |changes: Value| {
        let mut body = valid.clone();
        for (k, v) in changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let without = |field: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let nothing = env.everything().await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({}),
            vec!["workflow_id", "schedule_name", "cron_expression"],
        ),
        (without("workflow_id"), vec!["workflow_id"]),
        (without("schedule_name"), vec!["schedule_name"]),
        (without("cron_expression"), vec!["cron_expression"]),
        (with(json!({"workflow_id": null})), vec!["workflow_id"]),
        (with(json!({"workflow_id": "reports"})), vec!["workflow_id"]),
        (with(json!({"workflow_id": ""})), vec!["workflow_id"]),
        (with(json!({"schedule_name": ""})), vec!["schedule_name"]),
        (
            with(json!({"schedule_name": "s".repeat(256)})),
            vec!["schedule_name"],
        ),
        (
            with(json!({"cron_expression": ""})),
            vec!["cron_expression"],
        ),
        (
            with(json!({"cron_expression": "* * *"})),
            vec!["cron_expression"],
        ),
        (
            with(json!({"cron_expression": "0 0 0 * * * 2030"})),
            vec!["cron_expression"],
        ),
        (
            with(json!({"cron_expression": "61 * * * *"})),
            vec!["cron_expression"],
        ),
        (
            with(json!({"cron_expression": "every day"})),
            vec!["cron_expression"],
        ),
        // 30 February never comes.
        (
            with(json!({"cron_expression": "0 0 30 2 *"})),
            vec!["cron_expression"],
        ),
        (with(json!({"timezone": "Mars/Olympus"})), vec!["timezone"]),
        (with(json!({"timezone": ""})), vec!["timezone"]),
        (with(json!({"priority": -1})), vec!["priority"]),
        (with(json!({"priority": 21})), vec!["priority"]),
        (with(json!({"priority": u64::MAX})), vec!["priority"]),
        (
            with(json!({"execution_mode": "cloud"})),
            vec!["execution_mode"],
        ),
        (with(json!({"execution_mode": ""})), vec!["execution_mode"]),
        (
            json!({"workflow_id": "x", "schedule_name": "", "cron_expression": "61 * * * *",
                   "timezone": "Nowhere", "priority": 50, "execution_mode": "wan"}),
            vec![
                "workflow_id",
                "schedule_name",
                "cron_expression",
                "timezone",
                "priority",
                "execution_mode",
            ],
        ),
    ];
    for (body, fields) in cases {
        let (status, answer) = env
            .call(Method::POST, "/api/v1/schedules", Some(body.clone()))
            .await;
        let mut got = error_fields(status, &answer);
        got.sort();
        assert_eq!(got, sorted(&fields), "{body}: {answer}");
    }
    // A valid body naming a workflow that does not exist is a 404.
    let missing = WorkflowId::from_uuid(UuidV7Generator.new_uuid());
    let (status, answer) = env
        .call(
            Method::POST,
            "/api/v1/schedules",
            Some(with(json!({"workflow_id": missing.to_string()}))),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains(&missing.to_string()),
        "{answer}"
    );
    assert_eq!(env.everything().await, nothing, "a refused request wrote");

    // The bounds themselves are accepted.
    let edge = env
        .create(with(
            json!({"schedule_name": "é".repeat(255), "priority": 0,
                            "cron_expression": "*/5 * * * * *", "timezone": "UTC",
                            "execution_mode": "lan", "enabled": false, "metadata": {}}),
        ))
        .await;
    assert_eq!(edge["schedule_name"], "é".repeat(255));
    assert_eq!(edge["priority"], 0);
    assert_eq!(edge["cron_expression"], "*/5 * * * * *");
    let lowest = env.create(with(json!({"priority": 20}))).await;
    assert_eq!(lowest["priority"], 20);
    // Defaults, and unknown fields ignored.
    let defaults = env.create(with(json!({"colour": "blue"}))).await;
    assert_eq!(defaults["enabled"], true);
    assert_eq!(defaults["priority"], 10);
    assert_eq!(defaults["execution_mode"], "lan");
    assert_eq!(defaults["timezone"], "UTC");
    assert_eq!(defaults["is_blocking"], false);
    assert_eq!(defaults["metadata"], json!({}));
}

async fn wrong_json_types_and_malformed_bodies_are_400s(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Reports").await.to_string();
    let nothing = env.everything().await;
    let valid = json!({"workflow_id": workflow, "schedule_name": "Hourly Sync",
                       "cron_expression": "0 * * * *"});
    for (field, wrong) in [
        ("workflow_id", json!(5)),
        ("schedule_name", json!(["Hourly"])),
        ("cron_expression", json!({"minute": 0})),
        ("timezone", json!(1)),
        ("enabled", json!("true")),
        ("enabled", json!(1)),
        ("priority", json!("10")),
        ("priority", json!(1.5)),
        ("priority", json!(true)),
        ("execution_mode", json!(false)),
        ("is_blocking", json!("no")),
        ("metadata", json!([1, 2])),
        ("metadata", json!("{}")),
    ] {
        let mut body = valid.clone();
        body[field] = wrong.clone();
        let (status, answer) = env
            .call(Method::POST, "/api/v1/schedules", Some(body))
            .await;
        assert_eq!(
            error_fields(status, &answer),
            [field],
            "{field} = {wrong}: {answer}"
        );
    }
    // Several wrong at once are all named.
    let (status, answer) = env
        .call(
            Method::POST,
            "/api/v1/schedules",
            Some(json!({"workflow_id": 1, "schedule_name": 2, "cron_expression": 3})),
        )
        .await;
    assert_eq!(
        error_fields(status, &answer),
        ["workflow_id", "schedule_name", "cron_expression"]
    );
    for body in [
        "",
        "{",
        "{\"schedule_name\": }",
        "not json",
        "[]",
        "[{}]",
        "5",
        "null",
        "\"x\"",
        "true",
    ] {
        let (status, answer) = env.raw(body).await;
        assert_eq!(status, 400, "{body:?}: {answer}");
        assert!(
            answer["error"].is_string() && answer["detail"].is_string(),
            "{answer}"
        );
    }
    let (status, answer) = env.raw("[]").await;
    assert_eq!(error_fields(status, &answer), ["body"]);
    assert_eq!(env.everything().await, nothing, "a refused request wrote");
}

async fn the_permission_matrix_guards_every_route(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Reports").await.to_string();
    let schedule = env
        .create(json!({"workflow_id": workflow, "schedule_name": "Guarded",
                       "cron_expression": "0 3 * * *"}))
        .await;
    let id = schedule["schedule_id"].as_str().unwrap().to_owned();
    let viewer = env.app.user_token("viewer", &["viewer"]).await;
    let operator = env.app.user_token("operator", &["operator"]).await;
    let developer = env.app.user_token("developer", &["developer"]).await;
    let body = json!({"workflow_id": workflow, "schedule_name": "New",
                      "cron_expression": "0 4 * * *"});
    let status_of = |method: Method, path: String, token: Option<&String>, body: Option<&Value>| {
        let mut request = env.app.client.request(method, env.app.url(&path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let one = format!("/api/v1/schedules/{id}");
    // Read: everyone signed in; nobody anonymous.
    for path in ["/api/v1/schedules".to_owned(), one.clone()] {
        assert_eq!(status_of(Method::GET, path.clone(), None, None).await, 401);
        for token in [&viewer, &operator, &developer] {
            assert_eq!(
                status_of(Method::GET, path.clone(), Some(token), None).await,
                200
            );
        }
    }
    // Develop: create, enable, disable, delete.
    for token in [None, Some(&viewer), Some(&operator)] {
        let expected = if token.is_none() { 401 } else { 403 };
        assert_eq!(
            status_of(Method::POST, "/api/v1/schedules".into(), token, Some(&body)).await,
            expected
        );
        for action in ["enable", "disable"] {
            assert_eq!(
                status_of(Method::PUT, format!("{one}/{action}"), token, None).await,
                expected,
                "{action}"
            );
        }
        assert_eq!(
            status_of(Method::DELETE, one.clone(), token, None).await,
            expected
        );
    }
    // Operate: trigger now.
    assert_eq!(
        status_of(Method::PUT, format!("{one}/trigger"), None, None).await,
        401
    );
    assert_eq!(
        status_of(Method::PUT, format!("{one}/trigger"), Some(&viewer), None).await,
        403
    );
    assert_eq!(
        env.get(&id).await["run_count"],
        0,
        "refused calls changed nothing"
    );
    assert_eq!(
        status_of(Method::PUT, format!("{one}/trigger"), Some(&operator), None).await,
        200
    );
    assert_eq!(
        status_of(
            Method::PUT,
            format!("{one}/trigger"),
            Some(&developer),
            None
        )
        .await,
        200
    );
    assert_eq!(
        status_of(
            Method::POST,
            "/api/v1/schedules".into(),
            Some(&developer),
            Some(&body)
        )
        .await,
        200
    );
    for action in ["disable", "enable"] {
        assert_eq!(
            status_of(
                Method::PUT,
                format!("{one}/{action}"),
                Some(&developer),
                None
            )
            .await,
            200
        );
    }
    assert_eq!(
        status_of(Method::DELETE, one.clone(), Some(&developer), None).await,
        200
    );
}

async fn lists_page_with_a_cursor(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Reports").await.to_string();
    let mut made = Vec::new();
    for n in 0..5 {
        let schedule = env
            .create(
                json!({"workflow_id": workflow, "schedule_name": format!("S{n}"),
                           "cron_expression": "0 3 * * *", "enabled": n != 2}),
            )
            .await;
        made.push(schedule["schedule_id"].as_str().unwrap().to_owned());
    }
    // One page: the body is the plain array, the header says where the next one starts.
    let page = async |query: &str| {
        let response = env
            .app
            .client
            .get(env.app.url(&format!("/api/v1/schedules{query}")))
            .bearer_auth(&env.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{query}");
        let next = response
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        (ids(&body), next)
    };
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    let mut sizes = Vec::new();
    loop {
        let (ids, next) = page(&query).await;
        sizes.push(ids.len());
        seen.extend(ids);
        match next {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(seen, made, "every schedule once, oldest first");
    // A full last page has no cursor either; filters hold across pages.
    let (all, next) = page("?limit=5").await;
    assert_eq!((all.len(), next), (5, None));
    let (first, next) = page("?enabled=true&limit=2").await;
    assert_eq!(first, made[..2]);
    let (rest, next) = page(&format!("?enabled=true&limit=2&cursor={}", next.unwrap())).await;
    assert_eq!(rest, [made[3].clone(), made[4].clone()]);
    assert_eq!(next, None);
    // A cursor the server did not issue is a 400 naming it.
    for cursor in ["nonsense", "12.not-a-uuid", "1"] {
        let (status, body) = env.list(&format!("?cursor={cursor}")).await;
        assert_eq!(error_fields(status, &body), ["cursor"], "{cursor}");
    }
}

async fn a_preview_shows_the_next_fire_times_or_names_the_broken_field(db: TestDatabase) {
    let env = Env::start(db).await;
    let before = OffsetDateTime::now_utc();
    // Five by default, in order, after now, at 09:00 Paris time (07:00 or 08:00 UTC).
    let (status, answer) = env
        .call(
            Method::GET,
            "/api/v1/schedules/preview?cron_expression=0%209%20*%20*%20*&timezone=Europe/Paris",
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(keys(&answer), ["next"]);
    let times: Vec<OffsetDateTime> = answer["next"]
        .as_array()
        .unwrap()
        .iter()
        .map(instant)
        .collect();
    assert_eq!(times.len(), 5, "{answer}");
    assert!(times[0] > before, "{answer}");
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{answer}");
    assert!(
        times
            .iter()
            .all(|t| t.minute() == 0 && [7, 8].contains(&t.hour())),
        "{answer}"
    );
    let (status, answer) = env
        .call(
            Method::GET,
            "/api/v1/schedules/preview?cron_expression=*/10%20*%20*%20*%20*%20*&count=3",
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["next"].as_array().unwrap().len(), 3, "{answer}");

    // Every broken input is named; the preview is refused as a create would be.
    let refused = [
        (
            "cron_expression=61%20*%20*%20*%20*",
            vec!["cron_expression"],
        ),
        ("cron_expression=*%20*%20*", vec!["cron_expression"]),
        (
            "cron_expression=0%200%2030%202%20*",
            vec!["cron_expression"],
        ),
        ("", vec!["cron_expression"]),
        (
            "cron_expression=*%20*%20*%20*%20*&timezone=Mars/Olympus",
            vec!["timezone"],
        ),
        ("cron_expression=*%20*%20*%20*%20*&count=0", vec!["count"]),
        (
            "cron_expression=*%20*%20*%20*%20*&count=many",
            vec!["count"],
        ),
        (
            "cron_expression=nonsense&timezone=Nowhere&count=51",
            vec!["timezone", "count", "cron_expression"],
        ),
    ];
    for (query, fields) in refused {
        let (status, answer) = env
            .call(
                Method::GET,
                &format!("/api/v1/schedules/preview?{query}"),
                None,
            )
            .await;
        assert_eq!(error_fields(status, &answer), fields, "{query}: {answer}");
    }
    // Nothing was stored, and a viewer may preview; nobody anonymous may.
    assert_eq!(env.listed_ids("").await, Vec::<String>::new());
    let viewer = env.app.user_token("viewer", &["viewer"]).await;
    let (status, _) = env
        .app
        .call_as(
            &viewer,
            Method::GET,
            "/api/v1/schedules/preview?cron_expression=0%203%20*%20*%20*",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let anonymous = env
        .app
        .client
        .get(
            env.app
                .url("/api/v1/schedules/preview?cron_expression=0%203%20*%20*%20*"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}

async fn a_scheduled_workflow_submission_is_a_schedule(db: TestDatabase) {
    let env = Env::start(db).await;
    let (status, submitted) = env
        .call(
            Method::POST,
            "/api/v1/workflows",
            Some(json!({
                "workflow_name": "Nightly Export",
                "workflow_json": {"nodes": [{"id": "start", "type": "StartNode"}]},
                "trigger_type": "scheduled",
                "schedule_cron": "0 2 * * *",
                "priority": 4
            })),
        )
        .await;
    assert_eq!(status, 200, "{submitted}");
    let id = submitted["schedule_id"].as_str().unwrap();
    let schedule = env.get(id).await;
    assert_eq!(schedule["workflow_id"], submitted["workflow_id"]);
    assert_eq!(schedule["schedule_name"], "Nightly Export");
    assert_eq!(schedule["cron_expression"], "0 2 * * *");
    assert_eq!(schedule["priority"], 4);
    assert_eq!(schedule["enabled"], true);
    assert!(schedule["next_run"].is_string());
    let workflow = submitted["workflow_id"].as_str().unwrap();
    assert_eq!(
        env.listed_ids(&format!("?workflow_id={workflow}")).await,
        [id]
    );
}

/// A schedule fires within a second of its due time (docs/schedules.md). The server runs at its
/// default ticks; the deadlines are generous and the lag is printed, not asserted.
async fn a_per_second_schedule_fires_every_second(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Every Second").await;
    let started = Instant::now();
    let schedule = env
        .create(
            json!({"workflow_id": workflow.to_string(), "schedule_name": "Tick",
                       "cron_expression": "* * * * * *"}),
        )
        .await;
    let id = schedule["schedule_id"].as_str().unwrap().to_owned();
    let first_due = instant(&schedule["next_run"]);
    assert_eq!(first_due.nanosecond(), 0, "due on a whole second");

    // The first job appears within about a second.
    let deadline = started + Duration::from_secs(5);
    while env.jobs(workflow).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no job within 5 s of creating the schedule"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "first job seen {:?} after creating the schedule",
        started.elapsed()
    );
    // Then one a second: wait for three, then stop it so the counts hold still.
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.jobs(workflow).await.len() < 3 {
        assert!(Instant::now() < deadline, "fewer than 3 jobs within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, stopped) = env.put(&id, "disable").await;
    assert_eq!(status, 200, "{stopped}");

    let jobs = env.jobs(workflow).await;
    let created: Vec<OffsetDateTime> = jobs.iter().map(|j| instant(&j["created_at"])).collect();
    assert_eq!(stopped["run_count"], jobs.len(), "one job per fire");
    let newest = created.iter().max().unwrap();
    assert_eq!(instant(&stopped["last_run"]), *newest);
    assert_eq!(stopped["failure_count"], 0);
    // Each due second fired once: the fire times fall in distinct seconds, from the first due.
    let mut seconds: Vec<i64> = created.iter().map(|t| t.unix_timestamp()).collect();
    seconds.sort_unstable();
    seconds.dedup();
    assert_eq!(
        seconds.len(),
        jobs.len(),
        "two fires in one second: {created:?}"
    );
    assert!(seconds[0] >= first_due.unix_timestamp(), "fired before due");
    let lags: Vec<i64> = created
        .iter()
        .map(|t| i64::from(t.nanosecond() / 1_000_000))
        .collect();
    eprintln!("fire lag after each due second (ms): {lags:?}");
    // Disabled, it fires no more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(env.jobs(workflow).await.len(), jobs.len());
}
