-- no-transaction
-- Issue 12: organisations carry the kind that decides where their applications go
-- (province bureau, provincial organisation, protection centre or patent office agency,
-- city bureau, unit in a city, third-party institution); catalogue items name the kinds
-- that may apply; a call sets the correction window after a return past its closing date.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt the way the
-- SQLite manual prescribes (foreign keys off, one transaction, foreign_key_check, on again).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE organisations_h12a (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('province', 'provincial', 'protection_centre',
                                             'city', 'unit', 'third_party')),
    parent_id   TEXT REFERENCES organisations (id),
    created_at  TEXT NOT NULL,
    CONSTRAINT organisations_name_key UNIQUE (name)
);
INSERT INTO organisations_h12a (id, name, kind, parent_id, created_at)
    SELECT id, name, kind, parent_id, created_at FROM organisations;
DROP TABLE organisations;
ALTER TABLE organisations_h12a RENAME TO organisations;
CREATE INDEX organisations_parent_idx ON organisations (parent_id);
-- The kinds that may apply for an item, comma-separated (`city,unit`); empty: any kind.
ALTER TABLE call_items ADD COLUMN eligible TEXT NOT NULL DEFAULT '';
-- Calendar days an applicant has to correct an application returned after closing.
ALTER TABLE calls ADD COLUMN correction_window_days INTEGER NOT NULL DEFAULT 5;
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
