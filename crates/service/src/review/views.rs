//! What the review service returns (pool entries, queue items, forms, summaries,
//! rankings) and the in-memory round and board it works on.

use super::*;

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
    /// The experts of the pool the draw could not choose, each with every reason
    /// (conflicts with their grounds, inactive, at the workload cap, already on the
    /// panel), as the pool stood when the draw was made; by expert id.
    pub excluded: Vec<Refusal>,
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
pub(super) struct OpenRound {
    pub(super) wf: Arc<CompiledWorkflow>,
    pub(super) instance: Instance,
    pub(super) round_id: String,
    pub(super) def: ReviewRoundDef,
    pub(super) cycle: i64,
    pub(super) records: RoundRecords,
}

impl OpenRound {
    pub(super) fn key(&self) -> RoundKey {
        RoundKey {
            instance_id: self.instance.id,
            round_id: self.round_id.clone(),
            opens_in: self.def.opens_in.clone(),
            cycle: self.cycle,
        }
    }
}

/// The facts of a draw, owned, so that a [`DrawContext`] can borrow them.
pub(super) struct Board {
    pub(super) round_key: String,
    pub(super) experts: Vec<Expert>,
    pub(super) applications: Vec<Application>,
    pub(super) declared: Vec<DeclaredConflict>,
    pub(super) existing: Vec<Assignment>,
    pub(super) policy: ReviewPolicy,
    pub(super) today: chrono::NaiveDate,
}

impl Board {
    /// Every expert of the pool who may not join `application_id`'s panel now, with
    /// every reason, by expert id.
    pub(super) fn excluded(&self, application_id: &str) -> Vec<Refusal> {
        let ctx = self.ctx();
        let Some(application) = ctx
            .call_applications
            .iter()
            .find(|a| a.id == application_id)
        else {
            return Vec::new();
        };
        let mut out: Vec<Refusal> = ctx
            .experts
            .iter()
            .filter_map(|e| {
                let reasons = check_eligibility(&ctx, e, application);
                (!reasons.is_empty()).then(|| Refusal {
                    expert_id: e.id.clone(),
                    reasons,
                })
            })
            .collect();
        out.sort_by(|a, b| a.expert_id.cmp(&b.expert_id));
        out.dedup_by(|a, b| a.expert_id == b.expert_id);
        out
    }

    pub(super) fn ctx(&self) -> DrawContext<'_> {
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

pub(super) fn is_manager(user: &User) -> bool {
    user.active && user.has_role(Role::Manager)
}

pub(super) fn new_seed() -> u64 {
    // 53 bits: the seed round-trips through JSON numbers unchanged.
    rand::random::<u64>() >> 11
}
