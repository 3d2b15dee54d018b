//! `GET /api/v1/robots` over HTTP against the real server, on SQLite and on PostgreSQL: every
//! robot by id with its status, hostname, capabilities, current job and heartbeat, readable by
//! any role and by no robot token.

// A test crate: a panic is a failed assertion with its location, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn robots_are_listed_on_sqlite() {
    robots_are_listed(TestApp::spawn_sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn robots_are_listed_on_postgres() {
    robots_are_listed(TestApp::spawn_postgres().await).await;
}

async fn robots_are_listed(app: TestApp) {
    let admin = app.admin_token().await;
    let viewer = app.user_token("watcher", &["viewer"]).await;

    let (status, body) = app
        .call_as(&viewer, Method::GET, "/api/v1/robots", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!([]), "no robot yet");

    let mut tokens = Vec::new();
    for (id, hostname) in [("robot-b", Some("host-b")), ("robot-a", None)] {
        let (status, body) = app
            .call_as(
                &admin,
                Method::POST,
                "/api/v1/robots",
                Some(&json!({"robot_id": id, "hostname": hostname})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        tokens.push(body["token"].as_str().unwrap().to_owned());
    }
    // robot-b's heartbeat declares what it can run and brings it online.
    let response = app
        .client
        .post(app.url("/api/v1/robots/robot-b/heartbeat"))
        .header("X-Api-Token", &tokens[0])
        .json(&json!({"hostname": "host-b2", "capabilities": ["Log", "Delay"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    let (status, body) = app
        .call_as(&viewer, Method::GET, "/api/v1/robots", None)
        .await;
    assert_eq!(status, 200, "{body}");
    let robots = body.as_array().unwrap();
    let ids: Vec<&str> = robots
        .iter()
        .map(|r| r["robot_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["robot-a", "robot-b"], "by id");
    for robot in robots {
        for field in [
            "robot_id",
            "hostname",
            "status",
            "capabilities",
            "current_job_id",
            "last_heartbeat",
            "created_at",
        ] {
            assert!(robot.get(field).is_some(), "no {field} in {robot}");
        }
    }
    let (a, b) = (&robots[0], &robots[1]);
    assert_eq!(a["status"], "offline", "never seen: {a}");
    assert_eq!(a["hostname"], Value::Null);
    assert_eq!(a["last_heartbeat"], Value::Null);
    assert_eq!(a["capabilities"], json!([]));
    assert_eq!(b["status"], "idle", "{b}");
    assert_eq!(b["hostname"], "host-b2");
    assert_eq!(b["capabilities"], json!(["Log", "Delay"]));
    assert_eq!(b["current_job_id"], Value::Null);
    assert!(b["last_heartbeat"].is_string(), "{b}");
    assert!(b["created_at"].is_string(), "{b}");

    // A deleted robot is gone from the list.
    let (status, _) = app
        .call_as(&admin, Method::DELETE, "/api/v1/robots/robot-a", None)
        .await;
    assert_eq!(status, 200);
    let (_, body) = app
        .call_as(&viewer, Method::GET, "/api/v1/robots", None)
        .await;
    assert_eq!(body.as_array().unwrap().len(), 1);

    // Without credentials, or with a robot's token, the list is refused.
    let response = app.get("/api/v1/robots").await;
    assert_eq!(response.status().as_u16(), 401);
    let response = app
        .client
        .get(app.url("/api/v1/robots"))
        .header("X-Api-Token", &tokens[0])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
}
