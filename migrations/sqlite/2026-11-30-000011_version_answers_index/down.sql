CREATE INDEX responses_lookup ON responses (id, survey_id, status, country_iso3, unit);
DROP INDEX responses_counted;
DROP INDEX version_answers_aggregate;
