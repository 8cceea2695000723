//! [`Store`] for every [`SqlBackend`]: the trait's methods, each forwarded once to the
//! aggregate module that writes it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use grantflow_domain::audit::HistoryRecord;
use serde_json::Value;
use uuid::Uuid;

use super::{Args, Dialect, Fail, SqlBackend, accounts, execute, instances, listing, queue};
use crate::{
    Applied, ClaimedMessage, ClaimedTimer, DeliveryOutcome, ExtendDeadline, Instance,
    InstanceFilter, MigrateInstance, NewInstance, NewOrganisation, NewOutboxMessage, NewToken,
    NewUser, Organisation, OutboxMessage, OutboxStatus, Page, PageRequest, PoolStatus, QueueStats,
    Role, Store, StoreResult, Timer, TokenRecord, TransitionRequest, User, UserPatch, Visibility,
    WorkflowRecord,
};

#[async_trait::async_trait]
impl<S: SqlBackend> Store for S {
    fn backend(&self) -> &'static str {
        <S::D as Dialect>::BACKEND
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.run_migrations().await
    }

    async fn ping(&self) -> StoreResult<()> {
        execute::<S::D>(self.sql_pool(), "SELECT 1", Args::new())
            .await
            .map_err(Fail::store::<S::D>)?;
        Ok(())
    }

    async fn announce(&self, payload: &str) -> StoreResult<()> {
        if <S::D as Dialect>::BACKEND != "postgres" {
            return Ok(());
        }
        let sql = format!("SELECT pg_notify('{}', $1)", crate::EVENTS_CHANNEL);
        execute::<S::D>(self.sql_pool(), &sql, Args::new().text(payload))
            .await
            .map_err(Fail::store::<S::D>)?;
        Ok(())
    }

    fn pool_status(&self) -> PoolStatus {
        let pool = self.sql_pool();
        PoolStatus {
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        }
    }

    // ---- accounts (`grantflow_store::sql::accounts`)

    async fn create_org(&self, new: NewOrganisation) -> StoreResult<Organisation> {
        accounts::create_org::<S::D>(self.sql_pool(), new).await
    }

    async fn get_org(&self, id: Uuid) -> StoreResult<Organisation> {
        accounts::get_org::<S::D>(self.sql_pool(), id).await
    }

    async fn get_orgs(&self, ids: &[Uuid]) -> StoreResult<Vec<Organisation>> {
        accounts::get_orgs::<S::D>(self.sql_pool(), ids).await
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Organisation>> {
        accounts::list_orgs::<S::D>(self.sql_pool()).await
    }

    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        accounts::create_user::<S::D>(self.sql_pool(), new).await
    }

    async fn get_user(&self, id: Uuid) -> StoreResult<User> {
        accounts::get_user::<S::D>(self.sql_pool(), id).await
    }

    async fn get_users(&self, ids: &[Uuid]) -> StoreResult<Vec<User>> {
        accounts::get_users::<S::D>(self.sql_pool(), ids).await
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        accounts::find_user_by_username::<S::D>(self.sql_pool(), username).await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        accounts::find_user_by_email::<S::D>(self.sql_pool(), email).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        accounts::list_users::<S::D>(self.sql_pool()).await
    }

    async fn update_user(&self, id: Uuid, patch: UserPatch) -> StoreResult<User> {
        accounts::update_user::<S::D>(self.sql_pool(), id, patch).await
    }

    async fn set_password_hash(&self, id: Uuid, password_hash: &str) -> StoreResult<()> {
        accounts::set_password_hash::<S::D>(self.sql_pool(), id, password_hash).await
    }

    async fn users_with_role(&self, role: Role, orgs: Option<&[Uuid]>) -> StoreResult<Vec<User>> {
        accounts::users_with_role::<S::D>(self.sql_pool(), role, orgs).await
    }

    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord> {
        accounts::create_token::<S::D>(self.sql_pool(), new).await
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        accounts::find_token::<S::D>(self.sql_pool(), token_hash).await
    }

    async fn revoke_token(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        accounts::revoke_token::<S::D>(self.sql_pool(), id, at).await
    }

    async fn revoke_user_tokens(&self, user_id: Uuid, at: DateTime<Utc>) -> StoreResult<u64> {
        accounts::revoke_user_tokens::<S::D>(self.sql_pool(), user_id, at).await
    }

    async fn list_tokens(&self, user_id: Uuid) -> StoreResult<Vec<TokenRecord>> {
        accounts::list_tokens::<S::D>(self.sql_pool(), user_id).await
    }

    async fn create_reset_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        accounts::create_reset_token::<S::D>(self.sql_pool(), user_id, token_hash, expires_at).await
    }

    async fn change_password(
        &self,
        id: Uuid,
        password_hash: &str,
        keep: Uuid,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        accounts::change_password::<S::D>(self.sql_pool(), id, password_hash, keep, at).await
    }

    async fn check_reset_token(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Uuid> {
        accounts::check_reset_token::<S::D>(self.sql_pool(), token_hash, now).await
    }

    async fn consume_reset_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        new_password_hash: &str,
    ) -> StoreResult<Uuid> {
        accounts::consume_reset_token::<S::D>(self.sql_pool(), token_hash, now, new_password_hash)
            .await
    }

    // ---- workflows, instances, history (`grantflow_store::sql::instances`)

    async fn save_workflow(&self, record: WorkflowRecord) -> StoreResult<()> {
        instances::save_workflow::<S::D>(self.sql_pool(), record).await
    }

    async fn list_workflows(&self) -> StoreResult<Vec<WorkflowRecord>> {
        instances::list_workflows::<S::D>(self.sql_pool()).await
    }

    async fn create_instance(&self, new: NewInstance) -> StoreResult<Instance> {
        instances::create_instance::<S::D>(self.sql_pool(), new).await
    }

    async fn get_instance(&self, id: Uuid) -> StoreResult<Instance> {
        instances::get_instance::<S::D>(self.sql_pool(), id).await
    }

    async fn get_instances(&self, ids: &[Uuid]) -> StoreResult<Vec<Instance>> {
        instances::get_instances::<S::D>(self.sql_pool(), ids).await
    }

    async fn list_instances(
        &self,
        visibility: &Visibility,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Instance>> {
        listing::list_instances::<S::D>(self.sql_pool(), visibility, filter, page).await
    }

    async fn is_assigned_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        instances::is_assigned_expert::<S::D>(self.sql_pool(), instance_id, user_id).await
    }

    async fn assigned_instances(
        &self,
        user_id: Uuid,
        instance_ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>> {
        instances::assigned_instances::<S::D>(self.sql_pool(), user_id, instance_ids).await
    }

    async fn assign_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<()> {
        instances::assign_expert::<S::D>(self.sql_pool(), instance_id, user_id).await
    }

    async fn recipients(&self, instance: &Instance, roles: &[String]) -> StoreResult<Vec<User>> {
        instances::recipients::<S::D>(self.sql_pool(), instance, roles).await
    }

    async fn apply_transition(&self, request: TransitionRequest<'_>) -> StoreResult<Applied> {
        instances::apply_transition::<S::D>(self.sql_pool(), request).await
    }

    async fn extend_deadline(&self, request: ExtendDeadline) -> StoreResult<Applied> {
        instances::extend_deadline::<S::D>(self.sql_pool(), request).await
    }

    async fn migrate_instance(&self, request: MigrateInstance) -> StoreResult<Applied> {
        instances::migrate_instance::<S::D>(self.sql_pool(), request).await
    }

    async fn set_review_result(&self, instance_id: Uuid, review: Value) -> StoreResult<()> {
        instances::set_review_result::<S::D>(self.sql_pool(), instance_id, review).await
    }

    async fn history(&self, instance_id: Uuid) -> StoreResult<Vec<HistoryRecord>> {
        instances::history::<S::D>(self.sql_pool(), instance_id).await
    }

    async fn instance_ids(&self) -> StoreResult<Vec<Uuid>> {
        instances::instance_ids::<S::D>(self.sql_pool()).await
    }

    async fn instances_due_before(&self, until: DateTime<Utc>) -> StoreResult<Vec<Instance>> {
        instances::instances_due_before::<S::D>(self.sql_pool(), until).await
    }

    // ---- timers, outbox and cron ticks (`grantflow_store::sql::queue`)

    async fn timers_for_instance(&self, instance_id: Uuid) -> StoreResult<Vec<Timer>> {
        queue::timers_for_instance::<S::D>(self.sql_pool(), instance_id).await
    }

    async fn claim_due_timers(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedTimer>> {
        queue::claim_due_timers::<S::D>(self.sql_pool(), now, limit, lease).await
    }

    async fn complete_timer(
        &self,
        timer_id: Uuid,
        token: i64,
        messages: Vec<NewOutboxMessage>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        queue::complete_timer::<S::D>(self.sql_pool(), timer_id, token, messages, now).await
    }

    async fn next_timer_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        queue::next_timer_at::<S::D>(self.sql_pool()).await
    }

    async fn pending_timer_count(&self) -> StoreResult<i64> {
        queue::pending_timer_count::<S::D>(self.sql_pool()).await
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> StoreResult<QueueStats> {
        queue::queue_stats::<S::D>(self.sql_pool(), now).await
    }

    async fn release_claims(
        &self,
        timers: &[(Uuid, i64)],
        messages: &[(Uuid, i64)],
    ) -> StoreResult<u64> {
        queue::release_claims::<S::D>(self.sql_pool(), timers, messages).await
    }

    async fn enqueue(&self, messages: Vec<NewOutboxMessage>) -> StoreResult<u64> {
        queue::enqueue::<S::D>(self.sql_pool(), messages).await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedMessage>> {
        queue::claim_outbox::<S::D>(self.sql_pool(), now, limit, lease).await
    }

    async fn finish_delivery(
        &self,
        id: Uuid,
        token: i64,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        queue::finish_delivery::<S::D>(self.sql_pool(), id, token, outcome, now).await
    }

    async fn list_outbox(
        &self,
        status: Option<OutboxStatus>,
        instance_id: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        queue::list_outbox::<S::D>(self.sql_pool(), status, instance_id, limit).await
    }

    async fn record_tick(
        &self,
        schedule: &str,
        tick_at: DateTime<Utc>,
        messages: Vec<NewOutboxMessage>,
    ) -> StoreResult<bool> {
        queue::record_tick::<S::D>(self.sql_pool(), schedule, tick_at, messages).await
    }

    async fn last_tick(&self, schedule: &str) -> StoreResult<Option<DateTime<Utc>>> {
        queue::last_tick::<S::D>(self.sql_pool(), schedule).await
    }
}
