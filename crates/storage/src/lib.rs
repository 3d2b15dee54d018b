//! Baton's storage adapters: every port of `baton_domain::ports` implemented once, on a [`Db`]
//! that is either a PostgreSQL pool (diesel-async `AsyncPgConnection`) or a SQLite pool
//! (`SyncConnectionWrapper<SqliteConnection>`, bundled libsqlite3, WAL). Query code is written
//! once and expanded per backend by the `with_conn!`/`transaction!` macros; only the claims,
//! whose SQL must differ, are written twice.
//!
//! Modules import downward only, from the bottom: `error`, `schema` and `sql_types` (no
//! imports of this crate); `pool` (the connections and the macros); `migrations`,
//! `group_commit` and `failure_batch` (each on a pool or a writer it is handed); `db` (the
//! handle); `repos` (the ports on the handle); `connect` (opening a handle, which wires the
//! repositories into the group commit and the failure batch); `testing`.

mod connect;
pub mod db;
#[doc(hidden)]
pub mod error;
mod failure_batch;
mod group_commit;
mod migrations;
pub mod pool;
pub(crate) mod repos;
pub mod schema;
pub mod sql_types;
#[cfg(feature = "testing")]
pub mod testing;

pub use db::{Db, DbHealth};
pub use pool::{Backend, ConnectOptions, PoolStatus, StorageError};
