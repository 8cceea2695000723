//! Hostile workbooks are refused with a client error before anything large is allocated
//! (workbook caps): a sheet spanning A1..XFD1048576, cell references beyond
//! Excel's grid, zip bombs (honest and lying about their size), and 100 000 bad rows.

use crate::common;

use common::{
    SHEET, bad_rows, base_workbook, declare_size, header_cells, inline_cell, sheet_xml,
    whole_grid_sheet, with_extra_parts, workbook_with_sheet,
};
use grantflow_domain::Lang;
use grantflow_programme::UserFacing;
use grantflow_programme::cancel::Cancel;
use grantflow_programme::catalogue::Catalogue;
use grantflow_programme::import::{
    ImportFailure, ImportLimits, ImportMode, ImportOptions, LimitExceeded, import_demands,
};

fn catalogue() -> Catalogue {
    Catalogue::from_toml_str(include_str!("../../../../workflows/calls/2022.toml")).unwrap()
}

fn fail(bytes: &[u8]) -> ImportFailure {
    import_demands(bytes, &ImportOptions::default()).unwrap_err()
}

#[test]
fn a_sheet_from_a1_to_xfd1048576_is_refused_without_allocating_the_grid() {
    let xml = whole_grid_sheet();
    let e = fail(&workbook_with_sheet(&xml));
    assert_eq!(e.code(), "IMPORT_TOO_MANY_ROWS");
    assert_eq!(
        e.message(Lang::ZhCn),
        "工作表超过 10000 行（第 1048576 行仍有内容），请删除多余的行或拆分文件"
    );
    assert!(e.message(Lang::En).contains("beyond 10000 rows"));
}

#[test]
fn a_far_right_cell_within_the_row_cap_is_read_sparsely() {
    // The header in row 1, one good row, and a stray value in XFD3: calamine's dense range
    // would be 3 × 16 384 cells; the importer keeps the four it was given.
    let row2 = [
        ("A2", "三、强化知识产权保护"),
        ("B2", "强化知识产权保护"),
        ("C2", "海外展会维权援助"),
        ("D2", "为参展企业提供维权援助"),
        ("E2", "广州市知识产权保护中心"),
        ("F2", "200000"),
        ("G2", "服务企业50家"),
    ]
    .iter()
    .map(|(r, t)| inline_cell(r, t))
    .collect::<String>();
    let xml = sheet_xml(
        Some("A1:XFD3"),
        &format!(
            r#"<row r="1">{}</row><row r="2">{row2}</row><row r="3">{}</row>"#,
            header_cells(),
            inline_cell("XFD3", "注：以上为全部需求")
        ),
        "",
    );
    let catalogue = catalogue();
    let report = import_demands(
        &workbook_with_sheet(&xml),
        &ImportOptions {
            catalogue: Some(&catalogue),
            // The header is a bare 经费预算: the unit comes with the import.
            default_unit: Some(grantflow_programme::import::BudgetUnit::Yuan),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert!(report.is_clean(), "{:#?}", report.errors);
    assert_eq!(report.importable.len(), 1);
    assert_eq!(report.skipped.len(), 1, "the note in XFD3");
}

#[test]
fn cell_references_beyond_excel_s_grid_are_client_errors() {
    for (what, xml) in [
        (
            "cell",
            sheet_xml(
                None,
                &format!("<row>{}</row>", inline_cell("A99999999999", "x")),
                "",
            ),
        ),
        (
            "column",
            sheet_xml(
                None,
                &format!("<row>{}</row>", inline_cell("XFE1", "x")),
                "",
            ),
        ),
        (
            "row",
            sheet_xml(None, r#"<row r="99999999999"><c><v>1</v></c></row>"#, ""),
        ),
        ("dimension", sheet_xml(Some("A1:A99999999999"), "", "")),
        ("reversed dimension", sheet_xml(Some("B2:A1"), "", "")),
        (
            "merged region",
            sheet_xml(
                None,
                "",
                r#"<mergeCells count="1"><mergeCell ref="A1:B4294967296"/></mergeCells>"#,
            ),
        ),
    ] {
        let e = fail(&workbook_with_sheet(&xml));
        assert_eq!(e.code(), "IMPORT_BAD_CELL_REFERENCE", "{what}: {e:?}");
        assert!(e.message(Lang::ZhCn).contains("单元格引用"), "{what}");
    }
}

#[test]
fn a_zip_bomb_is_refused_by_its_declared_size_and_by_the_bytes_it_inflates_to() {
    let limits = ImportLimits {
        max_decompressed_bytes: 1024 * 1024,
        ..ImportLimits::default()
    };
    // 4 MiB of spaces inside the sheet deflate to a few kilobytes.
    let padding = " ".repeat(4 * 1024 * 1024);
    let xml = sheet_xml(None, "", &padding);
    let honest = workbook_with_sheet(&xml);
    assert!(honest.len() < 64 * 1024, "{} bytes", honest.len());
    let options = ImportOptions {
        limits,
        ..ImportOptions::default()
    };
    let e = import_demands(&honest, &options).unwrap_err();
    assert_eq!(
        e,
        ImportFailure::LimitExceeded(LimitExceeded::DecompressedBytes { max: 1024 * 1024 })
    );
    assert_eq!(e.code(), "IMPORT_TOO_LARGE");
    assert_eq!(e.message(Lang::ZhCn), "文件解压后超过 1 MB，请拆分后上传");

    // The same bomb claiming to be 100 bytes: refused once it inflates past the budget.
    let mut liar = honest;
    declare_size(&mut liar, SHEET, 100);
    let e = import_demands(&liar, &options).unwrap_err();
    assert_eq!(e.code(), "IMPORT_TOO_LARGE", "{e:?}");
}

#[test]
fn the_default_caps_are_the_documented_numbers() {
    let l = ImportLimits::default();
    assert_eq!(l.max_zip_entries, 256);
    assert_eq!(l.max_decompressed_bytes, 64 * 1024 * 1024);
    assert_eq!(l.max_rows, 10_000);
    assert_eq!(l.max_cells, 200_000);
    assert_eq!(l.max_merged_regions, 10_000);
    assert_eq!(l.max_errors, 1_000);
}

#[test]
fn too_many_zip_parts_are_refused() {
    let bytes = with_extra_parts(&base_workbook(), 300);
    assert_eq!(fail(&bytes).code(), "IMPORT_TOO_MANY_PARTS");
}

#[test]
fn a_hundred_thousand_bad_rows_are_refused_by_the_row_cap_with_one_error() {
    let bytes = workbook_with_sheet(&sheet_xml(None, &bad_rows(100_000), ""));
    let e = fail(&bytes);
    assert_eq!(e.code(), "IMPORT_TOO_MANY_ROWS");
    assert!(e.message(Lang::En).len() < 200);
}

#[test]
fn below_the_row_cap_the_error_list_is_capped_and_the_total_counted() {
    let bytes = workbook_with_sheet(&sheet_xml(None, &bad_rows(3_000), ""));
    let catalogue = catalogue();
    let report = import_demands(
        &bytes,
        &ImportOptions {
            catalogue: Some(&catalogue),
            mode: ImportMode::AllOrNothing,
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.errors.len(), 1_000);
    assert_eq!(report.error_count, 6_000, "two errors per row");
    assert!(report.errors_truncated());
    assert_eq!(report.rejected_rows.len(), 3_000);
    assert!(report.importable.is_empty());
}

#[test]
fn too_many_cells_are_refused() {
    let limits = ImportLimits {
        max_cells: 100,
        ..ImportLimits::default()
    };
    let bytes = workbook_with_sheet(&sheet_xml(None, &bad_rows(50), ""));
    let e = import_demands(
        &bytes,
        &ImportOptions {
            limits,
            ..ImportOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "IMPORT_TOO_MANY_CELLS");
}

#[test]
fn a_cancelled_import_stops_with_its_own_code() {
    let cancel = Cancel::new();
    cancel.cancel();
    let bytes = workbook_with_sheet(&sheet_xml(None, &bad_rows(10), ""));
    let e = import_demands(
        &bytes,
        &ImportOptions {
            cancel,
            ..ImportOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e, ImportFailure::Cancelled);
    assert_eq!(e.code(), "IMPORT_CANCELLED");
}
