-- Issue 13 (公示 in public): objections the public raises against a project under
-- publicity, without logging in, and the manager's resolution of each (upheld or
-- dismissed, with a reason). Every step is appended to `public_objection_history`.
CREATE TABLE public_objections (
    id            TEXT PRIMARY KEY NOT NULL,
    instance_id   TEXT NOT NULL REFERENCES instances (id),
    name          TEXT NOT NULL,
    contact       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    submitted_at  TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('open', 'upheld', 'dismissed')),
    resolution    TEXT,
    resolved_by   TEXT,
    resolved_at   TEXT
);
CREATE INDEX public_objections_instance_idx ON public_objections (instance_id, status);
CREATE INDEX public_objections_status_idx ON public_objections (status, submitted_at);
CREATE TABLE public_objection_history (
    id            TEXT PRIMARY KEY NOT NULL,
    objection_id  TEXT NOT NULL REFERENCES public_objections (id),
    action        TEXT NOT NULL CHECK (action IN ('submitted', 'upheld', 'dismissed')),
    reason        TEXT,
    actor_id      TEXT,
    at            TEXT NOT NULL
);
CREATE INDEX public_objection_history_idx ON public_objection_history (objection_id, at);
