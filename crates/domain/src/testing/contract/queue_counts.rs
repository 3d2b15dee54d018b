//! The queue counts (`count_items`, `list_queues`) stay exact through every kind of change an
//! item goes through, alone or with concurrent writers, and through folding
//! (`fold_queue_counts`). Each count is checked against the items themselves, listed by status.

// Helpers here are not `#[test]` functions, so clippy's test exemption does not reach them; a
// failed unwrap in a contract test is a failed assertion with a location.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use baton_domain::queue::{QueueItem, QueueItemStatus, QueueSettings, StatusCounts};
use baton_domain::robot::RobotId;
use futures_util::future::{join_all, join3};

use super::SharedStore;
use super::fixtures::{T0, at};
use super::queues::{item, queue};

fn robot(name: &str) -> RobotId {
    RobotId::parse(name).unwrap()
}

/// The counts of `name` per status, from its items.
async fn counted_from_items(db: &SharedStore, name: &str) -> StatusCounts {
    let mut counts = StatusCounts::default();
    for status in QueueItemStatus::ALL {
        let items = db
            .list_items(&queue(name), Some(status), None, 100_000, None)
            .await
            .unwrap();
        counts.add(status, items.len() as u64);
    }
    counts
}

/// Every queue's counts, as `count_items` and `list_queues` give them, equal the items'.
async fn assert_exact(db: &SharedStore, step: &str) {
    let listed: BTreeMap<String, StatusCounts> = db
        .list_queues()
        .await
        .unwrap()
        .into_iter()
        .map(|summary| (summary.queue.name.as_str().to_owned(), summary.counts))
        .collect();
    for (name, counts) in &listed {
        let expected = counted_from_items(db, name).await;
        assert_eq!(
            *counts, expected,
            "list_queues' counts of {name} after {step}"
        );
        let mut one_by_one = StatusCounts::default();
        for status in QueueItemStatus::ALL {
            one_by_one.add(status, db.count_items(&queue(name), status).await.unwrap());
        }
        assert_eq!(one_by_one, expected, "count_items of {name} after {step}");
    }
}

/// Stores a change made by `change` to the stored item.
async fn change(db: &SharedStore, stored: &QueueItem, change: impl FnOnce(&mut QueueItem)) {
    let mut item = db.get_item(stored.id()).await.unwrap();
    change(&mut item);
    db.update_item(&item).await.unwrap();
}

pub async fn counts_follow_every_kind_of_change(db: SharedStore) {
    db.save_queue_settings(&queue("empty"), &QueueSettings::default(), T0)
        .await
        .unwrap();
    assert_exact(&db, "creating an empty queue").await;

    // One item through the group commit, then a batch of the same kind, then a bulk insert.
    assert!(db.insert_each(&[item("q", 1, 0)]).await[0].is_ok());
    assert_exact(&db, "one item").await;
    let batch: Vec<QueueItem> = (2..40).map(|n| item("q", n, 0)).collect();
    assert!(db.insert_each(&batch).await.iter().all(Result::is_ok));
    let bulk: Vec<QueueItem> = (100..400)
        .map(|n| item(if n % 3 == 0 { "r" } else { "q" }, n, 1))
        .collect();
    db.insert_items(&bulk).await.unwrap();
    assert_exact(&db, "bulk inserts").await;

    // Claims, then reports: some DONE, some FAILED, one IN_PROGRESS again (no change of count).
    let claimed = db
        .claim_items(&queue("q"), &robot("r1"), at(10), 12)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 12);
    db.claim_items(&queue("r"), &robot("r2"), at(10), 5)
        .await
        .unwrap();
    assert_exact(&db, "claims").await;
    for (n, stored) in claimed.iter().enumerate().take(7) {
        let status = if n < 4 {
            QueueItemStatus::Done
        } else {
            QueueItemStatus::Failed
        };
        change(&db, stored, |i| i.set_status(status, None, at(11)).unwrap()).await;
    }
    change(&db, &claimed[7], |i| {
        i.set_status(
            QueueItemStatus::InProgress,
            Some("still working".into()),
            at(11),
        )
        .unwrap();
    })
    .await;
    assert_exact(&db, "reports").await;

    // A fold moves nothing between counts; with nothing written since, a second has nothing.
    db.fold_queue_counts(10_000).await.unwrap();
    assert_exact(&db, "a fold").await;
    assert_eq!(db.fold_queue_counts(10_000).await.unwrap(), 0);

    // Lapsed leases: back to NEW while retries remain, else ABANDONED.
    let expired = db.expired_item_leases(at(100_000), 100).await.unwrap();
    assert_eq!(
        expired.len(),
        5 + 5,
        "the claims not reported, in both queues"
    );
    for (n, stored) in expired.iter().enumerate() {
        let max_retries = if n % 2 == 0 { 3 } else { 0 };
        change(&db, stored, |i| {
            i.expire_lease(max_retries, at(100_000)).unwrap()
        })
        .await;
    }
    assert_exact(&db, "lease recovery").await;

    // An operator retries a FAILED item and gives up on a NEW one.
    change(&db, &claimed[5], |i| {
        i.set_status(QueueItemStatus::New, None, at(200_000))
            .unwrap();
    })
    .await;
    let new = db
        .list_items(&queue("r"), Some(QueueItemStatus::New), None, 1, None)
        .await
        .unwrap();
    change(&db, &new[0], |i| {
        i.set_status(QueueItemStatus::Abandoned, None, at(200_000))
            .unwrap();
    })
    .await;
    assert_exact(&db, "operator changes").await;

    // Folding a little at a time never shows a count twice or not at all.
    for _ in 0..40 {
        db.fold_queue_counts(1).await.unwrap();
        assert_exact(&db, "a fold of one change").await;
    }
    db.fold_queue_counts(10_000).await.unwrap();
    assert_exact(&db, "the last fold").await;
}

pub async fn concurrent_writers_keep_counts_exact(db: SharedStore) {
    db.insert_items(&(0..200).map(|n| item("busy", n, 0)).collect::<Vec<_>>())
        .await
        .unwrap();
    // Writers of single items, claimers that report what they claim, and folds, all at once.
    let writers = (0..4u128).map(|w| {
        let db = db.clone();
        async move {
            for n in 0..40 {
                let outcome = db
                    .insert_each(&[item("busy", 1_000 + w * 100 + n, 1)])
                    .await;
                assert!(outcome[0].is_ok(), "{outcome:?}");
            }
        }
    });
    let claimers = (0..3).map(|c| {
        let db = db.clone();
        async move {
            for round in 0..15 {
                let claimed = db
                    .claim_items(&queue("busy"), &robot(&format!("r{c}")), at(5), 4)
                    .await
                    .unwrap();
                for (n, stored) in claimed.iter().enumerate() {
                    let status = if (n + round) % 3 == 0 {
                        QueueItemStatus::Failed
                    } else {
                        QueueItemStatus::Done
                    };
                    change(&db, stored, |i| i.set_status(status, None, at(6)).unwrap()).await;
                }
            }
        }
    });
    let folder = {
        let db = db.clone();
        async move {
            for _ in 0..30 {
                db.fold_queue_counts(3).await.unwrap();
                yield_once().await;
            }
        }
    };
    join3(join_all(writers), join_all(claimers), folder).await;
    assert_exact(&db, "concurrent writers").await;
    let counts = counted_from_items(&db, "busy").await;
    let total = counts.new + counts.in_progress + counts.done + counts.failed + counts.abandoned;
    assert_eq!(total, 200 + 4 * 40);
    db.fold_queue_counts(10_000).await.unwrap();
    assert_exact(&db, "concurrent writers, folded").await;
}

/// Lets the other futures of a `join!` run between two folds.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_queue_counts {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(queue_counts [
    counts_follow_every_kind_of_change,
    concurrent_writers_keep_counts_exact,
        ] $($backend => $fixture),+);
    };
}
