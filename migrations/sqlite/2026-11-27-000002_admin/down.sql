ALTER TABLE access_tokens DROP COLUMN first_used_at;
DROP TABLE response_events;
DROP TABLE deadline_extensions;
DROP TABLE outbox;
DROP TABLE contacts;
DROP TABLE sessions;
DROP TABLE survey_owners;
DROP TABLE users;
