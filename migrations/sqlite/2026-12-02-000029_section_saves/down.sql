DROP TRIGGER section_saves_write;
DROP VIEW section_saves;
