//! The ranking and the round summary as an XLSX workbook, for managers.
//!
//! Headers are in Chinese with English in brackets: `排名 (Rank)`. The workbook has three
//! sheets: `排名 (Ranking)`, `评审汇总 (Summary)` (one row per application with the
//! statistics and per-criterion values) and `专家评分 (Expert scores)` (one row per counted
//! submission, with outlier flags and justifications).

use std::collections::BTreeMap;

use grantflow_domain::ReviewRoundDef;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use crate::ApplicationId;
use crate::aggregate::ReviewResult;
use crate::error::ReviewError;
use crate::ranking::RankedApplication;

pub const RANKING_SHEET: &str = "排名 (Ranking)";
pub const SUMMARY_SHEET: &str = "评审汇总 (Summary)";
pub const EXPERT_SHEET: &str = "专家评分 (Expert scores)";

fn yes_no(value: bool) -> &'static str {
    if value { "是 (Yes)" } else { "否 (No)" }
}

fn write_header(sheet: &mut Worksheet, headers: &[String], bold: &Format) -> Result<(), XlsxError> {
    for (col, header) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, header, bold)?;
        let width = header.chars().count().clamp(10, 40) as f64 * 1.2;
        sheet.set_column_width(col as u16, width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(())
}

fn write_optional(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    value: Option<f64>,
) -> Result<(), XlsxError> {
    match value {
        Some(v) => sheet.write_number(row, col, v).map(|_| ()),
        None => sheet.write_string(row, col, "—").map(|_| ()),
    }
}

/// Builds the workbook and returns its bytes.
///
/// `labels` gives an optional display name per application (project name); applications
/// without one show an empty cell. `ranking` is normally [`crate::ranking::rank_applications`]
/// of `results`.
pub fn round_workbook(
    round: &ReviewRoundDef,
    ranking: &[RankedApplication],
    results: &[ReviewResult],
    labels: &BTreeMap<ApplicationId, String>,
) -> Result<Vec<u8>, ReviewError> {
    build(round, ranking, results, labels).map_err(|e| ReviewError::Export {
        detail: e.to_string(),
    })
}

fn build(
    round: &ReviewRoundDef,
    ranking: &[RankedApplication],
    results: &[ReviewResult],
    labels: &BTreeMap<ApplicationId, String>,
) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let label = |id: &str| labels.get(id).map(String::as_str).unwrap_or("");

    let sheet = workbook.add_worksheet();
    sheet.set_name(RANKING_SHEET)?;
    let headers: Vec<String> = [
        "排名 (Rank)",
        "申报编号 (Application)",
        "项目名称 (Project)",
        "综合得分 (Total)",
        "专家总分中位数 (Median total)",
        "专家最低总分 (Lowest total)",
        "评分专家数 (Scores)",
        "是否通过 (Passed)",
    ]
    .map(String::from)
    .to_vec();
    write_header(sheet, &headers, &bold)?;
    for (i, r) in ranking.iter().enumerate() {
        let row = i as u32 + 1;
        sheet.write_number(row, 0, r.rank)?;
        sheet.write_string(row, 1, &r.application_id)?;
        sheet.write_string(row, 2, label(&r.application_id))?;
        sheet.write_number(row, 3, r.total)?;
        sheet.write_number(row, 4, r.median)?;
        sheet.write_number(row, 5, r.min_total)?;
        sheet.write_number(row, 6, r.count)?;
        sheet.write_string(row, 7, yes_no(r.passed))?;
    }

    let sheet = workbook.add_worksheet();
    sheet.set_name(SUMMARY_SHEET)?;
    let mut headers: Vec<String> = [
        "申报编号 (Application)",
        "项目名称 (Project)",
        "评分专家数 (Scores)",
        "综合得分 (Total)",
        "平均分 (Mean)",
        "中位数 (Median)",
        "标准差 (Std. dev.)",
        "最低分 (Min)",
        "最高分 (Max)",
    ]
    .map(String::from)
    .to_vec();
    for c in &round.criteria {
        headers.push(format!("{} ({})", c.title.zh_cn, c.title.en));
    }
    headers.push("待说明异常分 (Pending justifications)".into());
    headers.push("是否通过 (Passed)".into());
    write_header(sheet, &headers, &bold)?;
    for (i, r) in results.iter().enumerate() {
        let row = i as u32 + 1;
        sheet.write_string(row, 0, &r.application_id)?;
        sheet.write_string(row, 1, label(&r.application_id))?;
        sheet.write_number(row, 2, r.count)?;
        sheet.write_number(row, 3, r.total)?;
        write_optional(sheet, row, 4, r.totals.map(|s| s.mean))?;
        write_optional(sheet, row, 5, r.totals.map(|s| s.median))?;
        write_optional(sheet, row, 6, r.totals.and_then(|s| s.sd))?;
        write_optional(sheet, row, 7, r.totals.map(|s| s.min))?;
        write_optional(sheet, row, 8, r.totals.map(|s| s.max))?;
        let mut col = 9u16;
        for c in &round.criteria {
            let value = r.criteria.iter().find(|x| x.id == c.id).map(|x| x.value);
            write_optional(sheet, row, col, value)?;
            col += 1;
        }
        sheet.write_number(row, col, r.pending_justifications().len() as u32)?;
        sheet.write_string(row, col + 1, yes_no(r.passed))?;
    }

    let sheet = workbook.add_worksheet();
    sheet.set_name(EXPERT_SHEET)?;
    let headers: Vec<String> = [
        "申报编号 (Application)",
        "专家编号 (Expert)",
        "版本 (Version)",
        "总分 (Total)",
        "低于最低分的评分项 (Criteria below minimum)",
        "异常分 (Outlier)",
        "异常分说明 (Justification)",
    ]
    .map(String::from)
    .to_vec();
    write_header(sheet, &headers, &bold)?;
    let mut row = 1u32;
    for r in results {
        for t in &r.expert_totals {
            let outlier = r.outliers.iter().find(|o| o.expert_id == t.expert_id);
            sheet.write_string(row, 0, &r.application_id)?;
            sheet.write_string(row, 1, &t.expert_id)?;
            sheet.write_number(row, 2, t.version)?;
            sheet.write_number(row, 3, t.total)?;
            sheet.write_string(row, 4, t.failing.join(", "))?;
            sheet.write_string(row, 5, yes_no(outlier.is_some()))?;
            let justification = outlier
                .and_then(|o| o.justification.as_deref())
                .unwrap_or("");
            sheet.write_string(row, 6, justification)?;
            row += 1;
        }
    }

    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::aggregate_application;
    use crate::aggregate::tests::{round, submission};
    use crate::ranking::rank_applications;
    use calamine::{Data, Reader, Xlsx};
    use grantflow_domain::Aggregation;
    use std::io::Cursor;

    #[test]
    fn workbook_has_bilingual_headers_and_the_ranking_rows() {
        let def = round(Aggregation::Mean);
        // a1: totals 80 and 90 → mean 85, median 85, both 5 away: no outlier.
        // a2: totals 50 and 100 → mean 75, median 75; both are 25 away (> 15), so both are
        // outliers waiting for a justification.
        let results = vec![
            aggregate_application(
                &def,
                "a2",
                &[submission("e3", 50.0, 50.0), submission("e4", 100.0, 100.0)],
                &[],
            ),
            aggregate_application(
                &def,
                "a1",
                &[submission("e1", 80.0, 80.0), submission("e2", 90.0, 90.0)],
                &[],
            ),
        ];
        let ranking = rank_applications(&results);
        let labels = BTreeMap::from([("a1".to_string(), "专利导航项目".to_string())]);
        let bytes = round_workbook(&def, &ranking, &results, &labels).unwrap();

        let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).unwrap();
        assert_eq!(
            book.sheet_names(),
            vec![RANKING_SHEET, SUMMARY_SHEET, EXPERT_SHEET]
        );
        let ranking_sheet = book.worksheet_range(RANKING_SHEET).unwrap();
        assert_eq!(
            ranking_sheet.get((0, 0)),
            Some(&Data::String("排名 (Rank)".into()))
        );
        assert_eq!(ranking_sheet.get((1, 0)), Some(&Data::Float(1.0)));
        assert_eq!(ranking_sheet.get((1, 1)), Some(&Data::String("a1".into())));
        assert_eq!(
            ranking_sheet.get((1, 2)),
            Some(&Data::String("专利导航项目".into()))
        );
        assert_eq!(ranking_sheet.get((1, 3)), Some(&Data::Float(85.0)));
        assert_eq!(ranking_sheet.get((2, 3)), Some(&Data::Float(75.0)));

        let summary = book.worksheet_range(SUMMARY_SHEET).unwrap();
        assert_eq!(
            summary.get((0, 9)),
            Some(&Data::String("quality（中文） (quality)".into()))
        );
        // a2 row: 2 pending justifications
        assert_eq!(summary.get((1, 0)), Some(&Data::String("a2".into())));
        assert_eq!(summary.get((1, 11)), Some(&Data::Float(2.0)));

        let experts = book.worksheet_range(EXPERT_SHEET).unwrap();
        assert_eq!(experts.height(), 5, "header and four submissions");
        assert_eq!(experts.get((1, 5)), Some(&Data::String("是 (Yes)".into())));
    }
}
