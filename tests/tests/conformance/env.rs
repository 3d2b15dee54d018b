//! A server to replay examples against, and the few calls the scenarios need to put it in the
//! state an example shows (a busy robot, a completed job with node executions, …).

use std::time::Duration;

use baton_server::config::Config;
use baton_storage::testing::TestDatabase;
use baton_tests::TestApp;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

/// A test server and an access token of its admin.
pub struct Env {
    pub app: TestApp,
    pub admin: String,
}

/// A robot created through the API, with its token.
pub struct Robot {
    pub id: String,
    pub token: String,
}

impl Env {
    /// A server with the test configuration: rate limits on, as the seeds document them.
    pub async fn start(db: TestDatabase) -> Self {
        Self::start_with(db, |_| {}).await
    }

    pub async fn start_with(db: TestDatabase, customise: impl FnOnce(&mut Config)) -> Self {
        let app = TestApp::spawn_with(db, customise).await;
        let admin = app.admin_token().await;
        Env { app, admin }
    }

    /// A request to `path` without credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.app.client.request(method, self.app.url(path))
    }

    /// A request to `path` as the admin.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.anonymous(method, path).bearer_auth(&self.admin)
    }

    /// Sends a request as the admin, with `body` as JSON when given.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    /// `POST /api/v1/workflows` as the admin; panics unless it is accepted.
    pub async fn submit(&self, body: &Value) -> Value {
        let (status, answer) = self
            .call(Method::POST, "/api/v1/workflows", Some(body))
            .await;
        assert_eq!(status, 200, "submitting {body}: {answer}");
        answer
    }

    /// `POST /api/v1/jobs`: runs `workflow_id` now; returns the job id.
    pub async fn run_job(&self, workflow_id: &str) -> String {
        let body = json!({"workflow_id": workflow_id});
        let (status, job) = self.call(Method::POST, "/api/v1/jobs", Some(&body)).await;
        assert_eq!(status, 201, "{job}");
        text(&job, "/job_id")
    }

    /// Creates a robot as the admin.
    pub async fn robot(&self, robot_id: &str, hostname: &str) -> Robot {
        let body = json!({"robot_id": robot_id, "hostname": hostname});
        let (status, robot) = self.call(Method::POST, "/api/v1/robots", Some(&body)).await;
        assert_eq!(status, 201, "{robot}");
        Robot {
            id: robot_id.to_owned(),
            token: text(&robot, "/token"),
        }
    }

    /// A call of the robot protocol, `POST /api/v1/robots/{id}/{call}`; panics unless it
    /// answers 200.
    pub async fn robot_call(&self, robot: &Robot, call: &str, body: Value) -> Value {
        let request = self
            .anonymous(Method::POST, &format!("/api/v1/robots/{}/{call}", robot.id))
            .header("X-Api-Token", &robot.token)
            .json(&body);
        let (status, answer) = send(request).await;
        assert_eq!(status, 200, "robot call {call} with {body}: {answer}");
        answer
    }

    /// The robot claims the next job (it must get `job_id`) and starts it.
    pub async fn claim_and_start(&self, robot: &Robot, job_id: &str) {
        let claimed = self
            .robot_call(robot, "jobs/claim", json!({"wait_seconds": 5}))
            .await;
        assert_eq!(claimed["job_id"], job_id, "the robot claimed another job");
        self.robot_call(robot, &format!("jobs/{job_id}/start"), json!({}))
            .await;
    }

    /// The robot reports one node's execution, with the messages it emitted.
    pub async fn node_done(
        &self,
        robot: &Robot,
        job_id: &str,
        node_id: &str,
        duration_ms: u64,
        messages: Value,
    ) {
        let body = json!({
            "node_id": node_id, "status": "completed", "duration_ms": duration_ms,
            "messages": messages
        });
        self.robot_call(robot, &format!("jobs/{job_id}/progress"), body)
            .await;
    }
}

/// Sends `request`; the status and the JSON body (`null` when the body is empty). Panics with
/// the raw body when it is not JSON: every seed endpoint answers JSON.
pub async fn send(request: RequestBuilder) -> (u16, Value) {
    let response = request
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("send the request");
    let status = response.status().as_u16();
    let body = response.text().await.expect("read the body");
    if body.trim().is_empty() {
        return (status, Value::Null);
    }
    let value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("status {status}: the body is not JSON ({e}): {body}"));
    (status, value)
}

/// The string at `pointer` in `value`; panics naming the pointer when there is none.
pub fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
        .to_owned()
}
