//! The database handle: one pool of either backend, chosen from the URL scheme.

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

/// Which database a [`Db`] talks to.
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

/// What `/health/detailed` reports about the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbHealth {
    pub healthy: bool,
    pub pool_size: usize,
    pub pool_free: usize,
    pub error: Option<String>,
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

pub(crate) enum Pools {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

/// The handle every storage port is implemented on. Cheap to clone: the pools are shared.
#[derive(Clone)]
pub struct Db {
    pub(crate) pools: std::sync::Arc<Pools>,
    /// The URL as opened, for migrations, which run on a connection of their own.
    url: std::sync::Arc<str>,
    /// Where single queue items are written together ([`crate::group_commit`]); `None` in the
    /// handle the group commit's own writers use.
    pub(crate) group_commit: Option<crate::group_commit::GroupCommit>,
    /// Where failed authentications are counted together ([`crate::failure_batch`]); `None` in
    /// the handle the batch's own writer uses.
    pub(crate) failure_batch: Option<crate::failure_batch::FailureBatch>,
    /// SQLite has one writer at a time: the write transactions of this handle (and its clones)
    /// take turns here, in order, rather than in SQLite's busy handler, which polls the lock
    /// with sleeps of up to 100 ms: writers then sleep while the lock is free, and the CPU
    /// idles. A write transaction must therefore not wait for another of the same handle
    /// inside it: it would wait here for ever, where SQLite's `busy_timeout` refused it after
    /// five seconds. Unused on PostgreSQL.
    pub(crate) sqlite_writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: only the backend is shown.
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
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

impl Db {
    /// Opens a pool for `url`: `sqlite://PATH` (the parent directory is created),
    /// `sqlite::memory:`, or `postgres://…`. Checks that a connection can be made.
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Db, StorageError> {
        let pools = match Target::parse(url)? {
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
        let mut db = Db {
            pools: std::sync::Arc::new(pools),
            url: url.into(),
            group_commit: None,
            failure_batch: None,
            sqlite_writer: std::sync::Arc::default(),
        };
        db.ping()
            .await
            .map_err(|e| StorageError::Connect(e.to_string()))?;
        // Both writers get a handle without batches of their own (see their `start`).
        let writers = db.clone();
        db.group_commit = Some(crate::group_commit::GroupCommit::start(writers.clone()));
        db.failure_batch = Some(crate::failure_batch::FailureBatch::start(writers));
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        match *self.pools {
            Pools::Pg(_) => Backend::Postgres,
            Pools::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies pending embedded migrations; safe to call on every start and from several
    /// servers at once (PostgreSQL serialises them with an advisory lock).
    pub async fn migrate(&self) -> Result<(), StorageError> {
        crate::migrations::run(self).await
    }

    /// The pool's occupancy, without touching the database.
    pub fn pool_status(&self) -> PoolStatus {
        let status = match &*self.pools {
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

    /// Pool occupancy and a round trip to the database.
    pub async fn health(&self) -> DbHealth {
        let status = match &*self.pools {
            Pools::Pg(pool) => pool.status(),
            Pools::Sqlite(pool) => pool.status(),
        };
        let in_use = status.size.saturating_sub(status.available);
        let (healthy, error) = match self.ping().await {
            Ok(()) => (true, None),
            Err(e) => (false, Some(e.to_string())),
        };
        DbHealth {
            healthy,
            pool_size: status.max_size,
            pool_free: status.max_size.saturating_sub(in_use),
            error,
        }
    }

    async fn ping(&self) -> Result<(), baton_domain::RepoError> {
        crate::with_conn!(self, |conn| {
            conn.batch_execute("SELECT 1").await?;
            Ok(())
        })
        .map_err(Into::into)
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }
}

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
            $crate::db::Pools::Pg(pool) => match pool.get().await {
                Ok(mut guard) => {
                    let $conn: &mut diesel_async::AsyncPgConnection = &mut *guard;
                    $crate::db::scoped(async { $body }).await
                }
                Err(e) => Err($crate::error::map_pool(e)),
            },
            $crate::db::Pools::Sqlite(pool) => match pool.get().await {
                Ok(mut guard) => {
                    let $conn: &mut $crate::db::SqliteConn = &mut *guard;
                    $crate::db::scoped(async { $body }).await
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
            $crate::db::Pools::Pg(pool) => match pool.get().await {
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
            $crate::db::Pools::Sqlite(pool) => match pool.get().await {
                Ok(mut guard) => {
                    // One writer at a time: see `Db::sqlite_writer`.
                    let _turn = $db.sqlite_writer.lock().await;
                    guard
                        .immediate_transaction(async |$conn: &mut $crate::db::SqliteConn| -> $crate::error::DbResult<_> {
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
