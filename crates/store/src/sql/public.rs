//! [`crate::PublicStore`] in SQL: public objections and their history.
//!
//! A submission reads its instance under the dialect's lock (`FOR UPDATE`; SQLite's write
//! transaction holds the lock from its start), so it never lands on a project that a
//! concurrent transition has just moved out of publicity.

use chrono::SubsecRound;
use uuid::Uuid;

use super::instances::fetch_instance;
use super::{Args, Dialect, Fail, Get, Pools, R, Row, bad, fetch_all, fetch_optional};
use crate::public::{ObjectionEvent, ObjectionStatus, PublicObjection, ResolveObjection};
use crate::sql::retrying;
use crate::{StoreError, StoreResult};

const COLS: &str = "id, instance_id, name, contact, reason, submitted_at, status, resolution, \
     resolved_by, resolved_at";

fn objection<D: Dialect>(row: &Row<D>) -> R<PublicObjection> {
    let g = Get::<D>(row);
    let status = g.str("status")?;
    Ok(PublicObjection {
        id: g.id("id")?,
        instance_id: g.id("instance_id")?,
        name: g.str("name")?,
        contact: g.str("contact")?,
        reason: g.str("reason")?,
        submitted_at: g.time("submitted_at")?,
        status: ObjectionStatus::parse(&status).ok_or_else(|| bad("objection status", &status))?,
        resolution: g.opt_str("resolution")?,
        resolved_by: g.opt_id("resolved_by")?,
        resolved_at: g.opt_time("resolved_at")?,
    })
}

fn event<D: Dialect>(row: &Row<D>) -> R<ObjectionEvent> {
    let g = Get::<D>(row);
    Ok(ObjectionEvent {
        id: g.id("id")?,
        objection_id: g.id("objection_id")?,
        action: g.str("action")?,
        reason: g.opt_str("reason")?,
        actor_id: g.opt_id("actor_id")?,
        at: g.time("at")?,
    })
}

async fn append<D: Dialect>(
    conn: &mut super::Conn<D>,
    objection_id: Uuid,
    action: &str,
    reason: Option<&str>,
    actor: Option<Uuid>,
    at: chrono::DateTime<chrono::Utc>,
) -> R<()> {
    D::execute(
        conn,
        "INSERT INTO public_objection_history (id, objection_id, action, reason, actor_id, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        Args::new()
            .id(Uuid::now_v7())
            .id(objection_id)
            .text(action)
            .opt_text(reason)
            .opt_id(actor)
            .time(at),
    )
    .await?;
    Ok(())
}

pub async fn submit_objection<D: Dialect>(
    pool: &Pools<D::DB>,
    o: PublicObjection,
    workflow_id: &str,
    states: &[String],
) -> StoreResult<Option<PublicObjection>> {
    let o = PublicObjection {
        submitted_at: o.submitted_at.trunc_subsecs(6),
        status: ObjectionStatus::Open,
        resolution: None,
        resolved_by: None,
        resolved_at: None,
        ..o
    };
    let r: R<Option<PublicObjection>> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let Some(instance) = fetch_instance::<D>(&mut *tx, o.instance_id, true).await? else {
            return Ok(None);
        };
        if instance.workflow_id != workflow_id || !states.contains(&instance.state) {
            return Ok(None);
        }
        D::execute(
            &mut *tx,
            &format!(
                "INSERT INTO public_objections ({COLS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, NULL)"
            ),
            Args::new()
                .id(o.id)
                .id(o.instance_id)
                .text(o.name.as_str())
                .text(o.contact.as_str())
                .text(o.reason.as_str())
                .time(o.submitted_at)
                .text(ObjectionStatus::Open.as_str()),
        )
        .await?;
        append::<D>(&mut tx, o.id, "submitted", None, None, o.submitted_at).await?;
        tx.commit().await?;
        Ok(Some(o.clone()))
    });
    r.map_err(Fail::store::<D>)
}

pub async fn get_objection<D: Dialect>(
    pool: &Pools<D::DB>,
    id: Uuid,
) -> StoreResult<PublicObjection> {
    let r: R<PublicObjection> = async {
        let row = fetch_optional::<D>(
            pool,
            &format!("SELECT {COLS} FROM public_objections WHERE id = $1"),
            Args::new().id(id),
        )
        .await?
        .ok_or_else(|| {
            Fail::Store(StoreError::NotFound {
                what: "objection",
                id: id.to_string(),
            })
        })?;
        objection::<D>(&row)
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn objections<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Option<Uuid>,
    open_only: bool,
    limit: u32,
) -> StoreResult<Vec<PublicObjection>> {
    let r: R<Vec<PublicObjection>> = async {
        let mut args = Args::new();
        let mut conds = Vec::new();
        if let Some(id) = instance_id {
            let p = args.push(super::Arg::Id(Some(id)));
            conds.push(format!("instance_id = {p}"));
        }
        if open_only {
            let p = args.push(super::Arg::Text(Some("open".into())));
            conds.push(format!("status = {p}"));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLS} FROM public_objections{filter} \
             ORDER BY submitted_at DESC, id DESC LIMIT {}",
            limit.min(10_000)
        );
        let rows = fetch_all::<D>(pool, &sql, args).await?;
        rows.iter().map(objection::<D>).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

/// Open objections on an instance, on a connection (inside a transition's transaction).
pub(super) async fn open_objections_in<D: Dialect>(
    conn: &mut super::Conn<D>,
    instance_id: Uuid,
) -> R<i64> {
    let row = D::fetch_optional(
        conn,
        "SELECT COUNT(*) AS n FROM public_objections WHERE instance_id = $1 AND status = 'open'",
        Args::new().id(instance_id),
    )
    .await?
    .ok_or_else(|| bad("objection count", "no row"))?;
    Get::<D>(&row).i64("n")
}

pub async fn open_objection_count<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
) -> StoreResult<i64> {
    let r: R<i64> = async {
        let mut conn = pool.readers().acquire().await?;
        open_objections_in::<D>(&mut *conn, instance_id).await
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn resolve_objection<D: Dialect>(
    pool: &Pools<D::DB>,
    res: ResolveObjection,
) -> StoreResult<Option<PublicObjection>> {
    if res.outcome == ObjectionStatus::Open {
        return Err(StoreError::Invalid(
            "an objection is resolved as upheld or dismissed".into(),
        ));
    }
    let at = res.at.trunc_subsecs(6);
    let r: R<Option<PublicObjection>> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let changed = D::execute(
            &mut *tx,
            "UPDATE public_objections SET status = $1, resolution = $2, resolved_by = $3, \
             resolved_at = $4 WHERE id = $5 AND status = 'open'",
            Args::new()
                .text(res.outcome.as_str())
                .text(res.reason.as_str())
                .id(res.resolved_by)
                .time(at)
                .id(res.objection_id),
        )
        .await?;
        if changed != 1 {
            return Ok(None);
        }
        append::<D>(
            &mut tx,
            res.objection_id,
            res.outcome.as_str(),
            Some(res.reason.as_str()),
            Some(res.resolved_by),
            at,
        )
        .await?;
        let row = D::fetch_optional(
            &mut *tx,
            &format!("SELECT {COLS} FROM public_objections WHERE id = $1"),
            Args::new().id(res.objection_id),
        )
        .await?
        .ok_or_else(|| bad("objection", "vanished"))?;
        let stored = objection::<D>(&row)?;
        tx.commit().await?;
        Ok(Some(stored))
    });
    r.map_err(Fail::store::<D>)
}

pub async fn objection_history<D: Dialect>(
    pool: &Pools<D::DB>,
    objection_id: Uuid,
) -> StoreResult<Vec<ObjectionEvent>> {
    let r: R<Vec<ObjectionEvent>> = async {
        let rows = fetch_all::<D>(
            pool,
            "SELECT id, objection_id, action, reason, actor_id, at FROM public_objection_history \
             WHERE objection_id = $1 ORDER BY at, id",
            Args::new().id(objection_id),
        )
        .await?;
        rows.iter().map(event::<D>).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

#[async_trait::async_trait]
impl<S: super::SqlBackend> crate::PublicStore for S {
    async fn submit_objection(
        &self,
        objection: PublicObjection,
        workflow_id: &str,
        states: &[String],
    ) -> StoreResult<Option<PublicObjection>> {
        submit_objection::<S::D>(self.sql_pool(), objection, workflow_id, states).await
    }
    async fn get_objection(&self, id: Uuid) -> StoreResult<PublicObjection> {
        get_objection::<S::D>(self.sql_pool(), id).await
    }
    async fn objections(
        &self,
        instance_id: Option<Uuid>,
        open_only: bool,
        limit: u32,
    ) -> StoreResult<Vec<PublicObjection>> {
        objections::<S::D>(self.sql_pool(), instance_id, open_only, limit).await
    }
    async fn open_objection_count(&self, instance_id: Uuid) -> StoreResult<i64> {
        open_objection_count::<S::D>(self.sql_pool(), instance_id).await
    }
    async fn resolve_objection(
        &self,
        resolve: ResolveObjection,
    ) -> StoreResult<Option<PublicObjection>> {
        resolve_objection::<S::D>(self.sql_pool(), resolve).await
    }
    async fn objection_history(&self, objection_id: Uuid) -> StoreResult<Vec<ObjectionEvent>> {
        objection_history::<S::D>(self.sql_pool(), objection_id).await
    }
}
