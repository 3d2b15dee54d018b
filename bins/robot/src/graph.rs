//! A job's `workflow_json` as the steps the robot runs: its nodes in topological order.
//!
//! The server validated the graph when the workflow was stored, but the robot reads it again
//! on its own terms: a robot is written against the protocol, not against one server's
//! validation, and it must refuse a graph it cannot run before running half of it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde_json::{Map, Value};

use crate::nodes::NodeKind;

/// One node to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    /// The type as the workflow names it.
    pub node_type: String,
    /// `None` only for a disabled node of a type this robot does not know: it is skipped.
    pub kind: Option<NodeKind>,
    pub disabled: bool,
    pub config: Map<String, Value>,
}

/// Why a graph cannot run; the job fails with [`PlanError::error_type`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// Not a graph: missing nodes, duplicate ids, unknown endpoints, a cycle.
    Invalid(String),
    /// Nodes of types this robot has no implementation for.
    UnknownNodeType(String),
}

impl PlanError {
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "InvalidWorkflow",
            Self::UnknownNodeType(_) => "UnknownNodeType",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Invalid(m) | Self::UnknownNodeType(m) => m,
        }
    }
}

/// Parses `workflow_json` (`{nodes: [{id, type, config?, disabled?}], connections: [{from, to}
/// | {source, target}]}`; ids may be numbers) and orders its nodes so every node comes after
/// its sources, keeping declaration order among nodes that are ready together.
pub fn plan(workflow_json: &Value) -> Result<Vec<Step>, PlanError> {
    let invalid = |m: String| PlanError::Invalid(m);
    let object = workflow_json
        .as_object()
        .ok_or_else(|| invalid("workflow_json is not a JSON object".into()))?;
    let nodes = match object.get("nodes") {
        Some(Value::Array(nodes)) => nodes,
        _ => return Err(invalid("workflow_json.nodes must be an array".into())),
    };
    let steps = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| parse_step(i, node))
        .collect::<Result<Vec<_>, _>>()?;
    let mut index = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        if index.insert(step.id.as_str(), i).is_some() {
            return Err(invalid(format!("duplicate node id '{}'", step.id)));
        }
    }
    let connections = match object.get("connections") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(connections)) => connections.as_slice(),
        Some(_) => return Err(invalid("workflow_json.connections must be an array".into())),
    };
    let mut edges = vec![Vec::new(); steps.len()];
    let mut indegree = vec![0usize; steps.len()];
    for (i, connection) in connections.iter().enumerate() {
        let (from, to) = endpoints(connection).ok_or_else(|| {
            invalid(format!(
                "workflow_json.connections[{i}] must have node ids in from/to or source/target"
            ))
        })?;
        let find = |id: &str| {
            index
                .get(id)
                .copied()
                .ok_or_else(|| invalid(format!("connection {i} names no node: '{id}'")))
        };
        let (from, to) = (find(&from)?, find(&to)?);
        edges[from].push(to);
        indegree[to] += 1;
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..steps.len())
        .filter(|&i| indegree[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &next in &edges[i] {
            indegree[next] -= 1;
            if indegree[next] == 0 {
                ready.push(Reverse(next));
            }
        }
    }
    if order.len() < steps.len() {
        return Err(invalid("the connections form a cycle".into()));
    }
    let unknown: Vec<String> = steps
        .iter()
        .filter(|s| s.kind.is_none() && !s.disabled)
        .map(|s| format!("'{}' (node '{}')", s.node_type, s.id))
        .collect();
    if !unknown.is_empty() {
        return Err(PlanError::UnknownNodeType(format!(
            "this robot has no node type {}; it runs {}",
            unknown.join(", "),
            NodeKind::ALL.map(NodeKind::name).join(", ")
        )));
    }
    let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

fn parse_step(i: usize, node: &Value) -> Result<Step, PlanError> {
    let invalid = |what: &str| PlanError::Invalid(format!("workflow_json.nodes[{i}] {what}"));
    let id = node
        .get("id")
        .and_then(id_text)
        .ok_or_else(|| invalid("has no string id"))?;
    let node_type = node
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("has no string type"))?
        .to_owned();
    let config = match node.get("config") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(config)) => config.clone(),
        Some(_) => return Err(invalid("has a config that is not an object")),
    };
    Ok(Step {
        kind: NodeKind::parse(&node_type),
        disabled: node.get("disabled").and_then(Value::as_bool) == Some(true),
        id,
        node_type,
        config,
    })
}

/// A connection's ends, in the shape the domain stores (`from`/`to`) or the common graph-editor
/// one (`source`/`target`).
fn endpoints(connection: &Value) -> Option<(String, String)> {
    let end = |key: &str| connection.get(key).and_then(id_text);
    end("from")
        .zip(end("to"))
        .or_else(|| end("source").zip(end("target")))
}

/// Node ids are strings, or numbers kept as their decimal text (as the server keeps them).
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(steps: &[Step]) -> Vec<&str> {
        steps.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn orders_sources_first_and_keeps_declaration_order() {
        let steps = plan(&json!({
            "nodes": [{"id": "end", "type": "EndNode"}, {"id": "b", "type": "Log"},
                      {"id": "a", "type": "Log"}, {"id": "start", "type": "StartNode"}],
            "connections": [{"from": "start", "to": "a"}, {"from": "start", "to": "b"},
                            {"from": "a", "to": "end"}, {"from": "b", "to": "end"}]
        }))
        .unwrap();
        assert_eq!(ids(&steps), ["start", "b", "a", "end"]);
        assert_eq!(steps[0].kind, Some(NodeKind::StartNode));
    }

    #[test]
    fn accepts_source_target_connections_and_numeric_ids() {
        let steps = plan(&json!({
            "nodes": [{"id": 2, "type": "EndNode"}, {"id": 1, "type": "StartNode"}],
            "connections": [{"source": 1, "target": "2"}]
        }))
        .unwrap();
        assert_eq!(ids(&steps), ["1", "2"]);
        let steps = plan(&json!({"nodes": [{"id": "x", "type": "Log"}]})).unwrap();
        assert_eq!(ids(&steps), ["x"]);
    }

    #[test]
    fn refuses_cycles_and_broken_graphs() {
        let cycle = json!({
            "nodes": [{"id": "a", "type": "Log"}, {"id": "b", "type": "Log"}],
            "connections": [{"from": "a", "to": "b"}, {"source": "b", "target": "a"}]
        });
        assert_eq!(
            plan(&cycle),
            Err(PlanError::Invalid("the connections form a cycle".into()))
        );
        let self_loop = json!({"nodes": [{"id": "a", "type": "Log"}], "connections": [{"from": "a", "to": "a"}]});
        assert!(matches!(plan(&self_loop), Err(PlanError::Invalid(_))));
        for broken in [
            json!(null),
            json!({}),
            json!({"nodes": [{"type": "Log"}]}),
            json!({"nodes": [{"id": "a", "type": "Log"}, {"id": "a", "type": "Log"}]}),
            json!({"nodes": [{"id": "a", "type": "Log"}], "connections": [{"from": "a", "to": "z"}]}),
            json!({"nodes": [{"id": "a", "type": "Log", "config": []}]}),
        ] {
            let error = plan(&broken).unwrap_err();
            assert_eq!(error.error_type(), "InvalidWorkflow", "{broken}");
        }
    }

    #[test]
    fn unknown_node_types_are_refused_unless_disabled() {
        let error = plan(&json!({"nodes": [
            {"id": "a", "type": "StartNode"}, {"id": "b", "type": "SendEmail"}
        ]}))
        .unwrap_err();
        assert_eq!(error.error_type(), "UnknownNodeType");
        assert!(
            error.message().contains("'SendEmail' (node 'b')"),
            "{error:?}"
        );
        let steps = plan(&json!({"nodes": [
            {"id": "b", "type": "SendEmail", "disabled": true}
        ]}))
        .unwrap();
        assert_eq!(steps[0].kind, None);
    }
}
