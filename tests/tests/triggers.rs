//! Triggers over HTTP (docs/triggers.md): the CRUD under `/api/v1/triggers` with every field
//! read back as stored, every validation rule answered 400 with its field and nothing written,
//! the permission matrix, and the engine: SINGLE fires once and re-arms when set IDLE, QUEUE
//! fires at `min_batch_size` NEW items, SCHEDULED fires on its cron, and two `baton` processes
//! on one PostgreSQL database fire a due trigger exactly once, fifty times over, and a
//! per-second schedule (made through `/schedules`) once per due second.
//!
//! Workflows have no HTTP endpoint yet, so tests store them directly in the database; jobs are
//! read back the same way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use baton_domain::ids::{TriggerId, WorkflowId};
use baton_domain::job::{Job, JobOrigin, JobStatus};
use baton_domain::ports::{JobFilter, JobRepository, WorkflowRepository};
use baton_domain::workflow::{Workflow, WorkflowGraph, WorkflowName};
use baton_domain::{Clock, IdGenerator, SystemClock, UuidV7Generator};
use baton_storage::Db;
use baton_storage::testing::TestDatabase;
use baton_tests::{BatonProcess, TEST_JWT_SECRET, TestApp, json};
use reqwest::Method;
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
    created_triggers_read_back_field_for_field,
    updates_change_only_the_fields_given,
    unknown_ids_are_404_and_taken_names_409,
    every_validation_rule_is_a_400_naming_its_field_and_writes_nothing,
    wrong_json_types_and_malformed_bodies_are_400s,
    next_run_takes_every_instant_form_the_queues_take,
    the_permission_matrix_guards_every_route,
    a_single_trigger_fires_once_and_setting_it_idle_re_arms_it,
    a_queue_trigger_fires_at_min_batch_size_new_items,
    a_scheduled_trigger_fires_on_its_cron_and_blocks_while_running,
);

/// How long the engine may take to fire a due trigger in these tests (its ticks are 20 ms).
const FIRE_WITHIN: Duration = Duration::from_secs(10);

/// A server whose engine and trigger rounds tick every 20 ms, an admin token, and a pool on
/// its database.
struct Env {
    app: TestApp,
    token: String,
    db: Db,
}

impl Env {
    async fn start(db: TestDatabase) -> Self {
        let app = TestApp::spawn_with(db, |c| {
            c.engine_tick_ms = 20;
            c.trigger_tick_ms = 20;
            c.rate_limits = false;
        })
        .await;
        let token = app.admin_token().await;
        let db = app.database().connect().await;
        Env { app, token, db }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.app
            .call_as(&self.token, method, path, body.as_ref())
            .await
    }

    async fn raw(&self, method: Method, path: &str, body: &str) -> (u16, Value) {
        self.app.call_raw_as(&self.token, method, path, body).await
    }

    async fn create(&self, body: Value) -> Value {
        let (status, trigger) = self
            .call(Method::POST, "/api/v1/triggers", Some(body))
            .await;
        assert_eq!(status, 201, "{trigger}");
        trigger
    }

    async fn trigger(&self, id: &Value) -> Value {
        let (status, trigger) = self
            .call(
                Method::GET,
                &format!("/api/v1/triggers/{}", id.as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, 200, "{trigger}");
        trigger
    }

    async fn list(&self) -> Vec<Value> {
        let (status, list) = self.call(Method::GET, "/api/v1/triggers", None).await;
        assert_eq!(status, 200, "{list}");
        list.as_array().unwrap().clone()
    }

    async fn set_status(&self, name: &str, status: &str) {
        let (code, body) = self
            .call(
                Method::POST,
                "/api/trigger",
                Some(json!({"trigger_name": name, "process_status": status})),
            )
            .await;
        assert_eq!(code, 200, "{body}");
    }

    async fn workflow(&self, name: &str) -> WorkflowId {
        insert_workflow(&self.db, name).await
    }

    async fn jobs(&self, workflow: WorkflowId) -> Vec<Job> {
        jobs_of(&self.db, workflow).await
    }

    /// Waits until `workflow` has `count` jobs, then a little longer to see that no more come.
    async fn expect_jobs(&self, workflow: WorkflowId, count: usize) -> Vec<Job> {
        let deadline = Instant::now() + FIRE_WITHIN;
        while self.jobs(workflow).await.len() < count {
            assert!(
                Instant::now() < deadline,
                "no job {count} within {FIRE_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        let jobs = self.jobs(workflow).await;
        assert_eq!(jobs.len(), count, "more jobs than fires");
        jobs
    }
}

/// Stores a workflow of one start node, as the workflow API will.
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

async fn jobs_of(db: &Db, workflow: WorkflowId) -> Vec<Job> {
    db.list_jobs(&JobFilter {
        workflow_id: Some(workflow),
        limit: 1000,
        ..JobFilter::default()
    })
    .await
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

fn instant(value: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        value.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

// ---- CRUD ----

async fn created_triggers_read_back_field_for_field(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Invoices").await;
    let before = time::OffsetDateTime::now_utc();

    let single = env
        .create(json!({
            "trigger_name": "MyAutomationTrigger",
            "type": "SINGLE",
            "workflow_id": workflow.to_string(),
            "process_status": "done",
            "enabled": false,
            "priority": 3,
        }))
        .await;
    let expected_keys = [
        "id",
        "trigger_name",
        "type",
        "workflow_id",
        "cron_expression",
        "timezone",
        "queue_name",
        "min_batch_size",
        "process_status",
        "enabled",
        "priority",
        "next_run",
        "last_run",
        "run_count",
        "failure_count",
        "current_job_id",
        "created_at",
        "updated_at",
    ];
    for key in expected_keys {
        assert!(single.get(key).is_some(), "no {key} in {single}");
    }
    assert_eq!(single["trigger_name"], "MyAutomationTrigger");
    assert_eq!(single["type"], "SINGLE");
    assert_eq!(single["workflow_id"], workflow.to_string());
    assert_eq!(single["process_status"], "DONE");
    assert_eq!(single["enabled"], false);
    assert_eq!(single["priority"], 3);
    assert_eq!(single["cron_expression"], Value::Null);
    assert_eq!(single["queue_name"], Value::Null);
    assert_eq!(single["run_count"], 0);
    assert_eq!(single["failure_count"], 0);
    assert_eq!(single["current_job_id"], Value::Null);
    assert_eq!(single["last_run"], Value::Null);
    let created = instant(&single["created_at"]);
    assert!(created >= before - time::Duration::seconds(1));
    assert_eq!(single["created_at"], single["updated_at"]);
    assert!(single["id"].as_str().unwrap().parse::<TriggerId>().is_ok());

    let scheduled = env
        .create(json!({
            "trigger_name": "Morning run",
            "type": "scheduled",
            "workflow_id": workflow.to_string(),
            "cron_expression": "0 9 * * 1-5",
            "timezone": "Europe/Paris",
        }))
        .await;
    assert_eq!(scheduled["type"], "SCHEDULED");
    assert_eq!(scheduled["cron_expression"], "0 9 * * 1-5");
    assert_eq!(scheduled["timezone"], "Europe/Paris");
    assert_eq!(scheduled["process_status"], "IDLE");
    assert_eq!(scheduled["enabled"], true);
    assert_eq!(scheduled["priority"], 10);
    let next = instant(&scheduled["next_run"]);
    assert!(next > created, "a schedule's next run is ahead: {next}");
    let local = next.to_offset(time::UtcOffset::from_hms(1, 0, 0).unwrap());
    assert!(
        [(8, 0), (9, 0)].contains(&(local.hour(), local.minute())),
        "09:00 in Paris is 07:00 or 08:00 UTC: {next}"
    );

    let queue = env
        .create(json!({
            "trigger_name": "Invoice batches",
            "type": "QUEUE",
            "workflow_id": workflow.to_string(),
            "queue_name": "invoices",
            "enabled": false,
        }))
        .await;
    assert_eq!(queue["queue_name"], "invoices");
    assert_eq!(queue["min_batch_size"], 1, "the documented default");
    assert_eq!(queue["cron_expression"], Value::Null);
    assert_eq!(queue["next_run"], Value::Null);

    // Stored values read back as created, one by one and in the list (oldest first).
    for created in [&single, &scheduled, &queue] {
        assert_eq!(&env.trigger(&created["id"]).await, created);
    }
    let list = env.list().await;
    assert_eq!(list, [single.clone(), scheduled.clone(), queue.clone()]);
    let (status, queues) = env
        .call(Method::GET, "/api/v1/triggers?type=queue", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(queues, json!([queue]));
    let (status, enabled) = env
        .call(Method::GET, "/api/v1/triggers?enabled=true", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(enabled, json!([scheduled]));
    let (status, body) = env
        .call(Method::GET, "/api/v1/triggers?type=CRON", None)
        .await;
    assert_eq!(error_fields(status, &body), ["type"]);

    // A second server on the same database sees the same triggers.
    let other = env.app.another_server(|_| {}).await;
    let response = other
        .client
        .get(other.url("/api/v1/triggers"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(json(response).await.1, json!(list));
}

async fn updates_change_only_the_fields_given(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Invoices").await;
    let other_workflow = env.workflow("Payments").await;
    let created = env
        .create(json!({
            "trigger_name": "hourly",
            "type": "SCHEDULED",
            "workflow_id": workflow.to_string(),
            "cron_expression": "0 * * * *",
            "enabled": false,
        }))
        .await;
    let path = format!("/api/v1/triggers/{}", created["id"].as_str().unwrap());

    let (status, changed) = env
        .call(
            Method::PUT,
            &path,
            Some(json!({"priority": 0, "timezone": "Asia/Kolkata"})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["priority"], 0);
    assert_eq!(changed["timezone"], "Asia/Kolkata");
    assert_eq!(changed["cron_expression"], "0 * * * *", "kept");
    assert_eq!(changed["trigger_name"], "hourly", "kept");
    assert_eq!(changed["enabled"], false, "kept");
    assert_eq!(changed["created_at"], created["created_at"]);
    assert_ne!(changed["updated_at"], created["updated_at"]);
    // Kolkata is UTC+05:30, so its full hours fall on the half hour in UTC.
    assert_eq!(instant(&changed["next_run"]).minute(), 30);
    assert_eq!(env.trigger(&created["id"]).await, changed);

    let (status, renamed) = env
        .call(
            Method::PUT,
            &path,
            Some(json!({
                "trigger_name": "every two hours",
                "cron_expression": "0 */2 * * *",
                "workflow_id": other_workflow.to_string(),
                "process_status": "paused",
            })),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["trigger_name"], "every two hours");
    assert_eq!(renamed["cron_expression"], "0 */2 * * *");
    assert_eq!(renamed["timezone"], "Asia/Kolkata");
    assert_eq!(renamed["workflow_id"], other_workflow.to_string());
    assert_eq!(renamed["process_status"], "PAUSED");

    // A change of type asks for the new type's fields and clears the old ones.
    let (status, body) = env
        .call(Method::PUT, &path, Some(json!({"type": "QUEUE"})))
        .await;
    assert_eq!(error_fields(status, &body), ["queue_name"]);
    let (status, queue) = env
        .call(
            Method::PUT,
            &path,
            Some(json!({"type": "QUEUE", "queue_name": "inbox", "min_batch_size": 5})),
        )
        .await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["type"], "QUEUE");
    assert_eq!(queue["queue_name"], "inbox");
    assert_eq!(queue["min_batch_size"], 5);
    assert_eq!(queue["cron_expression"], Value::Null);
    assert_eq!(queue["timezone"], Value::Null);
    assert_eq!(queue["next_run"], Value::Null);

    // An empty change keeps everything.
    let (status, same) = env.call(Method::PUT, &path, Some(json!({}))).await;
    assert_eq!(status, 200);
    for key in [
        "trigger_name",
        "type",
        "queue_name",
        "min_batch_size",
        "priority",
        "enabled",
    ] {
        assert_eq!(same[key], queue[key], "{key}");
    }
}

async fn unknown_ids_are_404_and_taken_names_409(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Invoices").await;
    let body = |name: &str| json!({"trigger_name": name, "type": "SINGLE", "workflow_id": workflow.to_string(), "enabled": false});
    let first = env.create(body("first")).await;
    let second = env.create(body("second")).await;

    let (status, err) = env
        .call(Method::POST, "/api/v1/triggers", Some(body("first")))
        .await;
    assert_eq!(status, 409, "{err}");
    assert!(err["detail"].as_str().unwrap().contains("first"), "{err}");

    let second_path = format!("/api/v1/triggers/{}", second["id"].as_str().unwrap());
    let (status, err) = env
        .call(
            Method::PUT,
            &second_path,
            Some(json!({"trigger_name": "first"})),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(
        env.trigger(&second["id"]).await,
        second,
        "a refused rename writes nothing"
    );

    let unknown = format!("/api/v1/triggers/{}", UuidV7Generator.new_uuid());
    for path in [unknown.as_str(), "/api/v1/triggers/not-a-uuid"] {
        for (method, body) in [
            (Method::GET, None),
            (Method::PUT, Some(json!({"priority": 1}))),
            (Method::DELETE, None),
        ] {
            let (status, err) = env.call(method.clone(), path, body).await;
            assert_eq!(status, 404, "{method} {path}: {err}");
            assert!(err["error"].is_string() && err["detail"].is_string());
        }
    }

    let first_path = format!("/api/v1/triggers/{}", first["id"].as_str().unwrap());
    let (status, deleted) = env.call(Method::DELETE, &first_path, None).await;
    assert_eq!(status, 200, "{deleted}");
    let (status, _) = env.call(Method::GET, &first_path, None).await;
    assert_eq!(status, 404);
    let (status, _) = env.call(Method::DELETE, &first_path, None).await;
    assert_eq!(status, 404);
    assert_eq!(env.list().await, std::slice::from_ref(&second));
    // The name is free again.
    env.create(body("first")).await;
}

// ---- validation ----

async fn every_validation_rule_is_a_400_naming_its_field_and_writes_nothing(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Invoices").await.to_string();
    let single = |extra: Value| {
        let mut body = json!({"trigger_name": "t", "type": "SINGLE", "workflow_id": workflow});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["trigger_name", "type", "workflow_id"]),
        (single(json!({"trigger_name": ""})), vec!["trigger_name"]),
        (
            single(json!({"trigger_name": "x".repeat(101)})),
            vec!["trigger_name"],
        ),
        (single(json!({"type": "CRON"})), vec!["type"]),
        (single(json!({"workflow_id": "42"})), vec!["workflow_id"]),
        (
            single(json!({"workflow_id": UuidV7Generator.new_uuid().to_string()})),
            vec!["workflow_id"],
        ),
        (
            single(json!({"process_status": "SLEEPING"})),
            vec!["process_status"],
        ),
        (single(json!({"priority": 21})), vec!["priority"]),
        (single(json!({"priority": -1})), vec!["priority"]),
        (
            single(json!({"cron_expression": "0 * * * *"})),
            vec!["cron_expression"],
        ),
        (single(json!({"timezone": "UTC"})), vec!["timezone"]),
        (single(json!({"queue_name": "q"})), vec!["queue_name"]),
        (single(json!({"min_batch_size": 2})), vec!["min_batch_size"]),
        (
            single(json!({"type": "SCHEDULED"})),
            vec!["cron_expression"],
        ),
        (
            single(json!({"type": "SCHEDULED", "cron_expression": "61 * * * *"})),
            vec!["cron_expression"],
        ),
        (
            single(json!({"type": "SCHEDULED", "cron_expression": "* * *"})),
            vec!["cron_expression"],
        ),
        (
            single(
                json!({"type": "SCHEDULED", "cron_expression": "0 * * * *", "timezone": "Mars/Base"}),
            ),
            vec!["timezone"],
        ),
        (
            single(json!({"type": "SCHEDULED", "cron_expression": "0 * * * *", "queue_name": "q"})),
            vec!["queue_name"],
        ),
        (single(json!({"type": "QUEUE"})), vec!["queue_name"]),
        (
            single(json!({"type": "QUEUE", "queue_name": "q", "min_batch_size": 0})),
            vec!["min_batch_size"],
        ),
        (
            single(json!({"type": "QUEUE", "queue_name": "q".repeat(101)})),
            vec!["queue_name"],
        ),
        (
            single(json!({"type": "QUEUE", "queue_name": "q", "cron_expression": "0 * * * *"})),
            vec!["cron_expression"],
        ),
        // Every broken rule at once.
        (
            json!({
                "trigger_name": "", "type": "SCHEDULED", "workflow_id": "x",
                "cron_expression": "nonsense", "timezone": "Nowhere/City",
                "process_status": "?", "priority": 100,
            }),
            vec![
                "trigger_name",
                "workflow_id",
                "cron_expression",
                "timezone",
                "process_status",
                "priority",
            ],
        ),
    ];
    for (body, expected) in cases {
        let (status, err) = env
            .call(Method::POST, "/api/v1/triggers", Some(body.clone()))
            .await;
        assert_eq!(error_fields(status, &err), expected, "{body}");
    }
    assert!(
        env.list().await.is_empty(),
        "a refused request writes nothing"
    );

    // The same rules apply to a change, which then writes nothing either.
    let created = env.create(single(json!({"enabled": false}))).await;
    let path = format!("/api/v1/triggers/{}", created["id"].as_str().unwrap());
    for (body, expected) in [
        (json!({"priority": 21}), vec!["priority"]),
        (json!({"trigger_name": ""}), vec!["trigger_name"]),
        (json!({"type": "SCHEDULED"}), vec!["cron_expression"]),
        (
            json!({"cron_expression": "0 * * * *"}),
            vec!["cron_expression"],
        ),
        (
            json!({"process_status": "ASLEEP", "priority": "1"}),
            vec!["priority", "process_status"],
        ),
        (
            json!({"workflow_id": UuidV7Generator.new_uuid().to_string()}),
            vec!["workflow_id"],
        ),
    ] {
        let (status, err) = env.call(Method::PUT, &path, Some(body.clone())).await;
        let mut fields = error_fields(status, &err);
        fields.sort();
        assert_eq!(fields, expected, "{body}");
    }
    assert_eq!(env.trigger(&created["id"]).await, created);
}

/// `next_run` is read as every other instant of the API (docs/errors.md): what
/// `POST /api/queue` takes as `created_date` a SINGLE trigger takes as `next_run`, and what it
/// refuses is refused here with the same message.
async fn next_run_takes_every_instant_form_the_queues_take(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Invoices").await.to_string();
    let forms = [
        ("2099-04-26 12:00:00", "2099-04-26T12:00:00Z"),
        ("2099-04-26 12:00:00.123456", "2099-04-26T12:00:00.123456Z"),
        ("2099-04-26T12:00:00", "2099-04-26T12:00:00Z"),
        ("2099-04-26", "2099-04-26T00:00:00Z"),
        ("2099-04-26T14:00:00+02:00", "2099-04-26T12:00:00Z"),
    ];
    for (i, (given, stored)) in forms.into_iter().enumerate() {
        // Disabled, so the engine leaves `next_run` as given.
        let trigger = env
            .create(json!({
                "trigger_name": format!("later {i}"),
                "type": "SINGLE",
                "workflow_id": workflow,
                "enabled": false,
                "next_run": given,
            }))
            .await;
        assert_eq!(trigger["next_run"], stored, "{given}");
        let (status, item) = env
            .call(
                Method::POST,
                "/api/queue",
                Some(json!({"queue_name": "instants", "created_date": given})),
            )
            .await;
        assert_eq!(status, 201, "the queue takes {given}: {item}");
    }
    // Changed by PUT as well.
    let trigger = env
        .create(json!({"trigger_name": "moved", "type": "SINGLE", "workflow_id": workflow, "enabled": false}))
        .await;
    let path = format!("/api/v1/triggers/{}", trigger["id"].as_str().unwrap());
    let (status, moved) = env
        .call(
            Method::PUT,
            &path,
            Some(json!({"next_run": "2099-05-01 08:30:00"})),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["next_run"], "2099-05-01T08:30:00Z");

    // Both refuse the same texts, with the same message.
    for bad in ["tomorrow", "2099-13-01", "26/04/2099"] {
        let (status, trigger_err) = env
            .call(
                Method::POST,
                "/api/v1/triggers",
                Some(json!({"trigger_name": "bad", "type": "SINGLE", "workflow_id": workflow, "next_run": bad})),
            )
            .await;
        assert_eq!(error_fields(status, &trigger_err), ["next_run"], "{bad}");
        let (status, queue_err) = env
            .call(
                Method::POST,
                "/api/queue",
                Some(json!({"queue_name": "instants", "created_date": bad})),
            )
            .await;
        assert_eq!(error_fields(status, &queue_err), ["created_date"], "{bad}");
        assert_eq!(
            trigger_err["errors"][0]["message"], queue_err["errors"][0]["message"],
            "{bad}"
        );
        assert!(
            trigger_err["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("must be an ISO 8601 date-time"),
            "{trigger_err}"
        );
    }
}

async fn wrong_json_types_and_malformed_bodies_are_400s(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Invoices").await.to_string();
    let typed_cases = [
        (
            json!({"trigger_name": 5, "type": "SINGLE", "workflow_id": workflow}),
            vec!["trigger_name"],
        ),
        (
            json!({"trigger_name": "t", "type": 1, "workflow_id": workflow}),
            vec!["type"],
        ),
        (
            json!({"trigger_name": "t", "type": "SINGLE", "workflow_id": 7}),
            vec!["workflow_id"],
        ),
        (
            json!({"trigger_name": "t", "type": "SINGLE", "workflow_id": workflow, "enabled": "yes"}),
            vec!["enabled"],
        ),
        (
            json!({"trigger_name": "t", "type": "SINGLE", "workflow_id": workflow, "priority": "5"}),
            vec!["priority"],
        ),
        (
            json!({"trigger_name": "t", "type": "SINGLE", "workflow_id": workflow, "priority": 2.5}),
            vec!["priority"],
        ),
        (
            json!({"trigger_name": "t", "type": "QUEUE", "workflow_id": workflow, "queue_name": ["q"]}),
            vec!["queue_name"],
        ),
        (
            json!({"trigger_name": "t", "type": "QUEUE", "workflow_id": workflow, "queue_name": "q", "min_batch_size": "3"}),
            vec!["min_batch_size"],
        ),
        (
            json!({"trigger_name": "t", "type": "SCHEDULED", "workflow_id": workflow, "cron_expression": 5}),
            vec!["cron_expression"],
        ),
        (
            json!({"trigger_name": "t", "type": "SCHEDULED", "workflow_id": workflow, "cron_expression": "0 * * * *", "timezone": false}),
            vec!["timezone"],
        ),
        (
            json!({"trigger_name": "t", "type": "SINGLE", "workflow_id": workflow, "process_status": {}}),
            vec!["process_status"],
        ),
        // A wrong type and a broken rule, reported together.
        (
            json!({"trigger_name": 5, "type": "SINGLE", "workflow_id": workflow, "priority": 30}),
            vec!["trigger_name", "priority"],
        ),
    ];
    for (body, expected) in typed_cases {
        let (status, err) = env
            .call(Method::POST, "/api/v1/triggers", Some(body.clone()))
            .await;
        assert_eq!(error_fields(status, &err), expected, "{body}");
    }
    for body in [
        "",
        "{",
        "{\"trigger_name\": }",
        "[]",
        "[{}]",
        "\"SINGLE\"",
        "42",
        "null",
        "true",
    ] {
        let (status, err) = env.raw(Method::POST, "/api/v1/triggers", body).await;
        assert_eq!(status, 400, "{body:?}: {err}");
        assert!(
            err["error"].is_string() && err["detail"].is_string(),
            "{err}"
        );
    }
    let created = env
        .create(json!({"trigger_name": "t", "type": "SINGLE", "workflow_id": workflow, "enabled": false}))
        .await;
    let path = format!("/api/v1/triggers/{}", created["id"].as_str().unwrap());
    for body in ["", "{", "[]", "7"] {
        let (status, _) = env.raw(Method::PUT, &path, body).await;
        assert_eq!(status, 400, "{body:?}");
    }
    let (status, err) = env
        .call(Method::PUT, &path, Some(json!({"enabled": 1})))
        .await;
    assert_eq!(error_fields(status, &err), ["enabled"]);
    assert_eq!(
        env.list().await,
        std::slice::from_ref(&created),
        "refused requests wrote nothing"
    );
}

async fn the_permission_matrix_guards_every_route(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Invoices").await.to_string();
    let viewer = env.app.user_token("viewer", &["viewer"]).await;
    let operator = env.app.user_token("operator", &["operator"]).await;
    let developer = env.app.user_token("developer", &["developer"]).await;
    let body = |name: &str| json!({"trigger_name": name, "type": "SINGLE", "workflow_id": workflow, "enabled": false});
    let send = |method: Method, path: String, token: Option<String>, body: Option<Value>| {
        let mut request = env.app.client.request(method, env.app.url(&path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };

    assert_eq!(
        send(Method::GET, "/api/v1/triggers".into(), None, None).await,
        401
    );
    assert_eq!(
        send(
            Method::POST,
            "/api/v1/triggers".into(),
            None,
            Some(body("anon"))
        )
        .await,
        401
    );
    assert_eq!(
        send(
            Method::POST,
            "/api/v1/triggers".into(),
            Some(viewer.clone()),
            Some(body("v"))
        )
        .await,
        403
    );
    assert_eq!(
        send(
            Method::POST,
            "/api/v1/triggers".into(),
            Some(operator.clone()),
            Some(body("o"))
        )
        .await,
        403
    );
    assert_eq!(
        send(
            Method::POST,
            "/api/v1/triggers".into(),
            Some(developer.clone()),
            Some(body("d"))
        )
        .await,
        201
    );
    let id = env.list().await[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/triggers/{id}");
    assert_eq!(
        send(
            Method::GET,
            "/api/v1/triggers".into(),
            Some(viewer.clone()),
            None
        )
        .await,
        200
    );
    assert_eq!(
        send(Method::GET, path.clone(), Some(viewer.clone()), None).await,
        200
    );
    for token in [&viewer, &operator] {
        assert_eq!(
            send(
                Method::PUT,
                path.clone(),
                Some(token.clone()),
                Some(json!({"priority": 1}))
            )
            .await,
            403
        );
        assert_eq!(
            send(Method::DELETE, path.clone(), Some(token.clone()), None).await,
            403
        );
    }
    let set_idle = json!({"trigger_name": "d", "process_status": "DONE"});
    assert_eq!(
        send(
            Method::POST,
            "/api/trigger".into(),
            Some(viewer.clone()),
            Some(set_idle.clone())
        )
        .await,
        403
    );
    assert_eq!(
        send(
            Method::POST,
            "/api/trigger".into(),
            Some(operator.clone()),
            Some(set_idle)
        )
        .await,
        200
    );
    assert_eq!(
        send(
            Method::PUT,
            path.clone(),
            Some(developer.clone()),
            Some(json!({"priority": 1}))
        )
        .await,
        200
    );
    assert_eq!(send(Method::DELETE, path, Some(developer), None).await, 200);
}

// ---- the engine ----

async fn a_single_trigger_fires_once_and_setting_it_idle_re_arms_it(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Invoices").await;
    let trigger = env
        .create(json!({
            "trigger_name": "once",
            "type": "SINGLE",
            "workflow_id": workflow.to_string(),
            "priority": 2,
            "process_args": {"case_id": "ABC123"},
        }))
        .await;
    let id: TriggerId = trigger["id"].as_str().unwrap().parse().unwrap();

    let jobs = env.expect_jobs(workflow, 1).await;
    let job = &jobs[0];
    assert_eq!(job.status(), JobStatus::Pending);
    assert_eq!(job.origin(), &JobOrigin::Trigger(id));
    assert_eq!(job.priority().value(), 2);
    assert_eq!(job.workflow_name().as_str(), "Invoices");
    assert_eq!(job.input()["case_id"], "ABC123");
    let fired = env.trigger(&trigger["id"]).await;
    assert_eq!(fired["process_status"], "RUNNING");
    assert_eq!(fired["current_job_id"], job.id().to_string());
    assert_eq!(fired["run_count"], 1);
    assert!(fired["last_run"].is_string());

    // While RUNNING (and then DONE) it stays quiet; IDLE re-arms it for exactly one more fire.
    env.set_status("once", "DONE").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.jobs(workflow).await.len(), 1);
    env.set_status("once", "IDLE").await;
    let jobs = env.expect_jobs(workflow, 2).await;
    let refired = env.trigger(&trigger["id"]).await;
    assert_eq!(refired["run_count"], 2);
    assert_eq!(
        refired["current_job_id"],
        jobs[0].id().to_string(),
        "newest first"
    );

    // A disabled trigger does not fire, whatever its status.
    let path = format!("/api/v1/triggers/{}", trigger["id"].as_str().unwrap());
    let (status, _) = env
        .call(
            Method::PUT,
            &path,
            Some(json!({"enabled": false, "process_status": "IDLE"})),
        )
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.jobs(workflow).await.len(), 2);
}

async fn a_queue_trigger_fires_at_min_batch_size_new_items(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Invoices").await;
    let trigger = env
        .create(json!({
            "trigger_name": "batches",
            "type": "QUEUE",
            "workflow_id": workflow.to_string(),
            "queue_name": "invoices",
            "min_batch_size": 3,
        }))
        .await;
    let add_item = || async {
        let (status, body) = env
            .call(
                Method::POST,
                "/api/queue",
                Some(json!({"queue_name": "invoices"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    };
    add_item().await;
    add_item().await;
    // Another queue's items do not count.
    let (status, _) = env
        .call(
            Method::POST,
            "/api/queue",
            Some(json!({"queue_name": "other"})),
        )
        .await;
    assert_eq!(status, 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(env.jobs(workflow).await.is_empty(), "2 of 3 items fired it");
    add_item().await;
    env.expect_jobs(workflow, 1).await;
    let fired = env.trigger(&trigger["id"]).await;
    assert_eq!(fired["process_status"], "RUNNING");
    // RUNNING, it does not fire again however full the queue is.
    add_item().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.jobs(workflow).await.len(), 1);
    // Back to IDLE with the queue still full: it fires again.
    let path = format!("/api/v1/triggers/{}", trigger["id"].as_str().unwrap());
    let (status, _) = env
        .call(Method::PUT, &path, Some(json!({"process_status": "IDLE"})))
        .await;
    assert_eq!(status, 200);
    env.expect_jobs(workflow, 2).await;
}

async fn a_scheduled_trigger_fires_on_its_cron_and_blocks_while_running(db: TestDatabase) {
    let env = Env::start(db).await;
    let workflow = env.workflow("Invoices").await;
    let trigger = env
        .create(json!({
            "trigger_name": "every second",
            "type": "SCHEDULED",
            "workflow_id": workflow.to_string(),
            "cron_expression": "* * * * * *",
        }))
        .await;
    let first_due = instant(&trigger["next_run"]);
    let jobs = env.expect_jobs(workflow, 1).await;
    let fired_at = jobs[0].created_at();
    assert!(
        fired_at >= first_due,
        "fired at {fired_at}, due at {first_due}"
    );
    assert!(
        fired_at - first_due < time::Duration::seconds(1),
        "fires within a second of its due time"
    );
    let fired = env.trigger(&trigger["id"]).await;
    assert_eq!(fired["process_status"], "RUNNING");
    assert!(
        instant(&fired["next_run"]) > fired_at,
        "the rhythm moved on"
    );
    // Blocking (the default): no second job while the first one runs, though ticks pass.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(env.jobs(workflow).await.len(), 1);
}

// ---- several servers ----

/// Two `baton` processes on one PostgreSQL database, each firing triggers every 10 ms: a SINGLE
/// trigger re-armed fifty times (through either server, alternately) starts exactly one job per
/// round, fifty in all.
#[tokio::test(flavor = "multi_thread")]
async fn two_servers_fire_a_due_trigger_exactly_once_fifty_times() {
    const ROUNDS: usize = 50;
    let db = TestDatabase::postgres().await;
    let env = [
        ("DATABASE_URL", db.url()),
        ("JWT_SECRET_KEY", TEST_JWT_SECRET),
        ("BATON_ADMIN_PASSWORD", "exactly-once-password"),
        ("BATON_ENGINE_TICK_MS", "10"),
        ("BATON_TRIGGER_TICK_MS", "10"),
        ("BATON_RATE_LIMITS", "off"),
        // The engine logs each lost race at debug level: the test checks the servers raced.
        ("RUST_LOG", "info,baton_server::engine=debug"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut first = BatonProcess::start(dir.path(), &[], &env);
    first.wait_until_healthy().await;
    let mut second = BatonProcess::start(dir.path(), &[], &env);
    second.wait_until_healthy().await;
    let servers = [&first, &second];

    let client = reqwest::Client::new();
    let (status, login) = json(
        client
            .post(first.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": "exactly-once-password"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let pool = db.connect().await;
    let workflow = insert_workflow(&pool, "Contested").await;

    let started = Instant::now();
    let (status, trigger) = json(
        client
            .post(second.url("/api/v1/triggers"))
            .bearer_auth(&token)
            .json(&json!({"trigger_name": "contested", "type": "SINGLE", "workflow_id": workflow.to_string()}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{trigger}");
    for round in 1..=ROUNDS {
        if round > 1 {
            let server = servers[round % 2];
            let (status, body) = json(
                client
                    .post(server.url("/api/trigger"))
                    .bearer_auth(&token)
                    .json(&json!({"trigger_name": "contested", "process_status": "IDLE"}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200, "round {round}: {body}");
            assert_eq!(body["new_status"], "IDLE");
        }
        let deadline = Instant::now() + FIRE_WITHIN;
        while jobs_of(&pool, workflow).await.len() < round {
            assert!(
                Instant::now() < deadline,
                "round {round}: no fire within {FIRE_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Both servers tick several times more: the trigger must not fire again.
        tokio::time::sleep(Duration::from_millis(40)).await;
        let jobs = jobs_of(&pool, workflow).await;
        assert_eq!(
            jobs.len(),
            round,
            "round {round}: a due trigger fired more than once"
        );
    }
    let (status, trigger) = json(
        client
            .get(first.url(&format!(
                "/api/v1/triggers/{}",
                trigger["id"].as_str().unwrap()
            )))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(trigger["run_count"], ROUNDS);
    assert_eq!(trigger["process_status"], "RUNNING");
    let jobs = jobs_of(&pool, workflow).await;
    assert_eq!(jobs.len(), ROUNDS);
    assert_eq!(trigger["current_job_id"], jobs[0].id().to_string());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "fifty rounds took {:?}",
        started.elapsed()
    );
    drop(pool);
    first.terminate().await;
    second.terminate().await;
    // Both servers fired some rounds and lost others: the exactly-once above held under a real
    // race.
    let mut lost = 0;
    for (name, server) in [("first", &first), ("second", &second)] {
        let output = format!("{}{}", server.stdout(), server.stderr());
        assert!(
            output.contains("trigger fired"),
            "the {name} server never fired:\n{output}"
        );
        lost += output.matches("fired by another server first").count();
    }
    assert!(lost > 0, "the servers never raced for a fire");
}

/// Two `baton` processes on one PostgreSQL database, each looking for due triggers every 10 ms,
/// under a per-second schedule made through `/schedules`: over several seconds every due second
/// starts exactly one job, however the servers race for it.
#[tokio::test(flavor = "multi_thread")]
async fn two_servers_fire_a_per_second_schedule_once_per_due_second() {
    /// Roughly how many due seconds the schedule runs for.
    const SECONDS: u64 = 5;
    let db = TestDatabase::postgres().await;
    let env = [
        ("DATABASE_URL", db.url()),
        ("JWT_SECRET_KEY", TEST_JWT_SECRET),
        ("BATON_ADMIN_PASSWORD", "per-second-password"),
        ("BATON_TRIGGER_TICK_MS", "10"),
        ("BATON_RATE_LIMITS", "off"),
        ("RUST_LOG", "info,baton_server::engine=debug"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut first = BatonProcess::start(dir.path(), &[], &env);
    first.wait_until_healthy().await;
    let mut second = BatonProcess::start(dir.path(), &[], &env);
    second.wait_until_healthy().await;

    let client = reqwest::Client::new();
    let (status, login) = json(
        client
            .post(first.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": "per-second-password"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let pool = db.connect().await;
    let workflow = insert_workflow(&pool, "Every second").await;

    let (status, schedule) = json(
        client
            .post(first.url("/api/v1/schedules"))
            .bearer_auth(&token)
            .json(
                &json!({"workflow_id": workflow.to_string(), "schedule_name": "Tick",
                          "cron_expression": "* * * * * *"}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{schedule}");
    let id = schedule["schedule_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(SECONDS) + Duration::from_millis(500)).await;
    // Stopped through the other server: a change that races the fires is retried, not lost.
    let (status, stopped) = json(
        client
            .put(second.url(&format!("/api/v1/schedules/{id}/disable")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["enabled"], false);
    // Both servers tick many times more: a disabled schedule fires no more.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let jobs = jobs_of(&pool, workflow).await;
    let schedule_id: TriggerId = id.parse().unwrap();
    assert!(
        jobs.iter()
            .all(|j| j.origin() == &JobOrigin::Trigger(schedule_id)),
        "every job came from the schedule"
    );
    let mut seconds: Vec<i64> = jobs
        .iter()
        .map(|j| j.created_at().unix_timestamp())
        .collect();
    seconds.sort_unstable();
    seconds.dedup();
    assert_eq!(
        jobs.len(),
        seconds.len(),
        "a due second fired more than once: {:?}",
        jobs.iter().map(|j| j.created_at()).collect::<Vec<_>>()
    );
    assert!(
        jobs.len() as u64 >= SECONDS - 2,
        "only {} fires in about {SECONDS} s",
        jobs.len()
    );
    let (status, read) = json(
        client
            .get(first.url(&format!("/api/v1/schedules/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["run_count"], jobs.len(), "one job per counted fire");
    drop(pool);
    first.terminate().await;
    second.terminate().await;
    let mut fired = 0;
    let mut lost = 0;
    for server in [&first, &second] {
        let output = format!("{}{}", server.stdout(), server.stderr());
        fired += output.matches("trigger fired").count();
        lost += output.matches("fired by another server first").count();
    }
    assert_eq!(fired, jobs.len(), "the servers' logs count the same fires");
    eprintln!(
        "{} fires, {lost} rounds lost a race to the other server",
        jobs.len()
    );
    // Both servers judged due seconds at once: the exactly-once above held under a real race.
    assert!(lost > 0, "the servers never raced for a fire");
}
