-- How many times each job was claimed (`Job::attempt`): 0 until its first claim, one more at
-- every claim, including the claims after a robot gave the job back or lost its lease. A robot
-- runs a job from its first node at each claim, so nodes read the attempt to tell a rerun, whose
-- earlier attempt may already have had side effects, from a first run.
ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;

-- Jobs stored before this migration: every lease that ran out was one claim, and a job that
-- holds a claim time now was claimed once more. Releases left no trace, so this is the least
-- the job can have had, and a job requeued by a lost lease still counts as a retry at its next
-- claim.
UPDATE jobs
SET attempt = retry_count + CASE WHEN claimed_at IS NOT NULL THEN 1 ELSE 0 END;
