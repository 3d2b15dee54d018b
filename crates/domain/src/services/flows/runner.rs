//! The engine's round over the flows: settle the flows whose job ended, then start a job for
//! every running flow that is due. Every server runs it; the version checks make concurrent
//! rounds safe, and a flow never has two jobs at once because a job is recorded only together
//! with the flow it belongs to, and only while the flow has none.

use serde_json::Map;

use super::FlowService;
use crate::error::RepoError;
use crate::event::{Event, EventType};
use crate::flow::{Flow, FlowCommand, FlowId, FlowStatus};
use crate::ids::{EventId, JobId};
use crate::job::{JobOrigin, JobStatus, NewJob, Priority};
use crate::workflow::ExecutionMode;

use super::ServiceError;

/// What one round of [`FlowService::run_round`] did.
#[derive(Debug, Default)]
pub struct FlowRound {
    /// Each flow that started a job, with the job.
    pub started: Vec<(FlowId, JobId)>,
    /// Each flow that took note of its job's end, with the job and how it ended.
    pub settled: Vec<(FlowId, JobId, JobStatus)>,
    /// Flows whose soft stop completed because their job ended.
    pub stopped: Vec<FlowId>,
    /// Flows stopped because the workflow they run no longer exists.
    pub orphaned: Vec<FlowId>,
    /// Flows another server (or a client) changed first: left to the next round.
    pub lost_races: usize,
    /// Flows that could not be judged or changed this round; the next round tries again.
    pub failed: Vec<(FlowId, RepoError)>,
}

impl FlowService {
    /// Settles and starts what is due now. One flow's failure does not hold up the others.
    /// Errors: only when the flows cannot be read at all.
    pub async fn run_round(&self) -> Result<FlowRound, ServiceError> {
        let mut round = FlowRound::default();
        for flow in self.ports.flows.list_flows().await? {
            if flow.current_job_id().is_none() && !flow.wants_job(self.clock.now()) {
                continue;
            }
            let id = flow.flow_id().clone();
            if let Err(error) = self.step(flow, &mut round).await {
                round.failed.push((id, error));
            }
        }
        Ok(round)
    }

    /// One flow's turn: settle its ended job, then start the next if it is due (at once when
    /// `interval_seconds` is 0).
    pub(super) async fn step(&self, flow: Flow, round: &mut FlowRound) -> Result<(), RepoError> {
        let Some(flow) = self.settle(flow, round).await? else {
            return Ok(());
        };
        if flow.wants_job(self.clock.now()) {
            self.start_job(flow, round).await?;
        }
        Ok(())
    }

    /// Takes note of the end of the flow's current job: the next run is planned
    /// `interval_seconds` after the job's recorded end, and a soft stop completes. Returns the
    /// flow as it now stands, or `None` when another writer changed or deleted it first.
    async fn settle(&self, flow: Flow, round: &mut FlowRound) -> Result<Option<Flow>, RepoError> {
        let Some(job_id) = flow.current_job_id() else {
            return Ok(Some(flow));
        };
        let (status, ended_at) = match self.ports.jobs.get_job(job_id).await {
            Ok(job) if job.status().is_final() => (job.status(), job.completed_at()),
            Ok(_) => return Ok(Some(flow)),
            // Jobs are never deleted; should one vanish all the same, the flow must not wait
            // for it forever.
            Err(RepoError::NotFound(_)) => (JobStatus::Cancelled, None),
            Err(other) => return Err(other),
        };
        let now = self.clock.now();
        let mut settled = flow.clone();
        settled.job_ended(job_id, ended_at.unwrap_or(now), now);
        let completes_stop =
            flow.status() != FlowStatus::Stopped && settled.status() == FlowStatus::Stopped;
        let events = if completes_stop {
            let mut event = self.flow_event(&settled, EventType::FlowStopped, "Flow stopped", now);
            event.job_id = Some(job_id);
            event.data.insert("stop".into(), "soft".into());
            vec![event]
        } else {
            Vec::new()
        };
        match self.ports.flows.update_flow(&settled, &events).await {
            Ok(stored) => {
                round
                    .settled
                    .push((stored.flow_id().clone(), job_id, status));
                if completes_stop {
                    round.stopped.push(stored.flow_id().clone());
                }
                Ok(Some(stored))
            }
            Err(RepoError::Conflict(_)) => {
                round.lost_races += 1;
                Ok(None)
            }
            Err(RepoError::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Starts the flow's next job, stored with the flow in one version-checked transaction. A
    /// flow whose workflow was deleted cannot run: it is stopped, with a `flow_stopped` event
    /// saying why, rather than retried every round.
    async fn start_job(&self, mut flow: Flow, round: &mut FlowRound) -> Result<(), RepoError> {
        let now = self.clock.now();
        let workflow = match self
            .ports
            .workflows
            .get_workflow(flow.config().workflow_id())
            .await
        {
            Ok(workflow) => workflow,
            Err(RepoError::NotFound(_)) => return self.stop_orphan(flow, round).await,
            Err(other) => return Err(other),
        };
        let job = NewJob {
            workflow_id: workflow.id,
            workflow_name: workflow.name,
            priority: Priority::default(),
            execution_mode: ExecutionMode::default(),
            input: Map::new(),
            origin: JobOrigin::Flow(flow.flow_id().clone()),
            max_retries: NewJob::DEFAULT_MAX_RETRIES,
        }
        .into_job(JobId::from_uuid(self.ids.new_uuid()), now);
        flow.job_started(job.id(), now);
        let event = Event::job_changed(EventId::from_uuid(self.ids.new_uuid()), &job, false, now);
        match self
            .ports
            .flows
            .record_flow_job(&flow, &job, &[event])
            .await
        {
            Ok(()) => {
                round.started.push((flow.flow_id().clone(), job.id()));
                Ok(())
            }
            Err(RepoError::Conflict(_)) => {
                round.lost_races += 1;
                Ok(())
            }
            Err(RepoError::NotFound(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Stops a running flow whose workflow no longer exists.
    async fn stop_orphan(&self, mut flow: Flow, round: &mut FlowRound) -> Result<(), RepoError> {
        let now = self.clock.now();
        let workflow = flow.config().workflow_id();
        if flow.apply(FlowCommand::Stop { hard: false }, now).is_err() {
            // A soft stop is accepted in every state; nothing to do if that ever changes.
            return Ok(());
        }
        let mut event = self.flow_event(&flow, EventType::FlowStopped, "Flow stopped", now);
        event.data.insert(
            "reason".into(),
            format!("workflow {workflow} no longer exists").into(),
        );
        match self.ports.flows.update_flow(&flow, &[event]).await {
            Ok(stored) => {
                round.orphaned.push(stored.flow_id().clone());
                Ok(())
            }
            Err(RepoError::Conflict(_)) => {
                round.lost_races += 1;
                Ok(())
            }
            Err(RepoError::NotFound(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }
}
