-- The live answers by question (the results and the compendium with drafts included read them
-- so) without their value and visibility. A draft save upserts its changed answers with
-- `value` and `visible` in the SET list, and SQLite rewrites every index holding a column the
-- SET names, changed or not: with `answers_aggregate (question_id, visible, response_id, item,
-- value)` each changed answer moved an entry in the index region of its question, a different
-- page for each question of the section, and the commit appended every such page to the log
-- (about 15 pages of 4 KiB a save of 20 questions; writing them was a third of the save's
-- statement). This index holds no column a save sets, so a save that changes answers already
-- given leaves it alone. The queries with drafts read each answer's value from its row.
DROP INDEX answers_aggregate;
CREATE INDEX answers_by_question ON answers (question_id, response_id, item);
