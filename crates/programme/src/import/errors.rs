//! Errors of an import: a cell's problem (row, column, code) and a failure of the whole
//! workbook, each with its stable code and bilingual message.

#[allow(
    clippy::wildcard_imports,
    reason = "the parent module's types and imports"
)]
use super::*;

/// What is wrong with a cell.
#[derive(Debug, Clone, PartialEq)]
pub enum CellProblem {
    /// The budget cell is not an amount.
    NotAnAmount {
        text: String,
    },
    /// A bare number in the budget column, and neither the header nor the import's
    /// `amountUnit` says whether it is 元 or 万元.
    AmountUnitMissing {
        text: String,
    },
    CategoryMissing,
    UnknownCategory {
        text: String,
    },
    /// The name cell still says （可加行） while other cells are filled in.
    PlaceholderNotReplaced,
    /// A formula error (#REF!, #VALUE! …) in the cell.
    ErrorValue {
        text: String,
    },
    /// A rule of [`validate_demand`].
    Demand(DemandError),
}

/// An error in one row, naming its cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellError {
    /// 1-based Excel row number.
    pub row: u32,
    /// Column letter (`F`); `None` when the column is absent from the sheet.
    pub column: Option<String>,
    /// The header as written in the sheet, or the form's header when absent.
    pub header: String,
    pub problem: CellProblem,
}

impl UserFacing for CellError {
    fn code(&self) -> &'static str {
        match &self.problem {
            CellProblem::NotAnAmount { .. } => "IMPORT_NOT_AN_AMOUNT",
            CellProblem::AmountUnitMissing { .. } => "IMPORT_AMOUNT_UNIT_MISSING",
            CellProblem::CategoryMissing => "IMPORT_CATEGORY_MISSING",
            CellProblem::UnknownCategory { .. } => "IMPORT_UNKNOWN_CATEGORY",
            CellProblem::PlaceholderNotReplaced => "IMPORT_PLACEHOLDER_NOT_REPLACED",
            CellProblem::ErrorValue { .. } => "IMPORT_ERROR_VALUE",
            CellProblem::Demand(e) => e.code(),
        }
    }

    fn message(&self, lang: Lang) -> String {
        let row = self.row;
        let header = &self.header;
        let (zh_at, en_at) = match &self.column {
            Some(col) => (
                format!("第{row}行 {col}列「{header}」"),
                format!("row {row}, column {col} ({header})"),
            ),
            None => (
                format!("第{row}行「{header}」"),
                format!("row {row} ({header})"),
            ),
        };
        let (zh, en) = match &self.problem {
            CellProblem::NotAnAmount { text } => (
                format!("\"{text}\" 不是金额"),
                format!("\"{text}\" is not an amount"),
            ),
            CellProblem::AmountUnitMissing { text } => (
                format!(
                    "\"{text}\" 未注明单位：请在单元格或表头注明元或万元（如“80万元”“经费预算（万元）”），或导入时指定 amountUnit"
                ),
                format!(
                    "\"{text}\" has no unit: write 元 or 万元 in the cell or the header (\"80万元\", \"经费预算（万元）\"), or give amountUnit with the import"
                ),
            ),
            CellProblem::CategoryMissing => {
                ("大类为空".to_string(), "the category is empty".to_string())
            }
            CellProblem::UnknownCategory { text } => (
                format!("\"{text}\" 不是八大类之一"),
                format!("\"{text}\" is not one of the eight categories"),
            ),
            CellProblem::PlaceholderNotReplaced => (
                "请将（可加行）替换为项目名称".to_string(),
                "replace （可加行） with the project name".to_string(),
            ),
            CellProblem::ErrorValue { text } => (
                format!("单元格为错误值 {text}"),
                format!("the cell holds the error value {text}"),
            ),
            CellProblem::Demand(e) => (e.message(Lang::ZhCn), e.message(Lang::En)),
        };
        pick(lang, format!("{zh_at}：{zh}"), format!("{en_at}: {en}"))
    }
}
impl_error_via_user_facing!(CellError);

/// Why a file cannot be imported at all.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportFailure {
    NotAWorkbook {
        detail: String,
    },
    SheetMissing {
        sheet: String,
    },
    NoSheet,
    /// No row within the first rows has the form's headers.
    HeaderNotFound,
    /// The header lacks a required column (大类, 项目名称 or 经费预算).
    ColumnMissing {
        column: FormColumn,
    },
    /// The workbook is beyond a cap of [`ImportLimits`].
    LimitExceeded(LimitExceeded),
    /// A cell, row, dimension or merged-region reference outside Excel's grid or
    /// malformed (`A99999999999`, `B2:A1`).
    BadCellReference {
        reference: String,
    },
    /// The XLSX reader failed in a way it should have reported as an error; the file is
    /// treated as unreadable rather than bringing the server down.
    ReaderFailed,
    /// The import was cancelled (its request timed out or went away).
    Cancelled,
}

impl UserFacing for ImportFailure {
    fn code(&self) -> &'static str {
        match self {
            Self::NotAWorkbook { .. } => "IMPORT_NOT_A_WORKBOOK",
            Self::SheetMissing { .. } => "IMPORT_SHEET_MISSING",
            Self::NoSheet => "IMPORT_NO_SHEET",
            Self::HeaderNotFound => "IMPORT_HEADER_NOT_FOUND",
            Self::ColumnMissing { .. } => "IMPORT_COLUMN_MISSING",
            Self::LimitExceeded(l) => match l {
                LimitExceeded::ZipEntries { .. } => "IMPORT_TOO_MANY_PARTS",
                LimitExceeded::DecompressedBytes { .. } => "IMPORT_TOO_LARGE",
                LimitExceeded::Rows { .. } => "IMPORT_TOO_MANY_ROWS",
                LimitExceeded::Cells { .. } => "IMPORT_TOO_MANY_CELLS",
                LimitExceeded::MergedRegions { .. } => "IMPORT_TOO_MANY_MERGED_REGIONS",
            },
            Self::BadCellReference { .. } => "IMPORT_BAD_CELL_REFERENCE",
            Self::ReaderFailed => "IMPORT_NOT_A_WORKBOOK",
            Self::Cancelled => "IMPORT_CANCELLED",
        }
    }

    fn message(&self, lang: Lang) -> String {
        match self {
            Self::NotAWorkbook { detail } => pick(
                lang,
                format!("无法读取该文件，请上传 .xlsx 格式的需求征集表（{detail}）"),
                format!("cannot read the file; upload the form as .xlsx ({detail})"),
            ),
            Self::SheetMissing { sheet } => pick(
                lang,
                format!("工作簿中没有工作表「{sheet}」"),
                format!("the workbook has no sheet `{sheet}`"),
            ),
            Self::NoSheet => pick(
                lang,
                "工作簿中没有工作表".to_string(),
                "the workbook has no sheet".to_string(),
            ),
            Self::HeaderNotFound => pick(
                lang,
                "未找到表头行（大类、项目名称、经费预算等）".to_string(),
                "no header row (大类, 项目名称, 经费预算 …) was found".to_string(),
            ),
            Self::ColumnMissing { column } => pick(
                lang,
                format!("表头缺少「{}」列", column.field().header(Lang::ZhCn)),
                format!(
                    "the header has no {} column",
                    column.field().header(Lang::En)
                ),
            ),
            Self::LimitExceeded(l) => limit_message(lang, l),
            Self::BadCellReference { reference } => pick(
                lang,
                format!("单元格引用「{reference}」无效或超出 Excel 的范围（最大 XFD1048576）"),
                format!(
                    "the cell reference `{reference}` is malformed or beyond Excel's grid (XFD1048576 at most)"
                ),
            ),
            Self::ReaderFailed => pick(
                lang,
                "无法读取该文件，请上传 .xlsx 格式的需求征集表（文件已损坏）".to_string(),
                "cannot read the file; upload the form as .xlsx (the file is damaged)".to_string(),
            ),
            Self::Cancelled => pick(
                lang,
                "导入已取消（请求超时）".to_string(),
                "the import was cancelled (the request timed out)".to_string(),
            ),
        }
    }
}

fn limit_message(lang: Lang, l: &LimitExceeded) -> String {
    match l {
        LimitExceeded::ZipEntries { found, max } => pick(
            lang,
            format!("文件包含 {found} 个部件，最多 {max} 个，不是正常的需求征集表"),
            format!("the file has {found} parts, at most {max} are accepted"),
        ),
        LimitExceeded::DecompressedBytes { max } => pick(
            lang,
            format!("文件解压后超过 {} MB，请拆分后上传", max / (1024 * 1024)),
            format!(
                "the file is over {} MB once decompressed; split it",
                max / (1024 * 1024)
            ),
        ),
        LimitExceeded::Rows { row, max } => pick(
            lang,
            format!("工作表超过 {max} 行（第 {row} 行仍有内容），请删除多余的行或拆分文件"),
            format!(
                "the sheet goes beyond {max} rows (row {row} has content); delete the extra rows or split the file"
            ),
        ),
        LimitExceeded::Cells { max } => pick(
            lang,
            format!("工作表超过 {max} 个单元格，请拆分文件"),
            format!("the sheet has more than {max} cells; split the file"),
        ),
        LimitExceeded::MergedRegions { max } => pick(
            lang,
            format!("工作表超过 {max} 个合并单元格区域"),
            format!("the sheet has more than {max} merged regions"),
        ),
    }
}
impl_error_via_user_facing!(ImportFailure);
