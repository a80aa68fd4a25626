-- section_states back as a rowid table, as before 000028.
PRAGMA legacy_alter_table = ON;

CREATE TABLE section_states_rebuilt (
    response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    section_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL REFERENCES access_tokens (id),
    ready_at TIMESTAMP,
    ready_by TEXT,
    PRIMARY KEY (response_id, section_id)
);
INSERT INTO section_states_rebuilt (response_id, section_id, version, updated_at, updated_by, ready_at, ready_by)
SELECT response_id, section_id, version, updated_at, updated_by, ready_at, ready_by FROM section_states;
DROP TABLE section_states;
ALTER TABLE section_states_rebuilt RENAME TO section_states;
CREATE TRIGGER unit_rates_section_insert AFTER INSERT ON section_states
WHEN NOT EXISTS (SELECT 1 FROM section_states s WHERE s.response_id = NEW.response_id
    AND s.section_id <> NEW.section_id)
BEGIN
    INSERT INTO unit_rates_refresh (survey_id, country_iso3, unit)
    SELECT survey_id, country_iso3, unit FROM responses WHERE id = NEW.response_id;
END;
CREATE TRIGGER unit_rates_section_delete AFTER DELETE ON section_states
WHEN NOT EXISTS (SELECT 1 FROM section_states s WHERE s.response_id = OLD.response_id)
BEGIN
    INSERT INTO unit_rates_refresh (survey_id, country_iso3, unit)
    SELECT survey_id, country_iso3, unit FROM responses WHERE id = OLD.response_id;
END;

PRAGMA legacy_alter_table = OFF;
