//! Expert review over GraphQL.
//!
//! Experts: `myReviews` (their queue with deadlines), `reviewForm` (the rubric; the
//! application only after declaring no conflict, redacted in blind rounds; other experts'
//! scores, numbered, only after submitting their own), `declareNoConflict`,
//! `declareConflict`, `decline`, `submitScores` (INVALID_INPUT with `details.fields` per
//! criterion) and `justifyScores`. Managers: `expertPool`, `upsertExpertProfile`,
//! `recordCollaboration`, `assignReviewers`, `autoAssign`, `reassign`, `reopenReview`,
//! `reviewRound`, `ranking` and `rankingXlsx`. Applicants: `requestReviewExclusions`.
//!
//! Mutations need the `review` scope on API tokens; queries the `read` scope. An
//! assignment of someone else is NOT_FOUND.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use grantflow_domain::model::{Aggregation, ReviewRoundDef};
use grantflow_review::aggregate::{ReviewResult, Stats};
use grantflow_review::lifecycle::AssignmentState;
use grantflow_review::scoring::{CriterionScore, ScoreSheet};
use grantflow_service::review::{
    Departure, PoolEntry, ProfileUpdate, QueueItem, ReviewServiceError, Reviews, redact_instance,
    sees_only_as_reviewer,
};
use grantflow_store::review::{AssignmentRecord, Collaboration, ExpertProfile, Submission};
use grantflow_store::{Instance, Role, User};
use serde_json::Value;

use crate::auth::scope;
use crate::context::{rc, viewer_with_scope};
use crate::error::from_review;
use crate::loaders::{LoadError, OrgId, StoreLoader, UserId};
use crate::types::{I18nText, InstanceGql, OrganisationGql, UserGql, parse_id};

fn reviews(ctx: &Context<'_>) -> Reviews {
    rc(ctx).services.reviews()
}

fn review_err(ctx: &Context<'_>, e: ReviewServiceError) -> async_graphql::Error {
    from_review(e, &rc(ctx).request_id).into()
}

fn internal(ctx: &Context<'_>, e: impl std::fmt::Display) -> async_graphql::Error {
    crate::error::ApiError::internal(&rc(ctx).request_id, &e).into()
}

async fn load_user(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Option<UserGql>> {
    let user = rc(ctx)
        .loader
        .load_one(UserId(id))
        .await
        .map_err(|e| internal(ctx, e))?;
    Ok(user.map(UserGql))
}

fn state_title(state: &str) -> I18nText {
    let title = serde_json::from_value::<AssignmentState>(Value::from(state))
        .map(|s| s.title())
        .unwrap_or_else(|_| grantflow_domain::model::I18nText::new(state, state));
    (&title).into()
}

fn aggregation_name(a: Aggregation) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

// ---------------------------------------------------------------- blindness for types.rs

/// Loader key: every assignment of one expert (the viewer), loaded once per request
/// however many instances a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReviewerKey(pub uuid::Uuid);

impl Loader<ReviewerKey> for StoreLoader {
    type Value = Arc<Vec<AssignmentRecord>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ReviewerKey],
    ) -> Result<HashMap<ReviewerKey, Self::Value>, LoadError> {
        let mut out = HashMap::new();
        for key in keys {
            let records = self
                .store()
                .expert_queue(key.0, true)
                .await
                .map_err(|e| LoadError(Arc::new(e.to_string())))?;
            out.insert(*key, Arc::new(records));
        }
        Ok(out)
    }
}

/// The viewer's assignments on `instance`, when the viewer sees it only as a reviewer.
async fn reviewer_assignments(
    ctx: &Context<'_>,
    instance: &Instance,
) -> Result<Option<Vec<AssignmentRecord>>> {
    let Some(v) = rc(ctx).viewer.as_ref() else {
        return Ok(None);
    };
    if !sees_only_as_reviewer(&v.user, instance) {
        return Ok(None);
    }
    let all = rc(ctx)
        .loader
        .load_one(ReviewerKey(v.user.id))
        .await
        .map_err(|e| internal(ctx, e))?
        .unwrap_or_default();
    Ok(Some(
        all.iter()
            .filter(|a| a.instance_id == instance.id)
            .cloned()
            .collect(),
    ))
}

/// Whether the viewer reviews the instance in a blind round: organisation, creator and
/// history are then hidden, and title and data redacted.
pub async fn hides_applicant(ctx: &Context<'_>, instance: &Instance) -> Result<bool> {
    let Some(mine) = reviewer_assignments(ctx, instance).await? else {
        return Ok(false);
    };
    if mine.is_empty() {
        return Ok(false);
    }
    let wf = rc(ctx)
        .services
        .workflow_of(instance)
        .map_err(|e| crate::context::service_err(ctx, e))?;
    Ok(mine
        .iter()
        .any(|a| wf.def.reviews.get(&a.round_id).is_some_and(|r| r.blind)))
}

/// The title and data of an instance as the viewer may see them: `Some` with the
/// applicant's identity redacted when the viewer reviews it in a blind round.
pub async fn blind_view(ctx: &Context<'_>, instance: &Instance) -> Result<Option<(String, Value)>> {
    if !hides_applicant(ctx, instance).await? {
        return Ok(None);
    }
    let org = rc(ctx)
        .loader
        .load_one(OrgId(instance.org_id))
        .await
        .map_err(|e| internal(ctx, e))?
        .map(|o| o.name)
        .unwrap_or_default();
    let creator = rc(ctx)
        .loader
        .load_one(UserId(instance.created_by))
        .await
        .map_err(|e| internal(ctx, e))?
        .map(|u| u.display_name)
        .unwrap_or_default();
    Ok(Some(redact_instance(instance, &org, &creator)))
}

/// Whether the viewer may read the aggregated review result: not an expert who has not
/// submitted their own scores on the instance.
pub async fn may_see_result(ctx: &Context<'_>, instance: &Instance) -> Result<bool> {
    match reviewer_assignments(ctx, instance).await? {
        None => Ok(true),
        // Their assignment in the latest round on the instance: the one the result is of.
        Some(mine) => Ok(mine
            .iter()
            .max_by_key(|a| (a.cycle, a.assigned_at))
            .is_some_and(|a| a.state == "submitted")),
    }
}

// ---------------------------------------------------------------- types

/// One criterion's score as entered.
#[derive(SimpleObject, Clone)]
#[graphql(name = "CriterionScore")]
pub struct CriterionScoreGql {
    pub criterion: String,
    pub score: f64,
    pub comment: Option<String>,
}

fn card_scores(card: &Value) -> Vec<CriterionScoreGql> {
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

fn version_of(rec: &AssignmentRecord, s: &Submission) -> ScoreVersionGql {
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

fn rubric(def: &ReviewRoundDef) -> Vec<RubricCriterionGql> {
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
        StatsGql {
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
        CollaborationGql {
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
        ExpertProfileGql {
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

async fn assignment_view(
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

fn queue_view(item: QueueItem) -> ReviewAssignmentGql {
    ReviewAssignmentGql {
        record: item.assignment,
        round: item.round,
        title: item.title,
        manager_view: false,
    }
}

fn is_manager(v: &crate::auth::Viewer) -> bool {
    v.has_role(Role::Manager)
}

// ---------------------------------------------------------------- queries

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

// ---------------------------------------------------------------- mutations

#[derive(Default)]
pub struct ReviewMutation;

fn departure(d: Departure, title: String, round: ReviewRoundDef) -> LeavePanelPayload {
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
    /// the same pool and seed draw the same panel.
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
        Ok(AutoAssignPayload {
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
