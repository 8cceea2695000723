//! [`crate::ReviewStore`] in SQL: the expert pool, applicants' exclusions, review rounds
//! and their assignments.
//!
//! Writes lock in one order — the instance row, then the assignment row, then the
//! profiles of experts taking a seat in id order (the dialect's `FOR UPDATE`; SQLite's
//! write transaction holds the lock from its start) — so two managers drawing panels, a
//! manager closing the round and an expert submitting queue behind each other instead of
//! interleaving. Reads of several statements run in one read transaction (one snapshot).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sqlx::Pool;
use uuid::Uuid;

use super::instances::{INSTANCE_COLS, insert_timers, instances};
use super::{Args, Conn, Dialect, Fail, Get, R, Row, SqlBackend, bad, dup, execute, fetch_all};
use crate::review::{
    AssignmentChange, AssignmentEvent, AssignmentRecord, ChangedAssignment, Collaboration,
    CreateAssignments, ExpertProfile, ExpertProfileInput, Justification, NewAssignment,
    NewCollaboration, Recompute, ReviewConflict, ReviewStore, ReviewWrite, RoundKey, RoundRecords,
    Submission, ViewChange, assignment_state, assignment_timer_prefix,
};
use crate::sql::retrying;
use crate::{Instance, StoreError, StoreResult};

/// Whether the round cycle of assignment `a` is open: the instance is in `opens_in` and
/// has not changed state since it entered it at version `cycle`.
const OPEN_EXPR: &str = "(EXISTS (SELECT 1 FROM instances i WHERE i.id = a.instance_id \
     AND i.state = a.opens_in) AND NOT EXISTS (SELECT 1 FROM history h \
     WHERE h.instance_id = a.instance_id AND h.seq > a.cycle AND h.from_state <> h.to_state))";

const COUNTING_SQL: &str = "('assigned', 'accepted', 'submitted', 'reopened', 'overdue')";

const PROFILE_COLS: &str =
    "user_id, categories, keywords, workload_cap, status, created_at, updated_at";

fn assignment_select() -> String {
    format!(
        "SELECT a.id, a.instance_id, a.round_id, a.opens_in, a.cycle, a.expert_id, a.state, \
         a.revision, a.seed, a.algorithm, a.assigned_by, a.assigned_at, a.due_at, \
         a.replaces_id, a.replaced_by_id, a.updated_at, {OPEN_EXPR} AS round_open \
         FROM review_assignments a"
    )
}

fn version_of<D: Dialect>(g: &Get<'_, D>) -> R<u32> {
    g.u32("version")
}

fn assignment_row<D: Dialect>(row: &Row<D>) -> R<AssignmentRecord> {
    let g = Get::<D>(row);
    let seed = g
        .opt_str("seed")?
        .map(|s| s.parse::<u64>().map_err(|_| bad("seed", &s)))
        .transpose()?;
    Ok(AssignmentRecord {
        id: g.id("id")?,
        instance_id: g.id("instance_id")?,
        round_id: g.str("round_id")?,
        opens_in: g.str("opens_in")?,
        cycle: g.i64("cycle")?,
        expert_id: g.id("expert_id")?,
        state: g.str("state")?,
        revision: g.i64("revision")?,
        seed,
        algorithm: g.opt_str("algorithm")?,
        assigned_by: g.str("assigned_by")?,
        assigned_at: g.time("assigned_at")?,
        due_at: g.opt_time("due_at")?,
        replaces: g.opt_id("replaces_id")?,
        replaced_by: g.opt_id("replaced_by_id")?,
        updated_at: g.time("updated_at")?,
        round_open: g.bool("round_open")?,
        events: Vec::new(),
        submissions: Vec::new(),
        justifications: Vec::new(),
    })
}

fn profile_row<D: Dialect>(row: &Row<D>) -> R<ExpertProfile> {
    let g = Get::<D>(row);
    let categories: Vec<u8> =
        serde_json::from_value(g.json("categories")?).map_err(|_| bad("categories", "json"))?;
    let keywords: Vec<String> =
        serde_json::from_value(g.json("keywords")?).map_err(|_| bad("keywords", "json"))?;
    Ok(ExpertProfile {
        user_id: g.id("user_id")?,
        categories,
        keywords,
        workload_cap: u32::try_from(g.i64("workload_cap")?)
            .map_err(|_| bad("workload cap", "out of range"))?,
        status: g.str("status")?,
        created_at: g.time("created_at")?,
        updated_at: g.time("updated_at")?,
    })
}

fn collaboration_row<D: Dialect>(row: &Row<D>) -> R<Collaboration> {
    let g = Get::<D>(row);
    Ok(Collaboration {
        id: g.id("id")?,
        expert_id: g.id("expert_id")?,
        org_id: g.id("org_id")?,
        until: g.date("until")?,
        note: g.opt_str("note")?,
        created_at: g.time("created_at")?,
    })
}

/// Fill in events, submissions and justifications.
async fn load_details<D: Dialect>(conn: &mut Conn<D>, records: &mut [AssignmentRecord]) -> R<()> {
    if records.is_empty() {
        return Ok(());
    }
    let index: HashMap<Uuid, usize> = records.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    let ids: Vec<Uuid> = records.iter().map(|r| r.id).collect();
    let rows = D::fetch_all(
        &mut *conn,
        &format!(
            "SELECT assignment_id, seq, at, actor_kind, actor_id, action, from_state, to_state, \
             reason FROM review_events WHERE assignment_id {} ORDER BY assignment_id, seq",
            D::in_ids("$1")
        ),
        Args::new().ids(&ids),
    )
    .await?;
    let mut events: Vec<(usize, AssignmentEvent)> = Vec::new();
    for row in &rows {
        let g = Get::<D>(row);
        let i = index[&g.id("assignment_id")?];
        events.push((
            i,
            AssignmentEvent {
                seq: g.i64("seq")?,
                at: g.time("at")?,
                actor_kind: g.str("actor_kind")?,
                actor_id: g.opt_str("actor_id")?,
                action: g.str("action")?,
                from_state: g.str("from_state")?,
                to_state: g.str("to_state")?,
                reason: g.opt_str("reason")?,
            },
        ));
    }
    let rows = D::fetch_all(
        &mut *conn,
        &format!(
            "SELECT assignment_id, version, submitted_at, card, total, reopened_at, \
             reopened_by, reopen_reason FROM review_submissions WHERE assignment_id {} \
             ORDER BY assignment_id, version",
            D::in_ids("$1")
        ),
        Args::new().ids(&ids),
    )
    .await?;
    let mut submissions: Vec<(usize, Submission)> = Vec::new();
    for row in &rows {
        let g = Get::<D>(row);
        let i = index[&g.id("assignment_id")?];
        submissions.push((
            i,
            Submission {
                version: version_of(&g)?,
                submitted_at: g.time("submitted_at")?,
                card: g.json("card")?,
                total: g.f64("total")?,
                reopened_at: g.opt_time("reopened_at")?,
                reopened_by: g.opt_str("reopened_by")?,
                reopen_reason: g.opt_str("reopen_reason")?,
            },
        ));
    }
    let rows = D::fetch_all(
        &mut *conn,
        &format!(
            "SELECT assignment_id, version, text, written_at FROM review_justifications \
             WHERE assignment_id {} ORDER BY assignment_id, version",
            D::in_ids("$1")
        ),
        Args::new().ids(&ids),
    )
    .await?;
    let mut justifications: Vec<(usize, Justification)> = Vec::new();
    for row in &rows {
        let g = Get::<D>(row);
        let i = index[&g.id("assignment_id")?];
        justifications.push((
            i,
            Justification {
                version: version_of(&g)?,
                text: g.str("text")?,
                written_at: g.time("written_at")?,
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

/// The assignments `where_order` (after `FROM review_assignments a`) selects, with their
/// details.
async fn fetch_assignments<D: Dialect>(
    conn: &mut Conn<D>,
    where_order: &str,
    args: Args,
) -> R<Vec<AssignmentRecord>> {
    let sql = format!("{}{where_order}", assignment_select());
    let rows = D::fetch_all(&mut *conn, &sql, args).await?;
    let mut records = rows
        .iter()
        .map(assignment_row::<D>)
        .collect::<R<Vec<_>>>()?;
    load_details::<D>(conn, &mut records).await?;
    Ok(records)
}

async fn fetch_assignment<D: Dialect>(conn: &mut Conn<D>, id: Uuid) -> R<AssignmentRecord> {
    fetch_assignments::<D>(conn, " WHERE a.id = $1", Args::new().id(id))
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found("review assignment", id).into())
}

async fn fetch_round<D: Dialect>(
    conn: &mut Conn<D>,
    instance_id: Uuid,
    round_id: &str,
    cycle: i64,
) -> R<Vec<AssignmentRecord>> {
    fetch_assignments::<D>(
        conn,
        " WHERE a.instance_id = $1 AND a.round_id = $2 AND a.cycle = $3 \
         ORDER BY a.assigned_at, a.id",
        Args::new().id(instance_id).text(round_id).int(cycle),
    )
    .await
}

/// The current cycle of the round opened in `opens_in`; with `lock`, the instance row is
/// locked until the transaction ends (transitions of the instance wait).
async fn cycle_of<D: Dialect>(
    conn: &mut Conn<D>,
    instance_id: Uuid,
    opens_in: &str,
    lock: bool,
) -> R<Option<i64>> {
    let sql = format!(
        "SELECT state FROM instances WHERE id = $1{}",
        if lock { D::FOR_UPDATE } else { "" }
    );
    let row = D::fetch_optional(&mut *conn, &sql, Args::new().id(instance_id))
        .await?
        .ok_or_else(|| StoreError::not_found("instance", instance_id))?;
    if Get::<D>(&row).str("state")? != opens_in {
        return Ok(None);
    }
    let entered = D::fetch_optional(
        &mut *conn,
        "SELECT max(seq) AS entered FROM history WHERE instance_id = $1 AND to_state = $2 \
         AND from_state <> to_state",
        Args::new().id(instance_id).text(opens_in),
    )
    .await?;
    let entered = match entered {
        Some(row) => Get::<D>(&row).opt_i64("entered")?,
        None => None,
    };
    Ok(Some(entered.unwrap_or(0)))
}

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
async fn lock_row<D: Dialect>(conn: &mut Conn<D>, table: &str, id: Uuid) -> R<()> {
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

async fn create_tx<D: Dialect>(
    pool: &Pool<D::DB>,
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

async fn change_tx<D: Dialect>(
    pool: &Pool<D::DB>,
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

#[async_trait::async_trait]
impl<S: SqlBackend> ReviewStore for S {
    async fn upsert_expert_profile(&self, input: ExpertProfileInput) -> StoreResult<ExpertProfile> {
        let at = input.at.trunc_subsecs(6);
        let mut categories = input.categories.clone();
        categories.sort_unstable();
        categories.dedup();
        let categories = serde_json::to_value(&categories).unwrap_or(Value::Null);
        let keywords = Value::from(input.keywords.clone());
        let sql = format!(
            "INSERT INTO expert_profiles (user_id, categories, keywords, workload_cap, status, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (user_id) DO UPDATE SET categories = excluded.categories, \
             keywords = excluded.keywords, workload_cap = excluded.workload_cap, \
             status = excluded.status, updated_at = excluded.updated_at \
             RETURNING {PROFILE_COLS}"
        );
        let r: R<ExpertProfile> = retrying!(S::D, async {
            let row = super::fetch_optional::<S::D>(
                self.sql_pool(),
                &sql,
                Args::new()
                    .id(input.user_id)
                    .json(&categories)
                    .json(&keywords)
                    .int(i64::from(input.workload_cap))
                    .text(&input.status)
                    .time(at),
            )
            .await?
            .ok_or_else(|| bad("expert profile", "not returned"))?;
            profile_row::<S::D>(&row)
        });
        r.map_err(Fail::store::<S::D>)
    }

    async fn expert_profile(&self, user_id: Uuid) -> StoreResult<Option<ExpertProfile>> {
        let r: R<Option<ExpertProfile>> = async {
            let row = super::fetch_optional::<S::D>(
                self.sql_pool(),
                &format!("SELECT {PROFILE_COLS} FROM expert_profiles WHERE user_id = $1"),
                Args::new().id(user_id),
            )
            .await?;
            row.as_ref().map(profile_row::<S::D>).transpose()
        }
        .await;
        r.map_err(Fail::store::<S::D>)
    }

    async fn expert_profiles(&self) -> StoreResult<Vec<ExpertProfile>> {
        let r: R<Vec<ExpertProfile>> = async {
            let rows = fetch_all::<S::D>(
                self.sql_pool(),
                &format!("SELECT {PROFILE_COLS} FROM expert_profiles ORDER BY user_id"),
                Args::new(),
            )
            .await?;
            rows.iter().map(profile_row::<S::D>).collect()
        }
        .await;
        r.map_err(Fail::store::<S::D>)
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
        execute::<S::D>(
            self.sql_pool(),
            "INSERT INTO expert_collaborations (id, expert_id, org_id, until, note, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            Args::new()
                .id(c.id)
                .id(c.expert_id)
                .id(c.org_id)
                .date(c.until)
                .opt_text(c.note.clone())
                .time(c.created_at),
        )
        .await
        .map_err(|e| dup::<S::D>(e, "collaboration", &c.until.to_string()).store::<S::D>())?;
        Ok(c)
    }

    async fn collaborations(&self, expert_id: Option<Uuid>) -> StoreResult<Vec<Collaboration>> {
        let mut sql = String::from(
            "SELECT id, expert_id, org_id, until, note, created_at FROM expert_collaborations",
        );
        let mut args = Args::new();
        if let Some(e) = expert_id {
            sql += " WHERE expert_id = $1";
            args = args.id(e);
        }
        sql += " ORDER BY expert_id, until, id";
        let r: R<Vec<Collaboration>> = async {
            let rows = fetch_all::<S::D>(self.sql_pool(), &sql, args).await?;
            rows.iter().map(collaboration_row::<S::D>).collect()
        }
        .await;
        r.map_err(Fail::store::<S::D>)
    }

    async fn open_loads(&self) -> StoreResult<Vec<(Uuid, u32)>> {
        let r: R<Vec<(Uuid, u32)>> = async {
            let rows = fetch_all::<S::D>(
                self.sql_pool(),
                &format!(
                    "SELECT a.expert_id, COUNT(*) AS n FROM review_assignments a \
                     WHERE a.state IN {COUNTING_SQL} AND {OPEN_EXPR} \
                     GROUP BY a.expert_id ORDER BY a.expert_id"
                ),
                Args::new(),
            )
            .await?;
            rows.iter()
                .map(|row| {
                    let g = Get::<S::D>(row);
                    Ok((
                        g.id("expert_id")?,
                        u32::try_from(g.i64("n")?).unwrap_or(u32::MAX),
                    ))
                })
                .collect()
        }
        .await;
        r.map_err(Fail::store::<S::D>)
    }

    async fn set_exclusions(
        &self,
        instance_id: Uuid,
        org_ids: &[Uuid],
        requested_by: Uuid,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let at = at.trunc_subsecs(6);
        let r: R<()> = retrying!(S::D, async {
            let mut tx = <S::D as Dialect>::begin_write(self.sql_pool()).await?;
            lock_row::<S::D>(&mut *tx, "instances", instance_id).await?;
            <S::D as Dialect>::execute(
                &mut *tx,
                "DELETE FROM review_exclusions WHERE instance_id = $1",
                Args::new().id(instance_id),
            )
            .await?;
            for org in org_ids {
                <S::D as Dialect>::execute(
                    &mut *tx,
                    "INSERT INTO review_exclusions (instance_id, org_id, requested_by, \
                     requested_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    Args::new()
                        .id(instance_id)
                        .id(*org)
                        .id(requested_by)
                        .time(at),
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        });
        r.map_err(Fail::store::<S::D>)
    }

    async fn exclusions(&self, instance_id: Uuid) -> StoreResult<Vec<Uuid>> {
        let r: R<Vec<Uuid>> = async {
            let rows = fetch_all::<S::D>(
                self.sql_pool(),
                "SELECT org_id FROM review_exclusions WHERE instance_id = $1 ORDER BY org_id",
                Args::new().id(instance_id),
            )
            .await?;
            rows.iter().map(|r| Get::<S::D>(r).id("org_id")).collect()
        }
        .await;
        r.map_err(Fail::store::<S::D>)
    }

    async fn call_instances(&self, workflow_id: &str, call_id: &str) -> StoreResult<Vec<Instance>> {
        let sql = format!(
            "SELECT {INSTANCE_COLS} FROM instances WHERE workflow_id = $1 AND {} = $2 \
             ORDER BY created_at, id",
            <S::D as Dialect>::json_field("data", "call_id")
        );
        let r: R<Vec<Instance>> = async {
            let rows = fetch_all::<S::D>(
                self.sql_pool(),
                &sql,
                Args::new().text(workflow_id).text(call_id),
            )
            .await?;
            instances::<S::D>(&rows)
        }
        .await;
        r.map_err(Fail::store::<S::D>)
    }

    async fn round_cycle(&self, instance_id: Uuid, opens_in: &str) -> StoreResult<Option<i64>> {
        let r: R<Option<i64>> = async {
            let mut tx = <S::D as Dialect>::begin_read(self.sql_pool()).await?;
            let out = cycle_of::<S::D>(&mut *tx, instance_id, opens_in, false).await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        r.map_err(Fail::store::<S::D>)
    }

    async fn round_records(
        &self,
        instance_id: Uuid,
        round_id: &str,
        cycle: i64,
    ) -> StoreResult<RoundRecords> {
        let r: R<RoundRecords> = async {
            // One read transaction: the assignments and their details are one snapshot.
            let mut tx = <S::D as Dialect>::begin_read(self.sql_pool()).await?;
            let assignments = fetch_round::<S::D>(&mut *tx, instance_id, round_id, cycle).await?;
            let open = match assignments.first() {
                Some(a) => a.round_open,
                None => {
                    let row = <S::D as Dialect>::fetch_optional(
                        &mut *tx,
                        "SELECT 1 AS one FROM instances WHERE id = $1",
                        Args::new().id(instance_id),
                    )
                    .await?;
                    if row.is_none() {
                        return Err(StoreError::not_found("instance", instance_id).into());
                    }
                    false
                }
            };
            tx.commit().await?;
            Ok(RoundRecords {
                instance_id,
                round_id: round_id.to_string(),
                cycle,
                open,
                assignments,
            })
        }
        .await;
        r.map_err(Fail::store::<S::D>)
    }

    async fn instance_assignments(&self, instance_id: Uuid) -> StoreResult<Vec<AssignmentRecord>> {
        let r: R<Vec<AssignmentRecord>> = async {
            let mut tx = <S::D as Dialect>::begin_read(self.sql_pool()).await?;
            let out = fetch_assignments::<S::D>(
                &mut *tx,
                " WHERE a.instance_id = $1 ORDER BY a.assigned_at, a.id",
                Args::new().id(instance_id),
            )
            .await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        r.map_err(Fail::store::<S::D>)
    }

    async fn assignment(&self, id: Uuid) -> StoreResult<AssignmentRecord> {
        let r: R<AssignmentRecord> = async {
            let mut tx = <S::D as Dialect>::begin_read(self.sql_pool()).await?;
            let out = fetch_assignment::<S::D>(&mut *tx, id).await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        r.map_err(Fail::store::<S::D>)
    }

    async fn expert_queue(
        &self,
        expert_id: Uuid,
        include_closed: bool,
    ) -> StoreResult<Vec<AssignmentRecord>> {
        let where_order = format!(
            " WHERE a.expert_id = $1{} ORDER BY a.assigned_at DESC, a.id DESC",
            if include_closed {
                String::new()
            } else {
                format!(" AND {OPEN_EXPR}")
            }
        );
        let r: R<Vec<AssignmentRecord>> = async {
            let mut tx = <S::D as Dialect>::begin_read(self.sql_pool()).await?;
            let out = fetch_assignments::<S::D>(&mut *tx, &where_order, Args::new().id(expert_id))
                .await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        r.map_err(Fail::store::<S::D>)
    }

    async fn create_assignments(
        &self,
        request: CreateAssignments<'_>,
    ) -> StoreResult<ReviewWrite<Vec<AssignmentRecord>>> {
        let r = retrying!(S::D, create_tx::<S::D>(self.sql_pool(), &request));
        r.map_err(Fail::store::<S::D>)
    }

    async fn change_assignment(
        &self,
        request: AssignmentChange<'_>,
    ) -> StoreResult<ReviewWrite<ChangedAssignment>> {
        let r = retrying!(S::D, change_tx::<S::D>(self.sql_pool(), &request));
        r.map_err(Fail::store::<S::D>)
    }
}
