DROP TABLE orphaned_answers;
DROP TABLE definition_notices;
DROP TABLE definition_changes;
