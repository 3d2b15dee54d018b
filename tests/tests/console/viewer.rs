//! A viewer reads every page and sees no button that would change anything, and no Settings.
//! Runs last, when the other walk-throughs have made jobs, items, workflows and schedules.

use crate::Console;

/// Every label of a button that writes.
const WRITES: &[&str] = &[
    "Cancel",
    "Cancel now",
    "Run again",
    "Retry",
    "Abandon",
    "Save",
    "Save settings",
    "Create robot",
    "Delete",
    "Enable",
    "Disable",
    "Run now",
    "Upload",
    "Upload workflow",
    "New schedule",
    "New robot",
    "Create schedule",
    "Start",
    "Stop",
    "Pause",
    "Resume",
    "Create user",
    "Create API key",
    "Revoke",
    "Re-arm",
    "Edit",
    "Stop now",
    "Pause all",
    "Resume all",
    "Add flow",
    "Yes, delete",
];

/// The first entry's `field` of the list at `path`, read through the API as the admin.
async fn first(c: &Console, path: &str, list: Option<&str>, field: &str) -> Option<String> {
    let (status, body) = c
        .app
        .call_as(&c.admin, reqwest::Method::GET, path, None)
        .await;
    assert_eq!(status, 200, "{path}: {body}");
    let entries = match list {
        Some(key) => body[key].clone(),
        None => body,
    };
    entries
        .as_array()
        .and_then(|a| a.first())
        .and_then(|e| e[field].as_str().map(str::to_owned))
}

pub async fn run(c: &Console) {
    let b = &c.browser;
    let password = c.create_user("vera", &["viewer"]).await;
    c.sign_in("vera", &password).await;
    assert!(
        b.visible("#nav a[href='/ui/settings']").await.is_empty(),
        "a viewer has no Settings link"
    );

    let mut pages = vec![
        "/ui/".to_owned(),
        "/ui/jobs".to_owned(),
        "/ui/queues".to_owned(),
        "/ui/schedules".to_owned(),
        "/ui/robots".to_owned(),
        "/ui/workflows".to_owned(),
        "/ui/flows".to_owned(),
    ];
    if let Some(id) = first(c, "/api/v1/jobs", None, "job_id").await {
        pages.push(format!("/ui/jobs/{id}"));
    }
    if let Some(name) = first(c, "/api/v1/queues", None, "queue_name").await {
        pages.push(format!("/ui/queues/{name}"));
        let items = format!("/api/v1/queues/{name}/items");
        if let Some(id) = first(c, &items, Some("items"), "id").await {
            pages.push(format!("/ui/queue-items/{id}"));
        }
    }
    if let Some(id) = first(c, "/api/v1/workflows", None, "workflow_id").await {
        pages.push(format!("/ui/workflows/{id}"));
    }
    if let Some(id) = first(c, "/api/v1/schedules", None, "schedule_id").await {
        pages.push(format!("/ui/schedules/{id}"));
    }
    for page in &pages {
        c.open(page).await;
        // The page has drawn when its heading is there and "Loading…" is gone.
        b.find("main h1").await;
        b.wait_until(&format!("{page} to finish loading"), async || {
            !b.text_of_page().await.contains("Loading…")
        })
        .await;
        for label in WRITES {
            assert!(
                b.buttons_now(label).await.is_empty(),
                "a viewer sees `{label}` on {page}"
            );
        }
        // Links drawn as buttons lead to forms that write (`New schedule`).
        for link in b.visible("a.button").await {
            let text = b.text(&link).await;
            assert!(
                !WRITES.contains(&text.as_str()),
                "a viewer sees the link `{text}` on {page}"
            );
        }
    }
    c.open("/ui/settings").await;
    b.wait_for_text("Settings are for admins.").await;
    c.shot("viewer-settings").await;
    c.sign_out().await;
}
