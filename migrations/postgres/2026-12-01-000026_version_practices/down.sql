DROP TRIGGER version_practices_answers ON version_answers;
DROP FUNCTION version_practices_answers();
DROP FUNCTION version_practices_refresh(TEXT, INTEGER);
DROP VIEW version_practices_computed;
DROP TABLE version_practices;
DROP TABLE practice_roles;
