-- Whether someone saved a section of the response: what makes a draft count in the results
-- with drafts included, kept on the response by a trigger on `section_states`. Before, each
-- statement with drafts included asked `EXISTS (SELECT 1 FROM section_states ...)` of every
-- response without a counted version, which PostgreSQL answered by hashing the whole table
-- (200,000 rows at 100,000 organisations: 60-100 ms a statement, two statements a question).
-- The partial index holds the drafts that count, and what the results read of them.
ALTER TABLE responses ADD COLUMN has_saves BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE responses r SET has_saves = TRUE
WHERE EXISTS (SELECT 1 FROM section_states s WHERE s.response_id = r.id);
CREATE INDEX responses_drafts ON responses (survey_id, country_iso3, unit, id)
WHERE counted_version IS NULL AND has_saves = TRUE;

-- A response's first section saved, or its last one removed. Only the first save of a
-- section inserts its row; later saves update it and pay nothing here.
CREATE FUNCTION responses_has_saves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE responses SET has_saves = TRUE WHERE id = NEW.response_id AND NOT has_saves;
    ELSE
        UPDATE responses SET has_saves = FALSE WHERE id = OLD.response_id AND has_saves
            AND NOT EXISTS (SELECT 1 FROM section_states s WHERE s.response_id = OLD.response_id);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER responses_has_saves AFTER INSERT OR DELETE ON section_states
FOR EACH ROW EXECUTE FUNCTION responses_has_saves();
