DROP TRIGGER version_practices_update;
DROP TRIGGER version_practices_delete;
DROP TRIGGER version_practices_insert;
DROP VIEW version_practices_computed;
DROP TABLE version_practices;
DROP TABLE practice_roles;
