-- A survey file changed while its round is open: each new version compared with the one
-- loaded before it and accepted at start (its report, and whether answers it leaves without a
-- question or an option were accepted with --accept-orphans). Nothing is deleted by such a
-- change: answers that no longer fit stay stored, hidden.
CREATE TABLE definition_changes (
    id TEXT PRIMARY KEY,
    survey_id TEXT NOT NULL,
    from_version TEXT NOT NULL,
    to_version TEXT NOT NULL,
    changed_at TIMESTAMP NOT NULL,
    accepted_orphans BOOLEAN NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX definition_changes_survey ON definition_changes (survey_id, changed_at);

-- The sections a response should look at again after a change touched its answers, shown on
-- the overview until the section is saved after noted_at or the response is submitted.
CREATE TABLE definition_notices (
    change_id TEXT NOT NULL REFERENCES definition_changes (id),
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    section_id TEXT NOT NULL,
    noted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (change_id, response_id, section_id)
);
CREATE INDEX definition_notices_response ON definition_notices (response_id);

-- Draft answers a change left without their question, option or type, as they were: a copy
-- made at start before the draft is brought in line. An answer to a question still asked (an
-- option removed, a type changed) then leaves `answers`, where the form would show or
-- overwrite it; an answer to a removed question stays there too, hidden (visible = FALSE).
CREATE TABLE orphaned_answers (
    change_id TEXT NOT NULL REFERENCES definition_changes (id),
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    question_id TEXT NOT NULL,
    item TEXT NOT NULL,
    value TEXT NOT NULL,
    num REAL,
    section_id TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (change_id, response_id, question_id, item)
);
