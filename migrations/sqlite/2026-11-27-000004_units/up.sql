-- Respondent units below the country: a survey whose respondent_unit is "organisation" gets
-- one response per organisation (ministry, agency, local authority) of a country. `unit` is
-- the organisation's name, and '' where the country itself is the unit.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE responses_new (
    id TEXT PRIMARY KEY NOT NULL,
    survey_id TEXT NOT NULL,
    country_iso3 TEXT NOT NULL REFERENCES countries (iso3),
    status TEXT NOT NULL,
    survey_version TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    submitted_at TIMESTAMP,
    submitted_by TEXT REFERENCES access_tokens (id),
    unit TEXT NOT NULL DEFAULT '',
    UNIQUE (survey_id, country_iso3, unit)
);
INSERT INTO responses_new (id, survey_id, country_iso3, status, survey_version, created_at,
    updated_at, submitted_at, submitted_by, unit)
SELECT id, survey_id, country_iso3, status, survey_version, created_at, updated_at,
    submitted_at, submitted_by, '' FROM responses;
DROP TABLE responses;
ALTER TABLE responses_new RENAME TO responses;
CREATE INDEX responses_survey_status ON responses (survey_id, status);

ALTER TABLE access_tokens ADD COLUMN unit TEXT NOT NULL DEFAULT '';
DROP INDEX access_tokens_survey_country;
CREATE INDEX access_tokens_survey_unit ON access_tokens (survey_id, country_iso3, unit);

COMMIT;
PRAGMA foreign_keys = ON;
