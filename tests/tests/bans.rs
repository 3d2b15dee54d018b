//! The brute-force rule over HTTP: the 5th failed authentication from one address within 60 s
//! is answered 401, then every route but the health probes answers 403 for the ban's length, on
//! every server sharing the database and across restarts. A valid API key forgives wrong keys;
//! nothing but a ban or the window's end forgives wrong passwords.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use baton_storage::testing::TestDatabase;
use baton_tests::{
    BatonProcess, TEST_ADMIN_PASSWORD, TEST_JWT_SECRET, TestApp, expect_error, json,
};
use serde_json::json;

async fn with_key(app_url: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{app_url}/api/v1/auth/me"))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap()
}

/// Five wrong keys: each answered 401, the fifth included.
async fn fail_five_times(app_url: &str) {
    for attempt in 1..=5 {
        let body = expect_error(with_key(app_url, &format!("bk_wrong-{attempt}")).await, 401).await;
        assert_eq!(body["error"], "Unauthorized", "attempt {attempt}");
    }
}

async fn assert_banned(app_url: &str, admin_token: &str) {
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{app_url}/api/v1/auth/me"))
        .bearer_auth(admin_token)
        .send()
        .await
        .unwrap();
    let body = expect_error(response, 403).await;
    assert_eq!(body["error"], "Forbidden");
    assert!(
        body["detail"].as_str().unwrap().contains("banned"),
        "{body}"
    );
    // Every route, known or not, and the login itself.
    expect_error(
        client
            .get(format!("{app_url}/api/v1/nothing"))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    let login = client
        .post(format!("{app_url}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": TEST_ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(login, 403).await;
    for probe in ["/health", "/health/ready", "/health/live", "/api/v1/health"] {
        let response = client
            .get(format!("{app_url}{probe}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "{probe} stays open to a banned address"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fifth_failure_is_401_and_bans_the_address() {
    let app = TestApp::spawn_sqlite().await;
    let admin = app.admin_token().await;
    fail_five_times(&app.address).await;
    assert_banned(&app.address, &admin).await;
}

/// An attacker with an account of their own signs in between guesses at `admin`'s password:
/// a sign-in forgives nothing, so the fifth wrong password still bans.
#[tokio::test(flavor = "multi_thread")]
async fn signing_in_between_wrong_passwords_does_not_stop_the_ban() {
    let app = TestApp::spawn_sqlite().await;
    app.user_token("mallory", &["viewer"]).await;
    for guess in 1..=4 {
        assert_eq!(app.login_pair("admin", "wrong-password").await.0, 401);
        let (status, body) = app.login_pair("mallory", "mallory-password").await;
        assert_eq!(status, 200, "sign-in after guess {guess}: {body}");
    }
    assert_eq!(
        app.login_pair("admin", "wrong-password").await.0,
        401,
        "the fifth wrong password is answered, then bans"
    );
    expect_error(app.get("/api/v1/auth/me").await, 403).await;
    assert_eq!(
        app.login_pair("mallory", "mallory-password").await.0,
        403,
        "a banned address cannot sign in either"
    );
}

/// A valid API key forgives the address's wrong keys, as PyOrchestrator does: keys are too long
/// to guess, so that helps honest clients and no attacker.
#[tokio::test(flavor = "multi_thread")]
async fn a_valid_key_forgives_earlier_wrong_keys() {
    let app = TestApp::spawn_sqlite().await;
    let key = app.api_key("ops", &["viewer"]).await;
    for attempt in 1..=4 {
        expect_error(
            with_key(&app.address, &format!("bk_wrong-{attempt}")).await,
            401,
        )
        .await;
    }
    assert_eq!(with_key(&app.address, &key).await.status(), 200);
    for attempt in 5..=8 {
        expect_error(
            with_key(&app.address, &format!("bk_wrong-{attempt}")).await,
            401,
        )
        .await;
    }
    assert_eq!(
        with_key(&app.address, &key).await.status(),
        200,
        "eight wrong keys with a valid one between them do not ban"
    );
    for attempt in 9..=13 {
        expect_error(
            with_key(&app.address, &format!("bk_wrong-{attempt}")).await,
            401,
        )
        .await;
    }
    expect_error(with_key(&app.address, &key).await, 403).await;
}

/// A valid API key does not forgive wrong passwords; the two kinds add up to the ban.
#[tokio::test(flavor = "multi_thread")]
async fn a_valid_key_does_not_forgive_wrong_passwords() {
    let app = TestApp::spawn_sqlite().await;
    let key = app.api_key("ops", &["viewer"]).await;
    for _ in 0..2 {
        assert_eq!(app.login_pair("admin", "wrong-password").await.0, 401);
    }
    for attempt in 1..=2 {
        expect_error(
            with_key(&app.address, &format!("bk_wrong-{attempt}")).await,
            401,
        )
        .await;
    }
    assert_eq!(with_key(&app.address, &key).await.status(), 200);
    // Two wrong passwords stay counted: two more wrong keys make four, a wrong password five.
    for attempt in 3..=4 {
        expect_error(
            with_key(&app.address, &format!("bk_wrong-{attempt}")).await,
            401,
        )
        .await;
    }
    assert_eq!(app.login_pair("admin", "wrong-password").await.0, 401);
    expect_error(with_key(&app.address, &key).await, 403).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_credentials_do_not_count() {
    let app = TestApp::spawn_sqlite().await;
    for _ in 0..10 {
        expect_error(app.get("/api/v1/auth/me").await, 401).await;
    }
    app.admin_token().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ban_length_and_threshold_are_configurable() {
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| {
        c.ban_threshold = 2;
        c.ban_seconds = 1;
    })
    .await;
    for attempt in 1..=2 {
        expect_error(with_key(&app.address, &format!("bk_{attempt}")).await, 401).await;
    }
    expect_error(app.get("/api/v1/auth/me").await, 403).await;
    // The ban ends after its second, and the memo of it within another.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    expect_error(app.get("/api/v1/auth/me").await, 401).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // Trusted: each forwarded client is banned on its own.
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| {
        c.trusted_proxies = Some("127.0.0.1".into());
    })
    .await;
    let from = |ip: &'static str, key: &'static str| {
        app.client
            .get(app.url("/api/v1/auth/me"))
            .header("X-Forwarded-For", ip)
            .header("X-API-Key", key)
            .send()
    };
    for _ in 0..5 {
        expect_error(from("203.0.113.9", "bk_wrong").await.unwrap(), 401).await;
    }
    expect_error(from("203.0.113.9", "bk_wrong").await.unwrap(), 403).await;
    let admin_key = app.api_key("ops", &["admin"]).await;
    let response = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("X-Forwarded-For", "198.51.100.7")
        .header("X-API-Key", admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "another client behind the proxy is served"
    );

    // Untrusted: a spoofed header changes nothing, the socket's address is banned.
    let app = TestApp::spawn_sqlite().await;
    for attempt in 0..5 {
        let response = app
            .client
            .get(app.url("/api/v1/auth/me"))
            .header("X-Forwarded-For", format!("203.0.113.{attempt}"))
            .header("X-API-Key", "bk_wrong")
            .send()
            .await
            .unwrap();
        expect_error(response, 401).await;
    }
    expect_error(app.get("/api/v1/auth/me").await, 403).await;
}

/// Two `baton` processes on one PostgreSQL database: a ban set through the first holds on the
/// second, and on a third started after both stopped.
#[tokio::test(flavor = "multi_thread")]
async fn a_ban_holds_on_every_server_and_across_restarts() {
    let db = TestDatabase::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("DATABASE_URL", db.url()),
        ("JWT_SECRET_KEY", TEST_JWT_SECRET),
        ("BATON_ADMIN_PASSWORD", TEST_ADMIN_PASSWORD),
    ];
    let mut first = BatonProcess::start(dir.path(), &[], &env);
    let mut second = BatonProcess::start(dir.path(), &[], &env);
    first.wait_until_healthy().await;
    second.wait_until_healthy().await;
    let first_url = first.url("");
    let second_url = second.url("");

    let client = reqwest::Client::new();
    let (status, login) = json(
        client
            .post(second.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": TEST_ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let token = login["access_token"].as_str().unwrap().to_owned();

    fail_five_times(&first_url).await;
    // The second server may have remembered "not banned" for up to a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_banned(&second_url, &token).await;

    for process in [&mut first, &mut second] {
        assert!(process.terminate().await.success());
        let logs = process.stderr();
        for secret in [
            TEST_ADMIN_PASSWORD,
            TEST_JWT_SECRET,
            "bk_wrong-1",
            token.as_str(),
        ] {
            assert!(!logs.contains(secret), "a secret reached the logs:\n{logs}");
        }
    }

    let mut third = BatonProcess::start(dir.path(), &[], &env);
    third.wait_until_healthy().await;
    assert_banned(&third.url(""), &token).await;
    assert!(third.terminate().await.success());
}
