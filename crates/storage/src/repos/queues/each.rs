//! `QueueRepository::insert_each` written for real: new items in one transaction, each with an
//! outcome of its own. The group commit ([`crate::group_commit`]) hands it the items of many
//! concurrent requests at once; one request's taken reference must not refuse the others.
//!
//! References of items in unique queues are looked up first, inside the transaction: an item
//! whose reference is stored already, or was named by an earlier item of the batch, is left out
//! and answered `Conflict`; the rest are inserted with their references. On SQLite the
//! immediate transaction makes that look-up final. On PostgreSQL another server's transaction
//! may commit the same reference in between: the reference insert then fails on the primary key
//! and the whole transaction rolls back, so the batch is tried again (the look-up now sees that
//! reference), and after a second failure each item alone, which is also how an existing id,
//! never produced by a UUID v7 generator, is pinned on its item.
//!
//! Any other failure of a batch of several items (the database refusing one item's value, say
//! a text PostgreSQL cannot store) is not retried as a batch, which would fail again: each item
//! is written alone at once. The failed transaction stored nothing, so every item is stored
//! exactly once, and only the caller of the item the database refuses gets the error; one
//! client's bad item never fails another client's request. Item by item costs a transaction
//! each, but only for a batch that failed, which the domain's rules make rare. The exception is
//! an unavailable database (a lost connection, SQLite busy past its timeout): no item caused
//! it, so every caller gets it, to retry later, instead of as many doomed transactions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;

use baton_domain::queue::{QueueItem, QueueSettings};
use baton_domain::{RepoError, RepoResult, Timestamp};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::row::{INSERT_CHUNK, QueueItemRow, QueueRow, ReferenceRow};
use crate::db::Db;
use crate::error::map_diesel;
use crate::group_commit::BatchWriter;
use crate::pool::Backend;
use crate::repos::batch::InsertMany;
use crate::schema::{queue_items, queue_references, queues};
use crate::sql_types::DbUuid;

/// Why an item whose reference is taken was refused; the same text as `insert_items`.
const REFERENCE_TAKEN: &str =
    "an item's reference is already used in its queue, which requires unique references";
/// Why an item whose id exists was refused.
const ID_TAKEN: &str = "a queue item with this id already exists";
/// Tries of a whole batch before its items are written one by one.
const BATCH_ATTEMPTS: usize = 2;

/// The group commit writes its batches through this repository.
impl BatchWriter for Db {
    fn backend(&self) -> Backend {
        Db::backend(self)
    }

    fn write_each(&self, items: &[QueueItem]) -> impl Future<Output = Vec<RepoResult<()>>> + Send {
        Db::write_each(self, items)
    }
}

impl Db {
    /// Writes `items` with one outcome each (see the port's `insert_each`), without group commit.
    pub(crate) async fn write_each(&self, items: &[QueueItem]) -> Vec<RepoResult<()>> {
        for _ in 0..BATCH_ATTEMPTS {
            match self.write_each_together(items).await {
                Ok(outcomes) => return outcomes,
                Err(RepoError::Conflict(_)) if items.len() > 1 => continue,
                // A lone item's error is its own; an unavailable database is everyone's.
                Err(e) if items.len() <= 1 || matches!(e, RepoError::Unavailable(_)) => {
                    return items.iter().map(|_| Err(same_error(&e))).collect();
                }
                // The database refused something of the batch: trying it whole again would
                // fail again, so each item alone shows whose it was.
                Err(_) => break,
            }
        }
        // The batch kept failing on a conflict no look-up foresaw, or the database refused one
        // of its items: each item alone shows whose, and the others are stored.
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let alone = self.write_each_together(std::slice::from_ref(item)).await;
            outcomes.push(alone.and_then(|mut one| {
                one.pop().unwrap_or_else(|| {
                    Err(RepoError::Internal("no outcome for an item".to_owned()))
                })
            }));
        }
        outcomes
    }

    /// One transaction for all of `items`. `Err` (nothing written) when the transaction failed
    /// as a whole, e.g. over an existing id (`Conflict`) or a lost connection.
    async fn write_each_together(&self, items: &[QueueItem]) -> RepoResult<Vec<RepoResult<()>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // Each queue the items name, to be created (if missing) as of its earliest item.
        let mut first_use: BTreeMap<&str, Timestamp> = BTreeMap::new();
        for item in items {
            let created = first_use
                .entry(item.queue_name().as_str())
                .or_insert(item.updated_at());
            *created = (*created).min(item.updated_at());
        }
        let names: Vec<String> = first_use.keys().map(|name| (*name).to_owned()).collect();
        let new_queues: Vec<QueueRow> = first_use
            .iter()
            .map(|(name, created)| QueueRow::new(name, &QueueSettings::default(), *created))
            .collect();

        // Whether each item was left out because its reference is taken.
        let refused: Vec<bool> = crate::transaction!(self, |conn| {
            // Usually every queue exists: one read, and writes only for the missing ones.
            let mut unique: HashMap<String, bool> = queues::table
                .filter(queues::name.eq_any(&names))
                .select((queues::name, queues::unique_reference))
                .load::<(String, bool)>(conn)
                .await?
                .into_iter()
                .collect();
            if unique.len() < names.len() {
                for row in new_queues.iter().filter(|q| !unique.contains_key(&q.name)) {
                    diesel::insert_into(queues::table)
                        .values(row)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                // Read again: a queue created concurrently keeps the settings it was given.
                unique = queues::table
                    .filter(queues::name.eq_any(&names))
                    .select((queues::name, queues::unique_reference))
                    .load::<(String, bool)>(conn)
                    .await?
                    .into_iter()
                    .collect();
            }

            // Items claiming a reference in a unique queue: refused when the reference is stored
            // already or an earlier item of the batch named it.
            let mut refused = vec![false; items.len()];
            let claimed: Vec<usize> = items
                .iter()
                .enumerate()
                .filter(|(_, item)| {
                    item.reference().is_some()
                        && unique.get(item.queue_name().as_str()) == Some(&true)
                })
                .map(|(i, _)| i)
                .collect();
            let mut taken: HashSet<(String, String)> = HashSet::new();
            for chunk in claimed.chunks(INSERT_CHUNK) {
                let queue_names: Vec<&str> = chunk
                    .iter()
                    .map(|&i| items[i].queue_name().as_str())
                    .collect();
                let references: Vec<&str> =
                    chunk.iter().filter_map(|&i| items[i].reference()).collect();
                // Queue names and references are matched separately, then as pairs here.
                taken.extend(
                    queue_references::table
                        .filter(queue_references::queue_name.eq_any(&queue_names))
                        .filter(queue_references::reference.eq_any(&references))
                        .select((queue_references::queue_name, queue_references::reference))
                        .load::<(String, String)>(conn)
                        .await?,
                );
            }
            let mut references: Vec<ReferenceRow> = Vec::with_capacity(claimed.len());
            for &i in &claimed {
                let item = &items[i];
                let pair = (
                    item.queue_name().as_str().to_owned(),
                    item.reference().map(str::to_owned).unwrap_or_default(),
                );
                if taken.contains(&pair) {
                    refused[i] = true;
                    continue;
                }
                references.push(ReferenceRow {
                    queue_name: pair.0.clone(),
                    reference: pair.1.clone(),
                    item_id: DbUuid(*item.id().as_uuid()),
                });
                taken.insert(pair);
            }

            let rows: Vec<QueueItemRow> = items
                .iter()
                .zip(&refused)
                .filter(|(_, refused)| !**refused)
                .map(|(item, _)| QueueItemRow::from_domain(item))
                .collect();
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let chunk: Vec<QueueItemRow> = rows.by_ref().take(INSERT_CHUNK).collect();
                conn.insert_many(diesel::insert_into(queue_items::table).values(chunk))
                    .await
                    .map_err(|e| match map_diesel(e) {
                        RepoError::Conflict(_) => RepoError::Conflict(ID_TAKEN.to_owned()),
                        other => other,
                    })?;
            }
            // In key order, so that two batches naming the same references wait for each other
            // on PostgreSQL instead of deadlocking.
            references.sort_unstable_by(|a, b| {
                (&a.queue_name, &a.reference).cmp(&(&b.queue_name, &b.reference))
            });
            let mut references = references.into_iter().peekable();
            while references.peek().is_some() {
                let chunk: Vec<ReferenceRow> = references.by_ref().take(INSERT_CHUNK).collect();
                conn.insert_many(diesel::insert_into(queue_references::table).values(chunk))
                    .await
                    .map_err(|e| match map_diesel(e) {
                        RepoError::Conflict(_) => RepoError::Conflict(REFERENCE_TAKEN.to_owned()),
                        other => other,
                    })?;
            }
            Ok(refused)
        })?;
        Ok(refused
            .into_iter()
            .map(|refused| {
                if refused {
                    Err(RepoError::Conflict(REFERENCE_TAKEN.to_owned()))
                } else {
                    Ok(())
                }
            })
            .collect())
    }
}

/// The same error again, for each item of a batch that failed as a whole (`RepoError` is not
/// `Clone`: it may one day carry a source).
pub(crate) fn same_error(e: &RepoError) -> RepoError {
    match e {
        RepoError::NotFound(what) => RepoError::NotFound(what),
        RepoError::Conflict(why) => RepoError::Conflict(why.clone()),
        RepoError::Unavailable(why) => RepoError::Unavailable(why.clone()),
        RepoError::Internal(why) => RepoError::Internal(why.clone()),
    }
}
