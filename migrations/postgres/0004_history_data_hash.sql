-- The SHA-256 of the instance's data after each history record (canonical JSON), covered
-- by the record's hash: `audit verify` checks the instance row's state, data and version
-- against the latest record. NULL in records written before this column existed; their
-- hash never included it, so existing chains still verify.
ALTER TABLE history ADD COLUMN data_hash TEXT;
