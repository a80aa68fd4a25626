-- The counts a question's results show, kept up to date by triggers in the same transaction as
-- every change of what counts, so that a question's page reads a few hundred rows instead of
-- counting every answer of the survey (at 100,000 organisations: 0.6-2.4 s a view).
--
-- Per survey, question, country and whether the response was accepted, how many counted
-- responses (their counted version, `responses.counted_version`) have:
-- - each (item, value) of their answers. Escapes and "other" keep their item only (value ''):
--   their value is a free text. Other values longer than 64 characters (the longest code a
--   survey file may declare, see `check_identifier`) are not kept: they are texts, which no
--   count reads;
-- - item '#answered': any answer to the question;
-- - item '#hidden': the question hidden by a condition (live, as `hidden_questions`);
-- and, under question '' and item '#responses', how many responses count.
-- Real items never take these names: codes start with a letter, and the escapes' and
-- "other"'s items are '#other', '#not_known' and '#not_applicable'.
--
-- A count may reach 0 and stay; readers skip it.
CREATE TABLE answer_tallies (
    survey_id TEXT NOT NULL,
    question_id TEXT NOT NULL,
    item TEXT NOT NULL,
    value TEXT NOT NULL,
    country_iso3 TEXT NOT NULL,
    accepted BOOLEAN NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (survey_id, question_id, item, value, country_iso3, accepted)
);


INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
SELECT r.survey_id, '', '#responses', '', r.country_iso3, r.status = 'accepted', COUNT(*)
FROM responses r WHERE r.counted_version IS NOT NULL
GROUP BY r.survey_id, r.country_iso3, r.status = 'accepted';

INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
SELECT r.survey_id, va.question_id, va.item,
    CASE WHEN va.item LIKE '#%' THEN '' ELSE va.value END,
    r.country_iso3, r.status = 'accepted', COUNT(*)
FROM version_answers va JOIN responses r ON r.id = va.response_id AND va.version = r.counted_version
WHERE va.item LIKE '#%' OR length(va.value) <= 64
GROUP BY 1, 2, 3, 4, 5, 6;

INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
SELECT r.survey_id, va.question_id, '#answered', '', r.country_iso3, r.status = 'accepted',
    COUNT(DISTINCT va.response_id)
FROM version_answers va JOIN responses r ON r.id = va.response_id AND va.version = r.counted_version
GROUP BY 1, 2, 3, 4, 5, 6;

INSERT INTO answer_tallies (survey_id, question_id, item, value, country_iso3, accepted, n)
SELECT r.survey_id, h.question_id, '#hidden', '', r.country_iso3, r.status = 'accepted', COUNT(*)
FROM hidden_questions h JOIN responses r ON r.id = h.response_id
WHERE r.counted_version IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;

-- A response's counts moved from what it was (`old_r`, NULL for a new response) to what it is
-- (`new_r`, NULL for a deleted one). Each statement sums both sides per row of the tallies and
-- writes the rows in key order, and the statements take '#responses' first: two transactions
-- moving responses of one country (an acceptance, a return) lock the rows they share in the
-- same order, and cannot deadlock on them.
CREATE FUNCTION answer_tallies_move(old_r responses, new_r responses) RETURNS void
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

CREATE FUNCTION answer_tallies_response() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM answer_tallies_move(NULL, NEW);
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM answer_tallies_move(OLD, NULL);
        RETURN OLD;
    END IF;
    IF OLD.counted_version IS DISTINCT FROM NEW.counted_version
        OR (OLD.status = 'accepted') IS DISTINCT FROM (NEW.status = 'accepted')
        OR OLD.survey_id IS DISTINCT FROM NEW.survey_id
        OR OLD.country_iso3 IS DISTINCT FROM NEW.country_iso3 THEN
        PERFORM answer_tallies_move(OLD, NEW);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER answer_tallies_response
AFTER INSERT OR UPDATE OF counted_version, status, survey_id, country_iso3 ON responses
FOR EACH ROW EXECUTE FUNCTION answer_tallies_response();

-- Before the row goes, while its hidden questions and answers are still there to subtract
-- (those deleted with it by a cascade then find no counted response, and change nothing).
CREATE TRIGGER answer_tallies_response_delete
BEFORE DELETE ON responses
FOR EACH ROW EXECUTE FUNCTION answer_tallies_response();

-- The answers of a counted version written, changed or removed (a submission writes its
-- version's answers before the version counts, and the response's trigger adds them; a
-- definition change renames them in place). PostgreSQL runs an AFTER row trigger once the
-- whole statement is done, when every row it wrote is visible: these triggers run per
-- statement, over the rows it changed (transition tables). A question of a response is
-- answered now if it has rows, and was before if it had rows then: those there now, less those
-- the statement wrote, plus those it removed. The three counts are summed in one pass over the
-- rows, tagged by where they come from, rather than joined: the planner knows nothing of a
-- transition table's size, and nested-looped over it (a rename of 3,727 answers took 29 s).
CREATE FUNCTION answer_tallies_version_answers_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO answer_tallies AS t (survey_id, question_id, item, value, country_iso3, accepted, n)
    SELECT r.survey_id, per.question_id, '#answered', '', r.country_iso3, r.status = 'accepted', SUM((CASE WHEN now_n > 0 THEN 1 ELSE 0 END) - (CASE WHEN now_n - new_n + old_n > 0 THEN 1 ELSE 0 END))
    FROM (SELECT response_id, version, question_id,
              SUM(is_now) AS now_n, SUM(is_old) AS old_n, SUM(is_new) AS new_n
          FROM (SELECT va.response_id, va.version, va.question_id, 1 AS is_now, 0 AS is_old, 0 AS is_new
              FROM version_answers va
              WHERE (va.response_id, va.version, va.question_id) IN (SELECT response_id, version, question_id FROM new_rows) UNION ALL SELECT response_id, version, question_id, 0, 0, 1 FROM new_rows) tagged
          GROUP BY response_id, version, question_id) per
    JOIN responses r ON r.id = per.response_id AND r.counted_version = per.version
    GROUP BY 1, 2, 3, 4, 5, 6 HAVING SUM((CASE WHEN now_n > 0 THEN 1 ELSE 0 END) - (CASE WHEN now_n - new_n + old_n > 0 THEN 1 ELSE 0 END)) <> 0 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO answer_tallies AS t (survey_id, question_id, item, value, country_iso3, accepted, n)
    SELECT r.survey_id, x.question_id, x.item, CASE WHEN x.item LIKE '#%' THEN '' ELSE x.value END,
        r.country_iso3, r.status = 'accepted', COUNT(*)
    FROM new_rows x JOIN responses r ON r.id = x.response_id AND r.counted_version = x.version
    WHERE x.item LIKE '#%' OR length(x.value) <= 64
    GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = t.n + excluded.n;
    RETURN NULL;
END;
$$;

CREATE FUNCTION answer_tallies_version_answers_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO answer_tallies AS t (survey_id, question_id, item, value, country_iso3, accepted, n)
    SELECT r.survey_id, per.question_id, '#answered', '', r.country_iso3, r.status = 'accepted', SUM((CASE WHEN now_n > 0 THEN 1 ELSE 0 END) - (CASE WHEN now_n - new_n + old_n > 0 THEN 1 ELSE 0 END))
    FROM (SELECT response_id, version, question_id,
              SUM(is_now) AS now_n, SUM(is_old) AS old_n, SUM(is_new) AS new_n
          FROM (SELECT va.response_id, va.version, va.question_id, 1 AS is_now, 0 AS is_old, 0 AS is_new
              FROM version_answers va
              WHERE (va.response_id, va.version, va.question_id) IN (SELECT response_id, version, question_id FROM old_rows) UNION ALL SELECT response_id, version, question_id, 0, 1, 0 FROM old_rows) tagged
          GROUP BY response_id, version, question_id) per
    JOIN responses r ON r.id = per.response_id AND r.counted_version = per.version
    GROUP BY 1, 2, 3, 4, 5, 6 HAVING SUM((CASE WHEN now_n > 0 THEN 1 ELSE 0 END) - (CASE WHEN now_n - new_n + old_n > 0 THEN 1 ELSE 0 END)) <> 0 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO answer_tallies AS t (survey_id, question_id, item, value, country_iso3, accepted, n)
    SELECT r.survey_id, x.question_id, x.item, CASE WHEN x.item LIKE '#%' THEN '' ELSE x.value END,
        r.country_iso3, r.status = 'accepted', -COUNT(*)
    FROM old_rows x JOIN responses r ON r.id = x.response_id AND r.counted_version = x.version
    WHERE x.item LIKE '#%' OR length(x.value) <= 64
    GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = t.n + excluded.n;
    RETURN NULL;
END;
$$;

CREATE FUNCTION answer_tallies_version_answers_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO answer_tallies AS t (survey_id, question_id, item, value, country_iso3, accepted, n)
    SELECT r.survey_id, per.question_id, '#answered', '', r.country_iso3, r.status = 'accepted', SUM((CASE WHEN now_n > 0 THEN 1 ELSE 0 END) - (CASE WHEN now_n - new_n + old_n > 0 THEN 1 ELSE 0 END))
    FROM (SELECT response_id, version, question_id,
              SUM(is_now) AS now_n, SUM(is_old) AS old_n, SUM(is_new) AS new_n
          FROM (SELECT va.response_id, va.version, va.question_id, 1 AS is_now, 0 AS is_old, 0 AS is_new
              FROM version_answers va
              WHERE (va.response_id, va.version, va.question_id) IN (SELECT response_id, version, question_id FROM old_rows UNION SELECT response_id, version, question_id FROM new_rows) UNION ALL SELECT response_id, version, question_id, 0, 1, 0 FROM old_rows UNION ALL SELECT response_id, version, question_id, 0, 0, 1 FROM new_rows) tagged
          GROUP BY response_id, version, question_id) per
    JOIN responses r ON r.id = per.response_id AND r.counted_version = per.version
    GROUP BY 1, 2, 3, 4, 5, 6 HAVING SUM((CASE WHEN now_n > 0 THEN 1 ELSE 0 END) - (CASE WHEN now_n - new_n + old_n > 0 THEN 1 ELSE 0 END)) <> 0 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = t.n + excluded.n;
    INSERT INTO answer_tallies AS t (survey_id, question_id, item, value, country_iso3, accepted, n)
    SELECT s, q, i, v, c, a, SUM(d) FROM (
        SELECT r.survey_id AS s, o.question_id AS q, o.item AS i,
            CASE WHEN o.item LIKE '#%' THEN '' ELSE o.value END AS v,
            r.country_iso3 AS c, r.status = 'accepted' AS a, -1 AS d
        FROM old_rows o JOIN responses r ON r.id = o.response_id AND r.counted_version = o.version
        WHERE o.item LIKE '#%' OR length(o.value) <= 64
        UNION ALL
        SELECT r.survey_id, w.question_id, w.item, CASE WHEN w.item LIKE '#%' THEN '' ELSE w.value END,
            r.country_iso3, r.status = 'accepted', 1
        FROM new_rows w JOIN responses r ON r.id = w.response_id AND r.counted_version = w.version
        WHERE w.item LIKE '#%' OR length(w.value) <= 64
    ) x
    GROUP BY s, q, i, v, c, a HAVING SUM(d) <> 0 ORDER BY s, q, i, v, c, a
    ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = t.n + excluded.n;
    RETURN NULL;
END;
$$;

CREATE TRIGGER answer_tallies_version_answers_insert
AFTER INSERT ON version_answers REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION answer_tallies_version_answers_inserted();

CREATE TRIGGER answer_tallies_version_answers_delete
AFTER DELETE ON version_answers REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION answer_tallies_version_answers_deleted();

CREATE TRIGGER answer_tallies_version_answers_update
AFTER UPDATE ON version_answers REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION answer_tallies_version_answers_updated();

-- A counted response's question hidden or shown again by a condition (a returned report being
-- changed), or renamed by a definition change.
CREATE FUNCTION answer_tallies_hidden() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO answer_tallies AS t (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, OLD.question_id, '#hidden', '', r.country_iso3, r.status = 'accepted', -1
        FROM responses r WHERE r.id = OLD.response_id AND r.counted_version IS NOT NULL
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = t.n + excluded.n;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO answer_tallies AS t (survey_id, question_id, item, value, country_iso3, accepted, n)
        SELECT r.survey_id, NEW.question_id, '#hidden', '', r.country_iso3, r.status = 'accepted', 1
        FROM responses r WHERE r.id = NEW.response_id AND r.counted_version IS NOT NULL
        ON CONFLICT (survey_id, question_id, item, value, country_iso3, accepted)
        DO UPDATE SET n = t.n + excluded.n;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER answer_tallies_hidden
AFTER INSERT OR UPDATE OR DELETE ON hidden_questions
FOR EACH ROW EXECUTE FUNCTION answer_tallies_hidden();
