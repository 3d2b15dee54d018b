//! The storage contract suite on SQLite and on PostgreSQL, each test on a fresh database of its
//! own: the ports' promises, shared with every other implementation of the ports in
//! `baton_domain::testing::contract`, and the tests of what only the databases do (migrations,
//! what a query makes PostgreSQL read).
// Test helpers outside `#[test]` functions may unwrap too: a panic is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use baton_domain::testing::contract::Fixture;
use baton_storage::Db;
use baton_storage::testing::TestDatabase;

baton_domain::contract_suite!(
    sqlite => async {
        let database = TestDatabase::sqlite().await;
        Fixture::new(database.connect().await).keeping(database)
    },
    postgres => async {
        let database = TestDatabase::postgres().await;
        Fixture::new(database.connect().await).keeping(database)
    },
);

/// Generates, for each named `async fn name(db: Db)` of the calling module, one test per backend:
/// `<module>::sqlite::name` and `<module>::postgres::name`. For what only the database handle
/// does; the ports' promises are in the shared suite above.
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

mod claim_reads;
mod failure_statements;
mod index_reads;
mod listing_reads;
mod migrations;
mod poisoned_batches;
mod queue_count_paths;
mod sqlite_plans;
mod stored_names;
mod trigger_reads;

/// Keeps `Db` in scope for the modules' signatures.
#[allow(dead_code)]
type Handle = Db;
