-- The text of each kept listing's practice (the version's answer to the practice question,
-- item ''), kept beside `version_practices` by the same triggers, so that the compendium's
-- Markdown download reads a practice's listing and text in one statement (see the PostgreSQL
-- migration). In a table of their own, not in `version_practices`: a text may hold 6,000
-- characters, and a page of the compendium reads every listing of its questions but only its
-- own few texts; and a table with a rowid, since a row without one is stored whole in the
-- b-tree's inner pages too. The view and the triggers are those of migration 26 with the
-- texts added.
CREATE TABLE version_practice_texts (
    survey_id TEXT NOT NULL,
    practice_id TEXT NOT NULL,
    response_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (survey_id, practice_id, response_id, version)
);
CREATE INDEX version_practice_texts_version ON version_practice_texts (response_id, version);

DROP TRIGGER version_practices_insert;
DROP TRIGGER version_practices_delete;
DROP TRIGGER version_practices_update;
DROP VIEW version_practices_computed;

CREATE VIEW version_practices_computed AS
SELECT p.survey_id AS survey_id, p.practice_id AS practice_id, va.response_id AS response_id,
    va.version AS version,
    EXISTS (SELECT 1 FROM practice_roles pc JOIN version_answers c ON c.question_id = pc.question_id
        WHERE pc.survey_id = p.survey_id AND pc.practice_id = p.practice_id AND pc.role = 'cite'
        AND c.response_id = va.response_id AND c.version = va.version AND c.value = 'yes') AS citable,
    COALESCE((SELECT group_concat(CASE WHEN t.item = '' THEN t.value ELSE t.item END, char(31))
        FROM practice_roles pt JOIN version_answers t ON t.question_id = pt.question_id
        WHERE pt.survey_id = p.survey_id AND pt.practice_id = p.practice_id AND pt.role = 'themes'
        AND t.response_id = va.response_id AND t.version = va.version), '') AS theme_codes,
    va.value AS text
FROM responses r JOIN practice_roles p ON p.survey_id = r.survey_id AND p.role = 'practice'
JOIN version_answers va ON va.response_id = r.id AND va.question_id = p.question_id AND va.item = '';

CREATE TRIGGER version_practices_insert
AFTER INSERT ON version_answers
WHEN EXISTS (SELECT 1 FROM practice_roles p WHERE p.question_id = NEW.question_id)
BEGIN
    DELETE FROM version_practices WHERE response_id = NEW.response_id AND version = NEW.version;
    INSERT INTO version_practices (survey_id, practice_id, response_id, version, citable, theme_codes)
    SELECT survey_id, practice_id, response_id, version, citable, theme_codes
    FROM version_practices_computed v WHERE v.response_id = NEW.response_id AND v.version = NEW.version;
    DELETE FROM version_practice_texts WHERE response_id = NEW.response_id AND version = NEW.version;
    INSERT INTO version_practice_texts (survey_id, practice_id, response_id, version, text)
    SELECT survey_id, practice_id, response_id, version, text
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
    DELETE FROM version_practice_texts WHERE response_id = OLD.response_id AND version = OLD.version;
    INSERT INTO version_practice_texts (survey_id, practice_id, response_id, version, text)
    SELECT survey_id, practice_id, response_id, version, text
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
    DELETE FROM version_practice_texts WHERE response_id = OLD.response_id AND version = OLD.version;
    INSERT INTO version_practice_texts (survey_id, practice_id, response_id, version, text)
    SELECT survey_id, practice_id, response_id, version, text
    FROM version_practices_computed v WHERE v.response_id = OLD.response_id AND v.version = OLD.version;
    DELETE FROM version_practices WHERE response_id = NEW.response_id AND version = NEW.version;
    INSERT INTO version_practices (survey_id, practice_id, response_id, version, citable, theme_codes)
    SELECT survey_id, practice_id, response_id, version, citable, theme_codes
    FROM version_practices_computed v WHERE v.response_id = NEW.response_id AND v.version = NEW.version;
    DELETE FROM version_practice_texts WHERE response_id = NEW.response_id AND version = NEW.version;
    INSERT INTO version_practice_texts (survey_id, practice_id, response_id, version, text)
    SELECT survey_id, practice_id, response_id, version, text
    FROM version_practices_computed v WHERE v.response_id = NEW.response_id AND v.version = NEW.version;
END;

-- The texts of the listings kept so far. The practice question's id is the practice's
-- (`practice_roles`' role 'practice').
INSERT INTO version_practice_texts (survey_id, practice_id, response_id, version, text)
SELECT l.survey_id, l.practice_id, l.response_id, l.version, va.value
FROM version_practices l JOIN version_answers va ON va.response_id = l.response_id
    AND va.version = l.version AND va.question_id = l.practice_id AND va.item = '';
