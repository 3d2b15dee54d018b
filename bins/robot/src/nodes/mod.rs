//! The built-in node types (docs/robot.md lists them), one module each. A node reads its `config`, does its
//! work, and returns its output, which the runner reports and emits as its agent's message.
//!
//! A node is an async function whose future the runner may drop at any await point (a hard
//! cancel, a shutdown): nodes hold nothing that needs cleaning up beyond what `Drop` does,
//! and a `Shell` child process is killed when its future is dropped.

mod delay;
mod http_request;
mod log;
mod queue_add;
mod set_data;
mod shell;

use std::time::Duration;

use reqwest::Url;
use serde_json::{Map, Value};

/// Outputs and captured text beyond this many bytes are cut: enough for any API answer or
/// command summary a workflow acts on, small enough for a node report and an agent message.
pub const MAX_CAPTURE_BYTES: usize = 64 * 1024;

/// The node types this robot runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    StartNode,
    EndNode,
    Log,
    Delay,
    SetData,
    HttpRequest,
    Shell,
    QueueAdd,
}

impl NodeKind {
    pub const ALL: [NodeKind; 8] = [
        Self::StartNode,
        Self::EndNode,
        Self::Log,
        Self::Delay,
        Self::SetData,
        Self::HttpRequest,
        Self::Shell,
        Self::QueueAdd,
    ];

    /// The type name workflows use.
    pub fn name(self) -> &'static str {
        match self {
            Self::StartNode => "StartNode",
            Self::EndNode => "EndNode",
            Self::Log => "Log",
            Self::Delay => "Delay",
            Self::SetData => "SetData",
            Self::HttpRequest => "HttpRequest",
            Self::Shell => "Shell",
            Self::QueueAdd => "QueueAdd",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// What nodes may use beyond their config, shared by every job of the robot.
#[derive(Debug, Clone)]
pub struct Services {
    /// The client of `HttpRequest` and `QueueAdd`, apart from the protocol's.
    pub http: reqwest::Client,
    pub shell_enabled: bool,
    /// The server, for `QueueAdd`.
    pub server: Url,
    /// An operator's API key for `QueueAdd`; redacted from `Debug` by [`Secret`].
    pub api_key: Option<Secret>,
}

impl Services {
    /// The node types this robot will run with these services, as the heartbeat advertises
    /// them: `Shell` only when enabled, `QueueAdd` only with an API key.
    pub fn capabilities(&self) -> Vec<&'static str> {
        NodeKind::ALL
            .into_iter()
            .filter(|kind| match kind {
                NodeKind::Shell => self.shell_enabled,
                NodeKind::QueueAdd => self.api_key.is_some(),
                _ => true,
            })
            .map(NodeKind::name)
            .collect()
    }
}

/// A secret that never shows in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One node's run: its config and where it runs.
#[derive(Debug, Clone, Copy)]
pub struct NodeContext<'a> {
    pub job_id: &'a str,
    pub node_id: &'a str,
    /// The job's attempt, from its claim: 1 on its first run; above 1, the job ran before and
    /// lost its robot, so this node may already have run and had its effects (see
    /// docs/robot-protocol.md, "Runs are at least once").
    pub attempt: u32,
    pub config: &'a Map<String, Value>,
    pub services: &'a Services,
}

/// A node that failed: why, and what it produced anyway (a command's output, an HTTP answer),
/// which is reported with the failure so the operator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeError {
    pub message: String,
    pub output: Option<Value>,
}

impl NodeError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            output: None,
        }
    }

    pub fn with_output(message: impl Into<String>, output: Value) -> Self {
        Self {
            message: message.into(),
            output: Some(output),
        }
    }
}

/// A node's output (`None`: it emits no message), or why it failed.
pub type NodeResult = Result<Option<Value>, NodeError>;

/// Runs one node.
pub async fn run(kind: NodeKind, cx: NodeContext<'_>) -> NodeResult {
    match kind {
        // Markers of where a graph begins and ends: they do nothing and emit nothing.
        NodeKind::StartNode | NodeKind::EndNode => Ok(None),
        NodeKind::Log => log::run(cx),
        NodeKind::Delay => delay::run(cx).await,
        NodeKind::SetData => set_data::run(cx),
        NodeKind::HttpRequest => http_request::run(cx).await,
        NodeKind::Shell => shell::run(cx).await,
        NodeKind::QueueAdd => queue_add::run(cx).await,
    }
}

// ---- config readers: a wrong type is a node failure that names the field ----

/// `config[key]`, with `null` counted as absent.
fn field<'a>(config: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    config.get(key).filter(|v| !v.is_null())
}

fn string<'a>(config: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, NodeError> {
    match field(config, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(NodeError::new(format!("config.{key} must be a string"))),
    }
}

fn required_string<'a>(config: &'a Map<String, Value>, key: &str) -> Result<&'a str, NodeError> {
    string(config, key)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| NodeError::new(format!("config.{key} is required")))
}

fn number(config: &Map<String, Value>, key: &str) -> Result<Option<f64>, NodeError> {
    match field(config, key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(Some)
            .ok_or_else(|| NodeError::new(format!("config.{key} must be a number ≥ 0"))),
    }
}

fn boolean(config: &Map<String, Value>, key: &str, default: bool) -> Result<bool, NodeError> {
    match field(config, key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(NodeError::new(format!(
            "config.{key} must be true or false"
        ))),
    }
}

/// `config[key]` in seconds (fractions allowed), `default` when absent, at most `max`.
fn seconds(
    config: &Map<String, Value>,
    key: &str,
    default: Duration,
    max: Duration,
) -> Result<Duration, NodeError> {
    let Some(value) = number(config, key)? else {
        return Ok(default);
    };
    if value > max.as_secs_f64() {
        return Err(NodeError::new(format!(
            "config.{key} must be at most {} seconds",
            max.as_secs()
        )));
    }
    Ok(Duration::from_secs_f64(value))
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Services for tests: shell off, no API key, a server nothing listens on.
    pub fn services() -> Services {
        Services {
            http: reqwest::Client::new(),
            shell_enabled: false,
            server: Url::parse("http://127.0.0.1:9").unwrap(),
            api_key: None,
        }
    }

    /// Runs a node of job `job`, node `node`, in the job's first attempt.
    pub async fn run_with(
        kind: NodeKind,
        services: &Services,
        config: serde_json::Value,
    ) -> NodeResult {
        run_in_attempt(kind, services, config, 1).await
    }

    pub async fn run_in_attempt(
        kind: NodeKind,
        services: &Services,
        config: serde_json::Value,
        attempt: u32,
    ) -> NodeResult {
        let config = config.as_object().cloned().unwrap_or_default();
        run(
            kind,
            NodeContext {
                job_id: "job",
                node_id: "node",
                attempt,
                config: &config,
                services,
            },
        )
        .await
    }

    pub async fn run_node(kind: NodeKind, config: serde_json::Value) -> NodeResult {
        run_with(kind, &services(), config).await
    }

    /// A one-shot HTTP server answering `status` with `body`; returns its URL and the request
    /// it received.
    pub async fn serve_once(
        status: u16,
        body: &'static str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/path", listener.local_addr().unwrap());
        let handle = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            // Headers, then the body its Content-Length announces.
            loop {
                let n = socket.read(&mut buffer).await.unwrap();
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_owned)
                        })
                        .and_then(|l| l.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length || n == 0 {
                        break;
                    }
                }
            }
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&request).to_string()
        });
        (url, handle)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in NodeKind::ALL {
            assert_eq!(NodeKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(
            NodeKind::parse("log"),
            None,
            "type names are case-sensitive"
        );
    }

    #[test]
    fn capabilities_leave_out_what_is_not_set_up() {
        let mut s = services();
        assert!(!s.capabilities().contains(&"Shell"));
        assert!(!s.capabilities().contains(&"QueueAdd"));
        s.shell_enabled = true;
        s.api_key = Some(Secret("k".into()));
        assert_eq!(s.capabilities().len(), NodeKind::ALL.len());
        assert!(!format!("{s:?}").contains("\"k\""));
    }

    #[tokio::test]
    async fn markers_do_nothing() {
        assert_eq!(run_node(NodeKind::StartNode, json!({})).await, Ok(None));
        assert_eq!(run_node(NodeKind::EndNode, json!({"x": 1})).await, Ok(None));
    }
}
