//! The storage abstraction of grantflow. Backends (`grantflow-store-sqlite`,
//! `grantflow-store-postgres`) implement [`Store`]; everything else talks to the trait.
//! No database types appear here.
//!
//! Every method that changes more than one row does so in one transaction.

// Of the workspace's style lints, these are not applied to the store yet (its code was
// being unified when they were adopted); new code follows them anyway.
#![allow(
    clippy::use_self,
    clippy::needless_pass_by_value,
    clippy::semicolon_if_nothing_returned
)]

pub mod audit;
pub mod bench;
pub mod error;
pub mod model;
pub mod programme;
pub mod review;
#[cfg(feature = "sql")]
pub mod sql;
pub mod support;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use grantflow_domain::audit::HistoryRecord;
use grantflow_domain::engine::{EngineError, TransitionPlan};
use grantflow_domain::schedule::TimerPlan;
use serde_json::Value;
use uuid::Uuid;

pub use error::{StoreError, StoreResult};

/// The PostgreSQL notification channel on which replicas announce committed transitions.
pub const EVENTS_CHANNEL: &str = "grantflow_events";
pub use model::*;
pub use programme::ProgrammeStore;
pub use review::ReviewStore;

/// What a transition planner returns: the engine's plan, and the facts templates need to
/// write notification emails about it.
#[derive(Debug, Clone)]
pub struct PlannedChange {
    pub plan: TransitionPlan,
    /// Merged into every notification email's context (instance title, event title, …).
    pub notification_context: Value,
}

/// Runs the engine against the instance as read inside the transaction.
pub type Planner<'a> = dyn Fn(&Instance) -> Result<PlannedChange, EngineError> + Send + Sync + 'a;

/// Apply one event to one instance.
pub struct TransitionRequest<'a> {
    pub instance_id: Uuid,
    /// Refuse with [`StoreError::Conflict`] unless the instance is at this version. `None`
    /// (the scheduler) applies to whatever version is current.
    pub expected_version: Option<i64>,
    /// A repeated request with the same key (per actor) returns the first result and
    /// changes nothing.
    pub idempotency_key: Option<String>,
    /// A hash of the request (event, input, reason, expected version) to tell a genuine
    /// retry from a reused key.
    pub request_hash: String,
    pub actor_id: String,
    pub planner: &'a Planner<'a>,
    /// The timeout timer this transition consumes, with its fencing token.
    pub complete_timer: Option<(Uuid, i64)>,
}

/// Move the current state's deadline (a manager's extension, with a reason).
#[derive(Debug, Clone)]
pub struct ExtendDeadline {
    pub instance_id: Uuid,
    pub expected_version: i64,
    pub new_due_at: DateTime<Utc>,
    pub timers: Vec<TimerPlan>,
    pub actor_id: String,
    pub actor_roles: Vec<String>,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Move an instance to another version of its workflow along a validated state mapping
/// (see `grantflow_domain::migrate`), as one audited event.
#[derive(Debug, Clone)]
pub struct MigrateInstance {
    pub instance_id: Uuid,
    pub expected_version: i64,
    pub from_workflow_version: u32,
    pub to_workflow_version: u32,
    pub to_state: String,
    pub to_stage: String,
    pub to_final: bool,
    pub due_at: Option<DateTime<Utc>>,
    /// The timers of the new state entry; every pending timer of the instance is cancelled.
    pub timers: Vec<TimerPlan>,
    pub actor_id: String,
    pub actor_roles: Vec<String>,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Fields of a user that an admin (or the user) can change.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub roles: Option<Vec<Role>>,
    pub org_id: Option<Option<Uuid>>,
    pub lang: Option<String>,
    pub notify_pref: Option<NotifyPref>,
    pub active: Option<bool>,
}

/// SQL (the same on every backend) that holds while the grant `e` (a row of
/// `expert_assignments`) still shows instance `i` to its expert. A grant made by a review
/// round lasts while the round is open, i.e. while the instance is in the round's
/// `opens_in` state; afterwards the expert keeps only their review form and scores
/// (`myReviews(includeClosed: true)`, `reviewForm`), never the project's later budget,
/// execution or evaluation. A grant with no review assignment behind it is not limited.
pub const EXPERT_GRANT_IS_LIVE: &str = "(NOT EXISTS (SELECT 1 FROM review_assignments ra \
     WHERE ra.instance_id = e.instance_id AND ra.expert_id = e.user_id) \
     OR EXISTS (SELECT 1 FROM review_assignments ra WHERE ra.instance_id = e.instance_id \
     AND ra.expert_id = e.user_id AND ra.opens_in = i.state))";

#[async_trait]
pub trait Store: ProgrammeStore + ReviewStore + Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Apply pending migrations (idempotent).
    async fn migrate(&self) -> StoreResult<()>;
    /// Readiness: the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Announce a committed change to the other processes on the same database
    /// (PostgreSQL `NOTIFY` on [`EVENTS_CHANNEL`]); nothing on SQLite, which serves one
    /// process.
    async fn announce(&self, payload: &str) -> StoreResult<()>;
    /// The connection pool's state (for `/metrics`).
    fn pool_status(&self) -> PoolStatus;

    // ---- organisations
    async fn create_org(&self, new: NewOrganisation) -> StoreResult<Organisation>;
    async fn get_org(&self, id: Uuid) -> StoreResult<Organisation>;
    async fn get_orgs(&self, ids: &[Uuid]) -> StoreResult<Vec<Organisation>>;
    async fn list_orgs(&self) -> StoreResult<Vec<Organisation>>;

    // ---- users
    async fn create_user(&self, new: NewUser) -> StoreResult<User>;
    async fn get_user(&self, id: Uuid) -> StoreResult<User>;
    async fn get_users(&self, ids: &[Uuid]) -> StoreResult<Vec<User>>;
    /// The user and their password hash, for login.
    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<(User, String)>>;
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn update_user(&self, id: Uuid, patch: UserPatch) -> StoreResult<User>;
    async fn set_password_hash(&self, id: Uuid, password_hash: &str) -> StoreResult<()>;
    /// In one transaction: set the password hash and revoke every live token of the user
    /// but `keep` (the session that changed it). Returns how many were revoked.
    async fn change_password(
        &self,
        id: Uuid,
        password_hash: &str,
        keep: Uuid,
        at: DateTime<Utc>,
    ) -> StoreResult<u64>;
    /// Active users holding `role`, optionally only in the given organisations.
    async fn users_with_role(&self, role: Role, orgs: Option<&[Uuid]>) -> StoreResult<Vec<User>>;

    // ---- credentials
    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord>;
    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>>;
    async fn revoke_token(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()>;
    /// Revoke every token of a user; returns how many were live.
    async fn revoke_user_tokens(&self, user_id: Uuid, at: DateTime<Utc>) -> StoreResult<u64>;
    async fn list_tokens(&self, user_id: Uuid) -> StoreResult<Vec<TokenRecord>>;
    async fn create_reset_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The user of an unused, unexpired reset token (`InvalidToken` otherwise), changing
    /// nothing: checked before the new password is hashed, which is expensive.
    async fn check_reset_token(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Uuid>;
    /// In one transaction: check the reset token is unused and unexpired, mark it used,
    /// set the new password hash and revoke the user's tokens. Returns the user id.
    async fn consume_reset_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        new_password_hash: &str,
    ) -> StoreResult<Uuid>;

    // ---- workflow definitions
    /// Store a definition by id, version and hash. Saving the same id and version with a
    /// different hash is refused: released versions never change.
    async fn save_workflow(&self, record: WorkflowRecord) -> StoreResult<()>;
    async fn list_workflows(&self) -> StoreResult<Vec<WorkflowRecord>>;

    // ---- instances
    /// Create an instance with its initial timers, in one transaction.
    async fn create_instance(&self, new: NewInstance) -> StoreResult<Instance>;
    async fn get_instance(&self, id: Uuid) -> StoreResult<Instance>;
    async fn get_instances(&self, ids: &[Uuid]) -> StoreResult<Vec<Instance>>;
    async fn list_instances(
        &self,
        visibility: &Visibility,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Instance>>;
    /// Whether an expert is assigned to review an instance.
    async fn is_assigned_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<bool>;
    /// Of `instance_ids`, those `user_id` is assigned to review, in one statement (the
    /// visibility of a page of instances for an expert).
    async fn assigned_instances(
        &self,
        user_id: Uuid,
        instance_ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>>;
    async fn assign_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<()>;
    /// Users who should receive mail about an instance for each of `roles`: the unit's
    /// applicants, the city's bureau, every manager, the assigned experts, admins.
    async fn recipients(&self, instance: &Instance, roles: &[String]) -> StoreResult<Vec<User>>;

    /// In one transaction: read the instance, run the planner, write the new state only if
    /// the version is still the expected one, append the history record (hash-chained),
    /// cancel the old state's timers and schedule the new ones, enqueue notification
    /// emails, remember the idempotency key, and complete the consumed timer.
    async fn apply_transition(&self, request: TransitionRequest<'_>) -> StoreResult<Applied>;
    /// In one transaction: move `due_at`, replace the pending timers of the current state
    /// and append a history record (`extend_deadline`).
    async fn extend_deadline(&self, request: ExtendDeadline) -> StoreResult<Applied>;
    /// In one transaction: move the instance to another workflow version and state
    /// (refused unless it is at `expected_version` and on `from_workflow_version`), replace
    /// its timers and append a history record (`migrate_version`).
    async fn migrate_instance(&self, request: MigrateInstance) -> StoreResult<Applied>;
    /// Set the aggregated review result that guards read as `review`.
    async fn set_review_result(&self, instance_id: Uuid, review: Value) -> StoreResult<()>;
    async fn history(&self, instance_id: Uuid) -> StoreResult<Vec<HistoryRecord>>;
    /// Every instance id, oldest first (for `audit verify`).
    async fn instance_ids(&self) -> StoreResult<Vec<Uuid>>;
    /// Non-final instances whose deadline is at or before `until` (for digests).
    async fn instances_due_before(&self, until: DateTime<Utc>) -> StoreResult<Vec<Instance>>;

    // ---- timers
    async fn timers_for_instance(&self, instance_id: Uuid) -> StoreResult<Vec<Timer>>;
    /// Claim up to `limit` pending timers due at `now`, or claimed ones whose lease ran
    /// out. Each claim gets a new fencing token; two processes never hold the same timer.
    async fn claim_due_timers(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedTimer>>;
    /// Mark a claimed timer done and enqueue its messages, in one transaction. Returns
    /// false (and changes nothing) when the token is stale.
    async fn complete_timer(
        &self,
        timer_id: Uuid,
        token: i64,
        messages: Vec<NewOutboxMessage>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// The earliest pending fire time, to know how long the scheduler may wait.
    async fn next_timer_at(&self) -> StoreResult<Option<DateTime<Utc>>>;
    async fn pending_timer_count(&self) -> StoreResult<i64>;
    /// Timers and outbox messages by status at `now` (for `/metrics`).
    async fn queue_stats(&self, now: DateTime<Utc>) -> StoreResult<QueueStats>;
    /// Give claims back before their lease runs out (a scheduler shutting down): each
    /// `(id, token)` still held with that token becomes pending again at once, a message
    /// without counting the attempt it did not make. Returns how many were released.
    async fn release_claims(
        &self,
        timers: &[(Uuid, i64)],
        messages: &[(Uuid, i64)],
    ) -> StoreResult<u64>;

    // ---- outbox
    /// Enqueue messages; a key already present is skipped. Returns how many were new.
    async fn enqueue(&self, messages: Vec<NewOutboxMessage>) -> StoreResult<u64>;
    /// Claim messages whose next attempt is due (or whose lease ran out), with a token.
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedMessage>>;
    /// Record how an attempt ended; false when the token is stale.
    async fn finish_delivery(
        &self,
        id: Uuid,
        token: i64,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn list_outbox(
        &self,
        status: Option<OutboxStatus>,
        instance_id: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>>;

    // ---- cron ticks
    /// Record that `schedule` ticked at `tick_at` and enqueue its messages, in one
    /// transaction. False when that tick was already recorded (another process ran it).
    async fn record_tick(
        &self,
        schedule: &str,
        tick_at: DateTime<Utc>,
        messages: Vec<NewOutboxMessage>,
    ) -> StoreResult<bool>;
    async fn last_tick(&self, schedule: &str) -> StoreResult<Option<DateTime<Utc>>>;
}

/// The idempotency key as stored: scoped by actor so two users cannot collide.
pub fn scoped_key(actor_id: &str, key: &str) -> String {
    format!("{actor_id}:{key}")
}

/// The key of a notification email: one per instance version, template and recipient.
pub fn notification_key(instance_id: Uuid, version: i64, template: &str, user_id: Uuid) -> String {
    format!("notify:{instance_id}:{version}:{template}:{user_id}")
}
