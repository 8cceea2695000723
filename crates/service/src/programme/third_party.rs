//! 第三方绩效评价: the manager assigns a project's performance evaluation to a third-party
//! institution (organisation kind `third_party`), with every assignment kept; the
//! institution's evaluators (role `third_party_evaluator`) see only the projects assigned
//! to their organisation (`Visibility::ThirdParty`, through [`crate::can_see`] and the
//! listing's visibility, like every other viewer) and record an evaluation scored exactly
//! as `evaluateProject` scores (same input, same method). The comparison report sets the
//! unit's self-evaluation beside the third party's and the manager's evaluation and flags
//! every difference of at least the call's `evaluation_difference_threshold` points (per
//! part and in total).

use grantflow_programme::evaluation::EvaluationResult;
use grantflow_store::third_party::{EvaluationAssignment, ThirdPartyEvaluation};

use super::*;

/// Points of one part of a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartPoints {
    /// `budget_execution`, `output`, `effect` or `satisfaction`.
    pub part: String,
    pub max_points: f64,
    pub points: f64,
}

/// One side of the comparison: who scored, the total, the grade and the parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredSide {
    pub evaluator_id: Uuid,
    pub org_id: Option<Uuid>,
    pub total: f64,
    pub grade: String,
    pub parts: Vec<PartPoints>,
    pub evaluated_at: chrono::DateTime<chrono::Utc>,
}

/// A difference between two sides on one dimension (a part or the total).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreDifference {
    /// `total` or a part (`output` …).
    pub dimension: String,
    /// `self_vs_third_party`, `self_vs_manager` or `third_party_vs_manager`.
    pub between: String,
    pub first: f64,
    pub second: f64,
    /// `second - first`.
    pub difference: f64,
    /// `|difference| >= threshold`.
    pub flagged: bool,
}

/// The evaluation report's comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvaluationComparison {
    pub instance_id: Uuid,
    /// The call's `evaluation_difference_threshold` (default 10 points).
    pub threshold: f64,
    /// The unit's self-evaluation score (`data.self_evaluation_score`), total only.
    pub self_evaluation: Option<f64>,
    pub third_party: Option<ScoredSide>,
    pub manager: Option<ScoredSide>,
    pub differences: Vec<ScoreDifference>,
}

fn parts_of(result: &Value) -> Vec<PartPoints> {
    serde_json::from_value::<EvaluationResult>(result.clone())
        .map(|r| {
            r.parts
                .iter()
                .map(|p| PartPoints {
                    part: code_of(&p.part),
                    max_points: p.max_points,
                    points: p.points,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

impl Services {
    /// A manager assigns (or reassigns) a project's evaluation to a third-party
    /// institution; every assignment is kept.
    pub async fn assign_evaluation(
        &self,
        user: &User,
        instance_id: Uuid,
        org_id: Uuid,
    ) -> ServiceResult<EvaluationAssignment> {
        require_role(user, &[Role::Manager])?;
        let instance = self.project_for_budget(user, instance_id).await?;
        if instance.is_final {
            return refused(Refusal::new(
                RefusalReason::ProjectClosed,
                "项目已结束",
                "the project is closed",
            ));
        }
        let org = match self.store.get_org(org_id).await {
            Ok(o) => o,
            Err(StoreError::NotFound { .. }) => {
                return Err(ServiceError::NotFound("organisation".into()));
            }
            Err(e) => return Err(e.into()),
        };
        if org.kind != OrgKind::ThirdParty {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "orgId",
                "NOT_THIRD_PARTY",
                "须为第三方评价机构",
                "must be a third-party institution",
            )]));
        }
        Ok(self
            .store
            .assign_evaluation(EvaluationAssignment {
                instance_id: instance.id,
                org_id: org.id,
                assigned_by: user.id,
                assigned_at: self.now(),
            })
            .await?)
    }

    /// The current assignment and every earlier one (whoever may see the project).
    pub async fn evaluation_assignments(
        &self,
        user: &User,
        instance_id: Uuid,
    ) -> ServiceResult<Vec<EvaluationAssignment>> {
        let instance = self.project_for_budget(user, instance_id).await?;
        Ok(self
            .store
            .evaluation_assignment_history(instance.id)
            .await?)
    }

    /// A third party's evaluator records the evaluation of a project assigned to their
    /// organisation, in `evaluation` or `graded`: the same input and method as
    /// `evaluate_project`; the result is stored beside the manager's (the grade stays the
    /// manager's).
    pub async fn record_third_party_evaluation(
        &self,
        user: &User,
        instance_id: Uuid,
        judgements: &[Judgement],
        explanations: &BTreeMap<String, String>,
    ) -> ServiceResult<ThirdPartyEvaluation> {
        require_role(user, &[Role::ThirdPartyEvaluator])?;
        let org_id = user.org_id.ok_or(ServiceError::Forbidden)?;
        // Only through the assignment: anything else is not there for this user.
        let instance = self.project_for_budget(user, instance_id).await?;
        if !self.store.is_assigned_to_org(instance.id, org_id).await? {
            return Err(ServiceError::NotFound("instance".into()));
        }
        // In the evaluation, or after the manager's grade (the report compares both).
        if instance.state != "evaluation" && instance.state != "graded" {
            return refused(Refusal::new(
                RefusalReason::NotInEvaluation,
                format!("项目当前处于「{}」，不在绩效评价阶段", instance.state),
                format!("the project is in `{}`, not in evaluation", instance.state),
            ));
        }
        let input = self
            .evaluation_input(&instance, judgements, explanations)
            .await?;
        let method = evaluation_method(&self.rules_of_data(&instance.data).await?);
        let result = Self::score(&method, &input)?;
        let record = ThirdPartyEvaluation {
            instance_id: instance.id,
            org_id,
            evaluator_id: user.id,
            total: result.total,
            grade: result.grade.name(Lang::ZhCn).to_string(),
            result: serde_json::to_value(&result).unwrap_or(Value::Null),
            evaluated_at: self.now(),
        };
        self.store
            .save_third_party_evaluation(record.clone())
            .await?;
        Ok(record)
    }

    /// The evaluation report's comparison: the unit's self-evaluation beside the third
    /// party's and the manager's evaluation, differences flagged at the call's threshold.
    pub async fn evaluation_comparison(
        &self,
        user: &User,
        instance_id: Uuid,
    ) -> ServiceResult<EvaluationComparison> {
        let instance = self.project_for_budget(user, instance_id).await?;
        let threshold = self
            .rules_of_data(&instance.data)
            .await?
            .evaluation_difference_threshold;
        let self_evaluation = instance
            .data
            .get("self_evaluation_score")
            .and_then(Value::as_f64);
        let third_party = self
            .store
            .third_party_evaluation(instance.id)
            .await?
            .map(|e| ScoredSide {
                evaluator_id: e.evaluator_id,
                org_id: Some(e.org_id),
                total: e.total,
                grade: e.grade,
                parts: parts_of(&e.result),
                evaluated_at: e.evaluated_at,
            });
        let manager = self
            .store
            .evaluation(instance.id)
            .await?
            .map(|e| ScoredSide {
                evaluator_id: e.evaluator_id,
                org_id: None,
                total: e.total,
                grade: e.grade,
                parts: parts_of(&e.result["result"]),
                evaluated_at: e.evaluated_at,
            });
        let mut differences = Vec::new();
        let mut diff = |dimension: &str, between: &str, first: f64, second: f64| {
            let difference = round2(second - first);
            differences.push(ScoreDifference {
                dimension: dimension.into(),
                between: between.into(),
                first,
                second,
                difference,
                flagged: difference.abs() >= threshold,
            });
        };
        if let (Some(s), Some(t)) = (self_evaluation, &third_party) {
            diff("total", "self_vs_third_party", s, t.total);
        }
        if let (Some(s), Some(m)) = (self_evaluation, &manager) {
            diff("total", "self_vs_manager", s, m.total);
        }
        if let (Some(t), Some(m)) = (&third_party, &manager) {
            diff("total", "third_party_vs_manager", t.total, m.total);
            for tp in &t.parts {
                if let Some(mp) = m.parts.iter().find(|p| p.part == tp.part) {
                    diff(&tp.part, "third_party_vs_manager", tp.points, mp.points);
                }
            }
        }
        Ok(EvaluationComparison {
            instance_id: instance.id,
            threshold,
            self_evaluation,
            third_party,
            manager,
            differences,
        })
    }
}
