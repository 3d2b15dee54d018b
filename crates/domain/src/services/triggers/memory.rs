//! In-memory fakes for the use-case tests: a trigger store that keeps versions as the real ones
//! do (so lost races can be staged), a clock the test sets, and counting ids.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::clock::{Clock, IdGenerator, Timestamp};
use crate::error::{RepoError, RepoResult};
use crate::event::Event;
use crate::ids::{JobId, TriggerId};
use crate::job::Job;
use crate::ports::{DueCursor, FireRecord, TriggerFilter, TriggerRepository};
use crate::trigger::{Trigger, TriggerName};

/// A clock the test sets.
pub(crate) struct TestClock(pub(crate) Mutex<Timestamp>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// Ids 1, 2, 3, … as UUIDs.
pub(crate) struct Counter(pub(crate) AtomicU64);

impl IdGenerator for Counter {
    fn new_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::SeqCst) + 1))
    }
}

/// Triggers in a map with the storage's version rules, and the fires recorded.
#[derive(Default)]
pub(crate) struct MemoryTriggers {
    pub(crate) rows: Mutex<HashMap<TriggerId, Trigger>>,
    pub(crate) fires: Mutex<Vec<(Job, Vec<Event>)>>,
    /// When set, the next `record_fire` or `update_trigger` loses a race once.
    pub(crate) lose_next_write: Mutex<bool>,
    /// Triggers whose next stored fire loses a race once (another server fired them first).
    pub(crate) fired_elsewhere: Mutex<HashSet<TriggerId>>,
    /// When set, the next `record_fires` call fails as a whole with this, writing nothing.
    pub(crate) fail_next_batch: Mutex<Option<RepoError>>,
    /// How many fires each `record_fires` call carried, in call order.
    pub(crate) batches: Mutex<Vec<usize>>,
    /// When set, the next `due_trigger_candidates_after` fails with this.
    pub(crate) fail_next_read_after: Mutex<Option<RepoError>>,
    /// The reads of candidates and the stores of fires, in the order they happened.
    pub(crate) calls: Mutex<Vec<Call>>,
}

/// The port's filter of candidates: enabled, due by time or without one, in a status that lets
/// the trigger fire (the QUEUE trigger's items are the service's to count).
fn may_fire(trigger: &Trigger, now: Timestamp) -> bool {
    trigger.is_due(now, u64::MAX)
}

/// A read of candidates or a store of fires (`MemoryTriggers::calls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Read,
    ReadAfter(DueCursor),
    /// A `record_fires` call, with how many fires it carried.
    Store(usize),
}

impl MemoryTriggers {
    pub(crate) fn stored(&self, id: TriggerId) -> Trigger {
        self.rows.lock().unwrap()[&id].clone()
    }

    pub(crate) fn put(&self, trigger: Trigger) {
        self.rows.lock().unwrap().insert(trigger.id, trigger);
    }

    fn lost_race(&self) -> bool {
        std::mem::take(&mut *self.lose_next_write.lock().unwrap())
    }

    fn store_checked(&self, trigger: &Trigger) -> RepoResult<Trigger> {
        if self.lost_race() {
            // Another writer got there first: the stored version moves on.
            let mut rows = self.rows.lock().unwrap();
            if let Some(row) = rows.get_mut(&trigger.id) {
                row.version += 1;
            }
            return Err(RepoError::Conflict("changed meanwhile".into()));
        }
        let mut rows = self.rows.lock().unwrap();
        let Some(row) = rows.get_mut(&trigger.id) else {
            return Err(RepoError::NotFound("trigger"));
        };
        if row.version != trigger.version {
            return Err(RepoError::Conflict("changed meanwhile".into()));
        }
        *row = Trigger {
            version: trigger.version + 1,
            ..trigger.clone()
        };
        Ok(row.clone())
    }
}

#[async_trait]
impl TriggerRepository for MemoryTriggers {
    async fn insert_trigger(&self, trigger: &Trigger) -> RepoResult<()> {
        let mut rows = self.rows.lock().unwrap();
        if rows.values().any(|t| t.name == trigger.name) {
            return Err(RepoError::Conflict(format!(
                "a trigger named '{}' already exists",
                trigger.name
            )));
        }
        rows.insert(trigger.id, trigger.clone());
        Ok(())
    }
    async fn get_trigger(&self, id: TriggerId) -> RepoResult<Trigger> {
        self.rows
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or(RepoError::NotFound("trigger"))
    }
    async fn get_trigger_by_name(&self, name: &TriggerName) -> RepoResult<Trigger> {
        self.rows
            .lock()
            .unwrap()
            .values()
            .find(|t| t.name == *name)
            .cloned()
            .ok_or(RepoError::NotFound("trigger"))
    }
    /// The filter applies as the storage's does, oldest first (then by id).
    async fn list_triggers(&self, filter: &TriggerFilter) -> RepoResult<Vec<Trigger>> {
        let mut found: Vec<Trigger> = self
            .rows
            .lock()
            .unwrap()
            .values()
            .filter(|t| {
                filter
                    .trigger_type
                    .is_none_or(|ty| t.kind.type_name() == ty)
            })
            .filter(|t| filter.workflow_id.is_none_or(|w| t.workflow_id == w))
            .filter(|t| filter.enabled.is_none_or(|e| t.enabled == e))
            .filter(|t| {
                filter
                    .after
                    .is_none_or(|c| (t.created_at, t.id) > (c.created_at, c.id))
            })
            .cloned()
            .collect();
        found.sort_by_key(|t| (t.created_at, t.id));
        if filter.limit > 0 {
            found.truncate(filter.limit as usize);
        }
        Ok(found)
    }
    async fn update_trigger(&self, trigger: &Trigger) -> RepoResult<Trigger> {
        self.store_checked(trigger)
    }
    async fn delete_trigger(&self, id: TriggerId) -> RepoResult<()> {
        self.rows
            .lock()
            .unwrap()
            .remove(&id)
            .map(|_| ())
            .ok_or(RepoError::NotFound("trigger"))
    }
    /// The port's order and limit, without its status filter (the service judges the status).
    async fn due_trigger_candidates(&self, now: Timestamp, limit: u32) -> RepoResult<Vec<Trigger>> {
        self.calls.lock().unwrap().push(Call::Read);
        let mut due: Vec<Trigger> = self
            .rows
            .lock()
            .unwrap()
            .values()
            .filter(|t| may_fire(t, now))
            .cloned()
            .collect();
        // Due by time first, the longest overdue first; then the ones without a due time.
        due.sort_by_key(|t| {
            let due_at = t.next_run.filter(|&n| n <= now);
            (due_at.is_none(), due_at, t.id)
        });
        due.truncate(limit as usize);
        Ok(due)
    }
    async fn due_trigger_candidates_after(
        &self,
        now: Timestamp,
        after: DueCursor,
        limit: u32,
    ) -> RepoResult<Vec<Trigger>> {
        self.calls.lock().unwrap().push(Call::ReadAfter(after));
        if let Some(failure) = self.fail_next_read_after.lock().unwrap().take() {
            return Err(failure);
        }
        let mut due: Vec<Trigger> = self
            .rows
            .lock()
            .unwrap()
            .values()
            .filter(|t| {
                may_fire(t, now)
                    && t.next_run
                        .is_some_and(|n| n <= now && (n, t.id) > (after.next_run, after.id))
            })
            .cloned()
            .collect();
        due.sort_by_key(|t| (t.next_run, t.id));
        due.truncate(limit as usize);
        Ok(due)
    }
    async fn record_fire(&self, trigger: &Trigger, job: &Job, events: &[Event]) -> RepoResult<()> {
        self.store_checked(trigger)?;
        self.fires
            .lock()
            .unwrap()
            .push((job.clone(), events.to_vec()));
        Ok(())
    }
    /// Each fire as `record_fire` stores it, with the staged failures and lost races.
    async fn record_fires(&self, fires: &[FireRecord]) -> RepoResult<Vec<RepoResult<()>>> {
        self.batches.lock().unwrap().push(fires.len());
        self.calls.lock().unwrap().push(Call::Store(fires.len()));
        if let Some(failure) = self.fail_next_batch.lock().unwrap().take() {
            return Err(failure);
        }
        let mut outcomes = Vec::with_capacity(fires.len());
        for fire in fires {
            let elsewhere = self
                .fired_elsewhere
                .lock()
                .unwrap()
                .remove(&fire.trigger.id);
            if elsewhere && let Some(row) = self.rows.lock().unwrap().get_mut(&fire.trigger.id) {
                row.version += 1;
            }
            outcomes.push(
                self.record_fire(&fire.trigger, &fire.job, &fire.events)
                    .await,
            );
        }
        Ok(outcomes)
    }
    async fn triggers_for_job(&self, job: JobId) -> RepoResult<Vec<Trigger>> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .values()
            .filter(|t| t.current_job_id == Some(job))
            .cloned()
            .collect())
    }
}
