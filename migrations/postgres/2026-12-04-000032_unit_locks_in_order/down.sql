DROP FUNCTION unit_rates_lock(TEXT[], TEXT[], TEXT[]);

CREATE OR REPLACE FUNCTION unit_rates_refresh(s TEXT, c TEXT, u TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF s IS NULL OR c IS NULL OR u IS NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(27, hashtext(s || chr(31) || c || chr(31) || u));
    INSERT INTO unit_rates (survey_id, country_iso3, unit, opened, draft, submitted, accepted)
    VALUES (s, c, u, 0, 0, 0, 0) ON CONFLICT DO NOTHING;
    -- And the row's lock, held by a transaction that changed some of its flags without the
    -- unit's (below): the UPDATE then reads what it committed.
    PERFORM 1 FROM unit_rates WHERE survey_id = s AND country_iso3 = c AND unit = u FOR UPDATE;
    UPDATE unit_rates SET (opened, draft, submitted, accepted) = (SELECT f.opened, f.draft,
        f.submitted, f.accepted FROM unit_rates_should f
        WHERE f.survey_id = s AND f.country_iso3 = c AND f.unit = u)
    WHERE survey_id = s AND country_iso3 = c AND unit = u;
    DELETE FROM unit_rates WHERE survey_id = s AND country_iso3 = c AND unit = u
        AND NOT EXISTS (SELECT 1 FROM responses r
            WHERE r.survey_id = s AND r.country_iso3 = c AND r.unit = u)
        AND NOT EXISTS (SELECT 1 FROM access_tokens t
            WHERE t.survey_id = s AND t.country_iso3 = c AND t.unit = u)
        AND NOT EXISTS (SELECT 1 FROM contacts ct
            WHERE ct.survey_id = s AND ct.office = u AND ct.country_iso3 = c);
END;
$$;

DROP FUNCTION unit_rates_key(TEXT, TEXT, TEXT);
