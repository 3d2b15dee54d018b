//! The batched robot calls: a robot working through many short jobs claims several at once and
//! reports how they ended in one call, so a job costs a share of two calls instead of two calls
//! of its own (docs/robot-protocol.md, "Batches"). The rules are the one-job calls' rules: the
//! same transitions of [`Job`], the same version checks, one `job_changed` event per job, the
//! same follow-ups; only the number of round trips and transactions changes.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use serde_json::Value;

use crate::error::RepoError;
use crate::ids::{JobId, WorkflowId};
use crate::job::{Job, JobStatus};
use crate::ports::JobChange;
use crate::robot::RobotId;
use crate::workflow::Workflow;

use super::{ClaimedJob, JobService, ServiceError};

/// How one job of a batch ended, as its robot reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    Completed {
        output: Option<Value>,
    },
    /// Over-long texts are truncated by [`Job::fail`], as in the one-job call.
    Failed {
        error_type: String,
        error_message: String,
    },
}

/// One job of a batched report.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedJob {
    pub job_id: JobId,
    pub end: JobEnd,
}

impl JobService {
    /// Hands `robot` up to `limit` pending jobs, most urgent first, each under its own lease,
    /// in one atomic claim: concurrent robots never receive the same job. Each workflow is read
    /// once however many of its jobs the batch holds. A job whose workflow was deleted is
    /// failed with [`super::WORKFLOW_MISSING`] and left out, so the batch may be shorter than
    /// the jobs claimed. The robot's record shows the last job of the batch.
    /// Errors: storage failures. Jobs claimed before a failure go back to pending when their
    /// lease runs out, as with a robot that vanished.
    pub async fn claim_many(
        &self,
        robot: &RobotId,
        limit: u32,
    ) -> Result<Vec<ClaimedJob>, ServiceError> {
        let now = self.clock.now();
        let jobs = self
            .ports
            .jobs
            .claim_jobs(robot, now, self.lease_seconds, limit)
            .await?;
        let mut workflows: HashMap<WorkflowId, Option<Arc<Workflow>>> = HashMap::new();
        let mut claimed = Vec::with_capacity(jobs.len());
        for job in jobs {
            let workflow = match workflows.entry(job.workflow_id()) {
                Entry::Occupied(known) => known.get().clone(),
                Entry::Vacant(slot) => {
                    let read = match self.ports.workflows.get_workflow(job.workflow_id()).await {
                        Ok(workflow) => Some(Arc::new(workflow)),
                        Err(RepoError::NotFound(_)) => None,
                        Err(other) => return Err(other.into()),
                    };
                    slot.insert(read).clone()
                }
            };
            match workflow {
                Some(workflow) => claimed.push(ClaimedJob { job, workflow }),
                None => self.fail_orphan(job.id(), robot).await?,
            }
        }
        if let Some(last) = claimed.last() {
            self.robot_took(robot, last.job.id()).await;
        }
        Ok(claimed)
    }

    /// Records how several of `robot`'s jobs ended, in one transaction for all of them; each
    /// job is judged alone. Returns one outcome per job, in order: the stored job, or why that
    /// job was refused (`Transition` when the robot does not hold it, as in the one-job calls;
    /// `Repo(NotFound)` for an unknown id). A job changed meanwhile (a cancel won the race) is
    /// re-read and judged again through the one-job path. A job listed twice is judged twice:
    /// the second finds it ended. Errors of the call itself: storage failures, and then
    /// nothing of the batch was stored.
    pub async fn finish_many(
        &self,
        robot: &RobotId,
        ends: &[FinishedJob],
    ) -> Result<Vec<Result<Job, ServiceError>>, ServiceError> {
        let ids: Vec<JobId> = ends.iter().map(|end| end.job_id).collect();
        let mut stored: HashMap<JobId, Job> = self
            .ports
            .jobs
            .get_jobs(&ids)
            .await?
            .into_iter()
            .map(|job| (job.id(), job))
            .collect();
        let now = self.clock.now();
        let mut outcomes: Vec<Option<Result<Job, ServiceError>>> =
            (0..ends.len()).map(|_| None).collect();
        let mut changes = Vec::new();
        // For each change: the index of its report and the status the job had before.
        let mut changed = Vec::new();
        for (index, end) in ends.iter().enumerate() {
            // Taken out of the map, so a job listed twice is judged the second time against
            // nothing and answered as not the robot's to finish any more.
            let Some(mut job) = stored.remove(&end.job_id) else {
                let repeated = ids[..index].contains(&end.job_id);
                outcomes[index] = Some(Err(if repeated {
                    ServiceError::Transition(crate::TransitionError {
                        entity: "job",
                        action: "finish",
                        state: "already reported earlier in this batch".to_owned(),
                    })
                } else {
                    ServiceError::Repo(RepoError::NotFound("job"))
                }));
                continue;
            };
            let before = job.status();
            if let Err(refused) = apply(&mut job, robot, &end.end, now) {
                outcomes[index] = Some(Err(refused.into()));
                continue;
            }
            let events = if job.status() == before {
                Vec::new()
            } else {
                vec![self.job_event(&job, job.status() == JobStatus::Pending, now)]
            };
            changes.push(JobChange { job, events });
            changed.push((index, before));
        }
        let results = self.ports.jobs.update_jobs_each(&changes).await?;
        let mut finished = Vec::new();
        for ((index, before), result) in changed.into_iter().zip(results) {
            outcomes[index] = Some(match result {
                Ok(job) => {
                    finished.push((before, job.clone()));
                    Ok(job)
                }
                // The one-job path re-reads and judges the newer job, and runs its own
                // follow-ups.
                Err(RepoError::Conflict(_)) => self.finish_one(robot, &ends[index]).await,
                Err(other) => Err(other.into()),
            });
        }
        self.after_batch(robot, &finished).await;
        Ok(outcomes
            .into_iter()
            .map(|outcome| {
                // Every index was given an outcome above: refused before the write, or one of
                // the write's results (one per change).
                outcome.unwrap_or_else(|| Err(RepoError::NotFound("job").into()))
            })
            .collect())
    }

    /// One report through the one-job calls.
    async fn finish_one(&self, robot: &RobotId, end: &FinishedJob) -> Result<Job, ServiceError> {
        match &end.end {
            JobEnd::Completed { output } => self.complete(end.job_id, robot, output.clone()).await,
            JobEnd::Failed {
                error_type,
                error_message,
            } => {
                self.fail(end.job_id, robot, error_type.clone(), error_message.clone())
                    .await
            }
        }
    }

    /// The follow-ups of the jobs a batch ended: the robot's record is cleared once (if it
    /// shows one of them), and each job that reached its end tells whatever started it.
    async fn after_batch(&self, robot: &RobotId, finished: &[(JobStatus, Job)]) {
        let let_go: Vec<JobId> = finished
            .iter()
            .filter(|(before, job)| before.is_active() && !job.status().is_active())
            .map(|(_, job)| job.id())
            .collect();
        if let Some(&first) = let_go.first() {
            self.update_robot(robot, first, "clear the robot's finished job", |record| {
                if !record
                    .current_job_id()
                    .is_some_and(|id| let_go.contains(&id))
                {
                    return false;
                }
                record.release_job();
                true
            })
            .await;
        }
        for (before, job) in finished {
            if !before.is_final() && job.status().is_final() {
                self.after_job_finished(job).await;
            }
        }
    }
}

/// Applies a robot's report to the job it names.
fn apply(
    job: &mut Job,
    robot: &RobotId,
    end: &JobEnd,
    now: crate::clock::Timestamp,
) -> Result<(), crate::TransitionError> {
    match end {
        JobEnd::Completed { output } => job.complete(robot, output.clone(), now),
        JobEnd::Failed {
            error_type,
            error_message,
        } => job.fail(robot, error_type.clone(), error_message.clone(), now),
    }
}
