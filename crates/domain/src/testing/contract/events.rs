//! `EventRepository`.

// Helpers here are not `#[test]` functions, so clippy's test exemption does not reach them; a
// failed unwrap in a contract test is a failed assertion with a location.
#![allow(clippy::unwrap_used)]

use super::SharedStore;
use baton_domain::RepoResult;
use baton_domain::Timestamp;
use baton_domain::event::{Event, EventType};
use baton_domain::ids::{EventId, JobId, WorkflowId};
use baton_domain::job::{JobOrigin, JobStatus};
use baton_domain::ports::EventFilter;
use baton_domain::robot::RobotId;
use serde_json::json;
use time::Duration;

use super::fixtures::{T0, at, uuid};
use super::workflows::job;

/// Writes `events` the only way a store writes events: with the change that causes them, here
/// the creation of job `n`, in one transaction.
async fn record(db: &SharedStore, n: u128, events: &[Event]) -> RepoResult<()> {
    db.insert_job(&job(n, JobOrigin::Manual, T0), events).await
}

/// A bare event `n` of `event_type` at `timestamp`.
fn event(n: u128, event_type: EventType, timestamp: Timestamp) -> Event {
    Event::new(
        EventId::from_uuid(uuid(n)),
        event_type,
        format!("event {n}"),
        timestamp,
    )
}

/// Every optional field set, the timestamp with microseconds.
fn full_event(n: u128) -> Event {
    let mut data = serde_json::Map::new();
    data.insert("attempt".to_owned(), json!(2));
    data.insert("tags".to_owned(), json!(["a", "ü"]));
    Event {
        details: Some("nightly finished in 3s".to_owned()),
        robot_id: Some(RobotId::parse("robot-1").unwrap()),
        job_id: Some(JobId::from_uuid(uuid(10))),
        workflow_id: Some(WorkflowId::from_uuid(uuid(20))),
        job_status: Some(JobStatus::Completed),
        data,
        ..event(
            n,
            EventType::JobCompleted,
            T0 + Duration::microseconds(123_456),
        )
    }
}

/// `stored` with the seq storage assigned cleared, to compare with what was appended.
fn unsequenced(stored: &[Event]) -> Vec<Event> {
    stored
        .iter()
        .map(|e| Event {
            seq: 0,
            ..e.clone()
        })
        .collect()
}

fn filter(event_type: Option<EventType>, since: Option<Timestamp>, limit: u32) -> EventFilter {
    EventFilter {
        event_type,
        since,
        limit,
    }
}

pub async fn appended_events_read_back_in_order_with_growing_seq(db: SharedStore) {
    let appended = vec![
        full_event(1),
        event(2, EventType::RobotOnline, at(1)),
        event(3, EventType::FlowStarted, at(1)),
    ];
    record(&db, 1, &appended).await.unwrap();
    let stored = db.events_after(0, 100).await.unwrap();
    assert_eq!(unsequenced(&stored), appended);
    assert!(stored[0].seq > 0);
    assert!(
        stored.windows(2).all(|w| w[0].seq < w[1].seq),
        "seq grows in append order"
    );
    assert_eq!(db.latest_event_seq().await.unwrap(), stored[2].seq);

    record(&db, 2, &[event(4, EventType::RobotOffline, at(2))])
        .await
        .unwrap();
    let later = db.events_after(stored[2].seq, 100).await.unwrap();
    assert_eq!(
        unsequenced(&later),
        [event(4, EventType::RobotOffline, at(2))]
    );
    assert!(later[0].seq > stored[2].seq);
}

pub async fn an_empty_log_has_seq_zero_and_a_change_without_events_keeps_it(db: SharedStore) {
    assert_eq!(db.latest_event_seq().await.unwrap(), 0);
    record(&db, 3, &[]).await.unwrap();
    assert_eq!(db.latest_event_seq().await.unwrap(), 0);
    assert!(db.events_after(0, 10).await.unwrap().is_empty());
    assert_eq!(
        db.list_events(&filter(None, None, 10)).await.unwrap(),
        (vec![], 0)
    );
}

pub async fn events_after_pages_through_the_log_in_seq_order(db: SharedStore) {
    let appended: Vec<Event> = (1..=25)
        .map(|n| event(n, EventType::JobCreated, at(0)))
        .collect();
    for (n, chunk) in (100..).zip(appended.chunks(4)) {
        record(&db, n, chunk).await.unwrap();
    }
    let mut walked = Vec::new();
    let mut after = 0;
    loop {
        let page = db.events_after(after, 10).await.unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 10);
        after = last.seq;
        walked.extend(page);
    }
    assert_eq!(unsequenced(&walked), appended);
    assert_eq!(after, db.latest_event_seq().await.unwrap());
}

pub async fn list_events_is_newest_first_with_filters_and_a_total(db: SharedStore) {
    let appended = [
        event(1, EventType::JobCreated, at(0)),
        event(2, EventType::RobotOnline, at(10)),
        event(3, EventType::JobCreated, at(10)),
        event(4, EventType::JobCreated, at(20)),
        event(5, EventType::RobotOnline, at(30)),
        event(6, EventType::JobCreated, at(40)),
    ];
    record(&db, 5, &appended).await.unwrap();
    let ids = |events: &[Event]| events.iter().map(|e| e.id).collect::<Vec<_>>();
    let expect = |ns: &[u128]| {
        ns.iter()
            .map(|n| EventId::from_uuid(uuid(*n)))
            .collect::<Vec<_>>()
    };

    let (all, total) = db.list_events(&filter(None, None, 100)).await.unwrap();
    assert_eq!((ids(&all), total), (expect(&[6, 5, 4, 3, 2, 1]), 6));
    assert_eq!(
        all[5],
        Event {
            seq: all[5].seq,
            ..appended[0].clone()
        }
    );

    let (page, total) = db.list_events(&filter(None, None, 2)).await.unwrap();
    assert_eq!(
        (ids(&page), total),
        (expect(&[6, 5]), 6),
        "the total ignores the limit"
    );

    let (jobs, total) = db
        .list_events(&filter(Some(EventType::JobCreated), None, 3))
        .await
        .unwrap();
    assert_eq!((ids(&jobs), total), (expect(&[6, 4, 3]), 4));

    let (since, total) = db
        .list_events(&filter(None, Some(at(10)), 100))
        .await
        .unwrap();
    assert_eq!(
        (ids(&since), total),
        (expect(&[6, 5, 4]), 3),
        "strictly after `since`"
    );

    let (both, total) = db
        .list_events(&filter(Some(EventType::RobotOnline), Some(at(10)), 100))
        .await
        .unwrap();
    assert_eq!((ids(&both), total), (expect(&[5]), 1));

    let (none, total) = db
        .list_events(&filter(Some(EventType::FlowStopped), None, 100))
        .await
        .unwrap();
    assert_eq!((none.len(), total), (0, 0));
}

pub async fn list_events_is_newest_first_by_time_when_the_log_order_differs(db: SharedStore) {
    // Appended out of time order, as concurrent writers that took their timestamps before
    // inserting can leave them; equal times keep their log order.
    record(
        &db,
        6,
        &[
            event(1, EventType::JobCreated, at(20)),
            event(2, EventType::RobotOffline, at(10)),
            event(3, EventType::JobStarted, at(30)),
            event(4, EventType::JobStarted, at(30)),
        ],
    )
    .await
    .unwrap();
    let (listed, total) = db.list_events(&filter(None, None, 10)).await.unwrap();
    let ids: Vec<EventId> = listed.iter().map(|e| e.id).collect();
    let expected: Vec<EventId> = [4, 3, 1, 2]
        .into_iter()
        .map(|n| EventId::from_uuid(uuid(n)))
        .collect();
    assert_eq!((ids, total), (expected, 4));
}

pub async fn a_duplicate_event_id_writes_none_of_the_batch(db: SharedStore) {
    record(&db, 7, &[event(1, EventType::JobCreated, at(0))])
        .await
        .unwrap();
    let err = record(
        &db,
        8,
        &[
            event(2, EventType::JobCreated, at(1)),
            event(1, EventType::JobCreated, at(2)),
        ],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, baton_domain::RepoError::Conflict(_)),
        "{err:?}"
    );
    assert_eq!(db.list_events(&filter(None, None, 10)).await.unwrap().1, 1);
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_events {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(events [
    appended_events_read_back_in_order_with_growing_seq,
    an_empty_log_has_seq_zero_and_a_change_without_events_keeps_it,
    events_after_pages_through_the_log_in_seq_order,
    list_events_is_newest_first_with_filters_and_a_total,
    list_events_is_newest_first_by_time_when_the_log_order_differs,
    a_duplicate_event_id_writes_none_of_the_batch,
        ] $($backend => $fixture),+);
    };
}
