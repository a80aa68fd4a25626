-- The text of each kept listing's practice (the version's answer to the practice question,
-- item ''), kept beside `version_practices` by the same triggers, so that the compendium's
-- Markdown download reads a practice's listing and text in one statement. Before, the texts
-- were read from `version_answers` beside the listings: at 100,000 organisations PostgreSQL
-- visited 15,000 pages of that table (nearly all of it: a version's answers lie together,
-- not a question's) for 84,000 rows, 0.27 s, and a listing whose version changed between the
-- two reads had to be left out. In a table of their own, not in `version_practices`: a text
-- may hold 6,000 characters, and a page of the compendium reads every listing of its
-- questions but only its own few texts.
CREATE TABLE version_practice_texts (
    survey_id TEXT NOT NULL,
    practice_id TEXT NOT NULL,
    response_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (survey_id, practice_id, response_id, version)
);
CREATE INDEX version_practice_texts_version ON version_practice_texts (response_id, version);

CREATE OR REPLACE VIEW version_practices_computed AS
SELECT p.survey_id AS survey_id, p.practice_id AS practice_id, va.response_id AS response_id,
    va.version AS version,
    EXISTS (SELECT 1 FROM practice_roles pc JOIN version_answers c ON c.question_id = pc.question_id
        WHERE pc.survey_id = p.survey_id AND pc.practice_id = p.practice_id AND pc.role = 'cite'
        AND c.response_id = va.response_id AND c.version = va.version AND c.value = 'yes') AS citable,
    COALESCE((SELECT string_agg(CASE WHEN t.item = '' THEN t.value ELSE t.item END, chr(31))
        FROM practice_roles pt JOIN version_answers t ON t.question_id = pt.question_id
        WHERE pt.survey_id = p.survey_id AND pt.practice_id = p.practice_id AND pt.role = 'themes'
        AND t.response_id = va.response_id AND t.version = va.version), '') AS theme_codes,
    va.value AS text
FROM responses r JOIN practice_roles p ON p.survey_id = r.survey_id AND p.role = 'practice'
JOIN version_answers va ON va.response_id = r.id AND va.question_id = p.question_id AND va.item = '';

CREATE OR REPLACE FUNCTION version_practices_refresh(rid TEXT, ver INTEGER) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM version_practices WHERE response_id = rid AND version = ver;
    INSERT INTO version_practices (survey_id, practice_id, response_id, version, citable, theme_codes)
    SELECT survey_id, practice_id, response_id, version, citable, theme_codes
    FROM version_practices_computed v WHERE v.response_id = rid AND v.version = ver;
    DELETE FROM version_practice_texts WHERE response_id = rid AND version = ver;
    INSERT INTO version_practice_texts (survey_id, practice_id, response_id, version, text)
    SELECT survey_id, practice_id, response_id, version, text
    FROM version_practices_computed v WHERE v.response_id = rid AND v.version = ver;
$$;

-- The texts of the listings kept so far. The practice question's id is the practice's
-- (`practice_roles`' role 'practice').
INSERT INTO version_practice_texts (survey_id, practice_id, response_id, version, text)
SELECT l.survey_id, l.practice_id, l.response_id, l.version, va.value
FROM version_practices l JOIN version_answers va ON va.response_id = l.response_id
    AND va.version = l.version AND va.question_id = l.practice_id AND va.item = '';
ANALYZE version_practice_texts;
