//! [`JobRepository`] in memory.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use super::{InMemoryStore, State, lease_end, limited};
use crate::clock::Timestamp;
use crate::error::{RepoError, RepoResult};
use crate::event::{Event, EventType};
use crate::ids::{EventId, JobId};
use crate::job::{Job, JobStatus};
use crate::ports::{JobChange, JobFilter, JobRepository};
use crate::robot::RobotId;

impl State {
    /// Whether `job` may replace the stored one: it exists and is still at `job.version`.
    fn check_job_version(&self, job: &Job) -> RepoResult<()> {
        match self.jobs.get(&job.id()) {
            None => Err(RepoError::NotFound("job")),
            Some(stored) if stored.version() != job.version() => Err(RepoError::Conflict(format!(
                "job {} changed since version {}",
                job.id(),
                job.version()
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Stores a checked job with its version bumped, and returns it.
    fn store_job(&mut self, job: &Job) -> Job {
        let mut stored = job.clone();
        stored.mark_stored();
        self.jobs.insert(stored.id(), stored.clone());
        stored
    }
}

#[async_trait]
impl JobRepository for InMemoryStore {
    async fn insert_job(&self, job: &Job, events: &[Event]) -> RepoResult<()> {
        let mut state = self.state();
        state.check_new_job(job)?;
        state.check_events(events)?;
        state.jobs.insert(job.id(), job.clone());
        state.append_events(events);
        Ok(())
    }

    async fn get_job(&self, id: JobId) -> RepoResult<Job> {
        self.state()
            .jobs
            .get(&id)
            .cloned()
            .ok_or(RepoError::NotFound("job"))
    }

    async fn list_jobs(&self, filter: &JobFilter) -> RepoResult<Vec<Job>> {
        let state = self.state();
        let mut jobs: Vec<&Job> = state
            .jobs
            .values()
            .filter(|job| filter.status.is_none_or(|s| job.status() == s))
            .filter(|job| filter.workflow_id.is_none_or(|w| job.workflow_id() == w))
            .filter(|job| {
                filter
                    .robot_id
                    .as_ref()
                    .is_none_or(|r| job.robot_id() == Some(r))
            })
            .filter(|job| filter.created_after.is_none_or(|t| job.created_at() > t))
            .filter(|job| filter.created_before.is_none_or(|t| job.created_at() < t))
            .filter(|job| {
                filter
                    .after
                    .is_none_or(|c| (job.created_at(), job.id()) < (c.created_at, c.id))
            })
            .collect();
        jobs.sort_by_key(|job| std::cmp::Reverse((job.created_at(), job.id())));
        Ok(limited(jobs.into_iter().cloned(), filter.limit))
    }

    async fn claim_jobs(
        &self,
        robot: &RobotId,
        now: Timestamp,
        lease_seconds: u32,
        limit: u32,
    ) -> RepoResult<Vec<Job>> {
        // A lease past the calendar's end is refused before any job changes.
        lease_end(now, lease_seconds)?;
        let mut state = self.state();
        let mut pending: Vec<&Job> = state
            .jobs
            .values()
            .filter(|job| job.status() == JobStatus::Pending)
            .collect();
        pending.sort_by_key(|job| (job.priority(), job.created_at(), job.id()));
        let chosen: Vec<JobId> = limited(pending.into_iter().map(|job| job.id()), limit);
        let mut claimed = Vec::with_capacity(chosen.len());
        for id in chosen {
            let Some(job) = state.jobs.get_mut(&id) else {
                continue;
            };
            job.claim(robot.clone(), now, lease_seconds)
                .map_err(|e| RepoError::Conflict(e.to_string()))?;
            job.mark_stored();
            claimed.push(job.clone());
        }
        let events: Vec<Event> = claimed
            .iter()
            .map(|job| {
                Event::job_changed(EventId::from_uuid(uuid::Uuid::now_v7()), job, false, now)
            })
            .collect();
        debug_assert!(events.iter().all(|e| e.event_type == EventType::JobClaimed));
        state.append_events(&events);
        Ok(claimed)
    }

    async fn update_job(&self, job: &Job, events: &[Event]) -> RepoResult<Job> {
        let mut state = self.state();
        state.check_job_version(job)?;
        state.check_events(events)?;
        let stored = state.store_job(job);
        state.append_events(events);
        Ok(stored)
    }

    async fn get_jobs(&self, ids: &[JobId]) -> RepoResult<Vec<Job>> {
        let state = self.state();
        let ids: HashSet<&JobId> = ids.iter().collect();
        Ok(ids
            .into_iter()
            .filter_map(|id| state.jobs.get(id).cloned())
            .collect())
    }

    async fn update_jobs_each(&self, changes: &[JobChange]) -> RepoResult<Vec<RepoResult<Job>>> {
        let mut state = self.state();
        // Judged in order against the versions as the earlier changes leave them, so a job
        // listed twice is stored once; then the winners' events are checked, since a taken
        // event id fails the whole call, before anything is written.
        let mut versions: HashMap<JobId, i64> = HashMap::new();
        let verdicts: Vec<RepoResult<()>> = changes
            .iter()
            .map(|change| {
                let id = change.job.id();
                let current = versions
                    .get(&id)
                    .copied()
                    .or_else(|| state.jobs.get(&id).map(|job| job.version()))
                    .ok_or(RepoError::NotFound("job"))?;
                if current != change.job.version() {
                    return Err(RepoError::Conflict(format!(
                        "job {id} changed since version {}",
                        change.job.version()
                    )));
                }
                versions.insert(id, current + 1);
                Ok(())
            })
            .collect();
        let winners = || {
            changes
                .iter()
                .zip(&verdicts)
                .filter(|(_, verdict)| verdict.is_ok())
                .map(|(change, _)| change)
        };
        state.check_events(winners().flat_map(|change| &change.events))?;
        Ok(changes
            .iter()
            .zip(verdicts)
            .map(|(change, verdict)| {
                verdict?;
                let stored = state.store_job(&change.job);
                state.append_events(&change.events);
                Ok(stored)
            })
            .collect())
    }

    async fn expired_job_leases(&self, now: Timestamp, limit: u32) -> RepoResult<Vec<Job>> {
        let state = self.state();
        let mut expired: Vec<&Job> = state
            .jobs
            .values()
            .filter(|job| matches!(job.status(), JobStatus::Claimed | JobStatus::Running))
            .filter(|job| job.lease_expires_at().is_some_and(|end| end <= now))
            .collect();
        expired.sort_by_key(|job| (job.lease_expires_at(), job.id()));
        Ok(limited(expired.into_iter().cloned(), limit))
    }

    async fn count_jobs_by_status(&self) -> RepoResult<Vec<(JobStatus, u64)>> {
        let state = self.state();
        Ok(JobStatus::ALL
            .into_iter()
            .map(|status| {
                let count = state.jobs.values().filter(|j| j.status() == status).count();
                (status, count as u64)
            })
            .filter(|(_, count)| *count > 0)
            .collect())
    }
}
