//! The queue engine under `/api/v1` (docs/queues.md) over HTTP against the real server: queues
//! with their counts and settings, items filtered and paged newest first, bulk add all or
//! nothing, unique references, the robots' claim of the oldest NEW item and their reports, an
//! operator's status changes, lease expiry through the background engine, and concurrent
//! claimers that never share an item.
//!
//! Every flow runs on SQLite and on PostgreSQL. Each server bans an address after five failed
//! authentications; no flow here presents a wrong credential.

// A test crate: a panic is a failed assertion with its location, and helpers outside `#[test]`
// functions count too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_server::config::Config;
use baton_storage::testing::TestDatabase;
use baton_tests::TestApp;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
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
    queues_list_their_counts_and_settings,
    items_are_filtered_and_paged_newest_first,
    items_are_found_by_reference,
    bulk_adds_store_every_item_or_none,
    unique_references_are_refused_twice,
    robots_claim_the_oldest_new_items_and_report_their_outcome,
    operators_change_statuses_under_the_item_rules,
    expired_leases_go_back_to_new_then_are_abandoned,
    concurrent_claimers_never_share_an_item,
    the_permission_matrix_applies,
);

/// How a request authenticates.
#[derive(Clone)]
enum Auth {
    None,
    /// `Authorization: Bearer` with a JWT.
    Bearer(String),
    /// `X-API-Key`.
    Key(String),
    /// A robot's `X-Api-Token`.
    Robot(String),
}

/// A test server and an admin token to drive it.
struct Api {
    app: TestApp,
    admin: Auth,
}

/// A response: status and JSON body, with the request for assertion messages.
struct Reply {
    request: String,
    status: u16,
    body: Value,
}

impl Reply {
    fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {} {}",
            self.request, self.status, self.body
        );
        &self.body
    }

    fn expect_error(&self, status: u16) -> &Value {
        self.expect(status);
        assert!(self.body["error"].is_string(), "{}", self.body);
        assert!(self.body["detail"].is_string(), "{}", self.body);
        &self.body
    }

    /// The fields named in a 400's `errors` list.
    fn error_fields(&self) -> BTreeSet<String> {
        self.expect_error(400)["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no `errors` list in {}", self.request, self.body))
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn fields(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

impl Api {
    async fn spawn(db: TestDatabase, customise: impl FnOnce(&mut Config)) -> Self {
        let app = TestApp::spawn_with(db, customise).await;
        let admin = Auth::Bearer(app.admin_token().await);
        Api { app, admin }
    }

    async fn call(&self, method: Method, path: &str, auth: &Auth, body: Option<&Value>) -> Reply {
        let mut request = self.app.client.request(method.clone(), self.app.url(path));
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Key(key) => request.header("X-API-Key", key),
            Auth::Robot(token) => request.header("X-Api-Token", token),
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let request = format!("{method} {path}");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{request}: status {status}, body not JSON ({e}): {text}"));
        Reply {
            request,
            status,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, &self.admin, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, &self.admin, Some(&body))
            .await
    }

    async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, &self.admin, Some(&body)).await
    }

    /// Adds items to `queue` in one request, asserting 201, and returns their ids in order.
    async fn add_items(&self, queue: &str, items: Vec<Value>) -> Vec<String> {
        let count = items.len();
        let reply = self
            .post(
                &format!("/api/v1/queues/{queue}/items"),
                json!({"items": items}),
            )
            .await;
        let body = reply.expect(201);
        assert_eq!(body["success"], true);
        assert_eq!(body["count"], count);
        body["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_owned())
            .collect()
    }

    async fn item(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/queue-items/{id}"))
            .await
            .expect(200)
            .clone()
    }

    /// The counts of one queue, from `GET /queues`.
    async fn counts(&self, queue: &str) -> Value {
        let queues = self.get("/api/v1/queues").await.expect(200).clone();
        queues
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["queue_name"] == queue)
            .unwrap_or_else(|| panic!("no queue {queue} in {queues}"))["counts"]
            .clone()
    }

    async fn queue_names(&self) -> Vec<String> {
        let queues = self.get("/api/v1/queues").await.expect(200).clone();
        queues
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["queue_name"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn settings(&self, queue: &str, body: Value) -> Value {
        self.put(&format!("/api/v1/queues/{queue}"), body)
            .await
            .expect(200)
            .clone()
    }

    /// Registers a robot and returns its credentials.
    async fn robot(&self, robot_id: &str) -> Auth {
        let reply = self
            .post("/api/v1/robots", json!({"robot_id": robot_id}))
            .await;
        Auth::Robot(reply.expect(201)["token"].as_str().unwrap().to_owned())
    }

    async fn claim(&self, robot_id: &str, auth: &Auth, body: Value) -> Reply {
        self.call(
            Method::POST,
            &format!("/api/v1/robots/{robot_id}/queue-items/claim"),
            auth,
            Some(&body),
        )
        .await
    }

    async fn report(&self, robot_id: &str, auth: &Auth, id: &str, body: Value) -> Reply {
        self.call(
            Method::PUT,
            &format!("/api/v1/robots/{robot_id}/queue-items/{id}"),
            auth,
            Some(&body),
        )
        .await
    }
}

fn counts(new: u64, in_progress: u64, done: u64, failed: u64, abandoned: u64) -> Value {
    json!({"NEW": new, "IN_PROGRESS": in_progress, "DONE": done, "FAILED": failed,
           "ABANDONED": abandoned})
}

fn instant(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        value
            .as_str()
            .unwrap_or_else(|| panic!("not a date: {value}")),
        &Rfc3339,
    )
    .unwrap()
}

fn ids_of(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn queues_list_their_counts_and_settings(db: TestDatabase) {
    let api = Api::spawn(db, |_| {}).await;
    assert_eq!(api.get("/api/v1/queues").await.expect(200), &json!([]));

    api.add_items(
        "Invoices",
        ["NEW", "NEW", "in_progress", "DONE", "failed", "ABANDONED"]
            .map(|s| json!({"status": s}))
            .to_vec(),
    )
    .await;
    api.add_items("Archive", vec![json!({})]).await;
    let queues = api.get("/api/v1/queues").await.expect(200).clone();
    assert_eq!(queues.as_array().unwrap().len(), 2);
    assert_eq!(queues[0]["queue_name"], "Archive", "listed by name");
    let invoices = &queues[1];
    assert_eq!(invoices["queue_name"], "Invoices");
    assert_eq!(invoices["counts"], counts(2, 1, 1, 1, 1));
    assert_eq!(invoices["max_retries"], 3, "default settings");
    assert_eq!(invoices["lease_seconds"], 300);
    assert_eq!(invoices["unique_reference"], false);
    instant(&invoices["created_at"]);
    assert_eq!(
        api.get("/api/v1/queues/Invoices").await.expect(200),
        invoices
    );
    api.get("/api/v1/queues/Nothing").await.expect_error(404);
    api.get(&format!("/api/v1/queues/{}", "q".repeat(101)))
        .await
        .expect_error(404);

    // Settings: a partial change keeps the others; a new queue is created with the defaults.
    let queue = api.settings("Invoices", json!({"lease_seconds": 60})).await;
    assert_eq!(
        (
            &queue["max_retries"],
            &queue["lease_seconds"],
            &queue["unique_reference"]
        ),
        (&json!(3), &json!(60), &json!(false))
    );
    assert_eq!(queue["counts"], counts(2, 1, 1, 1, 1));
    let queue = api
        .settings(
            "Fresh Queue",
            json!({"max_retries": 0, "unique_reference": true}),
        )
        .await;
    assert_eq!(queue["queue_name"], "Fresh Queue");
    assert_eq!(
        (&queue["max_retries"], &queue["lease_seconds"]),
        (&json!(0), &json!(300))
    );
    assert_eq!(queue["counts"], counts(0, 0, 0, 0, 0));
    assert_eq!(api.counts("Fresh Queue").await, counts(0, 0, 0, 0, 0));
    // Names are percent-decoded from the path, a slash included.
    let queue = api.settings("team%2Fbilling", json!({})).await;
    assert_eq!(queue["queue_name"], "team/billing");
    api.add_items("team%2Fbilling", vec![json!({})]).await;
    let page = api.get("/api/v1/queues/team%2Fbilling/items").await;
    assert_eq!(page.expect(200)["items"][0]["queue_name"], "team/billing");

    // Each bad setting is named; nothing changes.
    for (body, names) in [
        (json!({"max_retries": 101}), vec!["max_retries"]),
        (json!({"max_retries": -1}), vec!["max_retries"]),
        (json!({"max_retries": 1.5}), vec!["max_retries"]),
        (json!({"max_retries": "3"}), vec!["max_retries"]),
        (
            json!({"max_retries": 5_000_000_000u64}),
            vec!["max_retries"],
        ),
        (json!({"lease_seconds": 0}), vec!["lease_seconds"]),
        (json!({"lease_seconds": 86_401}), vec!["lease_seconds"]),
        (json!({"unique_reference": "yes"}), vec!["unique_reference"]),
        (
            json!({"max_retries": 1000, "lease_seconds": 0, "unique_reference": 1}),
            vec!["max_retries", "lease_seconds", "unique_reference"],
        ),
        (json!([]), vec!["body"]),
    ] {
        let reply = api.put("/api/v1/queues/Invoices", body).await;
        assert_eq!(reply.error_fields(), fields(&names), "{}", reply.body);
    }
    let reply = api
        .put(&format!("/api/v1/queues/{}", "q".repeat(101)), json!({}))
        .await;
    assert_eq!(reply.error_fields(), fields(&["queue_name"]));
    let invoices = api.get("/api/v1/queues/Invoices").await.expect(200).clone();
    assert_eq!(
        invoices["lease_seconds"], 60,
        "refused changes wrote nothing"
    );
    assert_eq!(
        api.queue_names().await,
        ["Archive", "Fresh Queue", "Invoices", "team/billing"]
    );
}

async fn items_are_filtered_and_paged_newest_first(db: TestDatabase) {
    let api = Api::spawn(db, |_| {}).await;
    // Seven items a minute apart, added out of order, every third one DONE.
    let minutes: [u32; 7] = [3, 0, 6, 1, 5, 2, 4];
    let ids = api
        .add_items(
            "Paged",
            minutes
                .iter()
                .map(|m| {
                    json!({
                        "created_date": format!("2025-01-01T10:0{m}:00Z"),
                        "status": if m.is_multiple_of(3) { "DONE" } else { "NEW" },
                        "reference": format!("minute-{m}"),
                    })
                })
                .collect(),
        )
        .await;
    let by_minute = |m: u32| ids[minutes.iter().position(|x| *x == m).unwrap()].clone();

    // The whole queue in pages of three: newest first, no item twice, the last cursor null.
    let mut seen = Vec::new();
    let mut path = "/api/v1/queues/Paged/items?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = api.get(&path).await.expect(200).clone();
        pages += 1;
        seen.extend(ids_of(&page["items"]));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/queues/Paged/items?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = (0..7).rev().map(by_minute).collect();
    assert_eq!(seen, newest_first);

    // Exactly one page: no cursor pointing at an empty page.
    let page = api
        .get("/api/v1/queues/Paged/items?limit=7")
        .await
        .expect(200)
        .clone();
    assert_eq!(page["items"].as_array().unwrap().len(), 7);
    assert_eq!(page["next_cursor"], Value::Null);
    let page = api
        .get("/api/v1/queues/Paged/items")
        .await
        .expect(200)
        .clone();
    assert_eq!(ids_of(&page["items"]), newest_first, "default limit 50");
    let first = &page["items"][0];
    assert_eq!(first["reference"], "minute-6");
    assert_eq!(first["created_date"], "2025-01-01T10:06:00Z");
    assert_eq!(first["queue_name"], "Paged");

    // The status filter in any case, with paging.
    let page = api
        .get("/api/v1/queues/Paged/items?status=done&limit=2")
        .await
        .expect(200)
        .clone();
    assert_eq!(ids_of(&page["items"]), [by_minute(6), by_minute(3)]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let page = api
        .get(&format!(
            "/api/v1/queues/Paged/items?status=DONE&limit=2&cursor={cursor}"
        ))
        .await
        .expect(200)
        .clone();
    assert_eq!(ids_of(&page["items"]), [by_minute(0)]);
    assert_eq!(page["next_cursor"], Value::Null);
    let page = api
        .get("/api/v1/queues/Paged/items?status=FAILED")
        .await
        .expect(200)
        .clone();
    assert_eq!(page, json!({"items": [], "next_cursor": null}));

    // Items added together share their creation instant: paging breaks the tie by id.
    let same = api.add_items("Ties", vec![json!({}); 5]).await;
    let mut walked = Vec::new();
    let mut path = "/api/v1/queues/Ties/items?limit=2".to_owned();
    loop {
        let page = api.get(&path).await.expect(200).clone();
        walked.extend(ids_of(&page["items"]));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/queues/Ties/items?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        walked.iter().collect::<HashSet<_>>(),
        same.iter().collect::<HashSet<_>>()
    );
    assert_eq!(walked.len(), 5);

    // Bad parameters are named; an unknown queue is a 404.
    for (query, names) in [
        ("status=LATER", vec!["status"]),
        ("limit=0", vec!["limit"]),
        ("limit=501", vec!["limit"]),
        ("limit=ten", vec!["limit"]),
        ("cursor=not-a-cursor", vec!["cursor"]),
        (
            "status=x&limit=-1&cursor=x",
            vec!["status", "limit", "cursor"],
        ),
    ] {
        let reply = api
            .get(&format!("/api/v1/queues/Paged/items?{query}"))
            .await;
        assert_eq!(reply.error_fields(), fields(&names), "{query}");
    }
    api.get("/api/v1/queues/Paged/items?limit=500")
        .await
        .expect(200);
    api.get("/api/v1/queues/Unknown/items")
        .await
        .expect_error(404);

    // Single items: unknown and malformed ids are 404s.
    api.get("/api/v1/queue-items/00000000-0000-0000-0000-000000000000")
        .await
        .expect_error(404);
    api.get("/api/v1/queue-items/not-a-uuid")
        .await
        .expect_error(404);
}

async fn items_are_found_by_reference(db: TestDatabase) {
    let api = Api::spawn(db, |_| {}).await;
    // Created a minute apart, so newest first is the reverse of this order.
    let references = [
        Some("INV-1"),
        Some("INV-10"),
        Some("inv-100"),
        Some("INV_2"),
        Some("100% sure"),
        None,
    ];
    let ids = api
        .add_items(
            "Refs",
            references
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    json!({
                        "created_date": format!("2025-01-01T10:0{i}:00Z"),
                        "reference": r,
                        "status": if i == 1 { "FAILED" } else { "NEW" },
                    })
                })
                .collect(),
        )
        .await;
    let found = async |query: &str| {
        let page = api
            .get(&format!("/api/v1/queues/Refs/items?{query}"))
            .await
            .expect(200)
            .clone();
        ids_of(&page["items"])
    };

    // A whole reference, letter case and all.
    assert_eq!(found("reference=INV-1").await, [ids[0].clone()]);
    assert_eq!(found("reference=inv-1").await, Vec::<String>::new());
    // A prefix: exact letter case, and `%` or `_` are plain characters, not wildcards.
    assert_eq!(
        found("reference_prefix=INV-1").await,
        [ids[1].clone(), ids[0].clone()]
    );
    assert_eq!(found("reference_prefix=INV_").await, [ids[3].clone()]);
    assert_eq!(found("reference_prefix=100%25").await, [ids[4].clone()]);
    assert_eq!(
        found("reference_prefix=I%C3%B1").await,
        Vec::<String>::new(),
        "a prefix of other characters matches nothing"
    );
    // With the status filter, and paged with a cursor under the same filter.
    assert_eq!(
        found("reference_prefix=INV-1&status=failed").await,
        [ids[1].clone()]
    );
    let first = api
        .get("/api/v1/queues/Refs/items?reference_prefix=INV-1&limit=1")
        .await
        .expect(200)
        .clone();
    assert_eq!(ids_of(&first["items"]), [ids[1].clone()]);
    let cursor = first["next_cursor"].as_str().unwrap();
    assert_eq!(
        found(&format!("reference_prefix=INV-1&limit=1&cursor={cursor}")).await,
        [ids[0].clone()]
    );
    // Empty means no filter; both at once, or a value longer than a reference, is refused.
    assert_eq!(found("reference=&reference_prefix=").await.len(), 6);
    assert_eq!(
        api.get("/api/v1/queues/Refs/items?reference=a&reference_prefix=b")
            .await
            .error_fields(),
        fields(&["reference_prefix"])
    );
    let long = "r".repeat(101);
    assert_eq!(
        api.get(&format!(
            "/api/v1/queues/Refs/items?reference={long}&status=LATE"
        ))
        .await
        .error_fields(),
        fields(&["reference", "status"])
    );
}

async fn bulk_adds_store_every_item_or_none(db: TestDatabase) {
    let api = Api::spawn(db, |_| {}).await;
    let path = "/api/v1/queues/Bulk/items";

    // One bad item refuses the whole batch, naming it by index.
    let reply = api
        .post(
            path,
            json!({"items": [
                {"data": {"n": 0}},
                {"data": {"n": 1}, "reference": "r".repeat(101)},
                {"data": 5, "status": "LATER"},
                "not an object",
                {"queue_name": "Elsewhere"},
            ]}),
        )
        .await;
    assert_eq!(
        reply.error_fields(),
        fields(&[
            "items[1].reference",
            "items[2].data",
            "items[2].status",
            "items[3]",
            "items[4].queue_name"
        ])
    );

    // The batch's own shape.
    for (body, names) in [
        (json!({"items": []}), vec!["items"]),
        (json!({"items": {"data": 1}}), vec!["items"]),
        (json!({}), vec!["items"]),
        (json!([{"data": 1}]), vec!["body"]),
        (json!({"items": vec![json!({}); 1001]}), vec!["items"]),
    ] {
        let reply = api.post(path, body).await;
        assert_eq!(reply.error_fields(), fields(&names), "{}", reply.body);
    }
    let reply = api
        .post(
            &format!("/api/v1/queues/{}/items", "q".repeat(101)),
            json!({"items": [{}]}),
        )
        .await;
    assert_eq!(reply.error_fields(), fields(&["queue_name"]));
    assert_eq!(
        api.queue_names().await,
        Vec::<String>::new(),
        "nothing stored"
    );

    // The most a request may hold, stored together; the path names the queue.
    let ids = api
        .add_items(
            "Bulk",
            (0..1000)
                .map(|n| json!({"data": {"n": n}, "queue_name": "Bulk"}))
                .collect(),
        )
        .await;
    assert_eq!(ids.len(), 1000);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1000);
    assert_eq!(api.counts("Bulk").await, counts(1000, 0, 0, 0, 0));
    let item = api.item(&ids[999]).await;
    assert_eq!(item["data"], r#"{"n":999}"#);
    assert_eq!(item["queue_name"], "Bulk");
}

async fn unique_references_are_refused_twice(db: TestDatabase) {
    let api = Api::spawn(db, |_| {}).await;
    let key = Auth::Key(api.app.api_key("integration", &["operator"]).await);
    api.settings("Unique", json!({"unique_reference": true}))
        .await;
    let seed_post = |reference: &str| json!({"queue_name": "Unique", "reference": reference});

    let first = api
        .call(Method::POST, "/api/queue", &key, Some(&seed_post("INV-1")))
        .await;
    first.expect(201);
    let again = api
        .call(Method::POST, "/api/queue", &key, Some(&seed_post("INV-1")))
        .await;
    again.expect_error(409);

    // A batch with a used reference, or one reference twice, stores none of its items.
    let reply = api
        .post(
            "/api/v1/queues/Unique/items",
            json!({"items": [{"reference": "INV-2"}, {"reference": "INV-1"}]}),
        )
        .await;
    reply.expect_error(409);
    let reply = api
        .post(
            "/api/v1/queues/Unique/items",
            json!({"items": [{"reference": "INV-3"}, {"reference": "INV-3"}]}),
        )
        .await;
    reply.expect_error(409);
    assert_eq!(api.counts("Unique").await, counts(1, 0, 0, 0, 0));

    // Items without a reference, and new references, are still welcome.
    api.add_items(
        "Unique",
        vec![json!({}), json!({}), json!({"reference": "INV-2"})],
    )
    .await;
    assert_eq!(api.counts("Unique").await, counts(4, 0, 0, 0, 0));

    // A queue without the setting accepts duplicates.
    api.add_items(
        "Plain",
        vec![json!({"reference": "INV-1"}), json!({"reference": "INV-1"})],
    )
    .await;
    assert_eq!(api.counts("Plain").await, counts(2, 0, 0, 0, 0));
}

async fn robots_claim_the_oldest_new_items_and_report_their_outcome(db: TestDatabase) {
    let api = Api::spawn(db, |_| {}).await;
    let r1 = api.robot("robot-1").await;
    let r2 = api.robot("robot-2").await;
    // Added newest first: the claim must go by created_date, not by insertion.
    let ids = api
        .add_items(
            "Work",
            ["10:03", "10:02", "10:01"]
                .iter()
                .map(|t| json!({"created_date": format!("2025-01-01T{t}:00Z"), "data": t}))
                .collect(),
        )
        .await;
    let (newest, middle, oldest) = (&ids[0], &ids[1], &ids[2]);

    let before = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let claimed = api
        .claim("robot-1", &r1, json!({"queue_name": "Work"}))
        .await;
    let items = claimed.expect(200)["items"].clone();
    assert_eq!(
        ids_of(&items),
        [oldest.as_str()],
        "one item by default, the oldest"
    );
    let item = &items[0];
    assert_eq!(item["status"], "IN_PROGRESS");
    assert_eq!(item["robot_id"], "robot-1");
    assert_eq!(item["data"], "10:01");
    let start = instant(&item["start_date"]);
    assert!(start >= before, "start_date is the claim's time");
    assert_eq!(
        instant(&item["lease_expires_at"]) - start,
        time::Duration::seconds(300),
        "the queue's lease"
    );
    assert_eq!(item["end_date"], Value::Null);
    assert_eq!(&api.item(oldest).await, item, "the claim is stored");

    let claimed = api
        .claim("robot-2", &r2, json!({"queue_name": "Work", "limit": 5}))
        .await;
    assert_eq!(
        ids_of(&claimed.expect(200)["items"]),
        [middle.clone(), newest.clone()]
    );
    let empty = api
        .claim("robot-1", &r1, json!({"queue_name": "Work"}))
        .await;
    assert_eq!(empty.expect(200), &json!({"items": []}));
    let unknown = api
        .claim("robot-1", &r1, json!({"queue_name": "Nope"}))
        .await;
    assert_eq!(unknown.expect(200), &json!({"items": []}));
    assert_eq!(api.counts("Work").await, counts(0, 3, 0, 0, 0));

    // A robot acts only as itself, and only on the items it holds.
    api.report("robot-1", &r2, oldest, json!({"status": "DONE"}))
        .await
        .expect_error(403);
    api.claim("robot-1", &r2, json!({"queue_name": "Work"}))
        .await
        .expect_error(403);
    api.report("robot-2", &r2, oldest, json!({"status": "DONE"}))
        .await
        .expect_error(409);

    let done = api
        .report(
            "robot-1",
            &r1,
            oldest,
            json!({"status": "done", "message": "Invoice booked"}),
        )
        .await;
    let done = done.expect(200).clone();
    assert_eq!(done["status"], "DONE");
    assert_eq!(done["message"], "Invoice booked");
    assert!(instant(&done["end_date"]) >= start);
    assert_eq!(done["start_date"], item["start_date"], "start_date kept");
    assert_eq!(done["lease_expires_at"], Value::Null);
    assert_eq!(api.item(oldest).await, done);
    api.report("robot-1", &r1, oldest, json!({"status": "FAILED"}))
        .await
        .expect_error(409);

    let failed = api
        .report(
            "robot-2",
            &r2,
            middle,
            json!({"status": "FAILED", "message": "Customer unknown"}),
        )
        .await;
    let failed = failed.expect(200);
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["message"], "Customer unknown");
    assert!(failed["end_date"].is_string());
    assert_eq!(api.counts("Work").await, counts(0, 1, 1, 1, 0));

    // Bad reports and claims are named.
    for (body, names) in [
        (json!({"status": "NEW"}), vec!["status"]),
        (json!({"status": "LATER"}), vec!["status"]),
        (json!({}), vec!["status"]),
        (
            json!({"status": 1, "message": 2}),
            vec!["status", "message"],
        ),
        (
            json!({"status": "DONE", "message": "m".repeat(1001)}),
            vec!["message"],
        ),
    ] {
        let reply = api.report("robot-2", &r2, newest, body).await;
        assert_eq!(reply.error_fields(), fields(&names), "{}", reply.body);
    }
    for (body, names) in [
        (json!({}), vec!["queue_name"]),
        (json!({"queue_name": 5}), vec!["queue_name"]),
        (json!({"queue_name": "Work", "limit": 0}), vec!["limit"]),
        (json!({"queue_name": "Work", "limit": 101}), vec!["limit"]),
        (json!({"queue_name": "Work", "limit": "2"}), vec!["limit"]),
        (json!({"queue_name": ""}), vec!["queue_name"]),
    ] {
        let reply = api.claim("robot-2", &r2, body).await;
        assert_eq!(reply.error_fields(), fields(&names), "{}", reply.body);
    }
    api.report("robot-2", &r2, "not-a-uuid", json!({"status": "DONE"}))
        .await
        .expect_error(404);
    assert_eq!(api.item(newest).await["status"], "IN_PROGRESS");
}

async fn operators_change_statuses_under_the_item_rules(db: TestDatabase) {
    let api = Api::spawn(db, |_| {}).await;
    let operator = Auth::Key(api.app.api_key("ops", &["operator"]).await);
    let ids = api
        .add_items(
            "Ops",
            vec![json!({"status": "FAILED"}), json!({"status": "DONE"})],
        )
        .await;
    let set = |id: &str, body: Value| {
        let api = &api;
        let path = format!("/api/v1/queue-items/{id}/status");
        let operator = operator.clone();
        async move { api.call(Method::PUT, &path, &operator, Some(&body)).await }
    };

    // A FAILED item goes back to NEW to be retried, and can be claimed again.
    let retried = set(
        &ids[0],
        json!({"status": "new", "message": "retry by hand"}),
    )
    .await;
    let retried = retried.expect(200);
    assert_eq!(retried["status"], "NEW");
    assert_eq!(retried["message"], "retry by hand");
    assert_eq!(retried["end_date"], Value::Null);
    let r1 = api.robot("r1").await;
    let claimed = api.claim("r1", &r1, json!({"queue_name": "Ops"})).await;
    assert_eq!(ids_of(&claimed.expect(200)["items"]), [ids[0].clone()]);

    // A DONE item is final.
    let reply = set(&ids[1], json!({"status": "NEW"})).await;
    reply.expect_error(409);
    assert_eq!(api.item(&ids[1]).await["status"], "DONE");

    let reply = set(&ids[1], json!({"status": "LATER"})).await;
    assert_eq!(reply.error_fields(), fields(&["status"]));
    let reply = set(
        "00000000-0000-0000-0000-000000000000",
        json!({"status": "NEW"}),
    )
    .await;
    reply.expect_error(404);
    // An operator may finish an item a robot holds (e.g. a robot that died).
    let reply = set(&ids[0], json!({"status": "ABANDONED"})).await;
    assert_eq!(reply.expect(200)["status"], "ABANDONED");
    // …and the robot's late report is then refused.
    api.report("r1", &r1, &ids[0], json!({"status": "DONE"}))
        .await
        .expect_error(409);
}

async fn expired_leases_go_back_to_new_then_are_abandoned(db: TestDatabase) {
    let api = Api::spawn(db, |config| config.engine_tick_ms = 50).await;
    let r1 = api.robot("r1").await;
    api.settings("Leases", json!({"lease_seconds": 1, "max_retries": 1}))
        .await;
    let id = api.add_items("Leases", vec![json!({})]).await.remove(0);

    let wait_for = |status: &'static str| {
        let api = &api;
        let id = id.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let item = api.item(&id).await;
                if item["status"] == status {
                    return item;
                }
                assert!(
                    Instant::now() < deadline,
                    "item never became {status}: {item}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    let claimed = api.claim("r1", &r1, json!({"queue_name": "Leases"})).await;
    assert_eq!(ids_of(&claimed.expect(200)["items"]), [id.as_str()]);
    let item = wait_for("NEW").await;
    assert_eq!(item["retry_count"], 1);
    assert_eq!(item["robot_id"], Value::Null);
    assert_eq!(item["start_date"], Value::Null);
    assert_eq!(item["lease_expires_at"], Value::Null);
    // The robot whose lease lapsed may no longer report.
    api.report("r1", &r1, &id, json!({"status": "DONE"}))
        .await
        .expect_error(409);

    let claimed = api.claim("r1", &r1, json!({"queue_name": "Leases"})).await;
    assert_eq!(ids_of(&claimed.expect(200)["items"]), [id.as_str()]);
    let item = wait_for("ABANDONED").await;
    assert_eq!(item["retry_count"], 1, "max_retries spent");
    assert!(item["end_date"].is_string());
    assert_eq!(item["robot_id"], Value::Null);
    assert_eq!(api.counts("Leases").await, counts(0, 0, 0, 0, 1));
}

async fn concurrent_claimers_never_share_an_item(db: TestDatabase) {
    const ITEMS: usize = 200;
    const ROBOTS: usize = 4;
    const CLAIMERS_PER_ROBOT: usize = 4;
    let api = Arc::new(Api::spawn(db, |config| config.rate_limits = false).await);
    let ids = api
        .add_items(
            "Race",
            (0..ITEMS).map(|n| json!({"data": n.to_string()})).collect(),
        )
        .await;
    let mut robots = Vec::new();
    for r in 0..ROBOTS {
        let robot_id = format!("racer-{r}");
        let auth = api.robot(&robot_id).await;
        robots.push((robot_id, auth));
    }

    let mut claimers = tokio::task::JoinSet::new();
    for (robot_id, auth) in &robots {
        for _ in 0..CLAIMERS_PER_ROBOT {
            let api = api.clone();
            let robot_id = robot_id.clone();
            let auth = auth.clone();
            claimers.spawn(async move {
                let mut claimed = Vec::new();
                loop {
                    let reply = api
                        .claim(&robot_id, &auth, json!({"queue_name": "Race", "limit": 3}))
                        .await;
                    let items = reply.expect(200)["items"].clone();
                    if items.as_array().unwrap().is_empty() {
                        return claimed;
                    }
                    for item in items.as_array().unwrap() {
                        assert_eq!(item["robot_id"], robot_id.as_str());
                        claimed.push((item["id"].as_str().unwrap().to_owned(), robot_id.clone()));
                    }
                }
            });
        }
    }
    let mut all = Vec::new();
    while let Some(claimed) = claimers.join_next().await {
        for (id, robot) in claimed.unwrap() {
            assert_eq!(
                api.item(&id).await["robot_id"],
                robot.as_str(),
                "the stored holder"
            );
            all.push(id);
        }
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), ITEMS, "no item was handed out twice");
    assert_eq!(distinct, ids.iter().collect(), "every item was claimed");
    assert_eq!(api.counts("Race").await, counts(0, ITEMS as u64, 0, 0, 0));
}

async fn the_permission_matrix_applies(db: TestDatabase) {
    let api = Api::spawn(db, |_| {}).await;
    let viewer = Auth::Bearer(api.app.user_token("viewer", &["viewer"]).await);
    let operator = Auth::Bearer(api.app.user_token("operator", &["operator"]).await);
    let developer = Auth::Key(api.app.api_key("dev", &["developer"]).await);
    let robot = api.robot("r1").await;
    let id = api.add_items("Perm", vec![json!({})]).await.remove(0);
    let item_path = format!("/api/v1/queue-items/{id}");
    let status_path = format!("{item_path}/status");
    let new_items = json!({"items": [{}]});
    let status = json!({"status": "DONE"});

    // Reading: every role; never anonymous; never a robot token.
    for path in [
        "/api/v1/queues",
        "/api/v1/queues/Perm",
        "/api/v1/queues/Perm/items",
        &item_path,
    ] {
        api.call(Method::GET, path, &viewer, None).await.expect(200);
        api.call(Method::GET, path, &Auth::None, None)
            .await
            .expect_error(401);
        api.call(Method::GET, path, &robot, None)
            .await
            .expect_error(403);
    }

    // Adding work and changing statuses: operators and up.
    let add = "/api/v1/queues/Perm/items";
    api.call(Method::POST, add, &viewer, Some(&new_items))
        .await
        .expect_error(403);
    api.call(Method::POST, add, &operator, Some(&new_items))
        .await
        .expect(201);
    api.call(Method::PUT, &status_path, &viewer, Some(&status))
        .await
        .expect_error(403);
    api.call(Method::PUT, &status_path, &robot, Some(&status))
        .await
        .expect_error(403);

    // Queue settings: developers and up.
    let settings = json!({"max_retries": 5});
    api.call(
        Method::PUT,
        "/api/v1/queues/Perm",
        &operator,
        Some(&settings),
    )
    .await
    .expect_error(403);
    let queue = api
        .call(
            Method::PUT,
            "/api/v1/queues/Perm",
            &developer,
            Some(&settings),
        )
        .await;
    assert_eq!(queue.expect(200)["max_retries"], 5);

    // The robot protocol: the robot itself, or an operator acting for it (ROBOT_AUTH_ENABLED off).
    let claim = json!({"queue_name": "Perm"});
    api.claim("r1", &viewer, claim.clone())
        .await
        .expect_error(403);
    api.claim("r1", &Auth::None, claim.clone())
        .await
        .expect_error(401);
    let claimed = api.claim("r1", &operator, claim.clone()).await;
    assert_eq!(claimed.expect(200)["items"].as_array().unwrap().len(), 1);
    // Acting for a robot nobody created is refused.
    api.claim("no-such-robot", &operator, claim.clone())
        .await
        .expect_error(404);
    api.call(Method::PUT, &status_path, &operator, Some(&status))
        .await
        .expect(200);

    // Wrong methods are 405s.
    api.call(Method::DELETE, "/api/v1/queues", &operator, None)
        .await
        .expect_error(405);
    api.call(
        Method::GET,
        "/api/v1/robots/r1/queue-items/claim",
        &robot,
        None,
    )
    .await
    .expect_error(405);
}

/// Viewers paging a big queue without a status filter must not make each page read the whole
/// queue: a page reads its items from the index `queue_items_listed` and stops. PostgreSQL's own
/// index statistics count what the pages read (SQLite's plan is checked by the storage contract
/// suite); counting is exact, unlike timing. Before the index, each page read and sorted every
/// item of the queue.
#[tokio::test(flavor = "multi_thread")]
async fn paging_a_big_queue_reads_a_page_of_its_index_not_the_queue() {
    const ITEMS: usize = 5_000;
    const PAGES: usize = 5;
    const LIMIT: usize = 50;
    let api = Api::spawn(TestDatabase::postgres().await, |_| {}).await;
    let start = OffsetDateTime::from_unix_timestamp(1_735_725_600).unwrap();
    let statuses = ["NEW", "DONE", "FAILED", "DONE", "DONE"];
    for batch in 0..ITEMS / 1_000 {
        let items = (batch * 1_000..(batch + 1) * 1_000)
            .map(|n| {
                let created = start + time::Duration::seconds(i64::try_from(n).unwrap());
                json!({
                    "created_date": created.format(&Rfc3339).unwrap(),
                    "status": statuses[n % statuses.len()],
                })
            })
            .collect();
        api.add_items("Big", items).await;
    }
    let mut admin = AsyncPgConnection::establish(api.app.database().url())
        .await
        .unwrap();
    // The statistics a database in use has (autovacuum's ANALYZE), so the plan is its plan.
    admin.batch_execute("ANALYZE").await.unwrap();

    let mut path = format!("/api/v1/queues/Big/items?limit={LIMIT}");
    for _ in 0..PAGES {
        let page = api.get(&path).await.expect(200).clone();
        assert_eq!(ids_of(&page["items"]).len(), LIMIT);
        let cursor = page["next_cursor"].as_str().unwrap();
        path = format!("/api/v1/queues/Big/items?limit={LIMIT}&cursor={cursor}");
    }

    // A backend reports its statistics when it exits: end the server's, then read them until
    // every page's walk is counted. A page asks for one item more than it shows (to know whether
    // another page follows) and reads one entry past that to end its walk.
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
    let bound = (LIMIT + 2) * PAGES;
    let check = format!(
        "DO $$ DECLARE scans BIGINT; entries BIGINT; BEGIN \
           PERFORM pg_stat_clear_snapshot(); \
           SELECT idx_scan, idx_tup_read INTO scans, entries FROM pg_stat_user_indexes \
             WHERE indexrelname = 'queue_items_listed'; \
           IF scans IS NULL OR scans < {PAGES} THEN \
             RAISE EXCEPTION 'counted % walks so far', scans; END IF; \
           IF entries > {bound} THEN RAISE EXCEPTION \
             '{PAGES} pages of {LIMIT} read % entries of queue_items_listed in % walks \
              (at most {bound} expected, the queue holds {ITEMS})', entries, scans; END IF; \
         END $$"
    );
    let mut outcome = admin.batch_execute(&check).await;
    for _ in 0..100 {
        match &outcome {
            Err(e) if e.to_string().contains("walks so far") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                outcome = admin.batch_execute(&check).await;
            }
            _ => break,
        }
    }
    outcome.unwrap();
}
