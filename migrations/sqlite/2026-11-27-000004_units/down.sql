-- Fails, as it should, where a survey has several organisations of one country.
PRAGMA foreign_keys = OFF;
BEGIN;

DROP INDEX access_tokens_survey_unit;
CREATE INDEX access_tokens_survey_country ON access_tokens (survey_id, country_iso3);
ALTER TABLE access_tokens DROP COLUMN unit;

CREATE TABLE responses_old (
    id TEXT PRIMARY KEY NOT NULL,
    survey_id TEXT NOT NULL,
    country_iso3 TEXT NOT NULL REFERENCES countries (iso3),
    status TEXT NOT NULL,
    survey_version TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    submitted_at TIMESTAMP,
    submitted_by TEXT REFERENCES access_tokens (id),
    UNIQUE (survey_id, country_iso3)
);
INSERT INTO responses_old (id, survey_id, country_iso3, status, survey_version, created_at,
    updated_at, submitted_at, submitted_by)
SELECT id, survey_id, country_iso3, status, survey_version, created_at, updated_at,
    submitted_at, submitted_by FROM responses;
DROP TABLE responses;
ALTER TABLE responses_old RENAME TO responses;

COMMIT;
PRAGMA foreign_keys = ON;
