DROP TRIGGER responses_has_saves_insert;
DROP TRIGGER responses_has_saves_delete;
DROP INDEX responses_drafts;
ALTER TABLE responses DROP COLUMN has_saves;
