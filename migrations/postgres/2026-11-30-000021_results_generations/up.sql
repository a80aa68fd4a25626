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

CREATE FUNCTION results_generation_bump(sid TEXT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO results_generations AS g (survey_id, generation) VALUES (sid, 1)
        ON CONFLICT (survey_id) DO UPDATE SET generation = g.generation + 1;
$$;

CREATE FUNCTION results_generation_response() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.counted_version IS NOT NULL THEN
            PERFORM results_generation_bump(NEW.survey_id);
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM results_generation_bump(OLD.survey_id);
        RETURN OLD;
    END IF;
    IF OLD.counted_version IS DISTINCT FROM NEW.counted_version
        OR OLD.status IS DISTINCT FROM NEW.status
        OR OLD.survey_id IS DISTINCT FROM NEW.survey_id
        OR OLD.country_iso3 IS DISTINCT FROM NEW.country_iso3
        OR OLD.unit IS DISTINCT FROM NEW.unit THEN
        PERFORM results_generation_bump(NEW.survey_id);
        IF OLD.survey_id IS DISTINCT FROM NEW.survey_id THEN
            PERFORM results_generation_bump(OLD.survey_id);
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER results_generation_response
AFTER INSERT OR DELETE OR UPDATE OF counted_version, status, survey_id, country_iso3, unit ON responses
FOR EACH ROW EXECUTE FUNCTION results_generation_response();

-- A counted version's answers changing in place (a definition change renaming them); a new
-- version's answers are written before it counts, and bump nothing. "Asked" counts read the
-- live hidden questions of the counted responses.
CREATE FUNCTION results_generation_answers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_response TEXT;
    sid TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_response := OLD.response_id;
    ELSE
        row_response := NEW.response_id;
    END IF;
    IF TG_TABLE_NAME = 'version_answers' AND TG_OP <> 'UPDATE' THEN
        SELECT r.survey_id INTO sid FROM responses r WHERE r.id = row_response
            AND r.counted_version = (CASE WHEN TG_OP = 'DELETE' THEN OLD.version ELSE NEW.version END);
    ELSIF TG_TABLE_NAME = 'version_answers' THEN
        SELECT r.survey_id INTO sid FROM responses r WHERE r.id = row_response;
    ELSE
        SELECT r.survey_id INTO sid FROM responses r WHERE r.id = row_response
            AND r.counted_version IS NOT NULL;
    END IF;
    IF sid IS NOT NULL THEN
        PERFORM results_generation_bump(sid);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER results_generation_version_answers
AFTER INSERT OR UPDATE OR DELETE ON version_answers
FOR EACH ROW EXECUTE FUNCTION results_generation_answers();

CREATE TRIGGER results_generation_hidden
AFTER INSERT OR DELETE ON hidden_questions
FOR EACH ROW EXECUTE FUNCTION results_generation_answers();
