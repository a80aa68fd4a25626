DROP TRIGGER results_generation_response ON responses;
CREATE TRIGGER results_generation_response
AFTER INSERT OR DELETE OR UPDATE OF counted_version, status, survey_id, country_iso3, unit ON responses
FOR EACH ROW EXECUTE FUNCTION results_generation_response();
