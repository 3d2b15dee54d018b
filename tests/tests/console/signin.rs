//! Signing in and out: the redirect from `/`, a refused password's message, the session cookie
//! out of the scripts' reach, the overview after sign-in, and a sign-out that ends the session
//! on the server.

use baton_tests::TEST_ADMIN_PASSWORD;

use crate::Console;

pub async fn run(c: &Console) {
    let b = &c.browser;
    // A browser at `/` lands on the console, which asks for a sign-in.
    c.open("/").await;
    b.button("Sign in").await;
    assert!(b.url().await.contains("/ui/signin"), "at {}", b.url().await);
    c.shot("signin").await;

    b.fill("Username", "admin").await;
    b.fill("Password", "not-the-password").await;
    b.click_button("Sign in").await;
    b.wait_for_text("the username or password is wrong").await;

    b.fill("Password", TEST_ADMIN_PASSWORD).await;
    b.click_button("Sign in").await;
    b.button("Sign out").await;
    for page in [
        "Overview",
        "Jobs",
        "Queues",
        "Schedules",
        "Robots",
        "Workflows",
        "Flows",
        "Settings",
    ] {
        b.link(page).await;
    }
    b.wait_for_text("Jobs, last 24 h").await;
    c.shot("overview").await;

    // The session lives in an HttpOnly cookie: the page's scripts cannot read it, and nothing
    // is kept in localStorage.
    let token = b.cookie("baton_session").await.expect("a session cookie");
    let seen = b
        .execute(
            "return [document.cookie, JSON.stringify(localStorage), JSON.stringify(sessionStorage)];",
            vec![],
        )
        .await;
    for place in seen.as_array().expect("three strings") {
        let place = place.as_str().unwrap_or_default();
        assert!(
            !place.contains(&token),
            "the token is readable by scripts: {place}"
        );
    }
    assert_eq!(seen[0], "", "no cookie is visible to scripts");

    // A phone's width: the navigation folds behind a menu button.
    b.resize(390, 844).await;
    b.click_button("Menu").await;
    b.link("Queues").await;
    c.shot("overview-phone").await;
    b.resize(1280, 900).await;

    c.sign_out().await;
    c.shot("signed-out").await;
}

/// After a sign-out, the old cookie's token is refused by the API as well.
pub async fn signs_out(c: &Console) {
    let b = &c.browser;
    let token = b.cookie("baton_session").await.expect("a session cookie");
    c.sign_out().await;
    assert!(
        b.cookie("baton_session").await.is_none_or(|v| v.is_empty()),
        "sign-out removes the cookie"
    );
    let response = c
        .app
        .client
        .get(c.url("/api/v1/auth/session"))
        .header("Cookie", format!("baton_session={token}"))
        .send()
        .await
        .expect("send");
    assert_eq!(
        response.status().as_u16(),
        401,
        "the signed-out session is revoked"
    );
}
