-- Files attached to file questions, kept in the database itself: one backup holds everything,
-- and a file is written in the same transaction as the save that attaches it. A response's
-- answer items name a file by its id (see src/survey/answer.rs); a file stays while the draft
-- or any version refers to it.
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    question_id TEXT NOT NULL,
    name TEXT NOT NULL,
    declared_type TEXT NOT NULL,
    detected_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    content BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL REFERENCES access_tokens (id)
);
CREATE INDEX files_response ON files (response_id, question_id);
