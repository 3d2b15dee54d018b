//! `JobStatsRepository`: aggregates over jobs for the metrics, computed by the database.
//!
//! Every query is written once for both backends. Durations come from the `duration_ms` column
//! that every job write fills in (see `JobRow`), so no backend-specific date arithmetic is
//! needed; sums and averages are cast to `BIGINT` and `DOUBLE PRECISION`, types both databases
//! know (SQLite gives `DOUBLE PRECISION` real affinity), so PostgreSQL's `numeric` results never
//! reach diesel.

use async_trait::async_trait;
use baton_domain::RepoResult;
use baton_domain::ids::WorkflowId;
use baton_domain::job::JobStatus;
use baton_domain::ports::{
    ErrorCount, JobScope, JobStatsRepository, StatusTotals, WorkflowDuration,
};
use diesel::dsl::{count, count_star, max, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};
use diesel_async::RunQueryDsl;

use super::rows::to_u64;
use crate::db::Db;
use crate::error::{DbResult, corrupt};
use crate::schema::jobs;
use crate::sql_types::{DbTime, DbUuid};

/// Jobs that went back to pending at least once.
const RETRIED: &str =
    "CAST(COALESCE(SUM(CASE WHEN retry_count > 0 THEN 1 ELSE 0 END), 0) AS BIGINT)";
/// The sum of the durations of the jobs that have one.
const DURATION_SUM: &str = "CAST(COALESCE(SUM(duration_ms), 0) AS BIGINT)";
/// The mean duration of a group of jobs that all have one.
const DURATION_AVG: &str = "CAST(AVG(duration_ms) AS DOUBLE PRECISION)";
/// Error types in order, a missing one first on both backends (PostgreSQL sorts NULL last,
/// SQLite first).
const ERROR_TYPE_ORDER: &str = "COALESCE(error_type, '')";

/// `$query` (a boxed query over `jobs`) narrowed to the jobs of `$scope`, with `$robot` the
/// scope's robot id as text. A macro, so each backend's expansion filters its own query type.
macro_rules! within {
    ($query:expr, $scope:expr, $robot:expr) => {{
        let mut query = $query;
        if let Some(since) = $scope.created_since {
            query = query.filter(jobs::created_at.ge(DbTime(since)));
        }
        if let Some(since) = $scope.ended_since {
            query = query.filter(jobs::completed_at.ge(DbTime(since)));
        }
        if let Some(robot) = $robot {
            query = query.filter(jobs::robot_id.eq(robot));
        }
        query
    }};
}

/// The scope's robot id as the column stores it.
fn robot_of(scope: &JobScope) -> Option<&str> {
    scope.robot_id.as_ref().map(|r| r.as_str())
}

fn parse_status(text: &str) -> DbResult<JobStatus> {
    text.parse().map_err(|e| corrupt("job status", e))
}

#[async_trait]
impl JobStatsRepository for Db {
    async fn job_totals(&self, scope: &JobScope) -> RepoResult<Vec<StatusTotals>> {
        let robot = robot_of(scope);
        let rows: Vec<(String, i64, i64, i64, i64)> = crate::with_conn!(self, |conn| {
            let grouped = jobs::table
                .group_by(jobs::status)
                .select((
                    jobs::status,
                    count_star(),
                    sql::<BigInt>(RETRIED),
                    count(jobs::duration_ms),
                    sql::<BigInt>(DURATION_SUM),
                ))
                .into_boxed();
            Ok(within!(grouped, scope, robot).load(conn).await?)
        })?;
        let mut totals = rows
            .into_iter()
            .map(|(status, jobs, retried, timed, duration_ms_sum)| {
                Ok(StatusTotals {
                    status: parse_status(&status)?,
                    jobs: to_u64(jobs, "job count")?,
                    retried: to_u64(retried, "retried job count")?,
                    timed: to_u64(timed, "timed job count")?,
                    duration_ms_sum,
                })
            })
            .collect::<DbResult<Vec<_>>>()?;
        totals.sort_by_key(|t| JobStatus::ALL.iter().position(|s| *s == t.status));
        Ok(totals)
    }

    async fn completed_duration_at(&self, scope: &JobScope, rank: u64) -> RepoResult<Option<i64>> {
        // A rank past i64::MAX is past the end of any table.
        let Ok(offset) = i64::try_from(rank) else {
            return Ok(None);
        };
        let robot = robot_of(scope);
        let value: Option<Option<i64>> = crate::with_conn!(self, |conn| {
            let completed = jobs::table
                .select(jobs::duration_ms)
                .filter(jobs::status.eq(JobStatus::Completed.as_str()))
                .filter(jobs::duration_ms.is_not_null())
                .into_boxed();
            Ok(within!(completed, scope, robot)
                .order((jobs::duration_ms.asc(), jobs::id.asc()))
                .limit(1)
                .offset(offset)
                .first::<Option<i64>>(conn)
                .await
                .optional()?)
        })?;
        Ok(value.flatten())
    }

    async fn slowest_workflows(
        &self,
        scope: &JobScope,
        limit: u32,
    ) -> RepoResult<Vec<WorkflowDuration>> {
        let robot = robot_of(scope);
        let rows: Vec<(DbUuid, Option<String>, f64, i64)> = crate::with_conn!(self, |conn| {
            let grouped = jobs::table
                .group_by(jobs::workflow_id)
                .select((
                    jobs::workflow_id,
                    max(jobs::workflow_name),
                    sql::<Double>(DURATION_AVG),
                    count_star(),
                ))
                .filter(jobs::status.eq(JobStatus::Completed.as_str()))
                .filter(jobs::duration_ms.is_not_null())
                .into_boxed();
            Ok(within!(grouped, scope, robot)
                .order((sql::<Double>(DURATION_AVG).desc(), jobs::workflow_id.asc()))
                .limit(i64::from(limit))
                .load(conn)
                .await?)
        })?;
        Ok(rows
            .into_iter()
            .map(|(workflow_id, name, average, completed)| {
                Ok(WorkflowDuration {
                    workflow_id: WorkflowId::from_uuid(workflow_id.0),
                    // Every group has at least one job, and every job a name.
                    workflow_name: name.unwrap_or_default(),
                    average_duration_ms: average,
                    completed_jobs: to_u64(completed, "completed job count")?,
                })
            })
            .collect::<DbResult<Vec<_>>>()?)
    }

    async fn error_counts(&self, scope: &JobScope, limit: u32) -> RepoResult<Vec<ErrorCount>> {
        let robot = robot_of(scope);
        let rows: Vec<(Option<String>, i64)> = crate::with_conn!(self, |conn| {
            let grouped = jobs::table
                .group_by(jobs::error_type)
                .select((jobs::error_type, count_star()))
                .filter(jobs::status.eq(JobStatus::Failed.as_str()))
                .into_boxed();
            Ok(within!(grouped, scope, robot)
                .order((count_star().desc(), sql::<Text>(ERROR_TYPE_ORDER).asc()))
                .limit(i64::from(limit))
                .load(conn)
                .await?)
        })?;
        Ok(rows
            .into_iter()
            .map(|(error_type, count)| {
                Ok(ErrorCount {
                    error_type,
                    count: to_u64(count, "failed job count")?,
                })
            })
            .collect::<DbResult<Vec<_>>>()?)
    }
}
