-- PostgreSQL's trigger functions of a submission now keep their plans, and a version's
-- listings are refreshed once per statement (see the PostgreSQL migration). SQLite compiles
-- a trigger's statements into the statement that fires it: nothing to change here.
SELECT 1;
