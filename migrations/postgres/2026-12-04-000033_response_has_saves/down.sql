DROP TRIGGER responses_has_saves ON section_states;
DROP FUNCTION responses_has_saves();
DROP INDEX responses_drafts;
ALTER TABLE responses DROP COLUMN has_saves;
