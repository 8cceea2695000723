//! A city returns the blank 需求征集表 with a few rows filled in (untouched rows): the
//! catalogue rows it left as printed are skipped, not demands and not errors, and the
//! untouched second row of a two-row item (blank name cell, the item's own direction and
//! applicant) does not fail the workbook under all-or-nothing.

use grantflow_programme::catalogue::Catalogue;
use grantflow_programme::demand::DemandOrigin;
use grantflow_programme::export::{Cell, form_template, write_xlsx};
use grantflow_programme::import::{ImportMode, ImportOptions, SkipReason, import_demands};

fn catalogue() -> Catalogue {
    Catalogue::from_toml_str(include_str!("../../../../workflows/calls/2022.toml")).unwrap()
}

/// The index in the template of the row whose name cell is `name` (or of the row after
/// it, for the blank name cell of a second row).
fn row_named(sheet: &grantflow_programme::export::Sheet, name: &str) -> usize {
    sheet
        .rows
        .iter()
        .position(|r| matches!(&r[2], Cell::Text(t) if t == name))
        .unwrap_or_else(|| panic!("no row {name}"))
}

#[test]
fn the_blank_form_imports_as_nothing_and_every_printed_row_is_skipped() {
    let catalogue = catalogue();
    let sheet = form_template(&catalogue);
    let items = catalogue.items().count();
    let report = import_demands(
        &write_xlsx(&[sheet]).unwrap(),
        &ImportOptions {
            catalogue: Some(&catalogue),
            mode: ImportMode::AllOrNothing,
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert!(report.is_clean(), "{:#?}", report.errors);
    assert!(report.importable.is_empty());
    let untouched = report
        .skipped
        .iter()
        .filter(|s| s.reason == SkipReason::Untouched)
        .count();
    assert_eq!(untouched, items, "one untouched row per catalogue item");
}

#[test]
fn only_the_rows_a_city_filled_in_become_demands_and_a_second_row_keeps_its_item() {
    let catalogue = catalogue();
    let mut sheet = form_template(&catalogue);
    // Takes up item 1 with a budget and targets.
    let first = row_named(&sheet, "1.粤港澳大湾区国际知识产权合作中心建设工程");
    sheet.rows[first][5] = Cell::Text("80万".into());
    sheet.rows[first][6] = Cell::Text("完成建设规划1份".into());
    // Takes up the second row of item 20 (its name cell is blank as printed).
    let twenty = row_named(&sheet, "20.知识产权海外纠纷应对指导");
    let second = twenty + 1;
    assert_eq!(sheet.rows[second][2], Cell::Empty);
    sheet.rows[second][5] = Cell::Text("30万".into());
    sheet.rows[second][6] = Cell::Text("建设地方分中心1个".into());
    let report = import_demands(
        &write_xlsx(&[sheet]).unwrap(),
        &ImportOptions {
            catalogue: Some(&catalogue),
            mode: ImportMode::AllOrNothing,
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert!(report.is_clean(), "{:#?}", report.errors);
    let demands: Vec<_> = report.importable.iter().map(|r| &r.demand).collect();
    assert_eq!(demands.len(), 2);
    assert_eq!(
        demands[0].origin,
        DemandOrigin::CatalogueItem {
            item_id: "2022-1-1-1".into()
        }
    );
    assert_eq!(demands[1].project_name, "知识产权海外纠纷应对指导");
    assert_eq!(
        demands[1].origin,
        DemandOrigin::CatalogueItem {
            item_id: "2022-3-1-20b".into()
        }
    );
    assert_eq!(demands[1].applicant, "各市局（不超过2家）");
}

#[test]
fn a_printed_row_with_a_comment_is_feedback_and_stays_a_row() {
    let catalogue = catalogue();
    let mut sheet = form_template(&catalogue);
    let row = row_named(&sheet, "17.电商领域知识产权保护");
    sheet.rows[row][7] = Cell::Text("建议将直播电商纳入保护范围".into());
    let report = import_demands(
        &write_xlsx(&[sheet]).unwrap(),
        &ImportOptions {
            catalogue: Some(&catalogue),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert!(report.is_clean(), "{:#?}", report.errors);
    assert_eq!(report.importable.len(), 1);
    assert_eq!(
        report.importable[0].demand.comments,
        "建议将直播电商纳入保护范围"
    );
}
