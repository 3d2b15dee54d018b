//! Work queues and their items: the PyOrchestrator model on a leasing work-queue engine.

use std::fmt;
use std::str::FromStr;

use crate::clock::Timestamp;
use crate::error::{TransitionError, ValidationError, Validator};
use crate::ids::QueueItemId;
use crate::robot::RobotId;
use crate::text::check_optional;

crate::bounded_text!(
    /// A queue's name: 1–100 characters. Queues are created on first use.
    QueueName, field = "queue_name", min = 1, max = 100
);

/// How a queue treats its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// How many times an item whose lease expired goes back to NEW before it is ABANDONED.
    pub max_retries: u32,
    /// How long a claim holds an item before it counts as expired.
    pub lease_seconds: u32,
    /// When true, two items of the queue may not share a non-null reference.
    pub unique_reference: bool,
}

impl QueueSettings {
    pub const MAX_RETRIES_LIMIT: u32 = 100;
    pub const LEASE_SECONDS_RANGE: (u32, u32) = (1, 86_400);

    pub fn new(
        max_retries: u32,
        lease_seconds: u32,
        unique_reference: bool,
    ) -> Result<Self, ValidationError> {
        let mut v = Validator::new();
        if max_retries > Self::MAX_RETRIES_LIMIT {
            v.push(
                "max_retries",
                format!("must be between 0 and {}", Self::MAX_RETRIES_LIMIT),
            );
        }
        let (lo, hi) = Self::LEASE_SECONDS_RANGE;
        if !(lo..=hi).contains(&lease_seconds) {
            v.push("lease_seconds", format!("must be between {lo} and {hi}"));
        }
        v.finish()?;
        Ok(Self {
            max_retries,
            lease_seconds,
            unique_reference,
        })
    }
}

impl Default for QueueSettings {
    /// Three retries and a five-minute lease: long enough for a typical item, short enough to recover.
    fn default() -> Self {
        Self {
            max_retries: 3,
            lease_seconds: 300,
            unique_reference: false,
        }
    }
}

/// A named queue with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub name: QueueName,
    pub settings: QueueSettings,
    pub created_at: Timestamp,
}

/// A queue with how many of its items are in each status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSummary {
    pub queue: Queue,
    pub counts: StatusCounts,
}

/// Item counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub new: u64,
    pub in_progress: u64,
    pub done: u64,
    pub failed: u64,
    pub abandoned: u64,
}

impl StatusCounts {
    pub fn add(&mut self, status: QueueItemStatus, count: u64) {
        match status {
            QueueItemStatus::New => self.new += count,
            QueueItemStatus::InProgress => self.in_progress += count,
            QueueItemStatus::Done => self.done += count,
            QueueItemStatus::Failed => self.failed += count,
            QueueItemStatus::Abandoned => self.abandoned += count,
        }
    }
}

/// Where a queue item is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueItemStatus {
    New,
    InProgress,
    Done,
    Failed,
    Abandoned,
}

impl QueueItemStatus {
    pub const ALL: [QueueItemStatus; 5] = [
        Self::New,
        Self::InProgress,
        Self::Done,
        Self::Failed,
        Self::Abandoned,
    ];

    /// The stored, upper-case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::InProgress => "IN_PROGRESS",
            Self::Done => "DONE",
            Self::Failed => "FAILED",
            Self::Abandoned => "ABANDONED",
        }
    }

    /// DONE, FAILED and ABANDONED end an item's processing and stamp its end date.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Abandoned)
    }
}

impl fmt::Display for QueueItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QueueItemStatus {
    type Err = ValidationError;

    /// Accepts any letter case, as the PyOrchestrator document's clients send it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == upper)
            .ok_or_else(|| {
                ValidationError::field(
                    "status",
                    "must be one of NEW, IN_PROGRESS, DONE, FAILED, ABANDONED",
                )
            })
    }
}

/// A queue item's payload: at most 2000 characters once stringified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemData(String);

impl ItemData {
    pub const MAX_CHARS: usize = 2000;

    /// Strings are kept as given; objects and arrays become compact JSON; other JSON types are refused.
    pub fn from_json(value: &serde_json::Value) -> Result<Option<Self>, ValidationError> {
        let text = match value {
            serde_json::Value::Null => return Ok(None),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(_) | serde_json::Value::Array(_) => value.to_string(),
            _ => {
                return Err(ValidationError::field(
                    "data",
                    "must be a string, a JSON object or a JSON array",
                ));
            }
        };
        Self::parse(text).map(Some)
    }

    pub fn parse(text: String) -> Result<Self, ValidationError> {
        crate::text::check_length("data", &text, 0, Self::MAX_CHARS)?;
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a client may set when it adds an item. Built by [`NewQueueItem::parse`] only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQueueItem {
    pub queue_name: QueueName,
    pub status: QueueItemStatus,
    pub data: Option<ItemData>,
    pub reference: Option<String>,
    pub message: Option<String>,
    pub created_by: Option<String>,
    pub created_date: Option<Timestamp>,
}

/// A queue item's fields as they arrive, before any rule is checked.
#[derive(Debug, Clone, Default)]
pub struct RawQueueItem {
    pub queue_name: String,
    pub status: Option<String>,
    pub data: serde_json::Value,
    pub reference: Option<String>,
    pub message: Option<String>,
    pub created_by: Option<String>,
    pub created_date: Option<Timestamp>,
}

impl NewQueueItem {
    pub const MAX_REFERENCE: usize = 100;
    pub const MAX_MESSAGE: usize = 1000;
    pub const MAX_CREATED_BY: usize = 100;

    /// Checks every rule of DESIGN §3 and reports all broken ones together.
    pub fn parse(raw: RawQueueItem) -> Result<Self, ValidationError> {
        let mut v = Validator::new();
        let queue_name = v.check(QueueName::parse(raw.queue_name));
        let status = match raw.status {
            Some(s) => v.check(s.parse()),
            None => Some(QueueItemStatus::New),
        };
        let data = v.check(ItemData::from_json(&raw.data));
        let reference = v.check(check_optional(
            "reference",
            raw.reference,
            Self::MAX_REFERENCE,
        ));
        let message = v.check(check_optional("message", raw.message, Self::MAX_MESSAGE));
        let created_by = v.check(check_optional(
            "created_by",
            raw.created_by,
            Self::MAX_CREATED_BY,
        ));
        v.finish()?;
        match (queue_name, status, data, reference, message, created_by) {
            (
                Some(queue_name),
                Some(status),
                Some(data),
                Some(reference),
                Some(message),
                Some(created_by),
            ) => Ok(Self {
                queue_name,
                status,
                data,
                reference,
                message,
                created_by,
                created_date: raw.created_date.map(crate::clock::truncate_to_micros),
            }),
            // Every `None` above recorded an error, so `finish` has already returned it.
            _ => Err(ValidationError::field("body", "invalid queue item")),
        }
    }

    /// The stored item: server time fills `created_date`; an item added already final is stamped ended.
    pub fn into_item(self, id: QueueItemId, now: Timestamp) -> QueueItem {
        let start_date = (self.status != QueueItemStatus::New).then_some(now);
        let end_date = self.status.is_final().then_some(now);
        QueueItem {
            id,
            queue_name: self.queue_name,
            status: self.status,
            data: self.data,
            reference: self.reference,
            message: self.message,
            created_by: self.created_by,
            created_date: self.created_date.unwrap_or(now),
            start_date,
            end_date,
            retry_count: 0,
            lease_expires_at: None,
            robot_id: None,
            updated_at: now,
            version: 0,
        }
    }
}

/// One unit of work in a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    pub id: QueueItemId,
    pub queue_name: QueueName,
    pub status: QueueItemStatus,
    pub data: Option<ItemData>,
    pub reference: Option<String>,
    pub message: Option<String>,
    pub created_by: Option<String>,
    pub created_date: Timestamp,
    /// Set when a robot claims the item.
    pub start_date: Option<Timestamp>,
    /// Set when the item reaches DONE, FAILED or ABANDONED.
    pub end_date: Option<Timestamp>,
    /// How many leases of this item expired before now.
    pub retry_count: u32,
    /// While IN_PROGRESS under a claim: when the claim lapses.
    pub lease_expires_at: Option<Timestamp>,
    /// The robot holding the claim, if any.
    pub robot_id: Option<RobotId>,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency counter, bumped by every stored change.
    pub version: i64,
}

impl QueueItem {
    /// A robot takes the item: it must be NEW.
    pub fn claim(
        &mut self,
        robot: RobotId,
        now: Timestamp,
        lease_seconds: u32,
    ) -> Result<(), TransitionError> {
        if self.status != QueueItemStatus::New {
            return Err(self.refuse("claim"));
        }
        self.status = QueueItemStatus::InProgress;
        self.start_date = Some(now);
        self.lease_expires_at = Some(now + time::Duration::seconds(i64::from(lease_seconds)));
        self.robot_id = Some(robot);
        self.updated_at = now;
        Ok(())
    }

    /// Sets a new status on behalf of a client or robot.
    ///
    /// A final item cannot change again, except that a FAILED or ABANDONED item may be put back to
    /// NEW to retry it by hand. Reaching a final status stamps `end_date`; going back to NEW clears the claim.
    pub fn set_status(
        &mut self,
        status: QueueItemStatus,
        message: Option<String>,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        use QueueItemStatus::*;
        let allowed = match (self.status, status) {
            (Done, _) => false,
            (Failed | Abandoned, New) => true,
            (Failed | Abandoned, _) => false,
            (New | InProgress, _) => true,
        };
        if !allowed {
            return Err(self.refuse("set the status of"));
        }
        match status {
            New => {
                self.start_date = None;
                self.end_date = None;
                self.lease_expires_at = None;
                self.robot_id = None;
            }
            InProgress => {
                self.start_date.get_or_insert(now);
            }
            Done | Failed | Abandoned => {
                self.start_date.get_or_insert(now);
                self.end_date = Some(now);
                self.lease_expires_at = None;
            }
        }
        self.status = status;
        if message.is_some() {
            self.message = message;
        }
        self.updated_at = now;
        Ok(())
    }

    /// The claim lapsed: back to NEW while retries remain, else ABANDONED.
    pub fn expire_lease(
        &mut self,
        max_retries: u32,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        if self.status != QueueItemStatus::InProgress || self.lease_expires_at.is_none() {
            return Err(self.refuse("expire the lease of"));
        }
        self.lease_expires_at = None;
        self.robot_id = None;
        if self.retry_count < max_retries {
            self.retry_count += 1;
            self.status = QueueItemStatus::New;
            self.start_date = None;
        } else {
            self.status = QueueItemStatus::Abandoned;
            self.end_date = Some(now);
        }
        self.updated_at = now;
        Ok(())
    }

    fn refuse(&self, action: &'static str) -> TransitionError {
        TransitionError {
            entity: "queue item",
            action,
            state: self.status.to_string(),
        }
    }
}
