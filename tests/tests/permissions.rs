//! The permission matrix over HTTP (DESIGN §5, CasareRPA's roles): every route that needs a
//! role, called by a user of each role (JWT), an API key of each role, a robot token and nobody.
//! Allowed calls succeed; refused ones are 403 (401 without credentials) in the error shape.
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
    #[allow(
        dead_code,
        reason = "no route needs it yet: queues, triggers, jobs and flows will"
    )]
    Operate,
    /// Developers and up.
    #[allow(
        dead_code,
        reason = "no route needs it yet: workflows, schedules, triggers and flows will"
    )]
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
/// - `{robot}`: the robot whose token is the robot caller's credential.
struct Row {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    need: Need,
    /// The status of an allowed call: bodies and fixtures are designed so allowed calls succeed.
    allowed: u16,
}

fn row(method: Method, path: &'static str, body: Option<Value>, need: Need, allowed: u16) -> Row {
    Row {
        method,
        path,
        body,
        need,
        allowed,
    }
}

/// Every route that needs a role. Later issues add rows here for queues, triggers, workflows,
/// jobs, schedules and flows (creating any fixtures they need in [`Fixtures::create`]).
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

/// The admin's side of the test: creating callers and fixtures.
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

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, reply) = json(
            self.app
                .client
                .post(self.app.url(path))
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "POST {path} {body} as the admin: {reply}");
        reply
    }

    async fn users(&self) -> BTreeSet<String> {
        let (status, body) = json(
            self.app
                .client
                .get(self.app.url("/api/v1/users"))
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The robot caller's robot, created once per server; returns its token.
    async fn create_matrix_robot(&self) -> String {
        let body = self
            .post("/api/v1/robots", json!({"robot_id": MATRIX_ROBOT}))
            .await;
        body["token"].as_str().unwrap().to_owned()
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

/// The placeholders' values for one caller, and the things the admin created for it.
struct Fixtures {
    vars: BTreeMap<&'static str, String>,
}

impl Fixtures {
    async fn create(admin: &Admin<'_>, who: Who) -> Self {
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
        let vars = BTreeMap::from([
            ("caller", slug),
            ("victim_key_id", key["id"].as_str().unwrap().to_owned()),
            ("robot", MATRIX_ROBOT.to_owned()),
        ]);
        Fixtures { vars }
    }

    fn fill(&self, template: &str) -> String {
        self.vars
            .iter()
            .fold(template.to_owned(), |text, (name, value)| {
                text.replace(&format!("{{{name}}}"), value)
            })
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

/// A server's admin and robot caller, ready to run the matrix (more than once).
struct Matrix<'a> {
    app: &'a TestApp,
    admin: Admin<'a>,
    robot_token: String,
}

impl<'a> Matrix<'a> {
    async fn new(app: &'a TestApp) -> Self {
        let admin = Admin::new(app).await;
        let robot_token = admin.create_matrix_robot().await;
        Matrix {
            app,
            admin,
            robot_token,
        }
    }

    /// Calls every row of `rows` as each of `callers` (each with fixtures of its own).
    async fn run(&self, rows: &[Row], callers: &[Who]) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        for &who in callers {
            let caller = self.admin.caller(who, &self.robot_token).await;
            let fixtures = Fixtures::create(&self.admin, who).await;
            for row in rows {
                outcomes.push(call(self.app, &caller, &fixtures, row).await);
            }
        }
        outcomes
    }
}

async fn call(app: &TestApp, caller: &Caller, fixtures: &Fixtures, row: &Row) -> Outcome {
    let path = fixtures.fill(row.path);
    let mut request = app.client.request(row.method.clone(), app.url(&path));
    let mut described = format!("{} {path}", row.method);
    if let Some(body) = &row.body {
        let body: Value = serde_json::from_str(&fixtures.fill(&body.to_string())).unwrap();
        described.push_str(&format!(" {body}"));
        request = request.json(&body);
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
fn assert_no_problems(outcomes: &[Outcome]) {
    let problems: Vec<String> = outcomes
        .iter()
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
        outcomes.len(),
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_caller_gets_what_its_role_allows_on_every_route() {
    let app = TestApp::spawn_sqlite().await;
    let rows = routes();
    let mut callers = vec![Who::Nobody, Who::Robot];
    callers.extend(Role::ALL.map(Who::User));
    callers.extend(Role::ALL.map(Who::Key));
    let matrix = Matrix::new(&app).await;
    let outcomes = matrix.run(&rows, &callers).await;
    assert_eq!(outcomes.len(), rows.len() * callers.len());
    assert_no_problems(&outcomes);

    // Refused calls changed nothing: the victims of refused callers are still there, and the
    // users they tried to create are not.
    let users = matrix.admin.users().await;
    for who in callers {
        let slug = who.slug();
        let allowed = who.refusal(Need::Administer).is_none();
        assert_eq!(
            users.contains(&format!("victim-{slug}")),
            !allowed,
            "victim-{slug} after {who:?}'s delete"
        );
        assert_eq!(
            users.contains(&format!("new-{slug}")),
            allowed,
            "new-{slug} after {who:?}'s create"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_and_jwts_of_one_role_get_the_same_answers() {
    let app = TestApp::spawn_sqlite().await;
    let rows = routes();
    let matrix = Matrix::new(&app).await;
    for role in Role::ALL {
        let forms = [Who::User(role), Who::Key(role), Who::BearerKey(role)];
        let outcomes = matrix.run(&rows, &forms).await;
        assert_no_problems(&outcomes);
        let statuses: Vec<Vec<u16>> = outcomes
            .chunks(rows.len())
            .map(|chunk| chunk.iter().map(|o| o.status).collect())
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
