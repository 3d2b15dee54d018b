//! Items per queue and status, read from the counts the database keeps (migration
//! `queue_counts`) instead of counting the items: a few rows to read at any number of items.
//!
//! - PostgreSQL: a count is its row of `queue_counts` plus its rows of `queue_count_deltas`, the
//!   changes that statement-level triggers on `queue_items` append. Both are read by one
//!   statement, so with one snapshot: a fold that commits meanwhile is seen whole or not at
//!   all, and every delta is in the same transaction as the item change it counts.
//! - SQLite: row-level triggers keep `queue_counts` itself up to date; a count is its row.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db::Db;
use crate::error::{DbResult, map_pool};
use crate::pool::{Backend, Pools};

/// Every queue's counts per status: (queue, status, items).
const ALL_PG: &str = "\
    SELECT queue_name, status, CAST(sum(items) AS BIGINT) AS items FROM ( \
        SELECT queue_name, status, items FROM queue_counts \
        UNION ALL \
        SELECT queue_name, status, delta FROM queue_count_deltas \
    ) AS counted \
    GROUP BY queue_name, status";
const ALL_SQLITE: &str = "SELECT queue_name, status, items FROM queue_counts";

/// One queue's count of one status.
const ONE_PG: &str = "\
    SELECT CAST(COALESCE(sum(items), 0) AS BIGINT) AS items FROM ( \
        SELECT items FROM queue_counts WHERE queue_name = $1 AND status = $2 \
        UNION ALL \
        SELECT delta FROM queue_count_deltas WHERE queue_name = $1 AND status = $2 \
    ) AS counted";
const ONE_SQLITE: &str = "\
    SELECT COALESCE(sum(items), 0) AS items FROM queue_counts \
    WHERE queue_name = ? AND status = ?";

/// Moves at most `$1` deltas into `queue_counts` in one statement, so a reader sees them in one
/// place or the other, never both nor neither. The deltas are chosen by an uncorrelated
/// `ARRAY(subselect)`, evaluated once (as `id IN (subselect)` a nested loop might rescan it and
/// take more than the limit); `SKIP LOCKED` lets a concurrent fold (another server) take other
/// deltas instead of waiting, and a delta it deleted first is not returned here, so each delta
/// is added once. Returns how many deltas were folded.
const FOLD_PG: &str = "\
    WITH folded AS ( \
        DELETE FROM queue_count_deltas \
        WHERE id = ANY (ARRAY( \
            SELECT id FROM queue_count_deltas ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED \
        )) \
        RETURNING queue_name, status, delta \
    ), sums AS ( \
        SELECT queue_name, status, CAST(sum(delta) AS BIGINT) AS items, count(*) AS changes \
        FROM folded GROUP BY queue_name, status \
    ), stored AS ( \
        INSERT INTO queue_counts (queue_name, status, items) \
        SELECT queue_name, status, items FROM sums \
        ON CONFLICT (queue_name, status) \
        DO UPDATE SET items = queue_counts.items + EXCLUDED.items \
    ) \
    SELECT CAST(COALESCE(sum(changes), 0) AS BIGINT) AS items FROM sums";

/// Forgets the zero counts of deleted queues (their cascade's deltas, once folded, leave them at
/// zero). A zero adds nothing to a sum, so this changes no count, whatever runs meanwhile.
const FORGET_DELETED_PG: &str = "\
    DELETE FROM queue_counts AS c \
    WHERE c.items = 0 AND NOT EXISTS (SELECT 1 FROM queues AS q WHERE q.name = c.queue_name)";

#[derive(QueryableByName)]
pub(super) struct CountRow {
    #[diesel(sql_type = Text)]
    pub queue_name: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = BigInt)]
    pub items: i64,
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    items: i64,
}

/// Every queue's counts per status, as [`CountRow`]s; a queue and status without items may be
/// missing or 0.
pub(super) fn all_counts_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => ALL_PG,
        Backend::Sqlite => ALL_SQLITE,
    }
}

impl Db {
    /// How many items of `queue` have `status`.
    pub(super) async fn stored_count(&self, queue: &str, status: &str) -> DbResult<i64> {
        let sql = match self.backend() {
            Backend::Postgres => ONE_PG,
            Backend::Sqlite => ONE_SQLITE,
        };
        let rows: Vec<Number> = crate::with_conn!(self, |conn| {
            Ok(diesel::sql_query(sql)
                .bind::<Text, _>(queue)
                .bind::<Text, _>(status)
                .load(conn)
                .await?)
        })?;
        // An aggregate without GROUP BY always returns its one row.
        Ok(rows.into_iter().next().map_or(0, |row| row.items))
    }

    /// Folds at most `limit` deltas (PostgreSQL; SQLite keeps no deltas) and returns how many.
    pub(super) async fn fold_counts(&self, limit: u32) -> DbResult<i64> {
        let Pools::Pg(pool) = self.pools() else {
            return Ok(0);
        };
        let mut guard = pool.get().await.map_err(map_pool)?;
        let conn: &mut AsyncPgConnection = &mut guard;
        conn.transaction(async |conn: &mut AsyncPgConnection| -> DbResult<i64> {
            let folded: Vec<Number> = diesel::sql_query(FOLD_PG)
                .bind::<BigInt, _>(i64::from(limit))
                .load(conn)
                .await?;
            diesel::sql_query(FORGET_DELETED_PG).execute(conn).await?;
            Ok(folded.into_iter().next().map_or(0, |row| row.items))
        })
        .await
    }
}
