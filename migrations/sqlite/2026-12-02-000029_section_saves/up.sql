-- A draft save of one section as one statement: `INSERT INTO section_saves (...) VALUES (...)
-- RETURNING 1` (see `coherence::db::sections`). The trigger below does what the save sent as
-- four to eight statements in a transaction of its own: the claim of the section's version,
-- the optimistic lock between officials (the row inserted at version 1 for a first save, else
-- the version bumped from the one the form was opened at, either only while the response is a
-- draft or returned); then, only if the claim wrote its row, the answer items the save drops,
-- the new and changed items (a JSON array each, as `answers::replace_answers` sends them), the
-- questions a condition hides when the save changes them (`hidden`: every one hidden after the
-- save, NULL when that set does not change), the survey version the response was saved under
-- when it changes (`survey_version`, NULL when not), and the save's audit entry. A claim that
-- writes nothing ends the trigger (RAISE(IGNORE)), with nothing written: the statement then
-- returns no row, which tells the caller.
--
-- One statement is atomic on its own: a save needs no BEGIN and COMMIT, and SQLite keeps no
-- statement journal for a statement outside a transaction (multi-row statements inside one
-- spilled theirs to temporary files). A save that also stores files or confirmations runs
-- this inside a transaction with those.
--
-- The view holds no row; it only gives the statement its columns. The statuses in which a
-- response may change are `ResponseStatus::is_editable`'s: a test saves in every status.
CREATE VIEW section_saves (response_id, section_id, base_version, saved_at, token_id,
    answer_rows, dropped_items, hidden, survey_version, chain, audit_at, country_iso3, actor,
    kind, detail)
AS SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL WHERE 0;

CREATE TRIGGER section_saves_write INSTEAD OF INSERT ON section_saves
BEGIN
    INSERT INTO section_states (version, updated_at, updated_by, response_id, section_id)
    SELECT 1, NEW.saved_at, NEW.token_id, NEW.response_id, NEW.section_id
    WHERE NEW.base_version = 0 AND EXISTS (SELECT 1 FROM responses
        WHERE id = NEW.response_id AND status IN ('draft', 'returned'))
    ON CONFLICT (response_id, section_id) DO NOTHING;
    SELECT RAISE(IGNORE) WHERE NEW.base_version = 0 AND changes() = 0;

    UPDATE section_states SET version = NEW.base_version + 1, updated_at = NEW.saved_at,
        updated_by = NEW.token_id, ready_at = NULL, ready_by = NULL
    WHERE NEW.base_version > 0 AND response_id = NEW.response_id
        AND section_id = NEW.section_id AND version = NEW.base_version
        AND EXISTS (SELECT 1 FROM responses
            WHERE id = NEW.response_id AND status IN ('draft', 'returned'));
    SELECT RAISE(IGNORE) WHERE NEW.base_version > 0 AND changes() = 0;

    DELETE FROM answers
    WHERE NEW.dropped_items IS NOT NULL AND response_id = NEW.response_id
        AND (question_id, item) IN
            (SELECT value->>0, value->>1 FROM json_each(NEW.dropped_items));

    -- `WHERE true`: without a WHERE, SQLite would read ON as the start of a join's condition.
    INSERT INTO answers (response_id, section_id, updated_at, updated_by, question_id, item,
        value, num, visible)
    SELECT NEW.response_id, NEW.section_id, NEW.saved_at, NEW.token_id,
        value->>0, value->>1, value->>2, value->>3, value->>4
    FROM json_each(NEW.answer_rows) WHERE true
    ON CONFLICT (response_id, question_id, item) DO UPDATE SET
        value = excluded.value, num = excluded.num, section_id = excluded.section_id,
        updated_at = excluded.updated_at, updated_by = excluded.updated_by,
        visible = excluded.visible;

    -- The hidden questions' rows brought in line with `hidden` (no longer hidden removed, newly
    -- hidden added), then the visibility of every answer that differs from it.
    DELETE FROM hidden_questions
    WHERE NEW.hidden IS NOT NULL AND response_id = NEW.response_id
        AND question_id NOT IN (SELECT value FROM json_each(NEW.hidden));
    INSERT INTO hidden_questions (response_id, question_id)
    SELECT NEW.response_id, value FROM json_each(NEW.hidden) WHERE true
    ON CONFLICT (response_id, question_id) DO NOTHING;
    UPDATE answers SET visible = NOT visible
    WHERE NEW.hidden IS NOT NULL AND response_id = NEW.response_id
        AND visible = (question_id IN (SELECT value FROM json_each(NEW.hidden)));

    UPDATE responses SET updated_at = NEW.saved_at, survey_version = NEW.survey_version
    WHERE NEW.survey_version IS NOT NULL AND id = NEW.response_id;

    INSERT INTO audit_pending (chain, at, country_iso3, actor, kind, detail)
    VALUES (NEW.chain, NEW.audit_at, NEW.country_iso3, NEW.actor, NEW.kind, NEW.detail);
END;
