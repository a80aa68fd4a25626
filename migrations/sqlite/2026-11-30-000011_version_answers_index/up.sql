-- Results read each counted version's answers by question, then the response they belong to
-- (as `answers_aggregate` does for live answers): a covering index, with the value in it.
CREATE INDEX version_answers_aggregate ON version_answers (question_id, response_id, version, item, value);
-- Results find the responses that count by `counted_version`: the covering index they scan
-- holds it.
CREATE INDEX responses_counted ON responses (id, survey_id, counted_version, status, country_iso3, unit);
DROP INDEX responses_lookup;
