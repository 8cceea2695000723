-- grantflow on SQLite. Times are TEXT in one fixed format, `YYYY-MM-DDTHH:MM:SS.ffffffZ`
-- (UTC, microseconds), so that text order is time order and a history record read back
-- hashes exactly as it was sealed. UUIDs are hyphenated TEXT; JSON is TEXT.

CREATE TABLE organisations (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('province', 'city', 'unit')),
    parent_id   TEXT REFERENCES organisations (id),
    created_at  TEXT NOT NULL,
    CONSTRAINT organisations_name_key UNIQUE (name)
);
CREATE INDEX organisations_parent_idx ON organisations (parent_id);

CREATE TABLE users (
    id             TEXT PRIMARY KEY NOT NULL,
    username       TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    email          TEXT NOT NULL,
    org_id         TEXT REFERENCES organisations (id),
    password_hash  TEXT NOT NULL,
    lang           TEXT NOT NULL,
    notify_pref    TEXT NOT NULL DEFAULT 'immediate'
                   CHECK (notify_pref IN ('immediate', 'digest_only', 'none')),
    active         INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username)
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_org_idx ON users (org_id);

CREATE TABLE user_roles (
    user_id  TEXT NOT NULL REFERENCES users (id),
    role     TEXT NOT NULL
             CHECK (role IN ('admin', 'manager', 'city', 'applicant', 'expert', 'auditor')),
    PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_role_idx ON user_roles (role, user_id);

-- Bearer tokens: only the SHA-256 of the secret is kept.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    token_hash  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT,
    scopes      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT,
    CONSTRAINT tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX tokens_user_idx ON tokens (user_id);

CREATE TABLE password_reset_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id);

CREATE TABLE workflow_definitions (
    workflow_id  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    hash         TEXT NOT NULL,
    definition   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE instances (
    id                TEXT PRIMARY KEY NOT NULL,
    workflow_id       TEXT NOT NULL,
    workflow_version  INTEGER NOT NULL,
    state             TEXT NOT NULL,
    stage             TEXT NOT NULL,
    is_final          INTEGER NOT NULL DEFAULT 0,
    data              TEXT NOT NULL,
    version           INTEGER NOT NULL DEFAULT 0,
    parent_id         TEXT REFERENCES instances (id),
    org_id            TEXT NOT NULL REFERENCES organisations (id),
    city_id           TEXT REFERENCES organisations (id),
    title             TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    due_at            TEXT,
    review            TEXT NOT NULL DEFAULT 'null',
    last_hash         TEXT NOT NULL
);
CREATE INDEX instances_created_idx ON instances (created_at, id);
CREATE INDEX instances_updated_idx ON instances (updated_at, id);
CREATE INDEX instances_due_idx ON instances (due_at, id);
CREATE INDEX instances_title_idx ON instances (title, id);
CREATE INDEX instances_org_idx ON instances (org_id);
CREATE INDEX instances_city_idx ON instances (city_id);
CREATE INDEX instances_parent_idx ON instances (parent_id);
CREATE INDEX instances_workflow_state_idx ON instances (workflow_id, state);
CREATE INDEX instances_open_due_idx ON instances (is_final, due_at);

-- Append-only: the triggers below refuse edits and deletions.
CREATE TABLE history (
    instance_id  TEXT NOT NULL REFERENCES instances (id),
    seq          INTEGER NOT NULL,
    at           TEXT NOT NULL,
    actor_id     TEXT NOT NULL,
    actor_roles  TEXT NOT NULL,
    event        TEXT NOT NULL,
    from_state   TEXT NOT NULL,
    to_state     TEXT NOT NULL,
    input        TEXT NOT NULL,
    reason       TEXT,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
);
CREATE TRIGGER history_no_update BEFORE UPDATE ON history
BEGIN
    SELECT RAISE(ABORT, 'history is append-only');
END;
CREATE TRIGGER history_no_delete BEFORE DELETE ON history
BEGIN
    SELECT RAISE(ABORT, 'history is append-only');
END;

CREATE TABLE timers (
    id           TEXT PRIMARY KEY NOT NULL,
    instance_id  TEXT NOT NULL REFERENCES instances (id),
    state_entry  INTEGER NOT NULL,
    state        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    key          TEXT NOT NULL,
    fire_at      TEXT NOT NULL,
    due_at       TEXT,
    event        TEXT,
    notify       TEXT NOT NULL,
    step_offset  TEXT,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'claimed', 'done', 'cancelled')),
    lease_until  TEXT,
    claim_token  INTEGER NOT NULL DEFAULT 0,
    fired_at     TEXT,
    CONSTRAINT timers_entry_key UNIQUE (instance_id, state_entry, key)
);
CREATE INDEX timers_claim_idx ON timers (status, fire_at);
CREATE INDEX timers_lease_idx ON timers (status, lease_until);

CREATE TABLE outbox (
    id                 TEXT PRIMARY KEY NOT NULL,
    idempotency_key    TEXT NOT NULL,
    recipient_user_id  TEXT,
    to_address         TEXT NOT NULL,
    to_name            TEXT NOT NULL,
    template           TEXT NOT NULL,
    lang               TEXT NOT NULL,
    context            TEXT NOT NULL,
    instance_id        TEXT,
    kind               TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    TEXT NOT NULL,
    lease_until        TEXT,
    claim_token        INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    created_at         TEXT NOT NULL,
    sent_at            TEXT,
    CONSTRAINT outbox_idempotency_key_key UNIQUE (idempotency_key)
);
CREATE INDEX outbox_claim_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_lease_idx ON outbox (status, lease_until);
CREATE INDEX outbox_instance_idx ON outbox (instance_id);

CREATE TABLE idempotency_keys (
    scoped_key    TEXT PRIMARY KEY NOT NULL,
    request_hash  TEXT NOT NULL,
    result        TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE schedule_ticks (
    schedule  TEXT NOT NULL,
    tick_at   TEXT NOT NULL,
    PRIMARY KEY (schedule, tick_at)
);

CREATE TABLE expert_assignments (
    instance_id  TEXT NOT NULL REFERENCES instances (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    PRIMARY KEY (instance_id, user_id)
);
CREATE INDEX expert_assignments_user_idx ON expert_assignments (user_id, instance_id);
