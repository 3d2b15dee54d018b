//! The read side of CasareRPA's `/metrics/*` endpoints: the fleet at a glance, robots with
//! their work of the day, job history, analytics over a window of days, and the activity feed.
//!
//! Nothing here writes. Aggregates over jobs are computed by the database
//! ([`JobStatsRepository`]), so a window of many jobs is never loaded whole; this service
//! decides which jobs each figure covers and does the arithmetic ([`stats`]). The decisions
//! where the seed document is silent are in docs/metrics.md.

pub mod query;
pub mod stats;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::clock::{Clock, Timestamp};
use crate::event::Event;
use crate::ids::JobId;
use crate::job::{Job, JobStatus};
use crate::ports::{
    ErrorCount, EventFilter, EventRepository, JobFilter, JobRepository, JobScope,
    JobStatsRepository, RobotRepository, StatusTotals, Store, WorkflowDuration,
};
use crate::robot::{Robot, RobotId, RobotStatus};

pub use query::{ActivityParams, AnalyticsDays, JobParams, robot_status_filter};

use super::ServiceError;

/// How many workflows `/metrics/analytics` lists as the slowest.
pub const SLOWEST_WORKFLOWS: u32 = 5;
/// How many error types `/metrics/analytics` lists, the most frequent first.
pub const ERROR_TYPES: u32 = 10;
/// The percentiles of completed jobs' durations that `/metrics/analytics` reports.
const PERCENTILES: [u8; 3] = [50, 90, 99];

/// The storage ports the metrics read.
#[derive(Clone)]
pub struct MetricsPorts {
    pub robots: Arc<dyn RobotRepository>,
    pub jobs: Arc<dyn JobRepository>,
    pub stats: Arc<dyn JobStatsRepository>,
    pub events: Arc<dyn EventRepository>,
}

impl MetricsPorts {
    /// Every port from one store, what an adapter holds.
    pub fn from_store(store: &Arc<dyn Store>) -> Self {
        Self {
            robots: store.clone(),
            jobs: store.clone(),
            stats: store.clone(),
            events: store.clone(),
        }
    }
}

/// `/metrics/fleet`.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetMetrics {
    pub total_robots: u64,
    /// Robots working on a job (busy).
    pub active_robots: u64,
    pub idle_robots: u64,
    pub offline_robots: u64,
    /// Jobs created since midnight UTC.
    pub total_jobs_today: u64,
    /// Jobs claimed or running now.
    pub active_jobs: u64,
    /// Jobs pending now: waiting for a robot.
    pub queue_depth: u64,
    /// The mean duration of the jobs that completed since midnight UTC; 0 when none did.
    pub average_job_duration_seconds: f64,
}

/// `/metrics/robots/{robot_id}`: the robot and its work since midnight UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct RobotMetrics {
    pub robot: Robot,
    pub jobs_completed_today: u64,
    pub jobs_failed_today: u64,
    /// The mean duration of its jobs that completed today; 0 when none did.
    pub average_job_duration_seconds: f64,
}

/// `/metrics/analytics`: the jobs created in the last `days` days.
#[derive(Debug, Clone, PartialEq)]
pub struct Analytics {
    pub days: AnalyticsDays,
    /// Where the window starts: `days` × 24 hours before now.
    pub since: Timestamp,
    pub total_jobs: u64,
    pub completed_jobs: u64,
    pub failed_jobs: u64,
    pub cancelled_jobs: u64,
    /// Completed jobs as a percentage of the completed and failed ones.
    pub success_rate: f64,
    /// Failed jobs as a percentage of the completed and failed ones.
    pub failure_rate: f64,
    /// Mean, median, 90th and 99th percentile of completed jobs' durations; 0 without any.
    pub average_duration_ms: i64,
    pub p50_duration_ms: i64,
    pub p90_duration_ms: i64,
    pub p99_duration_ms: i64,
    pub slowest_workflows: Vec<WorkflowDuration>,
    pub error_distribution: Vec<ErrorCount>,
    /// Of the finished jobs that needed a retry (their robot vanished and the lease ran out),
    /// the percentage that still completed.
    pub self_healing_success_rate: f64,
}

/// The metrics use cases.
pub struct MetricsService {
    ports: MetricsPorts,
    clock: Arc<dyn Clock>,
}

impl MetricsService {
    pub fn new(ports: MetricsPorts, clock: Arc<dyn Clock>) -> Self {
        Self { ports, clock }
    }

    /// Robots by status, the jobs in the system now, and today's jobs.
    pub async fn fleet(&self) -> Result<FleetMetrics, ServiceError> {
        let today = start_of_day(self.clock.now());
        let robots = self.ports.robots.list_robots(None).await?;
        let robots_in = |status: RobotStatus| count(robots.iter().filter(|r| r.status() == status));
        let now = self.ports.jobs.count_jobs_by_status().await?;
        let jobs_now = |status: JobStatus| {
            now.iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n)
        };
        let created_today = self
            .ports
            .stats
            .job_totals(&JobScope {
                created_since: Some(today),
                ..JobScope::default()
            })
            .await?;
        let ended_today = self
            .ports
            .stats
            .job_totals(&JobScope {
                ended_since: Some(today),
                ..JobScope::default()
            })
            .await?;
        let completed = totals_of(&ended_today, JobStatus::Completed);
        Ok(FleetMetrics {
            total_robots: count(robots.iter()),
            active_robots: robots_in(RobotStatus::Busy),
            idle_robots: robots_in(RobotStatus::Idle),
            offline_robots: robots_in(RobotStatus::Offline),
            total_jobs_today: created_today.iter().map(|t| t.jobs).sum(),
            active_jobs: jobs_now(JobStatus::Claimed) + jobs_now(JobStatus::Running),
            queue_depth: jobs_now(JobStatus::Pending),
            average_job_duration_seconds: stats::mean_seconds(
                completed.duration_ms_sum,
                completed.timed,
            ),
        })
    }

    /// Robots by id, optionally of one status.
    pub async fn robots(&self, status: Option<RobotStatus>) -> Result<Vec<Robot>, ServiceError> {
        Ok(self.ports.robots.list_robots(status).await?)
    }

    /// One robot with the jobs it finished today. Errors: `Repo(NotFound)`.
    pub async fn robot(&self, id: &RobotId) -> Result<RobotMetrics, ServiceError> {
        let robot = self.ports.robots.get_robot(id).await?;
        let ended_today = self
            .ports
            .stats
            .job_totals(&JobScope {
                ended_since: Some(start_of_day(self.clock.now())),
                robot_id: Some(id.clone()),
                ..JobScope::default()
            })
            .await?;
        let completed = totals_of(&ended_today, JobStatus::Completed);
        Ok(RobotMetrics {
            robot,
            jobs_completed_today: completed.jobs,
            jobs_failed_today: totals_of(&ended_today, JobStatus::Failed).jobs,
            average_job_duration_seconds: stats::mean_seconds(
                completed.duration_ms_sum,
                completed.timed,
            ),
        })
    }

    /// Job history, newest first.
    pub async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, ServiceError> {
        Ok(self.ports.jobs.list_jobs(filter).await?)
    }

    /// Errors: `Repo(NotFound)`.
    pub async fn job(&self, id: JobId) -> Result<Job, ServiceError> {
        Ok(self.ports.jobs.get_job(id).await?)
    }

    /// Success and failure, durations, the slowest workflows and the commonest errors of the
    /// jobs created in the last `days` days.
    pub async fn analytics(&self, days: AnalyticsDays) -> Result<Analytics, ServiceError> {
        let since = self.clock.now() - time::Duration::days(i64::from(days.get()));
        let scope = JobScope {
            created_since: Some(since),
            ..JobScope::default()
        };
        let totals = self.ports.stats.job_totals(&scope).await?;
        let completed = totals_of(&totals, JobStatus::Completed);
        let failed = totals_of(&totals, JobStatus::Failed);
        let (success_rate, failure_rate) = stats::success_and_failure(completed.jobs, failed.jobs);
        let mut percentiles = [0; PERCENTILES.len()];
        for (value, p) in percentiles.iter_mut().zip(PERCENTILES) {
            if let Some(rank) = stats::nearest_rank(p, completed.timed) {
                // A rank past the end can only mean jobs vanished in between; 0 says "no data".
                *value = self
                    .ports
                    .stats
                    .completed_duration_at(&scope, rank)
                    .await?
                    .unwrap_or(0);
            }
        }
        let [p50, p90, p99] = percentiles;
        Ok(Analytics {
            days,
            since,
            total_jobs: totals.iter().map(|t| t.jobs).sum(),
            completed_jobs: completed.jobs,
            failed_jobs: failed.jobs,
            cancelled_jobs: totals_of(&totals, JobStatus::Cancelled).jobs,
            success_rate,
            failure_rate,
            average_duration_ms: stats::mean_rounded(completed.duration_ms_sum, completed.timed),
            p50_duration_ms: p50,
            p90_duration_ms: p90,
            p99_duration_ms: p99,
            slowest_workflows: self
                .ports
                .stats
                .slowest_workflows(&scope, SLOWEST_WORKFLOWS)
                .await?,
            error_distribution: self.ports.stats.error_counts(&scope, ERROR_TYPES).await?,
            self_healing_success_rate: stats::percent(
                completed.retried,
                completed.retried + failed.retried,
            ),
        })
    }

    /// The activity feed: matching events newest first, and how many match in all.
    pub async fn activity(&self, filter: &EventFilter) -> Result<(Vec<Event>, u64), ServiceError> {
        Ok(self.ports.events.list_events(filter).await?)
    }
}

/// Midnight UTC of the day `now` falls on: where "today" starts for every server, whatever
/// its local time zone.
pub fn start_of_day(now: Timestamp) -> Timestamp {
    now.to_offset(time::UtcOffset::UTC)
        .replace_time(time::Time::MIDNIGHT)
}

/// The totals of `status`, all zero when the scope has no job in it.
fn totals_of(totals: &[StatusTotals], status: JobStatus) -> StatusTotals {
    totals
        .iter()
        .find(|t| t.status == status)
        .copied()
        .unwrap_or(StatusTotals {
            status,
            jobs: 0,
            retried: 0,
            timed: 0,
            duration_ms_sum: 0,
        })
}

fn count<T>(items: impl Iterator<Item = T>) -> u64 {
    // A count of items in memory fits in u64 on every platform Rust supports.
    u64::try_from(items.count()).unwrap_or(u64::MAX)
}
