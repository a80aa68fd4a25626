-- SQLite's tables of a draft save stored in their primary key's order (WITHOUT ROWID); a
-- PostgreSQL table is a heap whatever its key: nothing to change here.
SELECT 1;
