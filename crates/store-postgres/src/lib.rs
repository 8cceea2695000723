//! grantflow on PostgreSQL, for several API and scheduler processes sharing one database.
//!
//! Transactions run at READ COMMITTED. A transition locks its instance row with
//! `SELECT … FOR UPDATE`, so concurrent writers of one instance queue and the losers see
//! the new version; timer and outbox claims lock with `FOR UPDATE SKIP LOCKED`, so
//! schedulers never wait for each other and never claim the same row. Every transactional
//! method is retried a few times on serialization failures and deadlocks.

pub mod bench;
pub mod dialect;
mod rows;
pub mod testing;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use grantflow_domain::audit::HistoryRecord;
use grantflow_store::MigrateInstance;
use grantflow_store::sql::{accounts, instances, queue};
use grantflow_store::{
    Applied, ClaimedMessage, ClaimedTimer, DeliveryOutcome, ExtendDeadline, Instance,
    InstanceFilter, NewInstance, NewOrganisation, NewOutboxMessage, NewToken, NewUser,
    Organisation, OutboxMessage, OutboxStatus, Page, PageRequest, Role, Store, StoreError,
    StoreResult, Timer, TokenRecord, TransitionRequest, User, UserPatch, Visibility,
    WorkflowRecord,
};
use serde_json::Value;
use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use uuid::Uuid;

pub use dialect::PgDialect;
use rows::R;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

mod review;

/// How to connect.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `postgres://user[:password]@host[:port]/database[?params]`.
    pub url: String,
    /// Connections per process; each API request or scheduler step holds one at most.
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl PostgresOptions {
    pub fn new(url: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect to `url` with default pool settings.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        PostgresStore::connect_with(PostgresOptions::new(url)).await
    }

    pub async fn connect_with(options: PostgresOptions) -> StoreResult<PostgresStore> {
        // The parse error may quote the URL, password included: say only that it is bad.
        let connect = PgConnectOptions::from_str(options.url.trim())
            .map_err(|_| StoreError::Invalid("the PostgreSQL URL is not valid".into()))?
            .application_name("grantflow");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(rows::backend_error)?;
        Ok(PostgresStore { pool })
    }

    /// The pool, for tools (benchmarks, test support) that issue raw SQL.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> R<sqlx::Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

impl grantflow_store::sql::SqlBackend for PostgresStore {
    type D = PgDialect;

    fn sql_pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(rows::backend_error)?;
        Ok(())
    }

    // ---- accounts (`grantflow_store::sql::accounts`)

    async fn create_org(&self, new: NewOrganisation) -> StoreResult<Organisation> {
        accounts::create_org::<PgDialect>(&self.pool, new).await
    }

    async fn get_org(&self, id: Uuid) -> StoreResult<Organisation> {
        accounts::get_org::<PgDialect>(&self.pool, id).await
    }

    async fn get_orgs(&self, ids: &[Uuid]) -> StoreResult<Vec<Organisation>> {
        accounts::get_orgs::<PgDialect>(&self.pool, ids).await
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Organisation>> {
        accounts::list_orgs::<PgDialect>(&self.pool).await
    }

    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        accounts::create_user::<PgDialect>(&self.pool, new).await
    }

    async fn get_user(&self, id: Uuid) -> StoreResult<User> {
        accounts::get_user::<PgDialect>(&self.pool, id).await
    }

    async fn get_users(&self, ids: &[Uuid]) -> StoreResult<Vec<User>> {
        accounts::get_users::<PgDialect>(&self.pool, ids).await
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        accounts::find_user_by_username::<PgDialect>(&self.pool, username).await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        accounts::find_user_by_email::<PgDialect>(&self.pool, email).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        accounts::list_users::<PgDialect>(&self.pool).await
    }

    async fn update_user(&self, id: Uuid, patch: UserPatch) -> StoreResult<User> {
        accounts::update_user::<PgDialect>(&self.pool, id, patch).await
    }

    async fn set_password_hash(&self, id: Uuid, password_hash: &str) -> StoreResult<()> {
        accounts::set_password_hash::<PgDialect>(&self.pool, id, password_hash).await
    }

    async fn users_with_role(&self, role: Role, orgs: Option<&[Uuid]>) -> StoreResult<Vec<User>> {
        accounts::users_with_role::<PgDialect>(&self.pool, role, orgs).await
    }

    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord> {
        accounts::create_token::<PgDialect>(&self.pool, new).await
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        accounts::find_token::<PgDialect>(&self.pool, token_hash).await
    }

    async fn revoke_token(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        accounts::revoke_token::<PgDialect>(&self.pool, id, at).await
    }

    async fn revoke_user_tokens(&self, user_id: Uuid, at: DateTime<Utc>) -> StoreResult<u64> {
        accounts::revoke_user_tokens::<PgDialect>(&self.pool, user_id, at).await
    }

    async fn list_tokens(&self, user_id: Uuid) -> StoreResult<Vec<TokenRecord>> {
        accounts::list_tokens::<PgDialect>(&self.pool, user_id).await
    }

    async fn create_reset_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        accounts::create_reset_token::<PgDialect>(&self.pool, user_id, token_hash, expires_at).await
    }

    async fn change_password(
        &self,
        id: Uuid,
        password_hash: &str,
        keep: Uuid,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        accounts::change_password::<PgDialect>(&self.pool, id, password_hash, keep, at).await
    }

    async fn check_reset_token(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Uuid> {
        accounts::check_reset_token::<PgDialect>(&self.pool, token_hash, now).await
    }

    async fn consume_reset_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        new_password_hash: &str,
    ) -> StoreResult<Uuid> {
        accounts::consume_reset_token::<PgDialect>(&self.pool, token_hash, now, new_password_hash)
            .await
    }

    // ---- workflows, instances, history (`grantflow_store::sql::instances`)

    async fn save_workflow(&self, record: WorkflowRecord) -> StoreResult<()> {
        instances::save_workflow::<PgDialect>(&self.pool, record).await
    }

    async fn list_workflows(&self) -> StoreResult<Vec<WorkflowRecord>> {
        instances::list_workflows::<PgDialect>(&self.pool).await
    }

    async fn create_instance(&self, new: NewInstance) -> StoreResult<Instance> {
        instances::create_instance::<PgDialect>(&self.pool, new).await
    }

    async fn get_instance(&self, id: Uuid) -> StoreResult<Instance> {
        instances::get_instance::<PgDialect>(&self.pool, id).await
    }

    async fn get_instances(&self, ids: &[Uuid]) -> StoreResult<Vec<Instance>> {
        instances::get_instances::<PgDialect>(&self.pool, ids).await
    }

    async fn list_instances(
        &self,
        visibility: &Visibility,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Instance>> {
        instances::list_instances::<PgDialect>(&self.pool, visibility, filter, page).await
    }

    async fn is_assigned_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        instances::is_assigned_expert::<PgDialect>(&self.pool, instance_id, user_id).await
    }

    async fn assigned_instances(
        &self,
        user_id: Uuid,
        instance_ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>> {
        instances::assigned_instances::<PgDialect>(&self.pool, user_id, instance_ids).await
    }

    async fn assign_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<()> {
        instances::assign_expert::<PgDialect>(&self.pool, instance_id, user_id).await
    }

    async fn recipients(&self, instance: &Instance, roles: &[String]) -> StoreResult<Vec<User>> {
        instances::recipients::<PgDialect>(&self.pool, instance, roles).await
    }

    async fn apply_transition(&self, request: TransitionRequest<'_>) -> StoreResult<Applied> {
        instances::apply_transition::<PgDialect>(&self.pool, request).await
    }

    async fn extend_deadline(&self, request: ExtendDeadline) -> StoreResult<Applied> {
        instances::extend_deadline::<PgDialect>(&self.pool, request).await
    }

    async fn migrate_instance(&self, request: MigrateInstance) -> StoreResult<Applied> {
        instances::migrate_instance::<PgDialect>(&self.pool, request).await
    }

    async fn set_review_result(&self, instance_id: Uuid, review: Value) -> StoreResult<()> {
        instances::set_review_result::<PgDialect>(&self.pool, instance_id, review).await
    }

    async fn history(&self, instance_id: Uuid) -> StoreResult<Vec<HistoryRecord>> {
        instances::history::<PgDialect>(&self.pool, instance_id).await
    }

    async fn instance_ids(&self) -> StoreResult<Vec<Uuid>> {
        instances::instance_ids::<PgDialect>(&self.pool).await
    }

    async fn instances_due_before(&self, until: DateTime<Utc>) -> StoreResult<Vec<Instance>> {
        instances::instances_due_before::<PgDialect>(&self.pool, until).await
    }

    // ---- timers, outbox and cron ticks (`grantflow_store::sql::queue`)

    async fn timers_for_instance(&self, instance_id: Uuid) -> StoreResult<Vec<Timer>> {
        queue::timers_for_instance::<PgDialect>(&self.pool, instance_id).await
    }

    async fn claim_due_timers(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedTimer>> {
        queue::claim_due_timers::<PgDialect>(&self.pool, now, limit, lease).await
    }

    async fn complete_timer(
        &self,
        timer_id: Uuid,
        token: i64,
        messages: Vec<NewOutboxMessage>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        queue::complete_timer::<PgDialect>(&self.pool, timer_id, token, messages, now).await
    }

    async fn next_timer_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        queue::next_timer_at::<PgDialect>(&self.pool).await
    }

    async fn pending_timer_count(&self) -> StoreResult<i64> {
        queue::pending_timer_count::<PgDialect>(&self.pool).await
    }

    async fn enqueue(&self, messages: Vec<NewOutboxMessage>) -> StoreResult<u64> {
        queue::enqueue::<PgDialect>(&self.pool, messages).await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedMessage>> {
        queue::claim_outbox::<PgDialect>(&self.pool, now, limit, lease).await
    }

    async fn finish_delivery(
        &self,
        id: Uuid,
        token: i64,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        queue::finish_delivery::<PgDialect>(&self.pool, id, token, outcome, now).await
    }

    async fn list_outbox(
        &self,
        status: Option<OutboxStatus>,
        instance_id: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        queue::list_outbox::<PgDialect>(&self.pool, status, instance_id, limit).await
    }

    async fn record_tick(
        &self,
        schedule: &str,
        tick_at: DateTime<Utc>,
        messages: Vec<NewOutboxMessage>,
    ) -> StoreResult<bool> {
        queue::record_tick::<PgDialect>(&self.pool, schedule, tick_at, messages).await
    }

    async fn last_tick(&self, schedule: &str) -> StoreResult<Option<DateTime<Utc>>> {
        queue::last_tick::<PgDialect>(&self.pool, schedule).await
    }
}
