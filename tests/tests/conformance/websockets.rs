//! CasareRPA's three websockets: each message format, and the keep-alive (`ping` → `pong`).

use std::time::Duration;

use baton_storage::testing::TestDatabase;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::check::Case;
use crate::env::{Env, text};
use crate::seeds::{Seed, substitute};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long to wait for a message that should come (the queue metrics come every 5 s).
const PATIENCE: Duration = Duration::from_secs(20);

fn casare(section: &str, label: &str) -> Value {
    Seed::Casare.example(section, label)
}

/// Connects to `path` with the admin's token in the query, as a browser client would.
async fn connect(env: &Env, path: &str) -> Socket {
    let url = format!("ws://127.0.0.1:{}{path}?token={}", env.app.port, env.admin);
    let (socket, response) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("websocket handshake on {path} failed: {e}"));
    assert_eq!(response.status().as_u16(), 101);
    socket
}

/// Sends `ping` and waits for `pong`, skipping the updates that arrive meanwhile.
async fn keep_alive(socket: &mut Socket) {
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

/// The next JSON object message for which `wanted` holds.
async fn next_json(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match timeout_at(deadline, socket.next())
            .await
            .expect("no matching message in time")
        {
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
            other => panic!("socket failed while waiting: {other:?}"),
        }
    }
}

pub async fn websockets(db: TestDatabase) {
    let env = Env::start(db).await;

    // WS /ws/live-jobs: a submitted workflow's new job arrives as `pending`.
    let mut live = connect(&env, "/ws/live-jobs").await;
    keep_alive(&mut live).await;
    let submitted = env
        .submit(&casare("### POST /workflows", "**Request Body**:"))
        .await;
    let job_id = text(&submitted, "/job_id");
    let message = next_json(&mut live, |m| m["job_id"] == job_id.as_str()).await;
    let mut example = casare(
        "### WS /ws/live-jobs",
        "**Message Format** (Server to Client):",
    );
    substitute(&mut example, "job-123", &job_id);
    Case::new("WS /ws/live-jobs message", 200, example)
        .pin("/job_id")
        .pin_to("/status", json!("pending"))
        .check(200, &message);

    // WS /ws/robot-status: a heartbeat as the document's robot sends it.
    let mut robots = connect(&env, "/ws/robot-status").await;
    keep_alive(&mut robots).await;
    let robot = env.robot("robot-001", "desktop-abc123").await;
    env.robot_call(
        &robot,
        "heartbeat",
        json!({"cpu_percent": 45.2, "memory_mb": 1024.5}),
    )
    .await;
    // A robot is offline until its first heartbeat, and the feed may show that first: the
    // heartbeat's message is the one that makes it idle.
    let message = next_json(&mut robots, |m| {
        m["robot_id"] == "robot-001" && m["status"] == "idle"
    })
    .await;
    Case::new(
        "WS /ws/robot-status message",
        200,
        casare("### WS /ws/robot-status", "**Message Format**:"),
    )
    .pins(&["/robot_id", "/cpu_percent", "/memory_mb"])
    .check(200, &message);

    // WS /ws/queue-metrics: the first message comes at once; the job above is pending.
    let mut queues = connect(&env, "/ws/queue-metrics").await;
    let message = next_json(&mut queues, |_| true).await;
    Case::new(
        "WS /ws/queue-metrics message",
        200,
        casare("### WS /ws/queue-metrics", "**Message Format**:"),
    )
    .pin_to("/depth", json!(1))
    .check(200, &message);
    keep_alive(&mut queues).await;
}
