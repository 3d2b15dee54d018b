//! `QueueRepository`.

// Helpers here are not `#[test]` functions, so clippy's test exemption does not reach them; a
// failed unwrap in a contract test is a failed assertion with a location.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Instant;

use super::SharedStore;
use baton_domain::RepoError;
use baton_domain::Timestamp;
use baton_domain::ids::QueueItemId;
use baton_domain::ports::{ItemCursor, ReferenceMatch};
use baton_domain::queue::{
    ItemData, QueueItem, QueueItemRecord, QueueItemStatus, QueueName, QueueSettings, StatusCounts,
};
use baton_domain::robot::RobotId;
use futures_util::future::join_all;
use time::Duration;

use super::fixtures::{T0, at, uuid};

pub fn queue(name: &str) -> QueueName {
    QueueName::parse(name).unwrap()
}

fn robot(name: &str) -> RobotId {
    RobotId::parse(name).unwrap()
}

/// A NEW item of `queue_name` with id `n`, created `created` seconds after T0, no optional fields.
pub fn item(queue_name: &str, n: u128, created: i64) -> QueueItem {
    QueueItem::from_record(QueueItemRecord {
        id: QueueItemId::from_uuid(uuid(n)),
        queue_name: queue(queue_name),
        status: QueueItemStatus::New,
        data: None,
        reference: None,
        message: None,
        created_by: None,
        created_date: at(created),
        start_date: None,
        end_date: None,
        retry_count: 0,
        lease_expires_at: None,
        robot_id: None,
        updated_at: at(created),
        version: 0,
    })
}

pub fn with_reference(mut item: QueueItem, reference: &str) -> QueueItem {
    item.edit(|r| r.reference = Some(reference.to_owned()));
    item
}

/// Microseconds are kept by both backends: every timestamp here has some.
fn micros(t: Timestamp, us: i64) -> Timestamp {
    t + Duration::microseconds(us)
}

pub fn unique_settings() -> QueueSettings {
    QueueSettings::new(3, 60, true).unwrap()
}

/// What the domain says a claim does, with the version bump storage adds.
fn claimed(mut item: QueueItem, by: &str, now: Timestamp, lease_seconds: u32) -> QueueItem {
    item.claim(robot(by), now, lease_seconds).unwrap();
    item.edit(|r| r.version += 1);
    item
}

fn ids(items: &[QueueItem]) -> Vec<QueueItemId> {
    items.iter().map(|i| i.id()).collect()
}

pub async fn total_items(db: &SharedStore, name: &str) -> u64 {
    let mut total = 0;
    for status in QueueItemStatus::ALL {
        total += db.count_items(&queue(name), status).await.unwrap();
    }
    total
}

pub async fn an_unknown_queue_is_not_found(db: SharedStore) {
    let err = db.get_queue(&queue("nope")).await.unwrap_err();
    assert!(matches!(err, RepoError::NotFound(_)), "{err:?}");
}

pub async fn queue_settings_are_saved_and_replaced(db: SharedStore) {
    let first = QueueSettings::new(0, 1, true).unwrap();
    let saved = db
        .save_queue_settings(&queue("q"), &first, micros(T0, 1))
        .await
        .unwrap();
    assert_eq!(
        (saved.settings.clone(), saved.created_at),
        (first, micros(T0, 1))
    );
    let second = QueueSettings::new(100, 86_400, false).unwrap();
    let replaced = db
        .save_queue_settings(&queue("q"), &second, at(9))
        .await
        .unwrap();
    assert_eq!(replaced.settings, second);
    assert_eq!(replaced.created_at, micros(T0, 1), "creation time is kept");
    assert_eq!(db.get_queue(&queue("q")).await.unwrap(), replaced);
}

pub async fn items_read_back_with_every_field(db: SharedStore) {
    let full = QueueItem::from_record(QueueItemRecord {
        id: QueueItemId::from_uuid(uuid(1)),
        queue_name: queue("invoices"),
        status: QueueItemStatus::InProgress,
        data: Some(ItemData::parse(r#"{"n":1,"text":"ünïcode"}"#.to_owned()).unwrap()),
        reference: Some("INV-1".to_owned()),
        message: Some("working".to_owned()),
        created_by: Some("erp".to_owned()),
        created_date: micros(T0, 123_456),
        start_date: Some(micros(at(1), 1)),
        end_date: Some(micros(at(2), 999_999)),
        retry_count: 2,
        lease_expires_at: Some(micros(at(300), 42)),
        robot_id: Some(robot("robot-1")),
        updated_at: micros(at(3), 654_321),
        version: 7,
    });
    let bare = item("invoices", 2, 5);
    db.insert_items(&[full.clone(), bare.clone()])
        .await
        .unwrap();
    assert_eq!(db.get_item(full.id()).await.unwrap(), full);
    assert_eq!(db.get_item(bare.id()).await.unwrap(), bare);
    // The queue was created on first use, with default settings.
    let q = db.get_queue(&queue("invoices")).await.unwrap();
    assert_eq!(q.settings, QueueSettings::default());
}

pub async fn inserting_no_items_is_a_no_op(db: SharedStore) {
    db.insert_items(&[]).await.unwrap();
    assert!(db.list_queues().await.unwrap().is_empty());
}

pub async fn an_unknown_item_is_not_found(db: SharedStore) {
    let err = db
        .get_item(QueueItemId::from_uuid(uuid(404)))
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::NotFound(_)), "{err:?}");
}

pub async fn a_duplicate_item_id_conflicts_and_writes_nothing(db: SharedStore) {
    db.insert_items(&[item("q", 1, 0)]).await.unwrap();
    let err = db
        .insert_items(&[item("q", 2, 1), item("q", 1, 2)])
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert!(matches!(
        db.get_item(QueueItemId::from_uuid(uuid(2))).await,
        Err(RepoError::NotFound(_))
    ));
    assert_eq!(total_items(&db, "q").await, 1);
}

pub async fn a_reference_repeated_in_one_batch_conflicts_and_writes_nothing(db: SharedStore) {
    db.save_queue_settings(&queue("unique"), &unique_settings(), T0)
        .await
        .unwrap();
    let batch = [
        with_reference(item("unique", 1, 0), "R-1"),
        item("other", 2, 0),
        with_reference(item("unique", 3, 1), "R-1"),
    ];
    let err = db.insert_items(&batch).await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert_eq!(total_items(&db, "unique").await, 0);
    assert_eq!(total_items(&db, "other").await, 0);
    assert!(
        matches!(
            db.get_queue(&queue("other")).await,
            Err(RepoError::NotFound(_))
        ),
        "no queue was created either"
    );
    // The references were not taken by the failed batch.
    db.insert_items(&[with_reference(item("unique", 4, 2), "R-1")])
        .await
        .unwrap();
}

pub async fn a_reference_used_before_conflicts_and_writes_nothing(db: SharedStore) {
    db.save_queue_settings(&queue("unique"), &unique_settings(), T0)
        .await
        .unwrap();
    db.insert_items(&[with_reference(item("unique", 1, 0), "R-1")])
        .await
        .unwrap();
    let err = db
        .insert_items(&[
            with_reference(item("unique", 2, 1), "R-2"),
            with_reference(item("unique", 3, 2), "R-1"),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert!(matches!(
        db.get_item(QueueItemId::from_uuid(uuid(2))).await,
        Err(RepoError::NotFound(_))
    ));
    assert_eq!(total_items(&db, "unique").await, 1);
    // R-2 was not registered by the failed batch.
    db.insert_items(&[with_reference(item("unique", 4, 3), "R-2")])
        .await
        .unwrap();
}

pub async fn references_repeat_freely_where_uniqueness_is_not_asked(db: SharedStore) {
    db.save_queue_settings(&queue("unique"), &unique_settings(), T0)
        .await
        .unwrap();
    db.insert_items(&[
        // A queue without unique_reference.
        with_reference(item("plain", 1, 0), "R"),
        with_reference(item("plain", 2, 0), "R"),
        // Items without a reference in a unique queue.
        item("unique", 3, 0),
        item("unique", 4, 0),
        // One reference in a unique queue and in another queue.
        with_reference(item("unique", 5, 0), "R"),
    ])
    .await
    .unwrap();
    assert_eq!(total_items(&db, "plain").await, 2);
    assert_eq!(total_items(&db, "unique").await, 3);
}

pub async fn making_a_queue_unique_covers_the_references_it_already_has(db: SharedStore) {
    db.insert_items(&[with_reference(item("q", 1, 0), "R")])
        .await
        .unwrap();
    db.save_queue_settings(&queue("q"), &unique_settings(), at(1))
        .await
        .unwrap();
    let err = db
        .insert_items(&[with_reference(item("q", 2, 2), "R")])
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    // And no longer once uniqueness is turned off again.
    db.save_queue_settings(&queue("q"), &QueueSettings::default(), at(3))
        .await
        .unwrap();
    db.insert_items(&[with_reference(item("q", 3, 4), "R")])
        .await
        .unwrap();
    assert_eq!(total_items(&db, "q").await, 2);
}

pub async fn concurrent_inserts_of_one_reference_let_exactly_one_win(db: SharedStore) {
    db.save_queue_settings(&queue("unique"), &unique_settings(), T0)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8u128)
        .map(|n| {
            let db = db.clone();
            async move {
                db.insert_items(&[with_reference(item("unique", 100 + n, 0), "R")])
                    .await
            }
        })
        .collect();
    let mut wins = 0;
    for task in join_all(tasks).await {
        match task {
            Ok(()) => wins += 1,
            Err(RepoError::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(total_items(&db, "unique").await, 1);
}

pub async fn a_claim_takes_the_oldest_new_items_with_a_lease(db: SharedStore) {
    db.save_queue_settings(&queue("q"), &QueueSettings::new(3, 60, false).unwrap(), T0)
        .await
        .unwrap();
    let mut done = item("q", 1, 0);
    done.edit(|r| r.status = QueueItemStatus::Done);
    // Inserted out of order; 3 and 4 share a creation date, so the id decides between them.
    let items = [
        done,
        item("q", 5, 30),
        item("q", 4, 20),
        item("q", 3, 20),
        item("q", 2, 10),
        item("other", 6, 0),
    ];
    db.insert_items(&items).await.unwrap();
    let now = micros(at(100), 250);

    let first = db
        .claim_items(&queue("q"), &robot("robot-1"), now, 2)
        .await
        .unwrap();
    assert_eq!(
        first,
        [
            claimed(items[4].clone(), "robot-1", now, 60),
            claimed(items[3].clone(), "robot-1", now, 60)
        ]
    );
    assert_eq!(
        first[0].lease_expires_at(),
        Some(now + Duration::seconds(60))
    );
    assert_eq!(
        db.get_item(first[0].id()).await.unwrap(),
        first[0],
        "the claim is stored"
    );

    let second = db
        .claim_items(&queue("q"), &robot("robot-2"), now, 10)
        .await
        .unwrap();
    assert_eq!(
        second,
        [
            claimed(items[2].clone(), "robot-2", now, 60),
            claimed(items[1].clone(), "robot-2", now, 60)
        ]
    );
    assert!(
        db.claim_items(&queue("q"), &robot("robot-3"), now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.get_item(items[0].id()).await.unwrap(),
        items[0],
        "a DONE item is never claimed"
    );
    assert_eq!(
        db.get_item(items[5].id()).await.unwrap(),
        items[5],
        "another queue's item is left alone"
    );
}

pub async fn a_claim_of_nothing_returns_nothing(db: SharedStore) {
    assert!(
        db.claim_items(&queue("unknown"), &robot("r"), T0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    db.insert_items(&[item("q", 1, 0)]).await.unwrap();
    assert!(
        db.claim_items(&queue("q"), &robot("r"), T0, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.count_items(&queue("q"), QueueItemStatus::New)
            .await
            .unwrap(),
        1
    );
}

pub async fn update_item_stores_every_change_and_bumps_the_version(db: SharedStore) {
    let original = with_reference(item("q", 1, 0), "R");
    db.insert_items(std::slice::from_ref(&original))
        .await
        .unwrap();
    let [mut claimed_item] = db
        .claim_items(&queue("q"), &robot("robot-1"), at(5), 1)
        .await
        .unwrap()
        .try_into()
        .unwrap();
    claimed_item
        .set_status(
            QueueItemStatus::Done,
            Some("all good".to_owned()),
            micros(at(6), 7),
        )
        .unwrap();
    claimed_item.edit(|r| r.data = Some(ItemData::parse("[1,2]".to_owned()).unwrap()));
    let stored = db.update_item(&claimed_item).await.unwrap();
    let mut expected = claimed_item.clone();
    expected.edit(|r| r.version += 1);
    assert_eq!(stored, expected);
    assert_eq!(db.get_item(original.id()).await.unwrap(), expected);

    // None clears a column: back to NEW drops the claim.
    let mut retried = stored;
    retried.edit(|r| r.status = QueueItemStatus::Failed);
    retried
        .set_status(QueueItemStatus::New, None, at(7))
        .unwrap();
    let stored = db.update_item(&retried).await.unwrap();
    assert_eq!(stored.robot_id(), None);
    assert_eq!(stored.start_date(), None);
    assert_eq!(stored.end_date(), None);
    assert_eq!(stored.version(), retried.version() + 1);
    assert_eq!(db.get_item(original.id()).await.unwrap(), stored);
}

pub async fn a_stale_update_item_conflicts(db: SharedStore) {
    let original = item("q", 1, 0);
    db.insert_items(std::slice::from_ref(&original))
        .await
        .unwrap();
    let mut first = original.clone();
    first.edit(|r| r.message = Some("first".to_owned()));
    let stored = db.update_item(&first).await.unwrap();
    let mut stale = original.clone();
    stale.edit(|r| r.message = Some("second".to_owned()));
    let err = db.update_item(&stale).await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert_eq!(db.get_item(original.id()).await.unwrap(), stored);
    // A claim bumps the version too, so an update read before it conflicts.
    db.claim_items(&queue("q"), &robot("r"), at(1), 1)
        .await
        .unwrap();
    assert!(matches!(
        db.update_item(&stored).await,
        Err(RepoError::Conflict(_))
    ));
}

pub async fn update_item_of_an_unknown_id_is_not_found(db: SharedStore) {
    let err = db.update_item(&item("q", 1, 0)).await.unwrap_err();
    assert!(matches!(err, RepoError::NotFound(_)), "{err:?}");
}

pub async fn counts_per_status_and_queue_summaries(db: SharedStore) {
    db.save_queue_settings(&queue("empty"), &QueueSettings::default(), T0)
        .await
        .unwrap();
    let mut items = Vec::new();
    for n in 0..4 {
        items.push(item("b-queue", n, 0));
    }
    for (n, status) in [
        (10, QueueItemStatus::Done),
        (11, QueueItemStatus::Done),
        (12, QueueItemStatus::Failed),
    ] {
        let mut i = item("b-queue", n, 0);
        i.edit(|r| r.status = status);
        items.push(i);
    }
    let mut abandoned = item("a-queue", 20, 0);
    abandoned.edit(|r| r.status = QueueItemStatus::Abandoned);
    items.push(abandoned);
    items.push(item("C-queue", 21, 0));
    db.insert_items(&items).await.unwrap();
    db.claim_items(&queue("b-queue"), &robot("r"), at(1), 1)
        .await
        .unwrap();

    assert_eq!(
        db.count_items(&queue("b-queue"), QueueItemStatus::New)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        db.count_items(&queue("b-queue"), QueueItemStatus::InProgress)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        db.count_items(&queue("b-queue"), QueueItemStatus::Done)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        db.count_items(&queue("nope"), QueueItemStatus::New)
            .await
            .unwrap(),
        0
    );

    let summaries = db.list_queues().await.unwrap();
    let names: Vec<&str> = summaries.iter().map(|s| s.queue.name.as_str()).collect();
    assert_eq!(
        names,
        ["C-queue", "a-queue", "b-queue", "empty"],
        "by name, byte order on both backends"
    );
    assert_eq!(
        summaries[0].counts,
        StatusCounts {
            new: 1,
            ..StatusCounts::default()
        }
    );
    assert_eq!(
        summaries[1].counts,
        StatusCounts {
            abandoned: 1,
            ..StatusCounts::default()
        }
    );
    assert_eq!(
        summaries[2].counts,
        StatusCounts {
            new: 3,
            in_progress: 1,
            done: 2,
            failed: 1,
            abandoned: 0
        }
    );
    assert_eq!(summaries[3].counts, StatusCounts::default());
    assert_eq!(
        summaries[3].queue,
        db.get_queue(&queue("empty")).await.unwrap()
    );
}

pub async fn list_items_is_newest_first_filtered_and_limited(db: SharedStore) {
    let mut items: Vec<QueueItem> = (1..=6)
        .map(|n| item("q", n, i64::try_from(n).unwrap()))
        .collect();
    items[1].edit(|r| r.status = QueueItemStatus::Done);
    items[3].edit(|r| r.status = QueueItemStatus::Done);
    items[0].edit(|r| r.reference = Some("INV-1".into()));
    items[2].edit(|r| r.reference = Some("INV-10".into()));
    items[4].edit(|r| r.reference = Some("inv-100".into()));
    items.push(item("other", 99, 100));
    db.insert_items(&items).await.unwrap();

    let all = db
        .list_items(&queue("q"), None, None, 100, None)
        .await
        .unwrap();
    assert_eq!(
        ids(&all),
        [6, 5, 4, 3, 2, 1].map(|n| QueueItemId::from_uuid(uuid(n)))
    );
    assert_eq!(all[0], items[5], "listed items carry every field");
    let done = db
        .list_items(&queue("q"), Some(QueueItemStatus::Done), None, 100, None)
        .await
        .unwrap();
    assert_eq!(ids(&done), [4, 2].map(|n| QueueItemId::from_uuid(uuid(n))));
    let exact = ReferenceMatch::Exact("INV-1".into());
    let one = db
        .list_items(&queue("q"), None, Some(exact), 100, None)
        .await
        .unwrap();
    assert_eq!(ids(&one), [QueueItemId::from_uuid(uuid(1))], "exact match");
    let prefix = ReferenceMatch::Prefix("INV-1".into());
    let two = db
        .list_items(&queue("q"), None, Some(prefix), 100, None)
        .await
        .unwrap();
    assert_eq!(
        ids(&two),
        [3, 1].map(|n| QueueItemId::from_uuid(uuid(n))),
        "a prefix matches letter case exactly"
    );
    let two = db
        .list_items(&queue("q"), None, None, 2, None)
        .await
        .unwrap();
    assert_eq!(ids(&two), [6, 5].map(|n| QueueItemId::from_uuid(uuid(n))));
    assert!(
        db.list_items(&queue("nope"), None, None, 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn list_items_paging_with_a_cursor_walks_every_item_once(db: SharedStore) {
    // 40 items over 10 distinct creation dates, so pages split ties, inserted in scrambled order.
    let mut items: Vec<QueueItem> = (0..40u128)
        .map(|n| {
            let mut i = item("q", (n * 7919) % 1000 + 1, i64::try_from(n % 10).unwrap());
            i.edit(|r| r.created_date = micros(r.created_date, 500));
            if n % 3 == 0 {
                i.edit(|r| r.status = QueueItemStatus::Failed);
            }
            i
        })
        .collect();
    db.insert_items(&items).await.unwrap();
    items.sort_by_key(|i| std::cmp::Reverse((i.created_date(), i.id())));

    for status in [None, Some(QueueItemStatus::Failed)] {
        let expected: Vec<QueueItemId> = items
            .iter()
            .filter(|i| status.is_none_or(|s| i.status() == s))
            .map(|i| i.id())
            .collect();
        let mut walked = Vec::new();
        let mut cursor = None;
        loop {
            let page = db
                .list_items(&queue("q"), status, None, 7, cursor)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            assert!(page.len() <= 7);
            cursor = Some(ItemCursor {
                created_date: last.created_date(),
                id: last.id(),
            });
            walked.extend(ids(&page));
        }
        assert_eq!(walked, expected, "status {status:?}");
    }
}

pub async fn expired_leases_are_in_progress_items_oldest_lease_first(db: SharedStore) {
    db.save_queue_settings(&queue("q"), &QueueSettings::new(3, 60, false).unwrap(), T0)
        .await
        .unwrap();
    db.insert_items(&[
        item("q", 1, 0),
        item("q", 2, 1),
        item("q", 3, 2),
        item("q", 4, 3),
    ])
    .await
    .unwrap();
    // Claimed at 10, 20, 30 and 40: leases end at 70, 80, 90 and 100.
    for (n, claimed_at) in [(1, 30), (2, 10), (3, 20), (4, 40)] {
        let [got] = db
            .claim_items(&queue("q"), &robot("r"), at(claimed_at), 1)
            .await
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(got.id(), QueueItemId::from_uuid(uuid(n)));
    }
    // Item 3 is finished: its lease no longer counts.
    let mut finished = db.get_item(QueueItemId::from_uuid(uuid(3))).await.unwrap();
    finished
        .set_status(QueueItemStatus::Done, None, at(50))
        .unwrap();
    db.update_item(&finished).await.unwrap();

    assert!(db.expired_item_leases(at(69), 10).await.unwrap().is_empty());
    let at_end = db.expired_item_leases(at(70), 10).await.unwrap();
    assert_eq!(
        ids(&at_end),
        [QueueItemId::from_uuid(uuid(2))],
        "a lease ends at its exact end"
    );
    let later = db.expired_item_leases(at(1000), 10).await.unwrap();
    assert_eq!(
        ids(&later),
        [2, 1, 4].map(|n| QueueItemId::from_uuid(uuid(n)))
    );
    assert_eq!(later[0], db.get_item(later[0].id()).await.unwrap());
    assert_eq!(db.expired_item_leases(at(1000), 2).await.unwrap().len(), 2);
}

pub async fn eight_claimers_drain_2000_items_exactly_once(db: SharedStore) {
    const ITEMS: u128 = 2000;
    let items: Vec<QueueItem> = (0..ITEMS)
        .map(|n| item("load", n + 1, i64::try_from(n % 50).unwrap()))
        .collect();
    let started = Instant::now();
    db.insert_items(&items).await.unwrap();
    let inserted = started.elapsed();

    let started = Instant::now();
    let claimers: Vec<_> = (0..8)
        .map(|c| {
            let db = db.clone();
            async move {
                let me = robot(&format!("robot-{c}"));
                let mut mine = Vec::new();
                loop {
                    let batch = db
                        .claim_items(&queue("load"), &me, at(100), 10)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    assert!(batch.len() <= 10);
                    for got in batch {
                        assert_eq!(got.robot_id(), Some(&me));
                        assert_eq!(got.status(), QueueItemStatus::InProgress);
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
    eprintln!("inserted {ITEMS} items in {inserted:?}, 8 claimers drained them in {drained:?}");

    let distinct: HashSet<QueueItemId> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "no item was claimed twice");
    let expected: HashSet<QueueItemId> = ids(&items).into_iter().collect();
    assert_eq!(distinct, expected, "every item was claimed");
    assert_eq!(
        db.count_items(&queue("load"), QueueItemStatus::InProgress)
            .await
            .unwrap(),
        2000
    );
    assert_eq!(
        db.count_items(&queue("load"), QueueItemStatus::New)
            .await
            .unwrap(),
        0
    );
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_queues {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(queues [
    an_unknown_queue_is_not_found,
    queue_settings_are_saved_and_replaced,
    items_read_back_with_every_field,
    inserting_no_items_is_a_no_op,
    an_unknown_item_is_not_found,
    a_duplicate_item_id_conflicts_and_writes_nothing,
    a_reference_repeated_in_one_batch_conflicts_and_writes_nothing,
    a_reference_used_before_conflicts_and_writes_nothing,
    references_repeat_freely_where_uniqueness_is_not_asked,
    making_a_queue_unique_covers_the_references_it_already_has,
    concurrent_inserts_of_one_reference_let_exactly_one_win,
    a_claim_takes_the_oldest_new_items_with_a_lease,
    a_claim_of_nothing_returns_nothing,
    update_item_stores_every_change_and_bumps_the_version,
    a_stale_update_item_conflicts,
    update_item_of_an_unknown_id_is_not_found,
    counts_per_status_and_queue_summaries,
    list_items_is_newest_first_filtered_and_limited,
    list_items_paging_with_a_cursor_walks_every_item_once,
    expired_leases_are_in_progress_items_oldest_lease_first,
    eight_claimers_drain_2000_items_exactly_once,
        ] $($backend => $fixture),+);
    };
}
