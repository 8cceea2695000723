-- Issue 12: organisations carry the kind that decides where their applications go
-- (province bureau, provincial organisation, protection centre or patent office agency,
-- city bureau, unit in a city, third-party institution); catalogue items name the kinds
-- that may apply; a call sets the correction window after a return past its closing date.
--
-- SQLite cannot change a CHECK constraint in place, and sqlx runs every SQLite migration
-- inside a transaction, where foreign keys cannot be switched off. So the table is
-- rebuilt with the foreign keys deferred: the rows are copied aside, the old table is
-- dropped (its referencing rows count as pending violations), the new table takes its
-- name, and the rows go back in (each re-inserted parent settles its referencing rows),
-- so that nothing is pending at the commit.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE organisations_h12a_rows AS
    SELECT id, name, kind, parent_id, created_at FROM organisations;
CREATE TABLE organisations_h12a (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('province', 'provincial', 'protection_centre',
                                             'city', 'unit', 'third_party')),
    parent_id   TEXT REFERENCES organisations (id),
    created_at  TEXT NOT NULL,
    CONSTRAINT organisations_name_key UNIQUE (name)
);
DROP TABLE organisations;
ALTER TABLE organisations_h12a RENAME TO organisations;
INSERT INTO organisations (id, name, kind, parent_id, created_at)
    SELECT id, name, kind, parent_id, created_at FROM organisations_h12a_rows;
DROP TABLE organisations_h12a_rows;
CREATE INDEX organisations_parent_idx ON organisations (parent_id);
-- The kinds that may apply for an item, comma-separated (`city,unit`); empty: any kind.
ALTER TABLE call_items ADD COLUMN eligible TEXT NOT NULL DEFAULT '';
-- Calendar days an applicant has to correct an application returned after closing.
ALTER TABLE calls ADD COLUMN correction_window_days INTEGER NOT NULL DEFAULT 5;
