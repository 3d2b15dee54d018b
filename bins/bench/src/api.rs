//! The few API calls that set a measurement up: logging in, creating an API key, robots and a
//! workflow, and reading counts back. Each checks its status and names the call when it fails.

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::server::{ADMIN_PASSWORD, Server};

/// A client of one server, acting with whichever credential a call is given.
pub struct Api<'a> {
    server: &'a Server,
    client: reqwest::Client,
}

impl<'a> Api<'a> {
    pub fn new(server: &'a Server) -> Self {
        Api {
            server,
            client: reqwest::Client::new(),
        }
    }

    /// An access token of the bootstrap admin.
    pub async fn admin_token(&self) -> anyhow::Result<String> {
        let body = self
            .send(
                "logging in as admin",
                200,
                self.client
                    .post(self.server.url("/api/v1/auth/login"))
                    .json(&json!({"username": "admin", "password": ADMIN_PASSWORD})),
            )
            .await?;
        text_field(&body, "access_token")
    }

    /// A new API key with `roles`, created by the admin.
    pub async fn api_key(&self, admin: &str, name: &str, roles: &[&str]) -> anyhow::Result<String> {
        let body = self
            .send(
                "creating an API key",
                201,
                self.client
                    .post(self.server.url("/api/v1/api-keys"))
                    .bearer_auth(admin)
                    .json(&json!({"name": name, "roles": roles})),
            )
            .await?;
        text_field(&body, "key")
    }

    /// A new robot's token.
    pub async fn robot(&self, admin: &str, robot_id: &str) -> anyhow::Result<String> {
        let body = self
            .send(
                "creating a robot",
                201,
                self.client
                    .post(self.server.url("/api/v1/robots"))
                    .bearer_auth(admin)
                    .json(&json!({"robot_id": robot_id})),
            )
            .await?;
        text_field(&body, "token")
    }

    /// A new two-node workflow's id (submitting it runs one job, as `manual` submissions do).
    pub async fn workflow(&self, admin: &str, name: &str) -> anyhow::Result<String> {
        let body = self
            .send(
                "submitting a workflow",
                200,
                self.client
                    .post(self.server.url("/api/v1/workflows"))
                    .bearer_auth(admin)
                    .json(&json!({
                        "workflow_name": name,
                        "workflow_json": {
                            "nodes": [
                                {"id": "start", "type": "StartNode"},
                                {"id": "end", "type": "EndNode"}
                            ],
                            "connections": [{"from": "start", "to": "end"}]
                        }
                    })),
            )
            .await?;
        text_field(&body, "workflow_id")
    }

    /// How many items `queue` holds, over every status (0 for a queue that does not exist).
    pub async fn queue_total(&self, key: &str, queue: &str) -> anyhow::Result<u64> {
        let body = self
            .send(
                "listing queues",
                200,
                self.client
                    .get(self.server.url("/api/v1/queues"))
                    .header("X-API-Key", key),
            )
            .await?;
        let queues = body
            .as_array()
            .context("GET /api/v1/queues is not a list")?;
        let Some(found) = queues.iter().find(|q| q["queue_name"] == queue) else {
            return Ok(0);
        };
        let counts = found["counts"]
            .as_object()
            .context("a queue without counts")?;
        Ok(counts.values().filter_map(Value::as_u64).sum())
    }

    async fn send(
        &self,
        what: &str,
        expected: u16,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<Value> {
        let response = request.send().await.with_context(|| what.to_owned())?;
        let status = response.status().as_u16();
        let text = response.text().await.with_context(|| what.to_owned())?;
        if status != expected {
            bail!("{what}: HTTP {status} (expected {expected}): {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("{what}: the answer is not JSON"))
    }
}

fn text_field(body: &Value, name: &str) -> anyhow::Result<String> {
    body[name]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no `{name}` string in {body}"))
}
