CREATE INDEX answers_question ON answers (question_id, item);
DROP INDEX answers_aggregate;
