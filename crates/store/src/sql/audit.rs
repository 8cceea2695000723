//! The reads of `audit verify`: every instance with its history, a bounded page at a time,
//! so that checking a million records never holds more than one page in memory.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use grantflow_domain::audit::HistoryRecord;
use uuid::Uuid;

use super::instances::{HISTORY_COLS, INSTANCE_COLS, history_row, instances};
use super::{Args, Dialect, Fail, Get, Pools, R, fetch_all, fetch_optional};
use crate::{AuditPage, StoreResult};

/// Up to `limit` instances after `after` in (created_at, id) order, each with its records
/// in sequence order: two statements per page (the instances by keyset on their creation
/// index, then the history of exactly those instances by its primary key).
pub async fn audit_page<D: Dialect>(
    pool: &Pools<D::DB>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> StoreResult<AuditPage> {
    let r: R<AuditPage> = async {
        let mut args = Args::new();
        let mut sql = format!("SELECT {INSTANCE_COLS} FROM instances");
        if let Some((at, id)) = after {
            let at = args.push(super::Arg::Time(Some(at)));
            let id = args.push(super::Arg::Id(Some(id)));
            sql += &format!(" WHERE (created_at, id) > ({at}, {id})");
        }
        let n = args.push(super::Arg::Int(Some(i64::from(limit))));
        sql += &format!(" ORDER BY created_at, id LIMIT {n}");
        let page = instances::<D>(&fetch_all::<D>(pool, &sql, args).await?)?;
        if page.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = page.iter().map(|i| i.id).collect();
        let rows = fetch_all::<D>(
            pool,
            &format!(
                "SELECT {HISTORY_COLS} FROM history WHERE instance_id {} \
                 ORDER BY instance_id, seq",
                D::in_ids("$1")
            ),
            Args::new().ids(&ids),
        )
        .await?;
        let mut by_instance: HashMap<Uuid, Vec<HistoryRecord>> = HashMap::new();
        for row in &rows {
            let record = history_row::<D>(row)?;
            let id = Uuid::parse_str(&record.instance_id)
                .map_err(|_| super::bad("instance id", &record.instance_id))?;
            by_instance.entry(id).or_default().push(record);
        }
        Ok(page
            .into_iter()
            .map(|i| {
                let records = by_instance.remove(&i.id).unwrap_or_default();
                (i, records)
            })
            .collect())
    }
    .await;
    r.map_err(Fail::store::<D>)
}

/// The keys that cut the instances into `parts` ranges of about the same size: the key
/// of every `count / parts`-th instance in `(created_at, id)` order (one indexed
/// `OFFSET` read each). None when there are fewer instances than parts.
pub async fn audit_split<D: Dialect>(
    pool: &Pools<D::DB>,
    parts: u32,
) -> StoreResult<Vec<(DateTime<Utc>, Uuid)>> {
    let r: R<Vec<(DateTime<Utc>, Uuid)>> = async {
        let count =
            match fetch_optional::<D>(pool, "SELECT COUNT(*) AS n FROM instances", Args::new())
                .await?
            {
                Some(row) => Get::<D>(&row).i64("n")?,
                None => 0,
            };
        let parts = i64::from(parts.max(1));
        if count < parts * 2 {
            return Ok(Vec::new());
        }
        let mut keys = Vec::new();
        for part in 1..parts {
            let row = fetch_optional::<D>(
                pool,
                "SELECT created_at, id FROM instances ORDER BY created_at, id LIMIT 1 OFFSET $1",
                Args::new().int(count * part / parts - 1),
            )
            .await?;
            if let Some(row) = row {
                let g = Get::<D>(&row);
                keys.push((g.time("created_at")?, g.id("id")?));
            }
        }
        Ok(keys)
    }
    .await;
    r.map_err(Fail::store::<D>)
}
