//! The connections of either backend: which database a URL names, a pool of its connections,
//! and the `with_conn!`/`transaction!` macros that run query code on whichever it is. This is
//! the lowest layer that touches a database; everything above reaches the database through it.

use std::path::Path;
use std::time::Duration;

use diesel::SqliteConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
pub(crate) type PgPool = Pool<AsyncPgConnection>;
pub(crate) type SqlitePool = Pool<SqliteConn>;

/// Which database a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open the pool.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Connections in the pool; by default 10 on PostgreSQL and 4 on SQLite (writers serialise
    /// there anyway, and readers share the WAL).
    pub pool_size: Option<usize>,
}

/// Why the database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database URL: {0}")]
    InvalidUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("migration failed: {0}")]
    Migration(String),
}

/// The connection pool's occupancy right now, as `/metrics` reports it. The numbers are a
/// snapshot that may be slightly off under load, which is enough for a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections the pool may hold.
    pub max_size: usize,
    /// Connections open now, idle or checked out.
    pub size: usize,
    /// Open connections idle in the pool.
    pub available: usize,
    /// Tasks waiting for a connection.
    pub waiting: usize,
}

/// A pool of connections of one backend.
pub(crate) enum Pools {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

impl Pools {
    /// Opens a pool for `target`: a SQLite file's parent directory is created; nothing is
    /// connected yet (the pool connects on first use).
    pub(crate) fn open(target: Target, options: &ConnectOptions) -> Result<Self, StorageError> {
        let pools = match target {
            Target::Postgres(url) => {
                let mut config = ManagerConfig::<AsyncPgConnection>::default();
                config.recycling_method = RecyclingMethod::Fast;
                let manager = AsyncDieselConnectionManager::new_with_config(url, config);
                let pool = Pool::builder(manager)
                    .max_size(options.pool_size.unwrap_or(10))
                    .wait_timeout(Some(Duration::from_secs(10)))
                    .create_timeout(Some(Duration::from_secs(10)))
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map_err(|e| StorageError::Connect(e.to_string()))?;
                Pools::Pg(pool)
            }
            Target::Sqlite(path) => {
                let memory = path == ":memory:";
                if !memory {
                    create_private_parent(Path::new(&path))?;
                }
                let mut config = ManagerConfig::<SqliteConn>::default();
                config.recycling_method = RecyclingMethod::Fast;
                config.custom_setup = Box::new(|url| {
                    async move {
                        let mut conn = SqliteConn::establish(url).await?;
                        conn.batch_execute(SQLITE_PRAGMAS)
                            .await
                            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                        Ok(conn)
                    }
                    .boxed()
                });
                let manager = AsyncDieselConnectionManager::new_with_config(path, config);
                // Each connection to ":memory:" would be a database of its own: keep exactly one.
                let size = if memory {
                    1
                } else {
                    options.pool_size.unwrap_or(4)
                };
                let pool = Pool::builder(manager)
                    .max_size(size)
                    .wait_timeout(Some(Duration::from_secs(10)))
                    .create_timeout(Some(Duration::from_secs(10)))
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map_err(|e| StorageError::Connect(e.to_string()))?;
                Pools::Sqlite(pool)
            }
        };
        Ok(pools)
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pools::Pg(_) => Backend::Postgres,
            Pools::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The pool's occupancy, without touching the database.
    pub(crate) fn status(&self) -> PoolStatus {
        let status = match self {
            Pools::Pg(pool) => pool.status(),
            Pools::Sqlite(pool) => pool.status(),
        };
        PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }
}

/// A parsed database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Postgres(String),
    /// A file path, or `:memory:`.
    Sqlite(String),
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(Self::Sqlite(":memory:".to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                StorageError::InvalidUrl(
                    "use sqlite://PATH, sqlite::memory: or postgres://…".to_owned(),
                )
            })?;
        if path.is_empty() {
            return Err(StorageError::InvalidUrl(
                "sqlite:// needs a file path".to_owned(),
            ));
        }
        Ok(Self::Sqlite(path.to_owned()))
    }
}

/// Per-connection SQLite settings. Order matters: `busy_timeout` first, or switching the journal
/// mode can itself fail with "database is locked" while another connection holds the file.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// Creates the database file's directory if needed. A directory Baton creates is private to its
/// user (0700 on Unix): the database holds password and key hashes.
fn create_private_parent(path: &Path) -> Result<(), StorageError> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.exists() {
        return Ok(());
    }
    let cannot = |e: std::io::Error| {
        StorageError::Connect(format!("cannot create {}: {e}", parent.display()))
    };
    std::fs::create_dir_all(parent).map_err(cannot)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700)).map_err(cannot)?;
    }
    Ok(())
}

/// Gives a macro body its own `?` scope with the adapter's error type.
#[doc(hidden)]
pub async fn scoped<T>(
    body: impl std::future::Future<Output = crate::error::DbResult<T>>,
) -> crate::error::DbResult<T> {
    body.await
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend this is. The body
/// is expanded once per backend, so each expansion type-checks against its own connection type.
/// Evaluates to the body's `DbResult`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {{
        match $db.pools() {
            $crate::pool::Pools::Pg(pool) => match pool.get().await {
                Ok(mut guard) => {
                    let $conn: &mut diesel_async::AsyncPgConnection = &mut *guard;
                    $crate::pool::scoped(async { $body }).await
                }
                Err(e) => Err($crate::error::map_pool(e)),
            },
            $crate::pool::Pools::Sqlite(pool) => match pool.get().await {
                Ok(mut guard) => {
                    let $conn: &mut $crate::pool::SqliteConn = &mut *guard;
                    $crate::pool::scoped(async { $body }).await
                }
                Err(e) => Err($crate::error::map_pool(e)),
            },
        }
    }};
}

/// Like [`with_conn!`], inside one transaction: `BEGIN` on PostgreSQL, `BEGIN IMMEDIATE` on
/// SQLite (a deferred transaction that reads then writes can fail to upgrade its lock). The body
/// is an expression of type `DbResult<T>`; an `Err` rolls back.
#[macro_export]
#[doc(hidden)]
macro_rules! transaction {
    ($db:expr, |$conn:ident| $body:expr) => {{
        match $db.pools() {
            $crate::pool::Pools::Pg(pool) => match pool.get().await {
                Ok(mut guard) => {
                    use diesel_async::AsyncConnection as _;
                    // Called on the connection, not the pool guard (which is a connection too,
                    // but of a different type than the closure's argument).
                    let inner: &mut diesel_async::AsyncPgConnection = &mut *guard;
                    inner
                        .transaction(async |$conn: &mut diesel_async::AsyncPgConnection| -> $crate::error::DbResult<_> {
                            $body
                        })
                        .await
                }
                Err(e) => Err($crate::error::map_pool(e)),
            },
            $crate::pool::Pools::Sqlite(pool) => match pool.get().await {
                Ok(mut guard) => {
                    // One writer at a time: see `Db::sqlite_writer`.
                    let _turn = $db.sqlite_writer.lock().await;
                    guard
                        .immediate_transaction(async |$conn: &mut $crate::pool::SqliteConn| -> $crate::error::DbResult<_> {
                            $body
                        })
                        .await
                }
                Err(e) => Err($crate::error::map_pool(e)),
            },
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend() {
        assert_eq!(
            Target::parse("postgres://u@h/db").unwrap(),
            Target::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            Target::parse("postgresql://h/db").unwrap(),
            Target::Postgres("postgresql://h/db".into())
        );
        assert_eq!(
            Target::parse("sqlite://./baton-data/baton.db").unwrap(),
            Target::Sqlite("./baton-data/baton.db".into())
        );
        assert_eq!(
            Target::parse("sqlite:///var/lib/baton.db").unwrap(),
            Target::Sqlite("/var/lib/baton.db".into())
        );
        assert_eq!(
            Target::parse("sqlite::memory:").unwrap(),
            Target::Sqlite(":memory:".into())
        );
        assert!(Target::parse("mysql://h/db").is_err());
        assert!(Target::parse("sqlite://").is_err());
    }
}
