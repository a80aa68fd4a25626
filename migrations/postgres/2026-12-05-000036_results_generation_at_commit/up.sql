-- A response's change bumps its survey's results generation as the transaction commits, not
-- as the change is made. The bump updates one row per survey, which stays locked until the
-- transaction ends: taken at the start of a submission (its status), it made every other
-- submission of the survey wait for the whole of that one (its version, the copy of its
-- answers, the results' triggers), so submissions ran one at a time. Under the load
-- benchmark's whole responses each bump waited 11 ms, and 53 responses a second were
-- submitted, whatever the cores. Deferred, the row is held only while the transaction
-- commits. The bump stays in the same transaction: a cache still sees the change and the
-- new generation together.
--
-- The triggers on a version's answers and on the hidden questions stay immediate: they read
-- whether the response counts the version at the time of the change (a submission writes its
-- version's answers before it counts them, and must not bump once per answer at commit).
DROP TRIGGER results_generation_response ON responses;
CREATE CONSTRAINT TRIGGER results_generation_response
AFTER INSERT OR DELETE OR UPDATE OF counted_version, status, survey_id, country_iso3, unit ON responses
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION results_generation_response();
