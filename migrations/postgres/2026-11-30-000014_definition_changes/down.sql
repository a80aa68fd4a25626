DROP TABLE definition_notices;
DROP TABLE definition_changes;
