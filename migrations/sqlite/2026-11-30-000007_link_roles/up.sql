-- Link roles: a coordinator (every link issued before this migration), a contributor limited
-- to some sections, or an approver. A contributor's sections are its section ids, separated
-- by single spaces, in a column of the link's own row: the link is loaded by one look-up on
-- every page, survey section ids never contain spaces, and the list is only ever read and
-- written whole, so a join table would add a query and a table for nothing.
ALTER TABLE access_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'coordinator';
ALTER TABLE access_tokens ADD COLUMN sections TEXT NOT NULL DEFAULT '';
