-- The programme around the workflows (issue 7): calls and their catalogue, budget lines and
-- spending, indicator actuals, evaluations and demand merges. Money is stored in fen
-- (INTEGER), dates as `YYYY-MM-DD`, times as fixed-width RFC 3339 text, JSON as text.

-- What guards read as `budget`: kept up to date in the transaction of every budget-line
-- and spending write.
ALTER TABLE instances ADD COLUMN budget TEXT NOT NULL DEFAULT 'null';
-- Demands and projects of a call (`data.call_id`).
CREATE INDEX instances_call_idx ON instances (workflow_id, json_extract(data, '$.call_id'));

CREATE TABLE calls (
    id            TEXT PRIMARY KEY NOT NULL,
    year          INTEGER NOT NULL,
    title         TEXT NOT NULL,
    issuer        TEXT NOT NULL DEFAULT '',
    closing_date  TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE call_categories (
    call_id   TEXT NOT NULL REFERENCES calls (id),
    category  TEXT NOT NULL,
    position  INTEGER NOT NULL,
    title     TEXT NOT NULL,
    PRIMARY KEY (call_id, category)
);

CREATE TABLE call_policy_areas (
    call_id   TEXT NOT NULL,
    category  TEXT NOT NULL,
    position  INTEGER NOT NULL,
    name      TEXT NOT NULL,
    PRIMARY KEY (call_id, category, name),
    FOREIGN KEY (call_id, category) REFERENCES call_categories (call_id, category)
);

CREATE TABLE call_items (
    call_id      TEXT NOT NULL,
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
    id           TEXT PRIMARY KEY NOT NULL,
    instance_id  TEXT NOT NULL REFERENCES instances (id),
    year         INTEGER NOT NULL,
    subject      TEXT NOT NULL,
    amount_fen   INTEGER NOT NULL CHECK (amount_fen > 0),
    source       TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX budget_lines_instance_idx ON budget_lines (instance_id, created_at);

CREATE TABLE spending_records (
    id           TEXT PRIMARY KEY NOT NULL,
    instance_id  TEXT NOT NULL REFERENCES instances (id),
    line_id      TEXT NOT NULL REFERENCES budget_lines (id),
    amount_fen   INTEGER NOT NULL CHECK (amount_fen > 0),
    spent_on     TEXT NOT NULL,
    description  TEXT NOT NULL,
    recorded_by  TEXT NOT NULL,
    recorded_at  TEXT NOT NULL
);
CREATE INDEX spending_records_instance_idx ON spending_records (instance_id, spent_on);
CREATE INDEX spending_records_line_idx ON spending_records (line_id);

CREATE TABLE indicator_actuals (
    instance_id   TEXT NOT NULL REFERENCES instances (id),
    indicator_id  TEXT NOT NULL,
    checkpoint    TEXT NOT NULL CHECK (checkpoint IN ('mid_term', 'acceptance')),
    value         TEXT NOT NULL,
    explanation   TEXT,
    recorded_on   TEXT NOT NULL,
    recorded_by   TEXT NOT NULL,
    recorded_at   TEXT NOT NULL,
    PRIMARY KEY (instance_id, indicator_id, checkpoint)
);

CREATE TABLE evaluations (
    instance_id     TEXT PRIMARY KEY NOT NULL REFERENCES instances (id),
    call_id         TEXT NOT NULL,
    method          TEXT NOT NULL,
    budgeted_fen    INTEGER NOT NULL,
    spent_fen       INTEGER NOT NULL,
    execution_rate  REAL NOT NULL,
    total           REAL NOT NULL,
    grade           TEXT NOT NULL CHECK (grade IN ('优', '良', '中', '差')),
    result          TEXT NOT NULL,
    evaluator_id    TEXT NOT NULL,
    evaluated_at    TEXT NOT NULL
);
CREATE INDEX evaluations_call_idx ON evaluations (call_id, evaluated_at);

CREATE TABLE evaluation_scores (
    instance_id   TEXT NOT NULL REFERENCES evaluations (instance_id),
    position      INTEGER NOT NULL,
    indicator_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    part          TEXT NOT NULL,
    max_points    REAL NOT NULL,
    fraction      REAL NOT NULL,
    points        REAL NOT NULL,
    PRIMARY KEY (instance_id, indicator_id)
);

CREATE TABLE demand_merges (
    id             TEXT PRIMARY KEY NOT NULL,
    call_id        TEXT NOT NULL REFERENCES calls (id),
    kept_id        TEXT NOT NULL REFERENCES instances (id),
    merged_id      TEXT NOT NULL UNIQUE REFERENCES instances (id),
    similarity     REAL NOT NULL,
    kept_source    TEXT NOT NULL,
    merged_source  TEXT NOT NULL,
    merged_by      TEXT NOT NULL,
    merged_at      TEXT NOT NULL,
    CHECK (kept_id <> merged_id)
);
CREATE INDEX demand_merges_call_idx ON demand_merges (call_id, merged_at);
