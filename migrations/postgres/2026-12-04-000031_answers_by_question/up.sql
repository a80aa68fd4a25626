-- The live answers by question without their visibility, as on SQLite (see its migration):
-- a save that shows or hides a question then changes no indexed column of the answers it
-- flips, and PostgreSQL can update them in place (HOT).
DROP INDEX answers_aggregate;
CREATE INDEX answers_by_question ON answers (question_id, response_id, item);
