//! Event rows, shared by every repository that appends events inside its own transaction.

use baton_domain::event::{Event, EventType};
use baton_domain::ids::{EventId, JobId, WorkflowId};
use baton_domain::job::JobStatus;
use baton_domain::robot::RobotId;
use diesel::prelude::*;

use super::rows::{object_to_text, text_to_object};
use crate::error::{DbResult, corrupt};
use crate::schema::events;
use crate::sql_types::{DbTime, DbUuid};

/// An event as inserted: `seq` is left to the database.
#[derive(Insertable)]
#[diesel(table_name = events)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
// `None` is bound as NULL (no column of `events` has a default): a `DEFAULT` keyword would make
// diesel prepare every multi-row INSERT anew on PostgreSQL (see `insert_rows_sized!`).
#[diesel(treat_none_as_default_value = false)]
pub(crate) struct NewEventRow {
    id: DbUuid,
    event_type: String,
    timestamp: DbTime,
    title: String,
    details: Option<String>,
    robot_id: Option<String>,
    job_id: Option<DbUuid>,
    workflow_id: Option<DbUuid>,
    job_status: Option<String>,
    data: String,
}

impl NewEventRow {
    pub(crate) fn from_domain(event: &Event) -> Self {
        Self {
            id: DbUuid(*event.id.as_uuid()),
            event_type: event.event_type.as_str().to_owned(),
            timestamp: DbTime(event.timestamp),
            title: event.title.clone(),
            details: event.details.clone(),
            robot_id: event.robot_id.as_ref().map(|r| r.as_str().to_owned()),
            job_id: event.job_id.map(|j| DbUuid(*j.as_uuid())),
            workflow_id: event.workflow_id.map(|w| DbUuid(*w.as_uuid())),
            job_status: event.job_status.map(|s| s.as_str().to_owned()),
            data: object_to_text(&event.data),
        }
    }

    pub(crate) fn many(events: &[Event]) -> Vec<Self> {
        events.iter().map(Self::from_domain).collect()
    }
}

/// An event as read back.
#[derive(Queryable, Selectable)]
#[diesel(table_name = events)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub(crate) struct EventRow {
    seq: i64,
    id: DbUuid,
    event_type: String,
    timestamp: DbTime,
    title: String,
    details: Option<String>,
    robot_id: Option<String>,
    job_id: Option<DbUuid>,
    workflow_id: Option<DbUuid>,
    job_status: Option<String>,
    data: String,
}

impl EventRow {
    pub(crate) fn into_domain(self) -> DbResult<Event> {
        Ok(Event {
            id: EventId::from_uuid(self.id.0),
            seq: self.seq,
            event_type: self
                .event_type
                .parse::<EventType>()
                .map_err(|e| corrupt("event type", e))?,
            timestamp: self.timestamp.0,
            title: self.title,
            details: self.details,
            robot_id: self
                .robot_id
                .map(RobotId::parse)
                .transpose()
                .map_err(|e| corrupt("event robot id", e))?,
            job_id: self.job_id.map(|u| JobId::from_uuid(u.0)),
            workflow_id: self.workflow_id.map(|u| WorkflowId::from_uuid(u.0)),
            job_status: self
                .job_status
                .map(|s| s.parse::<JobStatus>())
                .transpose()
                .map_err(|e| corrupt("event job status", e))?,
            data: text_to_object(&self.data, "event data")?,
        })
    }
}
