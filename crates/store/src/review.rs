//! Persistence of expert review (专家评审): the expert pool, collaborations, applicants'
//! exclusion requests, assignments with their lifecycle events, sealed score submissions
//! and outlier justifications.
//!
//! Plain types only, like the rest of the store. The review logic (conflicts, draws,
//! scoring, aggregation) lives in `grantflow-review` and is applied by the service; the
//! store keeps the records and enforces, inside one transaction per write, what must
//! hold even when two managers or two experts act at once:
//!
//! - a round (instance, round id, cycle) is open only while the instance is in the round's
//!   `opens_in` state and has not left it since it entered it at version `cycle`; writes to a
//!   closed round are refused ([`ReviewConflict::RoundClosed`]);
//! - a write computed from a view of the panel is refused when the panel changed since
//!   ([`ReviewConflict::PanelChanged`], [`ReviewConflict::AssignmentChanged`]);
//! - an expert sits at most once on a panel of one round cycle, and never beyond their
//!   workload cap, counted over open rounds ([`ReviewConflict::AlreadyOnPanel`],
//!   [`ReviewConflict::OverCap`]);
//! - when the caller passes a [`Recompute`], the aggregated result is recomputed from the
//!   round as written and stored in the instance's `review` column in the same transaction,
//!   so workflow guards always read the current result.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use grantflow_domain::schedule::TimerPlan;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::{Instance, StoreResult};

/// Assignment states, as stored (the names of `grantflow_review::lifecycle::AssignmentState`).
pub mod assignment_state {
    pub const ASSIGNED: &str = "assigned";
    pub const ACCEPTED: &str = "accepted";
    pub const DECLINED: &str = "declined";
    pub const CONFLICT_DECLARED: &str = "conflict_declared";
    pub const SUBMITTED: &str = "submitted";
    pub const REOPENED: &str = "reopened";
    pub const OVERDUE: &str = "overdue";
    pub const REPLACED: &str = "replaced";
    pub const ALL: [&str; 8] = [
        ASSIGNED,
        ACCEPTED,
        DECLINED,
        CONFLICT_DECLARED,
        SUBMITTED,
        REOPENED,
        OVERDUE,
        REPLACED,
    ];
    /// States that hold a seat on the panel and a unit of the expert's workload.
    pub const COUNTING: [&str; 5] = [ASSIGNED, ACCEPTED, SUBMITTED, REOPENED, OVERDUE];
    /// States in which the expert may read the application.
    pub const VIEWING: [&str; 3] = [ACCEPTED, SUBMITTED, REOPENED];

    pub fn counts_toward_load(state: &str) -> bool {
        COUNTING.contains(&state)
    }
}

/// Expert statuses, as stored.
pub mod expert_status {
    pub const ACTIVE: &str = "active";
    pub const SUSPENDED: &str = "suspended";
    pub const RETIRED: &str = "retired";
    pub const ALL: [&str; 3] = [ACTIVE, SUSPENDED, RETIRED];
}

/// An expert's entry in the pool (专家库). The expert's organisation is the user's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpertProfile {
    pub user_id: Uuid,
    /// Call categories 1..=8, ascending, without repeats.
    pub categories: Vec<u8>,
    pub keywords: Vec<String>,
    /// Most open assignments at once.
    pub workload_cap: u32,
    /// `active`, `suspended` or `retired` ([`expert_status`]).
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Create or replace an expert's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertProfileInput {
    pub user_id: Uuid,
    pub categories: Vec<u8>,
    pub keywords: Vec<String>,
    pub workload_cap: u32,
    pub status: String,
    pub at: DateTime<Utc>,
}

/// A recorded collaboration of an expert with an organisation, ending (or ended) `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collaboration {
    pub id: Uuid,
    pub expert_id: Uuid,
    pub org_id: Uuid,
    pub until: NaiveDate,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCollaboration {
    pub expert_id: Uuid,
    pub org_id: Uuid,
    pub until: NaiveDate,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// One step of an assignment's lifecycle, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentEvent {
    /// 1, 2, … per assignment.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// `expert`, `manager` or `system`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    /// The lifecycle action, e.g. `declare_no_conflict`, `submit`, `reopen`, `replace`.
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub reason: Option<String>,
}

/// An event to append (its `seq` is assigned by the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAssignmentEvent {
    pub at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub from_state: String,
    pub to_state: String,
    pub reason: Option<String>,
}

/// A sealed submission of scores. Every version is kept; a reopened one records who
/// reopened it, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub version: u32,
    pub submitted_at: DateTime<Utc>,
    /// The validated score card as JSON (`grantflow_review::scoring::ScoreCard`).
    pub card: Value,
    /// The card's weighted total on 0–100.
    pub total: f64,
    pub reopened_at: Option<DateTime<Utc>>,
    pub reopened_by: Option<String>,
    pub reopen_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewSubmission {
    pub version: u32,
    pub card: Value,
    pub total: f64,
}

/// Marks a submitted version reopened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReopenMark {
    pub version: u32,
    pub by: String,
    pub reason: String,
}

/// An expert's written reason for an outlying total, for one submitted version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Justification {
    pub version: u32,
    pub text: String,
    pub written_at: DateTime<Utc>,
}

/// One expert's assignment to one instance in one cycle of one review round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignmentRecord {
    pub id: Uuid,
    pub instance_id: Uuid,
    /// The key under `[reviews]` in the workflow.
    pub round_id: String,
    /// The state in which the round is open.
    pub opens_in: String,
    /// The instance version at which the instance entered `opens_in`: a second acceptance
    /// review after rectification is a new cycle.
    pub cycle: i64,
    pub expert_id: Uuid,
    /// See [`assignment_state`].
    pub state: String,
    /// Grows by one with every change: writes name the revision they were computed from.
    pub revision: i64,
    /// The seed of the automatic draw that chose the expert (none for manual picks).
    pub seed: Option<u64>,
    /// The draw procedure the seed belongs to.
    pub algorithm: Option<String>,
    pub assigned_by: String,
    pub assigned_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    /// The assignment this one took the seat of.
    pub replaces: Option<Uuid>,
    /// The assignment that took this one's seat.
    pub replaced_by: Option<Uuid>,
    pub updated_at: DateTime<Utc>,
    /// Whether the round cycle is still open (computed when read).
    pub round_open: bool,
    pub events: Vec<AssignmentEvent>,
    pub submissions: Vec<Submission>,
    pub justifications: Vec<Justification>,
}

impl AssignmentRecord {
    pub fn latest_submission(&self) -> Option<&Submission> {
        self.submissions.iter().max_by_key(|s| s.version)
    }
}

/// A new assignment; its timers (reminder ladder from the round's deadline) are inserted
/// in the same transaction, under the round's `opens_in` state and the cycle as state entry.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAssignment {
    pub id: Uuid,
    pub expert_id: Uuid,
    pub seed: Option<u64>,
    pub algorithm: Option<String>,
    pub assigned_by: String,
    pub due_at: Option<DateTime<Utc>>,
    pub timers: Vec<TimerPlan>,
}

/// Every assignment of one round cycle of one instance, with submissions and justifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecords {
    pub instance_id: Uuid,
    pub round_id: String,
    pub cycle: i64,
    pub open: bool,
    pub assignments: Vec<AssignmentRecord>,
}

impl RoundRecords {
    /// The panel as a write names it: every assignment id with its revision.
    pub fn fingerprint(&self) -> Vec<(Uuid, i64)> {
        let mut f: Vec<(Uuid, i64)> = self
            .assignments
            .iter()
            .map(|a| (a.id, a.revision))
            .collect();
        f.sort();
        f
    }
}

/// Computes the `review` value guards read from the round as written, inside the write's
/// transaction.
pub type Recompute<'a> = dyn Fn(&RoundRecords) -> Value + Send + Sync + 'a;

/// Identifies a round cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundKey {
    pub instance_id: Uuid,
    pub round_id: String,
    pub opens_in: String,
    pub cycle: i64,
}

/// Put experts on a panel.
pub struct CreateAssignments<'a> {
    pub round: RoundKey,
    /// The panel the assignments were computed from ([`RoundRecords::fingerprint`]);
    /// refused with [`ReviewConflict::PanelChanged`] when it differs.
    pub expected_panel: Vec<(Uuid, i64)>,
    pub assignments: Vec<NewAssignment>,
    pub recompute: Option<&'a Recompute<'a>>,
    pub at: DateTime<Utc>,
}

/// Whether a change shows or hides the application to the expert (`expert_assignments`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewChange {
    #[default]
    Keep,
    /// The expert declared no conflict: the application is shown.
    Grant,
    /// The expert left the panel: hidden again, unless another of their assignments on
    /// the instance still shows it.
    Revoke,
}

/// Change one assignment, and optionally seat its replacement, in one transaction.
pub struct AssignmentChange<'a> {
    pub assignment_id: Uuid,
    /// Refused with [`ReviewConflict::AssignmentChanged`] unless the assignment is at this
    /// revision.
    pub expected_revision: i64,
    /// The new state (the same one for a justification).
    pub state: String,
    pub events: Vec<NewAssignmentEvent>,
    pub submission: Option<NewSubmission>,
    pub reopen: Option<ReopenMark>,
    /// Justification of a submitted version.
    pub justification: Option<(u32, String)>,
    pub view: ViewChange,
    /// Cancel the assignment's pending reminder timers.
    pub cancel_timers: bool,
    /// The expert taking the seat; the old assignment records it as `replaced_by`.
    pub replacement: Option<NewAssignment>,
    /// Required with a replacement: the panel the draw was computed from.
    pub expected_panel: Option<Vec<(Uuid, i64)>>,
    pub recompute: Option<&'a Recompute<'a>>,
    pub at: DateTime<Utc>,
}

/// Why a review write was refused; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReviewConflict {
    /// The instance left the round's state (or the cycle is not the current one).
    RoundClosed,
    /// The assignment moved on since it was read.
    AssignmentChanged { state: String, revision: i64 },
    /// The panel changed since the write was computed.
    PanelChanged,
    /// The expert is (or was) on this panel already.
    AlreadyOnPanel { expert_id: Uuid },
    /// The expert has no profile, or is not active.
    NotInPool { expert_id: Uuid },
    /// The expert is at their workload cap.
    OverCap {
        expert_id: Uuid,
        load: u32,
        cap: u32,
    },
}

pub type ReviewWrite<T> = Result<T, ReviewConflict>;

/// The result of [`ReviewStore::change_assignment`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedAssignment {
    pub assignment: AssignmentRecord,
    pub replacement: Option<AssignmentRecord>,
}

/// The key prefix of an assignment's timers: `review:<assignment id>:`.
pub fn assignment_timer_prefix(assignment_id: Uuid) -> String {
    format!("review:{assignment_id}:")
}

/// The notify entry that addresses one expert: `expert:<user id>`.
pub fn expert_recipient(user_id: Uuid) -> String {
    format!("expert:{user_id}")
}

/// The user an `expert:<uuid>` notify entry names.
pub fn parse_expert_recipient(entry: &str) -> Option<Uuid> {
    entry
        .strip_prefix("expert:")
        .and_then(|id| Uuid::parse_str(id).ok())
}

#[async_trait]
pub trait ReviewStore: Send + Sync {
    // ---- the expert pool
    /// Create or replace the profile of `input.user_id` (a user).
    async fn upsert_expert_profile(&self, input: ExpertProfileInput) -> StoreResult<ExpertProfile>;
    async fn expert_profile(&self, user_id: Uuid) -> StoreResult<Option<ExpertProfile>>;
    /// Every profile, by user id.
    async fn expert_profiles(&self) -> StoreResult<Vec<ExpertProfile>>;
    async fn add_collaboration(&self, new: NewCollaboration) -> StoreResult<Collaboration>;
    /// Collaborations of one expert, or of everyone.
    async fn collaborations(&self, expert_id: Option<Uuid>) -> StoreResult<Vec<Collaboration>>;
    /// Open assignments (in open rounds, counting toward load) per expert.
    async fn open_loads(&self) -> StoreResult<Vec<(Uuid, u32)>>;

    // ---- applicants
    /// Replace the organisations an applicant asked to exclude (申请回避单位).
    async fn set_exclusions(
        &self,
        instance_id: Uuid,
        org_ids: &[Uuid],
        requested_by: Uuid,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn exclusions(&self, instance_id: Uuid) -> StoreResult<Vec<Uuid>>;
    /// Instances of `workflow_id` whose `data.call_id` is `call_id`, oldest first.
    async fn call_instances(&self, workflow_id: &str, call_id: &str) -> StoreResult<Vec<Instance>>;

    // ---- rounds
    /// The cycle of the round opened in `opens_in`, when the instance is in that state now:
    /// the version at which it entered it (0 when it started there).
    async fn round_cycle(&self, instance_id: Uuid, opens_in: &str) -> StoreResult<Option<i64>>;
    async fn round_records(
        &self,
        instance_id: Uuid,
        round_id: &str,
        cycle: i64,
    ) -> StoreResult<RoundRecords>;
    /// Every assignment of an instance, every round and cycle, oldest first.
    async fn instance_assignments(&self, instance_id: Uuid) -> StoreResult<Vec<AssignmentRecord>>;
    async fn assignment(&self, id: Uuid) -> StoreResult<AssignmentRecord>;
    /// Every assignment of `instance_ids` (every round and cycle), by instance, oldest
    /// first: [`Self::instance_assignments`] for a whole list in one read.
    async fn assignments_of(&self, instance_ids: &[Uuid]) -> StoreResult<Vec<AssignmentRecord>>;
    /// Per expert, how many of their assignments (open or closed) were ever marked
    /// overdue; experts without one are left out.
    async fn late_reviews(&self) -> StoreResult<Vec<(Uuid, u32)>>;
    /// An expert's assignments, newest first; only those of open rounds unless
    /// `include_closed`.
    async fn expert_queue(
        &self,
        expert_id: Uuid,
        include_closed: bool,
    ) -> StoreResult<Vec<AssignmentRecord>>;
    async fn create_assignments(
        &self,
        request: CreateAssignments<'_>,
    ) -> StoreResult<ReviewWrite<Vec<AssignmentRecord>>>;
    async fn change_assignment(
        &self,
        request: AssignmentChange<'_>,
    ) -> StoreResult<ReviewWrite<ChangedAssignment>>;
}

#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use chrono::{DateTime, Utc};
    pub use uuid::Uuid;
}

/// Implement [`ReviewStore`] for a wrapper store by delegating every method to one of its
/// fields (an `Arc<dyn Store>` or any other `ReviewStore`), e.g. for a test double that
/// counts or fails calls of the core [`crate::Store`] methods:
/// `grantflow_store::delegate_review_store!(CountingStore, inner);`. With a third
/// argument, `hook`, every method first runs `self.hook("method_name").await?` (the
/// counting store counts, fails or hangs review calls through it).
#[macro_export]
macro_rules! delegate_review_store {
    ($ty:ty, $field:ident $(, $hook:ident)?) => {
        #[$crate::review::__private::async_trait]
        impl $crate::review::ReviewStore for $ty {
            async fn upsert_expert_profile(
                &self,
                input: $crate::review::ExpertProfileInput,
            ) -> $crate::StoreResult<$crate::review::ExpertProfile> {
                $( self.$hook(stringify!(upsert_expert_profile)).await?; )?
                self.$field.upsert_expert_profile(input).await
            }
            async fn expert_profile(
                &self,
                user_id: $crate::review::__private::Uuid,
            ) -> $crate::StoreResult<Option<$crate::review::ExpertProfile>> {
                $( self.$hook(stringify!(expert_profile)).await?; )?
                self.$field.expert_profile(user_id).await
            }
            async fn expert_profiles(
                &self,
            ) -> $crate::StoreResult<Vec<$crate::review::ExpertProfile>> {
                $( self.$hook(stringify!(expert_profiles)).await?; )?
                self.$field.expert_profiles().await
            }
            async fn add_collaboration(
                &self,
                new: $crate::review::NewCollaboration,
            ) -> $crate::StoreResult<$crate::review::Collaboration> {
                $( self.$hook(stringify!(add_collaboration)).await?; )?
                self.$field.add_collaboration(new).await
            }
            async fn collaborations(
                &self,
                expert_id: Option<$crate::review::__private::Uuid>,
            ) -> $crate::StoreResult<Vec<$crate::review::Collaboration>> {
                $( self.$hook(stringify!(collaborations)).await?; )?
                self.$field.collaborations(expert_id).await
            }
            async fn open_loads(
                &self,
            ) -> $crate::StoreResult<Vec<($crate::review::__private::Uuid, u32)>> {
                $( self.$hook(stringify!(open_loads)).await?; )?
                self.$field.open_loads().await
            }
            async fn set_exclusions(
                &self,
                instance_id: $crate::review::__private::Uuid,
                org_ids: &[$crate::review::__private::Uuid],
                requested_by: $crate::review::__private::Uuid,
                at: $crate::review::__private::DateTime<$crate::review::__private::Utc>,
            ) -> $crate::StoreResult<()> {
                $( self.$hook(stringify!(set_exclusions)).await?; )?
                self.$field
                    .set_exclusions(instance_id, org_ids, requested_by, at)
                    .await
            }
            async fn exclusions(
                &self,
                instance_id: $crate::review::__private::Uuid,
            ) -> $crate::StoreResult<Vec<$crate::review::__private::Uuid>> {
                $( self.$hook(stringify!(exclusions)).await?; )?
                self.$field.exclusions(instance_id).await
            }
            async fn call_instances(
                &self,
                workflow_id: &str,
                call_id: &str,
            ) -> $crate::StoreResult<Vec<$crate::Instance>> {
                $( self.$hook(stringify!(call_instances)).await?; )?
                self.$field.call_instances(workflow_id, call_id).await
            }
            async fn round_cycle(
                &self,
                instance_id: $crate::review::__private::Uuid,
                opens_in: &str,
            ) -> $crate::StoreResult<Option<i64>> {
                $( self.$hook(stringify!(round_cycle)).await?; )?
                self.$field.round_cycle(instance_id, opens_in).await
            }
            async fn round_records(
                &self,
                instance_id: $crate::review::__private::Uuid,
                round_id: &str,
                cycle: i64,
            ) -> $crate::StoreResult<$crate::review::RoundRecords> {
                $( self.$hook(stringify!(round_records)).await?; )?
                self.$field
                    .round_records(instance_id, round_id, cycle)
                    .await
            }
            async fn instance_assignments(
                &self,
                instance_id: $crate::review::__private::Uuid,
            ) -> $crate::StoreResult<Vec<$crate::review::AssignmentRecord>> {
                $( self.$hook(stringify!(instance_assignments)).await?; )?
                self.$field.instance_assignments(instance_id).await
            }
            async fn assignment(
                &self,
                id: $crate::review::__private::Uuid,
            ) -> $crate::StoreResult<$crate::review::AssignmentRecord> {
                $( self.$hook(stringify!(assignment)).await?; )?
                self.$field.assignment(id).await
            }
            async fn assignments_of(
                &self,
                instance_ids: &[$crate::review::__private::Uuid],
            ) -> $crate::StoreResult<Vec<$crate::review::AssignmentRecord>> {
                $( self.$hook(stringify!(assignments_of)).await?; )?
                self.$field.assignments_of(instance_ids).await
            }
            async fn late_reviews(
                &self,
            ) -> $crate::StoreResult<Vec<($crate::review::__private::Uuid, u32)>> {
                $( self.$hook(stringify!(late_reviews)).await?; )?
                self.$field.late_reviews().await
            }
            async fn expert_queue(
                &self,
                expert_id: $crate::review::__private::Uuid,
                include_closed: bool,
            ) -> $crate::StoreResult<Vec<$crate::review::AssignmentRecord>> {
                $( self.$hook(stringify!(expert_queue)).await?; )?
                self.$field.expert_queue(expert_id, include_closed).await
            }
            async fn create_assignments(
                &self,
                request: $crate::review::CreateAssignments<'_>,
            ) -> $crate::StoreResult<
                $crate::review::ReviewWrite<Vec<$crate::review::AssignmentRecord>>,
            > {
                $( self.$hook(stringify!(create_assignments)).await?; )?
                self.$field.create_assignments(request).await
            }
            async fn change_assignment(
                &self,
                request: $crate::review::AssignmentChange<'_>,
            ) -> $crate::StoreResult<$crate::review::ReviewWrite<$crate::review::ChangedAssignment>>
            {
                $( self.$hook(stringify!(change_assignment)).await?; )?
                self.$field.change_assignment(request).await
            }
        }
    };
}
