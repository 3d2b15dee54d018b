//! One client's queue item that the database refuses never fails another client's item written
//! in the same group-commit transaction (`POST /api/queue`): only its own caller gets the error,
//! and every other item is stored, exactly once.
//!
//! The refused item is built at the port, past the domain's rules (its fields are public, as an
//! embedder's adapter or an older server could build it): a message holding NUL, which
//! PostgreSQL itself refuses to store in text. SQLite stores NUL, so its test database is given
//! a trigger that refuses it the same way, in the database, as PostgreSQL does.
//!
//! The tests run on a current-thread runtime: every caller's item is on the group commit's
//! channel before its dispatcher first runs, so they are written as one batch.

use baton_domain::RepoError;
use baton_domain::ports::QueueRepository;
use baton_domain::queue::{QueueItem, QueueItemStatus};
use baton_domain::testing::contract::queues::{item, queue};
use baton_storage::Db;
use baton_storage::testing::TestDatabase;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use futures_util::future::join_all;

/// Honest callers around the poisoned one, as in the reported attack.
const HONEST: u128 = 16;

/// An item whose message holds NUL.
fn poisoned(n: u128) -> QueueItem {
    let mut item = item("q", n, 0);
    item.edit(|r| r.message = Some("x\0y".to_owned()));
    item
}

/// An honest item, with a message of its own.
fn honest(n: u128) -> QueueItem {
    let mut item = item("q", n, 0);
    item.edit(|r| r.message = Some(format!("honest {n}")));
    item
}

/// Makes SQLite refuse NUL in a queue item's message, as PostgreSQL does.
fn refuse_nul_like_postgres(database: &TestDatabase) {
    let path = database
        .url()
        .strip_prefix("sqlite://")
        .expect("a SQLite test database has a sqlite:// URL");
    let mut conn = diesel::SqliteConnection::establish(path).unwrap();
    conn.batch_execute(
        "CREATE TRIGGER refuse_nul BEFORE INSERT ON queue_items \
         WHEN instr(CAST(NEW.message AS BLOB), x'00') > 0 \
         BEGIN SELECT RAISE(ABORT, 'invalid byte sequence for encoding UTF8: 0x00'); END;",
    )
    .unwrap();
}

async fn sqlite() -> (TestDatabase, Db) {
    let database = TestDatabase::sqlite().await;
    refuse_nul_like_postgres(&database);
    let db = database.connect().await;
    (database, db)
}

async fn postgres() -> (TestDatabase, Db) {
    let database = TestDatabase::postgres().await;
    let db = database.connect().await;
    (database, db)
}

/// Each honest item is stored as it was given, the poisoned one not at all, and the queue holds
/// the honest items once each.
async fn assert_only_honest_items_stored(db: &Db, honest: &[QueueItem], poisoned: &QueueItem) {
    for item in honest {
        assert_eq!(&db.get_item(item.id()).await.unwrap(), item);
    }
    assert!(
        matches!(
            db.get_item(poisoned.id()).await,
            Err(RepoError::NotFound(_))
        ),
        "the poisoned item is not stored"
    );
    let stored = db
        .count_items(&queue("q"), QueueItemStatus::New)
        .await
        .unwrap();
    assert_eq!(stored, honest.len() as u64, "each honest item stored once");
}

/// Seventeen concurrent callers, one of them poisoned: the poisoned caller alone is refused.
async fn one_poisoned_caller_fails_no_other(db: Db) {
    let honest: Vec<QueueItem> = (1..=HONEST).map(honest).collect();
    let bad = poisoned(1000);
    let mut items = honest.clone();
    items.insert(items.len() / 2, bad.clone());
    let outcomes = join_all(items.iter().map(|item| {
        let db = db.clone();
        async move {
            let mut outcomes = db.insert_each(std::slice::from_ref(item)).await;
            assert_eq!(outcomes.len(), 1);
            (item.id(), outcomes.remove(0))
        }
    }))
    .await;
    for (id, outcome) in &outcomes {
        if *id == bad.id() {
            assert!(
                outcome.is_err(),
                "the poisoned item is refused: {outcome:?}"
            );
        } else {
            assert!(
                outcome.is_ok(),
                "an honest item is acknowledged: {outcome:?}"
            );
        }
    }
    assert_only_honest_items_stored(&db, &honest, &bad).await;
}

/// One caller's items are answered each on its own too: the poisoned one in the middle is
/// refused, the others before and after it are stored.
async fn one_poisoned_item_of_a_call_fails_no_other(db: Db) {
    let bad = poisoned(2000);
    let items = [honest(1), honest(2), bad.clone(), honest(3)];
    let outcomes = db.insert_each(&items).await;
    assert_eq!(outcomes.len(), items.len());
    let accepted: Vec<bool> = outcomes.iter().map(Result::is_ok).collect();
    assert_eq!(accepted, [true, true, false, true], "{outcomes:?}");
    assert_only_honest_items_stored(&db, &[honest(1), honest(2), honest(3)], &bad).await;
}

mod sqlite {
    #[tokio::test]
    async fn one_poisoned_caller_fails_no_other() {
        let (_database, db) = super::sqlite().await;
        super::one_poisoned_caller_fails_no_other(db).await;
    }

    #[tokio::test]
    async fn one_poisoned_item_of_a_call_fails_no_other() {
        let (_database, db) = super::sqlite().await;
        super::one_poisoned_item_of_a_call_fails_no_other(db).await;
    }
}

mod postgres {
    #[tokio::test]
    async fn one_poisoned_caller_fails_no_other() {
        let (_database, db) = super::postgres().await;
        super::one_poisoned_caller_fails_no_other(db).await;
    }

    #[tokio::test]
    async fn one_poisoned_item_of_a_call_fails_no_other() {
        let (_database, db) = super::postgres().await;
        super::one_poisoned_item_of_a_call_fails_no_other(db).await;
    }
}
