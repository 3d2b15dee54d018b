//! The route table the document is built from: one entry per method and path the app mounts.
//! The black-box test `tests/tests/openapi.rs` checks it against the routes `routes/*.rs`
//! mount and probes every entry on a real server, so an undocumented route fails the build.

use serde_json::{Value, json};

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// Who may call a route: nobody in particular, a role (the `Authorized<…>` extractors), a
/// robot with its token, a Prometheus scraper, or a webhook caller holding the URL's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Public,
    Read,
    Operate,
    Develop,
    Administer,
    Robot,
    Scrape,
    Socket,
}

/// What a route answers when it succeeds.
#[derive(Debug, Clone)]
pub enum Success {
    Json(u16, Value),
    /// A body that is not JSON: its content type and what it is.
    Text(&'static str, &'static str),
    /// `303 See Other` to this location.
    Redirect(&'static str),
    Upgrade,
}

/// What a route reads from its body.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    Multipart(Value),
}

/// One documented operation.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    pub query: Vec<(&'static str, Value, &'static str)>,
    pub body: Body,
    pub success: Success,
    pub extra_errors: Vec<u16>,
    /// The seed's request and response examples, where the seed is not the CasareRPA document
    /// (whose examples are read from the seed itself, see `examples.rs`).
    pub request_example: Option<Value>,
    pub response_example: Option<Value>,
    /// The body may be left out.
    pub body_optional: bool,
    /// Success answers besides the main one, e.g. a long poll's `204`.
    pub also: Vec<(u16, &'static str)>,
    /// Headers of the main success answer: name and description (all strings).
    pub headers: Vec<(&'static str, &'static str)>,
}

const PY: &str = "PyOrchestrator";
const CASARE: &str = "CasareRPA";
const AW: &str = "ActiveWorkflow";
const FLOWS: &str = "Flows";
const BATON: &str = "Baton";

fn route(method: Method, path: &'static str, tag: &'static str, summary: &'static str) -> Route {
    Route {
        method,
        path,
        tag,
        summary,
        auth: Auth::Read,
        query: Vec::new(),
        body: Body::None,
        success: Success::Json(200, json!({"type": "object"})),
        extra_errors: Vec::new(),
        request_example: None,
        response_example: None,
        body_optional: false,
        also: Vec::new(),
        headers: Vec::new(),
    }
}

impl Route {
    fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }
    fn query(mut self, name: &'static str, schema: Value, description: &'static str) -> Self {
        self.query.push((name, schema, description));
        self
    }
    fn json(mut self, schema: Value) -> Self {
        self.body = Body::Json(schema);
        self
    }
    fn ok(mut self, status: u16, schema: Value) -> Self {
        self.success = Success::Json(status, schema);
        self
    }
    fn examples(mut self, request: Option<Value>, response: Option<Value>) -> Self {
        self.request_example = request;
        self.response_example = response;
        self
    }
    fn optional(mut self) -> Self {
        self.body_optional = true;
        self
    }
    fn also(mut self, status: u16, description: &'static str) -> Self {
        self.also.push((status, description));
        self
    }
    fn header(mut self, name: &'static str, description: &'static str) -> Self {
        self.headers.push((name, description));
        self
    }
    fn errors(mut self, statuses: &[u16]) -> Self {
        self.extra_errors.extend_from_slice(statuses);
        self
    }
}

fn s() -> Value {
    json!({"type": "string"})
}
fn obj(required: &[&str], properties: Value) -> Value {
    if required.is_empty() {
        json!({"type": "object", "properties": properties})
    } else {
        json!({"type": "object", "required": required, "properties": properties})
    }
}
fn list(items: Value) -> Value {
    json!({"type": "array", "items": items})
}
fn limit(max: u64) -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": max})
}
fn roles() -> Value {
    json!({"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["viewer", "operator", "developer", "admin"]}})
}
fn json_object() -> Value {
    json!({"type": "object", "additionalProperties": true})
}
fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Every route of the app, in the order `routes::configure` mounts them.
pub fn routes() -> Vec<Route> {
    use Method::*;
    let mut all = Vec::new();
    all.extend(health("", CASARE));
    all.push(
        route(Get, "/metrics", BATON, "Prometheus text exposition")
            .auth(Auth::Scrape)
            .tap_text(),
    );
    all.push(pyorchestrator_queue());
    all.push(pyorchestrator_trigger());
    for feed in ["/ws/live-jobs", "/ws/robot-status", "/ws/queue-metrics"] {
        all.push(
            route(Get, feed, CASARE, "Websocket feed (upgrade with `?token=`)")
                .auth(Auth::Socket)
                .tap_upgrade(),
        );
    }
    all.push(Route {
        success: Success::Text("text/html; charset=utf-8", "Swagger UI over this document"),
        ..route(Get, "/docs", BATON, "Interactive API documentation").auth(Auth::Public)
    });
    all.push(Route {
        success: Success::Text(
            "text/javascript; charset=utf-8",
            "A script, stylesheet or license of the page",
        ),
        ..route(
            Get,
            "/docs/{asset}",
            BATON,
            "An asset of /docs (built into the binary)",
        )
        .auth(Auth::Public)
    });
    all.push(Route {
        success: Success::Redirect("/ui/"),
        ..route(
            Get,
            "/",
            BATON,
            "A browser (Accept: text/html) is sent to the console",
        )
        .auth(Auth::Public)
        .also(404, "Not a browser: there is no API route at /")
    });
    all.push(Route {
        success: Success::Redirect("/ui/"),
        ..route(Get, "/ui", BATON, "The console, at /ui/").auth(Auth::Public)
    });
    all.push(Route {
        success: Success::Text(
            "text/javascript; charset=utf-8",
            "A script, stylesheet or icon of the console",
        ),
        ..route(
            Get,
            "/ui/assets/{asset}",
            BATON,
            "An asset of the console (built into the binary)",
        )
        .auth(Auth::Public)
    });
    all.push(Route {
        success: Success::Text(
            "text/html; charset=utf-8",
            "The console's page, whose script shows the path's view",
        ),
        ..route(
            Get,
            "/ui/{path}",
            BATON,
            "The console (signs in through /api/v1/auth/session)",
        )
        .auth(Auth::Public)
    });
    all.extend(health("/api/v1", CASARE));
    all.push(
        route(
            Get,
            "/api/v1/openapi.json",
            BATON,
            "This OpenAPI 3.1 document",
        )
        .auth(Auth::Public),
    );
    all.extend(v1());
    all
}

impl Route {
    fn tap_text(mut self) -> Self {
        self.success = Success::Text(
            "text/plain; version=0.0.4",
            "Prometheus text exposition format",
        );
        self
    }
    fn tap_upgrade(mut self) -> Self {
        self.success = Success::Upgrade;
        self
    }
}

fn health(prefix: &'static str, tag: &'static str) -> Vec<Route> {
    use Method::Get;
    let paths: [(&'static str, &'static str, &'static str); 4] = [
        ("/health", "/api/v1/health", "Basic health check"),
        (
            "/health/detailed",
            "/api/v1/health/detailed",
            "Health with the database pool",
        ),
        (
            "/health/ready",
            "/api/v1/health/ready",
            "Readiness probe (503 when the database is down)",
        ),
        ("/health/live", "/api/v1/health/live", "Liveness probe"),
    ];
    paths
        .into_iter()
        .map(|(root, v1, summary)| {
            let path = if prefix.is_empty() { root } else { v1 };
            let r = route(Get, path, tag, summary).auth(Auth::Public);
            if root == "/health/ready" {
                r.errors(&[503])
            } else {
                r
            }
        })
        .collect()
}

fn v1() -> Vec<Route> {
    use Method::*;
    let id = json!({"type": "string", "maxLength": 255});
    vec![
        route(Post, "/api/v1/auth/login", CASARE, "Log in: JWT access and refresh tokens")
            .auth(Auth::Public)
            .json(obj(&["username", "password"], json!({"username": s(), "password": s(), "tenant_id": s()})))
            .ok(200, reference("Tokens"))
            // Wrong credentials; and once an address is banned, every call from it.
            .errors(&[401, 403]),
        route(Post, "/api/v1/auth/refresh", CASARE, "Exchange a refresh token for new tokens")
            .auth(Auth::Public)
            .json(obj(&["refresh_token"], json!({"refresh_token": s()})))
            .ok(200, reference("Tokens"))
            // A tampered, expired, revoked or reused refresh token; a banned address.
            .errors(&[401, 403]),
        route(Post, "/api/v1/auth/logout", CASARE, "Revoke the caller's session"),
        route(Post, "/api/v1/auth/session", BATON, "Console sign-in: a session in an HttpOnly cookie")
            .auth(Auth::Public)
            .json(obj(&["username", "password"], json!({"username": s(), "password": s()})))
            .ok(200, reference("BrowserSession"))
            // Wrong credentials; another origin; once an address is banned, every call from it.
            .errors(&[401, 403]),
        route(Get, "/api/v1/auth/session", BATON, "The console's session, with its CSRF token")
            .ok(200, reference("BrowserSession")),
        route(Delete, "/api/v1/auth/session", BATON, "Console sign-out: ends the cookie's session on every server")
            .ok(200, obj(&["message"], json!({"message": s()}))),
        route(Get, "/api/v1/auth/me", CASARE, "The caller"),
        route(Post, "/api/v1/users", BATON, "Create a user")
            .auth(Auth::Administer)
            .json(obj(&["username", "password", "roles"], json!({"username": s(), "password": s(), "roles": roles()})))
            .ok(201, json_object())
            .errors(&[409]),
        route(Get, "/api/v1/users", BATON, "List users").auth(Auth::Administer).ok(200, list(json_object())),
        route(Delete, "/api/v1/users/{username}", BATON, "Delete a user").auth(Auth::Administer),
        route(Post, "/api/v1/api-keys", BATON, "Create an API key (the key is shown once)")
            .auth(Auth::Administer)
            .json(obj(&["name", "roles"], json!({"name": s(), "roles": roles()})))
            .ok(201, json_object()),
        route(Get, "/api/v1/api-keys", BATON, "List API keys").auth(Auth::Administer).ok(200, list(json_object())),
        route(Delete, "/api/v1/api-keys/{id}", BATON, "Revoke an API key").auth(Auth::Administer),
        route(Get, "/api/v1/robots", BATON, "List robots with their status, current job and capabilities")
            .ok(200, list(obj(
                &["robot_id", "hostname", "status", "capabilities", "current_job_id", "last_heartbeat", "created_at"],
                json!({
                    "robot_id": s(),
                    "hostname": {"type": ["string", "null"]},
                    "status": {"type": "string", "enum": ["idle", "busy", "offline"]},
                    "capabilities": list(s()),
                    "current_job_id": {"type": ["string", "null"]},
                    "last_heartbeat": {"type": ["string", "null"], "format": "date-time"},
                    "created_at": {"type": "string", "format": "date-time"},
                }),
            ))),
        route(Post, "/api/v1/robots", BATON, "Register a robot (its token is shown once)")
            .auth(Auth::Administer)
            .json(obj(&["robot_id"], json!({"robot_id": id, "hostname": s()})))
            .ok(201, obj(&["robot_id", "token"], json!({"robot_id": s(), "token": s()})))
            .errors(&[409]),
        route(Delete, "/api/v1/robots/{robot_id}", BATON, "Delete a robot").auth(Auth::Administer),
        route(Post, "/api/v1/robots/{robot_id}/heartbeat", BATON, "Robot heartbeat")
            .auth(Auth::Robot)
            .json(obj(&[], json!({"cpu_percent": {"type": "number"}, "memory_mb": {"type": "number"}, "memory_percent": {"type": "number"}, "hostname": s()}))),
        route(Get, "/api/v1/jobs", BATON, "List jobs")
            .query("status", s(), "Only jobs in this status")
            .query("limit", limit(1000), "At most this many jobs")
            .query("workflow_id", s(), "Only jobs of this workflow")
            .query("robot_id", s(), "Only jobs of this robot")
            .query("created_after", s(), "Only jobs created strictly after this instant (ISO 8601; without an offset, UTC)")
            .query("created_before", s(), "Only jobs created strictly before this instant (ISO 8601; without an offset, UTC)")
            .query("cursor", s(), "The `X-Next-Cursor` of the previous page, as is (the same filters must be sent again)")
            .ok(200, list(reference("Job")))
            .header("X-Next-Cursor", "Present when another page follows: the `cursor` of the next page")
            .header("Link", "Present when another page follows: `<the next page's URI>; rel=\"next\"`"),
        route(Post, "/api/v1/jobs", BATON, "Run a workflow as a job")
            .auth(Auth::Operate)
            .json(obj(&["workflow_id"], json!({
                "workflow_id": {"type": "string", "format": "uuid"},
                "priority": {"type": "integer", "minimum": 0, "maximum": 20, "default": 10},
                "execution_mode": {"type": "string", "enum": ["lan", "internet"], "default": "lan"},
                "input": json_object()})))
            .ok(201, reference("Job"))
            // The workflow it names does not exist.
            .errors(&[404]),
        route(Get, "/api/v1/jobs/{id}", BATON, "A job").ok(200, reference("Job")),
        route(Post, "/api/v1/jobs/{id}/cancel", BATON, "Cancel a job (soft, or hard with `hard: true`)")
            .auth(Auth::Operate)
            .json(obj(&[], json!({"hard": {"type": "boolean", "default": false}})))
            .optional()
            .ok(200, reference("Job"))
            .errors(&[409]),
        route(Get, "/api/v1/metrics/fleet", CASARE, "Fleet metrics"),
        route(Get, "/api/v1/metrics/robots", CASARE, "Per-robot metrics").ok(200, list(json_object())),
        route(Get, "/api/v1/metrics/robots/{robot_id}", CASARE, "One robot's metrics"),
        route(Get, "/api/v1/metrics/jobs", CASARE, "Job history").ok(200, list(json_object())),
        route(Get, "/api/v1/metrics/jobs/{job_id}", CASARE, "One job's details"),
        route(Get, "/api/v1/metrics/analytics", CASARE, "Aggregated analytics"),
        route(Get, "/api/v1/metrics/activity", CASARE, "Activity feed"),
        route(Post, "/api/v1/robots/{robot_id}/jobs/claim", BATON, "Claim the next job (long poll)")
            .auth(Auth::Robot)
            .json(obj(&[], json!({"wait_seconds": {"type": "integer", "minimum": 0, "maximum": 30, "default": 20}})))
            .optional()
            .ok(200, reference("ClaimedJob"))
            .also(204, "No job became pending within `wait_seconds`"),
        route(Post, "/api/v1/robots/{robot_id}/jobs/claim-batch", BATON, "Claim up to `limit` jobs at once (long poll)")
            .auth(Auth::Robot)
            .json(obj(&[], json!({
                "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                "wait_seconds": {"type": "integer", "minimum": 0, "maximum": 30, "default": 20}
            })))
            .optional()
            .ok(200, obj(&["jobs"], json!({"jobs": list(reference("ClaimedJob"))})))
            .also(204, "No job became pending within `wait_seconds`"),
        route(Post, "/api/v1/robots/{robot_id}/jobs/finish-batch", BATON, "Complete or fail up to 100 jobs at once")
            .auth(Auth::Robot)
            .json(obj(&["jobs"], json!({"jobs": {
                "type": "array", "minItems": 1, "maxItems": 100,
                "items": obj(&["job_id", "outcome"], json!({
                    "job_id": {"type": "string", "format": "uuid"},
                    "outcome": {"type": "string", "enum": ["completed", "failed"]},
                    "output": any(),
                    "error_type": {"type": "string", "maxLength": 100, "description": "Longer text is truncated"},
                    "error_message": {"type": "string", "maxLength": 4000, "description": "Longer text is truncated"}
                }))
            }})))
            .ok(200, obj(&["results"], json!({"results": list(obj(&["job_id", "status"], json!({
                "job_id": s(),
                "status": {"type": "integer", "description": "What the one-job call would have answered: 200, 404 or 409"},
                "job": reference("Job"),
                "error": s(),
                "detail": s()
            })))}))),
        route(Post, "/api/v1/robots/{robot_id}/jobs/{job_id}/start", BATON, "Start a claimed job").auth(Auth::Robot).ok(200, reference("Lease")).errors(&[409]),
        route(Post, "/api/v1/robots/{robot_id}/jobs/{job_id}/progress", BATON, "Report one node's result")
            .auth(Auth::Robot)
            .json(obj(&["node_id", "status"], json!({
                "node_id": s(), "node_type": s(),
                "status": {"type": "string", "enum": ["completed", "failed", "skipped"]},
                "duration_ms": {"type": "integer", "minimum": 0},
                "output": any(), "error": {"type": ["string", "null"]},
                "messages": {"type": "array", "description": "Each becomes one message of the node's agent"}
            })))
            .ok(200, reference("Lease"))
            .errors(&[409]),
        route(Post, "/api/v1/robots/{robot_id}/jobs/{job_id}/renew", BATON, "Renew the lease").auth(Auth::Robot).ok(200, reference("Lease")).errors(&[409]),
        route(Post, "/api/v1/robots/{robot_id}/jobs/{job_id}/complete", BATON, "Complete a job")
            .auth(Auth::Robot)
            .json(obj(&[], json!({"output": any()})))
            .optional()
            .errors(&[409]),
        route(Post, "/api/v1/robots/{robot_id}/jobs/{job_id}/fail", BATON, "Fail a job")
            .auth(Auth::Robot)
            .json(obj(&[], json!({
                "error_type": {"type": "string", "maxLength": 100, "description": "Longer text is truncated"},
                "error_message": {"type": "string", "maxLength": 4000, "description": "Longer text is truncated"}
            })))
            .errors(&[409]),
        route(Post, "/api/v1/robots/{robot_id}/jobs/{job_id}/cancelled", BATON, "Acknowledge a cancellation").auth(Auth::Robot).errors(&[409]),
        route(Post, "/api/v1/robots/{robot_id}/jobs/{job_id}/release", BATON, "Give a claimed job back").auth(Auth::Robot).errors(&[409]),
        route(Get, "/api/v1/queues", BATON, "List queues").ok(200, list(json_object())),
        route(Get, "/api/v1/queues/{queue_name}", BATON, "A queue with its counts"),
        route(Put, "/api/v1/queues/{queue_name}", BATON, "Create or configure a queue")
            .auth(Auth::Develop)
            .json(obj(&[], json!({"max_retries": {"type": "integer", "minimum": 0}, "lease_seconds": {"type": "integer", "minimum": 1}, "unique_reference": {"type": "boolean"}}))),
        route(Get, "/api/v1/queues/{queue_name}/items", BATON, "List a queue's items")
            .query("status", s(), "Only items in this status")
            .query("reference", s(), "Only items whose reference is exactly this")
            .query("reference_prefix", s(), "Only items whose reference starts with this (letter case counts)")
            .query("limit", limit(1000), "At most this many items")
            .query("cursor", s(), "The `next_cursor` of the previous page")
            .ok(200, obj(&["items", "next_cursor"], json!({"items": list(reference("QueueItem")), "next_cursor": {"type": ["string", "null"]}}))),
        route(Post, "/api/v1/queues/{queue_name}/items", BATON, "Add items to a queue")
            .auth(Auth::Operate)
            .json(obj(&["items"], json!({"items": list(json!({"type": "object", "description": "The fields of POST /api/queue, without queue_name"}))})))
            .ok(201, obj(&["success", "count", "ids"], json!({"success": {"type": "boolean"}, "count": {"type": "integer"}, "ids": list(s())})))
            .errors(&[409]),
        route(Get, "/api/v1/queue-items/{id}", BATON, "A queue item").ok(200, reference("QueueItem")),
        route(Put, "/api/v1/queue-items/{id}/status", BATON, "Set a queue item's status")
            .auth(Auth::Operate)
            .json(obj(&["status"], json!({"status": {"type": "string", "enum": ["NEW", "IN_PROGRESS", "DONE", "FAILED", "ABANDONED"]}, "message": {"type": ["string", "null"], "maxLength": 1000}})))
            .ok(200, reference("QueueItem"))
            .errors(&[409]),
        route(Post, "/api/v1/robots/{robot_id}/queue-items/claim", BATON, "Claim NEW queue items")
            .auth(Auth::Robot)
            .json(obj(&["queue_name"], json!({"queue_name": {"type": "string", "minLength": 1, "maxLength": 100}, "limit": {"type": "integer", "minimum": 1}})))
            .ok(200, obj(&["items"], json!({"items": list(reference("QueueItem"))}))),
        route(Put, "/api/v1/robots/{robot_id}/queue-items/{id}", BATON, "Report a claimed item's outcome")
            .auth(Auth::Robot)
            .json(obj(&["status"], json!({"status": {"type": "string", "enum": ["DONE", "FAILED"]}, "message": {"type": ["string", "null"], "maxLength": 1000}})))
            .ok(200, reference("QueueItem"))
            .errors(&[409]),
        route(Get, "/api/v1/triggers", BATON, "List triggers")
            .query("limit", limit(1000), "At most this many triggers")
            .ok(200, list(reference("Trigger"))),
        route(Post, "/api/v1/triggers", BATON, "Create a trigger")
            .auth(Auth::Develop)
            .json(trigger_body())
            .ok(201, reference("Trigger"))
            .errors(&[409]),
        route(Get, "/api/v1/triggers/{id}", BATON, "A trigger").ok(200, reference("Trigger")),
        route(Put, "/api/v1/triggers/{id}", BATON, "Replace a trigger")
            .auth(Auth::Develop)
            .json(trigger_body())
            .ok(200, reference("Trigger"))
            .errors(&[409]),
        route(Delete, "/api/v1/triggers/{id}", BATON, "Delete a trigger").auth(Auth::Develop),
        route(Get, "/api/v1/schedules", CASARE, "List schedules")
            .query("workflow_id", s(), "Only schedules of this workflow")
            .query("enabled", json!({"type": "boolean"}), "Only enabled (or disabled) schedules")
            .query("limit", limit(1000), "At most this many schedules")
            .query("cursor", s(), "Where the page starts: the X-Next-Cursor header of the previous page")
            .ok(200, list(json_object())),
        route(Post, "/api/v1/schedules", CASARE, "Create a schedule")
            .auth(Auth::Develop)
            // The workflow it names does not exist.
            .errors(&[404])
            .json(obj(&["workflow_id", "schedule_name", "cron_expression"], json!({
                "workflow_id": s(),
                "schedule_name": {"type": "string", "minLength": 1, "maxLength": 255},
                "cron_expression": {"type": "string", "examples": ["0 9 * * 1-5"]},
                "enabled": {"type": "boolean", "default": true},
                "priority": {"type": "integer", "minimum": 0, "maximum": 20, "default": 10},
                "execution_mode": {"type": "string", "enum": ["lan", "internet"], "default": "lan"},
                "metadata": json_object()
            })))
            .ok(200, json_object()),
        route(Get, "/api/v1/schedules/preview", BATON, "Preview a cron expression's next fire times")
            .query("cron_expression", s(), "5 fields, or 6 with seconds first")
            .query("timezone", s(), "The IANA zone the expression is read in (UTC when left out)")
            .query("count", json!({"type": "integer", "minimum": 1, "maximum": 50, "default": 5}), "How many fire times")
            .ok(200, obj(&["next"], json!({"next": list(json!({"type": "string", "format": "date-time"}))}))),
        route(Get, "/api/v1/schedules/{schedule_id}", CASARE, "A schedule"),
        route(Delete, "/api/v1/schedules/{schedule_id}", CASARE, "Delete a schedule").auth(Auth::Develop),
        route(Put, "/api/v1/schedules/{schedule_id}/enable", CASARE, "Enable a schedule").auth(Auth::Develop),
        route(Put, "/api/v1/schedules/{schedule_id}/disable", CASARE, "Disable a schedule").auth(Auth::Develop),
        route(Put, "/api/v1/schedules/{schedule_id}/trigger", CASARE, "Run a schedule now").auth(Auth::Operate),
        route(Get, "/api/v1/workflows", AW, "List workflows").ok(200, list(json_object())),
        route(Post, "/api/v1/workflows", CASARE, "Submit a workflow")
            .auth(Auth::Develop)
            .json(obj(&["workflow_name", "workflow_json"], json!({
                "workflow_name": {"type": "string", "minLength": 1, "maxLength": 255},
                "workflow_json": {"type": "object", "required": ["nodes"], "description": "The workflow graph"},
                "trigger_type": {"type": "string", "enum": ["manual", "scheduled", "webhook"], "default": "manual"},
                "execution_mode": {"type": "string", "enum": ["lan", "internet"], "default": "lan"},
                "schedule_cron": {"type": ["string", "null"], "description": "Required when trigger_type is scheduled"},
                "priority": {"type": "integer", "minimum": 0, "maximum": 20, "default": 10, "description": "0 is the highest"},
                "metadata": json_object()
            }))),
        Route {
            body: Body::Multipart(obj(&["file"], json!({"file": {"type": "string", "contentMediaType": "application/json"}, "execution_mode": s(), "robot_id": s(), "priority": s()}))),
            ..route(Post, "/api/v1/workflows/upload", CASARE, "Upload a workflow file").auth(Auth::Develop)
        },
        route(Get, "/api/v1/workflows/{workflow_id}", CASARE, "A workflow"),
        route(Delete, "/api/v1/workflows/{workflow_id}", CASARE, "Delete a workflow").auth(Auth::Develop),
        route(Post, "/api/v1/webhooks/{token}", BATON, "Run a workflow through its webhook (the token is the credential)")
            .auth(Auth::Public)
            .json(json_object())
            .ok(200, json_object()),
        route(Get, "/api/v1/agents", AW, "List agents").ok(200, list(json_object())),
        route(Get, "/api/v1/agents/{agent_id}", AW, "An agent"),
        route(Get, "/api/v1/agents/{agent_id}/messages", AW, "An agent's messages")
            .query("after", json!({"type": "string", "format": "date-time"}), "Only messages after this time")
            .query("limit", limit(1000), "At most this many messages")
            .ok(200, list(json_object())),
        route(Get, "/api/v1/messages/{message_id}", AW, "A message"),
        route(Get, "/api/v1/flows", FLOWS, "List flows").ok(200, list(json_object())),
        route(Post, "/api/v1/flows", FLOWS, "Add flow configurations")
            .auth(Auth::Develop)
            .json(json!({"type": "array", "items": {"type": "object", "required": ["flow_id"], "properties": {"flow_id": s()}, "additionalProperties": true}}))
            .ok(201, json_object())
            .errors(&[409]),
        route(Get, "/api/v1/flows/status", FLOWS, "Every flow's status")
            .ok(200, json!({"type": "object", "description": "Each flow's status by flow_id",
                "additionalProperties": {"type": "object", "required": ["status", "current_job_id"]}})),
        route(Get, "/api/v1/flows/status/{flow_id}", FLOWS, "One flow's status"),
        route(Patch, "/api/v1/flows/commands", FLOWS, "Start, stop, pause or resume flows")
            .auth(Auth::Operate)
            .json(obj(&["flow_ids", "command"], json!({
                "flow_ids": {"type": "array", "items": s()},
                "command": {"type": "string", "enum": ["start", "stop", "pause", "resume"]},
                "type": {"type": "integer", "enum": [0, 1], "description": "For stop: 0 soft, 1 hard"}
            })))
            .ok(200, obj(&["status", "details"], json!({"status": s(), "details": list(obj(&["flow_id", "status"], json!({"flow_id": s(), "status": s()})))})))
            .examples(
                Some(json!({"command": "stop", "flow_ids": ["flow1", "flow2"], "type": 0})),
                Some(json!({"status": "Flows stopped", "details": [{"flow_id": "flow1", "status": "stopped"}, {"flow_id": "flow2", "status": "stopped"}]})),
            ),
        route(Get, "/api/v1/flows/{flow_id}", FLOWS, "A flow"),
        route(Put, "/api/v1/flows/{flow_id}", FLOWS, "Replace a flow").auth(Auth::Develop).json(json_object()),
        route(Delete, "/api/v1/flows/{flow_id}", FLOWS, "Delete a flow").auth(Auth::Develop),
    ]
}

fn pyorchestrator_queue() -> Route {
    route(Method::Post, "/api/queue", PY, "Add one item to a queue (PyOrchestrator)")
        .auth(Auth::Operate)
        .json(obj(
            &["queue_name"],
            json!({
                "queue_name": {"type": "string", "minLength": 1, "maxLength": 100},
                "status": {"type": "string", "enum": ["NEW", "IN_PROGRESS", "DONE", "FAILED", "ABANDONED"], "default": "NEW"},
                "data": {"type": ["string", "object", "array", "null"], "description": "Stringified; at most 2000 characters after conversion"},
                "reference": {"type": ["string", "null"], "maxLength": 100},
                "message": {"type": ["string", "null"]},
                "created_by": {"type": ["string", "null"], "maxLength": 100},
                "created_date": {"type": ["string", "null"], "format": "date-time", "description": "Default: the server's time"}
            }),
        ))
        .ok(201, obj(&["success", "id"], json!({"success": {"type": "boolean"}, "id": s()})))
        .examples(
            Some(json!({
                "queue_name": "SomeQueue", "status": "NEW",
                "data": {"case_id": "ABC123", "reference_id": "XYZ-001"},
                "reference": "ExternalRef-456", "created_by": "MySystem",
                "created_date": "2025-04-26T12:00:00", "message": "Created from external system"
            })),
            Some(json!({"success": true, "id": "generated-uuid"})),
        )
        .errors(&[409])
}

fn pyorchestrator_trigger() -> Route {
    route(
        Method::Post,
        "/api/trigger",
        PY,
        "Set a SINGLE trigger's process status (PyOrchestrator)",
    )
    .auth(Auth::Operate)
    .json(obj(
        &["trigger_name"],
        json!({
            "trigger_name": {"type": "string", "description": "A trigger of type SINGLE"},
            "process_status": {"type": "string", "enum": PROCESS_STATUSES, "default": "IDLE"}
        }),
    ))
    .ok(
        200,
        obj(
            &["success", "trigger_name", "new_status"],
            json!({"success": {"type": "boolean"}, "trigger_name": s(), "new_status": s()}),
        ),
    )
    .examples(
        Some(json!({"trigger_name": "MyAutomationTrigger", "process_status": "IDLE"})),
        Some(json!({"success": true, "trigger_name": "MyAutomationTrigger", "new_status": "IDLE"})),
    )
    .errors(&[404, 409])
}

/// A trigger's `process_status` (any letter case on input).
const PROCESS_STATUSES: [&str; 8] = [
    "IDLE", "RUNNING", "FAILED", "DONE", "PAUSED", "PAUSING", "KILLING", "KILLED",
];

/// The body of `POST /triggers` and `PUT /triggers/{id}` (docs/triggers.md).
fn trigger_body() -> Value {
    obj(
        &["trigger_name", "type", "workflow_id"],
        json!({
            "trigger_name": {"type": "string", "minLength": 1, "maxLength": 100},
            "type": {"type": "string", "enum": ["SINGLE", "SCHEDULED", "QUEUE"]},
            "workflow_id": {"type": "string", "format": "uuid"},
            "cron_expression": {"type": ["string", "null"], "description": "SCHEDULED only, and required there"},
            "timezone": {"type": ["string", "null"], "default": "UTC", "description": "SCHEDULED only: an IANA zone"},
            "queue_name": {"type": ["string", "null"], "maxLength": 100, "description": "QUEUE only, and required there"},
            "min_batch_size": {"type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000, "default": 1},
            "process_status": {"type": "string", "enum": PROCESS_STATUSES, "default": "IDLE"},
            "enabled": {"type": "boolean", "default": true},
            "priority": {"type": "integer", "minimum": 0, "maximum": 20, "default": 10},
            "is_blocking": {"type": "boolean", "default": true},
            "execution_mode": {"type": "string", "enum": ["lan", "internet"], "default": "lan"},
            "process_args": {"type": "object", "default": {}},
            "next_run": {"type": ["string", "null"], "format": "date-time", "description": "SINGLE only"}
        }),
    )
}

/// Any JSON value.
fn any() -> Value {
    json!({"type": ["object", "array", "string", "number", "integer", "boolean", "null"]})
}
