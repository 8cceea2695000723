-- Expert review (issue 5): the expert pool, collaborations, applicants' exclusion requests,
-- assignments with their lifecycle events, sealed score submissions and outlier
-- justifications. Times are fixed-width RFC 3339 text, dates `YYYY-MM-DD`, JSON as text.
--
-- A round is not stored as a row: round (instance, round id, cycle) is open while the
-- instance is in the round's `opens_in` state and has not left it since it entered it at
-- version `cycle` (see the history). Leaving the state closes it.

CREATE TABLE expert_profiles (
    user_id       TEXT PRIMARY KEY NOT NULL REFERENCES users (id),
    categories    TEXT NOT NULL,
    keywords      TEXT NOT NULL,
    workload_cap  INTEGER NOT NULL CHECK (workload_cap >= 0),
    status        TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'retired')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE expert_collaborations (
    id          TEXT PRIMARY KEY NOT NULL,
    expert_id   TEXT NOT NULL REFERENCES users (id),
    org_id      TEXT NOT NULL REFERENCES organisations (id),
    until       TEXT NOT NULL,
    note        TEXT,
    created_at  TEXT NOT NULL,
    CONSTRAINT expert_collaborations_key UNIQUE (expert_id, org_id, until)
);
CREATE INDEX expert_collaborations_org_idx ON expert_collaborations (org_id);

-- Organisations an applicant asked to exclude (申请回避单位).
CREATE TABLE review_exclusions (
    instance_id   TEXT NOT NULL REFERENCES instances (id),
    org_id        TEXT NOT NULL REFERENCES organisations (id),
    requested_by  TEXT NOT NULL,
    requested_at  TEXT NOT NULL,
    PRIMARY KEY (instance_id, org_id)
);

CREATE TABLE review_assignments (
    id              TEXT PRIMARY KEY NOT NULL,
    instance_id     TEXT NOT NULL REFERENCES instances (id),
    round_id        TEXT NOT NULL,
    opens_in        TEXT NOT NULL,
    cycle           INTEGER NOT NULL,
    expert_id       TEXT NOT NULL REFERENCES users (id),
    state           TEXT NOT NULL CHECK (state IN ('assigned', 'accepted', 'declined',
                        'conflict_declared', 'submitted', 'reopened', 'overdue', 'replaced')),
    revision        INTEGER NOT NULL DEFAULT 0,
    seed            TEXT,
    algorithm       TEXT,
    assigned_by     TEXT NOT NULL,
    assigned_at     TEXT NOT NULL,
    due_at          TEXT,
    replaces_id     TEXT REFERENCES review_assignments (id),
    replaced_by_id  TEXT REFERENCES review_assignments (id),
    updated_at      TEXT NOT NULL,
    -- An expert sits on a panel of one round cycle at most once (also after leaving it).
    CONSTRAINT review_assignments_panel_key UNIQUE (instance_id, round_id, cycle, expert_id)
);
CREATE INDEX review_assignments_expert_idx ON review_assignments (expert_id, state);

-- The lifecycle of each assignment, append-only.
CREATE TABLE review_events (
    assignment_id  TEXT NOT NULL REFERENCES review_assignments (id),
    seq            INTEGER NOT NULL,
    at             TEXT NOT NULL,
    actor_kind     TEXT NOT NULL,
    actor_id       TEXT,
    action         TEXT NOT NULL,
    from_state     TEXT NOT NULL,
    to_state       TEXT NOT NULL,
    reason         TEXT,
    PRIMARY KEY (assignment_id, seq)
);
CREATE TRIGGER review_events_no_update BEFORE UPDATE ON review_events
BEGIN
    SELECT RAISE(ABORT, 'review events are append-only');
END;
CREATE TRIGGER review_events_no_delete BEFORE DELETE ON review_events
BEGIN
    SELECT RAISE(ABORT, 'review events are append-only');
END;

-- Every submitted version, sealed: the scores never change; a manager's reopening is
-- recorded on the version it reopens.
CREATE TABLE review_submissions (
    assignment_id  TEXT NOT NULL REFERENCES review_assignments (id),
    version        INTEGER NOT NULL,
    submitted_at   TEXT NOT NULL,
    card           TEXT NOT NULL,
    total          REAL NOT NULL,
    reopened_at    TEXT,
    reopened_by    TEXT,
    reopen_reason  TEXT,
    PRIMARY KEY (assignment_id, version)
);
CREATE TRIGGER review_submissions_sealed
BEFORE UPDATE OF assignment_id, version, submitted_at, card, total ON review_submissions
BEGIN
    SELECT RAISE(ABORT, 'submitted scores are sealed');
END;
CREATE TRIGGER review_submissions_reopened_once
BEFORE UPDATE OF reopened_at, reopened_by, reopen_reason ON review_submissions
WHEN OLD.reopened_at IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'submitted scores are sealed');
END;
CREATE TRIGGER review_submissions_no_delete BEFORE DELETE ON review_submissions
BEGIN
    SELECT RAISE(ABORT, 'submitted scores are sealed');
END;

CREATE TABLE review_justifications (
    assignment_id  TEXT NOT NULL,
    version        INTEGER NOT NULL,
    text           TEXT NOT NULL,
    written_at     TEXT NOT NULL,
    PRIMARY KEY (assignment_id, version),
    FOREIGN KEY (assignment_id, version) REFERENCES review_submissions (assignment_id, version)
);
