//! The shared schemas of `components.schemas`.

use serde_json::{Value, json};

/// Every named schema.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Error",
            json!({
                "type": "object",
                "description": "The one error shape of the API (docs/errors.md).",
                "required": ["error", "detail"],
                "properties": {
                    "error": {"type": "string", "description": "The status' reason phrase"},
                    "detail": {"type": "string", "description": "What was wrong and how to fix it"},
                    "errors": {"type": "array", "description": "Per-field problems (400 only)", "items": {"$ref": "#/components/schemas/FieldError"}},
                    "retry_after": {"type": "integer", "description": "Seconds to wait (429 only)"}
                }
            }),
        ),
        (
            "FieldError",
            json!({"type": "object", "required": ["field", "message"], "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}),
        ),
        (
            "Tokens",
            json!({"type": "object", "required": ["access_token", "refresh_token", "token_type", "expires_in"], "properties": {
                "access_token": {"type": "string"}, "refresh_token": {"type": "string"},
                "token_type": {"type": "string", "enum": ["bearer"]}, "expires_in": {"type": "integer"}}}),
        ),
        (
            "BrowserSession",
            json!({"type": "object", "required": ["username", "roles", "csrf_token", "expires_at"], "properties": {
                "username": {"type": "string"},
                "roles": {"type": "array", "items": {"type": "string", "enum": ["viewer", "operator", "developer", "admin"]}},
                "csrf_token": {"type": "string", "description": "Sent in X-CSRF-Token with every write the console makes"},
                "expires_at": {"type": ["string", "null"], "format": "date-time"}}}),
        ),
        (
            "Job",
            json!({"type": "object", "required": ["job_id", "workflow_id", "status", "priority", "execution_mode", "created_at"], "properties": {
                "job_id": {"type": "string", "format": "uuid"}, "workflow_id": {"type": "string", "format": "uuid"},
                "workflow_name": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "claimed", "running", "completed", "failed", "cancelled"]},
                "priority": {"type": "integer", "minimum": 0, "maximum": 20},
                "execution_mode": {"type": "string", "enum": ["lan", "internet"]},
                "input": {"type": "object"},
                "robot_id": {"type": ["string", "null"]},
                "created_at": {"type": "string", "format": "date-time"},
                "claimed_at": {"type": ["string", "null"], "format": "date-time"},
                "started_at": {"type": ["string", "null"], "format": "date-time"},
                "completed_at": {"type": ["string", "null"], "format": "date-time"},
                "lease_expires_at": {"type": ["string", "null"], "format": "date-time"},
                "retry_count": {"type": "integer"}, "max_retries": {"type": "integer"},
                "attempt": {"type": "integer", "minimum": 0, "description": "How many times the job was claimed: 0 before its first claim, one more at each claim after a release or a lost lease (docs/robot-protocol.md, \"Runs are at least once\")"},
                "error_type": {"type": ["string", "null"]}, "error_message": {"type": ["string", "null"]},
                "cancel_requested": {"type": ["string", "null"], "enum": [null, "soft", "hard"]},
                "node_executions": {"type": "array", "items": {"type": "object"}},
                "duration_ms": {"type": ["integer", "null"]}}, "additionalProperties": true}),
        ),
        (
            "ClaimedJob",
            json!({"type": "object", "description": "A job leased to the robot (docs/robot-protocol.md)", "required": ["job_id", "workflow_id", "workflow_json", "lease_expires_at", "attempt"], "properties": {
                "job_id": {"type": "string", "format": "uuid"},
                "workflow_id": {"type": "string", "format": "uuid"},
                "workflow_name": {"type": "string"},
                "workflow_json": {"type": "object"},
                "input": {"type": "object"},
                "priority": {"type": "integer", "minimum": 0, "maximum": 20},
                "execution_mode": {"type": "string", "enum": ["lan", "internet"]},
                "lease_expires_at": {"type": "string", "format": "date-time"},
                "retry_count": {"type": "integer"},
                "attempt": {"type": "integer", "minimum": 1, "description": "1 at the job's first claim, one more at each claim after a release or a lost lease: above 1, nodes of an earlier attempt may already have run (docs/robot-protocol.md, \"Runs are at least once\")"}}}),
        ),
        (
            "Lease",
            json!({"type": "object", "required": ["job_id", "status", "cancel", "lease_expires_at"], "properties": {
                "job_id": {"type": "string", "format": "uuid"},
                "status": {"type": "string"},
                "cancel": {"type": ["string", "null"], "enum": [null, "soft", "hard"]},
                "lease_expires_at": {"type": "string", "format": "date-time"}}}),
        ),
        (
            "QueueItem",
            json!({"type": "object", "description": "docs/queues.md", "required": ["id", "queue_name", "status"], "properties": {
                "id": {"type": "string", "format": "uuid"},
                "queue_name": {"type": "string", "maxLength": 100},
                "status": {"type": "string", "enum": ["NEW", "IN_PROGRESS", "DONE", "FAILED", "ABANDONED"]},
                "data": {"type": ["string", "null"], "maxLength": 2000},
                "reference": {"type": ["string", "null"], "maxLength": 100},
                "message": {"type": ["string", "null"], "maxLength": 1000},
                "created_by": {"type": ["string", "null"], "maxLength": 100},
                "created_date": {"type": "string", "format": "date-time"},
                "start_date": {"type": ["string", "null"], "format": "date-time"},
                "end_date": {"type": ["string", "null"], "format": "date-time"},
                "retry_count": {"type": "integer"},
                "lease_expires_at": {"type": ["string", "null"], "format": "date-time"},
                "robot_id": {"type": ["string", "null"]},
                "updated_at": {"type": "string", "format": "date-time"}}}),
        ),
        (
            "Trigger",
            json!({"type": "object", "description": "docs/triggers.md", "required": ["id", "trigger_name", "type", "workflow_id"], "properties": {
                "id": {"type": "string", "format": "uuid"},
                "trigger_name": {"type": "string"},
                "type": {"type": "string", "enum": ["SINGLE", "SCHEDULED", "QUEUE"]},
                "workflow_id": {"type": "string", "format": "uuid"},
                "cron_expression": {"type": ["string", "null"]},
                "timezone": {"type": ["string", "null"]},
                "queue_name": {"type": ["string", "null"]},
                "min_batch_size": {"type": ["integer", "null"]},
                "process_status": {"type": "string"},
                "enabled": {"type": "boolean"},
                "priority": {"type": "integer"},
                "is_blocking": {"type": "boolean"},
                "execution_mode": {"type": "string"},
                "process_args": {"type": "object"},
                "next_run": {"type": ["string", "null"], "format": "date-time"},
                "last_run": {"type": ["string", "null"], "format": "date-time"},
                "run_count": {"type": "integer"},
                "failure_count": {"type": "integer"},
                "current_job_id": {"type": ["string", "null"], "format": "uuid"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"}}}),
        ),
    ]
}
