//! Opening a [`Db`]: the pools, a first round trip, then the group commit, whose writers are the
//! queue repository's. It sits above the repositories because it wires one of them in.

use std::sync::Arc;

use crate::Db;
use crate::group_commit::GroupCommit;
use crate::pool::{ConnectOptions, Pools, StorageError, Target};

impl Db {
    /// Opens a pool for `url`: `sqlite://PATH` (the parent directory is created),
    /// `sqlite::memory:`, or `postgres://…`. Checks that a connection can be made.
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Db, StorageError> {
        let target = Target::parse(url)?;
        let pools = Pools::open(target.clone(), &options)?;
        let mut db = Db {
            pools: Arc::new(pools),
            target,
            group_commit: None,
            sqlite_writer: Arc::default(),
        };
        db.ping()
            .await
            .map_err(|e| StorageError::Connect(e.to_string()))?;
        // The writers' handle is the one without a group commit, cloned before it is set.
        db.group_commit = Some(GroupCommit::start(db.clone()));
        Ok(db)
    }
}
