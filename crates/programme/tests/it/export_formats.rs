//! XLSX and CSV export: Chinese headers, money as numbers, CSV that Excel opens.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use grantflow_domain::Money;
use grantflow_programme::UserFacing;
use grantflow_programme::catalogue::{Catalogue, Category};
use grantflow_programme::demand::{Demand, DemandOrigin};
use grantflow_programme::evaluation::{
    EvaluationInput, EvaluationMethod, Outcome, evaluate, summarize_call,
};
use grantflow_programme::export::{
    Cell, Column, ColumnKind, Sheet, Table, call_summary_sheet, demand_sheet, evaluation_sheet,
    indicator_score_sheet, write_csv, write_xlsx,
};
use grantflow_programme::import::{ImportOptions, import_demands};
use grantflow_programme::indicator::{Direction, Indicator, IndicatorCategory, IndicatorValue};
use grantflow_programme::similarity::{MergedDemand, merge_demands};

fn demands() -> Vec<MergedDemand> {
    let a = Demand {
        id: None,
        submitter: "广州市市场监督管理局".into(),
        category: Category::Protection,
        policy_area: "强化知识产权保护".into(),
        origin: DemandOrigin::CatalogueItem {
            item_id: "2022-3-1-14".into(),
        },
        project_name: "重点展会知识产权保护".into(),
        direction: "完善各地市重点展会知识产权保护机制，进驻重点展会开展知识产权保护工作。".into(),
        applicant: "各市局".into(),
        budget: Some(Money::parse("123456.78").unwrap()),
        performance_text: "进驻展会10场，处理投诉\"50\"件".into(),
        indicators: vec![],
        comments: "=建议, 增加\n线上展会".into(),
        source: None,
    };
    let mut b = a.clone();
    b.submitter = "佛山市市场监督管理局".into();
    b.budget = Some(Money::from_yuan(100_000).unwrap());
    let mut c = a.clone();
    c.origin = DemandOrigin::AddedRow;
    c.category = Category::CultureAndCommunication;
    c.policy_area = String::new();
    c.project_name = "知识产权进校园".into();
    c.budget = None;
    c.comments = String::new();
    vec![merge_demands(a, b), MergedDemand::single(c)]
}

fn read_sheet(bytes: &[u8], name: &str) -> calamine::Range<Data> {
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    wb.worksheet_range(name).unwrap()
}

#[test]
fn the_demand_table_is_written_with_chinese_headers_and_numeric_money() {
    let sheet = demand_sheet(Some("2022年需求汇总表".into()), &demands());
    let bytes = write_xlsx(&[sheet]).unwrap();
    let range = read_sheet(&bytes, "需求汇总表");
    assert_eq!(
        range.get_value((0, 0)),
        Some(&Data::String("2022年需求汇总表".into()))
    );
    assert_eq!(
        range.get_value((1, 6)),
        Some(&Data::String("经费预算（元）".into()))
    );
    assert_eq!(range.get_value((2, 6)), Some(&Data::Float(123_456.78)));
    assert_eq!(
        range.get_value((2, 9)),
        Some(&Data::String("承担意向".into()))
    );
    assert_eq!(
        range.get_value((2, 10)),
        Some(&Data::String("目录项目 2022-3-1-14".into()))
    );
    assert_eq!(
        range.get_value((2, 11)),
        Some(&Data::String(
            "广州市市场监督管理局、佛山市市场监督管理局".into()
        ))
    );
    assert_eq!(range.get_value((2, 12)), Some(&Data::Float(2.0)));
    assert_eq!(range.get_value((2, 13)), Some(&Data::Float(223_456.78)));
    // Text that looks like a formula stays text in XLSX.
    assert_eq!(
        range.get_value((2, 8)),
        Some(&Data::String("=建议, 增加\n线上展会".into()))
    );
}

#[test]
fn a_feedback_only_row_is_listed_as_feedback_on_its_item() {
    // 需求征集: units comment on the proposed name, direction and applicant; only a unit
    // offering to undertake the item fills in budget and 绩效.
    let mut feedback = demands()[0].demand.clone();
    feedback.budget = None;
    feedback.performance_text = String::new();
    feedback.comments = "建议将申报主体扩大到县区局".into();
    assert!(feedback.is_feedback_only());
    let sheet = demand_sheet(None, &[MergedDemand::single(feedback)]);
    let text = String::from_utf8(write_csv(&sheet)[3..].to_vec()).unwrap();
    let header = text.lines().next().unwrap();
    assert!(header.contains(",经费预算（元）,"), "{header}");
    assert!(header.contains(",意见建议,填报类型,来源,"), "{header}");
    let row = text.lines().nth(1).unwrap();
    assert!(
        row.contains(",,,建议将申报主体扩大到县区局,仅意见建议,目录项目 2022-3-1-14,"),
        "no budget, no 绩效, the comment, marked feedback, on its item: {row}"
    );
}

#[test]
fn an_exported_demand_table_imports_back() {
    let catalogue =
        Catalogue::from_toml_str(include_str!("../../../../workflows/calls/2022.toml")).unwrap();
    let bytes = write_xlsx(&[demand_sheet(Some("汇总".into()), &demands())]).unwrap();
    let report = import_demands(
        &bytes,
        &ImportOptions {
            catalogue: Some(&catalogue),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    // The added row without a budget is rejected on re-import, as it should be.
    assert_eq!(report.rejected_rows, [4]);
    assert_eq!(report.good_rows, 1);
    let back = report
        .errors
        .iter()
        .map(UserFacing::code)
        .collect::<Vec<_>>();
    assert!(back.contains(&"DEMAND_FIELD_MISSING"));

    let only_first = write_xlsx(&[demand_sheet(None, &demands()[..1])]).unwrap();
    let report = import_demands(
        &only_first,
        &ImportOptions {
            catalogue: Some(&catalogue),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    let first = &report.importable[0].demand;
    let original = &demands()[0].demand;
    assert_eq!(
        first.budget, original.budget,
        "money survives the round trip"
    );
    assert_eq!(first.origin, original.origin);
    assert_eq!(first.project_name, original.project_name);
    assert_eq!(first.comments, original.comments);
}

#[test]
fn csv_has_a_bom_crlf_and_rfc_4180_quoting() {
    let bytes = write_csv(&demand_sheet(Some("不写入 CSV 的标题".into()), &demands()));
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(text.starts_with(
        "序号,大类,重点政策或工作,项目名称,项目方向,申报（工作）主体,经费预算（元）,"
    ));
    assert!(!text.contains("不写入"));
    assert!(text.ends_with("\r\n"));
    // Money plain with two decimals; quotes doubled; comma and line break quoted; a
    // leading '=' defused.
    assert!(text.contains(",123456.78,"));
    assert!(text.contains(",\"进驻展会10场，处理投诉\"\"50\"\"件\","));
    assert!(text.contains(",\"'=建议, 增加\n线上展会\","));
    // The added row has an empty budget cell.
    assert!(text.contains(",各市局,,"));
    assert_eq!(text.matches("\r\n").count(), 3, "header and two rows");
}

#[test]
fn a_generic_table_exports_to_both_formats() {
    let table = Table {
        columns: vec!["单位".into(), "联系人".into()],
        rows: vec![
            vec!["广州市市场监督管理局".into(), "张三".into()],
            vec!["深圳市市场监督管理局".into(), "李四, 王五".into()],
        ],
    };
    let sheet = Sheet::from_table("联系人名单", &table);
    let csv = String::from_utf8(write_csv(&sheet)).unwrap();
    assert_eq!(
        csv,
        "\u{feff}单位,联系人\r\n广州市市场监督管理局,张三\r\n深圳市市场监督管理局,\"李四, 王五\"\r\n"
    );
    let bytes = write_xlsx(&[sheet]).unwrap();
    let range = read_sheet(&bytes, "联系人名单");
    assert_eq!(
        range.get_value((2, 1)),
        Some(&Data::String("李四, 王五".into()))
    );
}

#[test]
fn evaluation_results_export_scores_rates_and_grades() {
    let indicator = |id: &str, category| Indicator {
        id: id.into(),
        category,
        name: format!("指标{id}"),
        unit: "件".into(),
        baseline: None,
        target: IndicatorValue::Number(10.0),
        direction: Direction::HigherIsBetter,
        weight: 1.0,
        ..Indicator::example()
    };
    let input = EvaluationInput {
        project_id: "GD-2022-001".into(),
        project_name: "重点展会知识产权保护".into(),
        indicators: vec![
            indicator("o1", IndicatorCategory::OutputQuantity),
            indicator("e1", IndicatorCategory::EffectSocial),
        ],
        outcomes: [("o1", 10.0), ("e1", 8.0)]
            .into_iter()
            .map(|(id, v)| {
                (
                    id.to_string(),
                    Outcome::Quantitative {
                        actual: v,
                        explanation: None,
                    },
                )
            })
            .collect(),
        budgeted: Money::from_yuan(100_000).unwrap(),
        spent: Money::from_yuan(90_000).unwrap(),
    };
    // 10 × 0.9 + 50 + 40 × 0.8 = 9 + 50 + 32 = 91
    let result = evaluate(&EvaluationMethod::default(), &input).unwrap();
    let results = vec![result];
    let bytes = write_xlsx(&[
        evaluation_sheet(&results),
        indicator_score_sheet(&results),
        call_summary_sheet(&summarize_call(&results)),
    ])
    .unwrap();
    let main = read_sheet(&bytes, "绩效评价结果");
    assert_eq!(main.get_value((0, 10)), Some(&Data::String("总分".into())));
    assert_eq!(main.get_value((1, 5)), Some(&Data::Float(0.9)));
    assert_eq!(main.get_value((1, 10)), Some(&Data::Float(91.0)));
    assert_eq!(main.get_value((1, 11)), Some(&Data::String("优".into())));
    let details = read_sheet(&bytes, "指标得分明细");
    assert_eq!(details.get_value((2, 7)), Some(&Data::Float(32.0)));
    let summary = read_sheet(&bytes, "评价汇总");
    assert_eq!(
        summary.get_value((2, 0)),
        Some(&Data::String("等级「优」项目数".into()))
    );
    assert_eq!(summary.get_value((2, 1)), Some(&Data::Float(1.0)));

    let csv = String::from_utf8(write_csv(&evaluation_sheet(&results))).unwrap();
    assert!(csv.contains(",100000.00,90000.00,90.00%,9.00,50.00,32.00,0.00,91.00,优\r\n"));
}

#[test]
fn sheet_names_are_made_acceptable_to_excel() {
    let sheet = |name: &str| Sheet {
        name: name.into(),
        title: None,
        columns: vec![Column::new("列", ColumnKind::Text)],
        rows: vec![vec![Cell::Text("x".into())]],
    };
    let bytes = write_xlsx(&[sheet("2022/2023: 汇总?"), sheet("2022/2023: 汇总?")]).unwrap();
    let wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    assert_eq!(wb.sheet_names(), ["2022_2023_ 汇总_", "2022_2023_ 汇总__2"]);
}
