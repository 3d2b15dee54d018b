//! [`QueueRepository`] in memory.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;

use super::{InMemoryStore, State, lease_end, limited};
use crate::clock::Timestamp;
use crate::error::{RepoError, RepoResult};
use crate::ids::QueueItemId;
use crate::ports::{ItemCursor, QueueRepository, ReferenceMatch};
use crate::queue::{
    Queue, QueueItem, QueueItemStatus, QueueName, QueueSettings, QueueSummary, StatusCounts,
};
use crate::robot::RobotId;

impl State {
    /// Creates the queues `items` name that do not exist yet, with default settings, each
    /// dated by the earliest `updated_at` of its items.
    fn create_missing_queues(&mut self, items: &[QueueItem]) {
        let mut missing: BTreeMap<&QueueName, Timestamp> = BTreeMap::new();
        for item in items {
            if self.queues.contains_key(item.queue_name().as_str()) {
                continue;
            }
            let created = missing
                .entry(item.queue_name())
                .or_insert(item.updated_at());
            *created = (*created).min(item.updated_at());
        }
        for (name, created_at) in missing {
            self.queues.insert(
                name.as_str().to_owned(),
                Queue {
                    name: name.clone(),
                    settings: QueueSettings::default(),
                    created_at,
                },
            );
        }
    }

    fn requires_unique_references(&self, queue: &QueueName) -> bool {
        self.queues
            .get(queue.as_str())
            .is_some_and(|q| q.settings.unique_reference)
    }

    /// The reference `item` takes, when its queue requires unique ones.
    fn reference_of(&self, item: &QueueItem) -> Option<(String, String)> {
        let reference = item.reference()?;
        self.requires_unique_references(item.queue_name())
            .then(|| (item.queue_name().as_str().to_owned(), reference.to_owned()))
    }

    /// Inserts one item once its queue exists, or says why it may not be written.
    fn insert_item(&mut self, item: &QueueItem) -> RepoResult<()> {
        if self.items.contains_key(&item.id()) {
            return Err(RepoError::Conflict(
                "a queue item with this id already exists".to_owned(),
            ));
        }
        if let Some(reference) = self.reference_of(item)
            && !self.references.insert(reference)
        {
            return Err(reference_taken());
        }
        self.items.insert(item.id(), item.clone());
        Ok(())
    }
}

fn reference_taken() -> RepoError {
    RepoError::Conflict(
        "an item's reference is already used in its queue, which requires unique references"
            .to_owned(),
    )
}

/// Newest first, ties broken by id.
fn newest_first(a: &QueueItem, b: &QueueItem) -> std::cmp::Ordering {
    (b.created_date(), b.id()).cmp(&(a.created_date(), a.id()))
}

#[async_trait]
impl QueueRepository for InMemoryStore {
    async fn get_queue(&self, name: &QueueName) -> RepoResult<Queue> {
        self.state()
            .queues
            .get(name.as_str())
            .cloned()
            .ok_or(RepoError::NotFound("queue"))
    }

    async fn save_queue_settings(
        &self,
        name: &QueueName,
        settings: &QueueSettings,
        now: Timestamp,
    ) -> RepoResult<Queue> {
        let mut state = self.state();
        let queue = state
            .queues
            .entry(name.as_str().to_owned())
            .or_insert_with(|| Queue {
                name: name.clone(),
                settings: settings.clone(),
                created_at: now,
            });
        queue.settings = settings.clone();
        let queue = queue.clone();
        let state = &mut *state;
        if settings.unique_reference {
            // The references already used count from now on; where one repeats, the items
            // stay, and the reference stays taken.
            for item in state.items.values() {
                if item.queue_name() == name
                    && let Some(reference) = item.reference()
                {
                    state
                        .references
                        .insert((name.as_str().to_owned(), reference.to_owned()));
                }
            }
        } else {
            state.references.retain(|(queue, _)| queue != name.as_str());
        }
        Ok(queue)
    }

    async fn list_queues(&self) -> RepoResult<Vec<QueueSummary>> {
        let state = self.state();
        let mut counts: BTreeMap<&str, StatusCounts> = BTreeMap::new();
        for item in state.items.values() {
            counts
                .entry(item.queue_name().as_str())
                .or_default()
                .add(item.status(), 1);
        }
        Ok(state
            .queues
            .iter()
            .map(|(name, queue)| QueueSummary {
                queue: queue.clone(),
                counts: counts.get(name.as_str()).copied().unwrap_or_default(),
            })
            .collect())
    }

    async fn insert_items(&self, items: &[QueueItem]) -> RepoResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut state = self.state();
        // Checked on a copy of the bookkeeping first, so a refusal writes nothing.
        let mut queues_before = None;
        let mut ids = HashSet::new();
        let mut references = HashSet::new();
        let missing: Vec<&QueueItem> = items
            .iter()
            .filter(|item| !state.queues.contains_key(item.queue_name().as_str()))
            .collect();
        if !missing.is_empty() {
            queues_before = Some(state.queues.clone());
            state.create_missing_queues(items);
        }
        let refused = items.iter().find_map(|item| {
            if state.items.contains_key(&item.id()) || !ids.insert(item.id()) {
                return Some(RepoError::Conflict(
                    "a queue item with this id already exists".to_owned(),
                ));
            }
            let reference = state.reference_of(item)?;
            if !references.insert(reference.clone()) {
                return Some(RepoError::Conflict(format!(
                    "reference '{}' appears twice in the items for queue '{}'",
                    reference.1, reference.0
                )));
            }
            state.references.contains(&reference).then(reference_taken)
        });
        if let Some(refusal) = refused {
            if let Some(queues) = queues_before {
                state.queues = queues;
            }
            return Err(refusal);
        }
        state.references.extend(references);
        for item in items {
            state.items.insert(item.id(), item.clone());
        }
        Ok(())
    }

    async fn insert_each(&self, items: &[QueueItem]) -> Vec<RepoResult<()>> {
        let mut state = self.state();
        items
            .iter()
            .map(|item| {
                state.create_missing_queues(std::slice::from_ref(item));
                state.insert_item(item)
            })
            .collect()
    }

    async fn get_item(&self, id: QueueItemId) -> RepoResult<QueueItem> {
        self.state()
            .items
            .get(&id)
            .cloned()
            .ok_or(RepoError::NotFound("queue item"))
    }

    async fn list_items(
        &self,
        queue: &QueueName,
        status: Option<QueueItemStatus>,
        reference: Option<ReferenceMatch>,
        limit: u32,
        cursor: Option<ItemCursor>,
    ) -> RepoResult<Vec<QueueItem>> {
        let state = self.state();
        let mut items: Vec<&QueueItem> = state
            .items
            .values()
            .filter(|item| item.queue_name() == queue)
            .filter(|item| status.is_none_or(|s| item.status() == s))
            .filter(|item| {
                reference
                    .as_ref()
                    .is_none_or(|r| r.matches(item.reference()))
            })
            .filter(|item| {
                cursor.is_none_or(|c| (item.created_date(), item.id()) < (c.created_date, c.id))
            })
            .collect();
        items.sort_by(|a, b| newest_first(a, b));
        Ok(limited(items.into_iter().cloned(), limit))
    }

    async fn claim_items(
        &self,
        queue: &QueueName,
        robot: &RobotId,
        now: Timestamp,
        limit: u32,
    ) -> RepoResult<Vec<QueueItem>> {
        let mut state = self.state();
        let Some(lease) = state
            .queues
            .get(queue.as_str())
            .map(|q| q.settings.lease_seconds)
        else {
            return Ok(Vec::new());
        };
        // A lease past the calendar's end is refused before any item changes.
        lease_end(now, lease)?;
        let mut candidates: Vec<(Timestamp, QueueItemId)> = state
            .items
            .values()
            .filter(|item| item.queue_name() == queue && item.status() == QueueItemStatus::New)
            .map(|item| (item.created_date(), item.id()))
            .collect();
        candidates.sort();
        let mut claimed = Vec::new();
        for (_, id) in limited(candidates.into_iter(), limit) {
            if let Some(item) = state.items.get_mut(&id) {
                item.claim(robot.clone(), now, lease)
                    .map_err(|e| RepoError::Conflict(e.to_string()))?;
                item.mark_stored();
                claimed.push(item.clone());
            }
        }
        Ok(claimed)
    }

    async fn update_item(&self, item: &QueueItem) -> RepoResult<QueueItem> {
        let mut state = self.state();
        let stored = state
            .items
            .get_mut(&item.id())
            .ok_or(RepoError::NotFound("queue item"))?;
        if stored.version() != item.version() {
            return Err(RepoError::Conflict(format!(
                "queue item {} changed since version {}",
                item.id(),
                item.version()
            )));
        }
        // An item's id, queue and reference are fixed once it is stored.
        let mut record = item.to_record();
        record.id = stored.id();
        record.queue_name = stored.queue_name().clone();
        record.reference = stored.reference().map(str::to_owned);
        record.version = stored.version() + 1;
        *stored = QueueItem::from_record(record);
        Ok(stored.clone())
    }

    async fn count_items(&self, queue: &QueueName, status: QueueItemStatus) -> RepoResult<u64> {
        Ok(self
            .state()
            .items
            .values()
            .filter(|item| item.queue_name() == queue && item.status() == status)
            .count() as u64)
    }

    /// The in-memory store counts on every read: there is nothing to fold.
    async fn fold_queue_counts(&self, _limit: u32) -> RepoResult<u64> {
        Ok(0)
    }

    async fn expired_item_leases(&self, now: Timestamp, limit: u32) -> RepoResult<Vec<QueueItem>> {
        let state = self.state();
        let mut expired: Vec<&QueueItem> = state
            .items
            .values()
            .filter(|item| item.status() == QueueItemStatus::InProgress)
            .filter(|item| item.lease_expires_at().is_some_and(|end| end <= now))
            .collect();
        expired.sort_by_key(|item| (item.lease_expires_at(), item.id()));
        Ok(limited(expired.into_iter().cloned(), limit))
    }
}
