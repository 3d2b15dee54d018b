//! How the server treats connections and requests that are not well-formed API calls: clients
//! that stall or idle are cut off, garbage is refused without flooding the log, extractor
//! failures answer in the API's JSON shape, and `HEAD` is served wherever `GET` is.

// A test crate: a panic is a failed assertion with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use baton_storage::testing::TestDatabase;
use baton_tests::{BatonProcess, TestApp, expect_error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Waits for the server to close `stream`, returning what it sent before. The guard only keeps
/// a broken server from hanging the test: with the configured one-second timeouts the close
/// comes long before it.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("the server did not close the stalled connection")
        .unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

async fn app_with_short_timeouts() -> TestApp {
    TestApp::spawn_with(TestDatabase::sqlite().await, |c| {
        c.header_timeout_seconds = 1;
        c.body_timeout_seconds = 1;
        c.keep_alive_seconds = 1;
        c.disconnect_timeout_seconds = 1;
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stalls_halfway_through_its_body_is_answered_408_and_cut_off() {
    let app = app_with_short_timeouts().await;
    let token = app.admin_token().await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let head = format!(
        "POST /api/v1/workflows HTTP/1.1\r\nHost: baton\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"workflow_name\": "
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "Request Timeout");
    // The server is unharmed.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stalls_in_its_headers_is_cut_off() {
    let app = app_with_short_timeouts().await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: baton\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    if !answer.is_empty() {
        assert_json_error(&answer, "Request Timeout", "a stalled head");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = app_with_short_timeouts().await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: baton\r\n\r\n")
        .await
        .unwrap();
    // The answer comes on a connection kept alive, which is then closed for idling.
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn head_is_answered_like_get_without_a_body_on_every_get_route() {
    let app = TestApp::spawn_sqlite().await;
    let token = app.admin_token().await;
    for path in [
        "/health",
        "/health/live",
        "/health/ready",
        "/api/v1/health",
        "/api/v1/openapi.json",
        "/api/v1/workflows",
        "/api/v1/jobs",
        "/api/v1/queues",
        "/api/v1/triggers",
        "/docs",
    ] {
        let get = app
            .client
            .get(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let get_status = get.status();
        let get_type = get.headers().get("content-type").cloned();
        let get_length = get.bytes().await.unwrap().len();
        let head = app
            .client
            .head(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), get_status, "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type"),
            get_type.as_ref(),
            "{path}"
        );
        let length: Option<usize> = head
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        if let Some(length) = length {
            assert_eq!(length, get_length, "HEAD {path}: the length GET's body has");
        }
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} sent a body"
        );
    }
    // A path with no GET answers HEAD as it answers GET.
    let response = app.client.head(app.url("/api/queue")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let response = app.client.head(app.url("/nothing")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_that_reach_the_api_are_json_400s() {
    let app = TestApp::spawn_sqlite().await;
    let token = app.admin_token().await;
    let send = |method: reqwest::Method, path: &str, content_type: &str, body: &'static [u8]| {
        app.client
            .request(method, app.url(path))
            .bearer_auth(&token)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    for (method, path, content_type, body) in [
        // Malformed JSON, under either content type.
        (
            reqwest::Method::POST,
            "/api/v1/workflows",
            "application/json",
            &b"{\"a\": "[..],
        ),
        (
            reqwest::Method::POST,
            "/api/v1/users",
            "application/json",
            b"{\"username\": }",
        ),
        (
            reqwest::Method::POST,
            "/api/v1/auth/login",
            "text/plain",
            b"not json",
        ),
        // An upload that is not multipart.
        (
            reqwest::Method::POST,
            "/api/v1/workflows/upload",
            "application/json",
            b"{}",
        ),
        // A path segment and query strings that do not parse.
        (
            reqwest::Method::GET,
            "/api/v1/jobs/not-a-uuid",
            "application/json",
            b"",
        ),
        (
            reqwest::Method::GET,
            "/api/v1/jobs?limit=lots",
            "application/json",
            b"",
        ),
        (
            reqwest::Method::GET,
            "/api/v1/jobs?limit=%ZZ",
            "application/json",
            b"",
        ),
    ] {
        let response = send(method.clone(), path, content_type, body)
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(
            status == 400 || status == 404,
            "{method} {path} answered {status}"
        );
        expect_error(response, status).await;
    }
}

/// Sends `request` on a connection of its own and returns the answer, which ends with the
/// connection.
/// Asserts that `answer` (one HTTP response) is a JSON error whose `error` is `error`.
fn assert_json_error(answer: &str, error: &str, what: &str) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{what}: {head}"
    );
    let body: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{what}: the body is not JSON ({e}): {body:?}"));
    assert_eq!(body["error"], error, "{what}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}"
    );
}

async fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    until_closed(&mut stream).await
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_the_http_parser_refuses_is_a_400_and_no_flood_of_errors_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = BatonProcess::start(
        dir.path(),
        &["--header-timeout-seconds", "1", "--keep-alive-seconds", "1"],
        &[],
    );
    server.wait_until_healthy().await;
    let garbage: [&[u8]; 5] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
        b"POST /api/queue HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
    ];
    for _ in 0..4 {
        for request in garbage {
            let answer = raw_exchange(server.port, request).await;
            let what = String::from_utf8_lossy(request);
            assert!(
                answer.starts_with("HTTP/1.1 400"),
                "{what:?} answered {answer:?}"
            );
            assert_json_error(&answer, "Bad Request", &what);
        }
    }
    // Too many headers: 431, in the same shape. (Few and small, so the server reads them all
    // before it closes: unread bytes would reset the connection and lose the answer.)
    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let huge = format!("GET /health HTTP/1.1\r\nHost: baton\r\n{many}\r\n");
    let answer = raw_exchange(server.port, huge.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_json_error(&answer, "Request Header Fields Too Large", "huge headers");
    // A good request answered before garbage on the same connection keeps its answer.
    let answer = raw_exchange(
        server.port,
        b"GET /health HTTP/1.1\r\nHost: baton\r\n\r\nGARBAGE\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let second = answer.find("HTTP/1.1 400").expect("a 400 after the 200");
    assert_json_error(&answer[second..], "Bad Request", "pipelined garbage");
    // The server still serves, and its log holds no line per refused request.
    let health = reqwest::get(server.url("/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let status = server.terminate().await;
    assert_eq!(status.code(), Some(0));
    let log = server.stderr();
    let errors: Vec<_> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "ERROR lines in the log:\n{}",
        errors.join("\n")
    );
}
