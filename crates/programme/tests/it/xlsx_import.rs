//! Importing filled-in 需求征集表 workbooks: merged cells, title and 填报单位 rows, blank
//! and placeholder rows, notes, and rows with errors in both modes.

use grantflow_domain::{Lang, Money};
use grantflow_programme::UserFacing;
use grantflow_programme::catalogue::{Catalogue, Category};
use grantflow_programme::demand::DemandOrigin;
use grantflow_programme::import::{
    BudgetUnit, CellProblem, ImportMode, ImportOptions, ImportReport, SkipReason, import_demands,
};
use rust_xlsxwriter::{Format, Workbook, Worksheet};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/demand_form_guangzhou.xlsx"
);

fn catalogue() -> Catalogue {
    Catalogue::from_toml_str(include_str!("../../../../workflows/calls/2022.toml")).unwrap()
}

fn yuan(y: i64) -> Money {
    Money::from_yuan(y).unwrap()
}

fn write(ws: &mut Worksheet, row: u32, col: u16, text: &str) {
    ws.write_string(row, col, text).unwrap();
}

/// A realistic form as a city bureau returns it (rows are 0-based here, 1-based in
/// comments and in the importer's output):
///
/// 1 title, merged A1:H1 · 2 填报单位, merged A2:H2 · 3–4 headers, each merged over two rows,
/// with line breaks, budget in 万元 · 5–9 category 一 merged down A5:A9, policy areas B5:B6
/// and B7:B8 · 6 and 12 placeholders · 9, 13 and 15 blank · 10–12 category 三 merged down
/// A and B · 14 category 八 merged across A14:B14 · 16 a note.
fn realistic_form() -> Vec<u8> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("需求征集表").unwrap();
    let f = Format::new().set_text_wrap();
    ws.merge_range(0, 0, 0, 7, "2022年广东省强化知识产权工作项目需求征集表", &f)
        .unwrap();
    ws.merge_range(1, 0, 1, 7, "填报单位：广州市市场监督管理局", &f)
        .unwrap();
    let headers = [
        "大类",
        "重点政策或工作",
        "项目名称",
        "项目方向",
        "申报（工作）\n主体",
        "经费预算\n（万元）",
        "项目 绩效",
        "意见\n建议",
    ];
    for (c, h) in headers.iter().enumerate() {
        let c = c as u16;
        ws.merge_range(2, c, 3, c, h, &f).unwrap();
    }
    // Category 一, rows 5–9.
    ws.merge_range(4, 0, 8, 0, "一、知识产权“放管服”改革和区域布局", &f)
        .unwrap();
    ws.merge_range(4, 1, 5, 1, "粤港澳大湾区知识产权推进", &f)
        .unwrap();
    write(ws, 4, 2, "1.粤港澳大湾区国际知识产权合作中心建设工程");
    ws.write_number(4, 5, 80).unwrap();
    write(ws, 4, 6, "完成建设规划1份；举办合作交流活动3场");
    write(ws, 4, 7, "建议增加港澳高校参与");
    write(ws, 5, 2, "（可加行）");
    ws.merge_range(
        6,
        1,
        7,
        1,
        "知识产权综合改革试验和自贸试验区知识产权工作",
        &f,
    )
    .unwrap();
    write(ws, 6, 2, "2.中新广州知识城知识产权综合改革试验工作");
    write(ws, 6, 4, "广州市黄埔区市场监督管理局");
    write(ws, 6, 5, "50.5万");
    write(ws, 6, 6, "形成可复制推广经验做法2项");
    write(ws, 7, 2, "南沙自贸区知识产权纠纷快速处理机制建设");
    write(
        ws,
        7,
        3,
        "建立自贸区知识产权纠纷快速处理机制，设立调解工作站",
    );
    write(ws, 7, 4, "广州市南沙区市场监督管理局");
    ws.write_number(7, 5, 30).unwrap();
    write(ws, 7, 6, "设立调解工作站2个，调解纠纷50件");
    // Row 9 blank (still inside the merged category).
    // Category 三, rows 10–12.
    ws.merge_range(9, 0, 11, 0, "三、强化知识产权保护", &f)
        .unwrap();
    ws.merge_range(9, 1, 11, 1, "强化知识产权保护", &f).unwrap();
    write(ws, 9, 2, "17.电商领域知识产权保护");
    write(ws, 9, 7, "建议将直播电商纳入保护范围");
    write(ws, 10, 2, "20.知识产权海外纠纷应对指导");
    write(
        ws,
        10,
        3,
        "支持申报建设国家海外知识产权海外应对指导地方分中心，对照分中心建设标准，先行开展相关工作。",
    );
    write(ws, 10, 4, "广州市市场监督管理局");
    write(ws, 10, 5, "120000元");
    write(ws, 10, 6, "开展海外纠纷应对指导，服务企业100家");
    write(ws, 11, 2, "30.（可加行）");
    // Category 六 with only its empty numbered row.
    write(ws, 12, 0, "六、知识产权战略规划、软课题研究");
    write(ws, 12, 2, "1.");
    // Category 八 merged across the (empty) policy-area column.
    ws.merge_range(13, 0, 13, 1, "八、知识产权文化传播", &f)
        .unwrap();
    write(ws, 13, 2, "知识产权进校园系列宣传活动");
    write(ws, 13, 3, "面向中小学开展知识产权宣传教育");
    write(ws, 13, 4, "广州市知识产权保护中心");
    ws.write_number(13, 5, 20).unwrap();
    write(ws, 13, 6, "举办宣传活动10场，覆盖学生5000人次");
    // Row 15 blank, row 16 a note.
    write(ws, 15, 0, "注：经费预算以万元为单位。");
    wb.save_to_buffer().unwrap()
}

fn import(bytes: &[u8], mode: ImportMode) -> ImportReport {
    import_in(bytes, mode, Some(BudgetUnit::Yuan))
}

/// `amount_unit`: the import's unit of bare numbers under a header that does not say.
fn import_in(bytes: &[u8], mode: ImportMode, amount_unit: Option<BudgetUnit>) -> ImportReport {
    let catalogue = catalogue();
    let options = ImportOptions {
        mode,
        catalogue: Some(&catalogue),
        file_name: "广州市.xlsx".into(),
        default_unit: amount_unit,
        ..ImportOptions::default()
    };
    import_demands(bytes, &options).unwrap()
}

fn check_realistic_report(report: &ImportReport) {
    assert!(report.is_clean(), "{:#?}", report.errors);
    assert_eq!(report.sheet, "需求征集表");
    assert_eq!(report.header_row, 3);
    assert_eq!(report.submitter.as_deref(), Some("广州市市场监督管理局"));
    assert_eq!(report.budget_unit, Some(BudgetUnit::TenThousandYuan));
    let skipped: Vec<(u32, SkipReason)> =
        report.skipped.iter().map(|s| (s.row, s.reason)).collect();
    assert_eq!(
        skipped,
        [
            (6, SkipReason::Placeholder),
            (9, SkipReason::Blank),
            (12, SkipReason::Placeholder),
            (13, SkipReason::Blank),
            (15, SkipReason::Blank),
            (16, SkipReason::Note),
        ]
    );
    let rows: Vec<u32> = report.importable.iter().map(|r| r.row).collect();
    assert_eq!(rows, [5, 7, 8, 10, 11, 14]);
    let d = |row: u32| {
        &report
            .importable
            .iter()
            .find(|r| r.row == row)
            .unwrap()
            .demand
    };

    // Row 5: catalogue item 一.1, blank direction and applicant taken from the catalogue.
    let first = d(5);
    assert_eq!(first.category, Category::ReformAndLayout);
    assert_eq!(first.policy_area, "粤港澳大湾区知识产权推进");
    assert_eq!(
        first.origin,
        DemandOrigin::CatalogueItem {
            item_id: "2022-1-1-1".into()
        }
    );
    assert_eq!(
        first.project_name,
        "粤港澳大湾区国际知识产权合作中心建设工程"
    );
    assert!(
        first
            .direction
            .starts_with("制定粤港澳大湾区国际知识产权合作中心建设规划")
    );
    assert_eq!(first.budget, Some(yuan(800_000)), "80 万元");
    assert_eq!(first.submitter, "广州市市场监督管理局");
    assert_eq!(first.comments, "建议增加港澳高校参与");
    let source = first.source.as_ref().unwrap();
    assert_eq!((source.file.as_str(), source.row), ("广州市.xlsx", 5));

    // Row 7: "50.5万" as text is 505 000 yuan.
    assert_eq!(d(7).budget, Some(yuan(505_000)));
    assert_eq!(d(7).applicant, "广州市黄埔区市场监督管理局");

    // Row 8: an added row; category and policy area come from the merged cells above.
    let added = d(8);
    assert_eq!(added.origin, DemandOrigin::AddedRow);
    assert_eq!(added.category, Category::ReformAndLayout);
    assert_eq!(
        added.policy_area,
        "知识产权综合改革试验和自贸试验区知识产权工作"
    );
    assert_eq!(added.budget, Some(yuan(300_000)));

    // Row 10: comments only on catalogue item 三.17.
    assert_eq!(
        d(10).origin,
        DemandOrigin::CatalogueItem {
            item_id: "2022-3-1-17".into()
        }
    );
    assert_eq!(d(10).budget, None);
    assert_eq!(d(10).comments, "建议将直播电商纳入保护范围");

    // Row 11: item 20 has two catalogue rows; the direction picks the second.
    assert_eq!(
        d(11).origin,
        DemandOrigin::CatalogueItem {
            item_id: "2022-3-1-20b".into()
        }
    );
    assert_eq!(
        d(11).budget,
        Some(yuan(120_000)),
        "\"120000元\" overrides the 万元 column"
    );

    // Row 14: a category merged across A:B does not spill into the policy area.
    assert_eq!(d(14).category, Category::CultureAndCommunication);
    assert_eq!(d(14).policy_area, "");
    assert_eq!(d(14).budget, Some(yuan(200_000)));
}

#[test]
fn a_realistic_form_with_merged_cells_is_imported() {
    let report = import(&realistic_form(), ImportMode::AllOrNothing);
    check_realistic_report(&report);
}

/// The committed fixture is the builder's output; regenerate it with
/// `GRANTFLOW_WRITE_FIXTURES=1 cargo test -p grantflow-programme --test it xlsx_import`.
#[test]
fn the_committed_fixture_file_imports_the_same() {
    if std::env::var_os("GRANTFLOW_WRITE_FIXTURES").is_some() {
        std::fs::write(FIXTURE, realistic_form()).unwrap();
    }
    let bytes = std::fs::read(FIXTURE).expect("committed fixture");
    let report = import(&bytes, ImportMode::AllOrNothing);
    check_realistic_report(&report);
    let fresh = import(&realistic_form(), ImportMode::AllOrNothing);
    assert_eq!(report.importable, fresh.importable);
}

/// Workbooks written by a real office suite (LibreOffice Calc 7.4; how each was made is in
/// `tests/fixtures/README.md`): its own shared strings, styles and merged-cell records,
/// and a budget that is a formula with its cached value. They import exactly like the
/// builder's workbook.
#[test]
fn workbooks_saved_by_libreoffice_import_the_same() {
    let fresh = import(&realistic_form(), ImportMode::AllOrNothing);
    for name in [
        "demand_form_guangzhou.libreoffice.xlsx",
        "demand_form_guangzhou_formula.libreoffice.xlsx",
    ] {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).expect("committed fixture");
        assert!(bytes.starts_with(b"PK"), "{name} is a zip");
        let report = import(&bytes, ImportMode::AllOrNothing);
        check_realistic_report(&report);
        assert_eq!(report.importable, fresh.importable, "{name}");
    }
}

/// A form with mistakes (budget in yuan, 填报单位 in its own cell, no title):
///
/// 1 填报单位 · 2 header · 3 good catalogue row · 4 "约12万" · 5 no applicant, performance
/// without a number · 6 placeholder left in place with a budget · 7 unknown category ·
/// 8 blank category outside any merged region · 9 good added row.
fn form_with_errors() -> Vec<u8> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    let f = Format::new();
    write(ws, 0, 0, "填报单位：");
    write(ws, 0, 1, "深圳市市场监督管理局");
    let headers = [
        "大类",
        "重点政策或工作",
        "项目名称",
        "项目方向",
        "申报主体",
        "经费\n预算",
        "项目绩效",
        "意见建议",
    ];
    for (c, h) in headers.iter().enumerate() {
        write(ws, 1, c as u16, h);
    }
    ws.merge_range(2, 0, 5, 0, "三、强化知识产权保护", &f)
        .unwrap();
    ws.merge_range(2, 1, 5, 1, "强化知识产权保护", &f).unwrap();
    write(ws, 2, 2, "14.重点展会知识产权保护");
    ws.write_number(2, 5, 300_000).unwrap();
    write(ws, 2, 6, "进驻重点展会10场");

    write(ws, 3, 2, "深圳跨境电商知识产权保护指引");
    write(ws, 3, 3, "编制跨境电商知识产权保护指引");
    write(ws, 3, 4, "深圳市市场监督管理局");
    write(ws, 3, 5, "约12万");
    write(ws, 3, 6, "发布指引1份");

    write(ws, 4, 2, "海外知识产权纠纷应对培训");
    write(ws, 4, 3, "面向出海企业开展纠纷应对培训");
    ws.write_number(4, 5, 80_000).unwrap();
    write(ws, 4, 6, "开展培训");

    write(ws, 5, 2, "（可加行）");
    ws.write_number(5, 5, 50_000).unwrap();

    write(ws, 6, 0, "九、其他");
    write(ws, 6, 2, "某项目");

    write(ws, 7, 2, "知识产权运营培训");
    write(ws, 7, 3, "培训运营人才");
    write(ws, 7, 4, "深圳市市场监督管理局");
    ws.write_number(7, 5, 10_000).unwrap();
    write(ws, 7, 6, "培训100人次");

    write(ws, 8, 0, "四、知识产权运用");
    write(ws, 8, 1, "知识产权金融创新和运营实施项目");
    write(ws, 8, 2, "知识产权质押融资宣讲会");
    write(ws, 8, 3, "面向中小企业宣讲质押融资政策");
    write(ws, 8, 4, "深圳市市场监督管理局");
    write(ws, 8, 5, "60000");
    write(ws, 8, 6, "举办宣讲会5场");
    wb.save_to_buffer().unwrap()
}

#[test]
fn bad_rows_are_named_by_row_column_and_header_and_block_everything_by_default() {
    let report = import(&form_with_errors(), ImportMode::AllOrNothing);
    assert_eq!(report.submitter.as_deref(), Some("深圳市市场监督管理局"));
    assert_eq!(report.budget_unit, Some(BudgetUnit::Yuan));
    assert_eq!(report.rejected_rows, [4, 5, 6, 7, 8]);
    assert_eq!(report.good_rows, 2);
    assert!(report.importable.is_empty(), "all or nothing");

    let messages: Vec<String> = report
        .errors
        .iter()
        .map(|e| e.message(Lang::ZhCn))
        .collect();
    assert_eq!(messages[0], "第4行 F列「经费预算」：\"约12万\" 不是金额");
    assert_eq!(report.errors[0].code(), "IMPORT_NOT_AN_AMOUNT");
    assert_eq!(
        report.errors[0].message(Lang::En),
        "row 4, column F (经费预算): \"约12万\" is not an amount"
    );
    let at = |row: u32| -> Vec<(Option<&str>, &str)> {
        report
            .errors
            .iter()
            .filter(|e| e.row == row)
            .map(|e| (e.column.as_deref(), e.code()))
            .collect()
    };
    assert_eq!(at(4), [(Some("F"), "IMPORT_NOT_AN_AMOUNT")]);
    assert_eq!(
        at(5),
        [
            (Some("E"), "DEMAND_FIELD_MISSING"),
            (Some("G"), "DEMAND_PERFORMANCE_NOT_QUANTIFIED")
        ]
    );
    assert!(messages.contains(&"第5行 E列「申报主体」：「申报（工作）主体」不能为空".to_string()));
    assert_eq!(at(6)[0], (Some("C"), "IMPORT_PLACEHOLDER_NOT_REPLACED"));
    assert_eq!(at(7), [(Some("A"), "IMPORT_UNKNOWN_CATEGORY")]);
    assert_eq!(at(8), [(Some("A"), "IMPORT_CATEGORY_MISSING")]);
    assert!(matches!(
        &report.errors.last().unwrap().problem,
        CellProblem::CategoryMissing
    ));
}

#[test]
fn good_rows_only_mode_imports_the_rows_without_errors() {
    let report = import(&form_with_errors(), ImportMode::GoodRowsOnly);
    let rows: Vec<u32> = report.importable.iter().map(|r| r.row).collect();
    assert_eq!(rows, [3, 9]);
    assert_eq!(report.rejected_rows, [4, 5, 6, 7, 8]);
    let exhibition = &report.importable[0].demand;
    assert_eq!(
        exhibition.origin,
        DemandOrigin::CatalogueItem {
            item_id: "2022-3-1-14".into()
        }
    );
    assert_eq!(exhibition.budget, Some(yuan(300_000)));
    assert_eq!(report.importable[1].demand.budget, Some(yuan(60_000)));
    assert_eq!(report.importable[1].demand.category, Category::Utilisation);
}

#[test]
fn files_that_are_not_the_form_fail_with_a_reason() {
    let options = ImportOptions::default();
    let not_xlsx = import_demands(b"PK but not a zip", &options).unwrap_err();
    assert_eq!(not_xlsx.code(), "IMPORT_NOT_A_WORKBOOK");

    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    write(ws, 0, 0, "项目清单");
    write(ws, 1, 0, "某项目");
    let no_header = import_demands(&wb.save_to_buffer().unwrap(), &options).unwrap_err();
    assert_eq!(no_header.code(), "IMPORT_HEADER_NOT_FOUND");

    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["大类", "重点政策或工作", "项目名称", "项目方向", "项目绩效"]
        .iter()
        .enumerate()
    {
        write(ws, 0, c as u16, h);
    }
    let no_budget = import_demands(&wb.save_to_buffer().unwrap(), &options).unwrap_err();
    assert_eq!(no_budget.code(), "IMPORT_COLUMN_MISSING");
    assert_eq!(no_budget.message(Lang::ZhCn), "表头缺少「经费预算」列");

    let missing_sheet = import_demands(
        &realistic_form(),
        &ImportOptions {
            sheet: Some("Sheet9".into()),
            ..ImportOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(missing_sheet.code(), "IMPORT_SHEET_MISSING");
}

#[test]
fn without_a_catalogue_every_row_is_an_added_row() {
    let report = import_demands(&realistic_form(), &ImportOptions::default()).unwrap();
    // Catalogue rows without direction or applicant now fail the added-row rules, so
    // nothing is importable, and the reasons say which cells to fill in.
    assert!(report.importable.is_empty());
    assert_eq!(report.rejected_rows, [5, 7, 10]);
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.row == 5 && e.column.as_deref() == Some("D"))
    );
}

/// One added row with `budget` (a number cell when it parses as one, else text) under
/// the budget header `header`.
fn one_row_form(header: &str, budget: &str) -> Vec<u8> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    let headers = [
        "大类",
        "重点政策或工作",
        "项目名称",
        "项目方向",
        "申报（工作）主体",
        header,
        "项目绩效",
        "意见建议",
    ];
    for (c, h) in headers.iter().enumerate() {
        write(ws, 0, c as u16, h);
    }
    // Category 八 has no policy areas: only added rows.
    write(ws, 1, 0, "八、知识产权文化传播");
    write(ws, 1, 2, "跨境电商知识产权保护指引");
    write(ws, 1, 3, "编制跨境电商知识产权保护指引");
    write(ws, 1, 4, "深圳市市场监督管理局");
    match budget.parse::<f64>() {
        Ok(n) => {
            ws.write_number(1, 5, n).unwrap();
        }
        Err(_) => write(ws, 1, 5, budget),
    }
    write(ws, 1, 6, "发布指引1份");
    wb.save_to_buffer().unwrap()
}

#[test]
fn a_bare_number_under_a_bare_header_needs_the_amount_unit() {
    // "50" under 经费预算: 50 元 or 50 万元? Never guessed.
    for cell in ["50", "50 "] {
        let report = import_in(
            &one_row_form("经费预算", cell),
            ImportMode::AllOrNothing,
            None,
        );
        assert_eq!(report.budget_unit, None);
        assert_eq!(report.rejected_rows, [2]);
        let e = &report.errors[0];
        assert_eq!(e.code(), "IMPORT_AMOUNT_UNIT_MISSING");
        assert_eq!((e.row, e.column.as_deref()), (2, Some("F")));
        assert!(
            e.message(Lang::ZhCn)
                .starts_with("第2行 F列「经费预算」：\"50\" 未注明单位"),
            "{}",
            e.message(Lang::ZhCn)
        );
        assert!(e.message(Lang::En).contains("amountUnit"));
    }
    // With WAN_YUAN it is 500 000 yuan; with YUAN 50 yuan.
    let wan = import_in(
        &one_row_form("经费预算", "50"),
        ImportMode::AllOrNothing,
        Some(BudgetUnit::TenThousandYuan),
    );
    assert!(wan.is_clean(), "{:?}", wan.errors);
    assert_eq!(wan.importable[0].demand.budget, Some(yuan(500_000)));
    let plain = import_in(
        &one_row_form("经费预算", "50"),
        ImportMode::AllOrNothing,
        Some(BudgetUnit::Yuan),
    );
    assert_eq!(plain.importable[0].demand.budget, Some(yuan(50)));
}

#[test]
fn the_unit_is_read_from_the_header_or_the_cell() {
    let budget = |header: &str, cell: &str, unit: Option<BudgetUnit>| {
        let report = import_in(&one_row_form(header, cell), ImportMode::AllOrNothing, unit);
        assert!(report.is_clean(), "{header} {cell}: {:?}", report.errors);
        report.importable[0].demand.budget.unwrap()
    };
    // The header says: no amountUnit needed, and it wins over amountUnit.
    assert_eq!(budget("经费预算（万元）", "80", None), yuan(800_000));
    assert_eq!(budget("经费预算\n(万元)", "80", None), yuan(800_000));
    assert_eq!(budget("经费预算（元）", "80", None), yuan(80));
    assert_eq!(
        budget("经费预算（万元）", "80", Some(BudgetUnit::Yuan)),
        yuan(800_000)
    );
    // The cell says: under any header.
    assert_eq!(budget("经费预算", "80万元", None), yuan(800_000));
    assert_eq!(budget("经费预算", "80万", None), yuan(800_000));
    assert_eq!(budget("经费预算", "800元", None), yuan(800));
    assert_eq!(budget("经费预算（元）", "80万元", None), yuan(800_000));
    // Not an amount stays not an amount, unit or not.
    let report = import_in(
        &one_row_form("经费预算", "约80万"),
        ImportMode::AllOrNothing,
        None,
    );
    assert_eq!(report.errors[0].code(), "IMPORT_NOT_AN_AMOUNT");
}
