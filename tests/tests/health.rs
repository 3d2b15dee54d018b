//! The health endpoints, at the root and under `/api/v1`, on both databases.

// A test crate: a panic is a failed assertion with its location, and helpers outside `#[test]`
// functions count too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_tests::{TestApp, json};
use serde_json::json;

async fn every_health_endpoint_answers_as_documented(app: &TestApp) {
    for prefix in ["", "/api/v1"] {
        let (status, body) = json(app.get(&format!("{prefix}/health")).await).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"status": "healthy", "service": "baton"}));

        let (status, body) = json(app.get(&format!("{prefix}/health/detailed")).await).await;
        assert_eq!(status, 200);
        assert_eq!(body["status"], "healthy", "{body}");
        assert_eq!(body["service"], "baton");
        let database = &body["dependencies"]["database"];
        assert_eq!(database["healthy"], true, "{body}");
        assert_eq!(database["error"], serde_json::Value::Null);
        let pool_size = database["pool_size"].as_u64().expect("pool_size");
        let pool_free = database["pool_free"].as_u64().expect("pool_free");
        assert!(pool_size >= 1, "{body}");
        assert!(pool_free <= pool_size, "{body}");
        let mut keys: Vec<_> = database.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["error", "healthy", "pool_free", "pool_size"]);

        let (status, body) = json(app.get(&format!("{prefix}/health/ready")).await).await;
        assert_eq!((status, body), (200, json!({"ready": true})));

        let (status, body) = json(app.get(&format!("{prefix}/health/live")).await).await;
        assert_eq!((status, body), (200, json!({"alive": true})));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_endpoints_on_sqlite() {
    let app = TestApp::spawn_sqlite().await;
    every_health_endpoint_answers_as_documented(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_endpoints_on_postgres() {
    let app = TestApp::spawn_postgres().await;
    every_health_endpoint_answers_as_documented(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_ignores_query_strings() {
    let app = TestApp::spawn_sqlite().await;
    let (status, _) = json(app.get("/health?probe=lb").await).await;
    assert_eq!(status, 200);
}
