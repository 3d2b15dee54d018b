-- How long each ended job took, in milliseconds: from the robot's start, else its claim, else
-- its creation, to its end (`Job::duration_ms`). Kept as a column so that the metrics aggregate
-- durations (means, percentiles, the slowest workflows) in SQL, one query for both backends,
-- instead of loading every job of a window. Jobs that have not ended have none.
ALTER TABLE jobs ADD COLUMN duration_ms BIGINT;

-- Instants are `YYYY-MM-DDTHH:MM:SS.ffffffZ`: whole seconds from the first 19 characters, the
-- microseconds from characters 21-26; integer division truncates toward zero as the domain does.
UPDATE jobs
SET duration_ms = (
    (CAST(strftime('%s', substr(completed_at, 1, 19)) AS INTEGER)
        - CAST(strftime('%s', substr(COALESCE(started_at, claimed_at, created_at), 1, 19)) AS INTEGER))
        * 1000000
    + CAST(substr(completed_at, 21, 6) AS INTEGER)
    - CAST(substr(COALESCE(started_at, claimed_at, created_at), 21, 6) AS INTEGER)
) / 1000
WHERE completed_at IS NOT NULL;

-- The jobs that ended since a time (today's work of the fleet and of each robot).
CREATE INDEX jobs_ended ON jobs (completed_at) WHERE completed_at IS NOT NULL;
