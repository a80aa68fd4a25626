-- A generation number per survey, bumped in the same transaction as any change of what the
-- results count (a counted version or status of a response, a response added with or removed
-- from the counted ones, the answers or hidden questions of a counted version), by triggers so
-- that no writer can forget it. Results caches keep an aggregate only while its survey's
-- generation is the one they computed it at: every node sharing the database sees a change
-- at once. Drafts do not bump it (results with drafts included are never cached).
CREATE TABLE results_generations (
    survey_id TEXT PRIMARY KEY NOT NULL,
    generation BIGINT NOT NULL
);

CREATE TRIGGER results_generation_response_update
AFTER UPDATE OF counted_version, status, survey_id, country_iso3, unit ON responses
WHEN OLD.counted_version IS NOT NEW.counted_version OR OLD.status IS NOT NEW.status
    OR OLD.survey_id IS NOT NEW.survey_id OR OLD.country_iso3 IS NOT NEW.country_iso3
    OR OLD.unit IS NOT NEW.unit
BEGIN
    INSERT INTO results_generations (survey_id, generation) VALUES (NEW.survey_id, 1)
        ON CONFLICT (survey_id) DO UPDATE SET generation = generation + 1;
    INSERT INTO results_generations (survey_id, generation) VALUES (OLD.survey_id, 1)
        ON CONFLICT (survey_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER results_generation_response_insert
AFTER INSERT ON responses
WHEN NEW.counted_version IS NOT NULL
BEGIN
    INSERT INTO results_generations (survey_id, generation) VALUES (NEW.survey_id, 1)
        ON CONFLICT (survey_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER results_generation_response_delete
AFTER DELETE ON responses
BEGIN
    INSERT INTO results_generations (survey_id, generation) VALUES (OLD.survey_id, 1)
        ON CONFLICT (survey_id) DO UPDATE SET generation = generation + 1;
END;

-- A counted version's answers changing in place (a definition change renaming them); a new
-- version's answers are written before it counts, and bump nothing.
CREATE TRIGGER results_generation_version_answers_insert
AFTER INSERT ON version_answers
WHEN EXISTS (SELECT 1 FROM responses r WHERE r.id = NEW.response_id AND r.counted_version = NEW.version)
BEGIN
    INSERT INTO results_generations (survey_id, generation)
        SELECT survey_id, 1 FROM responses WHERE id = NEW.response_id
        ON CONFLICT (survey_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER results_generation_version_answers_update
AFTER UPDATE ON version_answers
BEGIN
    INSERT INTO results_generations (survey_id, generation)
        SELECT survey_id, 1 FROM responses WHERE id IN (OLD.response_id, NEW.response_id)
        ON CONFLICT (survey_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER results_generation_version_answers_delete
AFTER DELETE ON version_answers
WHEN EXISTS (SELECT 1 FROM responses r WHERE r.id = OLD.response_id AND r.counted_version = OLD.version)
BEGIN
    INSERT INTO results_generations (survey_id, generation)
        SELECT survey_id, 1 FROM responses WHERE id = OLD.response_id
        ON CONFLICT (survey_id) DO UPDATE SET generation = generation + 1;
END;

-- "Asked" counts read the live hidden questions of the counted responses.
CREATE TRIGGER results_generation_hidden_insert
AFTER INSERT ON hidden_questions
WHEN EXISTS (SELECT 1 FROM responses r WHERE r.id = NEW.response_id AND r.counted_version IS NOT NULL)
BEGIN
    INSERT INTO results_generations (survey_id, generation)
        SELECT survey_id, 1 FROM responses WHERE id = NEW.response_id
        ON CONFLICT (survey_id) DO UPDATE SET generation = generation + 1;
END;

CREATE TRIGGER results_generation_hidden_delete
AFTER DELETE ON hidden_questions
WHEN EXISTS (SELECT 1 FROM responses r WHERE r.id = OLD.response_id AND r.counted_version IS NOT NULL)
BEGIN
    INSERT INTO results_generations (survey_id, generation)
        SELECT survey_id, 1 FROM responses WHERE id = OLD.response_id
        ON CONFLICT (survey_id) DO UPDATE SET generation = generation + 1;
END;
