-- The audit log is only ever inserted into: updating, deleting or truncating entries is
-- refused by the database itself, so that changing it takes a deliberate DROP TRIGGER (or
-- ALTER TABLE ... DISABLE TRIGGER) first, never a stray UPDATE. The hash chain still detects a
-- change made after dropping them.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
