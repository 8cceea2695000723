//! The programme's money after the budget (issue 13): a call's funding plan (the
//! envelope and its allocations), the funding each approved project holds against it,
//! budget-line changes of approved change requests, and disbursements (拨付).
//!
//! The plan is stored as JSON in the shape of `grantflow_programme::funding::FundingPlan`
//! (`{ total, parts, categories, items, cities, reimbursed_afterwards }`, amounts as
//! decimal yuan strings); the store reads only the pool amounts it checks. Every check
//! runs in the transaction of the write it guards, with the call's row locked, so two
//! concurrent approvals can never overdraw a pool.

use chrono::{DateTime, NaiveDate, Utc};
use grantflow_domain::Money;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// What an approval holds against its call's plan, applied inside the transition's
/// transaction (approve, allocate, city_approve, an approved budget change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingClaim {
    pub call_id: Uuid,
    /// The project's approved funding after the transition (replaces what it held).
    pub amount: Money,
    pub part: String,
    pub category: String,
    pub item_id: String,
    /// The plan's city key, for a city bureau's own approval (下放地市审批). `None` keeps
    /// the city pool the project already holds: an approved budget change of a
    /// city-approved project is held to its city's allocation as well as the envelope.
    pub city: Option<String>,
}

/// A budget line's new amount, named by an approved change request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineAmount {
    pub line_id: Uuid,
    pub amount: Money,
}

/// Money written in the same transaction as a transition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MoneyEffects {
    pub funding: Option<FundingClaim>,
    /// New amounts of budget lines; afterwards the lines may total at most the approved
    /// funding, and no line less than what was spent on it.
    pub lines: Vec<LineAmount>,
    /// The approved change request applied; with it, the lines are checked against the
    /// (new) approved funding even when it names none.
    pub change_request_id: Option<Uuid>,
}

/// Why a money write was refused. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MoneyRefusal {
    /// An approval beyond what is left of a pool of the call's plan. `pool` is `total`,
    /// `part:<code>`, `category:<code>`, `item:<id>` or `city:<key>`.
    FundingExceeded {
        pool: String,
        allocated: Money,
        amount: Money,
        remaining: Money,
    },
    /// Budget lines beyond the project's approved funding (or, before approval, its
    /// requested budget).
    BudgetOverApproved {
        approved: Money,
        budgeted: Money,
        amount: Money,
        remaining: Money,
    },
    /// A disbursement beyond the approved funding.
    DisbursementOverApproved {
        approved: Money,
        disbursed: Money,
        amount: Money,
        remaining: Money,
    },
    /// A budget line changed below what was already spent on it.
    LineBelowSpent {
        line_id: Uuid,
        spent: Money,
        amount: Money,
    },
    /// A change names a line the project does not have.
    LineMissing { line_id: Uuid },
    /// Nothing to hold the amount against: the project has no approved funding.
    NoApprovedFunding,
}

/// A funding plan change, kept forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FundingPlanChange {
    pub id: Uuid,
    pub call_id: Uuid,
    /// `None` for the plan the call was opened with.
    pub old_plan: Option<Value>,
    pub new_plan: Value,
    pub reason: String,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
}

/// What one approved project holds against its call's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundingCommitment {
    pub instance_id: Uuid,
    pub call_id: Uuid,
    pub part: String,
    pub category: String,
    pub item_id: String,
    pub city: Option<String>,
    pub amount: Money,
    pub event: String,
    pub updated_at: DateTime<Utc>,
}

/// A budget line's amount changed by an approved change request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLineChange {
    pub id: Uuid,
    pub line_id: Uuid,
    pub instance_id: Uuid,
    pub old_amount: Money,
    pub new_amount: Money,
    pub change_request_id: Option<Uuid>,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
}

/// A payment to a project (拨付): batch, date, amount and voucher reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disbursement {
    pub id: Uuid,
    pub instance_id: Uuid,
    /// 批次, e.g. 第一批.
    pub batch: String,
    pub paid_on: NaiveDate,
    pub amount: Money,
    /// 凭证号.
    pub voucher: String,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
}

/// Disbursed totals of the projects of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisbursedTotal {
    pub instance_id: Uuid,
    pub disbursed: Money,
}

/// The approved funding a project holds (`data.approved_budget`), if any.
pub fn approved_funding(data: &Value) -> Option<Money> {
    data.get("approved_budget")
        .and_then(Value::as_str)
        .and_then(|s| Money::parse(s).ok())
}

/// An amount of the plan's JSON at `path` (`["parts", "post_subsidy"]`); `None` when the
/// plan has no such pool.
pub fn plan_amount(plan: &Value, path: &[&str]) -> Option<Money> {
    let mut v = plan;
    for key in path {
        v = v.get(*key)?;
    }
    match v {
        Value::String(s) => Money::parse(s).ok(),
        Value::Number(n) => n.as_i64().and_then(Money::from_yuan),
        _ => None,
    }
}
