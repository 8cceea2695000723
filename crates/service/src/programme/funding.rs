//! The money after the budget (issue 13): the call's funding plan and what approvals hold
//! against it, disbursements (拨付), and the money effects a transition carries into its
//! transaction (an approval's claim on the plan, the budget lines of an approved change).

use grantflow_programme::funding::FundingPlan;
use grantflow_store::funding::{
    BudgetLineChange, DisbursedTotal, Disbursement, FundingClaim, FundingPlanChange, LineAmount,
    MoneyEffects, MoneyRefusal, approved_funding,
};

use super::*;

/// The events that fix a project's approved funding (`input.approved_budget`) and so draw
/// on the call's plan.
pub const FUNDING_EVENTS: [&str; 4] = [
    "approve",
    "allocate",
    "city_approve",
    "apply_approved_change",
];

/// States before the task book is signed: no disbursement and no spending yet.
pub const BEFORE_TASK_BOOK: [&str; 15] = [
    "drafting",
    "city_review",
    "city_correction",
    "formal_check",
    "correction",
    "expert_review",
    "decision",
    "publicity",
    "objection_review",
    "task_book",
    "task_book_review",
    "allocation",
    "payment",
    "withdrawn",
    "not_submitted",
];

/// Longest batch name and voucher reference of a disbursement, in characters.
pub const MAX_BATCH_CHARS: usize = 50;
pub const MAX_VOUCHER_CHARS: usize = 100;
/// Longest reason of a funding plan change, in characters.
pub const MAX_PLAN_REASON_CHARS: usize = 500;

fn is_post_subsidy(i: &Instance) -> bool {
    i.data.get("part").and_then(Value::as_str) == Some("post_subsidy")
}

/// A money rule's refusal as clients see it: a stable code, both messages naming the
/// amounts, and the amounts in the details.
pub fn money_refusal(r: &MoneyRefusal) -> Refusal {
    match r {
        MoneyRefusal::FundingExceeded {
            pool,
            allocated,
            amount,
            remaining,
        } => Refusal::new(
            RefusalReason::FundingExceeded,
            format!("资助金额 {amount} 元超出经费计划「{pool}」的剩余额度 {remaining} 元（计划 {allocated} 元）"),
            format!("funding of {amount} yuan exceeds the {remaining} yuan left in `{pool}` of the funding plan ({allocated} yuan planned)"),
        )
        .with_details(json!({
            "pool": pool, "allocated": allocated.to_string(),
            "amount": amount.to_string(), "remaining": remaining.to_string(),
        })),
        MoneyRefusal::BudgetOverApproved {
            approved,
            budgeted,
            amount,
            remaining,
        } => Refusal::new(
            RefusalReason::BudgetOverApproved,
            format!("预算项目合计不得超过资助金额 {approved} 元：已编列 {budgeted} 元，剩余 {remaining} 元，本次 {amount} 元"),
            format!("budget lines may total at most the approved funding of {approved} yuan: {budgeted} yuan budgeted, {remaining} yuan remaining, {amount} yuan asked"),
        )
        .with_details(json!({
            "approved": approved.to_string(), "budgeted": budgeted.to_string(),
            "amount": amount.to_string(), "remaining": remaining.to_string(),
        })),
        MoneyRefusal::DisbursementOverApproved {
            approved,
            disbursed,
            amount,
            remaining,
        } => Refusal::new(
            RefusalReason::DisbursementOverApproved,
            format!("拨付 {amount} 元超出资助金额的未拨付部分 {remaining} 元（资助 {approved} 元，已拨付 {disbursed} 元）"),
            format!("a disbursement of {amount} yuan exceeds the {remaining} yuan not yet disbursed ({approved} yuan approved, {disbursed} yuan disbursed)"),
        )
        .with_details(json!({
            "approved": approved.to_string(), "disbursed": disbursed.to_string(),
            "amount": amount.to_string(), "remaining": remaining.to_string(),
        })),
        MoneyRefusal::LineBelowSpent {
            line_id,
            spent,
            amount,
        } => Refusal::new(
            RefusalReason::BudgetLineBelowSpent,
            format!("预算项目调整后金额 {amount} 元低于已支出的 {spent} 元"),
            format!("the line's new amount of {amount} yuan is below the {spent} yuan already spent on it"),
        )
        .with_details(json!({ "lineId": line_id, "spent": spent.to_string(), "amount": amount.to_string(), "remaining": "0.00" })),
        MoneyRefusal::LineMissing { line_id } => Refusal::new(
            RefusalReason::BudgetLineMissing,
            "变更申请所列预算项目不属于本项目",
            "the change names a budget line this project does not have",
        )
        .with_details(json!({ "lineId": line_id })),
        MoneyRefusal::NoApprovedFunding => Refusal::new(
            RefusalReason::NotApproved,
            "项目尚无资助金额（未立项）",
            "the project has no approved funding (not approved)",
        ),
    }
}

/// Usage of one pool of a call's plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolUsage {
    /// `total`, `part`, `category`, `item` or `city`.
    pub kind: &'static str,
    /// The part, category, item or city key (empty for the total).
    pub key: String,
    pub allocated: Money,
    pub committed: Money,
    pub remaining: Money,
}

/// A call's plan with what approvals hold against each pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FundingView {
    pub call_id: Uuid,
    pub plan: Option<FundingPlan>,
    pub pools: Vec<PoolUsage>,
    /// Projects holding funding against the plan.
    pub projects: usize,
}

/// A project's disbursements, and the budget lines changed by approved change requests.
#[derive(Debug, Clone, PartialEq)]
pub struct MoneyOfProject {
    pub approved: Option<Money>,
    pub disbursements: Vec<Disbursement>,
    pub disbursed: Money,
    pub line_changes: Vec<BudgetLineChange>,
}

fn plan_of(value: Option<Value>) -> Option<FundingPlan> {
    value.and_then(|v| serde_json::from_value(v).ok())
}

/// `subject or line id = amount` per line (new lines, `;` or `；` separate).
fn parse_line_amounts(text: &str, lines: &[BudgetLine]) -> ServiceResult<Vec<LineAmount>> {
    let mut out = Vec::new();
    for entry in text
        .split(['\n', ';', '；'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let bad =
            || {
                ServiceError::Refused(Box::new(Refusal::new(
                RefusalReason::ChangeLinesInvalid,
                format!("无法识别预算调整「{entry}」：每行写作「预算科目=金额」"),
                format!(
                    "cannot read the budget change `{entry}`: write `subject = amount` per line"
                ),
            )
            .with_details(json!({ "entry": entry }))))
            };
        let (name, amount) = entry.split_once(['=', '＝']).ok_or_else(bad)?;
        let amount = Money::parse(amount).map_err(|_| bad())?;
        let name = name.trim();
        let line = lines
            .iter()
            .find(|l| l.id.to_string() == name)
            .or_else(|| {
                let mut same = lines.iter().filter(|l| l.subject == name);
                let first = same.next();
                if same.next().is_some() { None } else { first }
            })
            .ok_or_else(bad)?;
        out.push(LineAmount {
            line_id: line.id,
            amount,
        });
    }
    Ok(out)
}

impl Services {
    /// The money a transition writes in its own transaction: for an event that fixes
    /// the approved funding, its claim on the call's plan; for an approved change, the
    /// budget lines it names.
    pub(crate) async fn money_effects(
        &self,
        instance: &Instance,
        event: &str,
        input: &Value,
    ) -> ServiceResult<Option<MoneyEffects>> {
        if instance.workflow_id != PROJECT_WORKFLOW || !FUNDING_EVENTS.contains(&event) {
            return Ok(None);
        }
        let mut effects = MoneyEffects::default();
        let amount = input
            .get("approved_budget")
            .and_then(Value::as_str)
            .and_then(|s| Money::parse(s).ok());
        let call_id = instance
            .data
            .get("call_id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        if let (Some(amount), Some(call_id)) = (amount, call_id) {
            let call = self.store.get_call(call_id).await?;
            let item_id = instance
                .data
                .get("catalogue_item")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let category = call
                .items()
                .find(|(_, _, i)| i.item_id == item_id)
                .map(|(c, _, _)| c.to_string())
                .unwrap_or_default();
            let city = if event == "city_approve" {
                let plan = plan_of(self.store.funding_plan(call_id).await?);
                match (plan, instance.city_id) {
                    (Some(plan), Some(city_id)) => {
                        let org = self.store.get_org(city_id).await?;
                        plan.city_key(&org.name)
                    }
                    _ => None,
                }
            } else {
                None
            };
            effects.funding = Some(FundingClaim {
                call_id,
                amount,
                part: instance
                    .data
                    .get("part")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                category,
                item_id,
                city,
            });
        }
        if event == "apply_approved_change"
            && let Some(change_id) = input
                .get("change_request_id")
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
        {
            let change = self.store.get_instance(change_id).await?;
            if let Some(text) = change.data.get("new_budget_lines").and_then(Value::as_str) {
                let lines = self.store.budget_lines(&[instance.id]).await?;
                effects.lines = parse_line_amounts(text, &lines)?;
            }
            // Named lines or not, the lines must fit the funding after the change.
            if effects.funding.is_some() || !effects.lines.is_empty() {
                effects.change_request_id = Some(change_id);
            }
        }
        Ok((effects != MoneyEffects::default()).then_some(effects))
    }

    /// A manager replaces a call's funding plan; the change is kept with who, when, the
    /// old and the new plan and why.
    pub async fn set_funding_plan(
        &self,
        user: &User,
        call_id: Uuid,
        plan: FundingPlan,
        reason: &str,
    ) -> ServiceResult<FundingPlanChange> {
        require_role(user, &[Role::Manager])?;
        let call = self.call(user, call_id).await?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_PLAN_REASON_CHARS {
            return invalid(
                "reason",
                "须填写调整理由（不超过 500 字）",
                "a reason of 1 to 500 characters is required",
            );
        }
        let categories: Vec<String> = call.categories.iter().map(|c| c.category.clone()).collect();
        let items: Vec<String> = call.items().map(|(_, _, i)| i.item_id.clone()).collect();
        if let Err(e) = plan.check_against(&categories, &items) {
            return refused(Refusal::from_user_facing(
                RefusalReason::FundingPlanInvalid,
                &e,
            ));
        }
        let value = serde_json::to_value(&plan)
            .map_err(|e| ServiceError::Store(StoreError::Invalid(e.to_string())))?;
        Ok(self
            .store
            .set_funding_plan(
                call.id,
                value,
                reason.to_string(),
                user.id.to_string(),
                self.now(),
            )
            .await?)
    }

    /// A call's plan and what approvals hold against each pool (managers, auditors,
    /// city bureaus).
    pub async fn funding(&self, user: &User, call_id: Uuid) -> ServiceResult<FundingView> {
        require_role(user, &[Role::Manager, Role::Auditor, Role::City])?;
        let call = self.call(user, call_id).await?;
        let plan = plan_of(self.store.funding_plan(call.id).await?);
        let held = self.store.funding_commitments(call.id).await?;
        let mut pools = Vec::new();
        if let Some(plan) = &plan {
            let usage = |kind: &'static str, key: &str, allocated: Money, pred: &dyn Fn(&grantflow_store::funding::FundingCommitment) -> bool| {
                let committed: Money = held.iter().filter(|c| pred(c)).map(|c| c.amount).sum();
                PoolUsage {
                    kind,
                    key: key.to_string(),
                    allocated,
                    committed,
                    remaining: allocated.saturating_sub(committed),
                }
            };
            pools.push(usage("total", "", plan.total, &|_| true));
            for (k, a) in &plan.parts {
                pools.push(usage("part", k, *a, &|c| c.part == *k));
            }
            for (k, a) in &plan.categories {
                pools.push(usage("category", k, *a, &|c| c.category == *k));
            }
            for (k, a) in &plan.items {
                pools.push(usage("item", k, *a, &|c| c.item_id == *k));
            }
            for (k, a) in &plan.cities {
                pools.push(usage("city", k, *a, &|c| c.city.as_deref() == Some(k)));
            }
        }
        Ok(FundingView {
            call_id: call.id,
            plan,
            pools,
            projects: held.len(),
        })
    }

    /// Every change of a call's plan, oldest first (managers, auditors).
    pub async fn funding_history(
        &self,
        user: &User,
        call_id: Uuid,
    ) -> ServiceResult<Vec<FundingPlanChange>> {
        require_role(user, &[Role::Manager, Role::Auditor])?;
        let call = self.call(user, call_id).await?;
        Ok(self.store.funding_plan_changes(call.id).await?)
    }

    /// A manager records a payment to a project (拨付). Refused, nothing written: before
    /// the task book is signed (`TASK_BOOK_NOT_SIGNED`; a post-hoc subsidy before its
    /// payment stage: `PAYMENT_NOT_DUE`), on a closed project, and beyond the approved
    /// funding (`DISBURSEMENT_OVER_APPROVED`, naming what remains).
    pub async fn record_disbursement(
        &self,
        user: &User,
        instance_id: Uuid,
        batch: &str,
        paid_on: NaiveDate,
        amount: Money,
        voucher: &str,
    ) -> ServiceResult<Disbursement> {
        let instance = self.project_for_budget(user, instance_id).await?;
        require_role(user, &[Role::Manager])?;
        if amount.fen() <= 0 || amount.checked().is_none() {
            return invalid("amount", "拨付金额须大于零", "the amount must be positive");
        }
        let batch = batch.trim();
        if batch.is_empty() || batch.chars().count() > MAX_BATCH_CHARS {
            return invalid(
                "batch",
                "批次须为 1 至 50 字",
                "the batch must be 1 to 50 characters",
            );
        }
        let voucher = voucher.trim();
        if voucher.is_empty() || voucher.chars().count() > MAX_VOUCHER_CHARS {
            return invalid(
                "voucher",
                "凭证号须为 1 至 100 字",
                "the voucher reference must be 1 to 100 characters",
            );
        }
        grantflow_domain::dates::check_date(paid_on)
            .map_err(|e| ServiceError::Invalid(vec![crate::date_error("paidOn", &e)]))?;
        if is_post_subsidy(&instance) {
            if !["payment", "subsidised"].contains(&instance.state.as_str()) {
                return refused(Refusal::new(
                    RefusalReason::PaymentNotDue,
                    format!(
                        "后补助项目在成果验收后的拨付阶段才能拨付（当前状态 {}）",
                        instance.state
                    ),
                    format!(
                        "a post-hoc subsidy is paid in its payment stage, after its results are accepted (now `{}`)",
                        instance.state
                    ),
                ));
            }
        } else if BEFORE_TASK_BOOK.contains(&instance.state.as_str()) {
            return refused(task_book_not_signed(&instance.state));
        } else if instance.is_final && !["graded", "archived"].contains(&instance.state.as_str()) {
            return refused(Refusal::new(
                RefusalReason::ProjectClosed,
                format!("项目已结束（{}），不得再拨付", instance.state),
                format!(
                    "the project is closed ({}): no more disbursements",
                    instance.state
                ),
            ));
        }
        Ok(self
            .store
            .record_disbursement(Disbursement {
                id: Uuid::now_v7(),
                instance_id,
                batch: batch.to_string(),
                paid_on,
                amount,
                voucher: voucher.to_string(),
                recorded_by: user.id,
                recorded_at: self.now(),
            })
            .await?)
    }

    /// A project's approved funding, disbursements and budget-line changes (whoever may
    /// see the project).
    pub async fn project_money(
        &self,
        user: &User,
        instance_id: Uuid,
    ) -> ServiceResult<MoneyOfProject> {
        let instance = self.project_for_budget(user, instance_id).await?;
        let disbursements = self.store.disbursements(&[instance.id]).await?;
        Ok(MoneyOfProject {
            approved: approved_funding(&instance.data),
            disbursed: disbursements.iter().map(|d| d.amount).sum(),
            disbursements,
            line_changes: self.store.budget_line_changes(instance.id).await?,
        })
    }

    /// What was disbursed to a project (no visibility check: for reports and services
    /// that already checked it).
    pub async fn disbursed_total(&self, instance_id: Uuid) -> ServiceResult<Money> {
        Ok(self
            .store
            .disbursed_totals(&[instance_id])
            .await?
            .first()
            .map_or(Money::ZERO, |d| d.disbursed))
    }

    /// What was disbursed to each of these projects (0 for none), in the given order.
    pub async fn disbursed_totals(
        &self,
        instance_ids: &[Uuid],
    ) -> ServiceResult<Vec<DisbursedTotal>> {
        Ok(self.store.disbursed_totals(instance_ids).await?)
    }

    /// Whether the project's call reimburses afterwards (spending need not wait for a
    /// disbursement).
    pub(super) async fn reimbursed_afterwards(&self, instance: &Instance) -> ServiceResult<bool> {
        let Some(call_id) = instance
            .data
            .get("call_id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            return Ok(false);
        };
        Ok(plan_of(self.store.funding_plan(call_id).await?)
            .is_some_and(|p| p.reimbursed_afterwards))
    }
}

pub(super) fn task_book_not_signed(state: &str) -> Refusal {
    Refusal::new(
        RefusalReason::TaskBookNotSigned,
        format!("先签任务书再执行：任务书尚未签订（当前状态 {state}），不得拨付或支出"),
        format!(
            "the task book is not signed yet (now `{state}`): nothing may be disbursed or spent"
        ),
    )
}

pub(super) fn post_subsidy(i: &Instance) -> bool {
    is_post_subsidy(i)
}
