DROP TABLE hidden_questions;
ALTER TABLE answers DROP COLUMN visible;
