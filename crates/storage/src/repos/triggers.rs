//! `TriggerRepository`: the ways a workflow starts by itself, and the fires that start it.

mod fires;
mod row;

use async_trait::async_trait;
use baton_domain::event::Event;
use baton_domain::ids::{JobId, TriggerId};
use baton_domain::job::Job;
use baton_domain::ports::{DueCursor, FireRecord, TriggerFilter, TriggerRepository};
use baton_domain::trigger::{Trigger, TriggerName, TriggerType};
use baton_domain::{RepoError, RepoResult, Timestamp};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use self::row::{TriggerRow, bumped_row};
use crate::db::Db;
use crate::error::{DbError, DbResult, map_diesel};
use crate::schema::triggers;
use crate::sql_types::{DbTime, DbUuid, UtcTime, Uuid};

/// Maps a write's driver error; a uniqueness violation names the trigger, since a taken name is
/// the usual cause.
fn write_error(trigger: &Trigger) -> impl Fn(diesel::result::Error) -> DbError + '_ {
    move |e| match map_diesel(e) {
        RepoError::Conflict(_) => DbError(RepoError::Conflict(format!(
            "a trigger named '{}' (or with this id) already exists",
            trigger.name()
        ))),
        other => DbError(other),
    }
}

fn into_domain_all(rows: Vec<TriggerRow>) -> RepoResult<Vec<Trigger>> {
    Ok(rows
        .into_iter()
        .map(TriggerRow::into_domain)
        .collect::<DbResult<_>>()?)
}

#[async_trait]
impl TriggerRepository for Db {
    async fn insert_trigger(&self, trigger: &Trigger) -> RepoResult<()> {
        let row = TriggerRow::from_domain(trigger);
        crate::with_conn!(self, |conn| {
            diesel::insert_into(triggers::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(write_error(trigger))?;
            Ok(())
        })
        .map_err(Into::into)
    }

    async fn get_trigger(&self, id: TriggerId) -> RepoResult<Trigger> {
        let id = DbUuid(*id.as_uuid());
        let row: Option<TriggerRow> = crate::with_conn!(self, |conn| {
            Ok(triggers::table
                .find(id)
                .select(TriggerRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row.ok_or(RepoError::NotFound("trigger"))?.into_domain()?)
    }

    async fn get_trigger_by_name(&self, name: &TriggerName) -> RepoResult<Trigger> {
        let name = name.as_str().to_owned();
        let row: Option<TriggerRow> = crate::with_conn!(self, |conn| {
            Ok(triggers::table
                .filter(triggers::name.eq(&name))
                .select(TriggerRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row.ok_or(RepoError::NotFound("trigger"))?.into_domain()?)
    }

    /// A `limit` of 0 (the filter's default) means no limit.
    async fn list_triggers(&self, filter: &TriggerFilter) -> RepoResult<Vec<Trigger>> {
        let trigger_type = filter.trigger_type.map(TriggerType::as_str);
        let workflow = filter.workflow_id.map(|w| DbUuid(*w.as_uuid()));
        let enabled = filter.enabled;
        let limit = filter.limit;
        let after = filter.after;
        let rows: Vec<TriggerRow> = crate::with_conn!(self, |conn| {
            let mut query = triggers::table
                .order((triggers::created_at.asc(), triggers::id.asc()))
                .select(TriggerRow::as_select())
                .into_boxed();
            if let Some(trigger_type) = trigger_type {
                query = query.filter(triggers::trigger_type.eq(trigger_type));
            }
            if let Some(workflow) = workflow {
                query = query.filter(triggers::workflow_id.eq(workflow));
            }
            if let Some(enabled) = enabled {
                query = query.filter(triggers::enabled.eq(enabled));
            }
            if let Some(cursor) = after {
                // A row comparison, as queue items' cursors are: one range of the
                // (created_at, id) order from the cursor on.
                query = query.filter(
                    diesel::dsl::sql::<diesel::sql_types::Bool>("(created_at, id) > (")
                        .bind::<UtcTime, _>(DbTime(cursor.created_at))
                        .sql(", ")
                        .bind::<Uuid, _>(DbUuid(*cursor.id.as_uuid()))
                        .sql(")"),
                );
            }
            if limit > 0 {
                query = query.limit(i64::from(limit));
            }
            Ok(query.load(conn).await?)
        })?;
        into_domain_all(rows)
    }

    async fn update_trigger(&self, trigger: &Trigger) -> RepoResult<Trigger> {
        let row = bumped_row(trigger);
        crate::transaction!(self, |conn| {
            let updated = diesel::update(
                triggers::table
                    .find(row.id)
                    .filter(triggers::version.eq(trigger.version())),
            )
            .set(&row)
            .execute(conn)
            .await
            .map_err(write_error(trigger))?;
            if updated == 0 {
                let exists: bool =
                    diesel::select(diesel::dsl::exists(triggers::table.find(row.id)))
                        .get_result(conn)
                        .await?;
                return Err(if exists {
                    RepoError::Conflict(
                        "the trigger changed meanwhile; reload it and retry".to_owned(),
                    )
                } else {
                    RepoError::NotFound("trigger")
                }
                .into());
            }
            Ok(())
        })?;
        Ok({
            let mut stored = trigger.clone();
            stored.mark_stored();
            stored
        })
    }

    async fn delete_trigger(&self, id: TriggerId) -> RepoResult<()> {
        let id = DbUuid(*id.as_uuid());
        let deleted: usize = crate::with_conn!(self, |conn| {
            Ok(diesel::delete(triggers::table.find(id))
                .execute(conn)
                .await?)
        })?;
        if deleted == 0 {
            return Err(RepoError::NotFound("trigger"));
        }
        Ok(())
    }

    /// Two reads, each following `triggers_fireable` instead of sorting every due trigger: first
    /// the triggers due by time, the longest overdue first (the index's order), then, while the
    /// limit allows, the others (QUEUE triggers, SINGLE ones without a time). With thousands of
    /// schedules due at once, one sorted read per batch cost more than the batch's writes.
    async fn due_trigger_candidates(&self, now: Timestamp, limit: u32) -> RepoResult<Vec<Trigger>> {
        let now = DbTime(now);
        let rows: Vec<TriggerRow> = crate::with_conn!(self, |conn| {
            let mut rows: Vec<TriggerRow> = triggers::table
                .filter(fireable())
                .filter(triggers::next_run.le(now))
                .order((triggers::next_run.asc(), triggers::id.asc()))
                .limit(i64::from(limit))
                .select(TriggerRow::as_select())
                .load(conn)
                .await?;
            let rest = i64::from(limit) - rows.len() as i64;
            if rest > 0 {
                // SINGLE triggers without a time, and QUEUE triggers with one still ahead (a
                // QUEUE trigger fires on its items, not its time), after the due ones; NULLs are
                // ordered explicitly, as the backends sort them differently.
                let queue = triggers::trigger_type.eq(TriggerType::Queue.as_str());
                rows.extend(
                    triggers::table
                        .filter(fireable())
                        .filter(
                            triggers::next_run
                                .is_null()
                                .or(queue.and(triggers::next_run.gt(now))),
                        )
                        .order((
                            triggers::next_run.is_null().asc(),
                            triggers::next_run.asc(),
                            triggers::id.asc(),
                        ))
                        .limit(rest)
                        .select(TriggerRow::as_select())
                        .load::<TriggerRow>(conn)
                        .await?,
                );
            }
            Ok(rows)
        })?;
        into_domain_all(rows)
    }

    /// The same walk of `triggers_fireable` as the first read above, from just after `after`:
    /// the row comparison is one range of the index on both backends.
    async fn due_trigger_candidates_after(
        &self,
        now: Timestamp,
        after: DueCursor,
        limit: u32,
    ) -> RepoResult<Vec<Trigger>> {
        let now = DbTime(now);
        let rows: Vec<TriggerRow> = crate::with_conn!(self, |conn| {
            let past_cursor = diesel::dsl::sql::<diesel::sql_types::Bool>("(next_run, id) > (")
                .bind::<UtcTime, _>(DbTime(after.next_run))
                .sql(", ")
                .bind::<Uuid, _>(DbUuid(*after.id.as_uuid()))
                .sql(")");
            Ok(triggers::table
                .filter(fireable())
                .filter(triggers::next_run.le(now))
                .filter(past_cursor)
                .order((triggers::next_run.asc(), triggers::id.asc()))
                .limit(i64::from(limit))
                .select(TriggerRow::as_select())
                .load(conn)
                .await?)
        })?;
        into_domain_all(rows)
    }

    /// One fire through [`TriggerRepository::record_fires`], so a fire is stored one way only.
    async fn record_fire(&self, trigger: &Trigger, job: &Job, events: &[Event]) -> RepoResult<()> {
        let fire = FireRecord {
            trigger: trigger.clone(),
            job: job.clone(),
            events: events.to_vec(),
        };
        self.write_fires(std::slice::from_ref(&fire))
            .await?
            .pop()
            .unwrap_or_else(|| Err(RepoError::Internal("no outcome for the fire".to_owned())))
    }

    async fn record_fires(&self, fires: &[FireRecord]) -> RepoResult<Vec<RepoResult<()>>> {
        self.write_fires(fires).await
    }

    async fn triggers_for_job(&self, job: JobId) -> RepoResult<Vec<Trigger>> {
        let job = DbUuid(*job.as_uuid());
        let rows: Vec<TriggerRow> = crate::with_conn!(self, |conn| {
            Ok(triggers::table
                .filter(triggers::current_job_id.eq(job))
                .order((triggers::created_at.asc(), triggers::id.asc()))
                .select(TriggerRow::as_select())
                .load(conn)
                .await?)
        })?;
        into_domain_all(rows)
    }
}

/// The statuses in which a trigger may fire (see `Trigger::is_due`), as the predicate of the
/// partial index `triggers_fireable` (migration `2026-12-01-000000_triggers_fireable`), character
/// for character: a planner uses a partial index only when it can prove the query's WHERE clause
/// implies the index's, and it compares expressions to do so. Literals rather than bound
/// parameters for the same reason: PostgreSQL cannot prove anything about a generic plan's
/// `$1`. Without the status filters, enough DONE SINGLE triggers (whose `next_run` stays in the
/// past) would fill every batch and starve the ones that are due.
const FIREABLE: &str = "enabled AND ((trigger_type = 'SINGLE' AND process_status = 'IDLE') \
OR (trigger_type = 'SCHEDULED' AND process_status NOT IN ('PAUSED', 'PAUSING', 'KILLING') \
AND (NOT is_blocking OR process_status <> 'RUNNING')) \
OR (trigger_type = 'QUEUE' AND process_status = 'IDLE'))";

fn fireable() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql::<diesel::sql_types::Bool>(FIREABLE)
}

#[cfg(test)]
mod tests {
    use super::FIREABLE;

    /// The index is only used while the query's predicate is the index's, character for
    /// character (`tests/contract/trigger_reads.rs` checks that PostgreSQL walks it).
    #[test]
    fn the_fireable_predicate_is_the_partial_index_predicate_on_both_backends() {
        for migration in [
            include_str!(
                "../../../../migrations/postgres/2026-12-01-000000_triggers_fireable/up.sql"
            ),
            include_str!(
                "../../../../migrations/sqlite/2026-12-01-000000_triggers_fireable/up.sql"
            ),
        ] {
            let index = migration
                .split("CREATE INDEX triggers_fireable ON triggers (next_run, id)\nWHERE ")
                .nth(1)
                .and_then(|rest| rest.strip_suffix(";\n"));
            assert_eq!(index, Some(FIREABLE));
        }
    }
}
