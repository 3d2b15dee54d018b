//! Storage ports: one trait per aggregate. Adapters translate driver errors into
//! [`RepoError`](crate::RepoError); each method's documentation states which variants it
//! returns besides `Unavailable` and `Internal`, which any method may return.
//!
//! State-changing methods that record activity take the [`Event`]s to append and write them in
//! the same transaction, so the activity log never disagrees with the data.

use async_trait::async_trait;

use crate::agent::{AgentView, Message};
use crate::auth::{ApiKey, User, Username};
use crate::clock::Timestamp;
use crate::error::RepoResult;
use crate::event::{Event, EventType};
use crate::flow::{Flow, FlowId};
use crate::ids::{AgentId, ApiKeyId, JobId, MessageId, QueueItemId, TriggerId, WorkflowId};
use crate::job::{Job, JobStatus};
use crate::queue::{Queue, QueueItem, QueueItemStatus, QueueName, QueueSettings, QueueSummary};
use crate::robot::{Robot, RobotId, RobotStatus};
use crate::trigger::{Trigger, TriggerName, TriggerType};
use crate::webhook::Webhook;
use crate::workflow::Workflow;

/// Where a page of queue items ends: the last item's creation date and id (items are listed
/// newest first, ties broken by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemCursor {
    pub created_date: Timestamp,
    pub id: QueueItemId,
}

/// How a listing of queue items matches their reference: the whole reference, or its first
/// characters. Both compare exactly (letter case included) on every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceMatch {
    Exact(String),
    Prefix(String),
}

impl ReferenceMatch {
    /// Whether `reference` matches; an item without a reference never does.
    pub fn matches(&self, reference: Option<&str>) -> bool {
        match (self, reference) {
            (Self::Exact(want), Some(have)) => have == want,
            (Self::Prefix(want), Some(have)) => have.starts_with(want.as_str()),
            (_, None) => false,
        }
    }
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait QueueRepository: Send + Sync {
    /// Errors: `NotFound` when no queue has this name.
    async fn get_queue(&self, name: &QueueName) -> RepoResult<Queue>;

    /// Stores new settings, creating the queue if needed.
    async fn save_queue_settings(
        &self,
        name: &QueueName,
        settings: &QueueSettings,
        now: Timestamp,
    ) -> RepoResult<Queue>;

    /// Every queue with its item counts per status, by name.
    async fn list_queues(&self) -> RepoResult<Vec<QueueSummary>>;

    /// Inserts all items in one transaction, creating missing queues with default settings.
    /// Errors: `Conflict` when an item's reference is already used in a queue with
    /// `unique_reference` (or twice in the batch); nothing is written then.
    async fn insert_items(&self, items: &[QueueItem]) -> RepoResult<()>;

    /// Inserts each item on its own terms, creating missing queues with default settings, and
    /// returns one outcome per item, in order: `Ok` once the item is committed, or why it was
    /// not written. One item's refusal never refuses another. Outcomes: `Conflict` when the
    /// item's reference is already used in its queue with `unique_reference` (by a stored item
    /// or an earlier item of `items`), or when its id exists; `Unavailable` or `Internal` when
    /// its transaction failed. The adapter may write the items of concurrent calls together in
    /// one transaction (group commit): an item is still answered only after its commit.
    async fn insert_each(&self, items: &[QueueItem]) -> Vec<RepoResult<()>>;

    /// Errors: `NotFound`.
    async fn get_item(&self, id: QueueItemId) -> RepoResult<QueueItem>;

    /// Items of a queue, newest first (by created_date, then id), optionally of one status and
    /// with a matching reference, strictly after `cursor`, at most `limit`.
    async fn list_items(
        &self,
        queue: &QueueName,
        status: Option<QueueItemStatus>,
        reference: Option<ReferenceMatch>,
        limit: u32,
        cursor: Option<ItemCursor>,
    ) -> RepoResult<Vec<QueueItem>>;

    /// Atomically claims up to `limit` of the queue's oldest NEW items for `robot`: each becomes
    /// IN_PROGRESS with `start_date = now` and a lease of the queue's `lease_seconds`. Under any
    /// number of concurrent claimers, an item is handed to exactly one.
    async fn claim_items(
        &self,
        queue: &QueueName,
        robot: &RobotId,
        now: Timestamp,
        limit: u32,
    ) -> RepoResult<Vec<QueueItem>>;

    /// Stores a changed item if its stored version still equals `item.version`, and returns it
    /// with the version bumped. Errors: `NotFound`; `Conflict` when it changed meanwhile.
    async fn update_item(&self, item: &QueueItem) -> RepoResult<QueueItem>;

    /// How many items of a queue have this status. Exact, like `list_queues`' counts, and cheap
    /// at any number of items: adapters keep the counts as the items change.
    async fn count_items(&self, queue: &QueueName, status: QueueItemStatus) -> RepoResult<u64>;

    /// Tidies the kept counts: folds at most `limit` of their pending changes into their totals
    /// and returns how many it folded. Every count reads the same before and after, and
    /// concurrent folds (several servers) fold each change once; an adapter whose counts need no
    /// tidying returns 0. The engine calls it every round, so that reading a count stays cheap.
    async fn fold_queue_counts(&self, limit: u32) -> RepoResult<u64>;

    /// IN_PROGRESS items whose lease ended at or before `now`, oldest lease first, at most `limit`.
    async fn expired_item_leases(&self, now: Timestamp, limit: u32) -> RepoResult<Vec<QueueItem>>;
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait WorkflowRepository: Send + Sync {
    /// Stores a new workflow and its agents in one transaction. Errors: `Conflict` if the id exists.
    async fn insert_workflow(
        &self,
        workflow: &Workflow,
        agents: &[crate::agent::Agent],
    ) -> RepoResult<()>;

    /// Errors: `NotFound`.
    async fn get_workflow(&self, id: WorkflowId) -> RepoResult<Workflow>;

    /// Every workflow, oldest first.
    async fn list_workflows(&self) -> RepoResult<Vec<Workflow>>;

    /// Deletes a workflow with its agents, their messages and its triggers. Jobs keep their
    /// records. Errors: `NotFound`.
    async fn delete_workflow(&self, id: WorkflowId) -> RepoResult<()>;

    /// Agents with their unexpired message counts at `now`, of one workflow or all, in
    /// workflow then node order.
    async fn list_agents(
        &self,
        workflow: Option<WorkflowId>,
        now: Timestamp,
    ) -> RepoResult<Vec<AgentView>>;

    /// Errors: `NotFound`.
    async fn get_agent(&self, id: AgentId, now: Timestamp) -> RepoResult<AgentView>;
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait MessageRepository: Send + Sync {
    /// Stores messages in one transaction. Errors: `NotFound` when an agent does not exist.
    async fn insert_messages(&self, messages: &[Message]) -> RepoResult<()>;

    /// An agent's unexpired messages at `now`, newest first, created strictly after `after`, at
    /// most `limit` (all when `None`).
    async fn list_messages(
        &self,
        agent: AgentId,
        after: Option<Timestamp>,
        limit: Option<u32>,
        now: Timestamp,
    ) -> RepoResult<Vec<Message>>;

    /// Errors: `NotFound` (also for an expired message).
    async fn get_message(&self, id: MessageId, now: Timestamp) -> RepoResult<Message>;

    /// Deletes messages that expired at or before `now`; returns how many.
    async fn purge_expired_messages(&self, now: Timestamp) -> RepoResult<u64>;
}

/// The webhooks of workflows submitted with `trigger_type: webhook`.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait WebhookRepository: Send + Sync {
    /// Errors: `NotFound` when the workflow does not exist; `Conflict` when the hash exists.
    async fn insert_webhook(&self, webhook: &Webhook) -> RepoResult<()>;

    /// The webhook whose token has this SHA-256 (lower-case hex). Errors: `NotFound`.
    async fn find_webhook_by_token_hash(&self, token_hash: &str) -> RepoResult<Webhook>;

    /// Deletes every webhook of a workflow; returns how many there were.
    async fn delete_webhooks_of(&self, workflow: WorkflowId) -> RepoResult<u64>;
}

/// Where a page of jobs ends: the last job's creation instant and id (jobs are listed newest
/// first, ties broken by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobCursor {
    pub created_at: Timestamp,
    pub id: JobId,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub workflow_id: Option<WorkflowId>,
    pub robot_id: Option<RobotId>,
    /// Only jobs created strictly after this instant.
    pub created_after: Option<Timestamp>,
    /// Only jobs created strictly before this instant.
    pub created_before: Option<Timestamp>,
    /// Only jobs that come after this position in the list's order (the next page).
    pub after: Option<JobCursor>,
    pub limit: u32,
}

/// One job change of [`JobRepository::update_jobs_each`]: the job as it should be stored (its
/// `version` the one it was read at) and the events written with it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobChange {
    pub job: Job,
    pub events: Vec<Event>,
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait JobRepository: Send + Sync {
    /// Inserts a job and its events in one transaction. Errors: `Conflict` if the id exists.
    async fn insert_job(&self, job: &Job, events: &[Event]) -> RepoResult<()>;

    /// Errors: `NotFound`.
    async fn get_job(&self, id: JobId) -> RepoResult<Job>;

    /// Jobs matching the filter, newest first.
    async fn list_jobs(&self, filter: &JobFilter) -> RepoResult<Vec<Job>>;

    /// Atomically claims up to `limit` pending jobs, highest priority (lowest number) first, then
    /// oldest, for `robot`: each becomes claimed with a lease ending `lease_seconds` after `now`,
    /// and a `job_claimed` event is written with it. Under any number of concurrent claimers a job
    /// is handed to exactly one.
    async fn claim_jobs(
        &self,
        robot: &RobotId,
        now: Timestamp,
        lease_seconds: u32,
        limit: u32,
    ) -> RepoResult<Vec<Job>>;

    /// Stores a changed job and its events if the stored version still equals `job.version`;
    /// returns it with the version bumped. Errors: `NotFound`; `Conflict` when it changed meanwhile.
    async fn update_job(&self, job: &Job, events: &[Event]) -> RepoResult<Job>;

    /// The jobs of `ids` that exist, in no particular order: an unknown id is left out.
    async fn get_jobs(&self, ids: &[JobId]) -> RepoResult<Vec<Job>>;

    /// Stores several changed jobs with their events in one transaction, each checked against
    /// its stored version as [`JobRepository::update_job`] does. Returns one outcome per change,
    /// in order: the job with its version bumped, or `NotFound`, or `Conflict` when it changed
    /// meanwhile; a refused change writes neither its job nor its events, and does not stop the
    /// others. Errors of the call itself (`Unavailable`, `Internal`): nothing was written.
    async fn update_jobs_each(&self, changes: &[JobChange]) -> RepoResult<Vec<RepoResult<Job>>>;

    /// Claimed or running jobs whose lease ended at or before `now`, at most `limit`.
    async fn expired_job_leases(&self, now: Timestamp, limit: u32) -> RepoResult<Vec<Job>>;

    /// How many jobs are in each status (statuses with none are left out).
    async fn count_jobs_by_status(&self) -> RepoResult<Vec<(JobStatus, u64)>>;
}

/// Which jobs an aggregate of [`JobStatsRepository`] covers: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobScope {
    /// Jobs created at or after this instant.
    pub created_since: Option<Timestamp>,
    /// Jobs that ended (their `completed_at`) at or after this instant.
    pub ended_since: Option<Timestamp>,
    /// Jobs this robot holds or last held.
    pub robot_id: Option<RobotId>,
}

/// The jobs of a scope in one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusTotals {
    pub status: JobStatus,
    pub jobs: u64,
    /// Of those, the jobs that went back to pending at least once (`retry_count > 0`).
    pub retried: u64,
    /// Of those, the jobs that ended and so have a duration ([`Job::duration_ms`]).
    pub timed: u64,
    /// The sum of the durations of the `timed` jobs, in milliseconds.
    pub duration_ms_sum: i64,
}

/// A workflow's completed jobs of a scope, by how long they took on average.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowDuration {
    pub workflow_id: WorkflowId,
    /// The name its jobs carry (jobs keep the name their workflow had when they were created).
    pub workflow_name: String,
    pub average_duration_ms: f64,
    pub completed_jobs: u64,
}

/// How many failed jobs of a scope ended with one error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCount {
    /// `None` for failed jobs stored without an error type.
    pub error_type: Option<String>,
    pub count: u64,
}

/// Aggregates over jobs for the metrics, computed by the database so that a window of many
/// jobs is never loaded whole.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait JobStatsRepository: Send + Sync {
    /// The scope's jobs per status (statuses with none are left out), in the order of
    /// [`JobStatus::ALL`].
    async fn job_totals(&self, scope: &JobScope) -> RepoResult<Vec<StatusTotals>>;

    /// The duration of the scope's completed job at 0-based `rank` when they are ordered from
    /// the shortest (ties by id), or `None` when there are not that many.
    async fn completed_duration_at(&self, scope: &JobScope, rank: u64) -> RepoResult<Option<i64>>;

    /// Workflows by the average duration of the scope's completed jobs, slowest first (ties by
    /// workflow id), at most `limit`.
    async fn slowest_workflows(
        &self,
        scope: &JobScope,
        limit: u32,
    ) -> RepoResult<Vec<WorkflowDuration>>;

    /// The scope's failed jobs per error type, the most frequent first (ties by error type), at
    /// most `limit`.
    async fn error_counts(&self, scope: &JobScope, limit: u32) -> RepoResult<Vec<ErrorCount>>;
}

/// Which triggers to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TriggerFilter {
    pub trigger_type: Option<TriggerType>,
    pub workflow_id: Option<WorkflowId>,
    pub enabled: Option<bool>,
    pub limit: u32,
    /// Only triggers listed after this position (lists are oldest first, ties broken by id).
    pub after: Option<TriggerCursor>,
}

/// Where a page of triggers ends: the last one's creation instant and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerCursor {
    pub created_at: Timestamp,
    pub id: TriggerId,
}

/// Where a batch of due trigger candidates ended, in their order: the last one's `next_run` and
/// id ([`TriggerRepository::due_trigger_candidates_after`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueCursor {
    pub next_run: Timestamp,
    pub id: TriggerId,
}

/// One fire of [`TriggerRepository::record_fires`]: the trigger as the fire changed it (its
/// `version` still the one it was read at), the job the fire starts, and the events recording it.
#[derive(Debug, Clone, PartialEq)]
pub struct FireRecord {
    pub trigger: Trigger,
    pub job: Job,
    pub events: Vec<Event>,
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait TriggerRepository: Send + Sync {
    /// Errors: `Conflict` when the name or id is taken.
    async fn insert_trigger(&self, trigger: &Trigger) -> RepoResult<()>;

    /// Errors: `NotFound`.
    async fn get_trigger(&self, id: TriggerId) -> RepoResult<Trigger>;

    /// Errors: `NotFound`.
    async fn get_trigger_by_name(&self, name: &TriggerName) -> RepoResult<Trigger>;

    /// Triggers matching the filter, oldest first.
    async fn list_triggers(&self, filter: &TriggerFilter) -> RepoResult<Vec<Trigger>>;

    /// Stores a changed trigger if the stored version still equals `trigger.version`; returns it
    /// with the version bumped. Errors: `NotFound`; `Conflict` when it changed meanwhile or the
    /// new name is taken.
    async fn update_trigger(&self, trigger: &Trigger) -> RepoResult<Trigger>;

    /// Errors: `NotFound`.
    async fn delete_trigger(&self, id: TriggerId) -> RepoResult<()>;

    /// Enabled triggers that may be due at `now`, at most `limit`, in a status that lets them
    /// fire: first those whose `next_run` is not after `now`, the longest overdue first (by
    /// `next_run`, then id), then SINGLE ones without a `next_run` and QUEUE ones whose
    /// `next_run` is still ahead. [`Trigger::is_due`] decides.
    async fn due_trigger_candidates(&self, now: Timestamp, limit: u32) -> RepoResult<Vec<Trigger>>;

    /// The first part of [`Self::due_trigger_candidates`] (due by time at `now`, in the order
    /// `(next_run, id)`) from just after `after`, at most `limit`: the engine reads its next
    /// batch while the previous one, which ends at `after`, is still being stored, so it must
    /// not read that one again. The candidates without a due time wait for the next full read.
    async fn due_trigger_candidates_after(
        &self,
        now: Timestamp,
        after: DueCursor,
        limit: u32,
    ) -> RepoResult<Vec<Trigger>>;

    /// A fire, all in one transaction: stores `trigger` if the stored version still equals
    /// `trigger.version`, inserts `job`, appends `events`. Errors: `Conflict` when another fire
    /// or change came first; then nothing is written. This is what makes a due trigger fire
    /// exactly once across servers.
    async fn record_fire(&self, trigger: &Trigger, job: &Job, events: &[Event]) -> RepoResult<()>;

    /// Many fires in one transaction, each on its own terms, as the engine stores a round's
    /// fires. Each trigger is stored only if its stored version still equals `trigger.version`;
    /// the jobs and events of the fires whose trigger was stored are inserted with it. Returns
    /// one outcome per fire, in order: `Ok(())` once the fire is committed with its job and
    /// events, or `Conflict` when another fire or change came first (or the trigger was deleted):
    /// nothing of that fire is written, and the others are. Of concurrent calls carrying one
    /// trigger read at one version, exactly one stores it; a trigger named twice in one call is
    /// judged by its first fire, the later ones are `Conflict`.
    /// Errors of the call itself, when nothing at all was written: `Unavailable` or `Internal`
    /// when the transaction failed, `Conflict` when a job or event id of the batch is taken
    /// (ids are fresh, so that is a bug rather than a race).
    async fn record_fires(&self, fires: &[FireRecord]) -> RepoResult<Vec<RepoResult<()>>>;

    /// Triggers whose current job is `job`.
    async fn triggers_for_job(&self, job: JobId) -> RepoResult<Vec<Trigger>>;
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait RobotRepository: Send + Sync {
    /// Errors: `Conflict` when the robot id is taken.
    async fn insert_robot(&self, robot: &Robot) -> RepoResult<()>;

    /// Errors: `NotFound`.
    async fn get_robot(&self, id: &RobotId) -> RepoResult<Robot>;

    /// The robot whose token has this SHA-256 (lower-case hex). Errors: `NotFound`.
    async fn find_robot_by_token_hash(&self, token_hash: &str) -> RepoResult<Robot>;

    /// Robots, optionally of one status, by id.
    async fn list_robots(&self, status: Option<RobotStatus>) -> RepoResult<Vec<Robot>>;

    /// Inserts the robot or replaces its stored fields (heartbeats: last writer wins), with events.
    async fn save_robot(&self, robot: &Robot, events: &[Event]) -> RepoResult<()>;

    /// Errors: `NotFound`.
    async fn delete_robot(&self, id: &RobotId) -> RepoResult<()>;

    /// Robots not offline whose last heartbeat is before `before` (or who never sent one).
    async fn stale_robots(&self, before: Timestamp) -> RepoResult<Vec<Robot>>;

    /// Marks the robot offline and appends `events`, only if its last heartbeat is still
    /// `seen_heartbeat` (a fresh heartbeat wins). Returns whether it was marked.
    async fn mark_robot_offline(
        &self,
        id: &RobotId,
        seen_heartbeat: Option<Timestamp>,
        events: &[Event],
    ) -> RepoResult<bool>;
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait FlowRepository: Send + Sync {
    /// Inserts all flows in one transaction. Errors: `Conflict` when a flow id exists (or repeats
    /// in the batch); nothing is written then.
    async fn insert_flows(&self, flows: &[Flow]) -> RepoResult<()>;

    /// Errors: `NotFound`.
    async fn get_flow(&self, id: &FlowId) -> RepoResult<Flow>;

    /// Every flow, oldest first.
    async fn list_flows(&self) -> RepoResult<Vec<Flow>>;

    /// Stores a changed flow and events if the stored version still equals `flow.version`;
    /// returns it with the version bumped. Errors: `NotFound`; `Conflict`.
    async fn update_flow(&self, flow: &Flow, events: &[Event]) -> RepoResult<Flow>;

    /// Starting a flow's job, in one transaction: the flow (version-checked as in `update_flow`),
    /// the new job, the events. Errors: `NotFound`; `Conflict`, with nothing written.
    async fn record_flow_job(&self, flow: &Flow, job: &Job, events: &[Event]) -> RepoResult<()>;

    /// Errors: `NotFound`.
    async fn delete_flow(&self, id: &FlowId) -> RepoResult<()>;
}

/// Which events to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub event_type: Option<EventType>,
    /// Strictly after this time.
    pub since: Option<Timestamp>,
    pub limit: u32,
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait EventRepository: Send + Sync {
    /// Matching events newest first by timestamp, then by `seq` (at most `limit`), and how many
    /// match in all.
    async fn list_events(&self, filter: &EventFilter) -> RepoResult<(Vec<Event>, u64)>;

    /// Events with `seq` greater than `after_seq`, in `seq` order, at most `limit`.
    async fn events_after(&self, after_seq: i64, limit: u32) -> RepoResult<Vec<Event>>;

    /// The highest `seq` so far (0 when there is none).
    async fn latest_event_seq(&self) -> RepoResult<i64>;
}

/// What [`UserRepository::delete_user_unless_last_admin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserDeletion {
    Deleted,
    /// The user was the only admin, so it was kept.
    LastAdmin,
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Errors: `Conflict` when the username is taken.
    async fn insert_user(&self, user: &User) -> RepoResult<()>;

    /// Errors: `NotFound`.
    async fn get_user(&self, username: &Username) -> RepoResult<User>;

    /// Every user, by username.
    async fn list_users(&self) -> RepoResult<Vec<User>>;

    /// Deletes the user unless it is the only user with the admin role, and answers
    /// [`UserDeletion::LastAdmin`] (deleting nothing) when it is. Atomic: concurrent calls that
    /// delete different admins are decided one after the other, each seeing the others'
    /// deletes, so together they never remove every admin (a count read before a separate
    /// delete could not promise that). Errors: `NotFound` when no user has this name.
    async fn delete_user_unless_last_admin(&self, username: &Username) -> RepoResult<UserDeletion>;

    async fn count_users(&self) -> RepoResult<u64>;
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ApiKeyRepository: Send + Sync {
    /// Errors: `Conflict` when the id or hash exists.
    async fn insert_api_key(&self, key: &ApiKey) -> RepoResult<()>;

    /// The unrevoked key with this SHA-256 hash. Errors: `NotFound`.
    async fn find_api_key_by_hash(&self, key_hash: &str) -> RepoResult<ApiKey>;

    /// Every key, revoked ones included, oldest first.
    async fn list_api_keys(&self) -> RepoResult<Vec<ApiKey>>;

    /// Stamps `revoked_at`. Errors: `NotFound` (also when already revoked).
    async fn revoke_api_key(&self, id: ApiKeyId, now: Timestamp) -> RepoResult<()>;
}

/// What a failed authentication presented, which decides what may clear it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// An API key, a robot token, or an access or refresh token: a secret too long to guess, so
    /// forgiving its failures when the address presents a valid API key helps no attacker.
    Key,
    /// A password at sign-in: guessable, so its failures are never forgiven, not even by a
    /// successful sign-in (an attacker could sign in to an account of their own in between).
    Password,
}

/// Token revocation, brute-force counting and IP bans: shared by every server through the database.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait AccessGuardRepository: Send + Sync {
    /// Records that the token with id `jti` may no longer be used; returns `true` if it was not
    /// revoked before. Atomic: of two concurrent calls for one `jti`, exactly one gets `true`
    /// (this is what makes a refresh token single-use). Errors: only `Unavailable` and
    /// `Internal`.
    async fn revoke_token(&self, jti: &str, expires_at: Timestamp) -> RepoResult<bool>;

    /// Errors: only `Unavailable` and `Internal`.
    async fn is_token_revoked(&self, jti: &str) -> RepoResult<bool>;

    /// Forgets revocations of tokens that expired at or before `now`. Errors: only
    /// `Unavailable` and `Internal`.
    async fn purge_expired_revocations(&self, now: Timestamp) -> RepoResult<u64>;

    /// Counts one failed authentication of `kind` from `ip` and returns the address's failures
    /// of every kind within its window, this one included. The window started at the address's
    /// first failure no older than `window_start`; older ones are forgotten. Exact under
    /// concurrent failures, on one server or several: n concurrent failures of one address get
    /// n different counts. Implementations may write the failures of concurrent calls together
    /// (one statement for many addresses); each call still returns once its failure is stored.
    /// Errors: only `Unavailable` and `Internal` (the failure may not have been counted).
    async fn record_auth_failure(
        &self,
        ip: &str,
        kind: FailureKind,
        now: Timestamp,
        window_start: Timestamp,
    ) -> RepoResult<u32>;

    /// Forgets the [`FailureKind::Key`] failures of `ip` (it presented a valid API key); its
    /// password failures still count. Errors: only `Unavailable` and `Internal`.
    async fn clear_key_failures(&self, ip: &str) -> RepoResult<()>;

    /// Forgets every failure of `ip` (it has just been banned, so its next failure after the
    /// ban starts a new count). Errors: only `Unavailable` and `Internal`.
    async fn clear_auth_failures(&self, ip: &str) -> RepoResult<()>;

    /// Bans `ip` until `until` (a later ban extends an earlier one). Errors: only
    /// `Unavailable` and `Internal`.
    async fn ban_ip(&self, ip: &str, until: Timestamp) -> RepoResult<()>;

    /// The end of the ban in force for `ip` at `now`, if any. Errors: only `Unavailable` and
    /// `Internal`.
    async fn active_ban(&self, ip: &str, now: Timestamp) -> RepoResult<Option<Timestamp>>;
}

/// Every storage port at once, what a composition root hands the HTTP adapter.
pub trait Store:
    QueueRepository
    + WorkflowRepository
    + MessageRepository
    + WebhookRepository
    + JobRepository
    + JobStatsRepository
    + TriggerRepository
    + RobotRepository
    + FlowRepository
    + EventRepository
    + UserRepository
    + ApiKeyRepository
    + AccessGuardRepository
{
}

impl<T> Store for T where
    T: QueueRepository
        + WorkflowRepository
        + MessageRepository
        + WebhookRepository
        + JobRepository
        + JobStatsRepository
        + TriggerRepository
        + RobotRepository
        + FlowRepository
        + EventRepository
        + UserRepository
        + ApiKeyRepository
        + AccessGuardRepository
{
}
