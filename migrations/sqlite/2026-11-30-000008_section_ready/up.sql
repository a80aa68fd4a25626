-- Handing sections to colleagues. A section a contributor (or the coordinator) marked ready:
-- when and by which link; saving the section again clears both (it is in progress again).
ALTER TABLE section_states ADD COLUMN ready_at TIMESTAMP;
ALTER TABLE section_states ADD COLUMN ready_by TEXT;
-- A contact's link role and, for a contributor, its section ids separated by single spaces,
-- as the contacts CSV gives them; invitations issue links of that role.
ALTER TABLE contacts ADD COLUMN role TEXT NOT NULL DEFAULT 'coordinator';
ALTER TABLE contacts ADD COLUMN sections TEXT NOT NULL DEFAULT '';
