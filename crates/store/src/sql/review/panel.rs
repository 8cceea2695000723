//! Review writes: seating experts on a round's panel and changing an assignment, each in
//! one write transaction that locks the instance, the assignment and the profiles of the
//! experts taking seats, in that order.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{COUNTING_SQL, OPEN_EXPR, cycle_of, fetch_assignment, fetch_round};
use crate::StoreError;
use crate::review::{
    AssignmentChange, AssignmentRecord, ChangedAssignment, CreateAssignments, NewAssignment,
    Recompute, ReviewConflict, ReviewWrite, RoundKey, RoundRecords, ViewChange, assignment_state,
    assignment_timer_prefix,
};
use crate::sql::instances::insert_timers;
use crate::sql::{Args, Conn, Dialect, Get, Pools, R, dup};

async fn fingerprint<D: Dialect>(conn: &mut Conn<D>, round: &RoundKey) -> R<Vec<(Uuid, i64)>> {
    let rows = D::fetch_all(
        conn,
        "SELECT id, revision FROM review_assignments WHERE instance_id = $1 AND round_id = $2 \
         AND cycle = $3",
        Args::new()
            .id(round.instance_id)
            .text(&round.round_id)
            .int(round.cycle),
    )
    .await?;
    let mut f = Vec::with_capacity(rows.len());
    for row in &rows {
        let g = Get::<D>(row);
        f.push((g.id("id")?, g.i64("revision")?));
    }
    f.sort();
    Ok(f)
}

fn sorted(mut f: Vec<(Uuid, i64)>) -> Vec<(Uuid, i64)> {
    f.sort();
    f
}

/// Lock the profiles of experts about to take seats, in id order, so that two writers
/// seating the same expert on different panels count each other's seats (nothing to do
/// where the write transaction holds the lock from its start).
async fn lock_profiles<D: Dialect>(conn: &mut Conn<D>, experts: &[Uuid]) -> R<()> {
    if D::FOR_UPDATE.is_empty() {
        return Ok(());
    }
    let mut ids = experts.to_vec();
    ids.sort();
    ids.dedup();
    D::fetch_all(
        conn,
        &format!(
            "SELECT user_id FROM expert_profiles WHERE user_id {} ORDER BY user_id{}",
            D::in_ids("$1"),
            D::FOR_UPDATE
        ),
        Args::new().ids(&ids),
    )
    .await?;
    Ok(())
}

/// Lock one row of `table` by id (nothing on SQLite: see [`Dialect::FOR_UPDATE`]).
pub(super) async fn lock_row<D: Dialect>(conn: &mut Conn<D>, table: &str, id: Uuid) -> R<()> {
    if !D::FOR_UPDATE.is_empty() {
        let sql = format!(
            "SELECT 1 AS one FROM {table} WHERE id = $1{}",
            D::FOR_UPDATE
        );
        D::fetch_optional(conn, &sql, Args::new().id(id)).await?;
    }
    Ok(())
}

/// Checks that `expert_id` may take a new seat on the round's panel: not on it already,
/// in the pool and active, under the cap (counting `extra` seats taken earlier in the same
/// write). The profile must be locked.
async fn seat_refusal<D: Dialect>(
    conn: &mut Conn<D>,
    round: &RoundKey,
    expert_id: Uuid,
    extra: u32,
) -> R<Option<ReviewConflict>> {
    let on_panel = D::fetch_optional(
        &mut *conn,
        "SELECT 1 AS one FROM review_assignments WHERE instance_id = $1 AND round_id = $2 \
         AND cycle = $3 AND expert_id = $4",
        Args::new()
            .id(round.instance_id)
            .text(&round.round_id)
            .int(round.cycle)
            .id(expert_id),
    )
    .await?;
    if on_panel.is_some() {
        return Ok(Some(ReviewConflict::AlreadyOnPanel { expert_id }));
    }
    let profile = D::fetch_optional(
        &mut *conn,
        "SELECT workload_cap, status FROM expert_profiles WHERE user_id = $1",
        Args::new().id(expert_id),
    )
    .await?;
    let Some(profile) = profile else {
        return Ok(Some(ReviewConflict::NotInPool { expert_id }));
    };
    let g = Get::<D>(&profile);
    if g.str("status")? != "active" {
        return Ok(Some(ReviewConflict::NotInPool { expert_id }));
    }
    let cap = u32::try_from(g.i64("workload_cap")?).unwrap_or(0);
    let load = D::fetch_optional(
        &mut *conn,
        &format!(
            "SELECT COUNT(*) AS n FROM review_assignments a WHERE a.expert_id = $1 \
             AND a.state IN {COUNTING_SQL} AND {OPEN_EXPR}"
        ),
        Args::new().id(expert_id),
    )
    .await?;
    let load = match load {
        Some(row) => Get::<D>(&row).i64("n")?,
        None => 0,
    };
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

async fn insert_assignment<D: Dialect>(
    conn: &mut Conn<D>,
    round: &RoundKey,
    new: &NewAssignment,
    replaces: Option<Uuid>,
    at: DateTime<Utc>,
) -> R<()> {
    D::execute(
        &mut *conn,
        "INSERT INTO review_assignments (id, instance_id, round_id, opens_in, cycle, expert_id, \
         state, revision, seed, algorithm, assigned_by, assigned_at, due_at, replaces_id, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'assigned', 0, $7, $8, $9, $10, $11, $12, \
         $10)",
        Args::new()
            .id(new.id)
            .id(round.instance_id)
            .text(&round.round_id)
            .text(&round.opens_in)
            .int(round.cycle)
            .id(new.expert_id)
            .opt_text(new.seed.map(|s| s.to_string()))
            .opt_text(new.algorithm.clone())
            .text(&new.assigned_by)
            .time(at)
            .opt_time(new.due_at.map(|d| d.trunc_subsecs(6)))
            .opt_id(replaces),
    )
    .await
    .map_err(|e| dup::<D>(e.into(), "review assignment", &new.expert_id.to_string()))?;
    insert_timers::<D>(
        conn,
        round.instance_id,
        round.cycle,
        &round.opens_in,
        &new.timers,
    )
    .await
}

async fn store_review<D: Dialect>(
    conn: &mut Conn<D>,
    round: &RoundKey,
    recompute: Option<&Recompute<'_>>,
) -> R<()> {
    let Some(recompute) = recompute else {
        return Ok(());
    };
    let assignments =
        fetch_round::<D>(&mut *conn, round.instance_id, &round.round_id, round.cycle).await?;
    let records = RoundRecords {
        instance_id: round.instance_id,
        round_id: round.round_id.clone(),
        cycle: round.cycle,
        open: true,
        assignments,
    };
    let review: Value = recompute(&records);
    D::execute(
        conn,
        "UPDATE instances SET review = $1 WHERE id = $2",
        Args::new().json(&review).id(round.instance_id),
    )
    .await?;
    Ok(())
}

pub(super) async fn create_tx<D: Dialect>(
    pool: &Pools<D::DB>,
    req: &CreateAssignments<'_>,
) -> R<ReviewWrite<Vec<AssignmentRecord>>> {
    let at = req.at.trunc_subsecs(6);
    let round = &req.round;
    let mut tx = D::begin_write(pool).await?;
    if cycle_of::<D>(&mut *tx, round.instance_id, &round.opens_in, true).await? != Some(round.cycle)
    {
        return Ok(Err(ReviewConflict::RoundClosed));
    }
    if fingerprint::<D>(&mut *tx, round).await? != sorted(req.expected_panel.clone()) {
        return Ok(Err(ReviewConflict::PanelChanged));
    }
    let experts: Vec<Uuid> = req.assignments.iter().map(|a| a.expert_id).collect();
    lock_profiles::<D>(&mut *tx, &experts).await?;
    let mut taken: BTreeMap<Uuid, u32> = BTreeMap::new();
    for new in &req.assignments {
        let extra = taken.get(&new.expert_id).copied().unwrap_or(0);
        if let Some(refusal) = seat_refusal::<D>(&mut *tx, round, new.expert_id, extra).await? {
            return Ok(Err(refusal));
        }
        insert_assignment::<D>(&mut *tx, round, new, None, at).await?;
        *taken.entry(new.expert_id).or_default() += 1;
    }
    store_review::<D>(&mut *tx, round, req.recompute).await?;
    let mut out = Vec::with_capacity(req.assignments.len());
    for new in &req.assignments {
        out.push(fetch_assignment::<D>(&mut *tx, new.id).await?);
    }
    tx.commit().await?;
    Ok(Ok(out))
}

pub(super) async fn change_tx<D: Dialect>(
    pool: &Pools<D::DB>,
    req: &AssignmentChange<'_>,
) -> R<ReviewWrite<ChangedAssignment>> {
    let at = req.at.trunc_subsecs(6);
    if !assignment_state::ALL.contains(&req.state.as_str()) {
        return Err(
            StoreError::Invalid(format!("unknown assignment state `{}`", req.state)).into(),
        );
    }
    let mut tx = D::begin_write(pool).await?;
    let found = D::fetch_optional(
        &mut *tx,
        "SELECT instance_id FROM review_assignments WHERE id = $1",
        Args::new().id(req.assignment_id),
    )
    .await?
    .ok_or_else(|| StoreError::not_found("review assignment", req.assignment_id))?;
    let instance_id = Get::<D>(&found).id("instance_id")?;
    // Lock order: the instance, then the assignment, then profiles.
    lock_row::<D>(&mut *tx, "instances", instance_id).await?;
    lock_row::<D>(&mut *tx, "review_assignments", req.assignment_id).await?;
    let before = fetch_assignment::<D>(&mut *tx, req.assignment_id).await?;
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
    if cycle_of::<D>(&mut *tx, round.instance_id, &round.opens_in, false).await?
        != Some(round.cycle)
    {
        return Ok(Err(ReviewConflict::RoundClosed));
    }
    if let Some(new) = &req.replacement {
        let expected = req.expected_panel.clone().unwrap_or_default();
        if fingerprint::<D>(&mut *tx, &round).await? != sorted(expected) {
            return Ok(Err(ReviewConflict::PanelChanged));
        }
        lock_profiles::<D>(&mut *tx, &[new.expert_id]).await?;
        if let Some(refusal) = seat_refusal::<D>(&mut *tx, &round, new.expert_id, 0).await? {
            return Ok(Err(refusal));
        }
    }
    // The newcomer first: the old assignment's `replaced_by_id` refers to it.
    if let Some(new) = &req.replacement {
        insert_assignment::<D>(&mut *tx, &round, new, Some(before.id), at).await?;
    }
    D::execute(
        &mut *tx,
        "UPDATE review_assignments SET state = $1, revision = revision + 1, updated_at = $2, \
         replaced_by_id = coalesce($3, replaced_by_id) WHERE id = $4 AND revision = $5",
        Args::new()
            .text(&req.state)
            .time(at)
            .opt_id(req.replacement.as_ref().map(|r| r.id))
            .id(before.id)
            .int(before.revision),
    )
    .await?;
    let mut seq = before.events.iter().map(|e| e.seq).max().unwrap_or(0);
    for e in &req.events {
        seq += 1;
        D::execute(
            &mut *tx,
            "INSERT INTO review_events (assignment_id, seq, at, actor_kind, actor_id, action, \
             from_state, to_state, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            Args::new()
                .id(before.id)
                .int(seq)
                .time(e.at.trunc_subsecs(6))
                .text(&e.actor_kind)
                .opt_text(e.actor_id.clone())
                .text(&e.action)
                .text(&e.from_state)
                .text(&e.to_state)
                .opt_text(e.reason.clone()),
        )
        .await?;
    }
    if let Some(s) = &req.submission {
        D::execute(
            &mut *tx,
            "INSERT INTO review_submissions (assignment_id, version, submitted_at, card, total) \
             VALUES ($1, $2, $3, $4, $5)",
            Args::new()
                .id(before.id)
                .int(i64::from(s.version))
                .time(at)
                .json(&s.card)
                .float(s.total),
        )
        .await
        .map_err(|e| dup::<D>(e.into(), "submission version", &s.version.to_string()))?;
    }
    if let Some(r) = &req.reopen {
        let done = D::execute(
            &mut *tx,
            "UPDATE review_submissions SET reopened_at = $1, reopened_by = $2, \
             reopen_reason = $3 WHERE assignment_id = $4 AND version = $5 \
             AND reopened_at IS NULL",
            Args::new()
                .time(at)
                .text(&r.by)
                .text(&r.reason)
                .id(before.id)
                .int(i64::from(r.version)),
        )
        .await?;
        if done != 1 {
            return Err(
                StoreError::Invalid(format!("version {} cannot be reopened", r.version)).into(),
            );
        }
    }
    if let Some((version, text)) = &req.justification {
        D::execute(
            &mut *tx,
            "INSERT INTO review_justifications (assignment_id, version, text, written_at) \
             VALUES ($1, $2, $3, $4)",
            Args::new()
                .id(before.id)
                .int(i64::from(*version))
                .text(text)
                .time(at),
        )
        .await
        .map_err(|e| dup::<D>(e.into(), "justification", &version.to_string()))?;
    }
    match req.view {
        ViewChange::Keep => {}
        ViewChange::Grant => {
            D::execute(
                &mut *tx,
                "INSERT INTO expert_assignments (instance_id, user_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                Args::new().id(before.instance_id).id(before.expert_id),
            )
            .await?;
        }
        ViewChange::Revoke => {
            D::execute(
                &mut *tx,
                "DELETE FROM expert_assignments WHERE instance_id = $1 AND user_id = $2 \
                 AND NOT EXISTS (SELECT 1 FROM review_assignments a WHERE a.instance_id = $1 \
                 AND a.expert_id = $2 AND a.state IN ('accepted', 'submitted', 'reopened'))",
                Args::new().id(before.instance_id).id(before.expert_id),
            )
            .await?;
        }
    }
    if req.cancel_timers {
        let prefix = assignment_timer_prefix(before.id);
        D::execute(
            &mut *tx,
            "UPDATE timers SET status = 'cancelled', lease_until = NULL \
             WHERE instance_id = $1 AND substr(key, 1, $2) = $3 \
             AND status IN ('pending', 'claimed')",
            Args::new()
                .id(before.instance_id)
                .int32(i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX))
                .text(&prefix),
        )
        .await?;
    }
    store_review::<D>(&mut *tx, &round, req.recompute).await?;
    let assignment = fetch_assignment::<D>(&mut *tx, before.id).await?;
    let replacement = match &req.replacement {
        Some(new) => Some(fetch_assignment::<D>(&mut *tx, new.id).await?),
        None => None,
    };
    tx.commit().await?;
    Ok(Ok(ChangedAssignment {
        assignment,
        replacement,
    }))
}
