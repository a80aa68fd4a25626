-- Rounds. A response to a survey that follows another round (`previous = "..."`) starts from the
-- country's last accepted (else last submitted) response to that round: which response and
-- version it started from.
CREATE TABLE carried_from (
    response_id TEXT PRIMARY KEY REFERENCES responses (id) ON DELETE CASCADE,
    from_response_id TEXT NOT NULL REFERENCES responses (id),
    from_version INTEGER NOT NULL,
    carried_at TIMESTAMP NOT NULL
);
-- Each answer carried into it: the answer as carried (a JSON array of [item, value, num] triples, to
-- tell a changed answer from an unchanged one), the previous round's question it came from, and
-- whether someone of the country confirmed it is still accurate.
CREATE TABLE carried_answers (
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    question_id TEXT NOT NULL,
    from_question_id TEXT NOT NULL,
    items TEXT NOT NULL,
    confirmed_at TIMESTAMP,
    confirmed_by TEXT,
    PRIMARY KEY (response_id, question_id)
);
