-- A schedule's name (CasareRPA's schedule_name, 1-255 characters) need not be unique, while a
-- trigger's name is: a schedule keeps its own name here and its trigger gets a unique one.
-- NULL shows the trigger's name, as for triggers created through /triggers.
ALTER TABLE triggers ADD COLUMN schedule_name TEXT;
