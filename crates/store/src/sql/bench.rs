//! The baseline for `grantflow bench transitions`: the statements one transition issues,
//! written by hand with no engine, no idempotency record and no notifications, so that
//! the engine path can be compared with the cost of the bare SQL. It keeps the shape of a
//! straightforward implementation (one `INSERT` per timer), which the store has since
//! improved on.

use chrono::{DateTime, SubsecRound, Utc};
use grantflow_domain::audit::HistoryRecord;
use grantflow_domain::schedule::TimerPlan;
use uuid::Uuid;

use super::instances::{fetch_instance, insert_history};
use super::{Args, Dialect, Fail, R, SqlBackend};
use crate::StoreResult;
use crate::bench::BaselineWriter;

/// Move `instance_id` to `to_state` the way `apply_transition` does, statement for
/// statement: read the instance, update it with a version check, append a sealed history
/// record, cancel the pending timers and insert `timers`. Returns the new version.
async fn baseline_transition<D: Dialect>(
    pool: &super::Pools<D::DB>,
    instance_id: Uuid,
    to_state: &str,
    timers: &[TimerPlan],
    at: DateTime<Utc>,
) -> R<i64> {
    let at = at.trunc_subsecs(6);
    let mut tx = D::begin_write(pool).await?;
    let before = fetch_instance::<D>(&mut *tx, instance_id, true)
        .await?
        .ok_or_else(|| crate::StoreError::not_found("instance", instance_id))?;
    let record = HistoryRecord {
        instance_id: instance_id.to_string(),
        seq: before.version + 1,
        at,
        actor_id: "bench".into(),
        actor_roles: vec!["manager".into()],
        event: "baseline".into(),
        from_state: before.state.clone(),
        to_state: to_state.to_string(),
        input: serde_json::json!({}),
        reason: None,
        data_hash: Some(grantflow_domain::audit::data_hash(&before.data)),
        prev_hash: String::new(),
        hash: String::new(),
    }
    .seal(&before.last_hash);
    let due_at = timers.iter().find_map(|t| t.due_at);
    D::execute(
        &mut *tx,
        "UPDATE instances SET state = $1, version = $2, updated_at = $3, due_at = $4, \
         last_hash = $5 WHERE id = $6 AND version = $7",
        Args::new()
            .text(to_state)
            .int(record.seq)
            .time(at)
            .opt_time(due_at)
            .text(&record.hash)
            .id(instance_id)
            .int(before.version),
    )
    .await?;
    insert_history::<D>(&mut *tx, &record).await?;
    D::execute(
        &mut *tx,
        "UPDATE timers SET status = 'cancelled', lease_until = NULL \
         WHERE instance_id = $1 AND status IN ('pending', 'claimed')",
        Args::new().id(instance_id),
    )
    .await?;
    // One statement per timer, as a straightforward implementation writes them (the store
    // inserts them in one multi-row statement).
    for t in timers {
        for (sql, args) in super::instances::timer_inserts(
            instance_id,
            record.seq,
            to_state,
            std::slice::from_ref(t),
        ) {
            D::execute(&mut *tx, &sql, args).await?;
        }
    }
    tx.commit().await?;
    Ok(record.seq)
}

#[async_trait::async_trait]
impl<S: SqlBackend> BaselineWriter for S {
    async fn baseline_transition(
        &self,
        instance_id: Uuid,
        to_state: &str,
        timers: &[TimerPlan],
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        baseline_transition::<S::D>(self.sql_pool(), instance_id, to_state, timers, at)
            .await
            .map_err(Fail::store::<S::D>)
    }
}
