//! Rate limits over HTTP: the `X-RateLimit-*` headers on every limited response, 429 in the
//! error shape with `retry_after`, per route, configurable and switchable off.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_storage::testing::TestDatabase;
use baton_tests::{TestApp, expect_error};

fn header(response: &reqwest::Response, name: &str) -> Option<u64> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_limit_counts_down_then_refuses_with_429() {
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| {
        c.rate_limit_rules = Some("/api/v1/auth/me=3/minute".into());
    })
    .await;
    let token = app.admin_token().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    for remaining in [2, 1, 0] {
        let response = me(&app, &token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-ratelimit-limit"), Some(3));
        assert_eq!(header(&response, "x-ratelimit-remaining"), Some(remaining));
        let reset = header(&response, "x-ratelimit-reset").unwrap();
        assert!(
            (now..=now + 61).contains(&reset),
            "the reset is a unix time within the minute: {reset}"
        );
    }
    let response = me(&app, &token).await;
    assert_eq!(header(&response, "x-ratelimit-limit"), Some(3));
    assert_eq!(header(&response, "x-ratelimit-remaining"), Some(0));
    let retry_after = header(&response, "retry-after").unwrap();
    let body = expect_error(response, 429).await;
    assert_eq!(body["error"], "Rate limit exceeded");
    assert_eq!(body["retry_after"].as_u64(), Some(retry_after));
    assert!((1..=60).contains(&retry_after));

    // Other routes keep their own budget, and the default one applies to them.
    let response = app.get("/api/v1/users").await;
    assert_eq!(response.status(), 401);
    assert_eq!(header(&response, "x-ratelimit-limit"), Some(1200));
}

#[tokio::test(flavor = "multi_thread")]
async fn health_probes_are_never_limited() {
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| {
        c.rate_limit_rules = Some("default=1/minute".into());
    })
    .await;
    for _ in 0..5 {
        let response = app.get("/health").await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("x-ratelimit-limit").is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_off_turns_every_limit_off() {
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| {
        c.rate_limits = false;
        c.rate_limit_rules = Some("default=1/minute".into());
    })
    .await;
    let token = app.admin_token().await;
    for _ in 0..5 {
        let response = me(&app, &token).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("x-ratelimit-limit").is_none());
    }
}
