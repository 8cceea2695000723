//! The audited changes of an instance, each in one transaction: a transition
//! (`apply_transition`, with its idempotency record, history, timers, notifications and
//! the replica announcement), a deadline extension, a migration to another workflow
//! version, and the review result. The rows they read and write are in
//! [`super::instances`].

use chrono::{SubsecRound, Utc};
use grantflow_domain::audit::HistoryRecord;
use grantflow_domain::schedule::TimerPlan;
use serde_json::Value;
use uuid::Uuid;

use super::queue::{mark_timer_done, outbox_inserts};
use super::{Arg, Args, Conn, Dialect, Fail, Get, Pools, R, WriteBatch, WriteTx, execute};
use crate::sql::retrying;
use crate::support;
use crate::{
    Announcer, Applied, ExtendDeadline, Instance, MigrateInstance, StoreError, StoreResult,
    TransitionRequest, scoped_key,
};

use super::instances::{
    fetch_instance, fetch_instance_for, history_insert as insert_history_statement, recipients_in,
    rewrite_entry, timer_inserts,
};

/// Run the writes gathered in `writes` (none is left in it); the first batch run holds the
/// instance's update, and how many rows that changed goes to `updated`.
async fn flush<D: Dialect>(
    tx: &mut WriteTx<D::DB>,
    writes: &mut WriteBatch,
    updated: &mut Option<u64>,
) -> R<()> {
    if writes.0.is_empty() {
        return Ok(());
    }
    let changed = D::execute_batch(&mut **tx, std::mem::take(writes)).await?;
    if updated.is_none() {
        *updated = changed.first().copied();
    }
    Ok(())
}

/// One attempt at a transition, in one transaction (see [`crate::Store::apply_transition`]).
async fn apply_tx<D: Dialect>(
    pool: &Pools<D::DB>,
    req: &TransitionRequest<'_>,
    announce: Option<&Announcer<'_>>,
) -> R<Applied> {
    let mut tx = D::begin_write(pool).await?;
    let before = fetch_instance_for::<D>(&mut *tx, req.instance_id, req.requester.as_ref())
        .await?
        .ok_or_else(|| StoreError::not_found("instance", req.instance_id))?;
    let scoped = req
        .idempotency_key
        .as_deref()
        .map(|k| scoped_key(&req.actor_id, k));
    if let Some(key) = &scoped {
        let stored = D::fetch_optional(
            &mut *tx,
            "SELECT request_hash, result FROM idempotency_keys WHERE scoped_key = $1",
            Args::new().text(key),
        )
        .await?;
        if let Some(row) = stored {
            let g = Get::<D>(&row);
            if g.str("request_hash")? != req.request_hash {
                return Err(StoreError::IdempotencyMismatch {
                    key: req.idempotency_key.clone().unwrap_or_default(),
                }
                .into());
            }
            let mut applied: Applied = serde_json::from_value(g.json("result")?)
                .map_err(|e| StoreError::Backend(format!("bad stored idempotent result: {e}")))?;
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
    if req.refuse_while_objected {
        // Under the instance's lock: a submission (which locks the instance too) either
        // committed before and is counted here, or comes after and finds the instance
        // moved out of publicity.
        let open = super::public::open_objections_in::<D>(&mut *tx, before.id).await?;
        if open > 0 {
            return Err(StoreError::ObjectionsOpen { open }.into());
        }
    }
    let change = (req.planner)(&before).map_err(StoreError::Engine)?;
    let plan = change.plan;
    support::check_plan(&before, &plan)?;
    let record = support::history_record(&before, &plan);
    let mut after = support::instance_after(&before, &plan, &record.hash);
    let at = record.at;

    // The writes go out in batches (one round trip each on PostgreSQL, see
    // `WriteBatch`), flushed before anything that reads what they write.
    let mut writes = WriteBatch::default();
    let mut updated = None;
    writes.push(
        "UPDATE instances SET state = $1, stage = $2, is_final = $3, data = $4, version = $5, \
         updated_at = $6, due_at = $7, last_hash = $8 WHERE id = $9 AND version = $10",
        Args::new()
            .text(&after.state)
            .text(&after.stage)
            .bool(after.is_final)
            .json(&after.data)
            .int(after.version)
            .time(after.updated_at)
            .opt_time(after.due_at)
            .text(&after.last_hash)
            .id(after.id)
            .int(before.version),
    );
    let (sql, args) = insert_history_statement(&record)?;
    writes.push(sql, args);
    if let Some(money) = &req.money {
        // The funding checks read the budget lines and pools as this transaction left
        // them.
        flush::<D>(&mut tx, &mut writes, &mut updated).await?;
        let facts = super::funding::apply_money::<D>(
            &mut *tx,
            &after,
            money,
            &record.event,
            &req.actor_id,
            at,
        )
        .await?;
        // Changed lines change the budget facts: the result shows them as committed.
        if let Some(facts) = facts {
            after.budget = facts;
        }
    }
    if let Some((timer_id, token)) = req.complete_timer {
        // Before the cancellation below, which would otherwise update the same row in the
        // same statement.
        mark_timer_done::<D>(&mut *tx, timer_id, token, at).await?;
    }
    if plan.cancel_state_timers {
        writes.push(
            "UPDATE timers SET status = 'cancelled', lease_until = NULL \
             WHERE instance_id = $1 AND status IN ('pending', 'claimed')",
            Args::new().id(after.id),
        );
    } else {
        // Each key is its own rows; with the state's timers cancelled they would be
        // cancelled already.
        for key in &plan.cancel_timers {
            writes.push(
                "UPDATE timers SET status = 'cancelled', lease_until = NULL \
                 WHERE instance_id = $1 AND key = $2 AND status IN ('pending', 'claimed')",
                Args::new().id(after.id).text(key),
            );
        }
    }
    // New rows: not among those the cancellation (on the snapshot before it) changes.
    for (sql, args) in timer_inserts(after.id, after.version, &after.state, &plan.schedule) {
        writes.push(sql, args);
    }
    for n in &plan.notifications {
        // Users and organisations: nothing of the batch writes them.
        let users = recipients_in::<D>(&mut *tx, &after, &n.roles).await?;
        let messages = support::notification_messages(
            &after,
            &n.template,
            &change.notification_context,
            &users,
            at,
        );
        for (sql, args) in outbox_inserts(&messages, at) {
            writes.push(sql, args);
        }
    }
    let applied = Applied {
        instance: after,
        record,
        replayed: false,
    };
    if let Some(key) = &scoped {
        let result = serde_json::to_string(&applied)
            .map_err(|e| StoreError::Backend(format!("cannot store the result: {e}")))?;
        writes.push(
            "INSERT INTO idempotency_keys (scoped_key, request_hash, result, created_at) \
             VALUES ($1, $2, $3, $4)",
            Args(vec![
                Arg::Text(Some(key.clone())),
                Arg::Text(Some(req.request_hash.clone())),
                Arg::Json(Some(result)),
                Arg::Time(Some(at)),
            ]),
        );
    }
    if D::BACKEND == "postgres"
        && let Some(payload) = announce.and_then(|f| f(&applied))
    {
        // Transactional: delivered when (and only when) the transaction commits.
        writes.push(
            format!("SELECT pg_notify('{}', $1)", crate::EVENTS_CHANNEL),
            Args::new().text(payload),
        );
    }
    flush::<D>(&mut tx, &mut writes, &mut updated).await?;
    if updated != Some(1) {
        // Cannot happen under the lock; kept as a guard against a lost update (the
        // transaction is rolled back, with everything the batches wrote).
        return Err(StoreError::Conflict {
            current_version: before.version + 1,
            expected_version: before.version,
        }
        .into());
    }
    tx.commit().await?;
    Ok(applied)
}

pub async fn apply_transition<D: Dialect>(
    pool: &Pools<D::DB>,
    request: TransitionRequest<'_>,
) -> StoreResult<Applied> {
    apply_transition_with::<D>(pool, request, None).await
}

/// [`apply_transition`], announcing the applied change with `announce`'s payload: inside
/// the transaction on PostgreSQL, not at all on SQLite (one process).
pub async fn apply_transition_with<D: Dialect>(
    pool: &Pools<D::DB>,
    request: TransitionRequest<'_>,
    announce: Option<&Announcer<'_>>,
) -> StoreResult<Applied> {
    // The planner is pure, so a retried transaction simply plans again.
    match retrying!(D, apply_tx::<D>(pool, &request, announce)) {
        Ok(applied) => Ok(applied),
        Err(Fail::Store(StoreError::Engine(e))) => {
            // The timeout lost the race (a person moved the instance first): the timer
            // is spent all the same, or it would fire again forever.
            if let Some((timer_id, token)) = request.complete_timer {
                let r: R<bool> = retrying!(D, async {
                    let mut tx = D::begin_write(pool).await?;
                    let done = mark_timer_done::<D>(&mut *tx, timer_id, token, Utc::now()).await?;
                    tx.commit().await?;
                    Ok(done)
                });
                r.map_err(Fail::store::<D>)?;
            }
            Err(StoreError::Engine(e))
        }
        Err(e) => Err(e.store::<D>()),
    }
}

/// Lock the instance for an audited change and check it is at `expected_version`.
async fn locked_at<D: Dialect>(
    conn: &mut Conn<D>,
    instance_id: Uuid,
    expected_version: i64,
) -> R<Instance> {
    let before = fetch_instance::<D>(conn, instance_id, true)
        .await?
        .ok_or_else(|| StoreError::not_found("instance", instance_id))?;
    if before.version != expected_version {
        return Err(StoreError::Conflict {
            current_version: before.version,
            expected_version,
        }
        .into());
    }
    Ok(before)
}

pub async fn extend_deadline<D: Dialect>(
    pool: &Pools<D::DB>,
    request: ExtendDeadline,
) -> StoreResult<Applied> {
    // Named timers (set by effects) are not tied to the deadline and stay.
    rewrite_audited::<D>(
        pool,
        request.instance_id,
        request.expected_version,
        false,
        &request.timers,
        |before| {
            if before.is_final {
                return Err(StoreError::Invalid(format!(
                    "the instance is in final state `{}`: there is no deadline to extend",
                    before.state
                )));
            }
            let at = request.at.trunc_subsecs(6);
            let due_at = request.new_due_at.trunc_subsecs(6);
            let record = support::extension_record(before, &request, at, due_at);
            let after = Instance {
                version: record.seq,
                updated_at: at,
                due_at: Some(due_at),
                last_hash: record.hash.clone(),
                ..before.clone()
            };
            Ok((record, after))
        },
    )
    .await
}

pub async fn migrate_instance<D: Dialect>(
    pool: &Pools<D::DB>,
    request: MigrateInstance,
) -> StoreResult<Applied> {
    // Every timer belonged to the old version's state entry.
    rewrite_audited::<D>(
        pool,
        request.instance_id,
        request.expected_version,
        true,
        &request.timers,
        |before| {
            if before.workflow_version != request.from_workflow_version {
                return Err(StoreError::Invalid(format!(
                    "the instance is on version {} of its workflow, not {}",
                    before.workflow_version, request.from_workflow_version
                )));
            }
            let at = request.at.trunc_subsecs(6);
            let record = support::migration_record(before, &request, at);
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
            Ok((record, after))
        },
    )
    .await
}

/// An audited change made outside the engine (a deadline extension, a workflow
/// migration), in one transaction: the instance locked at `expected_version`, `change`
/// refusing it or sealing its record and the instance after it, then the state entry
/// rewritten with `timers` (named timers cancelled too when `cancel_named`).
async fn rewrite_audited<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
    expected_version: i64,
    cancel_named: bool,
    timers: &[TimerPlan],
    change: impl Fn(&Instance) -> Result<(HistoryRecord, Instance), StoreError>,
) -> StoreResult<Applied> {
    let r: R<Applied> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let before = locked_at::<D>(&mut *tx, instance_id, expected_version).await?;
        let (record, after) = change(&before)?;
        rewrite_entry::<D>(&mut *tx, &before, &after, &record, cancel_named, timers).await?;
        tx.commit().await?;
        Ok(Applied {
            instance: after,
            record,
            replayed: false,
        })
    });
    r.map_err(Fail::store::<D>)
}

pub async fn set_review_result<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
    review: Value,
) -> StoreResult<()> {
    let changed = execute::<D>(
        pool,
        "UPDATE instances SET review = $1 WHERE id = $2",
        Args::new().json(&review).id(instance_id),
    )
    .await
    .map_err(Fail::store::<D>)?;
    if changed == 0 {
        return Err(StoreError::not_found("instance", instance_id));
    }
    Ok(())
}
