//! PostgreSQL only: how often an index was walked and how many of its entries were read, by
//! PostgreSQL's own statistics. Counting entries is exact, unlike timing, so a plan that reads
//! more than it should is found by a test and not only by a benchmark.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

#[derive(QueryableByName, Debug)]
pub struct IndexReads {
    #[diesel(sql_type = BigInt)]
    pub scans: i64,
    #[diesel(sql_type = BigInt)]
    pub entries: i64,
}

/// The walks (`idx_scan`) and entries read (`idx_tup_read`) of `index` in the database at
/// `url`, once at least `scans` walks are counted (or after about ten seconds, whatever then).
/// Every other backend of the database is ended first: a backend writes its statistics when
/// it exits, an idle one only every ten seconds.
pub async fn index_reads(url: &str, index: &str, scans: i64) -> IndexReads {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    conn.batch_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await
    .unwrap();
    let mut reads = IndexReads {
        scans: 0,
        entries: 0,
    };
    for _ in 0..100 {
        conn.batch_execute("SELECT pg_stat_clear_snapshot()")
            .await
            .unwrap();
        reads = diesel::sql_query(
            "SELECT idx_scan AS scans, idx_tup_read AS entries FROM pg_stat_user_indexes \
             WHERE indexrelname = $1",
        )
        .bind::<Text, _>(index)
        .get_result(&mut conn)
        .await
        .unwrap();
        if reads.scans >= scans {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    reads
}
