//! One in-memory store implementing every storage port. All state sits behind one lock, and
//! each port method holds it from its checks to its last write, so a method is as atomic as a
//! database transaction: it either writes everything or, when a check refuses, nothing.

mod access_guard;
mod events;
mod flows;
mod job_stats;
mod jobs;
mod queues;
mod robots;
mod triggers;
mod users;
mod workflows;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::agent::{Agent, Message};
use crate::auth::{ApiKey, User};
use crate::clock::Timestamp;
use crate::error::{RepoError, RepoResult};
use crate::event::Event;
use crate::flow::{Flow, FlowId};
use crate::ids::{AgentId, EventId, JobId, MessageId, QueueItemId, TriggerId, WorkflowId};
use crate::job::Job;
use crate::queue::{Queue, QueueItem};
use crate::robot::{Robot, RobotId};
use crate::trigger::Trigger;
use crate::webhook::Webhook;
use crate::workflow::Workflow;

/// Every storage port in memory, with the semantics the database adapters have. Clones share
/// one store, as clones of a database handle share one database.
///
/// ```
/// use baton_domain::ports::Store;
/// use baton_domain::testing::InMemoryStore;
///
/// fn wants_a_store(_: &dyn Store) {}
/// wants_a_store(&InMemoryStore::new());
/// ```
#[derive(Clone, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryStore").finish_non_exhaustive()
    }
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, locked. A test that panicked while holding the lock poisons it; the state is
    /// still consistent then, since every method checks before it writes, so the lock is taken
    /// over rather than failing every later call.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One address's failed authentications within its window: all of them, and how many were
/// passwords (which a valid API key does not forgive).
struct FailureWindow {
    started: Timestamp,
    failures: u32,
    password_failures: u32,
}

/// An agent with its place in its workflow's node order.
#[derive(Clone)]
struct StoredAgent {
    agent: Agent,
    position: usize,
}

#[derive(Default)]
struct State {
    queues: BTreeMap<String, Queue>,
    items: HashMap<QueueItemId, QueueItem>,
    /// The `(queue, reference)` pairs taken in queues that require unique references.
    references: HashSet<(String, String)>,
    workflows: HashMap<WorkflowId, Workflow>,
    agents: HashMap<AgentId, StoredAgent>,
    messages: HashMap<MessageId, Message>,
    webhooks: HashMap<String, Webhook>,
    jobs: HashMap<JobId, Job>,
    triggers: HashMap<TriggerId, Trigger>,
    robots: BTreeMap<RobotId, Robot>,
    flows: HashMap<FlowId, Flow>,
    /// The activity log in `seq` order: the event at index `i` has `seq == i + 1`.
    events: Vec<Event>,
    event_ids: HashSet<EventId>,
    users: BTreeMap<String, User>,
    api_keys: Vec<ApiKey>,
    revoked_tokens: HashMap<String, Timestamp>,
    /// Per address: its window of failed authentications.
    auth_failures: HashMap<String, FailureWindow>,
    bans: HashMap<String, Timestamp>,
}

impl State {
    /// Refuses events whose ids are stored or repeat among them, as the events table's primary
    /// key does.
    fn check_events<'a>(&self, events: impl IntoIterator<Item = &'a Event>) -> RepoResult<()> {
        let mut seen = HashSet::new();
        for event in events {
            if self.event_ids.contains(&event.id) || !seen.insert(event.id) {
                return Err(RepoError::Conflict(format!(
                    "an event with id {} already exists",
                    event.id
                )));
            }
        }
        Ok(())
    }

    /// Appends checked events, each with the next `seq`.
    fn append_events<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for event in events {
            let mut stored = event.clone();
            stored.seq = i64::try_from(self.events.len()).unwrap_or(i64::MAX - 1) + 1;
            self.event_ids.insert(stored.id);
            self.events.push(stored);
        }
    }

    /// Refuses a job whose id is taken.
    fn check_new_job(&self, job: &Job) -> RepoResult<()> {
        if self.jobs.contains_key(&job.id()) {
            return Err(RepoError::Conflict(format!(
                "a job with id {} already exists",
                job.id()
            )));
        }
        Ok(())
    }
}

/// `limit` rows of an iterator, as SQL's `LIMIT`.
fn limited<T>(rows: impl Iterator<Item = T>, limit: u32) -> Vec<T> {
    rows.take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
}

/// The end of a lease of `seconds` from `now`; the databases refuse one past their time range.
fn lease_end(now: Timestamp, seconds: u32) -> RepoResult<Timestamp> {
    now.checked_add(time::Duration::seconds(i64::from(seconds)))
        .ok_or_else(|| {
            RepoError::Internal("the lease would end past the supported time range".to_owned())
        })
}
