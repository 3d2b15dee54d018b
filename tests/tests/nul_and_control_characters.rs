//! NUL (U+0000) and control characters in what clients send (docs/errors.md, "NUL and control
//! characters"): NUL in any string or key of a body, or in a path or query parameter, is a 400
//! naming its field on every route; a name holding any control character is a 400 too; free
//! text keeps its tabs and newlines. PostgreSQL cannot store NUL and SQLite can, so before
//! these rules the two backends answered differently, and on PostgreSQL one client's NUL
//! failed the other requests written in the same group commit.
//!
//! Every flow runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use baton_storage::testing::TestDatabase;
use baton_tests::{TestApp, expect_error, json};
use reqwest::Method;
use serde_json::{Value, json};

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
    a_poisoned_message_among_honest_ones_is_refused_alone,
    nul_anywhere_in_a_body_is_refused_on_every_kind_of_route,
    nul_in_a_path_or_a_query_is_refused,
    names_refuse_control_characters_and_free_text_keeps_them,
);

/// Honest requests sent with the poisoned one: more than a batch fills at an idle moment, so
/// the poisoned request would share a transaction with several of them.
const HONEST: usize = 64;

const NUL_REFUSED: &str = "must not contain the NUL character (U+0000)";

/// A server without rate limits (the bursts here are larger than a minute's allowance).
async fn start(db: TestDatabase) -> TestApp {
    TestApp::spawn_with(db, |c| c.rate_limits = false).await
}

/// Asserts a 400 in the API's shape whose per-field list names `field` with `message` (or a
/// message starting with it), and returns the body.
async fn expect_refused(response: reqwest::Response, field: &str, message: &str) -> Value {
    let body = expect_error(response, 400).await;
    assert_eq!(body["error"], "Bad Request", "{body}");
    let errors = body["errors"].as_array().expect("a per-field list");
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == field && e["message"].as_str().unwrap().starts_with(message)),
        "no refusal of {field} with {message:?} in {body}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains(field),
        "the detail names the field: {body}"
    );
    body
}

async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// Items per queue, from `GET /api/v1/queues`.
async fn totals(app: &TestApp, token: &str) -> BTreeMap<String, u64> {
    let (status, body) = json(send(app, token, Method::GET, "/api/v1/queues", None).await).await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let total = q["counts"]
                .as_object()
                .unwrap()
                .values()
                .map(|n| n.as_u64().unwrap())
                .sum();
            (q["queue_name"].as_str().unwrap().to_owned(), total)
        })
        .collect()
}

/// The stored item with this id, as `GET /api/v1/queue-items/{id}` shows it.
async fn stored_item(app: &TestApp, token: &str, id: &str) -> Value {
    let path = format!("/api/v1/queue-items/{id}");
    let (status, body) = json(send(app, token, Method::GET, &path, None).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn a_poisoned_message_among_honest_ones_is_refused_alone(db: TestDatabase) {
    let app = start(db).await;
    let key = app.api_key("integration", &["operator"]).await;
    let mut bodies: Vec<Value> = (0..HONEST)
        .map(|n| json!({"queue_name": "q", "message": format!("honest {n}")}))
        .collect();
    bodies.insert(HONEST / 2, json!({"queue_name": "q", "message": "x\u{0}y"}));
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let (client, url, key) = (app.client.clone(), app.url("/api/queue"), key.clone());
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("X-API-Key", key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (response, body)
            })
        })
        .collect();
    let mut created = Vec::new();
    let mut poisoned = 0;
    for task in tasks {
        let (response, body) = task.await.unwrap();
        if body["message"] == "x\u{0}y" {
            expect_refused(response, "message", NUL_REFUSED).await;
            poisoned += 1;
            continue;
        }
        let (status, answer) = json(response).await;
        assert_eq!(status, 201, "an honest request is served: {answer}");
        assert_eq!(answer["success"], true, "{answer}");
        created.push((answer["id"].as_str().unwrap().to_owned(), body));
    }
    assert_eq!(poisoned, 1);
    assert_eq!(created.len(), HONEST);
    for (id, body) in &created {
        let item = stored_item(&app, &key, id).await;
        assert_eq!(item["message"], body["message"], "{item}");
    }
    assert_eq!(totals(&app, &key).await["q"], HONEST as u64);
}

async fn nul_anywhere_in_a_body_is_refused_on_every_kind_of_route(db: TestDatabase) {
    let app = start(db).await;
    let admin = app.admin_token().await;
    let call = |method: Method, path: &'static str, body: Value| {
        let (app, admin) = (&app, &admin);
        async move { send(app, admin, method, path, Some(&body)).await }
    };

    // The PyOrchestrator route: a NUL deep in the data, in a value and in a key, is named.
    let body = json!({"queue_name": "q", "data": {"list": ["fine", "b\u{0}"], "k\u{0}": 1}});
    let refusal = expect_refused(
        call(Method::POST, "/api/queue", body).await,
        "data.list[1]",
        NUL_REFUSED,
    )
    .await;
    assert!(
        refusal["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "data.k\\u0000"),
        "{refusal}"
    );
    let body = json!({"queue_name": "q", "reference": "r\u{0}"});
    expect_refused(
        call(Method::POST, "/api/queue", body).await,
        "reference",
        NUL_REFUSED,
    )
    .await;
    let body = json!({"items": [{"data": "fine"}, {"data": "\u{0}"}]});
    expect_refused(
        call(Method::POST, "/api/v1/queues/q/items", body).await,
        "items[1].data",
        NUL_REFUSED,
    )
    .await;
    assert!(
        !totals(&app, &admin).await.contains_key("q"),
        "nothing stored"
    );

    // A workflow graph, a trigger, a flow.
    let body = json!({
        "workflow_name": "Graph",
        "workflow_json": {"nodes": [{"id": "start", "type": "StartNode", "name": "a\u{0}"}],
                          "connections": []},
    });
    expect_refused(
        call(Method::POST, "/api/v1/workflows", body).await,
        "workflow_json.nodes[0].name",
        NUL_REFUSED,
    )
    .await;
    let body = json!({"trigger_name": "t\u{0}", "type": "SINGLE",
                      "workflow_id": "00000000-0000-0000-0000-000000000001"});
    expect_refused(
        call(Method::POST, "/api/v1/triggers", body).await,
        "trigger_name",
        NUL_REFUSED,
    )
    .await;
    let body = json!([{"flow_id": "f", "workflow_id": "00000000-0000-0000-0000-000000000001",
                       "description": "\u{0}"}]);
    expect_refused(
        call(Method::POST, "/api/v1/flows", body).await,
        "[0].description",
        NUL_REFUSED,
    )
    .await;

    // The routes whose bodies have a fixed shape: users, API keys, robots, the login.
    let body = json!({"username": "eve\u{0}", "password": "long enough", "roles": ["viewer"]});
    expect_refused(
        call(Method::POST, "/api/v1/users", body).await,
        "username",
        NUL_REFUSED,
    )
    .await;
    let body = json!({"name": "key\u{0}", "roles": ["viewer"]});
    expect_refused(
        call(Method::POST, "/api/v1/api-keys", body).await,
        "name",
        NUL_REFUSED,
    )
    .await;
    let body = json!({"robot_id": "bot-1", "hostname": "host\u{0}"});
    expect_refused(
        call(Method::POST, "/api/v1/robots", body).await,
        "hostname",
        NUL_REFUSED,
    )
    .await;
    let body = json!({"username": "admin\u{0}", "password": "whatever"});
    expect_refused(
        call(Method::POST, "/api/v1/auth/login", body).await,
        "username",
        NUL_REFUSED,
    )
    .await;

    // Valid requests are served as before.
    let body = json!({"queue_name": "q", "message": "tab\there", "data": {"k": "v"}});
    assert_eq!(
        call(Method::POST, "/api/queue", body)
            .await
            .status()
            .as_u16(),
        201
    );
    assert_eq!(totals(&app, &admin).await["q"], 1);
}

async fn nul_in_a_path_or_a_query_is_refused(db: TestDatabase) {
    let app = start(db).await;
    let admin = app.admin_token().await;
    let put = send(
        &app,
        &admin,
        Method::PUT,
        "/api/v1/queues/a%00b",
        Some(&json!({"unique_reference": true})),
    )
    .await;
    let refusal = expect_refused(put, "path", NUL_REFUSED).await;
    assert!(
        refusal["detail"].as_str().unwrap().contains("a%00b"),
        "{refusal}"
    );
    let get = send(&app, &admin, Method::GET, "/api/v1/queues/a%00b", None).await;
    expect_refused(get, "path", NUL_REFUSED).await;
    let get = send(
        &app,
        &admin,
        Method::GET,
        "/api/v1/queues/q/items?status=NEW%00&limit=5",
        None,
    )
    .await;
    expect_refused(get, "status", NUL_REFUSED).await;
    assert!(
        totals(&app, &admin).await.is_empty(),
        "no queue was created"
    );
}

async fn names_refuse_control_characters_and_free_text_keeps_them(db: TestDatabase) {
    let app = start(db).await;
    let admin = app.admin_token().await;
    let control = "must not contain control characters";
    let post = |path: &'static str, body: Value| {
        let (app, admin) = (&app, &admin);
        async move { send(app, admin, Method::POST, path, Some(&body)).await }
    };

    let body = json!({"queue_name": "a\u{1}b"});
    expect_refused(post("/api/queue", body).await, "queue_name", control).await;
    let body = json!({"queue_name": "q", "reference": "r\tx"});
    expect_refused(post("/api/queue", body).await, "reference", control).await;
    let put = send(
        &app,
        &admin,
        Method::PUT,
        "/api/v1/queues/a%0Ab",
        Some(&json!({})),
    )
    .await;
    expect_refused(put, "queue_name", control).await;
    let body = json!({
        "workflow_name": "two\nlines",
        "workflow_json": {"nodes": [{"id": "start", "type": "StartNode"}], "connections": []},
    });
    expect_refused(
        post("/api/v1/workflows", body).await,
        "workflow_name",
        control,
    )
    .await;
    let body = json!({"trigger_name": "\u{1b}[31mred", "type": "SINGLE",
                      "workflow_id": "00000000-0000-0000-0000-000000000001"});
    expect_refused(
        post("/api/v1/triggers", body).await,
        "trigger_name",
        control,
    )
    .await;
    assert!(totals(&app, &admin).await.is_empty(), "nothing stored");

    // Free text keeps tabs, newlines and other control characters but NUL.
    let message = "line 1\nline 2\tand a bell \u{7}";
    let (status, answer) =
        json(post("/api/queue", json!({"queue_name": "q", "message": message})).await).await;
    assert_eq!(status, 201, "{answer}");
    let item = stored_item(&app, &admin, answer["id"].as_str().unwrap()).await;
    assert_eq!(item["message"], message);
}
