-- The secret URLs of workflows submitted with trigger_type webhook. The token is a credential,
-- so only its SHA-256 is kept, and it is what a call is looked up by.
CREATE TABLE webhooks (
    token_hash TEXT PRIMARY KEY,
    workflow_id UUID NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    priority INTEGER NOT NULL,
    execution_mode TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhooks_workflow ON webhooks (workflow_id);
