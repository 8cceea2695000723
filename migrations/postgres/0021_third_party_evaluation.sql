-- Issue 13 (third-party evaluation): the manager assigns a project's performance
-- evaluation to a third-party institution (organisation kind `third_party`); its
-- evaluators (role `third_party_evaluator`) see only the projects assigned to their
-- organisation and record an evaluation with the same scoring as the manager's.
ALTER TABLE user_roles DROP CONSTRAINT user_roles_role_check;
ALTER TABLE user_roles ADD CONSTRAINT user_roles_role_check
    CHECK (role IN ('admin', 'manager', 'city', 'applicant', 'expert', 'auditor',
                    'third_party_evaluator'));

-- The organisation a project's evaluation is assigned to (one at a time).
CREATE TABLE evaluation_assignments (
    instance_id  UUID PRIMARY KEY REFERENCES instances (id),
    org_id       UUID NOT NULL REFERENCES organisations (id),
    assigned_by  UUID NOT NULL,
    assigned_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX evaluation_assignments_org_idx ON evaluation_assignments (org_id);
-- Every assignment, in order (a reassignment keeps the earlier ones).
CREATE TABLE evaluation_assignment_history (
    id           UUID PRIMARY KEY,
    instance_id  UUID NOT NULL REFERENCES instances (id),
    org_id       UUID NOT NULL,
    assigned_by  UUID NOT NULL,
    assigned_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX evaluation_assignment_history_idx ON evaluation_assignment_history (instance_id, assigned_at);
-- The third party's evaluation (the latest one per project), scored like the manager's.
CREATE TABLE third_party_evaluations (
    instance_id   UUID PRIMARY KEY REFERENCES instances (id),
    org_id        UUID NOT NULL,
    evaluator_id  UUID NOT NULL,
    total         DOUBLE PRECISION NOT NULL,
    grade         TEXT NOT NULL,
    result        JSON NOT NULL,
    evaluated_at  TIMESTAMPTZ NOT NULL
);
