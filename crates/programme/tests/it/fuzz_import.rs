//! Fuzzing the 需求征集表 importer ("proptest at scale"): random bytes, random
//! bytes that start like a zip, real workbooks with flipped, inserted or cut bytes, real
//! workbooks whose XML parts are garbled and re-zipped (so that the XML parser, not the
//! zip checksum, meets them), and sheets of random cells with extreme references and
//! dimensions. No panic leaves the importer and every refusal has an `IMPORT_` code and
//! messages in both languages.
//!
//! calamine 0.31 indexes shared strings without a bounds check; the importer's scanner
//! refuses a cell naming a string beyond the `<si>` count first, but calamine drops some
//! garbled `<si>` elements the scanner counts. Such a panic is caught inside the importer
//! and answered as `IMPORT_NOT_A_WORKBOOK` (`ImportFailure::ReaderFailed`); the properties
//! on garbled bytes count and print those, the others allow none.
//!
//! Cases per property: `GRANTFLOW_FUZZ_CASES` (default 64, seconds in a debug build).
//! Each property prints how many cases it ran (`-- --nocapture`).

use crate::common;

use std::io::{Cursor, Read};

use common::{replace_part, sheet_xml, workbook_with_sheet};
use grantflow_domain::Lang;
use grantflow_programme::UserFacing;
use grantflow_programme::catalogue::Catalogue;
use grantflow_programme::import::{ImportFailure, ImportOptions, import_demands};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const FIXTURE: &[u8] = include_bytes!("../fixtures/demand_form_guangzhou.xlsx");

fn cases() -> u32 {
    std::env::var("GRANTFLOW_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn fuzz<S: Strategy>(
    name: &str,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let n = cases();
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, property)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    println!(
        "fuzz {name}: {n} cases, {} reader panics contained so far",
        CONTAINED.load(std::sync::atomic::Ordering::Relaxed)
    );
}

static CONTAINED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// [`check`], allowing a reader panic caught inside the importer (counted).
fn check_garbled(bytes: &[u8]) -> Result<(), TestCaseError> {
    match check(bytes) {
        Err(e) if e.to_string().contains("the reader panicked") => {
            CONTAINED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
        other => other,
    }
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let catalogue =
        Catalogue::from_toml_str(include_str!("../../../../workflows/calls/2022.toml")).unwrap();
    let options = ImportOptions {
        catalogue: Some(&catalogue),
        ..ImportOptions::default()
    };
    match import_demands(bytes, &options) {
        Ok(report) => {
            prop_assert!(report.errors.len() <= options.limits.max_errors);
            for e in &report.errors {
                prop_assert!(!e.message(Lang::ZhCn).is_empty());
            }
        }
        Err(e) => {
            prop_assert_ne!(&e, &ImportFailure::ReaderFailed, "the reader panicked");
            prop_assert!(e.code().starts_with("IMPORT_"), "{e:?}");
            prop_assert!(!e.message(Lang::ZhCn).is_empty() && !e.message(Lang::En).is_empty());
        }
    }
    Ok(())
}

/// The parts of the fixture, decompressed.
fn fixture_parts() -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(FIXTURE)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut entry = zip.by_index(i).unwrap();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (entry.name().to_string(), bytes)
        })
        .collect()
}

#[test]
fn the_fixture_imports() {
    check(FIXTURE).unwrap();
}

#[test]
fn random_bytes_are_refused_without_panicking() {
    fuzz(
        "random bytes",
        (any::<bool>(), prop::collection::vec(any::<u8>(), 0..2048)),
        |(zip_like, mut bytes)| {
            if zip_like {
                bytes.splice(0..0, *b"PK\x03\x04");
            }
            check(&bytes)
        },
    );
}

#[test]
fn a_real_workbook_with_flipped_inserted_or_cut_bytes() {
    let len = FIXTURE.len();
    fuzz(
        "mutated workbook bytes",
        (
            prop::collection::vec((0..len, any::<u8>()), 1..8),
            prop::option::of(0..len),
        ),
        |(flips, cut)| {
            let mut bytes = FIXTURE.to_vec();
            for (at, b) in flips {
                bytes[at] = b;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut);
            }
            check_garbled(&bytes)
        },
    );
}

#[test]
fn a_real_workbook_with_garbled_xml_parts() {
    let parts = fixture_parts();
    let garbage = prop_oneof![
        Just("<".to_string()),
        Just("</c>".to_string()),
        Just("<c r=\"A99999999999\">".to_string()),
        Just("<row r=\"4294967296\">".to_string()),
        Just("<dimension ref=\"XFD1048576:A1\"/>".to_string()),
        Just("<mergeCell ref=\"A1:A0\"/>".to_string()),
        Just("<v>1e400</v>".to_string()),
        Just("<f t=\"shared\" ref=\"A1:A99999999999\" si=\"0\">A1</f>".to_string()),
        Just("&#0;".to_string()),
        Just("<si><t>x</t></si>".to_string()),
        Just(" s=\"99999\"".to_string()),
        Just(" t=\"e\"".to_string()),
        Just(" t=\"d\"".to_string()),
        "\\PC{0,12}",
    ];
    let n = parts.len();
    fuzz(
        "garbled xml parts",
        (
            0..n,
            prop::collection::vec((any::<prop::sample::Index>(), garbage), 1..5),
            prop::option::of(any::<prop::sample::Index>()),
        ),
        |(which, inserts, cut)| {
            let (name, content) = &parts[which];
            let mut text = content.clone();
            for (at, g) in inserts {
                let at = at.index(text.len() + 1);
                text.splice(at..at, g.into_bytes());
            }
            if let Some(cut) = cut {
                text.truncate(cut.index(text.len() + 1));
            }
            check_garbled(&replace_part(FIXTURE, name, &text))
        },
    );
}

/// A cell reference: mostly plausible, sometimes beyond Excel's grid or malformed.
fn reference() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ("[A-H]", 1u32..40).prop_map(|(c, r)| format!("{c}{r}")),
        1 => ("[A-Z]{1,4}", 0u64..99_999_999_999).prop_map(|(c, r)| format!("{c}{r}")),
        1 => Just("XFD1048576".to_string()),
        1 => Just("A1048577".to_string()),
        1 => "[A-Za-z0-9$:]{0,8}",
    ]
}

fn cell() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "[一二三四五六七八、知识产权保护项目0-9.万元（可加行）注：]{0,16}",
        any::<f64>().prop_map(|f| f.to_string()),
        Just("#REF!".to_string()),
    ];
    (prop::option::of(reference()), value, 0..4u8).prop_map(|(r, v, kind)| {
        let r_attr = r.map(|r| format!(r#" r="{r}""#)).unwrap_or_default();
        match kind {
            0 => format!(r#"<c{r_attr} t="inlineStr"><is><t>{v}</t></is></c>"#),
            1 => format!(r#"<c{r_attr}><v>{v}</v></c>"#),
            2 => format!(r#"<c{r_attr} t="e"><v>{v}</v></c>"#),
            _ => format!(r#"<c{r_attr} t="s"><v>{}</v></c>"#, v.len()),
        }
    })
}

#[test]
fn sheets_of_random_cells_with_extreme_references() {
    let row = (
        prop::option::of(prop_oneof![
            1u64..60,
            Just(1_048_576u64),
            Just(4_294_967_297u64)
        ]),
        prop::collection::vec(cell(), 0..8),
    )
        .prop_map(|(r, cells)| {
            let r = r.map(|r| format!(r#" r="{r}""#)).unwrap_or_default();
            format!("<row{r}>{}</row>", cells.concat())
        });
    let header = format!(r#"<row r="1">{}</row>"#, common::header_cells());
    fuzz(
        "random sheets",
        (
            prop::option::of(
                reference().prop_flat_map(|a| reference().prop_map(move |b| format!("{a}:{b}"))),
            ),
            prop::collection::vec(row, 0..30),
            prop::collection::vec((reference(), reference()), 0..4),
        ),
        |(dimension, rows, merges)| {
            let merged = if merges.is_empty() {
                String::new()
            } else {
                let cells: String = merges
                    .iter()
                    .map(|(a, b)| format!(r#"<mergeCell ref="{a}:{b}"/>"#))
                    .collect();
                format!("<mergeCells>{cells}</mergeCells>")
            };
            let xml = sheet_xml(
                dimension.as_deref(),
                &format!("{header}{}", rows.concat()),
                &merged,
            );
            check(&workbook_with_sheet(&xml))
        },
    );
}
