-- Every paged listing walks an index in its own order and stops after its page: a listing that
-- sorts what its filter matches costs the whole table on every page (a queue of 37,500 items
-- took 72 ms a page without a status filter, 1.5 ms with one), and a few viewers paging starve
-- the writers. Each index ends with the listing's tie-breaker, so that the order is the index's
-- to the last column and a cursor `(created, id) < (…, …)` is one range of it.

-- A queue's items newest first, whatever their status (with a status, `queue_items_claim`).
-- The one index this adds to the queue's insert path: no existing one starts with the queue.
CREATE INDEX queue_items_listed ON queue_items (queue_name, created_date, id);

-- Jobs newest first by status, by workflow, by robot (unfiltered: `jobs_created`). The
-- workflow's and the robot's indexes gain the id, which the order breaks ties with.
CREATE INDEX jobs_status ON jobs (status, created_at, id);
DROP INDEX jobs_workflow;
CREATE INDEX jobs_workflow ON jobs (workflow_id, created_at, id);
DROP INDEX jobs_robot;
CREATE INDEX jobs_robot ON jobs (robot_id, created_at, id);

-- Triggers and schedules oldest first, all of them or a workflow's; the workflow's index also
-- serves the delete of a workflow's triggers, which read every trigger without it.
CREATE INDEX triggers_created ON triggers (created_at, id);
CREATE INDEX triggers_workflow ON triggers (workflow_id, created_at, id);

-- An agent's messages newest first.
DROP INDEX messages_by_agent;
CREATE INDEX messages_by_agent ON messages (agent_id, created_at, id);

-- The event feed newest first, all events or one type's.
DROP INDEX events_time;
CREATE INDEX events_time ON events (timestamp, seq);
DROP INDEX events_type_time;
CREATE INDEX events_type_time ON events (event_type, timestamp, seq);

-- Flows and API keys oldest first: whole listings, which these spare a sort of every row.
CREATE INDEX flows_created ON flows (created_at, flow_id);
CREATE INDEX api_keys_created ON api_keys (created_at, id);
