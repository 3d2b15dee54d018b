//! CasareRPA's login flow over HTTP: login, me, refresh with rotation, logout on every server,
//! and the refusals of wrong, tampered, expired and misused tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_tests::{TEST_ADMIN_PASSWORD, TEST_JWT_SECRET, TestApp, expect_error, json};
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::{Value, json};

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn logout(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The CasareRPA token response, checked field by field.
fn assert_token_response(body: &Value) {
    let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        ["access_token", "expires_in", "refresh_token", "token_type"],
        "exactly the documented fields: {body}"
    );
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    for token in ["access_token", "refresh_token"] {
        assert_eq!(
            body[token].as_str().unwrap().matches('.').count(),
            2,
            "{token} is a JWT"
        );
    }
}

async fn the_documented_flow(app: TestApp) {
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": TEST_ADMIN_PASSWORD, "tenant_id": "acme"}))
        .send()
        .await
        .unwrap();
    let (status, login) = json(response).await;
    assert_eq!(status, 200, "{login}");
    assert_token_response(&login);
    let access = login["access_token"].as_str().unwrap();

    let (status, body) = json(me(&app, access).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "user_id": "admin",
            "roles": ["admin", "developer", "operator", "viewer"],
            "tenant_id": "acme",
            "dev_mode": false
        })
    );

    let (status, rotated) =
        json(refresh(&app, login["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(status, 200, "{rotated}");
    assert_token_response(&rotated);
    let (status, body) = json(me(&app, rotated["access_token"].as_str().unwrap()).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["tenant_id"], "acme", "the tenant survives a refresh");

    let (status, body) = json(logout(&app, rotated["access_token"].as_str().unwrap()).await).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"message": "Successfully logged out"}));
    expect_error(
        me(&app, rotated["access_token"].as_str().unwrap()).await,
        401,
    )
    .await;
    expect_error(
        refresh(&app, rotated["refresh_token"].as_str().unwrap()).await,
        401,
    )
    .await;
    // The first access token belongs to the same login session, so it is gone too.
    expect_error(me(&app, access).await, 401).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_flow_on_sqlite() {
    the_documented_flow(TestApp::spawn_sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_documented_flow_on_postgres() {
    the_documented_flow(TestApp::spawn_postgres().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_works_once_and_its_reuse_ends_the_session() {
    let app = TestApp::spawn_sqlite().await;
    let (_, first) = app.login_pair("admin", TEST_ADMIN_PASSWORD).await;
    let first_refresh = first["refresh_token"].as_str().unwrap();
    let (status, second) = json(refresh(&app, first_refresh).await).await;
    assert_eq!(status, 200);
    let body = expect_error(refresh(&app, first_refresh).await, 401).await;
    assert!(
        body["detail"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    // Reuse is a sign of theft: the tokens rotated in from it stop working as well.
    expect_error(
        me(&app, second["access_token"].as_str().unwrap()).await,
        401,
    )
    .await;
    expect_error(
        refresh(&app, second["refresh_token"].as_str().unwrap()).await,
        401,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refreshing_with_an_access_token_is_a_bad_request() {
    let app = TestApp::spawn_sqlite().await;
    let access = app.admin_token().await;
    let body = expect_error(refresh(&app, &access).await, 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("refresh"),
        "{body}"
    );
    // And a refresh token does not authenticate requests.
    let (_, pair) = app.login_pair("admin", TEST_ADMIN_PASSWORD).await;
    expect_error(me(&app, pair["refresh_token"].as_str().unwrap()).await, 400).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_foreign_and_expired_tokens_are_401() {
    let app = TestApp::spawn_sqlite().await;
    let access = app.admin_token().await;

    // Change the payload without re-signing: make the claims say someone else.
    let mut parts: Vec<String> = access.split('.').map(String::from).collect();
    parts[1] = encode_segment(br#"{"sub":"mallory","roles":["admin"],"type":"access","jti":"j","sid":"s","iat":1,"exp":9999999999}"#);
    let response = me(&app, &parts.join(".")).await;
    assert_eq!(
        response.headers().get(WWW_AUTHENTICATE).unwrap(),
        "Bearer",
        "a 401 names the scheme"
    );
    expect_error(response, 401).await;

    // A genuine token names the user's creation instant, as listed by `/users`.
    let (_, users) = json(
        app.client
            .get(app.url("/api/v1/users"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let created_at = time::OffsetDateTime::parse(
        users[0]["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ucr = (created_at.unix_timestamp_nanos() / 1000) as i64;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |exp: i64| {
        json!({"sub": "admin", "roles": ["admin"], "type": "access", "jti": "j1", "sid": "s1",
               "ucr": ucr, "iat": exp - 3600, "exp": exp})
    };
    let foreign = sign(&claims(now + 3600), b"someone-elses-secret");
    expect_error(me(&app, &foreign).await, 401).await;

    let expired = sign(&claims(now - 10), TEST_JWT_SECRET.as_bytes());
    let body = expect_error(me(&app, &expired).await, 401).await;
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    let genuine = sign(&claims(now + 3600), TEST_JWT_SECRET.as_bytes());
    assert_eq!(
        me(&app, &genuine).await.status(),
        200,
        "the helper signs like the server"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_and_unknown_users_get_the_same_401() {
    let app = TestApp::spawn_sqlite().await;
    let (status, wrong_password) = app.login_pair("admin", "not-the-password").await;
    assert_eq!(status, 401);
    let (status, unknown_user) = app.login_pair("nobody", "whatever-password").await;
    assert_eq!(status, 401);
    assert_eq!(
        wrong_password, unknown_user,
        "no hint which usernames exist"
    );

    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin"}))
        .send()
        .await
        .unwrap();
    expect_error(response, 400).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_on_one_server_holds_on_another_sharing_the_database() {
    let first = TestApp::spawn_postgres().await;
    let second = first.another_server(|_| {}).await;
    let (_, pair) = first.login_pair("admin", TEST_ADMIN_PASSWORD).await;
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(
        me(&second, access).await.status(),
        200,
        "servers share the secret"
    );
    assert_eq!(logout(&first, access).await.status(), 200);
    expect_error(me(&second, access).await, 401).await;
    expect_error(
        refresh(&second, pair["refresh_token"].as_str().unwrap()).await,
        401,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_credentials_are_401_in_the_error_shape() {
    let app = TestApp::spawn_sqlite().await;
    let body = expect_error(app.get("/api/v1/auth/me").await, 401).await;
    assert!(
        body["detail"].as_str().unwrap().contains("Authorization"),
        "{body}"
    );
    let response = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("Authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    expect_error(response, 401).await;
}

fn sign(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Base64url without padding, for a hand-made JWT segment.
fn encode_segment(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
