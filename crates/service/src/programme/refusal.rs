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
    /// A rule of `grantflow-programme` with its own stable code (e.g. a duplicate search
    /// past its cap).
    Rule(&'static str),
}

impl RefusalReason {
    /// Every reason with a code of its own, with what it means (for the README's table).
    pub const ALL: [(RefusalReason, &'static str); 17] = [
        (
            RefusalReason::CatalogueInvalid,
            "the call's catalogue does not validate",
        ),
        (
            RefusalReason::WrongWorkflow,
            "the instance is not of the workflow the action needs",
        ),
        (
            RefusalReason::CallClosed,
            "the call no longer takes demands",
        ),
        (
            RefusalReason::ImportFailed,
            "the workbook cannot be read (`details.code`)",
        ),
        (
            RefusalReason::ImportRejected,
            "rows of the workbook are invalid (`details.rows`); nothing was imported",
        ),
        (
            RefusalReason::DifferentCalls,
            "demands of different calls cannot be merged",
        ),
        (RefusalReason::NoCall, "the demand belongs to no call"),
        (
            RefusalReason::NotApproved,
            "the project is not approved yet",
        ),
        (RefusalReason::ProjectClosed, "the project is closed"),
        (
            RefusalReason::SpendingBeforeApproval,
            "spending dated before the approval",
        ),
        (
            RefusalReason::BudgetLineWrongYear,
            "the budget line is for another year",
        ),
        (
            RefusalReason::BudgetLineMissing,
            "no spending without a budget line (`details.lineId`)",
        ),
        (
            RefusalReason::BudgetExceeded,
            "spending beyond what is left on the line (`details.remaining`)",
        ),
        (
            RefusalReason::ChangeNotApproved,
            "the change request is not approved",
        ),
        (
            RefusalReason::NoParent,
            "the change request belongs to no project",
        ),
        (
            RefusalReason::NotInEvaluation,
            "the project is not in its evaluation",
        ),
        (
            RefusalReason::EvaluationIncomplete,
            "the evaluation's input is incomplete (`details.problems`)",
        ),
    ];

    /// The stable code, e.g. `BUDGET_EXCEEDED`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::CatalogueInvalid => "CATALOGUE_INVALID",
            RefusalReason::WrongWorkflow => "WRONG_WORKFLOW",
            RefusalReason::CallClosed => "CALL_CLOSED",
            RefusalReason::ImportFailed => "IMPORT_FAILED",
            RefusalReason::ImportRejected => "IMPORT_REJECTED",
            RefusalReason::DifferentCalls => "DIFFERENT_CALLS",
            RefusalReason::NoCall => "NO_CALL",
            RefusalReason::NotApproved => "NOT_APPROVED",
            RefusalReason::ProjectClosed => "PROJECT_CLOSED",
            RefusalReason::SpendingBeforeApproval => "SPENDING_BEFORE_APPROVAL",
            RefusalReason::BudgetLineWrongYear => "BUDGET_LINE_WRONG_YEAR",
            RefusalReason::BudgetLineMissing => "BUDGET_LINE_MISSING",
            RefusalReason::BudgetExceeded => "BUDGET_EXCEEDED",
            RefusalReason::ChangeNotApproved => "CHANGE_NOT_APPROVED",
            RefusalReason::NoParent => "NO_PARENT",
            RefusalReason::NotInEvaluation => "NOT_IN_EVALUATION",
            RefusalReason::EvaluationIncomplete => "EVALUATION_INCOMPLETE",
            RefusalReason::Rule(code) => code,
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
        Refusal {
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
        Refusal::new(reason, e.message(Lang::ZhCn), e.message(Lang::En))
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
