//! [`ReviewStore`] on SQLite. Every write runs under `BEGIN IMMEDIATE`, so concurrent
//! writers (two managers drawing panels, an expert submitting twice) queue on the write
//! lock and each sees what the previous one committed.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use grantflow_store::review::{
    AssignmentChange, AssignmentEvent, AssignmentRecord, ChangedAssignment, Collaboration,
    CreateAssignments, ExpertProfile, ExpertProfileInput, Justification, NewAssignment,
    NewCollaboration, Recompute, ReviewConflict, ReviewStore, ReviewWrite, RoundKey, RoundRecords,
    Submission, ViewChange, assignment_state, assignment_timer_prefix,
};
use grantflow_store::{Instance, StoreError, StoreResult};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use crate::rows::{self, Fail, R, json, parse_json, parse_ts, parse_uuid, ts};
use crate::{SqliteDialect, SqliteStore};
use grantflow_store::sql::instances::{self, INSTANCE_COLS};

/// Whether the round cycle of assignment `a` is open: the instance is in `opens_in` and
/// has not changed state since it entered it at version `cycle`.
const OPEN_EXPR: &str = "(EXISTS (SELECT 1 FROM instances i WHERE i.id = a.instance_id \
     AND i.state = a.opens_in) AND NOT EXISTS (SELECT 1 FROM history h \
     WHERE h.instance_id = a.instance_id AND h.seq > a.cycle AND h.from_state <> h.to_state))";

const COUNTING_SQL: &str = "('assigned', 'accepted', 'submitted', 'reopened', 'overdue')";

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

fn opt_uuid(row: &SqliteRow, col: &str) -> R<Option<Uuid>> {
    row.try_get::<Option<String>, _>(col)?
        .as_deref()
        .map(parse_uuid)
        .transpose()
}

fn opt_time(row: &SqliteRow, col: &str) -> R<Option<DateTime<Utc>>> {
    row.try_get::<Option<String>, _>(col)?
        .as_deref()
        .map(parse_ts)
        .transpose()
}

fn time(row: &SqliteRow, col: &str) -> R<DateTime<Utc>> {
    parse_ts(&row.try_get::<String, _>(col)?)
}

fn uuid(row: &SqliteRow, col: &str) -> R<Uuid> {
    parse_uuid(&row.try_get::<String, _>(col)?)
}

fn assignment_row(row: &SqliteRow) -> R<AssignmentRecord> {
    let seed = row
        .try_get::<Option<String>, _>("seed")?
        .map(|s| s.parse::<u64>().map_err(|_| bad("seed", &s)))
        .transpose()?;
    Ok(AssignmentRecord {
        id: uuid(row, "id")?,
        instance_id: uuid(row, "instance_id")?,
        round_id: row.try_get("round_id")?,
        opens_in: row.try_get("opens_in")?,
        cycle: row.try_get("cycle")?,
        expert_id: uuid(row, "expert_id")?,
        state: row.try_get("state")?,
        revision: row.try_get("revision")?,
        seed,
        algorithm: row.try_get("algorithm")?,
        assigned_by: row.try_get("assigned_by")?,
        assigned_at: time(row, "assigned_at")?,
        due_at: opt_time(row, "due_at")?,
        replaces: opt_uuid(row, "replaces_id")?,
        replaced_by: opt_uuid(row, "replaced_by_id")?,
        updated_at: time(row, "updated_at")?,
        round_open: row.try_get::<bool, _>("round_open")?,
        events: Vec::new(),
        submissions: Vec::new(),
        justifications: Vec::new(),
    })
}

fn profile_row(row: &SqliteRow) -> R<ExpertProfile> {
    let categories: Vec<u8> = serde_json::from_str(&row.try_get::<String, _>("categories")?)
        .map_err(|_| bad("categories", "json"))?;
    let keywords: Vec<String> = serde_json::from_str(&row.try_get::<String, _>("keywords")?)
        .map_err(|_| bad("keywords", "json"))?;
    Ok(ExpertProfile {
        user_id: uuid(row, "user_id")?,
        categories,
        keywords,
        workload_cap: u32::try_from(row.try_get::<i64, _>("workload_cap")?)
            .map_err(|_| bad("workload cap", "out of range"))?,
        status: row.try_get("status")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn collaboration_row(row: &SqliteRow) -> R<Collaboration> {
    let until: String = row.try_get("until")?;
    Ok(Collaboration {
        id: uuid(row, "id")?,
        expert_id: uuid(row, "expert_id")?,
        org_id: uuid(row, "org_id")?,
        until: NaiveDate::parse_from_str(&until, "%Y-%m-%d").map_err(|_| bad("date", &until))?,
        note: row.try_get("note")?,
        created_at: time(row, "created_at")?,
    })
}

/// Fill in events, submissions and justifications.
async fn load_details(conn: &mut SqliteConnection, records: &mut [AssignmentRecord]) -> R<()> {
    if records.is_empty() {
        return Ok(());
    }
    let index: HashMap<Uuid, usize> = records.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    let ids = |q: &mut QueryBuilder<'_, Sqlite>| {
        let mut sep = q.separated(", ");
        for r in records.iter() {
            sep.push_bind(r.id.to_string());
        }
    };
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT assignment_id, seq, at, actor_kind, actor_id, action, from_state, to_state, \
         reason FROM review_events WHERE assignment_id IN (",
    );
    ids(&mut q);
    q.push(") ORDER BY assignment_id, seq");
    let mut events: Vec<(usize, AssignmentEvent)> = Vec::new();
    for row in q.build().fetch_all(&mut *conn).await? {
        let i = index[&uuid(&row, "assignment_id")?];
        events.push((
            i,
            AssignmentEvent {
                seq: row.try_get("seq")?,
                at: time(&row, "at")?,
                actor_kind: row.try_get("actor_kind")?,
                actor_id: row.try_get("actor_id")?,
                action: row.try_get("action")?,
                from_state: row.try_get("from_state")?,
                to_state: row.try_get("to_state")?,
                reason: row.try_get("reason")?,
            },
        ));
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT assignment_id, version, submitted_at, card, total, reopened_at, reopened_by, \
         reopen_reason FROM review_submissions WHERE assignment_id IN (",
    );
    ids(&mut q);
    q.push(") ORDER BY assignment_id, version");
    let mut submissions: Vec<(usize, Submission)> = Vec::new();
    for row in q.build().fetch_all(&mut *conn).await? {
        let i = index[&uuid(&row, "assignment_id")?];
        submissions.push((
            i,
            Submission {
                version: u32::try_from(row.try_get::<i64, _>("version")?)
                    .map_err(|_| bad("version", "out of range"))?,
                submitted_at: time(&row, "submitted_at")?,
                card: parse_json(&row.try_get::<String, _>("card")?)?,
                total: row.try_get("total")?,
                reopened_at: opt_time(&row, "reopened_at")?,
                reopened_by: row.try_get("reopened_by")?,
                reopen_reason: row.try_get("reopen_reason")?,
            },
        ));
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT assignment_id, version, text, written_at FROM review_justifications \
         WHERE assignment_id IN (",
    );
    ids(&mut q);
    q.push(") ORDER BY assignment_id, version");
    let mut justifications: Vec<(usize, Justification)> = Vec::new();
    for row in q.build().fetch_all(&mut *conn).await? {
        let i = index[&uuid(&row, "assignment_id")?];
        justifications.push((
            i,
            Justification {
                version: u32::try_from(row.try_get::<i64, _>("version")?)
                    .map_err(|_| bad("version", "out of range"))?,
                text: row.try_get("text")?,
                written_at: time(&row, "written_at")?,
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
    conn: &mut SqliteConnection,
    q: &mut QueryBuilder<'_, Sqlite>,
) -> R<Vec<AssignmentRecord>> {
    let rows = q.build().fetch_all(&mut *conn).await?;
    let mut records = rows.iter().map(assignment_row).collect::<R<Vec<_>>>()?;
    load_details(conn, &mut records).await?;
    Ok(records)
}

async fn fetch_assignment(conn: &mut SqliteConnection, id: Uuid) -> R<AssignmentRecord> {
    let mut q = QueryBuilder::<Sqlite>::new(assignment_select());
    q.push(" WHERE a.id = ").push_bind(id.to_string());
    fetch_assignments(conn, &mut q)
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found("review assignment", id).into())
}

async fn fetch_round(
    conn: &mut SqliteConnection,
    instance_id: Uuid,
    round_id: &str,
    cycle: i64,
) -> R<Vec<AssignmentRecord>> {
    let mut q = QueryBuilder::<Sqlite>::new(assignment_select());
    q.push(" WHERE a.instance_id = ")
        .push_bind(instance_id.to_string())
        .push(" AND a.round_id = ")
        .push_bind(round_id.to_string())
        .push(" AND a.cycle = ")
        .push_bind(cycle)
        .push(" ORDER BY a.assigned_at, a.id");
    fetch_assignments(conn, &mut q).await
}

async fn cycle_of(
    conn: &mut SqliteConnection,
    instance_id: Uuid,
    opens_in: &str,
) -> R<Option<i64>> {
    let row = sqlx::query(
        "SELECT i.state, (SELECT max(h.seq) FROM history h WHERE h.instance_id = i.id \
         AND h.to_state = ?1 AND h.from_state <> h.to_state) AS entered \
         FROM instances i WHERE i.id = ?2",
    )
    .bind(opens_in)
    .bind(instance_id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("instance", instance_id))?;
    let state: String = row.try_get("state")?;
    if state != opens_in {
        return Ok(None);
    }
    Ok(Some(row.try_get::<Option<i64>, _>("entered")?.unwrap_or(0)))
}

async fn fingerprint(conn: &mut SqliteConnection, round: &RoundKey) -> R<Vec<(Uuid, i64)>> {
    let rows = sqlx::query(
        "SELECT id, revision FROM review_assignments WHERE instance_id = ? AND round_id = ? \
         AND cycle = ?",
    )
    .bind(round.instance_id.to_string())
    .bind(&round.round_id)
    .bind(round.cycle)
    .fetch_all(&mut *conn)
    .await?;
    let mut f = Vec::with_capacity(rows.len());
    for row in rows {
        f.push((uuid(&row, "id")?, row.try_get::<i64, _>("revision")?));
    }
    f.sort();
    Ok(f)
}

fn sorted(mut f: Vec<(Uuid, i64)>) -> Vec<(Uuid, i64)> {
    f.sort();
    f
}

/// Checks that `expert_id` may take a new seat on the round's panel: not on it already,
/// in the pool and active, under the cap (counting `extra` seats taken earlier in the same
/// write).
async fn seat_refusal(
    conn: &mut SqliteConnection,
    round: &RoundKey,
    expert_id: Uuid,
    extra: u32,
) -> R<Option<ReviewConflict>> {
    let on_panel = sqlx::query(
        "SELECT 1 FROM review_assignments WHERE instance_id = ? AND round_id = ? AND cycle = ? \
         AND expert_id = ?",
    )
    .bind(round.instance_id.to_string())
    .bind(&round.round_id)
    .bind(round.cycle)
    .bind(expert_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    if on_panel.is_some() {
        return Ok(Some(ReviewConflict::AlreadyOnPanel { expert_id }));
    }
    let profile = sqlx::query("SELECT workload_cap, status FROM expert_profiles WHERE user_id = ?")
        .bind(expert_id.to_string())
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
        "SELECT COUNT(*) AS n FROM review_assignments a WHERE a.expert_id = ? \
         AND a.state IN {COUNTING_SQL} AND {OPEN_EXPR}"
    ))
    .bind(expert_id.to_string())
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
    conn: &mut SqliteConnection,
    round: &RoundKey,
    new: &NewAssignment,
    replaces: Option<Uuid>,
    at: DateTime<Utc>,
) -> R<()> {
    sqlx::query(
        "INSERT INTO review_assignments (id, instance_id, round_id, opens_in, cycle, expert_id, \
         state, revision, seed, algorithm, assigned_by, assigned_at, due_at, replaces_id, \
         updated_at) VALUES (?, ?, ?, ?, ?, ?, 'assigned', 0, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(new.id.to_string())
    .bind(round.instance_id.to_string())
    .bind(&round.round_id)
    .bind(&round.opens_in)
    .bind(round.cycle)
    .bind(new.expert_id.to_string())
    .bind(new.seed.map(|s| s.to_string()))
    .bind(&new.algorithm)
    .bind(&new.assigned_by)
    .bind(ts(at))
    .bind(new.due_at.map(ts))
    .bind(replaces.map(|r| r.to_string()))
    .bind(ts(at))
    .execute(&mut *conn)
    .await
    .map_err(|e| rows::dup(e.into(), "review assignment", &new.expert_id.to_string()))?;
    instances::insert_timers::<SqliteDialect>(
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
    conn: &mut SqliteConnection,
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
    sqlx::query("UPDATE instances SET review = ? WHERE id = ?")
        .bind(json(&review))
        .bind(round.instance_id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl SqliteStore {
    async fn create_tx(
        &self,
        req: &CreateAssignments<'_>,
    ) -> R<ReviewWrite<Vec<AssignmentRecord>>> {
        let at = req.at.trunc_subsecs(6);
        let round = &req.round;
        let mut tx = self.begin().await?;
        if cycle_of(&mut tx, round.instance_id, &round.opens_in).await? != Some(round.cycle) {
            return Ok(Err(ReviewConflict::RoundClosed));
        }
        if fingerprint(&mut tx, round).await? != sorted(req.expected_panel.clone()) {
            return Ok(Err(ReviewConflict::PanelChanged));
        }
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
        let mut tx = self.begin().await?;
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
        if cycle_of(&mut tx, round.instance_id, &round.opens_in).await? != Some(round.cycle) {
            return Ok(Err(ReviewConflict::RoundClosed));
        }
        if !assignment_state::ALL.contains(&req.state.as_str()) {
            return Err(
                StoreError::Invalid(format!("unknown assignment state `{}`", req.state)).into(),
            );
        }
        if let Some(new) = &req.replacement {
            let expected = req.expected_panel.clone().unwrap_or_default();
            if fingerprint(&mut tx, &round).await? != sorted(expected) {
                return Ok(Err(ReviewConflict::PanelChanged));
            }
            if let Some(refusal) = seat_refusal(&mut tx, &round, new.expert_id, 0).await? {
                return Ok(Err(refusal));
            }
        }
        // The newcomer first: the old assignment's `replaced_by_id` refers to it.
        if let Some(new) = &req.replacement {
            insert_assignment(&mut tx, &round, new, Some(before.id), at).await?;
        }
        sqlx::query(
            "UPDATE review_assignments SET state = ?, revision = revision + 1, updated_at = ?, \
             replaced_by_id = coalesce(?, replaced_by_id) WHERE id = ? AND revision = ?",
        )
        .bind(&req.state)
        .bind(ts(at))
        .bind(req.replacement.as_ref().map(|r| r.id.to_string()))
        .bind(before.id.to_string())
        .bind(before.revision)
        .execute(&mut *tx)
        .await?;
        let mut seq = before.events.iter().map(|e| e.seq).max().unwrap_or(0);
        for e in &req.events {
            seq += 1;
            sqlx::query(
                "INSERT INTO review_events (assignment_id, seq, at, actor_kind, actor_id, action, \
                 from_state, to_state, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(before.id.to_string())
            .bind(seq)
            .bind(ts(e.at))
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
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(before.id.to_string())
            .bind(i64::from(s.version))
            .bind(ts(at))
            .bind(json(&s.card))
            .bind(s.total)
            .execute(&mut *tx)
            .await
            .map_err(|e| rows::dup(e.into(), "submission version", &s.version.to_string()))?;
        }
        if let Some(r) = &req.reopen {
            let done = sqlx::query(
                "UPDATE review_submissions SET reopened_at = ?, reopened_by = ?, reopen_reason = ? \
                 WHERE assignment_id = ? AND version = ? AND reopened_at IS NULL",
            )
            .bind(ts(at))
            .bind(&r.by)
            .bind(&r.reason)
            .bind(before.id.to_string())
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
                 VALUES (?, ?, ?, ?)",
            )
            .bind(before.id.to_string())
            .bind(i64::from(*version))
            .bind(text)
            .bind(ts(at))
            .execute(&mut *tx)
            .await
            .map_err(|e| rows::dup(e.into(), "justification", &version.to_string()))?;
        }
        match req.view {
            ViewChange::Keep => {}
            ViewChange::Grant => {
                sqlx::query(
                    "INSERT INTO expert_assignments (instance_id, user_id) VALUES (?, ?) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(before.instance_id.to_string())
                .bind(before.expert_id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            ViewChange::Revoke => {
                sqlx::query(
                    "DELETE FROM expert_assignments WHERE instance_id = ?1 AND user_id = ?2 \
                     AND NOT EXISTS (SELECT 1 FROM review_assignments a WHERE a.instance_id = ?1 \
                     AND a.expert_id = ?2 AND a.state IN ('accepted', 'submitted', 'reopened'))",
                )
                .bind(before.instance_id.to_string())
                .bind(before.expert_id.to_string())
                .execute(&mut *tx)
                .await?;
            }
        }
        if req.cancel_timers {
            let prefix = assignment_timer_prefix(before.id);
            sqlx::query(
                "UPDATE timers SET status = 'cancelled', lease_until = NULL \
                 WHERE instance_id = ? AND substr(key, 1, ?) = ? AND status IN ('pending', 'claimed')",
            )
            .bind(before.instance_id.to_string())
            .bind(prefix.len() as i64)
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
}

#[async_trait]
impl ReviewStore for SqliteStore {
    async fn upsert_expert_profile(&self, input: ExpertProfileInput) -> StoreResult<ExpertProfile> {
        let r: R<ExpertProfile> =
            async {
                let at = input.at.trunc_subsecs(6);
                let mut categories = input.categories.clone();
                categories.sort_unstable();
                categories.dedup();
                let mut tx = self.begin().await?;
                sqlx::query(
                "INSERT INTO expert_profiles (user_id, categories, keywords, workload_cap, status, \
                 created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (user_id) DO UPDATE SET categories = excluded.categories, \
                 keywords = excluded.keywords, workload_cap = excluded.workload_cap, \
                 status = excluded.status, updated_at = excluded.updated_at",
            )
            .bind(input.user_id.to_string())
            .bind(json(&serde_json::to_value(&categories).unwrap_or(Value::Null)))
            .bind(json(&Value::from(input.keywords.clone())))
            .bind(i64::from(input.workload_cap))
            .bind(&input.status)
            .bind(ts(at))
            .bind(ts(at))
            .execute(&mut *tx)
            .await?;
                let row = sqlx::query("SELECT * FROM expert_profiles WHERE user_id = ?")
                    .bind(input.user_id.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                let profile = profile_row(&row)?;
                tx.commit().await?;
                Ok(profile)
            }
            .await;
        Ok(r?)
    }

    async fn expert_profile(&self, user_id: Uuid) -> StoreResult<Option<ExpertProfile>> {
        let row = sqlx::query("SELECT * FROM expert_profiles WHERE user_id = ?")
            .bind(user_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(rows::backend_error)?;
        Ok(row.as_ref().map(profile_row).transpose()?)
    }

    async fn expert_profiles(&self) -> StoreResult<Vec<ExpertProfile>> {
        let rows = sqlx::query("SELECT * FROM expert_profiles ORDER BY user_id")
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
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(c.id.to_string())
        .bind(c.expert_id.to_string())
        .bind(c.org_id.to_string())
        .bind(c.until.format("%Y-%m-%d").to_string())
        .bind(&c.note)
        .bind(ts(c.created_at))
        .execute(&self.pool)
        .await
        .map_err(|e| {
            StoreError::from(rows::dup(e.into(), "collaboration", &c.until.to_string()))
        })?;
        Ok(c)
    }

    async fn collaborations(&self, expert_id: Option<Uuid>) -> StoreResult<Vec<Collaboration>> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, expert_id, org_id, until, note, created_at FROM expert_collaborations",
        );
        if let Some(e) = expert_id {
            q.push(" WHERE expert_id = ").push_bind(e.to_string());
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
             WHERE a.state IN {COUNTING_SQL} AND {OPEN_EXPR} GROUP BY a.expert_id ORDER BY a.expert_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let n: i64 = row.try_get("n").map_err(rows::backend_error)?;
            out.push((
                uuid(row, "expert_id")?,
                u32::try_from(n).unwrap_or(u32::MAX),
            ));
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
        let r: R<()> = async {
            let mut tx = self.begin().await?;
            sqlx::query("DELETE FROM review_exclusions WHERE instance_id = ?")
                .bind(instance_id.to_string())
                .execute(&mut *tx)
                .await?;
            for org in org_ids {
                sqlx::query(
                    "INSERT INTO review_exclusions (instance_id, org_id, requested_by, requested_at) \
                     VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(instance_id.to_string())
                .bind(org.to_string())
                .bind(requested_by.to_string())
                .bind(ts(at))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        Ok(r?)
    }

    async fn exclusions(&self, instance_id: Uuid) -> StoreResult<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT org_id FROM review_exclusions WHERE instance_id = ? ORDER BY org_id",
        )
        .bind(instance_id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        Ok(rows.iter().map(|r| uuid(r, "org_id")).collect::<R<_>>()?)
    }

    async fn call_instances(&self, workflow_id: &str, call_id: &str) -> StoreResult<Vec<Instance>> {
        let rows = sqlx::query(&format!(
            "SELECT {INSTANCE_COLS} FROM instances WHERE workflow_id = ? \
             AND json_extract(data, '$.call_id') = ? ORDER BY created_at, id"
        ))
        .bind(workflow_id)
        .bind(call_id)
        .fetch_all(&self.pool)
        .await
        .map_err(rows::backend_error)?;
        Ok(instances::instances::<SqliteDialect>(&rows).map_err(Fail::from)?)
    }

    async fn round_cycle(&self, instance_id: Uuid, opens_in: &str) -> StoreResult<Option<i64>> {
        let mut conn = self.pool.acquire().await.map_err(rows::backend_error)?;
        Ok(cycle_of(&mut conn, instance_id, opens_in).await?)
    }

    async fn round_records(
        &self,
        instance_id: Uuid,
        round_id: &str,
        cycle: i64,
    ) -> StoreResult<RoundRecords> {
        let r: R<RoundRecords> = async {
            // One read transaction: the assignments and their details are one snapshot.
            let mut tx = self.pool.begin().await?;
            let assignments = fetch_round(&mut tx, instance_id, round_id, cycle).await?;
            let open = match assignments.first() {
                Some(a) => a.round_open,
                None => {
                    let row = sqlx::query("SELECT 1 FROM instances WHERE id = ?")
                        .bind(instance_id.to_string())
                        .fetch_optional(&mut *tx)
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
        Ok(r?)
    }

    async fn instance_assignments(&self, instance_id: Uuid) -> StoreResult<Vec<AssignmentRecord>> {
        let r: R<Vec<AssignmentRecord>> = async {
            let mut tx = self.pool.begin().await?;
            let mut q = QueryBuilder::<Sqlite>::new(assignment_select());
            q.push(" WHERE a.instance_id = ")
                .push_bind(instance_id.to_string())
                .push(" ORDER BY a.assigned_at, a.id");
            let out = fetch_assignments(&mut tx, &mut q).await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        Ok(r?)
    }

    async fn assignment(&self, id: Uuid) -> StoreResult<AssignmentRecord> {
        let r: R<AssignmentRecord> = async {
            let mut tx = self.pool.begin().await?;
            let a = fetch_assignment(&mut tx, id).await?;
            tx.commit().await?;
            Ok(a)
        }
        .await;
        Ok(r?)
    }

    async fn expert_queue(
        &self,
        expert_id: Uuid,
        include_closed: bool,
    ) -> StoreResult<Vec<AssignmentRecord>> {
        let r: R<Vec<AssignmentRecord>> = async {
            let mut tx = self.pool.begin().await?;
            let mut q = QueryBuilder::<Sqlite>::new(assignment_select());
            q.push(" WHERE a.expert_id = ")
                .push_bind(expert_id.to_string());
            if !include_closed {
                q.push(format!(" AND {OPEN_EXPR}"));
            }
            q.push(" ORDER BY a.assigned_at DESC, a.id DESC");
            let out = fetch_assignments(&mut tx, &mut q).await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        Ok(r?)
    }

    async fn create_assignments(
        &self,
        request: CreateAssignments<'_>,
    ) -> StoreResult<ReviewWrite<Vec<AssignmentRecord>>> {
        Ok(self.create_tx(&request).await?)
    }

    async fn change_assignment(
        &self,
        request: AssignmentChange<'_>,
    ) -> StoreResult<ReviewWrite<ChangedAssignment>> {
        Ok(self.change_tx(&request).await?)
    }
}
