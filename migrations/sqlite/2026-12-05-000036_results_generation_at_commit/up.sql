-- PostgreSQL's bump of the results generation on a response's change now runs as the
-- transaction commits (see the PostgreSQL migration). SQLite writes on one connection at a
-- time, so no submission waits on another's bump: nothing to change.
SELECT 1;
