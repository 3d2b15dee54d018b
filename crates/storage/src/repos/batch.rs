//! Multi-row INSERTs on both backends. diesel-async executes a batch insert on PostgreSQL, but
//! on SQLite diesel implements it only for synchronous connections, so there it runs on the
//! wrapped connection (inside whatever transaction the wrapper has open).

use std::future::Future;

use diesel::QueryResult;
use diesel::SqliteConnection;
use diesel::pg::Pg;
use diesel::query_builder::{QueryFragment, QueryId};
use diesel_async::AsyncPgConnection;

use crate::pool::SqliteConn;

/// Executes an owned INSERT statement (typically `insert_into(t).values(vec_of_rows)`) on the
/// connection's backend; resolves to the number of rows written.
pub(crate) trait InsertMany<Q> {
    fn insert_many(&mut self, query: Q) -> impl Future<Output = QueryResult<usize>> + Send;
}

impl<Q> InsertMany<Q> for AsyncPgConnection
where
    Q: QueryFragment<Pg> + QueryId + Send + 'static,
{
    fn insert_many(&mut self, query: Q) -> impl Future<Output = QueryResult<usize>> + Send {
        diesel_async::RunQueryDsl::execute(query, self)
    }
}

impl<Q> InsertMany<Q> for SqliteConn
where
    Q: diesel::query_dsl::methods::ExecuteDsl<SqliteConnection> + Send + 'static,
{
    fn insert_many(&mut self, query: Q) -> impl Future<Output = QueryResult<usize>> + Send {
        self.spawn_blocking(move |conn| {
            diesel::query_dsl::methods::ExecuteDsl::execute(query, conn)
        })
    }
}

/// Runs an owned multi-row statement that returns rows (an `INSERT … RETURNING` of a `Vec` of
/// rows) on the connection's backend, for the same reason as [`InsertMany`].
pub(crate) trait LoadMany<Q, U> {
    fn load_many(&mut self, query: Q) -> impl Future<Output = QueryResult<Vec<U>>> + Send;
}

impl<Q, U> LoadMany<Q, U> for AsyncPgConnection
where
    Q: diesel_async::methods::LoadQuery<'static, AsyncPgConnection, U> + Send + 'static,
    U: Send + 'static,
{
    fn load_many(&mut self, query: Q) -> impl Future<Output = QueryResult<Vec<U>>> + Send {
        diesel_async::RunQueryDsl::get_results(query, self)
    }
}

impl<Q, U> LoadMany<Q, U> for SqliteConn
where
    Q: diesel::query_dsl::LoadQuery<'static, SqliteConnection, U> + Send + 'static,
    U: Send + 'static,
{
    fn load_many(&mut self, query: Q) -> impl Future<Output = QueryResult<Vec<U>>> + Send {
        self.spawn_blocking(move |conn| diesel::RunQueryDsl::get_results(query, conn))
    }
}

/// Appends events on `$conn` inside the caller's transaction (a no-op for none), on both
/// backends: diesel-async has no multi-row insert for SQLite, so the batch goes through
/// [`InsertMany`].
#[macro_export]
#[doc(hidden)]
macro_rules! append_event_rows {
    ($conn:expr, $events:expr) => {{
        let rows = $crate::repos::event_rows::NewEventRow::many($events);
        if !rows.is_empty() {
            $crate::repos::batch::InsertMany::insert_many(
                $conn,
                diesel::insert_into($crate::schema::events::table).values(rows),
            )
            .await?;
        }
    }};
}

/// Inserts `$rows` (a `Vec` of one table's insertable rows) on `$conn` inside the caller's
/// transaction (it may take several statements), with multi-row INSERTs of fixed sizes: 256, 64, 16, 4 and 1 rows, largest first.
/// diesel prepares a multi-row INSERT of a `Vec` anew each time (its text depends on the length),
/// so PostgreSQL parsed and planned every one: for an engine round's 500 jobs and 1,000 events,
/// about half the cost of inserting them, measured. A statement of each fixed size is prepared
/// once per connection and reused, provided the rows bind `None` as NULL rather than `DEFAULT`
/// (`treat_none_as_default_value = false`; a `DEFAULT` also stops the reuse). Evaluates to a
/// `QueryResult<()>`.
#[macro_export]
#[doc(hidden)]
macro_rules! insert_rows_sized {
    ($conn:expr, $table:expr, $rows:expr) => {
        async {
            let mut rows = $rows.into_iter();
            let mut left = rows.len();
            while left > 0 {
                $crate::insert_rows_sized!(@largest $conn, $table, rows, left; 256 64 16 4 1);
            }
            diesel::QueryResult::Ok(())
        }
        .await
    };
    (@largest $conn:expr, $table:expr, $rows:ident, $left:ident; $($n:literal)*) => {
        $(
            if $left >= $n {
                let chunk: Vec<_> = $rows.by_ref().take($n).collect();
                // `take` gave exactly $n rows, as `left` counts them, so the conversion holds.
                let Ok(chunk): Result<Box<[_; $n]>, _> = chunk.into_boxed_slice().try_into() else {
                    return Err(diesel::result::Error::QueryBuilderError(
                        "a chunk of rows came out of the wrong size".into(),
                    ));
                };
                $crate::repos::batch::InsertMany::insert_many(
                    $conn,
                    diesel::insert_into($table).values(chunk),
                )
                .await?;
                $left -= $n;
            } else
        )* {}
    };
}
