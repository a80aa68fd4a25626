-- Nothing on SQLite: its writes run one transaction at a time, so no two wait for each other's
-- units. PostgreSQL's migration of this number takes a transaction's unit locks in one order.
SELECT 1;
