-- The programme around the workflows (issue 7): calls and their catalogue, budget lines and
-- spending, indicator actuals, evaluations and demand merges. Money is stored in fen
-- (BIGINT); JSON columns are `json`, as in 0001.

-- What guards read as `budget`: kept up to date in the transaction of every budget-line
-- and spending write.
ALTER TABLE instances ADD COLUMN budget JSON NOT NULL DEFAULT 'null';
-- Demands and projects of a call (`data.call_id`).
CREATE INDEX instances_call_idx ON instances (workflow_id, (data->>'call_id'));

CREATE TABLE calls (
    id            UUID PRIMARY KEY,
    year          INTEGER NOT NULL,
    title         TEXT NOT NULL,
    issuer        TEXT NOT NULL DEFAULT '',
    closing_date  DATE NOT NULL,
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_by    UUID NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE call_categories (
    call_id   UUID NOT NULL REFERENCES calls (id),
    category  TEXT NOT NULL,
    position  INTEGER NOT NULL,
    title     TEXT NOT NULL,
    PRIMARY KEY (call_id, category)
);

CREATE TABLE call_policy_areas (
    call_id   UUID NOT NULL,
    category  TEXT NOT NULL,
    position  INTEGER NOT NULL,
    name      TEXT NOT NULL,
    PRIMARY KEY (call_id, category, name),
    FOREIGN KEY (call_id, category) REFERENCES call_categories (call_id, category)
);

CREATE TABLE call_items (
    call_id      UUID NOT NULL,
    item_id      TEXT NOT NULL,
    category     TEXT NOT NULL,
    policy_area  TEXT NOT NULL,
    position     INTEGER NOT NULL,
    number       INTEGER,
    name         TEXT NOT NULL,
    direction    TEXT NOT NULL,
    applicant    TEXT NOT NULL,
    part         TEXT NOT NULL CHECK (part IN ('retained_provincial', 'post_subsidy',
                     'patent_office_and_protection_centre', 'delegated_to_city')),
    PRIMARY KEY (call_id, item_id),
    FOREIGN KEY (call_id, category, policy_area)
        REFERENCES call_policy_areas (call_id, category, name)
);

CREATE TABLE budget_lines (
    id           UUID PRIMARY KEY,
    instance_id  UUID NOT NULL REFERENCES instances (id),
    year         INTEGER NOT NULL,
    subject      TEXT NOT NULL,
    amount_fen   BIGINT NOT NULL CHECK (amount_fen > 0),
    source       TEXT NOT NULL,
    created_by   UUID NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX budget_lines_instance_idx ON budget_lines (instance_id, created_at);

CREATE TABLE spending_records (
    id           UUID PRIMARY KEY,
    instance_id  UUID NOT NULL REFERENCES instances (id),
    line_id      UUID NOT NULL REFERENCES budget_lines (id),
    amount_fen   BIGINT NOT NULL CHECK (amount_fen > 0),
    spent_on     DATE NOT NULL,
    description  TEXT NOT NULL,
    recorded_by  UUID NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX spending_records_instance_idx ON spending_records (instance_id, spent_on);
CREATE INDEX spending_records_line_idx ON spending_records (line_id);

CREATE TABLE indicator_actuals (
    instance_id   UUID NOT NULL REFERENCES instances (id),
    indicator_id  TEXT NOT NULL,
    checkpoint    TEXT NOT NULL CHECK (checkpoint IN ('mid_term', 'acceptance')),
    value         JSON NOT NULL,
    explanation   TEXT,
    recorded_on   DATE NOT NULL,
    recorded_by   UUID NOT NULL,
    recorded_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (instance_id, indicator_id, checkpoint)
);

CREATE TABLE evaluations (
    instance_id     UUID PRIMARY KEY REFERENCES instances (id),
    call_id         TEXT NOT NULL,
    method          JSON NOT NULL,
    budgeted_fen    BIGINT NOT NULL,
    spent_fen       BIGINT NOT NULL,
    execution_rate  DOUBLE PRECISION NOT NULL,
    total           DOUBLE PRECISION NOT NULL,
    grade           TEXT NOT NULL CHECK (grade IN ('优', '良', '中', '差')),
    result          JSON NOT NULL,
    evaluator_id    UUID NOT NULL,
    evaluated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX evaluations_call_idx ON evaluations (call_id, evaluated_at);

CREATE TABLE evaluation_scores (
    instance_id   UUID NOT NULL REFERENCES evaluations (instance_id),
    position      INTEGER NOT NULL,
    indicator_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    part          TEXT NOT NULL,
    max_points    DOUBLE PRECISION NOT NULL,
    fraction      DOUBLE PRECISION NOT NULL,
    points        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (instance_id, indicator_id)
);

CREATE TABLE demand_merges (
    id             UUID PRIMARY KEY,
    call_id        UUID NOT NULL REFERENCES calls (id),
    kept_id        UUID NOT NULL REFERENCES instances (id),
    merged_id      UUID NOT NULL UNIQUE REFERENCES instances (id),
    similarity     DOUBLE PRECISION NOT NULL,
    kept_source    JSON NOT NULL,
    merged_source  JSON NOT NULL,
    merged_by      UUID NOT NULL,
    merged_at      TIMESTAMPTZ NOT NULL,
    CHECK (kept_id <> merged_id)
);
CREATE INDEX demand_merges_call_idx ON demand_merges (call_id, merged_at);
