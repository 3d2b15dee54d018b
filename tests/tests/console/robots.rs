//! Robots: an admin creates a robot in the console and sees its token once, with the
//! environment a robot runs with; its heartbeat shows live; Delete asks in the page first.

use reqwest::Method;
use serde_json::json;

use crate::Console;

pub async fn run(c: &Console) {
    let b = &c.browser;
    let (_, before) = c
        .app
        .call_as(&c.admin, Method::GET, "/api/v1/robots", None)
        .await;
    c.open("/ui/robots").await;
    b.button("Create robot").await;
    if before == json!([]) {
        b.wait_for_text("No robot yet.").await;
    }

    b.fill("Robot id", "new-robot").await;
    b.fill("Hostname", "rpa-host-1").await;
    b.click_button("Create robot").await;
    b.wait_for_text("shown once").await;
    let secret = b.find(".secret-value").await;
    let token = b.text(&secret).await;
    assert!(token.starts_with("br_"), "a robot token: {token}");
    b.wait_for_text(&format!("BATON_ROBOT_TOKEN={token}")).await;
    b.wait_for_text("BATON_ROBOT_ID=new-robot").await;
    b.wait_for_text(&format!("BATON_SERVER={}", c.url("")))
        .await;
    b.wait_for_text("rpa-host-1").await;

    // Its first heartbeat reaches the open page over the robot-status feed.
    let response = c
        .app
        .client
        .post(c.url("/api/v1/robots/new-robot/heartbeat"))
        .header("X-Api-Token", &token)
        .json(&json!({"capabilities": ["Log", "Delay", "HttpRequest"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    c.browser.wait_for_text_in("td .badge", "idle").await;
    b.wait_for_text("Log, Delay, HttpRequest").await;
    c.shot("robots").await;
    b.resize(390, 844).await;
    c.shot("robots-phone").await;
    b.resize(1280, 900).await;

    // Shown once: the page opened again has no token on it.
    c.open("/ui/robots").await;
    b.wait_for_text("new-robot").await;
    assert!(
        !b.text_of_page().await.contains(&token),
        "the token is shown only once"
    );

    // Delete asks in the page; Keep keeps the robot, Yes deletes it.
    // Other walk-throughs leave robots of their own: this row's button is the one.
    let delete = b.button_in_row("new-robot", "Delete").await;
    b.click(&delete).await;
    b.click_button("Keep").await;
    let delete = b.button_in_row("new-robot", "Delete").await;
    b.click(&delete).await;
    b.wait_for_text("Delete new-robot? Its token stops working.")
        .await;
    c.shot("robots-delete").await;
    b.click_button("Yes, delete").await;
    b.wait_for_text("Robot new-robot deleted.").await;
    b.wait_until("the robot to leave the list", async || {
        !b.text_of_page().await.contains("rpa-host-1")
    })
    .await;
    let (status, robots) = c
        .app
        .call_as(&c.admin, Method::GET, "/api/v1/robots", None)
        .await;
    assert_eq!(status, 200);
    let ids = |list: &serde_json::Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| r["robot_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&robots),
        ids(&before),
        "only the new robot came and went"
    );
}

/// A viewer sees robots and queues but none of the buttons that change them.
pub async fn viewer_sees_no_actions(c: &Console, item_id: &str) {
    let b = &c.browser;
    let password = c.create_user("watcher", &["viewer"]).await;
    c.sign_out().await;
    c.sign_in("watcher", &password).await;
    c.open("/ui/robots").await;
    b.wait_for_text("Robots").await;
    b.find("main table, main .empty").await;
    assert!(b.buttons_now("Create robot").await.is_empty());
    assert!(b.buttons_now("Delete").await.is_empty());
    c.open(&format!("/ui/queue-items/{item_id}")).await;
    b.wait_for_text("Retry count").await;
    for label in ["Retry", "Abandon"] {
        assert!(b.buttons_now(label).await.is_empty(), "{label}");
    }
    c.open("/ui/queues/Invoices%202025").await;
    b.wait_for_text("Lease seconds").await;
    assert!(b.buttons_now("Save settings").await.is_empty());
    c.sign_out().await;
    c.sign_in("admin", baton_tests::TEST_ADMIN_PASSWORD).await;
}
