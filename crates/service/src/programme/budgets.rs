//! Budgets and spending (先有预算再有执行、没有预算不得支出) and a call's execution.

use super::funding;
use super::*;

impl Services {
    pub(super) async fn project_for_budget(
        &self,
        user: &User,
        id: Uuid,
    ) -> ServiceResult<Instance> {
        let instance = self.visible_instance(user, id).await?;
        Self::expect_workflow(&instance, PROJECT_WORKFLOW)?;
        Ok(instance)
    }

    /// A manager adds a budget line (预算项目) to a project; the instance's budget facts
    /// are refreshed in the same transaction.
    pub async fn add_budget_line(
        &self,
        user: &User,
        instance_id: Uuid,
        year: i32,
        subject: &str,
        amount: Money,
        source: &str,
    ) -> ServiceResult<BudgetLine> {
        let instance = self.project_for_budget(user, instance_id).await?;
        require_role(user, &[Role::Manager])?;
        if instance.is_final {
            return refused(Refusal::new(
                RefusalReason::ProjectClosed,
                "项目已结束，不能再编列预算",
                "the project is closed: no more budget lines",
            ));
        }
        if amount.fen() <= 0 {
            return invalid("amount", "预算金额须大于零", "the amount must be positive");
        }
        if !(2000..=2100).contains(&year) {
            return invalid("year", "预算年度无效", "the budget year is not valid");
        }
        let subject = subject.trim();
        if subject.is_empty() || subject.chars().count() > 200 {
            return invalid(
                "subject",
                "预算科目不能为空且不超过 200 字",
                "the subject must be 1 to 200 characters",
            );
        }
        Ok(self
            .store
            .add_budget_line(BudgetLine {
                id: Uuid::now_v7(),
                instance_id,
                year,
                subject: subject.to_string(),
                amount,
                source: source.trim().to_string(),
                created_by: user.id,
                created_at: self.now(),
            })
            .await?)
    }

    /// Record spending against a line (the project's unit or a manager). Refused, with
    /// nothing written, when the line is missing (`BUDGET_LINE_MISSING`), the amount is
    /// beyond what is left (`BUDGET_EXCEEDED`), the project is not approved yet
    /// (`NOT_APPROVED`) or the spending predates approval or is charged to another year's
    /// line. The check and the insert run in one transaction with the line locked.
    pub async fn record_spending(
        &self,
        user: &User,
        instance_id: Uuid,
        line_id: Option<Uuid>,
        amount: Money,
        spent_on: NaiveDate,
        description: &str,
    ) -> ServiceResult<SpendingRecord> {
        let instance = self.project_for_budget(user, instance_id).await?;
        require_role(user, &[Role::Applicant, Role::Manager])?;
        let own_unit = user.has_role(Role::Applicant) && user.org_id == Some(instance.org_id);
        if !own_unit && !user.has_role(Role::Manager) {
            return Err(ServiceError::Forbidden);
        }
        if amount.fen() <= 0 {
            return invalid("amount", "支出金额须大于零", "the amount must be positive");
        }
        grantflow_domain::dates::check_date(spent_on)
            .map_err(|e| ServiceError::Invalid(vec![crate::date_error("spentOn", &e)]))?;
        if description.chars().count() > 2000 {
            return invalid(
                "description",
                "说明不超过 2000 字",
                "the description may not exceed 2000 characters",
            );
        }
        // 后补助 pays after the results are accepted, and a call may reimburse afterwards:
        // then spending waits for neither a task book (post-hoc) nor a disbursement.
        let post_hoc = funding::post_subsidy(&instance);
        let require_disbursed = !post_hoc && !self.reimbursed_afterwards(&instance).await?;
        let precondition = |current: &Instance, line: &BudgetLine| -> Result<(), SpendingRefusal> {
            let approved_on = current
                .data
                .get("approved_on")
                .and_then(Value::as_str)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            let Some(approved_on) = approved_on.filter(|_| current.state != "not_funded") else {
                return Err(SpendingRefusal::Refused {
                    code: RefusalReason::NotApproved.as_str().into(),
                    message_zh: "先有预算再有执行：项目尚未立项，不得支出".into(),
                    message_en: "the project is not approved yet: nothing may be spent".into(),
                });
            };
            if current.is_final {
                return Err(SpendingRefusal::Refused {
                    code: RefusalReason::ProjectClosed.as_str().into(),
                    message_zh: format!("项目已结束（{}），不得再支出", current.state),
                    message_en: format!(
                        "the project is closed ({}): no more spending",
                        current.state
                    ),
                });
            }
            if !post_hoc && funding::BEFORE_TASK_BOOK.contains(&current.state.as_str()) {
                let r = funding::task_book_not_signed(&current.state);
                return Err(SpendingRefusal::Refused {
                    code: r.reason.as_str().into(),
                    message_zh: r.message_zh,
                    message_en: r.message_en,
                });
            }
            if spent_on < approved_on {
                return Err(SpendingRefusal::Refused {
                    code: RefusalReason::SpendingBeforeApproval.as_str().into(),
                    message_zh: format!("支出日期 {spent_on} 早于立项日期 {approved_on}"),
                    message_en: format!(
                        "spending on {spent_on} precedes approval on {approved_on}"
                    ),
                });
            }
            if line.year != spent_on.year() {
                return Err(SpendingRefusal::Refused {
                    code: RefusalReason::BudgetLineWrongYear.as_str().into(),
                    message_zh: format!(
                        "预算项目「{}」属于 {} 年度，不能用于 {spent_on} 的支出",
                        line.subject, line.year
                    ),
                    message_en: format!(
                        "budget line `{}` is for {} and cannot pay for spending on {spent_on}",
                        line.subject, line.year
                    ),
                });
            }
            Ok(())
        };
        let outcome = self
            .store
            .record_spending(NewSpending {
                id: Uuid::now_v7(),
                instance_id,
                line_id,
                amount,
                spent_on,
                description: description.trim().to_string(),
                recorded_by: user.id,
                recorded_at: self.now(),
                precondition: &precondition,
                require_disbursed,
            })
            .await?;
        match outcome {
            Ok(record) => Ok(record),
            Err(SpendingRefusal::LineMissing { line_id }) => refused(
                Refusal::new(
                    RefusalReason::BudgetLineMissing,
                    "没有预算不得支出：该支出未对应本项目的任何预算项目",
                    "no spending without a budget: the record is not charged to a budget line of this project",
                )
                .with_details(json!({ "lineId": line_id })),
            ),
            Err(SpendingRefusal::BudgetExceeded {
                line_id,
                amount,
                remaining,
            }) => refused(
                Refusal::new(
                    RefusalReason::BudgetExceeded,
                    format!("支出 {amount} 元超出预算项目剩余额度 {remaining} 元"),
                    format!("spending {amount} yuan exceeds the {remaining} yuan left on the line"),
                )
                .with_details(json!({
                    "lineId": line_id,
                    "amount": amount.to_string(),
                    "remaining": remaining.to_string(),
                })),
            ),
            Err(SpendingRefusal::BeyondDisbursed {
                disbursed,
                spent,
                amount,
                remaining,
            }) => refused(
                Refusal::new(
                    RefusalReason::SpendingBeyondDisbursed,
                    format!("支出 {amount} 元超出已拨付资金的剩余额度 {remaining} 元（已拨付 {disbursed} 元，已支出 {spent} 元）"),
                    format!("spending {amount} yuan exceeds the {remaining} yuan of disbursed funds left ({disbursed} yuan disbursed, {spent} yuan spent)"),
                )
                .with_details(json!({
                    "disbursed": disbursed.to_string(),
                    "spent": spent.to_string(),
                    "amount": amount.to_string(),
                    "remaining": remaining.to_string(),
                })),
            ),
            Err(SpendingRefusal::Refused {
                code,
                message_zh,
                message_en,
            }) => match RefusalReason::from_code(&code) {
                Some(reason) => refused(Refusal::new(reason, message_zh, message_en)),
                // Only the precondition above refuses, with one of the reasons.
                None => Err(ServiceError::Store(StoreError::Invalid(format!(
                    "unknown spending refusal `{code}`"
                )))),
            },
        }
    }

    pub(super) fn ledger(
        instance: &Instance,
        lines: &[BudgetLine],
        spending: &[SpendingRecord],
    ) -> ProjectLedger {
        let mut ledger = ProjectLedger::new(instance.id.to_string());
        ledger.approved_on = instance
            .data
            .get("approved_on")
            .and_then(Value::as_str)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        for l in lines.iter().filter(|l| l.instance_id == instance.id) {
            ledger.lines.push(grantflow_programme::budget::BudgetLine {
                id: l.id.to_string(),
                project_id: ledger.project_id.clone(),
                year: l.year,
                subject: l.subject.clone(),
                amount: l.amount,
            });
        }
        for s in spending.iter().filter(|s| s.instance_id == instance.id) {
            ledger
                .spending
                .push(grantflow_programme::budget::SpendingRecord {
                    id: s.id.to_string(),
                    project_id: ledger.project_id.clone(),
                    line_id: Some(s.line_id.to_string()),
                    spent_on: s.spent_on,
                    amount: s.amount,
                    description: s.description.clone(),
                });
        }
        ledger
    }

    /// A project's budget: lines with what is left on each, spending, execution rate.
    pub async fn budget(&self, user: &User, instance_id: Uuid) -> ServiceResult<BudgetView> {
        let instance = self.project_for_budget(user, instance_id).await?;
        let lines = self.store.budget_lines(&[instance.id]).await?;
        let spending = self.store.spending(&[instance.id]).await?;
        let ledger = Self::ledger(&instance, &lines, &spending);
        let execution = ledger.execution();
        let with_remaining = lines
            .into_iter()
            .map(|l| {
                let left = ledger.remaining(&l.id.to_string()).unwrap_or(l.amount);
                (l, left)
            })
            .collect();
        let disbursements = self.store.disbursements(&[instance.id]).await?;
        let disbursed: Money = disbursements.iter().map(|d| d.amount).sum();
        let approved = grantflow_store::funding::approved_funding(&instance.data);
        Ok(BudgetView {
            instance,
            lines: with_remaining,
            spending,
            budgeted: execution.budgeted,
            spent: execution.spent,
            execution_rate: execution.rate,
            approved,
            disbursed,
            rate_of_disbursed: execution.spent.ratio_of(disbursed),
            rate_of_approved: approved.and_then(|a| execution.spent.ratio_of(a)),
            disbursements,
        })
    }

    /// Budget execution of a call's projects (those the user may see) and of the call.
    pub async fn call_execution(
        &self,
        user: &User,
        call_id: Uuid,
    ) -> ServiceResult<CallExecutionView> {
        let call = self.call(user, call_id).await?;
        let projects = self.visible_of_call(user, PROJECT_WORKFLOW, &call).await?;
        self.execution_of(projects).await
    }

    pub(super) async fn execution_of(
        &self,
        projects: Vec<Instance>,
    ) -> ServiceResult<CallExecutionView> {
        let ids: Vec<Uuid> = projects.iter().map(|p| p.id).collect();
        let lines = self.store.budget_lines(&ids).await?;
        let spending = self.store.spending(&ids).await?;
        let ledgers: Vec<ProjectLedger> = projects
            .iter()
            .map(|p| Self::ledger(p, &lines, &spending))
            .collect();
        let exec = call_execution(&ledgers);
        Ok(CallExecutionView {
            projects: projects
                .into_iter()
                .zip(exec.projects)
                .map(|(p, e)| (p, e.execution.budgeted, e.execution.spent, e.execution.rate))
                .collect(),
            budgeted: exec.total.budgeted,
            spent: exec.total.spent,
            execution_rate: exec.total.rate,
        })
    }
}
