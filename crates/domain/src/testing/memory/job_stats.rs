//! [`JobStatsRepository`] in memory: the aggregates computed over the stored jobs.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{InMemoryStore, limited};
use crate::error::RepoResult;
use crate::ids::{JobId, WorkflowId};
use crate::job::{Job, JobStatus};
use crate::ports::{ErrorCount, JobScope, JobStatsRepository, StatusTotals, WorkflowDuration};

fn within(job: &Job, scope: &JobScope) -> bool {
    scope.created_since.is_none_or(|t| job.created_at() >= t)
        && scope
            .ended_since
            .is_none_or(|t| job.completed_at().is_some_and(|end| end >= t))
        && scope
            .robot_id
            .as_ref()
            .is_none_or(|r| job.robot_id() == Some(r))
}

/// The scope's completed jobs that have a duration, with it.
fn completed_durations<'a>(
    jobs: impl Iterator<Item = &'a Job>,
    scope: &JobScope,
) -> Vec<(i64, &'a Job)> {
    jobs.filter(|job| job.status() == JobStatus::Completed && within(job, scope))
        .filter_map(|job| Some((job.duration_ms()?, job)))
        .collect()
}

#[async_trait]
impl JobStatsRepository for InMemoryStore {
    async fn job_totals(&self, scope: &JobScope) -> RepoResult<Vec<StatusTotals>> {
        let state = self.state();
        Ok(JobStatus::ALL
            .into_iter()
            .filter_map(|status| {
                let mut totals = StatusTotals {
                    status,
                    jobs: 0,
                    retried: 0,
                    timed: 0,
                    duration_ms_sum: 0,
                };
                for job in state.jobs.values() {
                    if job.status() != status || !within(job, scope) {
                        continue;
                    }
                    totals.jobs += 1;
                    totals.retried += u64::from(job.retry_count() > 0);
                    if let Some(duration) = job.duration_ms() {
                        totals.timed += 1;
                        totals.duration_ms_sum += duration;
                    }
                }
                (totals.jobs > 0).then_some(totals)
            })
            .collect())
    }

    async fn completed_duration_at(&self, scope: &JobScope, rank: u64) -> RepoResult<Option<i64>> {
        let state = self.state();
        let mut durations: Vec<(i64, JobId)> = completed_durations(state.jobs.values(), scope)
            .into_iter()
            .map(|(duration, job)| (duration, job.id()))
            .collect();
        durations.sort();
        Ok(usize::try_from(rank)
            .ok()
            .and_then(|rank| durations.get(rank))
            .map(|(duration, _)| *duration))
    }

    async fn slowest_workflows(
        &self,
        scope: &JobScope,
        limit: u32,
    ) -> RepoResult<Vec<WorkflowDuration>> {
        let state = self.state();
        // Per workflow: the greatest name its jobs carry, the sum of durations, the count.
        let mut per_workflow: BTreeMap<WorkflowId, (String, i64, u64)> = BTreeMap::new();
        for (duration, job) in completed_durations(state.jobs.values(), scope) {
            let entry = per_workflow
                .entry(job.workflow_id())
                .or_insert_with(|| (String::new(), 0, 0));
            if job.workflow_name().as_str() > entry.0.as_str() {
                entry.0 = job.workflow_name().as_str().to_owned();
            }
            entry.1 += duration;
            entry.2 += 1;
        }
        let mut slowest: Vec<WorkflowDuration> = per_workflow
            .into_iter()
            .map(
                |(workflow_id, (workflow_name, sum, count))| WorkflowDuration {
                    workflow_id,
                    workflow_name,
                    average_duration_ms: sum as f64 / count as f64,
                    completed_jobs: count,
                },
            )
            .collect();
        slowest.sort_by(|a, b| {
            b.average_duration_ms
                .total_cmp(&a.average_duration_ms)
                .then(a.workflow_id.cmp(&b.workflow_id))
        });
        Ok(limited(slowest.into_iter(), limit))
    }

    async fn error_counts(&self, scope: &JobScope, limit: u32) -> RepoResult<Vec<ErrorCount>> {
        let state = self.state();
        let mut counts: BTreeMap<Option<String>, u64> = BTreeMap::new();
        for job in state.jobs.values() {
            if job.status() == JobStatus::Failed && within(job, scope) {
                *counts
                    .entry(job.error_type().map(str::to_owned))
                    .or_default() += 1;
            }
        }
        let mut counts: Vec<ErrorCount> = counts
            .into_iter()
            .map(|(error_type, count)| ErrorCount { error_type, count })
            .collect();
        // The databases order a missing error type as the empty text.
        counts.sort_by(|a, b| {
            b.count.cmp(&a.count).then_with(|| {
                a.error_type
                    .as_deref()
                    .unwrap_or("")
                    .cmp(b.error_type.as_deref().unwrap_or(""))
            })
        });
        Ok(limited(counts.into_iter(), limit))
    }
}
