-- Issue 12 (h12b): a call's rules ([rules] of its TOML: rubric, pass mark, panel size,
-- aggregation, publicity days, stage limits, collaboration window, overshoot threshold),
-- stored with the call as JSON. NULL for calls opened before: they read as the defaults.
ALTER TABLE calls ADD COLUMN rules JSON;
