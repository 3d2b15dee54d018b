//! Baton's storage adapters: every port of `baton_domain::ports` implemented once, on a [`Db`]
//! that is either a PostgreSQL pool (diesel-async `AsyncPgConnection`) or a SQLite pool
//! (`SyncConnectionWrapper<SqliteConnection>`, bundled libsqlite3, WAL). Query code is written
//! once and expanded per backend by the `with_conn!`/`transaction!` macros; only the claims,
//! whose SQL must differ, are written twice.

pub mod db;
#[doc(hidden)]
pub mod error;
mod failure_batch;
mod group_commit;
mod migrations;
pub(crate) mod repos;
pub mod schema;
pub mod sql_types;
#[cfg(feature = "testing")]
pub mod testing;

pub use db::{Backend, ConnectOptions, Db, DbHealth, PoolStatus, StorageError};
