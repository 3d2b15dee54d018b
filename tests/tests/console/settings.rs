//! Settings: an admin creates a user and an API key (shown once, and it works), then revokes it.

use crate::Console;

pub async fn run(c: &Console) {
    let b = &c.browser;
    b.click_link("Settings").await;
    b.wait_for_text("API keys").await;

    b.fill("New username", "olivia").await;
    b.fill("New user's password", "olivia-password").await;
    b.choose("Role", "operator").await;
    b.click_button("Create user").await;
    b.wait_for_text("User olivia created.").await;
    b.wait_for_text_in("table", "olivia").await;

    b.fill("Key name", "billing-integration").await;
    b.choose("Key role", "operator").await;
    b.click_button("Create API key").await;
    let shown = b.find(".secret-value").await;
    let key = b.text(&shown).await;
    b.wait_for_text("shown once").await;
    c.shot("settings-key-created").await;
    // The key shown is a working key.
    let response = c
        .app
        .client
        .get(c.url("/api/v1/queues"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "the new key works");
    // Shown once: the list no longer holds it.
    c.open("/ui/settings").await;
    b.wait_for_text("billing-integration").await;
    assert!(
        !b.text_of_page().await.contains(&key),
        "the key is shown once"
    );
    assert!(b.visible(".secret-value").await.is_empty());

    b.click_button("Revoke").await;
    b.click_button("Yes, revoke").await;
    b.wait_for_text("API key billing-integration revoked.")
        .await;
    let response = c
        .app
        .client
        .get(c.url("/api/v1/queues"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        401,
        "the revoked key is refused"
    );
    c.shot("settings").await;
}
