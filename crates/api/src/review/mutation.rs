//! Expert review's mutations, merged into the mutation root.

use super::*;

#[derive(Default)]
pub struct ReviewMutation;

pub(super) fn departure(d: Departure, title: String, round: ReviewRoundDef) -> LeavePanelPayload {
    LeavePanelPayload {
        replaced: d.replacement.is_some(),
        assignment: ReviewAssignmentGql {
            record: d.assignment,
            round,
            title,
            manager_view: false,
        },
    }
}

#[Object]
impl ReviewMutation {
    /// The expert declares having no conflict of interest with the application; it is
    /// shown to them from now on.
    async fn declare_no_conflict(
        &self,
        ctx: &Context<'_>,
        assignment_id: ID,
    ) -> Result<ReviewAssignmentGql> {
        let v = viewer_with_scope(ctx, scope::REVIEW)?;
        let id = parse_id(&assignment_id, "assignmentId")?;
        let rec = reviews(ctx)
            .declare_no_conflict(&v.user, id)
            .await
            .map_err(|e| review_err(ctx, e))?;
        assignment_view(ctx, rec, false).await
    }

    /// The expert declares a conflict of interest (回避), with a reason: they leave the
    /// panel and a replacement is drawn at once.
    async fn declare_conflict(
        &self,
        ctx: &Context<'_>,
        assignment_id: ID,
        reason: String,
    ) -> Result<LeavePanelPayload> {
        let v = viewer_with_scope(ctx, scope::REVIEW)?;
        let id = parse_id(&assignment_id, "assignmentId")?;
        let d = reviews(ctx)
            .declare_conflict(&v.user, id, &reason)
            .await
            .map_err(|e| review_err(ctx, e))?;
        let view = assignment_view(ctx, d.assignment.clone(), false).await?;
        Ok(departure(d, view.title, view.round))
    }

    /// The expert declines the review; a replacement is drawn at once.
    async fn decline(
        &self,
        ctx: &Context<'_>,
        assignment_id: ID,
        reason: Option<String>,
    ) -> Result<LeavePanelPayload> {
        let v = viewer_with_scope(ctx, scope::REVIEW)?;
        let id = parse_id(&assignment_id, "assignmentId")?;
        let d = reviews(ctx)
            .decline(&v.user, id, reason.as_deref())
            .await
            .map_err(|e| review_err(ctx, e))?;
        let view = assignment_view(ctx, d.assignment.clone(), false).await?;
        Ok(departure(d, view.title, view.round))
    }

    /// The expert submits scores for every criterion; problems come back as
    /// INVALID_INPUT with `details.fields`, one per criterion and problem. Submitted
    /// scores are sealed.
    async fn submit_scores(
        &self,
        ctx: &Context<'_>,
        assignment_id: ID,
        scores: Vec<ScoreInput>,
        justification: Option<String>,
    ) -> Result<SubmitScoresPayload> {
        let v = viewer_with_scope(ctx, scope::REVIEW)?;
        let id = parse_id(&assignment_id, "assignmentId")?;
        let mut sheet = ScoreSheet::new();
        for s in scores {
            let entry = CriterionScore {
                score: s.score,
                comment: s.comment.filter(|c| !c.trim().is_empty()),
            };
            sheet = sheet.with(s.criterion, entry);
        }
        let submitted = reviews(ctx)
            .submit_scores(&v.user, id, sheet, justification.as_deref())
            .await
            .map_err(|e| review_err(ctx, e))?;
        Ok(SubmitScoresPayload {
            total: submitted.total,
            needs_justification: submitted.needs_justification,
            assignment: assignment_view(ctx, submitted.assignment, false).await?,
        })
    }

    /// The expert justifies a total far from the panel's median; it counts from then on.
    async fn justify_scores(
        &self,
        ctx: &Context<'_>,
        assignment_id: ID,
        justification: String,
    ) -> Result<ReviewAssignmentGql> {
        let v = viewer_with_scope(ctx, scope::REVIEW)?;
        let id = parse_id(&assignment_id, "assignmentId")?;
        let rec = reviews(ctx)
            .justify(&v.user, id, &justification)
            .await
            .map_err(|e| review_err(ctx, e))?;
        assignment_view(ctx, rec, false).await
    }

    /// Create or change an expert's profile in the pool (managers).
    async fn upsert_expert_profile(
        &self,
        ctx: &Context<'_>,
        input: ExpertProfileInput,
    ) -> Result<ExpertProfileGql> {
        let v = viewer_with_scope(ctx, scope::REVIEW)?;
        let user_id = parse_id(&input.user_id, "userId")?;
        let profile = reviews(ctx)
            .upsert_expert_profile(
                &v.user,
                ProfileUpdate {
                    user_id,
                    categories: input.categories,
                    keywords: input.keywords,
                    workload_cap: input.workload_cap,
                    status: input.status.unwrap_or_else(|| "active".to_string()),
                },
            )
            .await
            .map_err(|e| review_err(ctx, e))?;
        Ok(ExpertProfileGql {
            profile,
            user: None,
            load: None,
            collaborations: Vec::new(),
            late_reviews: None,
            suspension_due: None,
        })
    }

    /// Record an expert's collaboration with an organisation, ending `until` (managers):
    /// a conflict of interest for the policy's window after it.
    async fn record_collaboration(
        &self,
        ctx: &Context<'_>,
        expert_id: ID,
        organisation_id: ID,
        #[graphql(validator(custom = "crate::types::DateInRange"))] until: NaiveDate,
        note: Option<String>,
    ) -> Result<CollaborationGql> {
        let v = viewer_with_scope(ctx, scope::REVIEW)?;
        let expert = parse_id(&expert_id, "expertId")?;
        let org = parse_id(&organisation_id, "organisationId")?;
        let c = reviews(ctx)
            .record_collaboration(&v.user, expert, org, until, note)
            .await
            .map_err(|e| review_err(ctx, e))?;
        Ok(c.into())
    }

    /// The applicant asks that experts of some organisations do not review the
    /// application (at most 3), before the review starts. Replaces an earlier request.
    async fn request_review_exclusions(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        organisation_ids: Vec<ID>,
    ) -> Result<Vec<OrganisationGql>> {
        let v = viewer_with_scope(ctx, scope::TRANSITION)?;
        let id = parse_id(&instance_id, "instanceId")?;
        let orgs = organisation_ids
            .iter()
            .map(|o| parse_id(o, "organisationIds"))
            .collect::<Result<Vec<_>, _>>()?;
        let kept = reviews(ctx)
            .request_exclusions(&v.user, id, orgs)
            .await
            .map_err(|e| review_err(ctx, e))?;
        let orgs = rc(ctx)
            .services
            .store
            .get_orgs(&kept)
            .await
            .map_err(|e| crate::context::store_err(ctx, e))?;
        Ok(orgs.into_iter().map(OrganisationGql).collect())
    }

    /// Put the named experts on the open round's panel (managers). All or nothing:
    /// conflicts of interest, caps and inactive experts are refused with every reason.
    async fn assign_reviewers(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        expert_ids: Vec<ID>,
    ) -> Result<Vec<ReviewAssignmentGql>> {
        let v = viewer_with_scope(ctx, scope::REVIEW)?;
        let id = parse_id(&instance_id, "instanceId")?;
        let experts = expert_ids
            .iter()
            .map(|e| parse_id(e, "expertIds"))
            .collect::<Result<Vec<_>, _>>()?;
        let records = reviews(ctx)
            .assign(&v.user, id, experts)
            .await
            .map_err(|e| review_err(ctx, e))?;
        let mut out = Vec::new();
        for r in records {
            out.push(assignment_view(ctx, r, is_manager(v)).await?);
        }
        Ok(out)
    }

    /// Draw the open seats of the panel at random among eligible experts, least loaded
    /// first, then best expertise (managers). The seed (given, or generated) is recorded:
    /// the same pool and seed draw the same panel. The payload lists the experts the draw
    /// could not choose, with every reason.
    async fn auto_assign(
        &self,
        ctx: &Context<'_>,
        instance_id: ID,
        seed: Option<u64>,
    ) -> Result<AutoAssignPayload> {
        let v = viewer_with_scope(ctx, scope::REVIEW)?;
        let id = parse_id(&instance_id, "instanceId")?;
        let drawn = reviews(ctx)
            .auto_assign(&v.user, id, seed)
            .await
            .map_err(|e| review_err(ctx, e))?;
        let mut assignments = Vec::new();
        for r in drawn.assignments {
            assignments.push(assignment_view(ctx, r, is_manager(v)).await?);
        }
        let mut excluded = Vec::new();
        for r in &drawn.excluded {
            let expert = match uuid::Uuid::parse_str(&r.expert_id) {
                Ok(id) => load_user(ctx, id).await?,
                Err(_) => None,
            };
            excluded.push(DrawExclusionGql {
                expert_id: ID(r.expert_id.clone()),
                expert,
                reasons: r.reasons.iter().map(ExclusionReasonGql::from).collect(),
            });
        }
        Ok(AutoAssignPayload {
            excluded,
            seed: drawn.seed,
            algorithm: drawn.algorithm,
            assignments,
            unfilled_seats: drawn
                .shortfall
                .map(|s| s.needed.saturating_sub(s.drawn))
                .unwrap_or(0),
        })
    }

    /// Replace an overdue expert, or one who left without replacement, with a reason
    /// (managers).
    async fn reassign(
        &self,
        ctx: &Context<'_>,
        assignment_id: ID,
        reason: String,
    ) -> Result<ReassignPayload> {
        let v = viewer_with_scope(ctx, scope::REVIEW)?;
        let id = parse_id(&assignment_id, "assignmentId")?;
        let d = reviews(ctx)
            .reassign(&v.user, id, &reason)
            .await
            .map_err(|e| review_err(ctx, e))?;
        let replacement = match d.replacement {
            Some(r) => Some(assignment_view(ctx, r, true).await?),
            None => None,
        };
        Ok(ReassignPayload {
            assignment: assignment_view(ctx, d.assignment, true).await?,
            replacement,
        })
    }

    /// Reopen a submitted card for correction, with a reason (managers). The sealed
    /// version stays in the history; the expert submits a new one.
    async fn reopen_review(
        &self,
        ctx: &Context<'_>,
        assignment_id: ID,
        reason: String,
    ) -> Result<ReviewAssignmentGql> {
        let v = viewer_with_scope(ctx, scope::REVIEW)?;
        let id = parse_id(&assignment_id, "assignmentId")?;
        let rec = reviews(ctx)
            .reopen(&v.user, id, &reason)
            .await
            .map_err(|e| review_err(ctx, e))?;
        assignment_view(ctx, rec, true).await
    }
}
