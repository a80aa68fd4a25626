DROP TRIGGER section_saves_write ON section_saves;
DROP FUNCTION section_saves_write();
DROP VIEW section_saves;
