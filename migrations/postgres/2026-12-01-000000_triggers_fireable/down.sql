DROP INDEX triggers_fireable;
CREATE INDEX triggers_due ON triggers (enabled, next_run);
