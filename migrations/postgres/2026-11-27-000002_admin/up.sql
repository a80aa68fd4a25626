-- Administrators and survey owners. Passwords are argon2id hashes; a new account gets a
-- one-time setup link whose SHA-256 is kept until the password is set.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT,
    setup_token_hash TEXT UNIQUE,
    setup_expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP
);

CREATE TABLE survey_owners (
    survey_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (survey_id, user_id)
);

-- Login sessions: only the SHA-256 of the cookie value is kept.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- Focal-point contacts, per survey. An email address appears once per survey.
CREATE TABLE contacts (
    id TEXT PRIMARY KEY NOT NULL,
    survey_id TEXT NOT NULL,
    country_iso3 TEXT NOT NULL REFERENCES countries (iso3),
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    language TEXT NOT NULL,
    office TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (survey_id, email)
);
CREATE INDEX contacts_survey_country ON contacts (survey_id, country_iso3);

-- Every email is a row here before anything is sent.
-- status: pending -> sending (claimed by one worker) -> sent | failed; transient failures go
-- back to pending with a later next_attempt_at.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    survey_id TEXT NOT NULL,
    country_iso3 TEXT NOT NULL,
    contact_id TEXT REFERENCES contacts (id) ON DELETE SET NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_at TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_survey ON outbox (survey_id, country_iso3);

-- A country's own deadline, where an owner extended it.
CREATE TABLE deadline_extensions (
    survey_id TEXT NOT NULL,
    country_iso3 TEXT NOT NULL REFERENCES countries (iso3),
    closes_at TIMESTAMP NOT NULL,
    set_by TEXT NOT NULL REFERENCES users (id),
    set_at TIMESTAMP NOT NULL,
    PRIMARY KEY (survey_id, country_iso3)
);

-- What owners did to responses (reopened), with who and when.
CREATE TABLE response_events (
    id TEXT PRIMARY KEY NOT NULL,
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    at TIMESTAMP NOT NULL
);

ALTER TABLE access_tokens ADD COLUMN first_used_at TIMESTAMP;
