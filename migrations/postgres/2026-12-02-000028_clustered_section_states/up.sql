-- SQLite's `section_states` stored in its primary key's order (WITHOUT ROWID); a PostgreSQL
-- table is a heap whatever its key: nothing to change here.
SELECT 1;
