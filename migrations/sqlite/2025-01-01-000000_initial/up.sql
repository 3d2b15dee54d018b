-- Baton's whole model. Kept in step with migrations/postgres/…_initial: same tables, columns and meaning.
-- Ids are hyphenated TEXT text; times are UTC text of fixed width (YYYY-MM-DDTHH:MM:SS.ffffffZ),
-- so text order is time order; JSON documents are TEXT.

CREATE TABLE queues (
    name TEXT PRIMARY KEY,
    max_retries INTEGER NOT NULL,
    lease_seconds INTEGER NOT NULL,
    unique_reference BOOLEAN NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE queue_items (
    id TEXT PRIMARY KEY,
    queue_name TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    status TEXT NOT NULL,
    data TEXT,
    reference TEXT,
    message TEXT,
    created_by TEXT,
    created_date TEXT NOT NULL,
    start_date TEXT,
    end_date TEXT,
    retry_count INTEGER NOT NULL,
    lease_expires_at TEXT,
    robot_id TEXT,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL
);
-- Claims take the oldest NEW item of a queue; listing pages newest first.
CREATE INDEX queue_items_claim ON queue_items (queue_name, status, created_date, id);
CREATE INDEX queue_items_lease ON queue_items (lease_expires_at) WHERE lease_expires_at IS NOT NULL;

-- One row per reference used in a queue with unique_reference: the primary key makes
-- concurrent inserts of one reference conflict instead of both passing a check.
CREATE TABLE queue_references (
    queue_name TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    reference TEXT NOT NULL,
    item_id TEXT NOT NULL REFERENCES queue_items (id) ON DELETE CASCADE,
    PRIMARY KEY (queue_name, reference)
);

CREATE TABLE workflows (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    workflow_json TEXT NOT NULL,
    version INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX workflows_created ON workflows (created_at, id);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    node_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    agent_type TEXT NOT NULL,
    disabled BOOLEAN NOT NULL,
    sources TEXT NOT NULL,
    UNIQUE (workflow_id, node_id)
);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    job_id TEXT,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX messages_by_agent ON messages (agent_id, created_at);
CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;

-- Jobs outlive their workflow (history), so workflow_id has no foreign key.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    execution_mode TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    origin_kind TEXT NOT NULL,
    origin_ref TEXT,
    robot_id TEXT,
    created_at TEXT NOT NULL,
    claimed_at TEXT,
    started_at TEXT,
    completed_at TEXT,
    lease_expires_at TEXT,
    retry_count INTEGER NOT NULL,
    max_retries INTEGER NOT NULL,
    error_message TEXT,
    error_type TEXT,
    cancel_requested TEXT,
    node_executions TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL
);
-- The claim order: priority, then age, among pending jobs only.
CREATE INDEX jobs_claim ON jobs (priority, created_at, id) WHERE status = 'pending';
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX jobs_created ON jobs (created_at, id);
CREATE INDEX jobs_workflow ON jobs (workflow_id, created_at);
CREATE INDEX jobs_robot ON jobs (robot_id, created_at);

CREATE TABLE triggers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    trigger_type TEXT NOT NULL,
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    process_status TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    is_blocking BOOLEAN NOT NULL,
    priority INTEGER NOT NULL,
    execution_mode TEXT NOT NULL,
    cron_expression TEXT,
    timezone TEXT,
    queue_name TEXT,
    min_batch_size INTEGER,
    process_args TEXT NOT NULL,
    metadata TEXT NOT NULL,
    next_run TEXT,
    last_run TEXT,
    run_count BIGINT NOT NULL,
    failure_count BIGINT NOT NULL,
    current_job_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX triggers_due ON triggers (enabled, next_run);
CREATE INDEX triggers_current_job ON triggers (current_job_id) WHERE current_job_id IS NOT NULL;

CREATE TABLE robots (
    robot_id TEXT PRIMARY KEY,
    hostname TEXT,
    status TEXT NOT NULL,
    cpu_percent REAL NOT NULL,
    memory_mb REAL NOT NULL,
    memory_percent REAL NOT NULL,
    current_job_id TEXT,
    last_heartbeat TEXT,
    capabilities TEXT NOT NULL,
    token_hash TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE flows (
    flow_id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    status TEXT NOT NULL,
    current_job_id TEXT,
    next_run_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX flows_current_job ON flows (current_job_id) WHERE current_job_id IS NOT NULL;

-- Append-only; seq orders the log for every server tailing it.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    title TEXT NOT NULL,
    details TEXT,
    robot_id TEXT,
    job_id TEXT,
    workflow_id TEXT,
    job_status TEXT,
    data TEXT NOT NULL
);
CREATE INDEX events_time ON events (timestamp);
CREATE INDEX events_type_time ON events (event_type, timestamp);

CREATE TABLE users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    roles TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);

CREATE TABLE auth_failures (
    ip TEXT PRIMARY KEY,
    window_start TEXT NOT NULL,
    failures INTEGER NOT NULL
);

CREATE TABLE ip_bans (
    ip TEXT PRIMARY KEY,
    banned_until TEXT NOT NULL
);
