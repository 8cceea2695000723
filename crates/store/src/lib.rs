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

pub mod accounts;
pub mod audit;
#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "bench")]
pub mod bench_scale;
pub mod error;
pub mod funding;
pub mod instances;
pub mod model;
pub mod outbox;
pub mod programme;
pub mod public;
pub mod review;
#[cfg(feature = "sql")]
pub mod sql;
pub mod support;
pub mod third_party;
pub mod timers;

#[cfg(feature = "conformance")]
pub mod conformance;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use grantflow_domain::engine::{EngineError, TransitionPlan};
use grantflow_domain::schedule::TimerPlan;
use serde_json::Value;
use uuid::Uuid;

pub use accounts::AccountStore;
pub use error::{StoreError, StoreResult};
pub use instances::InstanceStore;

/// The PostgreSQL notification channel on which replicas announce committed transitions.
pub const EVENTS_CHANNEL: &str = "grantflow_events";
pub use model::*;
pub use outbox::OutboxStore;
pub use programme::ProgrammeStore;
pub use public::PublicStore;
pub use review::ReviewStore;
pub use third_party::ThirdPartyStore;
pub use timers::TimerStore;

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
    /// Money written in the same transaction (an approval's funding against the call's
    /// plan, budget lines of an approved change); refused with [`StoreError::Money`].
    pub money: Option<funding::MoneyEffects>,
    /// Refuse with [`StoreError::ObjectionsOpen`] while a public objection on the instance
    /// is open, counted inside the transaction with the instance locked, so an objection
    /// committed before this transition is never missed (the caller decides which events
    /// wait for objections).
    pub refuse_while_objected: bool,
    /// Who asks, when a person does: the instance is read (and locked) only if they may
    /// see it, else [`StoreError::NotFound`] exactly as for a missing instance. `None`
    /// (the scheduler) sees every instance.
    pub requester: Option<Requester>,
}

/// The instances a person may see, as the union of their scopes (one per role that shows
/// instances). The store checks it with the same SQL condition as the listings, on the
/// row it locks for a transition, so a transition reads the instance once, inside its
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// Empty: the person sees nothing.
    pub scopes: Vec<Visibility>,
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
    pub lang: Option<Lang>,
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

/// Everything the services ask of a database: one trait per aggregate, each with its SQL in
/// one file of `crate::sql`. Code holding a `dyn Store` calls all of them.
#[async_trait]
pub trait Store:
    AccountStore
    + InstanceStore
    + TimerStore
    + OutboxStore
    + ProgrammeStore
    + PublicStore
    + ThirdPartyStore
    + ReviewStore
    + Send
    + Sync
    + 'static
{
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
    /// [`InstanceStore::apply_transition`], and the announcement `announce` makes of the
    /// applied change (not of a replay). On PostgreSQL the `NOTIFY` is sent inside the
    /// transaction (`pg_notify` is transactional): it is delivered exactly when the
    /// change commits, so a crash between the commit and the announcement cannot lose it.
    /// This default announces after the commit (a failed announcement is logged).
    async fn apply_transition_announced(
        &self,
        request: TransitionRequest<'_>,
        announce: &Announcer<'_>,
    ) -> StoreResult<Applied> {
        let applied = self.apply_transition(request).await?;
        if !applied.replayed
            && let Some(payload) = announce(&applied)
            && let Err(_e) = self.announce(&payload).await
        {
            // The change is committed: it is not undone for a lost announcement.
            #[cfg(feature = "sql")]
            tracing::warn!(error = %_e, instance_id = %applied.instance.id, "cannot announce a transition");
        }
        Ok(applied)
    }
    /// The connection pool's state (for `/metrics`).
    fn pool_status(&self) -> PoolStatus;
}

/// What a committed transition is announced with to the other replicas (`None`: not at
/// all), see [`Store::apply_transition_announced`].
pub type Announcer<'a> = dyn Fn(&Applied) -> Option<String> + Send + Sync + 'a;

/// The idempotency key as stored: scoped by actor so two users cannot collide.
pub fn scoped_key(actor_id: &str, key: &str) -> String {
    format!("{actor_id}:{key}")
}

/// The key of a notification email: one per instance version, template and recipient.
pub fn notification_key(instance_id: Uuid, version: i64, template: &str, user_id: Uuid) -> String {
    format!("notify:{instance_id}:{version}:{template}:{user_id}")
}
