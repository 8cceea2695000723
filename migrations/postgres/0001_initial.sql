-- grantflow on PostgreSQL. Times are TIMESTAMPTZ (microseconds, as the history hashes).
-- JSON columns are `json`, not `jsonb`: `json` keeps the text exactly as written, so
-- numbers such as 1e16 or 75.0 come back as they went in on both backends.

CREATE TABLE organisations (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('province', 'city', 'unit')),
    parent_id   UUID REFERENCES organisations (id),
    created_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT organisations_name_key UNIQUE (name)
);
CREATE INDEX organisations_parent_idx ON organisations (parent_id);

CREATE TABLE users (
    id             UUID PRIMARY KEY,
    username       TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    email          TEXT NOT NULL,
    org_id         UUID REFERENCES organisations (id),
    password_hash  TEXT NOT NULL,
    lang           TEXT NOT NULL,
    notify_pref    TEXT NOT NULL DEFAULT 'immediate'
                   CHECK (notify_pref IN ('immediate', 'digest_only', 'none')),
    active         BOOLEAN NOT NULL DEFAULT TRUE,
    created_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username)
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_org_idx ON users (org_id);

CREATE TABLE user_roles (
    user_id  UUID NOT NULL REFERENCES users (id),
    role     TEXT NOT NULL
             CHECK (role IN ('admin', 'manager', 'city', 'applicant', 'expert', 'auditor')),
    PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_role_idx ON user_roles (role, user_id);

-- Bearer tokens: only the SHA-256 of the secret is kept.
CREATE TABLE tokens (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id),
    token_hash  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT,
    scopes      JSON NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ,
    CONSTRAINT tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX tokens_user_idx ON tokens (user_id);

CREATE TABLE password_reset_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id),
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id);

CREATE TABLE workflow_definitions (
    workflow_id  TEXT NOT NULL,
    version      BIGINT NOT NULL,
    hash         TEXT NOT NULL,
    definition   JSON NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE instances (
    id                UUID PRIMARY KEY,
    workflow_id       TEXT NOT NULL,
    workflow_version  BIGINT NOT NULL,
    state             TEXT NOT NULL,
    stage             TEXT NOT NULL,
    is_final          BOOLEAN NOT NULL DEFAULT FALSE,
    data              JSON NOT NULL,
    version           BIGINT NOT NULL DEFAULT 0,
    parent_id         UUID REFERENCES instances (id),
    org_id            UUID NOT NULL REFERENCES organisations (id),
    city_id           UUID REFERENCES organisations (id),
    -- Byte order, as on SQLite, so that sorting and keyset pages agree across backends.
    title             TEXT COLLATE "C" NOT NULL,
    created_by        UUID NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    due_at            TIMESTAMPTZ,
    review            JSON NOT NULL DEFAULT 'null',
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

-- Append-only: the trigger below refuses edits and deletions.
CREATE TABLE history (
    instance_id  UUID NOT NULL REFERENCES instances (id),
    seq          BIGINT NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    actor_id     TEXT NOT NULL,
    actor_roles  JSON NOT NULL,
    event        TEXT NOT NULL,
    from_state   TEXT NOT NULL,
    to_state     TEXT NOT NULL,
    input        JSON NOT NULL,
    reason       TEXT,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
);
CREATE FUNCTION history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'history is append-only';
END
$$;
CREATE TRIGGER history_no_update BEFORE UPDATE OR DELETE ON history
    FOR EACH ROW EXECUTE FUNCTION history_append_only();

CREATE TABLE timers (
    id           UUID PRIMARY KEY,
    instance_id  UUID NOT NULL REFERENCES instances (id),
    state_entry  BIGINT NOT NULL,
    state        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    key          TEXT NOT NULL,
    fire_at      TIMESTAMPTZ NOT NULL,
    due_at       TIMESTAMPTZ,
    event        TEXT,
    notify       JSON NOT NULL,
    step_offset  TEXT,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'claimed', 'done', 'cancelled')),
    lease_until  TIMESTAMPTZ,
    claim_token  BIGINT NOT NULL DEFAULT 0,
    fired_at     TIMESTAMPTZ,
    CONSTRAINT timers_entry_key UNIQUE (instance_id, state_entry, key)
);
CREATE INDEX timers_claim_idx ON timers (status, fire_at);
CREATE INDEX timers_lease_idx ON timers (status, lease_until);

CREATE TABLE outbox (
    id                 UUID PRIMARY KEY,
    idempotency_key    TEXT NOT NULL,
    recipient_user_id  UUID,
    to_address         TEXT NOT NULL,
    to_name            TEXT NOT NULL,
    template           TEXT NOT NULL,
    lang               TEXT NOT NULL,
    context            JSON NOT NULL,
    instance_id        UUID,
    kind               TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    TIMESTAMPTZ NOT NULL,
    lease_until        TIMESTAMPTZ,
    claim_token        BIGINT NOT NULL DEFAULT 0,
    last_error         TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    sent_at            TIMESTAMPTZ,
    CONSTRAINT outbox_idempotency_key_key UNIQUE (idempotency_key)
);
CREATE INDEX outbox_claim_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_lease_idx ON outbox (status, lease_until);
CREATE INDEX outbox_instance_idx ON outbox (instance_id);

CREATE TABLE idempotency_keys (
    scoped_key    TEXT PRIMARY KEY,
    request_hash  TEXT NOT NULL,
    result        JSON NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE schedule_ticks (
    schedule  TEXT NOT NULL,
    tick_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (schedule, tick_at)
);

CREATE TABLE expert_assignments (
    instance_id  UUID NOT NULL REFERENCES instances (id),
    user_id      UUID NOT NULL REFERENCES users (id),
    PRIMARY KEY (instance_id, user_id)
);
CREATE INDEX expert_assignments_user_idx ON expert_assignments (user_id, instance_id);
