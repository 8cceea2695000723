//! Programme refusals: a rule of the programme refused an action (no budget line, beyond
//! the line, not approved, an import with bad rows …). The reason is typed; clients see it
//! as `details.reason` of an INVALID_INPUT error, with the refusal's own details.

use super::*;

/// Why a programme rule refused an action. Clients switch on [`RefusalReason::as_str`];
/// never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    CatalogueInvalid,
    WrongWorkflow,
    CallClosed,
    ImportFailed,
    ImportRejected,
    DifferentCalls,
    NoCall,
    NotApproved,
    ProjectClosed,
    SpendingBeforeApproval,
    BudgetLineWrongYear,
    BudgetLineMissing,
    BudgetExceeded,
    ChangeNotApproved,
    NoParent,
    NotInEvaluation,
    EvaluationIncomplete,
    UnknownCall,
    UnknownCatalogueItem,
    NotEligible,
    FundingExceeded,
    BudgetOverApproved,
    DisbursementOverApproved,
    BudgetLineBelowSpent,
    ChangeLinesInvalid,
    FundingPlanInvalid,
    PaymentNotDue,
    TaskBookNotSigned,
    SpendingBeyondDisbursed,
    /// A rule of `grantflow-programme` with its own stable code (e.g. a duplicate search
    /// past its cap).
    Rule(&'static str),
}

impl RefusalReason {
    /// Every reason with a code of its own, with what it means (for the README's table).
    pub const ALL: [(Self, &'static str); 29] = [
        (
            Self::CatalogueInvalid,
            "the call's catalogue does not validate",
        ),
        (
            Self::WrongWorkflow,
            "the instance is not of the workflow the action needs",
        ),
        (
            Self::CallClosed,
            "the call is closed: no new demands or applications, no submissions",
        ),
        (
            Self::ImportFailed,
            "the workbook cannot be read (`details.code`)",
        ),
        (
            Self::ImportRejected,
            "rows of the workbook are invalid (`details.rows`); nothing was imported",
        ),
        (
            Self::DifferentCalls,
            "demands of different calls cannot be merged",
        ),
        (Self::NoCall, "the demand belongs to no call"),
        (Self::NotApproved, "the project is not approved yet"),
        (Self::ProjectClosed, "the project is closed"),
        (
            Self::SpendingBeforeApproval,
            "spending dated before the approval",
        ),
        (
            Self::BudgetLineWrongYear,
            "the budget line is for another year",
        ),
        (
            Self::BudgetLineMissing,
            "no spending without a budget line (`details.lineId`)",
        ),
        (
            Self::BudgetExceeded,
            "spending beyond what is left on the line (`details.remaining`)",
        ),
        (
            Self::ChangeNotApproved,
            "the change request is not approved",
        ),
        (Self::NoParent, "the change request belongs to no project"),
        (
            Self::NotInEvaluation,
            "the project is not in its evaluation",
        ),
        (
            Self::EvaluationIncomplete,
            "the evaluation's input is incomplete (`details.problems`)",
        ),
        (
            Self::UnknownCall,
            "no stored call has this id (`details.callId`)",
        ),
        (
            Self::UnknownCatalogueItem,
            "the call's catalogue has no such item (`details.catalogueItem`)",
        ),
        (
            Self::NotEligible,
            "the applicant's kind may not apply for the item (`details.eligible`)",
        ),
        (
            Self::FundingExceeded,
            "an approval beyond what is left of the call's funding plan (`details.pool`, `details.remaining`)",
        ),
        (
            Self::BudgetOverApproved,
            "budget lines beyond the approved funding (`details.remaining`)",
        ),
        (
            Self::DisbursementOverApproved,
            "a disbursement beyond the approved funding (`details.remaining`)",
        ),
        (
            Self::BudgetLineBelowSpent,
            "a budget change takes a line below what was spent on it",
        ),
        (
            Self::ChangeLinesInvalid,
            "a change request's budget lines cannot be read (`details.entry`)",
        ),
        (
            Self::FundingPlanInvalid,
            "the funding plan does not check (amounts, sums, keys)",
        ),
        (
            Self::PaymentNotDue,
            "a post-hoc subsidy is paid only in its payment stage",
        ),
        (
            Self::TaskBookNotSigned,
            "no disbursement or spending before the task book is signed",
        ),
        (
            Self::SpendingBeyondDisbursed,
            "spending beyond what was disbursed (`details.remaining`)",
        ),
    ];

    /// The stable code, e.g. `BUDGET_EXCEEDED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CatalogueInvalid => "CATALOGUE_INVALID",
            Self::WrongWorkflow => "WRONG_WORKFLOW",
            Self::CallClosed => "CALL_CLOSED",
            Self::ImportFailed => "IMPORT_FAILED",
            Self::ImportRejected => "IMPORT_REJECTED",
            Self::DifferentCalls => "DIFFERENT_CALLS",
            Self::NoCall => "NO_CALL",
            Self::NotApproved => "NOT_APPROVED",
            Self::ProjectClosed => "PROJECT_CLOSED",
            Self::SpendingBeforeApproval => "SPENDING_BEFORE_APPROVAL",
            Self::BudgetLineWrongYear => "BUDGET_LINE_WRONG_YEAR",
            Self::BudgetLineMissing => "BUDGET_LINE_MISSING",
            Self::BudgetExceeded => "BUDGET_EXCEEDED",
            Self::ChangeNotApproved => "CHANGE_NOT_APPROVED",
            Self::NoParent => "NO_PARENT",
            Self::NotInEvaluation => "NOT_IN_EVALUATION",
            Self::EvaluationIncomplete => "EVALUATION_INCOMPLETE",
            Self::UnknownCall => "UNKNOWN_CALL",
            Self::UnknownCatalogueItem => "UNKNOWN_CATALOGUE_ITEM",
            Self::NotEligible => "NOT_ELIGIBLE",
            Self::FundingExceeded => "FUNDING_EXCEEDED",
            Self::BudgetOverApproved => "BUDGET_OVER_APPROVED",
            Self::DisbursementOverApproved => "DISBURSEMENT_OVER_APPROVED",
            Self::BudgetLineBelowSpent => "BUDGET_LINE_BELOW_SPENT",
            Self::ChangeLinesInvalid => "CHANGE_LINES_INVALID",
            Self::FundingPlanInvalid => "FUNDING_PLAN_INVALID",
            Self::PaymentNotDue => "PAYMENT_NOT_DUE",
            Self::TaskBookNotSigned => "TASK_BOOK_NOT_SIGNED",
            Self::SpendingBeyondDisbursed => "SPENDING_BEYOND_DISBURSED",
            Self::Rule(code) => code,
        }
    }

    /// The reason of a code this module wrote (the store hands a spending precondition's
    /// refusal back by its code).
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .map(|(r, _)| *r)
            .find(|r| r.as_str() == code)
    }
}

impl Serialize for RefusalReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A refusal with a typed reason, messages in both languages and details.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    pub reason: RefusalReason,
    pub message_zh: String,
    pub message_en: String,
    /// Extra facts for clients (e.g. `rows` of an import, `remaining` of a line).
    pub details: Value,
}

impl Refusal {
    pub fn new(reason: RefusalReason, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            reason,
            message_zh: zh.into(),
            message_en: en.into(),
            details: Value::Null,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub(super) fn from_user_facing(reason: RefusalReason, e: &dyn UserFacing) -> Self {
        Self::new(reason, e.message(Lang::ZhCn), e.message(Lang::En))
    }
}

/// INVALID_INPUT with `details.reason` and the refusal's own details.
impl UserFacing for Refusal {
    fn code(&self) -> &'static str {
        self.reason.as_str()
    }

    fn message(&self, lang: Lang) -> String {
        match lang {
            Lang::ZhCn => self.message_zh.clone(),
            Lang::En => self.message_en.clone(),
        }
    }

    fn details(&self) -> Value {
        let mut details = Map::new();
        details.insert("reason".into(), json!(self.reason.as_str()));
        if let Value::Object(extra) = &self.details {
            details.extend(extra.clone());
        }
        Value::Object(details)
    }
}
