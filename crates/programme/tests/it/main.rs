//! The integration tests of `grantflow-programme`, one binary (`cargo test -p grantflow-programme --test it`)
//! with a module per topic.

mod common;

mod budget_rules;
mod catalogue_2022;
mod duplicates;
mod evaluation_scoring;
mod export_formats;
mod fuzz_import;
mod properties;
mod untouched_rows;
mod workbook_caps;
mod xlsx_import;
