//! Workflows: named, versioned graphs of nodes and connections.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::{ValidationError, Validator};
use crate::ids::WorkflowId;

crate::bounded_text!(
    /// A workflow's name: 1–255 characters.
    WorkflowName, field = "workflow_name", min = 1, max = 255
);

/// Whether a job runs on a robot in the same network or across the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExecutionMode {
    #[default]
    Lan,
    Internet,
}

impl ExecutionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lan => "lan",
            Self::Internet => "internet",
        }
    }

    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        match value {
            "lan" => Ok(Self::Lan),
            "internet" => Ok(Self::Internet),
            _ => Err(ValidationError::field(
                "execution_mode",
                "must be one of lan, internet",
            )),
        }
    }
}

/// One node of a workflow graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub node_type: String,
    pub name: Option<String>,
    pub disabled: bool,
    /// The node's configuration object, kept as given.
    pub config: serde_json::Map<String, Value>,
}

impl Node {
    /// How long this node's messages live, from `config.keep_messages_for` in seconds.
    /// `None` means they never expire (a value of 0).
    pub fn keep_messages_for(&self) -> Option<time::Duration> {
        const DEFAULT_SECONDS: i64 = 30 * 24 * 3600;
        let seconds = self
            .config
            .get("keep_messages_for")
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_SECONDS);
        (seconds > 0).then(|| time::Duration::seconds(seconds))
    }

    /// The name shown for the node's agent: its `name`, or its id when it has none.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// A directed edge between two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub from: String,
    pub to: String,
}

/// A validated workflow graph: unique node ids, known endpoints, no cycle, bounded size.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowGraph {
    nodes: Vec<Node>,
    connections: Vec<Connection>,
    /// The document as submitted, so clients read back exactly what they sent.
    source: Value,
}

impl WorkflowGraph {
    pub const MAX_NODES: usize = 1000;
    pub const MAX_JSON_BYTES: usize = 10 * 1024 * 1024;
    const MAX_NODE_ID: usize = 255;
    const MAX_NODE_TYPE: usize = 255;

    /// Parses `workflow_json`, reporting every problem found.
    pub fn parse(source: Value) -> Result<Self, ValidationError> {
        Self::read(source, Origin::Input)
    }

    /// A graph read back from storage: its node ids, types and names are checked for length
    /// only, so a graph stored before they refused control characters (or NUL) still reads back.
    pub fn parse_stored(source: Value) -> Result<Self, ValidationError> {
        Self::read(source, Origin::Stored)
    }

    fn read(source: Value, origin: Origin) -> Result<Self, ValidationError> {
        let field = "workflow_json";
        let Some(object) = source.as_object() else {
            return Err(ValidationError::field(field, "must be a JSON object"));
        };
        if source.to_string().len() > Self::MAX_JSON_BYTES {
            return Err(ValidationError::field(
                field,
                "must be at most 10 MB of JSON",
            ));
        }
        let mut v = Validator::new();
        let nodes = match object.get("nodes") {
            Some(Value::Array(items)) => {
                if items.len() > Self::MAX_NODES {
                    return Err(ValidationError::field(
                        "workflow_json.nodes",
                        format!(
                            "must hold at most {} nodes (got {})",
                            Self::MAX_NODES,
                            items.len()
                        ),
                    ));
                }
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, item)| v.check(parse_node(i, item, origin)))
                    .collect::<Vec<_>>()
            }
            Some(_) => {
                v.push("workflow_json.nodes", "must be an array");
                Vec::new()
            }
            None => {
                v.push("workflow_json.nodes", "is required");
                Vec::new()
            }
        };
        let connections = match object.get("connections") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| v.check(parse_connection(i, item)))
                .collect(),
            Some(_) => {
                v.push("workflow_json.connections", "must be an array");
                Vec::new()
            }
        };
        let mut seen = HashSet::new();
        for (i, node) in nodes.iter().enumerate() {
            if !seen.insert(node.id.as_str()) {
                v.push(
                    format!("workflow_json.nodes[{i}].id"),
                    format!("duplicate node id '{}'", node.id),
                );
            }
        }
        for (i, c) in connections.iter().enumerate() {
            for (end, id) in [("from", &c.from), ("to", &c.to)] {
                if !seen.contains(id.as_str()) {
                    v.push(
                        format!("workflow_json.connections[{i}].{end}"),
                        format!("names no node: '{id}'"),
                    );
                }
            }
        }
        v.finish()?;
        let graph = Self {
            nodes,
            connections,
            source,
        };
        if graph.topological_order().is_none() {
            return Err(ValidationError::field(
                "workflow_json.connections",
                "must not form a cycle",
            ));
        }
        Ok(graph)
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    pub fn source(&self) -> &Value {
        &self.source
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The node ids feeding `id`, in connection order without repeats.
    pub fn sources_of(&self, id: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for c in self.connections.iter().filter(|c| c.to == id) {
            if !out.contains(&c.from.as_str()) {
                out.push(&c.from);
            }
        }
        out
    }

    /// Nodes in an order where every node comes after its sources (Kahn's algorithm, stable by
    /// declaration order); `None` if the graph has a cycle.
    pub fn topological_order(&self) -> Option<Vec<&Node>> {
        let index: HashMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        let mut indegree = vec![0usize; self.nodes.len()];
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for c in &self.connections {
            let (Some(&from), Some(&to)) = (index.get(c.from.as_str()), index.get(c.to.as_str()))
            else {
                return None;
            };
            edges[from].push(to);
            indegree[to] += 1;
        }
        // A min-heap of declaration indexes keeps the order stable: among ready nodes, the one
        // declared first runs first.
        let mut ready: BinaryHeap<Reverse<usize>> = (0..self.nodes.len())
            .filter(|&i| indegree[i] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(Reverse(i)) = ready.pop() {
            order.push(&self.nodes[i]);
            for &next in &edges[i] {
                indegree[next] -= 1;
                if indegree[next] == 0 {
                    ready.push(Reverse(next));
                }
            }
        }
        (order.len() == self.nodes.len()).then_some(order)
    }
}

/// Where a graph comes from: a client, whose node ids and types are names (no control
/// character) and whose texts hold no NUL, or storage, where only lengths are checked.
#[derive(Clone, Copy)]
enum Origin {
    Input,
    Stored,
}

impl Origin {
    fn check_name(self, field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
        match self {
            Origin::Input => crate::text::check_name(field, value, 1, max),
            Origin::Stored => crate::text::check_stored_length(field, value, 1, max),
        }
    }

    fn check_text(self, field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
        match self {
            Origin::Input => crate::text::check_length(field, value, 0, max),
            Origin::Stored => crate::text::check_stored_length(field, value, 0, max),
        }
    }
}

fn parse_node(i: usize, item: &Value, origin: Origin) -> Result<Node, ValidationError> {
    let at = |f: &str| format!("workflow_json.nodes[{i}].{f}");
    let Some(obj) = item.as_object() else {
        return Err(ValidationError::field(
            format!("workflow_json.nodes[{i}]"),
            "must be an object with id and type",
        ));
    };
    let mut v = Validator::new();
    let id = match obj.get("id") {
        Some(Value::String(s)) => v.check(
            origin
                .check_name(&at("id"), s, WorkflowGraph::MAX_NODE_ID)
                .map(|()| s.clone()),
        ),
        // Numeric ids are common in exported graphs; they are kept as their decimal text.
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => {
            v.push(at("id"), "is required and must be a string");
            None
        }
    };
    let node_type = match obj.get("type") {
        Some(Value::String(s)) => v.check(
            origin
                .check_name(&at("type"), s, WorkflowGraph::MAX_NODE_TYPE)
                .map(|()| s.clone()),
        ),
        _ => {
            v.push(at("type"), "is required and must be a string");
            None
        }
    };
    let name = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            v.check(origin.check_text(&at("name"), s, 255).map(|()| s.clone()))
        }
        Some(_) => {
            v.push(at("name"), "must be a string");
            None
        }
    };
    let disabled = match obj.get("disabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            v.push(at("disabled"), "must be a boolean");
            false
        }
    };
    let config = match obj.get("config") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            v.push(at("config"), "must be an object");
            serde_json::Map::new()
        }
    };
    v.finish()?;
    match (id, node_type) {
        (Some(id), Some(node_type)) => Ok(Node {
            id,
            node_type,
            name,
            disabled,
            config,
        }),
        // Either `None` pushed an error above, which `finish` returned.
        _ => Err(ValidationError::field(
            format!("workflow_json.nodes[{i}]"),
            "is invalid",
        )),
    }
}

fn parse_connection(i: usize, item: &Value) -> Result<Connection, ValidationError> {
    let end = |key: &str| match item.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match (end("from"), end("to")) {
        (Some(from), Some(to)) => Ok(Connection { from, to }),
        _ => Err(ValidationError::field(
            format!("workflow_json.connections[{i}]"),
            "must be an object with string 'from' and 'to' node ids",
        )),
    }
}

/// A stored workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub id: WorkflowId,
    pub name: WorkflowName,
    pub description: Option<String>,
    pub graph: WorkflowGraph,
    /// Starts at 1 and grows with every change of the graph.
    pub version: i32,
    /// Free-form metadata from the submitter, a JSON object.
    pub metadata: serde_json::Map<String, Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Workflow {
    pub const MAX_DESCRIPTION: usize = 10_000;

    pub fn new(
        id: WorkflowId,
        name: WorkflowName,
        description: Option<String>,
        graph: WorkflowGraph,
        metadata: serde_json::Map<String, Value>,
        now: Timestamp,
    ) -> Result<Self, ValidationError> {
        let description =
            crate::text::check_optional("description", description, Self::MAX_DESCRIPTION)?;
        Ok(Self {
            id,
            name,
            description,
            graph,
            version: 1,
            metadata,
            created_at: now,
            updated_at: now,
        })
    }

    /// Replaces the graph and bumps the version.
    pub fn revise(&mut self, graph: WorkflowGraph, now: Timestamp) {
        self.graph = graph;
        self.version += 1;
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors_of(value: Value) -> Vec<String> {
        WorkflowGraph::parse(value)
            .unwrap_err()
            .errors
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    #[test]
    fn accepts_the_seed_example() {
        let graph = WorkflowGraph::parse(json!({
            "nodes": [{"id": "start", "type": "StartNode"}, {"id": "end", "type": "EndNode"}],
            "connections": []
        }))
        .unwrap();
        assert_eq!(graph.nodes().len(), 2);
        assert_eq!(graph.nodes()[0].node_type, "StartNode");
    }

    #[test]
    fn connections_may_be_omitted() {
        let graph =
            WorkflowGraph::parse(json!({"nodes": [{"id": "1", "type": "StartNode"}]})).unwrap();
        assert!(graph.connections().is_empty());
    }

    #[test]
    fn refuses_a_graph_without_nodes_or_not_an_object() {
        assert_eq!(
            errors_of(json!({})),
            vec!["workflow_json.nodes: is required"]
        );
        assert_eq!(
            errors_of(json!([])),
            vec!["workflow_json: must be a JSON object"]
        );
        assert_eq!(
            errors_of(json!({"nodes": {}})),
            vec!["workflow_json.nodes: must be an array"]
        );
    }

    #[test]
    fn refuses_duplicate_ids_and_unknown_endpoints_together() {
        let errors = errors_of(json!({
            "nodes": [{"id": "a", "type": "Log"}, {"id": "a", "type": "Log"}],
            "connections": [{"from": "a", "to": "ghost"}]
        }));
        assert_eq!(
            errors,
            vec![
                "workflow_json.nodes[1].id: duplicate node id 'a'",
                "workflow_json.connections[0].to: names no node: 'ghost'",
            ]
        );
    }

    #[test]
    fn refuses_cycles_including_self_loops() {
        let cycle = json!({
            "nodes": [{"id": "a", "type": "Log"}, {"id": "b", "type": "Log"}, {"id": "c", "type": "Log"}],
            "connections": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "c", "to": "a"}]
        });
        assert_eq!(
            errors_of(cycle),
            vec!["workflow_json.connections: must not form a cycle"]
        );
        let self_loop = json!({"nodes": [{"id": "a", "type": "Log"}], "connections": [{"from": "a", "to": "a"}]});
        assert_eq!(
            errors_of(self_loop),
            vec!["workflow_json.connections: must not form a cycle"]
        );
    }

    #[test]
    fn node_limit_is_1000() {
        let nodes = |n: usize| -> Value {
            Value::Array(
                (0..n)
                    .map(|i| json!({"id": i.to_string(), "type": "Log"}))
                    .collect(),
            )
        };
        assert!(WorkflowGraph::parse(json!({"nodes": nodes(1000)})).is_ok());
        let errors = errors_of(json!({"nodes": nodes(1001)}));
        assert_eq!(
            errors,
            vec!["workflow_json.nodes: must hold at most 1000 nodes (got 1001)"]
        );
    }

    #[test]
    fn node_fields_are_type_checked() {
        let errors = errors_of(json!({"nodes": [
            {"type": "Log"},
            {"id": "x", "type": 5, "disabled": "yes", "config": [], "name": 3},
            "not an object"
        ]}));
        assert_eq!(
            errors,
            vec![
                "workflow_json.nodes[0].id: is required and must be a string",
                "workflow_json.nodes[1].type: is required and must be a string",
                "workflow_json.nodes[1].name: must be a string",
                "workflow_json.nodes[1].disabled: must be a boolean",
                "workflow_json.nodes[1].config: must be an object",
                "workflow_json.nodes[2]: must be an object with id and type",
            ]
        );
    }

    #[test]
    fn topological_order_puts_sources_first_and_keeps_declaration_order() {
        let graph = WorkflowGraph::parse(json!({
            "nodes": [{"id": "end", "type": "EndNode"}, {"id": "b", "type": "Log"},
                      {"id": "a", "type": "Log"}, {"id": "start", "type": "StartNode"}],
            "connections": [{"from": "start", "to": "a"}, {"from": "start", "to": "b"},
                            {"from": "a", "to": "end"}, {"from": "b", "to": "end"}]
        }))
        .unwrap();
        let order: Vec<&str> = graph
            .topological_order()
            .unwrap()
            .iter()
            .map(|n| n.id.as_str())
            .collect();
        assert_eq!(order, vec!["start", "b", "a", "end"]);
        assert_eq!(graph.sources_of("end"), vec!["a", "b"]);
    }

    #[test]
    fn keep_messages_for_defaults_to_thirty_days_and_zero_means_forever() {
        let graph = WorkflowGraph::parse(json!({"nodes": [
            {"id": "a", "type": "Log"},
            {"id": "b", "type": "Log", "config": {"keep_messages_for": 0}},
            {"id": "c", "type": "Log", "config": {"keep_messages_for": 60}}
        ]}))
        .unwrap();
        assert_eq!(
            graph.nodes()[0].keep_messages_for(),
            Some(time::Duration::days(30))
        );
        assert_eq!(graph.nodes()[1].keep_messages_for(), None);
        assert_eq!(
            graph.nodes()[2].keep_messages_for(),
            Some(time::Duration::seconds(60))
        );
    }

    #[test]
    fn workflow_names_are_1_to_255_characters() {
        assert!(WorkflowName::parse("").is_err());
        assert!(WorkflowName::parse("x".repeat(255)).is_ok());
        assert!(WorkflowName::parse("x".repeat(256)).is_err());
    }

    #[test]
    fn revising_bumps_the_version() {
        let now = time::macros::datetime!(2025-01-01 00:00 UTC);
        let graph = WorkflowGraph::parse(json!({"nodes": []})).unwrap();
        let mut wf = Workflow::new(
            WorkflowId::from_uuid(uuid::Uuid::nil()),
            WorkflowName::parse("w").unwrap(),
            None,
            graph.clone(),
            serde_json::Map::new(),
            now,
        )
        .unwrap();
        assert_eq!(wf.version, 1);
        wf.revise(graph, now + time::Duration::seconds(1));
        assert_eq!(wf.version, 2);
        assert_eq!(wf.updated_at, now + time::Duration::seconds(1));
    }
}
