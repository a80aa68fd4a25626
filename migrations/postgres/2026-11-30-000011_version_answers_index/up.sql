-- Results read each counted version's answers by question, then the response they belong to
-- (as `answers_aggregate` does for live answers). The value stays out: PostgreSQL refuses an
-- index entry over about 2.7 kB, so an index holding it would make a long text answer fail
-- its submission.
CREATE INDEX version_answers_aggregate ON version_answers (question_id, response_id, version, item);
