CREATE OR REPLACE FUNCTION section_saves_write() RETURNS trigger LANGUAGE plpgsql AS $$
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
