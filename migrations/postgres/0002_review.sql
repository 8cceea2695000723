-- Expert review (issue 5): the expert pool, collaborations, applicants' exclusion requests,
-- assignments with their lifecycle events, sealed score submissions and outlier
-- justifications. JSON columns are `json` (kept as written), as elsewhere.
--
-- A round is not stored as a row: round (instance, round id, cycle) is open while the
-- instance is in the round's `opens_in` state and has not left it since it entered it at
-- version `cycle` (see the history). Leaving the state closes it.

CREATE TABLE expert_profiles (
    user_id       UUID PRIMARY KEY REFERENCES users (id),
    categories    JSON NOT NULL,
    keywords      JSON NOT NULL,
    workload_cap  BIGINT NOT NULL CHECK (workload_cap >= 0),
    status        TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'retired')),
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE expert_collaborations (
    id          UUID PRIMARY KEY,
    expert_id   UUID NOT NULL REFERENCES users (id),
    org_id      UUID NOT NULL REFERENCES organisations (id),
    until       DATE NOT NULL,
    note        TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT expert_collaborations_key UNIQUE (expert_id, org_id, until)
);
CREATE INDEX expert_collaborations_org_idx ON expert_collaborations (org_id);

-- Organisations an applicant asked to exclude (申请回避单位).
CREATE TABLE review_exclusions (
    instance_id   UUID NOT NULL REFERENCES instances (id),
    org_id        UUID NOT NULL REFERENCES organisations (id),
    requested_by  UUID NOT NULL,
    requested_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (instance_id, org_id)
);

CREATE TABLE review_assignments (
    id              UUID PRIMARY KEY,
    instance_id     UUID NOT NULL REFERENCES instances (id),
    round_id        TEXT NOT NULL,
    opens_in        TEXT NOT NULL,
    cycle           BIGINT NOT NULL,
    expert_id       UUID NOT NULL REFERENCES users (id),
    state           TEXT NOT NULL CHECK (state IN ('assigned', 'accepted', 'declined',
                        'conflict_declared', 'submitted', 'reopened', 'overdue', 'replaced')),
    revision        BIGINT NOT NULL DEFAULT 0,
    seed            TEXT,
    algorithm       TEXT,
    assigned_by     TEXT NOT NULL,
    assigned_at     TIMESTAMPTZ NOT NULL,
    due_at          TIMESTAMPTZ,
    replaces_id     UUID REFERENCES review_assignments (id),
    replaced_by_id  UUID REFERENCES review_assignments (id),
    updated_at      TIMESTAMPTZ NOT NULL,
    -- An expert sits on a panel of one round cycle at most once (also after leaving it).
    CONSTRAINT review_assignments_panel_key UNIQUE (instance_id, round_id, cycle, expert_id)
);
CREATE INDEX review_assignments_expert_idx ON review_assignments (expert_id, state);

-- The lifecycle of each assignment, append-only.
CREATE TABLE review_events (
    assignment_id  UUID NOT NULL REFERENCES review_assignments (id),
    seq            BIGINT NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    actor_kind     TEXT NOT NULL,
    actor_id       TEXT,
    action         TEXT NOT NULL,
    from_state     TEXT NOT NULL,
    to_state       TEXT NOT NULL,
    reason         TEXT,
    PRIMARY KEY (assignment_id, seq)
);
CREATE FUNCTION review_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'review events are append-only';
END
$$;
CREATE TRIGGER review_events_no_update BEFORE UPDATE OR DELETE ON review_events
    FOR EACH ROW EXECUTE FUNCTION review_events_append_only();

-- Every submitted version, sealed: the scores never change; a manager's reopening is
-- recorded on the version it reopens.
CREATE TABLE review_submissions (
    assignment_id  UUID NOT NULL REFERENCES review_assignments (id),
    version        BIGINT NOT NULL,
    submitted_at   TIMESTAMPTZ NOT NULL,
    card           JSON NOT NULL,
    total          DOUBLE PRECISION NOT NULL,
    reopened_at    TIMESTAMPTZ,
    reopened_by    TEXT,
    reopen_reason  TEXT,
    PRIMARY KEY (assignment_id, version)
);
CREATE FUNCTION review_submissions_sealed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       OR NEW.assignment_id IS DISTINCT FROM OLD.assignment_id
       OR NEW.version IS DISTINCT FROM OLD.version
       OR NEW.submitted_at IS DISTINCT FROM OLD.submitted_at
       OR NEW.card::text IS DISTINCT FROM OLD.card::text
       OR NEW.total IS DISTINCT FROM OLD.total
       OR OLD.reopened_at IS NOT NULL THEN
        RAISE EXCEPTION 'submitted scores are sealed';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER review_submissions_sealed BEFORE UPDATE OR DELETE ON review_submissions
    FOR EACH ROW EXECUTE FUNCTION review_submissions_sealed();

CREATE TABLE review_justifications (
    assignment_id  UUID NOT NULL,
    version        BIGINT NOT NULL,
    text           TEXT NOT NULL,
    written_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (assignment_id, version),
    FOREIGN KEY (assignment_id, version) REFERENCES review_submissions (assignment_id, version)
);
