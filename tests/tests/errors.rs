//! Requests no route serves are answered in the API's one JSON error shape.

// A test crate: a panic is a failed assertion with its location, and helpers outside `#[test]`
// functions count too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_tests::{TestApp, expect_error};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_are_json_404s() {
    let app = TestApp::spawn_sqlite().await;
    for path in ["/x", "/api/v1/nothing-here", "/api/v1", "/health/deep/er"] {
        let body = expect_error(app.get(path).await, 404).await;
        assert_eq!(
            body,
            json!({"error": "Not Found", "detail": format!("no route for GET {path}")})
        );
    }
    let response = app
        .client
        .post(app.url("/api/v2/things"))
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap();
    let body = expect_error(response, 404).await;
    assert_eq!(body["detail"], "no route for POST /api/v2/things");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_methods_on_known_paths_are_json_405s() {
    let app = TestApp::spawn_sqlite().await;
    for (method, path) in [
        (reqwest::Method::POST, "/health"),
        (reqwest::Method::DELETE, "/api/v1/health/live"),
        (reqwest::Method::PUT, "/health/ready"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let body = expect_error(response, 405).await;
        assert_eq!(body["error"], "Method Not Allowed");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{method} is not allowed on {path}")),
            "{detail}"
        );
    }
}
