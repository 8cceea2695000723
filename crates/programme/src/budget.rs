//! Budgets and spending: 先有项目后有预算、先有预算再有执行、没有预算不得支出 — no spending
//! without a budget line, beyond it, or before the project is approved (立项).
//!
//! A project's money is a [`ProjectLedger`]: budget lines per year and spending records
//! charged to one line each. Budget years are calendar years (the Chinese fiscal year),
//! so a record is charged to a line of the year it is spent in.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};
use grantflow_domain::{Lang, Money};
use serde::{Deserialize, Serialize};

use crate::UserFacing;
use crate::indicator::{IndicatorError, IndicatorGroup, IndicatorSet, IndicatorSetStatus};
use crate::messages::{impl_error_via_user_facing, pick};

/// One line of a project's budget (e.g. 会议费 2022, 50 000.00 yuan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetLine {
    pub id: String,
    pub project_id: String,
    pub year: i32,
    /// What the money is for (支出内容 / 预算科目).
    pub subject: String,
    pub amount: Money,
}

/// Money spent, charged to a budget line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendingRecord {
    pub id: String,
    pub project_id: String,
    /// The line charged; `None` is refused (没有预算不得支出).
    #[serde(default)]
    pub line_id: Option<String>,
    pub spent_on: NaiveDate,
    pub amount: Money,
    #[serde(default)]
    pub description: String,
}

/// A project's budget lines and spending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectLedger {
    pub project_id: String,
    /// The approval (立项) date; `None` before approval.
    #[serde(default)]
    pub approved_on: Option<NaiveDate>,
    #[serde(default)]
    pub lines: Vec<BudgetLine>,
    #[serde(default)]
    pub spending: Vec<SpendingRecord>,
}

/// Why a budget line or a spending record is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetError {
    /// The record names no line, or a line this project does not have.
    LineMissing {
        line_id: Option<String>,
    },
    /// The record would take the line beyond its amount.
    LineExceeded {
        line_id: String,
        amount: Money,
        remaining: Money,
    },
    /// The line is for another budget year than the spending date.
    LineWrongYear {
        line_id: String,
        line_year: i32,
        spent_on: NaiveDate,
    },
    NotApproved,
    BeforeApproval {
        spent_on: NaiveDate,
        approved_on: NaiveDate,
    },
    AmountNotPositive {
        amount: Money,
    },
    WrongProject {
        expected: String,
        found: String,
    },
    DuplicateId {
        id: String,
    },
}

impl UserFacing for BudgetError {
    fn code(&self) -> &'static str {
        match self {
            Self::LineMissing { .. } => "BUDGET_LINE_MISSING",
            Self::LineExceeded { .. } => "BUDGET_LINE_EXCEEDED",
            Self::LineWrongYear { .. } => "BUDGET_LINE_WRONG_YEAR",
            Self::NotApproved => "PROJECT_NOT_APPROVED",
            Self::BeforeApproval { .. } => "SPENDING_BEFORE_APPROVAL",
            Self::AmountNotPositive { .. } => "AMOUNT_NOT_POSITIVE",
            Self::WrongProject { .. } => "WRONG_PROJECT",
            Self::DuplicateId { .. } => "DUPLICATE_ID",
        }
    }

    fn message(&self, lang: Lang) -> String {
        match self {
            Self::LineMissing { line_id: None } => pick(
                lang,
                "没有预算不得支出：该支出未对应任何预算项".to_string(),
                "no spending without a budget: the record is not charged to a budget line"
                    .to_string(),
            ),
            Self::LineMissing {
                line_id: Some(line),
            } => pick(
                lang,
                format!("没有预算不得支出：本项目没有预算项 {line}"),
                format!("no spending without a budget: the project has no budget line {line}"),
            ),
            Self::LineExceeded {
                line_id,
                amount,
                remaining,
            } => pick(
                lang,
                format!("支出 {amount} 元超出预算项 {line_id} 的剩余额度 {remaining} 元"),
                format!(
                    "spending {amount} yuan exceeds the {remaining} yuan left on budget line {line_id}"
                ),
            ),
            Self::LineWrongYear {
                line_id,
                line_year,
                spent_on,
            } => pick(
                lang,
                format!("预算项 {line_id} 属于 {line_year} 年度预算，不能用于 {spent_on} 的支出"),
                format!(
                    "budget line {line_id} is for {line_year} and cannot pay for spending on {spent_on}"
                ),
            ),
            Self::NotApproved => pick(
                lang,
                "项目尚未立项，不得支出".to_string(),
                "the project is not approved: nothing may be spent".to_string(),
            ),
            Self::BeforeApproval {
                spent_on,
                approved_on,
            } => pick(
                lang,
                format!("支出日期 {spent_on} 早于立项日期 {approved_on}"),
                format!("spending on {spent_on} precedes approval on {approved_on}"),
            ),
            Self::AmountNotPositive { amount } => pick(
                lang,
                format!("金额须大于零（当前 {amount} 元）"),
                format!("the amount must be positive (is {amount} yuan)"),
            ),
            Self::WrongProject { expected, found } => pick(
                lang,
                format!("记录属于项目 {found}，而非项目 {expected}"),
                format!("the record belongs to project {found}, not {expected}"),
            ),
            Self::DuplicateId { id } => pick(
                lang,
                format!("编号 {id} 已存在"),
                format!("id {id} already exists"),
            ),
        }
    }
}
impl_error_via_user_facing!(BudgetError);

/// Budgeted and spent amounts and their ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub budgeted: Money,
    pub spent: Money,
    /// spent ÷ budgeted; `None` when nothing is budgeted.
    pub rate: Option<f64>,
}

impl Execution {
    pub fn new(budgeted: Money, spent: Money) -> Self {
        Self {
            budgeted,
            spent,
            rate: spent.ratio_of(budgeted),
        }
    }
}

/// Checks a spending record against a ledger without recording it. In order: the record
/// is this project's and positive; the project is approved and the spending is not
/// before approval; it names an existing line of the same year; the line has enough left.
pub fn check_spending(ledger: &ProjectLedger, record: &SpendingRecord) -> Result<(), BudgetError> {
    if record.project_id != ledger.project_id {
        return Err(BudgetError::WrongProject {
            expected: ledger.project_id.clone(),
            found: record.project_id.clone(),
        });
    }
    if record.amount.fen() <= 0 {
        return Err(BudgetError::AmountNotPositive {
            amount: record.amount,
        });
    }
    let approved_on = ledger.approved_on.ok_or(BudgetError::NotApproved)?;
    if record.spent_on < approved_on {
        return Err(BudgetError::BeforeApproval {
            spent_on: record.spent_on,
            approved_on,
        });
    }
    let line = record
        .line_id
        .as_deref()
        .and_then(|id| ledger.line(id))
        .ok_or_else(|| BudgetError::LineMissing {
            line_id: record.line_id.clone(),
        })?;
    if line.year != record.spent_on.year() {
        return Err(BudgetError::LineWrongYear {
            line_id: line.id.clone(),
            line_year: line.year,
            spent_on: record.spent_on,
        });
    }
    let remaining = ledger.remaining(&line.id).unwrap_or(Money::ZERO);
    if record.amount > remaining {
        return Err(BudgetError::LineExceeded {
            line_id: line.id.clone(),
            amount: record.amount,
            remaining,
        });
    }
    if ledger.spending.iter().any(|s| s.id == record.id) {
        return Err(BudgetError::DuplicateId {
            id: record.id.clone(),
        });
    }
    Ok(())
}

impl ProjectLedger {
    pub fn new(project_id: impl Into<String>) -> Self {
        Self {
            project_id: project_id.into(),
            approved_on: None,
            lines: Vec::new(),
            spending: Vec::new(),
        }
    }

    pub fn line(&self, id: &str) -> Option<&BudgetLine> {
        self.lines.iter().find(|l| l.id == id)
    }

    /// Adds a budget line (positive amount, unique id, this project).
    pub fn add_line(&mut self, line: BudgetLine) -> Result<(), BudgetError> {
        if line.project_id != self.project_id {
            return Err(BudgetError::WrongProject {
                expected: self.project_id.clone(),
                found: line.project_id,
            });
        }
        if line.amount.fen() <= 0 {
            return Err(BudgetError::AmountNotPositive {
                amount: line.amount,
            });
        }
        if self.line(&line.id).is_some() {
            return Err(BudgetError::DuplicateId { id: line.id });
        }
        self.lines.push(line);
        Ok(())
    }

    /// [`check_spending`], then records the spending.
    pub fn record_spending(&mut self, record: SpendingRecord) -> Result<(), BudgetError> {
        check_spending(self, &record)?;
        self.spending.push(record);
        Ok(())
    }

    /// What is left on a line; `None` for an unknown line.
    pub fn remaining(&self, line_id: &str) -> Option<Money> {
        let line = self.line(line_id)?;
        let spent: Money = self
            .spending
            .iter()
            .filter(|s| s.line_id.as_deref() == Some(line_id))
            .map(|s| s.amount)
            .sum();
        // Spending never exceeds a line (check_spending), so this cannot fail; were it
        // to, nothing is left.
        Some(line.amount.checked_sub(spent).unwrap_or(Money::ZERO))
    }

    pub fn budgeted(&self) -> Money {
        self.lines.iter().map(|l| l.amount).sum()
    }

    pub fn spent(&self) -> Money {
        self.spending.iter().map(|s| s.amount).sum()
    }

    /// Execution over all years.
    pub fn execution(&self) -> Execution {
        Execution::new(self.budgeted(), self.spent())
    }

    /// Execution of one budget year's lines.
    pub fn execution_in_year(&self, year: i32) -> Execution {
        let lines: BTreeSet<&str> = self
            .lines
            .iter()
            .filter(|l| l.year == year)
            .map(|l| l.id.as_str())
            .collect();
        let budgeted = self
            .lines
            .iter()
            .filter(|l| l.year == year)
            .map(|l| l.amount)
            .sum();
        let spent = self
            .spending
            .iter()
            .filter(|s| s.line_id.as_deref().is_some_and(|id| lines.contains(id)))
            .map(|s| s.amount)
            .sum();
        Execution::new(budgeted, spent)
    }
}

/// Execution per project and over a whole call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallExecution {
    pub projects: Vec<ProjectExecution>,
    /// Sum of spending over sum of budgets: a weighted rate, not the mean of the
    /// projects' rates (a small project must not count as much as a large one).
    pub total: Execution,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectExecution {
    pub project_id: String,
    pub execution: Execution,
}

/// Execution of every project of a call and of the call as a whole.
pub fn call_execution(ledgers: &[ProjectLedger]) -> CallExecution {
    let projects: Vec<ProjectExecution> = ledgers
        .iter()
        .map(|l| ProjectExecution {
            project_id: l.project_id.clone(),
            execution: l.execution(),
        })
        .collect();
    let budgeted = projects.iter().map(|p| p.execution.budgeted).sum();
    let spent = projects.iter().map(|p| p.execution.spent).sum();
    CallExecution {
        projects,
        total: Execution::new(budgeted, spent),
    }
}

/// What stands between a project and its approval.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadinessProblem {
    AlreadyApproved,
    /// 先有项目后有预算: a project needs at least one budget line.
    NoBudgetLine,
    NoIndicators,
    /// The performance targets are still a draft.
    TargetsNotApproved,
    /// The 2024 call requires output (产出) and effect (效益) indicators.
    MissingGroup(IndicatorGroup),
}

impl UserFacing for ReadinessProblem {
    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyApproved => "PROJECT_ALREADY_APPROVED",
            Self::NoBudgetLine => "BUDGET_LINE_MISSING",
            Self::NoIndicators => "INDICATOR_SET_EMPTY",
            Self::TargetsNotApproved => "TARGETS_NOT_APPROVED",
            Self::MissingGroup(IndicatorGroup::Output) => "OUTPUT_INDICATOR_MISSING",
            Self::MissingGroup(IndicatorGroup::Effect) => "EFFECT_INDICATOR_MISSING",
            Self::MissingGroup(IndicatorGroup::Satisfaction) => "SATISFACTION_INDICATOR_MISSING",
        }
    }

    fn message(&self, lang: Lang) -> String {
        match self {
            Self::AlreadyApproved => pick(
                lang,
                "项目已立项".to_string(),
                "the project is already approved".to_string(),
            ),
            Self::NoBudgetLine => pick(
                lang,
                "先有项目后有预算：立项前须编列预算".to_string(),
                "a project needs a budget line before approval".to_string(),
            ),
            Self::NoIndicators => IndicatorError::Empty.message(lang),
            Self::TargetsNotApproved => pick(
                lang,
                "绩效目标尚未审核通过".to_string(),
                "the performance targets are not approved yet".to_string(),
            ),
            Self::MissingGroup(group) => pick(
                lang,
                format!("绩效指标须包含{}", group.name(Lang::ZhCn)),
                format!(
                    "the indicators must include {} indicators",
                    group.name(Lang::En)
                ),
            ),
        }
    }
}
impl_error_via_user_facing!(ReadinessProblem);

/// Whether a project can be approved: a positive budget, approved targets including
/// output and effect indicators. Returns every problem.
pub fn approval_readiness(
    ledger: &ProjectLedger,
    indicators: &IndicatorSet,
) -> Result<(), Vec<ReadinessProblem>> {
    let mut problems = Vec::new();
    if ledger.approved_on.is_some() || indicators.is_frozen() {
        problems.push(ReadinessProblem::AlreadyApproved);
    }
    if ledger.budgeted().fen() <= 0 {
        problems.push(ReadinessProblem::NoBudgetLine);
    }
    if indicators.indicators.is_empty() {
        problems.push(ReadinessProblem::NoIndicators);
    } else {
        if indicators.status == IndicatorSetStatus::Draft {
            problems.push(ReadinessProblem::TargetsNotApproved);
        }
        for group in [IndicatorGroup::Output, IndicatorGroup::Effect] {
            if !indicators.has_group(group) {
                problems.push(ReadinessProblem::MissingGroup(group));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Approves (立项) a ready project on `on`: records the date and freezes its indicators.
pub fn approve_project(
    ledger: &mut ProjectLedger,
    indicators: &mut IndicatorSet,
    on: NaiveDate,
) -> Result<(), Vec<ReadinessProblem>> {
    approval_readiness(ledger, indicators)?;
    indicators
        .freeze(on)
        .map_err(|_| vec![ReadinessProblem::TargetsNotApproved])?;
    ledger.approved_on = Some(on);
    Ok(())
}
