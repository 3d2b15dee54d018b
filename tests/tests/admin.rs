//! The admin endpoints (docs/security.md): users, API keys and robots, created, listed, used and
//! deleted over HTTP; and no response of theirs ever holds a password hash or a secret's SHA-256.
//!
//! The flows that touch storage run on SQLite and PostgreSQL alike. Each server bans an address
//! after five failed authentications, so no flow presents more than four wrong credentials.

// A test crate: a panic is a failed assertion with its location, and helpers outside `#[test]`
// functions count too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Mutex;

use baton_domain::auth::sha256_hex;
use baton_server::config::Config;
use baton_storage::testing::TestDatabase;
use baton_tests::{TEST_ADMIN_PASSWORD, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

/// Runs each named `async fn(TestDatabase)` on a fresh SQLite and a fresh PostgreSQL database,
/// as the tests `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_databases {
    ($($flow:ident),* $(,)?) => {$(
        mod $flow {
            use super::*;

            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$flow(TestDatabase::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$flow(TestDatabase::postgres().await).await;
            }
        }
    )*};
}

on_both_databases!(
    users_are_created_used_listed_and_deleted,
    the_last_admin_and_oneself_cannot_be_deleted,
    api_keys_are_shown_once_used_and_revoked,
    robots_act_only_as_themselves_until_deleted,
    static_robot_tokens_register_their_robot_on_first_heartbeat,
);

/// How a request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    /// `Authorization: Bearer` with a JWT or an API key.
    Bearer(&'a str),
    /// `X-API-Key`.
    Key(&'a str),
    /// A robot's `X-Api-Token`.
    Robot(&'a str),
}

/// A test server that remembers every response body it sent, so a flow can check at its end
/// that no secret leaked into any of them.
struct Api {
    app: TestApp,
    seen: Mutex<Vec<String>>,
}

/// A response, with the request that got it for assertion messages.
struct Reply {
    request: String,
    status: u16,
    content_type: Option<String>,
    body: Value,
}

impl Reply {
    /// The body, asserting the status.
    fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {} {}",
            self.request, self.status, self.body
        );
        &self.body
    }

    /// The body, asserting the status and the API's error shape.
    fn expect_error(&self, status: u16) -> &Value {
        self.expect(status);
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/json"),
            "{}",
            self.request
        );
        assert!(
            self.body["error"].is_string(),
            "{}: {}",
            self.request,
            self.body
        );
        assert!(
            self.body["detail"].is_string(),
            "{}: {}",
            self.request,
            self.body
        );
        &self.body
    }

    /// The fields named in a 400's `errors` list.
    fn error_fields(&self) -> BTreeSet<String> {
        self.expect_error(400)["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no `errors` list in {}", self.request, self.body))
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Api {
    async fn spawn(db: TestDatabase, customise: impl FnOnce(&mut Config)) -> Self {
        Api {
            app: TestApp::spawn_with(db, customise).await,
            seen: Mutex::new(Vec::new()),
        }
    }

    async fn call(&self, method: Method, path: &str, auth: Auth<'_>, body: Option<Value>) -> Reply {
        let mut request = self.app.client.request(method.clone(), self.app.url(path));
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Key(key) => request.header("X-API-Key", key),
            Auth::Robot(token) => request.header("X-Api-Token", token),
        };
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.unwrap();
        let request = match body {
            Some(body) => format!("{method} {path} {body}"),
            None => format!("{method} {path}"),
        };
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{request}: status {status}, body not JSON ({e}): {text}"));
        self.seen.lock().unwrap().push(text);
        Reply {
            request,
            status,
            content_type,
            body,
        }
    }

    async fn get(&self, path: &str, auth: Auth<'_>) -> Reply {
        self.call(Method::GET, path, auth, None).await
    }

    async fn post(&self, path: &str, auth: Auth<'_>, body: Value) -> Reply {
        self.call(Method::POST, path, auth, Some(body)).await
    }

    async fn delete(&self, path: &str, auth: Auth<'_>) -> Reply {
        self.call(Method::DELETE, path, auth, None).await
    }

    /// Logs in; the status and body.
    async fn login(&self, username: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/auth/login",
            Auth::None,
            json!({"username": username, "password": password}),
        )
        .await
    }

    /// An access token of `username`, asserting the login succeeds.
    async fn token(&self, username: &str, password: &str) -> String {
        let reply = self.login(username, password).await;
        reply.expect(200)["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn admin(&self) -> String {
        self.token("admin", TEST_ADMIN_PASSWORD).await
    }

    async fn create_user(&self, admin: &str, username: &str, password: &str, roles: &[&str]) {
        self.post(
            "/api/v1/users",
            Auth::Bearer(admin),
            json!({"username": username, "password": password, "roles": roles}),
        )
        .await
        .expect(201);
    }

    /// Creates an API key; its id and key.
    async fn create_key(&self, admin: &str, name: &str, roles: &[&str]) -> (String, String) {
        let reply = self
            .post(
                "/api/v1/api-keys",
                Auth::Bearer(admin),
                json!({"name": name, "roles": roles}),
            )
            .await;
        let body = reply.expect(201);
        (
            body["id"].as_str().unwrap().to_owned(),
            body["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a robot; its token.
    async fn create_robot(&self, admin: &str, robot_id: &str) -> String {
        let reply = self
            .post(
                "/api/v1/robots",
                Auth::Bearer(admin),
                json!({"robot_id": robot_id}),
            )
            .await;
        reply.expect(201)["token"].as_str().unwrap().to_owned()
    }

    async fn heartbeat(&self, robot_id: &str, auth: Auth<'_>) -> Reply {
        self.post(
            &format!("/api/v1/robots/{robot_id}/heartbeat"),
            auth,
            json!({"cpu_percent": 20.5, "memory_mb": 512.0, "memory_percent": 30.0}),
        )
        .await
    }

    async fn usernames(&self, admin: &str) -> BTreeSet<String> {
        let reply = self.get("/api/v1/users", Auth::Bearer(admin)).await;
        reply
            .expect(200)
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Asserts that no response so far held a password hash or the SHA-256 of any of `secrets`.
    fn assert_no_leaks(&self, secrets: &[&str]) {
        let seen = self.seen.lock().unwrap();
        assert!(!seen.is_empty());
        for text in seen.iter() {
            assert!(!text.contains("$argon2"), "a password hash leaked: {text}");
            for secret in secrets {
                let hash = sha256_hex(secret);
                assert!(
                    !text.contains(&hash),
                    "the SHA-256 of a secret leaked: {text}"
                );
            }
        }
    }
}

/// The set of strings in a JSON array.
fn string_set(value: &Value) -> BTreeSet<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// The field names of a JSON object.
fn fields(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn assert_success_message(body: &Value) {
    assert_eq!(body["status"], "success", "{body}");
    assert!(body["message"].is_string(), "{body}");
}

// ---------------------------------------------------------------------------------------------
// Users.

async fn users_are_created_used_listed_and_deleted(db: TestDatabase) {
    let api = Api::spawn(db, |_| {}).await;
    let admin = api.admin().await;

    let reply = api
        .post(
            "/api/v1/users",
            Auth::Bearer(&admin),
            json!({"username": "alice", "password": "alice-secret-1", "roles": ["viewer", "operator"]}),
        )
        .await;
    let created = reply.expect(201);
    assert_eq!(
        fields(created),
        BTreeSet::from(["username", "roles", "created_at"])
    );
    assert_eq!(created["username"], "alice");
    assert_eq!(
        string_set(&created["roles"]),
        BTreeSet::from(["operator", "viewer"])
    );
    assert!(
        created["created_at"].as_str().unwrap().contains('T'),
        "an RFC 3339 time: {created}"
    );

    // The new password logs in, and /auth/me shows the user's roles.
    let login = api.login("alice", "alice-secret-1").await;
    let tokens = login.expect(200);
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert!(tokens["refresh_token"].is_string());
    let alice = tokens["access_token"].as_str().unwrap().to_owned();
    let reply = api.get("/api/v1/auth/me", Auth::Bearer(&alice)).await;
    let me = reply.expect(200);
    assert_eq!(me["user_id"], "alice");
    assert_eq!(
        string_set(&me["roles"]),
        BTreeSet::from(["operator", "viewer"])
    );
    assert_eq!(me["dev_mode"], false);
    assert_eq!(me["tenant_id"], Value::Null);
    // An operator is no admin.
    api.get("/api/v1/users", Auth::Bearer(&alice))
        .await
        .expect_error(403);
    // The wrong password does not log in (failed authentication 1 of 4).
    api.login("alice", "alice-secret-2").await.expect_error(401);

    // A second user of the same name is refused.
    api.post(
        "/api/v1/users",
        Auth::Bearer(&admin),
        json!({"username": "alice", "password": "another-password", "roles": ["admin"]}),
    )
    .await
    .expect_error(409);

    // The list shows every user, with exactly the public fields.
    let reply = api.get("/api/v1/users", Auth::Bearer(&admin)).await;
    let list = reply.expect(200).as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    for user in list {
        assert_eq!(
            fields(user),
            BTreeSet::from(["username", "roles", "created_at"]),
            "{user}"
        );
    }
    let alice_listed = list.iter().find(|u| u["username"] == "alice").unwrap();
    assert_eq!(
        string_set(&alice_listed["roles"]),
        BTreeSet::from(["operator", "viewer"])
    );
    let admin_listed = list.iter().find(|u| u["username"] == "admin").unwrap();
    assert!(string_set(&admin_listed["roles"]).contains("admin"));

    // Deleting her ends her access at once.
    let reply = api
        .delete("/api/v1/users/alice", Auth::Bearer(&admin))
        .await;
    assert_success_message(reply.expect(200));
    api.get("/api/v1/auth/me", Auth::Bearer(&alice))
        .await
        .expect_error(401);
    // (failed authentication 2 of 4)
    api.login("alice", "alice-secret-1").await.expect_error(401);
    assert_eq!(
        api.usernames(&admin).await,
        BTreeSet::from(["admin".into()])
    );
    api.delete("/api/v1/users/alice", Auth::Bearer(&admin))
        .await
        .expect_error(404);
    api.delete("/api/v1/users/nobody-here", Auth::Bearer(&admin))
        .await
        .expect_error(404);

    api.assert_no_leaks(&[]);
}

/// Deleting a user ends their sessions for good: a new user who happens to get the same name
/// must not inherit them.
#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_users_tokens_stay_dead_when_the_name_is_reused() {
    let api = Api::spawn(TestDatabase::sqlite().await, |_| {}).await;
    let admin = api.admin().await;
    api.create_user(&admin, "alice", "alice-password", &["admin"])
        .await;
    let login = api.login("alice", "alice-password").await;
    let tokens = login.expect(200);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    api.delete("/api/v1/users/alice", Auth::Bearer(&admin))
        .await
        .expect(200);
    api.get("/api/v1/auth/me", Auth::Bearer(&access))
        .await
        .expect_error(401);

    // Another person is given the name.
    api.create_user(&admin, "alice", "someone-else", &["viewer"])
        .await;
    api.get("/api/v1/auth/me", Auth::Bearer(&access))
        .await
        .expect_error(401);
    api.post(
        "/api/v1/auth/refresh",
        Auth::None,
        json!({"refresh_token": refresh}),
    )
    .await
    .expect_error(401);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_users_are_refused_with_every_broken_field_at_once() {
    let api = Api::spawn(TestDatabase::sqlite().await, |_| {}).await;
    let admin = api.admin().await;
    let create = async |body: Value| {
        api.post("/api/v1/users", Auth::Bearer(&admin), body)
            .await
            .error_fields()
    };
    let set = |names: &[&str]| -> BTreeSet<String> { names.iter().map(|&n| n.into()).collect() };

    assert_eq!(
        create(json!({"username": "bad name!", "password": "short", "roles": ["wizard"]})).await,
        set(&["username", "password", "roles"])
    );
    assert_eq!(
        create(json!({"username": "", "password": "", "roles": []})).await,
        set(&["username", "password", "roles"])
    );
    assert_eq!(
        create(json!({"username": "bad name!", "password": "long-enough", "roles": ["viewer"]}))
            .await,
        set(&["username"])
    );
    assert_eq!(
        create(
            json!({"username": "x".repeat(101), "password": "long-enough", "roles": ["viewer"]})
        )
        .await,
        set(&["username"])
    );
    // Eight characters is the minimum.
    assert_eq!(
        create(json!({"username": "bob", "password": "1234567", "roles": ["viewer"]})).await,
        set(&["password"])
    );
    assert_eq!(
        create(json!({"username": "bob", "password": "long-enough", "roles": []})).await,
        set(&["roles"])
    );
    assert_eq!(
        create(json!({"username": "bob", "password": "long-enough", "roles": ["viewer", "root"]}))
            .await,
        set(&["roles"])
    );
    // A body that is not a user at all is a 400 too.
    api.post(
        "/api/v1/users",
        Auth::Bearer(&admin),
        json!({"username": "bob"}),
    )
    .await
    .expect_error(400);

    // Nothing was created; a valid user with an 8-character password is.
    assert_eq!(
        api.usernames(&admin).await,
        BTreeSet::from(["admin".into()])
    );
    api.create_user(&admin, "bob", "12345678", &["viewer"])
        .await;
    api.token("bob", "12345678").await;
    api.assert_no_leaks(&[]);
}

/// The answers of the two refusals, told apart by their detail.
const OWN_USER: &str = "you cannot delete your own user; ask another admin";
const LAST_ADMIN: &str = "this is the last admin; create another admin before deleting it";

fn assert_refused_as(body: &Value, detail: &str) {
    assert_eq!(body["detail"], detail, "{body}");
}

async fn the_last_admin_and_oneself_cannot_be_deleted(db: TestDatabase) {
    let api = Api::spawn(db, |_| {}).await;
    let admin = api.admin().await;
    let (_, admin_key) = api.create_key(&admin, "admin-key", &["admin"]).await;

    // The admin cannot delete itself, nor can another caller delete the only admin.
    let reply = api
        .delete("/api/v1/users/admin", Auth::Bearer(&admin))
        .await;
    assert_refused_as(reply.expect_error(409), OWN_USER);
    let reply = api
        .delete("/api/v1/users/admin", Auth::Key(&admin_key))
        .await;
    assert_refused_as(reply.expect_error(409), LAST_ADMIN);
    // Users who are not admins can be deleted while one admin remains.
    api.create_user(&admin, "viewer1", "viewer-password", &["viewer"])
        .await;
    let reply = api
        .delete("/api/v1/users/viewer1", Auth::Key(&admin_key))
        .await;
    assert_success_message(reply.expect(200));

    // With a second admin, the first can go.
    api.create_user(&admin, "admin2", "admin2-password", &["admin"])
        .await;
    let admin2 = api.token("admin2", "admin2-password").await;
    // Another admin existing does not let one delete oneself.
    let reply = api
        .delete("/api/v1/users/admin2", Auth::Bearer(&admin2))
        .await;
    assert_refused_as(reply.expect_error(409), OWN_USER);
    let reply = api
        .delete("/api/v1/users/admin", Auth::Bearer(&admin2))
        .await;
    assert_success_message(reply.expect(200));
    api.get("/api/v1/auth/me", Auth::Bearer(&admin))
        .await
        .expect_error(401);
    // And now admin2 is the last one.
    let reply = api
        .delete("/api/v1/users/admin2", Auth::Bearer(&admin2))
        .await;
    assert_refused_as(reply.expect_error(409), OWN_USER);
    let reply = api
        .delete("/api/v1/users/admin2", Auth::Key(&admin_key))
        .await;
    assert_refused_as(reply.expect_error(409), LAST_ADMIN);
    assert_eq!(
        api.usernames(&admin2).await,
        BTreeSet::from(["admin2".into()])
    );
    api.assert_no_leaks(&[&admin_key]);
}

// ---------------------------------------------------------------------------------------------
// API keys.

async fn api_keys_are_shown_once_used_and_revoked(db: TestDatabase) {
    let api = Api::spawn(db, |_| {}).await;
    let admin = api.admin().await;

    let reply = api
        .post(
            "/api/v1/api-keys",
            Auth::Bearer(&admin),
            json!({"name": "ci", "roles": ["operator"]}),
        )
        .await;
    let created = reply.expect(201);
    assert_eq!(
        fields(created),
        BTreeSet::from(["id", "name", "key", "roles", "created_at"])
    );
    assert_eq!(created["name"], "ci");
    assert_eq!(string_set(&created["roles"]), BTreeSet::from(["operator"]));
    let ci_id = created["id"].as_str().unwrap().to_owned();
    let ci_key = created["key"].as_str().unwrap().to_owned();
    assert!(ci_key.starts_with("bk_"), "{ci_key}");
    assert_eq!(ci_id.len(), 36, "a UUID: {ci_id}");
    assert_eq!(ci_id.matches('-').count(), 4, "a UUID: {ci_id}");
    let (reader_id, reader_key) = api.create_key(&admin, "reader", &["viewer"]).await;
    assert_ne!(ci_key, reader_key);

    // The list shows both, but never a key or its hash.
    let reply = api.get("/api/v1/api-keys", Auth::Bearer(&admin)).await;
    let list = reply.expect(200).as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    for key in list {
        let names = fields(key);
        assert!(names.is_superset(&BTreeSet::from(["id", "name", "roles", "created_at"])));
        assert!(!names.contains("key"), "{key}");
        assert!(!names.iter().any(|n| n.contains("hash")), "{key}");
    }
    let ids: BTreeSet<&str> = list.iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert_eq!(ids, BTreeSet::from([ci_id.as_str(), reader_id.as_str()]));
    let listed = list.iter().find(|k| k["id"] == ci_id.as_str()).unwrap();
    assert_eq!(listed["name"], "ci");
    assert_eq!(string_set(&listed["roles"]), BTreeSet::from(["operator"]));

    // Both header forms authenticate, carrying the key's roles.
    for auth in [Auth::Key(&ci_key), Auth::Bearer(&ci_key)] {
        let reply = api.get("/api/v1/auth/me", auth).await;
        let me = reply.expect(200);
        assert_eq!(string_set(&me["roles"]), BTreeSet::from(["operator"]));
        assert_eq!(me["dev_mode"], false);
        api.get("/api/v1/users", auth).await.expect_error(403);
    }
    let reply = api.get("/api/v1/auth/me", Auth::Key(&reader_key)).await;
    assert_eq!(
        string_set(&reply.expect(200)["roles"]),
        BTreeSet::from(["viewer"])
    );

    // Bad keys are refused.
    for body in [
        json!({"name": "", "roles": ["viewer"]}),
        json!({"name": "x".repeat(101), "roles": ["viewer"]}),
    ] {
        let reply = api
            .post("/api/v1/api-keys", Auth::Bearer(&admin), body)
            .await;
        assert_eq!(reply.error_fields(), BTreeSet::from(["name".into()]));
    }
    for body in [
        json!({"name": "bad", "roles": []}),
        json!({"name": "bad", "roles": ["superuser"]}),
    ] {
        let reply = api
            .post("/api/v1/api-keys", Auth::Bearer(&admin), body)
            .await;
        assert_eq!(reply.error_fields(), BTreeSet::from(["roles".into()]));
    }

    // Revoking ends the key at once, in both header forms (failed authentications 1 and 2
    // of 4); the other key still works.
    let reply = api
        .delete(&format!("/api/v1/api-keys/{ci_id}"), Auth::Bearer(&admin))
        .await;
    assert_success_message(reply.expect(200));
    api.get("/api/v1/auth/me", Auth::Key(&ci_key))
        .await
        .expect_error(401);
    api.get("/api/v1/auth/me", Auth::Bearer(&ci_key))
        .await
        .expect_error(401);
    api.get("/api/v1/auth/me", Auth::Key(&reader_key))
        .await
        .expect(200);
    api.delete(&format!("/api/v1/api-keys/{ci_id}"), Auth::Bearer(&admin))
        .await
        .expect_error(404);
    api.delete("/api/v1/api-keys/not-a-uuid", Auth::Bearer(&admin))
        .await
        .expect_error(404);
    api.delete(
        "/api/v1/api-keys/00000000-0000-0000-0000-000000000000",
        Auth::Bearer(&admin),
    )
    .await
    .expect_error(404);

    // The key appeared in its creation response only.
    let seen = api.seen.lock().unwrap().clone();
    let showing_ci_key = seen.iter().filter(|t| t.contains(&ci_key)).count();
    assert_eq!(showing_ci_key, 1, "the key is shown once");
    api.assert_no_leaks(&[&ci_key, &reader_key]);
}

// ---------------------------------------------------------------------------------------------
// Robots.

async fn robots_act_only_as_themselves_until_deleted(db: TestDatabase) {
    let api = Api::spawn(db, |_| {}).await;
    let admin = api.admin().await;

    let reply = api
        .post(
            "/api/v1/robots",
            Auth::Bearer(&admin),
            json!({"robot_id": "r1", "hostname": "host-1"}),
        )
        .await;
    let created = reply.expect(201);
    assert_eq!(fields(created), BTreeSet::from(["robot_id", "token"]));
    assert_eq!(created["robot_id"], "r1");
    let r1 = created["token"].as_str().unwrap().to_owned();
    assert!(r1.starts_with("br_"), "{r1}");
    let r2 = api.create_robot(&admin, "r2").await;
    assert_ne!(r1, r2);

    // Its token works for its own heartbeat, and nowhere else.
    let reply = api.heartbeat("r1", Auth::Robot(&r1)).await;
    assert_eq!(reply.expect(200)["robot_id"], "r1");
    api.heartbeat("r2", Auth::Robot(&r1))
        .await
        .expect_error(403);
    api.get("/api/v1/users", Auth::Robot(&r1))
        .await
        .expect_error(403);
    api.get("/api/v1/auth/me", Auth::Robot(&r1))
        .await
        .expect_error(403);
    api.post(
        "/api/v1/robots",
        Auth::Robot(&r1),
        json!({"robot_id": "r3"}),
    )
    .await
    .expect_error(403);

    // Operators may act for any robot (ROBOT_AUTH_ENABLED is off); viewers and nobody may not.
    api.create_user(&admin, "op", "operator-password", &["operator"])
        .await;
    api.create_user(&admin, "watcher", "viewer-password", &["viewer"])
        .await;
    let operator = api.token("op", "operator-password").await;
    let viewer = api.token("watcher", "viewer-password").await;
    let (_, operator_key) = api.create_key(&admin, "op-key", &["operator"]).await;
    let (_, viewer_key) = api.create_key(&admin, "viewer-key", &["viewer"]).await;
    for auth in [
        Auth::Bearer(&operator),
        Auth::Key(&operator_key),
        Auth::Bearer(&admin),
    ] {
        let reply = api.heartbeat("r2", auth).await;
        assert_eq!(reply.expect(200)["robot_id"], "r2");
    }
    for auth in [Auth::Bearer(&viewer), Auth::Key(&viewer_key)] {
        api.heartbeat("r2", auth).await.expect_error(403);
    }
    api.heartbeat("r2", Auth::None).await.expect_error(401);

    // Creation refuses duplicates and malformed ids.
    api.post(
        "/api/v1/robots",
        Auth::Bearer(&admin),
        json!({"robot_id": "r1"}),
    )
    .await
    .expect_error(409);
    for bad in ["bad id!", "", "a/b", &"x".repeat(65)] {
        let reply = api
            .post(
                "/api/v1/robots",
                Auth::Bearer(&admin),
                json!({"robot_id": bad}),
            )
            .await;
        assert_eq!(reply.error_fields(), BTreeSet::from(["robot_id".into()]));
    }

    // Deleting a robot ends its token (failed authentication 1 of 4); the other robot's lives.
    let reply = api.delete("/api/v1/robots/r1", Auth::Bearer(&admin)).await;
    assert_success_message(reply.expect(200));
    api.heartbeat("r1", Auth::Robot(&r1))
        .await
        .expect_error(401);
    api.heartbeat("r2", Auth::Robot(&r2)).await.expect(200);
    api.delete("/api/v1/robots/r1", Auth::Bearer(&admin))
        .await
        .expect_error(404);
    api.delete("/api/v1/robots/ghost", Auth::Bearer(&admin))
        .await
        .expect_error(404);

    api.assert_no_leaks(&[&r1, &r2, &operator_key, &viewer_key]);
}

async fn static_robot_tokens_register_their_robot_on_first_heartbeat(db: TestDatabase) {
    let token = "static-token-of-robot-001-0123456789abcdef";
    let api = Api::spawn(db, |c| {
        c.robot_tokens = Some(format!("robot-001:{}", sha256_hex(token)));
    })
    .await;
    let admin = api.admin().await;

    // Configured, not yet registered.
    api.delete("/api/v1/robots/robot-001", Auth::Bearer(&admin))
        .await
        .expect_error(404);
    let reply = api.heartbeat("robot-001", Auth::Robot(token)).await;
    let robot = reply.expect(200);
    assert_eq!(robot["robot_id"], "robot-001");
    // The heartbeat registered it.
    api.post(
        "/api/v1/robots",
        Auth::Bearer(&admin),
        json!({"robot_id": "robot-001"}),
    )
    .await
    .expect_error(409);
    api.heartbeat("robot-001", Auth::Robot(token))
        .await
        .expect(200);

    // Like any robot, it acts only as itself, and only on the robot protocol.
    api.heartbeat("robot-002", Auth::Robot(token))
        .await
        .expect_error(403);
    api.get("/api/v1/users", Auth::Robot(token))
        .await
        .expect_error(403);
    api.assert_no_leaks(&[token]);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_robot_auth_enabled_only_the_robot_itself_may_heartbeat() {
    let api = Api::spawn(TestDatabase::sqlite().await, |c| {
        c.robot_auth_enabled = true
    })
    .await;
    let admin = api.admin().await;
    let token = api.create_robot(&admin, "r1").await;
    api.create_user(&admin, "op", "operator-password", &["operator"])
        .await;
    api.create_user(&admin, "watcher", "viewer-password", &["viewer"])
        .await;
    let operator = api.token("op", "operator-password").await;
    let viewer = api.token("watcher", "viewer-password").await;
    let (_, operator_key) = api.create_key(&admin, "op-key", &["operator"]).await;

    for auth in [
        Auth::Bearer(&operator),
        Auth::Key(&operator_key),
        Auth::Bearer(&admin),
        Auth::Bearer(&viewer),
    ] {
        let body = api.heartbeat("r1", auth).await;
        let detail = body.expect_error(403)["detail"].as_str().unwrap();
        assert!(detail.contains("ROBOT_AUTH_ENABLED"), "{detail}");
    }
    api.heartbeat("r1", Auth::None).await.expect_error(401);
    let reply = api.heartbeat("r1", Auth::Robot(&token)).await;
    assert_eq!(reply.expect(200)["robot_id"], "r1");
    api.assert_no_leaks(&[&token, &operator_key]);
}
