-- Issue 12: organisations carry the kind that decides where their applications go
-- (province bureau, provincial organisation, protection centre or patent office agency,
-- city bureau, unit in a city, third-party institution); catalogue items name the kinds
-- that may apply; a call sets the correction window after a return past its closing date.
ALTER TABLE organisations DROP CONSTRAINT organisations_kind_check;
ALTER TABLE organisations ADD CONSTRAINT organisations_kind_check
    CHECK (kind IN ('province', 'provincial', 'protection_centre', 'city', 'unit', 'third_party'));
-- The kinds that may apply for an item, comma-separated (`city,unit`); empty: any kind.
ALTER TABLE call_items ADD COLUMN eligible TEXT NOT NULL DEFAULT '';
-- Calendar days an applicant has to correct an application returned after closing.
ALTER TABLE calls ADD COLUMN correction_window_days INTEGER NOT NULL DEFAULT 5;
