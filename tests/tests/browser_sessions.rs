//! The console's browser sessions over HTTP: the cookie's attributes, CSRF tokens on writes,
//! other origins refused, sign-out on every server, failed sign-ins counted towards the ban,
//! and the console's pages (redirect, CSP, assets) served from the binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_storage::testing::TestDatabase;
use baton_tests::{TEST_ADMIN_PASSWORD, TestApp, expect_error, json};
use serde_json::{Value, json};

/// Signs in as the admin; the cookie's token and the session's body.
async fn sign_in(app: &TestApp) -> (String, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/auth/session"))
        .json(&json!({"username": "admin", "password": TEST_ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Expires="] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("baton_session=")
        .unwrap()
        .to_owned();
    let (_, body) = json(response).await;
    assert!(
        !body.to_string().contains(&token),
        "the token is only in the cookie"
    );
    (token, body)
}

fn with_cookie(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(path))
        .header("Cookie", format!("baton_session={token}"))
}

async fn a_session_reads_and_writes_only_with_its_csrf_token(app: TestApp) {
    let (token, body) = sign_in(&app).await;
    assert_eq!(body["username"], "admin");
    assert_eq!(body["roles"][0], "admin");
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(csrf.len(), 64);

    // Reads need nothing more than the cookie; the session endpoint repeats the CSRF token.
    let (status, session) = json(
        with_cookie(&app, reqwest::Method::GET, "/api/v1/auth/session", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(session["csrf_token"], csrf.as_str());
    let (status, _) = json(
        with_cookie(&app, reqwest::Method::GET, "/api/v1/queues", &token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);

    // A write without the token, or with another session's, is refused and changes nothing.
    let key = json!({"name": "from-a-form", "roles": ["viewer"]});
    let refused = with_cookie(&app, reqwest::Method::POST, "/api/v1/api-keys", &token)
        .json(&key)
        .send()
        .await
        .unwrap();
    let body = expect_error(refused, 403).await;
    assert!(body["detail"].as_str().unwrap().contains("X-CSRF-Token"));
    let (other_token, other) = sign_in(&app).await;
    assert_ne!(other_token, token);
    let refused = with_cookie(&app, reqwest::Method::POST, "/api/v1/api-keys", &token)
        .header("X-CSRF-Token", other["csrf_token"].as_str().unwrap())
        .json(&key)
        .send()
        .await
        .unwrap();
    expect_error(refused, 403).await;
    let admin = app.admin_token().await;
    let (_, keys) = app
        .call_as(&admin, reqwest::Method::GET, "/api/v1/api-keys", None)
        .await;
    assert_eq!(keys.as_array().unwrap().len(), 0, "nothing was written");

    // With its own token, the write goes through.
    let (status, created) = json(
        with_cookie(&app, reqwest::Method::POST, "/api/v1/api-keys", &token)
            .header("X-CSRF-Token", &csrf)
            .json(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");

    // A cookie sent by a page of another origin is refused, reads and websockets included;
    // the server's own origin is accepted.
    let refused = with_cookie(&app, reqwest::Method::GET, "/api/v1/queues", &token)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    expect_error(refused, 403).await;
    assert_eq!(
        socket_close_code(&app, &token, "https://evil.example").await,
        Some(4001)
    );
    assert_eq!(socket_close_code(&app, &token, &app.address).await, None);
    let own = with_cookie(&app, reqwest::Method::GET, "/api/v1/queues", &token)
        .header("Origin", &app.address)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status().as_u16(), 200);

    // API clients are unaffected: a bearer token needs no CSRF token, and wins over a cookie.
    let (status, _) = json(
        with_cookie(&app, reqwest::Method::POST, "/api/v1/api-keys", &token)
            .bearer_auth(&admin)
            .json(&json!({"name": "bearer", "roles": ["viewer"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    // …and has no console session to read or end.
    let (status, _) = app
        .call_as(&admin, reqwest::Method::GET, "/api/v1/auth/session", None)
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .call_as(
            &admin,
            reqwest::Method::DELETE,
            "/api/v1/auth/session",
            None,
        )
        .await;
    assert_eq!(status, 401);
}

/// Opens `/ws/live-jobs` with the session cookie from `origin`: the close code the server sends
/// at once, or `None` when it keeps the socket open (it answers `ping` with `pong`).
async fn socket_close_code(app: &TestApp, token: &str, origin: &str) -> Option<u16> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://127.0.0.1:{}/ws/live-jobs", app.port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", format!("baton_session={token}").parse().unwrap());
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket.send(Message::text("ping")).await.unwrap();
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("an answer in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => return Some(u16::from(frame.code)),
            Some(Ok(Message::Text(text))) if text.as_str() == "pong" => return None,
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_reads_and_writes_only_with_its_csrf_token_on_sqlite() {
    a_session_reads_and_writes_only_with_its_csrf_token(TestApp::spawn_sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_reads_and_writes_only_with_its_csrf_token_on_postgres() {
    a_session_reads_and_writes_only_with_its_csrf_token(TestApp::spawn_postgres().await).await;
}

/// Signing out on one server ends the session on another sharing the database; so does
/// deleting its user.
async fn sign_out_ends_the_session_on_every_server(first: TestApp) {
    let second = first.another_server(|_| {}).await;
    let (token, body) = sign_in(&first).await;
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let read = async |app: &TestApp, token: &str| {
        with_cookie(app, reqwest::Method::GET, "/api/v1/auth/session", token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(read(&second, &token).await, 200);

    // Signing out is a write: it needs the CSRF token too.
    let refused = with_cookie(
        &second,
        reqwest::Method::DELETE,
        "/api/v1/auth/session",
        &token,
    )
    .send()
    .await
    .unwrap();
    expect_error(refused, 403).await;
    let response = with_cookie(
        &second,
        reqwest::Method::DELETE,
        "/api/v1/auth/session",
        &token,
    )
    .header("X-CSRF-Token", &csrf)
    .send()
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let removal = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(removal.starts_with("baton_session=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert_eq!(read(&first, &token).await, 401);
    assert_eq!(read(&second, &token).await, 401);

    // A deleted user's session ends at once, everywhere.
    let admin = first.admin_token().await;
    let (status, _) = first
        .call_as(
            &admin,
            reqwest::Method::POST,
            "/api/v1/users",
            Some(&json!({"username": "dora", "password": "dora-password", "roles": ["operator"]})),
        )
        .await;
    assert_eq!(status, 201);
    let response = second
        .client
        .post(second.url("/api/v1/auth/session"))
        .json(&json!({"username": "dora", "password": "dora-password"}))
        .send()
        .await
        .unwrap();
    let dora = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("baton_session=")
        .to_owned();
    assert_eq!(read(&second, &dora).await, 200);
    let (status, _) = first
        .call_as(&admin, reqwest::Method::DELETE, "/api/v1/users/dora", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(read(&second, &dora).await, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_ends_the_session_on_every_server_on_sqlite() {
    sign_out_ends_the_session_on_every_server(TestApp::spawn_sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_ends_the_session_on_every_server_on_postgres() {
    sign_out_ends_the_session_on_every_server(TestApp::spawn_postgres().await).await;
}

/// Failed sign-ins count towards the ban like failed logins, and a good one forgives nothing.
#[tokio::test(flavor = "multi_thread")]
async fn failed_sign_ins_count_towards_the_ban() {
    let app = TestApp::spawn_with(TestDatabase::sqlite().await, |c| c.ban_threshold = 3).await;
    let attempt = async |password: &str| {
        app.client
            .post(app.url("/api/v1/auth/session"))
            .json(&json!({"username": "admin", "password": password}))
            .send()
            .await
            .unwrap()
    };
    for _ in 0..2 {
        let body = expect_error(attempt("wrong-password").await, 401).await;
        assert_eq!(body["detail"], "the username or password is wrong");
    }
    assert_eq!(attempt(TEST_ADMIN_PASSWORD).await.status().as_u16(), 200);
    expect_error(attempt("wrong-password").await, 401).await;
    expect_error(attempt(TEST_ADMIN_PASSWORD).await, 403).await;
}

/// A sign-in posted by a page of another origin is refused before the password is checked.
#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_from_another_origin_is_refused() {
    let app = TestApp::spawn_sqlite().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/session"))
        .header("Origin", "https://evil.example")
        .json(&json!({"username": "admin", "password": TEST_ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let body = expect_error(response, 403).await;
    assert!(body["detail"].as_str().unwrap().contains("origin"));
}

/// `/` sends browsers to the console and API clients a JSON 404; the console's page and
/// assets come from the binary under a policy that allows only the server itself.
async fn the_console_is_served_from_the_binary(app: TestApp) {
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let browser = no_redirects
        .get(app.url("/"))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status().as_u16(), 303);
    assert_eq!(browser.headers()["location"], "/ui/");
    let api_client = no_redirects.get(app.url("/")).send().await.unwrap();
    expect_error(api_client, 404).await;
    let ui = no_redirects.get(app.url("/ui")).send().await.unwrap();
    assert_eq!(ui.headers()["location"], "/ui/");

    for path in ["/ui/", "/ui/jobs", "/ui/jobs/0c1f2e3d", "/ui/settings"] {
        let page = app.get(path).await;
        assert_eq!(page.status().as_u16(), 200, "{path}");
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = page.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{html}"
        );
        assert!(html.contains("/ui/assets/app.js"));
    }
    // Every module the page and its scripts import is served, and none names another origin.
    let mut pending = vec!["app.js".to_owned(), "style.css".to_owned()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(asset) = pending.pop() {
        if !seen.insert(asset.clone()) {
            continue;
        }
        let response = app.get(&format!("/ui/assets/{asset}")).await;
        assert_eq!(response.status().as_u16(), 200, "{asset}");
        let text = response.text().await.unwrap();
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{asset} names another origin"
        );
        let dir = asset.rsplit_once('/').map_or("", |(d, _)| d);
        for line in text.lines().filter(|l| {
            l.contains(" from \"./") || l.contains(" from \"../") || l.contains("import(`./pages/")
        }) {
            if let Some(start) = line.find("from \"") {
                let rel = line[start + 6..].split('"').next().unwrap();
                pending.push(resolve(dir, rel));
            }
        }
    }
    for page in [
        "overview",
        "signin",
        "jobs",
        "queues",
        "schedules",
        "robots",
        "workflows",
        "flows",
        "settings",
    ] {
        let response = app.get(&format!("/ui/assets/pages/{page}.js")).await;
        assert_eq!(response.status().as_u16(), 200, "{page}");
    }
    expect_error(app.get("/ui/assets/nothing.js").await, 404).await;
    expect_error(app.get("/ui/assets/%2E%2E%2Fapp.js").await, 404).await;
}

/// `rel` (`./x.js`, `../x.js`) resolved against the asset directory `dir`.
fn resolve(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for segment in rel.split('/') {
        match segment {
            "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_is_served_from_the_binary_on_sqlite() {
    the_console_is_served_from_the_binary(TestApp::spawn_sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_is_served_from_the_binary_on_postgres() {
    the_console_is_served_from_the_binary(TestApp::spawn_postgres().await).await;
}
