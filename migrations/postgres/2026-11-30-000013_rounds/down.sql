DROP TABLE carried_answers;
DROP TABLE carried_from;
