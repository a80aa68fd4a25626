CREATE OR REPLACE FUNCTION version_practices_refresh(rid TEXT, ver INTEGER) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM version_practices WHERE response_id = rid AND version = ver;
    INSERT INTO version_practices (survey_id, practice_id, response_id, version, citable, theme_codes)
    SELECT survey_id, practice_id, response_id, version, citable, theme_codes
    FROM version_practices_computed v WHERE v.response_id = rid AND v.version = ver;
$$;
DROP VIEW version_practices_computed;
CREATE VIEW version_practices_computed AS
SELECT p.survey_id AS survey_id, p.practice_id AS practice_id, va.response_id AS response_id,
    va.version AS version,
    EXISTS (SELECT 1 FROM practice_roles pc JOIN version_answers c ON c.question_id = pc.question_id
        WHERE pc.survey_id = p.survey_id AND pc.practice_id = p.practice_id AND pc.role = 'cite'
        AND c.response_id = va.response_id AND c.version = va.version AND c.value = 'yes') AS citable,
    COALESCE((SELECT string_agg(CASE WHEN t.item = '' THEN t.value ELSE t.item END, chr(31))
        FROM practice_roles pt JOIN version_answers t ON t.question_id = pt.question_id
        WHERE pt.survey_id = p.survey_id AND pt.practice_id = p.practice_id AND pt.role = 'themes'
        AND t.response_id = va.response_id AND t.version = va.version), '') AS theme_codes
FROM responses r JOIN practice_roles p ON p.survey_id = r.survey_id AND p.role = 'practice'
JOIN version_answers va ON va.response_id = r.id AND va.question_id = p.question_id AND va.item = '';
DROP TABLE version_practice_texts;
