-- Claims read their due rows in (fire_at, id) / (next_attempt_at, id) order and stop
-- after one batch (see `Dialect::claim`): with `id` in the index no sort of every due
-- row is needed, however large the burst. The indexes are partial: a timer or message
-- that is done, cancelled or sent leaves them, so each claim, completion and lease
-- changes fewer index entries, and the indexes stay the size of the work still to do.
DROP INDEX timers_claim_idx;
DROP INDEX timers_lease_idx;
CREATE INDEX timers_claim_idx ON timers (fire_at, id) WHERE status = 'pending';
CREATE INDEX timers_lease_idx ON timers (lease_until) WHERE status = 'claimed';
DROP INDEX outbox_claim_idx;
DROP INDEX outbox_lease_idx;
CREATE INDEX outbox_claim_idx ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_lease_idx ON outbox (lease_until) WHERE status = 'sending';
