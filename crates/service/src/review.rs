//! Expert review (专家评审) as a service: the expert pool, applicants' exclusion requests,
//! manual and seeded automatic assignment with replacement, the experts' lifecycle
//! (declare no conflict, declare a conflict, decline, submit, justify), managers'
//! reassignment and reopening, round summaries and the ranking of a call.
//!
//! The rules are `grantflow_review`'s; this module feeds it the records of the store and
//! writes what it decides through [`grantflow_store::ReviewStore`], one transaction per
//! action. Rounds are derived from the workflow: the round whose `opens_in` is the
//! instance's state is open, in the cycle the store reports; every write that changes
//! scores recomputes the aggregate ([`evaluate`]) and stores it as the instance's
//! `review` in the same transaction.
//!
//! Identifiers: an expert is a user (their id as text in `grantflow_review`), an
//! application an instance, an organisation an organisation id; the review crate's round
//! id is `<round id>#<cycle>`, so each cycle is a round of its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use grantflow_domain::CompiledWorkflow;
use grantflow_domain::calendar::local_date;
use grantflow_domain::model::{DeadlineDef, I18nText, Lang, ReviewRoundDef, StateDef};
use grantflow_domain::schedule::{TimerPlan, deadline_for, ladder_timers};
use grantflow_review::ReviewError;
use grantflow_review::aggregate::{
    ExpertSubmission, OutlierJustification, ReviewResult, aggregate_application, final_submissions,
    justify_outlier,
};
use grantflow_review::assignment::{
    DRAW_ALGORITHM, DrawContext, Shortfall, assign_manually, draw_panels, draw_replacement,
};
use grantflow_review::blind::{PeerScore, peer_scores};
use grantflow_review::conflict::{Application, DeclaredConflict, validate_application};
use grantflow_review::expert::{
    Category, Collaboration as ReviewCollaboration, Expert, ExpertStatus, ReviewPolicy,
};
use grantflow_review::lifecycle::{Action, Actor, Assignment, AssignmentState};
use grantflow_review::ranking::{RankedApplication, rank_applications};
use grantflow_review::scoring::{ScoreSheet, validate_scores};
use grantflow_store::review::{
    AssignmentChange, AssignmentRecord, ChangedAssignment, CreateAssignments, ExpertProfile,
    ExpertProfileInput, NewAssignment, NewAssignmentEvent, NewCollaboration, NewSubmission,
    ReopenMark, ReviewConflict, RoundKey, RoundRecords, ViewChange, assignment_timer_prefix,
    expert_recipient, expert_status,
};
use grantflow_store::{Instance, Role, StoreError, User};
use serde_json::{Value, json};
use uuid::Uuid;

pub use crate::redaction::{IDENTITY_FIELDS, redact_instance};
use crate::{ServiceError, Services, can_see};

/// How often a write computed from a view of the panel is recomputed when another
/// writer changed the panel first.
const MAX_ATTEMPTS: usize = 8;

/// Errors of review actions. Each has a stable [`ReviewServiceError::code`] and messages
/// in zh-CN and en.
#[derive(Debug, thiserror::Error)]
pub enum ReviewServiceError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A rule of `grantflow_review` refused the action (conflict, invalid scores, …).
    #[error("{0}")]
    Review(ReviewError),
    /// The instance is not in a state where a review round is open.
    #[error("no review round is open in state `{state}`")]
    NoOpenRound { state: String },
    /// The round closed (the instance left the round's state) before the write.
    #[error("the review round is closed")]
    RoundClosed,
    /// A replacement of an assignment that is not late yet.
    #[error("the assignment is not overdue yet")]
    NotOverdue { due_at: Option<DateTime<Utc>> },
    /// The assignment changed while the action was being applied.
    #[error("the assignment changed meanwhile")]
    AssignmentChanged,
    /// The panel kept changing under the action.
    #[error("the panel is being changed by someone else; retry")]
    Busy,
    /// Exclusions may be asked for only before the review starts.
    #[error("the review has started")]
    ReviewStarted,
    /// The user is not an expert (or not in the pool).
    #[error("not an expert in the pool")]
    NotAnExpert { user_id: Uuid },
    /// A category outside 1..=8, an unknown status, …
    #[error("invalid {field}")]
    Invalid {
        field: String,
        zh: String,
        en: String,
    },
}

impl From<ReviewError> for ReviewServiceError {
    fn from(e: ReviewError) -> Self {
        ReviewServiceError::Review(e)
    }
}

impl From<StoreError> for ReviewServiceError {
    fn from(e: StoreError) -> Self {
        ReviewServiceError::Service(ServiceError::Store(e))
    }
}

impl ReviewServiceError {
    /// A stable code: the review crate's codes, and these.
    pub fn code(&self) -> &'static str {
        match self {
            ReviewServiceError::Service(_) => "SERVICE",
            ReviewServiceError::Review(e) => e.code(),
            ReviewServiceError::NoOpenRound { .. } => "REVIEW_ROUND_NOT_OPEN",
            ReviewServiceError::RoundClosed => "REVIEW_ROUND_CLOSED",
            ReviewServiceError::NotOverdue { .. } => "ASSIGNMENT_NOT_OVERDUE",
            ReviewServiceError::AssignmentChanged => "ASSIGNMENT_CHANGED",
            ReviewServiceError::Busy => "REVIEW_BUSY",
            ReviewServiceError::ReviewStarted => "REVIEW_STARTED",
            ReviewServiceError::NotAnExpert { .. } => "EXPERT_NOT_IN_POOL",
            ReviewServiceError::Invalid { .. } => "INVALID_VALUE",
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        let zh = lang == Lang::ZhCn;
        match self {
            ReviewServiceError::Service(e) => e.to_string(),
            ReviewServiceError::Review(e) => e.message(lang),
            ReviewServiceError::NoOpenRound { state } => {
                if zh {
                    format!("当前状态（{state}）没有进行中的专家评审")
                } else {
                    format!("no expert review round is open in state `{state}`")
                }
            }
            ReviewServiceError::RoundClosed => {
                if zh {
                    "本轮评审已结束，不能再分配专家或提交评分".into()
                } else {
                    "the review round is closed: no more assignments or scores".into()
                }
            }
            ReviewServiceError::NotOverdue { due_at } => {
                let due = due_at.map(|d| d.to_rfc3339()).unwrap_or_default();
                if zh {
                    format!("评审尚未逾期（截止 {due}），不能更换专家")
                } else {
                    format!("the review is not overdue yet (due {due}); it cannot be reassigned")
                }
            }
            ReviewServiceError::AssignmentChanged => {
                if zh {
                    "该评审任务已被更新，请刷新后重试".into()
                } else {
                    "the assignment changed meanwhile; reload and retry".into()
                }
            }
            ReviewServiceError::Busy => {
                if zh {
                    "评审组正在被他人调整，请稍后重试".into()
                } else {
                    "the panel is being changed by someone else; retry".into()
                }
            }
            ReviewServiceError::ReviewStarted => {
                if zh {
                    "评审已开始，不能再申请回避单位".into()
                } else {
                    "the review has started: exclusions can no longer be requested".into()
                }
            }
            ReviewServiceError::NotAnExpert { user_id } => {
                if zh {
                    format!("用户 {user_id} 不是评审专家")
                } else {
                    format!("user {user_id} is not an expert reviewer")
                }
            }
            ReviewServiceError::Invalid { zh: z, en, .. } => {
                if zh {
                    z.clone()
                } else {
                    en.clone()
                }
            }
        }
    }

    fn invalid(field: &str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        ReviewServiceError::Invalid {
            field: field.to_string(),
            zh: zh.into(),
            en: en.into(),
        }
    }

    fn not_found(what: &str) -> Self {
        ReviewServiceError::Service(ServiceError::NotFound(what.to_string()))
    }
}

pub type ReviewResultOf<T> = Result<T, ReviewServiceError>;

// ---------------------------------------------------------------- records ↔ review crate

/// The review crate's round id of one cycle.
pub fn round_key(round_id: &str, cycle: i64) -> String {
    format!("{round_id}#{cycle}")
}

fn actor_json(kind: &str, id: Option<&str>) -> Value {
    match (kind, id) {
        ("system", _) | (_, None) => json!({ "kind": "system" }),
        (kind, Some(id)) => json!({ "kind": kind, "id": id }),
    }
}

/// The lifecycle assignment a stored record describes.
pub fn lifecycle(rec: &AssignmentRecord) -> ReviewResultOf<Assignment> {
    let versions: Vec<Value> = rec
        .submissions
        .iter()
        .map(|s| json!({ "version": s.version, "submitted_at": s.submitted_at, "card": s.card }))
        .collect();
    let log: Vec<Value> = rec
        .events
        .iter()
        .map(|e| {
            let mut entry = json!({
                "at": e.at,
                "actor": actor_json(&e.actor_kind, e.actor_id.as_deref()),
                "action": e.action,
                "from": e.from_state,
                "to": e.to_state,
            });
            if let Some(r) = &e.reason {
                entry["reason"] = Value::from(r.clone());
            }
            entry
        })
        .collect();
    let value = json!({
        "round_id": round_key(&rec.round_id, rec.cycle),
        "application_id": rec.instance_id.to_string(),
        "expert_id": rec.expert_id.to_string(),
        "state": rec.state,
        "assigned_at": rec.assigned_at,
        "versions": versions,
        "log": log,
    });
    serde_json::from_value(value).map_err(|e| {
        ReviewServiceError::from(StoreError::Backend(format!(
            "assignment {} does not read back: {e}",
            rec.id
        )))
    })
}

/// The events `after` logged beyond `before`, ready to store.
fn new_events(before: &Assignment, after: &Assignment) -> Vec<NewAssignmentEvent> {
    after.log()[before.log().len()..]
        .iter()
        .map(|entry| {
            let v = serde_json::to_value(entry).unwrap_or(Value::Null);
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            NewAssignmentEvent {
                at: entry.at,
                actor_kind: v["actor"]["kind"].as_str().unwrap_or("system").to_string(),
                actor_id: v["actor"]["id"].as_str().map(str::to_string),
                action: text("action"),
                from_state: text("from"),
                to_state: text("to"),
                reason: entry.reason.clone(),
            }
        })
        .collect()
}

fn state_name(state: AssignmentState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn uuid_of(text: &str) -> ReviewResultOf<Uuid> {
    Uuid::parse_str(text)
        .map_err(|_| ReviewServiceError::from(StoreError::Backend(format!("bad id `{text}`"))))
}

/// The call category of an instance: its `data.category` when that names one of the
/// eight (a number 1–8, a Chinese numeral 一–八, or the category's title).
pub fn instance_category(data: &Value) -> Option<Category> {
    let v = data.get("category")?;
    if let Some(n) = v.as_u64() {
        return u8::try_from(n).ok().and_then(|n| Category::new(n).ok());
    }
    let text = v.as_str()?.trim();
    let text = text
        .trim_start_matches('第')
        .trim_end_matches('类')
        .trim_end_matches("大类")
        .trim();
    if let Ok(n) = text.parse::<u8>() {
        return Category::new(n).ok();
    }
    const NUMERALS: [&str; 8] = ["一", "二", "三", "四", "五", "六", "七", "八"];
    if let Some(i) = NUMERALS.iter().position(|n| *n == text) {
        return Category::new(i as u8 + 1).ok();
    }
    Category::ALL
        .into_iter()
        .find(|c| c.title().zh_cn == text || c.title().en.eq_ignore_ascii_case(text))
}

fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => s
            .split([',', '，', '、', ';', '；'])
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// The call an instance belongs to (`data.call_id`), or a call of its own.
pub fn call_of(instance: &Instance) -> String {
    instance
        .data
        .get("call_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("instance:{}", instance.id))
}

/// An instance as the review crate sees an application. Without a category the
/// application gets category 1 and the draw ignores categories (see [`Reviews::context`]).
pub fn application_of(instance: &Instance, excluded: &[Uuid]) -> Application {
    let mut participants = vec![instance.created_by.to_string()];
    participants.extend(string_list(
        instance.data.get("participant_ids").unwrap_or(&Value::Null),
    ));
    Application {
        id: instance.id.to_string(),
        call_id: call_of(instance),
        applicant_org_id: instance.org_id.to_string(),
        category: instance_category(&instance.data).unwrap_or(Category::ALL[0]),
        keywords: string_list(instance.data.get("keywords").unwrap_or(&Value::Null)),
        excluded_org_ids: excluded.iter().map(Uuid::to_string).collect(),
        participant_ids: participants,
    }
}

/// The outcome of a round as it stands: every counted submission (`full`), and the
/// result that counts for guards (`counted`): outliers without a justification are left
/// out until their expert justifies them.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub full: ReviewResult,
    pub counted: ReviewResult,
    pub submissions: Vec<ExpertSubmission>,
}

impl Evaluation {
    /// Experts whose outlying total still waits for a justification.
    pub fn pending(&self) -> Vec<&str> {
        self.full
            .pending_justifications()
            .into_iter()
            .map(|o| o.expert_id.as_str())
            .collect()
    }
}

/// Aggregates a round's records by the round's rules.
pub fn evaluate(def: &ReviewRoundDef, records: &RoundRecords) -> Evaluation {
    let key = round_key(&records.round_id, records.cycle);
    let application_id = records.instance_id.to_string();
    let lifecycles: Vec<Assignment> = records
        .assignments
        .iter()
        .filter_map(|r| lifecycle(r).ok())
        .collect();
    let submissions = final_submissions(&lifecycles, &key, &application_id);
    let justifications: Vec<OutlierJustification> = records
        .assignments
        .iter()
        .flat_map(|r| {
            r.justifications.iter().map(|j| OutlierJustification {
                application_id: application_id.clone(),
                expert_id: r.expert_id.to_string(),
                version: j.version,
                text: j.text.clone(),
                written_at: j.written_at,
            })
        })
        .collect();
    let full = aggregate_application(def, &application_id, &submissions, &justifications);
    let pending: BTreeSet<String> = full
        .pending_justifications()
        .iter()
        .map(|o| o.expert_id.clone())
        .collect();
    let counted = if pending.is_empty() {
        full.clone()
    } else {
        let kept: Vec<ExpertSubmission> = submissions
            .iter()
            .filter(|s| !pending.contains(&s.expert_id))
            .cloned()
            .collect();
        aggregate_application(def, &application_id, &kept, &justifications)
    };
    Evaluation {
        full,
        counted,
        submissions,
    }
}

/// What the store writes as `review`: the counted result, in the shape guards read.
fn recompute(def: ReviewRoundDef) -> impl Fn(&RoundRecords) -> Value + Send + Sync {
    move |records: &RoundRecords| evaluate(&def, records).counted.guard_json()
}

// ---------------------------------------------------------------- views

/// An expert of the pool with their user, current load and collaborations.
#[derive(Debug, Clone)]
pub struct PoolEntry {
    pub user: User,
    pub profile: ExpertProfile,
    pub load: u32,
    pub collaborations: Vec<grantflow_store::review::Collaboration>,
    /// Assignments of the expert ever marked overdue.
    pub late_reviews: u32,
    /// Active and late often enough that the policy suggests suspending the expert
    /// ([`grantflow_review::lifecycle::suspension_due`]); the manager decides.
    pub suspension_due: bool,
}

/// What the manager sets on an expert's profile.
#[derive(Debug, Clone)]
pub struct ProfileUpdate {
    pub user_id: Uuid,
    pub categories: Vec<u8>,
    pub keywords: Vec<String>,
    pub workload_cap: u32,
    /// `active`, `suspended` or `retired`.
    pub status: String,
}

/// An entry of an expert's queue.
#[derive(Debug, Clone)]
pub struct QueueItem {
    pub assignment: AssignmentRecord,
    pub round: ReviewRoundDef,
    /// The project title; the applicant's name scrubbed in blind rounds.
    pub title: String,
}

/// What an expert sees to score.
#[derive(Debug, Clone)]
pub struct ReviewForm {
    pub assignment: AssignmentRecord,
    pub round: ReviewRoundDef,
    pub title: String,
    /// The application; `None` until the expert declared no conflict (and after they
    /// left the panel), redacted in blind rounds.
    pub application: Option<Value>,
    /// Why the application is not shown, when it is not.
    pub application_hidden: Option<ReviewError>,
    /// The other experts' scores, numbered, once the expert's own are submitted.
    pub peer_scores: Option<Vec<PeerScore>>,
    /// Whether the expert's own total is an outlier waiting for a justification.
    pub needs_justification: bool,
    /// The panel's median total, once the expert's own scores are in.
    pub panel_median: Option<f64>,
}

/// A manager's view of one round cycle.
#[derive(Debug, Clone)]
pub struct RoundSummary {
    pub instance: Instance,
    pub round_id: String,
    pub round: ReviewRoundDef,
    pub cycle: i64,
    pub open: bool,
    pub assignments: Vec<AssignmentRecord>,
    pub evaluation: Evaluation,
}

/// An automatic draw: the seed (given or generated) is recorded with every assignment.
#[derive(Debug, Clone)]
pub struct AutoAssigned {
    pub seed: u64,
    pub algorithm: String,
    pub assignments: Vec<AssignmentRecord>,
    pub shortfall: Option<Shortfall>,
}

/// An expert leaving a panel (conflict, decline, overdue) and who took the seat.
#[derive(Debug, Clone)]
pub struct Departure {
    pub assignment: AssignmentRecord,
    pub replacement: Option<AssignmentRecord>,
    /// No eligible expert was left to take the seat.
    pub unfilled: bool,
}

/// A submission and whether it waits for a justification.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub assignment: AssignmentRecord,
    pub total: f64,
    pub needs_justification: bool,
}

/// One row of a call's ranking.
#[derive(Debug, Clone)]
pub struct RankingRow {
    pub ranked: RankedApplication,
    pub instance: Instance,
}

/// A call's ranking for one round.
#[derive(Debug, Clone)]
pub struct Ranking {
    pub round_id: String,
    pub round: ReviewRoundDef,
    pub rows: Vec<RankingRow>,
    pub results: Vec<ReviewResult>,
}

/// The open round of an instance, with everything a draw needs.
struct OpenRound {
    wf: Arc<CompiledWorkflow>,
    instance: Instance,
    round_id: String,
    def: ReviewRoundDef,
    cycle: i64,
    records: RoundRecords,
}

impl OpenRound {
    fn key(&self) -> RoundKey {
        RoundKey {
            instance_id: self.instance.id,
            round_id: self.round_id.clone(),
            opens_in: self.def.opens_in.clone(),
            cycle: self.cycle,
        }
    }
}

/// The facts of a draw, owned, so that a [`DrawContext`] can borrow them.
struct Board {
    round_key: String,
    experts: Vec<Expert>,
    applications: Vec<Application>,
    declared: Vec<DeclaredConflict>,
    existing: Vec<Assignment>,
    policy: ReviewPolicy,
    today: chrono::NaiveDate,
}

impl Board {
    fn ctx(&self) -> DrawContext<'_> {
        DrawContext {
            round_id: &self.round_key,
            experts: &self.experts,
            call_applications: &self.applications,
            declared_conflicts: &self.declared,
            existing: &self.existing,
            policy: &self.policy,
            today: self.today,
        }
    }
}

/// Whether `user` sees `instance` only as an expert reviewer (no role that shows it
/// anyway: manager, auditor, admin, the applicant's unit, the unit's city bureau). Only
/// such viewers get the blind view and wait for their own scores before the result.
pub fn sees_only_as_reviewer(user: &User, instance: &Instance) -> bool {
    let other_role = user.has_role(Role::Manager)
        || user.has_role(Role::Auditor)
        || user.has_role(Role::Admin)
        || (user.has_role(Role::Applicant) && user.org_id == Some(instance.org_id))
        || (user.has_role(Role::City) && user.org_id.is_some() && instance.city_id == user.org_id);
    user.has_role(Role::Expert) && !other_role
}

fn is_manager(user: &User) -> bool {
    user.active && user.has_role(Role::Manager)
}

fn new_seed() -> u64 {
    // 53 bits: the seed round-trips through JSON numbers unchanged.
    rand::random::<u64>() >> 11
}

// ---------------------------------------------------------------- the service

/// Expert review on top of [`Services`].
#[derive(Clone)]
pub struct Reviews {
    svc: Services,
    policy: ReviewPolicy,
}

impl Services {
    /// Expert review with the programme's default policy.
    pub fn reviews(&self) -> Reviews {
        Reviews {
            svc: self.clone(),
            policy: ReviewPolicy::default(),
        }
    }
}

impl Reviews {
    pub fn with_policy(mut self, policy: ReviewPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn policy(&self) -> &ReviewPolicy {
        &self.policy
    }

    fn store(&self) -> &dyn grantflow_store::Store {
        self.svc.store.as_ref()
    }

    fn require_manager(user: &User) -> ReviewResultOf<()> {
        if is_manager(user) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden.into())
        }
    }

    async fn instance(&self, id: Uuid) -> ReviewResultOf<Instance> {
        match self.store().get_instance(id).await {
            Ok(i) => Ok(i),
            Err(StoreError::NotFound { .. }) => Err(ReviewServiceError::not_found("instance")),
            Err(e) => Err(e.into()),
        }
    }

    /// The round declared in the workflow whose `opens_in` is the instance's state.
    fn round_in_state(wf: &CompiledWorkflow, state: &str) -> Option<(String, ReviewRoundDef)> {
        wf.def
            .reviews
            .iter()
            .find(|(_, r)| r.opens_in == state)
            .map(|(id, r)| (id.clone(), r.clone()))
    }

    fn round_def(wf: &CompiledWorkflow, round_id: &str) -> ReviewResultOf<ReviewRoundDef> {
        wf.def
            .reviews
            .get(round_id)
            .cloned()
            .ok_or_else(|| ReviewServiceError::not_found("review round"))
    }

    async fn open_round(&self, instance_id: Uuid) -> ReviewResultOf<OpenRound> {
        let instance = self.instance(instance_id).await?;
        let wf = self.svc.workflow_of(&instance)?;
        let Some((round_id, def)) = Self::round_in_state(&wf, &instance.state) else {
            return Err(ReviewServiceError::NoOpenRound {
                state: instance.state.clone(),
            });
        };
        let Some(cycle) = self.store().round_cycle(instance.id, &def.opens_in).await? else {
            return Err(ReviewServiceError::RoundClosed);
        };
        let records = self
            .store()
            .round_records(instance.id, &round_id, cycle)
            .await?;
        Ok(OpenRound {
            wf,
            instance,
            round_id,
            def,
            cycle,
            records,
        })
    }

    /// The pool as the review crate sees it, with the users.
    async fn experts(&self) -> ReviewResultOf<(Vec<Expert>, HashMap<Uuid, User>)> {
        let profiles = self.store().expert_profiles().await?;
        let ids: Vec<Uuid> = profiles.iter().map(|p| p.user_id).collect();
        let users: HashMap<Uuid, User> = self
            .store()
            .get_users(&ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let mut collaborations: HashMap<Uuid, Vec<ReviewCollaboration>> = HashMap::new();
        for c in self.store().collaborations(None).await? {
            collaborations
                .entry(c.expert_id)
                .or_default()
                .push(ReviewCollaboration {
                    org_id: c.org_id.to_string(),
                    until: c.until,
                });
        }
        let mut experts = Vec::new();
        for p in profiles {
            let Some(user) = users.get(&p.user_id) else {
                continue;
            };
            let status = match p.status.as_str() {
                expert_status::ACTIVE if user.active && user.has_role(Role::Expert) => {
                    ExpertStatus::Active
                }
                expert_status::RETIRED => ExpertStatus::Retired,
                _ => ExpertStatus::Suspended,
            };
            experts.push(Expert {
                id: p.user_id.to_string(),
                org_id: user
                    .org_id
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| format!("person:{}", p.user_id)),
                categories: p
                    .categories
                    .iter()
                    .filter_map(|c| Category::new(*c).ok())
                    .collect(),
                keywords: p.keywords.clone(),
                workload_cap: p.workload_cap,
                status,
                collaborations: collaborations.remove(&p.user_id).unwrap_or_default(),
            });
        }
        Ok((experts, users))
    }

    /// Everything a draw for the open round needs.
    async fn board(&self, round: &OpenRound) -> ReviewResultOf<Board> {
        let (mut experts, _) = self.experts().await?;
        let instance = &round.instance;
        let excluded = self.store().exclusions(instance.id).await?;
        let target = application_of(instance, &excluded);
        if instance_category(&instance.data).is_none() {
            // No category: expertise is matched on keywords alone.
            for e in &mut experts {
                e.categories.clear();
            }
        }
        let mut applications = vec![target];
        if instance
            .data
            .get("call_id")
            .and_then(Value::as_str)
            .is_some()
        {
            let call = call_of(instance);
            for other in self
                .store()
                .call_instances(&instance.workflow_id, &call)
                .await?
            {
                if other.id != instance.id {
                    applications.push(application_of(&other, &[]));
                }
            }
        }
        // Conflicts declared on this instance in any round or cycle stay declared.
        let declared: Vec<DeclaredConflict> = self
            .store()
            .instance_assignments(instance.id)
            .await?
            .iter()
            .filter_map(|r| lifecycle(r).ok())
            .filter_map(|a| a.declared_conflict())
            .map(|mut d| {
                if let grantflow_review::conflict::ConflictScope::Application { application_id } =
                    &mut d.scope
                {
                    *application_id = instance.id.to_string();
                }
                d
            })
            .collect();
        let mut existing: Vec<Assignment> = round
            .records
            .assignments
            .iter()
            .map(lifecycle)
            .collect::<ReviewResultOf<_>>()?;
        // Load elsewhere (other open rounds) as stand-in assignments.
        let mut own: HashMap<Uuid, u32> = HashMap::new();
        for a in &round.records.assignments {
            if grantflow_store::review::assignment_state::counts_toward_load(&a.state) {
                *own.entry(a.expert_id).or_default() += 1;
            }
        }
        let now = self.svc.now();
        for (expert, load) in self.store().open_loads().await? {
            let elsewhere = load.saturating_sub(own.get(&expert).copied().unwrap_or(0));
            for k in 0..elsewhere {
                existing.push(Assignment::new(
                    "__open_elsewhere__",
                    format!("load-{k}"),
                    expert.to_string(),
                    now,
                ));
            }
        }
        Ok(Board {
            round_key: round_key(&round.round_id, round.cycle),
            experts,
            applications,
            declared,
            existing,
            policy: self.policy.clone(),
            today: local_date(now),
        })
    }

    /// A new seat with its due date and reminder ladder from the round's deadline.
    fn seat(
        &self,
        round: &OpenRound,
        expert_id: Uuid,
        seed: Option<u64>,
        assigned_by: &str,
    ) -> NewAssignment {
        let id = Uuid::now_v7();
        let now = self.svc.now();
        let (due_at, timers) = self.ladder(&round.wf, &round.def, id, expert_id, now);
        NewAssignment {
            id,
            expert_id,
            seed,
            algorithm: seed.map(|_| DRAW_ALGORITHM.to_string()),
            assigned_by: assigned_by.to_string(),
            due_at,
            timers,
        }
    }

    fn ladder(
        &self,
        wf: &CompiledWorkflow,
        def: &ReviewRoundDef,
        assignment_id: Uuid,
        expert_id: Uuid,
        now: DateTime<Utc>,
    ) -> (Option<DateTime<Utc>>, Vec<TimerPlan>) {
        let Some(after) = def.deadline else {
            return (None, Vec::new());
        };
        let deadline_def = DeadlineDef {
            after: Some(after),
            date_field: None,
            reminders: def.reminders.clone(),
            escalations: Vec::new(),
            timeout: None,
        };
        let state = StateDef {
            id: def.opens_in.clone(),
            title: def.title.clone(),
            stage: String::new(),
            initial: false,
            is_final: false,
            requires: Vec::new(),
            assignees: Vec::new(),
            deadline: Some(deadline_def.clone()),
        };
        let Some(deadline) = deadline_for(&state, now, &Value::Null, &self.svc.calendar) else {
            return (None, Vec::new());
        };
        let prefix = assignment_timer_prefix(assignment_id);
        let timers = ladder_timers(
            &deadline_def,
            &def.reminders,
            &[expert_recipient(expert_id)],
            &deadline,
            now,
            wf.remind_at(),
            &self.svc.calendar,
        )
        .into_iter()
        .map(|mut t| {
            t.key = format!("{prefix}{}", t.key);
            t
        })
        .collect();
        (Some(deadline.due_at), timers)
    }

    fn conflict_error(c: ReviewConflict) -> ReviewServiceError {
        match c {
            ReviewConflict::RoundClosed => ReviewServiceError::RoundClosed,
            ReviewConflict::AssignmentChanged { .. } => ReviewServiceError::AssignmentChanged,
            _ => ReviewServiceError::Busy,
        }
    }

    // ------------------------------------------------------------ the pool

    /// Every expert of the pool with their current load (managers).
    pub async fn expert_pool(&self, user: &User) -> ReviewResultOf<Vec<PoolEntry>> {
        Self::require_manager(user)?;
        let profiles = self.store().expert_profiles().await?;
        let ids: Vec<Uuid> = profiles.iter().map(|p| p.user_id).collect();
        let users: HashMap<Uuid, User> = self
            .store()
            .get_users(&ids)
            .await?
            .into_iter()
            .map(|u| (u.id, u))
            .collect();
        let loads: HashMap<Uuid, u32> = self.store().open_loads().await?.into_iter().collect();
        let mut collaborations: HashMap<Uuid, Vec<_>> = HashMap::new();
        for c in self.store().collaborations(None).await? {
            collaborations.entry(c.expert_id).or_default().push(c);
        }
        let mut out: Vec<PoolEntry> = Vec::new();
        for p in profiles {
            let Some(user) = users.get(&p.user_id).cloned() else {
                continue;
            };
            let history = self.store().expert_queue(p.user_id, true).await?;
            let late_reviews = history
                .iter()
                .filter(|a| a.events.iter().any(|e| e.action == "mark_overdue"))
                .count() as u32;
            let suspension_due = p.status == expert_status::ACTIVE
                && self.policy.late_reviews_before_suspension > 0
                && late_reviews >= self.policy.late_reviews_before_suspension;
            out.push(PoolEntry {
                load: loads.get(&p.user_id).copied().unwrap_or(0),
                collaborations: collaborations.remove(&p.user_id).unwrap_or_default(),
                late_reviews,
                suspension_due,
                user,
                profile: p,
            });
        }
        out.sort_by(|a, b| a.user.username.cmp(&b.user.username));
        Ok(out)
    }

    /// Create or change an expert's profile (managers). The user must hold the expert
    /// role.
    pub async fn upsert_expert_profile(
        &self,
        user: &User,
        update: ProfileUpdate,
    ) -> ReviewResultOf<ExpertProfile> {
        Self::require_manager(user)?;
        let expert = match self.store().get_user(update.user_id).await {
            Ok(u) => u,
            Err(StoreError::NotFound { .. }) => return Err(ReviewServiceError::not_found("user")),
            Err(e) => return Err(e.into()),
        };
        if !expert.has_role(Role::Expert) {
            return Err(ReviewServiceError::NotAnExpert { user_id: expert.id });
        }
        for c in &update.categories {
            Category::new(*c)?;
        }
        if !expert_status::ALL.contains(&update.status.as_str()) {
            return Err(ReviewServiceError::invalid(
                "status",
                format!(
                    "专家状态「{}」无效，须为 active、suspended 或 retired",
                    update.status
                ),
                format!(
                    "unknown expert status `{}`: use active, suspended or retired",
                    update.status
                ),
            ));
        }
        let keywords: Vec<String> = update
            .keywords
            .iter()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect();
        Ok(self
            .store()
            .upsert_expert_profile(ExpertProfileInput {
                user_id: update.user_id,
                categories: update.categories,
                keywords,
                workload_cap: update.workload_cap,
                status: update.status,
                at: self.svc.now(),
            })
            .await?)
    }

    /// Record that an expert collaborated with an organisation until a date (managers).
    pub async fn record_collaboration(
        &self,
        user: &User,
        expert_id: Uuid,
        org_id: Uuid,
        until: chrono::NaiveDate,
        note: Option<String>,
    ) -> ReviewResultOf<grantflow_store::review::Collaboration> {
        Self::require_manager(user)?;
        grantflow_domain::dates::check_date(until).map_err(|e| ReviewServiceError::Invalid {
            field: "until".into(),
            zh: e.message_zh(),
            en: e.message_en(),
        })?;
        let expert = self.store().get_user(expert_id).await?;
        if !expert.has_role(Role::Expert) {
            return Err(ReviewServiceError::NotAnExpert { user_id: expert_id });
        }
        self.store().get_org(org_id).await?;
        Ok(self
            .store()
            .add_collaboration(NewCollaboration {
                expert_id,
                org_id,
                until,
                note: note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
                at: self.svc.now(),
            })
            .await?)
    }

    // ------------------------------------------------------------ applicants

    /// The applicant asks to exclude experts of some organisations (申请回避单位), at most
    /// the policy's number, before the review starts. Replaces an earlier request.
    pub async fn request_exclusions(
        &self,
        user: &User,
        instance_id: Uuid,
        org_ids: Vec<Uuid>,
    ) -> ReviewResultOf<Vec<Uuid>> {
        let instance = self.instance(instance_id).await?;
        if !can_see(self.store(), user, &instance).await? {
            return Err(ReviewServiceError::not_found("instance"));
        }
        let own_unit = user.has_role(Role::Applicant) && user.org_id == Some(instance.org_id);
        if !own_unit && !is_manager(user) {
            return Err(ServiceError::Forbidden.into());
        }
        let wf = self.svc.workflow_of(&instance)?;
        let in_round = Self::round_in_state(&wf, &instance.state).is_some();
        if in_round
            || instance.is_final
            || !self
                .store()
                .instance_assignments(instance.id)
                .await?
                .is_empty()
        {
            return Err(ReviewServiceError::ReviewStarted);
        }
        let mut orgs = org_ids;
        orgs.sort();
        orgs.dedup();
        let mut application = application_of(&instance, &orgs);
        application.excluded_org_ids = orgs.iter().map(Uuid::to_string).collect();
        validate_application(&application, &self.policy)?;
        let found = self.store().get_orgs(&orgs).await?;
        if found.len() != orgs.len() {
            return Err(ReviewServiceError::invalid(
                "organisationIds",
                "回避单位中有不存在的单位",
                "an organisation to exclude does not exist",
            ));
        }
        self.store()
            .set_exclusions(instance.id, &orgs, user.id, self.svc.now())
            .await?;
        Ok(self.store().exclusions(instance.id).await?)
    }

    // ------------------------------------------------------------ assignment

    /// A manager puts the named experts on the open round's panel. All or nothing:
    /// conflicts, caps, inactive experts and experts already on the panel are refused with
    /// every reason ([`ReviewError::AssignmentRefused`]).
    pub async fn assign(
        &self,
        user: &User,
        instance_id: Uuid,
        expert_ids: Vec<Uuid>,
    ) -> ReviewResultOf<Vec<AssignmentRecord>> {
        Self::require_manager(user)?;
        if expert_ids.is_empty() {
            return Err(ReviewServiceError::invalid(
                "expertIds",
                "请至少选择一位专家",
                "name at least one expert",
            ));
        }
        let ids: Vec<String> = expert_ids.iter().map(Uuid::to_string).collect();
        for _ in 0..MAX_ATTEMPTS {
            let round = self.open_round(instance_id).await?;
            let board = self.board(&round).await?;
            let picks = assign_manually(&board.ctx(), &round.instance.id.to_string(), &ids)?;
            let seats: Vec<NewAssignment> = picks
                .iter()
                .map(|p| {
                    uuid_of(&p.expert_id).map(|e| self.seat(&round, e, None, &user.id.to_string()))
                })
                .collect::<ReviewResultOf<_>>()?;
            let rc = recompute(round.def.clone());
            let written = self
                .store()
                .create_assignments(CreateAssignments {
                    round: round.key(),
                    expected_panel: round.records.fingerprint(),
                    assignments: seats,
                    recompute: Some(&rc),
                    at: self.svc.now(),
                })
                .await?;
            match written {
                Ok(records) => return Ok(records),
                Err(ReviewConflict::RoundClosed) => return Err(ReviewServiceError::RoundClosed),
                Err(_) => continue,
            }
        }
        Err(ReviewServiceError::Busy)
    }

    /// Draws the open seats of the round's panel at random among eligible experts,
    /// least loaded first, then best expertise, from `seed` (generated when not given);
    /// the seed and algorithm are recorded with every assignment.
    pub async fn auto_assign(
        &self,
        user: &User,
        instance_id: Uuid,
        seed: Option<u64>,
    ) -> ReviewResultOf<AutoAssigned> {
        Self::require_manager(user)?;
        let seed = seed.unwrap_or_else(new_seed);
        for _ in 0..MAX_ATTEMPTS {
            let round = self.open_round(instance_id).await?;
            let board = self.board(&round).await?;
            let outcome = draw_panels(
                &board.ctx(),
                &[round.instance.id.to_string()],
                round.def.panel_size,
                seed,
            )?;
            let shortfall = outcome.shortfalls.first().cloned();
            if outcome.picks.is_empty() {
                return Ok(AutoAssigned {
                    seed,
                    algorithm: outcome.algorithm,
                    assignments: Vec::new(),
                    shortfall,
                });
            }
            let seats: Vec<NewAssignment> = outcome
                .picks
                .iter()
                .map(|p| {
                    uuid_of(&p.expert_id)
                        .map(|e| self.seat(&round, e, Some(seed), &user.id.to_string()))
                })
                .collect::<ReviewResultOf<_>>()?;
            let rc = recompute(round.def.clone());
            let written = self
                .store()
                .create_assignments(CreateAssignments {
                    round: round.key(),
                    expected_panel: round.records.fingerprint(),
                    assignments: seats,
                    recompute: Some(&rc),
                    at: self.svc.now(),
                })
                .await?;
            match written {
                Ok(records) => {
                    return Ok(AutoAssigned {
                        seed,
                        algorithm: outcome.algorithm,
                        assignments: records,
                        shortfall,
                    });
                }
                Err(ReviewConflict::RoundClosed) => return Err(ReviewServiceError::RoundClosed),
                Err(_) => continue,
            }
        }
        Err(ReviewServiceError::Busy)
    }

    /// The assignment `id` of the expert `user`; NOT_FOUND for anyone else.
    async fn own_assignment(&self, user: &User, id: Uuid) -> ReviewResultOf<AssignmentRecord> {
        let rec = match self.store().assignment(id).await {
            Ok(r) => r,
            Err(StoreError::NotFound { .. }) => {
                return Err(ReviewServiceError::not_found("review assignment"));
            }
            Err(e) => return Err(e.into()),
        };
        if rec.expert_id != user.id || !user.active {
            return Err(ReviewServiceError::not_found("review assignment"));
        }
        Ok(rec)
    }

    async fn any_assignment(&self, id: Uuid) -> ReviewResultOf<AssignmentRecord> {
        match self.store().assignment(id).await {
            Ok(r) => Ok(r),
            Err(StoreError::NotFound { .. }) => {
                Err(ReviewServiceError::not_found("review assignment"))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn def_of(
        &self,
        rec: &AssignmentRecord,
        instance: &Instance,
    ) -> ReviewResultOf<(Arc<CompiledWorkflow>, ReviewRoundDef)> {
        let wf = self.svc.workflow_of(instance)?;
        let def = Self::round_def(&wf, &rec.round_id)?;
        Ok((wf, def))
    }

    /// Apply a lifecycle action and store it, with the extras `extend` adds.
    async fn act(
        &self,
        rec: &AssignmentRecord,
        actions: Vec<(Action, Actor)>,
        extend: impl FnOnce(&mut AssignmentChange<'_>, &Assignment),
        def: &ReviewRoundDef,
    ) -> ReviewResultOf<AssignmentRecord> {
        let before = lifecycle(rec)?;
        let now = self.svc.now();
        let mut after = before.clone();
        for (action, actor) in actions {
            after = after.apply(action, &actor, now)?;
        }
        let rc = recompute(def.clone());
        let mut change = AssignmentChange {
            assignment_id: rec.id,
            expected_revision: rec.revision,
            state: state_name(after.state()),
            events: new_events(&before, &after),
            submission: None,
            reopen: None,
            justification: None,
            view: ViewChange::Keep,
            cancel_timers: false,
            replacement: None,
            expected_panel: None,
            recompute: Some(&rc),
            at: now,
        };
        extend(&mut change, &after);
        match self.store().change_assignment(change).await? {
            Ok(changed) => Ok(changed.assignment),
            Err(c) => Err(Self::conflict_error(c)),
        }
    }

    /// The expert declares no conflict of interest: the application is shown to them.
    pub async fn declare_no_conflict(
        &self,
        user: &User,
        id: Uuid,
    ) -> ReviewResultOf<AssignmentRecord> {
        let rec = self.own_assignment(user, id).await?;
        let instance = self.instance(rec.instance_id).await?;
        let (_, def) = self.def_of(&rec, &instance)?;
        self.act(
            &rec,
            vec![(
                Action::DeclareNoConflict,
                Actor::Expert {
                    id: user.id.to_string(),
                },
            )],
            |c, _| c.view = ViewChange::Grant,
            &def,
        )
        .await
    }

    /// The expert declares a conflict: recused, and a replacement is drawn at once.
    pub async fn declare_conflict(
        &self,
        user: &User,
        id: Uuid,
        reason: &str,
    ) -> ReviewResultOf<Departure> {
        let rec = self.own_assignment(user, id).await?;
        let action = Action::DeclareConflict {
            reason: reason.to_string(),
        };
        self.depart(
            rec,
            action,
            Actor::Expert {
                id: user.id.to_string(),
            },
            None,
        )
        .await
    }

    /// The expert declines: the seat is given to a replacement drawn at once.
    pub async fn decline(
        &self,
        user: &User,
        id: Uuid,
        reason: Option<&str>,
    ) -> ReviewResultOf<Departure> {
        let rec = self.own_assignment(user, id).await?;
        let action = Action::Decline {
            reason: reason.map(str::to_string),
        };
        self.depart(
            rec,
            action,
            Actor::Expert {
                id: user.id.to_string(),
            },
            None,
        )
        .await
    }

    /// A manager replaces an expert: an overdue one (once the assignment's due time has
    /// passed), or one who declined or declared a conflict and was not replaced yet.
    pub async fn reassign(&self, user: &User, id: Uuid, reason: &str) -> ReviewResultOf<Departure> {
        Self::require_manager(user)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ReviewError::ReasonRequired {
                action: grantflow_review::lifecycle::ActionKind::Replace,
            }
            .into());
        }
        let rec = self.any_assignment(id).await?;
        let state = lifecycle(&rec)?.state();
        let manager = Actor::Manager {
            id: user.id.to_string(),
        };
        match state {
            AssignmentState::Assigned | AssignmentState::Accepted => {
                let now = self.svc.now();
                if rec.due_at.is_none_or(|d| d > now) {
                    return Err(ReviewServiceError::NotOverdue { due_at: rec.due_at });
                }
                self.depart(rec, Action::MarkOverdue, manager, Some(reason))
                    .await
            }
            _ => self.replace_only(rec, manager, reason).await,
        }
    }

    /// Leave the panel by `action` (conflict, decline, overdue), and seat a replacement in
    /// the same transaction when one can be drawn.
    async fn depart(
        &self,
        rec: AssignmentRecord,
        action: Action,
        actor: Actor,
        reason: Option<&str>,
    ) -> ReviewResultOf<Departure> {
        let mut rec = rec;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                rec = self.any_assignment(rec.id).await?;
            }
            let before = lifecycle(&rec)?;
            let now = self.svc.now();
            let left = before.apply(action.clone(), &actor, now)?;
            let round = self.open_round(rec.instance_id).await?;
            if round.round_id != rec.round_id || round.cycle != rec.cycle {
                return Err(ReviewServiceError::RoundClosed);
            }
            let replacer = match &actor {
                Actor::Manager { .. } => actor.clone(),
                _ => Actor::System,
            };
            match self
                .leave_and_replace(&round, &rec, &before, left, &replacer, reason)
                .await?
            {
                Some(done) => return Ok(done),
                None => continue,
            }
        }
        Err(ReviewServiceError::Busy)
    }

    /// Replace a declined, recused or overdue assignment that was left unfilled.
    async fn replace_only(
        &self,
        rec: AssignmentRecord,
        actor: Actor,
        reason: &str,
    ) -> ReviewResultOf<Departure> {
        let mut rec = rec;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                rec = self.any_assignment(rec.id).await?;
            }
            let before = lifecycle(&rec)?;
            if !before.state().needs_replacement() {
                return Err(ReviewError::NotReplaceable {
                    state: before.state(),
                }
                .into());
            }
            let round = self.open_round(rec.instance_id).await?;
            if round.round_id != rec.round_id || round.cycle != rec.cycle {
                return Err(ReviewServiceError::RoundClosed);
            }
            match self
                .leave_and_replace(&round, &rec, &before, before.clone(), &actor, Some(reason))
                .await?
            {
                Some(done) if done.unfilled => {
                    return Err(ReviewError::NotEnoughEligibleExperts {
                        application_id: rec.instance_id.to_string(),
                        needed: 1,
                        available: 0,
                    }
                    .into());
                }
                Some(done) => return Ok(done),
                None => continue,
            }
        }
        Err(ReviewServiceError::Busy)
    }

    /// Store `left` (the assignment after leaving) and a drawn replacement. `None` when
    /// the panel changed meanwhile (the caller retries).
    async fn leave_and_replace(
        &self,
        round: &OpenRound,
        rec: &AssignmentRecord,
        before: &Assignment,
        left: Assignment,
        replacer: &Actor,
        reason: Option<&str>,
    ) -> ReviewResultOf<Option<Departure>> {
        let now = self.svc.now();
        let mut board = self.board(round).await?;
        // The board must see the leaving assignment as it is about to be.
        if let Some(slot) = board
            .existing
            .iter_mut()
            .find(|a| a.expert_id() == rec.expert_id.to_string() && a.round_id() == board.round_key)
        {
            *slot = left.clone();
        }
        if let Some(d) = left.declared_conflict() {
            board.declared.push(d);
        }
        let seed = new_seed();
        let pick = match draw_replacement(&board.ctx(), &left, seed) {
            Ok(pick) => Some(pick),
            Err(ReviewError::NotEnoughEligibleExperts { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let (final_state, replacement) = match &pick {
            Some(p) => {
                let by = p.expert_id.clone();
                let replaced = left.apply(Action::Replace { by: by.clone() }, replacer, now)?;
                let seat = self.seat(round, uuid_of(&by)?, Some(seed), "system");
                (replaced, Some(seat))
            }
            None => (left, None),
        };
        let mut events = new_events(before, &final_state);
        if let Some(reason) = reason {
            for e in &mut events {
                if e.reason.is_none() {
                    e.reason = Some(reason.to_string());
                }
            }
        }
        let rc = recompute(round.def.clone());
        let unfilled = replacement.is_none();
        let change = AssignmentChange {
            assignment_id: rec.id,
            expected_revision: rec.revision,
            state: state_name(final_state.state()),
            events,
            submission: None,
            reopen: None,
            justification: None,
            view: ViewChange::Revoke,
            cancel_timers: true,
            expected_panel: replacement.as_ref().map(|_| round.records.fingerprint()),
            replacement,
            recompute: Some(&rc),
            at: now,
        };
        match self.store().change_assignment(change).await? {
            Ok(ChangedAssignment {
                assignment,
                replacement,
            }) => Ok(Some(Departure {
                assignment,
                replacement,
                unfilled,
            })),
            Err(ReviewConflict::RoundClosed) => Err(ReviewServiceError::RoundClosed),
            Err(ReviewConflict::AssignmentChanged { .. }) => {
                Err(ReviewServiceError::AssignmentChanged)
            }
            Err(_) => Ok(None),
        }
    }

    // ------------------------------------------------------------ scores

    /// The expert submits scores: validated against the rubric (every problem of every
    /// criterion at once), sealed as a new version, the round's result recomputed in the
    /// same transaction. A justification given here is kept with the version, for when
    /// the total turns out to be an outlier.
    pub async fn submit_scores(
        &self,
        user: &User,
        id: Uuid,
        sheet: ScoreSheet,
        justification: Option<&str>,
    ) -> ReviewResultOf<Submitted> {
        let rec = self.own_assignment(user, id).await?;
        let instance = self.instance(rec.instance_id).await?;
        let (_, def) = self.def_of(&rec, &instance)?;
        let card = validate_scores(&def.criteria, &sheet)?;
        let total = card.total();
        let card_json = serde_json::to_value(&card).unwrap_or(Value::Null);
        let justification = justification
            .map(str::trim)
            .filter(|j| !j.is_empty())
            .map(str::to_string);
        let assignment = self
            .act(
                &rec,
                vec![(
                    Action::Submit { card },
                    Actor::Expert {
                        id: user.id.to_string(),
                    },
                )],
                |c, after| {
                    let version = after.latest_version().map(|v| v.version).unwrap_or(1);
                    c.submission = Some(NewSubmission {
                        version,
                        card: card_json,
                        total,
                    });
                    c.justification = justification.map(|j| (version, j));
                    c.cancel_timers = true;
                },
                &def,
            )
            .await?;
        let records = self
            .store()
            .round_records(rec.instance_id, &rec.round_id, rec.cycle)
            .await?;
        let evaluation = evaluate(&def, &records);
        let needs_justification = evaluation.pending().contains(&user.id.to_string().as_str());
        Ok(Submitted {
            assignment,
            total,
            needs_justification,
        })
    }

    /// The expert justifies an outlying total of their latest submission.
    pub async fn justify(
        &self,
        user: &User,
        id: Uuid,
        text: &str,
    ) -> ReviewResultOf<AssignmentRecord> {
        let rec = self.own_assignment(user, id).await?;
        let instance = self.instance(rec.instance_id).await?;
        let (_, def) = self.def_of(&rec, &instance)?;
        let records = self
            .store()
            .round_records(rec.instance_id, &rec.round_id, rec.cycle)
            .await?;
        let evaluation = evaluate(&def, &records);
        let j = justify_outlier(&evaluation.full, &user.id.to_string(), text, self.svc.now())?;
        let rc = recompute(def.clone());
        let change = AssignmentChange {
            assignment_id: rec.id,
            expected_revision: rec.revision,
            state: rec.state.clone(),
            events: Vec::new(),
            submission: None,
            reopen: None,
            justification: Some((j.version, j.text)),
            view: ViewChange::Keep,
            cancel_timers: false,
            replacement: None,
            expected_panel: None,
            recompute: Some(&rc),
            at: self.svc.now(),
        };
        match self.store().change_assignment(change).await {
            Ok(Ok(changed)) => Ok(changed.assignment),
            Ok(Err(c)) => Err(Self::conflict_error(c)),
            Err(StoreError::Duplicate { .. }) => Err(ReviewServiceError::invalid(
                "justification",
                "该版本评分已填写过说明",
                "this version is already justified",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// A manager reopens a submission with a reason; the version stays in the history and
    /// the expert submits a new one.
    pub async fn reopen(
        &self,
        user: &User,
        id: Uuid,
        reason: &str,
    ) -> ReviewResultOf<AssignmentRecord> {
        Self::require_manager(user)?;
        let rec = self.any_assignment(id).await?;
        let instance = self.instance(rec.instance_id).await?;
        let (_, def) = self.def_of(&rec, &instance)?;
        let version = rec.latest_submission().map(|s| s.version).unwrap_or(0);
        let by = user.id.to_string();
        let reason_text = reason.trim().to_string();
        self.act(
            &rec,
            vec![(
                Action::Reopen {
                    reason: reason.to_string(),
                },
                Actor::Manager { id: by.clone() },
            )],
            |c, _| {
                c.reopen = Some(ReopenMark {
                    version,
                    by,
                    reason: reason_text,
                })
            },
            &def,
        )
        .await
    }

    // ------------------------------------------------------------ views

    async fn org_and_creator(&self, instance: &Instance) -> ReviewResultOf<(String, String)> {
        let org = self.store().get_org(instance.org_id).await?;
        let creator = self
            .store()
            .get_users(&[instance.created_by])
            .await?
            .into_iter()
            .next()
            .map(|u| u.display_name)
            .unwrap_or_default();
        Ok((org.name, creator))
    }

    async fn title_for(&self, instance: &Instance, blind: bool) -> ReviewResultOf<String> {
        if !blind {
            return Ok(instance.title.clone());
        }
        let (org, creator) = self.org_and_creator(instance).await?;
        Ok(redact_instance(instance, &org, &creator).0)
    }

    /// The expert's queue with deadlines: open rounds only unless `include_closed`.
    pub async fn my_reviews(
        &self,
        user: &User,
        include_closed: bool,
    ) -> ReviewResultOf<Vec<QueueItem>> {
        if !user.active || !user.has_role(Role::Expert) {
            return Ok(Vec::new());
        }
        let records = self.store().expert_queue(user.id, include_closed).await?;
        let ids: Vec<Uuid> = records.iter().map(|r| r.instance_id).collect();
        let instances: HashMap<Uuid, Instance> = self
            .store()
            .get_instances(&ids)
            .await?
            .into_iter()
            .map(|i| (i.id, i))
            .collect();
        let mut out = Vec::new();
        for rec in records {
            let Some(instance) = instances.get(&rec.instance_id) else {
                continue;
            };
            let (_, def) = self.def_of(&rec, instance)?;
            let title = self.title_for(instance, def.blind).await?;
            out.push(QueueItem {
                assignment: rec,
                round: def,
                title,
            });
        }
        // Soonest deadline first.
        out.sort_by_key(|q| {
            (
                q.assignment.due_at.is_none(),
                q.assignment.due_at,
                q.assignment.id,
            )
        });
        Ok(out)
    }

    /// The review form of an assignment for its expert.
    pub async fn review_form(&self, user: &User, id: Uuid) -> ReviewResultOf<ReviewForm> {
        let rec = self.own_assignment(user, id).await?;
        let instance = self.instance(rec.instance_id).await?;
        let (_, def) = self.def_of(&rec, &instance)?;
        let me = lifecycle(&rec)?;
        let (org, creator) = self.org_and_creator(&instance).await?;
        let title = if def.blind {
            redact_instance(&instance, &org, &creator).0
        } else {
            instance.title.clone()
        };
        let record = if def.blind {
            let (t, data) = redact_instance(&instance, &org, &creator);
            json!({ "title": t, "applicant": Value::Null, "data": data })
        } else {
            json!({ "title": instance.title, "applicant": org, "data": instance.data })
        };
        let (application, hidden) =
            match grantflow_review::blind::application_view(&me, false, &record, &[]) {
                Ok(v) => (Some(v), None),
                Err(e) => (None, Some(e)),
            };
        let records = self
            .store()
            .round_records(rec.instance_id, &rec.round_id, rec.cycle)
            .await?;
        let panel: Vec<Assignment> = records
            .assignments
            .iter()
            .filter_map(|r| lifecycle(r).ok())
            .collect();
        let peers = peer_scores(&me, &panel).ok();
        let (needs_justification, panel_median) = if peers.is_some() {
            let evaluation = evaluate(&def, &records);
            (
                evaluation.pending().contains(&user.id.to_string().as_str()),
                Some(evaluation.full.median_total()),
            )
        } else {
            (false, None)
        };
        Ok(ReviewForm {
            assignment: rec,
            round: def,
            title,
            application,
            application_hidden: hidden,
            peer_scores: peers,
            needs_justification,
            panel_median,
        })
    }

    /// The summary of a round cycle of an instance (managers): the open round by default,
    /// else the latest cycle of the named (or any) round that has assignments.
    pub async fn round_summary(
        &self,
        user: &User,
        instance_id: Uuid,
        round_id: Option<&str>,
        cycle: Option<i64>,
    ) -> ReviewResultOf<RoundSummary> {
        Self::require_manager(user)?;
        let instance = self.instance(instance_id).await?;
        let wf = self.svc.workflow_of(&instance)?;
        let all = self.store().instance_assignments(instance.id).await?;
        let open = Self::round_in_state(&wf, &instance.state);
        let round_id = match (round_id, &open) {
            (Some(r), _) => r.to_string(),
            (None, Some((r, _))) => r.clone(),
            (None, None) => all
                .iter()
                .max_by_key(|a| (a.cycle, a.assigned_at))
                .map(|a| a.round_id.clone())
                .ok_or_else(|| ReviewServiceError::NoOpenRound {
                    state: instance.state.clone(),
                })?,
        };
        let def = Self::round_def(&wf, &round_id)?;
        let cycle = match cycle {
            Some(c) => c,
            None => match self.store().round_cycle(instance.id, &def.opens_in).await? {
                Some(c) => c,
                None => all
                    .iter()
                    .filter(|a| a.round_id == round_id)
                    .map(|a| a.cycle)
                    .max()
                    .ok_or_else(|| ReviewServiceError::NoOpenRound {
                        state: instance.state.clone(),
                    })?,
            },
        };
        let records = self
            .store()
            .round_records(instance.id, &round_id, cycle)
            .await?;
        let open = self.store().round_cycle(instance.id, &def.opens_in).await? == Some(cycle);
        let evaluation = evaluate(&def, &records);
        Ok(RoundSummary {
            instance,
            round_id,
            round: def,
            cycle,
            open,
            assignments: records.assignments,
            evaluation,
        })
    }

    /// The ranking of a call's applications (instances whose `data.call_id` is `call_id`)
    /// by their latest cycle of `round_id` (default `application_review`), with the
    /// review crate's tie-breaks: total, median, lowest total, number of scores.
    pub async fn ranking(
        &self,
        user: &User,
        call_id: &str,
        round_id: Option<&str>,
    ) -> ReviewResultOf<Ranking> {
        Self::require_manager(user)?;
        let round_id = round_id.unwrap_or("application_review").to_string();
        let mut def: Option<ReviewRoundDef> = None;
        let mut instances: Vec<Instance> = Vec::new();
        let mut seen = BTreeSet::new();
        for wf in self.svc.workflows.all() {
            let Some(d) = wf.def.reviews.get(&round_id) else {
                continue;
            };
            if !seen.insert(wf.def.id.clone()) {
                continue;
            }
            def.get_or_insert_with(|| d.clone());
            instances.extend(self.store().call_instances(&wf.def.id, call_id).await?);
        }
        let def = def.ok_or_else(|| ReviewServiceError::not_found("review round"))?;
        let mut results = Vec::new();
        let mut by_id: BTreeMap<String, Instance> = BTreeMap::new();
        for instance in instances {
            let cycle = self
                .store()
                .instance_assignments(instance.id)
                .await?
                .iter()
                .filter(|a| a.round_id == round_id)
                .map(|a| a.cycle)
                .max();
            let result = match cycle {
                Some(c) => {
                    let records = self
                        .store()
                        .round_records(instance.id, &round_id, c)
                        .await?;
                    evaluate(&def, &records).counted
                }
                None => aggregate_application(&def, &instance.id.to_string(), &[], &[]),
            };
            results.push(result);
            by_id.insert(instance.id.to_string(), instance);
        }
        let rows = rank_applications(&results)
            .into_iter()
            .filter_map(|ranked| {
                let instance = by_id.get(&ranked.application_id)?.clone();
                Some(RankingRow { ranked, instance })
            })
            .collect();
        Ok(Ranking {
            round_id,
            round: def,
            rows,
            results,
        })
    }

    /// The ranking as an XLSX workbook (ranking, summary and expert scores sheets).
    pub async fn ranking_xlsx(
        &self,
        user: &User,
        call_id: &str,
        round_id: Option<&str>,
    ) -> ReviewResultOf<Vec<u8>> {
        let ranking = self.ranking(user, call_id, round_id).await?;
        let labels: BTreeMap<String, String> = ranking
            .rows
            .iter()
            .map(|r| (r.ranked.application_id.clone(), r.instance.title.clone()))
            .collect();
        let ranked: Vec<RankedApplication> =
            ranking.rows.iter().map(|r| r.ranked.clone()).collect();
        Ok(grantflow_review::export::round_workbook(
            &ranking.round,
            &ranked,
            &ranking.results,
            &labels,
        )?)
    }

    // ------------------------------------------------------------ blindness

    /// Whether `user` sees `instance` only as a reviewer of a blind round: then the
    /// applicant's identity must be hidden from them. Managers, auditors, the city and
    /// the applicant's own unit see it.
    pub async fn is_blind_reviewer(
        &self,
        user: &User,
        instance: &Instance,
    ) -> ReviewResultOf<bool> {
        if !sees_only_as_reviewer(user, instance) {
            return Ok(false);
        }
        let wf = self.svc.workflow_of(instance)?;
        let mine = self.store().instance_assignments(instance.id).await?;
        Ok(mine.iter().any(|a| {
            a.expert_id == user.id && wf.def.reviews.get(&a.round_id).is_some_and(|r| r.blind)
        }))
    }

    /// The title and data of `instance` as `user` may see them: redacted for a blind
    /// reviewer, `None` when nothing needs hiding.
    pub async fn blind_view(
        &self,
        user: &User,
        instance: &Instance,
    ) -> ReviewResultOf<Option<(String, Value)>> {
        if !self.is_blind_reviewer(user, instance).await? {
            return Ok(None);
        }
        let (org, creator) = self.org_and_creator(instance).await?;
        Ok(Some(redact_instance(instance, &org, &creator)))
    }

    /// Whether `user` may read the aggregated result of `instance`: everyone who sees the
    /// instance, except experts who have not submitted their own scores on it.
    pub async fn may_see_result(&self, user: &User, instance: &Instance) -> ReviewResultOf<bool> {
        if !sees_only_as_reviewer(user, instance) {
            return Ok(true);
        }
        // Their assignment in the latest round on the instance: the one the result is of.
        let mine = self.store().instance_assignments(instance.id).await?;
        Ok(mine
            .iter()
            .filter(|a| a.expert_id == user.id)
            .max_by_key(|a| (a.cycle, a.assigned_at))
            .is_some_and(|a| a.state == grantflow_store::review::assignment_state::SUBMITTED))
    }

    /// A title in the two languages, for errors and lists.
    pub fn round_title(def: &ReviewRoundDef) -> I18nText {
        def.title.clone()
    }
}
