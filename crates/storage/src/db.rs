//! The database handle every storage port is implemented on: the pools, the group commit of
//! single queue items, and what the server asks of the database as a whole (migrations, health).
//! Opening one is [`Db::connect`], in the `connect` module above the repositories.

use std::sync::Arc;

use diesel_async::SimpleAsyncConnection;

use crate::group_commit::GroupCommit;
use crate::pool::{Backend, PoolStatus, Pools, StorageError, Target};

/// What `/health/detailed` reports about the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbHealth {
    pub healthy: bool,
    pub pool_size: usize,
    pub pool_free: usize,
    pub error: Option<String>,
}

/// The handle every storage port is implemented on. Cheap to clone: the pools are shared.
#[derive(Clone)]
pub struct Db {
    pub(crate) pools: Arc<Pools>,
    /// The database as opened, for migrations, which run on a connection of their own.
    pub(crate) target: Target,
    /// Where single queue items are written together ([`crate::group_commit`]); `None` in the
    /// handle the group commit's own writers use.
    pub(crate) group_commit: Option<GroupCommit>,
    /// Where failed authentications are counted together ([`crate::failure_batch`]); `None` in
    /// the handle the batch's own writer uses.
    pub(crate) failure_batch: Option<crate::failure_batch::FailureBatch>,
    /// SQLite has one writer at a time: the write transactions of this handle (and its clones)
    /// take turns here, in order, rather than in SQLite's busy handler, which polls the lock
    /// with sleeps of up to 100 ms: writers then sleep while the lock is free, and the CPU
    /// idles. A write transaction must therefore not wait for another of the same handle
    /// inside it: it would wait here for ever, where SQLite's `busy_timeout` refused it after
    /// five seconds. Unused on PostgreSQL.
    pub(crate) sqlite_writer: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: only the backend is shown.
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Db {
    pub fn backend(&self) -> Backend {
        self.pools.backend()
    }

    /// Applies pending embedded migrations; safe to call on every start and from several
    /// servers at once (PostgreSQL serialises them with an advisory lock).
    pub async fn migrate(&self) -> Result<(), StorageError> {
        crate::migrations::run(self.target.clone(), &self.pools).await
    }

    /// The pool's occupancy, without touching the database.
    pub fn pool_status(&self) -> PoolStatus {
        self.pools.status()
    }

    /// Pool occupancy and a round trip to the database.
    pub async fn health(&self) -> DbHealth {
        let status = self.pools.status();
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

    pub(crate) async fn ping(&self) -> Result<(), baton_domain::RepoError> {
        crate::with_conn!(self, |conn| {
            conn.batch_execute("SELECT 1").await?;
            Ok(())
        })
        .map_err(Into::into)
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.pools
    }
}
