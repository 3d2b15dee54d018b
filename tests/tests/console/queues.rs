//! Queues: items added through PyOrchestrator's `POST /api/queue`, one marked FAILED through
//! the API; the list of queues, a queue's items filtered by status and searched by reference,
//! its settings form, and a failed item put back to NEW with `Retry`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::Console;

/// Returns the id of an ABANDONED item, for the viewer's look at it.
pub async fn run(c: &Console) -> String {
    let b = &c.browser;
    let mut ids = Vec::new();
    for (n, case) in ["A-17", "B-02", "C-33"].iter().enumerate() {
        let (status, body) = c
            .app
            .call_as(
                &c.admin,
                Method::POST,
                "/api/queue",
                Some(&json!({
                    "queue_name": "Invoices 2025",
                    "data": {"case_id": case, "amount": 120 + n},
                    "reference": format!("INV-{}", n + 1),
                    "created_by": "ERP",
                    "created_date": format!("2025-04-26T12:0{n}:00"),
                    "message": "Created from the ERP",
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (status, body) = c
        .app
        .call_as(
            &c.admin,
            Method::PUT,
            &format!("/api/v1/queue-items/{}/status", ids[1]),
            Some(&json!({"status": "FAILED", "message": "the invoice PDF cannot be read"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Every queue with its counts and settings.
    c.open("/ui/queues").await;
    b.link("Invoices 2025").await;
    b.wait_for_text("300 s").await;
    c.shot("queues").await;

    // The queue's items, newest first; the status filter keeps the failed one.
    b.click_link("Invoices 2025").await;
    b.link("INV-3").await;
    b.link("INV-1").await;
    b.choose("Status", "FAILED").await;
    b.wait_until("only the failed item to be listed", async || {
        let text = b.text_of_page().await;
        text.contains("INV-2") && !text.contains("INV-1") && !text.contains("INV-3")
    })
    .await;
    assert!(
        b.url().await.ends_with("status=FAILED"),
        "{}",
        b.url().await
    );

    // A search by reference, across every status.
    b.choose("Status", "").await;
    b.link("INV-1").await;
    b.fill("Reference starts with", "INV-3").await;
    b.click_button("Search").await;
    b.wait_until("only INV-3 to be listed", async || {
        let text = b.text_of_page().await;
        text.contains("INV-3") && !text.contains("INV-1") && !text.contains("INV-2")
    })
    .await;
    b.fill("Reference starts with", "").await;
    b.click_button("Search").await;
    b.link("INV-2").await;

    // The settings form, labelled, saved through PUT /queues/{name}.
    b.fill("Max retries", "5").await;
    b.fill("Lease seconds", "600").await;
    b.click_button("Save settings").await;
    b.wait_for_text("Settings of Invoices 2025 saved.").await;
    let (_, queue) = c
        .app
        .call_as(
            &c.admin,
            Method::GET,
            "/api/v1/queues/Invoices%202025",
            None,
        )
        .await;
    assert_eq!(
        (queue["max_retries"].clone(), queue["lease_seconds"].clone()),
        (json!(5), json!(600))
    );
    c.shot("queue").await;
    b.resize(390, 844).await;
    c.shot("queue-phone").await;
    b.resize(1280, 900).await;

    // The failed item: its error, data and times, and Retry puts it back to NEW.
    b.click_link("INV-2").await;
    b.wait_for_text("the invoice PDF cannot be read").await;
    b.wait_for_text("B-02").await;
    assert!(
        b.buttons_now("Abandon").await.is_empty(),
        "a failed item is not abandoned"
    );
    c.shot("queue-item").await;
    b.resize(390, 844).await;
    c.shot("queue-item-phone").await;
    b.resize(1280, 900).await;
    b.click_button("Retry").await;
    b.wait_for_text("The item is NEW again").await;
    c.browser.wait_for_text_in("dd .badge", "NEW").await;
    let item = item(c, &ids[1]).await;
    assert_eq!(item["status"], "NEW");
    assert!(
        b.buttons_now("Retry").await.is_empty(),
        "a new item has no Retry"
    );

    // Abandon moves a NEW item out of the robots' way.
    b.click_button("Abandon").await;
    b.wait_for_text("The item is abandoned.").await;
    assert_eq!(item_status(c, &ids[1]).await, "ABANDONED");

    // A page gone stale: INV-1 is DONE by now, so Abandon is refused with the API's words. A
    // failed item sent back to NEW at the same time keeps the queue's live numbers as they
    // were, so the page does not redraw before the click.
    let (status, body) = c
        .app
        .call_as(
            &c.admin,
            Method::POST,
            "/api/queue",
            Some(&json!({"queue_name": "Invoices 2025", "reference": "INV-4", "status": "FAILED"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let spare = body["id"].as_str().unwrap().to_owned();
    c.open(&format!("/ui/queue-items/{}", ids[0])).await;
    b.button("Abandon").await;
    set_status(c, &ids[0], "DONE").await;
    set_status(c, &spare, "NEW").await;
    b.click_button("Abandon").await;
    b.wait_for_text("Refused (409)").await;
    assert_eq!(item_status(c, &ids[0]).await, "DONE");
    ids[1].clone()
}

async fn item(c: &Console, id: &str) -> Value {
    let (status, body) = c
        .app
        .call_as(
            &c.admin,
            Method::GET,
            &format!("/api/v1/queue-items/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn item_status(c: &Console, id: &str) -> String {
    item(c, id).await["status"].as_str().unwrap().to_owned()
}

async fn set_status(c: &Console, id: &str, status: &str) {
    let (code, body) = c
        .app
        .call_as(
            &c.admin,
            Method::PUT,
            &format!("/api/v1/queue-items/{id}/status"),
            Some(&json!({"status": status})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
}
