-- Country reference data, refreshed from data/countries.csv at every start (codes only:
-- names in every language come from the shipped list).
CREATE TABLE countries (
    iso3 TEXT PRIMARY KEY NOT NULL,
    iso2 TEXT NOT NULL,
    m49 TEXT NOT NULL,
    name_en TEXT NOT NULL,
    name_fr TEXT NOT NULL,
    name_es TEXT NOT NULL,
    region_code TEXT NOT NULL,
    subregion_code TEXT NOT NULL,
    intermediate_code TEXT NOT NULL,
    development TEXT NOT NULL,
    ldc BOOLEAN NOT NULL,
    ldc_2008 BOOLEAN NOT NULL,
    lldc BOOLEAN NOT NULL,
    sids BOOLEAN NOT NULL,
    income_fy09 TEXT NOT NULL,
    income_fy23 TEXT NOT NULL
);

-- Every version of every survey file ever loaded, so old answers can be read against the
-- definition they were given for.
CREATE TABLE survey_versions (
    survey_id TEXT NOT NULL,
    version TEXT NOT NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    loaded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (survey_id, version)
);

-- Personal links. Only the SHA-256 of the token is kept.
CREATE TABLE access_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    survey_id TEXT NOT NULL,
    country_iso3 TEXT NOT NULL REFERENCES countries (iso3),
    token_hash TEXT NOT NULL UNIQUE,
    holder_name TEXT,
    holder_email TEXT,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX access_tokens_survey_country ON access_tokens (survey_id, country_iso3);

-- One response per survey and country.
CREATE TABLE responses (
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

-- Optimistic concurrency per section: a save names the version it was based on.
CREATE TABLE section_states (
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    section_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL REFERENCES access_tokens (id),
    PRIMARY KEY (response_id, section_id)
);

-- One row per scalar answer, per selected option, per matrix row, per "other" text.
CREATE TABLE answers (
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    question_id TEXT NOT NULL,
    item TEXT NOT NULL,
    value TEXT NOT NULL,
    num DOUBLE PRECISION,
    section_id TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL REFERENCES access_tokens (id),
    PRIMARY KEY (response_id, question_id, item)
);
CREATE INDEX answers_question ON answers (question_id, item);

-- Who saved what, when.
CREATE TABLE save_log (
    id TEXT PRIMARY KEY NOT NULL,
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    section_id TEXT NOT NULL,
    token_id TEXT NOT NULL REFERENCES access_tokens (id),
    version INTEGER NOT NULL,
    changed_questions INTEGER NOT NULL,
    saved_at TIMESTAMP NOT NULL
);
CREATE INDEX save_log_response ON save_log (response_id);
