//! Persistence of the programme around the workflows: yearly calls with their catalogue,
//! budget lines and spending (先有预算再有执行、没有预算不得支出), indicator actuals,
//! performance evaluations and demand merges. Plain Rust types, like the rest of the store;
//! the rules themselves live in `grantflow-programme` and the service.
//!
//! Every method that writes more than one row does so in one transaction. A budget-line or
//! spending write also refreshes the instance's `budget` facts (what guards read as
//! `budget`) in the same transaction, and a spending check and its insert run under a lock
//! of the instance and the line, so two concurrent spendings can never overdraw a line.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use grantflow_domain::Money;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Instance, NewInstance, StoreResult};

/// Whether a call still takes demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Open,
    Closed,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Open => "open",
            CallStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<CallStatus> {
        match s {
            "open" => Some(CallStatus::Open),
            "closed" => Some(CallStatus::Closed),
            _ => None,
        }
    }
}

/// A proposed project of a call's catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallItem {
    /// Unique within the call (`2022-3-1-20`).
    pub item_id: String,
    pub number: Option<i32>,
    /// 项目名称
    pub name: String,
    /// 项目方向
    pub direction: String,
    /// 申报（工作）主体
    pub applicant: String,
    /// `retained_provincial`, `post_subsidy`, `patent_office_and_protection_centre` or
    /// `delegated_to_city`.
    pub part: String,
    /// The organisation kinds that may apply (`city`, `unit`, …, as `OrgKind::as_str`);
    /// empty: any kind.
    #[serde(default)]
    pub eligible: Vec<String>,
}

/// A policy area (重点政策或工作) and its items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallPolicyArea {
    pub name: String,
    pub items: Vec<CallItem>,
}

/// One of the eight categories (大类) as the call prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCategory {
    /// The category's code (`reform_and_layout` … `culture_and_communication`).
    pub category: String,
    pub title: String,
    pub policy_areas: Vec<CallPolicyArea>,
}

/// A call to open, with its whole catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    pub id: Uuid,
    pub year: i32,
    pub title: String,
    pub issuer: String,
    pub closing_date: NaiveDate,
    /// Calendar days an applicant has to correct an application returned after the
    /// closing date (the call's setting; 5 unless the call says otherwise).
    pub correction_window_days: i32,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub categories: Vec<CallCategory>,
    /// The call's rules as JSON (`grantflow_programme::rules::CallRules`).
    pub rules: Value,
}

/// A yearly call (年度项目需求征集) and its catalogue, in form order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub id: Uuid,
    pub year: i32,
    pub title: String,
    pub issuer: String,
    pub closing_date: NaiveDate,
    pub status: CallStatus,
    /// Calendar days to correct an application returned after the closing date.
    pub correction_window_days: i32,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub categories: Vec<CallCategory>,
    /// The call's rules as stored (`grantflow_programme::rules::CallRules`); null for a
    /// call opened before calls had rules, which then has the defaults.
    pub rules: Value,
}

impl Call {
    /// Every item with its category code and policy area, in form order.
    pub fn items(&self) -> impl Iterator<Item = (&str, &str, &CallItem)> {
        self.categories.iter().flat_map(|c| {
            c.policy_areas.iter().flat_map(move |a| {
                a.items
                    .iter()
                    .map(move |i| (c.category.as_str(), a.name.as_str(), i))
            })
        })
    }
}

/// A line of a project's budget (预算项目).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLine {
    pub id: Uuid,
    pub instance_id: Uuid,
    /// The budget year (calendar year).
    pub year: i32,
    /// What the money is for (预算科目).
    pub subject: String,
    pub amount: Money,
    /// Where the money comes from (资金来源), e.g. 省级财政专项资金.
    pub source: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

/// Money spent, charged to one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendingRecord {
    pub id: Uuid,
    pub instance_id: Uuid,
    pub line_id: Uuid,
    pub amount: Money,
    pub spent_on: NaiveDate,
    pub description: String,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
}

/// The check a caller runs on the locked instance before the line checks (for example:
/// the project is approved, the spending is not dated before approval).
pub type SpendingPrecondition<'a> =
    dyn Fn(&Instance, &BudgetLine) -> Result<(), SpendingRefusal> + Send + Sync + 'a;

/// Record a spending, refused unless it fits the line.
pub struct NewSpending<'a> {
    pub id: Uuid,
    pub instance_id: Uuid,
    /// `None` is refused (没有预算不得支出).
    pub line_id: Option<Uuid>,
    pub amount: Money,
    pub spent_on: NaiveDate,
    pub description: String,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
    /// Run inside the transaction, with the instance and the line locked.
    pub precondition: &'a SpendingPrecondition<'a>,
    /// The project's spending in all may not exceed what was disbursed to it (false when
    /// the call reimburses afterwards, or for a post-hoc subsidy).
    pub require_disbursed: bool,
}

/// Why a spending was not recorded. Nothing is written when it is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SpendingRefusal {
    /// No line named, or not a line of this project.
    LineMissing { line_id: Option<Uuid> },
    /// More than what is left on the line.
    BudgetExceeded {
        line_id: Uuid,
        amount: Money,
        remaining: Money,
    },
    /// The project's spending would exceed what was disbursed to it.
    BeyondDisbursed {
        disbursed: Money,
        spent: Money,
        amount: Money,
        remaining: Money,
    },
    /// The precondition refused (e.g. `NOT_APPROVED`), with its own code and messages.
    Refused {
        code: String,
        message_zh: String,
        message_en: String,
    },
}

/// An actual value of one indicator at one checkpoint (`mid_term` or `acceptance`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActualRecord {
    pub instance_id: Uuid,
    pub indicator_id: String,
    pub checkpoint: String,
    /// A number for quantitative indicators, a text for qualitative ones.
    pub value: Value,
    pub explanation: Option<String>,
    pub recorded_on: NaiveDate,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
}

/// The points one indicator earned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorScoreRecord {
    pub indicator_id: String,
    pub name: String,
    /// `output`, `effect` or `satisfaction`.
    pub part: String,
    pub max_points: f64,
    pub fraction: f64,
    pub points: f64,
}

/// A stored performance evaluation (one per project; evaluating again replaces it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    pub instance_id: Uuid,
    /// The project's `data.call_id`.
    pub call_id: String,
    /// The scoring method used (points per part, thresholds, grade bounds).
    pub method: Value,
    pub budgeted: Money,
    pub spent: Money,
    pub execution_rate: f64,
    pub total: f64,
    /// 优, 良, 中 or 差.
    pub grade: String,
    pub indicator_scores: Vec<IndicatorScoreRecord>,
    /// The whole computed result and its inputs (outcomes, judgements), as JSON.
    pub result: Value,
    pub evaluator_id: Uuid,
    pub evaluated_at: DateTime<Utc>,
}

/// A project's stored grade without its indicator scores (what reports need).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeRecord {
    pub instance_id: Uuid,
    /// The project's `data.call_id`.
    pub call_id: String,
    pub total: f64,
    /// 优, 良, 中 or 差.
    pub grade: String,
    pub evaluated_at: DateTime<Utc>,
}

/// Two demands merged: the duplicate was rejected, the kept one goes forward and this
/// record keeps both sources as they were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemandMerge {
    pub id: Uuid,
    pub call_id: Uuid,
    pub kept_id: Uuid,
    pub merged_id: Uuid,
    pub similarity: f64,
    pub kept_source: Value,
    pub merged_source: Value,
    pub merged_by: Uuid,
    pub merged_at: DateTime<Utc>,
}

/// The budget facts guards read as `budget`: how many lines, their total, what was spent
/// and the execution rate (0 without a budget).
pub fn budget_facts(lines: i64, total: Money, spent: Money) -> Value {
    json!({
        "lines": lines,
        "total": total.to_string(),
        "spent": spent.to_string(),
        "remaining": total.saturating_sub(spent).to_string(),
        "execution_rate": spent.ratio_of(total).unwrap_or(0.0),
    })
}

/// Builds a call's catalogue from its rows as backends read them, each list already in
/// form order: categories `(code, title)`, policy areas `(category code, name)` and items
/// `(category code, policy area, item)`.
pub fn assemble_catalogue(
    categories: Vec<(String, String)>,
    areas: Vec<(String, String)>,
    items: Vec<(String, String, CallItem)>,
) -> Vec<CallCategory> {
    let mut out: Vec<CallCategory> = categories
        .into_iter()
        .map(|(category, title)| CallCategory {
            category,
            title,
            policy_areas: Vec::new(),
        })
        .collect();
    for (category, name) in areas {
        if let Some(c) = out.iter_mut().find(|c| c.category == category) {
            c.policy_areas.push(CallPolicyArea {
                name,
                items: Vec::new(),
            });
        }
    }
    for (category, area, item) in items {
        if let Some(a) = out
            .iter_mut()
            .find(|c| c.category == category)
            .and_then(|c| c.policy_areas.iter_mut().find(|a| a.name == area))
        {
            a.items.push(item);
        }
    }
    out
}

/// The rows of a catalogue as backends write them: categories `(position, code, title)`,
/// policy areas `(position, category, name)`, items `(position, category, area, item)`.
#[allow(clippy::type_complexity)]
pub fn catalogue_rows(
    categories: &[CallCategory],
) -> (
    Vec<(i32, &str, &str)>,
    Vec<(i32, &str, &str)>,
    Vec<(i32, &str, &str, &CallItem)>,
) {
    let mut cats = Vec::new();
    let mut areas = Vec::new();
    let mut items = Vec::new();
    for (ci, c) in categories.iter().enumerate() {
        cats.push((ci as i32, c.category.as_str(), c.title.as_str()));
        for (ai, a) in c.policy_areas.iter().enumerate() {
            areas.push((ai as i32, c.category.as_str(), a.name.as_str()));
            for item in &a.items {
                items.push((
                    items.len() as i32,
                    c.category.as_str(),
                    a.name.as_str(),
                    item,
                ));
            }
        }
    }
    (cats, areas, items)
}

#[async_trait]
pub trait ProgrammeStore: Send + Sync {
    // ---- calls
    /// Store a call with its categories, policy areas and items, in one transaction.
    async fn create_call(&self, new: NewCall) -> StoreResult<Call>;
    async fn get_call(&self, id: Uuid) -> StoreResult<Call>;
    /// Every call, newest year first.
    async fn list_calls(&self) -> StoreResult<Vec<Call>>;
    async fn set_call_status(&self, id: Uuid, status: CallStatus) -> StoreResult<Call>;

    // ---- instances in bulk
    /// Create several instances (and their initial timers) in one transaction: all or
    /// none.
    async fn create_instances(&self, new: Vec<NewInstance>) -> StoreResult<Vec<Instance>>;
    /// Instances of `workflow_id` whose `data.call_id` is `call_id`, oldest first.
    async fn instances_of_call(
        &self,
        workflow_id: &str,
        call_id: &str,
    ) -> StoreResult<Vec<Instance>>;

    // ---- budgets
    /// Add a line and refresh the instance's budget facts, in one transaction.
    async fn add_budget_line(&self, line: BudgetLine) -> StoreResult<BudgetLine>;
    /// The lines of these instances, oldest first.
    async fn budget_lines(&self, instance_ids: &[Uuid]) -> StoreResult<Vec<BudgetLine>>;
    /// In one transaction with the instance and the line locked: run the precondition,
    /// check the line belongs to the instance and has enough left, insert the record and
    /// refresh the instance's budget facts.
    async fn record_spending(
        &self,
        new: NewSpending<'_>,
    ) -> StoreResult<Result<SpendingRecord, SpendingRefusal>>;
    /// The spending of these instances, in date order.
    async fn spending(&self, instance_ids: &[Uuid]) -> StoreResult<Vec<SpendingRecord>>;

    // ---- indicators and evaluation
    /// Record (or replace) actual values, one per instance, indicator and checkpoint, in
    /// one transaction.
    async fn record_actuals(&self, actuals: Vec<ActualRecord>) -> StoreResult<()>;
    async fn actuals(&self, instance_id: Uuid) -> StoreResult<Vec<ActualRecord>>;
    /// Store (or replace) a project's evaluation with its indicator scores, in one
    /// transaction.
    async fn save_evaluation(&self, record: EvaluationRecord) -> StoreResult<()>;
    async fn evaluation(&self, instance_id: Uuid) -> StoreResult<Option<EvaluationRecord>>;
    /// The evaluations of a call's projects, oldest first.
    async fn evaluations_for_call(&self, call_id: &str) -> StoreResult<Vec<EvaluationRecord>>;

    // ---- reports
    /// The actuals of these instances, by instance, checkpoint (latest first) and indicator.
    async fn actuals_of(&self, instance_ids: &[Uuid]) -> StoreResult<Vec<ActualRecord>>;
    /// The stored grades of these instances (one query, no indicator scores).
    async fn grades_of(&self, instance_ids: &[Uuid]) -> StoreResult<Vec<GradeRecord>>;
    /// The stored grades of every project of these organisations, each with its
    /// organisation, newest evaluation first (one query).
    async fn grades_of_orgs(&self, org_ids: &[Uuid]) -> StoreResult<Vec<(Uuid, GradeRecord)>>;

    // ---- demand merges
    /// Record a merge. A demand is merged away at most once: recording the same merged
    /// demand again returns the stored record.
    async fn record_demand_merge(&self, merge: DemandMerge) -> StoreResult<DemandMerge>;
    async fn demand_merges(&self, call_id: Uuid) -> StoreResult<Vec<DemandMerge>>;

    // ---- funding plan, commitments, disbursements (crate::funding)
    /// Replace a call's funding plan and keep the change (old, new, who, when, why), in
    /// one transaction with the call locked.
    async fn set_funding_plan(
        &self,
        call_id: Uuid,
        plan: Value,
        reason: String,
        changed_by: String,
        at: DateTime<Utc>,
    ) -> StoreResult<crate::funding::FundingPlanChange>;
    /// The call's plan; `None` when it has none (no envelope).
    async fn funding_plan(&self, call_id: Uuid) -> StoreResult<Option<Value>>;
    /// Every change of the call's plan, oldest first.
    async fn funding_plan_changes(
        &self,
        call_id: Uuid,
    ) -> StoreResult<Vec<crate::funding::FundingPlanChange>>;
    /// What each approved project of the call holds against its plan.
    async fn funding_commitments(
        &self,
        call_id: Uuid,
    ) -> StoreResult<Vec<crate::funding::FundingCommitment>>;
    /// Budget-line amounts changed by approved change requests, oldest first.
    async fn budget_line_changes(
        &self,
        instance_id: Uuid,
    ) -> StoreResult<Vec<crate::funding::BudgetLineChange>>;
    /// Record a disbursement; refused (`StoreError::Money`) beyond the approved funding.
    async fn record_disbursement(
        &self,
        new: crate::funding::Disbursement,
    ) -> StoreResult<crate::funding::Disbursement>;
    /// The disbursements of these projects, in date order.
    async fn disbursements(
        &self,
        instance_ids: &[Uuid],
    ) -> StoreResult<Vec<crate::funding::Disbursement>>;
    /// What was disbursed to each of these projects (0 for none), in the given order.
    async fn disbursed_totals(
        &self,
        instance_ids: &[Uuid],
    ) -> StoreResult<Vec<crate::funding::DisbursedTotal>>;
}

#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use chrono::{DateTime, Utc};
    pub use serde_json::Value;
    pub use uuid::Uuid;
}

/// Implements [`ProgrammeStore`] for a wrapper type by delegating every method to its
/// field `$field` (an `Arc<dyn Store>` or any `ProgrammeStore`). With a third argument,
/// `hook`, every method first runs `self.hook("method_name").await?`.
#[macro_export]
macro_rules! delegate_programme_store {
    ($ty:ty, $field:ident $(, $hook:ident)?) => {
        #[$crate::programme::__private::async_trait]
        impl $crate::programme::ProgrammeStore for $ty {
            async fn create_call(
                &self,
                new: $crate::programme::NewCall,
            ) -> $crate::StoreResult<$crate::programme::Call> {
                $( self.$hook(stringify!(create_call)).await?; )?
                self.$field.create_call(new).await
            }
            async fn get_call(
                &self,
                id: $crate::programme::__private::Uuid,
            ) -> $crate::StoreResult<$crate::programme::Call> {
                $( self.$hook(stringify!(get_call)).await?; )?
                self.$field.get_call(id).await
            }
            async fn list_calls(&self) -> $crate::StoreResult<Vec<$crate::programme::Call>> {
                $( self.$hook(stringify!(list_calls)).await?; )?
                self.$field.list_calls().await
            }
            async fn set_call_status(
                &self,
                id: $crate::programme::__private::Uuid,
                status: $crate::programme::CallStatus,
            ) -> $crate::StoreResult<$crate::programme::Call> {
                $( self.$hook(stringify!(set_call_status)).await?; )?
                self.$field.set_call_status(id, status).await
            }
            async fn create_instances(
                &self,
                new: Vec<$crate::NewInstance>,
            ) -> $crate::StoreResult<Vec<$crate::Instance>> {
                $( self.$hook(stringify!(create_instances)).await?; )?
                self.$field.create_instances(new).await
            }
            async fn instances_of_call(
                &self,
                workflow_id: &str,
                call_id: &str,
            ) -> $crate::StoreResult<Vec<$crate::Instance>> {
                $( self.$hook(stringify!(instances_of_call)).await?; )?
                self.$field.instances_of_call(workflow_id, call_id).await
            }
            async fn add_budget_line(
                &self,
                line: $crate::programme::BudgetLine,
            ) -> $crate::StoreResult<$crate::programme::BudgetLine> {
                $( self.$hook(stringify!(add_budget_line)).await?; )?
                self.$field.add_budget_line(line).await
            }
            async fn budget_lines(
                &self,
                instance_ids: &[$crate::programme::__private::Uuid],
            ) -> $crate::StoreResult<Vec<$crate::programme::BudgetLine>> {
                $( self.$hook(stringify!(budget_lines)).await?; )?
                self.$field.budget_lines(instance_ids).await
            }
            async fn record_spending(
                &self,
                new: $crate::programme::NewSpending<'_>,
            ) -> $crate::StoreResult<
                Result<$crate::programme::SpendingRecord, $crate::programme::SpendingRefusal>,
            > {
                $( self.$hook(stringify!(record_spending)).await?; )?
                self.$field.record_spending(new).await
            }
            async fn spending(
                &self,
                instance_ids: &[$crate::programme::__private::Uuid],
            ) -> $crate::StoreResult<Vec<$crate::programme::SpendingRecord>> {
                $( self.$hook(stringify!(spending)).await?; )?
                self.$field.spending(instance_ids).await
            }
            async fn record_actuals(
                &self,
                actuals: Vec<$crate::programme::ActualRecord>,
            ) -> $crate::StoreResult<()> {
                $( self.$hook(stringify!(record_actuals)).await?; )?
                self.$field.record_actuals(actuals).await
            }
            async fn actuals(
                &self,
                instance_id: $crate::programme::__private::Uuid,
            ) -> $crate::StoreResult<Vec<$crate::programme::ActualRecord>> {
                $( self.$hook(stringify!(actuals)).await?; )?
                self.$field.actuals(instance_id).await
            }
            async fn save_evaluation(
                &self,
                record: $crate::programme::EvaluationRecord,
            ) -> $crate::StoreResult<()> {
                $( self.$hook(stringify!(save_evaluation)).await?; )?
                self.$field.save_evaluation(record).await
            }
            async fn evaluation(
                &self,
                instance_id: $crate::programme::__private::Uuid,
            ) -> $crate::StoreResult<Option<$crate::programme::EvaluationRecord>> {
                $( self.$hook(stringify!(evaluation)).await?; )?
                self.$field.evaluation(instance_id).await
            }
            async fn evaluations_for_call(
                &self,
                call_id: &str,
            ) -> $crate::StoreResult<Vec<$crate::programme::EvaluationRecord>> {
                $( self.$hook(stringify!(evaluations_for_call)).await?; )?
                self.$field.evaluations_for_call(call_id).await
            }
            async fn actuals_of(
                &self,
                instance_ids: &[$crate::programme::__private::Uuid],
            ) -> $crate::StoreResult<Vec<$crate::programme::ActualRecord>> {
                self.$field.actuals_of(instance_ids).await
            }
            async fn grades_of(
                &self,
                instance_ids: &[$crate::programme::__private::Uuid],
            ) -> $crate::StoreResult<Vec<$crate::programme::GradeRecord>> {
                self.$field.grades_of(instance_ids).await
            }
            async fn grades_of_orgs(
                &self,
                org_ids: &[$crate::programme::__private::Uuid],
            ) -> $crate::StoreResult<
                Vec<(
                    $crate::programme::__private::Uuid,
                    $crate::programme::GradeRecord,
                )>,
            > {
                $( self.$hook(stringify!(grades_of_orgs)).await?; )?
                self.$field.grades_of_orgs(org_ids).await
            }
            async fn record_demand_merge(
                &self,
                merge: $crate::programme::DemandMerge,
            ) -> $crate::StoreResult<$crate::programme::DemandMerge> {
                $( self.$hook(stringify!(record_demand_merge)).await?; )?
                self.$field.record_demand_merge(merge).await
            }
            async fn demand_merges(
                &self,
                call_id: $crate::programme::__private::Uuid,
            ) -> $crate::StoreResult<Vec<$crate::programme::DemandMerge>> {
                $( self.$hook(stringify!(demand_merges)).await?; )?
                self.$field.demand_merges(call_id).await
            }
            async fn set_funding_plan(
                &self,
                call_id: $crate::programme::__private::Uuid,
                plan: $crate::programme::__private::Value,
                reason: String,
                changed_by: String,
                at: $crate::programme::__private::DateTime<$crate::programme::__private::Utc>,
            ) -> $crate::StoreResult<$crate::funding::FundingPlanChange> {
                self.$field
                    .set_funding_plan(call_id, plan, reason, changed_by, at)
                    .await
            }
            async fn funding_plan(
                &self,
                call_id: $crate::programme::__private::Uuid,
            ) -> $crate::StoreResult<Option<$crate::programme::__private::Value>> {
                self.$field.funding_plan(call_id).await
            }
            async fn funding_plan_changes(
                &self,
                call_id: $crate::programme::__private::Uuid,
            ) -> $crate::StoreResult<Vec<$crate::funding::FundingPlanChange>> {
                self.$field.funding_plan_changes(call_id).await
            }
            async fn funding_commitments(
                &self,
                call_id: $crate::programme::__private::Uuid,
            ) -> $crate::StoreResult<Vec<$crate::funding::FundingCommitment>> {
                self.$field.funding_commitments(call_id).await
            }
            async fn budget_line_changes(
                &self,
                instance_id: $crate::programme::__private::Uuid,
            ) -> $crate::StoreResult<Vec<$crate::funding::BudgetLineChange>> {
                self.$field.budget_line_changes(instance_id).await
            }
            async fn record_disbursement(
                &self,
                new: $crate::funding::Disbursement,
            ) -> $crate::StoreResult<$crate::funding::Disbursement> {
                self.$field.record_disbursement(new).await
            }
            async fn disbursements(
                &self,
                instance_ids: &[$crate::programme::__private::Uuid],
            ) -> $crate::StoreResult<Vec<$crate::funding::Disbursement>> {
                self.$field.disbursements(instance_ids).await
            }
            async fn disbursed_totals(
                &self,
                instance_ids: &[$crate::programme::__private::Uuid],
            ) -> $crate::StoreResult<Vec<$crate::funding::DisbursedTotal>> {
                self.$field.disbursed_totals(instance_ids).await
            }
        }
    };
}
