-- The national report cycle: states beyond "submitted", immutable versions of each
-- submission, queries from the secretariat with their threads, reports entered for a country,
-- and an append-only audit log kept as a hash chain.

-- Which version counts in results (the latest submitted one not recalled; NULL: none), how
-- many versions exist, and the approver's last message when a response was sent back.
ALTER TABLE responses ADD COLUMN counted_version INTEGER;
ALTER TABLE responses ADD COLUMN version_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE responses ADD COLUMN sent_back_message TEXT;
ALTER TABLE responses ADD COLUMN sent_back_by TEXT;
ALTER TABLE responses ADD COLUMN sent_back_at TIMESTAMP;

-- A link an owner opened to enter a report received by email or on paper: who, and how.
-- A table of its own: few links are such, and only a submission reads it.
CREATE TABLE entry_links (
    token_id TEXT PRIMARY KEY NOT NULL REFERENCES access_tokens (id),
    entered_by TEXT NOT NULL,
    channel TEXT NOT NULL
);

-- Every submission, never changed afterwards except for the dates of what happened to it.
-- `content` is the canonical JSON whose SHA-256 is `digest` (see the README).
CREATE TABLE response_versions (
    response_id TEXT NOT NULL REFERENCES responses (id),
    number INTEGER NOT NULL,
    survey_version TEXT NOT NULL,
    content TEXT NOT NULL,
    digest TEXT NOT NULL,
    submitted_at TIMESTAMP NOT NULL,
    submitted_by TEXT NOT NULL,
    signed_off_by TEXT,
    signed_off_name TEXT,
    signed_off_title TEXT,
    channel TEXT NOT NULL,
    entered_by TEXT,
    recalled_at TIMESTAMP,
    returned_at TIMESTAMP,
    accepted_at TIMESTAMP,
    PRIMARY KEY (response_id, number)
);

-- Each version's answers as rows (the visible ones, as counted), for results and diffs.
CREATE TABLE version_answers (
    response_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    question_id TEXT NOT NULL,
    item TEXT NOT NULL,
    value TEXT NOT NULL,
    num DOUBLE PRECISION,
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (response_id, version, question_id, item),
    FOREIGN KEY (response_id, version) REFERENCES response_versions (response_id, number)
);

-- The secretariat's queries on a question of a submitted version, and their threads.
CREATE TABLE queries (
    id TEXT PRIMARY KEY NOT NULL,
    response_id TEXT NOT NULL REFERENCES responses (id),
    question_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    closed_by TEXT,
    closed_at TIMESTAMP
);
CREATE INDEX queries_response ON queries (response_id);

CREATE TABLE query_messages (
    id TEXT PRIMARY KEY NOT NULL,
    query_id TEXT NOT NULL REFERENCES queries (id),
    author_kind TEXT NOT NULL,
    author TEXT NOT NULL,
    author_name TEXT NOT NULL,
    body TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX query_messages_query ON query_messages (query_id);

-- The audit log: one hash chain per survey (chain '' for events of no survey). Each entry
-- holds the SHA-256 of the previous entry of its chain and of its own content; rows are only
-- ever inserted. `audit_heads` holds each chain's last entry; appending updates it first,
-- which serialises writers of a chain on both backends.
CREATE TABLE audit_log (
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at TIMESTAMP NOT NULL,
    country_iso3 TEXT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_log_country ON audit_log (chain, country_iso3);

CREATE TABLE audit_heads (
    chain TEXT PRIMARY KEY NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
