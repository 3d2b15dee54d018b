//! Robots: an admin creates a robot in the console and sees its token once, with the
//! environment a robot runs with; its heartbeat shows live; Delete asks in the page first.

use reqwest::Method;
use serde_json::json;

use crate::Console;

pub async fn run(c: &Console) {
    let b = &c.browser;
    c.open("/ui/robots").await;
    b.wait_for_text("No robot yet.").await;

    b.fill("Robot id", "console-robot").await;
    b.fill("Hostname", "rpa-host-1").await;
    b.click_button("Create robot").await;
    b.wait_for_text("shown once").await;
    let secret = b.find(".secret-value").await;
    let token = b.text(&secret).await;
    assert!(token.starts_with("br_"), "a robot token: {token}");
    b.wait_for_text(&format!("BATON_ROBOT_TOKEN={token}")).await;
    b.wait_for_text("BATON_ROBOT_ID=console-robot").await;
    b.wait_for_text(&format!("BATON_SERVER={}", c.url(""))).await;
    b.wait_for_text("rpa-host-1").await;

    // Its first heartbeat reaches the open page over the robot-status feed.
    let response = c
        .app
        .client
        .post(c.url("/api/v1/robots/console-robot/heartbeat"))
        .header("X-Api-Token", &token)
        .json(&json!({"capabilities": ["Log", "Delay", "HttpRequest"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    crate::wait_for_text_in(c, "td .badge", "idle").await;
    b.wait_for_text("Log, Delay, HttpRequest").await;
    c.shot("robots").await;

    // Shown once: the page opened again has no token on it.
    c.open("/ui/robots").await;
    b.wait_for_text("console-robot").await;
    assert!(
        !b.text_of_page().await.contains(&token),
        "the token is shown only once"
    );

    // Delete asks in the page; Keep keeps the robot, Yes deletes it.
    b.click_button("Delete").await;
    b.click_button("Keep").await;
    b.click_button("Delete").await;
    b.wait_for_text("Delete console-robot? Its token stops working.").await;
    c.shot("robots-delete").await;
    b.click_button("Yes, delete").await;
    b.wait_for_text("No robot yet.").await;
    let (status, robots) = c
        .app
        .call_as(&c.admin, Method::GET, "/api/v1/robots", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(robots, json!([]));
}
