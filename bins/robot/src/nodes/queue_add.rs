//! `QueueAdd`: adds one item (`config.data`, optional `config.reference`) to the queue
//! `config.queue_name` with `POST /api/v1/queues/{queue_name}/items`, and outputs
//! `{"queue_name", "item_id"}`.
//!
//! Robot tokens hold no role and the robot protocol has no call that adds items, so this node
//! needs an operator's API key given to the robot (`--api-key`); without one it fails and says so.
//! The key is a setting of the robot, never of the workflow, so it is not stored with graphs.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{NodeContext, NodeError, NodeResult, field, required_string, string};
use crate::client::describe;

const TIMEOUT: Duration = Duration::from_secs(30);

pub const NO_API_KEY: &str = "QueueAdd needs an API key with the operator role: start the robot \
                              with --api-key (BATON_ROBOT_API_KEY). Robot tokens hold no role, \
                              and the robot protocol has no call that adds queue items";

pub async fn run(cx: NodeContext<'_>) -> NodeResult {
    let queue = required_string(cx.config, "queue_name")?;
    let Some(key) = &cx.services.api_key else {
        return Err(NodeError::new(NO_API_KEY));
    };
    let mut item = Map::new();
    if let Some(data) = field(cx.config, "data") {
        item.insert("data".into(), data.clone());
    }
    if let Some(reference) = string(cx.config, "reference")? {
        item.insert("reference".into(), reference.into());
    }
    let mut url = cx.services.server.clone();
    url.path_segments_mut()
        .map_err(|()| NodeError::new("the server URL cannot take a path"))?
        .pop_if_empty()
        .extend(["api", "v1", "queues", queue, "items"]);
    let response = cx
        .services
        .http
        .post(url)
        .header("X-API-Key", &key.0)
        .json(&json!({ "items": [item] }))
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|e| NodeError::new(format!("adding the item failed: {}", describe(&e))))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let detail = body
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or("no detail");
        return Err(NodeError::new(format!(
            "the server refused the item: HTTP {}: {detail}",
            status.as_u16()
        )));
    }
    let item_id = body
        .get("ids")
        .and_then(|ids| ids.get(0))
        .cloned()
        .unwrap_or(Value::Null);
    Ok(Some(json!({ "queue_name": queue, "item_id": item_id })))
}

#[cfg(test)]
mod tests {
    use super::super::NodeKind;
    use super::super::testing::run_node;
    use serde_json::json;

    #[tokio::test]
    async fn without_an_api_key_it_says_what_it_needs() {
        let error = run_node(NodeKind::QueueAdd, json!({"queue_name": "q", "data": {}}))
            .await
            .unwrap_err();
        assert_eq!(error.message, super::NO_API_KEY);
        let error = run_node(NodeKind::QueueAdd, json!({})).await.unwrap_err();
        assert_eq!(error.message, "config.queue_name is required");
    }
}
