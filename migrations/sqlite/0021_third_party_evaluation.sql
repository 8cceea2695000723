-- Issue 13 (third-party evaluation): the manager assigns a project's performance
-- evaluation to a third-party institution (organisation kind `third_party`); its
-- evaluators (role `third_party_evaluator`) see only the projects assigned to their
-- organisation and record an evaluation with the same scoring as the manager's.
--
-- SQLite cannot change a CHECK constraint in place: `user_roles` (referenced by nothing)
-- is rebuilt with the new role.
CREATE TABLE user_roles_h13 (
    user_id  TEXT NOT NULL REFERENCES users (id),
    role     TEXT NOT NULL
             CHECK (role IN ('admin', 'manager', 'city', 'applicant', 'expert', 'auditor',
                             'third_party_evaluator')),
    PRIMARY KEY (user_id, role)
);
INSERT INTO user_roles_h13 (user_id, role) SELECT user_id, role FROM user_roles;
DROP TABLE user_roles;
ALTER TABLE user_roles_h13 RENAME TO user_roles;
CREATE INDEX user_roles_role_idx ON user_roles (role, user_id);

-- The organisation a project's evaluation is assigned to (one at a time).
CREATE TABLE evaluation_assignments (
    instance_id  TEXT PRIMARY KEY NOT NULL REFERENCES instances (id),
    org_id       TEXT NOT NULL REFERENCES organisations (id),
    assigned_by  TEXT NOT NULL,
    assigned_at  TEXT NOT NULL
);
CREATE INDEX evaluation_assignments_org_idx ON evaluation_assignments (org_id);
-- Every assignment, in order (a reassignment keeps the earlier ones).
CREATE TABLE evaluation_assignment_history (
    id           TEXT PRIMARY KEY NOT NULL,
    instance_id  TEXT NOT NULL REFERENCES instances (id),
    org_id       TEXT NOT NULL,
    assigned_by  TEXT NOT NULL,
    assigned_at  TEXT NOT NULL
);
CREATE INDEX evaluation_assignment_history_idx ON evaluation_assignment_history (instance_id, assigned_at);
-- The third party's evaluation (the latest one per project), scored like the manager's.
CREATE TABLE third_party_evaluations (
    instance_id   TEXT PRIMARY KEY NOT NULL REFERENCES instances (id),
    org_id        TEXT NOT NULL,
    evaluator_id  TEXT NOT NULL,
    total         REAL NOT NULL,
    grade         TEXT NOT NULL,
    result        TEXT NOT NULL,
    evaluated_at  TEXT NOT NULL
);
