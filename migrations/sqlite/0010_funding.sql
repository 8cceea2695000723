-- Issue 13 (money): a call's funding plan (envelope: total, per part, category, item and
-- city allocation), every change to it with who/when/old/new, the funding each approved
-- project holds against the plan, budget-line changes made by approved change requests,
-- and disbursements (拨付). Money in fen (INTEGER), JSON as TEXT.

-- The plan as JSON (`grantflow_programme::funding::FundingPlan`); NULL: no envelope.
ALTER TABLE calls ADD COLUMN funding TEXT;

CREATE TABLE funding_plan_changes (
    id          TEXT PRIMARY KEY NOT NULL,
    call_id     TEXT NOT NULL REFERENCES calls (id),
    old_plan    TEXT,
    new_plan    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    changed_by  TEXT NOT NULL,
    changed_at  TEXT NOT NULL
);
CREATE INDEX funding_plan_changes_call_idx ON funding_plan_changes (call_id, changed_at);

-- One row per funded project: what its approval (approve, allocate, city_approve, or an
-- approved budget change) holds against the call's pools. `city` is the plan's city key
-- for a city's own approval (下放地市审批), NULL otherwise.
CREATE TABLE funding_commitments (
    instance_id  TEXT PRIMARY KEY NOT NULL REFERENCES instances (id),
    call_id      TEXT NOT NULL REFERENCES calls (id),
    part         TEXT NOT NULL,
    category     TEXT NOT NULL,
    item_id      TEXT NOT NULL,
    city         TEXT,
    amount_fen   INTEGER NOT NULL CHECK (amount_fen >= 0),
    event        TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX funding_commitments_call_idx ON funding_commitments (call_id);

CREATE TABLE budget_line_changes (
    id                 TEXT PRIMARY KEY NOT NULL,
    line_id            TEXT NOT NULL REFERENCES budget_lines (id),
    instance_id        TEXT NOT NULL REFERENCES instances (id),
    old_amount_fen     INTEGER NOT NULL,
    new_amount_fen     INTEGER NOT NULL,
    change_request_id  TEXT,
    changed_by         TEXT NOT NULL,
    changed_at         TEXT NOT NULL
);
CREATE INDEX budget_line_changes_instance_idx ON budget_line_changes (instance_id, changed_at);

CREATE TABLE disbursements (
    id           TEXT PRIMARY KEY NOT NULL,
    instance_id  TEXT NOT NULL REFERENCES instances (id),
    batch        TEXT NOT NULL,
    paid_on      TEXT NOT NULL,
    amount_fen   INTEGER NOT NULL CHECK (amount_fen > 0),
    voucher      TEXT NOT NULL,
    recorded_by  TEXT NOT NULL,
    recorded_at  TEXT NOT NULL
);
CREATE INDEX disbursements_instance_idx ON disbursements (instance_id, paid_on);
