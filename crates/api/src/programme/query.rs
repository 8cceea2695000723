//! The programme's queries, merged into the query root.

use super::*;

#[derive(Default)]
pub struct ProgrammeQuery;

#[Object]
impl ProgrammeQuery {
    /// Every call for demands, newest first.
    async fn calls(&self, ctx: &Context<'_>) -> Result<Vec<CallGql>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let calls = rc(ctx)
            .services
            .calls(&v.user)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(calls.into_iter().map(CallGql).collect())
    }

    /// One call with its catalogue.
    async fn call(&self, ctx: &Context<'_>, id: ID) -> Result<CallGql> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let call = rc(ctx)
            .services
            .call(&v.user, parse_id(&id, "id")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(CallGql(call))
    }

    /// Likely duplicates among the call's submitted demands, most similar first
    /// (managers, city bureaus for their city, auditors).
    async fn duplicate_candidates(
        &self,
        ctx: &Context<'_>,
        call_id: ID,
    ) -> Result<Vec<DuplicateCandidateGql>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let pairs = rc(ctx)
            .services
            .duplicate_candidates(&v.user, parse_id(&call_id, "callId")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(pairs
            .into_iter()
            .map(|p| DuplicateCandidateGql {
                first: InstanceGql(p.first),
                second: InstanceGql(p.second),
                similarity: SimilarityScoresGql {
                    overall: p.scores.overall,
                    name: p.scores.name,
                    performance: p.scores.performance,
                    use_of_funds: p.scores.use_of_funds,
                },
                reasons: p
                    .reasons
                    .iter()
                    .map(|r| match r {
                        DuplicateReason::Overall => "OVERALL",
                        DuplicateReason::SimilarPerformance => "SIMILAR_PERFORMANCE",
                        DuplicateReason::SimilarUseOfFunds => "SIMILAR_USE_OF_FUNDS",
                    })
                    .map(String::from)
                    .collect(),
            })
            .collect())
    }

    /// The merges recorded for a call (managers and auditors).
    async fn demand_merges(&self, ctx: &Context<'_>, call_id: ID) -> Result<Vec<DemandMergeGql>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        if !(v.has_role(grantflow_store::Role::Manager)
            || v.has_role(grantflow_store::Role::Auditor))
        {
            return Err(ApiError::forbidden().into());
        }
        let r = rc(ctx);
        let call = r
            .services
            .call(&v.user, parse_id(&call_id, "callId")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        let merges = r
            .services
            .store
            .demand_merges(call.id)
            .await
            .map_err(|e| crate::context::store_err(ctx, e))?;
        Ok(merges.into_iter().map(DemandMergeGql).collect())
    }

    /// The consolidated demand table (需求汇总表) of a call, as XLSX or CSV.
    async fn export_demands(
        &self,
        ctx: &Context<'_>,
        call_id: ID,
        format: SpreadsheetFormat,
    ) -> Result<ExportedFile> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let file = rc(ctx)
            .services
            .export_demands(&v.user, parse_id(&call_id, "callId")?, format.into())
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(file.into())
    }

    /// Any list of instances the viewer may see (at most 10 000), as XLSX or CSV.
    async fn export_instances(
        &self,
        ctx: &Context<'_>,
        filter: Option<InstanceFilterInput>,
        format: SpreadsheetFormat,
    ) -> Result<ExportedFile> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let filter =
            crate::query::instance_filter(filter.unwrap_or_default(), rc(ctx).services.now())?;
        let file = rc(ctx)
            .services
            .export_instances(&v.user, &filter, format.into())
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(file.into())
    }

    /// The evaluation results of a call (XLSX: results, indicator scores, summary; CSV:
    /// results).
    async fn export_evaluations(
        &self,
        ctx: &Context<'_>,
        call_id: ID,
        format: SpreadsheetFormat,
    ) -> Result<ExportedFile> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let file = rc(ctx)
            .services
            .export_evaluations(&v.user, parse_id(&call_id, "callId")?, format.into())
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(file.into())
    }

    /// A project's budget lines, spending, what is left and the execution rate.
    async fn budget(&self, ctx: &Context<'_>, instance_id: ID) -> Result<ProjectBudget> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let view = rc(ctx)
            .services
            .budget(&v.user, parse_id(&instance_id, "instanceId")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(view.into())
    }

    /// Actual indicator values recorded for a project.
    async fn indicator_actuals(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
    ) -> Result<Vec<IndicatorActual>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let r = rc(ctx);
        // Visibility first: the budget view checks it and the workflow.
        let view = r
            .services
            .budget(&v.user, parse_id(&instance_id, "instanceId")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        let actuals = r
            .services
            .store
            .actuals(view.instance.id)
            .await
            .map_err(|e| crate::context::store_err(ctx, e))?;
        Ok(actuals.into_iter().map(Into::into).collect())
    }

    /// What the evaluation would give now, from the approved indicators, the actuals and
    /// the budget execution (nothing is stored).
    async fn evaluation_preview(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        qualitative: Option<Vec<QualitativeAssessmentInput>>,
        explanations: Option<Vec<ExplanationInput>>,
    ) -> Result<EvaluationScore> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let result = rc(ctx)
            .services
            .evaluation_preview(
                &v.user,
                parse_id(&instance_id, "instanceId")?,
                &judgements(qualitative),
                &self::explanations(explanations),
            )
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok((&result).into())
    }

    /// The stored evaluation of a project.
    async fn evaluation(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
    ) -> Result<Option<ProjectEvaluation>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let record = rc(ctx)
            .services
            .evaluation(&v.user, parse_id(&instance_id, "instanceId")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        record.map(stored_evaluation).transpose()
    }

    /// Grade distribution and budget execution of a call's projects.
    async fn call_summary(&self, ctx: &Context<'_>, call_id: ID) -> Result<CallSummaryGql> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let s = rc(ctx)
            .services
            .call_summary(&v.user, parse_id(&call_id, "callId")?)
            .await
            .map_err(|e| service_err(ctx, e))?;
        Ok(CallSummaryGql {
            demands: s.demands,
            projects: s.projects,
            evaluated: s.summary.projects,
            grades: GradeDistribution {
                excellent: s.summary.grades.excellent,
                good: s.summary.grades.good,
                fair: s.summary.grades.fair,
                poor: s.summary.grades.poor,
            },
            average_total: s.summary.average_total,
            budget_execution: s.execution.into(),
            call: CallGql(s.call),
        })
    }
}
