//! `Log`: writes `config.message` to the robot's log (at `config.level`, default `info`) and
//! outputs `{"message": …}`, so the message is also kept as the agent's message on the server.

use serde_json::{Value, json};

use super::{NodeContext, NodeError, NodeResult, field, string};

pub fn run(cx: NodeContext<'_>) -> NodeResult {
    let message =
        field(cx.config, "message").ok_or_else(|| NodeError::new("config.message is required"))?;
    let text = match message {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let (job, node) = (cx.job_id, cx.node_id);
    match string(cx.config, "level")?.unwrap_or("info") {
        "debug" => tracing::debug!(job, node, "{text}"),
        "info" => tracing::info!(job, node, "{text}"),
        "warn" | "warning" => tracing::warn!(job, node, "{text}"),
        "error" => tracing::error!(job, node, "{text}"),
        _ => {
            return Err(NodeError::new(
                "config.level must be one of debug, info, warn, error",
            ));
        }
    }
    Ok(Some(json!({ "message": message })))
}

#[cfg(test)]
mod tests {
    use super::super::NodeKind;
    use super::super::testing::run_node;
    use serde_json::json;

    #[tokio::test]
    async fn outputs_the_message() {
        let out = run_node(NodeKind::Log, json!({"message": "hello"})).await;
        assert_eq!(out, Ok(Some(json!({"message": "hello"}))));
        let out = run_node(NodeKind::Log, json!({"message": {"n": 1}, "level": "warn"})).await;
        assert_eq!(out, Ok(Some(json!({"message": {"n": 1}}))));
    }

    #[tokio::test]
    async fn needs_a_message_and_a_known_level() {
        let error = run_node(NodeKind::Log, json!({})).await.unwrap_err();
        assert_eq!(error.message, "config.message is required");
        let error = run_node(NodeKind::Log, json!({"message": "m", "level": "loud"}))
            .await
            .unwrap_err();
        assert!(error.message.contains("config.level"));
    }
}
