//! PostgreSQL only: what a flood of failed authentications costs the database, counted by a
//! statement-level trigger inside it.

use baton_domain::ports::AccessGuardRepository;
use baton_domain::ports::FailureKind::Key;
use baton_domain::testing::contract::fixtures::at;
use baton_storage::testing::TestDatabase;
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

#[derive(QueryableByName)]
struct Statements {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// PostgreSQL only, where several servers share the database and each commit costs the most: a
/// flood of failures from as many addresses is counted in far fewer statements than failures.
/// A statement-level trigger counts the INSERTs into `auth_failures`, exactly, in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_failures_from_many_addresses_costs_few_statements() {
    const FLOOD: usize = 300;
    let database = TestDatabase::postgres().await;
    let db = database.connect().await;
    let mut conn = AsyncPgConnection::establish(database.url()).await.unwrap();
    conn.batch_execute(
        "CREATE TABLE failure_statements (n BIGINT NOT NULL); \
         INSERT INTO failure_statements VALUES (0); \
         CREATE FUNCTION count_failure_statement() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN UPDATE failure_statements SET n = n + 1; RETURN NULL; END $$; \
         CREATE TRIGGER count_failure_statements AFTER INSERT ON auth_failures \
         FOR EACH STATEMENT EXECUTE FUNCTION count_failure_statement();",
    )
    .await
    .unwrap();
    let tasks: Vec<_> = (0..FLOOD)
        .map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                let ip = format!("10.{}.{}.1", n / 256, n % 256);
                db.record_auth_failure(&ip, Key, at(1), at(0))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 1, "each address failed once");
    }
    let statements: Statements = diesel::sql_query("SELECT n FROM failure_statements")
        .get_result(&mut conn)
        .await
        .unwrap();
    let stored: Statements = diesel::sql_query("SELECT count(*) AS n FROM auth_failures")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored.n, FLOOD as i64, "every failure is counted");
    assert!(
        statements.n >= 1 && statements.n <= (FLOOD / 10) as i64,
        "{} statements for {FLOOD} failures",
        statements.n
    );
}
