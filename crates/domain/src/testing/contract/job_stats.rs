//! `JobStatsRepository`: aggregates over jobs, checked against jobs of known times.

// Helpers here are not `#[test]` functions, so clippy's test exemption does not reach them; a
// failed unwrap in a contract test is a failed assertion with a location.
#![allow(clippy::unwrap_used)]

use super::SharedStore;
use baton_domain::Timestamp;
use baton_domain::ids::{JobId, WorkflowId};
use baton_domain::job::{Job, JobOrigin, JobStatus, NewJob, Priority};
use baton_domain::ports::{ErrorCount, JobScope, StatusTotals, WorkflowDuration};
use baton_domain::robot::RobotId;
use baton_domain::workflow::{ExecutionMode, WorkflowName};
use time::Duration;

use super::fixtures::{T0, at, uuid};

fn robot(name: &str) -> RobotId {
    RobotId::parse(name).unwrap()
}

fn workflow(n: u128) -> WorkflowId {
    WorkflowId::from_uuid(uuid(1_000 + n))
}

/// A pending job `n` of workflow `wf` (named `wf-<wf>`), created `created` seconds after T0.
fn pending(n: u128, wf: u128, created: i64) -> Job {
    NewJob {
        workflow_id: workflow(wf),
        workflow_name: WorkflowName::parse(format!("wf-{wf}")).unwrap(),
        priority: Priority::default(),
        execution_mode: ExecutionMode::Lan,
        input: serde_json::Map::new(),
        origin: JobOrigin::Manual,
        max_retries: NewJob::DEFAULT_MAX_RETRIES,
    }
    .into_job(JobId::from_uuid(uuid(n)), at(created))
}

/// Job `n` of workflow `wf` created at `created` seconds after T0, started by `by` a second
/// later, and ended `status` after `ms` milliseconds of work, its error type `error`.
fn ended(n: u128, wf: u128, created: i64, by: &str, status: JobStatus, ms: i64) -> Job {
    let mut job = pending(n, wf, created);
    let start = at(created + 1);
    job.edit(|r| r.status = status);
    job.edit(|r| r.robot_id = Some(robot(by)));
    job.edit(|r| r.claimed_at = Some(start));
    job.edit(|r| r.started_at = Some(start));
    job.edit(|r| r.completed_at = Some(start + Duration::milliseconds(ms)));
    if status == JobStatus::Failed {
        job.edit(|r| r.error_type = Some("Boom".to_owned()));
        job.edit(|r| r.error_message = Some("it broke".to_owned()));
    }
    job
}

fn failed(n: u128, created: i64, error: Option<&str>) -> Job {
    let mut job = ended(n, 1, created, "robot-1", JobStatus::Failed, 10);
    job.edit(|r| r.error_type = error.map(str::to_owned));
    job
}

pub async fn insert(db: &SharedStore, jobs: &[Job]) {
    for job in jobs {
        db.insert_job(job, &[]).await.unwrap();
    }
}

fn all() -> JobScope {
    JobScope::default()
}

fn created_since(t: Timestamp) -> JobScope {
    JobScope {
        created_since: Some(t),
        ..JobScope::default()
    }
}

fn totals(status: JobStatus, jobs: u64, retried: u64, timed: u64, sum: i64) -> StatusTotals {
    StatusTotals {
        status,
        jobs,
        retried,
        timed,
        duration_ms_sum: sum,
    }
}

pub async fn totals_count_each_status_with_retries_and_durations(db: SharedStore) {
    assert_eq!(db.job_totals(&all()).await.unwrap(), []);
    let mut retried = ended(3, 1, 0, "robot-1", JobStatus::Completed, 2_500);
    retried.edit(|r| r.retry_count = 2);
    let mut retried_failure = ended(5, 1, 0, "robot-1", JobStatus::Failed, 100);
    retried_failure.edit(|r| r.retry_count = 1);
    let mut running = pending(8, 1, 0);
    running.edit(|r| r.status = JobStatus::Running);
    running.edit(|r| r.robot_id = Some(robot("robot-2")));
    running.edit(|r| r.started_at = Some(at(1)));
    insert(
        &db,
        &[
            pending(1, 1, 0),
            ended(2, 1, 0, "robot-1", JobStatus::Completed, 1_000),
            retried,
            ended(4, 2, 0, "robot-2", JobStatus::Completed, 4_000),
            retried_failure,
            ended(6, 2, 0, "robot-2", JobStatus::Failed, 300),
            ended(7, 2, 0, "robot-2", JobStatus::Cancelled, 7),
            running,
        ],
    )
    .await;
    assert_eq!(
        db.job_totals(&all()).await.unwrap(),
        [
            totals(JobStatus::Pending, 1, 0, 0, 0),
            totals(JobStatus::Running, 1, 0, 0, 0),
            totals(JobStatus::Completed, 3, 1, 3, 7_500),
            totals(JobStatus::Failed, 2, 1, 2, 400),
            totals(JobStatus::Cancelled, 1, 0, 1, 7),
        ],
        "in the order of a job's life"
    );
    let robot_2 = JobScope {
        robot_id: Some(robot("robot-2")),
        ..JobScope::default()
    };
    assert_eq!(
        db.job_totals(&robot_2).await.unwrap(),
        [
            totals(JobStatus::Running, 1, 0, 0, 0),
            totals(JobStatus::Completed, 1, 0, 1, 4_000),
            totals(JobStatus::Failed, 1, 0, 1, 300),
            totals(JobStatus::Cancelled, 1, 0, 1, 7),
        ]
    );
}

pub async fn scopes_bound_creation_and_end_from_below_inclusively(db: SharedStore) {
    // Created at 0, 10, 20 s; each ends 1 s + 2 s after its creation.
    insert(
        &db,
        &[
            ended(1, 1, 0, "robot-1", JobStatus::Completed, 2_000),
            ended(2, 1, 10, "robot-1", JobStatus::Completed, 2_000),
            ended(3, 1, 20, "robot-2", JobStatus::Failed, 2_000),
        ],
    )
    .await;
    let jobs_in = |totals: Vec<StatusTotals>| totals.iter().map(|t| t.jobs).sum::<u64>();
    assert_eq!(
        jobs_in(db.job_totals(&created_since(at(10))).await.unwrap()),
        2
    );
    assert_eq!(
        jobs_in(
            db.job_totals(&created_since(at(10) + Duration::microseconds(1)))
                .await
                .unwrap()
        ),
        1
    );
    let ended_since = |t| JobScope {
        ended_since: Some(t),
        ..JobScope::default()
    };
    assert_eq!(
        jobs_in(db.job_totals(&ended_since(at(13))).await.unwrap()),
        2
    );
    assert_eq!(
        jobs_in(db.job_totals(&ended_since(at(14))).await.unwrap()),
        1
    );
    let everything = JobScope {
        created_since: Some(at(0)),
        ended_since: Some(at(13)),
        robot_id: Some(robot("robot-1")),
    };
    assert_eq!(
        db.job_totals(&everything).await.unwrap(),
        [totals(JobStatus::Completed, 1, 0, 1, 2_000)],
        "every condition must hold"
    );
}

pub async fn durations_follow_every_update_of_a_job(db: SharedStore) {
    let mut job = pending(1, 1, 0);
    db.insert_job(&job, &[]).await.unwrap();
    job.claim(robot("robot-1"), at(1), 60).unwrap();
    job.start(&robot("robot-1"), at(2)).unwrap();
    let job = db.update_job(&job, &[]).await.unwrap();
    assert_eq!(
        db.job_totals(&all()).await.unwrap(),
        [totals(JobStatus::Running, 1, 0, 0, 0)],
        "a running job has no duration yet"
    );
    let mut job = job;
    job.complete(
        &robot("robot-1"),
        None,
        at(2) + Duration::microseconds(1_234_567),
    )
    .unwrap();
    db.update_job(&job, &[]).await.unwrap();
    assert_eq!(
        db.job_totals(&all()).await.unwrap(),
        [totals(JobStatus::Completed, 1, 0, 1, 1_234)],
        "whole milliseconds from the start, as Job::duration_ms says"
    );
}

pub async fn completed_durations_are_ranked_shortest_first(db: SharedStore) {
    // Completed jobs of 5, 1, 4, 2, 3 seconds, one more of 3 s, and other statuses around them.
    let mut jobs: Vec<Job> = [5, 1, 4, 2, 3, 3]
        .into_iter()
        .zip(1..)
        .map(|(s, n)| ended(n, 1, 0, "robot-1", JobStatus::Completed, s * 1000))
        .collect();
    jobs.push(ended(20, 1, 0, "robot-1", JobStatus::Failed, 100));
    jobs.push(ended(21, 1, 0, "robot-1", JobStatus::Cancelled, 1));
    jobs.push(pending(22, 1, 0));
    let mut late = ended(23, 1, 100, "robot-1", JobStatus::Completed, 9_000);
    late.edit(|r| r.robot_id = Some(robot("robot-2")));
    jobs.push(late);
    insert(&db, &jobs).await;

    let mut ranked = Vec::new();
    for rank in 0..8 {
        ranked.push(db.completed_duration_at(&all(), rank).await.unwrap());
    }
    let seconds = |s: &[i64]| s.iter().map(|s| Some(s * 1000)).collect::<Vec<_>>();
    let mut expected = seconds(&[1, 2, 3, 3, 4, 5, 9]);
    expected.push(None);
    assert_eq!(ranked, expected);
    assert_eq!(
        db.completed_duration_at(&all(), u64::MAX).await.unwrap(),
        None
    );

    let early = JobScope {
        robot_id: Some(robot("robot-1")),
        ..JobScope::default()
    };
    assert_eq!(
        db.completed_duration_at(&early, 5).await.unwrap(),
        Some(5_000)
    );
    assert_eq!(db.completed_duration_at(&early, 6).await.unwrap(), None);
    assert_eq!(
        db.completed_duration_at(&created_since(at(50)), 0)
            .await
            .unwrap(),
        Some(9_000)
    );
}

pub async fn slowest_workflows_average_their_completed_jobs(db: SharedStore) {
    let mut jobs = vec![
        // Workflow 1: 1 s and 3 s → 2 s. Its failure does not count.
        ended(1, 1, 0, "robot-1", JobStatus::Completed, 1_000),
        ended(2, 1, 0, "robot-1", JobStatus::Completed, 3_000),
        ended(3, 1, 0, "robot-1", JobStatus::Failed, 99_000),
        // Workflow 2: 10 s.
        ended(4, 2, 0, "robot-1", JobStatus::Completed, 10_000),
        // Workflows 3 and 4 tie at 500 ms: the lower id first.
        ended(5, 4, 0, "robot-1", JobStatus::Completed, 500),
        ended(6, 3, 0, "robot-1", JobStatus::Completed, 250),
        ended(7, 3, 0, "robot-1", JobStatus::Completed, 750),
        // Workflow 5 has only a pending job.
        pending(8, 5, 0),
    ];
    // A job of workflow 2 created before the window, far slower.
    jobs.push(ended(
        9,
        2,
        -1_000,
        "robot-1",
        JobStatus::Completed,
        500_000,
    ));
    insert(&db, &jobs).await;

    let slow = |wf: u128, average: f64, completed: u64| WorkflowDuration {
        workflow_id: workflow(wf),
        workflow_name: format!("wf-{wf}"),
        average_duration_ms: average,
        completed_jobs: completed,
    };
    let window = created_since(T0);
    assert_eq!(
        db.slowest_workflows(&window, 10).await.unwrap(),
        [
            slow(2, 10_000.0, 1),
            slow(1, 2_000.0, 2),
            slow(3, 500.0, 2),
            slow(4, 500.0, 1),
        ]
    );
    assert_eq!(
        db.slowest_workflows(&window, 2).await.unwrap(),
        [slow(2, 10_000.0, 1), slow(1, 2_000.0, 2)]
    );
    assert_eq!(
        db.slowest_workflows(&all(), 1).await.unwrap(),
        [slow(2, 255_000.0, 2)]
    );
}

pub async fn error_counts_rank_failed_jobs_by_error_type(db: SharedStore) {
    insert(
        &db,
        &[
            failed(1, 0, Some("TimeoutError")),
            failed(2, 0, Some("TimeoutError")),
            failed(3, 0, Some("TimeoutError")),
            failed(4, 0, Some("SelectorNotFound")),
            failed(5, 0, Some("SelectorNotFound")),
            failed(6, 0, Some("LeaseExpired")),
            failed(7, 0, Some("Boom")),
            failed(8, 0, None),
            failed(9, 0, None),
            failed(10, -100, Some("Ancient")),
            // Completed and cancelled jobs are not errors.
            ended(11, 1, 0, "robot-1", JobStatus::Completed, 1),
            ended(12, 1, 0, "robot-1", JobStatus::Cancelled, 1),
        ],
    )
    .await;
    let count = |error_type: Option<&str>, count: u64| ErrorCount {
        error_type: error_type.map(str::to_owned),
        count,
    };
    let window = created_since(T0);
    assert_eq!(
        db.error_counts(&window, 10).await.unwrap(),
        [
            count(Some("TimeoutError"), 3),
            // Ties by type, a missing type first.
            count(None, 2),
            count(Some("SelectorNotFound"), 2),
            count(Some("Boom"), 1),
            count(Some("LeaseExpired"), 1),
        ]
    );
    assert_eq!(
        db.error_counts(&window, 2).await.unwrap()[0],
        count(Some("TimeoutError"), 3)
    );
    assert_eq!(db.error_counts(&all(), 100).await.unwrap().len(), 6);
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_job_stats {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(job_stats [
    totals_count_each_status_with_retries_and_durations,
    scopes_bound_creation_and_end_from_below_inclusively,
    durations_follow_every_update_of_a_job,
    completed_durations_are_ranked_shortest_first,
    slowest_workflows_average_their_completed_jobs,
    error_counts_rank_failed_jobs_by_error_type,
        ] $($backend => $fixture),+);
    };
}
