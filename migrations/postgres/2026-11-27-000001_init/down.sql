DROP TABLE save_log;
DROP TABLE answers;
DROP TABLE section_states;
DROP TABLE responses;
DROP TABLE access_tokens;
DROP TABLE survey_versions;
DROP TABLE countries;
