//! A database connection that breaks under a request is the database's unavailability, not a
//! fault of the server: the request is answered 503 with `Retry-After`, and the next one is
//! served on a new connection.

// A test crate: a panic is a failed assertion with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_tests::{TestApp, json};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_terminated_mid_request_is_a_503_and_the_server_recovers() {
    let app = TestApp::spawn_postgres().await;
    let token = app.admin_token().await;
    let list = || {
        app.client
            .get(app.url("/api/v1/workflows"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(list().await.unwrap().status(), 200);

    // Hold the workflows table, so the server's next read of it waits inside PostgreSQL.
    let url = app.database().url();
    let mut holder = AsyncPgConnection::establish(url).await.unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE workflows IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let request = tokio::spawn(list());

    // Once that read waits for the lock, end its session as an administrator (or a fail-over)
    // would. The loop waits inside PostgreSQL, for at most 30 s, for the read to arrive.
    let mut admin = AsyncPgConnection::establish(url).await.unwrap();
    admin
        .batch_execute(
            "DO $$ DECLARE waiting INT := 0; BEGIN \
               FOR attempt IN 1..600 LOOP \
                 PERFORM pg_stat_clear_snapshot(); \
                 SELECT count(*) INTO waiting FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock' \
                     AND query ILIKE '%workflows%'; \
                 EXIT WHEN waiting > 0; \
                 PERFORM pg_sleep(0.05); \
               END LOOP; \
               IF waiting = 0 THEN RAISE EXCEPTION 'the server never read the workflows'; END IF; \
               PERFORM pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock' \
                   AND query ILIKE '%workflows%'; \
             END $$",
        )
        .await
        .unwrap();

    let response = request.await.unwrap().unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = json(response).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["error"], "Service Unavailable");
    assert_eq!(body["retry_after"], 1);
    assert!(
        !body.to_string().contains("terminating"),
        "driver text leaked: {body}"
    );

    // Released, the table is read again on a sound connection.
    holder.batch_execute("COMMIT").await.unwrap();
    let (status, body) = json(list().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
}
