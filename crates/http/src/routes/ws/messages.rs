//! What each feed sends: the CasareRPA document's message formats, plus a few fields a client
//! needs to act on an update without another request (the documents' fields, and more;
//! docs/websockets.md).

use std::sync::Arc;

use baton_domain::Timestamp;
use baton_domain::event::Event;
use baton_domain::job::JobStatus;
use baton_domain::queue::QueueSummary;
use baton_domain::robot::Robot;
use serde_json::json;

use crate::live::Update;
use crate::time_format::rfc3339;

/// `/ws/live-jobs`: one job's new status, from its event in the log. `None` for events that
/// are not about a job's status.
///
/// `{"job_id", "status", "timestamp"}` as documented, plus `event_type` (`job_requeued` tells a
/// retry from a new job, both `pending`), `workflow_id`, `robot_id` and `seq`, the event's
/// position in the log (higher is later, across servers).
pub fn job_update(event: &Event) -> Option<Update> {
    let (job_id, status) = (event.job_id?, event.job_status?);
    let message = json!({
        "job_id": job_id.to_string(),
        "status": status.as_str(),
        "timestamp": rfc3339(event.timestamp),
        "event_type": event.event_type.as_str(),
        "workflow_id": event.workflow_id.map(|id| id.to_string()),
        "robot_id": event.robot_id.as_ref().map(|id| id.as_str()),
        "seq": event.seq,
    });
    Some(Arc::from(message.to_string()))
}

/// `/ws/robot-status`: a robot as it stands after a heartbeat or a change of status, at
/// `timestamp` (its heartbeat's time, or when the change was seen).
///
/// `{"robot_id", "status", "cpu_percent", "memory_mb", "timestamp"}` as documented, plus
/// `memory_percent`, `current_job_id`, `hostname` and `last_heartbeat`.
pub fn robot_update(robot: &Robot, timestamp: Timestamp) -> Update {
    let message = json!({
        "robot_id": robot.robot_id().as_str(),
        "status": robot.status().as_str(),
        "cpu_percent": robot.load().cpu_percent,
        "memory_mb": robot.load().memory_mb,
        "timestamp": rfc3339(timestamp),
        "memory_percent": robot.load().memory_percent,
        "current_job_id": robot.current_job_id().map(|id| id.to_string()),
        "hostname": robot.hostname(),
        "last_heartbeat": robot.last_heartbeat().map(rfc3339),
    });
    Arc::from(message.to_string())
}

/// `/ws/queue-metrics`: `{"depth", "timestamp"}` as documented, where `depth` is the number of
/// jobs waiting for a robot (pending), plus the jobs robots hold (`jobs`) and each work queue's
/// NEW and IN_PROGRESS items (`queues`, by name).
pub fn queue_metrics(
    jobs_by_status: &[(JobStatus, u64)],
    queues: &[QueueSummary],
    now: Timestamp,
) -> Update {
    let count = |status: JobStatus| {
        jobs_by_status
            .iter()
            .filter(|(s, _)| *s == status)
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    let queues: Vec<_> = queues
        .iter()
        .map(|summary| {
            json!({
                "queue_name": summary.queue.name.as_str(),
                "depth": summary.counts.new,
                "in_progress": summary.counts.in_progress,
            })
        })
        .collect();
    let message = json!({
        "depth": count(JobStatus::Pending),
        "timestamp": rfc3339(now),
        "jobs": {
            "pending": count(JobStatus::Pending),
            "claimed": count(JobStatus::Claimed),
            "running": count(JobStatus::Running),
        },
        "queues": queues,
    });
    Arc::from(message.to_string())
}

#[cfg(test)]
mod tests {
    use baton_domain::event::EventType;
    use baton_domain::ids::{EventId, JobId, WorkflowId};
    use baton_domain::robot::{RobotId, RobotLoad};
    use serde_json::Value;
    use time::macros::datetime;

    use super::*;

    fn parse(update: &Update) -> Value {
        serde_json::from_str(update).unwrap_or(Value::Null)
    }

    #[test]
    fn job_events_become_the_documented_message() {
        let at = datetime!(2025-12-01 10:30 UTC);
        let mut event = Event::new(
            EventId::from_uuid(uuid::Uuid::nil()),
            EventType::JobCompleted,
            "Job completed successfully",
            at,
        );
        event.seq = 42;
        assert!(job_update(&event).is_none(), "no job, no message");
        event.job_id = Some(JobId::from_uuid(uuid::Uuid::nil()));
        event.workflow_id = Some(WorkflowId::from_uuid(uuid::Uuid::nil()));
        event.job_status = Some(JobStatus::Completed);
        let message = job_update(&event).map(|u| parse(&u));
        assert_eq!(
            message,
            Some(json!({
                "job_id": "00000000-0000-0000-0000-000000000000",
                "status": "completed",
                "timestamp": "2025-12-01T10:30:00Z",
                "event_type": "job_completed",
                "workflow_id": "00000000-0000-0000-0000-000000000000",
                "robot_id": null,
                "seq": 42,
            }))
        );
    }

    #[test]
    fn robots_show_the_documented_fields() {
        let at = datetime!(2025-12-01 10:30 UTC);
        let id = RobotId::parse("robot-001").unwrap();
        let mut robot = Robot::register(id, Some("desk".into()), None, at).unwrap();
        let load = RobotLoad::new(45.2, 1024.5, 12.5).unwrap();
        robot.heartbeat(load, at);
        let message = parse(&robot_update(&robot, at));
        assert_eq!(message["robot_id"], "robot-001");
        assert_eq!(message["status"], "idle");
        assert_eq!(message["cpu_percent"], 45.2);
        assert_eq!(message["memory_mb"], 1024.5);
        assert_eq!(message["timestamp"], "2025-12-01T10:30:00Z");
        assert_eq!(message["last_heartbeat"], "2025-12-01T10:30:00Z");
    }

    #[test]
    fn depth_counts_pending_jobs() {
        let at = datetime!(2025-12-01 10:30 UTC);
        let counts = [(JobStatus::Pending, 42), (JobStatus::Running, 3)];
        let message = parse(&queue_metrics(&counts, &[], at));
        assert_eq!(message["depth"], 42);
        assert_eq!(message["timestamp"], "2025-12-01T10:30:00Z");
        assert_eq!(
            message["jobs"],
            json!({"pending": 42, "claimed": 0, "running": 3})
        );
        assert_eq!(message["queues"], json!([]));
    }
}
