-- Fails, as it should, where a survey has several organisations of one country.
DROP INDEX access_tokens_survey_unit;
CREATE INDEX access_tokens_survey_country ON access_tokens (survey_id, country_iso3);
ALTER TABLE access_tokens DROP COLUMN unit;

DROP INDEX responses_survey_status;
ALTER TABLE responses DROP CONSTRAINT responses_survey_country_unit;
ALTER TABLE responses ADD CONSTRAINT responses_survey_id_country_iso3_key
    UNIQUE (survey_id, country_iso3);
ALTER TABLE responses DROP COLUMN unit;
