//! The Jobs pages: a job created after the list loaded appears in it live, a real robot's run
//! turns it `completed` without a reload, a pending job is cancelled from its page, "Run again"
//! queues a copy and opens it, filters live in the address, and a viewer sees no action.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use baton_tests::baton_robot_binary;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Console;

/// A `baton-robot` process, killed when dropped (a failed assertion included), its log kept.
struct Robot {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Robot {
    fn start(c: &Console, robot_id: &str, token: &str) -> Self {
        let mut child = Command::new(baton_robot_binary())
            .args([
                "--heartbeat-seconds",
                "1",
                "--renew-seconds",
                "1",
                "--claim-wait-seconds",
                "1",
            ])
            .env_clear()
            .env("BATON_SERVER", &c.app.address)
            .env("BATON_ROBOT_ID", robot_id)
            .env("BATON_ROBOT_TOKEN", token)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start baton-robot");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Self { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Robot {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn call(c: &Console, method: Method, path: &str, body: Value) -> Value {
    let (status, answer) = c.app.call_as(&c.admin, method, path, Some(&body)).await;
    assert!((200..300).contains(&status), "{path}: {status} {answer}");
    answer
}

/// Queues a job of `workflow` through the API; its id.
async fn run_job(c: &Console, workflow: &str, input: Value) -> String {
    let job = call(
        c,
        Method::POST,
        "/api/v1/jobs",
        json!({"workflow_id": workflow, "priority": 4, "input": input}),
    )
    .await;
    job["job_id"].as_str().unwrap().to_owned()
}

/// Waits until the first element matching `selector` shows `text`. Read in one script, as the
/// live pages redraw at any moment and an element found in one call may be gone in the next.
async fn wait_for_in(c: &Console, selector: &str, text: &str) {
    let b = &c.browser;
    b.wait_until(&format!("`{selector}` to show `{text}`"), async || {
        b.execute(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
            vec![json!(selector)],
        )
        .await
        .as_str()
        .is_some_and(|shown| shown.contains(text))
    })
    .await;
}

fn row(job: &str) -> String {
    format!("tr[data-job-id='{job}']")
}

fn status_of(job: &str) -> String {
    format!("[data-job-status='{job}']")
}

pub async fn run(c: &Console) {
    let b = &c.browser;

    // Before any job: the list says so, and a filter from a link is shown in its field.
    c.open("/ui/jobs?status=failed").await;
    b.wait_for_text("No job matches these filters.").await;
    let chosen = b
        .execute(
            "return document.querySelector('select[name=status]').value;",
            vec![],
        )
        .await;
    assert_eq!(chosen, "failed");
    c.open("/ui/jobs").await;
    b.wait_for_text("No job yet.").await;
    c.shot("jobs-empty").await;

    // A workflow submitted through the API queues its first job.
    let submitted = call(
        c,
        Method::POST,
        "/api/v1/workflows",
        json!({"workflow_name": "console-jobs", "trigger_type": "manual",
               "workflow_json": {"nodes": [
                   {"id": "start", "type": "StartNode"},
                   {"id": "end", "type": "EndNode"}
               ], "connections": [{"from": "start", "to": "end"}]}}),
    )
    .await;
    let workflow = submitted["workflow_id"].as_str().unwrap().to_owned();
    let first = submitted["job_id"].as_str().unwrap().to_owned();

    // The open list shows it live, and a job created after that too.
    wait_for_in(c, &status_of(&first), "pending").await;
    let second = run_job(c, &workflow, json!({"order": 42})).await;
    wait_for_in(c, &status_of(&second), "pending").await;
    b.find(&format!(
        "{} a[href='/ui/workflows/{workflow}']",
        row(&second)
    ))
    .await;
    wait_for_in(c, ".live.on", "live").await;
    c.shot("jobs").await;

    // A pending job is cancelled from its page; then only "Run again" is left.
    let third = run_job(c, &workflow, json!({"order": 43})).await;
    c.open(&format!("/ui/jobs/{third}")).await;
    wait_for_in(c, &status_of(&third), "pending").await;
    assert!(
        b.buttons_now("Cancel now").await.is_empty(),
        "a pending job has nothing to stop at once"
    );
    b.click_button("Cancel").await;
    wait_for_in(c, &status_of(&third), "cancelled").await;
    b.wait_for_text("The job is cancelled.").await;
    assert!(b.buttons_now("Cancel").await.is_empty());
    b.button("Run again").await;
    c.shot("job-cancelled").await;

    // A real robot runs the pending jobs; the open list turns them completed without a reload.
    c.open("/ui/jobs").await;
    wait_for_in(c, &status_of(&third), "cancelled").await;
    let registered = call(
        c,
        Method::POST,
        "/api/v1/robots",
        json!({"robot_id": "console-robot"}),
    )
    .await;
    let robot = Robot::start(c, "console-robot", registered["token"].as_str().unwrap());
    for job in [&first, &second] {
        wait_for_in(c, &status_of(job), "completed").await;
    }
    // The other columns follow within a second: who ran it.
    wait_for_in(c, &row(&second), "console-robot").await;
    assert!(robot.log().contains("job completed"), "{}", robot.log());
    c.shot("jobs-completed").await;

    // The job's page: its workflow, robot, nodes and input.
    // (Opened by address: the list may redraw between finding its link and clicking it.)
    b.find(&format!("{} a[href='/ui/jobs/{second}']", row(&second)))
        .await;
    c.open(&format!("/ui/jobs/{second}")).await;
    wait_for_in(c, &status_of(&second), "completed").await;
    b.wait_for_text("Node executions").await;
    b.wait_for_text("\"order\": 42").await;
    b.link("console-jobs").await;
    wait_for_in(c, "tbody", "end").await;
    assert!(b.buttons_now("Cancel").await.is_empty());
    c.shot("job").await;

    // "Run again" queues the same workflow, input and priority, and opens the new job.
    b.click_button("Run again").await;
    b.wait_until("the new job's page", async || {
        let url = b.url().await;
        url.contains("/ui/jobs/") && !url.ends_with(second.as_str())
    })
    .await;
    let url = b.url().await;
    let again = url.rsplit('/').next().unwrap().to_owned();
    let (status, copy) = c
        .app
        .call_as(
            &c.admin,
            Method::GET,
            &format!("/api/v1/jobs/{again}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{copy}");
    assert_eq!(copy["workflow_id"], workflow.as_str());
    assert_eq!(copy["input"], json!({"order": 42}));
    assert_eq!(copy["priority"], 4);
    wait_for_in(c, &status_of(&again), "completed").await;

    // A running job offers both cancels; "Cancel now" stops it in the middle of its node.
    let waiting = call(
        c,
        Method::POST,
        "/api/v1/workflows",
        json!({"workflow_name": "console-wait", "trigger_type": "manual",
               "workflow_json": {"nodes": [
                   {"id": "start", "type": "StartNode"},
                   {"id": "wait", "type": "Delay", "config": {"seconds": 60}},
                   {"id": "end", "type": "EndNode"}
               ], "connections": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "end"}]}}),
    )
    .await;
    let long = waiting["job_id"].as_str().unwrap().to_owned();
    c.open(&format!("/ui/jobs/{long}")).await;
    wait_for_in(c, &status_of(&long), "running").await;
    // Node results arrive while the job runs (read every two seconds); then nothing changes
    // until the delay ends.
    wait_for_in(c, "tbody", "start").await;
    b.button("Cancel").await;
    c.shot("job-running").await;
    b.click_button("Cancel now").await;
    wait_for_in(c, &status_of(&long), "cancelled").await;
    assert!(b.buttons_now("Cancel now").await.is_empty());
    robot.stop();

    // Filters are the address's: a status link lists only its jobs.
    c.open("/ui/jobs?status=cancelled").await;
    b.find(&row(&third)).await;
    assert!(b.visible(&row(&second)).await.is_empty());
    b.choose("Status", "completed").await;
    b.find(&row(&second)).await;
    assert!(b.url().await.ends_with("/ui/jobs?status=completed"));
    assert!(b.visible(&row(&third)).await.is_empty());

    // Paging: a page of two, the next page, and back to the first.
    c.open("/ui/jobs?limit=2").await;
    b.find(&row(&long)).await;
    // Newest first: the run-again copy and the long job, then the cancelled and second ones.
    b.click_button("Next page").await;
    b.find(&row(&third)).await;
    assert!(b.url().await.contains("cursor="));
    assert!(b.visible(&row(&long)).await.is_empty());
    b.click_button("First page").await;
    b.find(&row(&long)).await;
    assert!(b.url().await.ends_with("/ui/jobs?limit=2"));

    // Creation-time filters: nothing is created after tomorrow.
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    c.open(&format!("/ui/jobs?created_after={tomorrow}")).await;
    b.wait_for_text("No job matches these filters.").await;
    let shown = b
        .execute(
            "return document.querySelector('input[name=created_after]').value;",
            vec![],
        )
        .await;
    assert!(!shown.as_str().unwrap_or_default().is_empty(), "{shown}");
    b.click_button("Clear filters").await;
    b.find(&row(&long)).await;

    // A phone's width: the table becomes labelled rows.
    b.resize(390, 844).await;
    c.open(&format!("/ui/jobs/{second}")).await;
    b.wait_for_text("Node executions").await;
    c.shot("job-phone").await;
    c.open("/ui/jobs").await;
    b.find(&row(&second)).await;
    c.shot("jobs-phone").await;
    b.resize(1280, 900).await;

    // A viewer reads the same pages without any action.
    let password = c.create_user("jobs-viewer", &["viewer"]).await;
    c.sign_out().await;
    c.sign_in("jobs-viewer", &password).await;
    c.open(&format!("/ui/jobs/{second}")).await;
    wait_for_in(c, &status_of(&second), "completed").await;
    assert!(b.buttons_now("Run again").await.is_empty());
    c.sign_out().await;
    c.sign_in("admin", baton_tests::TEST_ADMIN_PASSWORD).await;
}
