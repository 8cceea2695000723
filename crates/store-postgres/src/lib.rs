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

use std::collections::HashSet;
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
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

pub use dialect::PgDialect;
use rows::{Fail, HISTORY_COLS, INSTANCE_COLS, R, USER_SELECT, dup, json, strings_json};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// How many times a transaction that failed on a serialization failure or deadlock is
/// run again before the error is returned.
const MAX_RETRIES: u32 = 5;

/// Run `$body` (an `async` block producing `R<T>`) again on serialization failures and
/// deadlocks, with a short growing pause, up to [`MAX_RETRIES`] times.
macro_rules! retrying {
    ($body:expr) => {{
        let mut attempt = 0u32;
        loop {
            let result: R<_> = $body.await;
            match result {
                Err(e) if rows::is_retryable(&e) && attempt < MAX_RETRIES => {
                    attempt += 1;
                    tracing::debug!(
                        attempt,
                        "retrying a transaction after a serialization failure or deadlock"
                    );
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt * attempt)))
                        .await;
                }
                other => break other,
            }
        }
    }};
}

// After `retrying!`, which it uses.
mod programme;
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

    async fn apply_tx(&self, req: &TransitionRequest<'_>) -> R<Applied> {
        let mut tx = self.begin().await?;
        let before = fetch_instance_for_update(&mut tx, req.instance_id)
            .await?
            .ok_or_else(|| StoreError::not_found("instance", req.instance_id))?;
        let scoped = req
            .idempotency_key
            .as_deref()
            .map(|k| scoped_key(&req.actor_id, k));
        if let Some(key) = &scoped {
            let stored = sqlx::query(
                "SELECT request_hash, result::text AS result FROM idempotency_keys \
                 WHERE scoped_key = $1",
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
            "UPDATE instances SET state = $1, stage = $2, is_final = $3, data = $4::json, \
             version = $5, updated_at = $6, due_at = $7, last_hash = $8 WHERE id = $9 AND version = $10",
        )
        .bind(&after.state)
        .bind(&after.stage)
        .bind(after.is_final)
        .bind(json(&after.data))
        .bind(after.version)
        .bind(after.updated_at)
        .bind(after.due_at)
        .bind(&after.last_hash)
        .bind(after.id)
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
            queue::mark_timer_done::<PgDialect>(&mut tx, timer_id, token, at).await?;
        }
        if plan.cancel_state_timers {
            sqlx::query(
                "UPDATE timers SET status = 'cancelled', lease_until = NULL \
                 WHERE instance_id = $1 AND status IN ('pending', 'claimed')",
            )
            .bind(after.id)
            .execute(&mut *tx)
            .await?;
        }
        for key in &plan.cancel_timers {
            sqlx::query(
                "UPDATE timers SET status = 'cancelled', lease_until = NULL \
                 WHERE instance_id = $1 AND key = $2 AND status IN ('pending', 'claimed')",
            )
            .bind(after.id)
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
            queue::insert_outbox::<PgDialect>(&mut tx, &messages, at).await?;
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
                 VALUES ($1, $2, $3::json, $4)",
            )
            .bind(key)
            .bind(&req.request_hash)
            .bind(result)
            .bind(at)
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
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) AS n FROM instances i");
        push_filters(&mut count, visibility, filter);
        let total_count: i64 = count.build().fetch_one(&self.pool).await?.try_get("n")?;

        let col = sort_column(page.sort);
        let (cmp, dir) = match page.order {
            SortOrder::Asc => (">", "ASC"),
            SortOrder::Desc => ("<", "DESC"),
        };
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {} FROM instances i",
            prefixed(INSTANCE_COLS, "i.")
        ));
        push_filters(&mut q, visibility, filter);
        if let Some(after) = &page.after {
            let id = after.id;
            match (&after.key, page.sort) {
                (Some(k), SortKey::Title) => {
                    push_after(&mut q, col, cmp, k.clone(), id);
                }
                (Some(k), _) => {
                    let at = DateTime::parse_from_rfc3339(k)
                        .map_err(|_| {
                            StoreError::Invalid(format!("the cursor key `{k}` is not a time"))
                        })?
                        .with_timezone(&Utc);
                    push_after(&mut q, col, cmp, at, id);
                }
                // In the trailing rows without a key: order by id alone.
                (None, _) => {
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
                    SortKey::CreatedAt => Some(cursor_time(i.created_at)),
                    SortKey::UpdatedAt => Some(cursor_time(i.updated_at)),
                    SortKey::DueAt => i.due_at.map(cursor_time),
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

/// Continue after the row with sort key `key` and id `id`: rows with a key sort before
/// rows without one, in both directions.
fn push_after<'a, T>(q: &mut QueryBuilder<'a, Postgres>, col: &str, cmp: &str, key: T, id: Uuid)
where
    T: 'a + Clone + Send + sqlx::Encode<'a, Postgres> + sqlx::Type<Postgres>,
{
    q.push(format!(" AND ((i.{col} {cmp} "))
        .push_bind(key.clone())
        .push(format!(") OR (i.{col} = "))
        .push_bind(key)
        .push(format!(" AND i.id {cmp} "))
        .push_bind(id)
        .push(format!(") OR i.{col} IS NULL)"));
}

/// Cursor keys are RFC 3339 with microseconds, as on SQLite.
fn cursor_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
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

fn push_filters(q: &mut QueryBuilder<'_, Postgres>, visibility: &Visibility, f: &InstanceFilter) {
    q.push(" WHERE 1 = 1");
    match visibility {
        Visibility::All => {}
        Visibility::Org(org) => {
            q.push(" AND i.org_id = ").push_bind(*org);
        }
        Visibility::City(city) => {
            q.push(" AND i.city_id = ").push_bind(*city);
        }
        Visibility::AssignedExpert(user) => {
            q.push(format!(
                " AND EXISTS (SELECT 1 FROM expert_assignments e \
                 WHERE e.instance_id = i.id AND {} AND e.user_id = ",
                grantflow_store::EXPERT_GRANT_IS_LIVE
            ))
            .push_bind(*user)
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
        q.push(" AND i.org_id = ").push_bind(org);
    }
    if let Some(parent) = f.parent_id {
        q.push(" AND i.parent_id = ").push_bind(parent);
    }
    if let Some(now) = f.overdue_at {
        q.push(" AND i.is_final = FALSE AND i.due_at < ")
            .push_bind(now);
    }
    if let Some(t) = f.due_before {
        q.push(" AND i.due_at <= ").push_bind(t);
    }
    if let Some(t) = f.due_after {
        q.push(" AND i.due_at >= ").push_bind(t);
    }
    if let Some(text) = f.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        // ILIKE folds case as SQLite's LIKE does for ASCII; CJK has no case.
        let pattern = like_pattern(text);
        q.push(" AND (i.title ILIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR i.data::text ILIKE ")
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
        q.push(" AND i.is_final = FALSE");
    }
}

/// Insert a new instance and its initial timers (inside the caller's transaction).
pub(crate) async fn insert_instance(conn: &mut PgConnection, new: &NewInstance) -> R<Instance> {
    let org_row = sqlx::query(
        "SELECT o.kind, o.parent_id, p.kind AS parent_kind FROM organisations o \
         LEFT JOIN organisations p ON p.id = o.parent_id WHERE o.id = $1",
    )
    .bind(new.org_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("organisation", new.org_id))?;
    let kind = grantflow_store::OrgKind::parse(&org_row.try_get::<String, _>("kind")?)
        .ok_or_else(|| StoreError::Backend("bad organisation kind".into()))?;
    let parent = match (
        org_row.try_get::<Option<Uuid>, _>("parent_id")?,
        org_row.try_get::<Option<String>, _>("parent_kind")?,
    ) {
        (Some(id), Some(k)) => grantflow_store::OrgKind::parse(&k).map(|k| (id, k)),
        _ => None,
    };
    let created_at = new.created_at.trunc_subsecs(6);
    let instance = Instance {
        id: new.id,
        workflow_id: new.workflow_id.clone(),
        workflow_version: new.workflow_version,
        state: new.state.clone(),
        stage: new.stage.clone(),
        is_final: false,
        data: new.data.clone(),
        version: 0,
        parent_id: new.parent_id,
        org_id: new.org_id,
        city_id: support::city_of(kind, new.org_id, parent),
        title: new.title.clone(),
        created_by: new.created_by,
        created_at,
        updated_at: created_at,
        due_at: new.due_at.map(|t| t.trunc_subsecs(6)),
        review: Value::Null,
        budget: Value::Null,
        last_hash: GENESIS_HASH.to_string(),
    };
    sqlx::query(
        "INSERT INTO instances (id, workflow_id, workflow_version, state, stage, is_final, \
         data, version, parent_id, org_id, city_id, title, created_by, created_at, \
         updated_at, due_at, review, last_hash) VALUES ($1, $2, $3, $4, $5, $6, $7::json, \
         $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::json, $18)",
    )
    .bind(instance.id)
    .bind(&instance.workflow_id)
    .bind(i64::from(instance.workflow_version))
    .bind(&instance.state)
    .bind(&instance.stage)
    .bind(instance.is_final)
    .bind(json(&instance.data))
    .bind(instance.version)
    .bind(instance.parent_id)
    .bind(instance.org_id)
    .bind(instance.city_id)
    .bind(&instance.title)
    .bind(instance.created_by)
    .bind(instance.created_at)
    .bind(instance.updated_at)
    .bind(instance.due_at)
    .bind(json(&instance.review))
    .bind(&instance.last_hash)
    .execute(&mut *conn)
    .await
    .map_err(|e| dup(e.into(), "instance", &instance.id.to_string()))?;
    insert_timers(conn, instance.id, 0, &instance.state, &new.timers).await?;
    Ok(instance)
}

async fn fetch_instance(conn: &mut PgConnection, id: Uuid) -> R<Option<Instance>> {
    let row = sqlx::query(&format!(
        "SELECT {INSTANCE_COLS} FROM instances WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(rows::instance).transpose()
}

/// Read the instance and lock its row until the transaction ends: concurrent writers of
/// the same instance queue here and then see the committed version.
pub(crate) async fn fetch_instance_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> R<Option<Instance>> {
    let row = sqlx::query(&format!(
        "SELECT {INSTANCE_COLS} FROM instances WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(rows::instance).transpose()
}

fn instance_uuid(id: &str) -> R<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| Fail::Store(StoreError::Invalid(format!("`{id}` is not an instance id"))))
}

pub(crate) async fn insert_history(conn: &mut PgConnection, r: &HistoryRecord) -> R<()> {
    sqlx::query(
        "INSERT INTO history (instance_id, seq, at, actor_id, actor_roles, event, from_state, \
         to_state, input, reason, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5::json, $6, $7, $8, $9::json, $10, $11, $12)",
    )
    .bind(instance_uuid(&r.instance_id)?)
    .bind(r.seq)
    .bind(r.at)
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
    conn: &mut PgConnection,
    before: &Instance,
    after: &Instance,
    record: &HistoryRecord,
    cancel_named: bool,
    timers: &[TimerPlan],
) -> R<()> {
    sqlx::query(
        "UPDATE instances SET workflow_version = $1, state = $2, stage = $3, is_final = $4, \
         due_at = $5, version = $6, updated_at = $7, last_hash = $8 WHERE id = $9 AND version = $10",
    )
    .bind(i64::from(after.workflow_version))
    .bind(&after.state)
    .bind(&after.stage)
    .bind(after.is_final)
    .bind(after.due_at)
    .bind(after.version)
    .bind(after.updated_at)
    .bind(&after.last_hash)
    .bind(after.id)
    .bind(before.version)
    .execute(&mut *conn)
    .await?;
    insert_history(&mut *conn, record).await?;
    sqlx::query(
        "UPDATE timers SET status = 'cancelled', lease_until = NULL \
         WHERE instance_id = $1 AND status IN ('pending', 'claimed') AND (kind <> 'named' OR $2)",
    )
    .bind(after.id)
    .bind(cancel_named)
    .execute(&mut *conn)
    .await?;
    insert_timers(&mut *conn, after.id, after.version, &after.state, timers).await?;
    Ok(())
}

pub(crate) async fn insert_timers(
    conn: &mut PgConnection,
    instance_id: Uuid,
    state_entry: i64,
    state: &str,
    timers: &[TimerPlan],
) -> R<()> {
    for t in timers {
        sqlx::query(
            "INSERT INTO timers (id, instance_id, state_entry, state, kind, key, fire_at, \
             due_at, event, notify, step_offset, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::json, $11, 'pending')",
        )
        .bind(Uuid::now_v7())
        .bind(instance_id)
        .bind(state_entry)
        .bind(state)
        .bind(t.kind.as_str())
        .bind(&t.key)
        .bind(t.fire_at)
        .bind(t.due_at)
        .bind(&t.event)
        .bind(strings_json(&t.notify))
        .bind(&t.offset)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn users_where(conn: &mut PgConnection, q: &mut QueryBuilder<'_, Postgres>) -> R<Vec<User>> {
    let rows = q.build().fetch_all(conn).await?;
    rows.iter().map(rows::user).collect()
}

/// The users who receive mail about `instance` for each of `roles` (see
/// [`Store::recipients`]), de-duplicated, in a stable order.
async fn recipients_in(
    conn: &mut PgConnection,
    instance: &Instance,
    roles: &[String],
) -> R<Vec<User>> {
    let mut out: Vec<User> = Vec::new();
    let mut seen = HashSet::new();
    for role in roles {
        let mut q = QueryBuilder::<Postgres>::new(USER_SELECT);
        q.push(" WHERE u.active");
        match role.as_str() {
            "applicant" => {
                q.push(" AND EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = 'applicant') AND u.org_id = ")
                    .push_bind(instance.org_id);
            }
            "city" => {
                let Some(city) = instance.city_id else {
                    continue;
                };
                q.push(" AND EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role = 'city') AND u.org_id = ")
                    .push_bind(city);
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
                    .push_bind(instance.id)
                    .push(")");
            }
            // One reviewer, for the reminders of their own assignment.
            other => match grantflow_store::review::parse_expert_recipient(other) {
                Some(user_id) => {
                    q.push(" AND u.id = ").push_bind(user_id);
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

    // ---- workflow definitions

    async fn save_workflow(&self, record: WorkflowRecord) -> StoreResult<()> {
        let r: R<()> = retrying!(async {
            // Insert-or-compare in one statement pair, so that two processes saving the
            // same definition at start-up do not trip over each other.
            let inserted = sqlx::query(
                "INSERT INTO workflow_definitions (workflow_id, version, hash, definition, \
                 created_at) VALUES ($1, $2, $3, $4::json, $5) ON CONFLICT DO NOTHING",
            )
            .bind(&record.workflow_id)
            .bind(i64::from(record.version))
            .bind(&record.hash)
            .bind(json(&record.definition))
            .bind(record.created_at)
            .execute(&self.pool)
            .await?;
            if inserted.rows_affected() == 1 {
                return Ok(());
            }
            let row = sqlx::query(
                "SELECT hash FROM workflow_definitions WHERE workflow_id = $1 AND version = $2",
            )
            .bind(&record.workflow_id)
            .bind(i64::from(record.version))
            .fetch_one(&self.pool)
            .await?;
            let hash: String = row.try_get("hash")?;
            if hash != record.hash {
                return Err(StoreError::DefinitionChanged {
                    workflow_id: record.workflow_id.clone(),
                    version: record.version,
                    stored: hash,
                }
                .into());
            }
            Ok(())
        });
        Ok(r?)
    }

    async fn list_workflows(&self) -> StoreResult<Vec<WorkflowRecord>> {
        let rows = sqlx::query(
            "SELECT workflow_id, version, hash, definition::text AS definition, created_at \
             FROM workflow_definitions \
             ORDER BY workflow_id, version",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        Ok(rows.iter().map(rows::workflow).collect::<R<_>>()?)
    }

    // ---- instances

    async fn create_instance(&self, new: NewInstance) -> StoreResult<Instance> {
        let r: R<Instance> = retrying!(async {
            let mut tx = self.begin().await?;
            let instance = insert_instance(&mut tx, &new).await?;
            tx.commit().await?;
            Ok(instance)
        });
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
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {INSTANCE_COLS} FROM instances WHERE id "
        ));
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
             WHERE e.instance_id = $1 AND e.user_id = $2 AND {}",
            grantflow_store::EXPERT_GRANT_IS_LIVE
        ))
        .bind(instance_id)
        .bind(user_id)
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
        let rows = sqlx::query(&format!(
            "SELECT DISTINCT e.instance_id FROM expert_assignments e \
             JOIN instances i ON i.id = e.instance_id \
             WHERE e.user_id = $1 AND e.instance_id = ANY($2) AND {}",
            grantflow_store::EXPERT_GRANT_IS_LIVE
        ))
        .bind(user_id)
        .bind(instance_ids)
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        rows.iter()
            .map(|r| r.try_get("instance_id").map_err(rows::backend_error))
            .collect()
    }

    async fn assign_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO expert_assignments (instance_id, user_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(instance_id)
        .bind(user_id)
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
        // The planner is pure, so a retried transaction simply plans again.
        match retrying!(self.apply_tx(&request)) {
            Ok(applied) => Ok(applied),
            Err(Fail::Store(StoreError::Engine(e))) => {
                // The timeout lost the race (a person moved the instance first): the timer
                // is spent all the same, or it would fire again forever.
                if let Some((timer_id, token)) = request.complete_timer {
                    let r: R<bool> = retrying!(async {
                        let mut tx = self.begin().await?;
                        let done = queue::mark_timer_done::<PgDialect>(
                            &mut tx,
                            timer_id,
                            token,
                            Utc::now(),
                        )
                        .await?;
                        tx.commit().await?;
                        Ok(done)
                    });
                    r?;
                }
                Err(StoreError::Engine(e))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn extend_deadline(&self, request: ExtendDeadline) -> StoreResult<Applied> {
        let r: R<Applied> = retrying!(async {
            let mut tx = self.begin().await?;
            let before = fetch_instance_for_update(&mut tx, request.instance_id)
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
        });
        Ok(r?)
    }

    async fn migrate_instance(&self, request: MigrateInstance) -> StoreResult<Applied> {
        let r: R<Applied> = retrying!(async {
            let mut tx = self.begin().await?;
            let before = fetch_instance_for_update(&mut tx, request.instance_id)
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
        });
        Ok(r?)
    }

    async fn set_review_result(&self, instance_id: Uuid, review: Value) -> StoreResult<()> {
        let r = sqlx::query("UPDATE instances SET review = $1::json WHERE id = $2")
            .bind(json(&review))
            .bind(instance_id)
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
            "SELECT {HISTORY_COLS} FROM history WHERE instance_id = $1 ORDER BY seq"
        ))
        .bind(instance_id)
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
        rows.iter()
            .map(|row| row.try_get::<Uuid, _>("id"))
            .collect::<Result<_, _>>()
            .map_err(rows::backend_error)
    }

    async fn instances_due_before(&self, until: DateTime<Utc>) -> StoreResult<Vec<Instance>> {
        let rows = sqlx::query(&format!(
            "SELECT {INSTANCE_COLS} FROM instances WHERE is_final = FALSE AND due_at IS NOT NULL \
             AND due_at <= $1 ORDER BY due_at, id"
        ))
        .bind(until)
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        Ok(rows.iter().map(rows::instance).collect::<R<_>>()?)
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
