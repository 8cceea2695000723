//! [`ReviewStore`] on PostgreSQL. Writes lock in one order — the instance row
//! (`FOR UPDATE`), then the assignment row, then the profiles of experts taking a seat in
//! id order — so two managers drawing panels, a manager closing the round and an expert
//! submitting queue behind each other instead of interleaving; serialization failures and
//! deadlocks are retried like every other transaction of this backend.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use grantflow_store::review::{
    AssignmentChange, AssignmentEvent, AssignmentRecord, ChangedAssignment, Collaboration,
    CreateAssignments, ExpertProfile, ExpertProfileInput, Justification, NewAssignment,
    NewCollaboration, Recompute, ReviewConflict, ReviewStore, ReviewWrite, RoundKey, RoundRecords,
    Submission, ViewChange, assignment_state, assignment_timer_prefix,
};
use grantflow_store::{Instance, StoreError, StoreResult};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::rows::{self, Fail, R, json, parse_json};
use crate::{PgDialect, PostgresStore};
use grantflow_store::sql::MAX_RETRIES;
use grantflow_store::sql::instances::{self, INSTANCE_COLS};

/// Run `$body` again on serialization failures and deadlocks (as `retrying!` in the crate
/// root does for the other transactions).
macro_rules! retry_tx {
    ($body:expr) => {{
        let mut attempt = 0u32;
        loop {
            let result: R<_> = $body.await;
            match result {
                Err(e) if rows::is_retryable(&e) && attempt < MAX_RETRIES => {
                    attempt += 1;
                    tracing::debug!(attempt, "retrying a review transaction");
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt * attempt)))
                        .await;
                }
                other => break other,
            }
        }
    }};
}

/// Whether the round cycle of assignment `a` is open: the instance is in `opens_in` and
/// has not changed state since it entered it at version `cycle`.
const OPEN_EXPR: &str = "(EXISTS (SELECT 1 FROM instances i WHERE i.id = a.instance_id \
     AND i.state = a.opens_in) AND NOT EXISTS (SELECT 1 FROM history h \
     WHERE h.instance_id = a.instance_id AND h.seq > a.cycle AND h.from_state <> h.to_state))";

const COUNTING_SQL: &str = "('assigned', 'accepted', 'submitted', 'reopened', 'overdue')";

const PROFILE_COLS: &str = "user_id, categories::text AS categories, keywords::text AS keywords, \
     workload_cap, status, created_at, updated_at";

fn assignment_select() -> String {
    format!(
        "SELECT a.id, a.instance_id, a.round_id, a.opens_in, a.cycle, a.expert_id, a.state, \
         a.revision, a.seed, a.algorithm, a.assigned_by, a.assigned_at, a.due_at, \
         a.replaces_id, a.replaced_by_id, a.updated_at, {OPEN_EXPR} AS round_open \
         FROM review_assignments a"
    )
}

fn bad(what: &str, v: &str) -> Fail {
    Fail::Store(StoreError::Backend(format!("bad stored {what} `{v}`")))
}

fn version_of(row: &PgRow) -> R<u32> {
    u32::try_from(row.try_get::<i64, _>("version")?).map_err(|_| bad("version", "out of range"))
}

fn assignment_row(row: &PgRow) -> R<AssignmentRecord> {
    let seed = row
        .try_get::<Option<String>, _>("seed")?
        .map(|s| s.parse::<u64>().map_err(|_| bad("seed", &s)))
        .transpose()?;
    Ok(AssignmentRecord {
        id: row.try_get("id")?,
        instance_id: row.try_get("instance_id")?,
        round_id: row.try_get("round_id")?,
        opens_in: row.try_get("opens_in")?,
        cycle: row.try_get("cycle")?,
        expert_id: row.try_get("expert_id")?,
        state: row.try_get("state")?,
        revision: row.try_get("revision")?,
        seed,
        algorithm: row.try_get("algorithm")?,
        assigned_by: row.try_get("assigned_by")?,
        assigned_at: row.try_get("assigned_at")?,
        due_at: row.try_get("due_at")?,
        replaces: row.try_get("replaces_id")?,
        replaced_by: row.try_get("replaced_by_id")?,
        updated_at: row.try_get("updated_at")?,
        round_open: row.try_get("round_open")?,
        events: Vec::new(),
        submissions: Vec::new(),
        justifications: Vec::new(),
    })
}

fn profile_row(row: &PgRow) -> R<ExpertProfile> {
    let categories: Vec<u8> = serde_json::from_str(&row.try_get::<String, _>("categories")?)
        .map_err(|_| bad("categories", "json"))?;
    let keywords: Vec<String> = serde_json::from_str(&row.try_get::<String, _>("keywords")?)
        .map_err(|_| bad("keywords", "json"))?;
    Ok(ExpertProfile {
        user_id: row.try_get("user_id")?,
        categories,
        keywords,
        workload_cap: u32::try_from(row.try_get::<i64, _>("workload_cap")?)
            .map_err(|_| bad("workload cap", "out of range"))?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn collaboration_row(row: &PgRow) -> R<Collaboration> {
    Ok(Collaboration {
        id: row.try_get("id")?,
        expert_id: row.try_get("expert_id")?,
        org_id: row.try_get("org_id")?,
        until: row.try_get("until")?,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Fill in events, submissions and justifications.
async fn load_details(conn: &mut PgConnection, records: &mut [AssignmentRecord]) -> R<()> {
    if records.is_empty() {
        return Ok(());
    }
    let index: HashMap<Uuid, usize> = records.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    let ids: Vec<Uuid> = records.iter().map(|r| r.id).collect();
    let rows = sqlx::query(
        "SELECT assignment_id, seq, at, actor_kind, actor_id, action, from_state, to_state, \
         reason FROM review_events WHERE assignment_id = ANY($1) ORDER BY assignment_id, seq",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut events: Vec<(usize, AssignmentEvent)> = Vec::new();
    for row in rows {
        let i = index[&row.try_get::<Uuid, _>("assignment_id")?];
        events.push((
            i,
            AssignmentEvent {
                seq: row.try_get("seq")?,
                at: row.try_get("at")?,
                actor_kind: row.try_get("actor_kind")?,
                actor_id: row.try_get("actor_id")?,
                action: row.try_get("action")?,
                from_state: row.try_get("from_state")?,
                to_state: row.try_get("to_state")?,
                reason: row.try_get("reason")?,
            },
        ));
    }
    let rows = sqlx::query(
        "SELECT assignment_id, version, submitted_at, card::text AS card, total, reopened_at, \
         reopened_by, reopen_reason FROM review_submissions WHERE assignment_id = ANY($1) \
         ORDER BY assignment_id, version",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut submissions: Vec<(usize, Submission)> = Vec::new();
    for row in rows {
        let i = index[&row.try_get::<Uuid, _>("assignment_id")?];
        submissions.push((
            i,
            Submission {
                version: version_of(&row)?,
                submitted_at: row.try_get("submitted_at")?,
                card: parse_json(&row.try_get::<String, _>("card")?)?,
                total: row.try_get("total")?,
                reopened_at: row.try_get("reopened_at")?,
                reopened_by: row.try_get("reopened_by")?,
                reopen_reason: row.try_get("reopen_reason")?,
            },
        ));
    }
    let rows = sqlx::query(
        "SELECT assignment_id, version, text, written_at FROM review_justifications \
         WHERE assignment_id = ANY($1) ORDER BY assignment_id, version",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut justifications: Vec<(usize, Justification)> = Vec::new();
    for row in rows {
        let i = index[&row.try_get::<Uuid, _>("assignment_id")?];
        justifications.push((
            i,
            Justification {
                version: version_of(&row)?,
                text: row.try_get("text")?,
                written_at: row.try_get("written_at")?,
            },
        ));
    }
    for (i, e) in events {
        records[i].events.push(e);
    }
    for (i, s) in submissions {
        records[i].submissions.push(s);
    }
    for (i, j) in justifications {
        records[i].justifications.push(j);
    }
    Ok(())
}

async fn fetch_assignments(
    conn: &mut PgConnection,
    q: &mut QueryBuilder<'_, Postgres>,
) -> R<Vec<AssignmentRecord>> {
    let rows = q.build().fetch_all(&mut *conn).await?;
    let mut records = rows.iter().map(assignment_row).collect::<R<Vec<_>>>()?;
    load_details(conn, &mut records).await?;
    Ok(records)
}

async fn fetch_assignment(conn: &mut PgConnection, id: Uuid) -> R<AssignmentRecord> {
    let mut q = QueryBuilder::<Postgres>::new(assignment_select());
    q.push(" WHERE a.id = ").push_bind(id);
    fetch_assignments(conn, &mut q)
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found("review assignment", id).into())
}

async fn fetch_round(
    conn: &mut PgConnection,
    instance_id: Uuid,
    round_id: &str,
    cycle: i64,
) -> R<Vec<AssignmentRecord>> {
    let mut q = QueryBuilder::<Postgres>::new(assignment_select());
    q.push(" WHERE a.instance_id = ")
        .push_bind(instance_id)
        .push(" AND a.round_id = ")
        .push_bind(round_id.to_string())
        .push(" AND a.cycle = ")
        .push_bind(cycle)
        .push(" ORDER BY a.assigned_at, a.id");
    fetch_assignments(conn, &mut q).await
}

/// The current cycle of the round opened in `opens_in`; with `lock`, the instance row is
/// locked until the transaction ends (transitions of the instance wait).
async fn cycle_of(
    conn: &mut PgConnection,
    instance_id: Uuid,
    opens_in: &str,
    lock: bool,
) -> R<Option<i64>> {
    let sql = if lock {
        "SELECT state FROM instances WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT state FROM instances WHERE id = $1"
    };
    let row = sqlx::query(sql)
        .bind(instance_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found("instance", instance_id))?;
    let state: String = row.try_get("state")?;
    if state != opens_in {
        return Ok(None);
    }
    let entered: Option<i64> = sqlx::query(
        "SELECT max(seq) AS entered FROM history WHERE instance_id = $1 AND to_state = $2 \
         AND from_state <> to_state",
    )
    .bind(instance_id)
    .bind(opens_in)
    .fetch_one(&mut *conn)
    .await?
    .try_get("entered")?;
    Ok(Some(entered.unwrap_or(0)))
}

async fn fingerprint(conn: &mut PgConnection, round: &RoundKey) -> R<Vec<(Uuid, i64)>> {
    let rows = sqlx::query(
        "SELECT id, revision FROM review_assignments WHERE instance_id = $1 AND round_id = $2 \
         AND cycle = $3",
    )
    .bind(round.instance_id)
    .bind(&round.round_id)
    .bind(round.cycle)
    .fetch_all(&mut *conn)
    .await?;
    let mut f = Vec::with_capacity(rows.len());
    for row in rows {
        f.push((
            row.try_get::<Uuid, _>("id")?,
            row.try_get::<i64, _>("revision")?,
        ));
    }
    f.sort();
    Ok(f)
}

fn sorted(mut f: Vec<(Uuid, i64)>) -> Vec<(Uuid, i64)> {
    f.sort();
    f
}

/// Lock the profiles of experts about to take seats, in id order, so that two writers
/// seating the same expert on different panels count each other's seats.
async fn lock_profiles(conn: &mut PgConnection, experts: &[Uuid]) -> R<()> {
    let mut ids = experts.to_vec();
    ids.sort();
    ids.dedup();
    sqlx::query(
        "SELECT user_id FROM expert_profiles WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    Ok(())
}

/// Checks that `expert_id` may take a new seat on the round's panel: not on it already,
/// in the pool and active, under the cap (counting `extra` seats taken earlier in the same
/// write). The profile must be locked.
async fn seat_refusal(
    conn: &mut PgConnection,
    round: &RoundKey,
    expert_id: Uuid,
    extra: u32,
) -> R<Option<ReviewConflict>> {
    let on_panel = sqlx::query(
        "SELECT 1 FROM review_assignments WHERE instance_id = $1 AND round_id = $2 \
         AND cycle = $3 AND expert_id = $4",
    )
    .bind(round.instance_id)
    .bind(&round.round_id)
    .bind(round.cycle)
    .bind(expert_id)
    .fetch_optional(&mut *conn)
    .await?;
    if on_panel.is_some() {
        return Ok(Some(ReviewConflict::AlreadyOnPanel { expert_id }));
    }
    let profile =
        sqlx::query("SELECT workload_cap, status FROM expert_profiles WHERE user_id = $1")
            .bind(expert_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(profile) = profile else {
        return Ok(Some(ReviewConflict::NotInPool { expert_id }));
    };
    let status: String = profile.try_get("status")?;
    if status != "active" {
        return Ok(Some(ReviewConflict::NotInPool { expert_id }));
    }
    let cap = u32::try_from(profile.try_get::<i64, _>("workload_cap")?).unwrap_or(0);
    let load: i64 = sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM review_assignments a WHERE a.expert_id = $1 \
         AND a.state IN {COUNTING_SQL} AND {OPEN_EXPR}"
    ))
    .bind(expert_id)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?;
    let load = u32::try_from(load)
        .unwrap_or(u32::MAX)
        .saturating_add(extra);
    if load >= cap {
        return Ok(Some(ReviewConflict::OverCap {
            expert_id,
            load,
            cap,
        }));
    }
    Ok(None)
}

async fn insert_assignment(
    conn: &mut PgConnection,
    round: &RoundKey,
    new: &NewAssignment,
    replaces: Option<Uuid>,
    at: DateTime<Utc>,
) -> R<()> {
    sqlx::query(
        "INSERT INTO review_assignments (id, instance_id, round_id, opens_in, cycle, expert_id, \
         state, revision, seed, algorithm, assigned_by, assigned_at, due_at, replaces_id, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'assigned', 0, $7, $8, $9, $10, $11, $12, $10)",
    )
    .bind(new.id)
    .bind(round.instance_id)
    .bind(&round.round_id)
    .bind(&round.opens_in)
    .bind(round.cycle)
    .bind(new.expert_id)
    .bind(new.seed.map(|s| s.to_string()))
    .bind(&new.algorithm)
    .bind(&new.assigned_by)
    .bind(at)
    .bind(new.due_at.map(|d| d.trunc_subsecs(6)))
    .bind(replaces)
    .execute(&mut *conn)
    .await
    .map_err(|e| rows::dup(e.into(), "review assignment", &new.expert_id.to_string()))?;
    instances::insert_timers::<PgDialect>(
        &mut *conn,
        round.instance_id,
        round.cycle,
        &round.opens_in,
        &new.timers,
    )
    .await
    .map_err(Fail::from)
}

async fn store_review(
    conn: &mut PgConnection,
    round: &RoundKey,
    recompute: Option<&Recompute<'_>>,
) -> R<()> {
    let Some(recompute) = recompute else {
        return Ok(());
    };
    let assignments =
        fetch_round(&mut *conn, round.instance_id, &round.round_id, round.cycle).await?;
    let records = RoundRecords {
        instance_id: round.instance_id,
        round_id: round.round_id.clone(),
        cycle: round.cycle,
        open: true,
        assignments,
    };
    let review: Value = recompute(&records);
    sqlx::query("UPDATE instances SET review = $1::json WHERE id = $2")
        .bind(json(&review))
        .bind(round.instance_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl PostgresStore {
    async fn create_tx(
        &self,
        req: &CreateAssignments<'_>,
    ) -> R<ReviewWrite<Vec<AssignmentRecord>>> {
        let at = req.at.trunc_subsecs(6);
        let round = &req.round;
        let mut tx = self.begin().await?;
        if cycle_of(&mut tx, round.instance_id, &round.opens_in, true).await? != Some(round.cycle) {
            return Ok(Err(ReviewConflict::RoundClosed));
        }
        if fingerprint(&mut tx, round).await? != sorted(req.expected_panel.clone()) {
            return Ok(Err(ReviewConflict::PanelChanged));
        }
        let experts: Vec<Uuid> = req.assignments.iter().map(|a| a.expert_id).collect();
        lock_profiles(&mut tx, &experts).await?;
        let mut taken: BTreeMap<Uuid, u32> = BTreeMap::new();
        for new in &req.assignments {
            let extra = taken.get(&new.expert_id).copied().unwrap_or(0);
            if let Some(refusal) = seat_refusal(&mut tx, round, new.expert_id, extra).await? {
                return Ok(Err(refusal));
            }
            insert_assignment(&mut tx, round, new, None, at).await?;
            *taken.entry(new.expert_id).or_default() += 1;
        }
        store_review(&mut tx, round, req.recompute).await?;
        let mut out = Vec::with_capacity(req.assignments.len());
        for new in &req.assignments {
            out.push(fetch_assignment(&mut tx, new.id).await?);
        }
        tx.commit().await?;
        Ok(Ok(out))
    }

    async fn change_tx(&self, req: &AssignmentChange<'_>) -> R<ReviewWrite<ChangedAssignment>> {
        let at = req.at.trunc_subsecs(6);
        if !assignment_state::ALL.contains(&req.state.as_str()) {
            return Err(
                StoreError::Invalid(format!("unknown assignment state `{}`", req.state)).into(),
            );
        }
        let mut tx = self.begin().await?;
        let instance_id: Uuid =
            sqlx::query("SELECT instance_id FROM review_assignments WHERE id = $1")
                .bind(req.assignment_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::not_found("review assignment", req.assignment_id))?
                .try_get("instance_id")?;
        // Lock order: the instance, then the assignment, then profiles.
        sqlx::query("SELECT 1 FROM instances WHERE id = $1 FOR UPDATE")
            .bind(instance_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT 1 FROM review_assignments WHERE id = $1 FOR UPDATE")
            .bind(req.assignment_id)
            .execute(&mut *tx)
            .await?;
        let before = fetch_assignment(&mut tx, req.assignment_id).await?;
        if before.revision != req.expected_revision {
            return Ok(Err(ReviewConflict::AssignmentChanged {
                state: before.state,
                revision: before.revision,
            }));
        }
        let round = RoundKey {
            instance_id: before.instance_id,
            round_id: before.round_id.clone(),
            opens_in: before.opens_in.clone(),
            cycle: before.cycle,
        };
        if cycle_of(&mut tx, round.instance_id, &round.opens_in, false).await? != Some(round.cycle)
        {
            return Ok(Err(ReviewConflict::RoundClosed));
        }
        if let Some(new) = &req.replacement {
            let expected = req.expected_panel.clone().unwrap_or_default();
            if fingerprint(&mut tx, &round).await? != sorted(expected) {
                return Ok(Err(ReviewConflict::PanelChanged));
            }
            lock_profiles(&mut tx, &[new.expert_id]).await?;
            if let Some(refusal) = seat_refusal(&mut tx, &round, new.expert_id, 0).await? {
                return Ok(Err(refusal));
            }
        }
        // The newcomer first: the old assignment's `replaced_by_id` refers to it.
        if let Some(new) = &req.replacement {
            insert_assignment(&mut tx, &round, new, Some(before.id), at).await?;
        }
        sqlx::query(
            "UPDATE review_assignments SET state = $1, revision = revision + 1, updated_at = $2, \
             replaced_by_id = coalesce($3, replaced_by_id) WHERE id = $4 AND revision = $5",
        )
        .bind(&req.state)
        .bind(at)
        .bind(req.replacement.as_ref().map(|r| r.id))
        .bind(before.id)
        .bind(before.revision)
        .execute(&mut *tx)
        .await?;
        let mut seq = before.events.iter().map(|e| e.seq).max().unwrap_or(0);
        for e in &req.events {
            seq += 1;
            sqlx::query(
                "INSERT INTO review_events (assignment_id, seq, at, actor_kind, actor_id, action, \
                 from_state, to_state, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(before.id)
            .bind(seq)
            .bind(e.at.trunc_subsecs(6))
            .bind(&e.actor_kind)
            .bind(&e.actor_id)
            .bind(&e.action)
            .bind(&e.from_state)
            .bind(&e.to_state)
            .bind(&e.reason)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(s) = &req.submission {
            sqlx::query(
                "INSERT INTO review_submissions (assignment_id, version, submitted_at, card, total) \
                 VALUES ($1, $2, $3, $4::json, $5)",
            )
            .bind(before.id)
            .bind(i64::from(s.version))
            .bind(at)
            .bind(json(&s.card))
            .bind(s.total)
            .execute(&mut *tx)
            .await
            .map_err(|e| rows::dup(e.into(), "submission version", &s.version.to_string()))?;
        }
        if let Some(r) = &req.reopen {
            let done = sqlx::query(
                "UPDATE review_submissions SET reopened_at = $1, reopened_by = $2, \
                 reopen_reason = $3 WHERE assignment_id = $4 AND version = $5 \
                 AND reopened_at IS NULL",
            )
            .bind(at)
            .bind(&r.by)
            .bind(&r.reason)
            .bind(before.id)
            .bind(i64::from(r.version))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Invalid(format!(
                    "version {} cannot be reopened",
                    r.version
                ))
                .into());
            }
        }
        if let Some((version, text)) = &req.justification {
            sqlx::query(
                "INSERT INTO review_justifications (assignment_id, version, text, written_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(before.id)
            .bind(i64::from(*version))
            .bind(text)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(|e| rows::dup(e.into(), "justification", &version.to_string()))?;
        }
        match req.view {
            ViewChange::Keep => {}
            ViewChange::Grant => {
                sqlx::query(
                    "INSERT INTO expert_assignments (instance_id, user_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(before.instance_id)
                .bind(before.expert_id)
                .execute(&mut *tx)
                .await?;
            }
            ViewChange::Revoke => {
                sqlx::query(
                    "DELETE FROM expert_assignments WHERE instance_id = $1 AND user_id = $2 \
                     AND NOT EXISTS (SELECT 1 FROM review_assignments a WHERE a.instance_id = $1 \
                     AND a.expert_id = $2 AND a.state IN ('accepted', 'submitted', 'reopened'))",
                )
                .bind(before.instance_id)
                .bind(before.expert_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        if req.cancel_timers {
            let prefix = assignment_timer_prefix(before.id);
            sqlx::query(
                "UPDATE timers SET status = 'cancelled', lease_until = NULL \
                 WHERE instance_id = $1 AND left(key, $2) = $3 \
                 AND status IN ('pending', 'claimed')",
            )
            .bind(before.instance_id)
            .bind(prefix.chars().count() as i32)
            .bind(&prefix)
            .execute(&mut *tx)
            .await?;
        }
        store_review(&mut tx, &round, req.recompute).await?;
        let assignment = fetch_assignment(&mut tx, before.id).await?;
        let replacement = match &req.replacement {
            Some(new) => Some(fetch_assignment(&mut tx, new.id).await?),
            None => None,
        };
        tx.commit().await?;
        Ok(Ok(ChangedAssignment {
            assignment,
            replacement,
        }))
    }

    /// Run `f` on one connection inside a read transaction (one snapshot).
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: for<'c> FnOnce(
            &'c mut PgConnection,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = R<T>> + Send + 'c>>,
    {
        let r: R<T> = async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
            let out = f(&mut tx).await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        Ok(r?)
    }
}

#[async_trait]
impl ReviewStore for PostgresStore {
    async fn upsert_expert_profile(&self, input: ExpertProfileInput) -> StoreResult<ExpertProfile> {
        let at = input.at.trunc_subsecs(6);
        let mut categories = input.categories.clone();
        categories.sort_unstable();
        categories.dedup();
        let categories = json(&serde_json::to_value(&categories).unwrap_or(Value::Null));
        let keywords = json(&Value::from(input.keywords.clone()));
        let r: R<ExpertProfile> = retry_tx!(async {
            let row = sqlx::query(&format!(
                "INSERT INTO expert_profiles (user_id, categories, keywords, workload_cap, status, \
                 created_at, updated_at) VALUES ($1, $2::json, $3::json, $4, $5, $6, $6) \
                 ON CONFLICT (user_id) DO UPDATE SET categories = excluded.categories, \
                 keywords = excluded.keywords, workload_cap = excluded.workload_cap, \
                 status = excluded.status, updated_at = excluded.updated_at \
                 RETURNING {PROFILE_COLS}"
            ))
            .bind(input.user_id)
            .bind(&categories)
            .bind(&keywords)
            .bind(i64::from(input.workload_cap))
            .bind(&input.status)
            .bind(at)
            .fetch_one(&self.pool)
            .await?;
            profile_row(&row)
        });
        Ok(r?)
    }

    async fn expert_profile(&self, user_id: Uuid) -> StoreResult<Option<ExpertProfile>> {
        let row = sqlx::query(&format!(
            "SELECT {PROFILE_COLS} FROM expert_profiles WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        Ok(row.as_ref().map(profile_row).transpose()?)
    }

    async fn expert_profiles(&self) -> StoreResult<Vec<ExpertProfile>> {
        let rows = sqlx::query(&format!(
            "SELECT {PROFILE_COLS} FROM expert_profiles ORDER BY user_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        Ok(rows.iter().map(profile_row).collect::<R<_>>()?)
    }

    async fn add_collaboration(&self, new: NewCollaboration) -> StoreResult<Collaboration> {
        let c = Collaboration {
            id: Uuid::now_v7(),
            expert_id: new.expert_id,
            org_id: new.org_id,
            until: new.until,
            note: new.note,
            created_at: new.at.trunc_subsecs(6),
        };
        sqlx::query(
            "INSERT INTO expert_collaborations (id, expert_id, org_id, until, note, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.id)
        .bind(c.expert_id)
        .bind(c.org_id)
        .bind(c.until)
        .bind(&c.note)
        .bind(c.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            StoreError::from(rows::dup(e.into(), "collaboration", &c.until.to_string()))
        })?;
        Ok(c)
    }

    async fn collaborations(&self, expert_id: Option<Uuid>) -> StoreResult<Vec<Collaboration>> {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT id, expert_id, org_id, until, note, created_at FROM expert_collaborations",
        );
        if let Some(e) = expert_id {
            q.push(" WHERE expert_id = ").push_bind(e);
        }
        q.push(" ORDER BY expert_id, until, id");
        let rows = q
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(rows::backend_error)?;
        Ok(rows.iter().map(collaboration_row).collect::<R<_>>()?)
    }

    async fn open_loads(&self) -> StoreResult<Vec<(Uuid, u32)>> {
        let rows = sqlx::query(&format!(
            "SELECT a.expert_id, COUNT(*) AS n FROM review_assignments a \
             WHERE a.state IN {COUNTING_SQL} AND {OPEN_EXPR} \
             GROUP BY a.expert_id ORDER BY a.expert_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let n: i64 = row.try_get("n").map_err(rows::backend_error)?;
            let id: Uuid = row.try_get("expert_id").map_err(rows::backend_error)?;
            out.push((id, u32::try_from(n).unwrap_or(u32::MAX)));
        }
        Ok(out)
    }

    async fn set_exclusions(
        &self,
        instance_id: Uuid,
        org_ids: &[Uuid],
        requested_by: Uuid,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let at = at.trunc_subsecs(6);
        let r: R<()> = retry_tx!(async {
            let mut tx = self.begin().await?;
            sqlx::query("SELECT 1 FROM instances WHERE id = $1 FOR UPDATE")
                .bind(instance_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM review_exclusions WHERE instance_id = $1")
                .bind(instance_id)
                .execute(&mut *tx)
                .await?;
            for org in org_ids {
                sqlx::query(
                    "INSERT INTO review_exclusions (instance_id, org_id, requested_by, \
                     requested_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(instance_id)
                .bind(org)
                .bind(requested_by)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        });
        Ok(r?)
    }

    async fn exclusions(&self, instance_id: Uuid) -> StoreResult<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT org_id FROM review_exclusions WHERE instance_id = $1 ORDER BY org_id",
        )
        .bind(instance_id)
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        rows.iter()
            .map(|r| r.try_get::<Uuid, _>("org_id").map_err(rows::backend_error))
            .collect()
    }

    async fn call_instances(&self, workflow_id: &str, call_id: &str) -> StoreResult<Vec<Instance>> {
        let rows = sqlx::query(&format!(
            "SELECT {INSTANCE_COLS} FROM instances WHERE workflow_id = $1 \
             AND data->>'call_id' = $2 ORDER BY created_at, id"
        ))
        .bind(workflow_id)
        .bind(call_id)
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        Ok(instances::instances::<PgDialect>(&rows).map_err(Fail::from)?)
    }

    async fn round_cycle(&self, instance_id: Uuid, opens_in: &str) -> StoreResult<Option<i64>> {
        let opens_in = opens_in.to_string();
        self.read(move |conn| {
            Box::pin(async move { cycle_of(conn, instance_id, &opens_in, false).await })
        })
        .await
    }

    async fn round_records(
        &self,
        instance_id: Uuid,
        round_id: &str,
        cycle: i64,
    ) -> StoreResult<RoundRecords> {
        let round_id = round_id.to_string();
        self.read(move |conn| {
            Box::pin(async move {
                let assignments = fetch_round(&mut *conn, instance_id, &round_id, cycle).await?;
                let open = match assignments.first() {
                    Some(a) => a.round_open,
                    None => {
                        let row = sqlx::query("SELECT 1 FROM instances WHERE id = $1")
                            .bind(instance_id)
                            .fetch_optional(&mut *conn)
                            .await?;
                        if row.is_none() {
                            return Err(StoreError::not_found("instance", instance_id).into());
                        }
                        false
                    }
                };
                Ok(RoundRecords {
                    instance_id,
                    round_id,
                    cycle,
                    open,
                    assignments,
                })
            })
        })
        .await
    }

    async fn instance_assignments(&self, instance_id: Uuid) -> StoreResult<Vec<AssignmentRecord>> {
        self.read(move |conn| {
            Box::pin(async move {
                let mut q = QueryBuilder::<Postgres>::new(assignment_select());
                q.push(" WHERE a.instance_id = ")
                    .push_bind(instance_id)
                    .push(" ORDER BY a.assigned_at, a.id");
                fetch_assignments(conn, &mut q).await
            })
        })
        .await
    }

    async fn assignment(&self, id: Uuid) -> StoreResult<AssignmentRecord> {
        self.read(move |conn| Box::pin(async move { fetch_assignment(conn, id).await }))
            .await
    }

    async fn expert_queue(
        &self,
        expert_id: Uuid,
        include_closed: bool,
    ) -> StoreResult<Vec<AssignmentRecord>> {
        self.read(move |conn| {
            Box::pin(async move {
                let mut q = QueryBuilder::<Postgres>::new(assignment_select());
                q.push(" WHERE a.expert_id = ").push_bind(expert_id);
                if !include_closed {
                    q.push(format!(" AND {OPEN_EXPR}"));
                }
                q.push(" ORDER BY a.assigned_at DESC, a.id DESC");
                fetch_assignments(conn, &mut q).await
            })
        })
        .await
    }

    async fn create_assignments(
        &self,
        request: CreateAssignments<'_>,
    ) -> StoreResult<ReviewWrite<Vec<AssignmentRecord>>> {
        let r = retry_tx!(self.create_tx(&request));
        Ok(r?)
    }

    async fn change_assignment(
        &self,
        request: AssignmentChange<'_>,
    ) -> StoreResult<ReviewWrite<ChangedAssignment>> {
        let r = retry_tx!(self.change_tx(&request));
        Ok(r?)
    }
}
