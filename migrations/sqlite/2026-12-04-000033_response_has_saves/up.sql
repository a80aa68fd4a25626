-- Whether someone saved a section of the response: what makes a draft count in the results
-- with drafts included, kept on the response by triggers on `section_states` (see the
-- PostgreSQL migration). The partial index holds the drafts that count, and what the results
-- read of them; a statement uses it when its WHERE repeats the index's own.
ALTER TABLE responses ADD COLUMN has_saves BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE responses SET has_saves = TRUE
WHERE EXISTS (SELECT 1 FROM section_states s WHERE s.response_id = responses.id);
CREATE INDEX responses_drafts ON responses (survey_id, country_iso3, unit, id)
WHERE counted_version IS NULL AND has_saves = TRUE;

-- A response's first section saved, or its last one removed. Only the first save of a
-- section inserts its row; later saves update it and pay nothing here.
CREATE TRIGGER responses_has_saves_insert AFTER INSERT ON section_states
BEGIN
    UPDATE responses SET has_saves = TRUE WHERE id = NEW.response_id AND has_saves = FALSE;
END;
CREATE TRIGGER responses_has_saves_delete AFTER DELETE ON section_states
BEGIN
    UPDATE responses SET has_saves = FALSE WHERE id = OLD.response_id AND has_saves = TRUE
        AND NOT EXISTS (SELECT 1 FROM section_states s WHERE s.response_id = OLD.response_id);
END;
