//! Group commit for single queue items (`POST /api/queue` at 10,000 requests/s, every 201
//! durable). A transaction per request is bounded by how many commits the database can
//! flush per second; writing the items of concurrent requests in one transaction pays one
//! commit for all of them.
//!
//! Callers of `QueueRepository::insert_each` put their items on a channel and wait. One
//! dispatcher task takes them off in batches and hands each batch to a writer task, which
//! writes it with [`BatchWriter::write_each`] (one transaction, an outcome per item) and answers every
//! caller after the commit. At most `writers` batches are in flight; while they are, new items
//! wait on the channel, so batches grow with the load by themselves ("natural batching"): an
//! item arriving at an idle server is written at once, without a timed wait, and under load a
//! batch holds whatever arrived during the previous commit, up to [`MAX_BATCH`].

use std::future::Future;
use std::sync::Arc;

use baton_domain::queue::QueueItem;
use baton_domain::{RepoError, RepoResult};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::pool::Backend;

/// What writes a batch: the queue repository, which implements it on the database handle. It is
/// a parameter so that this module knows nothing of the handle that holds a [`GroupCommit`].
pub(crate) trait BatchWriter: Clone + Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Writes `items` in one transaction where it can and returns one outcome per item, in order.
    /// The items are different callers': an item's outcome must depend on that item alone (and
    /// on the database being available), so a batch that fails because of one item is written
    /// again without it, and only that item's caller gets the error.
    fn write_each(&self, items: &[QueueItem]) -> impl Future<Output = Vec<RepoResult<()>>> + Send;
}

/// The most items one transaction writes: large enough that a commit serves every waiting
/// request of a busy server, small enough that a batch commits in a few milliseconds; the rows
/// of one INSERT statement in the adapter, so a full batch is a single statement.
pub(crate) const MAX_BATCH: usize = 500;

/// Items that may wait for a writer before callers wait to hand theirs over.
const CHANNEL_CAPACITY: usize = 8192;

/// Concurrent batch transactions. On PostgreSQL a second writer keeps the disk busy while the
/// first commits (one writer doubled the p99 latency at 64 clients); more writers made smaller
/// batches and cost more CPU per item, since every item row locks its queue row (the foreign
/// key) and concurrent lockers of one row cost PostgreSQL a multixact each (measured with
/// `cargo xtask bench queue`: PostgreSQL CPU per request 67 µs with 1 writer, 79 µs with 2,
/// 102 µs with 4). SQLite runs one writer at a time anyway; a second would wait on the lock.
fn writers(backend: Backend) -> usize {
    match backend {
        Backend::Postgres => 2,
        Backend::Sqlite => 1,
    }
}

/// An item waiting to be written, and where its outcome goes.
struct Pending {
    item: QueueItem,
    reply: oneshot::Sender<RepoResult<()>>,
}

/// The callers' side of the group commit: cheap to clone, one per database handle.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    sender: mpsc::Sender<Pending>,
}

impl GroupCommit {
    /// Starts the dispatcher on the current runtime. `writer` must not hold a group commit of
    /// its own (a sender), so that the dispatcher stops when the last handle that has one is
    /// dropped.
    pub(crate) fn start<W: BatchWriter>(writer: W) -> Self {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let writers = writers(writer.backend());
        tokio::spawn(dispatch(writer, receiver, writers));
        GroupCommit { sender }
    }

    /// Writes `items` with the other callers' and returns their outcomes, in order, once each
    /// is committed or refused.
    pub(crate) async fn insert_each(&self, items: &[QueueItem]) -> Vec<RepoResult<()>> {
        let mut waiting = Vec::with_capacity(items.len());
        for item in items {
            let (reply, outcome) = oneshot::channel();
            let pending = Pending {
                item: item.clone(),
                reply,
            };
            waiting.push(match self.sender.send(pending).await {
                Ok(()) => Some(outcome),
                Err(_) => None,
            });
        }
        let mut outcomes = Vec::with_capacity(items.len());
        for outcome in waiting {
            outcomes.push(match outcome {
                Some(outcome) => outcome.await.unwrap_or_else(|_| Err(stopped())),
                None => Err(stopped()),
            });
        }
        outcomes
    }
}

/// The answer when the dispatcher is gone (its runtime shut down): the item was not written.
fn stopped() -> RepoError {
    RepoError::Unavailable("the queue item writer has stopped".to_owned())
}

/// Takes items off the channel in batches and starts a writer per batch, at most `writers` at
/// a time. Ends when every sender is gone.
async fn dispatch<W: BatchWriter>(
    writer: W,
    mut receiver: mpsc::Receiver<Pending>,
    writers: usize,
) {
    let permits = Arc::new(Semaphore::new(writers));
    while let Some(first) = receiver.recv().await {
        // Waiting for a free writer is what lets the next batch fill up.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH.min(receiver.len() + 1));
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let writer = writer.clone();
        tokio::spawn(async move {
            write(&writer, batch).await;
            drop(permit);
        });
    }
}

/// Writes one batch and answers each of its callers. A caller that went away meanwhile (its
/// request was dropped) simply gets no answer; its item is written all the same.
async fn write<W: BatchWriter>(writer: &W, batch: Vec<Pending>) {
    let (items, replies): (Vec<QueueItem>, Vec<_>) =
        batch.into_iter().map(|p| (p.item, p.reply)).unzip();
    let outcomes = writer.write_each(&items).await;
    let mut outcomes = outcomes.into_iter();
    for reply in replies {
        let outcome = outcomes.next().unwrap_or_else(|| {
            Err(RepoError::Internal(
                "the batch write answered fewer outcomes than items".to_owned(),
            ))
        });
        let _ = reply.send(outcome);
    }
}
