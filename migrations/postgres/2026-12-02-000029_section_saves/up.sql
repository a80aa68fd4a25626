-- A draft save of one section as one statement: `INSERT INTO section_saves (...) VALUES (...)
-- RETURNING 1` (see `coherence::db::sections`), one round trip. The trigger function below
-- does what the save sent as four to eight statements in a transaction of its own: the claim
-- of the section's version, the optimistic lock between officials (the row inserted at
-- version 1 for a first save, else the version bumped from the one the form was opened at,
-- either only while the response is a draft or returned); then, only if the claim wrote its
-- row, the answer items the save drops, the new and changed items (a JSON array each, as
-- `answers::replace_answers` sends them), the questions a condition hides when the save
-- changes them (`hidden`: every one hidden after the save, NULL when that set does not
-- change), the survey version the response was saved under when it changes
-- (`survey_version`, NULL when not), and the save's audit entry. A claim that writes nothing
-- returns NULL, with nothing written: the statement then returns no row.
--
-- The claim reads the response row FOR SHARE: a change of state in progress (which updates
-- that row) makes the save wait and then see the new state, and a change of state begun after
-- the check waits for the save to commit.
--
-- One statement is atomic on its own: a save needs no BEGIN and COMMIT. A save that also
-- stores files or confirmations runs this inside a transaction with those.
--
-- The view holds no row; it only gives the statement its columns. The statuses in which a
-- response may change are `ResponseStatus::is_editable`'s: a test saves in every status.
CREATE VIEW section_saves AS SELECT
    NULL::text AS response_id, NULL::text AS section_id, NULL::integer AS base_version,
    NULL::timestamp AS saved_at, NULL::text AS token_id, NULL::text AS answer_rows,
    NULL::text AS dropped_items, NULL::text AS hidden, NULL::text AS survey_version,
    NULL::text AS chain, NULL::timestamp AS audit_at,
    NULL::text AS country_iso3, NULL::text AS actor, NULL::text AS kind, NULL::text AS detail
WHERE false;

CREATE FUNCTION section_saves_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.base_version = 0 THEN
        INSERT INTO section_states (version, updated_at, updated_by, response_id, section_id)
        SELECT 1, NEW.saved_at, NEW.token_id, NEW.response_id, NEW.section_id
        WHERE EXISTS (SELECT 1 FROM responses
            WHERE id = NEW.response_id AND status IN ('draft', 'returned') FOR SHARE)
        ON CONFLICT (response_id, section_id) DO NOTHING;
    ELSE
        UPDATE section_states SET version = NEW.base_version + 1, updated_at = NEW.saved_at,
            updated_by = NEW.token_id, ready_at = NULL, ready_by = NULL
        WHERE response_id = NEW.response_id AND section_id = NEW.section_id
            AND version = NEW.base_version
            AND EXISTS (SELECT 1 FROM responses
                WHERE id = NEW.response_id AND status IN ('draft', 'returned') FOR SHARE);
    END IF;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    IF NEW.dropped_items IS NOT NULL THEN
        DELETE FROM answers
        WHERE response_id = NEW.response_id AND (question_id, item) IN
            (SELECT e->>0, e->>1 FROM json_array_elements(NEW.dropped_items::json) AS e);
    END IF;

    INSERT INTO answers (response_id, section_id, updated_at, updated_by, question_id, item,
        value, num, visible)
    SELECT NEW.response_id, NEW.section_id, NEW.saved_at, NEW.token_id,
        e->>0, e->>1, e->>2, (e->>3)::float8, (e->>4)::boolean
    FROM json_array_elements(NEW.answer_rows::json) AS e
    ON CONFLICT (response_id, question_id, item) DO UPDATE SET
        value = excluded.value, num = excluded.num, section_id = excluded.section_id,
        updated_at = excluded.updated_at, updated_by = excluded.updated_by,
        visible = excluded.visible;

    -- The hidden questions' rows brought in line with `hidden` (no longer hidden removed,
    -- newly hidden added), then the visibility of every answer that differs from it.
    IF NEW.hidden IS NOT NULL THEN
        DELETE FROM hidden_questions
        WHERE response_id = NEW.response_id AND question_id NOT IN
            (SELECT json_array_elements_text(NEW.hidden::json));
        INSERT INTO hidden_questions (response_id, question_id)
        SELECT NEW.response_id, json_array_elements_text(NEW.hidden::json)
        ON CONFLICT (response_id, question_id) DO NOTHING;
        UPDATE answers SET visible = NOT visible
        WHERE response_id = NEW.response_id AND visible =
            (question_id IN (SELECT json_array_elements_text(NEW.hidden::json)));
    END IF;

    IF NEW.survey_version IS NOT NULL THEN
        UPDATE responses SET updated_at = NEW.saved_at, survey_version = NEW.survey_version
        WHERE id = NEW.response_id;
    END IF;

    INSERT INTO audit_pending (chain, at, country_iso3, actor, kind, detail)
    VALUES (NEW.chain, NEW.audit_at, NEW.country_iso3, NEW.actor, NEW.kind, NEW.detail);
    RETURN NEW;
END
$$;

CREATE TRIGGER section_saves_write INSTEAD OF INSERT ON section_saves
FOR EACH ROW EXECUTE FUNCTION section_saves_write();
