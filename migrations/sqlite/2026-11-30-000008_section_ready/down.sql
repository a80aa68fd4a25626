ALTER TABLE contacts DROP COLUMN sections;
ALTER TABLE contacts DROP COLUMN role;
ALTER TABLE section_states DROP COLUMN ready_by;
ALTER TABLE section_states DROP COLUMN ready_at;
