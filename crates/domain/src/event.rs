//! Events: the append-only activity record that feeds the activity feed and the websockets.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::clock::Timestamp;
use crate::error::ValidationError;
use crate::ids::{EventId, JobId, WorkflowId};
use crate::job::{Job, JobStatus};
use crate::robot::RobotId;

/// The kinds of activity Baton records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    JobCreated,
    JobClaimed,
    JobStarted,
    JobCompleted,
    JobFailed,
    JobCancelled,
    /// A job went back to pending (lease expiry with retries left, or a robot gave it back).
    JobRequeued,
    RobotOnline,
    RobotOffline,
    ScheduleTriggered,
    TriggerFired,
    FlowStarted,
    FlowStopped,
}

impl EventType {
    pub const ALL: [EventType; 13] = [
        Self::JobCreated,
        Self::JobClaimed,
        Self::JobStarted,
        Self::JobCompleted,
        Self::JobFailed,
        Self::JobCancelled,
        Self::JobRequeued,
        Self::RobotOnline,
        Self::RobotOffline,
        Self::ScheduleTriggered,
        Self::TriggerFired,
        Self::FlowStarted,
        Self::FlowStopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::JobCreated => "job_created",
            Self::JobClaimed => "job_claimed",
            Self::JobStarted => "job_started",
            Self::JobCompleted => "job_completed",
            Self::JobFailed => "job_failed",
            Self::JobCancelled => "job_cancelled",
            Self::JobRequeued => "job_requeued",
            Self::RobotOnline => "robot_online",
            Self::RobotOffline => "robot_offline",
            Self::ScheduleTriggered => "schedule_triggered",
            Self::TriggerFired => "trigger_fired",
            Self::FlowStarted => "flow_started",
            Self::FlowStopped => "flow_stopped",
        }
    }

    /// The event a job's arrival in `status` is recorded as.
    pub fn for_job_status(status: JobStatus, requeued: bool) -> Self {
        match status {
            JobStatus::Pending if requeued => Self::JobRequeued,
            JobStatus::Pending => Self::JobCreated,
            JobStatus::Claimed => Self::JobClaimed,
            JobStatus::Running => Self::JobStarted,
            JobStatus::Completed => Self::JobCompleted,
            JobStatus::Failed => Self::JobFailed,
            JobStatus::Cancelled => Self::JobCancelled,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                ValidationError::field("event_type", format!("unknown event type '{s}'"))
            })
    }
}

/// One activity record.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    /// Position in the global log, assigned by storage on append (0 before).
    pub seq: i64,
    pub event_type: EventType,
    pub timestamp: Timestamp,
    pub title: String,
    pub details: Option<String>,
    pub robot_id: Option<RobotId>,
    pub job_id: Option<JobId>,
    pub workflow_id: Option<WorkflowId>,
    /// The job's status after the change, for job events (what `/ws/live-jobs` sends).
    pub job_status: Option<JobStatus>,
    /// Anything else worth keeping, a JSON object.
    pub data: serde_json::Map<String, Value>,
}

impl Event {
    /// Records that `job` reached its current status.
    pub fn job_changed(id: EventId, job: &Job, requeued: bool, now: Timestamp) -> Self {
        let event_type = EventType::for_job_status(job.status(), requeued);
        let title = match event_type {
            EventType::JobCreated => "Job queued".to_owned(),
            EventType::JobClaimed => "Job claimed".to_owned(),
            EventType::JobStarted => "Job started".to_owned(),
            EventType::JobCompleted => "Job completed successfully".to_owned(),
            EventType::JobFailed => "Job failed".to_owned(),
            EventType::JobCancelled => "Job cancelled".to_owned(),
            _ => "Job requeued".to_owned(),
        };
        let details = match (job.status(), job.duration_ms(), &job.error_type()) {
            (JobStatus::Failed, _, Some(error_type)) => {
                Some(format!("{} failed: {error_type}", job.workflow_name()))
            }
            (JobStatus::Completed, Some(ms), _) => Some(format!(
                "{} finished in {}s",
                job.workflow_name(),
                ms / 1000
            )),
            _ => Some(job.workflow_name().to_string()),
        };
        Self {
            id,
            seq: 0,
            event_type,
            timestamp: now,
            title,
            details,
            robot_id: job.robot_id().cloned(),
            job_id: Some(job.id()),
            workflow_id: Some(job.workflow_id()),
            job_status: Some(job.status()),
            data: serde_json::Map::new(),
        }
    }

    /// A non-job event.
    pub fn new(
        id: EventId,
        event_type: EventType,
        title: impl Into<String>,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            seq: 0,
            event_type,
            timestamp: now,
            title: title.into(),
            details: None,
            robot_id: None,
            job_id: None,
            workflow_id: None,
            job_status: None,
            data: serde_json::Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip_through_their_names() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        }
        assert!("job_exploded".parse::<EventType>().is_err());
    }

    #[test]
    fn job_statuses_map_to_event_types() {
        assert_eq!(
            EventType::for_job_status(JobStatus::Pending, false),
            EventType::JobCreated
        );
        assert_eq!(
            EventType::for_job_status(JobStatus::Pending, true),
            EventType::JobRequeued
        );
        assert_eq!(
            EventType::for_job_status(JobStatus::Failed, false),
            EventType::JobFailed
        );
    }
}
