//! The websockets (`/ws/live-jobs`, `/ws/robot-status`, `/ws/queue-metrics`) with a real
//! websocket client: `ping` → `pong`, authentication by header or `?token=` and the 4001 close
//! of a refused socket, job updates from every server sharing a database, robot heartbeats and
//! offline robots, the queue metrics, a client that never reads, and shutdown.

// A test crate: a panic is a failed assertion with its location, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use baton_domain::agent::Agent;
use baton_domain::ids::{AgentId, WorkflowId};
use baton_domain::ports::WorkflowRepository;
use baton_domain::workflow::{Workflow, WorkflowGraph, WorkflowName};
use baton_domain::{IdGenerator, UuidV7Generator};
use baton_server::Application;
use baton_storage::testing::TestDatabase;
use baton_storage::{ConnectOptions, Db};
use baton_tests::{TEST_ADMIN_PASSWORD, TestApp, expect_error, json, test_config};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for something that should happen (generous: the suite may run on a
/// loaded machine; nothing here should take more than a second or two, the metrics period aside).
const PATIENCE: Duration = Duration::from_secs(20);

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
    ping_is_answered_with_pong_whichever_way_the_client_authenticates,
    refused_sockets_close_with_4001,
    every_job_status_change_reaches_live_jobs,
    heartbeats_and_offline_robots_reach_robot_status,
    queue_metrics_come_at_once_and_then_every_period,
    a_client_that_never_reads_does_not_hold_up_the_others,
);

// ---- the client side ----

/// Connects to `path` (which may carry `?token=`) with `headers`; panics if the handshake fails.
async fn connect(app: &TestApp, path: &str, headers: &[(&'static str, &str)]) -> Socket {
    connect_port(app.port, path, headers).await
}

async fn connect_port(port: u16, path: &str, headers: &[(&'static str, &str)]) -> Socket {
    let mut request = format!("ws://127.0.0.1:{port}{path}")
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, HeaderValue::from_str(value).unwrap());
    }
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .unwrap_or_else(|e| panic!("websocket handshake on {path} failed: {e}"));
    assert_eq!(response.status().as_u16(), 101);
    socket
}

/// Connects with a bearer token in the `Authorization` header.
async fn connect_as(app: &TestApp, path: &str, token: &str) -> Socket {
    connect(app, path, &[("authorization", &format!("Bearer {token}"))]).await
}

/// The next text frame that is a JSON object satisfying `wanted`, skipping the others; panics
/// if the socket closes or nothing matches within [`PATIENCE`].
async fn next_json(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let frame = timeout_at(deadline, socket.next())
            .await
            .expect("no matching message in time");
        match frame {
            Some(Ok(Message::Text(text))) => {
                if let Ok(value) = serde_json::from_str::<Value>(&text)
                    && value.is_object()
                    && wanted(&value)
                {
                    return value;
                }
            }
            Some(Ok(Message::Close(frame))) => panic!("socket closed while waiting: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("socket failed while waiting: {e}"),
            None => panic!("socket ended while waiting"),
        }
    }
}

/// Sends `ping` and waits for `pong`, skipping updates that arrive meanwhile.
async fn ping_pong(socket: &mut Socket) {
    socket.send(Message::text("ping")).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        match timeout_at(deadline, socket.next())
            .await
            .expect("no pong in time")
        {
            Some(Ok(Message::Text(text))) if text.as_str() == "pong" => return,
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected pong, got {other:?}"),
        }
    }
}

/// The close frame the server sends first, skipping any other frame; panics if none comes.
async fn close_frame(socket: &mut Socket) -> CloseFrame {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match timeout_at(deadline, socket.next())
            .await
            .expect("no close frame in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return frame,
            Some(Ok(Message::Close(None))) => panic!("closed without a code"),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Connects and expects the server to close at once with 4001 and a reason.
async fn assert_refused(app: &TestApp, what: &str, path: &str, headers: &[(&'static str, &str)]) {
    let mut socket = connect(app, path, headers).await;
    let frame = close_frame(&mut socket).await;
    assert_eq!(u16::from(frame.code), 4001, "{what}: {frame:?}");
    assert!(!frame.reason.is_empty(), "{what}: the reason is given");
}

// ---- the server side ----

/// Stores a one-node workflow in the server's database and returns its id.
async fn workflow(database_url: &str) -> WorkflowId {
    let db = Db::connect(database_url, ConnectOptions::default())
        .await
        .unwrap();
    let graph = WorkflowGraph::parse(json!({
        "nodes": [{"id": "start", "type": "StartNode"}], "connections": []
    }))
    .unwrap();
    let workflow = Workflow::new(
        WorkflowId::from_uuid(UuidV7Generator.new_uuid()),
        WorkflowName::parse("live").unwrap(),
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

/// Runs `workflow` now through `app`; returns the job id.
async fn run_job(app: &TestApp, token: &str, workflow: WorkflowId) -> String {
    let (status, job) = json(
        app.client
            .post(app.url("/api/v1/jobs"))
            .bearer_auth(token)
            .json(&json!({"workflow_id": workflow.to_string()}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    job["job_id"].as_str().unwrap().to_owned()
}

/// Creates a robot as the admin; returns its token.
async fn create_robot(app: &TestApp, admin: &str, robot_id: &str) -> String {
    let (status, body) = json(
        app.client
            .post(app.url("/api/v1/robots"))
            .bearer_auth(admin)
            .json(&json!({"robot_id": robot_id}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// A robot-protocol call; returns the status and body (`null` when empty).
async fn robot_call(
    app: &TestApp,
    token: &str,
    robot_id: &str,
    call: &str,
    body: Value,
) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(&format!("/api/v1/robots/{robot_id}/{call}")))
        .header("X-Api-Token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn is_job(job_id: &str, status: &'static str) -> impl Fn(&Value) -> bool {
    let job_id = job_id.to_owned();
    move |m| m["job_id"] == job_id.as_str() && m["status"] == status
}

// ---- the tests ----

async fn ping_is_answered_with_pong_whichever_way_the_client_authenticates(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let viewer = app.user_token("watcher", &["viewer"]).await;
    let key = app.api_key("dashboard", &["viewer"]).await;

    let mut by_header = connect_as(&app, "/ws/live-jobs", &viewer).await;
    ping_pong(&mut by_header).await;
    let mut by_query = connect(&app, &format!("/ws/robot-status?token={viewer}"), &[]).await;
    ping_pong(&mut by_query).await;
    let mut key_by_query = connect(&app, &format!("/ws/queue-metrics?token={key}"), &[]).await;
    ping_pong(&mut key_by_query).await;
    let mut key_by_header = connect(&app, "/ws/live-jobs", &[("x-api-key", &key)]).await;
    ping_pong(&mut key_by_header).await;
    // A protocol-level ping is answered too, as by any websocket server.
    key_by_header
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        match timeout_at(deadline, key_by_header.next()).await.unwrap() {
            Some(Ok(Message::Pong(payload))) => {
                assert_eq!(&payload[..], b"are you there");
                break;
            }
            Some(Ok(Message::Text(_))) => {}
            other => panic!("expected a pong frame, got {other:?}"),
        }
    }
    // Other text is ignored: the socket stays open and still answers.
    by_header.send(Message::text("hello?")).await.unwrap();
    ping_pong(&mut by_header).await;
    by_header.close(None).await.unwrap();
}

async fn refused_sockets_close_with_4001(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin_token().await;
    let robot_token = create_robot(&app, &admin, "robot-ws").await;

    assert_refused(&app, "no credentials", "/ws/live-jobs", &[]).await;
    let forged = "/ws/live-jobs?token=aaa.bbb.ccc";
    assert_refused(&app, "a forged JWT in the query", forged, &[]).await;
    let unknown = "/ws/robot-status?token=bk_nope";
    assert_refused(&app, "an unknown API key in the query", unknown, &[]).await;
    let header = [("x-api-key", "bk_nope")];
    assert_refused(&app, "an unknown API key", "/ws/queue-metrics", &header).await;
    let robot = [("x-api-token", robot_token.as_str())];
    assert_refused(&app, "a robot's token", "/ws/live-jobs", &robot).await;
    // Headers win over the query, as they do on every route.
    let good_query = format!("/ws/live-jobs?token={admin}");
    let wrong_header = [("authorization", "Bearer bk_nope")];
    assert_refused(&app, "a wrong header", &good_query, &wrong_header).await;

    // A plain request, not a websocket upgrade, is an ordinary JSON error.
    let response = app
        .client
        .get(app.url("/ws/live-jobs"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_error(response, 400).await;
}

async fn every_job_status_change_reaches_live_jobs(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin_token().await;
    let viewer = app.user_token("watcher", &["viewer"]).await;
    let wf = workflow(app.database().url()).await;
    let robot = create_robot(&app, &admin, "robot-1").await;
    let (status, _) = robot_call(&app, &robot, "robot-1", "heartbeat", json!({})).await;
    assert_eq!(status, 200);

    let mut socket = connect_as(&app, "/ws/live-jobs", &viewer).await;
    // The socket is served once it answers; from then on every change reaches it.
    ping_pong(&mut socket).await;
    let job = run_job(&app, &admin, wf).await;
    let pending = next_json(&mut socket, is_job(&job, "pending")).await;
    assert_eq!(pending["workflow_id"], wf.to_string());
    assert_eq!(pending["event_type"], "job_created");
    assert!(pending["timestamp"].as_str().unwrap().ends_with('Z'));

    let (status, claimed) = robot_call(
        &app,
        &robot,
        "robot-1",
        "jobs/claim",
        json!({"wait_seconds": 5}),
    )
    .await;
    assert_eq!(
        (status, claimed["job_id"].as_str()),
        (200, Some(job.as_str()))
    );
    let claimed = next_json(&mut socket, is_job(&job, "claimed")).await;
    assert_eq!(claimed["robot_id"], "robot-1");
    let (status, _) = robot_call(
        &app,
        &robot,
        "robot-1",
        &format!("jobs/{job}/start"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    next_json(&mut socket, is_job(&job, "running")).await;
    let (status, _) = robot_call(
        &app,
        &robot,
        "robot-1",
        &format!("jobs/{job}/complete"),
        json!({"output": {"ok": true}}),
    )
    .await;
    assert_eq!(status, 200);
    let completed = next_json(&mut socket, is_job(&job, "completed")).await;
    assert!(completed["seq"].as_i64().unwrap() > pending["seq"].as_i64().unwrap());
}

/// On PostgreSQL an event's seq is taken when it is inserted, not when it commits: an event
/// whose transaction commits after events with higher seqs were read is still delivered.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_committed_after_later_ones_is_still_delivered() {
    let app = TestApp::spawn_postgres().await;
    let admin = app.admin_token().await;
    let wf = workflow(app.database().url()).await;
    let mut socket = connect_as(&app, "/ws/live-jobs", &admin).await;
    ping_pong(&mut socket).await;

    // Another writer takes the next seq and keeps its transaction open.
    let mut writer = AsyncPgConnection::establish(app.database().url())
        .await
        .unwrap();
    let late_job = UuidV7Generator.new_uuid().to_string();
    writer
        .batch_execute(&format!(
            "BEGIN; INSERT INTO events (id, event_type, timestamp, title, job_id, job_status, data) \
             VALUES (gen_random_uuid(), 'job_completed', now(), 'Job completed successfully', \
             '{late_job}', 'completed', '{{}}')"
        ))
        .await
        .unwrap();
    // A job made meanwhile commits first, with a higher seq, and is delivered first.
    let job = run_job(&app, &admin, wf).await;
    let pending = next_json(&mut socket, is_job(&job, "pending")).await;
    writer.batch_execute("COMMIT").await.unwrap();
    let late = next_json(&mut socket, is_job(&late_job, "completed")).await;
    assert!(
        late["seq"].as_i64().unwrap() < pending["seq"].as_i64().unwrap(),
        "{late} committed late"
    );
}

/// Several servers on one PostgreSQL: a client sees the changes whichever server made them.
#[tokio::test(flavor = "multi_thread")]
async fn clients_on_one_server_see_the_jobs_of_another() {
    let a = TestApp::spawn_postgres().await;
    let b = a.another_server(|_| {}).await;
    let admin = a.admin_token().await;
    let wf = workflow(a.database().url()).await;

    let mut on_a = connect_as(&a, "/ws/live-jobs", &admin).await;
    let mut on_b = connect(&b, &format!("/ws/live-jobs?token={admin}"), &[]).await;
    ping_pong(&mut on_a).await;
    ping_pong(&mut on_b).await;

    let made_on_b = run_job(&b, &admin, wf).await;
    let made_on_a = run_job(&a, &admin, wf).await;
    for socket in [&mut on_a, &mut on_b] {
        next_json(socket, is_job(&made_on_b, "pending")).await;
        next_json(socket, is_job(&made_on_a, "pending")).await;
    }
    let (status, _) = json(
        b.client
            .post(b.url(&format!("/api/v1/jobs/{made_on_a}/cancel")))
            .bearer_auth(&admin)
            .json(&json!({"hard": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    next_json(&mut on_a, is_job(&made_on_a, "cancelled")).await;
    next_json(&mut on_b, is_job(&made_on_a, "cancelled")).await;
}

async fn heartbeats_and_offline_robots_reach_robot_status(db: TestDatabase) {
    let app = TestApp::spawn_with(db, |c| {
        c.engine_tick_ms = 100;
        c.robot_offline_seconds = 2;
    })
    .await;
    let admin = app.admin_token().await;
    let mut socket = connect_as(&app, "/ws/robot-status", &admin).await;
    ping_pong(&mut socket).await;

    let token = create_robot(&app, &admin, "robot-007").await;
    let (status, _) = robot_call(
        &app,
        &token,
        "robot-007",
        "heartbeat",
        json!({"cpu_percent": 45.2, "memory_mb": 1024.5, "hostname": "desk-7"}),
    )
    .await;
    assert_eq!(status, 200);
    let beat = next_json(&mut socket, |m| {
        m["robot_id"] == "robot-007" && m["status"] == "idle"
    })
    .await;
    assert_eq!(beat["cpu_percent"], 45.2);
    assert_eq!(beat["memory_mb"], 1024.5);
    assert_eq!(beat["hostname"], "desk-7");
    assert_eq!(beat["timestamp"], beat["last_heartbeat"]);
    assert!(beat["timestamp"].as_str().unwrap().ends_with('Z'));

    // No more heartbeats: the engine marks the robot offline after two seconds.
    let offline = next_json(&mut socket, |m| {
        m["robot_id"] == "robot-007" && m["status"] == "offline"
    })
    .await;
    assert_eq!(offline["last_heartbeat"], beat["last_heartbeat"]);

    // Its next heartbeat brings it back.
    let (status, _) = robot_call(&app, &token, "robot-007", "heartbeat", json!({})).await;
    assert_eq!(status, 200);
    next_json(&mut socket, |m| {
        m["robot_id"] == "robot-007" && m["status"] == "idle"
    })
    .await;
}

async fn queue_metrics_come_at_once_and_then_every_period(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let operator = app.user_token("ops", &["operator"]).await;
    let wf = workflow(app.database().url()).await;

    let mut socket = connect_as(&app, "/ws/queue-metrics", &operator).await;
    let first = next_json(&mut socket, |_| true).await;
    assert_eq!(first["depth"], 0, "{first}");
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        first["jobs"],
        json!({"pending": 0, "claimed": 0, "running": 0})
    );
    assert_eq!(first["queues"], json!([]));

    run_job(&app, &operator, wf).await;
    run_job(&app, &operator, wf).await;
    // The next periodic message (five seconds at most) counts the two pending jobs.
    let next = next_json(&mut socket, |m| m["depth"] == 2).await;
    assert_eq!(next["jobs"]["pending"], 2);
}

async fn a_client_that_never_reads_does_not_hold_up_the_others(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin_token().await;
    let wf = workflow(app.database().url()).await;

    let mut stalled = connect_as(&app, "/ws/live-jobs", &admin).await;
    ping_pong(&mut stalled).await;
    // From here on, `stalled` is never read.
    let mut reader = connect_as(&app, "/ws/live-jobs", &admin).await;
    ping_pong(&mut reader).await;

    let mut jobs = Vec::new();
    for _ in 0..60 {
        jobs.push(run_job(&app, &admin, wf).await);
    }
    for job in &jobs {
        next_json(&mut reader, is_job(job, "pending")).await;
    }
    // The stalled client lost nothing either: its updates waited for it.
    for job in &jobs {
        next_json(&mut stalled, is_job(job, "pending")).await;
    }
}

/// A stopping server closes its websockets with 1001 ("going away") and stops at once, instead
/// of waiting for them through its whole graceful-shutdown timeout (30 s).
#[tokio::test(flavor = "multi_thread")]
async fn a_stopping_server_closes_its_sockets_and_stops_at_once() {
    let db = TestDatabase::sqlite().await;
    let app = Application::build(test_config(db.url())).await.unwrap();
    let port = app.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let (status, login) = json(
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": TEST_ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap();
    let mut socket = connect_port(port, &format!("/ws/live-jobs?token={token}"), &[]).await;
    ping_pong(&mut socket).await;

    stop.send(()).unwrap();
    let frame = close_frame(&mut socket).await;
    assert_eq!(frame.code, CloseCode::Away);
    assert_eq!(
        frame.reason,
        Utf8Bytes::from_static("the server is shutting down")
    );
    let finished = tokio::time::timeout(Duration::from_secs(20), server).await;
    assert!(
        matches!(finished, Ok(Ok(Ok(())))),
        "the server did not stop well within its 30 s shutdown timeout: {finished:?}"
    );
}
