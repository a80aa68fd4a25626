-- Respondent units below the country: a survey whose respondent_unit is "organisation" gets
-- one response per organisation (ministry, agency, local authority) of a country. `unit` is
-- the organisation's name, and '' where the country itself is the unit.
ALTER TABLE responses ADD COLUMN unit TEXT NOT NULL DEFAULT '';
ALTER TABLE responses DROP CONSTRAINT responses_survey_id_country_iso3_key;
ALTER TABLE responses ADD CONSTRAINT responses_survey_country_unit
    UNIQUE (survey_id, country_iso3, unit);
CREATE INDEX responses_survey_status ON responses (survey_id, status);

ALTER TABLE access_tokens ADD COLUMN unit TEXT NOT NULL DEFAULT '';
DROP INDEX access_tokens_survey_country;
CREATE INDEX access_tokens_survey_unit ON access_tokens (survey_id, country_iso3, unit);
