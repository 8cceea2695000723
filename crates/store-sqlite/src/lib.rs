//! grantflow's default store: one SQLite file in WAL mode.
//!
//! Every write that touches more than one row runs in a transaction opened with
//! `BEGIN IMMEDIATE`: the write lock is taken up front, so concurrent writers queue on the
//! busy timeout instead of failing when a read transaction tries to upgrade. Plain reads
//! run outside transactions and are never blocked by a writer (WAL).

pub mod bench;
pub mod dialect;
mod programme;
mod review;
mod rows;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use grantflow_domain::audit::{GENESIS_HASH, HistoryRecord};
use grantflow_domain::schedule::TimerPlan;
use grantflow_store::MigrateInstance;
use grantflow_store::sql::{accounts, queue};
use grantflow_store::support::{self, like_pattern};
use grantflow_store::{
    Applied, ClaimedMessage, ClaimedTimer, Cursor, DeliveryOutcome, ExtendDeadline, Instance,
    InstanceFilter, NewInstance, NewOrganisation, NewOutboxMessage, NewToken, NewUser,
    Organisation, OutboxMessage, OutboxStatus, Page, PageRequest, Role, SortKey, SortOrder, Store,
    StoreError, StoreResult, Timer, TokenRecord, TransitionRequest, User, UserPatch, Visibility,
    WorkflowRecord, scoped_key,
};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

pub use dialect::SqliteDialect;
use rows::{
    Fail, HISTORY_COLS, INSTANCE_COLS, R, USER_SELECT, dup, json, parse_ts, strings_json, ts,
    ts_opt,
};

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

    async fn apply_tx(&self, req: &TransitionRequest<'_>) -> R<Applied> {
        let mut tx = self.begin().await?;
        let before = fetch_instance(&mut tx, req.instance_id)
            .await?
            .ok_or_else(|| StoreError::not_found("instance", req.instance_id))?;
        let scoped = req
            .idempotency_key
            .as_deref()
            .map(|k| scoped_key(&req.actor_id, k));
        if let Some(key) = &scoped {
            let stored = sqlx::query(
                "SELECT request_hash, result FROM idempotency_keys WHERE scoped_key = ?",
            )
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = stored {
                let hash: String = row.try_get("request_hash")?;
                if hash != req.request_hash {
                    return Err(StoreError::IdempotencyMismatch {
                        key: req.idempotency_key.clone().unwrap_or_default(),
                    }
                    .into());
                }
                let result: String = row.try_get("result")?;
                let mut applied: Applied = serde_json::from_str(&result).map_err(|e| {
                    StoreError::Backend(format!("bad stored idempotent result: {e}"))
                })?;
                applied.replayed = true;
                tx.rollback().await?;
                return Ok(applied);
            }
        }
        if let Some(expected) = req.expected_version
            && expected != before.version
        {
            return Err(StoreError::Conflict {
                current_version: before.version,
                expected_version: expected,
            }
            .into());
        }
        let change = (req.planner)(&before).map_err(StoreError::Engine)?;
        let plan = change.plan;
        support::check_plan(&before, &plan)?;
        let record = support::history_record(&before, &plan);
        let after = support::instance_after(&before, &plan, &record.hash);
        let at = record.at;

        let updated = sqlx::query(
            "UPDATE instances SET state = ?, stage = ?, is_final = ?, data = ?, version = ?, \
             updated_at = ?, due_at = ?, last_hash = ? WHERE id = ? AND version = ?",
        )
        .bind(&after.state)
        .bind(&after.stage)
        .bind(after.is_final)
        .bind(json(&after.data))
        .bind(after.version)
        .bind(ts(after.updated_at))
        .bind(ts_opt(after.due_at))
        .bind(&after.last_hash)
        .bind(after.id.to_string())
        .bind(before.version)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            // Cannot happen under the write lock; kept as a guard against a lost update.
            return Err(StoreError::Conflict {
                current_version: before.version + 1,
                expected_version: before.version,
            }
            .into());
        }
        insert_history(&mut tx, &record).await?;
        if let Some((timer_id, token)) = req.complete_timer {
            queue::mark_timer_done::<SqliteDialect>(&mut tx, timer_id, token, at).await?;
        }
        if plan.cancel_state_timers {
            sqlx::query(
                "UPDATE timers SET status = 'cancelled', lease_until = NULL \
                 WHERE instance_id = ? AND status IN ('pending', 'claimed')",
            )
            .bind(after.id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        for key in &plan.cancel_timers {
            sqlx::query(
                "UPDATE timers SET status = 'cancelled', lease_until = NULL \
                 WHERE instance_id = ? AND key = ? AND status IN ('pending', 'claimed')",
            )
            .bind(after.id.to_string())
            .bind(key)
            .execute(&mut *tx)
            .await?;
        }
        insert_timers(
            &mut tx,
            after.id,
            after.version,
            &after.state,
            &plan.schedule,
        )
        .await?;
        for n in &plan.notifications {
            let users = recipients_in(&mut tx, &after, &n.roles).await?;
            let messages = support::notification_messages(
                &after,
                &n.template,
                &change.notification_context,
                &users,
                at,
            );
            queue::insert_outbox::<SqliteDialect>(&mut tx, &messages, at).await?;
        }
        let applied = Applied {
            instance: after,
            record,
            replayed: false,
        };
        if let Some(key) = &scoped {
            let result = serde_json::to_string(&applied)
                .map_err(|e| StoreError::Backend(format!("cannot store the result: {e}")))?;
            sqlx::query(
                "INSERT INTO idempotency_keys (scoped_key, request_hash, result, created_at) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(key)
            .bind(&req.request_hash)
            .bind(result)
            .bind(ts(at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    async fn list_page(
        &self,
        visibility: &Visibility,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> R<Page<Instance>> {
        if *visibility == Visibility::Nothing {
            return Ok(Page {
                items: Vec::new(),
                has_next_page: false,
                total_count: 0,
            });
        }
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) AS n FROM instances i");
        push_filters(&mut count, visibility, filter);
        let total_count: i64 = count.build().fetch_one(&self.pool).await?.try_get("n")?;

        let col = sort_column(page.sort);
        let (cmp, dir) = match page.order {
            SortOrder::Asc => (">", "ASC"),
            SortOrder::Desc => ("<", "DESC"),
        };
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {} FROM instances i",
            prefixed(INSTANCE_COLS, "i.")
        ));
        push_filters(&mut q, visibility, filter);
        if let Some(after) = &page.after {
            let key = match (&after.key, page.sort) {
                (Some(k), SortKey::Title) => Some(k.clone()),
                (Some(k), _) => Some(ts(parse_ts(k).map_err(|_| {
                    StoreError::Invalid(format!("the cursor key `{k}` is not a time"))
                })?)),
                (None, _) => None,
            };
            let id = after.id.to_string();
            match key {
                // Rows with a key sort before rows without one, in both directions.
                Some(k) => {
                    q.push(format!(" AND ((i.{col} {cmp} "))
                        .push_bind(k.clone())
                        .push(format!(") OR (i.{col} = "))
                        .push_bind(k)
                        .push(format!(" AND i.id {cmp} "))
                        .push_bind(id)
                        .push(format!(") OR i.{col} IS NULL)"));
                }
                None => {
                    q.push(format!(" AND i.{col} IS NULL AND i.id {cmp} "))
                        .push_bind(id);
                }
            }
        }
        q.push(format!(
            " ORDER BY (i.{col} IS NULL), i.{col} {dir}, i.id {dir} LIMIT "
        ))
        .push_bind(i64::from(page.first) + 1);
        let rows = q.build().fetch_all(&self.pool).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(rows::instance(row)?);
        }
        let has_next_page = items.len() > page.first as usize;
        items.truncate(page.first as usize);
        let items = items
            .into_iter()
            .map(|i| {
                let key = match page.sort {
                    SortKey::CreatedAt => Some(ts(i.created_at)),
                    SortKey::UpdatedAt => Some(ts(i.updated_at)),
                    SortKey::DueAt => i.due_at.map(ts),
                    SortKey::Title => Some(i.title.clone()),
                };
                let cursor = Cursor { key, id: i.id };
                (i, cursor)
            })
            .collect();
        Ok(Page {
            items,
            has_next_page,
            total_count,
        })
    }
}

fn sort_column(sort: SortKey) -> &'static str {
    match sort {
        SortKey::CreatedAt => "created_at",
        SortKey::UpdatedAt => "updated_at",
        SortKey::DueAt => "due_at",
        SortKey::Title => "title",
    }
}

fn prefixed(cols: &str, prefix: &str) -> String {
    cols.split(',')
        .map(|c| format!("{prefix}{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn push_filters(q: &mut QueryBuilder<'_, Sqlite>, visibility: &Visibility, f: &InstanceFilter) {
    q.push(" WHERE 1 = 1");
    match visibility {
        Visibility::All => {}
        Visibility::Org(org) => {
            q.push(" AND i.org_id = ").push_bind(org.to_string());
        }
        Visibility::City(city) => {
            q.push(" AND i.city_id = ").push_bind(city.to_string());
        }
        Visibility::AssignedExpert(user) => {
            q.push(format!(
                " AND EXISTS (SELECT 1 FROM expert_assignments e \
                 WHERE e.instance_id = i.id AND {} AND e.user_id = ",
                grantflow_store::EXPERT_GRANT_IS_LIVE
            ))
            .push_bind(user.to_string())
            .push(")");
        }
        Visibility::Nothing => {
            q.push(" AND 1 = 0");
        }
    }
    if let Some(w) = &f.workflow_id {
        q.push(" AND i.workflow_id = ").push_bind(w.clone());
    }
    if !f.states.is_empty() {
        q.push(" AND i.state IN (");
        let mut sep = q.separated(", ");
        for s in &f.states {
            sep.push_bind(s.clone());
        }
        q.push(")");
    }
    if let Some(stage) = &f.stage {
        q.push(" AND i.stage = ").push_bind(stage.clone());
    }
    if let Some(org) = f.org_id {
        q.push(" AND i.org_id = ").push_bind(org.to_string());
    }
    if let Some(parent) = f.parent_id {
        q.push(" AND i.parent_id = ").push_bind(parent.to_string());
    }
    if let Some(now) = f.overdue_at {
        q.push(" AND i.is_final = 0 AND i.due_at < ")
            .push_bind(ts(now));
    }
    if let Some(t) = f.due_before {
        q.push(" AND i.due_at <= ").push_bind(ts(t));
    }
    if let Some(t) = f.due_after {
        q.push(" AND i.due_at >= ").push_bind(ts(t));
    }
    if let Some(text) = f.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        // LIKE is case-insensitive for ASCII in SQLite; CJK has no case.
        let pattern = like_pattern(text);
        q.push(" AND (i.title LIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR i.data LIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
    let identity_filtered =
        f.org_id.is_some() || f.text.as_deref().is_some_and(|t| !t.trim().is_empty());
    if identity_filtered && !f.identity_hidden.is_empty() {
        q.push(" AND i.id NOT");
        rows::ids_in(q, &f.identity_hidden);
    }
    if !f.include_final {
        q.push(" AND i.is_final = 0");
    }
}

/// Insert a new instance and its initial timers (inside the caller's transaction).
pub(crate) async fn insert_instance(conn: &mut SqliteConnection, new: NewInstance) -> R<Instance> {
    let org_row = sqlx::query(
        "SELECT o.kind, o.parent_id, p.kind AS parent_kind FROM organisations o \
         LEFT JOIN organisations p ON p.id = o.parent_id WHERE o.id = ?",
    )
    .bind(new.org_id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("organisation", new.org_id))?;
    let kind = grantflow_store::OrgKind::parse(&org_row.try_get::<String, _>("kind")?)
        .ok_or_else(|| StoreError::Backend("bad organisation kind".into()))?;
    let parent = match (
        org_row.try_get::<Option<String>, _>("parent_id")?,
        org_row.try_get::<Option<String>, _>("parent_kind")?,
    ) {
        (Some(id), Some(k)) => grantflow_store::OrgKind::parse(&k)
            .map(|k| rows::parse_uuid(&id).map(|id| (id, k)))
            .transpose()?,
        _ => None,
    };
    let created_at = new.created_at.trunc_subsecs(6);
    let instance = Instance {
        id: new.id,
        workflow_id: new.workflow_id,
        workflow_version: new.workflow_version,
        state: new.state,
        stage: new.stage,
        is_final: false,
        data: new.data,
        version: 0,
        parent_id: new.parent_id,
        org_id: new.org_id,
        city_id: support::city_of(kind, new.org_id, parent),
        title: new.title,
        created_by: new.created_by,
        created_at,
        updated_at: created_at,
        due_at: new.due_at.map(|t| t.trunc_subsecs(6)),
        review: Value::Null,
        budget: Value::Null,
        last_hash: GENESIS_HASH.to_string(),
    };
    sqlx::query(&format!(
        "INSERT INTO instances ({INSTANCE_COLS}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(instance.id.to_string())
    .bind(&instance.workflow_id)
    .bind(i64::from(instance.workflow_version))
    .bind(&instance.state)
    .bind(&instance.stage)
    .bind(instance.is_final)
    .bind(json(&instance.data))
    .bind(instance.version)
    .bind(instance.parent_id.map(|p| p.to_string()))
    .bind(instance.org_id.to_string())
    .bind(instance.city_id.map(|c| c.to_string()))
    .bind(&instance.title)
    .bind(instance.created_by.to_string())
    .bind(ts(instance.created_at))
    .bind(ts(instance.updated_at))
    .bind(ts_opt(instance.due_at))
    .bind(json(&instance.review))
    .bind(&instance.last_hash)
    .bind(json(&instance.budget))
    .execute(&mut *conn)
    .await
    .map_err(|e| dup(e.into(), "instance", &instance.id.to_string()))?;
    insert_timers(conn, instance.id, 0, &instance.state, &new.timers).await?;
    Ok(instance)
}

async fn fetch_instance(conn: &mut SqliteConnection, id: Uuid) -> R<Option<Instance>> {
    let row = sqlx::query(&format!(
        "SELECT {INSTANCE_COLS} FROM instances WHERE id = ?"
    ))
    .bind(id.to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(rows::instance).transpose()
}

pub(crate) async fn insert_history(conn: &mut SqliteConnection, r: &HistoryRecord) -> R<()> {
    sqlx::query(&format!(
        "INSERT INTO history ({HISTORY_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&r.instance_id)
    .bind(r.seq)
    .bind(ts(r.at))
    .bind(&r.actor_id)
    .bind(strings_json(&r.actor_roles))
    .bind(&r.event)
    .bind(&r.from_state)
    .bind(&r.to_state)
    .bind(json(&r.input))
    .bind(&r.reason)
    .bind(&r.prev_hash)
    .bind(&r.hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Write an instance's new state entry in `conn`'s transaction: the instance row (only if
/// it is still at `before`'s version), the sealed history record, and its timers — the
/// pending ones cancelled (named timers kept unless `cancel_named`), `timers` inserted for
/// the entry. Shared by deadline extensions and version migrations.
async fn rewrite_entry(
    conn: &mut SqliteConnection,
    before: &Instance,
    after: &Instance,
    record: &HistoryRecord,
    cancel_named: bool,
    timers: &[TimerPlan],
) -> R<()> {
    sqlx::query(
        "UPDATE instances SET workflow_version = ?, state = ?, stage = ?, is_final = ?, \
         due_at = ?, version = ?, updated_at = ?, last_hash = ? WHERE id = ? AND version = ?",
    )
    .bind(i64::from(after.workflow_version))
    .bind(&after.state)
    .bind(&after.stage)
    .bind(after.is_final)
    .bind(ts_opt(after.due_at))
    .bind(after.version)
    .bind(ts(after.updated_at))
    .bind(&after.last_hash)
    .bind(after.id.to_string())
    .bind(before.version)
    .execute(&mut *conn)
    .await?;
    insert_history(&mut *conn, record).await?;
    sqlx::query(
        "UPDATE timers SET status = 'cancelled', lease_until = NULL \
         WHERE instance_id = ? AND status IN ('pending', 'claimed') AND (kind <> 'named' OR ?)",
    )
    .bind(after.id.to_string())
    .bind(cancel_named)
    .execute(&mut *conn)
    .await?;
    insert_timers(&mut *conn, after.id, after.version, &after.state, timers).await?;
    Ok(())
}

pub(crate) async fn insert_timers(
    conn: &mut SqliteConnection,
    instance_id: Uuid,
    state_entry: i64,
    state: &str,
    timers: &[TimerPlan],
) -> R<()> {
    for t in timers {
        sqlx::query(
            "INSERT INTO timers (id, instance_id, state_entry, state, kind, key, fire_at, \
             due_at, event, notify, step_offset, status) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(instance_id.to_string())
        .bind(state_entry)
        .bind(state)
        .bind(t.kind.as_str())
        .bind(&t.key)
        .bind(ts(t.fire_at))
        .bind(ts_opt(t.due_at))
        .bind(&t.event)
        .bind(strings_json(&t.notify))
        .bind(&t.offset)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn users_where(
    conn: &mut SqliteConnection,
    q: &mut QueryBuilder<'_, Sqlite>,
) -> R<Vec<User>> {
    let rows = q.build().fetch_all(conn).await?;
    rows.iter().map(rows::user).collect()
}

/// The users who receive mail about `instance` for each of `roles` (see
/// [`Store::recipients`]), de-duplicated, in a stable order.
async fn recipients_in(
    conn: &mut SqliteConnection,
    instance: &Instance,
    roles: &[String],
) -> R<Vec<User>> {
    let mut out: Vec<User> = Vec::new();
    let mut seen = HashSet::new();
    for role in roles {
        let mut q = QueryBuilder::<Sqlite>::new(USER_SELECT);
        q.push(" WHERE u.active = 1");
        match role.as_str() {
            "applicant" => {
                q.push(" AND EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = 'applicant') AND u.org_id = ")
                    .push_bind(instance.org_id.to_string());
            }
            "city" => {
                let Some(city) = instance.city_id else {
                    continue;
                };
                q.push(" AND EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = 'city') AND u.org_id = ")
                    .push_bind(city.to_string());
            }
            "manager" | "admin" => {
                q.push(
                    " AND EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = ",
                )
                .push_bind(role.clone())
                .push(")");
            }
            "expert" => {
                q.push(" AND EXISTS (SELECT 1 FROM expert_assignments e WHERE e.user_id = u.id AND e.instance_id = ")
                    .push_bind(instance.id.to_string())
                    .push(")");
            }
            // One reviewer, for the reminders of their own assignment.
            other => match grantflow_store::review::parse_expert_recipient(other) {
                Some(user_id) => {
                    q.push(" AND u.id = ").push_bind(user_id.to_string());
                }
                None => continue,
            },
        }
        q.push(" ORDER BY u.username");
        for u in users_where(&mut *conn, &mut q).await? {
            if seen.insert(u.id) {
                out.push(u);
            }
        }
    }
    Ok(out)
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

    // ---- workflow definitions

    async fn save_workflow(&self, record: WorkflowRecord) -> StoreResult<()> {
        let r: R<()> = async {
            let mut tx = self.begin().await?;
            let stored = sqlx::query(
                "SELECT hash FROM workflow_definitions WHERE workflow_id = ? AND version = ?",
            )
            .bind(&record.workflow_id)
            .bind(i64::from(record.version))
            .fetch_optional(&mut *tx)
            .await?;
            match stored {
                Some(row) => {
                    let hash: String = row.try_get("hash")?;
                    if hash != record.hash {
                        return Err(StoreError::DefinitionChanged {
                            workflow_id: record.workflow_id.clone(),
                            version: record.version,
                            stored: hash,
                        }
                        .into());
                    }
                }
                None => {
                    sqlx::query(
                        "INSERT INTO workflow_definitions (workflow_id, version, hash, definition, \
                         created_at) VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(&record.workflow_id)
                    .bind(i64::from(record.version))
                    .bind(&record.hash)
                    .bind(json(&record.definition))
                    .bind(ts(record.created_at))
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        Ok(r?)
    }

    async fn list_workflows(&self) -> StoreResult<Vec<WorkflowRecord>> {
        let rows = sqlx::query(
            "SELECT workflow_id, version, hash, definition, created_at FROM workflow_definitions \
             ORDER BY workflow_id, version",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        Ok(rows.iter().map(rows::workflow).collect::<R<_>>()?)
    }

    // ---- instances

    async fn create_instance(&self, new: NewInstance) -> StoreResult<Instance> {
        let r: R<Instance> = async {
            let mut tx = self.begin().await?;
            let instance = insert_instance(&mut tx, new).await?;
            tx.commit().await?;
            Ok(instance)
        }
        .await;
        Ok(r?)
    }

    async fn get_instance(&self, id: Uuid) -> StoreResult<Instance> {
        let mut conn = self.pool.acquire().await.map_err(rows::backend_error)?;
        fetch_instance(&mut conn, id)
            .await?
            .ok_or_else(|| StoreError::not_found("instance", id))
    }

    async fn get_instances(&self, ids: &[Uuid]) -> StoreResult<Vec<Instance>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q =
            QueryBuilder::<Sqlite>::new(format!("SELECT {INSTANCE_COLS} FROM instances WHERE id "));
        rows::ids_in(&mut q, ids);
        q.push(" ORDER BY created_at, id");
        let rows = q
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(rows::backend_error)?;
        Ok(rows.iter().map(rows::instance).collect::<R<_>>()?)
    }

    async fn list_instances(
        &self,
        visibility: &Visibility,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Instance>> {
        Ok(self.list_page(visibility, filter, page).await?)
    }

    async fn is_assigned_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        let row = sqlx::query(&format!(
            "SELECT 1 FROM expert_assignments e JOIN instances i ON i.id = e.instance_id \
             WHERE e.instance_id = ? AND e.user_id = ? AND {}",
            grantflow_store::EXPERT_GRANT_IS_LIVE
        ))
        .bind(instance_id.to_string())
        .bind(user_id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        Ok(row.is_some())
    }

    async fn assigned_instances(
        &self,
        user_id: Uuid,
        instance_ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>> {
        if instance_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::<Sqlite>::new(format!(
            "SELECT DISTINCT e.instance_id FROM expert_assignments e \
             JOIN instances i ON i.id = e.instance_id WHERE {} AND e.user_id = ",
            grantflow_store::EXPERT_GRANT_IS_LIVE
        ));
        q.push_bind(user_id.to_string()).push(" AND e.instance_id ");
        rows::ids_in(&mut q, instance_ids);
        let rows = q
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(rows::backend_error)?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("instance_id").map_err(rows::backend_error)?;
                Uuid::parse_str(&id)
                    .map_err(|e| StoreError::Backend(format!("bad instance id `{id}`: {e}")))
            })
            .collect()
    }

    async fn assign_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO expert_assignments (instance_id, user_id) VALUES (?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(instance_id.to_string())
        .bind(user_id.to_string())
        .execute(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        Ok(())
    }

    async fn recipients(&self, instance: &Instance, roles: &[String]) -> StoreResult<Vec<User>> {
        let mut conn = self.pool.acquire().await.map_err(rows::backend_error)?;
        Ok(recipients_in(&mut conn, instance, roles).await?)
    }

    async fn apply_transition(&self, request: TransitionRequest<'_>) -> StoreResult<Applied> {
        match self.apply_tx(&request).await {
            Ok(applied) => Ok(applied),
            Err(Fail::Store(StoreError::Engine(e))) => {
                // The timeout lost the race (a person moved the instance first): the timer
                // is spent all the same, or it would fire again forever.
                if let Some((timer_id, token)) = request.complete_timer {
                    let r: R<bool> = async {
                        let mut tx = self.begin().await?;
                        let done = queue::mark_timer_done::<SqliteDialect>(
                            &mut tx,
                            timer_id,
                            token,
                            Utc::now(),
                        )
                        .await?;
                        tx.commit().await?;
                        Ok(done)
                    }
                    .await;
                    r?;
                }
                Err(StoreError::Engine(e))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn extend_deadline(&self, request: ExtendDeadline) -> StoreResult<Applied> {
        let r: R<Applied> = async {
            let mut tx = self.begin().await?;
            let before = fetch_instance(&mut tx, request.instance_id)
                .await?
                .ok_or_else(|| StoreError::not_found("instance", request.instance_id))?;
            if before.version != request.expected_version {
                return Err(StoreError::Conflict {
                    current_version: before.version,
                    expected_version: request.expected_version,
                }
                .into());
            }
            if before.is_final {
                return Err(StoreError::Invalid(format!(
                    "the instance is in final state `{}`: there is no deadline to extend",
                    before.state
                ))
                .into());
            }
            let at = request.at.trunc_subsecs(6);
            let due_at = request.new_due_at.trunc_subsecs(6);
            let record = support::extension_record(&before, &request, at, due_at);
            let after = Instance {
                version: record.seq,
                updated_at: at,
                due_at: Some(due_at),
                last_hash: record.hash.clone(),
                ..before.clone()
            };
            // Named timers (set by effects) are not tied to the deadline and stay.
            rewrite_entry(&mut tx, &before, &after, &record, false, &request.timers).await?;
            tx.commit().await?;
            Ok(Applied {
                instance: after,
                record,
                replayed: false,
            })
        }
        .await;
        Ok(r?)
    }

    async fn migrate_instance(&self, request: MigrateInstance) -> StoreResult<Applied> {
        let r: R<Applied> = async {
            let mut tx = self.begin().await?;
            let before = fetch_instance(&mut tx, request.instance_id)
                .await?
                .ok_or_else(|| StoreError::not_found("instance", request.instance_id))?;
            if before.version != request.expected_version {
                return Err(StoreError::Conflict {
                    current_version: before.version,
                    expected_version: request.expected_version,
                }
                .into());
            }
            if before.workflow_version != request.from_workflow_version {
                return Err(StoreError::Invalid(format!(
                    "the instance is on version {} of its workflow, not {}",
                    before.workflow_version, request.from_workflow_version
                ))
                .into());
            }
            let at = request.at.trunc_subsecs(6);
            let record = support::migration_record(&before, &request, at);
            let after = Instance {
                workflow_version: request.to_workflow_version,
                state: request.to_state.clone(),
                stage: request.to_stage.clone(),
                is_final: request.to_final,
                due_at: request.due_at.map(|d| d.trunc_subsecs(6)),
                version: record.seq,
                updated_at: at,
                last_hash: record.hash.clone(),
                ..before.clone()
            };
            // Every timer belonged to the old version's state entry.
            rewrite_entry(&mut tx, &before, &after, &record, true, &request.timers).await?;
            tx.commit().await?;
            Ok(Applied {
                instance: after,
                record,
                replayed: false,
            })
        }
        .await;
        Ok(r?)
    }

    async fn set_review_result(&self, instance_id: Uuid, review: Value) -> StoreResult<()> {
        let r = sqlx::query("UPDATE instances SET review = ? WHERE id = ?")
            .bind(json(&review))
            .bind(instance_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(rows::backend_error)?;
        if r.rows_affected() == 0 {
            return Err(StoreError::not_found("instance", instance_id));
        }
        Ok(())
    }

    async fn history(&self, instance_id: Uuid) -> StoreResult<Vec<HistoryRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {HISTORY_COLS} FROM history WHERE instance_id = ? ORDER BY seq"
        ))
        .bind(instance_id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        Ok(rows.iter().map(rows::history).collect::<R<_>>()?)
    }

    async fn instance_ids(&self) -> StoreResult<Vec<Uuid>> {
        let rows = sqlx::query("SELECT id FROM instances ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(rows::backend_error)?;
        let mut ids = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id").map_err(rows::backend_error)?;
            ids.push(rows::parse_uuid(&id)?);
        }
        Ok(ids)
    }

    async fn instances_due_before(&self, until: DateTime<Utc>) -> StoreResult<Vec<Instance>> {
        let rows = sqlx::query(&format!(
            "SELECT {INSTANCE_COLS} FROM instances WHERE is_final = 0 AND due_at IS NOT NULL \
             AND due_at <= ? ORDER BY due_at, id"
        ))
        .bind(ts(until))
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        Ok(rows.iter().map(rows::instance).collect::<R<_>>()?)
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
