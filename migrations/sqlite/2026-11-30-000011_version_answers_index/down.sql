CREATE INDEX responses_lookup ON responses (id, survey_id, status, country_iso3, unit);
DROP INDEX responses_counted;
CREATE INDEX version_answers_question ON version_answers (question_id, value);
DROP INDEX version_answers_aggregate;
