//! `JobRepository`: jobs with their events, optimistic updates, and the atomic claim of the
//! highest-priority, oldest pending jobs.

use async_trait::async_trait;
use baton_domain::event::Event;
use baton_domain::ids::{EventId, JobId};
use baton_domain::job::{Job, JobStatus};
use baton_domain::ports::{JobChange, JobFilter, JobRepository};
use baton_domain::robot::RobotId;
use baton_domain::{RepoError, RepoResult, Timestamp};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

mod batch_update;
pub(super) mod row;

use std::collections::HashSet;

use self::row::{JobRow, parse_status};
use super::rows::to_u64;
use crate::db::Db;
use crate::error::{DbError, DbResult, map_pool};
use crate::pool::{Pools, SqliteConn};
use crate::schema::jobs;
use crate::sql_types::{DbTime, DbUuid, UtcTime, Uuid};

fn rows_to_jobs(rows: Vec<JobRow>) -> DbResult<Vec<Job>> {
    rows.into_iter().map(JobRow::into_domain).collect()
}

/// `now` plus a lease, refusing instead of panicking at the end of the calendar.
fn lease_end(now: Timestamp, seconds: u32) -> DbResult<DbTime> {
    now.checked_add(time::Duration::seconds(i64::from(seconds)))
        .map(DbTime)
        .ok_or_else(|| {
            DbError(RepoError::Internal(
                "the lease would end past the supported time range".to_owned(),
            ))
        })
}

/// `'pending'` as an SQL literal rather than a bind parameter, so that both planners can match
/// the claim query to the partial index `jobs_claim … WHERE status = 'pending'` (neither may
/// assume a parameter equals the index's constant).
fn pending_literal() -> diesel::expression::SqlLiteral<diesel::sql_types::Text> {
    diesel::dsl::sql::<diesel::sql_types::Text>("'pending'")
}

/// The claim of the highest-priority, oldest pending jobs and its `job_claimed` events, shared
/// by both backends except for how the chosen ids reach the UPDATE (`$chosen`, given the
/// candidate subselect):
/// - PostgreSQL runs the subselect first with `FOR UPDATE SKIP LOCKED`, so concurrent claimers
///   pass over each other's rows, then updates exactly those ids. (Inlined as `id IN (subselect)`,
///   the planner may rescan the subselect once per row of a nested loop; a rescan skips the rows
///   this statement has already updated and returns the next ones, claiming far more than
///   `limit`.)
/// - SQLite uses the subselect inline, in the one UPDATE: it evaluates an uncorrelated `IN` once,
///   and `BEGIN IMMEDIATE` already serialises writers.
///
/// The UPDATE finds the chosen jobs by id alone. Repeating `status = 'pending'` there is not
/// needed for safety: on PostgreSQL, `FOR UPDATE` re-checks the filter on the newest version of a
/// row changed after the candidates were read, and the rows it returns stay locked until commit;
/// on SQLite no other writer runs. It would also be harmful: the predicate matches the partial
/// index `jobs_claim`, and with the statistics of a backlog queued before autovacuum's ANALYZE,
/// PostgreSQL then finds the ids by scanning all of `jobs_claim` (id is its last column), so every
/// claim reads the whole backlog (measured: ~5,000 index entries per claim on a 12,000-job
/// backlog).
macro_rules! claim_jobs_in {
    (
        $conn:ident, $robot:expr, $now:expr, $expires:expr, $limit:expr,
        |$candidates:ident| $chosen:expr
    ) => {{
        diesel::alias!(jobs as pending: PendingJobs);
        let $candidates = pending
            .filter(pending.field(jobs::status).eq(pending_literal()))
            .order((
                pending.field(jobs::priority).asc(),
                pending.field(jobs::created_at).asc(),
                pending.field(jobs::id).asc(),
            ))
            .limit($limit)
            .select(pending.field(jobs::id));
        let rows: Vec<JobRow> = diesel::update(jobs::table)
            .filter(jobs::id.eq_any($chosen))
            .set((
                jobs::status.eq(JobStatus::Claimed.as_str()),
                jobs::robot_id.eq(Some($robot)),
                // Each claim is one more attempt, as `Job::claim` counts them.
                jobs::attempt.eq(jobs::attempt + 1),
                jobs::claimed_at.eq(Some(DbTime($now))),
                jobs::lease_expires_at.eq(Some($expires)),
                jobs::updated_at.eq(DbTime($now)),
                jobs::version.eq(jobs::version + 1),
            ))
            .returning(JobRow::as_returning())
            .get_results($conn)
            .await?;
        let mut claimed = rows_to_jobs(rows)?;
        // RETURNING gives no order: hand the jobs out in claim order.
        claimed.sort_by_key(|job| (job.priority(), job.created_at(), job.id()));
        let events: Vec<Event> = claimed
            .iter()
            .map(|job| {
                Event::job_changed(EventId::from_uuid(uuid::Uuid::now_v7()), job, false, $now)
            })
            .collect();
        crate::append_event_rows!($conn, &events);
        Ok(claimed)
    }};
}

/// The version-checked UPDATE of one job (`$job: &Job`, as read) to `$row` (its next version),
/// on `$conn` inside the caller's transaction. Evaluates to the stored row, or to the refusal:
/// `NotFound`, or `Conflict` when the stored version moved; driver errors return with `?`.
macro_rules! update_if_unchanged {
    ($conn:ident, $job:expr, $row:expr) => {{
        let job: &Job = $job;
        let id = DbUuid(*job.id().as_uuid());
        let version = job.version();
        let updated: Option<JobRow> = diesel::update(
            jobs::table
                .filter(jobs::id.eq(id))
                .filter(jobs::version.eq(version)),
        )
        .set($row)
        .returning(JobRow::as_returning())
        .get_result($conn)
        .await
        .optional()?;
        match updated {
            Some(updated) => Ok(updated),
            // Nothing matched: tell a missing job from one that changed meanwhile.
            None => {
                let exists: i64 = jobs::table.find(id).count().get_result($conn).await?;
                Err(if exists == 0 {
                    RepoError::NotFound("job")
                } else {
                    RepoError::Conflict(format!("job {} changed since version {version}", job.id()))
                })
            }
        }
    }};
}

#[async_trait]
impl JobRepository for Db {
    async fn insert_job(&self, job: &Job, events: &[Event]) -> RepoResult<()> {
        crate::transaction!(self, |conn| {
            crate::insert_job_row!(conn, job);
            crate::append_event_rows!(conn, events);
            Ok(())
        })?;
        Ok(())
    }

    async fn get_job(&self, id: JobId) -> RepoResult<Job> {
        let id = DbUuid(*id.as_uuid());
        let row: Option<JobRow> = crate::with_conn!(self, |conn| {
            Ok(jobs::table
                .find(id)
                .select(JobRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row.ok_or(RepoError::NotFound("job"))?.into_domain()?)
    }

    async fn list_jobs(&self, filter: &JobFilter) -> RepoResult<Vec<Job>> {
        let robot = filter.robot_id.as_ref().map(|r| r.as_str().to_owned());
        let rows: Vec<JobRow> = crate::with_conn!(self, |conn| {
            let mut query = jobs::table.select(JobRow::as_select()).into_boxed();
            if let Some(status) = filter.status {
                query = query.filter(jobs::status.eq(status.as_str()));
            }
            if let Some(workflow) = filter.workflow_id {
                query = query.filter(jobs::workflow_id.eq(DbUuid(*workflow.as_uuid())));
            }
            if let Some(robot) = &robot {
                query = query.filter(jobs::robot_id.eq(robot));
            }
            if let Some(after) = filter.created_after {
                query = query.filter(jobs::created_at.gt(DbTime(after)));
            }
            if let Some(before) = filter.created_before {
                query = query.filter(jobs::created_at.lt(DbTime(before)));
            }
            if let Some(cursor) = filter.after {
                // A row comparison, which both planners read as one range of the index from the
                // cursor on; the equivalent `created < c OR (created = c AND id < i)` is not.
                query = query.filter(
                    diesel::dsl::sql::<diesel::sql_types::Bool>("(created_at, id) < (")
                        .bind::<UtcTime, _>(DbTime(cursor.created_at))
                        .sql(", ")
                        .bind::<Uuid, _>(DbUuid(*cursor.id.as_uuid()))
                        .sql(")"),
                );
            }
            Ok(query
                .order((jobs::created_at.desc(), jobs::id.desc()))
                .limit(i64::from(filter.limit))
                .load(conn)
                .await?)
        })?;
        Ok(rows_to_jobs(rows)?)
    }

    async fn claim_jobs(
        &self,
        robot: &RobotId,
        now: Timestamp,
        lease_seconds: u32,
        limit: u32,
    ) -> RepoResult<Vec<Job>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let robot = robot.as_str();
        let expires = lease_end(now, lease_seconds)?;
        let limit = i64::from(limit);
        // The one query written per backend: see `claim_jobs_in!`.
        let claimed = match self.pools() {
            Pools::Pg(pool) => {
                let mut guard = pool.get().await.map_err(map_pool)?;
                let conn: &mut AsyncPgConnection = &mut guard;
                conn.transaction(async |conn: &mut AsyncPgConnection| -> DbResult<_> {
                    // Without fresh statistics (a backlog just queued, before autovacuum's
                    // ANALYZE) the planner expects a handful of pending jobs and reads them all
                    // through a bitmap scan, then sorts them: every claim costs the whole
                    // backlog (measured 4.6 ms for 50 of 10,000). Walking `jobs_claim` in order
                    // stops after `limit` rows (0.9 ms), whatever the statistics say.
                    diesel::sql_query("SET LOCAL enable_bitmapscan = off")
                        .execute(conn)
                        .await?;
                    claim_jobs_in!(conn, robot, now, expires, limit, |candidates| candidates
                        .for_update()
                        .skip_locked()
                        .load::<DbUuid>(conn)
                        .await?)
                })
                .await?
            }
            Pools::Sqlite(pool) => {
                let mut guard = pool.get().await.map_err(map_pool)?;
                // One writer at a time: see `Db::sqlite_writer`.
                let _turn = self.sqlite_writer.lock().await;
                guard
                    .immediate_transaction(async |conn: &mut SqliteConn| -> DbResult<_> {
                        claim_jobs_in!(conn, robot, now, expires, limit, |candidates| candidates)
                    })
                    .await?
            }
        };
        Ok(claimed)
    }

    async fn update_job(&self, job: &Job, events: &[Event]) -> RepoResult<Job> {
        // The row carries the next version; the UPDATE checks the one that was read.
        let mut changes = JobRow::from_domain(job)?;
        changes.version = job.version() + 1;
        let row: JobRow = crate::transaction!(self, |conn| {
            // A refusal aborts the transaction, so the events are not written.
            let updated = update_if_unchanged!(conn, job, &changes)?;
            crate::append_event_rows!(conn, events);
            Ok(updated)
        })?;
        Ok(row.into_domain()?)
    }

    async fn get_jobs(&self, ids: &[JobId]) -> RepoResult<Vec<Job>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<DbUuid> = ids.iter().map(|id| DbUuid(*id.as_uuid())).collect();
        let rows: Vec<JobRow> = crate::with_conn!(self, |conn| {
            Ok(jobs::table
                .filter(jobs::id.eq_any(&ids))
                .select(JobRow::as_select())
                .load(conn)
                .await?)
        })?;
        Ok(rows_to_jobs(rows)?)
    }

    async fn update_jobs_each(&self, changes: &[JobChange]) -> RepoResult<Vec<RepoResult<Job>>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let rows = changes
            .iter()
            .map(|change| {
                let mut row = JobRow::from_domain(&change.job)?;
                row.version = change.job.version() + 1;
                Ok(row)
            })
            .collect::<DbResult<Vec<JobRow>>>()?;
        match self.pools() {
            Pools::Pg(pool) => {
                // One statement for the batch: see `batch_update`.
                let checked = changes.iter().map(|change| change.job.version());
                let update = batch_update::update_from_arrays(rows.into_iter().zip(checked));
                let mut guard = pool.get().await.map_err(map_pool)?;
                let conn: &mut AsyncPgConnection = &mut guard;
                let outcomes = conn
                    .transaction(async |conn: &mut AsyncPgConnection| -> DbResult<_> {
                        let updated: Vec<batch_update::UpdatedId> = update.load(conn).await?;
                        let matched: HashSet<uuid::Uuid> =
                            updated.into_iter().map(|row| row.id.0).collect();
                        let mut updated = matched.clone();
                        let unmatched: Vec<DbUuid> = changes
                            .iter()
                            .map(|change| DbUuid(*change.job.id().as_uuid()))
                            .filter(|id| !updated.contains(&id.0))
                            .collect();
                        let existing: HashSet<uuid::Uuid> = if unmatched.is_empty() {
                            HashSet::new()
                        } else {
                            jobs::table
                                .filter(jobs::id.eq_any(&unmatched))
                                .select(jobs::id)
                                .load::<DbUuid>(conn)
                                .await?
                                .into_iter()
                                .map(|id| id.0)
                                .collect()
                        };
                        let mut events = Vec::new();
                        let outcomes = changes
                            .iter()
                            .map(|change| {
                                let id = change.job.id();
                                // Taken out of the set, so a job listed twice is stored once.
                                if updated.remove(id.as_uuid()) {
                                    events.extend(change.events.iter().cloned());
                                    let mut stored = change.job.clone();
                                    stored.mark_stored();
                                    Ok(stored)
                                } else if existing.contains(id.as_uuid())
                                    || matched.contains(id.as_uuid())
                                {
                                    Err(RepoError::Conflict(format!(
                                        "job {id} changed since version {}",
                                        change.job.version()
                                    )))
                                } else {
                                    Err(RepoError::NotFound("job"))
                                }
                            })
                            .collect::<Vec<_>>();
                        crate::append_event_rows!(conn, &events);
                        Ok(outcomes)
                    })
                    .await?;
                Ok(outcomes)
            }
            Pools::Sqlite(pool) => Ok(update_each_row_by_row(self, pool, changes, rows).await?),
        }
    }

    async fn expired_job_leases(&self, now: Timestamp, limit: u32) -> RepoResult<Vec<Job>> {
        let rows: Vec<JobRow> = crate::with_conn!(self, |conn| {
            Ok(jobs::table
                .filter(
                    jobs::status.eq_any([JobStatus::Claimed.as_str(), JobStatus::Running.as_str()]),
                )
                .filter(jobs::lease_expires_at.le(DbTime(now)))
                .order((jobs::lease_expires_at.asc(), jobs::id.asc()))
                .limit(i64::from(limit))
                .select(JobRow::as_select())
                .load(conn)
                .await?)
        })?;
        Ok(rows_to_jobs(rows)?)
    }

    async fn count_jobs_by_status(&self) -> RepoResult<Vec<(JobStatus, u64)>> {
        let counts: Vec<(String, i64)> = crate::with_conn!(self, |conn| {
            Ok(jobs::table
                .group_by(jobs::status)
                .select((jobs::status, diesel::dsl::count_star()))
                .load::<(String, i64)>(conn)
                .await?)
        })?;
        let mut counts = counts
            .into_iter()
            .map(|(status, count)| Ok((parse_status(&status)?, to_u64(count, "job count")?)))
            .collect::<DbResult<Vec<_>>>()?;
        // In the order of the job's life, so callers and tests see a stable list.
        counts.sort_by_key(|(status, _)| JobStatus::ALL.iter().position(|s| s == status));
        Ok(counts)
    }
}

/// `update_jobs_each` one version-checked UPDATE per job, as `update_job` does, all in one
/// transaction: SQLite's path (see `batch_update` for why PostgreSQL's differs). The UPDATEs run
/// in one call on the connection's thread: one call each would hand every statement to that
/// thread and back while the transaction holds SQLite's only write lock.
async fn update_each_row_by_row(
    db: &Db,
    pool: &crate::pool::SqlitePool,
    changes: &[JobChange],
    rows: Vec<JobRow>,
) -> DbResult<Vec<RepoResult<Job>>> {
    let checked: Vec<(DbUuid, i64, JobRow)> = changes
        .iter()
        .zip(rows)
        .map(|(change, row)| {
            (
                DbUuid(*change.job.id().as_uuid()),
                change.job.version(),
                row,
            )
        })
        .collect();
    let mut guard = pool.get().await.map_err(map_pool)?;
    // One writer at a time: see `Db::sqlite_writer`.
    let _turn = db.sqlite_writer.lock().await;
    guard
        .immediate_transaction(async |conn: &mut SqliteConn| -> DbResult<_> {
            // For each job, its stored row, or whether a job of its id exists at all.
            let updated: Vec<Result<JobRow, bool>> = conn
                .spawn_blocking(move |conn| {
                    checked
                        .iter()
                        .map(|(id, version, row)| {
                            let updated = diesel::RunQueryDsl::get_result(
                                diesel::update(
                                    jobs::table
                                        .filter(jobs::id.eq(*id))
                                        .filter(jobs::version.eq(*version)),
                                )
                                .set(row)
                                .returning(JobRow::as_returning()),
                                conn,
                            )
                            .optional()?;
                            match updated {
                                Some(updated) => Ok(Ok(updated)),
                                None => {
                                    let found: i64 = diesel::RunQueryDsl::get_result(
                                        jobs::table.find(*id).count(),
                                        conn,
                                    )?;
                                    Ok(Err(found > 0))
                                }
                            }
                        })
                        .collect::<diesel::QueryResult<_>>()
                })
                .await?;
            let mut outcomes = Vec::with_capacity(changes.len());
            let mut events = Vec::new();
            for (change, updated) in changes.iter().zip(updated) {
                outcomes.push(match updated {
                    Ok(row) => {
                        events.extend(change.events.iter().cloned());
                        Ok(row.into_domain()?)
                    }
                    Err(true) => Err(RepoError::Conflict(format!(
                        "job {} changed since version {}",
                        change.job.id(),
                        change.job.version()
                    ))),
                    Err(false) => Err(RepoError::NotFound("job")),
                });
            }
            crate::append_event_rows!(conn, &events);
            Ok(outcomes)
        })
        .await
}
