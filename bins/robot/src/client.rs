//! The robot protocol's calls (docs/robot-protocol.md), typed, with every failure sorted into
//! what the robot does about it: retry, drop the job, or stop.

use std::fmt;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long any call but a claim may take: far more than a healthy server needs, short enough
/// that a hung connection is retried rather than waited on for ever.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// What a claim may take beyond the wait it asked for.
const CLAIM_GRACE: Duration = Duration::from_secs(15);
/// How much of an error body is kept for the logs.
const MAX_DETAIL: usize = 300;

/// Why a call did not succeed, by what the robot does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The server could not be reached, timed out, or answered 408, 429 or 5xx: try again.
    Transient(String),
    /// 401 or 403: the token is wrong, belongs to another robot, or this address is banned.
    /// Trying again cannot help.
    Refused { status: u16, detail: String },
    /// 404 or 409: the job is unknown, not this robot's, or in a state that refuses the call
    /// (e.g. cancelled hard). The robot drops the job.
    Gone { status: u16, detail: String },
    /// Any other answer: the request broke a rule (400, 413). Repeating it cannot help.
    Rejected { status: u16, detail: String },
}

impl CallError {
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Refused { .. })
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transient(why) => write!(f, "server unreachable or unavailable: {why}"),
            Self::Refused { status, detail }
            | Self::Gone { status, detail }
            | Self::Rejected { status, detail } => write!(f, "HTTP {status}: {detail}"),
        }
    }
}

impl std::error::Error for CallError {}

/// `cancel` in the answers to `start`, `progress` and `renew`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cancel {
    /// Stop after the current node and call `cancelled`.
    Soft,
    /// The job is already cancelled: stop at once.
    Hard,
}

/// The answer to `start`, `progress` and `renew`; only `cancel` steers the robot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct JobAnswer {
    #[serde(default)]
    pub cancel: Option<Cancel>,
}

/// A claimed job. Fields the robot does not need are ignored; missing ones default, so a
/// malformed job is failed with a reason rather than left unreadable and leased.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClaimedJob {
    pub job_id: String,
    #[serde(default)]
    pub workflow_name: Option<String>,
    #[serde(default)]
    pub workflow_json: Value,
    #[serde(default)]
    pub input: Value,
    #[serde(default)]
    pub retry_count: u32,
    /// 1 on the job's first claim, one more at each claim after a release or a lost lease.
    /// A server that does not count attempts sends none: the run is then taken for a first one,
    /// the most a robot can know.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

fn first_attempt() -> u32 {
    1
}

/// The body of `heartbeat`.
#[derive(Debug, Clone, Serialize)]
pub struct Heartbeat {
    pub cpu_percent: f64,
    pub memory_mb: f64,
    pub memory_percent: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub capabilities: Vec<&'static str>,
}

/// How a node ended, as `progress` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Completed,
    Failed,
    Skipped,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// The body of `progress`: one node's result and the messages its agent emits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    pub node_id: String,
    pub node_type: String,
    pub status: NodeStatus,
    pub duration_ms: u64,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub messages: Vec<Value>,
}

/// The job calls, as a trait so the runner can be tested without a server.
pub(crate) trait JobApi {
    async fn start(&self, job: &str) -> Result<JobAnswer, CallError>;
    async fn progress(&self, job: &str, progress: &Progress) -> Result<JobAnswer, CallError>;
    async fn renew(&self, job: &str) -> Result<JobAnswer, CallError>;
    async fn complete(&self, job: &str, output: Option<&Value>) -> Result<(), CallError>;
    async fn fail(&self, job: &str, error_type: &str, message: &str) -> Result<(), CallError>;
    async fn cancelled(&self, job: &str) -> Result<(), CallError>;
    async fn release(&self, job: &str) -> Result<(), CallError>;
}

/// The protocol client of one robot.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `…/api/v1/robots/{robot_id}`, without a trailing slash.
    base: Url,
    token: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Client {
    pub fn new(server: &str, robot_id: &str, token: String) -> anyhow::Result<Self> {
        let mut base = Url::parse(server)
            .map_err(|e| anyhow::anyhow!("--server/BATON_SERVER is not a URL ({e}): {server}"))?;
        base.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("--server/BATON_SERVER cannot be a base URL: {server}"))?
            .pop_if_empty()
            .extend(["api", "v1", "robots", robot_id]);
        let http = reqwest::Client::builder()
            .user_agent(concat!("baton-robot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
        Ok(Self { http, base, token })
    }

    /// `POST /heartbeat`: registers the robot on first use, then keeps it online.
    pub async fn heartbeat(&self, body: &Heartbeat) -> Result<(), CallError> {
        self.send(self.post(&["heartbeat"], CALL_TIMEOUT).json(body))
            .await
            .map(drop)
    }

    /// `POST /jobs/claim`: a job, or `None` when none came within `wait_seconds`.
    pub async fn claim(&self, wait_seconds: u32) -> Result<Option<ClaimedJob>, CallError> {
        let timeout = Duration::from_secs(u64::from(wait_seconds)) + CLAIM_GRACE;
        let response = self
            .send(
                self.post(&["jobs", "claim"], timeout)
                    .json(&serde_json::json!({"wait_seconds": wait_seconds})),
            )
            .await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let text = response
            .text()
            .await
            .map_err(|e| CallError::Transient(format!("reading the claimed job: {e}")))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CallError::Rejected {
                status: 200,
                detail: format!("the claimed job is not readable ({e}): {}", clip(&text)),
            })
    }

    fn post(&self, segments: &[&str], timeout: Duration) -> reqwest::RequestBuilder {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        self.http
            .post(url)
            .header("X-Api-Token", &self.token)
            .timeout(timeout)
    }

    fn job(&self, job: &str, call: &str) -> reqwest::RequestBuilder {
        self.post(&["jobs", job, call], CALL_TIMEOUT)
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> Result<JobAnswer, CallError> {
        let response = self.send(request).await?;
        let text = response
            .text()
            .await
            .map_err(|e| CallError::Transient(format!("reading the answer: {e}")))?;
        // An answer without a readable `cancel` asks for nothing.
        Ok(serde_json::from_str(&text).unwrap_or_default())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, CallError> {
        let response = request
            .send()
            .await
            .map_err(|e| CallError::Transient(describe(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let detail = error_detail(response.text().await.unwrap_or_default());
        let status = status.as_u16();
        Err(match status {
            401 | 403 => CallError::Refused { status, detail },
            404 | 409 => CallError::Gone { status, detail },
            408 | 429 | 500..=599 => CallError::Transient(format!("HTTP {status}: {detail}")),
            _ => CallError::Rejected { status, detail },
        })
    }
}

impl JobApi for Client {
    async fn start(&self, job: &str) -> Result<JobAnswer, CallError> {
        self.answer(self.job(job, "start")).await
    }

    async fn progress(&self, job: &str, progress: &Progress) -> Result<JobAnswer, CallError> {
        self.answer(self.job(job, "progress").json(progress)).await
    }

    async fn renew(&self, job: &str) -> Result<JobAnswer, CallError> {
        self.answer(self.job(job, "renew")).await
    }

    async fn complete(&self, job: &str, output: Option<&Value>) -> Result<(), CallError> {
        let body = serde_json::json!({ "output": output });
        self.send(self.job(job, "complete").json(&body))
            .await
            .map(drop)
    }

    async fn fail(&self, job: &str, error_type: &str, message: &str) -> Result<(), CallError> {
        let body = serde_json::json!({"error_type": error_type, "error_message": message});
        self.send(self.job(job, "fail").json(&body)).await.map(drop)
    }

    async fn cancelled(&self, job: &str) -> Result<(), CallError> {
        self.send(self.job(job, "cancelled")).await.map(drop)
    }

    async fn release(&self, job: &str) -> Result<(), CallError> {
        self.send(self.job(job, "release")).await.map(drop)
    }
}

/// The `detail` (else `error`) of the API's error shape, else the start of the raw body.
fn error_detail(text: String) -> String {
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    field("detail")
        .or_else(|| field("error"))
        .unwrap_or_else(|| clip(&text))
}

fn clip(text: &str) -> String {
    crate::text::truncate_chars(text, MAX_DETAIL).to_owned()
}

/// A transport error with its cause chain: reqwest's top-level message alone ("error sending
/// request") does not say whether the server refused the connection or timed out.
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_built_below_the_robot() {
        let client = Client::new("http://127.0.0.1:8000/", "r-1", "t".into()).unwrap();
        let request = client.job("abc", "progress").build().unwrap();
        assert_eq!(
            request.url().as_str(),
            "http://127.0.0.1:8000/api/v1/robots/r-1/jobs/abc/progress"
        );
        assert_eq!(request.headers()["X-Api-Token"], "t");
        assert!(!format!("{client:?}").contains("\"t\""));
    }

    #[test]
    fn error_details_come_from_the_api_shape() {
        assert_eq!(
            error_detail(r#"{"error":"Conflict","detail":"the job is cancelled"}"#.into()),
            "the job is cancelled"
        );
        assert_eq!(error_detail("gateway down".into()), "gateway down");
    }

    #[test]
    fn answers_and_jobs_parse_leniently() {
        let answer: JobAnswer =
            serde_json::from_str(r#"{"job_id":"j","status":"running","cancel":"hard"}"#).unwrap();
        assert_eq!(answer.cancel, Some(Cancel::Hard));
        let answer: JobAnswer = serde_json::from_str(r#"{"cancel":null}"#).unwrap();
        assert_eq!(answer.cancel, None);
        let job: ClaimedJob = serde_json::from_str(r#"{"job_id":"j","priority":3}"#).unwrap();
        assert_eq!(job.workflow_json, Value::Null);
        assert_eq!(
            job.attempt, 1,
            "a server that counts no attempts runs each job once"
        );
        let job: ClaimedJob = serde_json::from_str(r#"{"job_id":"j","attempt":3}"#).unwrap();
        assert_eq!(job.attempt, 3);
    }
}
