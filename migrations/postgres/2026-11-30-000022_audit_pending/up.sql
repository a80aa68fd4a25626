-- Audit entries as they are recorded: one row each, inserted in the transaction of the change
-- it records, without touching its chain's head (which made every save of a survey wait for
-- the one before it to commit). The sealer (`coherence::audit::seal`, every second in the
-- service and before every read of the log) moves them into `audit_log` in batches, in the
-- order of `id`, giving each its place and hash in its chain.
CREATE TABLE audit_pending (
    id BIGSERIAL PRIMARY KEY,
    chain TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    country_iso3 TEXT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);

-- Every save is recorded by its audit entry (section, version, changed questions): the save
-- log, which nothing read, is gone.
DROP TABLE save_log;
