ALTER TABLE access_tokens DROP COLUMN revoked_by;
ALTER TABLE access_tokens DROP COLUMN expires_at;
DROP TABLE trusted_devices;
DROP TABLE attempt_counters;
