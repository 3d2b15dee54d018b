//! Opening a [`Db`]: the pools, a first round trip, then the group commit and the auth-failure
//! batch, whose writers are the repositories'. It sits above the repositories because it wires
//! them in.

use std::sync::Arc;

use crate::db::Db;
use crate::failure_batch::FailureBatch;
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
            failure_batch: None,
            sqlite_writer: Arc::default(),
        };
        db.ping()
            .await
            .map_err(|e| StorageError::Connect(e.to_string()))?;
        // Both writers get the handle without batches of their own, cloned before they are set.
        let writers = db.clone();
        db.group_commit = Some(GroupCommit::start(writers.clone()));
        db.failure_batch = Some(FailureBatch::start(writers));
        Ok(db)
    }
}
