//! Workflow definitions, instances, their hash-chained history and timers, expert
//! assignments and notification recipients: the rows, and the reads and writes of them.
//!
//! The audited changes built on these rows (`apply_transition` and the others) are in
//! [`super::transitions`]; listings are in [`super::listing`].

use std::collections::HashSet;

use chrono::{DateTime, SubsecRound, Utc};
use grantflow_domain::audit::{GENESIS_HASH, HistoryRecord};
use grantflow_domain::schedule::TimerPlan;
use serde_json::Value;
use uuid::Uuid;

use super::accounts::{user, user_select};
use super::transitions::{apply_transition, extend_deadline, migrate_instance, set_review_result};
use super::{Args, Conn, Dialect, Fail, Get, Pools, R, Row, dup, execute, fetch_all};
use crate::sql::retrying;
use crate::support::{self};
use crate::{
    Applied, EXPERT_GRANT_IS_LIVE, ExtendDeadline, Instance, InstanceFilter, MigrateInstance,
    NewInstance, OrgKind, Page, PageRequest, Requester, StoreError, StoreResult, TransitionRequest,
    User, Visibility, WorkflowRecord,
};

pub const INSTANCE_COLS: &str = "id, workflow_id, workflow_version, state, stage, \
     is_final, data, version, parent_id, org_id, city_id, title, created_by, created_at, \
     updated_at, due_at, review, last_hash, budget";

pub fn instance<D: Dialect>(row: &Row<D>) -> R<Instance> {
    let g = Get::<D>(row);
    Ok(Instance {
        id: g.id("id")?,
        workflow_id: g.str("workflow_id")?,
        workflow_version: g.u32("workflow_version")?,
        state: g.str("state")?,
        stage: g.str("stage")?,
        is_final: g.bool("is_final")?,
        data: g.json("data")?,
        version: g.i64("version")?,
        parent_id: g.opt_id("parent_id")?,
        org_id: g.id("org_id")?,
        city_id: g.opt_id("city_id")?,
        title: g.str("title")?,
        created_by: g.id("created_by")?,
        created_at: g.time("created_at")?,
        updated_at: g.time("updated_at")?,
        due_at: g.opt_time("due_at")?,
        review: g.json("review")?,
        budget: g.json("budget")?,
        last_hash: g.str("last_hash")?,
    })
}

pub fn instances<D: Dialect>(rows: &[Row<D>]) -> R<Vec<Instance>> {
    rows.iter().map(instance::<D>).collect()
}

pub const HISTORY_COLS: &str = "instance_id, seq, at, actor_id, actor_roles, event, \
     from_state, to_state, input, reason, prev_hash, hash, data_hash";

pub fn history_row<D: Dialect>(row: &Row<D>) -> R<HistoryRecord> {
    let g = Get::<D>(row);
    Ok(HistoryRecord {
        instance_id: g.id("instance_id")?.to_string(),
        seq: g.i64("seq")?,
        at: g.time("at")?,
        actor_id: g.str("actor_id")?,
        actor_roles: g.strings("actor_roles")?,
        event: g.str("event")?,
        from_state: g.str("from_state")?,
        to_state: g.str("to_state")?,
        input: g.json("input")?,
        reason: g.opt_str("reason")?,
        prev_hash: g.str("prev_hash")?,
        hash: g.str("hash")?,
        data_hash: g.opt_str("data_hash")?,
    })
}

pub fn workflow<D: Dialect>(row: &Row<D>) -> R<WorkflowRecord> {
    let g = Get::<D>(row);
    Ok(WorkflowRecord {
        workflow_id: g.str("workflow_id")?,
        version: g.u32("version")?,
        hash: g.str("hash")?,
        definition: g.json("definition")?,
        created_at: g.time("created_at")?,
    })
}

/// Read an instance; inside a write transaction with `lock`, also lock its row until the
/// transaction ends, so that concurrent writers of the same instance queue and then see
/// the committed version.
pub async fn fetch_instance<D: Dialect>(
    conn: &mut Conn<D>,
    id: Uuid,
    lock: bool,
) -> R<Option<Instance>> {
    let sql = format!(
        "SELECT {INSTANCE_COLS} FROM instances WHERE id = $1{}",
        if lock { D::FOR_UPDATE } else { "" }
    );
    let row = D::fetch_optional(conn, &sql, Args::new().id(id)).await?;
    row.as_ref().map(instance::<D>).transpose()
}

/// Read and lock the instance a transition changes, if `requester` (when a person asks)
/// may see it: the listings' visibility condition on the same statement, so an instance
/// they may not see is exactly as absent as a missing one.
pub(super) async fn fetch_instance_for<D: Dialect>(
    conn: &mut Conn<D>,
    id: Uuid,
    requester: Option<&Requester>,
) -> R<Option<Instance>> {
    let mut args = Args::new().id(id);
    let visible = requester
        .and_then(|r| super::listing::visible_to_any(&mut args, &r.scopes))
        .map(|c| format!(" AND {c}"))
        .unwrap_or_default();
    let sql = format!(
        "SELECT {INSTANCE_COLS} FROM instances i WHERE i.id = $1{visible}{}",
        D::FOR_UPDATE
    );
    let row = D::fetch_optional(conn, &sql, args).await?;
    row.as_ref().map(instance::<D>).transpose()
}

/// The values of an instance row, in [`INSTANCE_COLS`] order, after `args`.
pub(super) fn instance_args(args: Args, i: &Instance) -> Args {
    args.id(i.id)
        .text(&i.workflow_id)
        .int(i64::from(i.workflow_version))
        .text(&i.state)
        .text(&i.stage)
        .bool(i.is_final)
        .json(&i.data)
        .int(i.version)
        .opt_id(i.parent_id)
        .id(i.org_id)
        .opt_id(i.city_id)
        .text(&i.title)
        .id(i.created_by)
        .time(i.created_at)
        .time(i.updated_at)
        .opt_time(i.due_at)
        .json(&i.review)
        .text(&i.last_hash)
        .json(&i.budget)
}

/// The values of a history record, in [`HISTORY_COLS`] order, after `args`.
pub(super) fn history_args(args: Args, r: &HistoryRecord) -> R<Args> {
    Ok(args
        .id(instance_uuid(&r.instance_id)?)
        .int(r.seq)
        .time(r.at)
        .text(&r.actor_id)
        .strings(&r.actor_roles)
        .text(&r.event)
        .text(&r.from_state)
        .text(&r.to_state)
        .json(&r.input)
        .opt_text(r.reason.clone())
        .text(&r.prev_hash)
        .text(&r.hash)
        .opt_text(r.data_hash.clone()))
}

/// Insert a new instance and its initial timers (inside the caller's transaction).
pub async fn insert_instance<D: Dialect>(conn: &mut Conn<D>, new: &NewInstance) -> R<Instance> {
    let org_row = D::fetch_optional(
        &mut *conn,
        "SELECT o.kind, o.parent_id, p.kind AS parent_kind FROM organisations o \
         LEFT JOIN organisations p ON p.id = o.parent_id WHERE o.id = $1",
        Args::new().id(new.org_id),
    )
    .await?
    .ok_or_else(|| StoreError::not_found("organisation", new.org_id))?;
    let g = Get::<D>(&org_row);
    let kind = OrgKind::parse(&g.str("kind")?)
        .ok_or_else(|| StoreError::Backend("bad organisation kind".into()))?;
    let parent = match (g.opt_id("parent_id")?, g.opt_str("parent_kind")?) {
        (Some(id), Some(k)) => OrgKind::parse(&k).map(|k| (id, k)),
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
    D::execute(
        &mut *conn,
        &format!(
            "INSERT INTO instances ({INSTANCE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        ),
        instance_args(Args::new(), &instance),
    )
    .await
    .map_err(|e| dup::<D>(e.into(), "instance", &instance.id.to_string()))?;
    insert_timers::<D>(conn, instance.id, 0, &instance.state, &new.timers).await?;
    Ok(instance)
}

fn instance_uuid(id: &str) -> R<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| Fail::Store(StoreError::Invalid(format!("`{id}` is not an instance id"))))
}

pub async fn insert_history<D: Dialect>(conn: &mut Conn<D>, r: &HistoryRecord) -> R<()> {
    let (sql, args) = history_insert(r)?;
    D::execute(conn, &sql, args).await?;
    Ok(())
}

/// The statement that inserts a sealed history record.
pub fn history_insert(r: &HistoryRecord) -> R<(String, Args)> {
    Ok((
        format!(
            "INSERT INTO history ({HISTORY_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ),
        history_args(Args::new(), r)?,
    ))
}

/// Insert the timers of one state entry, in one statement (one round trip however many
/// reminders the state has).
pub async fn insert_timers<D: Dialect>(
    conn: &mut Conn<D>,
    instance_id: Uuid,
    state_entry: i64,
    state: &str,
    timers: &[TimerPlan],
) -> R<()> {
    for (sql, args) in timer_inserts(instance_id, state_entry, state, timers) {
        D::execute(&mut *conn, &sql, args).await?;
    }
    Ok(())
}

/// The statements that insert the timers of one state entry: one per 500 timers.
pub fn timer_inserts(
    instance_id: Uuid,
    state_entry: i64,
    state: &str,
    timers: &[TimerPlan],
) -> Vec<(String, Args)> {
    // 11 parameters a row; a chunk stays far below either database's parameter limit.
    timers
        .chunks(500)
        .map(|chunk| {
            let mut sql = String::from(
                "INSERT INTO timers (id, instance_id, state_entry, state, kind, key, fire_at, \
                 due_at, event, notify, step_offset, status) VALUES ",
            );
            let mut args = Args::new();
            for (i, t) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                let first = args.0.len() + 1;
                args = args
                    .id(Uuid::now_v7())
                    .id(instance_id)
                    .int(state_entry)
                    .text(state)
                    .text(t.kind.as_str())
                    .text(&t.key)
                    .time(t.fire_at)
                    .opt_time(t.due_at)
                    .opt_text(t.event.clone())
                    .strings(&t.notify)
                    .opt_text(t.offset.clone());
                sql.push('(');
                for p in first..first + 11 {
                    sql.push_str(&format!("${p}, "));
                }
                sql.push_str("'pending')");
            }
            (sql, args)
        })
        .collect()
}

/// Write an instance's new state entry in `conn`'s transaction: the instance row (only if
/// it is still at `before`'s version), the sealed history record, and its timers — the
/// pending ones cancelled (named timers kept unless `cancel_named`), `timers` inserted for
/// the entry. Shared by deadline extensions and version migrations.
pub(super) async fn rewrite_entry<D: Dialect>(
    conn: &mut Conn<D>,
    before: &Instance,
    after: &Instance,
    record: &HistoryRecord,
    cancel_named: bool,
    timers: &[TimerPlan],
) -> R<()> {
    D::execute(
        &mut *conn,
        "UPDATE instances SET workflow_version = $1, state = $2, stage = $3, is_final = $4, \
         due_at = $5, version = $6, updated_at = $7, last_hash = $8 \
         WHERE id = $9 AND version = $10",
        Args::new()
            .int(i64::from(after.workflow_version))
            .text(&after.state)
            .text(&after.stage)
            .bool(after.is_final)
            .opt_time(after.due_at)
            .int(after.version)
            .time(after.updated_at)
            .text(&after.last_hash)
            .id(after.id)
            .int(before.version),
    )
    .await?;
    insert_history::<D>(&mut *conn, record).await?;
    D::execute(
        &mut *conn,
        "UPDATE timers SET status = 'cancelled', lease_until = NULL WHERE instance_id = $1 \
         AND status IN ('pending', 'claimed') AND (kind <> 'named' OR $2)",
        Args::new().id(after.id).bool(cancel_named),
    )
    .await?;
    insert_timers::<D>(&mut *conn, after.id, after.version, &after.state, timers).await?;
    Ok(())
}

/// The users who receive mail about `instance` for each of `roles` (see
/// [`crate::Store::recipients`]), de-duplicated, in a stable order.
pub async fn recipients_in<D: Dialect>(
    conn: &mut Conn<D>,
    instance: &Instance,
    roles: &[String],
) -> R<Vec<User>> {
    let mut out: Vec<User> = Vec::new();
    let mut seen = HashSet::new();
    let has_role = "EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id AND r.role =";
    for role in roles {
        let (cond, args) = match role.as_str() {
            "applicant" => (
                format!("{has_role} 'applicant') AND u.org_id = $1"),
                Args::new().id(instance.org_id),
            ),
            "city" => {
                let Some(city) = instance.city_id else {
                    continue;
                };
                (
                    format!("{has_role} 'city') AND u.org_id = $1"),
                    Args::new().id(city),
                )
            }
            "manager" | "admin" => (format!("{has_role} $1)"), Args::new().text(role)),
            "expert" => (
                "EXISTS (SELECT 1 FROM expert_assignments e WHERE e.user_id = u.id \
                 AND e.instance_id = $1)"
                    .to_string(),
                Args::new().id(instance.id),
            ),
            // One reviewer, for the reminders of their own assignment.
            other => match crate::review::parse_expert_recipient(other) {
                Some(user_id) => ("u.id = $1".to_string(), Args::new().id(user_id)),
                None => continue,
            },
        };
        let sql = format!(
            "{} WHERE u.active AND {cond} ORDER BY u.username",
            user_select::<D>()
        );
        for row in D::fetch_all(&mut *conn, &sql, args).await? {
            let u = user::<D>(&row)?;
            if seen.insert(u.id) {
                out.push(u);
            }
        }
    }
    Ok(out)
}

// ---- workflow definitions

pub async fn save_workflow<D: Dialect>(
    pool: &Pools<D::DB>,
    record: WorkflowRecord,
) -> StoreResult<()> {
    let r: R<()> = retrying!(D, async {
        // Insert-or-compare in one statement pair, so that two processes saving the
        // same definition at start-up do not trip over each other.
        let inserted = execute::<D>(
            pool,
            "INSERT INTO workflow_definitions (workflow_id, version, hash, definition, \
             created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            Args::new()
                .text(&record.workflow_id)
                .int(i64::from(record.version))
                .text(&record.hash)
                .json(&record.definition)
                .time(record.created_at),
        )
        .await?;
        if inserted == 1 {
            return Ok(());
        }
        let row = super::fetch_optional::<D>(
            pool,
            "SELECT hash FROM workflow_definitions WHERE workflow_id = $1 AND version = $2",
            Args::new()
                .text(&record.workflow_id)
                .int(i64::from(record.version)),
        )
        .await?
        .ok_or_else(|| StoreError::Backend("the workflow definition vanished".into()))?;
        let hash = Get::<D>(&row).str("hash")?;
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
    r.map_err(Fail::store::<D>)
}

pub async fn list_workflows<D: Dialect>(pool: &Pools<D::DB>) -> StoreResult<Vec<WorkflowRecord>> {
    let r: R<Vec<WorkflowRecord>> = async {
        let rows = fetch_all::<D>(
            pool,
            "SELECT workflow_id, version, hash, definition, created_at \
             FROM workflow_definitions ORDER BY workflow_id, version",
            Args::new(),
        )
        .await?;
        rows.iter().map(workflow::<D>).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

// ---- instances

pub async fn create_instance<D: Dialect>(
    pool: &Pools<D::DB>,
    new: NewInstance,
) -> StoreResult<Instance> {
    let r: R<Instance> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let instance = insert_instance::<D>(&mut *tx, &new).await?;
        tx.commit().await?;
        Ok(instance)
    });
    r.map_err(Fail::store::<D>)
}

pub async fn get_instance<D: Dialect>(pool: &Pools<D::DB>, id: Uuid) -> StoreResult<Instance> {
    let r: R<Instance> = async {
        let mut conn = pool.readers().acquire().await?;
        fetch_instance::<D>(&mut *conn, id, false)
            .await?
            .ok_or_else(|| StoreError::not_found("instance", id).into())
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn get_instances<D: Dialect>(
    pool: &Pools<D::DB>,
    ids: &[Uuid],
) -> StoreResult<Vec<Instance>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {INSTANCE_COLS} FROM instances WHERE id {} ORDER BY created_at, id",
        D::in_ids("$1")
    );
    let r: R<Vec<Instance>> =
        async { instances::<D>(&fetch_all::<D>(pool, &sql, Args::new().ids(ids)).await?) }.await;
    r.map_err(Fail::store::<D>)
}

pub async fn is_assigned_expert<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
    user_id: Uuid,
) -> StoreResult<bool> {
    let row = super::fetch_optional::<D>(
        pool,
        &format!(
            "SELECT 1 AS one FROM expert_assignments e JOIN instances i ON i.id = e.instance_id \
             WHERE e.instance_id = $1 AND e.user_id = $2 AND {EXPERT_GRANT_IS_LIVE}"
        ),
        Args::new().id(instance_id).id(user_id),
    )
    .await
    .map_err(Fail::store::<D>)?;
    Ok(row.is_some())
}

pub async fn assigned_instances<D: Dialect>(
    pool: &Pools<D::DB>,
    user_id: Uuid,
    instance_ids: &[Uuid],
) -> StoreResult<Vec<Uuid>> {
    if instance_ids.is_empty() {
        return Ok(Vec::new());
    }
    let r: R<Vec<Uuid>> = async {
        let rows = fetch_all::<D>(
            pool,
            &format!(
                "SELECT DISTINCT e.instance_id FROM expert_assignments e \
                 JOIN instances i ON i.id = e.instance_id \
                 WHERE e.user_id = $1 AND e.instance_id {} AND {EXPERT_GRANT_IS_LIVE}",
                D::in_ids("$2")
            ),
            Args::new().id(user_id).ids(instance_ids),
        )
        .await?;
        rows.iter().map(|r| Get::<D>(r).id("instance_id")).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn assign_expert<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
    user_id: Uuid,
) -> StoreResult<()> {
    execute::<D>(
        pool,
        "INSERT INTO expert_assignments (instance_id, user_id) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING",
        Args::new().id(instance_id).id(user_id),
    )
    .await
    .map_err(Fail::store::<D>)?;
    Ok(())
}

pub async fn recipients<D: Dialect>(
    pool: &Pools<D::DB>,
    instance: &Instance,
    roles: &[String],
) -> StoreResult<Vec<User>> {
    let r: R<Vec<User>> = async {
        let mut conn = pool.readers().acquire().await?;
        recipients_in::<D>(&mut *conn, instance, roles).await
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn history<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
) -> StoreResult<Vec<HistoryRecord>> {
    let r: R<Vec<HistoryRecord>> = async {
        let rows = fetch_all::<D>(
            pool,
            &format!("SELECT {HISTORY_COLS} FROM history WHERE instance_id = $1 ORDER BY seq"),
            Args::new().id(instance_id),
        )
        .await?;
        rows.iter().map(history_row::<D>).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn instance_ids<D: Dialect>(pool: &Pools<D::DB>) -> StoreResult<Vec<Uuid>> {
    let r: R<Vec<Uuid>> = async {
        let rows = fetch_all::<D>(
            pool,
            "SELECT id FROM instances ORDER BY created_at, id",
            Args::new(),
        )
        .await?;
        rows.iter().map(|r| Get::<D>(r).id("id")).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn instances_due_before<D: Dialect>(
    pool: &Pools<D::DB>,
    until: DateTime<Utc>,
) -> StoreResult<Vec<Instance>> {
    let sql = format!(
        "SELECT {INSTANCE_COLS} FROM instances WHERE is_final = FALSE AND due_at IS NOT NULL \
         AND due_at <= $1 ORDER BY due_at, id"
    );
    let r: R<Vec<Instance>> =
        async { instances::<D>(&fetch_all::<D>(pool, &sql, Args::new().time(until)).await?) }.await;
    r.map_err(Fail::store::<D>)
}

// ---- [`InstanceStore`] for every SQL backend

#[async_trait::async_trait]
impl<S: super::SqlBackend> crate::InstanceStore for S {
    async fn save_workflow(&self, record: WorkflowRecord) -> StoreResult<()> {
        save_workflow::<S::D>(self.sql_pool(), record).await
    }

    async fn list_workflows(&self) -> StoreResult<Vec<WorkflowRecord>> {
        list_workflows::<S::D>(self.sql_pool()).await
    }

    async fn create_instance(&self, new: NewInstance) -> StoreResult<Instance> {
        create_instance::<S::D>(self.sql_pool(), new).await
    }

    async fn get_instance(&self, id: Uuid) -> StoreResult<Instance> {
        get_instance::<S::D>(self.sql_pool(), id).await
    }

    async fn get_instances(&self, ids: &[Uuid]) -> StoreResult<Vec<Instance>> {
        get_instances::<S::D>(self.sql_pool(), ids).await
    }

    async fn list_instances(
        &self,
        visibility: &Visibility,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> StoreResult<Page<Instance>> {
        super::listing::list_instances::<S::D>(self.sql_pool(), visibility, filter, page).await
    }

    async fn is_assigned_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
        is_assigned_expert::<S::D>(self.sql_pool(), instance_id, user_id).await
    }

    async fn assigned_instances(
        &self,
        user_id: Uuid,
        instance_ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>> {
        assigned_instances::<S::D>(self.sql_pool(), user_id, instance_ids).await
    }

    async fn assign_expert(&self, instance_id: Uuid, user_id: Uuid) -> StoreResult<()> {
        assign_expert::<S::D>(self.sql_pool(), instance_id, user_id).await
    }

    async fn recipients(&self, instance: &Instance, roles: &[String]) -> StoreResult<Vec<User>> {
        recipients::<S::D>(self.sql_pool(), instance, roles).await
    }

    async fn apply_transition(&self, request: TransitionRequest<'_>) -> StoreResult<Applied> {
        apply_transition::<S::D>(self.sql_pool(), request).await
    }

    async fn extend_deadline(&self, request: ExtendDeadline) -> StoreResult<Applied> {
        extend_deadline::<S::D>(self.sql_pool(), request).await
    }

    async fn migrate_instance(&self, request: MigrateInstance) -> StoreResult<Applied> {
        migrate_instance::<S::D>(self.sql_pool(), request).await
    }

    async fn set_review_result(&self, instance_id: Uuid, review: Value) -> StoreResult<()> {
        set_review_result::<S::D>(self.sql_pool(), instance_id, review).await
    }

    async fn history(&self, instance_id: Uuid) -> StoreResult<Vec<HistoryRecord>> {
        history::<S::D>(self.sql_pool(), instance_id).await
    }

    async fn instance_ids(&self) -> StoreResult<Vec<Uuid>> {
        instance_ids::<S::D>(self.sql_pool()).await
    }

    async fn instances_due_before(&self, until: DateTime<Utc>) -> StoreResult<Vec<Instance>> {
        instances_due_before::<S::D>(self.sql_pool(), until).await
    }

    async fn audit_page(
        &self,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> StoreResult<crate::AuditPage> {
        super::audit::audit_page::<S::D>(self.sql_pool(), after, limit).await
    }

    async fn audit_split(&self, parts: u32) -> StoreResult<Vec<(DateTime<Utc>, Uuid)>> {
        super::audit::audit_split::<S::D>(self.sql_pool(), parts).await
    }
}
