//! `TriggerRepository::record_fires`: the fires of an engine round in one transaction, each
//! trigger version-checked on its own, the winners' jobs and events written with multi-row
//! INSERTs. One transaction per fire bounded a server to what the database flushes per second;
//! here a commit carries hundreds of fires.
//!
//! Exactly once across servers: a fire's trigger row is stored only while its version is the
//! one the fire was judged on (`WHERE version = expected`), and only the fires whose row was
//! stored get their job and events.
//! - PostgreSQL: one `UPDATE … FROM unnest(…)` stores every row of the batch that still has its
//!   version and returns their ids; a row another transaction holds is waited for, then judged
//!   on its new version. A statement per row cost PostgreSQL an executor start each and this
//!   server a message and an answer each, for what is one set operation. Such an UPDATE locks
//!   its rows in whatever order the plan visits them, so two batches sharing triggers (two
//!   servers firing the same due ones) could deadlock: a batch first locks all its rows with
//!   one `SELECT … ORDER BY id FOR UPDATE`, so batches lock in one order and wait for each
//!   other instead, while batches of disjoint triggers (one round's) run side by side. Other
//!   writers (an API change, a job's end, a run-now) lock one trigger row at a time and wait for
//!   no other, so they cannot close a cycle.
//! - SQLite: `BEGIN IMMEDIATE` already serialises writers; the version-checked UPDATEs run one
//!   after another on the connection's thread, with no round trip between them.

use std::collections::HashSet;
use std::future::Future;

use baton_domain::ports::FireRecord;
use baton_domain::{RepoError, RepoResult};
use diesel::QueryResult;
use diesel::prelude::*;
use diesel_async::AsyncPgConnection;

use super::row::{TriggerRow, bumped_row};
use crate::db::Db;
use crate::pool::SqliteConn;
use crate::repos::event_rows::NewEventRow;
use crate::schema::triggers;
use crate::sql_types::{DbTime, DbUuid};

/// Why a fire whose trigger moved on was refused.
const MOVED: &str = "the trigger fired or changed meanwhile";

/// A trigger row to store, and the version the stored row must still have.
type CheckedRow = (TriggerRow, i64);

impl Db {
    /// Stores `fires` as the port's `record_fires` promises.
    pub(super) async fn write_fires(
        &self,
        fires: &[FireRecord],
    ) -> RepoResult<Vec<RepoResult<()>>> {
        if fires.is_empty() {
            return Ok(Vec::new());
        }
        // A trigger named twice fires once, by its first fire: a set UPDATE would store it once
        // yet answer for both, and the second's job would be written.
        let mut seen = HashSet::new();
        let first: Vec<bool> = fires.iter().map(|f| seen.insert(f.trigger.id())).collect();
        let rows: Vec<CheckedRow> = fires
            .iter()
            .zip(&first)
            .filter(|(_, first)| **first)
            .map(|(fire, _)| (bumped_row(&fire.trigger), fire.trigger.version()))
            .collect();
        let stored: Vec<bool> = crate::transaction!(self, |conn| {
            let mut matched = conn.store_checked(rows).await?.into_iter();
            let stored: Vec<bool> = first
                .iter()
                .map(|first| *first && matched.next() == Some(true))
                .collect();
            let winners = || {
                fires
                    .iter()
                    .zip(&stored)
                    .filter(|(_, stored)| **stored)
                    .map(|(fire, _)| fire)
            };
            crate::insert_job_rows!(conn, winners().map(|fire| &fire.job));
            // The event rows' own mapping, in statements of fixed sizes (unlike
            // `append_event_rows!`, which keeps one statement for callers without a transaction).
            let events: Vec<NewEventRow> = winners()
                .flat_map(|fire| fire.events.iter().map(NewEventRow::from_domain))
                .collect();
            crate::insert_rows_sized!(conn, crate::schema::events::table, events)?;
            Ok(stored)
        })?;
        Ok(stored
            .into_iter()
            .map(|stored| {
                if stored {
                    Ok(())
                } else {
                    Err(RepoError::Conflict(MOVED.to_owned()))
                }
            })
            .collect())
    }
}

/// Version-checked UPDATEs of trigger rows inside the caller's transaction, written per backend.
trait StoreChecked {
    /// Stores each row whose stored version is still the one given; answers, per row in the
    /// order given, whether it was stored.
    fn store_checked(
        &mut self,
        rows: Vec<CheckedRow>,
    ) -> impl Future<Output = QueryResult<Vec<bool>>> + Send;
}

impl StoreChecked for AsyncPgConnection {
    async fn store_checked(&mut self, rows: Vec<CheckedRow>) -> QueryResult<Vec<bool>> {
        let ids: Vec<DbUuid> = rows.iter().map(|(row, _)| row.id).collect();
        // Every row of the batch is locked first, in id order: see the module's comment.
        diesel_async::RunQueryDsl::execute(
            triggers::table
                .filter(triggers::id.eq_any(&ids))
                .order(triggers::id.asc())
                .select(triggers::id)
                .for_update(),
            &mut *self,
        )
        .await?;
        let stored: HashSet<DbUuid> =
            diesel_async::RunQueryDsl::load::<Stored>(update_all(rows), self)
                .await?
                .into_iter()
                .map(|row| row.id)
                .collect();
        Ok(ids.iter().map(|id| stored.contains(id)).collect())
    }
}

/// A trigger the batched UPDATE stored.
#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = crate::sql_types::Uuid)]
    id: DbUuid,
}

/// One UPDATE for every row of a PostgreSQL batch, each row still version-checked: the rows
/// travel as one array per column. A statement per row cost PostgreSQL its executor start and
/// this server a message each, for what is one set operation. Every column but `created_at` is
/// written, as the single-row update does.
const UPDATE_ALL: &str = "\
    UPDATE triggers AS t SET \
        name = v.name, trigger_type = v.trigger_type, workflow_id = v.workflow_id, \
        process_status = v.process_status, enabled = v.enabled, is_blocking = v.is_blocking, \
        priority = v.priority, execution_mode = v.execution_mode, \
        cron_expression = v.cron_expression, timezone = v.timezone, queue_name = v.queue_name, \
        min_batch_size = v.min_batch_size, process_args = v.process_args, \
        metadata = v.metadata, schedule_name = v.schedule_name, next_run = v.next_run, \
        last_run = v.last_run, run_count = v.run_count, failure_count = v.failure_count, \
        current_job_id = v.current_job_id, updated_at = v.updated_at, version = v.version \
    FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                $18, $19, $20, $21, $22, $23, $24) \
        AS v(id, expected, name, trigger_type, workflow_id, process_status, enabled, \
             is_blocking, priority, execution_mode, cron_expression, timezone, queue_name, \
             min_batch_size, process_args, metadata, schedule_name, next_run, last_run, \
             run_count, failure_count, current_job_id, updated_at, version) \
    WHERE t.id = v.id AND t.version = v.expected \
    RETURNING t.id";

/// [`UPDATE_ALL`] with `rows` bound, column by column.
fn update_all(
    rows: Vec<CheckedRow>,
) -> diesel::query_builder::BoxedSqlQuery<'static, diesel::pg::Pg, diesel::query_builder::SqlQuery>
{
    use crate::sql_types::{UtcTime, Uuid};
    use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};

    let mut c = Columns::default();
    for (row, expected) in rows {
        c.id.push(row.id);
        c.expected.push(expected);
        c.name.push(row.name);
        c.trigger_type.push(row.trigger_type);
        c.workflow_id.push(row.workflow_id);
        c.process_status.push(row.process_status);
        c.enabled.push(row.enabled);
        c.is_blocking.push(row.is_blocking);
        c.priority.push(row.priority);
        c.execution_mode.push(row.execution_mode);
        c.cron_expression.push(row.cron_expression);
        c.timezone.push(row.timezone);
        c.queue_name.push(row.queue_name);
        c.min_batch_size.push(row.min_batch_size);
        c.process_args.push(row.process_args);
        c.metadata.push(row.metadata);
        c.schedule_name.push(row.schedule_name);
        c.next_run.push(row.next_run);
        c.last_run.push(row.last_run);
        c.run_count.push(row.run_count);
        c.failure_count.push(row.failure_count);
        c.current_job_id.push(row.current_job_id);
        c.updated_at.push(row.updated_at);
        c.version.push(row.version);
    }
    diesel::sql_query(UPDATE_ALL)
        .into_boxed::<diesel::pg::Pg>()
        .bind::<Array<Uuid>, _>(c.id)
        .bind::<Array<BigInt>, _>(c.expected)
        .bind::<Array<Text>, _>(c.name)
        .bind::<Array<Text>, _>(c.trigger_type)
        .bind::<Array<Uuid>, _>(c.workflow_id)
        .bind::<Array<Text>, _>(c.process_status)
        .bind::<Array<Bool>, _>(c.enabled)
        .bind::<Array<Bool>, _>(c.is_blocking)
        .bind::<Array<Integer>, _>(c.priority)
        .bind::<Array<Text>, _>(c.execution_mode)
        .bind::<Array<Nullable<Text>>, _>(c.cron_expression)
        .bind::<Array<Nullable<Text>>, _>(c.timezone)
        .bind::<Array<Nullable<Text>>, _>(c.queue_name)
        .bind::<Array<Nullable<Integer>>, _>(c.min_batch_size)
        .bind::<Array<Text>, _>(c.process_args)
        .bind::<Array<Text>, _>(c.metadata)
        .bind::<Array<Nullable<Text>>, _>(c.schedule_name)
        .bind::<Array<Nullable<UtcTime>>, _>(c.next_run)
        .bind::<Array<Nullable<UtcTime>>, _>(c.last_run)
        .bind::<Array<BigInt>, _>(c.run_count)
        .bind::<Array<BigInt>, _>(c.failure_count)
        .bind::<Array<Nullable<Uuid>>, _>(c.current_job_id)
        .bind::<Array<UtcTime>, _>(c.updated_at)
        .bind::<Array<BigInt>, _>(c.version)
}

/// The rows of [`update_all`], one vector per column.
#[derive(Default)]
struct Columns {
    id: Vec<DbUuid>,
    expected: Vec<i64>,
    name: Vec<String>,
    trigger_type: Vec<String>,
    workflow_id: Vec<DbUuid>,
    process_status: Vec<String>,
    enabled: Vec<bool>,
    is_blocking: Vec<bool>,
    priority: Vec<i32>,
    execution_mode: Vec<String>,
    cron_expression: Vec<Option<String>>,
    timezone: Vec<Option<String>>,
    queue_name: Vec<Option<String>>,
    min_batch_size: Vec<Option<i32>>,
    process_args: Vec<String>,
    metadata: Vec<String>,
    schedule_name: Vec<Option<String>>,
    next_run: Vec<Option<DbTime>>,
    last_run: Vec<Option<DbTime>>,
    run_count: Vec<i64>,
    failure_count: Vec<i64>,
    current_job_id: Vec<Option<DbUuid>>,
    updated_at: Vec<DbTime>,
    version: Vec<i64>,
}

impl StoreChecked for SqliteConn {
    fn store_checked(
        &mut self,
        rows: Vec<CheckedRow>,
    ) -> impl Future<Output = QueryResult<Vec<bool>>> + Send {
        self.spawn_blocking(move |conn| {
            rows.iter()
                .map(|(row, version)| {
                    diesel::RunQueryDsl::execute(
                        diesel::update(
                            triggers::table
                                .find(row.id)
                                .filter(triggers::version.eq(*version)),
                        )
                        .set(row),
                        conn,
                    )
                    .map(|updated| updated == 1)
                })
                .collect()
        })
    }
}
