//! Jobs as users see them, over HTTP: run a workflow now, read and list jobs, cancel them. The
//! robots' side is in `robot_protocol.rs`.

// A test crate: a panic is a failed assertion with its location, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_domain::agent::Agent;
use baton_domain::ids::{AgentId, JobId, WorkflowId};
use baton_domain::ports::{EventFilter, EventRepository, WorkflowRepository};
use baton_domain::workflow::{Workflow, WorkflowGraph, WorkflowName};
use baton_domain::{IdGenerator, UuidV7Generator};
use baton_storage::{ConnectOptions, Db};
use baton_tests::{TestApp, expect_error, json};
use serde_json::{Value, json};

/// Stores a one-node workflow named `name` directly in the server's database.
async fn workflow(app: &TestApp, name: &str) -> WorkflowId {
    let db = Db::connect(app.database().url(), ConnectOptions::default())
        .await
        .unwrap();
    let graph = WorkflowGraph::parse(json!({
        "nodes": [{"id": "start", "type": "StartNode"}], "connections": []
    }))
    .unwrap();
    let workflow = Workflow::new(
        WorkflowId::from_uuid(UuidV7Generator.new_uuid()),
        WorkflowName::parse(name).unwrap(),
        None,
        graph,
        serde_json::Map::new(),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let agents = Agent::from_workflow(&workflow, &[], || {
        AgentId::from_uuid(UuidV7Generator.new_uuid())
    });
    db.insert_workflow(&workflow, &agents).await.unwrap();
    workflow.id
}

async fn post(app: &TestApp, token: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn field_names(body: &Value) -> Vec<&str> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect()
}

async fn running_a_workflow_queues_a_job_anyone_may_read(app: TestApp) {
    let wf = workflow(&app, "invoices").await;
    let operator = app.user_token("ops", &["operator"]).await;
    let viewer = app.user_token("watcher", &["viewer"]).await;

    let (status, job) = json(
        post(
            &app,
            &operator,
            "/api/v1/jobs",
            Some(json!({"workflow_id": wf.to_string(), "priority": 3,
                        "execution_mode": "internet", "input": {"month": "2025-11"}})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let id = job["job_id"].as_str().unwrap().to_owned();
    assert_eq!(job["status"], "pending");
    assert_eq!(job["workflow_id"], wf.to_string());
    assert_eq!(job["workflow_name"], "invoices");
    assert_eq!(job["priority"], 3);
    assert_eq!(job["execution_mode"], "internet");
    assert_eq!(job["input"], json!({"month": "2025-11"}));
    assert_eq!(job["retry_count"], 0);
    assert_eq!(job["max_retries"], 3);
    assert_eq!(job["attempt"], 0, "no robot has claimed it yet");
    assert_eq!(job["node_executions"], json!([]));
    for empty in [
        "output",
        "robot_id",
        "claimed_at",
        "started_at",
        "completed_at",
        "lease_expires_at",
        "error_type",
        "error_message",
        "cancel_requested",
        "duration_ms",
    ] {
        assert_eq!(job[empty], Value::Null, "{empty}");
    }
    assert!(job["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, read) = json(get(&app, &viewer, &format!("/api/v1/jobs/{id}")).await).await;
    assert_eq!(status, 200);
    assert_eq!(read, job);

    let (status, defaults) = json(
        post(
            &app,
            &operator,
            "/api/v1/jobs",
            Some(json!({"workflow_id": wf.to_string()})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(defaults["priority"], 10);
    assert_eq!(defaults["execution_mode"], "lan");
    assert_eq!(defaults["input"], json!({}));

    let (status, list) = json(get(&app, &viewer, "/api/v1/jobs").await).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [defaults["job_id"].as_str().unwrap(), id.as_str()]);
    let (_, one) = json(get(&app, &viewer, "/api/v1/jobs?status=pending&limit=1").await).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    let (_, none) = json(get(&app, &viewer, "/api/v1/jobs?status=running").await).await;
    assert_eq!(none, json!([]));

    let job_id: JobId = id.parse().unwrap();
    let db = Db::connect(app.database().url(), ConnectOptions::default())
        .await
        .unwrap();
    let (events, _) = db
        .list_events(&EventFilter {
            limit: 100,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    let created: Vec<_> = events
        .iter()
        .filter(|e| e.job_id == Some(job_id))
        .map(|e| e.event_type.to_string())
        .collect();
    assert_eq!(created, ["job_created"]);
}

#[tokio::test]
async fn running_a_workflow_queues_a_job_anyone_may_read_on_sqlite() {
    running_a_workflow_queues_a_job_anyone_may_read(TestApp::spawn_sqlite().await).await;
}

#[tokio::test]
async fn running_a_workflow_queues_a_job_anyone_may_read_on_postgres() {
    running_a_workflow_queues_a_job_anyone_may_read(TestApp::spawn_postgres().await).await;
}

#[tokio::test]
async fn bad_run_requests_name_every_broken_field() {
    let app = TestApp::spawn_sqlite().await;
    let operator = app.user_token("ops", &["operator"]).await;
    let bad = post(
        &app,
        &operator,
        "/api/v1/jobs",
        Some(json!({"workflow_id": "not-a-uuid", "priority": 21,
                    "execution_mode": "cloud", "input": [1, 2]})),
    )
    .await;
    let body = expect_error(bad, 400).await;
    assert_eq!(
        field_names(&body),
        ["workflow_id", "priority", "execution_mode", "input"]
    );
    let missing = post(
        &app,
        &operator,
        "/api/v1/jobs",
        Some(json!({"priority": -1})),
    )
    .await;
    let body = expect_error(missing, 400).await;
    assert_eq!(field_names(&body), ["workflow_id", "priority"]);
    let not_object = post(&app, &operator, "/api/v1/jobs", Some(json!([1]))).await;
    expect_error(not_object, 400).await;
    let empty = post(&app, &operator, "/api/v1/jobs", None).await;
    expect_error(empty, 400).await;

    let unknown = post(
        &app,
        &operator,
        "/api/v1/jobs",
        Some(json!({"workflow_id": UuidV7Generator.new_uuid().to_string()})),
    )
    .await;
    let body = expect_error(unknown, 404).await;
    assert!(body["detail"].as_str().unwrap().contains("workflow"));

    let bad_list = get(&app, &operator, "/api/v1/jobs?status=done&limit=501").await;
    let body = expect_error(bad_list, 400).await;
    assert_eq!(field_names(&body), ["status", "limit"]);
    expect_error(get(&app, &operator, "/api/v1/jobs/not-a-job").await, 404).await;
    let unknown = format!("/api/v1/jobs/{}", UuidV7Generator.new_uuid());
    expect_error(get(&app, &operator, &unknown).await, 404).await;
    let wrong_method = app
        .client
        .delete(app.url("/api/v1/jobs"))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    expect_error(wrong_method, 405).await;
}

#[tokio::test]
async fn running_and_cancelling_take_the_operate_permission_and_reading_read() {
    let app = TestApp::spawn_sqlite().await;
    let wf = workflow(&app, "guarded").await;
    let viewer = app.user_token("watcher", &["viewer"]).await;
    let operator = app.user_token("ops", &["operator"]).await;
    let body = json!({"workflow_id": wf.to_string()});
    expect_error(
        post(&app, &viewer, "/api/v1/jobs", Some(body.clone())).await,
        403,
    )
    .await;
    let anonymous = app
        .client
        .post(app.url("/api/v1/jobs"))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(anonymous, 401).await;
    expect_error(
        app.client
            .get(app.url("/api/v1/jobs"))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    let (_, job) = json(post(&app, &operator, "/api/v1/jobs", Some(body)).await).await;
    let cancel = format!("/api/v1/jobs/{}/cancel", job["job_id"].as_str().unwrap());
    expect_error(post(&app, &viewer, &cancel, None).await, 403).await;
}

async fn cancelling_a_pending_job_ends_it_once(app: TestApp) {
    let wf = workflow(&app, "cancel me").await;
    let operator = app.user_token("ops", &["operator"]).await;
    let run = || {
        post(
            &app,
            &operator,
            "/api/v1/jobs",
            Some(json!({"workflow_id": wf.to_string()})),
        )
    };
    let (_, soft) = json(run().await).await;
    let (_, hard) = json(run().await).await;

    let path = |job: &Value| format!("/api/v1/jobs/{}/cancel", job["job_id"].as_str().unwrap());
    // No body means a soft cancel; a pending job ends at once either way.
    let (status, cancelled) = json(post(&app, &operator, &path(&soft), None).await).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_requested"], "soft");
    assert!(cancelled["completed_at"].is_string());
    assert!(cancelled["duration_ms"].is_i64());
    let (status, cancelled) =
        json(post(&app, &operator, &path(&hard), Some(json!({"hard": true}))).await).await;
    assert_eq!(status, 200);
    assert_eq!(cancelled["cancel_requested"], "hard");

    let again = post(&app, &operator, &path(&soft), Some(json!({"hard": true}))).await;
    let body = expect_error(again, 409).await;
    assert!(body["detail"].as_str().unwrap().contains("cancelled"));
    let bad = post(&app, &operator, &path(&hard), Some(json!({"hard": "yes"}))).await;
    let body = expect_error(bad, 400).await;
    assert_eq!(field_names(&body), ["hard"]);
    let unknown = format!("/api/v1/jobs/{}/cancel", UuidV7Generator.new_uuid());
    expect_error(post(&app, &operator, &unknown, None).await, 404).await;
    let (_, list) = json(get(&app, &operator, "/api/v1/jobs?status=cancelled").await).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn cancelling_a_pending_job_ends_it_once_on_sqlite() {
    cancelling_a_pending_job_ends_it_once(TestApp::spawn_sqlite().await).await;
}

#[tokio::test]
async fn cancelling_a_pending_job_ends_it_once_on_postgres() {
    cancelling_a_pending_job_ends_it_once(TestApp::spawn_postgres().await).await;
}

/// The ids of a list answer, in order.
fn ids_of(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|job| job["job_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn the_list_pages_by_cursor_and_filters_by_creation_time(app: TestApp) {
    let wf = workflow(&app, "pages").await;
    let other = workflow(&app, "other").await;
    let operator = app.user_token("ops", &["operator"]).await;
    let mut created = Vec::new();
    for n in 0..5 {
        let workflow_id = if n == 2 { other } else { wf };
        let (status, job) = json(
            post(
                &app,
                &operator,
                "/api/v1/jobs",
                Some(json!({"workflow_id": workflow_id.to_string()})),
            )
            .await,
        )
        .await;
        assert_eq!(status, 201);
        created.push(job);
    }
    let newest_first: Vec<String> = created
        .iter()
        .rev()
        .map(|job| job["job_id"].as_str().unwrap().to_owned())
        .collect();

    // Following `Link` page by page lists every job once, newest first; the last page has no
    // next page.
    let mut path = "/api/v1/jobs?limit=2".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let response = get(&app, &operator, &path).await;
        let headers = response.headers().clone();
        let (status, list) = json(response).await;
        assert_eq!(status, 200);
        assert!(list.is_array(), "the body stays a JSON array: {list}");
        seen.extend(ids_of(&list));
        pages += 1;
        let Some(link) = headers.get("link") else {
            assert!(headers.get("x-next-cursor").is_none());
            break;
        };
        let cursor = headers["x-next-cursor"].to_str().unwrap();
        let link = link.to_str().unwrap();
        assert_eq!(
            link,
            format!("</api/v1/jobs?limit=2&cursor={cursor}>; rel=\"next\"")
        );
        path = link[1..link.find('>').unwrap()].to_owned();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, newest_first);

    // A cursor with the same filters continues the filtered list.
    let filtered = format!("/api/v1/jobs?workflow_id={wf}&limit=3");
    let response = get(&app, &operator, &filtered).await;
    let cursor = response.headers()["x-next-cursor"]
        .to_str()
        .unwrap()
        .to_owned();
    let (_, first) = json(response).await;
    let (_, rest) = json(get(&app, &operator, &format!("{filtered}&cursor={cursor}")).await).await;
    let mut both = ids_of(&first);
    both.extend(ids_of(&rest));
    let expected: Vec<String> = newest_first
        .iter()
        .filter(|id| **id != created[2]["job_id"])
        .cloned()
        .collect();
    assert_eq!(both, expected);

    // Creation-time bounds are strict, and both may be given.
    let at = |n: usize| {
        created[n]["created_at"]
            .as_str()
            .unwrap()
            .replace('+', "%2B")
    };
    let (_, after) = json(
        get(
            &app,
            &operator,
            &format!("/api/v1/jobs?created_after={}", at(2)),
        )
        .await,
    )
    .await;
    assert_eq!(ids_of(&after), newest_first[..2]);
    let (_, between) = json(
        get(
            &app,
            &operator,
            &format!(
                "/api/v1/jobs?created_after={}&created_before={}",
                at(0),
                at(4)
            ),
        )
        .await,
    )
    .await;
    assert_eq!(ids_of(&between), newest_first[1..4]);

    // What the server did not issue is refused by name.
    let body = expect_error(
        get(
            &app,
            &operator,
            "/api/v1/jobs?cursor=abc&created_after=soon&created_before=later",
        )
        .await,
        400,
    )
    .await;
    assert_eq!(
        field_names(&body),
        ["created_after", "created_before", "cursor"]
    );
}

#[tokio::test]
async fn the_list_pages_by_cursor_and_filters_by_creation_time_on_sqlite() {
    the_list_pages_by_cursor_and_filters_by_creation_time(TestApp::spawn_sqlite().await).await;
}

#[tokio::test]
async fn the_list_pages_by_cursor_and_filters_by_creation_time_on_postgres() {
    the_list_pages_by_cursor_and_filters_by_creation_time(TestApp::spawn_postgres().await).await;
}
