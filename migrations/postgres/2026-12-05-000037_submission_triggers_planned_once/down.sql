DROP TRIGGER version_practices_inserted ON version_answers;
DROP FUNCTION version_practices_inserted();
DROP TRIGGER version_practices_answers ON version_answers;
CREATE TRIGGER version_practices_answers
AFTER INSERT OR UPDATE OR DELETE ON version_answers
FOR EACH ROW EXECUTE FUNCTION version_practices_answers();

CREATE OR REPLACE FUNCTION version_practices_refresh(rid TEXT, ver INTEGER) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM version_practices WHERE response_id = rid AND version = ver;
    INSERT INTO version_practices (survey_id, practice_id, response_id, version, citable, theme_codes)
    SELECT survey_id, practice_id, response_id, version, citable, theme_codes
    FROM version_practices_computed v WHERE v.response_id = rid AND v.version = ver;
    DELETE FROM version_practice_texts WHERE response_id = rid AND version = ver;
    INSERT INTO version_practice_texts (survey_id, practice_id, response_id, version, text)
    SELECT survey_id, practice_id, response_id, version, text
    FROM version_practices_computed v WHERE v.response_id = rid AND v.version = ver;
$$;

CREATE OR REPLACE FUNCTION answer_tallies_move(old_r responses, new_r responses) RETURNS void
LANGUAGE sql AS $$
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
$$;

CREATE OR REPLACE FUNCTION results_generation_bump(sid TEXT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO results_generations AS g (survey_id, generation) VALUES (sid, 1)
        ON CONFLICT (survey_id) DO UPDATE SET generation = g.generation + 1;
$$;
