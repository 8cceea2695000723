//! 第三方绩效评价 in the API: the manager assigns a project's evaluation to a third-party
//! institution, its evaluators record an evaluation scored like `evaluateProject`, and the
//! comparison sets the unit's self-evaluation beside the third party's and the manager's.

use grantflow_service::programme::{EvaluationComparison, PartPoints, ScoredSide};
use grantflow_store::third_party::{EvaluationAssignment, ThirdPartyEvaluation};

use super::*;

/// A project's evaluation assigned to a third-party institution.
#[derive(SimpleObject)]
#[graphql(name = "EvaluationAssignment")]
pub struct EvaluationAssignmentGql {
    pub instance_id: ID,
    pub organisation_id: ID,
    pub assigned_by: ID,
    pub assigned_at: DateTime<Utc>,
}

impl From<EvaluationAssignment> for EvaluationAssignmentGql {
    fn from(a: EvaluationAssignment) -> Self {
        Self {
            instance_id: ID(a.instance_id.to_string()),
            organisation_id: ID(a.org_id.to_string()),
            assigned_by: ID(a.assigned_by.to_string()),
            assigned_at: a.assigned_at,
        }
    }
}

/// A third party's evaluation of a project.
#[derive(SimpleObject)]
#[graphql(name = "ThirdPartyEvaluation")]
pub struct ThirdPartyEvaluationGql {
    pub instance_id: ID,
    pub organisation_id: ID,
    pub evaluator_id: ID,
    pub score: EvaluationScore,
    pub evaluated_at: DateTime<Utc>,
}

fn third_party_evaluation(e: ThirdPartyEvaluation) -> Result<ThirdPartyEvaluationGql> {
    let result: EvaluationResult = serde_json::from_value(e.result)
        .map_err(|err| async_graphql::Error::new(format!("stored evaluation: {err}")))?;
    Ok(ThirdPartyEvaluationGql {
        instance_id: ID(e.instance_id.to_string()),
        organisation_id: ID(e.org_id.to_string()),
        evaluator_id: ID(e.evaluator_id.to_string()),
        score: (&result).into(),
        evaluated_at: e.evaluated_at,
    })
}

#[derive(SimpleObject)]
#[graphql(name = "ComparedPart")]
pub struct ComparedPartGql {
    /// BUDGET_EXECUTION, OUTPUT, EFFECT or SATISFACTION.
    pub part: String,
    pub max_points: f64,
    pub points: f64,
}

/// One evaluation in the comparison.
#[derive(SimpleObject)]
#[graphql(name = "ComparedEvaluation")]
pub struct ComparedEvaluationGql {
    pub evaluator_id: ID,
    /// The third-party institution (null for the manager's evaluation).
    pub organisation_id: Option<ID>,
    pub total: f64,
    pub grade: String,
    pub parts: Vec<ComparedPartGql>,
    pub evaluated_at: DateTime<Utc>,
}

impl From<ScoredSide> for ComparedEvaluationGql {
    fn from(s: ScoredSide) -> Self {
        Self {
            evaluator_id: ID(s.evaluator_id.to_string()),
            organisation_id: s.org_id.map(|o| ID(o.to_string())),
            total: s.total,
            grade: s.grade,
            parts: s
                .parts
                .into_iter()
                .map(|p: PartPoints| ComparedPartGql {
                    part: p.part.to_uppercase(),
                    max_points: p.max_points,
                    points: p.points,
                })
                .collect(),
            evaluated_at: s.evaluated_at,
        }
    }
}

/// A difference between two evaluations on one dimension.
#[derive(SimpleObject)]
#[graphql(name = "EvaluationDifference")]
pub struct EvaluationDifferenceGql {
    /// TOTAL or a part (OUTPUT …).
    pub dimension: String,
    /// SELF_VS_THIRD_PARTY, SELF_VS_MANAGER or THIRD_PARTY_VS_MANAGER.
    pub between: String,
    pub first: f64,
    pub second: f64,
    /// `second - first`, in points.
    pub difference: f64,
    /// At least the call's `evaluation_difference_threshold` apart.
    pub flagged: bool,
}

/// The evaluation report: the unit's self-evaluation beside the third party's and the
/// manager's evaluation, with the differences.
#[derive(SimpleObject)]
#[graphql(name = "EvaluationComparison")]
pub struct EvaluationComparisonGql {
    pub instance_id: ID,
    /// The call's `evaluation_difference_threshold` (default 10 points).
    pub threshold: f64,
    /// The unit's self-evaluation score (total).
    pub self_evaluation: Option<f64>,
    pub third_party: Option<ComparedEvaluationGql>,
    pub manager: Option<ComparedEvaluationGql>,
    pub differences: Vec<EvaluationDifferenceGql>,
}

impl From<EvaluationComparison> for EvaluationComparisonGql {
    fn from(c: EvaluationComparison) -> Self {
        Self {
            instance_id: ID(c.instance_id.to_string()),
            threshold: c.threshold,
            self_evaluation: c.self_evaluation,
            third_party: c.third_party.map(Into::into),
            manager: c.manager.map(Into::into),
            differences: c
                .differences
                .into_iter()
                .map(|d| EvaluationDifferenceGql {
                    dimension: d.dimension.to_uppercase(),
                    between: d.between.to_uppercase(),
                    first: d.first,
                    second: d.second,
                    difference: d.difference,
                    flagged: d.flagged,
                })
                .collect(),
        }
    }
}

#[derive(Default)]
pub struct ThirdPartyQuery;

#[Object]
impl ThirdPartyQuery {
    /// Every assignment of the project's evaluation to a third-party institution, oldest
    /// first (the last one is current).
    async fn evaluation_assignments(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
    ) -> Result<Vec<EvaluationAssignmentGql>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let list = rc(ctx)
            .services
            .evaluation_assignments(&v.user, parse_id(&instance_id, "instanceId")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(list.into_iter().map(Into::into).collect())
    }

    /// The evaluation report's comparison: self-evaluation, third-party and manager
    /// evaluation side by side, differences flagged per part and in total.
    async fn evaluation_comparison(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
    ) -> Result<EvaluationComparisonGql> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let c = rc(ctx)
            .services
            .evaluation_comparison(&v.user, parse_id(&instance_id, "instanceId")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(c.into())
    }
}

#[derive(Default)]
pub struct ThirdPartyMutation;

#[Object]
impl ThirdPartyMutation {
    /// Assign (or reassign) a project's performance evaluation to a third-party
    /// institution (managers); every assignment is kept.
    async fn assign_evaluation(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        organisation_id: ID,
    ) -> Result<EvaluationAssignmentGql> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let a = rc(ctx)
            .services
            .assign_evaluation(
                &v.user,
                parse_id(&instance_id, "instanceId")?,
                parse_id(&organisation_id, "organisationId")?,
            )
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(a.into())
    }

    /// A third party's evaluator records the evaluation of a project assigned to their
    /// institution (in `evaluation`), scored as `evaluateProject` scores.
    async fn record_third_party_evaluation(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        qualitative: Option<Vec<QualitativeAssessmentInput>>,
        explanations: Option<Vec<ExplanationInput>>,
    ) -> Result<ThirdPartyEvaluationGql> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let e = rc(ctx)
            .services
            .record_third_party_evaluation(
                &v.user,
                parse_id(&instance_id, "instanceId")?,
                &judgements(qualitative),
                &super::types::explanations(explanations),
            )
            .await
            .map_err(|e| service_err(ctx, e))?;
        third_party_evaluation(e)
    }
}
