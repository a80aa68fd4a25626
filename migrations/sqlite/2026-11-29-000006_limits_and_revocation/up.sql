-- Attempt counters shared by every node on one database: failed sign-ins per account, per
-- address and per known browser, unknown personal links per address. The key is a SHA-256 of
-- the purpose and the subject, so no email address or IP address is stored in clear.
CREATE TABLE attempt_counters (
    key TEXT PRIMARY KEY NOT NULL,
    window_start TIMESTAMP NOT NULL,
    count INTEGER NOT NULL
);
CREATE INDEX attempt_counters_window ON attempt_counters (window_start);

-- Browsers that signed in to an account before: their own budget of failed sign-ins, so an
-- attacker who exhausts an account's budget does not lock its owner out.
CREATE TABLE trusted_devices (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP NOT NULL
);
CREATE INDEX trusted_devices_user ON trusted_devices (user_id);

-- Personal links may expire, and a revocation records who revoked and why.
ALTER TABLE access_tokens ADD COLUMN expires_at TIMESTAMP;
ALTER TABLE access_tokens ADD COLUMN revoked_by TEXT;
