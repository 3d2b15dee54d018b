//! Harness of the black-box tests: a real server on a free port, over a fresh database, spoken
//! to over HTTP; and the real `baton` binary run as a process.
//!
//! This crate exists only for tests: a panic here is a failed test with its message, so
//! `expect` is the right tool and the workspace's ban on it does not apply.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod browser;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_server::Application;
use baton_server::bootstrap::AdminBootstrap;
use baton_server::config::Config;
use baton_storage::testing::TestDatabase;
use serde_json::Value;

/// The JWT secret of every test server.
pub const TEST_JWT_SECRET: &str = "baton-test-secret-0123456789abcdef0123456789abcdef";
/// The admin password of in-process test servers.
pub const TEST_ADMIN_PASSWORD: &str = "test-admin-password";

/// A server running in this test's process, on a database of its own.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub admin_bootstrap: AdminBootstrap,
    // Declared before `db` so the server stops before its database is removed.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// `None` for a second server on another server's database (see [`TestApp::another_server`]).
    db: Option<TestDatabase>,
    database_url: String,
}

impl TestApp {
    /// A server over a fresh SQLite database.
    pub async fn spawn_sqlite() -> Self {
        Self::spawn(TestDatabase::sqlite().await).await
    }

    /// A server over a fresh PostgreSQL database. Panics when PostgreSQL cannot be reached.
    pub async fn spawn_postgres() -> Self {
        Self::spawn(TestDatabase::postgres().await).await
    }

    /// A server over `db` with the test configuration.
    pub async fn spawn(db: TestDatabase) -> Self {
        Self::spawn_with(db, |_| {}).await
    }

    /// A server over `db` with the test configuration changed by `customise`.
    pub async fn spawn_with(db: TestDatabase, customise: impl FnOnce(&mut Config)) -> Self {
        let url = db.url().to_owned();
        let mut app = Self::start(&url, customise).await;
        app.db = Some(db);
        app
    }

    /// A second server on this server's database, with the same test configuration changed by
    /// `customise`: what two servers behind a load balancer share is the database only.
    pub async fn another_server(&self, customise: impl FnOnce(&mut Config)) -> Self {
        Self::start(&self.database_url, customise).await
    }

    async fn start(database_url: &str, customise: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config(database_url);
        customise(&mut config);
        let app = Application::build(config)
            .await
            .expect("build the test application");
        let port = app.port();
        let admin_bootstrap = app.admin_bootstrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::new(),
            admin_bootstrap,
            stop: Some(stop),
            db: None,
            database_url: database_url.to_owned(),
        }
    }

    /// The database this server runs on. Panics on a server from [`TestApp::another_server`].
    pub fn database(&self) -> &TestDatabase {
        self.db
            .as_ref()
            .expect("the first server on a database owns it")
    }

    /// Logs in and returns the access token; panics unless the login succeeds.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self.login_pair(username, password).await;
        assert_eq!(status, 200, "login as {username} failed: {body}");
        body["access_token"]
            .as_str()
            .expect("an access_token string")
            .to_owned()
    }

    /// Status and body of a login attempt.
    pub async fn login_pair(&self, username: &str, password: &str) -> (u16, Value) {
        json(
            self.client
                .post(self.url("/api/v1/auth/login"))
                .json(&serde_json::json!({"username": username, "password": password}))
                .send()
                .await
                .expect("send the login"),
        )
        .await
    }

    /// An access token of the bootstrap admin.
    pub async fn admin_token(&self) -> String {
        self.login("admin", TEST_ADMIN_PASSWORD).await
    }

    /// Creates a user with `roles` (as the admin) and returns an access token of theirs.
    pub async fn user_token(&self, username: &str, roles: &[&str]) -> String {
        let admin = self.admin_token().await;
        let password = format!("{username}-password");
        let response = self
            .client
            .post(self.url("/api/v1/users"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"username": username, "password": password, "roles": roles}))
            .send()
            .await
            .expect("send the user creation");
        assert_eq!(response.status().as_u16(), 201, "creating {username}");
        self.login(username, &password).await
    }

    /// Creates an API key with `roles` (as the admin) and returns the key.
    pub async fn api_key(&self, name: &str, roles: &[&str]) -> String {
        let admin = self.admin_token().await;
        let (status, body) = json(
            self.client
                .post(self.url("/api/v1/api-keys"))
                .bearer_auth(&admin)
                .json(&serde_json::json!({"name": name, "roles": roles}))
                .send()
                .await
                .expect("send the key creation"),
        )
        .await;
        assert_eq!(status, 201, "creating key {name}: {body}");
        body["key"].as_str().expect("a key string").to_owned()
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("send the request")
    }

    /// Calls `path` with `token` as a Bearer credential and `body`, if any, as JSON; the status
    /// and the JSON body of the answer.
    pub async fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        json(request.send().await.expect("send the request")).await
    }

    /// Like [`TestApp::call_as`], with `body` sent as it is, labelled `application/json`: for
    /// the tests of malformed bodies.
    pub async fn call_raw_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: &str,
    ) -> (u16, Value) {
        let request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        json(request.send().await.expect("send the request")).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The configuration of in-process test servers: the server's defaults as clap gives them with
/// no flag and no environment variable (`Config::default()`, so nothing comes from the
/// developer's environment), changed only where tests need it: port 0, the test's database, a
/// fixed JWT secret and admin password, and no workflow files.
pub fn test_config(database_url: &str) -> Config {
    Config {
        bind: "127.0.0.1:0".into(),
        database_url: database_url.into(),
        jwt_secret_key: Some(TEST_JWT_SECRET.into()),
        admin_password: Some(TEST_ADMIN_PASSWORD.into()),
        // Tests that want workflow files turn this on with a directory of their own; no other
        // test writes into the working directory.
        workflow_backup_enabled: false,
        ..Config::default()
    }
}

/// Status and JSON body of a response; panics with the raw body if it is not JSON.
pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("read the body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text}"));
    (status, body)
}

/// Asserts the API's error shape and returns the body.
pub async fn expect_error(response: reqwest::Response, status: u16) -> Value {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let (got, body) = json(response).await;
    assert_eq!(got, status, "unexpected status; body: {body}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert!(body["error"].is_string(), "no `error` string in {body}");
    assert!(body["detail"].is_string(), "no `detail` string in {body}");
    body
}

/// The compiled `baton` binary, next to this test executable's directory
/// (`target/<profile>/deps/<test>` → `target/<profile>/baton`).
pub fn baton_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("locate the test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable lives in target/<profile>/deps");
    let binary = profile_dir.join("baton");
    assert!(
        binary.is_file(),
        "{} does not exist. The process tests run the real server binary: use the README's test \
         command (`cargo xtask test`), which builds it first, or run `cargo build --workspace \
         --bins` before `cargo test`/`cargo nextest run`.",
        binary.display()
    );
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(binary_time), Some(test_time)) = (modified(&binary), modified(&exe))
        && binary_time < test_time
    {
        eprintln!(
            "warning: {} is older than this test executable and may be stale: `cargo xtask test` \
             rebuilds it",
            binary.display()
        );
    }
    binary
}

/// The compiled `baton-robot` binary, beside `baton` (see [`baton_binary`]): the same
/// `cargo build --workspace --bins` builds both.
pub fn baton_robot_binary() -> PathBuf {
    let binary = baton_binary().with_file_name("baton-robot");
    assert!(
        binary.is_file(),
        "{} does not exist. The robot tests run the real robot binary: run `cargo xtask test`, \
         or `cargo build --workspace --bins` before `cargo test`/`cargo nextest run`.",
        binary.display()
    );
    binary
}

/// A port nothing listens on right now: bound to port 0, then released.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("read the bound port").port()
}

/// The real `baton` binary running as a child process, with its output collected.
pub struct BatonProcess {
    child: Child,
    pub port: u16,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl BatonProcess {
    /// Starts `baton` in `dir` with `args`, an environment holding only `env` (so nothing from
    /// the test's environment configures it), and `--bind 127.0.0.1:<free port>` unless `args`
    /// has a `--bind` of its own.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let mut command = Command::new(baton_binary());
        if !args.contains(&"--bind") {
            command.args(["--bind", &bind]);
        }
        let mut child = command
            .current_dir(dir)
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the baton binary");
        let stdout = collect(child.stdout.take().expect("piped stdout"));
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        BatonProcess {
            child,
            port,
            stdout,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout buffer").clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Waits until `/health` answers 200, panicking with the process's output if it exits or
    /// does not answer within 60 s.
    pub async fn wait_until_healthy(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the process") {
                panic!(
                    "baton exited with {status} before answering /health\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            if let Ok(response) = client.get(self.url("/health")).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "baton did not answer /health within 60 s\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the process to exit by itself (within 60 s) and returns its status.
    pub async fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the process") {
                // Give the reader threads a moment to drain the pipes.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "baton did not exit within 60 s\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM").await
    }

    /// Sends SIGINT (what Ctrl-C sends) and waits for the process to exit.
    pub async fn interrupt(&mut self) -> ExitStatus {
        self.signal("INT").await
    }

    /// Sends the signal named `name` with `kill` (the workspace forbids `unsafe`, so no libc
    /// call), then waits for the process to exit.
    async fn signal(&mut self, name: &str) -> ExitStatus {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} failed");
        self.wait_for_exit().await
    }
}

impl Drop for BatonProcess {
    fn drop(&mut self) {
        // A test that failed midway must not leave a server running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads a pipe to its end on a thread of its own, into a shared buffer.
fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buffer = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&buffer);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut text) = sink.lock() {
                        text.push_str(&String::from_utf8_lossy(&chunk[..n]));
                    }
                }
            }
        }
    });
    buffer
}

/// The admin password in a `baton` process's start-up banner, if it printed one.
pub fn printed_admin_password(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("password: "))
        .map(|p| p.trim().to_owned())
}

/// A real `baton-robot` process with fast timings (heartbeat and lease renewal every second,
/// one-second claims), its log collected, killed when dropped (a failed assertion included).
pub struct RobotProcess {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl RobotProcess {
    /// Starts a robot for `server` (`http://127.0.0.1:PORT`) with only its own environment.
    pub fn start(server: &str, robot_id: &str, token: &str) -> Self {
        let mut child = Command::new(baton_robot_binary())
            .args([
                "--heartbeat-seconds",
                "1",
                "--renew-seconds",
                "1",
                "--claim-wait-seconds",
                "1",
            ])
            .env_clear()
            .env("BATON_SERVER", server)
            .env("BATON_ROBOT_ID", robot_id)
            .env("BATON_ROBOT_TOKEN", token)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start baton-robot");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let mut stderr = child.stderr.take().expect("a piped stderr");
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Self { child, log }
    }

    /// What the robot has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log has a line containing `text`, for up to `within`.
    pub async fn wait_for_log(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(text) {
            assert!(
                Instant::now() < deadline,
                "the robot never logged {text:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit by itself, for up to `within`.
    pub async fn wait_for_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread drain the pipe.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the robot did not exit; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM with `kill` (the workspace forbids `unsafe`, so no libc call).
    pub fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Kills the robot now (SIGKILL: no release, no more renewals or heartbeats); its log stays
    /// readable.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the robot now and forgets it.
    pub fn stop(mut self) {
        self.kill();
    }
}

impl Drop for RobotProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
