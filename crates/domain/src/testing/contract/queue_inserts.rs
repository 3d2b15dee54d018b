//! `QueueRepository::insert_each`: every item answered on its own, also when the adapter writes
//! the items of concurrent calls in one transaction (group commit).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};

use super::SharedStore;
use baton_domain::RepoError;
use futures_util::future::join_all;

use super::queues::{item, queue, total_items, unique_settings, with_reference};

fn is_conflict(outcome: &Result<(), RepoError>) -> bool {
    matches!(outcome, Err(RepoError::Conflict(_)))
}

pub async fn insert_each_of_nothing_answers_nothing(db: SharedStore) {
    assert!(db.insert_each(&[]).await.is_empty());
}

pub async fn insert_each_refuses_only_the_items_whose_reference_is_taken(db: SharedStore) {
    db.save_queue_settings(&queue("unique"), &unique_settings(), super::fixtures::T0)
        .await
        .unwrap();
    db.insert_items(&[with_reference(item("unique", 1, 0), "R-1")])
        .await
        .unwrap();
    let batch = [
        with_reference(item("unique", 2, 1), "R-1"), // stored already
        with_reference(item("unique", 3, 1), "R-2"),
        with_reference(item("unique", 4, 1), "R-2"), // named earlier in the batch
        item("unique", 5, 1),                        // no reference
        with_reference(item("plain", 6, 1), "R-1"),  // a queue without unique references
        with_reference(item("new-queue", 7, 1), "R-2"),
    ];
    let outcomes = db.insert_each(&batch).await;
    assert_eq!(outcomes.len(), batch.len());
    let refused: Vec<bool> = outcomes.iter().map(is_conflict).collect();
    assert_eq!(
        refused,
        [true, false, true, false, false, false],
        "{outcomes:?}"
    );
    assert!(outcomes.iter().all(|o| o.is_ok() || is_conflict(o)));

    for (item, outcome) in batch.iter().zip(&outcomes) {
        let stored = db.get_item(item.id()).await;
        match outcome {
            Ok(()) => assert_eq!(&stored.unwrap(), item),
            Err(_) => assert!(matches!(stored, Err(RepoError::NotFound(_))), "{stored:?}"),
        }
    }
    assert_eq!(total_items(&db, "unique").await, 3);
    // The queue first named by the batch exists now, with the default settings.
    assert!(
        !db.get_queue(&queue("new-queue"))
            .await
            .unwrap()
            .settings
            .unique_reference
    );
    // The reference stored by the batch is taken for later inserts too.
    let later = db
        .insert_each(&[with_reference(item("unique", 8, 2), "R-2")])
        .await;
    assert!(is_conflict(&later[0]), "{later:?}");
}

pub async fn insert_each_pins_an_existing_id_on_its_item_alone(db: SharedStore) {
    db.insert_items(&[item("q", 1, 0)]).await.unwrap();
    let outcomes = db
        .insert_each(&[item("q", 2, 1), item("q", 1, 1), item("q", 3, 1)])
        .await;
    assert!(outcomes[0].is_ok(), "{outcomes:?}");
    assert!(is_conflict(&outcomes[1]), "{outcomes:?}");
    assert!(outcomes[2].is_ok(), "{outcomes:?}");
    assert_eq!(total_items(&db, "q").await, 3);
}

pub async fn concurrent_single_inserts_each_get_their_own_outcome(db: SharedStore) {
    db.save_queue_settings(&queue("unique"), &unique_settings(), super::fixtures::T0)
        .await
        .unwrap();
    // 200 concurrent callers over 150 references: 50 references are named twice.
    let tasks: Vec<_> = (0..200u128)
        .map(|n| {
            let db = db.clone();
            let reference = format!("R-{}", n % 150);
            async move {
                let item = with_reference(item("unique", 1000 + n, 0), &reference);
                let mut outcomes = db.insert_each(std::slice::from_ref(&item)).await;
                assert_eq!(outcomes.len(), 1);
                (reference, item.id(), outcomes.remove(0))
            }
        })
        .collect();
    let mut wins: BTreeMap<String, usize> = BTreeMap::new();
    let mut stored_ids = HashSet::new();
    for task in join_all(tasks).await {
        let (reference, id, outcome) = task;
        match outcome {
            Ok(()) => {
                *wins.entry(reference).or_default() += 1;
                stored_ids.insert(id);
            }
            Err(RepoError::Conflict(_)) => {}
            Err(other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!(wins.len(), 150, "every reference is stored");
    assert!(wins.values().all(|n| *n == 1), "{wins:?}");
    assert_eq!(total_items(&db, "unique").await, 150);
    for id in stored_ids {
        db.get_item(id).await.unwrap();
    }
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_queue_inserts {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(queue_inserts [
    insert_each_of_nothing_answers_nothing,
    insert_each_refuses_only_the_items_whose_reference_is_taken,
    insert_each_pins_an_existing_id_on_its_item_alone,
    concurrent_single_inserts_each_get_their_own_outcome,
        ] $($backend => $fixture),+);
    };
}
