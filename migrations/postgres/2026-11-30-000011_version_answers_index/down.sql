DROP INDEX version_answers_aggregate;
