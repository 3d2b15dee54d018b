DROP INDEX queue_items_reference;
