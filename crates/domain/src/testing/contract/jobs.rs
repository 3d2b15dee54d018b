//! `JobRepository`.

// Helpers here are not `#[test]` functions, so clippy's test exemption does not reach them; a
// failed unwrap in a contract test is a failed assertion with a location.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Instant;

use super::SharedStore;
use baton_domain::event::{Event, EventType};
use baton_domain::flow::FlowId;
use baton_domain::ids::{EventId, JobId, TriggerId, WorkflowId};
use baton_domain::job::{
    CancelMode, Job, JobOrigin, JobRecord, JobStatus, NewJob, NodeExecution, Priority,
};
use baton_domain::ports::{EventFilter, JobChange, JobCursor, JobFilter};
use baton_domain::robot::RobotId;
use baton_domain::workflow::{ExecutionMode, WorkflowName};
use baton_domain::{RepoError, Timestamp};
use futures_util::future::join_all;
use serde_json::json;
use time::Duration;

use super::fixtures::{T0, at, uuid};

fn robot(name: &str) -> RobotId {
    RobotId::parse(name).unwrap()
}

fn job_id(n: u128) -> JobId {
    JobId::from_uuid(uuid(n))
}

fn workflow(n: u128) -> WorkflowId {
    WorkflowId::from_uuid(uuid(1_000 + n))
}

/// A pending job `n` of workflow 1 with priority `priority`, created `created` seconds after T0.
fn job(n: u128, priority: i64, created: i64) -> Job {
    NewJob {
        workflow_id: workflow(1),
        workflow_name: WorkflowName::parse("nightly").unwrap(),
        priority: Priority::new(priority).unwrap(),
        execution_mode: ExecutionMode::Lan,
        input: serde_json::Map::new(),
        origin: JobOrigin::Manual,
        max_retries: NewJob::DEFAULT_MAX_RETRIES,
    }
    .into_job(job_id(n), at(created))
}

fn micros(t: Timestamp, us: i64) -> Timestamp {
    t + Duration::microseconds(us)
}

/// Every optional field set, every timestamp with microseconds.
fn full_job(n: u128, origin: JobOrigin) -> Job {
    let mut input = serde_json::Map::new();
    input.insert("customer".to_owned(), json!({"id": 7, "name": "Ünïcode"}));
    input.insert("dry_run".to_owned(), json!(true));
    Job::from_record(JobRecord {
        id: job_id(n),
        workflow_id: workflow(2),
        workflow_name: WorkflowName::parse("invoice run").unwrap(),
        status: JobStatus::Running,
        priority: Priority::new(3).unwrap(),
        execution_mode: ExecutionMode::Internet,
        input,
        output: Some(json!({"rows": [1, 2, 3], "ok": true})),
        origin,
        robot_id: Some(robot("robot-7")),
        created_at: micros(T0, 123_456),
        claimed_at: Some(micros(at(1), 1)),
        started_at: Some(micros(at(2), 999_999)),
        completed_at: Some(micros(at(9), 500_000)),
        lease_expires_at: Some(micros(at(61), 42)),
        retry_count: 2,
        max_retries: 5,
        attempt: 3,
        error_message: Some("it broke".to_owned()),
        error_type: Some("Boom".to_owned()),
        cancel_requested: Some(CancelMode::Soft),
        node_executions: vec![
            NodeExecution::new(
                "fetch".to_owned(),
                "completed",
                1_250,
                None,
                micros(at(3), 654_321),
            )
            .unwrap(),
            NodeExecution::new(
                "post".to_owned(),
                "failed",
                0,
                Some("HTTP 500".to_owned()),
                micros(at(4), 7),
            )
            .unwrap(),
        ],
        updated_at: micros(at(9), 500_001),
        version: 11,
    })
}

fn created_event(n: u128, job: &Job) -> Event {
    Event::job_changed(
        EventId::from_uuid(uuid(5_000 + n)),
        job,
        false,
        job.created_at(),
    )
}

/// What the domain says a claim does, with the version bump storage adds.
fn claimed(mut job: Job, by: &str, now: Timestamp, lease_seconds: u32) -> Job {
    job.claim(robot(by), now, lease_seconds).unwrap();
    job.edit(|r| r.version += 1);
    job
}

fn ids(jobs: &[Job]) -> Vec<JobId> {
    jobs.iter().map(|j| j.id()).collect()
}

pub async fn events_of(db: &SharedStore, event_type: EventType) -> Vec<Event> {
    let filter = EventFilter {
        event_type: Some(event_type),
        limit: 10_000,
        ..EventFilter::default()
    };
    db.list_events(&filter).await.unwrap().0
}

pub async fn jobs_read_back_with_every_field(db: SharedStore) {
    let origins = [
        JobOrigin::Trigger(TriggerId::from_uuid(uuid(77))),
        JobOrigin::Flow(FlowId::parse("billing-flow").unwrap()),
        JobOrigin::Webhook,
        JobOrigin::Manual,
    ];
    for (n, origin) in (1..).zip(origins) {
        let full = full_job(n, origin);
        db.insert_job(&full, &[]).await.unwrap();
        assert_eq!(db.get_job(full.id()).await.unwrap(), full);
    }
    let mut bare = job(10, 10, 0);
    bare.edit(|r| {
        r.input.insert("empty".to_owned(), json!({}));
    });
    db.insert_job(&bare, &[]).await.unwrap();
    assert_eq!(db.get_job(bare.id()).await.unwrap(), bare);
    // A JSON null output is a value, not the absence of one.
    let mut null_output = job(11, 0, 0);
    null_output.edit(|r| r.output = Some(serde_json::Value::Null));
    null_output.edit(|r| r.cancel_requested = Some(CancelMode::Hard));
    db.insert_job(&null_output, &[]).await.unwrap();
    assert_eq!(db.get_job(null_output.id()).await.unwrap(), null_output);
}

pub async fn insert_job_writes_its_events(db: SharedStore) {
    let j = job(1, 10, 0);
    let event = created_event(1, &j);
    db.insert_job(&j, std::slice::from_ref(&event))
        .await
        .unwrap();
    let stored = events_of(&db, EventType::JobCreated).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        Event {
            seq: 0,
            ..stored[0].clone()
        },
        event
    );
}

pub async fn a_duplicate_job_id_conflicts_and_writes_no_events(db: SharedStore) {
    let j = job(1, 10, 0);
    db.insert_job(&j, &[created_event(1, &j)]).await.unwrap();
    let twin = job(1, 5, 10);
    let err = db
        .insert_job(&twin, &[created_event(2, &twin)])
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert_eq!(db.get_job(j.id()).await.unwrap(), j);
    assert_eq!(events_of(&db, EventType::JobCreated).await.len(), 1);
}

pub async fn an_unknown_job_is_not_found(db: SharedStore) {
    let err = db.get_job(job_id(404)).await.unwrap_err();
    assert!(matches!(err, RepoError::NotFound(_)), "{err:?}");
}

pub async fn a_claim_takes_jobs_by_priority_then_age(db: SharedStore) {
    // (id, priority, created): inserted out of order; 4 and 5 tie on both, so the id decides.
    let jobs = [
        job(1, 10, 0),
        job(2, 0, 50),
        job(3, 10, 5),
        job(5, 5, 20),
        job(4, 5, 20),
        job(6, 20, 0),
    ];
    for j in &jobs {
        db.insert_job(j, &[]).await.unwrap();
    }
    let mut done = job(7, 0, 0);
    done.edit(|r| r.status = JobStatus::Completed);
    db.insert_job(&done, &[]).await.unwrap();
    let now = micros(at(100), 250);

    let first = db.claim_jobs(&robot("robot-1"), now, 60, 3).await.unwrap();
    assert_eq!(
        first,
        [
            claimed(jobs[1].clone(), "robot-1", now, 60),
            claimed(jobs[4].clone(), "robot-1", now, 60),
            claimed(jobs[3].clone(), "robot-1", now, 60),
        ]
    );
    assert_eq!(
        first[0].lease_expires_at(),
        Some(now + Duration::seconds(60))
    );
    assert_eq!(
        db.get_job(first[0].id()).await.unwrap(),
        first[0],
        "the claim is stored"
    );

    let rest = db.claim_jobs(&robot("robot-2"), now, 90, 10).await.unwrap();
    assert_eq!(ids(&rest), [job_id(1), job_id(3), job_id(6)]);
    assert_eq!(rest[2], claimed(jobs[5].clone(), "robot-2", now, 90));
    assert!(
        db.claim_jobs(&robot("robot-3"), now, 60, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.get_job(done.id()).await.unwrap(),
        done,
        "a finished job is never claimed"
    );
}

pub async fn a_claim_writes_one_job_claimed_event_per_job(db: SharedStore) {
    for n in 1..=3 {
        db.insert_job(&job(n, 10, i64::try_from(n).unwrap()), &[])
            .await
            .unwrap();
    }
    let now = micros(at(100), 1);
    let got = db.claim_jobs(&robot("robot-1"), now, 60, 2).await.unwrap();
    let events = events_of(&db, EventType::JobClaimed).await;
    assert_eq!(events.len(), 2);
    // Newest first: the second job's event came last.
    for (event, claimed_job) in events.iter().rev().zip(&got) {
        assert_eq!(event.job_id, Some(claimed_job.id()));
        assert_eq!(event.job_status, Some(JobStatus::Claimed));
        assert_eq!(event.robot_id, Some(robot("robot-1")));
        assert_eq!(event.workflow_id, Some(claimed_job.workflow_id()));
        assert_eq!(event.timestamp, now);
        assert_eq!(event.title, "Job claimed");
    }
    assert!(events[0].seq > events[1].seq);
    // A claim that finds nothing writes nothing.
    db.claim_jobs(&robot("robot-1"), now, 60, 0).await.unwrap();
    db.claim_jobs(&robot("robot-1"), now, 60, 5).await.unwrap();
    assert!(
        db.claim_jobs(&robot("robot-1"), now, 60, 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(events_of(&db, EventType::JobClaimed).await.len(), 3);
}

pub async fn update_job_stores_every_change_with_its_events(db: SharedStore) {
    db.insert_job(&job(1, 10, 0), &[]).await.unwrap();
    let [mut j] = db
        .claim_jobs(&robot("robot-1"), at(1), 60, 1)
        .await
        .unwrap()
        .try_into()
        .unwrap();
    j.record_node(
        &robot("robot-1"),
        NodeExecution::new("n1".to_owned(), "completed", 5, None, micros(at(2), 3)).unwrap(),
        micros(at(2), 4),
    )
    .unwrap();
    j.complete(
        &robot("robot-1"),
        Some(json!({"total": 42})),
        micros(at(3), 5),
    )
    .unwrap();
    let event = Event::job_changed(EventId::from_uuid(uuid(9)), &j, false, at(3));
    let stored = db
        .update_job(&j, std::slice::from_ref(&event))
        .await
        .unwrap();
    let mut expected = j.clone();
    expected.edit(|r| r.version += 1);
    assert_eq!(stored, expected);
    assert_eq!(db.get_job(j.id()).await.unwrap(), expected);
    let completed = events_of(&db, EventType::JobCompleted).await;
    assert_eq!(completed.len(), 1);
    assert_eq!(
        Event {
            seq: 0,
            ..completed[0].clone()
        },
        event
    );

    // None clears a column: a requeued job loses its robot and lease.
    let mut requeued = job(2, 10, 0);
    db.insert_job(&requeued, &[]).await.unwrap();
    requeued.edit(|r| {
        r.robot_id = Some(robot("robot-2"));
        r.lease_expires_at = Some(at(5));
        r.attempt = 4;
    });
    requeued = db.update_job(&requeued, &[]).await.unwrap();
    assert_eq!(requeued.attempt(), 4, "a changed attempt is stored");
    requeued.edit(|r| {
        r.robot_id = None;
        r.lease_expires_at = None;
        r.output = None;
    });
    let stored = db.update_job(&requeued, &[]).await.unwrap();
    assert_eq!(
        (stored.robot_id().cloned(), stored.lease_expires_at()),
        (None, None)
    );
    assert_eq!(db.get_job(requeued.id()).await.unwrap(), stored);
}

pub async fn a_stale_update_job_conflicts_and_writes_no_events(db: SharedStore) {
    let original = job(1, 10, 0);
    db.insert_job(&original, &[]).await.unwrap();
    let claimed_job = db
        .claim_jobs(&robot("robot-1"), at(1), 60, 1)
        .await
        .unwrap();
    let mut stale = original.clone();
    stale.cancel(CancelMode::Hard, at(2)).unwrap();
    let event = Event::job_changed(EventId::from_uuid(uuid(9)), &stale, false, at(2));
    let err = db.update_job(&stale, &[event]).await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert_eq!(db.get_job(original.id()).await.unwrap(), claimed_job[0]);
    assert!(events_of(&db, EventType::JobCancelled).await.is_empty());
}

pub async fn update_job_of_an_unknown_id_is_not_found(db: SharedStore) {
    let j = job(1, 10, 0);
    let event = created_event(1, &j);
    let err = db.update_job(&j, &[event]).await.unwrap_err();
    assert!(matches!(err, RepoError::NotFound(_)), "{err:?}");
    assert_eq!(
        db.latest_event_seq().await.unwrap(),
        0,
        "no event was written"
    );
}

pub async fn a_claim_counts_one_more_attempt_than_the_runs_before(db: SharedStore) {
    db.insert_job(&job(1, 10, 0), &[]).await.unwrap();
    db.insert_job(&job(2, 10, 1), &[]).await.unwrap();
    assert_eq!(db.get_job(job_id(1)).await.unwrap().attempt(), 0);
    let [first] = db
        .claim_jobs(&robot("robot-1"), at(10), 60, 1)
        .await
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!((first.id(), first.attempt()), (job_id(1), 1));
    // The robot gives it back: the next claim is its second attempt.
    let mut released = first;
    released.release(&robot("robot-1"), at(11)).unwrap();
    db.update_job(&released, &[]).await.unwrap();
    let [second] = db
        .claim_jobs(&robot("robot-2"), at(12), 60, 1)
        .await
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!((second.id(), second.attempt()), (job_id(1), 2));
    assert_eq!(db.get_job(job_id(1)).await.unwrap(), second, "stored");
    // Its lease runs out: the claim after the recovery is the third, in the same batch as a
    // first claim of another job.
    let mut recovered = second;
    recovered.expire_lease(at(72)).unwrap();
    db.update_job(&recovered, &[]).await.unwrap();
    let both = db
        .claim_jobs(&robot("robot-1"), at(80), 60, 2)
        .await
        .unwrap();
    let attempts: Vec<(JobId, u32)> = both.iter().map(|j| (j.id(), j.attempt())).collect();
    assert_eq!(attempts, [(job_id(1), 3), (job_id(2), 1)]);
    for claimed_job in &both {
        assert_eq!(&db.get_job(claimed_job.id()).await.unwrap(), claimed_job);
    }
}

pub async fn get_jobs_reads_the_known_ids_and_leaves_out_the_others(db: SharedStore) {
    for n in 1..=3 {
        db.insert_job(&job(n, 10, 0), &[]).await.unwrap();
    }
    let mut got = db
        .get_jobs(&[job_id(3), job_id(99), job_id(1)])
        .await
        .unwrap();
    got.sort_by_key(|j| j.id());
    assert_eq!(got, [job(1, 10, 0), job(3, 10, 0)]);
    assert!(db.get_jobs(&[]).await.unwrap().is_empty());
}

/// Three claimed jobs completed by robot-1, with their `job_completed` events.
pub async fn three_completions(db: &SharedStore) -> Vec<JobChange> {
    for n in 1..=3 {
        db.insert_job(&job(n, 10, i64::try_from(n).unwrap()), &[])
            .await
            .unwrap();
    }
    let claimed = db
        .claim_jobs(&robot("robot-1"), at(5), 60, 3)
        .await
        .unwrap();
    claimed
        .into_iter()
        .enumerate()
        .map(|(n, mut job)| {
            job.complete(&robot("robot-1"), Some(json!({"n": n})), at(6))
                .unwrap();
            let event = Event::job_changed(
                EventId::from_uuid(uuid(9_000 + n as u128)),
                &job,
                false,
                at(6),
            );
            JobChange {
                job,
                events: vec![event],
            }
        })
        .collect()
}

pub async fn update_jobs_each_stores_every_change_with_its_events(db: SharedStore) {
    let changes = three_completions(&db).await;
    let outcomes = db.update_jobs_each(&changes).await.unwrap();
    assert_eq!(outcomes.len(), 3);
    for (change, outcome) in changes.iter().zip(outcomes) {
        let mut expected = change.job.clone();
        expected.edit(|r| r.version += 1);
        assert_eq!(outcome.unwrap(), expected);
        assert_eq!(db.get_job(expected.id()).await.unwrap(), expected);
    }
    let events = events_of(&db, EventType::JobCompleted).await;
    assert_eq!(events.len(), 3, "one event per stored job");
    assert!(db.update_jobs_each(&[]).await.unwrap().is_empty());
}

pub async fn update_jobs_each_keeps_every_field_and_stores_a_repeat_once(db: SharedStore) {
    let original = full_job(1, JobOrigin::Trigger(TriggerId::from_uuid(uuid(77))));
    db.insert_job(&original, &[]).await.unwrap();
    let mut changed = original.clone();
    changed.edit(|r| {
        r.output = Some(json!({"ünïcode": "✓", "nested": [1, {"a": null}]}));
        r.completed_at = Some(micros(at(12), 654_321));
        r.lease_expires_at = None;
        r.error_message = None;
        r.retry_count = 4;
        r.attempt = 6;
    });
    let change = JobChange {
        job: changed.clone(),
        events: Vec::new(),
    };
    let outcomes = db
        .update_jobs_each(&[change.clone(), change])
        .await
        .unwrap();
    let mut expected = changed;
    expected.edit(|r| r.version += 1);
    assert_eq!(outcomes[0].as_ref().unwrap(), &expected);
    assert!(
        matches!(outcomes[1], Err(RepoError::Conflict(_))),
        "a repeat finds the version moved: {:?}",
        outcomes[1]
    );
    assert_eq!(db.get_job(expected.id()).await.unwrap(), expected);
}

pub async fn update_jobs_each_refuses_stale_and_unknown_jobs_alone(db: SharedStore) {
    let mut changes = three_completions(&db).await;
    // A cancel wins the race for the second job after the robot read it.
    let mut cancelled = db.get_job(changes[1].job.id()).await.unwrap();
    cancelled.cancel(CancelMode::Hard, at(6)).unwrap();
    db.update_job(&cancelled, &[]).await.unwrap();
    // The third names a job that was never stored.
    let mut unknown = job(42, 10, 0);
    unknown.edit(|r| r.version = 1);
    changes[2] = JobChange {
        events: vec![created_event(42, &unknown)],
        job: unknown,
    };
    let outcomes = db.update_jobs_each(&changes).await.unwrap();
    assert_eq!(outcomes[0].as_ref().unwrap().status(), JobStatus::Completed);
    assert!(
        matches!(outcomes[1], Err(RepoError::Conflict(_))),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(outcomes[2], Err(RepoError::NotFound(_))),
        "{:?}",
        outcomes[2]
    );
    assert_eq!(
        db.get_job(changes[1].job.id()).await.unwrap().status(),
        JobStatus::Cancelled,
        "the refused change was not written"
    );
    let completed = events_of(&db, EventType::JobCompleted).await;
    assert_eq!(
        completed.len(),
        1,
        "only the stored job's event: {completed:?}"
    );
    assert_eq!(completed[0].job_id, Some(changes[0].job.id()));
    assert!(events_of(&db, EventType::JobCreated).await.is_empty());
}

pub async fn list_jobs_filters_newest_first(db: SharedStore) {
    let mut jobs: Vec<Job> = (1..=6)
        .map(|n| job(n, 10, i64::try_from(n).unwrap() * 10))
        .collect();
    jobs[1].edit(|r| r.workflow_id = workflow(2));
    jobs[2].edit(|r| r.workflow_id = workflow(2));
    // Two jobs share a creation time: the id breaks the tie, newest (highest) first.
    let tied = jobs[4].created_at();
    jobs[5].edit(|r| r.created_at = tied);
    for j in &jobs {
        db.insert_job(j, &[]).await.unwrap();
    }
    db.claim_jobs(&robot("robot-1"), at(100), 60, 2)
        .await
        .unwrap();

    let list = |filter: JobFilter| {
        let db = db.clone();
        async move {
            ids(&db
                .list_jobs(&JobFilter {
                    limit: 100,
                    ..filter
                })
                .await
                .unwrap())
        }
    };
    assert_eq!(
        list(JobFilter::default()).await,
        [6, 5, 4, 3, 2, 1].map(job_id)
    );
    assert_eq!(
        list(JobFilter {
            status: Some(JobStatus::Claimed),
            ..JobFilter::default()
        })
        .await,
        [2, 1].map(job_id)
    );
    assert_eq!(
        list(JobFilter {
            workflow_id: Some(workflow(2)),
            ..JobFilter::default()
        })
        .await,
        [3, 2].map(job_id)
    );
    assert_eq!(
        list(JobFilter {
            robot_id: Some(robot("robot-1")),
            ..JobFilter::default()
        })
        .await,
        [2, 1].map(job_id)
    );
    assert_eq!(
        list(JobFilter {
            created_after: Some(at(40)),
            ..JobFilter::default()
        })
        .await,
        [6, 5].map(job_id),
        "strictly after"
    );
    assert_eq!(
        list(JobFilter {
            created_before: Some(at(40)),
            ..JobFilter::default()
        })
        .await,
        [3, 2, 1].map(job_id),
        "strictly before"
    );
    assert_eq!(
        list(JobFilter {
            after: Some(JobCursor {
                created_at: tied,
                id: job_id(6),
            }),
            ..JobFilter::default()
        })
        .await,
        [5, 4, 3, 2, 1].map(job_id),
        "after a cursor, ties broken by id"
    );
    assert_eq!(
        list(JobFilter {
            after: Some(JobCursor {
                created_at: tied,
                id: job_id(5),
            }),
            created_after: Some(at(10)),
            ..JobFilter::default()
        })
        .await,
        [4, 3, 2].map(job_id),
        "a cursor with a time filter"
    );
    assert_eq!(
        list(JobFilter {
            status: Some(JobStatus::Pending),
            workflow_id: Some(workflow(2)),
            ..JobFilter::default()
        })
        .await,
        [job_id(3)]
    );
    let two = db
        .list_jobs(&JobFilter {
            limit: 2,
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        two,
        [jobs[5].clone(), jobs[4].clone()],
        "listed jobs carry every field"
    );
}

pub async fn expired_leases_are_claimed_or_running_jobs_past_their_lease(db: SharedStore) {
    for n in 1..=5 {
        db.insert_job(&job(n, 10, i64::try_from(n).unwrap()), &[])
            .await
            .unwrap();
    }
    // Jobs 1, 2, 3, 4 claimed at 10, 20, 30, 40 with 60-second leases; job 5 stays pending.
    for (n, claimed_at) in [(1, 10), (2, 20), (3, 30), (4, 40)] {
        let [got] = db
            .claim_jobs(&robot("r"), at(claimed_at), 60, 1)
            .await
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(got.id(), job_id(n));
    }
    // Job 2 is running, job 3 completed (no lease any more), job 4 renewed to 200.
    let mut running = db.get_job(job_id(2)).await.unwrap();
    running.start(&robot("r"), at(21)).unwrap();
    db.update_job(&running, &[]).await.unwrap();
    let mut done = db.get_job(job_id(3)).await.unwrap();
    done.complete(&robot("r"), None, at(31)).unwrap();
    db.update_job(&done, &[]).await.unwrap();
    let mut renewed = db.get_job(job_id(4)).await.unwrap();
    renewed.renew_lease(&robot("r"), at(140), 60).unwrap();
    db.update_job(&renewed, &[]).await.unwrap();

    assert!(db.expired_job_leases(at(69), 10).await.unwrap().is_empty());
    assert_eq!(
        ids(&db.expired_job_leases(at(70), 10).await.unwrap()),
        [job_id(1)],
        "at the exact end"
    );
    let expired = db.expired_job_leases(at(150), 10).await.unwrap();
    assert_eq!(ids(&expired), [job_id(1), job_id(2)]);
    assert_eq!(expired[1], db.get_job(job_id(2)).await.unwrap());
    assert_eq!(db.expired_job_leases(at(1000), 10).await.unwrap().len(), 3);
    assert_eq!(db.expired_job_leases(at(1000), 1).await.unwrap().len(), 1);
}

pub async fn count_jobs_by_status_leaves_out_empty_statuses(db: SharedStore) {
    assert!(db.count_jobs_by_status().await.unwrap().is_empty());
    for n in 1..=6 {
        db.insert_job(&job(n, 10, i64::try_from(n).unwrap()), &[])
            .await
            .unwrap();
    }
    let mut cancelled = job(7, 10, 0);
    cancelled.cancel(CancelMode::Hard, at(1)).unwrap();
    db.insert_job(&cancelled, &[]).await.unwrap();
    db.claim_jobs(&robot("r"), at(10), 60, 2).await.unwrap();
    assert_eq!(
        db.count_jobs_by_status().await.unwrap(),
        [
            (JobStatus::Pending, 4),
            (JobStatus::Claimed, 2),
            (JobStatus::Cancelled, 1)
        ]
    );
}

pub async fn eight_claimers_drain_2000_jobs_exactly_once(db: SharedStore) {
    const JOBS: u128 = 2000;
    let jobs: Vec<Job> = (0..JOBS)
        .map(|n| {
            job(
                n + 1,
                i64::try_from(n % 21).unwrap(),
                i64::try_from(n % 50).unwrap(),
            )
        })
        .collect();
    // The port inserts one job per call: a few concurrent writers fill the table faster than one.
    let started = Instant::now();
    let writers: Vec<_> = jobs
        .chunks(500)
        .map(|chunk| {
            let db = db.clone();
            let chunk = chunk.to_vec();
            async move {
                for j in &chunk {
                    db.insert_job(j, &[]).await.unwrap();
                }
            }
        })
        .collect();
    join_all(writers).await;
    let inserted = started.elapsed();

    let started = Instant::now();
    let claimers: Vec<_> = (0..8)
        .map(|c| {
            let db = db.clone();
            async move {
                let me = robot(&format!("robot-{c}"));
                let mut mine = Vec::new();
                loop {
                    let batch = db.claim_jobs(&me, at(100), 60, 10).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    assert!(batch.len() <= 10);
                    for got in batch {
                        assert_eq!(got.robot_id(), Some(&me));
                        assert_eq!(got.status(), JobStatus::Claimed);
                        mine.push(got.id());
                    }
                }
            }
        })
        .collect();
    let mut all = Vec::new();
    for claimer in join_all(claimers).await {
        all.extend(claimer);
    }
    let drained = started.elapsed();
    eprintln!("inserted {JOBS} jobs in {inserted:?}, 8 claimers drained them in {drained:?}");

    let distinct: HashSet<JobId> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "no job was claimed twice");
    let expected: HashSet<JobId> = ids(&jobs).into_iter().collect();
    assert_eq!(distinct, expected, "every job was claimed");
    assert_eq!(
        db.count_jobs_by_status().await.unwrap(),
        [(JobStatus::Claimed, 2000)]
    );
    let (_, claim_events) = db
        .list_events(&EventFilter {
            event_type: Some(EventType::JobClaimed),
            limit: 1,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(claim_events, 2000, "one job_claimed event per claim");
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_jobs {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(jobs [
    jobs_read_back_with_every_field,
    insert_job_writes_its_events,
    a_duplicate_job_id_conflicts_and_writes_no_events,
    an_unknown_job_is_not_found,
    a_claim_takes_jobs_by_priority_then_age,
    a_claim_writes_one_job_claimed_event_per_job,
    update_job_stores_every_change_with_its_events,
    a_stale_update_job_conflicts_and_writes_no_events,
    update_job_of_an_unknown_id_is_not_found,
    a_claim_counts_one_more_attempt_than_the_runs_before,
    get_jobs_reads_the_known_ids_and_leaves_out_the_others,
    update_jobs_each_stores_every_change_with_its_events,
    update_jobs_each_refuses_stale_and_unknown_jobs_alone,
    update_jobs_each_keeps_every_field_and_stores_a_repeat_once,
    list_jobs_filters_newest_first,
    expired_leases_are_claimed_or_running_jobs_past_their_lease,
    count_jobs_by_status_leaves_out_empty_statuses,
    eight_claimers_drain_2000_jobs_exactly_once,
        ] $($backend => $fixture),+);
    };
}
