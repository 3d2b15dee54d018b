//! One job, from `start` to its end: nodes in topological order, one `progress` per node, then
//! `complete`, `fail` or `cancelled` — or nothing more when the job was cancelled hard or taken
//! away (404/409), or `release` when the robot is stopping.
//!
//! While a node runs, a renewal loop beside it keeps the lease and learns of cancels; a hard
//! cancel or a stop drops the node's future, which ends a `Delay` at once and kills a `Shell`
//! command. Calls that fail for want of a server are retried with backoff, so a server restart
//! costs a job nothing but time.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::backoff::Backoff;
use crate::client::{CallError, Cancel, ClaimedJob, JobApi, NodeStatus, Progress};
use crate::graph::{self, Step};
use crate::nodes::{self, NodeContext, NodeError, NodeKind, NodeResult, Services};
use crate::shutdown::Stop;
use crate::text::truncate_chars;

/// The server keeps a message of at most 1 MB of JSON; a larger output fails its node rather
/// than the report that carries it.
const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// The server's limits on `fail`'s fields and on a node's error message.
const MAX_ERROR_MESSAGE: usize = 4000;
const MAX_ERROR_TYPE: usize = 100;
/// How long a stopping robot tries to give its job back before it exits anyway.
const RELEASE_WITHIN: Duration = Duration::from_secs(5);

/// How a job ended for this robot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    Completed,
    Failed,
    /// Stopped after a soft cancel, and reported as such.
    Cancelled,
    /// Left without another call: cancelled hard, or no longer this robot's.
    Dropped,
    /// Given back because the robot is stopping.
    Released,
}

/// Runs jobs through `api`.
pub(crate) struct Runner<'a, A> {
    pub api: &'a A,
    pub services: &'a Services,
    /// How often the lease is renewed while a node runs.
    pub renew_every: Duration,
    pub stop: &'a Stop,
}

/// Why a job call gave up.
enum Halt {
    Stopped,
    Error(CallError),
}

/// How a supervised node run ended.
enum NodeRun {
    Finished(NodeResult),
    Stopped,
    CancelledHard,
    /// A renewal was answered 401/403/404/409.
    Lost(CallError),
}

impl<A: JobApi> Runner<'_, A> {
    /// Runs `job` to its end. Errors only with a refused token (401/403), which ends the robot.
    pub async fn run(&self, job: &ClaimedJob) -> Result<JobEnd, CallError> {
        let id = job.job_id.as_str();
        tracing::info!(
            job = id,
            workflow = job.workflow_name.as_deref().unwrap_or_default(),
            retry = job.retry_count,
            attempt = job.attempt,
            "job claimed"
        );
        let answer = match self.call(id, "start", true, || self.api.start(id)).await {
            Ok(answer) => answer,
            Err(halt) => return self.halted(id, "start", halt).await,
        };
        if let Some(cancel) = answer.cancel {
            return self.cancelled(id, cancel).await;
        }
        let steps = match graph::plan(&job.workflow_json) {
            Ok(steps) => steps,
            Err(e) => return self.fail(id, e.error_type(), e.message()).await,
        };
        let soft = AtomicBool::new(false);
        let mut outputs = Map::new();
        for step in &steps {
            if self.stop.is_requested() {
                return self.release(id).await;
            }
            let started = Instant::now();
            let result = match step.kind.filter(|_| !step.disabled) {
                None => None,
                Some(kind) => match self.run_node(job, step, kind, &soft).await {
                    NodeRun::Finished(result) => Some(bounded(result)),
                    NodeRun::Stopped => return self.release(id).await,
                    NodeRun::CancelledHard => return self.cancelled(id, Cancel::Hard).await,
                    NodeRun::Lost(e) => return self.halted(id, "renew", Halt::Error(e)).await,
                },
            };
            let report = progress(step, started.elapsed(), result.as_ref());
            tracing::info!(
                job = id,
                node = %step.id,
                node_type = %step.node_type,
                status = report.status.as_str(),
                duration_ms = report.duration_ms,
                "node finished"
            );
            let answer = match self
                .call(id, "progress", true, || self.api.progress(id, &report))
                .await
            {
                Ok(answer) => answer,
                Err(halt) => return self.halted(id, "progress", halt).await,
            };
            let soft_seen = soft.load(Ordering::Relaxed).then_some(Cancel::Soft);
            if let Some(cancel) = answer.cancel.or(soft_seen) {
                return self.cancelled(id, cancel).await;
            }
            match result {
                Some(Err(error)) => {
                    let error_type = format!("{}Error", step.node_type);
                    return self.fail(id, &error_type, &error.message).await;
                }
                Some(Ok(Some(output))) => {
                    outputs.insert(step.id.clone(), output);
                }
                Some(Ok(None)) | None => {}
            }
        }
        self.complete(id, outputs).await
    }

    /// Runs one node beside its lease renewals, until it ends, a hard cancel or 404/409 comes,
    /// or the robot stops; the node's future is dropped in every case but the first.
    async fn run_node(
        &self,
        claimed: &ClaimedJob,
        step: &Step,
        kind: NodeKind,
        soft: &AtomicBool,
    ) -> NodeRun {
        let job = claimed.job_id.as_str();
        tracing::debug!(job, node = %step.id, node_type = %step.node_type, "node started");
        let node = nodes::run(
            kind,
            NodeContext {
                job_id: job,
                node_id: &step.id,
                attempt: claimed.attempt,
                config: &step.config,
                services: self.services,
            },
        );
        tokio::select! {
            biased;
            () = self.stop.requested() => NodeRun::Stopped,
            end = self.keep_lease(job, soft) => end,
            result = node => NodeRun::Finished(result),
        }
    }

    /// Renews the lease every `renew_every` for as long as it is polled; returns only on a hard
    /// cancel or a refusal. A soft cancel is noted in `soft` for after the node.
    async fn keep_lease(&self, job: &str, soft: &AtomicBool) -> NodeRun {
        loop {
            tokio::time::sleep(self.renew_every).await;
            match self.api.renew(job).await {
                Ok(answer) => match answer.cancel {
                    Some(Cancel::Hard) => return NodeRun::CancelledHard,
                    Some(Cancel::Soft) if !soft.swap(true, Ordering::Relaxed) => {
                        tracing::info!(job, "soft cancel requested: stopping after this node");
                    }
                    Some(Cancel::Soft) | None => {}
                },
                Err(e @ (CallError::Refused { .. } | CallError::Gone { .. })) => {
                    return NodeRun::Lost(e);
                }
                Err(e) => {
                    tracing::warn!(job, error = %e, "renewing the lease failed; trying again at the next renewal");
                }
            }
        }
    }

    /// Calls `attempt` until it succeeds or fails for a reason other than the server's
    /// absence. `interruptible` calls are abandoned mid-flight when the robot stops (the job is
    /// released instead); the others are only not retried then.
    async fn call<T, F, Fut>(
        &self,
        job: &str,
        what: &str,
        interruptible: bool,
        attempt: F,
    ) -> Result<T, Halt>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let mut backoff = Backoff::default();
        loop {
            let result = if interruptible {
                tokio::select! {
                    biased;
                    () = self.stop.requested() => return Err(Halt::Stopped),
                    result = attempt() => result,
                }
            } else {
                attempt().await
            };
            let why = match result {
                Ok(value) => return Ok(value),
                Err(CallError::Transient(why)) => why,
                Err(e) => return Err(Halt::Error(e)),
            };
            if self.stop.is_requested() {
                return Err(Halt::Stopped);
            }
            let wait = backoff.next_wait();
            tracing::warn!(
                job,
                call = what,
                error = %why,
                retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "job call failed; retrying"
            );
            tokio::select! {
                () = self.stop.requested() => return Err(Halt::Stopped),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// After `start`, `progress`, a renewal or `complete` gave up: a refused request body fails
    /// the job with the reason, anything else is handled as by [`Runner::gave_up`].
    async fn halted(&self, job: &str, what: &str, halt: Halt) -> Result<JobEnd, CallError> {
        match halt {
            Halt::Error(e @ CallError::Rejected { .. }) => {
                let message = format!("the server refused the robot's {what} call: {e}");
                self.fail(job, "RobotError", &message).await
            }
            other => self.gave_up(job, what, other).await,
        }
    }

    /// After any job call gave up: release when stopping, end the robot on a refused token,
    /// drop the job otherwise (it is not this robot's any more, or cannot be reported).
    async fn gave_up(&self, job: &str, what: &str, halt: Halt) -> Result<JobEnd, CallError> {
        match halt {
            Halt::Stopped => self.release(job).await,
            Halt::Error(e @ CallError::Refused { .. }) => Err(e),
            Halt::Error(e) => {
                tracing::warn!(job, call = what, error = %e, "job dropped: the server refused the call");
                Ok(JobEnd::Dropped)
            }
        }
    }

    async fn cancelled(&self, job: &str, cancel: Cancel) -> Result<JobEnd, CallError> {
        if cancel == Cancel::Hard {
            tracing::info!(job, "job cancelled hard: dropped");
            return Ok(JobEnd::Dropped);
        }
        match self
            .call(job, "cancelled", false, || self.api.cancelled(job))
            .await
        {
            Ok(()) => {
                tracing::info!(job, "job cancelled (soft)");
                Ok(JobEnd::Cancelled)
            }
            Err(halt) => self.gave_up(job, "cancelled", halt).await,
        }
    }

    async fn fail(&self, job: &str, error_type: &str, message: &str) -> Result<JobEnd, CallError> {
        let error_type = truncate_chars(error_type, MAX_ERROR_TYPE);
        let message = truncate_chars(message, MAX_ERROR_MESSAGE);
        match self
            .call(job, "fail", false, || {
                self.api.fail(job, error_type, message)
            })
            .await
        {
            Ok(()) => {
                tracing::info!(job, error_type, error = message, "job failed");
                Ok(JobEnd::Failed)
            }
            Err(halt) => self.gave_up(job, "fail", halt).await,
        }
    }

    /// Completes the job with its nodes' outputs by node id.
    async fn complete(&self, job: &str, outputs: Map<String, Value>) -> Result<JobEnd, CallError> {
        let mut output = Value::Object(outputs);
        if output.to_string().len() > MAX_OUTPUT_BYTES {
            output = json!({
                "truncated": true,
                "detail": "the nodes' outputs exceed 1 MB together; each is in its node's messages"
            });
        }
        match self
            .call(job, "complete", false, || {
                self.api.complete(job, Some(&output))
            })
            .await
        {
            Ok(()) => {
                tracing::info!(job, "job completed");
                Ok(JobEnd::Completed)
            }
            Err(halt) => self.halted(job, "complete", halt).await,
        }
    }

    /// Gives the job back for another robot, trying briefly: a robot that is stopping must
    /// exit even when the server is gone, and then the lease's end recovers the job.
    async fn release(&self, job: &str) -> Result<JobEnd, CallError> {
        let attempts = async {
            let mut last = None;
            for _ in 0..3 {
                match self.api.release(job).await {
                    Ok(()) => return Ok(()),
                    Err(CallError::Transient(why)) => last = Some(why),
                    Err(e) => return Err(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(last.unwrap_or_default())
        };
        match tokio::time::timeout(RELEASE_WITHIN, attempts).await {
            Ok(Ok(())) => tracing::info!(job, "job released: it is pending again"),
            Ok(Err(why)) => tracing::warn!(
                job,
                error = %why,
                "releasing the job failed; the server recovers it when its lease runs out"
            ),
            Err(_) => tracing::warn!(
                job,
                "the server did not take the job back in time; it recovers it when the lease runs out"
            ),
        }
        Ok(JobEnd::Released)
    }
}

/// An output too large for a message fails its node with a reason.
fn bounded(result: NodeResult) -> NodeResult {
    match result {
        Ok(Some(output)) if output.to_string().len() > MAX_OUTPUT_BYTES => Err(NodeError::new(
            "the node's output is larger than 1 MB, the most the server keeps as a message",
        )),
        other => other,
    }
}

/// The `progress` report of a node: `None` is a skipped (disabled) node. A node's output is
/// emitted as one message of its agent; failed and skipped nodes emit none.
fn progress(step: &Step, elapsed: Duration, result: Option<&NodeResult>) -> Progress {
    let (status, output, error) = match result {
        None => (NodeStatus::Skipped, None, None),
        Some(Ok(output)) => (NodeStatus::Completed, output.clone(), None),
        Some(Err(e)) => (
            NodeStatus::Failed,
            e.output.clone(),
            Some(truncate_chars(&e.message, MAX_ERROR_MESSAGE).to_owned()),
        ),
    };
    let messages = match (status, &output) {
        (NodeStatus::Completed, Some(output)) => vec![output.clone()],
        _ => Vec::new(),
    };
    Progress {
        node_id: step.id.clone(),
        node_type: step.node_type.clone(),
        status,
        duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        output,
        error,
        messages,
    }
}

#[cfg(test)]
mod tests;
