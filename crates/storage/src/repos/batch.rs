//! Multi-row INSERTs on both backends. diesel-async executes a batch insert on PostgreSQL, but
//! on SQLite diesel implements it only for synchronous connections, so there it runs on the
//! wrapped connection (inside whatever transaction the wrapper has open).

use std::future::Future;

use diesel::QueryResult;
use diesel::SqliteConnection;
use diesel::pg::Pg;
use diesel::query_builder::{QueryFragment, QueryId};
use diesel_async::AsyncPgConnection;

use crate::db::SqliteConn;

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
