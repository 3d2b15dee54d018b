//! The console in a real browser: a headless Chromium driven over WebDriver against a real
//! server, on SQLite and on PostgreSQL, with data made through the API and a real robot.
//!
//! Each backend is one test that walks through every page in order with one browser, so the
//! browser starts once per backend. Screenshots of each page land in
//! `target/console-screenshots/` (`{backend}-{page}.png`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_tests::browser::Browser;
use baton_tests::{TEST_ADMIN_PASSWORD, TestApp};

mod jobs;
mod queues;
mod robots;
mod schedules;
mod settings;
mod signin;
mod viewer;
mod workflows;

/// What every page's walk-through gets: the server, the browser, and an admin's API token for
/// making data through the API.
pub struct Console {
    pub app: TestApp,
    pub browser: Browser,
    pub admin: String,
    pub backend: &'static str,
}

impl Console {
    /// The absolute URL of a console path such as `/ui/jobs`.
    pub fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    /// Opens `path` of the console.
    pub async fn open(&self, path: &str) {
        self.browser.goto(&self.url(path)).await;
    }

    /// Saves a screenshot named for this backend and `page`.
    pub async fn shot(&self, page: &str) {
        self.browser
            .screenshot(&format!("{}-{page}", self.backend))
            .await;
    }

    /// Signs in through the sign-in page and waits for the overview.
    pub async fn sign_in(&self, username: &str, password: &str) {
        self.open("/ui/signin").await;
        self.browser.fill("Username", username).await;
        self.browser.fill("Password", password).await;
        self.browser.click_button("Sign in").await;
        self.browser.button("Sign out").await;
    }

    /// Signs out with the header's button and waits for the sign-in page.
    pub async fn sign_out(&self) {
        self.browser.click_button("Sign out").await;
        self.browser.button("Sign in").await;
    }

    /// Creates a user with `roles` through the API; their password is `{username}-password`.
    pub async fn create_user(&self, username: &str, roles: &[&str]) -> String {
        let password = format!("{username}-password");
        let (status, body) = self
            .app
            .call_as(
                &self.admin,
                reqwest::Method::POST,
                "/api/v1/users",
                Some(&serde_json::json!({"username": username, "password": password, "roles": roles})),
            )
            .await;
        assert_eq!(status, 201, "create {username}: {body}");
        password
    }
}

async fn walk_through(app: TestApp, backend: &'static str) {
    let admin = app.admin_token().await;
    let console = Console {
        browser: Browser::start().await,
        app,
        admin,
        backend,
    };
    signin::run(&console).await;
    console.sign_in("admin", TEST_ADMIN_PASSWORD).await;
    jobs::run(&console).await;
    workflows::run(&console).await;
    schedules::run(&console).await;
    let abandoned = queues::run(&console).await;
    robots::run(&console).await;
    robots::viewer_sees_no_actions(&console, &abandoned).await;
    settings::run(&console).await;
    signin::signs_out(&console).await;
    viewer::run(&console).await;
    let Console { browser, .. } = console;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_on_sqlite() {
    walk_through(TestApp::spawn_sqlite().await, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_on_postgres() {
    walk_through(TestApp::spawn_postgres().await, "postgres").await;
}
