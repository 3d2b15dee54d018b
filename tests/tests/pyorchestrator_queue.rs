//! PyOrchestrator's `POST /api/queue` (tests/fixtures/seeds/pyorchestrator-api.txt) as a client
//! that knows only the seed sees it: the seed example stored field for field, the defaults,
//! every limit of docs/queues.md at its edge and one past it, wrong JSON types, bodies
//! that are not JSON objects, and the API key. A refused request must write nothing, which each
//! flow checks by reading `GET /api/v1/queues` back at its end.
//!
//! Every flow runs on SQLite and on PostgreSQL. Each server bans an address after five failed
//! authentications, so no flow presents more than four wrong credentials.

// A test crate: a panic is a failed assertion with its location, and helpers outside `#[test]`
// functions count too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use baton_domain::ids::QueueItemId;
use baton_storage::testing::TestDatabase;
use baton_tests::TestApp;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Runs each named `async fn(TestDatabase)` on a fresh SQLite and a fresh PostgreSQL database,
/// as the tests `<name>::sqlite` and `<name>::postgres`.
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
    the_seed_example_is_stored_field_for_field,
    optional_fields_default_and_are_converted_as_documented,
    every_limit_is_enforced_at_its_edge,
    wrong_types_and_malformed_bodies_are_400s_that_write_nothing,
    the_api_key_is_required_and_checked,
);

/// The seed's example request, verbatim.
fn seed_example() -> Value {
    json!({
        "queue_name": "SomeQueue",
        "status": "NEW",
        "data": {
            "case_id": "ABC123",
            "reference_id": "XYZ-001"
        },
        "reference": "ExternalRef-456",
        "created_by": "MySystem",
        "created_date": "2025-04-26T12:00:00",
        "message": "Created from external system"
    })
}

/// A server with an integrator's API key (operator role), as the seed's clients hold one.
struct Client {
    app: TestApp,
    key: String,
}

/// A response's status, `X-RateLimit-Limit` header and JSON body.
struct Reply {
    status: u16,
    rate_limit: Option<String>,
    body: Value,
}

impl Reply {
    /// The fields named by a 400's `errors` list, asserting the status and the error shape.
    fn error_fields(&self) -> BTreeSet<String> {
        self.expect_error(400);
        self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no `errors` list in {}", self.body))
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    }

    fn expect_error(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body["error"].is_string(), "{}", self.body);
        assert!(self.body["detail"].is_string(), "{}", self.body);
    }
}

impl Client {
    async fn spawn(db: TestDatabase) -> Self {
        let app = TestApp::spawn(db).await;
        let key = app.api_key("integration", &["operator"]).await;
        Client { app, key }
    }

    /// Sends `body` as it is (not necessarily JSON) to `POST /api/queue` with `key`, if any.
    async fn post_raw(&self, body: &str, key: Option<&str>) -> Reply {
        let mut request = self
            .app
            .client
            .post(self.app.url("/api/queue"))
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        reply(request.send().await.unwrap()).await
    }

    async fn post(&self, body: &Value) -> Reply {
        self.post_raw(&body.to_string(), Some(&self.key)).await
    }

    /// Adds an item, asserting 201, and returns its id.
    async fn add(&self, body: Value) -> String {
        let reply = self.post(&body).await;
        assert_eq!(reply.status, 201, "{body}: {}", reply.body);
        reply.body["id"].as_str().unwrap().to_owned()
    }

    async fn get(&self, path: &str) -> Reply {
        let request = self
            .app
            .client
            .get(self.app.url(path))
            .header("X-API-Key", &self.key);
        reply(request.send().await.unwrap()).await
    }

    /// The stored item, as `GET /api/v1/queue-items/{id}` shows it.
    async fn item(&self, id: &str) -> Value {
        let reply = self.get(&format!("/api/v1/queue-items/{id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// Every queue's name with its item count, from `GET /api/v1/queues`.
    async fn queue_totals(&self) -> Vec<(String, u64)> {
        let reply = self.get("/api/v1/queues").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply
            .body
            .as_array()
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
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let rate_limit = response
        .headers()
        .get("x-ratelimit-limit")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text}"));
    Reply {
        status,
        rate_limit,
        body,
    }
}

fn instant(text: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(text.as_str().unwrap(), &Rfc3339).unwrap()
}

async fn the_seed_example_is_stored_field_for_field(db: TestDatabase) {
    let client = Client::spawn(db).await;
    let reply = client.post(&seed_example()).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        reply.rate_limit.as_deref(),
        Some("1000"),
        "the seed's limit"
    );
    let body = reply.body.as_object().unwrap();
    assert_eq!(
        body.keys().collect::<Vec<_>>(),
        ["id", "success"],
        "exactly the seed's response fields"
    );
    assert_eq!(body["success"], true);
    let id = body["id"].as_str().unwrap();
    id.parse::<QueueItemId>().expect("the id is a UUID");

    let item = client.item(id).await;
    assert_eq!(item["id"], id);
    assert_eq!(item["queue_name"], "SomeQueue");
    assert_eq!(item["status"], "NEW");
    assert_eq!(
        item["data"], r#"{"case_id":"ABC123","reference_id":"XYZ-001"}"#,
        "objects are stored as compact JSON text"
    );
    assert_eq!(item["reference"], "ExternalRef-456");
    assert_eq!(item["created_by"], "MySystem");
    assert_eq!(
        item["created_date"], "2025-04-26T12:00:00Z",
        "a date-time without an offset is UTC"
    );
    assert_eq!(item["message"], "Created from external system");
    for unset in ["start_date", "end_date", "lease_expires_at", "robot_id"] {
        assert_eq!(item[unset], Value::Null, "{unset}");
    }
    assert_eq!(item["retry_count"], 0);
    instant(&item["updated_at"]);

    let queues = client.get("/api/v1/queues").await.body;
    assert_eq!(queues[0]["queue_name"], "SomeQueue");
    assert_eq!(
        queues[0]["counts"],
        json!({"NEW": 1, "IN_PROGRESS": 0, "DONE": 0, "FAILED": 0, "ABANDONED": 0})
    );

    // The same example again is another item: without unique references, nothing is a duplicate.
    let second = client.add(seed_example()).await;
    assert_ne!(second, id);
    assert_eq!(client.queue_totals().await, [("SomeQueue".to_owned(), 2)]);
}

async fn optional_fields_default_and_are_converted_as_documented(db: TestDatabase) {
    let client = Client::spawn(db).await;
    let before = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let id = client.add(json!({"queue_name": "Defaults"})).await;
    let after = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let item = client.item(&id).await;
    assert_eq!(item["status"], "NEW");
    for null in ["data", "reference", "message", "created_by"] {
        assert_eq!(item[null], Value::Null, "{null} defaults to null");
    }
    let created = instant(&item["created_date"]);
    assert!(
        before <= created && created <= after,
        "created_date defaults to server time: {created}"
    );

    // Explicit nulls are the defaults too.
    let id = client
        .add(
            json!({"queue_name": "Defaults", "status": null, "data": null, "reference": null,
                     "message": null, "created_by": null, "created_date": null}),
        )
        .await;
    assert_eq!(client.item(&id).await["status"], "NEW");

    // A string is kept as it is; an array becomes compact JSON.
    let id = client
        .add(json!({"queue_name": "Conv", "data": " {not json} "}))
        .await;
    assert_eq!(client.item(&id).await["data"], " {not json} ");
    let id = client
        .add(json!({"queue_name": "Conv", "data": [1, "two", {"three": 3}]}))
        .await;
    assert_eq!(client.item(&id).await["data"], r#"[1,"two",{"three":3}]"#);

    // Status in any case is stored upper-case; a final status stamps start and end dates.
    let id = client
        .add(json!({"queue_name": "Conv", "status": "done"}))
        .await;
    let item = client.item(&id).await;
    assert_eq!(item["status"], "DONE");
    assert!(item["end_date"].is_string(), "{item}");
    let id = client
        .add(json!({"queue_name": "Conv", "status": "Abandoned"}))
        .await;
    assert_eq!(client.item(&id).await["status"], "ABANDONED");

    // Any offset is accepted and stored in UTC; fractions keep microseconds.
    for (given, stored) in [
        ("2025-04-26T14:00:00+02:00", "2025-04-26T12:00:00Z"),
        ("2025-04-26T12:00:00Z", "2025-04-26T12:00:00Z"),
        ("2025-04-26T12:00:00.123456", "2025-04-26T12:00:00.123456Z"),
        ("2025-04-26 12:00:00", "2025-04-26T12:00:00Z"),
    ] {
        let id = client
            .add(json!({"queue_name": "Dates", "created_date": given}))
            .await;
        assert_eq!(client.item(&id).await["created_date"], stored, "{given}");
    }

    // A body sent without a JSON content type is still read as JSON.
    let response = client
        .app
        .client
        .post(client.app.url("/api/queue"))
        .header("X-API-Key", &client.key)
        .body(r#"{"queue_name": "NoContentType"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
}

async fn every_limit_is_enforced_at_its_edge(db: TestDatabase) {
    let client = Client::spawn(db).await;
    // Accepted at the limit.
    let edge = [
        json!({"queue_name": "q".repeat(100)}),
        json!({"queue_name": "é".repeat(100)}),
        json!({"queue_name": "Edge", "data": "d".repeat(2000)}),
        // `{"k":"` and `"}` are 8 characters: this object is exactly 2000 once stringified.
        json!({"queue_name": "Edge", "data": {"k": "v".repeat(1992)}}),
        json!({"queue_name": "Edge", "data": ["é".repeat(1996)]}),
        json!({"queue_name": "Edge", "reference": "r".repeat(100)}),
        json!({"queue_name": "Edge", "created_by": "c".repeat(100)}),
        json!({"queue_name": "Edge", "message": "m".repeat(1000)}),
    ];
    for body in edge {
        let id = client.add(body.clone()).await;
        let item = client.item(&id).await;
        for field in ["queue_name", "reference", "created_by", "message"] {
            if let Some(given) = body.get(field) {
                assert_eq!(&item[field], given, "{field} stored as given");
            }
        }
    }

    // Refused one past it, naming the field.
    let over = [
        (json!({"queue_name": ""}), "queue_name"),
        (json!({"queue_name": "q".repeat(101)}), "queue_name"),
        (json!({"queue_name": "é".repeat(101)}), "queue_name"),
        (
            json!({"queue_name": "Over", "data": "d".repeat(2001)}),
            "data",
        ),
        (
            json!({"queue_name": "Over", "data": {"k": "v".repeat(1993)}}),
            "data",
        ),
        (
            json!({"queue_name": "Over", "reference": "r".repeat(101)}),
            "reference",
        ),
        (
            json!({"queue_name": "Over", "created_by": "c".repeat(101)}),
            "created_by",
        ),
        (
            json!({"queue_name": "Over", "message": "m".repeat(1001)}),
            "message",
        ),
    ];
    for (body, field) in over {
        let reply = client.post(&body).await;
        assert_eq!(
            reply.error_fields(),
            BTreeSet::from([field.to_owned()]),
            "{}",
            reply.body
        );
    }

    // Every broken rule of one body is reported at once.
    let reply = client
        .post(&json!({
            "queue_name": "Over", "status": "LATER", "data": "d".repeat(2001),
            "reference": "r".repeat(101), "created_by": "c".repeat(101), "message": "m".repeat(1001),
            "created_date": "soon"
        }))
        .await;
    assert_eq!(
        reply.error_fields(),
        BTreeSet::from(
            [
                "status",
                "data",
                "reference",
                "created_by",
                "message",
                "created_date"
            ]
            .map(str::to_owned)
        )
    );

    let mut totals = client.queue_totals().await;
    totals.sort();
    let mut expected = vec![
        ("Edge".to_owned(), 6),
        ("q".repeat(100), 1),
        ("é".repeat(100), 1),
    ];
    expected.sort();
    assert_eq!(totals, expected, "refused requests wrote nothing");
}

async fn wrong_types_and_malformed_bodies_are_400s_that_write_nothing(db: TestDatabase) {
    let client = Client::spawn(db).await;
    let wrong_types = [
        (json!({"queue_name": 5}), "queue_name"),
        (json!({"queue_name": true}), "queue_name"),
        (json!({"queue_name": {"name": "q"}}), "queue_name"),
        (json!({"queue_name": ["q"]}), "queue_name"),
        (json!({"queue_name": "Bad", "status": 1}), "status"),
        (json!({"queue_name": "Bad", "status": ["NEW"]}), "status"),
        (json!({"queue_name": "Bad", "data": 5}), "data"),
        (json!({"queue_name": "Bad", "data": 1.5}), "data"),
        (json!({"queue_name": "Bad", "data": false}), "data"),
        (json!({"queue_name": "Bad", "reference": 456}), "reference"),
        (
            json!({"queue_name": "Bad", "reference": {"id": 1}}),
            "reference",
        ),
        (json!({"queue_name": "Bad", "message": true}), "message"),
        (
            json!({"queue_name": "Bad", "created_by": ["me"]}),
            "created_by",
        ),
        (
            json!({"queue_name": "Bad", "created_date": 1745668800}),
            "created_date",
        ),
        (
            json!({"queue_name": "Bad", "created_date": {"y": 2025}}),
            "created_date",
        ),
        (json!({"queue_name": "Bad", "status": "LATER"}), "status"),
        (json!({"queue_name": "Bad", "status": ""}), "status"),
        (
            json!({"queue_name": "Bad", "created_date": "yesterday"}),
            "created_date",
        ),
        (
            json!({"queue_name": "Bad", "created_date": "2025-02-30T00:00:00"}),
            "created_date",
        ),
        (
            json!({"queue_name": "Bad", "created_date": ""}),
            "created_date",
        ),
        (json!({"status": "NEW"}), "queue_name"),
        (json!({"queue_name": null}), "queue_name"),
    ];
    for (body, field) in wrong_types {
        let reply = client.post(&body).await;
        assert_eq!(
            reply.error_fields(),
            BTreeSet::from([field.to_owned()]),
            "{body}: {}",
            reply.body
        );
    }
    let reply = client.post(&json!({"queue_name": 5})).await;
    assert_eq!(
        reply.body["errors"],
        json!([{"field": "queue_name", "message": "must be a string, not a number"}])
    );

    // Several wrong types at once are all named.
    let reply = client
        .post(&json!({"queue_name": 1, "status": 2, "reference": 3, "message": 4}))
        .await;
    assert_eq!(
        reply.error_fields(),
        BTreeSet::from(["queue_name", "status", "reference", "message"].map(str::to_owned))
    );

    // Bodies that are JSON but not an object.
    for body in [
        "[]",
        r#"[{"queue_name": "Bad"}]"#,
        r#""SomeQueue""#,
        "null",
        "5",
        "true",
    ] {
        let reply = client.post_raw(body, Some(&client.key)).await;
        assert_eq!(
            reply.error_fields(),
            BTreeSet::from(["body".to_owned()]),
            "{body}"
        );
    }

    // Bodies that are not JSON at all.
    for body in [
        "",
        "{",
        r#"{"queue_name": "Bad""#,
        "{'queue_name': 'Bad'}",
        r#"{"queue_name": "Bad",}"#,
        "queue_name=Bad",
        "\u{feff}{}",
    ] {
        let reply = client.post_raw(body, Some(&client.key)).await;
        reply.expect_error(400);
        assert_eq!(reply.body["error"], "Bad Request", "{body:?}");
    }

    assert_eq!(
        client.queue_totals().await,
        [],
        "no refused request created a queue or an item"
    );
}

async fn the_api_key_is_required_and_checked(db: TestDatabase) {
    let client = Client::spawn(db).await;
    let body = seed_example().to_string();

    let reply = client.post_raw(&body, None).await;
    reply.expect_error(401);
    let reply = client.post_raw(&body, Some("not-a-key")).await;
    reply.expect_error(401);
    // A missing key is refused before the body is judged.
    client.post_raw("{", None).await.expect_error(401);

    // A key whose roles do not allow adding work is forbidden.
    let viewer = client.app.api_key("dashboard", &["viewer"]).await;
    client
        .post_raw(&body, Some(&viewer))
        .await
        .expect_error(403);
    assert_eq!(
        client.queue_totals().await,
        [],
        "refused requests wrote nothing"
    );

    // The key also works as a bearer token (`Authorization: Bearer <key>`, docs/security.md).
    let response = client
        .app
        .client
        .post(client.app.url("/api/queue"))
        .bearer_auth(&client.key)
        .json(&seed_example())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);

    // Only POST is served on the path.
    let response = client
        .app
        .client
        .request(Method::GET, client.app.url("/api/queue"))
        .header("X-API-Key", &client.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
}
