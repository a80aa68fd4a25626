-- The outbox worker claims the due messages in (next_attempt_at, created_at) order: read from
-- this index, a batch reads its rows only, not the whole queue (10,000 invitations made each
-- claim scan and sort them all). It covers what `outbox_due` served.
CREATE INDEX outbox_due_order ON outbox (status, next_attempt_at, created_at);
DROP INDEX outbox_due;
