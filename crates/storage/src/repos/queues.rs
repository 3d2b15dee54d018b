//! `QueueRepository`: queues created on first use, items with optional unique references, and
//! the atomic claim of a queue's oldest NEW items.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use baton_domain::ids::QueueItemId;
use baton_domain::ports::{ItemCursor, QueueRepository, ReferenceMatch};
use baton_domain::queue::{
    Queue, QueueItem, QueueItemStatus, QueueName, QueueSettings, QueueSummary, StatusCounts,
};
use baton_domain::robot::RobotId;
use baton_domain::{RepoError, RepoResult, Timestamp};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::batch::InsertMany;
use super::rows::to_u64;
use crate::db::Db;
use crate::error::{DbError, DbResult, map_diesel, map_pool};
use crate::pool::{Pools, SqliteConn};
use crate::schema::{queue_items, queue_references, queues};
use crate::sql_types::{DbTime, DbUuid, UtcTime, Uuid};

mod counts;
mod each;
mod row;

use self::row::{
    INSERT_CHUNK, QueueItemChanges, QueueItemRow, QueueRow, ReferenceRow, parse_status,
};

fn rows_to_items(rows: Vec<QueueItemRow>) -> DbResult<Vec<QueueItem>> {
    rows.into_iter().map(QueueItemRow::into_domain).collect()
}

/// The claim of a queue's oldest NEW items, shared by both backends except for how the chosen
/// ids reach the UPDATE (`$chosen`, given the candidate subselect):
/// - PostgreSQL runs the subselect first with `FOR UPDATE SKIP LOCKED`, so concurrent claimers
///   pass over each other's rows, then updates exactly those ids. (Inlined as `id IN (subselect)`,
///   the planner may rescan the subselect once per row of a nested loop; a rescan skips the rows
///   this statement has already updated and returns the next ones, claiming far more than
///   `limit`.)
/// - SQLite uses the subselect inline, in the one UPDATE: it evaluates an uncorrelated `IN` once,
///   and `BEGIN IMMEDIATE` already serialises writers.
///
/// The UPDATE repeats `status = 'NEW'` so that, on PostgreSQL, a row another transaction changed
/// after the candidates were read is re-checked on its newest version and never claimed twice.
macro_rules! claim_items_in {
    (
        $conn:ident, $name:expr, $robot:expr, $now:expr, $limit:expr,
        |$candidates:ident| $chosen:expr
    ) => {{
        let lease: Option<i32> = queues::table
            .find($name)
            .select(queues::lease_seconds)
            .first($conn)
            .await
            .optional()?;
        match lease {
            // A queue that does not exist has no items to hand out.
            None => Ok(Vec::new()),
            Some(lease) => {
                let expires = lease_end($now, i64::from(lease))?;
                diesel::alias!(queue_items as pending: PendingItems);
                let $candidates = pending
                    .filter(pending.field(queue_items::queue_name).eq($name))
                    .filter(pending.field(queue_items::status).eq(QueueItemStatus::New.as_str()))
                    .order((
                        pending.field(queue_items::created_date).asc(),
                        pending.field(queue_items::id).asc(),
                    ))
                    .limit($limit)
                    .select(pending.field(queue_items::id));
                let rows: Vec<QueueItemRow> = diesel::update(queue_items::table)
                    .filter(queue_items::id.eq_any($chosen))
                    .filter(queue_items::status.eq(QueueItemStatus::New.as_str()))
                    .set((
                        queue_items::status.eq(QueueItemStatus::InProgress.as_str()),
                        queue_items::start_date.eq(Some(DbTime($now))),
                        queue_items::lease_expires_at.eq(Some(expires)),
                        queue_items::robot_id.eq(Some($robot)),
                        queue_items::updated_at.eq(DbTime($now)),
                        queue_items::version.eq(queue_items::version + 1),
                    ))
                    .returning(QueueItemRow::as_returning())
                    .get_results($conn)
                    .await?;
                Ok(rows)
            }
        }
    }};
}

/// `now` plus a lease, refusing instead of panicking at the end of the calendar.
fn lease_end(now: Timestamp, seconds: i64) -> DbResult<DbTime> {
    now.checked_add(time::Duration::seconds(seconds))
        .map(DbTime)
        .ok_or_else(|| {
            DbError(RepoError::Internal(
                "the lease would end past the supported time range".to_owned(),
            ))
        })
}

#[async_trait]
impl QueueRepository for Db {
    async fn get_queue(&self, name: &QueueName) -> RepoResult<Queue> {
        let name = name.as_str().to_owned();
        let row: Option<QueueRow> = crate::with_conn!(self, |conn| {
            Ok(queues::table
                .find(&name)
                .select(QueueRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row.ok_or(RepoError::NotFound("queue"))?.into_domain()?)
    }

    async fn save_queue_settings(
        &self,
        name: &QueueName,
        settings: &QueueSettings,
        now: Timestamp,
    ) -> RepoResult<Queue> {
        let row = QueueRow::new(name.as_str(), settings, now);
        let stored: QueueRow = crate::transaction!(self, |conn| {
            let stored: QueueRow = diesel::insert_into(queues::table)
                .values(&row)
                .on_conflict(queues::name)
                .do_update()
                .set((
                    queues::max_retries.eq(row.max_retries),
                    queues::lease_seconds.eq(row.lease_seconds),
                    queues::unique_reference.eq(row.unique_reference),
                ))
                .returning(QueueRow::as_returning())
                .get_result(conn)
                .await?;
            // `queue_references` holds the references of unique queues only: a queue that becomes
            // unique registers the references its items already use (the first of any duplicates
            // wins), and one that stops being unique forgets them.
            if stored.unique_reference {
                diesel::insert_into(queue_references::table)
                    .values(
                        queue_items::table
                            .filter(queue_items::queue_name.eq(&row.name))
                            .filter(queue_items::reference.is_not_null())
                            .select((
                                queue_items::queue_name,
                                queue_items::reference.assume_not_null(),
                                queue_items::id,
                            )),
                    )
                    .into_columns((
                        queue_references::queue_name,
                        queue_references::reference,
                        queue_references::item_id,
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
            } else {
                diesel::delete(
                    queue_references::table.filter(queue_references::queue_name.eq(&row.name)),
                )
                .execute(conn)
                .await?;
            }
            Ok(stored)
        })?;
        Ok(stored.into_domain()?)
    }

    async fn list_queues(&self) -> RepoResult<Vec<QueueSummary>> {
        // The counts the database keeps (see `counts`), not a count of the items.
        let all_counts = counts::all_counts_sql(self.backend());
        let (queue_rows, counts): (Vec<QueueRow>, Vec<counts::CountRow>) =
            crate::with_conn!(self, |conn| {
                let queue_rows = queues::table
                    .select(QueueRow::as_select())
                    .load(conn)
                    .await?;
                let counts = diesel::sql_query(all_counts).load(conn).await?;
                Ok((queue_rows, counts))
            })?;
        let mut per_queue: BTreeMap<String, StatusCounts> = BTreeMap::new();
        for row in counts {
            per_queue.entry(row.queue_name).or_default().add(
                parse_status(&row.status)?,
                to_u64(row.items, "queue item count")?,
            );
        }
        let mut summaries = queue_rows
            .into_iter()
            .map(|row| {
                let counts = per_queue.get(&row.name).copied().unwrap_or_default();
                Ok(QueueSummary {
                    queue: row.into_domain()?,
                    counts,
                })
            })
            .collect::<DbResult<Vec<_>>>()?;
        // Sorted here rather than in SQL: PostgreSQL orders text by the database's collation and
        // SQLite by bytes, and the two backends must list queues alike.
        summaries.sort_by(|a, b| a.queue.name.as_str().cmp(b.queue.name.as_str()));
        Ok(summaries)
    }

    async fn insert_items(&self, items: &[QueueItem]) -> RepoResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        // Each queue an item names, created (if missing) as of its earliest item.
        let mut new_queues: BTreeMap<&str, Timestamp> = BTreeMap::new();
        for item in items {
            let created = new_queues
                .entry(item.queue_name().as_str())
                .or_insert(item.updated_at());
            *created = (*created).min(item.updated_at());
        }
        let queue_rows: Vec<QueueRow> = new_queues
            .iter()
            .map(|(name, created)| QueueRow::new(name, &QueueSettings::default(), *created))
            .collect();
        let queue_names: Vec<String> = queue_rows.iter().map(|q| q.name.clone()).collect();

        crate::transaction!(self, |conn| {
            for queue in &queue_rows {
                diesel::insert_into(queues::table)
                    .values(queue)
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
            }
            let unique: HashSet<String> = queues::table
                .filter(queues::name.eq_any(&queue_names))
                .filter(queues::unique_reference.eq(true))
                .select(queues::name)
                .load::<String>(conn)
                .await?
                .into_iter()
                .collect();

            // References are checked before anything is written so that a duplicate within the
            // batch is reported by name; the primary key of `queue_references` still decides
            // against stored items and concurrent inserts.
            let mut seen: HashSet<(&str, &str)> = HashSet::new();
            let mut references = Vec::new();
            for item in items {
                let queue = item.queue_name().as_str();
                let Some(reference) = item.reference() else {
                    continue;
                };
                if !unique.contains(queue) {
                    continue;
                }
                if !seen.insert((queue, reference)) {
                    return Err(RepoError::Conflict(format!(
                        "reference '{reference}' appears twice in the items for queue '{queue}'"
                    ))
                    .into());
                }
                references.push(ReferenceRow {
                    queue_name: queue.to_owned(),
                    reference: reference.to_owned(),
                    item_id: DbUuid(*item.id().as_uuid()),
                });
            }

            for chunk in items.chunks(INSERT_CHUNK) {
                let rows: Vec<QueueItemRow> = chunk.iter().map(QueueItemRow::from_domain).collect();
                conn.insert_many(diesel::insert_into(queue_items::table).values(rows))
                    .await
                    .map_err(|e| match map_diesel(e) {
                        RepoError::Conflict(_) => RepoError::Conflict(
                            "a queue item with this id already exists".to_owned(),
                        ),
                        other => other,
                    })?;
            }
            while !references.is_empty() {
                let rest = references.split_off(references.len().min(INSERT_CHUNK));
                let chunk = std::mem::replace(&mut references, rest);
                conn.insert_many(diesel::insert_into(queue_references::table).values(chunk))
                    .await
                    .map_err(|e| match map_diesel(e) {
                        RepoError::Conflict(_) => RepoError::Conflict(
                            "an item's reference is already used in its queue, \
                             which requires unique references"
                                .to_owned(),
                        ),
                        other => other,
                    })?;
            }
            Ok(())
        })?;
        Ok(())
    }

    async fn insert_each(&self, items: &[QueueItem]) -> Vec<RepoResult<()>> {
        match &self.group_commit {
            Some(group) => group.insert_each(items).await,
            None => self.write_each(items).await,
        }
    }

    async fn get_item(&self, id: QueueItemId) -> RepoResult<QueueItem> {
        let id = DbUuid(*id.as_uuid());
        let row: Option<QueueItemRow> = crate::with_conn!(self, |conn| {
            Ok(queue_items::table
                .find(id)
                .select(QueueItemRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row
            .ok_or(RepoError::NotFound("queue item"))?
            .into_domain()?)
    }

    async fn list_items(
        &self,
        queue: &QueueName,
        status: Option<QueueItemStatus>,
        reference: Option<ReferenceMatch>,
        limit: u32,
        cursor: Option<ItemCursor>,
    ) -> RepoResult<Vec<QueueItem>> {
        let name = queue.as_str().to_owned();
        let pg = matches!(self.pools(), Pools::Pg(_));
        let rows: Vec<QueueItemRow> = crate::with_conn!(self, |conn| {
            let mut query = queue_items::table
                .filter(queue_items::queue_name.eq(&name))
                .select(QueueItemRow::as_select())
                .into_boxed();
            if let Some(status) = status {
                query = query.filter(queue_items::status.eq(status.as_str()));
            }
            // The reference compared in byte order (PostgreSQL's default collation may differ;
            // SQLite compares bytes), so that `queue_items_reference` serves both matches.
            let column = if pg {
                "reference COLLATE \"C\""
            } else {
                "reference"
            };
            match &reference {
                Some(ReferenceMatch::Exact(want)) => {
                    query = query.filter(
                        diesel::dsl::sql::<diesel::sql_types::Bool>(&format!("{column} = "))
                            .bind::<diesel::sql_types::Text, _>(want.clone()),
                    );
                }
                Some(ReferenceMatch::Prefix(want)) => {
                    // One range of the index: from the prefix to the first text after all the
                    // texts it begins (see `prefix_successor`).
                    query = query.filter(
                        diesel::dsl::sql::<diesel::sql_types::Bool>(&format!("{column} >= "))
                            .bind::<diesel::sql_types::Text, _>(want.clone()),
                    );
                    if let Some(end) = prefix_successor(want) {
                        query = query.filter(
                            diesel::dsl::sql::<diesel::sql_types::Bool>(&format!("{column} < "))
                                .bind::<diesel::sql_types::Text, _>(end),
                        );
                    }
                }
                None => {}
            }
            if let Some(cursor) = cursor {
                // A row comparison, which both planners read as one range of the index from the
                // cursor on; the equivalent `date < d OR (date = d AND id < i)` is not.
                query = query.filter(
                    diesel::dsl::sql::<diesel::sql_types::Bool>("(created_date, id) < (")
                        .bind::<UtcTime, _>(DbTime(cursor.created_date))
                        .sql(", ")
                        .bind::<Uuid, _>(DbUuid(*cursor.id.as_uuid()))
                        .sql(")"),
                );
            }
            // `queue_items_claim` (queue, status, created, id) serves the order with a status,
            // `queue_items_listed` (queue, created, id) without one: each walk stops at `limit`.
            Ok(query
                .order((queue_items::created_date.desc(), queue_items::id.desc()))
                .limit(i64::from(limit))
                .load(conn)
                .await?)
        })?;
        Ok(rows_to_items(rows)?)
    }

    async fn claim_items(
        &self,
        queue: &QueueName,
        robot: &RobotId,
        now: Timestamp,
        limit: u32,
    ) -> RepoResult<Vec<QueueItem>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let name = queue.as_str();
        let robot = robot.as_str();
        let limit = i64::from(limit);
        // The one query written per backend: see `claim_items_in!`.
        let mut rows: Vec<QueueItemRow> = match self.pools() {
            Pools::Pg(pool) => {
                let mut guard = pool.get().await.map_err(map_pool)?;
                let conn: &mut AsyncPgConnection = &mut guard;
                conn.transaction(async |conn: &mut AsyncPgConnection| -> DbResult<_> {
                    claim_items_in!(conn, name, robot, now, limit, |candidates| candidates
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
                        claim_items_in!(conn, name, robot, now, limit, |candidates| candidates)
                    })
                    .await?
            }
        };
        // RETURNING gives no order: hand the items out oldest first, as they were chosen.
        rows.sort_by_key(|row| (row.created_date, row.id.0));
        Ok(rows_to_items(rows)?)
    }

    async fn update_item(&self, item: &QueueItem) -> RepoResult<QueueItem> {
        let id = DbUuid(*item.id().as_uuid());
        let version = item.version();
        let changes = QueueItemChanges::from_domain(item);
        let updated: Option<QueueItemRow> = crate::with_conn!(self, |conn| {
            let updated = diesel::update(
                queue_items::table
                    .filter(queue_items::id.eq(id))
                    .filter(queue_items::version.eq(version)),
            )
            .set((&changes, queue_items::version.eq(queue_items::version + 1)))
            .returning(QueueItemRow::as_returning())
            .get_result(conn)
            .await
            .optional()?;
            if updated.is_none() {
                // Nothing matched: tell a missing item from one that changed meanwhile.
                let exists: i64 = queue_items::table.find(id).count().get_result(conn).await?;
                if exists == 0 {
                    return Err(RepoError::NotFound("queue item").into());
                }
            }
            Ok(updated)
        })?;
        match updated {
            Some(row) => Ok(row.into_domain()?),
            None => Err(RepoError::Conflict(format!(
                "queue item {} changed since version {version}",
                item.id()
            ))),
        }
    }

    async fn count_items(&self, queue: &QueueName, status: QueueItemStatus) -> RepoResult<u64> {
        let count = self.stored_count(queue.as_str(), status.as_str()).await?;
        Ok(to_u64(count, "queue item count")?)
    }

    async fn fold_queue_counts(&self, limit: u32) -> RepoResult<u64> {
        let folded = self.fold_counts(limit).await?;
        Ok(to_u64(folded, "folded queue count changes")?)
    }

    async fn expired_item_leases(&self, now: Timestamp, limit: u32) -> RepoResult<Vec<QueueItem>> {
        let rows: Vec<QueueItemRow> = crate::with_conn!(self, |conn| {
            Ok(queue_items::table
                .filter(queue_items::status.eq(QueueItemStatus::InProgress.as_str()))
                .filter(queue_items::lease_expires_at.le(DbTime(now)))
                .order((queue_items::lease_expires_at.asc(), queue_items::id.asc()))
                .limit(i64::from(limit))
                .select(QueueItemRow::as_select())
                .load(conn)
                .await?)
        })?;
        Ok(rows_to_items(rows)?)
    }
}

/// The first text, in code point order (UTF-8's byte order), after every text that begins with
/// `prefix`: the prefix with its last character advanced by one (characters at the top of the
/// range are dropped first). `None` when no text comes after them all.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        // The surrogates are no characters: the next one is past them.
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(next) = char::from_u32(next) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod prefix_tests {
    use super::prefix_successor;

    #[test]
    fn a_prefixs_successor_bounds_every_text_it_begins() {
        assert_eq!(prefix_successor("order-99").as_deref(), Some("order-9:"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        let end = prefix_successor("INV-").unwrap_or_default();
        for text in ["INV-", "INV-1", "INV-\u{10FFFF}\u{10FFFF}", "INV-zzz"] {
            assert!(text >= "INV-" && text < end.as_str(), "{text}");
        }
        for text in ["INV", "INV.", "INW", "inv-1"] {
            assert!(!(text >= "INV-" && text < end.as_str()), "{text}");
        }
    }
}
