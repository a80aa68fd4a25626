DROP TRIGGER results_generation_hidden ON hidden_questions;
DROP TRIGGER results_generation_version_answers ON version_answers;
DROP TRIGGER results_generation_response ON responses;
DROP FUNCTION results_generation_answers();
DROP FUNCTION results_generation_response();
DROP FUNCTION results_generation_bump(TEXT);
DROP TABLE results_generations;
