//! [`crate::ProgrammeStore`] in SQL: calls and their catalogue, budgets and spending,
//! indicator actuals, evaluations and demand merges.
//!
//! A spending locks its instance row and then its budget line (the dialect's
//! `FOR UPDATE`, always in that order; SQLite's write transaction holds the lock from its
//! start) before it sums what was spent on the line: two concurrent spendings on one
//! project queue, and the second sees the first's committed record, so a line can never
//! be overdrawn.
//!
//! One aggregate's queries and the `ProgrammeStore` implementation, kept together (under
//! 1,000 lines): each function is one query or one transaction of the trait.

use chrono::SubsecRound;
use grantflow_domain::Money;
use uuid::Uuid;

use super::instances::{INSTANCE_COLS, fetch_instance, insert_instance, instances};
use super::reports::ACTUAL_COLS;
use super::{Args, Conn, Dialect, Fail, Get, Pools, R, Row, bad, dup, fetch_all, fetch_by_ids};
use crate::programme::{
    ActualRecord, BudgetLine, Call, CallItem, CallStatus, DemandMerge, EvaluationRecord,
    GradeRecord, IndicatorScoreRecord, NewCall, NewSpending, SpendingRecord, SpendingRefusal,
    assemble_catalogue, budget_facts, catalogue_rows,
};
use crate::sql::retrying;
use crate::{Instance, NewInstance, StoreError, StoreResult};

fn money<D: Dialect>(g: &Get<'_, D>, col: &str) -> R<Money> {
    Ok(Money::from_fen(g.i64(col)?))
}

const LINE_COLS: &str =
    "id, instance_id, year, subject, amount_fen, source, created_by, created_at";

fn line<D: Dialect>(row: &Row<D>) -> R<BudgetLine> {
    let g = Get::<D>(row);
    Ok(BudgetLine {
        id: g.id("id")?,
        instance_id: g.id("instance_id")?,
        year: g.i32("year")?,
        subject: g.str("subject")?,
        amount: money(&g, "amount_fen")?,
        source: g.str("source")?,
        created_by: g.id("created_by")?,
        created_at: g.time("created_at")?,
    })
}

const SPENDING_COLS: &str =
    "id, instance_id, line_id, amount_fen, spent_on, description, recorded_by, recorded_at";

fn spending<D: Dialect>(row: &Row<D>) -> R<SpendingRecord> {
    let g = Get::<D>(row);
    Ok(SpendingRecord {
        id: g.id("id")?,
        instance_id: g.id("instance_id")?,
        line_id: g.id("line_id")?,
        amount: money(&g, "amount_fen")?,
        spent_on: g.date("spent_on")?,
        description: g.str("description")?,
        recorded_by: g.id("recorded_by")?,
        recorded_at: g.time("recorded_at")?,
    })
}

const MERGE_COLS: &str = "id, call_id, kept_id, merged_id, similarity, kept_source, \
     merged_source, merged_by, merged_at";

fn merge<D: Dialect>(row: &Row<D>) -> R<DemandMerge> {
    let g = Get::<D>(row);
    Ok(DemandMerge {
        id: g.id("id")?,
        call_id: g.id("call_id")?,
        kept_id: g.id("kept_id")?,
        merged_id: g.id("merged_id")?,
        similarity: g.f64("similarity")?,
        kept_source: g.json("kept_source")?,
        merged_source: g.json("merged_source")?,
        merged_by: g.id("merged_by")?,
        merged_at: g.time("merged_at")?,
    })
}

const EVALUATION_COLS: &str = "instance_id, call_id, method, budgeted_fen, spent_fen, \
     execution_rate, total, grade, result, evaluator_id, evaluated_at";

async fn evaluation_from<D: Dialect>(conn: &mut Conn<D>, row: &Row<D>) -> R<EvaluationRecord> {
    let g = Get::<D>(row);
    let instance_id = g.id("instance_id")?;
    let scores = D::fetch_all(
        conn,
        "SELECT indicator_id, name, part, max_points, fraction, points FROM evaluation_scores \
         WHERE instance_id = $1 ORDER BY position",
        Args::new().id(instance_id),
    )
    .await?;
    let indicator_scores = scores
        .iter()
        .map(|r| {
            let s = Get::<D>(r);
            Ok(IndicatorScoreRecord {
                indicator_id: s.str("indicator_id")?,
                name: s.str("name")?,
                part: s.str("part")?,
                max_points: s.f64("max_points")?,
                fraction: s.f64("fraction")?,
                points: s.f64("points")?,
            })
        })
        .collect::<R<Vec<_>>>()?;
    Ok(EvaluationRecord {
        instance_id,
        call_id: g.str("call_id")?,
        method: g.json("method")?,
        budgeted: money(&g, "budgeted_fen")?,
        spent: money(&g, "spent_fen")?,
        execution_rate: g.f64("execution_rate")?,
        total: g.f64("total")?,
        grade: g.str("grade")?,
        indicator_scores,
        result: g.json("result")?,
        evaluator_id: g.id("evaluator_id")?,
        evaluated_at: g.time("evaluated_at")?,
    })
}

async fn load_call<D: Dialect>(conn: &mut Conn<D>, call_id: Uuid) -> R<Option<Call>> {
    let Some(row) = D::fetch_optional(
        &mut *conn,
        "SELECT id, year, title, issuer, closing_date, status, correction_window_days, \
         created_by, created_at, rules FROM calls WHERE id = $1",
        Args::new().id(call_id),
    )
    .await?
    else {
        return Ok(None);
    };
    let cats = D::fetch_all(
        &mut *conn,
        "SELECT category, title FROM call_categories WHERE call_id = $1 ORDER BY position",
        Args::new().id(call_id),
    )
    .await?
    .iter()
    .map(|r| {
        let g = Get::<D>(r);
        Ok((g.str("category")?, g.str("title")?))
    })
    .collect::<R<Vec<_>>>()?;
    let areas = D::fetch_all(
        &mut *conn,
        "SELECT a.category, a.name FROM call_policy_areas a JOIN call_categories c \
         ON c.call_id = a.call_id AND c.category = a.category WHERE a.call_id = $1 \
         ORDER BY c.position, a.position",
        Args::new().id(call_id),
    )
    .await?
    .iter()
    .map(|r| {
        let g = Get::<D>(r);
        Ok((g.str("category")?, g.str("name")?))
    })
    .collect::<R<Vec<_>>>()?;
    let items = D::fetch_all(
        &mut *conn,
        "SELECT item_id, category, policy_area, number, name, direction, applicant, part, \
         eligible FROM call_items WHERE call_id = $1 ORDER BY position",
        Args::new().id(call_id),
    )
    .await?
    .iter()
    .map(|r| {
        let g = Get::<D>(r);
        Ok((
            g.str("category")?,
            g.str("policy_area")?,
            CallItem {
                item_id: g.str("item_id")?,
                number: g.opt_i32("number")?,
                name: g.str("name")?,
                direction: g.str("direction")?,
                applicant: g.str("applicant")?,
                part: g.str("part")?,
                eligible: g
                    .str("eligible")?
                    .split(',')
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .collect(),
            },
        ))
    })
    .collect::<R<Vec<_>>>()?;
    let g = Get::<D>(&row);
    let status = g.str("status")?;
    Ok(Some(Call {
        id: g.id("id")?,
        year: g.i32("year")?,
        title: g.str("title")?,
        issuer: g.str("issuer")?,
        closing_date: g.date("closing_date")?,
        correction_window_days: g.i32("correction_window_days")?,
        status: CallStatus::parse(&status).ok_or_else(|| {
            Fail::Store(StoreError::Backend(format!("bad call status `{status}`")))
        })?,
        created_by: g.id("created_by")?,
        created_at: g.time("created_at")?,
        categories: assemble_catalogue(cats, areas, items),
        // NULL for calls opened before calls had rules: the defaults.
        rules: D::json(&row, "rules")?.unwrap_or(serde_json::Value::Null),
    }))
}

/// Recompute the instance's budget facts from its lines and spending.
pub(crate) async fn refresh_budget<D: Dialect>(
    conn: &mut Conn<D>,
    instance_id: Uuid,
) -> R<serde_json::Value> {
    let row = D::fetch_optional(
        &mut *conn,
        "SELECT (SELECT COUNT(*) FROM budget_lines WHERE instance_id = $1) AS lines, \
         (SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM budget_lines \
         WHERE instance_id = $1) AS total, \
         (SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM spending_records \
         WHERE instance_id = $1) AS spent",
        Args::new().id(instance_id),
    )
    .await?
    .ok_or_else(|| bad("budget", "no row"))?;
    let g = Get::<D>(&row);
    let facts = budget_facts(g.i64("lines")?, money(&g, "total")?, money(&g, "spent")?);
    D::execute(
        conn,
        "UPDATE instances SET budget = $1 WHERE id = $2",
        Args::new().json(&facts).id(instance_id),
    )
    .await?;
    Ok(facts)
}

async fn spending_tx<D: Dialect>(
    pool: &Pools<D::DB>,
    new: &NewSpending<'_>,
) -> R<Result<SpendingRecord, SpendingRefusal>> {
    let mut tx = D::begin_write(pool).await?;
    let instance = fetch_instance::<D>(&mut *tx, new.instance_id, true)
        .await?
        .ok_or_else(|| StoreError::not_found("instance", new.instance_id))?;
    let Some(line_id) = new.line_id else {
        return Ok(Err(SpendingRefusal::LineMissing { line_id: None }));
    };
    let found = D::fetch_optional(
        &mut *tx,
        &format!(
            "SELECT {LINE_COLS} FROM budget_lines WHERE id = $1 AND instance_id = $2{}",
            D::FOR_UPDATE
        ),
        Args::new().id(line_id).id(instance.id),
    )
    .await?;
    let Some(found) = found else {
        return Ok(Err(SpendingRefusal::LineMissing {
            line_id: Some(line_id),
        }));
    };
    let budget_line = line::<D>(&found)?;
    if let Err(refusal) = (new.precondition)(&instance, &budget_line) {
        return Ok(Err(refusal));
    }
    let spent_row = D::fetch_optional(
        &mut *tx,
        "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS spent FROM spending_records \
         WHERE line_id = $1",
        Args::new().id(line_id),
    )
    .await?
    .ok_or_else(|| bad("spending", "no row"))?;
    let spent = Get::<D>(&spent_row).i64("spent")?;
    let remaining = budget_line.amount.saturating_sub(Money::from_fen(spent));
    if new.amount > remaining {
        return Ok(Err(SpendingRefusal::BudgetExceeded {
            line_id,
            amount: new.amount,
            remaining,
        }));
    }
    if new.require_disbursed {
        let disbursed = super::funding::disbursed_in::<D>(&mut *tx, instance.id).await?;
        let spent = super::funding::spent_in::<D>(&mut *tx, instance.id).await?;
        let remaining = disbursed.saturating_sub(spent);
        if new.amount > remaining {
            return Ok(Err(SpendingRefusal::BeyondDisbursed {
                disbursed,
                spent,
                amount: new.amount,
                remaining,
            }));
        }
    }
    let record = SpendingRecord {
        id: new.id,
        instance_id: instance.id,
        line_id,
        amount: new.amount,
        spent_on: new.spent_on,
        description: new.description.clone(),
        recorded_by: new.recorded_by,
        recorded_at: new.recorded_at.trunc_subsecs(6),
    };
    D::execute(
        &mut *tx,
        &format!(
            "INSERT INTO spending_records ({SPENDING_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ),
        Args::new()
            .id(record.id)
            .id(record.instance_id)
            .id(record.line_id)
            .int(record.amount.fen())
            .date(record.spent_on)
            .text(&record.description)
            .id(record.recorded_by)
            .time(record.recorded_at),
    )
    .await
    .map_err(|e| dup::<D>(e.into(), "spending record", &record.id.to_string()))?;
    refresh_budget::<D>(&mut *tx, instance.id).await?;
    tx.commit().await?;
    Ok(Ok(record))
}

pub async fn create_call<D: Dialect>(pool: &Pools<D::DB>, new: NewCall) -> StoreResult<Call> {
    let r: R<Call> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        D::execute(
            &mut *tx,
            "INSERT INTO calls (id, year, title, issuer, closing_date, status, created_by, \
             created_at, correction_window_days, rules) VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9)",
            Args::new()
                .id(new.id)
                .int32(new.year)
                .text(&new.title)
                .text(&new.issuer)
                .date(new.closing_date)
                .id(new.created_by)
                .time(new.created_at.trunc_subsecs(6))
                .int32(new.correction_window_days)
                .json(&new.rules),
        )
        .await
        .map_err(|e| dup::<D>(e.into(), "call", &new.id.to_string()))?;
        let (cats, areas, items) = catalogue_rows(&new.categories);
        for (position, category, title) in cats {
            D::execute(
                &mut *tx,
                "INSERT INTO call_categories (call_id, category, position, title) \
                 VALUES ($1, $2, $3, $4)",
                Args::new()
                    .id(new.id)
                    .text(category)
                    .int32(position)
                    .text(title),
            )
            .await
            .map_err(|e| dup::<D>(e.into(), "category", category))?;
        }
        for (position, category, name) in areas {
            D::execute(
                &mut *tx,
                "INSERT INTO call_policy_areas (call_id, category, position, name) \
                 VALUES ($1, $2, $3, $4)",
                Args::new()
                    .id(new.id)
                    .text(category)
                    .int32(position)
                    .text(name),
            )
            .await
            .map_err(|e| dup::<D>(e.into(), "policy area", name))?;
        }
        for (position, category, area, item) in items {
            D::execute(
                &mut *tx,
                "INSERT INTO call_items (call_id, item_id, category, policy_area, position, \
                 number, name, direction, applicant, part, eligible) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                Args::new()
                    .id(new.id)
                    .text(&item.item_id)
                    .text(category)
                    .text(area)
                    .int32(position)
                    .opt_int32(item.number)
                    .text(&item.name)
                    .text(&item.direction)
                    .text(&item.applicant)
                    .text(&item.part)
                    .text(item.eligible.join(",")),
            )
            .await
            .map_err(|e| dup::<D>(e.into(), "catalogue item", &item.item_id))?;
        }
        let call = load_call::<D>(&mut *tx, new.id)
            .await?
            .ok_or_else(|| StoreError::not_found("call", new.id))?;
        tx.commit().await?;
        Ok(call)
    });
    r.map_err(Fail::store::<D>)
}

pub async fn get_call<D: Dialect>(pool: &Pools<D::DB>, call_id: Uuid) -> StoreResult<Call> {
    let r: R<Call> = async {
        let mut conn = pool.readers().acquire().await?;
        load_call::<D>(&mut *conn, call_id)
            .await?
            .ok_or_else(|| StoreError::not_found("call", call_id).into())
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn list_calls<D: Dialect>(pool: &Pools<D::DB>) -> StoreResult<Vec<Call>> {
    let r: R<Vec<Call>> = async {
        let mut conn = pool.readers().acquire().await?;
        let ids = D::fetch_all(
            &mut *conn,
            "SELECT id FROM calls ORDER BY year DESC, created_at DESC, id",
            Args::new(),
        )
        .await?
        .iter()
        .map(|r| Get::<D>(r).id("id"))
        .collect::<R<Vec<_>>>()?;
        let mut calls = Vec::with_capacity(ids.len());
        for call_id in ids {
            if let Some(c) = load_call::<D>(&mut *conn, call_id).await? {
                calls.push(c);
            }
        }
        Ok(calls)
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn set_call_status<D: Dialect>(
    pool: &Pools<D::DB>,
    call_id: Uuid,
    status: CallStatus,
) -> StoreResult<Call> {
    let r: R<Call> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let done = D::execute(
            &mut *tx,
            "UPDATE calls SET status = $1 WHERE id = $2",
            Args::new().text(status.as_str()).id(call_id),
        )
        .await?;
        if done == 0 {
            return Err(StoreError::not_found("call", call_id).into());
        }
        let call = load_call::<D>(&mut *tx, call_id)
            .await?
            .ok_or_else(|| StoreError::not_found("call", call_id))?;
        tx.commit().await?;
        Ok(call)
    });
    r.map_err(Fail::store::<D>)
}

pub async fn create_instances<D: Dialect>(
    pool: &Pools<D::DB>,
    new: Vec<NewInstance>,
) -> StoreResult<Vec<Instance>> {
    let r: R<Vec<Instance>> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let mut out = Vec::with_capacity(new.len());
        for n in &new {
            out.push(insert_instance::<D>(&mut *tx, n).await?);
        }
        tx.commit().await?;
        Ok(out)
    });
    r.map_err(Fail::store::<D>)
}

pub async fn instances_of_call<D: Dialect>(
    pool: &Pools<D::DB>,
    workflow_id: &str,
    call_id: &str,
) -> StoreResult<Vec<Instance>> {
    let sql = format!(
        "SELECT {INSTANCE_COLS} FROM instances WHERE workflow_id = $1 AND {} = $2 \
         ORDER BY created_at, id",
        D::json_field("data", "call_id")
    );
    let r: R<Vec<Instance>> = async {
        instances::<D>(
            &fetch_all::<D>(pool, &sql, Args::new().text(workflow_id).text(call_id)).await?,
        )
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn add_budget_line<D: Dialect>(
    pool: &Pools<D::DB>,
    new: BudgetLine,
) -> StoreResult<BudgetLine> {
    if new.amount.fen() <= 0 {
        return Err(StoreError::Invalid(format!(
            "a budget line must be positive (is {} yuan)",
            new.amount
        )));
    }
    let stored = BudgetLine {
        created_at: new.created_at.trunc_subsecs(6),
        ..new
    };
    let r: R<()> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let instance = fetch_instance::<D>(&mut *tx, stored.instance_id, true)
            .await?
            .ok_or_else(|| StoreError::not_found("instance", stored.instance_id))?;
        // Lines total at most the approved funding (before approval: the requested
        // budget); checked with the instance locked, so concurrent lines cannot pass it.
        let cap = crate::funding::approved_funding(&instance.data).or_else(|| {
            instance
                .data
                .get("budget")
                .and_then(serde_json::Value::as_str)
                .and_then(|s| Money::parse(s).ok())
        });
        if let Some(approved) = cap {
            let budgeted = super::funding::lines_total::<D>(&mut *tx, instance.id).await?;
            let remaining = approved.saturating_sub(budgeted);
            if stored.amount > remaining {
                return Err(Fail::Store(StoreError::Money(
                    crate::funding::MoneyRefusal::BudgetOverApproved {
                        approved,
                        budgeted,
                        amount: stored.amount,
                        remaining,
                    },
                )));
            }
        }
        D::execute(
            &mut *tx,
            &format!(
                "INSERT INTO budget_lines ({LINE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            Args::new()
                .id(stored.id)
                .id(stored.instance_id)
                .int32(stored.year)
                .text(&stored.subject)
                .int(stored.amount.fen())
                .text(&stored.source)
                .id(stored.created_by)
                .time(stored.created_at),
        )
        .await
        .map_err(|e| dup::<D>(e.into(), "budget line", &stored.id.to_string()))?;
        refresh_budget::<D>(&mut *tx, stored.instance_id).await?;
        tx.commit().await?;
        Ok(())
    });
    r.map_err(Fail::store::<D>)?;
    Ok(stored)
}

pub async fn budget_lines<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_ids: &[Uuid],
) -> StoreResult<Vec<BudgetLine>> {
    let sql = format!(
        "SELECT {LINE_COLS} FROM budget_lines WHERE instance_id {{ids}} ORDER BY created_at, id"
    );
    fetch_by_ids::<D, _>(pool, &sql, instance_ids, line::<D>).await
}

pub async fn record_spending<D: Dialect>(
    pool: &Pools<D::DB>,
    new: NewSpending<'_>,
) -> StoreResult<Result<SpendingRecord, SpendingRefusal>> {
    if new.amount.fen() <= 0 {
        return Err(StoreError::Invalid(format!(
            "a spending must be positive (is {} yuan)",
            new.amount
        )));
    }
    let r = retrying!(D, spending_tx::<D>(pool, &new));
    r.map_err(Fail::store::<D>)
}

pub async fn spending_records<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_ids: &[Uuid],
) -> StoreResult<Vec<SpendingRecord>> {
    let sql = format!(
        "SELECT {SPENDING_COLS} FROM spending_records WHERE instance_id {{ids}} \
         ORDER BY spent_on, recorded_at, id"
    );
    fetch_by_ids::<D, _>(pool, &sql, instance_ids, spending::<D>).await
}

pub async fn record_actuals<D: Dialect>(
    pool: &Pools<D::DB>,
    actuals: Vec<ActualRecord>,
) -> StoreResult<()> {
    let r: R<()> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        for a in &actuals {
            D::execute(
                &mut *tx,
                "INSERT INTO indicator_actuals (instance_id, indicator_id, checkpoint, value, \
                 explanation, recorded_on, recorded_by, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (instance_id, indicator_id, checkpoint) DO UPDATE SET \
                 value = excluded.value, explanation = excluded.explanation, \
                 recorded_on = excluded.recorded_on, recorded_by = excluded.recorded_by, \
                 recorded_at = excluded.recorded_at",
                Args::new()
                    .id(a.instance_id)
                    .text(&a.indicator_id)
                    .text(&a.checkpoint)
                    .json(&a.value)
                    .opt_text(a.explanation.clone())
                    .date(a.recorded_on)
                    .id(a.recorded_by)
                    .time(a.recorded_at.trunc_subsecs(6)),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    });
    r.map_err(Fail::store::<D>)
}

pub async fn actuals<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
) -> StoreResult<Vec<ActualRecord>> {
    let r: R<Vec<ActualRecord>> = async {
        let sql = format!(
            "SELECT {ACTUAL_COLS} FROM indicator_actuals WHERE instance_id = $1 \
             ORDER BY checkpoint DESC, indicator_id"
        );
        let rows = fetch_all::<D>(pool, &sql, Args::new().id(instance_id)).await?;
        rows.iter().map(super::reports::actual::<D>).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn save_evaluation<D: Dialect>(
    pool: &Pools<D::DB>,
    record: EvaluationRecord,
) -> StoreResult<()> {
    let r: R<()> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        // Lock the project so that two evaluations of it apply one after the other.
        fetch_instance::<D>(&mut *tx, record.instance_id, true)
            .await?
            .ok_or_else(|| StoreError::not_found("instance", record.instance_id))?;
        D::execute(
            &mut *tx,
            "DELETE FROM evaluation_scores WHERE instance_id = $1",
            Args::new().id(record.instance_id),
        )
        .await?;
        D::execute(
            &mut *tx,
            "INSERT INTO evaluations (instance_id, call_id, method, budgeted_fen, spent_fen, \
             execution_rate, total, grade, result, evaluator_id, evaluated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (instance_id) DO UPDATE SET call_id = excluded.call_id, \
             method = excluded.method, budgeted_fen = excluded.budgeted_fen, \
             spent_fen = excluded.spent_fen, execution_rate = excluded.execution_rate, \
             total = excluded.total, grade = excluded.grade, result = excluded.result, \
             evaluator_id = excluded.evaluator_id, evaluated_at = excluded.evaluated_at",
            Args::new()
                .id(record.instance_id)
                .text(&record.call_id)
                .json(&record.method)
                .int(record.budgeted.fen())
                .int(record.spent.fen())
                .float(record.execution_rate)
                .float(record.total)
                .text(&record.grade)
                .json(&record.result)
                .id(record.evaluator_id)
                .time(record.evaluated_at.trunc_subsecs(6)),
        )
        .await?;
        for (position, score) in record.indicator_scores.iter().enumerate() {
            D::execute(
                &mut *tx,
                "INSERT INTO evaluation_scores (instance_id, position, indicator_id, name, \
                 part, max_points, fraction, points) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                Args::new()
                    .id(record.instance_id)
                    .int32(i32::try_from(position).unwrap_or(i32::MAX))
                    .text(&score.indicator_id)
                    .text(&score.name)
                    .text(&score.part)
                    .float(score.max_points)
                    .float(score.fraction)
                    .float(score.points),
            )
            .await
            .map_err(|e| dup::<D>(e.into(), "indicator score", &score.indicator_id))?;
        }
        tx.commit().await?;
        Ok(())
    });
    r.map_err(Fail::store::<D>)
}

pub async fn evaluation<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
) -> StoreResult<Option<EvaluationRecord>> {
    let r: R<Option<EvaluationRecord>> = async {
        let mut conn = pool.readers().acquire().await?;
        let row = D::fetch_optional(
            &mut *conn,
            &format!("SELECT {EVALUATION_COLS} FROM evaluations WHERE instance_id = $1"),
            Args::new().id(instance_id),
        )
        .await?;
        match row {
            Some(row) => Ok(Some(evaluation_from::<D>(&mut *conn, &row).await?)),
            None => Ok(None),
        }
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn evaluations_for_call<D: Dialect>(
    pool: &Pools<D::DB>,
    call_id: &str,
) -> StoreResult<Vec<EvaluationRecord>> {
    let r: R<Vec<EvaluationRecord>> = async {
        let mut conn = pool.readers().acquire().await?;
        let rows = D::fetch_all(
            &mut *conn,
            &format!(
                "SELECT {EVALUATION_COLS} FROM evaluations WHERE call_id = $1 \
                 ORDER BY evaluated_at, instance_id"
            ),
            Args::new().text(call_id),
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(evaluation_from::<D>(&mut *conn, row).await?);
        }
        Ok(out)
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn record_demand_merge<D: Dialect>(
    pool: &Pools<D::DB>,
    m: DemandMerge,
) -> StoreResult<DemandMerge> {
    if m.kept_id == m.merged_id {
        return Err(StoreError::Invalid(
            "a demand cannot be merged into itself".into(),
        ));
    }
    let m = DemandMerge {
        merged_at: m.merged_at.trunc_subsecs(6),
        ..m
    };
    let r: R<DemandMerge> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let inserted = D::execute(
            &mut *tx,
            "INSERT INTO demand_merges (id, call_id, kept_id, merged_id, similarity, \
             kept_source, merged_source, merged_by, merged_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (merged_id) DO NOTHING",
            Args::new()
                .id(m.id)
                .id(m.call_id)
                .id(m.kept_id)
                .id(m.merged_id)
                .float(m.similarity)
                .json(&m.kept_source)
                .json(&m.merged_source)
                .id(m.merged_by)
                .time(m.merged_at),
        )
        .await
        .map_err(|e| dup::<D>(e.into(), "demand merge", &m.id.to_string()))?;
        let stored = if inserted == 1 {
            m.clone()
        } else {
            let row = D::fetch_optional(
                &mut *tx,
                &format!("SELECT {MERGE_COLS} FROM demand_merges WHERE merged_id = $1"),
                Args::new().id(m.merged_id),
            )
            .await?
            .ok_or_else(|| bad("demand merge", "vanished"))?;
            merge::<D>(&row)?
        };
        tx.commit().await?;
        Ok(stored)
    });
    r.map_err(Fail::store::<D>)
}

pub async fn demand_merges<D: Dialect>(
    pool: &Pools<D::DB>,
    call_id: Uuid,
) -> StoreResult<Vec<DemandMerge>> {
    let r: R<Vec<DemandMerge>> = async {
        let rows = fetch_all::<D>(
            pool,
            &format!(
                "SELECT {MERGE_COLS} FROM demand_merges WHERE call_id = $1 ORDER BY merged_at, id"
            ),
            Args::new().id(call_id),
        )
        .await?;
        rows.iter().map(merge::<D>).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

#[async_trait::async_trait]
impl<S: super::SqlBackend> crate::ProgrammeStore for S {
    async fn create_call(&self, new: NewCall) -> StoreResult<Call> {
        create_call::<S::D>(self.sql_pool(), new).await
    }
    async fn get_call(&self, id: Uuid) -> StoreResult<Call> {
        get_call::<S::D>(self.sql_pool(), id).await
    }
    async fn list_calls(&self) -> StoreResult<Vec<Call>> {
        list_calls::<S::D>(self.sql_pool()).await
    }
    async fn set_call_status(&self, id: Uuid, status: CallStatus) -> StoreResult<Call> {
        set_call_status::<S::D>(self.sql_pool(), id, status).await
    }
    async fn create_instances(&self, new: Vec<NewInstance>) -> StoreResult<Vec<Instance>> {
        create_instances::<S::D>(self.sql_pool(), new).await
    }
    async fn instances_of_call(
        &self,
        workflow_id: &str,
        call_id: &str,
    ) -> StoreResult<Vec<Instance>> {
        instances_of_call::<S::D>(self.sql_pool(), workflow_id, call_id).await
    }
    async fn add_budget_line(&self, line: BudgetLine) -> StoreResult<BudgetLine> {
        add_budget_line::<S::D>(self.sql_pool(), line).await
    }
    async fn budget_lines(&self, instance_ids: &[Uuid]) -> StoreResult<Vec<BudgetLine>> {
        budget_lines::<S::D>(self.sql_pool(), instance_ids).await
    }
    async fn record_spending(
        &self,
        new: NewSpending<'_>,
    ) -> StoreResult<Result<SpendingRecord, SpendingRefusal>> {
        record_spending::<S::D>(self.sql_pool(), new).await
    }
    async fn spending(&self, instance_ids: &[Uuid]) -> StoreResult<Vec<SpendingRecord>> {
        spending_records::<S::D>(self.sql_pool(), instance_ids).await
    }
    async fn record_actuals(&self, actuals: Vec<ActualRecord>) -> StoreResult<()> {
        record_actuals::<S::D>(self.sql_pool(), actuals).await
    }
    async fn actuals(&self, instance_id: Uuid) -> StoreResult<Vec<ActualRecord>> {
        actuals::<S::D>(self.sql_pool(), instance_id).await
    }
    async fn save_evaluation(&self, record: EvaluationRecord) -> StoreResult<()> {
        save_evaluation::<S::D>(self.sql_pool(), record).await
    }
    async fn evaluation(&self, instance_id: Uuid) -> StoreResult<Option<EvaluationRecord>> {
        evaluation::<S::D>(self.sql_pool(), instance_id).await
    }
    async fn evaluations_for_call(&self, call_id: &str) -> StoreResult<Vec<EvaluationRecord>> {
        evaluations_for_call::<S::D>(self.sql_pool(), call_id).await
    }
    async fn actuals_of(&self, instance_ids: &[Uuid]) -> StoreResult<Vec<ActualRecord>> {
        super::reports::actuals_of::<S::D>(self.sql_pool(), instance_ids).await
    }
    async fn grades_of(&self, instance_ids: &[Uuid]) -> StoreResult<Vec<GradeRecord>> {
        super::reports::grades_of::<S::D>(self.sql_pool(), instance_ids).await
    }
    async fn grades_of_orgs(&self, org_ids: &[Uuid]) -> StoreResult<Vec<(Uuid, GradeRecord)>> {
        super::reports::grades_of_orgs::<S::D>(self.sql_pool(), org_ids).await
    }
    async fn record_demand_merge(&self, merge: DemandMerge) -> StoreResult<DemandMerge> {
        record_demand_merge::<S::D>(self.sql_pool(), merge).await
    }
    async fn demand_merges(&self, call_id: Uuid) -> StoreResult<Vec<DemandMerge>> {
        demand_merges::<S::D>(self.sql_pool(), call_id).await
    }
    async fn set_funding_plan(
        &self,
        call_id: Uuid,
        plan: serde_json::Value,
        reason: String,
        changed_by: String,
        at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<crate::funding::FundingPlanChange> {
        super::funding::set_funding_plan::<S::D>(
            self.sql_pool(),
            call_id,
            plan,
            reason,
            changed_by,
            at,
        )
        .await
    }
    async fn funding_plan(&self, call_id: Uuid) -> StoreResult<Option<serde_json::Value>> {
        super::funding::funding_plan::<S::D>(self.sql_pool(), call_id).await
    }
    async fn funding_plan_changes(
        &self,
        call_id: Uuid,
    ) -> StoreResult<Vec<crate::funding::FundingPlanChange>> {
        super::funding::funding_plan_changes::<S::D>(self.sql_pool(), call_id).await
    }
    async fn funding_commitments(
        &self,
        call_id: Uuid,
    ) -> StoreResult<Vec<crate::funding::FundingCommitment>> {
        super::funding::funding_commitments::<S::D>(self.sql_pool(), call_id).await
    }
    async fn budget_line_changes(
        &self,
        instance_id: Uuid,
    ) -> StoreResult<Vec<crate::funding::BudgetLineChange>> {
        super::funding::budget_line_changes::<S::D>(self.sql_pool(), instance_id).await
    }
    async fn record_disbursement(
        &self,
        new: crate::funding::Disbursement,
    ) -> StoreResult<crate::funding::Disbursement> {
        super::funding::record_disbursement::<S::D>(self.sql_pool(), new).await
    }
    async fn disbursements(
        &self,
        instance_ids: &[Uuid],
    ) -> StoreResult<Vec<crate::funding::Disbursement>> {
        super::funding::disbursements::<S::D>(self.sql_pool(), instance_ids).await
    }
    async fn disbursed_totals(
        &self,
        instance_ids: &[Uuid],
    ) -> StoreResult<Vec<crate::funding::DisbursedTotal>> {
        super::funding::disbursed_totals::<S::D>(self.sql_pool(), instance_ids).await
    }
}
