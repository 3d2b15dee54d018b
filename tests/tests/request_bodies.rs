//! What a request body may cost: each route reads no more than it can accept (413 beyond), the
//! server holds no more body bytes at once than its budget (503 with `Retry-After` beyond), and
//! the heartbeat refuses malformed bodies as every other route does.

// A test crate: a panic is a failed assertion with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_storage::testing::TestDatabase;
use baton_tests::{TestApp, expect_error};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A JSON object of exactly `len` bytes that no route accepts as valid: `{"pad": "xxx…"}`.
fn padded_object(len: usize) -> String {
    let frame = r#"{"pad": ""}"#.len();
    format!(r#"{{"pad": "{}"}}"#, "x".repeat(len - frame))
}

/// The request head of a POST to `path` declaring a body of `length` bytes; the server closes
/// the connection after its answer.
fn post_head(path: &str, token: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: baton\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
}

/// Reads a response the server ends by closing the connection: its status and its text.
async fn read_closing_response(stream: &mut (impl AsyncReadExt + Unpin)) -> (u16, String) {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    (status, text)
}

/// The JSON body of a response read with [`read_closing_response`].
fn body_of(text: &str) -> Value {
    let (_, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

async fn robot(app: &TestApp, token: &str, id: &str) {
    let (status, body) = app
        .call_as(
            token,
            reqwest::Method::POST,
            "/api/v1/robots",
            Some(&json!({"robot_id": id})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn small_routes_refuse_what_a_document_route_still_reads() {
    let app = TestApp::spawn_sqlite().await;
    let token = app.admin_token().await;
    robot(&app, &token, "r1").await;
    let over_small = padded_object(256 * 1024 + 1);
    for path in [
        "/api/v1/robots/r1/heartbeat",
        "/api/queue",
        "/api/v1/robots/r1/jobs/claim",
        "/api/v1/auth/login",
    ] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(over_small.clone())
            .send()
            .await
            .unwrap();
        let body = expect_error(response, 413).await;
        assert!(
            body["detail"].as_str().unwrap().contains("256 KB"),
            "{path}: {body}"
        );
    }
    // The same body is read by the routes that carry documents, and judged on its content.
    for path in ["/api/v1/workflows", "/api/v1/jobs"] {
        let (status, body) = app
            .call_raw_as(&token, reqwest::Method::POST, path, &over_small)
            .await;
        assert_eq!(status, 400, "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declared_length_over_the_limit_is_refused_before_the_body_is_sent() {
    let app = TestApp::spawn_sqlite().await;
    let token = app.admin_token().await;
    robot(&app, &token, "r1").await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    // A gigabyte announced and never sent: the answer comes without reading any of it.
    let head = post_head("/api/v1/robots/r1/heartbeat", &token, 1 << 30);
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, text) = read_closing_response(&mut stream).await;
    assert_eq!(status, 413, "{text}");
    assert_eq!(body_of(&text)["error"], "Payload Too Large");
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_beyond_the_servers_budget_are_503s_and_the_budget_comes_back() {
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| c.body_buffer_mib = 1).await;
    let token = app.admin_token().await;
    // Each body is 700 KiB, under the route's 10 MB; two of them do not fit in 1 MiB.
    let length = 700 * 1024;
    let clients = 6;
    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
    let mut writers = Vec::new();
    for i in 0..clients {
        let stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let head = post_head("/api/v1/workflows", &token, length);
        writer.write_all(head.as_bytes()).await.unwrap();
        writers.push(Some(writer));
        let answers = answers.clone();
        tokio::spawn(async move {
            let response = read_closing_response(&mut reader).await;
            let _ = answers.send((i, response));
        });
    }
    // Every request but the one holding the budget is answered without sending its body.
    let mut refused = Vec::new();
    for _ in 1..clients {
        let (i, (status, text)) = answered.recv().await.unwrap();
        assert_eq!(status, 503, "{text}");
        assert!(
            text.to_ascii_lowercase().contains("retry-after: 1\r\n"),
            "{text}"
        );
        let body = body_of(&text);
        assert_eq!(body["error"], "Service Unavailable", "{body}");
        assert_eq!(body["retry_after"], 1, "{body}");
        refused.push(i);
    }
    let holder = (0..clients).find(|i| !refused.contains(i)).unwrap();
    // The server stays healthy meanwhile.
    assert_eq!(app.get("/health").await.status(), 200);
    // The holder's body is read once sent, and judged on its content.
    let mut writer = writers[holder].take().unwrap();
    writer
        .write_all(padded_object(length).as_bytes())
        .await
        .unwrap();
    let (i, (status, text)) = answered.recv().await.unwrap();
    assert_eq!((i, status), (holder, 400), "{text}");
    // Answered, it gave its share back: a body of the same size is read again.
    let (status, body) = app
        .call_raw_as(
            &token,
            reqwest::Method::POST,
            "/api/v1/workflows",
            &padded_object(length),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_larger_than_the_whole_budget_is_a_413() {
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| c.body_buffer_mib = 1).await;
    let token = app.admin_token().await;
    let (status, body) = app
        .call_raw_as(
            &token,
            reqwest::Method::POST,
            "/api/v1/workflows",
            &padded_object(2 * 1024 * 1024),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("reads at once"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_heartbeat_refuses_malformed_bodies_like_every_other_route() {
    let app = TestApp::spawn_sqlite().await;
    let token = app.admin_token().await;
    robot(&app, &token, "r1").await;
    let path = "/api/v1/robots/r1/heartbeat";
    let deep = format!(r#"{{"x": {}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    let mut malformed: Vec<(&str, Vec<u8>)> = vec![
        ("an array", b"[]".to_vec()),
        ("a number", b"5".to_vec()),
        ("null", b"null".to_vec()),
        ("empty", Vec::new()),
        ("10,000-deep nesting", deep.into_bytes()),
        ("not JSON", b"{cpu_percent: 1}".to_vec()),
    ];
    let mut invalid_utf8 = br#"{"hostname": "h"#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
    invalid_utf8.extend_from_slice(br#""}"#);
    malformed.push(("invalid UTF-8", invalid_utf8.clone()));
    let mut ignored_invalid_utf8 = br#"{"unknown": ""#.to_vec();
    ignored_invalid_utf8.extend_from_slice(&[0xff]);
    ignored_invalid_utf8.extend_from_slice(br#""}"#);
    malformed.push(("invalid UTF-8 in an unknown field", ignored_invalid_utf8));
    for (what, body) in malformed {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{what}");
        expect_error(response, 400).await;
    }
    // Wrong field types are named, all at once.
    let (status, body) = app
        .call_as(
            &token,
            reqwest::Method::POST,
            path,
            Some(&json!({"cpu_percent": "high", "capabilities": [1], "hostname": 5})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let fields: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["cpu_percent", "hostname", "capabilities[0]"]);
    // Valid heartbeats are served as before: every field optional, unknown fields ignored.
    for beat in [
        json!({}),
        json!({"cpu_percent": 12.5, "memory_mb": 2048, "memory_percent": 33.3,
               "hostname": "host-1", "capabilities": ["StartNode", "Log"], "extra": [1]}),
    ] {
        let (status, body) = app
            .call_as(&token, reqwest::Method::POST, path, Some(&beat))
            .await;
        assert_eq!(status, 200, "{beat}: {body}");
        assert_eq!(body["robot_id"], "r1");
    }
}
