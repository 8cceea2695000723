//! grantflow's default store: one SQLite file in WAL mode.
//!
//! Every write that touches more than one row runs in a transaction opened with
//! `BEGIN IMMEDIATE`: the write lock is taken up front, so concurrent writers queue on the
//! busy timeout instead of failing when a read transaction tries to upgrade. Plain reads
//! run outside transactions and are never blocked by a writer (WAL).

pub mod bench;
pub mod dialect;
mod review;
mod rows;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::Path;
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
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;

pub use dialect::SqliteDialect;
use rows::R;

/// The database used when none is configured.
pub const DEFAULT_URL: &str = "sqlite://grantflow.db";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// How to open the database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `sqlite://path`, `sqlite:path`, `sqlite::memory:` or a plain file path.
    pub url: String,
    /// Readers run in parallel; writers queue on the write lock whatever this is.
    pub max_connections: u32,
    /// How long a writer waits for the write lock before giving up.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            url: DEFAULT_URL.to_string(),
            max_connections: 8,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if missing) the database at `url` with default settings.
    pub async fn connect(url: &str) -> StoreResult<SqliteStore> {
        SqliteStore::connect_with(SqliteOptions {
            url: url.to_string(),
            ..SqliteOptions::default()
        })
        .await
    }

    /// Open the database file at `path`.
    pub async fn open_file(path: &Path) -> StoreResult<SqliteStore> {
        SqliteStore::connect(&path.to_string_lossy()).await
    }

    pub async fn connect_with(options: SqliteOptions) -> StoreResult<SqliteStore> {
        let url = options.url.trim();
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let connect = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::Invalid("the SQLite URL is not valid".into()))?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL skips the fsync at each commit but not at checkpoints: a
            // committed transaction survives a crash of the process (the WAL is in the OS
            // page cache), and only a power loss or OS crash may lose the last commits,
            // never corrupt the file. That is the trade-off the crash test checks.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let mut pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.busy_timeout + Duration::from_secs(5));
        if in_memory {
            // One connection: each connection to `:memory:` would otherwise be its own
            // database, and the shared cache answers lock conflicts with SQLITE_LOCKED
            // instead of waiting. Keep it open for the life of the pool.
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = pool
            .connect_with(connect)
            .await
            .map_err(rows::backend_error)?;
        Ok(SqliteStore { pool })
    }

    /// The pool, for tools (benchmarks, test support) that issue raw SQL.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin(&self) -> R<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl grantflow_store::sql::SqlBackend for SqliteStore {
    type D = SqliteDialect;

    fn sql_pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
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
        accounts::create_org::<SqliteDialect>(&self.pool, new).await
    }

    async fn get_org(&self, id: Uuid) -> StoreResult<Organisation> {
        accounts::get_org::<SqliteDialect>(&self.pool, id).await
    }

    async fn get_orgs(&self, ids: &[Uuid]) -> StoreResult<Vec<Organisation>> {
        accounts::get_orgs::<SqliteDialect>(&self.pool, ids).await
    }

    async fn list_orgs(&self) -> StoreResult<Vec<Organisation>> {
        accounts::list_orgs::<SqliteDialect>(&self.pool).await
    }

    async fn create_user(&self, new: NewUser) -> StoreResult<User> {
        accounts::create_user::<SqliteDialect>(&self.pool, new).await
    }

    async fn get_user(&self, id: Uuid) -> StoreResult<User> {
        accounts::get_user::<SqliteDialect>(&self.pool, id).await
    }

    async fn get_users(&self, ids: &[Uuid]) -> StoreResult<Vec<User>> {
        accounts::get_users::<SqliteDialect>(&self.pool, ids).await
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        accounts::find_user_by_username::<SqliteDialect>(&self.pool, username).await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        accounts::find_user_by_email::<SqliteDialect>(&self.pool, email).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        accounts::list_users::<SqliteDialect>(&self.pool).await
    }

    async fn update_user(&self, id: Uuid, patch: UserPatch) -> StoreResult<User> {
        accounts::update_user::<SqliteDialect>(&self.pool, id, patch).await
    }

    async fn set_password_hash(&self, id: Uuid, password_hash: &str) -> StoreResult<()> {
        accounts::set_password_hash::<SqliteDialect>(&self.pool, id, password_hash).await
    }

    async fn users_with_role(&self, role: Role, orgs: Option<&[Uuid]>) -> StoreResult<Vec<User>> {
        accounts::users_with_role::<SqliteDialect>(&self.pool, role, orgs).await
    }

    async fn create_token(&self, new: NewToken) -> StoreResult<TokenRecord> {
        accounts::create_token::<SqliteDialect>(&self.pool, new).await
    }

    async fn find_token(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        accounts::find_token::<SqliteDialect>(&self.pool, token_hash).await
    }

    async fn revoke_token(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        accounts::revoke_token::<SqliteDialect>(&self.pool, id, at).await
    }

    async fn revoke_user_tokens(&self, user_id: Uuid, at: DateTime<Utc>) -> StoreResult<u64> {
        accounts::revoke_user_tokens::<SqliteDialect>(&self.pool, user_id, at).await
    }

    async fn list_tokens(&self, user_id: Uuid) -> StoreResult<Vec<TokenRecord>> {
        accounts::list_tokens::<SqliteDialect>(&self.pool, user_id).await
    }

    async fn create_reset_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        accounts::create_reset_token::<SqliteDialect>(&self.pool, user_id, token_hash, expires_at)
            .await
    }

    async fn change_password(
        &self,
        id: Uuid,
        password_hash: &str,
        keep: Uuid,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        accounts::change_password::<SqliteDialect>(&self.pool, id, password_hash, keep, at).await
    }

    async fn check_reset_token(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Uuid> {
        accounts::check_reset_token::<SqliteDialect>(&self.pool, token_hash, now).await
    }

    async fn consume_reset_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        new_password_hash: &str,
    ) -> StoreResult<Uuid> {
        accounts::consume_reset_token::<SqliteDialect>(
            &self.pool,
            token_hash,
            now,
            new_password_hash,
        )
        .await
    }

    // ---- workflows, instances, history (`grantflow_store::sql::instances`)

    async fn save_workflow(&self, record: WorkflowRecord) -> StoreResult<()> {
        instances::save_workflow::<SqliteDialect>(&self.pool, record).await
    }

    async fn list_workflows(&self) -> StoreResult<Vec<WorkflowRecord>> {
        instances::list_workflows::<SqliteDialect>(&self.pool).await
    }

    async fn create_instance(&self, new: NewInstance) -> StoreResult<Instance> {
        instances::create_instance::<SqliteDialect>(&self.pool, new).await
    }

    async fn get_instance(&self, id: Uuid) -> StoreResult<Instance> {
        instances::get_instance::<SqliteDialect>(&self.pool, id).await
    }

    async fn get_instances(&self, ids: &[Uuid]) -> StoreResult<Vec<Instance>> {
        instances::get_instances::<SqliteDialect>(&self.pool, ids).await
    }

    async fn list_instances(
        &self,
        visibility: &Visibility,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Instance>> {
        instances::list_instances::<SqliteDialect>(&self.pool, visibility, filter, page).await
    }

    async fn is_assigned_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        instances::is_assigned_expert::<SqliteDialect>(&self.pool, instance_id, user_id).await
    }

    async fn assigned_instances(
        &self,
        user_id: Uuid,
        instance_ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>> {
        instances::assigned_instances::<SqliteDialect>(&self.pool, user_id, instance_ids).await
    }

    async fn assign_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<()> {
        instances::assign_expert::<SqliteDialect>(&self.pool, instance_id, user_id).await
    }

    async fn recipients(&self, instance: &Instance, roles: &[String]) -> StoreResult<Vec<User>> {
        instances::recipients::<SqliteDialect>(&self.pool, instance, roles).await
    }

    async fn apply_transition(&self, request: TransitionRequest<'_>) -> StoreResult<Applied> {
        instances::apply_transition::<SqliteDialect>(&self.pool, request).await
    }

    async fn extend_deadline(&self, request: ExtendDeadline) -> StoreResult<Applied> {
        instances::extend_deadline::<SqliteDialect>(&self.pool, request).await
    }

    async fn migrate_instance(&self, request: MigrateInstance) -> StoreResult<Applied> {
        instances::migrate_instance::<SqliteDialect>(&self.pool, request).await
    }

    async fn set_review_result(&self, instance_id: Uuid, review: Value) -> StoreResult<()> {
        instances::set_review_result::<SqliteDialect>(&self.pool, instance_id, review).await
    }

    async fn history(&self, instance_id: Uuid) -> StoreResult<Vec<HistoryRecord>> {
        instances::history::<SqliteDialect>(&self.pool, instance_id).await
    }

    async fn instance_ids(&self) -> StoreResult<Vec<Uuid>> {
        instances::instance_ids::<SqliteDialect>(&self.pool).await
    }

    async fn instances_due_before(&self, until: DateTime<Utc>) -> StoreResult<Vec<Instance>> {
        instances::instances_due_before::<SqliteDialect>(&self.pool, until).await
    }

    // ---- timers, outbox and cron ticks (`grantflow_store::sql::queue`)

    async fn timers_for_instance(&self, instance_id: Uuid) -> StoreResult<Vec<Timer>> {
        queue::timers_for_instance::<SqliteDialect>(&self.pool, instance_id).await
    }

    async fn claim_due_timers(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedTimer>> {
        queue::claim_due_timers::<SqliteDialect>(&self.pool, now, limit, lease).await
    }

    async fn complete_timer(
        &self,
        timer_id: Uuid,
        token: i64,
        messages: Vec<NewOutboxMessage>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        queue::complete_timer::<SqliteDialect>(&self.pool, timer_id, token, messages, now).await
    }

    async fn next_timer_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        queue::next_timer_at::<SqliteDialect>(&self.pool).await
    }

    async fn pending_timer_count(&self) -> StoreResult<i64> {
        queue::pending_timer_count::<SqliteDialect>(&self.pool).await
    }

    async fn enqueue(&self, messages: Vec<NewOutboxMessage>) -> StoreResult<u64> {
        queue::enqueue::<SqliteDialect>(&self.pool, messages).await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedMessage>> {
        queue::claim_outbox::<SqliteDialect>(&self.pool, now, limit, lease).await
    }

    async fn finish_delivery(
        &self,
        id: Uuid,
        token: i64,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        queue::finish_delivery::<SqliteDialect>(&self.pool, id, token, outcome, now).await
    }

    async fn list_outbox(
        &self,
        status: Option<OutboxStatus>,
        instance_id: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        queue::list_outbox::<SqliteDialect>(&self.pool, status, instance_id, limit).await
    }

    async fn record_tick(
        &self,
        schedule: &str,
        tick_at: DateTime<Utc>,
        messages: Vec<NewOutboxMessage>,
    ) -> StoreResult<bool> {
        queue::record_tick::<SqliteDialect>(&self.pool, schedule, tick_at, messages).await
    }

    async fn last_tick(&self, schedule: &str) -> StoreResult<Option<DateTime<Utc>>> {
        queue::last_tick::<SqliteDialect>(&self.pool, schedule).await
    }
}
