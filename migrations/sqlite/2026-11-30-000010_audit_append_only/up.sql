-- The audit log is only ever inserted into: updating or deleting an entry is refused by the
-- database itself, so that changing it takes a deliberate DROP TRIGGER first, never a stray
-- UPDATE. The hash chain still detects a change made after dropping them.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
