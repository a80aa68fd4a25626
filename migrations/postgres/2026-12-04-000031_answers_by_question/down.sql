DROP INDEX answers_by_question;
CREATE INDEX answers_aggregate ON answers (question_id, visible, response_id, item);
