//! CasareRPA's four health endpoints, under `/api/v1` (the document's base URL) and at the root (as
//! Baton also serves them); and, on PostgreSQL, the degraded and not-ready answers of a server
//! whose database has gone away.

use std::time::{Duration, Instant};

use baton_storage::testing::TestDatabase;
use baton_tests::TestApp;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use reqwest::Method;
use serde_json::Value;

use crate::check::Case;
use crate::env::send;
use crate::seeds::Seed;

fn casare(section: &str, label: &str) -> Value {
    Seed::Casare.example(section, label)
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    send(app.client.request(Method::GET, app.url(path))).await
}

pub async fn health(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    for prefix in ["/api/v1", ""] {
        let path = format!("{prefix}/health");
        let (status, body) = get(&app, &path).await;
        Case::new(
            format!("GET {path}"),
            200,
            casare("### GET /health", "**Response** (200 OK):"),
        )
        .pin("/status")
        .check(status, &body);

        let path = format!("{prefix}/health/detailed");
        let (status, body) = get(&app, &path).await;
        Case::new(
            format!("GET {path}"),
            200,
            casare("### GET /health/detailed", "**Response** (200 OK):"),
        )
        .pins(&["/status", "/dependencies/database/healthy"])
        .pin("/dependencies/database/error")
        .check(status, &body);

        let path = format!("{prefix}/health/ready");
        let (status, body) = get(&app, &path).await;
        Case::new(
            format!("GET {path}"),
            200,
            casare("### GET /health/ready", "**Response** (200 OK):"),
        )
        .pin("/ready")
        .check(status, &body);

        let path = format!("{prefix}/health/live");
        let (status, body) = get(&app, &path).await;
        Case::new(
            format!("GET {path}"),
            200,
            casare("### GET /health/live", "**Response** (200 OK):"),
        )
        .pin("/alive")
        .check(status, &body);
    }
}

/// The database refuses new connections and loses the open ones: `/health/detailed` answers the
/// "Degraded Response" (200 with `status: degraded`), `/health/ready` the "Not Ready" body with
/// a status other than 200 ("Returns 200 only if all critical dependencies are healthy"), and
/// `/health/live` is still alive.
pub async fn health_without_a_database() {
    let app = TestApp::spawn(TestDatabase::postgres().await).await;
    let url = app.database().url().to_owned();
    let name = url
        .rsplit('/')
        .next()
        .and_then(|last| last.split('?').next())
        .unwrap()
        .to_owned();
    let server = std::env::var("BATON_TEST_DATABASE_URL")
        .unwrap_or_else(|_| baton_storage::testing::DEFAULT_TEST_SERVER.to_owned());
    let mut admin = AsyncPgConnection::establish(&server).await.unwrap();
    // Two statements, two transactions: the refusal of new connections must be committed
    // before the open ones are ended, or the pool reconnects in between.
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .unwrap();

    // The backends end asynchronously after the signal, and a connection the pool holds may
    // serve a probe or two meanwhile: wait until the server notices.
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&app, "/health/detailed").await.1["status"] == "healthy" {
        assert!(
            Instant::now() < deadline,
            "the server still calls its database healthy after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for prefix in ["/api/v1", ""] {
        let path = format!("{prefix}/health/detailed");
        let (status, body) = get(&app, &path).await;
        Case::new(
            format!("GET {path} (database down)"),
            200,
            casare("### GET /health/detailed", "**Degraded Response**"),
        )
        .pins(&["/status", "/dependencies/database/healthy"])
        .check(status, &body);

        let path = format!("{prefix}/health/ready");
        let (status, body) = get(&app, &path).await;
        assert_ne!(status, 200, "not ready is not 200: {body}");
        Case::new(
            format!("GET {path} (database down)"),
            status,
            casare("### GET /health/ready", "**Not Ready**:"),
        )
        .pins(&["/ready", "/reason"])
        .check(status, &body);

        let path = format!("{prefix}/health/live");
        let (status, body) = get(&app, &path).await;
        Case::new(
            format!("GET {path} (database down)"),
            200,
            casare("### GET /health/live", "**Response** (200 OK):"),
        )
        .pin("/alive")
        .check(status, &body);
    }
}
