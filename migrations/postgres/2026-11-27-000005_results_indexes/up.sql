-- Aggregation reads answers by question, and each answer's response. PostgreSQL limits an
-- index entry to about 2.7 kB, and a long text answer can be longer: the value stays out.
CREATE INDEX answers_aggregate ON answers (question_id, visible, response_id, item);
DROP INDEX answers_question;
