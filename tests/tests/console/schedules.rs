//! Schedules: the form names a bad cron expression before anything is saved, previews the
//! next five fire times of a good one in the chosen zone, creates the schedule, and its page
//! disables it; the list shows it with its state.

use baton_tests::TEST_ADMIN_PASSWORD;
use reqwest::Method;
use serde_json::json;

use crate::Console;
use crate::workflows::wait_text_in;

pub async fn run(c: &Console) {
    let b = &c.browser;
    let (status, submitted) = c
        .app
        .call_as(
            &c.admin,
            Method::POST,
            "/api/v1/workflows",
            Some(&json!({
                "workflow_name": "Morning report",
                "trigger_type": "webhook",
                "workflow_json": {"nodes": [{"id": "start", "type": "StartNode"}]}
            })),
        )
        .await;
    assert_eq!(status, 200, "{submitted}");
    let workflow = submitted["workflow_id"].as_str().unwrap().to_owned();
    let schedules_of_workflow = async || {
        let (status, list) = c
            .app
            .call_as(
                &c.admin,
                Method::GET,
                &format!("/api/v1/schedules?workflow_id={workflow}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{list}");
        list.as_array().unwrap().clone()
    };

    c.open("/ui/schedules").await;
    b.click_link("New schedule").await;
    b.fill("Name", "Weekday report").await;
    b.choose("Workflow", &workflow).await;

    // A bad expression is named while it is typed, before anything is saved.
    b.fill("Cron expression", "61 * * * *").await;
    wait_text_in(c, ".cron-preview", "Cron expression “61 * * * *”").await;
    wait_text_in(c, ".cron-preview", "is not a valid cron expression").await;
    assert!(
        schedules_of_workflow().await.is_empty(),
        "the preview stored nothing"
    );
    b.fill("Time zone", "Mars/Olympus").await;
    wait_text_in(c, ".cron-preview", "not an IANA time zone").await;

    // A good one shows its next five fire times in the schedule's zone.
    b.fill("Time zone", "Europe/Berlin").await;
    b.fill("Cron expression", "0 9 * * 1-5").await;
    wait_text_in(c, ".cron-preview", "Next 5 fire times in Europe/Berlin").await;
    let times = b
        .execute(
            "return [...document.querySelectorAll('.cron-preview li')].map(li => li.innerText);",
            vec![],
        )
        .await;
    let times = times.as_array().unwrap();
    assert_eq!(times.len(), 5, "{times:?}");
    assert!(
        times.iter().all(|t| t.as_str().unwrap().contains("09:00")),
        "{times:?}"
    );
    c.shot("schedule-form").await;

    b.click_button("Create schedule").await;
    b.wait_for_text("Schedule “Weekday report” created.").await;
    let created = schedules_of_workflow().await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["cron_expression"], "0 9 * * 1-5");
    assert_eq!(created[0]["timezone"], "Europe/Berlin");
    let id = created[0]["schedule_id"].as_str().unwrap().to_owned();
    assert!(b.url().await.ends_with(&format!("/ui/schedules/{id}")));

    wait_text_in(c, ".page-header .badge", "enabled").await;
    c.shot("schedule").await;

    // Disable it on its page: the state reads `disabled`, and the API agrees.
    b.click_button("Disable").await;
    wait_text_in(c, ".page-header .badge", "disabled").await;
    b.button("Enable").await;
    let (_, schedule) = c
        .app
        .call_as(
            &c.admin,
            Method::GET,
            &format!("/api/v1/schedules/{id}"),
            None,
        )
        .await;
    assert_eq!(schedule["enabled"], false, "{schedule}");

    // Edit it: the same preview, then the change is stored (through its trigger).
    b.click_button("Edit").await;
    b.fill("Cron expression", "30 7 * * *").await;
    wait_text_in(c, ".cron-preview", "Next 5 fire times in Europe/Berlin").await;
    b.fill("Priority", "3").await;
    b.click_button("Save changes").await;
    b.wait_for_text("Schedule saved.").await;
    let (_, schedule) = c
        .app
        .call_as(
            &c.admin,
            Method::GET,
            &format!("/api/v1/schedules/{id}"),
            None,
        )
        .await;
    assert_eq!(schedule["cron_expression"], "30 7 * * *", "{schedule}");
    assert_eq!(schedule["priority"], 3, "{schedule}");
    assert_eq!(schedule["schedule_name"], "Weekday report", "{schedule}");
    assert_eq!(schedule["enabled"], false, "{schedule}");

    // The same row seen as a trigger.
    c.open(&format!("/ui/triggers/{id}")).await;
    b.link("As a schedule").await;
    wait_text_in(c, ".page-header", "idle").await;
    c.shot("trigger").await;

    c.open("/ui/schedules").await;
    b.link("Weekday report").await;
    wait_text_in(c, "td[data-label=State]", "disabled").await;
    c.shot("schedules").await;

    // At a phone's width the tables fold into labelled rows.
    b.resize(390, 844).await;
    c.shot("schedules-phone").await;
    b.resize(1280, 900).await;

    operator_sees_only_what_it_may_use(c).await;
    pages(c, &workflow).await;
}

/// Fifty more schedules: the list pages with the API's cursor, 50 at a time.
async fn pages(c: &Console, workflow: &str) {
    let b = &c.browser;
    for n in 0..50 {
        let (status, body) = c
            .app
            .call_as(
                &c.admin,
                Method::POST,
                "/api/v1/schedules",
                Some(
                    &json!({"workflow_id": workflow, "schedule_name": format!("Batch {n:02}"),
                             "cron_expression": "0 4 * * *"}),
                ),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let rows = async || {
        b.execute(
            "return document.querySelectorAll('td[data-label=Cron]').length;",
            vec![],
        )
        .await
    };
    c.open(&format!("/ui/schedules?workflow_id={workflow}&type=SINGLE"))
        .await;
    b.link("Batch 48").await;
    assert_eq!(rows().await, 50);
    b.click_button("Next page").await;
    b.link("Batch 49").await;
    assert_eq!(rows().await, 1);
    assert!(b.buttons_now("Next page").await.is_empty());
    b.click_button("First page").await;
    b.link("Weekday report").await;
    assert_eq!(rows().await, 50);
}

/// An operator may run a schedule now, command flows and run workflows, but not switch,
/// create or delete anything: those buttons are not shown to it.
async fn operator_sees_only_what_it_may_use(c: &Console) {
    let b = &c.browser;
    let password = c.create_user("night-operator", &["operator"]).await;
    c.sign_out().await;
    c.sign_in("night-operator", &password).await;
    let links_named = async |label: &str| {
        b.execute(
            "return [...document.querySelectorAll('a')].filter(a => a.innerText.trim() === arguments[0]).length;",
            vec![json!(label)],
        )
        .await
    };

    c.open("/ui/schedules").await;
    b.link("Weekday report").await;
    b.button("Run now").await;
    for label in ["Enable", "Disable"] {
        assert!(
            b.buttons_now(label).await.is_empty(),
            "{label} shown to an operator"
        );
    }
    assert_eq!(links_named("New schedule").await, 0);
    b.click_button("Run now").await;
    b.wait_for_text("started a job").await;

    c.open("/ui/flows").await;
    b.button("Start").await;
    for label in ["Delete", "Add flow"] {
        assert!(
            b.buttons_now(label).await.is_empty(),
            "{label} shown to an operator"
        );
    }

    c.open("/ui/workflows").await;
    b.button("Run now").await;
    assert!(b.buttons_now("Upload workflow").await.is_empty());

    c.sign_out().await;
    c.sign_in("admin", TEST_ADMIN_PASSWORD).await;
}
