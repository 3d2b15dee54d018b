//! `SetData`: outputs its `config.data` as given, the simplest way to put a value into a
//! workflow (and into its agent's messages).

use super::{NodeContext, NodeError, NodeResult, field};

pub fn run(cx: NodeContext<'_>) -> NodeResult {
    field(cx.config, "data")
        .cloned()
        .map(Some)
        .ok_or_else(|| NodeError::new("config.data is required"))
}

#[cfg(test)]
mod tests {
    use super::super::NodeKind;
    use super::super::testing::run_node;
    use serde_json::json;

    #[tokio::test]
    async fn outputs_its_data() {
        let data = json!({"customer": "ACME", "items": [1, 2]});
        let out = run_node(NodeKind::SetData, json!({ "data": data.clone() })).await;
        assert_eq!(out, Ok(Some(data)));
        assert!(run_node(NodeKind::SetData, json!({})).await.is_err());
    }
}
