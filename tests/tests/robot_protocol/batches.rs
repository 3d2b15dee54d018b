//! The batched calls: `claim-batch` hands out several jobs in one atomic claim, `finish-batch`
//! completes or fails several in one transaction with one outcome per job.

use super::*;

impl Harness {
    /// A batched claim without waiting; returns the status and the claimed jobs' ids. Every job
    /// of these tests is claimed once, so each carries its first attempt.
    async fn claim_batch(&self, robot: (&str, &str), limit: u32) -> (u16, Vec<String>) {
        let response = self
            .call(
                robot.0,
                robot.1,
                "/jobs/claim-batch",
                Some(json!({"limit": limit, "wait_seconds": 0})),
            )
            .await;
        if response.status().as_u16() == 204 {
            return (204, Vec::new());
        }
        let (status, body) = json(response).await;
        assert_eq!(status, 200, "claim-batch: {body}");
        let ids = body["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| {
                assert!(job["workflow_json"]["nodes"].is_array(), "{job}");
                assert_eq!(job["attempt"], 1, "{job}");
                job["job_id"].as_str().unwrap().to_owned()
            })
            .collect();
        (status, ids)
    }

    /// A batched report answered 200; returns its `results`.
    async fn finish_batch(&self, robot: (&str, &str), jobs: Value) -> Vec<Value> {
        let response = self
            .call(
                robot.0,
                robot.1,
                "/jobs/finish-batch",
                Some(json!({"jobs": jobs})),
            )
            .await;
        let (status, body) = json(response).await;
        assert_eq!(status, 200, "finish-batch: {body}");
        body["results"].as_array().unwrap().clone()
    }
}

fn completed(id: &str) -> Value {
    json!({"job_id": id, "outcome": "completed", "output": {"done": id}})
}

async fn a_batch_is_claimed_and_finished_in_one_call_each(h: Harness) {
    let (workflow, _) = h.workflow().await;
    let robot_a = ("robot-a", h.robot("robot-a").await);
    let robot_a = (robot_a.0, robot_a.1.as_str());
    let robot_b = ("robot-b", h.robot("robot-b").await);
    let robot_b = (robot_b.0, robot_b.1.as_str());
    let low = h.run(workflow, 15).await;
    let mut urgent = Vec::new();
    for _ in 0..3 {
        urgent.push(h.run(workflow, 1).await);
    }
    let theirs = h.run(workflow, 20).await;

    // The three urgent jobs first, oldest first; then what is left, up to the limit.
    let (_, first) = h.claim_batch(robot_a, 3).await;
    assert_eq!(first, urgent);
    let (_, second) = h.claim_batch(robot_a, 1).await;
    assert_eq!(second, std::slice::from_ref(&low));
    let (_, for_b) = h.claim_batch(robot_b, 10).await;
    assert_eq!(for_b, std::slice::from_ref(&theirs));
    assert_eq!(h.claim_batch(robot_a, 10).await.0, 204, "nothing is left");
    let record =
        h.db.get_robot(&RobotId::parse("robot-a").unwrap())
            .await
            .unwrap();
    assert_eq!(record.status(), RobotStatus::Busy);
    assert_eq!(
        record.current_job_id().map(|id| id.to_string()),
        Some(low.clone()),
        "the record shows the last job claimed"
    );

    let unknown = UuidV7Generator.new_uuid().to_string();
    let results = h
        .finish_batch(
            robot_a,
            json!([
                completed(&urgent[0]),
                completed(&urgent[1]),
                {"job_id": urgent[2], "outcome": "failed", "error_type": "Boom", "error_message": "it broke"},
                completed(&low),
                completed(&unknown),
                completed(&theirs),
            ]),
        )
        .await;
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 404, 409]);
    assert_eq!(results[0]["job"]["status"], "completed");
    assert_eq!(results[0]["job"]["output"], json!({"done": urgent[0]}));
    assert_eq!(results[2]["job"]["status"], "failed");
    assert_eq!(results[2]["job"]["error_type"], "Boom");
    assert_eq!(results[4]["job_id"], unknown);
    assert_eq!(results[4]["error"], "Not Found");
    assert_eq!(results[5]["error"], "Conflict");
    assert!(
        results[5]["detail"]
            .as_str()
            .unwrap()
            .contains("another robot")
    );

    // Stored as answered, each with its one event; robot-b's job untouched.
    assert_eq!(h.job(&urgent[1]).await["status"], "completed");
    assert_eq!(h.job(&urgent[2]).await["status"], "failed");
    assert_eq!(h.job(&theirs).await["status"], "claimed");
    assert_eq!(
        h.job_events(&urgent[0]).await,
        ["job_created", "job_claimed", "job_completed"]
    );
    assert_eq!(
        h.job_events(&urgent[2]).await,
        ["job_created", "job_claimed", "job_failed"]
    );
    let record =
        h.db.get_robot(&RobotId::parse("robot-a").unwrap())
            .await
            .unwrap();
    assert_eq!(
        record.current_job_id(),
        None,
        "the robot let go of its jobs"
    );

    // Reporting a finished job again is refused for that job alone.
    let again = h
        .finish_batch(robot_a, json!([completed(&low), completed(&theirs)]))
        .await;
    assert_eq!(again[0]["status"], 409);
    assert_eq!(again[1]["status"], 409);
    let theirs_done = h.finish_batch(robot_b, json!([completed(&theirs)])).await;
    assert_eq!(theirs_done[0]["status"], 200);
}

#[tokio::test]
async fn a_batch_is_claimed_and_finished_in_one_call_each_on_sqlite() {
    a_batch_is_claimed_and_finished_in_one_call_each(Harness::sqlite().await).await;
}

#[tokio::test]
async fn a_batch_is_claimed_and_finished_in_one_call_each_on_postgres() {
    a_batch_is_claimed_and_finished_in_one_call_each(Harness::postgres().await).await;
}

#[tokio::test]
async fn broken_batches_are_refused_whole_with_every_field_named() {
    let h = Harness::sqlite().await;
    let (workflow, _) = h.workflow().await;
    let token = h.robot("robot-a").await;
    let robot = ("robot-a", token.as_str());
    let job = h.run(workflow, 10).await;

    for (body, field) in [
        (json!({"limit": 0}), "limit"),
        (json!({"limit": 101}), "limit"),
        (json!({"limit": "5"}), "limit"),
        (json!({"wait_seconds": 31}), "wait_seconds"),
    ] {
        let response = h
            .call(robot.0, robot.1, "/jobs/claim-batch", Some(body.clone()))
            .await;
        let error = expect_error(response, 400).await;
        assert_eq!(error["errors"][0]["field"], field, "{body}");
    }
    let (_, claimed) = h.claim_batch(robot, 5).await;
    assert_eq!(claimed, std::slice::from_ref(&job));

    let too_many: Vec<Value> = (0..101).map(|_| completed(&job)).collect();
    for (body, fields) in [
        (json!({}), vec!["jobs"]),
        (json!({"jobs": []}), vec!["jobs"]),
        (json!({"jobs": too_many}), vec!["jobs"]),
        (
            json!({"jobs": [completed(&job), {"job_id": "42", "outcome": "done"}]}),
            vec!["jobs[1].job_id", "jobs[1].outcome"],
        ),
    ] {
        let response = h
            .call(robot.0, robot.1, "/jobs/finish-batch", Some(body.clone()))
            .await;
        let error = expect_error(response, 400).await;
        let named: Vec<&str> = error["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(named, fields, "{body}");
    }
    assert_eq!(
        h.job(&job).await["status"],
        "claimed",
        "nothing of a refused batch was stored"
    );
    let malformed = h
        .app
        .client
        .post(h.app.url("/api/v1/robots/robot-a/jobs/finish-batch"))
        .header("X-Api-Token", robot.1)
        .header("Content-Type", "application/json")
        .body("{\"jobs\": [")
        .send()
        .await
        .unwrap();
    expect_error(malformed, 400).await;

    // A robot acts only as itself.
    let token_b = h.robot("robot-b").await;
    for path in ["/jobs/claim-batch", "/jobs/finish-batch"] {
        let posing = h
            .call(
                "robot-a",
                &token_b,
                path,
                Some(json!({"jobs": [completed(&job)]})),
            )
            .await;
        expect_error(posing, 403).await;
    }
}

#[tokio::test]
async fn a_batched_claim_waits_for_a_job_queued_during_the_wait() {
    let h = Harness::sqlite().await;
    let (workflow, _) = h.workflow().await;
    let token = h.robot("robot-a").await;
    let waiting = {
        let client = h.app.client.clone();
        let url = h.app.url("/api/v1/robots/robot-a/jobs/claim-batch");
        let token = token.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .header("X-Api-Token", token)
                .json(&json!({"limit": 5, "wait_seconds": 5}))
                .send()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let job = h.run(workflow, 10).await;
    let (status, body) = json(waiting.await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jobs"][0]["job_id"], job);
}

async fn batched_robots_never_share_a_job(h: Harness) {
    const JOBS: usize = 150;
    const ROBOTS: usize = 4;
    let (workflow, _) = h.workflow().await;
    let mut queued = HashSet::new();
    for _ in 0..JOBS {
        queued.insert(h.run(workflow, 10).await);
    }
    let mut workers = Vec::new();
    for i in 0..ROBOTS {
        let robot_id = format!("robot-{i}");
        let token = h.robot(&robot_id).await;
        let client = h.app.client.clone();
        let base = h.app.url(&format!("/api/v1/robots/{robot_id}/jobs"));
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let response = client
                    .post(format!("{base}/claim-batch"))
                    .header("X-Api-Token", &token)
                    .json(&json!({"limit": 7, "wait_seconds": 0}))
                    .send()
                    .await
                    .unwrap();
                if response.status().as_u16() == 204 {
                    return mine;
                }
                let (status, body) = json(response).await;
                assert_eq!(status, 200, "{body}");
                let ids: Vec<String> = body["jobs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|job| job["job_id"].as_str().unwrap().to_owned())
                    .collect();
                let report: Vec<Value> = ids.iter().map(|id| completed(id)).collect();
                let (status, body) = json(
                    client
                        .post(format!("{base}/finish-batch"))
                        .header("X-Api-Token", &token)
                        .json(&json!({"jobs": report}))
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                assert_eq!(status, 200, "{body}");
                for result in body["results"].as_array().unwrap() {
                    assert_eq!(result["status"], 200, "not this robot's: {result}");
                }
                mine.extend(ids);
            }
        }));
    }
    let mut claimed = Vec::new();
    for worker in workers {
        claimed.extend(worker.await.unwrap());
    }
    let unique: HashSet<String> = claimed.iter().cloned().collect();
    assert_eq!(claimed.len(), JOBS, "every job claimed exactly once");
    assert_eq!(unique, queued);
    let counts = h.db.count_jobs_by_status().await.unwrap();
    assert_eq!(counts, [(JobStatus::Completed, JOBS as u64)]);
}

#[tokio::test]
async fn batched_robots_never_share_a_job_on_sqlite() {
    batched_robots_never_share_a_job(Harness::sqlite().await).await;
}

#[tokio::test]
async fn batched_robots_never_share_a_job_on_postgres() {
    batched_robots_never_share_a_job(Harness::postgres().await).await;
}
