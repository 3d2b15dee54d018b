//! `POST /api/queue` under concurrency (the group commit of docs/performance.md): concurrent
//! requests are committed together, yet each is answered on its own. A duplicate reference in a
//! unique queue is a 409 for that request alone; every other request of the burst is a 201 whose
//! item is stored, and nothing is half-written.
//!
//! Every flow runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};

use baton_storage::testing::TestDatabase;
use baton_tests::{TestApp, expect_error, json};
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
    a_duplicate_in_a_burst_is_refused_alone,
    a_burst_over_many_queues_stores_every_item,
);

/// Requests sent at once: more than a batch fills at an idle moment, so several requests share
/// a transaction.
const BURST: usize = 120;

async fn post_item(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/queue"))
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Sends every body at once and returns each answer's status and body, in order.
async fn burst(app: &TestApp, key: &str, bodies: Vec<Value>) -> Vec<(u16, Value, Value)> {
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let (client, url, key) = (app.client.clone(), app.url("/api/queue"), key.to_owned());
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("X-API-Key", key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let answer: Value = response.json().await.unwrap();
                (status, answer, body)
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// The stored item with this id, as `GET /api/v1/queue-items/{id}` shows it.
async fn stored(app: &TestApp, key: &str, id: &str) -> Value {
    let response = app
        .client
        .get(app.url(&format!("/api/v1/queue-items/{id}")))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Items per queue, from `GET /api/v1/queues`.
async fn totals(app: &TestApp, key: &str) -> BTreeMap<String, u64> {
    let response = app
        .client
        .get(app.url("/api/v1/queues"))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
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

async fn a_duplicate_in_a_burst_is_refused_alone(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let admin = app.admin_token().await;
    let key = app.api_key("integration", &["operator"]).await;
    let response = app
        .client
        .put(app.url("/api/v1/queues/Unique"))
        .bearer_auth(&admin)
        .json(&json!({"unique_reference": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // A reference stored before the burst.
    let before = post_item(
        &app,
        &key,
        json!({"queue_name": "Unique", "reference": "stored"}),
    )
    .await;
    assert_eq!(before.status().as_u16(), 201);

    // Distinct references, plus one named twice in the burst and one stored already.
    let mut bodies: Vec<Value> = (0..BURST)
        .map(|n| json!({"queue_name": "Unique", "reference": format!("ref-{n}"), "data": {"n": n}}))
        .collect();
    bodies.insert(
        BURST / 2,
        json!({"queue_name": "Unique", "reference": "ref-7", "data": {"n": "again"}}),
    );
    bodies.push(json!({"queue_name": "Unique", "reference": "stored"}));
    let answers = burst(&app, &key, bodies).await;

    let mut refused = Vec::new();
    let mut ids = HashSet::new();
    let mut created_refs = Vec::new();
    for (status, answer, body) in &answers {
        match status {
            201 => {
                assert_eq!(answer["success"], true, "{answer}");
                let id = answer["id"].as_str().unwrap().to_owned();
                let item = stored(&app, &key, &id).await;
                assert_eq!(item["reference"], body["reference"]);
                assert_eq!(item["data"], body["data"].to_string());
                assert!(ids.insert(id), "an id answered twice");
                created_refs.push(body["reference"].as_str().unwrap().to_owned());
            }
            409 => refused.push((
                body["reference"].as_str().unwrap().to_owned(),
                answer.clone(),
            )),
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    // Exactly the two duplicates were refused, each in the API's error shape.
    let mut refused_refs: Vec<&str> = refused.iter().map(|(r, _)| r.as_str()).collect();
    refused_refs.sort_unstable();
    assert_eq!(refused_refs, ["ref-7", "stored"], "{refused:?}");
    for (_, answer) in &refused {
        assert_eq!(answer["error"], "Conflict", "{answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains("reference"),
            "{answer}"
        );
    }
    assert_eq!(created_refs.len(), BURST);
    assert_eq!(ids.len(), BURST);
    assert_eq!(totals(&app, &key).await["Unique"], BURST as u64 + 1);

    // The burst's references are taken from now on, like any other.
    expect_error(
        post_item(
            &app,
            &key,
            json!({"queue_name": "Unique", "reference": "ref-0"}),
        )
        .await,
        409,
    )
    .await;
}

async fn a_burst_over_many_queues_stores_every_item(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let key = app.api_key("integration", &["operator"]).await;
    // New queues are created by the burst itself, several per transaction; references repeat
    // freely in queues that do not ask for uniqueness.
    let bodies: Vec<Value> = (0..BURST)
        .map(
            |n| json!({"queue_name": format!("q-{}", n % 7), "reference": "same", "status": "new"}),
        )
        .collect();
    let answers = burst(&app, &key, bodies).await;
    for (status, answer, _) in &answers {
        assert_eq!(*status, 201, "{answer}");
    }
    let totals = totals(&app, &key).await;
    for q in 0..7 {
        let expected = (0..BURST).filter(|n| n % 7 == q).count() as u64;
        assert_eq!(totals[&format!("q-{q}")], expected, "{totals:?}");
    }
    // A refused request in the middle of a burst writes nothing.
    let answers = burst(
        &app,
        &key,
        vec![
            json!({"queue_name": "q-0"}),
            json!({"queue_name": "q-0", "data": "d".repeat(2001)}),
            json!({"queue_name": "q-0"}),
        ],
    )
    .await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(statuses, [201, 400, 201]);
    assert_eq!(
        totals_of(&app, &key, "q-0").await,
        (0..BURST).filter(|n| n % 7 == 0).count() as u64 + 2
    );
}

async fn totals_of(app: &TestApp, key: &str, queue: &str) -> u64 {
    totals(app, key).await[queue]
}
