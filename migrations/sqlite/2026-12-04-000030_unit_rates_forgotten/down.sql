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
        AND unit = NEW.unit AND NOT EXISTS (SELECT 1 FROM unit_rates_should f
            WHERE f.survey_id = unit_rates.survey_id AND f.country_iso3 = unit_rates.country_iso3
            AND f.unit = unit_rates.unit AND f.asked = 1);
    SELECT RAISE(IGNORE);
END;
