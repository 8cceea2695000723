//! What the programme service returns (exports, import outcomes, duplicate candidates,
//! budget and execution views) and the requests it takes.

use super::*;

/// A file to download.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportFile {
    pub file_name: String,
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Xlsx,
    Csv,
}

impl ExportFormat {
    pub(super) fn file(self, stem: &str, sheets: &[Sheet]) -> ServiceResult<ExportFile> {
        match self {
            Self::Xlsx => {
                let bytes = write_xlsx(sheets).map_err(|e| {
                    ServiceError::Store(StoreError::Backend(format!("writing XLSX: {e}")))
                })?;
                Ok(ExportFile {
                    file_name: format!("{stem}.xlsx"),
                    media_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    bytes,
                })
            }
            Self::Csv => Ok(ExportFile {
                file_name: format!("{stem}.csv"),
                media_type: "text/csv; charset=utf-8",
                bytes: sheets.first().map(write_csv).unwrap_or_default(),
            }),
        }
    }
}

impl Services {
    /// Writes `sheets` as a file on the work pool: writing an XLSX of thousands of rows is
    /// CPU work that must not hold an async worker.
    pub(super) async fn render(
        &self,
        format: ExportFormat,
        stem: String,
        sheets: Vec<Sheet>,
    ) -> ServiceResult<ExportFile> {
        self.work.run(move |_| format.file(&stem, &sheets)).await?
    }
}

/// One row rejected by an import.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowError {
    pub row: u32,
    /// Column letter, absent when the column is missing from the sheet.
    pub column: Option<String>,
    pub header: String,
    pub code: String,
    pub message_zh: String,
    pub message_en: String,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    pub created: Vec<Instance>,
    /// The first errors (at most [`ImportLimits::max_errors`]).
    pub errors: Vec<RowError>,
    /// All errors found, listed or not.
    pub error_count: usize,
    pub rejected_rows: Vec<u32>,
    pub skipped_rows: Vec<u32>,
    pub submitter: Option<String>,
}

/// A likely duplicate pair of demands.
#[derive(Debug, Clone)]
pub struct DuplicateCandidate {
    pub first: Instance,
    pub second: Instance,
    pub scores: SimilarityScores,
    pub reasons: Vec<DuplicateReason>,
}

/// A project's budget as shown to users.
#[derive(Debug, Clone)]
pub struct BudgetView {
    pub instance: Instance,
    pub lines: Vec<(BudgetLine, Money)>,
    pub spending: Vec<SpendingRecord>,
    pub budgeted: Money,
    pub spent: Money,
    pub execution_rate: Option<f64>,
    /// The approved funding (`data.approved_budget`), once approved.
    pub approved: Option<Money>,
    /// What was disbursed (拨付) in all.
    pub disbursed: Money,
    /// spent ÷ disbursed; `None` before any disbursement.
    pub rate_of_disbursed: Option<f64>,
    /// spent ÷ approved funding; `None` before approval.
    pub rate_of_approved: Option<f64>,
    pub disbursements: Vec<grantflow_store::funding::Disbursement>,
}

impl BudgetView {
    pub fn remaining(&self) -> Money {
        self.budgeted.saturating_sub(self.spent)
    }
}

/// Budget execution per project of a call and over the call.
#[derive(Debug, Clone)]
pub struct CallExecutionView {
    pub projects: Vec<(Instance, Money, Money, Option<f64>)>,
    pub budgeted: Money,
    pub spent: Money,
    pub execution_rate: Option<f64>,
}

/// A call's evaluation summary and budget execution.
#[derive(Debug, Clone)]
pub struct CallSummaryView {
    pub call: Call,
    pub summary: CallSummary,
    pub execution: CallExecutionView,
    pub demands: usize,
    pub projects: usize,
}

/// The evaluator's judgement of one qualitative indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub indicator_id: String,
    pub achievement: Achievement,
    pub percent: f64,
}

/// A change request's values applied to its project.
#[derive(Debug, Clone)]
pub struct OpenCall {
    pub year: Option<i32>,
    pub title: Option<String>,
    pub issuer: Option<String>,
    /// The last day for demands; the catalogue's deadline when absent.
    pub closing_date: Option<NaiveDate>,
    /// Calendar days to correct an application returned after closing; the catalogue's
    /// `correction_window_days` when absent, else 5.
    pub correction_window_days: Option<u32>,
    pub catalogue: Catalogue,
}

/// Actual values to record at one checkpoint.
#[derive(Debug, Clone)]
pub struct ActualInput {
    pub indicator_id: String,
    pub value: Value,
    pub explanation: Option<String>,
}

pub(super) const SUBMITTED_DEMAND_STATES: [&str; 2] = ["city_review", "province_review"];
pub(super) const CLOSED_DEMAND_STATES: [&str; 5] = [
    "drafting",
    "withdrawn",
    "lapsed",
    "rejected",
    "rejected_duplicate",
];

/// How to import a 需求征集表: all or nothing, and the unit of bare numbers under a budget
/// header that does not say (`None`: such cells are refused).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemandImport {
    pub mode: ImportMode,
    pub amount_unit: Option<BudgetUnit>,
}
