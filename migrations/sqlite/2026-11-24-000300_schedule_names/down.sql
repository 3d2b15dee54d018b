ALTER TABLE triggers DROP COLUMN schedule_name;
