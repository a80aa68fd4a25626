CREATE TABLE save_log (
    id TEXT PRIMARY KEY NOT NULL,
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    section_id TEXT NOT NULL,
    token_id TEXT NOT NULL REFERENCES access_tokens (id),
    version INTEGER NOT NULL,
    changed_questions INTEGER NOT NULL,
    saved_at TIMESTAMP NOT NULL
);
CREATE INDEX save_log_response ON save_log (response_id);
DROP TABLE audit_pending;
