//! Queues and their items as stored: the rows, how domain values become rows and back, and how
//! many rows one INSERT carries. Below the queue repository and its `insert_each`, which both
//! write these rows.

use baton_domain::Timestamp;
use baton_domain::ids::QueueItemId;
use baton_domain::queue::{
    ItemData, Queue, QueueItem, QueueItemRecord, QueueItemStatus, QueueName, QueueSettings,
};
use baton_domain::robot::RobotId;
use diesel::prelude::*;

use crate::error::{DbResult, corrupt};
use crate::repos::rows::{to_i32, to_u32};
use crate::schema::{queue_items, queue_references, queues};
use crate::sql_types::{DbTime, DbUuid};

/// Rows per INSERT statement: 15 columns × 500 stays far below SQLite's 32,766 and PostgreSQL's
/// 65,535 bind parameters, while a 2,000-item batch still takes only four round trips.
pub(super) const INSERT_CHUNK: usize = 500;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = queues)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(super) struct QueueRow {
    pub(super) name: String,
    pub(super) max_retries: i32,
    pub(super) lease_seconds: i32,
    pub(super) unique_reference: bool,
    pub(super) created_at: DbTime,
}

impl QueueRow {
    pub(super) fn new(name: &str, settings: &QueueSettings, now: Timestamp) -> Self {
        Self {
            name: name.to_owned(),
            max_retries: to_i32(settings.max_retries),
            lease_seconds: to_i32(settings.lease_seconds),
            unique_reference: settings.unique_reference,
            created_at: DbTime(now),
        }
    }

    pub(super) fn into_domain(self) -> DbResult<Queue> {
        let settings = QueueSettings::new(
            to_u32(self.max_retries, "queue max_retries")?,
            to_u32(self.lease_seconds, "queue lease_seconds")?,
            self.unique_reference,
        )
        .map_err(|e| corrupt("queue settings", e))?;
        Ok(Queue {
            name: QueueName::from_stored(self.name).map_err(|e| corrupt("queue name", e))?,
            settings,
            created_at: self.created_at.0,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = queue_items)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(super) struct QueueItemRow {
    pub(super) id: DbUuid,
    pub(super) queue_name: String,
    pub(super) status: String,
    pub(super) data: Option<String>,
    pub(super) reference: Option<String>,
    pub(super) message: Option<String>,
    pub(super) created_by: Option<String>,
    pub(super) created_date: DbTime,
    pub(super) start_date: Option<DbTime>,
    pub(super) end_date: Option<DbTime>,
    pub(super) retry_count: i32,
    pub(super) lease_expires_at: Option<DbTime>,
    pub(super) robot_id: Option<String>,
    pub(super) updated_at: DbTime,
    pub(super) version: i64,
}

impl QueueItemRow {
    pub(super) fn from_domain(item: &QueueItem) -> Self {
        Self {
            id: DbUuid(*item.id().as_uuid()),
            queue_name: item.queue_name().as_str().to_owned(),
            status: item.status().as_str().to_owned(),
            data: item.data().map(|d| d.as_str().to_owned()),
            reference: item.reference().map(str::to_owned),
            message: item.message().map(str::to_owned),
            created_by: item.created_by().map(str::to_owned),
            created_date: DbTime(item.created_date()),
            start_date: item.start_date().map(DbTime),
            end_date: item.end_date().map(DbTime),
            retry_count: to_i32(item.retry_count()),
            lease_expires_at: item.lease_expires_at().map(DbTime),
            robot_id: item.robot_id().map(|r| r.as_str().to_owned()),
            updated_at: DbTime(item.updated_at()),
            version: item.version(),
        }
    }

    pub(super) fn into_domain(self) -> DbResult<QueueItem> {
        Ok(QueueItem::from_record(QueueItemRecord {
            id: QueueItemId::from_uuid(self.id.0),
            queue_name: QueueName::from_stored(self.queue_name)
                .map_err(|e| corrupt("queue item queue name", e))?,
            status: parse_status(&self.status)?,
            data: self
                .data
                .map(ItemData::parse)
                .transpose()
                .map_err(|e| corrupt("queue item data", e))?,
            reference: self.reference,
            message: self.message,
            created_by: self.created_by,
            created_date: self.created_date.0,
            start_date: self.start_date.map(|t| t.0),
            end_date: self.end_date.map(|t| t.0),
            retry_count: to_u32(self.retry_count, "queue item retry_count")?,
            lease_expires_at: self.lease_expires_at.map(|t| t.0),
            robot_id: self
                .robot_id
                .map(RobotId::parse)
                .transpose()
                .map_err(|e| corrupt("queue item robot id", e))?,
            updated_at: self.updated_at.0,
            version: self.version,
        }))
    }
}

/// What `update_item` writes. The id, queue and reference are fixed when an item is added (the
/// reference is also indexed in `queue_references`), so they are not part of a change; `None`
/// clears a column rather than leaving it as it was.
#[derive(AsChangeset)]
#[diesel(table_name = queue_items)]
#[diesel(treat_none_as_null = true)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(super) struct QueueItemChanges {
    status: String,
    data: Option<String>,
    message: Option<String>,
    created_by: Option<String>,
    created_date: DbTime,
    start_date: Option<DbTime>,
    end_date: Option<DbTime>,
    retry_count: i32,
    lease_expires_at: Option<DbTime>,
    robot_id: Option<String>,
    updated_at: DbTime,
}

impl QueueItemChanges {
    pub(super) fn from_domain(item: &QueueItem) -> Self {
        let row = QueueItemRow::from_domain(item);
        Self {
            status: row.status,
            data: row.data,
            message: row.message,
            created_by: row.created_by,
            created_date: row.created_date,
            start_date: row.start_date,
            end_date: row.end_date,
            retry_count: row.retry_count,
            lease_expires_at: row.lease_expires_at,
            robot_id: row.robot_id,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = queue_references)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(super) struct ReferenceRow {
    pub(super) queue_name: String,
    pub(super) reference: String,
    pub(super) item_id: DbUuid,
}

pub(super) fn parse_status(text: &str) -> DbResult<QueueItemStatus> {
    text.parse().map_err(|e| corrupt("queue item status", e))
}
