//! The performance evaluation (绩效评价): its input, preview, scoring, the stored result,
//! call summaries and the evaluations export.

use super::*;

impl Services {
    /// The scoring input of a project: its approved indicators, acceptance actuals (from
    /// recorded actuals, else the `indicator_actuals` submitted for acceptance), the
    /// evaluator's judgements and explanations, and the budget execution.
    pub(super) async fn evaluation_input(
        &self,
        instance: &Instance,
        judgements: &[Judgement],
        explanations: &BTreeMap<String, String>,
    ) -> ServiceResult<EvaluationInput> {
        let indicators = indicators_from(instance.data.get("approved_indicators"));
        let recorded = self.store.actuals(instance.id).await?;
        let submitted = indicators_from(instance.data.get("indicator_actuals"));
        let submitted_raw: Vec<&Value> = instance
            .data
            .get("indicator_actuals")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let mut outcomes = BTreeMap::new();
        for i in &indicators {
            if i.is_quantitative() {
                let from_store = recorded
                    .iter()
                    .find(|a| a.indicator_id == i.id && a.checkpoint == "acceptance")
                    .and_then(|a| a.value.as_f64().map(|v| (v, a.explanation.clone())));
                let from_data = || {
                    submitted
                        .iter()
                        .position(|s| s.id == i.id || s.name == i.name)
                        .and_then(|n| submitted_raw.get(n))
                        .and_then(|raw| {
                            raw.get("actual").and_then(Value::as_f64).map(|v| {
                                (
                                    v,
                                    raw.get("explanation")
                                        .and_then(Value::as_str)
                                        .map(str::to_string),
                                )
                            })
                        })
                };
                if let Some((actual, explanation)) = from_store.or_else(from_data) {
                    let explanation = explanations.get(&i.id).cloned().or(explanation);
                    outcomes.insert(
                        i.id.clone(),
                        Outcome::Quantitative {
                            actual,
                            explanation,
                        },
                    );
                }
            } else if let Some(j) = judgements.iter().find(|j| j.indicator_id == i.id) {
                outcomes.insert(
                    i.id.clone(),
                    Outcome::Qualitative {
                        achievement: j.achievement,
                        percent: j.percent,
                    },
                );
            }
        }
        let lines = self.store.budget_lines(&[instance.id]).await?;
        let spending = self.store.spending(&[instance.id]).await?;
        let ledger = Self::ledger(instance, &lines, &spending);
        Ok(EvaluationInput {
            project_id: instance.id.to_string(),
            project_name: instance.title.clone(),
            indicators,
            outcomes,
            budgeted: ledger.budgeted(),
            spent: ledger.spent(),
        })
    }

    pub(super) fn score(
        method: &EvaluationMethod,
        input: &EvaluationInput,
    ) -> ServiceResult<EvaluationResult> {
        evaluate(method, input).map_err(|errors| {
            let problems: Vec<Value> = errors
                .iter()
                .map(|e| json!({ "code": e.code(), "messageZh": e.message(Lang::ZhCn), "messageEn": e.message(Lang::En) }))
                .collect();
            let first = errors.first();
            ServiceError::Refused(Box::new(
                Refusal::new(
                    RefusalReason::EvaluationIncomplete,
                    format!(
                        "无法评分：{}",
                        first.map(|e| e.message(Lang::ZhCn)).unwrap_or_default()
                    ),
                    format!(
                        "cannot score: {}",
                        first.map(|e| e.message(Lang::En)).unwrap_or_default()
                    ),
                )
                .with_details(json!({ "problems": problems })),
            ))
        })
    }

    /// What the evaluation of a project would give now (nothing is stored).
    pub async fn evaluation_preview(
        &self,
        user: &User,
        instance_id: Uuid,
        judgements: &[Judgement],
        explanations: &BTreeMap<String, String>,
    ) -> ServiceResult<EvaluationResult> {
        require_role(
            user,
            &[Role::Manager, Role::Auditor, Role::Applicant, Role::City],
        )?;
        let instance = self.project_for_budget(user, instance_id).await?;
        let input = self
            .evaluation_input(&instance, judgements, explanations)
            .await?;
        let method = evaluation_method(&self.rules_of_data(&instance.data).await?);
        Self::score(&method, &input)
    }

    /// The performance evaluation (绩效评价) of a project in `evaluation`: the default
    /// method scores the approved indicators against the acceptance actuals and the
    /// budget execution; the result is stored and `grade` is fired with the score
    /// (rounded down to a whole point, so that it agrees with the grade) and the grade.
    pub async fn evaluate_project(
        &self,
        user: &User,
        instance_id: Uuid,
        judgements: &[Judgement],
        explanations: &BTreeMap<String, String>,
    ) -> ServiceResult<(EvaluationRecord, Applied)> {
        require_role(user, &[Role::Manager])?;
        let instance = self.project_for_budget(user, instance_id).await?;
        if instance.state != "evaluation" {
            return refused(Refusal::new(
                RefusalReason::NotInEvaluation,
                format!("项目当前处于「{}」，不在绩效评价阶段", instance.state),
                format!("the project is in `{}`, not in evaluation", instance.state),
            ));
        }
        let input = self
            .evaluation_input(&instance, judgements, explanations)
            .await?;
        // The call's points, grade bands and overshoot threshold (`[rules.evaluation]`).
        let method = evaluation_method(&self.rules_of_data(&instance.data).await?);
        let result = Self::score(&method, &input)?;
        let record = EvaluationRecord {
            instance_id: instance.id,
            call_id: instance
                .data
                .get("call_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            method: serde_json::to_value(&method).unwrap_or(Value::Null),
            budgeted: result.budgeted,
            spent: result.spent,
            execution_rate: result.execution_rate,
            total: result.total,
            grade: result.grade.name(Lang::ZhCn).to_string(),
            indicator_scores: result
                .indicators
                .iter()
                .map(|s| IndicatorScoreRecord {
                    indicator_id: s.indicator_id.clone(),
                    name: s.name.clone(),
                    part: code_of(&s.part),
                    max_points: s.max_points,
                    fraction: s.fraction,
                    points: s.points,
                })
                .collect(),
            result: json!({
                "result": result,
                "outcomes": input.outcomes,
            }),
            evaluator_id: user.id,
            evaluated_at: self.now(),
        };
        self.store.save_evaluation(record.clone()).await?;
        let applied = self
            .fire(
                user,
                FireEvent {
                    instance_id: instance.id,
                    event: "grade".into(),
                    expected_version: instance.version,
                    idempotency_key: Some(format!("evaluate:{}:{}", instance.id, instance.version)),
                    input: json!({
                        "evaluation_score": result.total.floor() as i64,
                        "evaluation_grade": record.grade,
                    }),
                    reason: None,
                },
            )
            .await?;
        Ok((record, applied))
    }

    /// The stored evaluation of a project, if any.
    pub async fn evaluation(
        &self,
        user: &User,
        instance_id: Uuid,
    ) -> ServiceResult<Option<EvaluationRecord>> {
        let instance = self.project_for_budget(user, instance_id).await?;
        Ok(self.store.evaluation(instance.id).await?)
    }

    pub(super) async fn visible_evaluations(
        &self,
        user: &User,
        call: &Call,
    ) -> ServiceResult<(Vec<Instance>, Vec<EvaluationResult>)> {
        let projects = self.visible_of_call(user, PROJECT_WORKFLOW, call).await?;
        let records = self
            .store
            .evaluations_for_call(&call.id.to_string())
            .await?;
        let results = records
            .iter()
            .filter(|r| projects.iter().any(|p| p.id == r.instance_id))
            .filter_map(|r| {
                serde_json::from_value::<EvaluationResult>(r.result["result"].clone()).ok()
            })
            .collect();
        Ok((projects, results))
    }

    /// A call at a glance: grade distribution of its evaluated projects and budget
    /// execution of all its projects (those the user may see).
    pub async fn call_summary(&self, user: &User, call_id: Uuid) -> ServiceResult<CallSummaryView> {
        let call = self.call(user, call_id).await?;
        let (projects, results) = self.visible_evaluations(user, &call).await?;
        let demands = self
            .visible_of_call(user, DEMAND_WORKFLOW, &call)
            .await?
            .len();
        let count = projects.len();
        let execution = self.execution_of(projects).await?;
        Ok(CallSummaryView {
            summary: summarize_call(&results),
            call,
            execution,
            demands,
            projects: count,
        })
    }

    /// The evaluation results of a call: XLSX with results, indicator scores and the
    /// summary; CSV with the results.
    pub async fn export_evaluations(
        &self,
        user: &User,
        call_id: Uuid,
        format: ExportFormat,
    ) -> ServiceResult<ExportFile> {
        let call = self.call(user, call_id).await?;
        let (_, results) = self.visible_evaluations(user, &call).await?;
        let summary = summarize_call(&results);
        let sheets = vec![
            evaluation_sheet(&results),
            indicator_score_sheet(&results),
            call_summary_sheet(&summary),
        ];
        self.render(format, format!("{}年绩效评价结果", call.year), sheets)
            .await
    }
}
