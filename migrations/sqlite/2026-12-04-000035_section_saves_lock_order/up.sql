-- PostgreSQL's save trigger now locks the response for update (see the PostgreSQL migration).
-- SQLite writes on one connection at a time and takes no row locks: nothing to change.
SELECT 1;
