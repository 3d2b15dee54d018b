-- A queue's items found by reference, exactly or by prefix: without an index the search walks
-- the queue's items newest first until a page matches, which for a rare reference is the whole
-- queue. SQLite compares text in byte order, so a prefix is one range of this index.
CREATE INDEX queue_items_reference ON queue_items (queue_name, reference)
    WHERE reference IS NOT NULL;
