-- What a submission runs on PostgreSQL, made cheaper (measured with pg_stat_statements under
-- the load benchmark's whole responses: the version's INSERT took 12.8 ms of each submission).
--
-- 1. The functions the triggers call were written in SQL, which PostgreSQL plans again at
--    every call: `version_practices_refresh` took 1.2 ms a call, of which its statements ran
--    for about 0.2. In PL/pgSQL each connection keeps its statements' plans.
-- 2. A version's listings were computed again for each of its answers to a question with a
--    listing role (a practice, its themes, its citation), five to six times per submission,
--    each time from all of its answers, to the same result: PostgreSQL runs an AFTER row
--    trigger once the statement is done, when every row is there. Inserted answers now
--    refresh each version they belong to once, per statement (a transition table, as the
--    tallies' triggers do). A change or removal of an answer (a definition renaming them, a
--    version removed) keeps the row trigger.
CREATE OR REPLACE FUNCTION version_practices_refresh(rid TEXT, ver INTEGER) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM version_practices WHERE response_id = rid AND version = ver;
    INSERT INTO version_practices (survey_id, practice_id, response_id, version, citable, theme_codes)
    SELECT survey_id, practice_id, response_id, version, citable, theme_codes
    FROM version_practices_computed v WHERE v.response_id = rid AND v.version = ver;
    DELETE FROM version_practice_texts WHERE response_id = rid AND version = ver;
    INSERT INTO version_practice_texts (survey_id, practice_id, response_id, version, text)
    SELECT survey_id, practice_id, response_id, version, text
    FROM version_practices_computed v WHERE v.response_id = rid AND v.version = ver;
END;
$$;

CREATE OR REPLACE FUNCTION answer_tallies_move(old_r responses, new_r responses) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO answer_tallies AS t (survey_id, question_id, item, value, country_iso3, accepted, n)
    SELECT s, '', '#responses', '', c, a, SUM(d) FROM (
        SELECT old_r.survey_id AS s, old_r.country_iso3 AS c, old_r.status = 'accepted' AS a, -1 AS d
            WHERE old_r.counted_version IS NOT NULL
        UNION ALL
        SELECT new_r.survey_id, new_r.country_iso3, new_r.status = 'accepted', 1
            WHERE new_r.counted_version IS NOT NULL
    ) x
    GROUP BY s, c, a HAVING SUM(d) <> 0 ORDER BY s, c, a
    ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = t.n + excluded.n;

    INSERT INTO answer_tallies AS t (survey_id, question_id, item, value, country_iso3, accepted, n)
    SELECT s, q, '#hidden', '', c, a, SUM(d) FROM (
        SELECT old_r.survey_id AS s, h.question_id AS q, old_r.country_iso3 AS c,
            old_r.status = 'accepted' AS a, -1 AS d
            FROM hidden_questions h WHERE h.response_id = old_r.id AND old_r.counted_version IS NOT NULL
        UNION ALL
        SELECT new_r.survey_id, h.question_id, new_r.country_iso3, new_r.status = 'accepted', 1
            FROM hidden_questions h WHERE h.response_id = new_r.id AND new_r.counted_version IS NOT NULL
    ) x
    GROUP BY s, q, c, a HAVING SUM(d) <> 0 ORDER BY s, q, c, a
    ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = t.n + excluded.n;

    INSERT INTO answer_tallies AS t (survey_id, question_id, item, value, country_iso3, accepted, n)
    SELECT s, q, '#answered', '', c, a, SUM(d) FROM (
        SELECT DISTINCT old_r.survey_id AS s, va.question_id AS q, old_r.country_iso3 AS c,
            old_r.status = 'accepted' AS a, -1 AS d
            FROM version_answers va WHERE va.response_id = old_r.id AND va.version = old_r.counted_version
        UNION ALL
        SELECT DISTINCT new_r.survey_id, va.question_id, new_r.country_iso3, new_r.status = 'accepted', 1
            FROM version_answers va WHERE va.response_id = new_r.id AND va.version = new_r.counted_version
    ) x
    GROUP BY s, q, c, a HAVING SUM(d) <> 0 ORDER BY s, q, c, a
    ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = t.n + excluded.n;

    INSERT INTO answer_tallies AS t (survey_id, question_id, item, value, country_iso3, accepted, n)
    SELECT s, q, i, v, c, a, SUM(d) FROM (
        SELECT old_r.survey_id AS s, va.question_id AS q, va.item AS i,
            CASE WHEN va.item LIKE '#%' THEN '' ELSE va.value END AS v,
            old_r.country_iso3 AS c, old_r.status = 'accepted' AS a, -1 AS d
            FROM version_answers va WHERE va.response_id = old_r.id AND va.version = old_r.counted_version
                AND (va.item LIKE '#%' OR length(va.value) <= 64)
        UNION ALL
        SELECT new_r.survey_id, va.question_id, va.item,
            CASE WHEN va.item LIKE '#%' THEN '' ELSE va.value END,
            new_r.country_iso3, new_r.status = 'accepted', 1
            FROM version_answers va WHERE va.response_id = new_r.id AND va.version = new_r.counted_version
                AND (va.item LIKE '#%' OR length(va.value) <= 64)
    ) x
    GROUP BY s, q, i, v, c, a HAVING SUM(d) <> 0 ORDER BY s, q, i, v, c, a
    ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = t.n + excluded.n;
END;
$$;

CREATE OR REPLACE FUNCTION results_generation_bump(sid TEXT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO results_generations AS g (survey_id, generation) VALUES (sid, 1)
        ON CONFLICT (survey_id) DO UPDATE SET generation = g.generation + 1;
END;
$$;

CREATE FUNCTION version_practices_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    touched RECORD;
BEGIN
    FOR touched IN
        SELECT DISTINCT n.response_id, n.version FROM new_rows n
        WHERE EXISTS (SELECT 1 FROM practice_roles p WHERE p.question_id = n.question_id)
        ORDER BY 1, 2
    LOOP
        PERFORM version_practices_refresh(touched.response_id, touched.version);
    END LOOP;
    RETURN NULL;
END;
$$;

DROP TRIGGER version_practices_answers ON version_answers;
CREATE TRIGGER version_practices_answers
AFTER UPDATE OR DELETE ON version_answers
FOR EACH ROW EXECUTE FUNCTION version_practices_answers();
CREATE TRIGGER version_practices_inserted
AFTER INSERT ON version_answers REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION version_practices_inserted();
