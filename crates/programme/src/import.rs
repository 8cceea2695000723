//! Importing a filled-in 需求征集表 from XLSX.
//!
//! Reading the header and each row's cells follows the one layout of the form, step by
//! step, here; the errors (`errors.rs`) and the reading of amounts (`amount.rs`) sit beside.
//!
//! The sheet looks like the form attached to the call: a title row, a 填报单位 row, then a
//! header row (大类, 重点政策或工作, 项目名称, 项目方向, 申报（工作）主体, 经费预算, 项目绩效,
//! 意见建议; spaces and line breaks inside header cells are ignored, columns may be in any
//! order, and the header may span two merged rows), then one row per demand.
//!
//! * **Merged cells.** The 大类 and 重点政策或工作 cells span many rows; XLSX stores the
//!   value only in the top-left cell of a merged region. The sheet's merged regions are
//!   read and each cell inside one takes the value of the region's top-left cell when it
//!   is in the same column (a region spanning several columns counts for its left column
//!   only, so a 大类 merged across the empty 重点政策或工作 column does not fill it). A
//!   budget merged over several rows counts once, on its first row, so money is never
//!   counted twice. Blank cells outside merged regions are not filled from above: a blank
//!   大类 is an error rather than a guess.
//! * **Skipped rows.** Blank rows, placeholder rows ("（可加行）", possibly numbered, with
//!   nothing else of their own) and notes below the table (a single cell starting with
//!   注 / 备注 / 说明 / 填表说明) are skipped and reported as such. An item number alone
//!   ("1.") counts as blank.
//! * **Budgets** ([`parse_budget_in`]): "50万"/"50万元" is 500 000 yuan, "500元" 500 yuan;
//!   a bare number is in the header's unit (经费预算（万元）/（元）), else the import's
//!   `amountUnit`, else refused (`IMPORT_AMOUNT_UNIT_MISSING`): never guessed. "¥" and
//!   thousands separators are accepted; "约12万", "12万美元", "待定" are not amounts.
//! * **Errors** name the Excel row and column: `第12行 F列「经费预算」："待定" 不是金额`.
//!   In [`ImportMode::AllOrNothing`] (the default) nothing is importable when any row is
//!   rejected; in [`ImportMode::GoodRowsOnly`] the rows without errors are.
//! * **Catalogue.** With a catalogue, a row whose name matches one of the category's items
//!   refers to it (blank direction and applicant cells then mean "as proposed" and take
//!   the item's); other rows are added rows (可加行). Without one, every row is an added
//!   row. Each row is then validated with [`validate_demand`].

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;

use calamine::{Data, Dimensions, Reader, Xlsx, open_workbook_from_rs};
use grantflow_domain::{Lang, Money};
use serde::{Deserialize, Serialize};

use crate::UserFacing;
use crate::cancel::Cancel;
use crate::catalogue::{Catalogue, Category, ItemRef, strip_item_number};
use crate::demand::{Demand, DemandError, DemandField, DemandOrigin, SourceRow, validate_demand};
use crate::messages::{impl_error_via_user_facing, pick};
pub use crate::workbook_limits::{ImportLimits, LimitExceeded};

mod amount;
mod errors;

pub use amount::{AmountProblem, NotAnAmount, parse_budget, parse_budget_in};
use amount::{header_unit, number_to_money};
pub use errors::{CellError, CellProblem, ImportFailure};

/// How many rows from the top are searched for the header.
const HEADER_SEARCH_ROWS: u32 = 30;

/// Whether one bad row stops the import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Nothing is importable when any row is rejected.
    #[default]
    AllOrNothing,
    /// Rows without errors are importable; the others are reported.
    GoodRowsOnly,
}

/// The unit of plain numbers in the budget column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetUnit {
    #[default]
    Yuan,
    /// 万元 (10 000 yuan)
    TenThousandYuan,
}

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions<'a> {
    pub mode: ImportMode,
    /// The sheet to read; the first sheet when `None`.
    pub sheet: Option<String>,
    /// The call's catalogue, to recognise catalogue rows and validate policy areas.
    pub catalogue: Option<&'a Catalogue>,
    /// Unit of bare numbers when the header does not say (经费预算（万元）does). `None`:
    /// a bare number under a header without a unit is refused (`IMPORT_AMOUNT_UNIT_MISSING`).
    pub default_unit: Option<BudgetUnit>,
    /// The uploaded file's name, kept in each demand's [`SourceRow`].
    pub file_name: String,
    /// Caps checked before the workbook is read (see [`crate::workbook_limits`]).
    pub limits: ImportLimits,
    /// Raised when the request that asked for the import went away.
    pub cancel: Cancel,
}

/// A column of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormColumn {
    Category,
    PolicyArea,
    ProjectName,
    Direction,
    Applicant,
    Budget,
    Performance,
    Comments,
}

impl FormColumn {
    const ALL: [Self; 8] = [
        Self::Category,
        Self::PolicyArea,
        Self::ProjectName,
        Self::Direction,
        Self::Applicant,
        Self::Budget,
        Self::Performance,
        Self::Comments,
    ];

    fn field(self) -> DemandField {
        match self {
            Self::Category => DemandField::Category,
            Self::PolicyArea => DemandField::PolicyArea,
            Self::ProjectName => DemandField::ProjectName,
            Self::Direction => DemandField::Direction,
            Self::Applicant => DemandField::Applicant,
            Self::Budget => DemandField::Budget,
            Self::Performance => DemandField::Performance,
            Self::Comments => DemandField::Comments,
        }
    }

    fn of(field: DemandField) -> Self {
        Self::ALL
            .into_iter()
            .find(|c| c.field() == field)
            .unwrap_or(Self::ProjectName)
    }

    /// Recognises a header cell (already stripped of whitespace, brackets made ASCII).
    fn recognise(header: &str) -> Option<Self> {
        let h = header;
        if h == "大类" {
            Some(Self::Category)
        } else if h.starts_with("重点政策") {
            Some(Self::PolicyArea)
        } else if h.starts_with("项目名称") {
            Some(Self::ProjectName)
        } else if h.starts_with("项目方向") {
            Some(Self::Direction)
        } else if h.starts_with("申报") && h.contains("主体") {
            Some(Self::Applicant)
        } else if h.starts_with("经费预算") {
            Some(Self::Budget)
        } else if h.starts_with("项目绩效") {
            Some(Self::Performance)
        } else if h.starts_with("意见") {
            Some(Self::Comments)
        } else {
            None
        }
    }
}

/// A column as found in the sheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundColumn {
    pub column: FormColumn,
    /// 0-based column index.
    pub index: u32,
    /// The header text as written (line breaks removed).
    pub header: String,
}

/// Why a row is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Blank,
    /// A "（可加行）" placeholder.
    Placeholder,
    /// A note below the table (注：…).
    Note,
    /// A catalogue row as the blank form prints it (name, direction, applicant of a
    /// catalogue item) with nothing filled in: the unit does not take the item up.
    Untouched,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRow {
    /// 1-based Excel row number.
    pub row: u32,
    pub reason: SkipReason,
}

/// A demand read from a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedRow {
    /// 1-based Excel row number.
    pub row: u32,
    pub demand: Demand,
}

/// The outcome of an import.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    pub sheet: String,
    pub mode: ImportMode,
    /// 填报单位 as written above the header, if filled in.
    pub submitter: Option<String>,
    /// 1-based row of the header.
    pub header_row: u32,
    pub columns: Vec<FoundColumn>,
    /// The unit bare numbers in the budget column were read in (from the header, else
    /// the import's unit); `None` when neither says, and bare numbers were refused.
    pub budget_unit: Option<BudgetUnit>,
    /// The demands to import: all rows when there is no error, none when there is one in
    /// all-or-nothing mode, the rows without errors in good-rows-only mode.
    pub importable: Vec<ImportedRow>,
    /// Rows read without error (whether or not importable).
    pub good_rows: usize,
    /// Rows with at least one error, in order.
    pub rejected_rows: Vec<u32>,
    /// The first [`ImportLimits::max_errors`] errors, in order.
    pub errors: Vec<CellError>,
    /// All errors found, listed or not.
    pub error_count: usize,
    pub skipped: Vec<SkippedRow>,
}

impl ImportReport {
    /// No row was rejected.
    pub fn is_clean(&self) -> bool {
        self.error_count == 0
    }

    /// Some errors are counted but not listed.
    pub fn errors_truncated(&self) -> bool {
        self.error_count > self.errors.len()
    }
}

/// Excel's column letters for a 0-based index: 0 → A, 25 → Z, 26 → AA.
pub fn column_letter(index: u32) -> String {
    let mut n = index + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

/// Whitespace removed (including the ideographic space and line breaks), full-width
/// brackets made ASCII: how header and placeholder cells are compared.
fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            other => other,
        })
        .collect()
}

fn is_placeholder(text: &str) -> bool {
    let s = squash(strip_item_number(text));
    matches!(s.as_str(), "(可加行)" | "可加行")
}

fn is_note(text: &str) -> bool {
    let s = squash(text);
    ["注:", "注：", "备注", "说明", "填表说明"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// A cell's content as the importer sees it.
#[derive(Debug, Clone, PartialEq)]
enum CellValue {
    Empty,
    Text(String),
    Number(f64),
    Error(String),
}

impl CellValue {
    fn from_data(data: Option<&Data>) -> Self {
        match data {
            None | Some(Data::Empty) => Self::Empty,
            Some(Data::String(s)) | Some(Data::DateTimeIso(s)) | Some(Data::DurationIso(s)) => {
                let t = s.trim();
                if t.is_empty() {
                    Self::Empty
                } else {
                    Self::Text(t.to_string())
                }
            }
            Some(Data::Float(f)) => Self::Number(*f),
            Some(Data::Int(i)) => Self::Number(*i as f64),
            Some(Data::Bool(b)) => Self::Text(b.to_string()),
            Some(Data::DateTime(d)) => Self::Text(d.to_string()),
            Some(Data::Error(e)) => Self::Error(e.to_string()),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }

    /// The cell as text; numbers in their shortest exact form (50, 50.5).
    fn text(&self) -> String {
        match self {
            Self::Empty => String::new(),
            Self::Text(t) | Self::Error(t) => t.clone(),
            Self::Number(n) => n.to_string(),
        }
    }
}

/// The sheet's non-empty cells, stored sparsely: a sheet whose only cells are `A1` and
/// `XFD1048576` costs two entries, not rows × columns.
#[derive(Default)]
struct Cells {
    /// Row → column → value.
    rows: BTreeMap<u32, BTreeMap<u32, Data>>,
}

impl Cells {
    fn get(&self, row: u32, col: u32) -> Option<&Data> {
        self.rows.get(&row)?.get(&col)
    }

    /// The cells of a row, left to right.
    fn row(&self, row: u32) -> impl Iterator<Item = (u32, CellValue)> + '_ {
        self.rows
            .get(&row)
            .into_iter()
            .flatten()
            .map(|(c, d)| (*c, CellValue::from_data(Some(d))))
    }
}

/// The sheet with merged regions resolved.
struct Grid {
    cells: Cells,
    merged: Vec<Dimensions>,
    /// Merged regions covering each column read, sorted by first row, so that a lookup
    /// is a binary search rather than a scan of every region (a sheet may hold many).
    by_column: HashMap<u32, Vec<Dimensions>>,
}

impl Grid {
    fn raw(&self, row: u32, col: u32) -> CellValue {
        CellValue::from_data(self.cells.get(row, col))
    }

    /// Indexes the merged regions covering `columns`.
    fn index_columns(&mut self, columns: &[u32]) {
        for &col in columns {
            let mut regions: Vec<Dimensions> = self
                .merged
                .iter()
                .filter(|m| m.start.1 <= col && col <= m.end.1)
                .copied()
                .collect();
            regions.sort_by_key(|m| m.start.0);
            self.by_column.insert(col, regions);
        }
    }

    fn region(&self, row: u32, col: u32) -> Option<&Dimensions> {
        match self.by_column.get(&col) {
            Some(regions) => {
                // Regions do not overlap: the candidate is the last one starting at or
                // above `row`.
                let after = regions.partition_point(|m| m.start.0 <= row);
                after
                    .checked_sub(1)
                    .map(|i| &regions[i])
                    .filter(|m| m.contains(row, col))
            }
            None => self.merged.iter().find(|m| m.contains(row, col)),
        }
    }

    /// The value of a cell, taking merged regions into account (see the module docs).
    fn cell(&self, row: u32, col: u32, fill_down: bool) -> CellValue {
        if let Some(region) = self.region(row, col) {
            let (r0, c0) = region.start;
            if (r0, c0) == (row, col) {
                return self.raw(row, col);
            }
            if c0 == col && fill_down {
                return self.raw(r0, c0);
            }
            return CellValue::Empty;
        }
        self.raw(row, col)
    }
}

/// Reads a 需求征集表 from XLSX bytes. The workbook is checked against
/// [`ImportOptions::limits`] before it is read, and the work stops when
/// [`ImportOptions::cancel`] is raised.
pub fn import_demands(
    bytes: &[u8],
    options: &ImportOptions<'_>,
) -> Result<ImportReport, ImportFailure> {
    crate::workbook_limits::inspect(bytes, &options.limits, &options.cancel)?;
    // The bytes passed the caps; a panic left in the reader must still not take the
    // server down (the fuzz tests assert it never happens).
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_workbook(bytes, options)
    }))
    .unwrap_or(Err(ImportFailure::ReaderFailed))
}

fn read_workbook(bytes: &[u8], options: &ImportOptions<'_>) -> Result<ImportReport, ImportFailure> {
    let not_a_workbook = |e: calamine::XlsxError| ImportFailure::NotAWorkbook {
        detail: e.to_string(),
    };
    let mut workbook: Xlsx<Cursor<&[u8]>> =
        open_workbook_from_rs(Cursor::new(bytes)).map_err(not_a_workbook)?;
    let sheet = match &options.sheet {
        Some(name) => {
            if !workbook.sheet_names().iter().any(|s| s == name) {
                return Err(ImportFailure::SheetMissing {
                    sheet: name.clone(),
                });
            }
            name.clone()
        }
        None => workbook
            .sheet_names()
            .first()
            .cloned()
            .ok_or(ImportFailure::NoSheet)?,
    };
    // Cell by cell (never calamine's dense range), keeping the non-empty ones.
    let mut cells = Cells::default();
    {
        let mut reader = workbook
            .worksheet_cells_reader(&sheet)
            .map_err(not_a_workbook)?;
        let mut read: usize = 0;
        while let Some(cell) = reader.next_cell().map_err(not_a_workbook)? {
            read += 1;
            if read.is_multiple_of(4096) {
                options
                    .cancel
                    .check()
                    .map_err(|_| ImportFailure::Cancelled)?;
            }
            let data: Data = cell.get_value().clone().into();
            if matches!(data, Data::Empty) {
                continue;
            }
            let (row, col) = cell.get_position();
            cells.rows.entry(row).or_default().insert(col, data);
        }
    }
    let merged = match workbook.worksheet_merge_cells(&sheet) {
        Some(Ok(regions)) => regions,
        Some(Err(e)) => return Err(not_a_workbook(e)),
        None => Vec::new(),
    };
    let mut grid = Grid {
        cells,
        merged,
        by_column: HashMap::new(),
    };
    read_sheet(&mut grid, &sheet, options)
}

fn read_sheet(
    grid: &mut Grid,
    sheet: &str,
    options: &ImportOptions<'_>,
) -> Result<ImportReport, ImportFailure> {
    let (Some(&first_row), Some(&last_row)) = (
        grid.cells.rows.keys().next(),
        grid.cells.rows.keys().next_back(),
    ) else {
        return Err(ImportFailure::HeaderNotFound);
    };
    // Rows are walked one by one below: the cap holds even when the inspection was
    // given other limits.
    if last_row >= options.limits.max_rows {
        return Err(ImportFailure::LimitExceeded(LimitExceeded::Rows {
            row: u64::from(last_row) + 1,
            max: options.limits.max_rows,
        }));
    }

    // The header: the first row naming at least four of the form's columns.
    let mut header = None;
    for row in first_row..=last_row.min(first_row.saturating_add(HEADER_SEARCH_ROWS)) {
        let mut found: Vec<FoundColumn> = Vec::new();
        for (col, value) in grid.cells.row(row) {
            let text = value.text();
            if let Some(column) = FormColumn::recognise(&squash(&text))
                && !found.iter().any(|f| f.column == column)
            {
                found.push(FoundColumn {
                    column,
                    index: col,
                    header: text.chars().filter(|c| *c != '\n' && *c != '\r').collect(),
                });
            }
        }
        if found.len() >= 4 {
            header = Some((row, found));
            break;
        }
    }
    let (header_row, columns) = header.ok_or(ImportFailure::HeaderNotFound)?;
    for required in [
        FormColumn::Category,
        FormColumn::ProjectName,
        FormColumn::Budget,
    ] {
        if !columns.iter().any(|c| c.column == required) {
            return Err(ImportFailure::ColumnMissing { column: required });
        }
    }
    let indices: Vec<u32> = columns.iter().map(|f| f.index).collect();
    grid.index_columns(&indices);
    let grid = &*grid;
    let col = |c: FormColumn| columns.iter().find(|f| f.column == c);
    let budget_unit = col(FormColumn::Budget)
        .and_then(|f| header_unit(&squash(&f.header)))
        .or(options.default_unit);

    // 填报单位 above the header: after the colon in its cell, or in the next filled cell.
    let submitter = (first_row..header_row).find_map(|row| {
        grid.cells.row(row).find_map(|(c, value)| {
            let text = value.text();
            let at = text.find("填报单位")?;
            let after = text[at + "填报单位".len()..]
                .trim_start_matches([':', '：'])
                .trim_matches(|ch: char| ch.is_whitespace());
            if !after.is_empty() {
                return Some(after.to_string());
            }
            grid.cells
                .row(row)
                .filter(|(c2, _)| *c2 > c)
                .map(|(_, v)| v.text())
                .find(|t| !t.trim().is_empty())
                .map(|t| t.trim().to_string())
        })
    });

    // A header spanning merged rows ends at the lowest merged region starting on it.
    let header_end = grid
        .merged
        .iter()
        .filter(|m| m.start.0 == header_row)
        .map(|m| m.end.0)
        .max()
        .unwrap_or(header_row);

    let mut report = ImportReport {
        sheet: sheet.to_string(),
        mode: options.mode,
        submitter,
        header_row: header_row + 1,
        columns: columns.clone(),
        budget_unit,
        importable: Vec::new(),
        good_rows: 0,
        rejected_rows: Vec::new(),
        errors: Vec::new(),
        error_count: 0,
        skipped: Vec::new(),
    };
    let max_errors = options.limits.max_errors;
    let record = |report: &mut ImportReport, excel_row: u32, errors: Vec<CellError>| {
        report.rejected_rows.push(excel_row);
        report.error_count += errors.len();
        let room = max_errors.saturating_sub(report.errors.len());
        report.errors.extend(errors.into_iter().take(room));
    };
    let mut good = Vec::new();
    for row in header_end.saturating_add(1)..=last_row {
        if row.is_multiple_of(256) {
            options
                .cancel
                .check()
                .map_err(|_| ImportFailure::Cancelled)?;
        }
        let excel_row = row + 1;
        let raw_filled: Vec<String> = grid
            .cells
            .row(row)
            .map(|(_, v)| v.text())
            .filter(|t| !t.trim().is_empty())
            .collect();
        if let [only] = raw_filled.as_slice()
            && is_note(only)
        {
            report.skipped.push(SkippedRow {
                row: excel_row,
                reason: SkipReason::Note,
            });
            continue;
        }
        let value = |c: FormColumn| -> CellValue {
            col(c).map_or(CellValue::Empty, |f| {
                grid.cell(row, f.index, c != FormColumn::Budget)
            })
        };
        let cells: Vec<(FormColumn, CellValue)> =
            FormColumn::ALL.iter().map(|&c| (c, value(c))).collect();
        let get = |c: FormColumn| {
            cells
                .iter()
                .find(|(k, _)| *k == c)
                .map(|(_, v)| v.clone())
                .unwrap_or(CellValue::Empty)
        };
        // The row's own cells: all but the merged grouping columns.
        let own: Vec<&(FormColumn, CellValue)> = cells
            .iter()
            .filter(|(c, _)| !matches!(c, FormColumn::Category | FormColumn::PolicyArea))
            .collect();
        let name_cell = get(FormColumn::ProjectName);
        let name_is_number_only =
            matches!(&name_cell, CellValue::Text(t) if strip_item_number(t).is_empty());
        let own_filled: Vec<&&(FormColumn, CellValue)> = own
            .iter()
            .filter(|(c, v)| {
                let bare_number = *c == FormColumn::ProjectName && name_is_number_only;
                !v.is_empty() && !bare_number
            })
            .collect();
        let placeholder_in: Vec<FormColumn> = own_filled
            .iter()
            .filter(|(_, v)| matches!(v, CellValue::Text(t) if is_placeholder(t)))
            .map(|(c, _)| *c)
            .collect();
        if own_filled.is_empty() {
            // Nothing of its own: at most the (merged) grouping columns or an item number.
            report.skipped.push(SkippedRow {
                row: excel_row,
                reason: SkipReason::Blank,
            });
            continue;
        }
        if own_filled.len() == placeholder_in.len() {
            report.skipped.push(SkippedRow {
                row: excel_row,
                reason: SkipReason::Placeholder,
            });
            continue;
        }

        let mut errors: Vec<CellError> = Vec::new();
        let cell_error = |c: FormColumn, problem: CellProblem| {
            let found = col(c);
            CellError {
                row: excel_row,
                column: found.map(|f| column_letter(f.index)),
                header: found.map_or_else(
                    || c.field().header(Lang::ZhCn).to_string(),
                    |f| f.header.clone(),
                ),
                problem,
            }
        };
        for (c, v) in &cells {
            if let CellValue::Error(text) = v {
                errors.push(cell_error(
                    *c,
                    CellProblem::ErrorValue { text: text.clone() },
                ));
            }
        }
        if placeholder_in.contains(&FormColumn::ProjectName) {
            errors.push(cell_error(
                FormColumn::ProjectName,
                CellProblem::PlaceholderNotReplaced,
            ));
        }
        let category_text = get(FormColumn::Category).text();
        let category = if category_text.trim().is_empty() {
            errors.push(cell_error(
                FormColumn::Category,
                CellProblem::CategoryMissing,
            ));
            None
        } else {
            let c = Category::from_label(&category_text);
            if c.is_none() {
                errors.push(cell_error(
                    FormColumn::Category,
                    CellProblem::UnknownCategory {
                        text: category_text.trim().to_string(),
                    },
                ));
            }
            c
        };
        let budget = match get(FormColumn::Budget) {
            CellValue::Empty | CellValue::Error(_) => None,
            CellValue::Number(n) if budget_unit.is_none() => {
                errors.push(cell_error(
                    FormColumn::Budget,
                    CellProblem::AmountUnitMissing {
                        text: n.to_string(),
                    },
                ));
                None
            }
            CellValue::Number(n) => {
                let m = budget_unit.and_then(|unit| number_to_money(n, unit));
                if m.is_none() {
                    errors.push(cell_error(
                        FormColumn::Budget,
                        CellProblem::NotAnAmount {
                            text: n.to_string(),
                        },
                    ));
                }
                m
            }
            CellValue::Text(t) => match parse_budget_in(&t, budget_unit) {
                Ok(m) => Some(m),
                Err(problem) => {
                    let problem = match problem {
                        AmountProblem::NotAnAmount => CellProblem::NotAnAmount { text: t },
                        AmountProblem::UnitMissing => CellProblem::AmountUnitMissing { text: t },
                    };
                    errors.push(cell_error(FormColumn::Budget, problem));
                    None
                }
            },
        };
        let text_of = |c: FormColumn| match get(c) {
            CellValue::Error(_) => String::new(),
            v => v.text(),
        };
        let Some(category) = category else {
            record(&mut report, excel_row, errors);
            continue;
        };
        // A catalogue row as the blank form printed it, nothing filled in: not a demand.
        if errors.is_empty()
            && [
                FormColumn::Budget,
                FormColumn::Performance,
                FormColumn::Comments,
            ]
            .iter()
            .all(|c| get(*c).is_empty())
            && let Some(catalogue) = options.catalogue
            && printed_item(
                catalogue,
                category,
                &text_of(FormColumn::ProjectName),
                &text_of(FormColumn::Direction),
                &text_of(FormColumn::Applicant),
            )
            .is_some()
        {
            report.skipped.push(SkippedRow {
                row: excel_row,
                reason: SkipReason::Untouched,
            });
            continue;
        }

        let mut demand = Demand {
            id: None,
            submitter: report.submitter.clone().unwrap_or_default(),
            category,
            policy_area: text_of(FormColumn::PolicyArea).trim().to_string(),
            origin: DemandOrigin::AddedRow,
            project_name: strip_item_number(&text_of(FormColumn::ProjectName)).to_string(),
            direction: text_of(FormColumn::Direction),
            applicant: text_of(FormColumn::Applicant),
            budget,
            performance_text: text_of(FormColumn::Performance),
            indicators: Vec::new(),
            comments: text_of(FormColumn::Comments),
            source: Some(SourceRow {
                file: options.file_name.clone(),
                sheet: sheet.to_string(),
                row: excel_row,
            }),
        };
        if let Some(catalogue) = options.catalogue {
            link_to_catalogue(&mut demand, catalogue);
        }
        let placeholder_name = placeholder_in.contains(&FormColumn::ProjectName);
        if let Err(problems) = validate_demand(&demand, options.catalogue) {
            for p in problems {
                // A placeholder name is already reported; an empty name would repeat it.
                if placeholder_name && p.field == DemandField::ProjectName {
                    continue;
                }
                // A budget that failed to parse is already reported as not an amount.
                if p.field == DemandField::Budget
                    && errors
                        .iter()
                        .any(|e| matches!(e.problem, CellProblem::NotAnAmount { .. }))
                {
                    continue;
                }
                errors.push(cell_error(FormColumn::of(p.field), CellProblem::Demand(p)));
            }
        }
        if errors.is_empty() {
            good.push(ImportedRow {
                row: excel_row,
                demand,
            });
        } else {
            record(&mut report, excel_row, errors);
        }
    }
    report.good_rows = good.len();
    report.importable = match options.mode {
        ImportMode::AllOrNothing if report.error_count > 0 => Vec::new(),
        _ => good,
    };
    Ok(report)
}

/// The catalogue item a row shows as the blank form prints it ([`crate::export::form_template`]):
/// its name (or a blank name cell, the second row of an item), and a direction and
/// applicant that are blank or the item's own. Texts compare without whitespace, so a
/// cell re-wrapped by Excel still counts as printed.
fn printed_item<'a>(
    catalogue: &'a Catalogue,
    category: Category,
    name: &str,
    direction: &str,
    applicant: &str,
) -> Option<ItemRef<'a>> {
    let as_printed = |cell: &str, printed: &str| {
        let cell = squash(cell);
        cell.is_empty() || cell == squash(printed)
    };
    let name_blank = strip_item_number(name).trim().is_empty();
    if name_blank && squash(direction).is_empty() && squash(applicant).is_empty() {
        return None;
    }
    let mut candidates: Box<dyn Iterator<Item = ItemRef<'a>>> = if name_blank {
        Box::new(catalogue.items().filter(move |r| r.category == category))
    } else {
        Box::new(catalogue.items_named(category, name))
    };
    candidates.find(|r| {
        as_printed(direction, &r.item.direction) && as_printed(applicant, &r.item.applicant)
    })
}

/// Makes a row refer to the catalogue item of its category with the same name (the
/// direction or applicant decides between two rows of one item); blank direction and
/// applicant cells take the item's. A row with a blank name cell whose direction is an
/// item's (the second row of a two-row item, as printed) refers to that item and takes
/// its name.
fn link_to_catalogue(demand: &mut Demand, catalogue: &Catalogue) {
    let squashed = |s: &str| squash(s);
    let candidates: Vec<_> = if demand.project_name.trim().is_empty() {
        let direction = squashed(&demand.direction);
        if direction.is_empty() {
            return;
        }
        catalogue
            .items()
            .filter(|r| r.category == demand.category && squashed(&r.item.direction) == direction)
            .collect()
    } else {
        catalogue
            .items_named(demand.category, &demand.project_name)
            .collect()
    };
    let chosen = match candidates.as_slice() {
        [] => return,
        [one] => *one,
        many => *many
            .iter()
            .find(|c| squashed(&c.item.direction) == squashed(&demand.direction))
            .or_else(|| {
                many.iter()
                    .find(|c| squashed(&c.item.applicant) == squashed(&demand.applicant))
            })
            .unwrap_or(&many[0]),
    };
    demand.origin = DemandOrigin::CatalogueItem {
        item_id: chosen.item.id.clone(),
    };
    if demand.project_name.trim().is_empty() {
        demand.project_name = chosen.item.name.clone();
    }
    if demand.policy_area.is_empty() {
        demand.policy_area = chosen.policy_area.to_string();
    }
    if demand.direction.trim().is_empty() {
        demand.direction = chosen.item.direction.clone();
    }
    if demand.applicant.trim().is_empty() {
        demand.applicant = chosen.item.applicant.clone();
    }
}

#[cfg(test)]
mod tests;
