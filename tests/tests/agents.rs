//! ActiveWorkflow's agents and messages over HTTP against the real server (docs/workflows.md):
//! agents mirror a workflow's nodes with their sources; messages list newest first, `after`
//! strictly after, `limit` the latest n; a message shows its payload; expired messages are
//! hidden at once and purged by the engine.
//!
//! Messages are written through the storage port, as the robot protocol will write them, with
//! the expiry their node's `keep_messages_for` gives. Every flow runs on SQLite and PostgreSQL.

// A test crate: a panic is a failed assertion with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use baton_domain::agent::Message;
use baton_domain::ids::{AgentId, MessageId};
use baton_domain::ports::MessageRepository;
use baton_domain::workflow::WorkflowGraph;
use baton_domain::{IdGenerator, Timestamp, UuidV7Generator};
use baton_storage::Db;
use baton_storage::testing::TestDatabase;
use baton_tests::TestApp;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Runs each named `async fn(TestDatabase)` on a fresh SQLite and a fresh PostgreSQL database.
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
    agents_mirror_the_nodes_and_their_sources,
    messages_list_newest_first_after_and_limit_as_the_seed_says,
    expired_messages_are_hidden_at_once,
);

/// The graph of every flow: Retrieve → Email, as in the seed's example, plus a node whose
/// messages never expire.
fn graph() -> Value {
    json!({
        "nodes": [
            {"id": "fetch", "type": "Agents::WebsiteAgent", "name": "Retrieve",
             "config": {"keep_messages_for": 86400}},
            {"id": "mail", "type": "Agents::EmailAgent", "name": "Email", "disabled": true},
            {"id": "archive", "type": "Log", "config": {"keep_messages_for": 0}}
        ],
        "connections": [{"from": "fetch", "to": "mail"}, {"from": "fetch", "to": "archive"},
                        {"from": "mail", "to": "archive"}]
    })
}

struct Api {
    app: TestApp,
    token: String,
    db: Db,
}

impl Api {
    async fn spawn(db: TestDatabase) -> Self {
        let app = TestApp::spawn(db).await;
        let token = app.admin_token().await;
        let db = app.database().connect().await;
        Api { app, token, db }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .app
            .client
            .get(self.app.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        baton_tests::json(response).await
    }

    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn error(&self, path: &str, status: u16) -> Value {
        let (got, body) = self.get(path).await;
        assert_eq!(got, status, "GET {path}: {body}");
        assert!(
            body["error"].is_string() && body["detail"].is_string(),
            "{body}"
        );
        body
    }

    /// Submits the graph and returns the workflow id.
    async fn submit(&self) -> String {
        let response = self
            .app
            .client
            .post(self.app.url("/api/v1/workflows"))
            .bearer_auth(&self.token)
            .json(&json!({"workflow_name": "News", "workflow_json": graph()}))
            .send()
            .await
            .unwrap();
        let (status, body) = baton_tests::json(response).await;
        assert_eq!(status, 200, "{body}");
        body["workflow_id"].as_str().unwrap().to_owned()
    }

    /// The workflow's agents by node id: (agent id, keep_messages_for of the node).
    async fn agent(&self, node: &str) -> (AgentId, Option<time::Duration>) {
        let agents = self.ok("/api/v1/agents").await;
        let agent = agents
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["node_id"] == node)
            .unwrap_or_else(|| panic!("no agent for node {node} in {agents}"));
        let graph = WorkflowGraph::parse(graph()).unwrap();
        let keep = graph.node(node).unwrap().keep_messages_for();
        (agent["id"].as_str().unwrap().parse().unwrap(), keep)
    }

    /// Stores one message of `agent` created at `created`, expiring as its node says.
    async fn emit(
        &self,
        (agent, keep): (AgentId, Option<time::Duration>),
        created: Timestamp,
        payload: Value,
    ) -> Message {
        let id = MessageId::from_uuid(UuidV7Generator.new_uuid());
        let message = Message::new(id, agent, None, payload, keep, created).unwrap();
        self.db
            .insert_messages(std::slice::from_ref(&message))
            .await
            .unwrap();
        message
    }
}

fn now() -> Timestamp {
    baton_domain::clock::truncate_to_micros(OffsetDateTime::now_utc())
}

fn seconds(n: i64) -> time::Duration {
    time::Duration::seconds(n)
}

fn instant(text: &Value) -> Timestamp {
    OffsetDateTime::parse(text.as_str().unwrap(), &Rfc3339).unwrap()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn agents_mirror_the_nodes_and_their_sources(db: TestDatabase) {
    let api = Api::spawn(db).await;
    let workflow = api.submit().await;
    let agents = api.ok("/api/v1/agents").await;
    let agents = agents.as_array().unwrap();
    assert_eq!(agents.len(), 3);
    let seed_keys = [
        "id",
        "name",
        "type",
        "disabled",
        "messages_count",
        "sources",
    ];
    for agent in agents {
        let keys: BTreeSet<&str> = agent
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(seed_keys.iter().all(|k| keys.contains(k)), "{agent}");
        assert_eq!(agent["workflow_id"], workflow.as_str());
    }
    let (retrieve, email, archive) = (&agents[0], &agents[1], &agents[2]);
    assert_eq!(retrieve["name"], "Retrieve");
    assert_eq!(retrieve["type"], "Agents::WebsiteAgent");
    assert_eq!(retrieve["disabled"], false);
    assert_eq!(retrieve["messages_count"], 0);
    assert_eq!(retrieve["sources"], json!([]));
    assert_eq!(email["name"], "Email");
    assert_eq!(email["disabled"], true);
    assert_eq!(email["sources"], json!([{"id": retrieve["id"]}]));
    assert_eq!(
        archive["name"], "archive",
        "a node without a name shows its id"
    );
    assert_eq!(
        archive["sources"],
        json!([{"id": retrieve["id"]}, {"id": email["id"]}])
    );

    // One agent, and the workflow's agents, in the same shape.
    let id = email["id"].as_str().unwrap();
    assert_eq!(api.ok(&format!("/api/v1/agents/{id}")).await, *email);
    let detail = api.ok(&format!("/api/v1/workflows/{workflow}")).await;
    assert_eq!(detail["agents"], json!(agents));

    // Unknown ids and ids that are not UUIDs are 404.
    api.error("/api/v1/agents/00000000-0000-4000-8000-000000000001", 404)
        .await;
    api.error("/api/v1/agents/1", 404).await;
    api.error("/api/v1/agents/1/messages", 404).await;
    api.error("/api/v1/messages/1", 404).await;
    api.error("/api/v1/messages/00000000-0000-4000-8000-000000000001", 404)
        .await;

    // Deleting the workflow removes its agents.
    let response = api
        .app
        .client
        .delete(api.app.url(&format!("/api/v1/workflows/{workflow}")))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(api.ok("/api/v1/agents").await, json!([]));
    api.error(&format!("/api/v1/agents/{id}"), 404).await;
}

async fn messages_list_newest_first_after_and_limit_as_the_seed_says(db: TestDatabase) {
    let api = Api::spawn(db).await;
    api.submit().await;
    let fetch = api.agent("fetch").await;
    let start = now() - seconds(600);
    let mut emitted = Vec::new();
    for i in 0..5 {
        let created = start + seconds(i * 10) + time::Duration::microseconds(123_456);
        emitted.push(
            api.emit(
                fetch,
                created,
                json!({"title": format!("news {i}"), "author": "John Snow"}),
            )
            .await,
        );
    }
    let newest_first: Vec<String> = emitted.iter().rev().map(|m| m.id.to_string()).collect();
    let agent = fetch.0;
    let path = format!("/api/v1/agents/{agent}/messages");

    // All, newest first, in the seed's shape with the node's expiry (one day).
    let all = api.ok(&path).await;
    assert_eq!(ids(&all), newest_first);
    let first = &all[0];
    let keys: BTreeSet<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in ["id", "agent_id", "created_at", "expires_at"] {
        assert!(keys.contains(key), "{first}");
    }
    assert!(
        !keys.contains("payload"),
        "listings carry no payload: {first}"
    );
    assert_eq!(first["agent_id"], agent.to_string());
    assert_eq!(instant(&first["created_at"]), emitted[4].created_at);
    assert_eq!(
        instant(&first["expires_at"]) - instant(&first["created_at"]),
        time::Duration::days(1)
    );
    assert_eq!(
        api.ok(&format!("/api/v1/agents/{agent}")).await["messages_count"],
        5
    );

    // limit: the latest n.
    assert_eq!(
        ids(&api.ok(&format!("{path}?limit=2")).await),
        newest_first[..2]
    );
    assert_eq!(api.ok(&format!("{path}?limit=0")).await, json!([]));
    assert_eq!(
        ids(&api.ok(&format!("{path}?limit=99")).await),
        newest_first
    );

    // after: strictly after, in any offset; with limit, the latest of those.
    let third = emitted[2].created_at;
    let utc = third.format(&Rfc3339).unwrap();
    assert_eq!(
        ids(&api.ok(&format!("{path}?after={utc}")).await),
        newest_first[..2]
    );
    let pacific = third
        .to_offset(time::macros::offset!(-8))
        .format(&Rfc3339)
        .unwrap();
    let encoded = pacific.replace('+', "%2B");
    assert_eq!(
        ids(&api.ok(&format!("{path}?after={encoded}")).await),
        newest_first[..2]
    );
    // The seed's own spelling has a one-digit offset hour: `…-8:00`.
    let seed_style = pacific.replace("-08:00", "-8:00");
    assert_eq!(
        ids(&api.ok(&format!("{path}?limit=1&after={seed_style}")).await),
        newest_first[..1]
    );
    let just_before = (third - time::Duration::microseconds(1))
        .format(&Rfc3339)
        .unwrap();
    assert_eq!(
        ids(&api.ok(&format!("{path}?after={just_before}")).await),
        newest_first[..3]
    );

    // Bad parameters are refused by name.
    for (query, field) in [
        ("limit=-1", "limit"),
        ("limit=many", "limit"),
        ("after=yesterday", "after"),
    ] {
        let body = api.error(&format!("{path}?{query}"), 400).await;
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }

    // One message, with its payload.
    let id = emitted[1].id;
    let message = api.ok(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(message["id"], id.to_string());
    assert_eq!(message["agent_id"], agent.to_string());
    assert_eq!(
        message["payload"],
        json!({"title": "news 1", "author": "John Snow"})
    );
    assert_eq!(instant(&message["created_at"]), emitted[1].created_at);

    // A node with keep_messages_for 0 keeps its messages forever: expires_at is null.
    let archive = api.agent("archive").await;
    let kept = api.emit(archive, now(), json!("kept")).await;
    let message = api.ok(&format!("/api/v1/messages/{}", kept.id)).await;
    assert_eq!(message["expires_at"], Value::Null);
    assert_eq!(message["payload"], "kept");
}

async fn expired_messages_are_hidden_at_once(db: TestDatabase) {
    let api = Api::spawn(db).await;
    api.submit().await;
    let fetch = api.agent("fetch").await;
    // Created two days ago: its one-day life is over.
    let expired = api
        .emit(fetch, now() - time::Duration::days(2), json!(1))
        .await;
    let live = api.emit(fetch, now() - seconds(5), json!(2)).await;
    let agent = fetch.0;
    let listed = api.ok(&format!("/api/v1/agents/{agent}/messages")).await;
    assert_eq!(ids(&listed), vec![live.id.to_string()]);
    assert_eq!(
        api.ok(&format!("/api/v1/agents/{agent}")).await["messages_count"],
        1
    );
    api.error(&format!("/api/v1/messages/{}", expired.id), 404)
        .await;
    api.ok(&format!("/api/v1/messages/{}", live.id)).await;
}

/// The engine deletes expired messages: the row is gone, not only hidden (read "as of" a time
/// before its expiry to see the difference).
#[tokio::test(flavor = "multi_thread")]
async fn the_engine_purges_expired_messages() {
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| c.engine_tick_ms = 20).await;
    let api = Api {
        token: app.admin_token().await,
        db: app.database().connect().await,
        app,
    };
    api.submit().await;
    let fetch = api.agent("fetch").await;
    let created = now() - time::Duration::days(2);
    let expired = api.emit(fetch, created, json!(1)).await;
    let live = api.emit(fetch, now(), json!(2)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while api.db.get_message(expired.id, created).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the expired message was not purged within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.db.get_message(live.id, now()).await.unwrap();
}
