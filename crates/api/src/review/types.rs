//! The GraphQL types of expert review and the builders that fill them from the
//! service's views.

use super::*;

/// One criterion's score as entered.
#[derive(SimpleObject, Clone)]
#[graphql(name = "CriterionScore")]
pub struct CriterionScoreGql {
    pub criterion: String,
    pub score: f64,
    pub comment: Option<String>,
}

pub(super) fn card_scores(card: &Value) -> Vec<CriterionScoreGql> {
    card["scores"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(criterion, s)| CriterionScoreGql {
                    criterion: criterion.clone(),
                    score: s["score"].as_f64().unwrap_or_default(),
                    comment: s["comment"].as_str().map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One sealed version of an expert's scores.
#[derive(SimpleObject)]
#[graphql(name = "ScoreVersion")]
pub struct ScoreVersionGql {
    pub version: u32,
    pub submitted_at: DateTime<Utc>,
    pub total: f64,
    pub scores: Vec<CriterionScoreGql>,
    pub reopened_at: Option<DateTime<Utc>>,
    pub reopen_reason: Option<String>,
    /// The expert's justification of an outlying total for this version.
    pub justification: Option<String>,
}

pub(super) fn version_of(rec: &AssignmentRecord, s: &Submission) -> ScoreVersionGql {
    ScoreVersionGql {
        version: s.version,
        submitted_at: s.submitted_at,
        total: s.total,
        scores: card_scores(&s.card),
        reopened_at: s.reopened_at,
        reopen_reason: s.reopen_reason.clone(),
        justification: rec
            .justifications
            .iter()
            .find(|j| j.version == s.version)
            .map(|j| j.text.clone()),
    }
}

/// A step of an assignment's lifecycle.
#[derive(SimpleObject)]
#[graphql(name = "AssignmentEvent")]
pub struct AssignmentEventGql {
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// expert, manager or system
    pub actor_kind: String,
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub reason: Option<String>,
}

/// An expert's assignment to review one instance in one round cycle.
pub struct ReviewAssignmentGql {
    pub record: AssignmentRecord,
    pub round: ReviewRoundDef,
    /// The project title; the applicant scrubbed in blind rounds for experts.
    pub title: String,
    /// Managers see the seed, the expert and the history of every assignment.
    pub manager_view: bool,
}

#[Object(name = "ReviewAssignment")]
impl ReviewAssignmentGql {
    async fn id(&self) -> ID {
        ID(self.record.id.to_string())
    }
    async fn instance_id(&self) -> ID {
        ID(self.record.instance_id.to_string())
    }
    /// The project title (the applicant's name hidden in blind rounds).
    async fn title(&self) -> &str {
        &self.title
    }
    /// The round's key under `[reviews]`, e.g. `application_review`.
    async fn round_id(&self) -> &str {
        &self.record.round_id
    }
    async fn round_title(&self) -> I18nText {
        (&self.round.title).into()
    }
    /// The instance version at which the round opened; a second acceptance review is a
    /// new cycle.
    async fn cycle(&self) -> i64 {
        self.record.cycle
    }
    /// Whether the round is still open (the instance is in the round's state).
    async fn round_open(&self) -> bool {
        self.record.round_open
    }
    async fn blind(&self) -> bool {
        self.round.blind
    }
    /// assigned, accepted, declined, conflict_declared, submitted, reopened, overdue,
    /// replaced
    async fn state(&self) -> &str {
        &self.record.state
    }
    async fn state_title(&self) -> I18nText {
        state_title(&self.record.state)
    }
    async fn assigned_at(&self) -> DateTime<Utc> {
        self.record.assigned_at
    }
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.record.due_at
    }
    /// Due and not yet submitted.
    async fn overdue(&self, ctx: &Context<'_>) -> bool {
        let open = matches!(
            self.record.state.as_str(),
            "assigned" | "accepted" | "reopened" | "overdue"
        );
        open && self
            .record
            .due_at
            .is_some_and(|d| d <= rc(ctx).services.now())
    }
    /// The expert (managers and the expert themself).
    async fn expert(&self, ctx: &Context<'_>) -> Result<Option<UserGql>> {
        let own = rc(ctx)
            .viewer
            .as_ref()
            .is_some_and(|v| v.user.id == self.record.expert_id);
        if !self.manager_view && !own {
            return Ok(None);
        }
        load_user(ctx, self.record.expert_id).await
    }
    /// The seed of the automatic draw that chose the expert, and its algorithm (managers).
    async fn seed(&self) -> Option<u64> {
        self.manager_view.then_some(self.record.seed).flatten()
    }
    async fn algorithm(&self) -> Option<&str> {
        if self.manager_view {
            self.record.algorithm.as_deref()
        } else {
            None
        }
    }
    async fn replaces(&self) -> Option<ID> {
        self.manager_view
            .then_some(self.record.replaces)
            .flatten()
            .map(|i| ID(i.to_string()))
    }
    /// The assignment that took this seat, once replaced. Shown to the departing expert
    /// too: it is an opaque id (they cannot open another expert's assignment), and it is
    /// what tells them the replacement is done.
    async fn replaced_by(&self) -> Option<ID> {
        self.record.replaced_by.map(|i| ID(i.to_string()))
    }
    /// Every sealed version of the expert's scores, oldest first.
    async fn versions(&self) -> Vec<ScoreVersionGql> {
        self.record
            .submissions
            .iter()
            .map(|s| version_of(&self.record, s))
            .collect()
    }
    /// The lifecycle, oldest first.
    async fn events(&self) -> Vec<AssignmentEventGql> {
        self.record
            .events
            .iter()
            .map(|e| AssignmentEventGql {
                seq: e.seq,
                at: e.at,
                actor_kind: e.actor_kind.clone(),
                action: e.action.clone(),
                from_state: e.from_state.clone(),
                to_state: e.to_state.clone(),
                reason: e.reason.clone(),
            })
            .collect()
    }
}

/// One criterion of a round's rubric.
#[derive(SimpleObject)]
#[graphql(name = "RubricCriterion")]
pub struct RubricCriterionGql {
    pub id: String,
    pub title: I18nText,
    pub weight: f64,
    pub min: f64,
    pub max: f64,
    pub step: f64,
    /// Scores below fail the criterion.
    pub minimum: Option<f64>,
    /// A comment is required below this score.
    pub comment_below: Option<f64>,
    /// A comment is required above this score.
    pub comment_above: Option<f64>,
}

pub(super) fn rubric(def: &ReviewRoundDef) -> Vec<RubricCriterionGql> {
    def.criteria
        .iter()
        .map(|c| RubricCriterionGql {
            id: c.id.clone(),
            title: (&c.title).into(),
            weight: c.weight,
            min: c.scale.min,
            max: c.scale.max,
            step: c.scale.step,
            minimum: c.minimum,
            comment_below: c.comment_below,
            comment_above: c.comment_above,
        })
        .collect()
}

/// Another panel member's scores, numbered, never named.
#[derive(SimpleObject)]
#[graphql(name = "PeerScore")]
pub struct PeerScoreGql {
    pub peer_number: u32,
    pub total: f64,
    pub scores: Vec<CriterionScoreGql>,
}

/// What an expert needs to review one assignment.
#[derive(SimpleObject)]
#[graphql(name = "ReviewForm")]
pub struct ReviewFormGql {
    pub assignment: ReviewAssignmentGql,
    pub rubric: Vec<RubricCriterionGql>,
    pub blind: bool,
    /// mean, median or trimmed_mean
    pub aggregation: String,
    pub panel_size: u32,
    /// Totals further than this from the panel's median need a written justification.
    pub outlier_threshold: f64,
    /// The application; null until the expert declares no conflict (and after they left
    /// the panel); without the applicant's identity in blind rounds.
    pub application: Option<Json<Value>>,
    /// Why the application is not shown: NO_CONFLICT_NOT_DECLARED or APPLICATION_HIDDEN.
    pub application_hidden_reason: Option<String>,
    /// The other experts' scores; null until the expert's own are submitted.
    pub peer_scores: Option<Vec<PeerScoreGql>>,
    /// The expert's total is an outlier waiting for a justification (`justifyScores`).
    pub needs_justification: bool,
    /// The median of the panel's totals, once the expert's own scores are in.
    pub panel_median: Option<f64>,
}

#[derive(SimpleObject)]
#[graphql(name = "ReviewStats")]
pub struct StatsGql {
    pub count: u32,
    pub mean: f64,
    pub median: f64,
    /// Sample standard deviation; null for a single value.
    pub sd: Option<f64>,
    pub min: f64,
    pub max: f64,
}

impl From<Stats> for StatsGql {
    fn from(s: Stats) -> Self {
        Self {
            count: s.count,
            mean: s.mean,
            median: s.median,
            sd: s.sd,
            min: s.min,
            max: s.max,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "CriterionResult")]
pub struct CriterionResultGql {
    pub id: String,
    pub title: I18nText,
    /// Aggregated by the round's method.
    pub value: f64,
    pub stats: Option<StatsGql>,
    pub minimum: Option<f64>,
    pub failing: bool,
}

#[derive(SimpleObject)]
#[graphql(name = "ExpertTotal")]
pub struct ExpertTotalGql {
    pub expert: Option<UserGql>,
    pub version: u32,
    pub total: f64,
    pub failing: Vec<String>,
}

#[derive(SimpleObject)]
#[graphql(name = "ReviewOutlier")]
pub struct OutlierGql {
    pub expert: Option<UserGql>,
    pub version: u32,
    pub total: f64,
    pub median: f64,
    pub distance: f64,
    /// Null while the justification is pending: the score does not count yet.
    pub justification: Option<String>,
}

/// A manager's view of one review round cycle of an instance.
#[derive(SimpleObject)]
#[graphql(name = "ReviewRound")]
pub struct ReviewRoundGql {
    pub instance_id: ID,
    pub round_id: String,
    pub title: I18nText,
    pub cycle: i64,
    pub open: bool,
    pub blind: bool,
    pub aggregation: String,
    pub panel_size: u32,
    /// Submissions counted in `total` (outliers wait for their justification).
    pub count: u32,
    /// The aggregated total that counts (what guards read as `review.total`).
    pub total: f64,
    pub passed: bool,
    /// Every submitted card, including outliers still to be justified.
    pub submitted: u32,
    /// Statistics of the experts' totals (every submitted card).
    pub totals: Option<StatsGql>,
    pub criteria: Vec<CriterionResultGql>,
    pub expert_totals: Vec<ExpertTotalGql>,
    pub outliers: Vec<OutlierGql>,
    pub pending_justifications: u32,
    /// What guards read as `review` (`{ total, count, passed, criteria }`).
    pub guard: Json<Value>,
    pub assignments: Vec<ReviewAssignmentGql>,
}

#[derive(SimpleObject)]
#[graphql(name = "RankingRow")]
pub struct RankingRowGql {
    /// Competition rank (1, 2, 2, 4): ties on total, median, lowest total and number of
    /// scores share a rank.
    pub rank: u32,
    pub instance: InstanceGql,
    pub total: f64,
    pub median: f64,
    pub min_total: f64,
    pub count: u32,
    pub passed: bool,
}

#[derive(SimpleObject)]
#[graphql(name = "ExpertCollaboration")]
pub struct CollaborationGql {
    pub id: ID,
    pub organisation_id: ID,
    pub until: NaiveDate,
    pub note: Option<String>,
}

impl From<Collaboration> for CollaborationGql {
    fn from(c: Collaboration) -> Self {
        Self {
            id: ID(c.id.to_string()),
            organisation_id: ID(c.org_id.to_string()),
            until: c.until,
            note: c.note,
        }
    }
}

/// An expert of the pool (专家库).
pub struct ExpertProfileGql {
    pub profile: ExpertProfile,
    pub user: Option<User>,
    pub load: Option<u32>,
    pub collaborations: Vec<Collaboration>,
    pub late_reviews: Option<u32>,
    pub suspension_due: Option<bool>,
}

#[Object(name = "ExpertProfile")]
impl ExpertProfileGql {
    async fn user_id(&self) -> ID {
        ID(self.profile.user_id.to_string())
    }
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<UserGql>> {
        match &self.user {
            Some(u) => Ok(Some(UserGql(u.clone()))),
            None => load_user(ctx, self.profile.user_id).await,
        }
    }
    /// The expert's organisation (the user's).
    async fn organisation(&self, ctx: &Context<'_>) -> Result<Option<OrganisationGql>> {
        let org = match &self.user {
            Some(u) => u.org_id,
            None => rc(ctx)
                .loader
                .load_one(UserId(self.profile.user_id))
                .await
                .map_err(|e| internal(ctx, e))?
                .and_then(|u| u.org_id),
        };
        let Some(org) = org else {
            return Ok(None);
        };
        let org = rc(ctx)
            .loader
            .load_one(OrgId(org))
            .await
            .map_err(|e| internal(ctx, e))?;
        Ok(org.map(OrganisationGql))
    }
    /// Call categories 1–8 (大类).
    async fn categories(&self) -> &[u8] {
        &self.profile.categories
    }
    async fn category_titles(&self) -> Vec<I18nText> {
        self.profile
            .categories
            .iter()
            .filter_map(|c| grantflow_review::expert::Category::new(*c).ok())
            .map(|c| (&c.title()).into())
            .collect()
    }
    async fn keywords(&self) -> &[String] {
        &self.profile.keywords
    }
    async fn workload_cap(&self) -> u32 {
        self.profile.workload_cap
    }
    /// active, suspended or retired
    async fn status(&self) -> &str {
        &self.profile.status
    }
    /// Open assignments counting toward the cap.
    async fn load(&self) -> Option<u32> {
        self.load
    }
    /// Assignments ever marked overdue.
    async fn late_reviews(&self) -> Option<u32> {
        self.late_reviews
    }
    /// Late often enough that the policy suggests suspending the expert (a manager sets
    /// the status).
    async fn suspension_due(&self) -> Option<bool> {
        self.suspension_due
    }
    async fn collaborations(&self) -> Vec<CollaborationGql> {
        self.collaborations
            .iter()
            .cloned()
            .map(Into::into)
            .collect()
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.profile.updated_at
    }
}

impl From<PoolEntry> for ExpertProfileGql {
    fn from(p: PoolEntry) -> Self {
        Self {
            profile: p.profile,
            user: Some(p.user),
            load: Some(p.load),
            collaborations: p.collaborations,
            late_reviews: Some(p.late_reviews),
            suspension_due: Some(p.suspension_due),
        }
    }
}

#[derive(SimpleObject)]
pub struct AutoAssignPayload {
    /// The seed of the draw (given or generated), recorded with every assignment.
    pub seed: u64,
    pub algorithm: String,
    /// The assignments made now (none when the panel was full).
    pub assignments: Vec<ReviewAssignmentGql>,
    /// Seats left open for want of eligible experts.
    pub unfilled_seats: u32,
    /// The experts of the pool the draw could not choose, each with every reason (the
    /// conflicts with their grounds, inactive, at the workload cap, already on the
    /// panel), as the pool stood when the draw was made.
    pub excluded: Vec<DrawExclusionGql>,
}

/// An expert a draw could not choose.
#[derive(SimpleObject)]
#[graphql(name = "DrawExclusion")]
pub struct DrawExclusionGql {
    pub expert_id: ID,
    pub expert: Option<UserGql>,
    pub reasons: Vec<ExclusionReasonGql>,
}

/// Why a draw could not choose an expert.
#[derive(SimpleObject)]
#[graphql(name = "ExclusionReason")]
pub struct ExclusionReasonGql {
    /// EXPERT_CONFLICT, EXPERT_INACTIVE, EXPERT_OVER_CAP or EXPERT_ALREADY_ON_PANEL.
    pub code: String,
    /// For a conflict, the code of each ground: CONFLICT_SAME_ORGANISATION,
    /// CONFLICT_EXCLUDED_BY_APPLICANT, CONFLICT_RECENT_COLLABORATION,
    /// CONFLICT_PARTICIPANT_IN_CALL, CONFLICT_DECLARED.
    pub conflicts: Vec<String>,
    pub message: I18nText,
}

impl From<&grantflow_review::assignment::RefusalReason> for ExclusionReasonGql {
    fn from(r: &grantflow_review::assignment::RefusalReason) -> Self {
        use grantflow_domain::Lang;
        use grantflow_review::assignment::RefusalReason;
        let conflicts = match r {
            RefusalReason::Conflict { reasons } => {
                reasons.iter().map(|c| c.code().to_string()).collect()
            }
            _ => Vec::new(),
        };
        Self {
            code: r.code().to_string(),
            conflicts,
            message: I18nText {
                zh_cn: r.message(Lang::ZhCn),
                en: r.message(Lang::En),
            },
        }
    }
}

#[derive(SimpleObject)]
pub struct LeavePanelPayload {
    pub assignment: ReviewAssignmentGql,
    /// Whether another expert took the seat.
    pub replaced: bool,
}

#[derive(SimpleObject)]
pub struct ReassignPayload {
    pub assignment: ReviewAssignmentGql,
    pub replacement: Option<ReviewAssignmentGql>,
}

#[derive(SimpleObject)]
pub struct SubmitScoresPayload {
    pub assignment: ReviewAssignmentGql,
    /// The weighted total on 0–100.
    pub total: f64,
    /// The total is far from the panel's median: it counts once justified
    /// (`justifyScores`).
    pub needs_justification: bool,
}

#[derive(InputObject)]
pub struct ScoreInput {
    /// The criterion id from the rubric.
    pub criterion: String,
    pub score: f64,
    pub comment: Option<String>,
}

#[derive(InputObject)]
pub struct ExpertProfileInput {
    pub user_id: ID,
    /// Call categories 1–8.
    pub categories: Vec<u8>,
    #[graphql(default)]
    pub keywords: Vec<String>,
    pub workload_cap: u32,
    /// active (default), suspended or retired
    pub status: Option<String>,
}

// ---------------------------------------------------------------- builders

pub(super) async fn assignment_view(
    ctx: &Context<'_>,
    record: AssignmentRecord,
    manager_view: bool,
) -> Result<ReviewAssignmentGql> {
    let svc = &rc(ctx).services;
    let instance = svc
        .store
        .get_instance(record.instance_id)
        .await
        .map_err(|e| crate::context::store_err(ctx, e))?;
    let wf = svc
        .workflow_of(&instance)
        .map_err(|e| crate::context::service_err(ctx, e))?;
    let round = wf
        .def
        .reviews
        .get(&record.round_id)
        .cloned()
        .ok_or_else(|| internal(ctx, "an assignment of an unknown round"))?;
    let title = match (manager_view, blind_view(ctx, &instance).await?) {
        (false, Some((title, _))) => title,
        _ => instance.title.clone(),
    };
    Ok(ReviewAssignmentGql {
        record,
        round,
        title,
        manager_view,
    })
}

pub(super) fn queue_view(item: QueueItem) -> ReviewAssignmentGql {
    ReviewAssignmentGql {
        record: item.assignment,
        round: item.round,
        title: item.title,
        manager_view: false,
    }
}

pub(super) fn is_manager(v: &crate::auth::Viewer) -> bool {
    v.has_role(Role::Manager)
}
