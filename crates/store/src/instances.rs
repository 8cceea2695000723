//! [`InstanceStore`]: workflow definitions, instances, transitions and their hash-chained
//! history, expert grants.
//! Its SQL, the same for every backend, and its implementation for every `SqlBackend` are
//! in `crate::sql::instances` and `crate::sql::transitions` (feature `sql`); [`crate::Store`] is all the aggregates together.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use grantflow_domain::audit::HistoryRecord;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    Applied, AuditPage, ExtendDeadline, Instance, InstanceFilter, MigrateInstance, NewInstance,
    Page, PageRequest, StoreResult, TransitionRequest, User, Visibility, WorkflowRecord,
};

/// Workflow definitions, instances, transitions and their hash-chained history, expert grants.
#[async_trait]
pub trait InstanceStore: Send + Sync {
    /// Store a definition by id, version and hash. Saving the same id and version with a
    /// different hash is refused: released versions never change.
    async fn save_workflow(&self, record: WorkflowRecord) -> StoreResult<()>;
    async fn list_workflows(&self) -> StoreResult<Vec<WorkflowRecord>>;
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
    /// Up to `limit` instances created after `after` (their `(created_at, id)`, oldest
    /// first), each with its history in sequence order, in a bounded read: `audit verify`
    /// walks every chain a page at a time instead of holding the whole history.
    async fn audit_page(
        &self,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> StoreResult<AuditPage>;
    /// Keys (`(created_at, id)`) that cut the instances into `parts` ranges of about the
    /// same size, in order, so that `audit verify` can read the ranges at once; fewer
    /// (none) when there are too few instances or the store cannot tell.
    async fn audit_split(&self, _parts: u32) -> StoreResult<Vec<(DateTime<Utc>, Uuid)>> {
        Ok(Vec::new())
    }
}
