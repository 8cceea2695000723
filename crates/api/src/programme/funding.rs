//! Funding plans, disbursements (拨付) and execution against them (issue 13).

use grantflow_programme::funding::FundingPlan;
use grantflow_service::programme::{FundingView, PoolUsage};
use grantflow_store::funding::{BudgetLineChange, Disbursement, FundingPlanChange};

use super::*;

#[derive(SimpleObject)]
pub struct FundingPool {
    /// `total`, `part`, `category`, `item` or `city`.
    pub kind: String,
    /// The part, category, item id or city (empty for the total).
    pub key: String,
    pub allocated: String,
    /// What approved projects hold.
    pub committed: String,
    pub remaining: String,
}

impl From<&PoolUsage> for FundingPool {
    fn from(p: &PoolUsage) -> Self {
        Self {
            kind: p.kind.to_string(),
            key: p.key.clone(),
            allocated: p.allocated.to_string(),
            committed: p.committed.to_string(),
            remaining: p.remaining.to_string(),
        }
    }
}

/// A call's funding plan (专项经费使用计划) and what approvals hold against each pool.
#[derive(SimpleObject)]
#[graphql(name = "FundingPlan")]
pub struct FundingPlanGql {
    pub call_id: ID,
    /// False when the call has no plan (no envelope).
    pub planned: bool,
    pub total: Option<String>,
    pub reimbursed_afterwards: bool,
    pub pools: Vec<FundingPool>,
    /// Projects holding funding against the plan.
    pub projects: i32,
}

impl From<FundingView> for FundingPlanGql {
    fn from(v: FundingView) -> Self {
        Self {
            call_id: ID(v.call_id.to_string()),
            planned: v.plan.is_some(),
            total: v.plan.as_ref().map(|p| p.total.to_string()),
            reimbursed_afterwards: v.plan.as_ref().is_some_and(|p| p.reimbursed_afterwards),
            pools: v.pools.iter().map(Into::into).collect(),
            projects: i32::try_from(v.projects).unwrap_or(i32::MAX),
        }
    }
}

/// One change of a call's plan: who, when, why, the plan before and after.
#[derive(SimpleObject)]
#[graphql(name = "FundingPlanChange")]
pub struct FundingPlanChangeGql {
    pub id: ID,
    pub call_id: ID,
    pub old_plan: Option<Json<serde_json::Value>>,
    pub new_plan: Json<serde_json::Value>,
    pub reason: String,
    pub changed_by: ID,
    pub changed_at: DateTime<Utc>,
}

impl From<FundingPlanChange> for FundingPlanChangeGql {
    fn from(c: FundingPlanChange) -> Self {
        Self {
            id: ID(c.id.to_string()),
            call_id: ID(c.call_id.to_string()),
            old_plan: c.old_plan.map(Json),
            new_plan: Json(c.new_plan),
            reason: c.reason,
            changed_by: ID(c.changed_by),
            changed_at: c.changed_at,
        }
    }
}

#[derive(InputObject)]
pub struct FundingAmountInput {
    /// A part (`delegated_to_city` …), a category (`protection` …), an item id or a city.
    pub key: String,
    /// Yuan ("8000000", "800万元").
    pub amount: String,
}

#[derive(InputObject)]
pub struct FundingPlanInput {
    pub total: String,
    #[graphql(default)]
    pub parts: Vec<FundingAmountInput>,
    #[graphql(default)]
    pub categories: Vec<FundingAmountInput>,
    #[graphql(default)]
    pub items: Vec<FundingAmountInput>,
    /// Each city's allocation for 下放地市审批 items.
    #[graphql(default)]
    pub cities: Vec<FundingAmountInput>,
    #[graphql(default)]
    pub reimbursed_afterwards: bool,
}

fn pools(list: Vec<FundingAmountInput>, field: &str) -> Result<BTreeMap<String, Money>, ApiError> {
    if list.len() > grantflow_programme::funding::MAX_POOLS {
        return Err(ApiError::invalid_field(
            field,
            "分配项过多（每类最多 1000 项）",
            "too many entries (at most 1000 of each kind)",
        ));
    }
    let mut out = BTreeMap::new();
    for e in list {
        let amount = money(&e.amount, field)?;
        if out.insert(e.key.trim().to_string(), amount).is_some() {
            return Err(ApiError::invalid_field(
                field,
                &format!("「{}」重复", e.key),
                &format!("`{}` appears twice", e.key),
            ));
        }
    }
    Ok(out)
}

/// A payment to a project: batch, date, amount, voucher reference.
#[derive(SimpleObject)]
#[graphql(name = "Disbursement")]
pub struct DisbursementGql {
    pub id: ID,
    pub instance_id: ID,
    /// 批次
    pub batch: String,
    pub paid_on: NaiveDate,
    pub amount: String,
    /// 凭证号
    pub voucher: String,
    pub recorded_by: ID,
    pub recorded_at: DateTime<Utc>,
}

impl From<&Disbursement> for DisbursementGql {
    fn from(d: &Disbursement) -> Self {
        Self {
            id: ID(d.id.to_string()),
            instance_id: ID(d.instance_id.to_string()),
            batch: d.batch.clone(),
            paid_on: d.paid_on,
            amount: d.amount.to_string(),
            voucher: d.voucher.clone(),
            recorded_by: ID(d.recorded_by.to_string()),
            recorded_at: d.recorded_at,
        }
    }
}

#[derive(InputObject)]
pub struct DisbursementInput {
    /// 批次, e.g. 第一批 (1–50 characters).
    pub batch: String,
    #[graphql(validator(custom = "crate::types::DateInRange"))]
    pub paid_on: NaiveDate,
    /// Yuan, positive.
    pub amount: String,
    /// 凭证号 (1–100 characters).
    pub voucher: String,
}

/// A budget line's amount changed by an approved change request.
#[derive(SimpleObject)]
#[graphql(name = "BudgetLineChange")]
pub struct BudgetLineChangeGql {
    pub line_id: ID,
    pub old_amount: String,
    pub new_amount: String,
    pub change_request_id: Option<ID>,
    pub changed_by: String,
    pub changed_at: DateTime<Utc>,
}

impl From<&BudgetLineChange> for BudgetLineChangeGql {
    fn from(c: &BudgetLineChange) -> Self {
        Self {
            line_id: ID(c.line_id.to_string()),
            old_amount: c.old_amount.to_string(),
            new_amount: c.new_amount.to_string(),
            change_request_id: c.change_request_id.map(|i| ID(i.to_string())),
            changed_by: c.changed_by.clone(),
            changed_at: c.changed_at,
        }
    }
}

/// A project's disbursements and budget-line changes.
#[derive(SimpleObject)]
pub struct ProjectFunding {
    /// The approved funding; null before approval.
    pub approved: Option<String>,
    pub disbursed: String,
    pub disbursements: Vec<DisbursementGql>,
    pub line_changes: Vec<BudgetLineChangeGql>,
}

#[derive(Default)]
pub struct FundingQuery;

#[Object]
impl FundingQuery {
    /// A call's funding plan and what approvals hold against each pool (managers,
    /// auditors, city bureaus).
    async fn funding_plan(&self, ctx: &Context<'_>, call_id: ID) -> Result<FundingPlanGql> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let view = rc(ctx)
            .services
            .funding(&v.user, parse_id(&call_id, "callId")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(view.into())
    }

    /// Every change of a call's funding plan, oldest first (managers, auditors).
    async fn funding_plan_history(
        &self,
        ctx: &Context<'_>,
        call_id: ID,
    ) -> Result<Vec<FundingPlanChangeGql>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let changes = rc(ctx)
            .services
            .funding_history(&v.user, parse_id(&call_id, "callId")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(changes.into_iter().map(Into::into).collect())
    }

    /// A project's disbursements (拨付) and budget-line changes (whoever may see it).
    async fn project_funding(&self, ctx: &Context<'_>, instance_id: ID) -> Result<ProjectFunding> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let m = rc(ctx)
            .services
            .project_money(&v.user, parse_id(&instance_id, "instanceId")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(ProjectFunding {
            approved: m.approved.map(|a| a.to_string()),
            disbursed: m.disbursed.to_string(),
            disbursements: m.disbursements.iter().map(Into::into).collect(),
            line_changes: m.line_changes.iter().map(Into::into).collect(),
        })
    }
}

#[derive(Default)]
pub struct FundingMutation;

#[Object]
impl FundingMutation {
    /// Replace a call's funding plan (managers); the change is kept with who, when, why
    /// and the old and new plan. Refused with FUNDING_PLAN_INVALID.
    async fn set_funding_plan(
        &self,
        ctx: &Context<'_>,
        call_id: ID,
        plan: FundingPlanInput,
        reason: String,
    ) -> Result<FundingPlanGql> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let call_id = parse_id(&call_id, "callId")?;
        let plan = FundingPlan {
            total: money(&plan.total, "total")?,
            parts: pools(plan.parts, "parts")?,
            categories: pools(plan.categories, "categories")?,
            items: pools(plan.items, "items")?,
            cities: pools(plan.cities, "cities")?,
            reimbursed_afterwards: plan.reimbursed_afterwards,
        };
        let r = rc(ctx);
        r.services
            .set_funding_plan(&v.user, call_id, plan, &reason)
            .await
            .map_err(|e| service_err(ctx, e))?;
        let view = r
            .services
            .funding(&v.user, call_id)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(view.into())
    }

    /// Record a payment to a project (拨付, managers). Refused with TASK_BOOK_NOT_SIGNED,
    /// PAYMENT_NOT_DUE (a post-hoc subsidy before its payment stage) or
    /// DISBURSEMENT_OVER_APPROVED (with `remaining`).
    async fn record_disbursement(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        input: DisbursementInput,
    ) -> Result<DisbursementGql> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let amount = money(&input.amount, "amount")?;
        let d = rc(ctx)
            .services
            .record_disbursement(
                &v.user,
                parse_id(&instance_id, "instanceId")?,
                &input.batch,
                input.paid_on,
                amount,
                &input.voucher,
            )
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok((&d).into())
    }
}
