-- The latest assignments, whatever their tenant or pool (`mailpools trace` with no filter, the
-- portal's first page): newest first over the day partitions, without scanning them.
CREATE INDEX assignments_time ON assignments (event_time);
