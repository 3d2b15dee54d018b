//! The permission matrix over HTTP (CasareRPA's roles, docs/security.md): every route that needs a
//! role, called by a user of each role (JWT), an API key of each role, a robot token and nobody.
//! Allowed calls succeed; refused ones are 403 (401 without credentials) in the error shape,
//! and write nothing: afterwards, the admin finds the users, queues, triggers, workflows and
//! jobs each caller acted on changed only by the calls its role allows.
//!
//! The matrix is written out here, not taken from the server, so the server is checked against
//! the documented rules: viewer < operator < developer < admin, and robots only on the robot
//! protocol, as themselves.

// A test crate: a panic is a failed assertion with its location, and helpers outside `#[test]`
// functions count too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use baton_storage::testing::TestDatabase;
use baton_tests::{TestApp, expect_error, json};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// The roles, weakest first: each has the powers of those before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Viewer,
    Operator,
    Developer,
    Admin,
}

impl Role {
    const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Developer, Role::Admin];

    fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }
}

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Viewers and up.
    Read,
    /// Operators and up.
    Operate,
    /// Developers and up.
    Develop,
    /// Admins only.
    Administer,
    /// The robot protocol (`/robots/{robot_id}/…`): the robot itself with its token, or (with
    /// `robot_auth_enabled` off, the default) operators and up.
    RobotProtocol,
}

impl Need {
    /// The weakest role that meets this need.
    fn weakest_role(self) -> Role {
        match self {
            Need::Read => Role::Viewer,
            Need::Operate | Need::RobotProtocol => Role::Operator,
            Need::Develop => Role::Developer,
            Need::Administer => Role::Admin,
        }
    }
}

/// One route of the matrix. `path` and `body` may hold placeholders, filled per caller:
/// - `{caller}`: a slug unique to the caller (`user-viewer`, `key-admin`, …), for names that
///   must not collide between callers;
/// - `victim-{caller}`: a user, an API key name and a robot the admin creates for each caller
///   beforehand, so that each caller has something of its own to delete;
/// - `{victim_key_id}`: the id of that caller's victim API key;
/// - `{robot}`: the robot whose token is the robot caller's credential;
/// - `{workflow_id}`: the caller's workflow (`work-{caller}`), which its trigger and jobs run;
/// - `{victim_workflow_id}`: the caller's workflow to delete (`victim-{caller}`);
/// - `{trigger_id}`: the caller's disabled SINGLE trigger `trigger-{caller}`;
/// - `queue-{caller}` and `{item_id}`: the caller's queue and its one NEW item;
/// - `claim-{caller}` and `{claim_item_id}`: a queue holding one NEW item, for the robot
///   protocol's claim and report;
/// - `{job_id}`: the caller's pending job to cancel (of the lowest priority, so that no claim
///   takes it);
/// - `{held_job_id}`, `{failing_job_id}`, `{released_job_id}` and `{cancelling_job_id}`: jobs
///   the admin claimed for `{robot}` for the robot protocol's calls on a held job (a cancel is
///   requested on the last);
/// - `{agent_id}` and `{message_id}`: an agent with a message, shared by every caller (see
///   [`Matrix::new`]).
struct Row {
    method: Method,
    path: &'static str,
    body: Option<Body>,
    need: Need,
    /// The status of an allowed call: bodies and fixtures are designed so allowed calls succeed.
    allowed: u16,
}

/// What a row sends.
enum Body {
    Json(Value),
    /// A multipart form: a `file` part holding `file` as JSON text, then text fields.
    Upload {
        file_name: &'static str,
        file: Value,
        fields: &'static [(&'static str, &'static str)],
    },
}

fn row(method: Method, path: &'static str, body: Option<Value>, need: Need, allowed: u16) -> Row {
    Row {
        method,
        path,
        body: body.map(Body::Json),
        need,
        allowed,
    }
}

/// A `POST` of a multipart form whose `file` is `file_name` holding `file`.
fn upload_row(
    path: &'static str,
    file_name: &'static str,
    file: Value,
    fields: &'static [(&'static str, &'static str)],
    need: Need,
    allowed: u16,
) -> Row {
    Row {
        method: Method::POST,
        path,
        body: Some(Body::Upload {
            file_name,
            file,
            fields,
        }),
        need,
        allowed,
    }
}

/// The graph of every workflow the matrix submits: the smallest valid one.
fn small_graph() -> Value {
    json!({"nodes": [{"id": "start", "type": "StartNode"}]})
}

/// Every route that needs a role, in the order each caller calls them: a row may rely on an
/// earlier row of the same need (the robot's queue-item report on its claim; the trigger's
/// delete comes after the rows that change it). The open routes (health probes, login and
/// refresh, `POST /webhooks/{token}`, whose token is the credential) need no role and are not
/// here. Schedules and flows add their rows when their routes exist (creating any fixtures
/// they need in [`Fixtures::create`]).
fn routes() -> Vec<Row> {
    use Method as M;
    use Need::*;
    vec![
        row(M::GET, "/api/v1/auth/me", None, Read, 200),
        // Users.
        row(
            M::POST,
            "/api/v1/users",
            Some(
                json!({"username": "new-{caller}", "password": "new-password", "roles": ["viewer"]}),
            ),
            Administer,
            201,
        ),
        row(M::GET, "/api/v1/users", None, Administer, 200),
        row(
            M::DELETE,
            "/api/v1/users/victim-{caller}",
            None,
            Administer,
            200,
        ),
        // API keys.
        row(
            M::POST,
            "/api/v1/api-keys",
            Some(json!({"name": "new-{caller}", "roles": ["viewer"]})),
            Administer,
            201,
        ),
        row(M::GET, "/api/v1/api-keys", None, Administer, 200),
        row(
            M::DELETE,
            "/api/v1/api-keys/{victim_key_id}",
            None,
            Administer,
            200,
        ),
        // Robots.
        row(
            M::POST,
            "/api/v1/robots",
            Some(json!({"robot_id": "new-{caller}", "hostname": "host-{caller}"})),
            Administer,
            201,
        ),
        row(
            M::DELETE,
            "/api/v1/robots/victim-{caller}",
            None,
            Administer,
            200,
        ),
        row(
            M::POST,
            "/api/v1/robots/{robot}/heartbeat",
            Some(json!({"cpu_percent": 12.5, "memory_mb": 256.0, "memory_percent": 10.0})),
            RobotProtocol,
            200,
        ),
        // Queues and their items.
        row(M::GET, "/api/v1/queues", None, Read, 200),
        row(M::GET, "/api/v1/queues/queue-{caller}", None, Read, 200),
        row(
            M::GET,
            "/api/v1/queues/queue-{caller}/items",
            None,
            Read,
            200,
        ),
        row(M::GET, "/api/v1/queue-items/{item_id}", None, Read, 200),
        row(
            M::POST,
            "/api/queue",
            Some(json!({"queue_name": "queue-{caller}", "reference": "one-{caller}"})),
            Operate,
            201,
        ),
        row(
            M::POST,
            "/api/v1/queues/queue-{caller}/items",
            Some(json!({"items": [{"reference": "bulk-{caller}"}]})),
            Operate,
            201,
        ),
        row(
            M::PUT,
            "/api/v1/queue-items/{item_id}/status",
            Some(json!({"status": "ABANDONED", "message": "abandoned by {caller}"})),
            Operate,
            200,
        ),
        row(
            M::PUT,
            "/api/v1/queues/queue-{caller}",
            Some(json!({"max_retries": 7})),
            Develop,
            200,
        ),
        row(
            M::POST,
            "/api/v1/robots/{robot}/queue-items/claim",
            Some(json!({"queue_name": "claim-{caller}"})),
            RobotProtocol,
            200,
        ),
        row(
            M::PUT,
            "/api/v1/robots/{robot}/queue-items/{claim_item_id}",
            Some(json!({"status": "DONE"})),
            RobotProtocol,
            200,
        ),
        // Triggers.
        row(M::GET, "/api/v1/triggers", None, Read, 200),
        row(M::GET, "/api/v1/triggers/{trigger_id}", None, Read, 200),
        row(
            M::POST,
            "/api/v1/triggers",
            Some(json!({"trigger_name": "created-{caller}", "type": "SINGLE",
                        "workflow_id": "{workflow_id}", "enabled": false})),
            Develop,
            201,
        ),
        row(
            M::PUT,
            "/api/v1/triggers/{trigger_id}",
            Some(json!({"priority": 1})),
            Develop,
            200,
        ),
        row(
            M::POST,
            "/api/trigger",
            Some(json!({"trigger_name": "trigger-{caller}", "process_status": "DONE"})),
            Operate,
            200,
        ),
        row(
            M::DELETE,
            "/api/v1/triggers/{trigger_id}",
            None,
            Develop,
            200,
        ),
        // Workflows. They start as webhooks, so that submitting one queues no job.
        row(M::GET, "/api/v1/workflows", None, Read, 200),
        row(M::GET, "/api/v1/workflows/{workflow_id}", None, Read, 200),
        row(
            M::POST,
            "/api/v1/workflows",
            Some(
                json!({"workflow_name": "submitted-{caller}", "workflow_json": small_graph(),
                        "trigger_type": "webhook"}),
            ),
            Develop,
            200,
        ),
        upload_row(
            "/api/v1/workflows/upload",
            "uploaded-{caller}.json",
            small_graph(),
            &[
                ("workflow_name", "uploaded-{caller}"),
                ("trigger_type", "webhook"),
            ],
            Develop,
            200,
        ),
        row(
            M::DELETE,
            "/api/v1/workflows/{victim_workflow_id}",
            None,
            Develop,
            200,
        ),
        // Agents and messages.
        row(M::GET, "/api/v1/agents", None, Read, 200),
        row(M::GET, "/api/v1/agents/{agent_id}", None, Read, 200),
        row(
            M::GET,
            "/api/v1/agents/{agent_id}/messages",
            None,
            Read,
            200,
        ),
        row(M::GET, "/api/v1/messages/{message_id}", None, Read, 200),
        // Jobs. A job run here has the lowest priority, so that no claim takes it.
        row(M::GET, "/api/v1/jobs", None, Read, 200),
        row(M::GET, "/api/v1/jobs/{job_id}", None, Read, 200),
        row(
            M::POST,
            "/api/v1/jobs",
            Some(json!({"workflow_id": "{workflow_id}", "priority": 20})),
            Operate,
            201,
        ),
        row(M::POST, "/api/v1/jobs/{job_id}/cancel", None, Operate, 200),
        // The robot protocol. The claim answers at once (`wait_seconds: 0`), and hands out a
        // job: every caller's fixtures leave one more of the highest priority pending, and each
        // caller claims at most one.
        row(
            M::POST,
            "/api/v1/robots/{robot}/jobs/claim",
            Some(json!({"wait_seconds": 0})),
            RobotProtocol,
            200,
        ),
        row(
            M::POST,
            "/api/v1/robots/{robot}/jobs/{held_job_id}/start",
            None,
            RobotProtocol,
            200,
        ),
        row(
            M::POST,
            "/api/v1/robots/{robot}/jobs/{held_job_id}/progress",
            Some(
                json!({"node_id": "start", "status": "completed", "duration_ms": 1,
                        "messages": []}),
            ),
            RobotProtocol,
            200,
        ),
        row(
            M::POST,
            "/api/v1/robots/{robot}/jobs/{held_job_id}/renew",
            None,
            RobotProtocol,
            200,
        ),
        row(
            M::POST,
            "/api/v1/robots/{robot}/jobs/{held_job_id}/complete",
            Some(json!({"output": {"by": "{caller}"}})),
            RobotProtocol,
            200,
        ),
        row(
            M::POST,
            "/api/v1/robots/{robot}/jobs/{failing_job_id}/fail",
            Some(json!({"error_type": "MatrixError", "error_message": "failed by {caller}"})),
            RobotProtocol,
            200,
        ),
        row(
            M::POST,
            "/api/v1/robots/{robot}/jobs/{released_job_id}/release",
            None,
            RobotProtocol,
            200,
        ),
        row(
            M::POST,
            "/api/v1/robots/{robot}/jobs/{cancelling_job_id}/cancelled",
            None,
            RobotProtocol,
            200,
        ),
    ]
}

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    /// The robot `{robot}` with its token in `X-Api-Token`.
    Robot,
    /// A user of this role, with a JWT access token.
    User(Role),
    /// An API key of this role, in `X-API-Key`.
    Key(Role),
    /// An API key of this role, in `Authorization: Bearer`.
    BearerKey(Role),
}

impl Who {
    fn slug(self) -> String {
        match self {
            Who::Nobody => "nobody".to_owned(),
            Who::Robot => "robot".to_owned(),
            Who::User(role) => format!("user-{}", role.name()),
            Who::Key(role) => format!("key-{}", role.name()),
            Who::BearerKey(role) => format!("bearer-key-{}", role.name()),
        }
    }

    /// The status `need` gets from this caller: `None` when allowed.
    fn refusal(self, need: Need) -> Option<u16> {
        match self {
            Who::Nobody => Some(401),
            Who::Robot => (need != Need::RobotProtocol).then_some(403),
            Who::User(role) | Who::Key(role) | Who::BearerKey(role) => {
                (role < need.weakest_role()).then_some(403)
            }
        }
    }
}

/// The robot whose token is the robot caller's credential.
const MATRIX_ROBOT: &str = "matrix-robot";
/// The robot the admin acts for to run the job whose message the agent rows read.
const RUNNER_ROBOT: &str = "matrix-runner";

enum Credential {
    None,
    Bearer(String),
    ApiKey(String),
    RobotToken(String),
}

struct Caller {
    who: Who,
    credential: Credential,
}

/// The admin's side of the test: creating callers and fixtures, and reading what the calls
/// left behind.
struct Admin<'a> {
    app: &'a TestApp,
    token: String,
}

impl<'a> Admin<'a> {
    async fn new(app: &'a TestApp) -> Self {
        Admin {
            app,
            token: app.admin_token().await,
        }
    }

    /// Sends `method path` with `body` as the admin; panics unless the answer is `expected`.
    async fn send(&self, method: Method, path: &str, body: Option<Value>, expected: u16) -> Value {
        let mut request = self
            .app
            .client
            .request(method.clone(), self.app.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let reply = if status == 204 {
            Value::Null
        } else {
            json(response).await.1
        };
        let body = body.unwrap_or(Value::Null);
        assert_eq!(
            status, expected,
            "{method} {path} {body} as the admin: {reply}"
        );
        reply
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.send(Method::POST, path, Some(body), 201).await
    }

    async fn get(&self, path: &str) -> Value {
        self.send(Method::GET, path, None, 200).await
    }

    /// Submits a workflow starting as a webhook (so that no job is queued); returns its id.
    async fn workflow(&self, name: &str, graph: Value) -> String {
        let body =
            json!({"workflow_name": name, "workflow_json": graph, "trigger_type": "webhook"});
        let submitted = self
            .send(Method::POST, "/api/v1/workflows", Some(body), 200)
            .await;
        submitted["workflow_id"].as_str().unwrap().to_owned()
    }

    /// Adds one item to `queue`; returns its id.
    async fn queue_item(&self, queue: &str) -> String {
        let added = self
            .post(
                &format!("/api/v1/queues/{queue}/items"),
                json!({"items": [{}]}),
            )
            .await;
        added["ids"][0].as_str().unwrap().to_owned()
    }

    /// Queues a job of `workflow` at `priority`; returns its id.
    async fn job(&self, workflow: &str, priority: u8) -> String {
        let job = self
            .post(
                "/api/v1/jobs",
                json!({"workflow_id": workflow, "priority": priority}),
            )
            .await;
        job["job_id"].as_str().unwrap().to_owned()
    }

    /// Claims a job for [`MATRIX_ROBOT`] (acting for it as an operator may); returns its id.
    async fn claim_for_matrix_robot(&self) -> String {
        let claimed = self
            .send(
                Method::POST,
                &format!("/api/v1/robots/{MATRIX_ROBOT}/jobs/claim"),
                Some(json!({"wait_seconds": 0})),
                200,
            )
            .await;
        claimed["job_id"].as_str().unwrap().to_owned()
    }

    async fn users(&self) -> BTreeSet<String> {
        names(&self.get("/api/v1/users").await, "username")
    }

    /// The robot caller's robot, created once per server; returns its token.
    async fn create_matrix_robot(&self) -> String {
        let body = self
            .post("/api/v1/robots", json!({"robot_id": MATRIX_ROBOT}))
            .await;
        body["token"].as_str().unwrap().to_owned()
    }

    /// An agent with a message, for the agent and message rows, made the way robots make
    /// messages: a job of a one-node workflow, claimed, reported and completed by the admin
    /// acting for [`RUNNER_ROBOT`] (operators may act for robots while `ROBOT_AUTH_ENABLED` is
    /// off, the default). Runs before any caller's fixtures, so the job is the only one to claim.
    /// Returns the placeholders `agent_id` and `message_id`.
    async fn agent_with_a_message(&self) -> [(&'static str, String); 2] {
        let graph = json!({"nodes": [{"id": "fetch", "type": "HttpRequest"}]});
        let workflow = self.workflow("matrix-messages", graph).await;
        let job = self.job(&workflow, 0).await;
        self.post("/api/v1/robots", json!({"robot_id": RUNNER_ROBOT}))
            .await;
        let robot_call = |action: &str| format!("/api/v1/robots/{RUNNER_ROBOT}/jobs/{action}");
        let claimed = self
            .send(
                Method::POST,
                &robot_call("claim"),
                Some(json!({"wait_seconds": 0})),
                200,
            )
            .await;
        assert_eq!(claimed["job_id"], job.as_str(), "{claimed}");
        self.send(
            Method::POST,
            &robot_call(&format!("{job}/start")),
            None,
            200,
        )
        .await;
        let progress = json!({"node_id": "fetch", "status": "completed", "duration_ms": 1,
                              "messages": [{"rows": 3}]});
        self.send(
            Method::POST,
            &robot_call(&format!("{job}/progress")),
            Some(progress),
            200,
        )
        .await;
        self.send(
            Method::POST,
            &robot_call(&format!("{job}/complete")),
            Some(json!({"output": {}})),
            200,
        )
        .await;
        let detail = self.get(&format!("/api/v1/workflows/{workflow}")).await;
        let agent = detail["agents"][0]["id"].as_str().unwrap().to_owned();
        let messages = self.get(&format!("/api/v1/agents/{agent}/messages")).await;
        let message = messages[0]["id"].as_str().unwrap().to_owned();
        [("agent_id", agent), ("message_id", message)]
    }

    async fn caller(&self, who: Who, robot_token: &str) -> Caller {
        let credential = match who {
            Who::Nobody => Credential::None,
            Who::Robot => Credential::RobotToken(robot_token.to_owned()),
            Who::User(role) => {
                Credential::Bearer(self.app.user_token(&who.slug(), &[role.name()]).await)
            }
            Who::Key(role) => {
                Credential::ApiKey(self.app.api_key(&who.slug(), &[role.name()]).await)
            }
            Who::BearerKey(role) => {
                Credential::Bearer(self.app.api_key(&who.slug(), &[role.name()]).await)
            }
        };
        Caller { who, credential }
    }
}

/// The `field` of every object of a JSON array.
fn names(list: &Value, field: &str) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|entry| entry[field].as_str().unwrap().to_owned())
        .collect()
}

/// The placeholders' values for one caller, and the things the admin created for it.
struct Fixtures {
    vars: BTreeMap<&'static str, String>,
}

impl Fixtures {
    /// Creates what `who`'s calls act on; `shared` holds the placeholders every caller shares.
    async fn create(admin: &Admin<'_>, who: Who, shared: &[(&'static str, String)]) -> Self {
        let slug = who.slug();
        let victim = format!("victim-{slug}");
        admin
            .post(
                "/api/v1/users",
                json!({"username": victim, "password": "victim-password", "roles": ["viewer"]}),
            )
            .await;
        let key = admin
            .post(
                "/api/v1/api-keys",
                json!({"name": victim, "roles": ["viewer"]}),
            )
            .await;
        admin
            .post("/api/v1/robots", json!({"robot_id": victim}))
            .await;
        let workflow = admin.workflow(&format!("work-{slug}"), small_graph()).await;
        let victim_workflow = admin.workflow(&victim, small_graph()).await;
        // Disabled, so that the engine never fires it while the matrix runs.
        let trigger = admin
            .post(
                "/api/v1/triggers",
                json!({"trigger_name": format!("trigger-{slug}"), "type": "SINGLE",
                       "workflow_id": workflow, "enabled": false, "priority": 5}),
            )
            .await;
        let item = admin.queue_item(&format!("queue-{slug}")).await;
        let claim_item = admin.queue_item(&format!("claim-{slug}")).await;
        let job = admin.job(&workflow, 20).await;
        // Jobs of the highest priority are claimed first, so the lowest-priority job above is
        // never claimed and stays the caller's to cancel. Of the five below, four are claimed
        // for the robot protocol's rows (each claim takes this caller's job or an earlier
        // caller's: either will do), and one is left for the claim row.
        for _ in 0..5 {
            admin.job(&workflow, 0).await;
        }
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(admin.claim_for_matrix_robot().await);
        }
        let [held_job, failing_job, released_job, cancelling_job] = held.try_into().unwrap();
        admin
            .send(
                Method::POST,
                &format!("/api/v1/jobs/{cancelling_job}/cancel"),
                None,
                200,
            )
            .await;
        let mut vars = BTreeMap::from([
            ("caller", slug),
            ("victim_key_id", key["id"].as_str().unwrap().to_owned()),
            ("robot", MATRIX_ROBOT.to_owned()),
            ("workflow_id", workflow),
            ("victim_workflow_id", victim_workflow),
            ("trigger_id", trigger["id"].as_str().unwrap().to_owned()),
            ("item_id", item),
            ("claim_item_id", claim_item),
            ("job_id", job),
            ("held_job_id", held_job),
            ("failing_job_id", failing_job),
            ("released_job_id", released_job),
            ("cancelling_job_id", cancelling_job),
        ]);
        vars.extend(shared.iter().cloned());
        Fixtures { vars }
    }

    fn fill(&self, template: &str) -> String {
        self.vars
            .iter()
            .fold(template.to_owned(), |text, (name, value)| {
                text.replace(&format!("{{{name}}}"), value)
            })
    }

    fn var(&self, name: &str) -> &str {
        &self.vars[name]
    }
}

/// One call of the matrix and what came of it.
struct Outcome {
    who: Who,
    request: String,
    status: u16,
    /// Why the answer is wrong, if it is.
    problem: Option<String>,
}

/// One caller's pass over the rows: its fixtures and the outcome of each row, in order.
struct Pass {
    who: Who,
    fixtures: Fixtures,
    outcomes: Vec<Outcome>,
}

/// A server's admin and robot caller, ready to run the matrix (more than once).
struct Matrix<'a> {
    app: &'a TestApp,
    admin: Admin<'a>,
    robot_token: String,
    /// The placeholders every caller shares.
    shared: Vec<(&'static str, String)>,
}

impl<'a> Matrix<'a> {
    async fn new(app: &'a TestApp) -> Self {
        let admin = Admin::new(app).await;
        let robot_token = admin.create_matrix_robot().await;
        let shared = admin.agent_with_a_message().await.to_vec();
        Matrix {
            app,
            admin,
            robot_token,
            shared,
        }
    }

    /// Calls every row of `rows` as each of `callers` (each with fixtures of its own).
    async fn run(&self, rows: &[Row], callers: &[Who]) -> Vec<Pass> {
        let mut passes = Vec::new();
        for &who in callers {
            let caller = self.admin.caller(who, &self.robot_token).await;
            let fixtures = Fixtures::create(&self.admin, who, &self.shared).await;
            let mut outcomes = Vec::with_capacity(rows.len());
            for row in rows {
                outcomes.push(call(self.app, &caller, &fixtures, row).await);
            }
            passes.push(Pass {
                who,
                fixtures,
                outcomes,
            });
        }
        passes
    }
}

/// The server the matrix runs on: SQLite, with rate limits off, since every caller calls
/// `/api/trigger` (10 a minute per address) and the matrix is about roles, not rates.
async fn matrix_server() -> TestApp {
    TestApp::spawn_with(TestDatabase::sqlite().await, |c| c.rate_limits = false).await
}

async fn call(app: &TestApp, caller: &Caller, fixtures: &Fixtures, row: &Row) -> Outcome {
    let path = fixtures.fill(row.path);
    let mut request = app.client.request(row.method.clone(), app.url(&path));
    let mut described = format!("{} {path}", row.method);
    match &row.body {
        None => {}
        Some(Body::Json(body)) => {
            let body: Value = serde_json::from_str(&fixtures.fill(&body.to_string())).unwrap();
            described.push_str(&format!(" {body}"));
            request = request.json(&body);
        }
        Some(Body::Upload {
            file_name,
            file,
            fields,
        }) => {
            let file_name = fixtures.fill(file_name);
            let content = fixtures.fill(&file.to_string());
            described.push_str(&format!(" multipart file {file_name}: {content}"));
            let part = Part::text(content)
                .file_name(file_name)
                .mime_str("application/json")
                .unwrap();
            let mut form = Form::new().part("file", part);
            for (name, value) in *fields {
                let value = fixtures.fill(value);
                described.push_str(&format!(", {name}={value}"));
                form = form.text(*name, value);
            }
            request = request.multipart(form);
        }
    }
    request = match &caller.credential {
        Credential::None => request,
        Credential::Bearer(token) => request.bearer_auth(token),
        Credential::ApiKey(key) => request.header("X-API-Key", key),
        Credential::RobotToken(token) => request.header("X-Api-Token", token),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap();
    let problem = match caller.who.refusal(row.need) {
        None if status == row.allowed => None,
        None => Some(format!("allowed, so expected {}", row.allowed)),
        Some(expected) if status != expected => Some(format!("refused, so expected {expected}")),
        Some(_) => refusal_shape_problem(status, content_type.as_deref(), &text),
    };
    Outcome {
        who: caller.who,
        request: described,
        status,
        problem: problem.map(|p| format!("{p}, got {status} {text}")),
    }
}

/// What is wrong with a 401/403's body, if anything: it must be the API's JSON error shape.
fn refusal_shape_problem(status: u16, content_type: Option<&str>, text: &str) -> Option<String> {
    if content_type != Some("application/json") {
        return Some(format!(
            "the refusal's content type is {content_type:?}, not application/json"
        ));
    }
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return Some("the refusal is not JSON".to_owned());
    };
    let reason = if status == 401 {
        "Unauthorized"
    } else {
        "Forbidden"
    };
    if body["error"] != reason || !body["detail"].is_string() {
        return Some(format!(
            "the refusal is not {{\"error\": \"{reason}\", \"detail\": …}}"
        ));
    }
    None
}

/// Panics listing every wrong answer at once.
fn assert_no_problems(passes: &[Pass]) {
    let outcomes = || passes.iter().flat_map(|pass| &pass.outcomes);
    let problems: Vec<String> = outcomes()
        .filter_map(|o| {
            o.problem
                .as_ref()
                .map(|p| format!("{:?}: {}: {p}", o.who, o.request))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{} of {} calls got a wrong answer:\n{}",
        problems.len(),
        outcomes().count(),
        problems.join("\n")
    );
}

/// The entries of a JSON array by their `field`.
fn by_name<'v>(list: &'v Value, field: &str) -> BTreeMap<&'v str, &'v Value> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry[field].as_str().unwrap(), entry))
        .collect()
}

/// Refused calls changed nothing, and allowed ones did what they said: checked on what every
/// pass left behind, as the admin reads it. (The job claim, fail and release are not checked
/// here: a failed job with retries left and a released one are pending again, to be claimed by
/// a later caller, and which job a claim took depends on the callers before.)
async fn assert_only_allowed_calls_changed_anything(admin: &Admin<'_>, passes: &[Pass]) {
    let users = admin.users().await;
    let queues = admin.get("/api/v1/queues").await;
    let queues = by_name(&queues, "queue_name");
    let triggers = admin.get("/api/v1/triggers").await;
    let triggers = by_name(&triggers, "trigger_name");
    let workflows = names(&admin.get("/api/v1/workflows").await, "name");
    for Pass { who, fixtures, .. } in passes {
        let slug = who.slug();
        let may = |need: Need| who.refusal(need).is_none();

        // Users: the victims of refused callers are still there, and the users they tried to
        // create are not.
        let administer = may(Need::Administer);
        assert_eq!(
            users.contains(&format!("victim-{slug}")),
            !administer,
            "victim-{slug} after {who:?}'s delete"
        );
        assert_eq!(
            users.contains(&format!("new-{slug}")),
            administer,
            "new-{slug} after {who:?}'s create"
        );

        // Queues: an operator added two items and abandoned the first; a developer changed
        // the settings; the robot protocol claimed and finished the item of claim-{caller}.
        let queue = queues[format!("queue-{slug}").as_str()];
        let (new, abandoned) = if may(Need::Operate) { (2, 1) } else { (1, 0) };
        assert_eq!(queue["counts"]["NEW"], new, "{who:?}: {queue}");
        assert_eq!(queue["counts"]["ABANDONED"], abandoned, "{who:?}: {queue}");
        assert_eq!(
            queue["max_retries"] == 7,
            may(Need::Develop),
            "{who:?}: {queue}"
        );
        let claim = queues[format!("claim-{slug}").as_str()];
        let (new, done) = if may(Need::RobotProtocol) {
            (0, 1)
        } else {
            (1, 0)
        };
        assert_eq!(claim["counts"]["NEW"], new, "{who:?}: {claim}");
        assert_eq!(claim["counts"]["DONE"], done, "{who:?}: {claim}");

        // Triggers: a developer created one and deleted the caller's; otherwise that one is
        // unchanged but for the status an operator set.
        assert_eq!(
            triggers.contains_key(format!("created-{slug}").as_str()),
            may(Need::Develop),
            "created-{slug} after {who:?}'s create"
        );
        match triggers.get(format!("trigger-{slug}").as_str()) {
            None => assert!(may(Need::Develop), "{who:?} deleted trigger-{slug}"),
            Some(trigger) => {
                assert!(!may(Need::Develop), "{who:?} did not delete {trigger}");
                assert_eq!(trigger["priority"], 5, "{who:?} changed {trigger}");
                let status = if may(Need::Operate) { "DONE" } else { "IDLE" };
                assert_eq!(trigger["process_status"], status, "{who:?}: {trigger}");
            }
        }

        // Workflows: a developer submitted and uploaded one and deleted the victim.
        let develop = may(Need::Develop);
        for (name, exists) in [
            (format!("submitted-{slug}"), develop),
            (format!("uploaded-{slug}"), develop),
            (format!("victim-{slug}"), !develop),
        ] {
            assert_eq!(workflows.contains(&name), exists, "{name} after {who:?}");
        }

        // Jobs: an operator ran one more of the caller's workflow and cancelled its job.
        let job = admin
            .get(&format!("/api/v1/jobs/{}", fixtures.var("job_id")))
            .await;
        let status = if may(Need::Operate) {
            "cancelled"
        } else {
            "pending"
        };
        assert_eq!(job["status"], status, "{who:?}: {job}");
        let jobs = admin
            .get(&format!(
                "/api/v1/jobs?workflow_id={}&limit=500",
                fixtures.var("workflow_id")
            ))
            .await;
        let ran = usize::from(may(Need::Operate));
        assert_eq!(jobs.as_array().unwrap().len(), 6 + ran, "{who:?}: {jobs}");

        // The robot protocol completed one held job and acknowledged the cancel of another;
        // a refused robot's jobs are still held.
        for (job, ended) in [
            ("held_job_id", "completed"),
            ("cancelling_job_id", "cancelled"),
        ] {
            let job = admin
                .get(&format!("/api/v1/jobs/{}", fixtures.var(job)))
                .await;
            let status = if may(Need::RobotProtocol) {
                ended
            } else {
                "claimed"
            };
            assert_eq!(job["status"], status, "{who:?}: {job}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_caller_gets_what_its_role_allows_on_every_route() {
    let app = matrix_server().await;
    let rows = routes();
    let mut callers = vec![Who::Nobody, Who::Robot];
    callers.extend(Role::ALL.map(Who::User));
    callers.extend(Role::ALL.map(Who::Key));
    let matrix = Matrix::new(&app).await;
    let passes = matrix.run(&rows, &callers).await;
    assert_eq!(passes.len(), callers.len());
    assert!(passes.iter().all(|pass| pass.outcomes.len() == rows.len()));
    assert_no_problems(&passes);
    assert_only_allowed_calls_changed_anything(&matrix.admin, &passes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_and_jwts_of_one_role_get_the_same_answers() {
    let app = matrix_server().await;
    let rows = routes();
    let matrix = Matrix::new(&app).await;
    for role in Role::ALL {
        let forms = [Who::User(role), Who::Key(role), Who::BearerKey(role)];
        let passes = matrix.run(&rows, &forms).await;
        assert_no_problems(&passes);
        let statuses: Vec<Vec<u16>> = passes
            .iter()
            .map(|pass| pass.outcomes.iter().map(|o| o.status).collect())
            .collect();
        assert_eq!(statuses.len(), forms.len());
        for (who, got) in forms.iter().zip(&statuses).skip(1) {
            assert_eq!(
                got, &statuses[0],
                "{who:?} and {:?} answered differently",
                forms[0]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_mode_serves_every_route_without_credentials_as_every_role() {
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| c.jwt_dev_mode = true).await;
    let (status, me) = json(app.get("/api/v1/auth/me").await).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["dev_mode"], true, "{me}");
    let roles: BTreeSet<&str> = me["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        BTreeSet::from(["admin", "developer", "operator", "viewer"])
    );
    assert_eq!(me["roles"].as_array().unwrap().len(), 4, "{me}");

    // An admin-only route answers too.
    let (status, users) = json(app.get("/api/v1/users").await).await;
    assert_eq!(status, 200, "{users}");
    let created = app
        .client
        .post(app.url("/api/v1/robots"))
        .json(&json!({"robot_id": "dev-robot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_dev_mode_me_needs_credentials() {
    let app = TestApp::spawn_sqlite().await;
    let body = expect_error(app.get("/api/v1/auth/me").await, 401).await;
    assert_eq!(body["error"], "Unauthorized");
}
