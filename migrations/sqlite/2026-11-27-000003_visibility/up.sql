-- Visibility, kept at every save so that SQL aggregation can respect show_if: an answer to a
-- question hidden by a condition stays stored (it comes back if the question shows again) but
-- is not counted; hidden_questions lists what a response was not asked, whether answered or not.
ALTER TABLE answers ADD COLUMN visible BOOLEAN NOT NULL DEFAULT TRUE;

CREATE TABLE hidden_questions (
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    question_id TEXT NOT NULL,
    PRIMARY KEY (response_id, question_id)
);
