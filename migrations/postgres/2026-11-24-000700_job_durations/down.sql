DROP INDEX jobs_ended;
ALTER TABLE jobs DROP COLUMN duration_ms;
