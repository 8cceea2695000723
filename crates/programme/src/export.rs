//! Export to XLSX and CSV: the consolidated demand table, any generic table, and
//! evaluation results.
//!
//! Everything is first turned into a [`Sheet`] (typed columns and cells), then written:
//! * XLSX ([`write_xlsx`]): one worksheet per sheet, an optional title row merged across
//!   the columns, a bold header row that stays in view, wrapped long texts, money as
//!   numbers formatted `#,##0.00` (so Excel can sum them), rates as percentages.
//!   Strings are always written as strings, never as formulas.
//! * CSV ([`write_csv`]): UTF-8 with a byte-order mark (without one Excel reads Chinese
//!   as mojibake), CRLF line ends, RFC 4180 quoting (fields with commas, quotes or line
//!   breaks are quoted, quotes doubled), money as plain `12500.00`. A text cell starting
//!   with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'` so that a
//!   spreadsheet does not run submitted text as a formula (CSV injection); the title
//!   row is not written.

use grantflow_domain::{Lang, Money};
use rust_xlsxwriter::{Format, FormatAlign, Workbook, XlsxError};
use serde::{Deserialize, Serialize};

use crate::UserFacing;
use crate::demand::{Demand, DemandOrigin};
use crate::evaluation::{CallSummary, EvaluationResult, Grade, ScorePart};
use crate::messages::{impl_error_via_user_facing, pick};
use crate::similarity::MergedDemand;

/// A generic table: headers and rows of strings (lists, registers, anything).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// How a column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Short text.
    Text,
    /// Long text, wrapped.
    LongText,
    /// Yuan with 2 decimals.
    Money,
    /// A number with 2 decimals (scores).
    Number,
    /// A ratio shown as a percentage with 2 decimals (0.9 → 90.00%).
    Percent,
    Integer,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub header: String,
    pub kind: ColumnKind,
}

impl Column {
    pub fn new(header: impl Into<String>, kind: ColumnKind) -> Self {
        Self {
            header: header.into(),
            kind,
        }
    }
}

/// A cell value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Cell {
    Empty,
    Text(String),
    Money(Money),
    Number(f64),
    Integer(i64),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Self::Text(s.to_string())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<Option<Money>> for Cell {
    fn from(m: Option<Money>) -> Self {
        m.map_or(Self::Empty, Cell::Money)
    }
}

/// One worksheet (or one CSV file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sheet {
    /// Worksheet name; characters Excel forbids are replaced and it is cut to 31.
    pub name: String,
    /// Written above the header in XLSX, merged across the columns.
    pub title: Option<String>,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

impl Sheet {
    /// A generic table as a sheet of text columns.
    pub fn from_table(name: impl Into<String>, table: &Table) -> Self {
        Self {
            name: name.into(),
            title: None,
            columns: table
                .columns
                .iter()
                .map(|h| Column::new(h.clone(), ColumnKind::Text))
                .collect(),
            rows: table
                .rows
                .iter()
                .map(|r| r.iter().map(|s| Cell::Text(s.clone())).collect())
                .collect(),
        }
    }
}

/// Why writing failed (only XLSX can fail).
#[derive(Debug)]
pub struct ExportError(pub XlsxError);

impl UserFacing for ExportError {
    fn code(&self) -> &'static str {
        "EXPORT_FAILED"
    }

    fn message(&self, lang: Lang) -> String {
        pick(
            lang,
            format!("导出 Excel 文件失败：{}", self.0),
            format!("writing the Excel file failed: {}", self.0),
        )
    }
}
impl_error_via_user_facing!(ExportError);

impl From<XlsxError> for ExportError {
    fn from(e: XlsxError) -> Self {
        Self(e)
    }
}

fn origin_label(d: &Demand) -> String {
    match &d.origin {
        DemandOrigin::CatalogueItem { item_id } => format!("目录项目 {item_id}"),
        DemandOrigin::AddedRow => "可加行".to_string(),
    }
}

/// What a row of the 汇总表 is: an offer to undertake, or feedback only (意见建议 on a
/// catalogue item, no budget and no 绩效).
fn row_kind_label(d: &Demand) -> &'static str {
    if d.is_feedback_only() {
        "仅意见建议"
    } else {
        "承担意向"
    }
}

/// The consolidated demand table (汇总表): the form's columns, plus what the row is
/// (承担意向 or 仅意见建议, feedback on its item), origin, submitting units, number of
/// merged sources and their total request.
pub fn demand_sheet(title: Option<String>, demands: &[MergedDemand]) -> Sheet {
    let columns = vec![
        Column::new("序号", ColumnKind::Integer),
        Column::new("大类", ColumnKind::Text),
        Column::new("重点政策或工作", ColumnKind::Text),
        Column::new("项目名称", ColumnKind::Text),
        Column::new("项目方向", ColumnKind::LongText),
        Column::new("申报（工作）主体", ColumnKind::Text),
        Column::new("经费预算（元）", ColumnKind::Money),
        Column::new("项目绩效", ColumnKind::LongText),
        Column::new("意见建议", ColumnKind::LongText),
        Column::new("填报类型", ColumnKind::Text),
        Column::new("来源", ColumnKind::Text),
        Column::new("填报单位", ColumnKind::Text),
        Column::new("合并条数", ColumnKind::Integer),
        Column::new("各来源预算合计（元）", ColumnKind::Money),
    ];
    let rows = demands
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let d = &m.demand;
            vec![
                Cell::Integer(i as i64 + 1),
                Cell::Text(d.category.label()),
                d.policy_area.as_str().into(),
                d.project_name.as_str().into(),
                d.direction.as_str().into(),
                d.applicant.as_str().into(),
                d.budget.into(),
                d.performance_summary().into(),
                d.comments.as_str().into(),
                row_kind_label(d).into(),
                origin_label(d).into(),
                m.submitters().join("、").into(),
                Cell::Integer(m.sources.len() as i64),
                Cell::Money(m.requested_budget_total()),
            ]
        })
        .collect();
    Sheet {
        name: "需求汇总表".into(),
        title,
        columns,
        rows,
    }
}

/// The blank 需求征集表 of a catalogue, as the call attaches it for units to fill in: the
/// form's eight columns, one row per catalogue item (大类, 重点政策或工作, `20.名称`,
/// 项目方向, 申报（工作）主体) with budget, performance and comments left blank, the
/// name cell of an item's second row blank, and one （可加行） row per policy area (and
/// per category without policy areas). The importer skips a row left as printed here
/// ([`crate::import::SkipReason::Untouched`]).
pub fn form_template(catalogue: &crate::catalogue::Catalogue) -> Sheet {
    let columns = [
        ("大类", ColumnKind::Text),
        ("重点政策或工作", ColumnKind::Text),
        ("项目名称", ColumnKind::Text),
        ("项目方向", ColumnKind::LongText),
        ("申报（工作）主体", ColumnKind::Text),
        ("经费预算（元）", ColumnKind::Money),
        ("项目绩效", ColumnKind::LongText),
        ("意见建议", ColumnKind::LongText),
    ]
    .into_iter()
    .map(|(h, k)| Column::new(h, k))
    .collect();
    let row = |category: &str, area: &str, name: String, direction: &str, applicant: &str| {
        let mut cells: Vec<Cell> = [category, area, name.as_str(), direction, applicant]
            .iter()
            .map(|t| {
                if t.is_empty() {
                    Cell::Empty
                } else {
                    Cell::Text(t.to_string())
                }
            })
            .collect();
        cells.extend([Cell::Empty, Cell::Empty, Cell::Empty]);
        cells
    };
    let mut rows = Vec::new();
    for category in &catalogue.categories {
        let label = category.category.label();
        for area in &category.policy_areas {
            let mut previous_number = None;
            for item in &area.items {
                // The second row of an item (same number) leaves its name cell blank.
                let name = if item.number.is_some() && item.number == previous_number {
                    String::new()
                } else {
                    match item.number {
                        Some(n) => format!("{n}.{}", item.name),
                        None => item.name.clone(),
                    }
                };
                previous_number = item.number;
                rows.push(row(
                    &label,
                    &area.name,
                    name,
                    &item.direction,
                    &item.applicant,
                ));
            }
            rows.push(row(&label, &area.name, "（可加行）".into(), "", ""));
        }
        if category.policy_areas.is_empty() {
            rows.push(row(&label, "", "（可加行）".into(), "", ""));
        }
    }
    Sheet {
        name: "需求征集表".into(),
        title: Some(format!("{}（空白表）", catalogue.title)),
        columns,
        rows,
    }
}

/// Evaluation results, one row per project.
pub fn evaluation_sheet(results: &[EvaluationResult]) -> Sheet {
    let part_points = |r: &EvaluationResult, p: ScorePart| {
        r.part(p).map_or(Cell::Empty, |s| Cell::Number(s.points))
    };
    let columns = vec![
        Column::new("序号", ColumnKind::Integer),
        Column::new("项目编号", ColumnKind::Text),
        Column::new("项目名称", ColumnKind::Text),
        Column::new("预算（元）", ColumnKind::Money),
        Column::new("支出（元）", ColumnKind::Money),
        Column::new("预算执行率", ColumnKind::Percent),
        Column::new("预算执行得分", ColumnKind::Number),
        Column::new("产出指标得分", ColumnKind::Number),
        Column::new("效益指标得分", ColumnKind::Number),
        Column::new("满意度指标得分", ColumnKind::Number),
        Column::new("总分", ColumnKind::Number),
        Column::new("等级", ColumnKind::Text),
    ];
    let rows = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                Cell::Integer(i as i64 + 1),
                r.project_id.as_str().into(),
                r.project_name.as_str().into(),
                Cell::Money(r.budgeted),
                Cell::Money(r.spent),
                Cell::Number(r.execution_rate),
                part_points(r, ScorePart::BudgetExecution),
                part_points(r, ScorePart::Output),
                part_points(r, ScorePart::Effect),
                part_points(r, ScorePart::Satisfaction),
                Cell::Number(r.total),
                r.grade.name(Lang::ZhCn).into(),
            ]
        })
        .collect();
    Sheet {
        name: "绩效评价结果".into(),
        title: None,
        columns,
        rows,
    }
}

/// Indicator-level scores of every project.
pub fn indicator_score_sheet(results: &[EvaluationResult]) -> Sheet {
    let columns = vec![
        Column::new("项目编号", ColumnKind::Text),
        Column::new("项目名称", ColumnKind::Text),
        Column::new("指标类别", ColumnKind::Text),
        Column::new("指标编号", ColumnKind::Text),
        Column::new("指标名称", ColumnKind::Text),
        Column::new("分值", ColumnKind::Number),
        Column::new("完成比例", ColumnKind::Percent),
        Column::new("得分", ColumnKind::Number),
    ];
    let rows = results
        .iter()
        .flat_map(|r| {
            r.indicators.iter().map(move |s| {
                vec![
                    r.project_id.as_str().into(),
                    r.project_name.as_str().into(),
                    s.part.name(Lang::ZhCn).into(),
                    s.indicator_id.as_str().into(),
                    s.name.as_str().into(),
                    Cell::Number(s.max_points),
                    Cell::Number(s.fraction),
                    Cell::Number(s.points),
                ]
            })
        })
        .collect();
    Sheet {
        name: "指标得分明细".into(),
        title: None,
        columns,
        rows,
    }
}

/// A call's summary as a two-column sheet (项目 / 数值).
pub fn call_summary_sheet(summary: &CallSummary) -> Sheet {
    let mut rows = vec![vec![
        "评价项目数".into(),
        Cell::Integer(summary.projects as i64),
    ]];
    for g in Grade::ALL {
        rows.push(vec![
            format!("等级「{}」项目数", g.name(Lang::ZhCn)).into(),
            Cell::Integer(summary.grades.get(g) as i64),
        ]);
    }
    rows.push(vec![
        "平均分".into(),
        summary.average_total.map_or(Cell::Empty, Cell::Number),
    ]);
    rows.push(vec!["预算合计（元）".into(), Cell::Money(summary.budgeted)]);
    rows.push(vec!["支出合计（元）".into(), Cell::Money(summary.spent)]);
    rows.push(vec![
        "预算执行率".into(),
        summary
            .execution_rate
            .map_or(Cell::Empty, |r| Cell::Text(format!("{:.2}%", r * 100.0))),
    ]);
    Sheet {
        name: "评价汇总".into(),
        title: None,
        columns: vec![
            Column::new("项目", ColumnKind::Text),
            Column::new("数值", ColumnKind::Text),
        ],
        rows,
    }
}

/// A worksheet name Excel accepts: no `[]:*?/\`, at most 31 characters, not empty.
fn sheet_name(name: &str, index: usize) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .take(31)
        .collect();
    let cleaned = cleaned.trim_matches('\'').to_string();
    if cleaned.is_empty() {
        format!("Sheet{}", index + 1)
    } else {
        cleaned
    }
}

/// Writes sheets to an XLSX workbook.
pub fn write_xlsx(sheets: &[Sheet]) -> Result<Vec<u8>, ExportError> {
    let mut workbook = Workbook::new();
    let title_format = Format::new().set_bold().set_font_size(14);
    let header_format = Format::new()
        .set_bold()
        .set_text_wrap()
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter)
        .set_background_color("#DDEBF7");
    let wrap = Format::new().set_text_wrap().set_align(FormatAlign::Top);
    let top = Format::new().set_align(FormatAlign::Top);
    let money = Format::new()
        .set_num_format("#,##0.00")
        .set_align(FormatAlign::Top);
    let number = Format::new()
        .set_num_format("0.00")
        .set_align(FormatAlign::Top);
    let percent = Format::new()
        .set_num_format("0.00%")
        .set_align(FormatAlign::Top);
    let integer = Format::new()
        .set_num_format("0")
        .set_align(FormatAlign::Top);

    let mut used_names: Vec<String> = Vec::new();
    for (index, sheet) in sheets.iter().enumerate() {
        let ws = workbook.add_worksheet();
        let mut name = sheet_name(&sheet.name, index);
        if used_names.contains(&name) {
            name = format!(
                "{}_{}",
                name.chars().take(28).collect::<String>(),
                index + 1
            );
        }
        ws.set_name(&name)?;
        used_names.push(name);

        let mut header_row: u32 = 0;
        if let Some(title) = &sheet.title {
            let last = u16::try_from(sheet.columns.len().saturating_sub(1)).unwrap_or(u16::MAX);
            if last > 0 {
                ws.merge_range(0, 0, 0, last, title, &title_format)?;
            } else {
                ws.write_string_with_format(0, 0, title, &title_format)?;
            }
            header_row = 1;
        }
        for (c, column) in sheet.columns.iter().enumerate() {
            let c = u16::try_from(c).unwrap_or(u16::MAX);
            ws.write_string_with_format(header_row, c, &column.header, &header_format)?;
            let width = match column.kind {
                ColumnKind::LongText => 40.0,
                ColumnKind::Money => 16.0,
                ColumnKind::Integer => 8.0,
                ColumnKind::Number | ColumnKind::Percent => 12.0,
                ColumnKind::Text => 20.0,
            };
            ws.set_column_width(c, width)?;
        }
        ws.set_freeze_panes(header_row + 1, 0)?;

        for (r, cells) in sheet.rows.iter().enumerate() {
            let row = header_row + 1 + u32::try_from(r).unwrap_or(u32::MAX - header_row - 1);
            for (c, cell) in cells.iter().enumerate() {
                let kind = sheet.columns.get(c).map_or(ColumnKind::Text, |k| k.kind);
                let c = u16::try_from(c).unwrap_or(u16::MAX);
                match cell {
                    Cell::Empty => {}
                    Cell::Text(t) => {
                        let format = if kind == ColumnKind::LongText {
                            &wrap
                        } else {
                            &top
                        };
                        ws.write_string_with_format(row, c, t, format)?;
                    }
                    // Excel holds numbers as doubles: exact for any amount below 2^53 fen.
                    Cell::Money(m) => {
                        ws.write_number_with_format(row, c, m.as_yuan_f64(), &money)?;
                    }
                    Cell::Number(n) => {
                        let format = if kind == ColumnKind::Percent {
                            &percent
                        } else {
                            &number
                        };
                        ws.write_number_with_format(row, c, *n, format)?;
                    }
                    Cell::Integer(i) => {
                        ws.write_number_with_format(row, c, *i as f64, &integer)?;
                    }
                }
            }
        }
    }
    Ok(workbook.save_to_buffer()?)
}

/// Quotes a CSV field when needed and defuses formula-looking text.
fn csv_field(cell: &Cell, kind: ColumnKind) -> String {
    let text = match cell {
        Cell::Empty => return String::new(),
        Cell::Text(t) => {
            if t.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{t}")
            } else {
                t.clone()
            }
        }
        Cell::Money(m) => m.to_string(),
        Cell::Number(n) if kind == ColumnKind::Percent => format!("{:.2}%", n * 100.0),
        Cell::Number(n) => format!("{n:.2}"),
        Cell::Integer(i) => i.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Writes one sheet as CSV (UTF-8 with BOM, CRLF).
pub fn write_csv(sheet: &Sheet) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    let header: Vec<String> = sheet
        .columns
        .iter()
        .map(|c| csv_field(&Cell::Text(c.header.clone()), ColumnKind::Text))
        .collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for row in &sheet.rows {
        let fields: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let kind = sheet.columns.get(i).map_or(ColumnKind::Text, |c| c.kind);
                csv_field(cell, kind)
            })
            .collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}
