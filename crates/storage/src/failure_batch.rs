//! Group commit for failed authentications. Counting each failure in a transaction of its own
//! cost a commit per wrong credential, so a flood of them from changing addresses took the
//! database's commits from honest requests. Concurrent failures are counted together instead,
//! in one statement and one commit, and each caller still learns its own exact count.
//!
//! This is the pattern of [`crate::group_commit`]: callers of
//! `AccessGuardRepository::record_auth_failure` put their failure on a channel and wait; one
//! dispatcher task takes whatever waits there as a batch and writes it with
//! [`FailureWriter::write_auth_failures`] (the access-guard repository, on the database handle),
//! then answers every caller. One batch is written at a time, so
//! failures arriving meanwhile make up the next batch ("natural batching"): a failure at an idle
//! server is written at once, without a timed wait, and under a flood a batch holds everything
//! that arrived during the previous write, up to [`MAX_BATCH`].

use baton_domain::ports::FailureKind;
use baton_domain::{RepoError, RepoResult, Timestamp};
use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// What writes a batch: the access-guard repository, which implements it on the database
/// handle. It is a trait so that this module sits below the handle and imports nothing above it.
pub(crate) trait FailureWriter: Send + Sync + 'static {
    /// Counts `failures` in one statement and returns each one's count, in the order given.
    fn write_auth_failures(
        &self,
        failures: &[AuthFailure],
    ) -> impl Future<Output = RepoResult<Vec<u32>>> + Send;
}

/// The most failures one statement counts: a flood's worth per commit, still a statement that
/// runs in a few milliseconds.
const MAX_BATCH: usize = 500;

/// Failures that may wait for the writer before callers wait to hand theirs over.
const CHANNEL_CAPACITY: usize = 8192;

/// One failed authentication to count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthFailure {
    pub(crate) ip: String,
    pub(crate) kind: FailureKind,
    pub(crate) now: Timestamp,
    pub(crate) window_start: Timestamp,
}

/// A failure waiting to be counted, and where its count goes.
struct Pending {
    failure: AuthFailure,
    reply: oneshot::Sender<RepoResult<u32>>,
}

/// The callers' side: cheap to clone, one per database handle.
#[derive(Clone)]
pub(crate) struct FailureBatch {
    sender: mpsc::Sender<Pending>,
}

impl FailureBatch {
    /// Starts the dispatcher on the current runtime. `db` is the handle the writer uses: one
    /// without a failure batch of its own, so that the dispatcher holds no sender and stops when
    /// the last database handle that has one is dropped.
    pub(crate) fn start<W: FailureWriter>(db: W) -> Self {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        tokio::spawn(dispatch(db, receiver));
        FailureBatch { sender }
    }

    /// Counts `failure` with the other callers' and returns its address's count once committed.
    pub(crate) async fn record(&self, failure: AuthFailure) -> RepoResult<u32> {
        let (reply, count) = oneshot::channel();
        self.sender
            .send(Pending { failure, reply })
            .await
            .map_err(|_| stopped())?;
        count.await.unwrap_or_else(|_| Err(stopped()))
    }
}

/// The answer when the dispatcher is gone (its runtime shut down): the failure was not counted.
fn stopped() -> RepoError {
    RepoError::Unavailable("the failed-authentication counter has stopped".to_owned())
}

/// `e` again, for the next caller of a batch that failed as a whole.
fn copy_error(e: &RepoError) -> RepoError {
    match e {
        RepoError::NotFound(what) => RepoError::NotFound(what),
        RepoError::Conflict(why) => RepoError::Conflict(why.clone()),
        RepoError::Unavailable(why) => RepoError::Unavailable(why.clone()),
        RepoError::Internal(why) => RepoError::Internal(why.clone()),
    }
}

/// Takes failures off the channel in batches and writes each before taking the next. Ends when
/// every sender is gone.
async fn dispatch<W: FailureWriter>(db: W, mut receiver: mpsc::Receiver<Pending>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = Vec::with_capacity(MAX_BATCH.min(receiver.len() + 1));
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let (failures, replies): (Vec<AuthFailure>, Vec<_>) =
            batch.into_iter().map(|p| (p.failure, p.reply)).unzip();
        let counts = db.write_auth_failures(&failures).await;
        for (i, reply) in replies.into_iter().enumerate() {
            let count = match &counts {
                Ok(counts) => counts.get(i).copied().ok_or_else(|| {
                    RepoError::Internal("the batch answered fewer counts than failures".to_owned())
                }),
                Err(e) => Err(copy_error(e)),
            };
            // A caller that went away (its request was dropped) gets no answer; its failure
            // is counted all the same.
            let _ = reply.send(count);
        }
    }
}
