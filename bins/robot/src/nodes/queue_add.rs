//! `QueueAdd`: adds one item (`config.data`, optional `config.reference`) to the queue
//! `config.queue_name` with `POST /api/v1/queues/{queue_name}/items`, and outputs
//! `{"queue_name", "item_id"}`.
//!
//! A job runs again from its first node when its robot stopped or crashed mid-job, so this node
//! may add an item its earlier attempt already added. In a queue with unique references
//! (`unique_reference`), a rerun (attempt above 1) whose reference is answered 409 (taken) counts
//! the item as added by that earlier attempt: the node outputs
//! `{"queue_name", "item_id": null, "reference", "repeated": true}` instead of failing. A first
//! attempt still fails on a taken reference, since nothing of this job can have added it.
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
    let reference = string(cx.config, "reference")?;
    if let Some(reference) = reference {
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
    if let Some(reference) = reference.filter(|_| repeated(status, cx.attempt)) {
        return Ok(Some(json!({
            "queue_name": queue,
            "item_id": null,
            "reference": reference,
            "repeated": true,
        })));
    }
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

/// Whether a refused item with a reference was added by an earlier attempt of the job: its
/// reference is taken (409) and the job ran before.
fn repeated(status: reqwest::StatusCode, attempt: u32) -> bool {
    status == reqwest::StatusCode::CONFLICT && attempt > 1
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run_in_attempt, run_node, serve_once, services};
    use super::super::{NodeKind, Secret};
    use reqwest::Url;
    use serde_json::json;

    const TAKEN: &str = r#"{"error":"Conflict","detail":"the reference r-1 is already used"}"#;

    /// Runs the node against a server that answers `status` with `body`, in `attempt`;
    /// returns its result and the request the server received.
    async fn add_against(
        status: u16,
        body: &'static str,
        config: serde_json::Value,
        attempt: u32,
    ) -> (super::NodeResult, String) {
        let (url, request) = serve_once(status, body).await;
        let mut services = services();
        services.server = Url::parse(&url).unwrap();
        services.api_key = Some(Secret("key".into()));
        let result = run_in_attempt(NodeKind::QueueAdd, &services, config, attempt).await;
        (result, request.await.unwrap())
    }

    #[tokio::test]
    async fn adds_the_item_with_its_reference() {
        let (result, request) = add_against(
            201,
            r#"{"ids":["i-1"]}"#,
            json!({"queue_name": "q", "data": {"n": 1}, "reference": "r-1"}),
            1,
        )
        .await;
        assert_eq!(
            result,
            Ok(Some(json!({"queue_name": "q", "item_id": "i-1"})))
        );
        assert!(
            request.starts_with("POST /path/api/v1/queues/q/items"),
            "{request}"
        );
        assert!(request.to_ascii_lowercase().contains("x-api-key: key"));
        assert!(
            request.ends_with(r#"{"items":[{"data":{"n":1},"reference":"r-1"}]}"#),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_rerun_counts_its_taken_reference_as_added_before() {
        let config = json!({"queue_name": "q", "data": {}, "reference": "r-1"});
        let (result, _) = add_against(409, TAKEN, config, 2).await;
        assert_eq!(
            result,
            Ok(Some(
                json!({"queue_name": "q", "item_id": null, "reference": "r-1", "repeated": true})
            ))
        );
    }

    #[tokio::test]
    async fn a_first_run_fails_on_a_taken_reference() {
        let config = json!({"queue_name": "q", "data": {}, "reference": "r-1"});
        let (result, _) = add_against(409, TAKEN, config, 1).await;
        assert_eq!(
            result.unwrap_err().message,
            "the server refused the item: HTTP 409: the reference r-1 is already used"
        );
    }

    #[tokio::test]
    async fn a_rerun_without_a_reference_fails_on_a_conflict() {
        let (result, _) = add_against(409, TAKEN, json!({"queue_name": "q", "data": {}}), 3).await;
        assert!(result.is_err(), "{result:?}");
    }

    #[tokio::test]
    async fn a_rerun_still_fails_on_other_refusals() {
        let config = json!({"queue_name": "q", "data": {}, "reference": "r-1"});
        let (result, _) = add_against(
            400,
            r#"{"error":"Bad Request","detail":"data is too long"}"#,
            config,
            2,
        )
        .await;
        assert!(result.is_err(), "{result:?}");
    }

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
