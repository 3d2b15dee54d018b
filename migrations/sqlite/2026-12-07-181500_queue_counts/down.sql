DROP TRIGGER queues_counts_deleted;
DROP TRIGGER queue_items_count_deleted;
DROP TRIGGER queue_items_count_updated;
DROP TRIGGER queue_items_count_inserted;
DROP TABLE queue_counts;
