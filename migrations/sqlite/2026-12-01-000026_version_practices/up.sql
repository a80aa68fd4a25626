-- What the compendium lists of each version's good practices, kept up to date by triggers in
-- the same transaction as every change of a version's answers, so that its first view reads
-- one narrow row per practice instead of every answer to the practice questions and to their
-- themes and citation questions (at 100,000 organisations: 0.8-1.2 s a view).
--
-- `practice_roles`: the survey definitions' good-practice questions and the questions their
-- listings read, written by the server when it starts (`results::practices::keep_roles`):
-- role 'practice' (the question itself), 'themes' (`themes_from`) and 'cite'
-- (`cite_question`).
CREATE TABLE practice_roles (
    survey_id TEXT NOT NULL,
    practice_id TEXT NOT NULL,
    role TEXT NOT NULL,
    question_id TEXT NOT NULL,
    PRIMARY KEY (survey_id, practice_id, role)
) WITHOUT ROWID;
CREATE INDEX practice_roles_question ON practice_roles (question_id, survey_id, practice_id);

-- Per version that answers a good-practice question (an answer with item ''): whether it
-- said "yes" to the citation question, and the codes it picked in the themes question
-- (each row's item, or its value for a single choice), separated by char(31), in no order.
-- Which version counts is read from `responses` with it.
CREATE TABLE version_practices (
    survey_id TEXT NOT NULL,
    practice_id TEXT NOT NULL,
    response_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    citable BOOLEAN NOT NULL,
    theme_codes TEXT NOT NULL,
    PRIMARY KEY (survey_id, practice_id, response_id, version)
) WITHOUT ROWID;
CREATE INDEX version_practices_version ON version_practices (response_id, version);

-- Each version's practices as computed from its answers: what `version_practices` keeps.
CREATE VIEW version_practices_computed AS
SELECT p.survey_id AS survey_id, p.practice_id AS practice_id, va.response_id AS response_id,
    va.version AS version,
    EXISTS (SELECT 1 FROM practice_roles pc JOIN version_answers c ON c.question_id = pc.question_id
        WHERE pc.survey_id = p.survey_id AND pc.practice_id = p.practice_id AND pc.role = 'cite'
        AND c.response_id = va.response_id AND c.version = va.version AND c.value = 'yes') AS citable,
    COALESCE((SELECT group_concat(CASE WHEN t.item = '' THEN t.value ELSE t.item END, char(31))
        FROM practice_roles pt JOIN version_answers t ON t.question_id = pt.question_id
        WHERE pt.survey_id = p.survey_id AND pt.practice_id = p.practice_id AND pt.role = 'themes'
        AND t.response_id = va.response_id AND t.version = va.version), '') AS theme_codes
FROM responses r JOIN practice_roles p ON p.survey_id = r.survey_id AND p.role = 'practice'
JOIN version_answers va ON va.response_id = r.id AND va.question_id = p.question_id AND va.item = '';

-- A version's answer to a question with a role written, changed or removed: that version's
-- listings computed again from its answers. All of them, not only those of the practices the
-- question has a role in: picking those took an `IN (SELECT ...)`, for which SQLite opens a
-- temporary table at each run (a tenth of the server's CPU under whole responses).
CREATE TRIGGER version_practices_insert
AFTER INSERT ON version_answers
WHEN EXISTS (SELECT 1 FROM practice_roles p WHERE p.question_id = NEW.question_id)
BEGIN
    DELETE FROM version_practices WHERE response_id = NEW.response_id AND version = NEW.version;
    INSERT INTO version_practices (survey_id, practice_id, response_id, version, citable, theme_codes)
    SELECT survey_id, practice_id, response_id, version, citable, theme_codes
    FROM version_practices_computed v WHERE v.response_id = NEW.response_id AND v.version = NEW.version;
END;

CREATE TRIGGER version_practices_delete
AFTER DELETE ON version_answers
WHEN EXISTS (SELECT 1 FROM practice_roles p WHERE p.question_id = OLD.question_id)
BEGIN
    DELETE FROM version_practices WHERE response_id = OLD.response_id AND version = OLD.version;
    INSERT INTO version_practices (survey_id, practice_id, response_id, version, citable, theme_codes)
    SELECT survey_id, practice_id, response_id, version, citable, theme_codes
    FROM version_practices_computed v WHERE v.response_id = OLD.response_id AND v.version = OLD.version;
END;

-- A changed row: the old row's version, then the new row's (the same one again when it
-- stayed: computed twice, from the same answers).
CREATE TRIGGER version_practices_update
AFTER UPDATE ON version_answers
WHEN EXISTS (SELECT 1 FROM practice_roles p WHERE p.question_id IN (OLD.question_id, NEW.question_id))
BEGIN
    DELETE FROM version_practices WHERE response_id = OLD.response_id AND version = OLD.version;
    INSERT INTO version_practices (survey_id, practice_id, response_id, version, citable, theme_codes)
    SELECT survey_id, practice_id, response_id, version, citable, theme_codes
    FROM version_practices_computed v WHERE v.response_id = OLD.response_id AND v.version = OLD.version;
    DELETE FROM version_practices WHERE response_id = NEW.response_id AND version = NEW.version;
    INSERT INTO version_practices (survey_id, practice_id, response_id, version, citable, theme_codes)
    SELECT survey_id, practice_id, response_id, version, citable, theme_codes
    FROM version_practices_computed v WHERE v.response_id = NEW.response_id AND v.version = NEW.version;
END;
