//! CasareRPA's authentication endpoints: login, refresh (and its two documented errors), me and
//! logout, each with the document's request and response.

use baton_storage::testing::TestDatabase;
use baton_tests::{TEST_ADMIN_PASSWORD, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

use crate::check::Case;
use crate::env::{Env, send, text};
use crate::seeds::{Seed, set};

fn casare(section: &str, label: &str) -> Value {
    Seed::Casare.example(section, label)
}

/// The document's error body, `{"detail": "..."}`: every error must carry it.
pub fn casare_error() -> Value {
    casare(
        "## Error Response Format",
        "All API errors follow this structure:",
    )
}

pub async fn auth(db: TestDatabase) {
    let env = Env::start(db).await;
    let login_answer = casare("### POST /auth/login", "**Response** (200 OK):");
    let token_case = |what: &str| {
        Case::new(what, 200, login_answer.clone()).pins(&["/token_type", "/expires_in"])
    };

    // The request body and the curl example's body. Baton's bootstrap admin cannot have the
    // documents' six-character password "secret" (passwords have at least 8 characters), so
    // the test admin's password takes its place; everything else is sent as printed.
    let mut request = casare("### POST /auth/login", "**Request Body**:");
    assert_eq!(request["username"], "admin");
    set(&mut request, "/password", json!(TEST_ADMIN_PASSWORD));
    let (status, body) = send(
        env.anonymous(Method::POST, "/api/v1/auth/login")
            .json(&request),
    )
    .await;
    let body = token_case("POST /api/v1/auth/login (request body)").check(status, &body);
    // That session carries the request's tenant, which `/auth/me` shows back.
    let (status, me) = send(
        env.anonymous(Method::GET, "/api/v1/auth/me")
            .bearer_auth(text(&body, "/access_token")),
    )
    .await;
    Case::new(
        "GET /api/v1/auth/me (a session with a tenant)",
        200,
        casare("### GET /auth/me", "**Response** (200 OK):"),
    )
    .pins(&["/user_id", "/dev_mode", "/roles"])
    .pin_to("/tenant_id", request["tenant_id"].clone())
    .check(status, &me);

    let mut curl = casare("### POST /auth/login", "**curl Example**:");
    set(&mut curl, "/password", json!(TEST_ADMIN_PASSWORD));
    let (status, tokens) = send(
        env.anonymous(Method::POST, "/api/v1/auth/login")
            .json(&curl),
    )
    .await;
    let tokens = token_case("POST /api/v1/auth/login (curl example)").check(status, &tokens);
    let access = text(&tokens, "/access_token");
    let refresh_token = text(&tokens, "/refresh_token");

    // GET /auth/me with that session (no tenant: the example shows `tenant_id: null`).
    let (status, me) = send(
        env.anonymous(Method::GET, "/api/v1/auth/me")
            .bearer_auth(&access),
    )
    .await;
    Case::new(
        "GET /api/v1/auth/me",
        200,
        casare("### GET /auth/me", "**Response** (200 OK):"),
    )
    .pins(&["/user_id", "/tenant_id", "/dev_mode", "/roles"])
    .check(status, &me);

    // POST /auth/refresh with the refresh token in the documented body.
    let mut request = casare("### POST /auth/refresh", "**Request Body**:");
    set(&mut request, "/refresh_token", json!(refresh_token));
    let (status, refreshed) = send(
        env.anonymous(Method::POST, "/api/v1/auth/refresh")
            .json(&request),
    )
    .await;
    let refreshed = Case::new(
        "POST /api/v1/auth/refresh",
        200,
        casare("### POST /auth/refresh", "**Response** (200 OK):"),
    )
    .pins(&["/token_type", "/expires_in"])
    .check(status, &refreshed);

    // Its documented errors: 400 for a token that is not a refresh token, 401 for an invalid one.
    let error = casare_error();
    let not_refresh = json!({"refresh_token": text(&refreshed, "/access_token")});
    let (status, body) = send(
        env.anonymous(Method::POST, "/api/v1/auth/refresh")
            .json(&not_refresh),
    )
    .await;
    Case::new(
        "POST /api/v1/auth/refresh (an access token)",
        400,
        error.clone(),
    )
    .check(status, &body);
    let invalid = json!({"refresh_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.bm9wZQ"});
    let (status, body) = send(
        env.anonymous(Method::POST, "/api/v1/auth/refresh")
            .json(&invalid),
    )
    .await;
    Case::new(
        "POST /api/v1/auth/refresh (an invalid token)",
        401,
        error.clone(),
    )
    .check(status, &body);

    // POST /auth/logout with the Authorization header; the session's tokens are revoked.
    let access = text(&refreshed, "/access_token");
    let (status, body) = send(
        env.anonymous(Method::POST, "/api/v1/auth/logout")
            .bearer_auth(&access),
    )
    .await;
    Case::new(
        "POST /api/v1/auth/logout",
        200,
        casare("### POST /auth/logout", "**Response** (200 OK):"),
    )
    .pin("/message")
    .check(status, &body);
    let (status, body) = send(
        env.anonymous(Method::GET, "/api/v1/auth/me")
            .bearer_auth(&access),
    )
    .await;
    Case::new("GET /api/v1/auth/me after logout", 401, error.clone()).check(status, &body);
    let again = json!({"refresh_token": text(&refreshed, "/refresh_token")});
    let (status, body) = send(
        env.anonymous(Method::POST, "/api/v1/auth/refresh")
            .json(&again),
    )
    .await;
    Case::new("POST /api/v1/auth/refresh after logout", 401, error).check(status, &body);
}

/// "Set `JWT_DEV_MODE=true` to bypass authentication for testing. All requests receive admin
/// privileges": `/auth/me` without credentials is an admin in dev mode.
pub async fn dev_mode(db: TestDatabase) {
    let app = TestApp::spawn_with(db, |c| c.jwt_dev_mode = true).await;
    let (status, me) = send(app.client.get(app.url("/api/v1/auth/me"))).await;
    Case::new(
        "GET /api/v1/auth/me (dev mode, no credentials)",
        200,
        casare("### GET /auth/me", "**Response** (200 OK):"),
    )
    .pins(&["/roles", "/tenant_id"])
    .pin_to("/dev_mode", json!(true))
    .check(status, &me);
}
