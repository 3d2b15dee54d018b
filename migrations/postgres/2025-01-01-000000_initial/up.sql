-- Baton's whole model. Kept in step with migrations/sqlite/…_initial: same tables, columns and meaning.
-- Ids are uuid, times timestamptz, JSON documents TEXT (one code path for both backends).

CREATE TABLE queues (
    name TEXT PRIMARY KEY,
    max_retries INTEGER NOT NULL,
    lease_seconds INTEGER NOT NULL,
    unique_reference BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE queue_items (
    id UUID PRIMARY KEY,
    queue_name TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
    status TEXT NOT NULL,
    data TEXT,
    reference TEXT,
    message TEXT,
    created_by TEXT,
    created_date TIMESTAMPTZ NOT NULL,
    start_date TIMESTAMPTZ,
    end_date TIMESTAMPTZ,
    retry_count INTEGER NOT NULL,
    lease_expires_at TIMESTAMPTZ,
    robot_id TEXT,
    updated_at TIMESTAMPTZ NOT NULL,
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
    item_id UUID NOT NULL REFERENCES queue_items (id) ON DELETE CASCADE,
    PRIMARY KEY (queue_name, reference)
);

CREATE TABLE workflows (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    workflow_json TEXT NOT NULL,
    version INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX workflows_created ON workflows (created_at, id);

CREATE TABLE agents (
    id UUID PRIMARY KEY,
    workflow_id UUID NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    node_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    agent_type TEXT NOT NULL,
    disabled BOOLEAN NOT NULL,
    sources TEXT NOT NULL,
    UNIQUE (workflow_id, node_id)
);

CREATE TABLE messages (
    id UUID PRIMARY KEY,
    agent_id UUID NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    job_id UUID,
    payload TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ
);
CREATE INDEX messages_by_agent ON messages (agent_id, created_at);
CREATE INDEX messages_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;

-- Jobs outlive their workflow (history), so workflow_id has no foreign key.
CREATE TABLE jobs (
    id UUID PRIMARY KEY,
    workflow_id UUID NOT NULL,
    workflow_name TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    execution_mode TEXT NOT NULL,
    input TEXT NOT NULL,
    output TEXT,
    origin_kind TEXT NOT NULL,
    origin_ref TEXT,
    robot_id TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    claimed_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    lease_expires_at TIMESTAMPTZ,
    retry_count INTEGER NOT NULL,
    max_retries INTEGER NOT NULL,
    error_message TEXT,
    error_type TEXT,
    cancel_requested TEXT,
    node_executions TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
-- The claim order: priority, then age, among pending jobs only.
CREATE INDEX jobs_claim ON jobs (priority, created_at, id) WHERE status = 'pending';
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX jobs_created ON jobs (created_at, id);
CREATE INDEX jobs_workflow ON jobs (workflow_id, created_at);
CREATE INDEX jobs_robot ON jobs (robot_id, created_at);

CREATE TABLE triggers (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    trigger_type TEXT NOT NULL,
    workflow_id UUID NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
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
    next_run TIMESTAMPTZ,
    last_run TIMESTAMPTZ,
    run_count BIGINT NOT NULL,
    failure_count BIGINT NOT NULL,
    current_job_id UUID,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX triggers_due ON triggers (enabled, next_run);
CREATE INDEX triggers_current_job ON triggers (current_job_id) WHERE current_job_id IS NOT NULL;

CREATE TABLE robots (
    robot_id TEXT PRIMARY KEY,
    hostname TEXT,
    status TEXT NOT NULL,
    cpu_percent DOUBLE PRECISION NOT NULL,
    memory_mb DOUBLE PRECISION NOT NULL,
    memory_percent DOUBLE PRECISION NOT NULL,
    current_job_id UUID,
    last_heartbeat TIMESTAMPTZ,
    capabilities TEXT NOT NULL,
    token_hash TEXT,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE flows (
    flow_id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    workflow_id UUID NOT NULL,
    status TEXT NOT NULL,
    current_job_id UUID,
    next_run_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX flows_current_job ON flows (current_job_id) WHERE current_job_id IS NOT NULL;

-- Append-only; seq orders the log for every server tailing it.
CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    id UUID NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    timestamp TIMESTAMPTZ NOT NULL,
    title TEXT NOT NULL,
    details TEXT,
    robot_id TEXT,
    job_id UUID,
    workflow_id UUID,
    job_status TEXT,
    data TEXT NOT NULL
);
CREATE INDEX events_time ON events (timestamp);
CREATE INDEX events_type_time ON events (event_type, timestamp);

CREATE TABLE users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    roles TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE auth_failures (
    ip TEXT PRIMARY KEY,
    window_start TIMESTAMPTZ NOT NULL,
    failures INTEGER NOT NULL
);

CREATE TABLE ip_bans (
    ip TEXT PRIMARY KEY,
    banned_until TIMESTAMPTZ NOT NULL
);
