-- A unit's lock, taken by `unit_rates_refresh`, was one lock per unit, held until the
-- transaction ended. Two things went wrong with transactions that write rows of many units at
-- once (a campaign issuing links, a contacts import):
--
-- * Their rows' triggers took the locks in the order of the rows: two such transactions over
--   the same units in different orders each held some the other waited for, and PostgreSQL
--   refused one as a deadlock (two imports of 150 organisations in opposite orders did so at
--   once). Such a transaction now takes them all first, in the order of their keys
--   (`unit_rates_lock`, which the server calls before the writes); the triggers' own calls then
--   find them held.
-- * Every lock takes a slot of PostgreSQL's shared lock table until the transaction ends, and
--   the table holds `max_locks_per_transaction` (64) times `max_connections` (100) slots by
--   default, with some slack: a campaign inviting 100,000 organisations in one transaction
--   failed with "out of shared memory". A unit's lock is now one of 1,024 per survey (its key's
--   low ten bits from the unit, the rest from the survey): units that share one wait for each
--   other a moment, and a transaction holds at most 1,024 whatever its number of units.

CREATE FUNCTION unit_rates_key(s TEXT, c TEXT, u TEXT) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT (hashtext(s) & -1024) | (hashtext(s || chr(31) || c || chr(31) || u) & 1023)
$$;

-- The locks of units (surveys[i], countries[i], units[i]), each once, in the order of their
-- keys: any two transactions taking their locks this way wait for each other at most, in turn.
CREATE FUNCTION unit_rates_lock(surveys TEXT[], countries TEXT[], units TEXT[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    k integer;
BEGIN
    FOR k IN SELECT DISTINCT unit_rates_key(x.s, x.c, x.u)
        FROM unnest(surveys, countries, units) AS x(s, c, u)
        WHERE x.s IS NOT NULL AND x.c IS NOT NULL AND x.u IS NOT NULL ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(27, k);
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION unit_rates_refresh(s TEXT, c TEXT, u TEXT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF s IS NULL OR c IS NULL OR u IS NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(27, unit_rates_key(s, c, u));
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
