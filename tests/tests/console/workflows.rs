//! Workflows and flows: a workflow made through the API is listed, its page draws one box per
//! node of its graph, and `Run now` opens the new job's page; a flow made through the API is
//! started, paused and stopped with its buttons, its state shown after each.

use reqwest::Method;
use serde_json::{Value, json};

use crate::Console;

pub async fn run(c: &Console) {
    let b = &c.browser;
    let (status, submitted) = c
        .app
        .call_as(
            &c.admin,
            Method::POST,
            "/api/v1/workflows",
            Some(&json!({
                "workflow_name": "Invoice intake",
                "description": "Reads the inbox, books each invoice, files the PDF",
                "trigger_type": "webhook",
                "workflow_json": {
                    "nodes": [
                        {"id": "start", "type": "StartNode"},
                        {"id": "read", "type": "EmailReadNode", "name": "Read the inbox"},
                        {"id": "book", "type": "ErpWriteNode", "name": "Book the invoice"},
                        {"id": "file", "type": "FileMoveNode", "name": "File the PDF"},
                        {"id": "notify", "type": "SlackNode", "name": "Tell accounting", "disabled": true},
                        {"id": "end", "type": "EndNode"}
                    ],
                    "connections": [
                        {"from": "start", "to": "read"},
                        {"from": "read", "to": "book"},
                        {"from": "read", "to": "file"},
                        {"from": "book", "to": "notify"},
                        {"from": "file", "to": "end"},
                        {"from": "notify", "to": "end"}
                    ]
                }
            })),
        )
        .await;
    assert_eq!(status, 200, "{submitted}");
    let workflow = submitted["workflow_id"].as_str().unwrap().to_owned();

    c.open("/ui/workflows").await;
    b.link("Invoice intake").await;
    b.button("Upload workflow").await;
    c.shot("workflows").await;

    // The workflow's page draws its graph: one box per node, one arrow per connection.
    b.click_link("Invoice intake").await;
    b.find("svg.graph g.node").await;
    let drawn = b
        .execute(
            "const svg = document.querySelector('svg.graph'); \
             return [svg.querySelectorAll('g.node').length, svg.querySelectorAll('path.edge').length, \
                     svg.namespaceURI, [...svg.querySelectorAll('g.node')].map(g => g.dataset.nodeId)];",
            vec![],
        )
        .await;
    assert_eq!(drawn[0], 6, "one box per node: {drawn}");
    assert_eq!(drawn[1], 6, "one arrow per connection: {drawn}");
    assert_eq!(drawn[2], "http://www.w3.org/2000/svg", "{drawn}");
    b.wait_for_text("Book the invoice").await;
    c.shot("workflow").await;
    // At a phone's width the picture keeps its size and scrolls sideways.
    b.resize(390, 844).await;
    c.shot("workflow-phone").await;
    b.resize(1280, 900).await;

    // `Run now` starts a job and opens its page.
    b.click_button("Run now").await;
    b.wait_until("the job's page", async || {
        b.url().await.contains("/ui/jobs/")
    })
    .await;
    let url = b.url().await;
    let job = url.rsplit('/').next().unwrap().to_owned();
    let (status, body) = c
        .app
        .call_as(&c.admin, Method::GET, &format!("/api/v1/jobs/{job}"), None)
        .await;
    assert_eq!(status, 200, "{url}: {body}");
    assert_eq!(body["workflow_id"], workflow.as_str(), "{body}");

    uploads(c).await;
    flows(c, &workflow).await;
}

/// A developer uploads a graph typed as JSON (its job starts at once) and a .json file (with
/// a webhook, whose URL is shown once).
async fn uploads(c: &Console) {
    let b = &c.browser;
    c.open("/ui/workflows").await;
    b.fill("Workflow name", "Typed graph").await;
    b.fill(
        "Graph as JSON",
        r#"{"nodes": [{"id": "a", "type": "StartNode"}, {"id": "b", "type": "EndNode"}], "connections": [{"from": "a", "to": "b"}]}"#,
    )
    .await;
    b.click_button("Upload workflow").await;
    b.wait_for_text("Workflow submitted and queued").await;
    b.find("svg.graph g.node").await;
    assert!(
        b.url().await.contains("/ui/workflows/"),
        "{}",
        b.url().await
    );
    wait_text_in(c, "h1", "Typed graph").await;

    let dir = std::env::temp_dir().join(format!("baton-console-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("filed_graph.json");
    std::fs::write(
        &path,
        json!({"nodes": [{"id": "only", "type": "LogNode"}]}).to_string(),
    )
    .unwrap();
    c.open("/ui/workflows").await;
    let file = b.field("Workflow file").await;
    b.type_into(&file, path.to_str().unwrap()).await;
    b.choose("On upload", "webhook").await;
    b.click_button("Upload workflow").await;
    wait_text_in(c, ".secret", "/api/v1/webhooks/").await;
    b.click_link("Open the workflow").await;
    wait_text_in(c, "h1", "filed_graph").await;
    std::fs::remove_dir_all(&dir).ok();
}

/// A flow made through the API, commanded with the page's buttons.
async fn flows(c: &Console, workflow: &str) {
    let b = &c.browser;
    let (status, body) = c
        .app
        .call_as(
            &c.admin,
            Method::POST,
            "/api/v1/flows",
            Some(&json!([{"flow_id": "invoice-loop", "workflow_id": workflow, "interval_seconds": 300}])),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    c.open("/ui/flows").await;
    b.wait_for_text("invoice-loop").await;
    wait_text_in(c, "td[data-label=Status]", "stopped").await;
    b.click_button("Start").await;
    wait_text_in(c, "td[data-label=Status]", "running").await;
    assert_eq!(flow_status(c).await, "running");
    c.shot("flows").await;
    b.resize(390, 844).await;
    c.shot("flows-phone").await;
    b.resize(1280, 900).await;
    b.click_button("Pause").await;
    wait_text_in(c, "td[data-label=Status]", "paused").await;
    b.click_button("Resume").await;
    wait_text_in(c, "td[data-label=Status]", "running").await;
    b.click_button("Stop now").await;
    wait_text_in(c, "td[data-label=Status]", "stopped").await;
    assert_eq!(flow_status(c).await, "stopped");
}

async fn flow_status(c: &Console) -> Value {
    let (status, body) = c
        .app
        .call_as(
            &c.admin,
            Method::GET,
            "/api/v1/flows/status/invoice-loop",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["status"].clone()
}

/// Waits until an element matching `selector` shows `text`, read in the page in one step: the
/// pages redraw on live updates, so an element found in one WebDriver call may be gone by the
/// next.
pub async fn wait_text_in(c: &Console, selector: &str, text: &str) {
    let b = &c.browser;
    b.wait_until(&format!("`{selector}` to show `{text}`"), async || {
        b.execute(
            "return [...document.querySelectorAll(arguments[0])].some(e => e.innerText.includes(arguments[1]));",
            vec![json!(selector), json!(text)],
        )
        .await
            == Value::Bool(true)
    })
    .await;
}
