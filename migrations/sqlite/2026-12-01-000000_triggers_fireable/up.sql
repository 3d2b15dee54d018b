-- The triggers that may fire, in the order the engine takes them: the longest overdue first.
-- The predicate is `FIREABLE` in crates/storage/src/repos/triggers.rs, character for character:
-- a query may use a partial index only when its own WHERE clause implies the index's, and both
-- planners prove that by comparing the expressions. `triggers_due (enabled, next_run)` left
-- every due trigger to be read and sorted by `(next_run, id)`: with 10,000 schedules due each
-- second, every batch of 1,000 read and sorted all that were left.
DROP INDEX triggers_due;
CREATE INDEX triggers_fireable ON triggers (next_run, id)
WHERE enabled AND ((trigger_type = 'SINGLE' AND process_status = 'IDLE') OR (trigger_type = 'SCHEDULED' AND process_status NOT IN ('PAUSED', 'PAUSING', 'KILLING') AND (NOT is_blocking OR process_status <> 'RUNNING')) OR (trigger_type = 'QUEUE' AND process_status = 'IDLE'));
