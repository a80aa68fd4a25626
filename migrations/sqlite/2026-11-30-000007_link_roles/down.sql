ALTER TABLE access_tokens DROP COLUMN sections;
ALTER TABLE access_tokens DROP COLUMN role;
