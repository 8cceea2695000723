//! Work queues: timers, the e-mail outbox and cron ticks. Claims hand out leases with a
//! fencing token; how rows are claimed without two processes taking the same one is the
//! dialect's ([`Dialect::claim`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use grantflow_domain::schedule::TimerKind;
use uuid::Uuid;

use super::{
    Args, Conn, Dialect, Fail, Get, Pools, R, Row, bad, execute, fetch_all, fetch_optional,
};
use crate::sql::retrying;
use crate::{
    ClaimedMessage, ClaimedTimer, DeliveryOutcome, NewOutboxMessage, OutboxMessage, OutboxStatus,
    QueueStats, StoreError, StoreResult, Timer, TimerStatus,
};

pub const TIMER_COLS: &str = "id, instance_id, state_entry, state, kind, key, fire_at, \
     due_at, event, notify, step_offset, status, fired_at, claim_token";

pub fn timer<D: Dialect>(row: &Row<D>) -> R<Timer> {
    let g = Get::<D>(row);
    let kind = g.str("kind")?;
    let status = g.str("status")?;
    Ok(Timer {
        id: g.id("id")?,
        instance_id: g.id("instance_id")?,
        state_entry: g.i64("state_entry")?,
        state: g.str("state")?,
        kind: TimerKind::parse(&kind).ok_or_else(|| bad("timer kind", &kind))?,
        key: g.str("key")?,
        fire_at: g.time("fire_at")?,
        due_at: g.opt_time("due_at")?,
        event: g.opt_str("event")?,
        notify: g.strings("notify")?,
        offset: g.opt_str("step_offset")?,
        status: TimerStatus::parse(&status).ok_or_else(|| bad("timer status", &status))?,
        fired_at: g.opt_time("fired_at")?,
    })
}

pub const OUTBOX_COLS: &str = "id, idempotency_key, recipient_user_id, to_address, \
     to_name, template, lang, context, instance_id, kind, status, attempts, next_attempt_at, \
     last_error, created_at, sent_at, claim_token";

pub fn outbox<D: Dialect>(row: &Row<D>) -> R<OutboxMessage> {
    let g = Get::<D>(row);
    let status = g.str("status")?;
    Ok(OutboxMessage {
        id: g.id("id")?,
        idempotency_key: g.str("idempotency_key")?,
        recipient_user_id: g.opt_id("recipient_user_id")?,
        to_address: g.str("to_address")?,
        to_name: g.str("to_name")?,
        template: g.str("template")?,
        lang: g.lang("lang")?,
        context: g.json("context")?,
        instance_id: g.opt_id("instance_id")?,
        kind: g.str("kind")?,
        status: OutboxStatus::parse(&status).ok_or_else(|| bad("outbox status", &status))?,
        attempts: i32::try_from(g.i64("attempts")?).map_err(|_| bad("attempts", "out of range"))?,
        next_attempt_at: g.time("next_attempt_at")?,
        last_error: g.opt_str("last_error")?,
        created_at: g.time("created_at")?,
        sent_at: g.opt_time("sent_at")?,
    })
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> R<DateTime<Utc>> {
    let lease = chrono::Duration::from_std(lease)
        .map_err(|_| StoreError::Invalid("the lease is too long".into()))?;
    Ok(now + lease)
}

/// Mark a claimed timer done; false when `token` is stale.
pub async fn mark_timer_done<D: Dialect>(
    conn: &mut Conn<D>,
    timer_id: Uuid,
    token: i64,
    now: DateTime<Utc>,
) -> R<bool> {
    let done = D::execute(
        conn,
        "UPDATE timers SET status = 'done', fired_at = $1, lease_until = NULL \
         WHERE id = $2 AND claim_token = $3 AND status = 'claimed'",
        Args::new().time(now).id(timer_id).int(token),
    )
    .await?;
    Ok(done == 1)
}

/// Insert outbox messages; a key already present is skipped. How many were new. One
/// statement per 500 messages.
pub async fn insert_outbox<D: Dialect>(
    conn: &mut Conn<D>,
    messages: &[NewOutboxMessage],
    now: DateTime<Utc>,
) -> R<u64> {
    let mut inserted = 0;
    for (sql, args) in outbox_inserts(messages, now) {
        inserted += D::execute(&mut *conn, &sql, args).await?;
    }
    Ok(inserted)
}

/// The statements that insert `messages` into the outbox, one per 500; a message whose
/// idempotency key is there already is left out.
pub fn outbox_inserts(messages: &[NewOutboxMessage], now: DateTime<Utc>) -> Vec<(String, Args)> {
    messages
        .chunks(500)
        .map(|chunk| {
            let mut sql = String::from(
                "INSERT INTO outbox (id, idempotency_key, recipient_user_id, to_address, to_name, \
                 template, lang, context, instance_id, kind, status, attempts, next_attempt_at, \
                 created_at) VALUES ",
            );
            let mut args = Args::new();
            for (i, m) in chunk.iter().enumerate() {
                let p = args.0.len();
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, 'pending', 0, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5,
                    p + 6,
                    p + 7,
                    p + 8,
                    p + 9,
                    p + 10,
                    p + 11,
                    p + 12
                ));
                args = args
                    .id(Uuid::now_v7())
                    .text(&m.idempotency_key)
                    .opt_id(m.recipient_user_id)
                    .text(&m.to_address)
                    .text(&m.to_name)
                    .text(&m.template)
                    .text(m.lang.tag())
                    .json(&m.context)
                    .opt_id(m.instance_id)
                    .text(&m.kind)
                    .time(m.not_before)
                    .time(now);
            }
            sql.push_str(" ON CONFLICT (idempotency_key) DO NOTHING");
            (sql, args)
        })
        .collect()
}

// ---- timers

pub async fn timers_for_instance<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
) -> StoreResult<Vec<Timer>> {
    let r: R<Vec<Timer>> = async {
        let rows = fetch_all::<D>(
            pool,
            &format!(
                "SELECT {TIMER_COLS} FROM timers WHERE instance_id = $1 \
                 ORDER BY state_entry, fire_at, key"
            ),
            Args::new().id(instance_id),
        )
        .await?;
        rows.iter().map(timer::<D>).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

/// Claim up to `limit` rows with the dialect's claim statement `sql` (`$1` the lease's
/// end, `$2` now, `$3` the limit): each row decoded with its new fencing token.
async fn claim_rows<D: Dialect, T>(
    pool: &Pools<D::DB>,
    sql: &str,
    now: DateTime<Utc>,
    limit: u32,
    lease: Duration,
    decode: fn(&Row<D>) -> R<T>,
) -> StoreResult<Vec<(T, i64)>> {
    let r: R<Vec<(T, i64)>> = retrying!(D, async {
        let until = lease_end(now, lease)?;
        let mut tx = D::begin_write(pool).await?;
        let rows = D::fetch_all(
            &mut *tx,
            sql,
            Args::new().time(until).time(now).int(i64::from(limit)),
        )
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| Ok((decode(row)?, Get::<D>(row).i64("claim_token")?)))
            .collect()
    });
    r.map_err(Fail::store::<D>)
}

pub async fn claim_due_timers<D: Dialect>(
    pool: &Pools<D::DB>,
    now: DateTime<Utc>,
    limit: u32,
    lease: Duration,
) -> StoreResult<Vec<ClaimedTimer>> {
    let sql = D::claim(
        "timers",
        &[
            "status = 'pending' AND fire_at <= $2",
            "status = 'claimed' AND lease_until <= $2",
        ],
        "fire_at, id",
        "status = 'claimed', lease_until = $1, claim_token = claim_token + 1",
        TIMER_COLS,
    );
    let mut claimed: Vec<ClaimedTimer> =
        claim_rows::<D, Timer>(pool, &sql, now, limit, lease, timer::<D>)
            .await?
            .into_iter()
            .map(|(timer, token)| ClaimedTimer { timer, token })
            .collect();
    claimed.sort_by_key(|c| (c.timer.fire_at, c.timer.id));
    Ok(claimed)
}

pub async fn complete_timer<D: Dialect>(
    pool: &Pools<D::DB>,
    timer_id: Uuid,
    token: i64,
    messages: Vec<NewOutboxMessage>,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let r: R<bool> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        if !mark_timer_done::<D>(&mut *tx, timer_id, token, now).await? {
            return Ok(false);
        }
        insert_outbox::<D>(&mut *tx, &messages, now).await?;
        tx.commit().await?;
        Ok(true)
    });
    r.map_err(Fail::store::<D>)
}

/// Complete a batch of claimed timers in one transaction (see
/// `TimerStore::complete_timers`): one fenced `UPDATE … RETURNING id` of the timers whose
/// token still holds, then one insert of the messages of those only.
pub async fn complete_timers<D: Dialect>(
    pool: &Pools<D::DB>,
    batch: &[(Uuid, i64, Vec<NewOutboxMessage>)],
    now: DateTime<Utc>,
) -> StoreResult<Vec<bool>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let r: R<Vec<bool>> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let mut done = std::collections::HashSet::new();
        for chunk in batch.chunks(500) {
            let mut args = Args::new().time(now);
            let mut fenced = Vec::with_capacity(chunk.len());
            for (id, token, _) in chunk {
                let id_p = args.push(super::Arg::Id(Some(*id)));
                let token_p = args.push(super::Arg::Int(Some(*token)));
                fenced.push(format!("(id = {id_p} AND claim_token = {token_p})"));
            }
            let sql = format!(
                "UPDATE timers SET status = 'done', fired_at = $1, lease_until = NULL \
                 WHERE status = 'claimed' AND ({}) RETURNING id",
                fenced.join(" OR ")
            );
            for row in D::fetch_all(&mut *tx, &sql, args).await? {
                done.insert(Get::<D>(&row).id("id")?);
            }
        }
        let messages: Vec<NewOutboxMessage> = batch
            .iter()
            .filter(|(id, _, _)| done.contains(id))
            .flat_map(|(_, _, m)| m.iter().cloned())
            .collect();
        insert_outbox::<D>(&mut *tx, &messages, now).await?;
        tx.commit().await?;
        Ok(batch.iter().map(|(id, _, _)| done.contains(id)).collect())
    });
    r.map_err(Fail::store::<D>)
}

/// Claimed timers back to pending, claimed messages back to pending (their attempt not
/// counted), where the token still matches; one transaction.
pub async fn release_claims<D: Dialect>(
    pool: &Pools<D::DB>,
    timers: &[(Uuid, i64)],
    messages: &[(Uuid, i64)],
) -> StoreResult<u64> {
    let r: R<u64> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let mut released = 0;
        for (id, token) in timers {
            released += D::execute(
                &mut *tx,
                "UPDATE timers SET status = 'pending', lease_until = NULL \
                 WHERE id = $1 AND claim_token = $2 AND status = 'claimed'",
                Args::new().id(*id).int(*token),
            )
            .await?;
        }
        for (id, token) in messages {
            released += D::execute(
                &mut *tx,
                "UPDATE outbox SET status = 'pending', lease_until = NULL, \
                 attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
                 WHERE id = $1 AND claim_token = $2 AND status = 'sending'",
                Args::new().id(*id).int(*token),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(released)
    });
    r.map_err(Fail::store::<D>)
}

pub async fn queue_stats<D: Dialect>(
    pool: &Pools<D::DB>,
    now: DateTime<Utc>,
) -> StoreResult<QueueStats> {
    let r: R<QueueStats> = async {
        let row = fetch_optional::<D>(
            pool,
            "SELECT \
             COALESCE(SUM(CASE WHEN status = 'pending' AND fire_at <= $1 THEN 1 ELSE 0 END), 0) AS due, \
             COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
             COALESCE(SUM(CASE WHEN status = 'claimed' THEN 1 ELSE 0 END), 0) AS claimed \
             FROM timers",
            Args::new().time(now),
        )
        .await?;
        let mut stats = QueueStats::default();
        if let Some(row) = row {
            let g = Get::<D>(&row);
            stats.timers_due = g.i64("due")?;
            stats.timers_pending = g.i64("pending")?;
            stats.timers_claimed = g.i64("claimed")?;
        }
        let rows = fetch_all::<D>(
            pool,
            "SELECT status, COUNT(*) AS n FROM outbox GROUP BY status",
            Args::new(),
        )
        .await?;
        let mut by_status = std::collections::HashMap::new();
        for row in &rows {
            let g = Get::<D>(row);
            let status = g.str("status")?;
            let status =
                OutboxStatus::parse(&status).ok_or_else(|| bad("outbox status", &status))?;
            by_status.insert(status, g.i64("n")?);
        }
        // Every status, also those with no message (a series at 0, not a missing one).
        stats.outbox = [
            OutboxStatus::Pending,
            OutboxStatus::Sending,
            OutboxStatus::Sent,
            OutboxStatus::Dead,
        ]
        .into_iter()
        .map(|s| (s, by_status.get(&s).copied().unwrap_or(0)))
        .collect();
        Ok(stats)
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn next_timer_at<D: Dialect>(pool: &Pools<D::DB>) -> StoreResult<Option<DateTime<Utc>>> {
    let r: R<Option<DateTime<Utc>>> = async {
        let row = fetch_optional::<D>(
            pool,
            // Each side is the first entry of its partial index.
            "SELECT min(t) AS t FROM (\
             SELECT min(fire_at) AS t FROM timers WHERE status = 'pending' \
             UNION ALL SELECT min(lease_until) AS t FROM timers WHERE status = 'claimed') AS next",
            Args::new(),
        )
        .await?;
        match row {
            Some(row) => Get::<D>(&row).opt_time("t"),
            None => Ok(None),
        }
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn pending_timer_count<D: Dialect>(pool: &Pools<D::DB>) -> StoreResult<i64> {
    let r: R<i64> = async {
        let row = fetch_optional::<D>(
            pool,
            "SELECT COUNT(*) AS n FROM timers WHERE status = 'pending'",
            Args::new(),
        )
        .await?;
        match row {
            Some(row) => Get::<D>(&row).i64("n"),
            None => Ok(0),
        }
    }
    .await;
    r.map_err(Fail::store::<D>)
}

// ---- outbox

pub async fn enqueue<D: Dialect>(
    pool: &Pools<D::DB>,
    messages: Vec<NewOutboxMessage>,
) -> StoreResult<u64> {
    let r: R<u64> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let n = insert_outbox::<D>(&mut *tx, &messages, Utc::now()).await?;
        tx.commit().await?;
        Ok(n)
    });
    r.map_err(Fail::store::<D>)
}

pub async fn claim_outbox<D: Dialect>(
    pool: &Pools<D::DB>,
    now: DateTime<Utc>,
    limit: u32,
    lease: Duration,
) -> StoreResult<Vec<ClaimedMessage>> {
    let sql = D::claim(
        "outbox",
        &[
            "status = 'pending' AND next_attempt_at <= $2",
            "status = 'sending' AND lease_until <= $2",
        ],
        "next_attempt_at, id",
        "status = 'sending', lease_until = $1, claim_token = claim_token + 1, \
         attempts = attempts + 1",
        OUTBOX_COLS,
    );
    let mut claimed: Vec<ClaimedMessage> =
        claim_rows::<D, OutboxMessage>(pool, &sql, now, limit, lease, outbox::<D>)
            .await?
            .into_iter()
            .map(|(message, token)| ClaimedMessage { message, token })
            .collect();
    claimed.sort_by_key(|c| (c.message.next_attempt_at, c.message.id));
    Ok(claimed)
}

pub async fn finish_delivery<D: Dialect>(
    pool: &Pools<D::DB>,
    id: Uuid,
    token: i64,
    outcome: DeliveryOutcome,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let (sql, args) = match outcome {
        DeliveryOutcome::Sent => (
            "UPDATE outbox SET status = 'sent', sent_at = $1, lease_until = NULL, \
             last_error = NULL WHERE id = $2 AND claim_token = $3 AND status = 'sending'",
            Args::new().time(now),
        ),
        DeliveryOutcome::Retry {
            next_attempt_at,
            error,
        } => (
            "UPDATE outbox SET status = 'pending', next_attempt_at = $1, last_error = $2, \
             lease_until = NULL WHERE id = $3 AND claim_token = $4 AND status = 'sending'",
            Args::new().time(next_attempt_at).text(error),
        ),
        DeliveryOutcome::Dead { error } => (
            "UPDATE outbox SET status = 'dead', last_error = $1, lease_until = NULL \
             WHERE id = $2 AND claim_token = $3 AND status = 'sending'",
            Args::new().text(error),
        ),
    };
    let changed = execute::<D>(pool, sql, args.id(id).int(token))
        .await
        .map_err(Fail::store::<D>)?;
    Ok(changed == 1)
}

pub async fn list_outbox<D: Dialect>(
    pool: &Pools<D::DB>,
    status: Option<OutboxStatus>,
    instance_id: Option<Uuid>,
    limit: u32,
) -> StoreResult<Vec<OutboxMessage>> {
    let mut sql = format!("SELECT {OUTBOX_COLS} FROM outbox WHERE 1 = 1");
    let mut args = Args::new();
    if let Some(s) = status {
        sql += &format!(" AND status = {}", args.next());
        args = args.text(s.as_str());
    }
    if let Some(i) = instance_id {
        sql += &format!(" AND instance_id = {}", args.next());
        args = args.id(i);
    }
    sql += &format!(" ORDER BY created_at, id LIMIT {}", args.next());
    let args = args.int(i64::from(limit));
    let r: R<Vec<OutboxMessage>> = async {
        let rows = fetch_all::<D>(pool, &sql, args).await?;
        rows.iter().map(outbox::<D>).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

// ---- cron ticks

pub async fn record_tick<D: Dialect>(
    pool: &Pools<D::DB>,
    schedule: &str,
    tick_at: DateTime<Utc>,
    messages: Vec<NewOutboxMessage>,
) -> StoreResult<bool> {
    let r: R<bool> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let inserted = D::execute(
            &mut *tx,
            "INSERT INTO schedule_ticks (schedule, tick_at) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
            Args::new().text(schedule).time(tick_at),
        )
        .await?;
        if inserted == 0 {
            return Ok(false);
        }
        insert_outbox::<D>(&mut *tx, &messages, tick_at).await?;
        tx.commit().await?;
        Ok(true)
    });
    r.map_err(Fail::store::<D>)
}

pub async fn last_tick<D: Dialect>(
    pool: &Pools<D::DB>,
    schedule: &str,
) -> StoreResult<Option<DateTime<Utc>>> {
    let r: R<Option<DateTime<Utc>>> = async {
        let row = fetch_optional::<D>(
            pool,
            "SELECT max(tick_at) AS t FROM schedule_ticks WHERE schedule = $1",
            Args::new().text(schedule),
        )
        .await?;
        match row {
            Some(row) => Get::<D>(&row).opt_time("t"),
            None => Ok(None),
        }
    }
    .await;
    r.map_err(Fail::store::<D>)
}

// ---- [`TimerStore`] for every SQL backend

#[async_trait::async_trait]
impl<S: super::SqlBackend> crate::TimerStore for S {
    async fn timers_for_instance(&self, instance_id: Uuid) -> StoreResult<Vec<Timer>> {
        timers_for_instance::<S::D>(self.sql_pool(), instance_id).await
    }

    async fn claim_due_timers(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedTimer>> {
        claim_due_timers::<S::D>(self.sql_pool(), now, limit, lease).await
    }

    async fn complete_timer(
        &self,
        timer_id: Uuid,
        token: i64,
        messages: Vec<NewOutboxMessage>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        complete_timer::<S::D>(self.sql_pool(), timer_id, token, messages, now).await
    }

    async fn complete_timers(
        &self,
        batch: Vec<(Uuid, i64, Vec<NewOutboxMessage>)>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<bool>> {
        complete_timers::<S::D>(self.sql_pool(), &batch, now).await
    }

    async fn next_timer_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        next_timer_at::<S::D>(self.sql_pool()).await
    }

    async fn pending_timer_count(&self) -> StoreResult<i64> {
        pending_timer_count::<S::D>(self.sql_pool()).await
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> StoreResult<QueueStats> {
        queue_stats::<S::D>(self.sql_pool(), now).await
    }

    async fn release_claims(
        &self,
        timers: &[(Uuid, i64)],
        messages: &[(Uuid, i64)],
    ) -> StoreResult<u64> {
        release_claims::<S::D>(self.sql_pool(), timers, messages).await
    }
}

// ---- [`OutboxStore`] for every SQL backend

#[async_trait::async_trait]
impl<S: super::SqlBackend> crate::OutboxStore for S {
    async fn enqueue(&self, messages: Vec<NewOutboxMessage>) -> StoreResult<u64> {
        enqueue::<S::D>(self.sql_pool(), messages).await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedMessage>> {
        claim_outbox::<S::D>(self.sql_pool(), now, limit, lease).await
    }

    async fn finish_delivery(
        &self,
        id: Uuid,
        token: i64,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        finish_delivery::<S::D>(self.sql_pool(), id, token, outcome, now).await
    }

    async fn list_outbox(
        &self,
        status: Option<OutboxStatus>,
        instance_id: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>> {
        list_outbox::<S::D>(self.sql_pool(), status, instance_id, limit).await
    }

    async fn record_tick(
        &self,
        schedule: &str,
        tick_at: DateTime<Utc>,
        messages: Vec<NewOutboxMessage>,
    ) -> StoreResult<bool> {
        record_tick::<S::D>(self.sql_pool(), schedule, tick_at, messages).await
    }

    async fn last_tick(&self, schedule: &str) -> StoreResult<Option<DateTime<Utc>>> {
        last_tick::<S::D>(self.sql_pool(), schedule).await
    }
}
