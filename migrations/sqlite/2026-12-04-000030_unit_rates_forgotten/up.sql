-- A unit's row is removed when nothing asks the unit any more: the test asks whether a
-- response, a link or a contact names the unit, with the unit's key as the statement's own
-- parameters, not through `unit_rates_should`'s `asked`, whose EXISTS are correlated with
-- the unit's row. PostgreSQL may run a correlated EXISTS as a hashed sub-plan, which reads
-- every row of the table to answer for one unit: it did so for the links when their table
-- had no statistics yet (a new database, and every link inserted in the same transaction),
-- and issuing 25,600 links in one transaction took over five minutes, each link slower than
-- the one before (7.5 ms each at 8,000 links). The same DELETE on SQLite, for one code path.

DROP TRIGGER unit_rates_refresh;

CREATE TRIGGER unit_rates_refresh BEFORE INSERT ON unit_rates_refresh
BEGIN
    INSERT INTO unit_rates (survey_id, country_iso3, unit, opened, draft, submitted, accepted)
    SELECT NEW.survey_id, NEW.country_iso3, NEW.unit, 0, 0, 0, 0
    WHERE NEW.survey_id IS NOT NULL AND NEW.country_iso3 IS NOT NULL AND NEW.unit IS NOT NULL
    ON CONFLICT DO NOTHING;
    UPDATE unit_rates SET (opened, draft, submitted, accepted) = (SELECT f.opened, f.draft,
        f.submitted, f.accepted FROM unit_rates_should f
        WHERE f.survey_id = unit_rates.survey_id AND f.country_iso3 = unit_rates.country_iso3
        AND f.unit = unit_rates.unit)
    WHERE survey_id = NEW.survey_id AND country_iso3 = NEW.country_iso3 AND unit = NEW.unit;
    DELETE FROM unit_rates WHERE survey_id = NEW.survey_id AND country_iso3 = NEW.country_iso3
        AND unit = NEW.unit
        AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.survey_id = NEW.survey_id
            AND r.country_iso3 = NEW.country_iso3 AND r.unit = NEW.unit)
        AND NOT EXISTS (SELECT 1 FROM access_tokens t WHERE t.survey_id = NEW.survey_id
            AND t.country_iso3 = NEW.country_iso3 AND t.unit = NEW.unit)
        AND NOT EXISTS (SELECT 1 FROM contacts ct WHERE ct.survey_id = NEW.survey_id
            AND ct.office = NEW.unit AND ct.country_iso3 = NEW.country_iso3);
    SELECT RAISE(IGNORE);
END;
