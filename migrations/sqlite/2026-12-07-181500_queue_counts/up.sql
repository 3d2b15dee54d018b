-- queue_counts (sqlite): every queue's items per status, kept by the database itself, so that
-- the queue listings and the queue-metrics feed read a few rows instead of counting every item.
--
-- SQLite has one writer at a time, so row-level triggers on `queue_items` update the counts in
-- place: no writer can wait on another for a counter row, which is why PostgreSQL appends deltas
-- instead (see its migration of this name). Every write path (group commit, bulk inserts,
-- claims, reports, lease recovery, operator changes, deletes, a queue's cascade) counts without
-- any code of its own. `queue_count_deltas` is not needed here: a count is its row alone.

CREATE TABLE queue_counts (
    queue_name TEXT NOT NULL,
    status TEXT NOT NULL,
    items BIGINT NOT NULL,
    PRIMARY KEY (queue_name, status)
) WITHOUT ROWID;

CREATE TRIGGER queue_items_count_inserted AFTER INSERT ON queue_items
BEGIN
    INSERT INTO queue_counts (queue_name, status, items) VALUES (NEW.queue_name, NEW.status, 1)
    ON CONFLICT (queue_name, status) DO UPDATE SET items = items + 1;
END;

-- Only an update that moves an item to another status or queue changes a count.
CREATE TRIGGER queue_items_count_updated AFTER UPDATE OF queue_name, status ON queue_items
WHEN NEW.queue_name IS NOT OLD.queue_name OR NEW.status IS NOT OLD.status
BEGIN
    UPDATE queue_counts SET items = items - 1
    WHERE queue_name = OLD.queue_name AND status = OLD.status;
    INSERT INTO queue_counts (queue_name, status, items) VALUES (NEW.queue_name, NEW.status, 1)
    ON CONFLICT (queue_name, status) DO UPDATE SET items = items + 1;
END;

-- Also run for the items a queue's deletion cascades to.
CREATE TRIGGER queue_items_count_deleted AFTER DELETE ON queue_items
BEGIN
    UPDATE queue_counts SET items = items - 1
    WHERE queue_name = OLD.queue_name AND status = OLD.status;
END;

-- A deleted queue's counts go with it, whichever of this and the cascade runs first.
CREATE TRIGGER queues_counts_deleted AFTER DELETE ON queues
BEGIN
    DELETE FROM queue_counts WHERE queue_name = OLD.name;
END;

INSERT INTO queue_counts (queue_name, status, items)
SELECT queue_name, status, count(*) FROM queue_items GROUP BY queue_name, status;
