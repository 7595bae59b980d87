-- The transaction that wrote each notification. WatchNotifications streams in (transaction, sequence)
-- order and only rows whose transaction is older than every transaction still running: such rows are all
-- committed and no row can appear before them later, so a stream never skips one, however many consumers
-- commit concurrently.
ALTER TABLE notifications ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX notifications_watch ON notifications (recipient_agency_id, tx, sequence);
