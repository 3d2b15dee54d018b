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

    /// Checks every rule of an item (name, data, reference, created_by, message, status) and
    /// reports all broken ones together.
    pub fn parse(raw: RawQueueItem) -> Result<Self, ValidationError> {
        let mut v = Validator::new();
        let queue_name = v.check(QueueName::parse(raw.queue_name));
        let status = match raw.status {
            Some(s) => v.check(s.parse()),
            None => Some(QueueItemStatus::New),
        };
        let data = v.check(ItemData::from_json(&raw.data));
        let reference = v.check(crate::text::check_optional_name(
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
///
/// Its fields are private: it changes only through its transitions, so its status, holder and
/// dates always agree. Stores move it in and out of storage as a [`QueueItemRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItem {
    id: QueueItemId,
    queue_name: QueueName,
    status: QueueItemStatus,
    data: Option<ItemData>,
    reference: Option<String>,
    message: Option<String>,
    created_by: Option<String>,
    created_date: Timestamp,
    /// Set when a robot claims the item.
    start_date: Option<Timestamp>,
    /// Set when the item reaches DONE, FAILED or ABANDONED.
    end_date: Option<Timestamp>,
    /// How many leases of this item expired before now.
    retry_count: u32,
    /// While IN_PROGRESS under a claim: when the claim lapses.
    lease_expires_at: Option<Timestamp>,
    /// The robot holding the claim, if any.
    robot_id: Option<RobotId>,
    updated_at: Timestamp,
    /// Optimistic-concurrency counter, bumped by every stored change.
    version: i64,
}

/// A queue item's stored state, field by field: what a store writes and reads back.
///
/// A record is plain data and checks nothing; [`QueueItem::from_record`] trusts it to be what
/// [`QueueItem::into_record`] gave, which is why only stores and tests should build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueItemRecord {
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
    /// The queue item as a store kept it.
    pub fn from_record(record: QueueItemRecord) -> Self {
        let QueueItemRecord {
            id,
            queue_name,
            status,
            data,
            reference,
            message,
            created_by,
            created_date,
            start_date,
            end_date,
            retry_count,
            lease_expires_at,
            robot_id,
            updated_at,
            version,
        } = record;
        Self {
            id,
            queue_name,
            status,
            data,
            reference,
            message,
            created_by,
            created_date,
            start_date,
            end_date,
            retry_count,
            lease_expires_at,
            robot_id,
            updated_at,
            version,
        }
    }

    /// Its state for a store to write.
    pub fn into_record(self) -> QueueItemRecord {
        let Self {
            id,
            queue_name,
            status,
            data,
            reference,
            message,
            created_by,
            created_date,
            start_date,
            end_date,
            retry_count,
            lease_expires_at,
            robot_id,
            updated_at,
            version,
        } = self;
        QueueItemRecord {
            id,
            queue_name,
            status,
            data,
            reference,
            message,
            created_by,
            created_date,
            start_date,
            end_date,
            retry_count,
            lease_expires_at,
            robot_id,
            updated_at,
            version,
        }
    }

    /// A store calls this once it has written the item's change: the optimistic-concurrency
    /// counter moves one on, as the stored copy's did.
    pub fn mark_stored(&mut self) {
        self.version += 1;
    }

    /// Changes the record behind the item directly, bypassing its transitions: for tests
    /// that need a state (an old version, a lapsed lease, another id) no short path of
    /// transitions reaches. Built only for tests and with the `testing` feature.
    #[cfg(any(test, feature = "testing"))]
    pub fn edit(&mut self, change: impl FnOnce(&mut QueueItemRecord)) {
        let mut record = self.to_record();
        change(&mut record);
        *self = Self::from_record(record);
    }

    /// [`QueueItem::into_record`] of a copy.
    pub fn to_record(&self) -> QueueItemRecord {
        self.clone().into_record()
    }

    pub fn id(&self) -> QueueItemId {
        self.id
    }

    pub fn queue_name(&self) -> &QueueName {
        &self.queue_name
    }

    pub fn status(&self) -> QueueItemStatus {
        self.status
    }

    pub fn data(&self) -> Option<&ItemData> {
        self.data.as_ref()
    }

    pub fn reference(&self) -> Option<&str> {
        self.reference.as_deref()
    }

    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    pub fn created_by(&self) -> Option<&str> {
        self.created_by.as_deref()
    }

    pub fn created_date(&self) -> Timestamp {
        self.created_date
    }

    /// Set when a robot claims the item.
    pub fn start_date(&self) -> Option<Timestamp> {
        self.start_date
    }

    /// Set when the item reaches DONE, FAILED or ABANDONED.
    pub fn end_date(&self) -> Option<Timestamp> {
        self.end_date
    }

    /// How many leases of this item expired before now.
    pub fn retry_count(&self) -> u32 {
        self.retry_count
    }

    /// While IN_PROGRESS under a claim: when the claim lapses.
    pub fn lease_expires_at(&self) -> Option<Timestamp> {
        self.lease_expires_at
    }

    /// The robot holding the claim, if any.
    pub fn robot_id(&self) -> Option<&RobotId> {
        self.robot_id.as_ref()
    }

    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }

    /// Optimistic-concurrency counter, bumped by every stored change.
    pub fn version(&self) -> i64 {
        self.version
    }
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

    /// The claim lapsed: back to NEW while retries remain, else ABANDONED. A lease that has not
    /// yet ended cannot expire: its robot still holds the item.
    pub fn expire_lease(
        &mut self,
        max_retries: u32,
        now: Timestamp,
    ) -> Result<(), TransitionError> {
        let expired = self.status == QueueItemStatus::InProgress
            && self.lease_expires_at.is_some_and(|end| end <= now);
        if !expired {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;
    use uuid::Uuid;

    const NOW: Timestamp = datetime!(2025-06-01 12:00 UTC);
    const LATER: Timestamp = datetime!(2025-06-01 12:30 UTC);

    fn raw(queue_name: &str) -> RawQueueItem {
        RawQueueItem {
            queue_name: queue_name.to_owned(),
            ..RawQueueItem::default()
        }
    }

    fn fields(err: &ValidationError) -> Vec<&str> {
        err.errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn robot(name: &str) -> RobotId {
        RobotId::parse(name).unwrap()
    }

    fn item_with_status(status: QueueItemStatus) -> QueueItem {
        let raw = RawQueueItem {
            status: Some(status.as_str().to_owned()),
            ..raw("invoices")
        };
        NewQueueItem::parse(raw)
            .unwrap()
            .into_item(QueueItemId::from_uuid(Uuid::from_u128(1)), NOW)
    }

    fn new_item() -> QueueItem {
        item_with_status(QueueItemStatus::New)
    }

    fn claimed_item(lease_seconds: u32) -> QueueItem {
        let mut item = new_item();
        item.claim(robot("robot-1"), NOW, lease_seconds).unwrap();
        item
    }

    // ---- NewQueueItem::parse: queue_name ----

    #[test]
    fn a_minimal_item_defaults_to_new_with_no_optional_fields() {
        let item = NewQueueItem::parse(raw("q")).unwrap();
        assert_eq!(item.queue_name.as_str(), "q");
        assert_eq!(item.status, QueueItemStatus::New);
        assert_eq!(item.data, None);
        assert_eq!(item.reference, None);
        assert_eq!(item.message, None);
        assert_eq!(item.created_by, None);
        assert_eq!(item.created_date, None);
    }

    #[test]
    fn an_empty_queue_name_is_refused() {
        let err = NewQueueItem::parse(raw("")).unwrap_err();
        assert_eq!(fields(&err), ["queue_name"]);
    }

    #[test]
    fn a_queue_name_of_one_character_is_accepted() {
        assert!(NewQueueItem::parse(raw("q")).is_ok());
    }

    #[test]
    fn a_queue_name_of_exactly_100_characters_is_accepted() {
        let item = NewQueueItem::parse(raw(&"q".repeat(100))).unwrap();
        assert_eq!(item.queue_name.as_str().chars().count(), 100);
    }

    #[test]
    fn a_queue_name_of_101_characters_is_refused() {
        let err = NewQueueItem::parse(raw(&"q".repeat(101))).unwrap_err();
        assert_eq!(fields(&err), ["queue_name"]);
    }

    #[test]
    fn queue_name_length_counts_characters_not_bytes() {
        assert!(NewQueueItem::parse(raw(&"é".repeat(100))).is_ok());
        assert!(NewQueueItem::parse(raw(&"é".repeat(101))).is_err());
    }

    #[test]
    fn queue_name_parse_enforces_the_same_bounds() {
        assert_eq!(QueueName::MIN_CHARS, 1);
        assert_eq!(QueueName::MAX_CHARS, 100);
        assert!(QueueName::parse("").is_err());
        assert!(QueueName::parse("x".repeat(100)).is_ok());
        assert!(QueueName::parse("x".repeat(101)).is_err());
    }

    // ---- data ----

    fn with_data(data: serde_json::Value) -> Result<NewQueueItem, ValidationError> {
        NewQueueItem::parse(RawQueueItem { data, ..raw("q") })
    }

    #[test]
    fn null_data_is_stored_as_no_data() {
        assert_eq!(with_data(serde_json::Value::Null).unwrap().data, None);
    }

    #[test]
    fn string_data_is_kept_exactly_as_given() {
        let item = with_data(json!("  {\"not\": \"reformatted\"}  ")).unwrap();
        assert_eq!(
            item.data.unwrap().as_str(),
            "  {\"not\": \"reformatted\"}  "
        );
    }

    #[test]
    fn object_data_becomes_compact_json() {
        let item = with_data(json!({"amount": 12, "tags": ["a", "b"]})).unwrap();
        assert_eq!(
            item.data.unwrap().as_str(),
            r#"{"amount":12,"tags":["a","b"]}"#
        );
    }

    #[test]
    fn array_data_becomes_compact_json() {
        let item = with_data(json!([1, {"k": null}, "x"])).unwrap();
        assert_eq!(item.data.unwrap().as_str(), r#"[1,{"k":null},"x"]"#);
    }

    #[test]
    fn number_data_is_refused() {
        let err = with_data(json!(42)).unwrap_err();
        assert_eq!(fields(&err), ["data"]);
        assert!(with_data(json!(1.5)).is_err());
        assert!(with_data(json!(-3)).is_err());
    }

    #[test]
    fn boolean_data_is_refused() {
        assert_eq!(fields(&with_data(json!(true)).unwrap_err()), ["data"]);
        assert_eq!(fields(&with_data(json!(false)).unwrap_err()), ["data"]);
    }

    #[test]
    fn string_data_of_exactly_2000_characters_is_accepted() {
        let item = with_data(json!("d".repeat(2000))).unwrap();
        assert_eq!(item.data.unwrap().as_str().len(), 2000);
    }

    #[test]
    fn string_data_of_2001_characters_is_refused() {
        let err = with_data(json!("d".repeat(2001))).unwrap_err();
        assert_eq!(fields(&err), ["data"]);
    }

    #[test]
    fn data_length_counts_characters_not_bytes() {
        assert!(with_data(json!("é".repeat(2000))).is_ok());
        assert!(with_data(json!("é".repeat(2001))).is_err());
    }

    #[test]
    fn object_data_is_measured_after_stringifying() {
        // `{"k":"…"}` adds 8 characters around the value.
        let fits = with_data(json!({ "k": "v".repeat(1992) })).unwrap();
        assert_eq!(fits.data.unwrap().as_str().chars().count(), 2000);
        let err = with_data(json!({ "k": "v".repeat(1993) })).unwrap_err();
        assert_eq!(fields(&err), ["data"]);
    }

    #[test]
    fn array_data_is_measured_after_stringifying() {
        // `["…"]` adds 4 characters around the value.
        assert!(with_data(json!(["v".repeat(1996)])).is_ok());
        assert!(with_data(json!(["v".repeat(1997)])).is_err());
    }

    #[test]
    fn item_data_from_json_maps_each_json_type() {
        assert_eq!(ItemData::from_json(&json!(null)).unwrap(), None);
        assert_eq!(
            ItemData::from_json(&json!("s")).unwrap().unwrap().as_str(),
            "s"
        );
        assert_eq!(
            ItemData::from_json(&json!({})).unwrap().unwrap().as_str(),
            "{}"
        );
        assert_eq!(
            ItemData::from_json(&json!([])).unwrap().unwrap().as_str(),
            "[]"
        );
        assert!(ItemData::from_json(&json!(0)).is_err());
        assert!(ItemData::from_json(&json!(true)).is_err());
    }

    // ---- reference, message, created_by ----

    #[test]
    fn a_reference_of_exactly_100_characters_is_accepted() {
        let item = NewQueueItem::parse(RawQueueItem {
            reference: Some("r".repeat(100)),
            ..raw("q")
        })
        .unwrap();
        assert_eq!(item.reference, Some("r".repeat(100)));
    }

    #[test]
    fn a_reference_of_101_characters_is_refused() {
        let err = NewQueueItem::parse(RawQueueItem {
            reference: Some("r".repeat(101)),
            ..raw("q")
        })
        .unwrap_err();
        assert_eq!(fields(&err), ["reference"]);
    }

    #[test]
    fn a_message_of_exactly_1000_characters_is_accepted() {
        let item = NewQueueItem::parse(RawQueueItem {
            message: Some("m".repeat(1000)),
            ..raw("q")
        })
        .unwrap();
        assert_eq!(item.message, Some("m".repeat(1000)));
    }

    #[test]
    fn a_message_of_1001_characters_is_refused() {
        let err = NewQueueItem::parse(RawQueueItem {
            message: Some("m".repeat(1001)),
            ..raw("q")
        })
        .unwrap_err();
        assert_eq!(fields(&err), ["message"]);
    }

    #[test]
    fn a_created_by_of_exactly_100_characters_is_accepted() {
        let item = NewQueueItem::parse(RawQueueItem {
            created_by: Some("c".repeat(100)),
            ..raw("q")
        })
        .unwrap();
        assert_eq!(item.created_by, Some("c".repeat(100)));
    }

    #[test]
    fn a_created_by_of_101_characters_is_refused() {
        let err = NewQueueItem::parse(RawQueueItem {
            created_by: Some("c".repeat(101)),
            ..raw("q")
        })
        .unwrap_err();
        assert_eq!(fields(&err), ["created_by"]);
    }

    #[test]
    fn empty_optional_texts_are_kept_as_empty_strings() {
        let item = NewQueueItem::parse(RawQueueItem {
            reference: Some(String::new()),
            message: Some(String::new()),
            created_by: Some(String::new()),
            ..raw("q")
        })
        .unwrap();
        assert_eq!(item.reference.as_deref(), Some(""));
        assert_eq!(item.message.as_deref(), Some(""));
        assert_eq!(item.created_by.as_deref(), Some(""));
    }

    // ---- status ----

    #[test]
    fn status_is_accepted_in_any_letter_case() {
        for (given, expected) in [
            ("new", QueueItemStatus::New),
            ("NEW", QueueItemStatus::New),
            ("in_progress", QueueItemStatus::InProgress),
            ("In_Progress", QueueItemStatus::InProgress),
            ("done", QueueItemStatus::Done),
            ("Failed", QueueItemStatus::Failed),
            ("aBaNdOnEd", QueueItemStatus::Abandoned),
        ] {
            let item = NewQueueItem::parse(RawQueueItem {
                status: Some(given.to_owned()),
                ..raw("q")
            })
            .unwrap();
            assert_eq!(item.status, expected, "{given}");
        }
    }

    #[test]
    fn an_unknown_status_is_refused() {
        for bad in ["", "PENDING", "IN PROGRESS", "inprogress", " new"] {
            let err = NewQueueItem::parse(RawQueueItem {
                status: Some(bad.to_owned()),
                ..raw("q")
            })
            .unwrap_err();
            assert_eq!(fields(&err), ["status"], "{bad:?}");
        }
    }

    #[test]
    fn statuses_are_stored_upper_case() {
        let stored: Vec<String> = QueueItemStatus::ALL
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            stored,
            ["NEW", "IN_PROGRESS", "DONE", "FAILED", "ABANDONED"]
        );
        for status in QueueItemStatus::ALL {
            assert_eq!(status.as_str().parse::<QueueItemStatus>().unwrap(), status);
        }
    }

    #[test]
    fn only_done_failed_and_abandoned_are_final() {
        assert!(!QueueItemStatus::New.is_final());
        assert!(!QueueItemStatus::InProgress.is_final());
        assert!(QueueItemStatus::Done.is_final());
        assert!(QueueItemStatus::Failed.is_final());
        assert!(QueueItemStatus::Abandoned.is_final());
    }

    // ---- all errors together ----

    #[test]
    fn every_broken_rule_is_reported_together_with_its_field_name() {
        let err = NewQueueItem::parse(RawQueueItem {
            queue_name: "q".repeat(101),
            status: Some("WAITING".to_owned()),
            data: json!(7),
            reference: Some("r".repeat(101)),
            message: Some("m".repeat(1001)),
            created_by: Some("c".repeat(101)),
            created_date: None,
        })
        .unwrap_err();
        assert_eq!(
            fields(&err),
            [
                "queue_name",
                "status",
                "data",
                "reference",
                "message",
                "created_by"
            ]
        );
        assert!(err.errors.iter().all(|e| !e.message.is_empty()));
    }

    #[test]
    fn two_broken_rules_yield_exactly_two_errors() {
        let err = NewQueueItem::parse(RawQueueItem {
            data: json!("d".repeat(2001)),
            message: Some("m".repeat(1001)),
            ..raw("q")
        })
        .unwrap_err();
        assert_eq!(fields(&err), ["data", "message"]);
    }

    #[test]
    fn a_given_created_date_is_normalised_to_utc_microseconds() {
        let item = NewQueueItem::parse(RawQueueItem {
            created_date: Some(datetime!(2025-01-02 03:04:05.123456789 +02:00)),
            ..raw("q")
        })
        .unwrap();
        let created = item.created_date.unwrap();
        assert_eq!(created, datetime!(2025-01-02 01:04:05.123456 UTC));
        assert_eq!(created.offset(), time::UtcOffset::UTC);
    }

    // ---- into_item ----

    #[test]
    fn into_item_fills_created_date_with_server_time_when_absent() {
        let item = new_item();
        assert_eq!(item.created_date, NOW);
        assert_eq!(item.updated_at, NOW);
    }

    #[test]
    fn into_item_keeps_a_client_supplied_created_date() {
        let given = datetime!(2024-12-31 23:00 UTC);
        let item = NewQueueItem::parse(RawQueueItem {
            created_date: Some(given),
            ..raw("q")
        })
        .unwrap()
        .into_item(QueueItemId::from_uuid(Uuid::from_u128(9)), NOW);
        assert_eq!(item.created_date, given);
        assert_eq!(item.updated_at, NOW);
    }

    #[test]
    fn into_item_starts_a_new_item_unclaimed_and_unstamped() {
        let item = new_item();
        assert_eq!(item.id, QueueItemId::from_uuid(Uuid::from_u128(1)));
        assert_eq!(item.status, QueueItemStatus::New);
        assert_eq!(item.start_date, None);
        assert_eq!(item.end_date, None);
        assert_eq!(item.retry_count, 0);
        assert_eq!(item.lease_expires_at, None);
        assert_eq!(item.robot_id, None);
        assert_eq!(item.version, 0);
    }

    #[test]
    fn into_item_carries_every_client_field_over() {
        let item = NewQueueItem::parse(RawQueueItem {
            queue_name: "invoices".to_owned(),
            status: Some("new".to_owned()),
            data: json!({"n": 1}),
            reference: Some("INV-1".to_owned()),
            message: Some("hello".to_owned()),
            created_by: Some("erp".to_owned()),
            created_date: None,
        })
        .unwrap()
        .into_item(QueueItemId::from_uuid(Uuid::from_u128(2)), NOW);
        assert_eq!(item.queue_name.as_str(), "invoices");
        assert_eq!(item.data.unwrap().as_str(), r#"{"n":1}"#);
        assert_eq!(item.reference.as_deref(), Some("INV-1"));
        assert_eq!(item.message.as_deref(), Some("hello"));
        assert_eq!(item.created_by.as_deref(), Some("erp"));
    }

    #[test]
    fn an_item_added_in_progress_is_started_but_not_ended() {
        let item = item_with_status(QueueItemStatus::InProgress);
        assert_eq!(item.start_date, Some(NOW));
        assert_eq!(item.end_date, None);
    }

    #[test]
    fn an_item_added_already_final_is_stamped_started_and_ended() {
        for status in [
            QueueItemStatus::Done,
            QueueItemStatus::Failed,
            QueueItemStatus::Abandoned,
        ] {
            let item = item_with_status(status);
            assert_eq!(item.status, status);
            assert_eq!(item.start_date, Some(NOW), "{status}");
            assert_eq!(item.end_date, Some(NOW), "{status}");
        }
    }

    // ---- claim ----

    #[test]
    fn claiming_a_new_item_puts_it_in_progress_under_a_lease() {
        let mut item = new_item();
        item.claim(robot("robot-1"), LATER, 300).unwrap();
        assert_eq!(item.status, QueueItemStatus::InProgress);
        assert_eq!(item.start_date, Some(LATER));
        assert_eq!(item.lease_expires_at, Some(datetime!(2025-06-01 12:35 UTC)));
        assert_eq!(item.robot_id, Some(robot("robot-1")));
        assert_eq!(item.updated_at, LATER);
        assert_eq!(item.end_date, None);
    }

    #[test]
    fn only_a_new_item_can_be_claimed() {
        for status in [
            QueueItemStatus::InProgress,
            QueueItemStatus::Done,
            QueueItemStatus::Failed,
            QueueItemStatus::Abandoned,
        ] {
            let mut item = item_with_status(status);
            let before = item.clone();
            let err = item.claim(robot("robot-2"), LATER, 60).unwrap_err();
            assert_eq!(err.entity, "queue item");
            assert_eq!(err.state, status.as_str());
            assert_eq!(item, before, "a refused claim changes nothing");
        }
    }

    #[test]
    fn an_item_claimed_by_one_robot_cannot_be_claimed_by_another() {
        let mut item = claimed_item(60);
        assert!(item.claim(robot("robot-2"), LATER, 60).is_err());
        assert_eq!(item.robot_id, Some(robot("robot-1")));
    }

    // ---- set_status ----

    #[test]
    fn a_done_item_cannot_change_status() {
        for target in QueueItemStatus::ALL {
            let mut item = item_with_status(QueueItemStatus::Done);
            let before = item.clone();
            let err = item.set_status(target, None, LATER).unwrap_err();
            assert_eq!(err.state, "DONE");
            assert_eq!(item, before, "DONE -> {target} must be refused");
        }
    }

    #[test]
    fn a_failed_or_abandoned_item_may_go_back_to_new() {
        for from in [QueueItemStatus::Failed, QueueItemStatus::Abandoned] {
            let mut item = claimed_item(60);
            item.set_status(from, None, NOW).unwrap();
            item.set_status(QueueItemStatus::New, None, LATER).unwrap();
            assert_eq!(item.status, QueueItemStatus::New);
            assert_eq!(item.start_date, None);
            assert_eq!(item.end_date, None);
            assert_eq!(item.lease_expires_at, None);
            assert_eq!(item.robot_id, None);
            assert_eq!(item.updated_at, LATER);
        }
    }

    #[test]
    fn a_failed_or_abandoned_item_cannot_move_anywhere_but_new() {
        for from in [QueueItemStatus::Failed, QueueItemStatus::Abandoned] {
            for target in [
                QueueItemStatus::InProgress,
                QueueItemStatus::Done,
                QueueItemStatus::Failed,
                QueueItemStatus::Abandoned,
            ] {
                let mut item = item_with_status(from);
                let before = item.clone();
                assert!(
                    item.set_status(target, None, LATER).is_err(),
                    "{from} -> {target}"
                );
                assert_eq!(item, before);
            }
        }
    }

    #[test]
    fn a_retried_item_can_be_claimed_again() {
        let mut item = item_with_status(QueueItemStatus::Failed);
        item.set_status(QueueItemStatus::New, None, NOW).unwrap();
        item.claim(robot("robot-3"), LATER, 60).unwrap();
        assert_eq!(item.status, QueueItemStatus::InProgress);
        assert_eq!(item.start_date, Some(LATER));
    }

    #[test]
    fn finishing_an_in_progress_item_stamps_its_end_date_and_keeps_its_start() {
        for target in [
            QueueItemStatus::Done,
            QueueItemStatus::Failed,
            QueueItemStatus::Abandoned,
        ] {
            let mut item = claimed_item(60);
            item.set_status(target, None, LATER).unwrap();
            assert_eq!(item.status, target);
            assert_eq!(item.start_date, Some(NOW));
            assert_eq!(item.end_date, Some(LATER));
            assert_eq!(item.lease_expires_at, None);
            assert_eq!(item.updated_at, LATER);
        }
    }

    #[test]
    fn finishing_a_new_item_directly_stamps_both_dates() {
        let mut item = new_item();
        item.set_status(QueueItemStatus::Done, None, LATER).unwrap();
        assert_eq!(item.start_date, Some(LATER));
        assert_eq!(item.end_date, Some(LATER));
    }

    #[test]
    fn setting_a_new_item_in_progress_stamps_its_start_but_not_its_end() {
        let mut item = new_item();
        item.set_status(QueueItemStatus::InProgress, None, LATER)
            .unwrap();
        assert_eq!(item.status, QueueItemStatus::InProgress);
        assert_eq!(item.start_date, Some(LATER));
        assert_eq!(item.end_date, None);
    }

    #[test]
    fn setting_an_in_progress_item_in_progress_again_keeps_its_start_date() {
        let mut item = claimed_item(60);
        item.set_status(QueueItemStatus::InProgress, None, LATER)
            .unwrap();
        assert_eq!(item.start_date, Some(NOW));
    }

    #[test]
    fn putting_an_in_progress_item_back_to_new_clears_its_claim() {
        let mut item = claimed_item(60);
        item.set_status(QueueItemStatus::New, None, LATER).unwrap();
        assert_eq!(item.status, QueueItemStatus::New);
        assert_eq!(item.robot_id, None);
        assert_eq!(item.lease_expires_at, None);
        assert_eq!(item.start_date, None);
    }

    #[test]
    fn set_status_replaces_the_message_only_when_one_is_given() {
        let mut item = claimed_item(60);
        item.message = Some("original".to_owned());
        item.set_status(QueueItemStatus::InProgress, None, LATER)
            .unwrap();
        assert_eq!(item.message.as_deref(), Some("original"));
        item.set_status(QueueItemStatus::Done, Some("all good".to_owned()), LATER)
            .unwrap();
        assert_eq!(item.message.as_deref(), Some("all good"));
    }

    #[test]
    fn a_refused_status_change_reports_the_current_status() {
        let mut item = item_with_status(QueueItemStatus::Done);
        let err = item
            .set_status(QueueItemStatus::New, None, LATER)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot set the status of a queue item that is DONE"
        );
    }

    // ---- expire_lease ----

    #[test]
    fn an_expired_lease_puts_the_item_back_to_new_while_retries_remain() {
        let mut item = claimed_item(60);
        item.expire_lease(3, LATER).unwrap();
        assert_eq!(item.status, QueueItemStatus::New);
        assert_eq!(item.retry_count, 1);
        assert_eq!(item.robot_id, None);
        assert_eq!(item.lease_expires_at, None);
        assert_eq!(item.start_date, None);
        assert_eq!(item.end_date, None);
        assert_eq!(item.updated_at, LATER);
    }

    #[test]
    fn an_expired_lease_abandons_the_item_once_retries_are_spent() {
        let mut item = claimed_item(60);
        item.retry_count = 3;
        item.expire_lease(3, LATER).unwrap();
        assert_eq!(item.status, QueueItemStatus::Abandoned);
        assert_eq!(item.retry_count, 3);
        assert_eq!(item.end_date, Some(LATER));
        assert_eq!(item.robot_id, None);
        assert_eq!(item.lease_expires_at, None);
    }

    #[test]
    fn with_no_retries_the_first_expiry_abandons_the_item() {
        let mut item = claimed_item(60);
        item.expire_lease(0, LATER).unwrap();
        assert_eq!(item.status, QueueItemStatus::Abandoned);
        assert_eq!(item.retry_count, 0);
    }

    #[test]
    fn an_item_survives_exactly_max_retries_expiries() {
        let mut item = new_item();
        let mut now = NOW;
        for expected_retry in 1..=2 {
            item.claim(robot("robot-1"), now, 10).unwrap();
            now += time::Duration::seconds(10);
            item.expire_lease(2, now).unwrap();
            assert_eq!(item.status, QueueItemStatus::New);
            assert_eq!(item.retry_count, expected_retry);
        }
        item.claim(robot("robot-1"), now, 10).unwrap();
        now += time::Duration::seconds(10);
        item.expire_lease(2, now).unwrap();
        assert_eq!(item.status, QueueItemStatus::Abandoned);
        assert_eq!(item.retry_count, 2);
        assert_eq!(item.end_date, Some(now));
    }

    #[test]
    fn only_an_in_progress_item_under_a_lease_can_expire() {
        for status in [
            QueueItemStatus::New,
            QueueItemStatus::Done,
            QueueItemStatus::Failed,
            QueueItemStatus::Abandoned,
        ] {
            let mut item = item_with_status(status);
            let before = item.clone();
            assert!(item.expire_lease(3, LATER).is_err(), "{status}");
            assert_eq!(item, before);
        }
        // In progress by a status change, with no claim: there is no lease to expire.
        let mut unleased = item_with_status(QueueItemStatus::InProgress);
        assert!(unleased.expire_lease(3, LATER).is_err());
    }

    #[test]
    fn a_lease_that_has_not_lapsed_cannot_be_expired() {
        let mut item = claimed_item(60);
        let before = item.clone();
        let err = item
            .expire_lease(3, NOW + time::Duration::seconds(59))
            .unwrap_err();
        assert_eq!(err.state, "IN_PROGRESS");
        assert_eq!(item, before, "the robot keeps its claim");
    }

    #[test]
    fn a_lease_expires_at_its_exact_end() {
        let mut item = claimed_item(60);
        item.expire_lease(3, NOW + time::Duration::seconds(60))
            .unwrap();
        assert_eq!(item.status, QueueItemStatus::New);
    }

    // ---- QueueSettings ----

    #[test]
    fn default_settings_are_three_retries_and_a_five_minute_lease() {
        let s = QueueSettings::default();
        assert_eq!(s.max_retries, 3);
        assert_eq!(s.lease_seconds, 300);
        assert!(!s.unique_reference);
        assert_eq!(QueueSettings::new(3, 300, false).unwrap(), s);
    }

    #[test]
    fn max_retries_from_0_to_100_is_accepted() {
        assert_eq!(QueueSettings::new(0, 60, false).unwrap().max_retries, 0);
        assert_eq!(QueueSettings::new(100, 60, true).unwrap().max_retries, 100);
    }

    #[test]
    fn max_retries_above_100_is_refused() {
        let err = QueueSettings::new(101, 60, false).unwrap_err();
        assert_eq!(fields(&err), ["max_retries"]);
    }

    #[test]
    fn lease_seconds_from_1_to_a_day_is_accepted() {
        assert_eq!(QueueSettings::new(3, 1, false).unwrap().lease_seconds, 1);
        assert_eq!(
            QueueSettings::new(3, 86_400, false).unwrap().lease_seconds,
            86_400
        );
    }

    #[test]
    fn lease_seconds_of_zero_or_over_a_day_is_refused() {
        assert_eq!(
            fields(&QueueSettings::new(3, 0, false).unwrap_err()),
            ["lease_seconds"]
        );
        assert_eq!(
            fields(&QueueSettings::new(3, 86_401, false).unwrap_err()),
            ["lease_seconds"]
        );
    }

    #[test]
    fn both_bad_settings_are_reported_together() {
        let err = QueueSettings::new(1000, 0, false).unwrap_err();
        assert_eq!(fields(&err), ["max_retries", "lease_seconds"]);
    }

    #[test]
    fn settings_keep_unique_reference() {
        assert!(QueueSettings::new(3, 60, true).unwrap().unique_reference);
    }

    // ---- StatusCounts ----

    #[test]
    fn status_counts_start_at_zero() {
        let c = StatusCounts::default();
        assert_eq!(
            (c.new, c.in_progress, c.done, c.failed, c.abandoned),
            (0, 0, 0, 0, 0)
        );
    }

    #[test]
    fn status_counts_add_to_the_matching_status_only() {
        let mut c = StatusCounts::default();
        c.add(QueueItemStatus::New, 5);
        c.add(QueueItemStatus::InProgress, 2);
        c.add(QueueItemStatus::Done, 7);
        c.add(QueueItemStatus::Failed, 1);
        c.add(QueueItemStatus::Abandoned, 4);
        c.add(QueueItemStatus::New, 3);
        assert_eq!(
            c,
            StatusCounts {
                new: 8,
                in_progress: 2,
                done: 7,
                failed: 1,
                abandoned: 4,
            }
        );
    }
}
