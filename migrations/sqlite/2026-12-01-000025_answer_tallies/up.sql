-- The counts a question's results show, kept up to date by triggers in the same transaction as
-- every change of what counts, so that a question's page reads a few hundred rows instead of
-- counting every answer of the survey (at 100,000 organisations: 0.6-2.4 s a view).
--
-- Per survey, question, country and whether the response was accepted, how many counted
-- responses (their counted version, `responses.counted_version`) have:
-- - each (item, value) of their answers. Escapes and "other" keep their item only (value ''):
--   their value is a free text. Other values longer than 64 characters (the longest code a
--   survey file may declare, see `check_identifier`) are not kept: they are texts, which no
--   count reads;
-- - item '#answered': any answer to the question;
-- - item '#hidden': the question hidden by a condition (live, as `hidden_questions`);
-- and, under question '' and item '#responses', how many responses count.
-- Real items never take these names: codes start with a letter, and the escapes' and
-- "other"'s items are '#other', '#not_known' and '#not_applicable'.
--
-- A count may reach 0 and stay; readers skip it.
CREATE TABLE answer_tallies (
    survey_id TEXT NOT NULL,
    question_id TEXT NOT NULL,
    item TEXT NOT NULL,
    value TEXT NOT NULL,
    country_iso3 TEXT NOT NULL,
    accepted BOOLEAN NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (survey_id, question_id, item, value, country_iso3, accepted)
) WITHOUT ROWID;

INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
SELECT r.survey_id, '', '#responses', '', r.country_iso3, r.status = 'accepted', COUNT(*)
FROM responses r WHERE r.counted_version IS NOT NULL
GROUP BY r.survey_id, r.country_iso3, r.status = 'accepted';

INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
SELECT r.survey_id, va.question_id, va.item,
    CASE WHEN va.item LIKE '#%' THEN '' ELSE va.value END,
    r.country_iso3, r.status = 'accepted', COUNT(*)
FROM version_answers va JOIN responses r ON r.id = va.response_id AND va.version = r.counted_version
WHERE va.item LIKE '#%' OR length(va.value) <= 64
GROUP BY 1, 2, 3, 4, 5, 6;

INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
SELECT r.survey_id, va.question_id, '#answered', '', r.country_iso3, r.status = 'accepted',
    COUNT(DISTINCT va.response_id)
FROM version_answers va JOIN responses r ON r.id = va.response_id AND va.version = r.counted_version
GROUP BY 1, 2, 3, 4, 5, 6;

INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
SELECT r.survey_id, h.question_id, '#hidden', '', r.country_iso3, r.status = 'accepted', COUNT(*)
FROM hidden_questions h JOIN responses r ON r.id = h.response_id
WHERE r.counted_version IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;

-- A response starts or stops counting, or moves to another group: its old counts out, its new
-- ones in. '#responses' first: every writer takes the tallies' rows in the same order.
CREATE TRIGGER answer_tallies_response_update
AFTER UPDATE OF counted_version, status, survey_id, country_iso3 ON responses
WHEN OLD.counted_version IS NOT NEW.counted_version
    OR (OLD.status = 'accepted') IS NOT (NEW.status = 'accepted')
    OR OLD.survey_id IS NOT NEW.survey_id OR OLD.country_iso3 IS NOT NEW.country_iso3
BEGIN
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT OLD.survey_id, '', '#responses', '', OLD.country_iso3, OLD.status = 'accepted', -1
        WHERE OLD.counted_version IS NOT NULL
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT OLD.survey_id, h.question_id, '#hidden', '', OLD.country_iso3, OLD.status = 'accepted', -1
        FROM hidden_questions h WHERE h.response_id = OLD.id AND OLD.counted_version IS NOT NULL
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT OLD.survey_id, va.question_id, '#answered', '', OLD.country_iso3, OLD.status = 'accepted', -1
        FROM version_answers va WHERE va.response_id = OLD.id AND va.version = OLD.counted_version
        GROUP BY va.question_id
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT OLD.survey_id, va.question_id, va.item,
            CASE WHEN va.item LIKE '#%' THEN '' ELSE va.value END,
            OLD.country_iso3, OLD.status = 'accepted', -COUNT(*)
        FROM version_answers va WHERE va.response_id = OLD.id AND va.version = OLD.counted_version
            AND (va.item LIKE '#%' OR length(va.value) <= 64)
        GROUP BY 2, 3, 4
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT NEW.survey_id, '', '#responses', '', NEW.country_iso3, NEW.status = 'accepted', 1
        WHERE NEW.counted_version IS NOT NULL
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT NEW.survey_id, h.question_id, '#hidden', '', NEW.country_iso3, NEW.status = 'accepted', 1
        FROM hidden_questions h WHERE h.response_id = NEW.id AND NEW.counted_version IS NOT NULL
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT NEW.survey_id, va.question_id, '#answered', '', NEW.country_iso3, NEW.status = 'accepted', 1
        FROM version_answers va WHERE va.response_id = NEW.id AND va.version = NEW.counted_version
        GROUP BY va.question_id
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT NEW.survey_id, va.question_id, va.item,
            CASE WHEN va.item LIKE '#%' THEN '' ELSE va.value END,
            NEW.country_iso3, NEW.status = 'accepted', COUNT(*)
        FROM version_answers va WHERE va.response_id = NEW.id AND va.version = NEW.counted_version
            AND (va.item LIKE '#%' OR length(va.value) <= 64)
        GROUP BY 2, 3, 4
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER answer_tallies_response_insert
AFTER INSERT ON responses
WHEN NEW.counted_version IS NOT NULL
BEGIN
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        VALUES (NEW.survey_id, '', '#responses', '', NEW.country_iso3, NEW.status = 'accepted', 1)
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
END;

-- Before the row goes, while its hidden questions and answers are still there to subtract
-- (those deleted with it by a cascade then find no counted response, and change nothing).
CREATE TRIGGER answer_tallies_response_delete
BEFORE DELETE ON responses
WHEN OLD.counted_version IS NOT NULL
BEGIN
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        VALUES (OLD.survey_id, '', '#responses', '', OLD.country_iso3, OLD.status = 'accepted', -1)
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT OLD.survey_id, h.question_id, '#hidden', '', OLD.country_iso3, OLD.status = 'accepted', -1
        FROM hidden_questions h WHERE h.response_id = OLD.id
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT OLD.survey_id, va.question_id, '#answered', '', OLD.country_iso3, OLD.status = 'accepted', -1
        FROM version_answers va WHERE va.response_id = OLD.id AND va.version = OLD.counted_version
        GROUP BY va.question_id
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT OLD.survey_id, va.question_id, va.item,
            CASE WHEN va.item LIKE '#%' THEN '' ELSE va.value END,
            OLD.country_iso3, OLD.status = 'accepted', -COUNT(*)
        FROM version_answers va WHERE va.response_id = OLD.id AND va.version = OLD.counted_version
            AND (va.item LIKE '#%' OR length(va.value) <= 64)
        GROUP BY 2, 3, 4
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
END;

-- An answer of a counted version written, changed or removed (a submission writes its
-- version's answers before the version counts, and the response's trigger adds them; a
-- definition change renames them in place).
-- SQLite runs a row trigger as each row changes, so "the first answer to the question" and
-- "the last one gone" are seen row by row.
CREATE TRIGGER answer_tallies_version_answers_insert
AFTER INSERT ON version_answers
WHEN EXISTS (SELECT 1 FROM responses r WHERE r.id = NEW.response_id AND r.counted_version = NEW.version)
BEGIN
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, NEW.question_id, '#answered', '', r.country_iso3, r.status = 'accepted', 1
        FROM responses r WHERE r.id = NEW.response_id
            AND NOT EXISTS (SELECT 1 FROM version_answers va WHERE va.response_id = NEW.response_id
                AND va.version = NEW.version AND va.question_id = NEW.question_id AND va.item <> NEW.item)
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, NEW.question_id, NEW.item,
            CASE WHEN NEW.item LIKE '#%' THEN '' ELSE NEW.value END,
            r.country_iso3, r.status = 'accepted', 1
        FROM responses r WHERE r.id = NEW.response_id
            AND (NEW.item LIKE '#%' OR length(NEW.value) <= 64)
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER answer_tallies_version_answers_delete
AFTER DELETE ON version_answers
WHEN EXISTS (SELECT 1 FROM responses r WHERE r.id = OLD.response_id AND r.counted_version = OLD.version)
BEGIN
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, OLD.question_id, '#answered', '', r.country_iso3, r.status = 'accepted', -1
        FROM responses r WHERE r.id = OLD.response_id
            AND NOT EXISTS (SELECT 1 FROM version_answers va WHERE va.response_id = OLD.response_id
                AND va.version = OLD.version AND va.question_id = OLD.question_id)
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, OLD.question_id, OLD.item,
            CASE WHEN OLD.item LIKE '#%' THEN '' ELSE OLD.value END,
            r.country_iso3, r.status = 'accepted', -1
        FROM responses r WHERE r.id = OLD.response_id
            AND (OLD.item LIKE '#%' OR length(OLD.value) <= 64)
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
END;

-- A changed row: the old one out, as if deleted (its question is still answered if another
-- row, or the changed row itself, answers it), and the new one in, as if inserted (its
-- question was answered before if another row, or the old row itself, answered it).
CREATE TRIGGER answer_tallies_version_answers_update
AFTER UPDATE ON version_answers
BEGIN
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, OLD.question_id, '#answered', '', r.country_iso3, r.status = 'accepted', -1
        FROM responses r WHERE r.id = OLD.response_id AND r.counted_version = OLD.version
            AND NOT EXISTS (SELECT 1 FROM version_answers va WHERE va.response_id = OLD.response_id
                AND va.version = OLD.version AND va.question_id = OLD.question_id)
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, OLD.question_id, OLD.item,
            CASE WHEN OLD.item LIKE '#%' THEN '' ELSE OLD.value END,
            r.country_iso3, r.status = 'accepted', -1
        FROM responses r WHERE r.id = OLD.response_id AND r.counted_version = OLD.version
            AND (OLD.item LIKE '#%' OR length(OLD.value) <= 64)
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, NEW.question_id, '#answered', '', r.country_iso3, r.status = 'accepted', 1
        FROM responses r WHERE r.id = NEW.response_id AND r.counted_version = NEW.version
            AND NOT (OLD.response_id = NEW.response_id AND OLD.version = NEW.version
                AND OLD.question_id = NEW.question_id)
            AND NOT EXISTS (SELECT 1 FROM version_answers va WHERE va.response_id = NEW.response_id
                AND va.version = NEW.version AND va.question_id = NEW.question_id AND va.item <> NEW.item)
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, NEW.question_id, NEW.item,
            CASE WHEN NEW.item LIKE '#%' THEN '' ELSE NEW.value END,
            r.country_iso3, r.status = 'accepted', 1
        FROM responses r WHERE r.id = NEW.response_id AND r.counted_version = NEW.version
            AND (NEW.item LIKE '#%' OR length(NEW.value) <= 64)
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
END;

-- A counted response's question hidden or shown again by a condition (a returned report being
-- changed), or renamed by a definition change.
CREATE TRIGGER answer_tallies_hidden_insert
AFTER INSERT ON hidden_questions
BEGIN
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, NEW.question_id, '#hidden', '', r.country_iso3, r.status = 'accepted', 1
        FROM responses r WHERE r.id = NEW.response_id AND r.counted_version IS NOT NULL
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER answer_tallies_hidden_delete
AFTER DELETE ON hidden_questions
BEGIN
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, OLD.question_id, '#hidden', '', r.country_iso3, r.status = 'accepted', -1
        FROM responses r WHERE r.id = OLD.response_id AND r.counted_version IS NOT NULL
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER answer_tallies_hidden_update
AFTER UPDATE ON hidden_questions
BEGIN
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, OLD.question_id, '#hidden', '', r.country_iso3, r.status = 'accepted', -1
        FROM responses r WHERE r.id = OLD.response_id AND r.counted_version IS NOT NULL
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
    INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, NEW.question_id, '#hidden', '', r.country_iso3, r.status = 'accepted', 1
        FROM responses r WHERE r.id = NEW.response_id AND r.counted_version IS NOT NULL
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = n + excluded.n;
END;
