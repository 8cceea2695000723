//! Expert review's queries, merged into the query root.

use super::*;

#[derive(Default)]
pub struct ReviewQuery;

#[Object]
impl ReviewQuery {
    /// The viewer's review assignments, soonest deadline first: open rounds only unless
    /// `includeClosed`.
    async fn my_reviews(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_closed: bool,
    ) -> Result<Vec<ReviewAssignmentGql>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let items = reviews(ctx)
            .my_reviews(&v.user, include_closed)
            .await
            .map_err(|e| review_err(ctx, e))?;
        Ok(items.into_iter().map(queue_view).collect())
    }

    /// The review form of one of the viewer's assignments.
    async fn review_form(&self, ctx: &Context<'_>, assignment_id: ID) -> Result<ReviewFormGql> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let id = parse_id(&assignment_id, "assignmentId")?;
        let form = reviews(ctx)
            .review_form(&v.user, id)
            .await
            .map_err(|e| review_err(ctx, e))?;
        Ok(ReviewFormGql {
            rubric: rubric(&form.round),
            blind: form.round.blind,
            aggregation: aggregation_name(form.round.aggregation),
            panel_size: form.round.panel_size,
            outlier_threshold: form.round.outlier_threshold,
            application: form.application.map(Json),
            application_hidden_reason: form.application_hidden.map(|e| e.code().to_string()),
            peer_scores: form.peer_scores.map(|peers| {
                peers
                    .into_iter()
                    .map(|p| PeerScoreGql {
                        peer_number: p.peer_number,
                        total: p.card.total(),
                        scores: card_scores(&serde_json::to_value(&p.card).unwrap_or_default()),
                    })
                    .collect()
            }),
            needs_justification: form.needs_justification,
            panel_median: form.panel_median,
            assignment: ReviewAssignmentGql {
                record: form.assignment,
                round: form.round,
                title: form.title,
                manager_view: false,
            },
        })
    }

    /// The expert pool with current loads (managers).
    async fn expert_pool(&self, ctx: &Context<'_>) -> Result<Vec<ExpertProfileGql>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let pool = reviews(ctx)
            .expert_pool(&v.user)
            .await
            .map_err(|e| review_err(ctx, e))?;
        Ok(pool.into_iter().map(Into::into).collect())
    }

    /// The summary of a review round of an instance (managers): the open round, or the
    /// latest cycle of `roundId`.
    async fn review_round(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        round_id: Option<String>,
        cycle: Option<i64>,
    ) -> Result<ReviewRoundGql> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let id = parse_id(&instance_id, "instanceId")?;
        let s = reviews(ctx)
            .round_summary(&v.user, id, round_id.as_deref(), cycle)
            .await
            .map_err(|e| review_err(ctx, e))?;
        let full: &ReviewResult = &s.evaluation.full;
        let counted: &ReviewResult = &s.evaluation.counted;
        let expert = |id: &str| {
            let id = uuid::Uuid::parse_str(id).ok();
            async move {
                match id {
                    Some(id) => load_user(ctx, id).await,
                    None => Ok(None),
                }
            }
        };
        let mut expert_totals = Vec::new();
        for t in &full.expert_totals {
            expert_totals.push(ExpertTotalGql {
                expert: expert(&t.expert_id).await?,
                version: t.version,
                total: t.total,
                failing: t.failing.clone(),
            });
        }
        let mut outliers = Vec::new();
        for o in &full.outliers {
            outliers.push(OutlierGql {
                expert: expert(&o.expert_id).await?,
                version: o.version,
                total: o.total,
                median: o.median,
                distance: o.distance,
                justification: o.justification.clone(),
            });
        }
        let mut assignments = Vec::new();
        for a in s.assignments {
            assignments.push(ReviewAssignmentGql {
                record: a,
                round: s.round.clone(),
                title: s.instance.title.clone(),
                manager_view: true,
            });
        }
        Ok(ReviewRoundGql {
            instance_id: ID(s.instance.id.to_string()),
            round_id: s.round_id.clone(),
            title: (&s.round.title).into(),
            cycle: s.cycle,
            open: s.open,
            blind: s.round.blind,
            aggregation: aggregation_name(s.round.aggregation),
            panel_size: s.round.panel_size,
            count: counted.count,
            total: counted.total,
            passed: counted.passed,
            submitted: full.count,
            totals: full.totals.map(Into::into),
            criteria: full
                .criteria
                .iter()
                .map(|c| CriterionResultGql {
                    id: c.id.clone(),
                    title: (&c.title).into(),
                    value: c.value,
                    stats: c.stats.map(Into::into),
                    minimum: c.minimum,
                    failing: c.failing,
                })
                .collect(),
            expert_totals,
            outliers,
            pending_justifications: full.pending_justifications().len() as u32,
            guard: Json(counted.guard_json()),
            assignments,
        })
    }

    /// The ranking of a call's applications (`data.call_id`) by a review round (default
    /// `application_review`), best first (managers).
    async fn ranking(
        &self,
        ctx: &Context<'_>,
        call_id: String,
        round_id: Option<String>,
    ) -> Result<Vec<RankingRowGql>> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let ranking = reviews(ctx)
            .ranking(&v.user, &call_id, round_id.as_deref())
            .await
            .map_err(|e| review_err(ctx, e))?;
        Ok(ranking
            .rows
            .into_iter()
            .map(|r| RankingRowGql {
                rank: r.ranked.rank,
                total: r.ranked.total,
                median: r.ranked.median,
                min_total: r.ranked.min_total,
                count: r.ranked.count,
                passed: r.ranked.passed,
                instance: InstanceGql(r.instance),
            })
            .collect())
    }

    /// The ranking as an XLSX workbook, base64-encoded (managers).
    async fn ranking_xlsx(
        &self,
        ctx: &Context<'_>,
        call_id: String,
        round_id: Option<String>,
    ) -> Result<String> {
        let v = viewer_with_scope(ctx, scope::READ)?;
        let bytes = reviews(ctx)
            .ranking_xlsx(&v.user, &call_id, round_id.as_deref())
            .await
            .map_err(|e| review_err(ctx, e))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}
