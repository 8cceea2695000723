//! The baseline for `grantflow bench transitions`: the statements one transition issues,
//! written by hand with no engine, no idempotency record and no notifications, so that
//! the engine path can be compared with the cost of the bare SQL.

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use grantflow_domain::audit::HistoryRecord;
use grantflow_domain::schedule::TimerPlan;
use grantflow_store::StoreResult;
use grantflow_store::bench::BaselineWriter;
use uuid::Uuid;

use crate::rows::R;
use crate::{PgDialect, PostgresStore};
use grantflow_store::sql::instances;

/// Move `instance_id` to `to_state` the way `apply_transition` does, statement for
/// statement: read the instance, update it with a version check, append a sealed history
/// record, cancel the pending timers and insert `timers`. Returns the new version.
pub async fn baseline_transition(
    store: &PostgresStore,
    instance_id: Uuid,
    to_state: &str,
    timers: &[TimerPlan],
    at: DateTime<Utc>,
) -> StoreResult<i64> {
    let r: R<i64> = async {
        let at = at.trunc_subsecs(6);
        let mut tx = store.begin().await?;
        let before = instances::fetch_instance::<PgDialect>(&mut tx, instance_id, true)
            .await?
            .ok_or_else(|| grantflow_store::StoreError::not_found("instance", instance_id))?;
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
            prev_hash: String::new(),
            hash: String::new(),
        }
        .seal(&before.last_hash);
        let due_at = timers.iter().find_map(|t| t.due_at);
        sqlx::query(
            "UPDATE instances SET state = $1, version = $2, updated_at = $3, due_at = $4, \
             last_hash = $5 WHERE id = $6 AND version = $7",
        )
        .bind(to_state)
        .bind(record.seq)
        .bind(at)
        .bind(due_at)
        .bind(&record.hash)
        .bind(instance_id)
        .bind(before.version)
        .execute(&mut *tx)
        .await?;
        instances::insert_history::<PgDialect>(&mut tx, &record).await?;
        sqlx::query(
            "UPDATE timers SET status = 'cancelled', lease_until = NULL \
             WHERE instance_id = $1 AND status IN ('pending', 'claimed')",
        )
        .bind(instance_id)
        .execute(&mut *tx)
        .await?;
        instances::insert_timers::<PgDialect>(&mut tx, instance_id, record.seq, to_state, timers)
            .await?;
        tx.commit().await?;
        Ok(record.seq)
    }
    .await;
    Ok(r?)
}

#[async_trait]
impl BaselineWriter for PostgresStore {
    async fn baseline_transition(
        &self,
        instance_id: Uuid,
        to_state: &str,
        timers: &[TimerPlan],
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        baseline_transition(self, instance_id, to_state, timers, at).await
    }
}
