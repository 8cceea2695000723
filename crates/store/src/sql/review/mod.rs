//! [`crate::ReviewStore`] in SQL: the expert pool, applicants' exclusions, review rounds
//! and their assignments.
//!
//! Writes lock in one order — the instance row, then the assignment row, then the
//! profiles of experts taking a seat in id order (the dialect's `FOR UPDATE`; SQLite's
//! write transaction holds the lock from its start) — so two managers drawing panels, a
//! manager closing the round and an expert submitting queue behind each other instead of
//! interleaving. Reads of several statements run in one read transaction (one snapshot).
//! The writes themselves are in [`panel`].

mod panel;

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::instances::{INSTANCE_COLS, instances};
use super::{Args, Conn, Dialect, Fail, Get, R, Row, SqlBackend, bad, dup, execute, fetch_all};
use crate::review::{
    AssignmentChange, AssignmentEvent, AssignmentRecord, ChangedAssignment, Collaboration,
    CreateAssignments, ExpertProfile, ExpertProfileInput, Justification, NewCollaboration,
    ReviewStore, ReviewWrite, RoundRecords, Submission,
};
use crate::sql::retrying;
use crate::{Instance, StoreError, StoreResult};
use panel::{change_tx, create_tx, lock_row};

/// Whether the round cycle of assignment `a` is open: the instance is in `opens_in` and
/// has not changed state since it entered it at version `cycle`.
pub(super) const OPEN_EXPR: &str = "(EXISTS (SELECT 1 FROM instances i WHERE i.id = a.instance_id \
     AND i.state = a.opens_in) AND NOT EXISTS (SELECT 1 FROM history h \
     WHERE h.instance_id = a.instance_id AND h.seq > a.cycle AND h.from_state <> h.to_state))";

pub(super) const COUNTING_SQL: &str =
    "('assigned', 'accepted', 'submitted', 'reopened', 'overdue')";

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
/// An `(expert_id, n)` row of a count per expert.
fn expert_count<D: Dialect>(row: &Row<D>) -> R<(Uuid, u32)> {
    let g = Get::<D>(row);
    Ok((
        g.id("expert_id")?,
        u32::try_from(g.i64("n")?).unwrap_or(u32::MAX),
    ))
}

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

pub(super) async fn fetch_assignment<D: Dialect>(
    conn: &mut Conn<D>,
    id: Uuid,
) -> R<AssignmentRecord> {
    fetch_assignments::<D>(conn, " WHERE a.id = $1", Args::new().id(id))
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found("review assignment", id).into())
}

pub(super) async fn fetch_round<D: Dialect>(
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
pub(super) async fn cycle_of<D: Dialect>(
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
            rows.iter().map(expert_count::<S::D>).collect()
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

    async fn assignments_of(&self, instance_ids: &[Uuid]) -> StoreResult<Vec<AssignmentRecord>> {
        if instance_ids.is_empty() {
            return Ok(Vec::new());
        }
        let where_order = format!(
            " WHERE a.instance_id {} ORDER BY a.instance_id, a.assigned_at, a.id",
            <S::D as Dialect>::in_ids("$1")
        );
        let r: R<Vec<AssignmentRecord>> = async {
            let mut tx = <S::D as Dialect>::begin_read(self.sql_pool()).await?;
            let out =
                fetch_assignments::<S::D>(&mut *tx, &where_order, Args::new().ids(instance_ids))
                    .await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        r.map_err(Fail::store::<S::D>)
    }

    async fn late_reviews(&self) -> StoreResult<Vec<(Uuid, u32)>> {
        let r: R<Vec<(Uuid, u32)>> = async {
            let rows = fetch_all::<S::D>(
                self.sql_pool(),
                "SELECT a.expert_id, COUNT(*) AS n FROM review_assignments a \
                 WHERE EXISTS (SELECT 1 FROM review_events e \
                 WHERE e.assignment_id = a.id AND e.action = 'mark_overdue') \
                 GROUP BY a.expert_id ORDER BY a.expert_id",
                Args::new(),
            )
            .await?;
            rows.iter().map(expert_count::<S::D>).collect()
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
