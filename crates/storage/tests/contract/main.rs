//! The storage contract suite: every port's promises, written once and run on SQLite and on
//! PostgreSQL, each test on a fresh database of its own.
// Test helpers outside `#[test]` functions may unwrap too: a panic is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_storage::Db;

/// Generates, for each named `async fn name(db: Db)` of the calling module, one test per backend:
/// `<module>::sqlite::name` and `<module>::postgres::name`.
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let database = baton_storage::testing::TestDatabase::sqlite().await;
                    super::$name(database.connect().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let database = baton_storage::testing::TestDatabase::postgres().await;
                    super::$name(database.connect().await).await;
                }
            )*
        }
    };
}

mod access_guard;
mod claim_reads;
mod events;
mod fixtures;
mod flows;
mod index_reads;
mod job_stats;
mod jobs;
mod listing_reads;
mod messages;
mod migrations;
mod queue_inserts;
mod queues;
mod robots;
mod sqlite_plans;
mod trigger_reads;
mod triggers;
mod users;
mod webhooks;
mod workflows;

/// Keeps `Db` in scope for the modules' signatures.
#[allow(dead_code)]
type Handle = Db;
