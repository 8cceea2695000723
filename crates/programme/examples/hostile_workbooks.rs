//! Writes the hostile workbooks (workbook caps) and times the importer on them, for the
//! figures in the notes:
//!
//! ```text
//! cargo run -p grantflow-programme --example hostile_workbooks -- write /tmp/hostile
//! /usr/bin/time -v cargo run -q -p grantflow-programme --example hostile_workbooks -- import /tmp/hostile/bomb.xlsx
//! ```

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::Instant;

use grantflow_programme::UserFacing;
use grantflow_programme::import::{ImportOptions, import_demands};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("write") => {
            let dir = std::path::Path::new(&args[2]);
            std::fs::create_dir_all(dir).unwrap();
            let files = [
                (
                    "whole_grid.xlsx",
                    common::workbook_with_sheet(&common::whole_grid_sheet()),
                ),
                (
                    "bad_rows_100k.xlsx",
                    common::workbook_with_sheet(&common::sheet_xml(
                        None,
                        &common::bad_rows(100_000),
                        "",
                    )),
                ),
                (
                    "bad_rows_9k.xlsx",
                    common::workbook_with_sheet(&common::sheet_xml(
                        None,
                        &common::bad_rows(9_000),
                        "",
                    )),
                ),
                (
                    "bomb.xlsx",
                    common::workbook_with_sheet(&common::sheet_xml(
                        None,
                        "",
                        &" ".repeat(256 * 1024 * 1024),
                    )),
                ),
            ];
            for (name, bytes) in files {
                std::fs::write(dir.join(name), &bytes).unwrap();
                println!("{name}: {} bytes", bytes.len());
            }
        }
        Some("import") => {
            let bytes = std::fs::read(&args[2]).unwrap();
            let started = Instant::now();
            let outcome = import_demands(&bytes, &ImportOptions::default());
            let elapsed = started.elapsed();
            match outcome {
                Ok(r) => println!(
                    "{}: {} bytes, {:?}, {} errors listed of {}",
                    args[2],
                    bytes.len(),
                    elapsed,
                    r.errors.len(),
                    r.error_count
                ),
                Err(e) => println!(
                    "{}: {} bytes, {:?}, {}",
                    args[2],
                    bytes.len(),
                    elapsed,
                    e.code()
                ),
            }
        }
        _ => eprintln!("usage: hostile_workbooks write DIR | import FILE"),
    }
}
