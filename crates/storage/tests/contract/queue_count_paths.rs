//! The queue counts are kept by the database, so they follow changes no Rust code makes: an
//! operator's SQL, a queue's deletion and its cascade, and on PostgreSQL a TRUNCATE. The ports'
//! own changes are in the shared suite (`baton_domain::testing::contract::queue_counts`).

use baton_domain::ports::QueueRepository;
use baton_domain::queue::{QueueItem, QueueItemStatus, StatusCounts};
use baton_domain::robot::RobotId;
use baton_domain::testing::contract::fixtures::at;
use baton_domain::testing::contract::queues::{item, queue};
use baton_storage::Db;
use baton_storage::testing::TestDatabase;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

/// Runs `sql` on the test database outside the server's code.
async fn execute(database: &TestDatabase, sql: &str) {
    match database.url().strip_prefix("sqlite://") {
        Some(path) => {
            let mut conn = diesel::SqliteConnection::establish(path).unwrap();
            conn.batch_execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                .unwrap();
            conn.batch_execute(sql).unwrap();
        }
        None => {
            let mut conn = AsyncPgConnection::establish(database.url()).await.unwrap();
            conn.batch_execute(sql).await.unwrap();
        }
    }
}

async fn counts(db: &Db, name: &str) -> StatusCounts {
    let mut counts = StatusCounts::default();
    for status in QueueItemStatus::ALL {
        counts.add(status, db.count_items(&queue(name), status).await.unwrap());
    }
    counts
}

async fn listed(db: &Db, name: &str) -> Option<StatusCounts> {
    db.list_queues()
        .await
        .unwrap()
        .into_iter()
        .find(|summary| summary.queue.name.as_str() == name)
        .map(|summary| summary.counts)
}

fn new_items(name: &str, from: u128, n: u128) -> Vec<QueueItem> {
    (from..from + n).map(|i| item(name, i, 0)).collect()
}

async fn counts_follow_changes_made_in_sql(database: TestDatabase) {
    let db = database.connect().await;
    db.insert_items(&new_items("gone", 0, 30)).await.unwrap();
    db.insert_items(&new_items("kept", 100, 20)).await.unwrap();
    let robot = RobotId::parse("r").unwrap();
    db.claim_items(&queue("kept"), &robot, at(1), 5)
        .await
        .unwrap();

    execute(
        &database,
        "UPDATE queue_items SET status = 'DONE' \
         WHERE queue_name = 'kept' AND status = 'IN_PROGRESS'; \
         DELETE FROM queue_items WHERE id IN (SELECT id FROM queue_items \
         WHERE queue_name = 'kept' AND status = 'NEW' ORDER BY id LIMIT 3);",
    )
    .await;
    let kept = StatusCounts {
        new: 12,
        done: 5,
        ..StatusCounts::default()
    };
    assert_eq!(counts(&db, "kept").await, kept);
    assert_eq!(listed(&db, "kept").await, Some(kept));
    db.fold_queue_counts(10_000).await.unwrap();
    assert_eq!(counts(&db, "kept").await, kept, "after a fold");

    // A deleted queue takes its items and their counts with it; made again, it counts afresh,
    // whether or not a fold ran in between.
    execute(&database, "DELETE FROM queues WHERE name = 'gone';").await;
    assert_eq!(listed(&db, "gone").await, None);
    assert_eq!(counts(&db, "gone").await, StatusCounts::default());
    db.insert_items(&new_items("gone", 1_000, 2)).await.unwrap();
    let again = StatusCounts {
        new: 2,
        ..StatusCounts::default()
    };
    assert_eq!(counts(&db, "gone").await, again);
    assert_eq!(listed(&db, "gone").await, Some(again));
    db.fold_queue_counts(10_000).await.unwrap();
    assert_eq!(listed(&db, "gone").await, Some(again), "after a fold");
    execute(&database, "DELETE FROM queues WHERE name = 'gone';").await;
    db.fold_queue_counts(10_000).await.unwrap();
    db.insert_items(&new_items("gone", 2_000, 1)).await.unwrap();
    assert_eq!(counts(&db, "gone").await.new, 1, "deleted after a fold");
    assert_eq!(counts(&db, "kept").await, kept, "another queue's deletion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    counts_follow_changes_made_in_sql(TestDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    counts_follow_changes_made_in_sql(TestDatabase::postgres().await).await;
    // Still on PostgreSQL: TRUNCATE, which runs no row or DELETE trigger, empties the counts.
    let database = TestDatabase::postgres().await;
    let db = database.connect().await;
    db.insert_items(&new_items("q", 0, 7)).await.unwrap();
    execute(&database, "TRUNCATE queue_items CASCADE;").await;
    assert_eq!(counts(&db, "q").await, StatusCounts::default());
    db.insert_items(&new_items("q", 100, 3)).await.unwrap();
    assert_eq!(counts(&db, "q").await.new, 3);
}
