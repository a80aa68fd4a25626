CREATE INDEX version_answers_question ON version_answers (question_id, value);
DROP INDEX version_answers_aggregate;
