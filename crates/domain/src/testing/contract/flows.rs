//! `FlowRepository`.

// Helpers here are not `#[test]` functions, so clippy's test exemption does not reach them; a
// failed unwrap in a contract test is a failed assertion with a location.
#![allow(clippy::unwrap_used)]

use super::SharedStore;
use baton_domain::RepoError;
use baton_domain::event::EventType;
use baton_domain::flow::{Flow, FlowCommand, FlowConfig, FlowId};
use baton_domain::job::JobOrigin;
use baton_domain::ports::EventFilter;
use baton_domain::{RepoResult, Timestamp};
use serde_json::json;

use super::fixtures::{T0, at};
use super::workflows::{event, job, job_id, micros, workflow_id};

fn flow_id(name: &str) -> FlowId {
    FlowId::parse(name).unwrap()
}

/// A stopped flow created at `created`, whose configuration carries keys of its own.
fn flow(name: &str, created: Timestamp) -> Flow {
    let config = FlowConfig::parse(json!({
        "flow_id": name,
        "workflow_id": workflow_id(1).to_string(),
        "interval_seconds": 30,
        "description": "keeps the inbox empty",
        "options": {"retries": [1, 2, 3], "dry_run": false}
    }))
    .unwrap();
    Flow::new(config, created)
}

/// Running, with a current job and every instant carrying microseconds.
fn running(name: &str) -> Flow {
    let mut f = flow(name, micros(T0, 123_456));
    f.apply(FlowCommand::Start, micros(at(1), 1)).unwrap();
    f.job_started(job_id(1), micros(at(2), 654_321));
    f.edit(|r| r.next_run_at = Some(micros(at(90), 999_999)));
    f.edit(|r| r.version = 4);
    f
}

fn names(flows: &[Flow]) -> Vec<&str> {
    flows.iter().map(|f| f.flow_id().as_str()).collect()
}

pub async fn event_count(db: &SharedStore) -> u64 {
    db.list_events(&EventFilter {
        limit: 1,
        ..EventFilter::default()
    })
    .await
    .unwrap()
    .1
}

pub async fn job_count(db: &SharedStore) -> u64 {
    db.count_jobs_by_status()
        .await
        .unwrap()
        .into_iter()
        .map(|(_, n)| n)
        .sum()
}

fn is_conflict<T: std::fmt::Debug>(result: RepoResult<T>) -> bool {
    matches!(result, Err(RepoError::Conflict(_)))
}

fn is_not_found<T: std::fmt::Debug>(result: RepoResult<T>) -> bool {
    matches!(result, Err(RepoError::NotFound(_)))
}

pub async fn flows_read_back_as_written(db: SharedStore) {
    let busy = running("sync");
    let idle = flow("archive", at(5));
    db.insert_flows(&[busy.clone(), idle.clone()])
        .await
        .unwrap();
    let read = db.get_flow(busy.flow_id()).await.unwrap();
    assert_eq!(read, busy);
    assert_eq!(
        read.config().document(),
        busy.config().document(),
        "the configuration is kept as given"
    );
    assert_eq!(read.config().interval_seconds(), 30);
    assert_eq!(db.get_flow(idle.flow_id()).await.unwrap(), idle);
    assert_eq!(
        db.list_flows().await.unwrap(),
        vec![busy, idle],
        "oldest first"
    );
}

pub async fn an_empty_batch_is_accepted(db: SharedStore) {
    db.insert_flows(&[]).await.unwrap();
    assert!(db.list_flows().await.unwrap().is_empty());
}

pub async fn a_batch_with_a_stored_id_writes_none(db: SharedStore) {
    db.insert_flows(&[flow("sync", T0)]).await.unwrap();
    let batch = [flow("a", at(1)), flow("sync", at(2)), flow("b", at(3))];
    assert!(is_conflict(db.insert_flows(&batch).await));
    assert_eq!(names(&db.list_flows().await.unwrap()), ["sync"]);
    assert_eq!(
        db.get_flow(&flow_id("sync")).await.unwrap(),
        flow("sync", T0),
        "the stored flow is untouched"
    );
}

pub async fn a_batch_repeating_an_id_writes_none(db: SharedStore) {
    let batch = [flow("a", at(1)), flow("b", at(2)), flow("a", at(3))];
    assert!(is_conflict(db.insert_flows(&batch).await));
    assert!(db.list_flows().await.unwrap().is_empty());
}

pub async fn missing_flows_are_not_found(db: SharedStore) {
    let ghost = flow("ghost", T0);
    assert!(is_not_found(db.get_flow(ghost.flow_id()).await));
    assert!(is_not_found(db.update_flow(&ghost, &[]).await));
    assert!(is_not_found(db.delete_flow(ghost.flow_id()).await));
    let job = job(1, JobOrigin::Flow(ghost.flow_id().clone()), T0);
    assert!(is_not_found(db.record_flow_job(&ghost, &job, &[]).await));
    assert!(
        is_not_found(db.get_job(job.id()).await),
        "no job without its flow"
    );
}

pub async fn flows_are_deleted(db: SharedStore) {
    db.insert_flows(&[flow("a", at(1)), flow("b", at(2))])
        .await
        .unwrap();
    db.delete_flow(&flow_id("a")).await.unwrap();
    assert!(is_not_found(db.get_flow(&flow_id("a")).await));
    assert_eq!(names(&db.list_flows().await.unwrap()), ["b"]);
}

pub async fn updates_are_optimistic_and_carry_events(db: SharedStore) {
    let original = flow("sync", micros(T0, 5));
    db.insert_flows(std::slice::from_ref(&original))
        .await
        .unwrap();

    let mut started = original.clone();
    started
        .apply(FlowCommand::Start, micros(at(10), 10))
        .unwrap();
    let config =
        FlowConfig::parse(json!({"flow_id": "sync", "workflow_id": workflow_id(2).to_string()}))
            .unwrap();
    started.reconfigure(config, micros(at(10), 11)).unwrap();
    let stored = db
        .update_flow(&started, &[event(1, EventType::FlowStarted, at(10))])
        .await
        .unwrap();
    assert_eq!(stored, {
        let mut stored = started.clone();
        stored.edit(|r| r.version = original.version() + 1);
        stored
    });
    assert_eq!(db.get_flow(original.flow_id()).await.unwrap(), stored);
    assert_eq!(stored.config().workflow_id(), workflow_id(2));
    assert_eq!(event_count(&db).await, 1);

    // A write from an old read loses, and neither the flow nor the log changes.
    let mut stale = started.clone();
    stale
        .apply(FlowCommand::Stop { hard: true }, at(20))
        .unwrap();
    assert!(is_conflict(
        db.update_flow(&stale, &[event(2, EventType::FlowStopped, at(20))])
            .await
    ));
    assert_eq!(db.get_flow(original.flow_id()).await.unwrap(), stored);
    assert_eq!(event_count(&db).await, 1);

    let mut stopped = stored.clone();
    stopped
        .apply(FlowCommand::Stop { hard: true }, at(30))
        .unwrap();
    let stopped = db.update_flow(&stopped, &[]).await.unwrap();
    assert_eq!(stopped.next_run_at(), None);
    assert_eq!(
        db.get_flow(original.flow_id()).await.unwrap(),
        stopped,
        "None clears a stored value"
    );
}

pub async fn starting_a_job_stores_the_flow_the_job_and_the_events(db: SharedStore) {
    let mut original = flow("sync", T0);
    original.apply(FlowCommand::Start, at(1)).unwrap();
    db.insert_flows(std::slice::from_ref(&original))
        .await
        .unwrap();

    let now = micros(at(2), 77);
    let first = job(1, JobOrigin::Flow(original.flow_id().clone()), now);
    let mut started = original.clone();
    started.job_started(first.id(), now);
    db.record_flow_job(&started, &first, &[event(1, EventType::JobCreated, now)])
        .await
        .unwrap();

    let stored = db.get_flow(original.flow_id()).await.unwrap();
    assert_eq!(stored, {
        let mut stored = started.clone();
        stored.edit(|r| r.version = original.version() + 1);
        stored
    });
    assert_eq!(db.get_job(first.id()).await.unwrap(), first);
    assert_eq!(event_count(&db).await, 1);

    // Another runner read the flow before this start: it must not start a second job.
    let other = job(2, JobOrigin::Flow(original.flow_id().clone()), now);
    let mut late = original.clone();
    late.job_started(other.id(), now);
    assert!(is_conflict(
        db.record_flow_job(&late, &other, &[event(2, EventType::JobCreated, now)])
            .await
    ));
    assert!(is_not_found(db.get_job(other.id()).await), "no job row");
    assert_eq!(job_count(&db).await, 1);
    assert_eq!(event_count(&db).await, 1, "no event");
    assert_eq!(
        db.get_flow(original.flow_id()).await.unwrap(),
        stored,
        "the flow stays as the first start stored it"
    );
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_flows {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(flows [
    flows_read_back_as_written,
    an_empty_batch_is_accepted,
    a_batch_with_a_stored_id_writes_none,
    a_batch_repeating_an_id_writes_none,
    missing_flows_are_not_found,
    flows_are_deleted,
    updates_are_optimistic_and_carry_events,
    starting_a_job_stores_the_flow_the_job_and_the_events,
        ] $($backend => $fixture),+);
    };
}
