//! Scenario 6: the console's pages over big data. With `--console-items` (1,000,000) items in
//! queues and `--console-jobs` (100,000) jobs, each page's **server time** is measured: the
//! wall time of the API calls the page makes to draw itself, sent at once as the browser sends
//! them, from the first request to the last answer. Each page is drawn `DRAWS` times after one
//! unmeasured draw; p50 and the slowest draw are reported, the slowest held to 300 ms.
//!
//! The data is made through the API, as an integrator and an operator would: items with
//! `POST /api/v1/queues/{queue}/items` (1,000 per request) in two queues (nine in ten in one,
//! across every status), jobs with `POST /api/v1/jobs`, some of them claimed, completed or
//! failed by a robot.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::future::join_all;
use serde_json::{Value, json};

use super::{Context, Figure, ScenarioName, Target, Unit};
use crate::server::Backend;

/// The slowest draw of a page may take this long, in milliseconds.
const PAGE_TARGET_MS: f64 = 300.0;
/// Measured draws per page.
const DRAWS: usize = 20;
/// Items per bulk request (the API's maximum).
const BULK: usize = 1_000;
/// Requests in flight while the data is made.
const SEEDERS: usize = 8;
/// The busy queue, and the small one beside it.
const BIG_QUEUE: &str = "orders";
const SMALL_QUEUE: &str = "invoices";

/// What the console asks for on each page (crates/http/console/pages/): keep in step with them.
fn pages(job: &str, item: &str, workflow: &str) -> Vec<(&'static str, Vec<String>)> {
    let owned = |paths: &[&str]| paths.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
    vec![
        (
            "Overview",
            owned(&[
                "/api/v1/metrics/fleet",
                "/api/v1/metrics/analytics?days=1",
                "/api/v1/queues",
                "/api/v1/triggers?limit=1000",
                "/api/v1/schedules?limit=1000",
            ]),
        ),
        (
            "Jobs",
            owned(&[
                "/api/v1/workflows",
                "/api/v1/metrics/robots",
                "/api/v1/jobs",
            ]),
        ),
        (
            "Jobs, failed",
            owned(&[
                "/api/v1/workflows",
                "/api/v1/metrics/robots",
                "/api/v1/jobs?status=failed",
            ]),
        ),
        ("Job", vec![format!("/api/v1/jobs/{job}")]),
        ("Queues", owned(&["/api/v1/queues"])),
        (
            "Queue",
            vec![
                format!("/api/v1/queues/{BIG_QUEUE}"),
                format!("/api/v1/queues/{BIG_QUEUE}/items?limit=50"),
            ],
        ),
        (
            "Queue, failed items",
            vec![
                format!("/api/v1/queues/{BIG_QUEUE}"),
                format!("/api/v1/queues/{BIG_QUEUE}/items?limit=50&status=FAILED"),
            ],
        ),
        (
            "Queue, by reference",
            vec![
                format!("/api/v1/queues/{BIG_QUEUE}"),
                format!("/api/v1/queues/{BIG_QUEUE}/items?limit=50&reference_prefix=order-99"),
            ],
        ),
        ("Queue item", vec![format!("/api/v1/queue-items/{item}")]),
        (
            "Schedules",
            owned(&[
                "/api/v1/workflows",
                "/api/v1/schedules?limit=50",
                "/api/v1/triggers",
            ]),
        ),
        ("Robots", owned(&["/api/v1/robots"])),
        ("Workflows", owned(&["/api/v1/workflows"])),
        (
            "Workflow",
            vec![
                format!("/api/v1/workflows/{workflow}"),
                format!("/api/v1/schedules?workflow_id={workflow}&limit=1000"),
            ],
        ),
        (
            "Flows",
            owned(&["/api/v1/workflows", "/api/v1/flows", "/api/v1/flows/status"]),
        ),
        ("Settings", owned(&["/api/v1/users", "/api/v1/api-keys"])),
    ]
}

pub async fn run(context: &Context, backend: Backend) -> anyhow::Result<Vec<Figure>> {
    let running = context.start(backend).await?;
    let admin = running.admin.clone();
    let client = crate::load::connection();
    let url = |path: &str| running.server.url(path);

    let seeding = Instant::now();
    let item = seed_items(&client, &url, &admin, context.console_items).await?;
    let workflow = running.api().workflow(&admin, "bench-console").await?;
    let job = seed_jobs(&client, &url, &admin, &workflow, context.console_jobs).await?;
    let seeded_in = seeding.elapsed();

    let mut figures = Vec::new();
    for (page, paths) in pages(&job, &item, &workflow) {
        let mut draws = Vec::with_capacity(DRAWS);
        for draw in 0..=DRAWS {
            let started = Instant::now();
            let answers = join_all(
                paths
                    .iter()
                    .map(|path| client.get(url(path)).bearer_auth(&admin).send()),
            )
            .await;
            let took = started.elapsed();
            for (path, answer) in paths.iter().zip(answers) {
                let status = answer.with_context(|| format!("GET {path}"))?.status();
                if !status.is_success() {
                    bail!("GET {path} answered {status} while drawing {page}");
                }
            }
            // The first draw warms the caches of the server and the database.
            if draw > 0 {
                draws.push(took);
            }
        }
        draws.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let figure =
            |what: String| Figure::new(ScenarioName::Console, Some(backend), what, Unit::Millis);
        figures.push(figure(format!("{page}: server time p50")).measured(ms(draws[DRAWS / 2])));
        figures.push(
            figure(format!("{page}: server time, slowest of {DRAWS}"))
                .measured(ms(draws[DRAWS - 1]))
                .target(Target::AtMost(PAGE_TARGET_MS))
                .note(paths.join(" + ")),
        );
    }
    figures.push(
        Figure::new(
            ScenarioName::Console,
            Some(backend),
            "time to make the data",
            Unit::Millis,
        )
        .measured(seeded_in.as_secs_f64() * 1000.0)
        .note(format!(
            "{} items, {} jobs, through the API",
            super::thousands(context.console_items as f64),
            super::thousands(context.console_jobs as f64)
        )),
    );
    running.stop().await?;
    Ok(figures)
}

/// Adds `total` items across both queues and every status; the id of one FAILED item.
async fn seed_items(
    client: &reqwest::Client,
    url: &impl Fn(&str) -> String,
    admin: &str,
    total: usize,
) -> anyhow::Result<String> {
    let batches = total.div_ceil(BULK);
    let mut sent = 0;
    while sent < batches {
        let round: Vec<usize> = (sent..batches.min(sent + SEEDERS)).collect();
        let answers = join_all(round.iter().map(|&batch| {
            // One batch in ten goes to the small queue.
            let queue = if batch % 10 == 9 {
                SMALL_QUEUE
            } else {
                BIG_QUEUE
            };
            let items: Vec<Value> = (0..BULK)
                .map(|i| {
                    let n = batch * BULK + i;
                    json!({"data": {"order": n}, "reference": format!("order-{n}")})
                })
                .collect();
            client
                .post(url(&format!("/api/v1/queues/{queue}/items")))
                .bearer_auth(admin)
                .json(&json!({"items": items}))
                .send()
        }))
        .await;
        for answer in answers {
            let answer = answer.context("adding items")?;
            if answer.status().as_u16() != 201 {
                bail!("adding items: {}", answer.text().await.unwrap_or_default());
            }
        }
        sent += round.len();
    }
    // Give the big queue's items their statuses as robots and operators would leave them:
    // a robot claims and reports a share of them.
    spread_item_statuses(client, url, admin).await
}

/// Claims and reports items of the big queue with a robot: some DONE, some FAILED, some left
/// IN_PROGRESS; the id of a FAILED one.
async fn spread_item_statuses(
    client: &reqwest::Client,
    url: &impl Fn(&str) -> String,
    admin: &str,
) -> anyhow::Result<String> {
    let robot = "bench-console-robot";
    let created = client
        .post(url("/api/v1/robots"))
        .bearer_auth(admin)
        .json(&json!({"robot_id": robot}))
        .send()
        .await?;
    let token = created.json::<Value>().await?["token"]
        .as_str()
        .context("a robot token")?
        .to_owned();
    let mut failed = None;
    for round in 0..20 {
        let claimed: Value = client
            .post(url(&format!("/api/v1/robots/{robot}/queue-items/claim")))
            .header("X-Api-Token", &token)
            .json(&json!({"queue_name": BIG_QUEUE, "limit": 100}))
            .send()
            .await?
            .json()
            .await?;
        let items = claimed["items"].as_array().cloned().unwrap_or_default();
        for (i, item) in items.iter().enumerate() {
            let id = item["id"].as_str().context("an item id")?;
            // Every fifth round's items stay IN_PROGRESS.
            if round % 5 == 4 {
                continue;
            }
            let status = if i % 3 == 0 { "FAILED" } else { "DONE" };
            let answer = client
                .put(url(&format!("/api/v1/robots/{robot}/queue-items/{id}")))
                .header("X-Api-Token", &token)
                .json(&json!({"status": status, "message": "bench"}))
                .send()
                .await?;
            if !answer.status().is_success() {
                bail!(
                    "reporting an item: {}",
                    answer.text().await.unwrap_or_default()
                );
            }
            if status == "FAILED" {
                failed = Some(id.to_owned());
            }
        }
    }
    failed.context("no item was reported FAILED")
}

/// Creates `total` jobs of `workflow`; the id of the last.
async fn seed_jobs(
    client: &reqwest::Client,
    url: &impl Fn(&str) -> String,
    admin: &str,
    workflow: &str,
    total: usize,
) -> anyhow::Result<String> {
    let mut last = String::new();
    let mut made = 0;
    while made < total {
        let round = SEEDERS.min(total - made) * 8;
        let round = round.min(total - made);
        let answers = join_all((0..round).map(|_| {
            client
                .post(url("/api/v1/jobs"))
                .bearer_auth(admin)
                .json(&json!({"workflow_id": workflow}))
                .send()
        }))
        .await;
        for answer in answers {
            let answer = answer.context("creating a job")?;
            if answer.status().as_u16() != 201 {
                bail!(
                    "creating a job: {}",
                    answer.text().await.unwrap_or_default()
                );
            }
            last = answer.json::<Value>().await?["job_id"]
                .as_str()
                .context("a job id")?
                .to_owned();
        }
        made += round;
    }
    Ok(last)
}
