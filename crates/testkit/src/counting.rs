//! `CountingStore`: a [`Store`] that delegates every method to an inner store and counts
//! the calls per method; it can also be told to fail one method with a backend error whose
//! message must never reach a client, or to never answer one (to meet a timeout).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use grantflow_domain::audit::HistoryRecord;
use grantflow_store::{
    Applied, ClaimedMessage, ClaimedTimer, DeliveryOutcome, ExtendDeadline, Instance,
    InstanceFilter, NewInstance, NewOrganisation, NewOutboxMessage, NewToken, NewUser,
    Organisation, OutboxMessage, OutboxStatus, Page, PageRequest, Role, Store, StoreError,
    StoreResult, Timer, TokenRecord, TransitionRequest, User, UserPatch, Visibility,
    WorkflowRecord,
};
use serde_json::Value;
use uuid::Uuid;

/// What an armed failure answers with: a detail that would help an attacker.
pub const SECRET_DETAIL: &str =
    "secret connection detail: postgres://grantflow:hunter2@db.internal";

pub struct CountingStore {
    inner: Arc<dyn Store>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
    fail: Mutex<Option<&'static str>>,
    hang: Mutex<Option<&'static str>>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            calls: Mutex::new(BTreeMap::new()),
            fail: Mutex::new(None),
            hang: Mutex::new(None),
        }
    }

    /// The calls per method since the last reset.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls.lock().unwrap().clone()
    }

    /// All calls since the last reset.
    pub fn total(&self) -> u64 {
        self.calls.lock().unwrap().values().sum()
    }

    pub fn reset(&self) {
        self.calls.lock().unwrap().clear();
    }

    /// From now on, `method` fails with `StoreError::Backend(SECRET_DETAIL)`.
    pub fn fail_on(&self, method: &'static str) {
        *self.fail.lock().unwrap() = Some(method);
    }

    /// From now on, calls of `method` never return (the caller's timeout must end them).
    pub fn hang_on(&self, method: &'static str) {
        *self.hang.lock().unwrap() = Some(method);
    }

    async fn hit(&self, method: &'static str) -> StoreResult<()> {
        *self.calls.lock().unwrap().entry(method).or_default() += 1;
        if *self.fail.lock().unwrap() == Some(method) {
            return Err(StoreError::Backend(SECRET_DETAIL.to_string()));
        }
        let hangs = *self.hang.lock().unwrap() == Some(method);
        if hangs {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

// Review and programme methods are counted (and can be failed or hung) like the others.
grantflow_store::delegate_review_store!(CountingStore, inner, hit);
grantflow_store::delegate_programme_store!(CountingStore, inner, hit);
// Public objections and third-party evaluation pass through uncounted.
grantflow_store::delegate_public_store!(CountingStore, inner);
grantflow_store::delegate_third_party_store!(CountingStore, inner);

#[async_trait]
impl Store for CountingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.hit("migrate").await?;
        self.inner.migrate().await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.hit("ping").await?;
        self.inner.ping().await
    }
    async fn announce(&self, payload: &str) -> StoreResult<()> {
        self.inner.announce(payload).await
    }
    fn pool_status(&self) -> grantflow_store::PoolStatus {
        self.inner.pool_status()
    }
}

#[async_trait]
impl grantflow_store::AccountStore for CountingStore {
    async fn create_org(&self, new: NewOrganisation) -> StoreResult<Organisation> {
        self.hit("create_org").await?;
        self.inner.create_org(new).await
    }

    async fn get_org(&self, id: Uuid) -> StoreResult<Organisation> {
        self.hit("get_org").await?;
        self.inner.get_org(id).await
    }

    async fn get_orgs(&self, ids: &[Uuid]) -> StoreResult<Vec<Organisation>> {
        self.hit("get_orgs").await?;
        self.inner.get_orgs(ids).await
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Organisation>> {
        self.hit("list_orgs").await?;
        self.inner.list_orgs().await
    }

    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        self.hit("create_user").await?;
        self.inner.create_user(new).await
    }

    async fn get_user(&self, id: Uuid) -> StoreResult<User> {
        self.hit("get_user").await?;
        self.inner.get_user(id).await
    }

    async fn get_users(&self, ids: &[Uuid]) -> StoreResult<Vec<User>> {
        self.hit("get_users").await?;
        self.inner.get_users(ids).await
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        self.hit("find_user_by_username").await?;
        self.inner.find_user_by_username(username).await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.hit("find_user_by_email").await?;
        self.inner.find_user_by_email(email).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.hit("list_users").await?;
        self.inner.list_users().await
    }

    async fn update_user(&self, id: Uuid, patch: UserPatch) -> StoreResult<User> {
        self.hit("update_user").await?;
        self.inner.update_user(id, patch).await
    }

    async fn set_password_hash(&self, id: Uuid, password_hash: &str) -> StoreResult<()> {
        self.hit("set_password_hash").await?;
        self.inner.set_password_hash(id, password_hash).await
    }

    async fn change_password(
        &self,
        id: Uuid,
        password_hash: &str,
        keep: Uuid,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        self.hit("change_password").await?;
        self.inner
            .change_password(id, password_hash, keep, at)
            .await
    }

    async fn users_with_role(&self, role: Role, orgs: Option<&[Uuid]>) -> StoreResult<Vec<User>> {
        self.hit("users_with_role").await?;
        self.inner.users_with_role(role, orgs).await
    }

    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord> {
        self.hit("create_token").await?;
        self.inner.create_token(new).await
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.hit("find_token").await?;
        self.inner.find_token(token_hash).await
    }

    async fn revoke_token(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        self.hit("revoke_token").await?;
        self.inner.revoke_token(id, at).await
    }

    async fn revoke_user_tokens(&self, user_id: Uuid, at: DateTime<Utc>) -> StoreResult<u64> {
        self.hit("revoke_user_tokens").await?;
        self.inner.revoke_user_tokens(user_id, at).await
    }

    async fn list_tokens(&self, user_id: Uuid) -> StoreResult<Vec<TokenRecord>> {
        self.hit("list_tokens").await?;
        self.inner.list_tokens(user_id).await
    }

    async fn create_reset_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.hit("create_reset_token").await?;
        self.inner
            .create_reset_token(user_id, token_hash, expires_at)
            .await
    }

    async fn check_reset_token(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Uuid> {
        self.hit("check_reset_token").await?;
        self.inner.check_reset_token(token_hash, now).await
    }

    async fn consume_reset_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        new_password_hash: &str,
    ) -> StoreResult<Uuid> {
        self.hit("consume_reset_token").await?;
        self.inner
            .consume_reset_token(token_hash, now, new_password_hash)
            .await
    }
}

#[async_trait]
impl grantflow_store::InstanceStore for CountingStore {
    async fn save_workflow(&self, record: WorkflowRecord) -> StoreResult<()> {
        self.hit("save_workflow").await?;
        self.inner.save_workflow(record).await
    }

    async fn list_workflows(&self) -> StoreResult<Vec<WorkflowRecord>> {
        self.hit("list_workflows").await?;
        self.inner.list_workflows().await
    }

    async fn create_instance(&self, new: NewInstance) -> StoreResult<Instance> {
        self.hit("create_instance").await?;
        self.inner.create_instance(new).await
    }

    async fn get_instance(&self, id: Uuid) -> StoreResult<Instance> {
        self.hit("get_instance").await?;
        self.inner.get_instance(id).await
    }

    async fn get_instances(&self, ids: &[Uuid]) -> StoreResult<Vec<Instance>> {
        self.hit("get_instances").await?;
        self.inner.get_instances(ids).await
    }

    async fn list_instances(
        &self,
        visibility: &Visibility,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Instance>> {
        self.hit("list_instances").await?;
        self.inner.list_instances(visibility, filter, page).await
    }

    async fn is_assigned_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        self.hit("is_assigned_expert").await?;
        self.inner.is_assigned_expert(instance_id, user_id).await
    }

    async fn assigned_instances(
        &self,
        user_id: Uuid,
        instance_ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>> {
        self.hit("assigned_instances").await?;
        self.inner.assigned_instances(user_id, instance_ids).await
    }

    async fn assign_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<()> {
        self.hit("assign_expert").await?;
        self.inner.assign_expert(instance_id, user_id).await
    }

    async fn recipients(&self, instance: &Instance, roles: &[String]) -> StoreResult<Vec<User>> {
        self.hit("recipients").await?;
        self.inner.recipients(instance, roles).await
    }

    async fn apply_transition(&self, request: TransitionRequest<'_>) -> StoreResult<Applied> {
        self.hit("apply_transition").await?;
        self.inner.apply_transition(request).await
    }

    async fn extend_deadline(&self, request: ExtendDeadline) -> StoreResult<Applied> {
        self.hit("extend_deadline").await?;
        self.inner.extend_deadline(request).await
    }

    async fn migrate_instance(
        &self,
        request: grantflow_store::MigrateInstance,
    ) -> StoreResult<Applied> {
        self.hit("migrate_instance").await?;
        self.inner.migrate_instance(request).await
    }

    async fn set_review_result(&self, instance_id: Uuid, review: Value) -> StoreResult<()> {
        self.hit("set_review_result").await?;
        self.inner.set_review_result(instance_id, review).await
    }

    async fn history(&self, instance_id: Uuid) -> StoreResult<Vec<HistoryRecord>> {
        self.hit("history").await?;
        self.inner.history(instance_id).await
    }

    async fn instance_ids(&self) -> StoreResult<Vec<Uuid>> {
        self.hit("instance_ids").await?;
        self.inner.instance_ids().await
    }

    async fn instances_due_before(&self, until: DateTime<Utc>) -> StoreResult<Vec<Instance>> {
        self.hit("instances_due_before").await?;
        self.inner.instances_due_before(until).await
    }

    async fn audit_page(
        &self,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> StoreResult<grantflow_store::AuditPage> {
        self.hit("audit_page").await?;
        self.inner.audit_page(after, limit).await
    }
}

#[async_trait]
impl grantflow_store::TimerStore for CountingStore {
    async fn timers_for_instance(&self, instance_id: Uuid) -> StoreResult<Vec<Timer>> {
        self.hit("timers_for_instance").await?;
        self.inner.timers_for_instance(instance_id).await
    }

    async fn claim_due_timers(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedTimer>> {
        self.hit("claim_due_timers").await?;
        self.inner.claim_due_timers(now, limit, lease).await
    }

    async fn complete_timer(
        &self,
        timer_id: Uuid,
        token: i64,
        messages: Vec<NewOutboxMessage>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.hit("complete_timer").await?;
        self.inner
            .complete_timer(timer_id, token, messages, now)
            .await
    }

    async fn next_timer_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.hit("next_timer_at").await?;
        self.inner.next_timer_at().await
    }

    async fn pending_timer_count(&self) -> StoreResult<i64> {
        self.hit("pending_timer_count").await?;
        self.inner.pending_timer_count().await
    }
    async fn queue_stats(&self, now: DateTime<Utc>) -> StoreResult<grantflow_store::QueueStats> {
        self.hit("queue_stats").await?;
        self.inner.queue_stats(now).await
    }
    async fn release_claims(
        &self,
        timers: &[(Uuid, i64)],
        messages: &[(Uuid, i64)],
    ) -> StoreResult<u64> {
        self.hit("release_claims").await?;
        self.inner.release_claims(timers, messages).await
    }
}

#[async_trait]
impl grantflow_store::OutboxStore for CountingStore {
    async fn enqueue(&self, messages: Vec<NewOutboxMessage>) -> StoreResult<u64> {
        self.hit("enqueue").await?;
        self.inner.enqueue(messages).await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedMessage>> {
        self.hit("claim_outbox").await?;
        self.inner.claim_outbox(now, limit, lease).await
    }

    async fn finish_delivery(
        &self,
        id: Uuid,
        token: i64,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.hit("finish_delivery").await?;
        self.inner.finish_delivery(id, token, outcome, now).await
    }

    async fn list_outbox(
        &self,
        status: Option<OutboxStatus>,
        instance_id: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        self.hit("list_outbox").await?;
        self.inner.list_outbox(status, instance_id, limit).await
    }

    async fn record_tick(
        &self,
        schedule: &str,
        tick_at: DateTime<Utc>,
        messages: Vec<NewOutboxMessage>,
    ) -> StoreResult<bool> {
        self.hit("record_tick").await?;
        self.inner.record_tick(schedule, tick_at, messages).await
    }

    async fn last_tick(&self, schedule: &str) -> StoreResult<Option<DateTime<Utc>>> {
        self.hit("last_tick").await?;
        self.inner.last_tick(schedule).await
    }
}
