-- `section_states`, which every draft save claims (its version bumped under the optimistic
-- lock) and every page reads, stored in its primary key's order (WITHOUT ROWID) instead of in
-- a rowid table beside a separate index of that key: a claim finds its row in one b-tree
-- instead of the key's index then the table, and a response's section states are one range
-- scan. Its rows are small (ids, a version, two timestamps).
--
-- `answers` stays a rowid table: a WITHOUT ROWID table keeps each row in an index b-tree,
-- where a row over about 1,000 bytes (a long free-text answer) spills to overflow pages. With
-- one answer in eight 1,500 bytes long, a save and a page's reads both cost more clustered
-- than not (benches/save_tables.py); with short answers only, less.
--
-- The table is copied into its new form, the old one dropped and the new one renamed, then its
-- triggers made again. `legacy_alter_table` keeps the rename from checking (and rewriting) the
-- view `unit_rates_should`, which names the table while it is missing; it names it by the
-- name it has again at the end.
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
) WITHOUT ROWID;
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
