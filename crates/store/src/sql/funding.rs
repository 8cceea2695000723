//! The money after the budget in SQL (see [`crate::funding`]): the call's funding plan and
//! its history, what each approval holds against it, budget-line changes of approved
//! change requests, and disbursements.
//!
//! An approval locks its instance (the transition does) and then its call's row (always
//! in that order; a plan edit locks only the call), sums what the other projects of the
//! call hold in each pool the approval draws from, and refuses beyond what is left, all in
//! the transition's transaction: concurrent approvals queue on the call row and the
//! second sees the first's commitment, so a pool is never overdrawn.

use chrono::{DateTime, SubsecRound, Utc};
use grantflow_domain::Money;
use serde_json::Value;
use uuid::Uuid;

use super::instances::fetch_instance;
use super::{Args, Conn, Dialect, Fail, Get, Pools, R, Row, bad, fetch_all};
use crate::funding::{
    BudgetLineChange, DisbursedTotal, Disbursement, FundingCommitment, FundingPlanChange,
    MoneyEffects, MoneyRefusal, approved_funding, plan_amount,
};
use crate::sql::retrying;
use crate::{Instance, StoreError, StoreResult};

fn refuse(r: MoneyRefusal) -> Fail {
    Fail::Store(StoreError::Money(r))
}

fn money<D: Dialect>(g: &Get<'_, D>, col: &str) -> R<Money> {
    Ok(Money::from_fen(g.i64(col)?))
}

async fn sum<D: Dialect>(conn: &mut Conn<D>, sql: &str, args: Args) -> R<Money> {
    let row = D::fetch_optional(conn, sql, args)
        .await?
        .ok_or_else(|| bad("sum", "no row"))?;
    Ok(Money::from_fen(Get::<D>(&row).i64("total")?))
}

/// Lock the call's row and read its plan (`None`: no envelope).
async fn locked_plan<D: Dialect>(conn: &mut Conn<D>, call_id: Uuid) -> R<Option<Value>> {
    let row = D::fetch_optional(
        &mut *conn,
        &format!(
            "SELECT id, funding FROM calls WHERE id = $1{}",
            D::FOR_UPDATE
        ),
        Args::new().id(call_id),
    )
    .await?
    .ok_or_else(|| StoreError::not_found("call", call_id))?;
    Ok(D::json(&row, "funding")?.filter(|v| !v.is_null()))
}

/// A pool of the plan an approval draws from: its name (`part:<code>` …), what the plan
/// allocates to it (`None`: not planned) and the commitments column and key it sums.
type PlanPool<'a> = (String, Option<Money>, Option<(&'a str, &'a str)>);

/// What the call's other projects hold in a pool (`column = key`, or every project for
/// the total).
async fn held<D: Dialect>(
    conn: &mut Conn<D>,
    call_id: Uuid,
    instance_id: Uuid,
    pool: Option<(&str, &str)>,
) -> R<Money> {
    let mut args = Args::new().id(call_id).id(instance_id);
    let filter = match pool {
        Some((column, key)) => {
            args = args.text(key);
            format!(" AND {column} = $3")
        }
        None => String::new(),
    };
    sum::<D>(
        conn,
        &format!(
            "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS total FROM \
             funding_commitments WHERE call_id = $1 AND instance_id <> $2{filter}"
        ),
        args,
    )
    .await
}

/// The city pool a project already holds funding in (a city bureau's approval under
/// 下放地市审批): a later change of its funding (an approved budget change) stays held to
/// that city's allocation. Read with the instance locked by the transition.
async fn held_city<D: Dialect>(conn: &mut Conn<D>, instance_id: Uuid) -> R<Option<String>> {
    let row = D::fetch_optional(
        conn,
        "SELECT city FROM funding_commitments WHERE instance_id = $1",
        Args::new().id(instance_id),
    )
    .await?;
    match row {
        Some(row) => Get::<D>(&row).opt_str("city"),
        None => Ok(None),
    }
}

/// The transition's money effects, in its transaction, after its plan: the approval's
/// claim against the call's plan, then the changed lines. A refusal rolls it all back.
/// Returns the instance's new budget facts when lines changed.
pub async fn apply_money<D: Dialect>(
    conn: &mut Conn<D>,
    after: &Instance,
    effects: &MoneyEffects,
    event: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> R<Option<Value>> {
    if let Some(claim) = &effects.funding {
        let city = match &claim.city {
            Some(city) => Some(city.clone()),
            None => held_city::<D>(&mut *conn, after.id).await?,
        };
        let plan = locked_plan::<D>(&mut *conn, claim.call_id).await?;
        if let Some(plan) = &plan {
            let mut pools: Vec<PlanPool<'_>> =
                vec![("total".into(), plan_amount(plan, &["total"]), None)];
            pools.push((
                format!("part:{}", claim.part),
                plan_amount(plan, &["parts", &claim.part]),
                Some(("part", &claim.part)),
            ));
            pools.push((
                format!("category:{}", claim.category),
                plan_amount(plan, &["categories", &claim.category]),
                Some(("category", &claim.category)),
            ));
            pools.push((
                format!("item:{}", claim.item_id),
                plan_amount(plan, &["items", &claim.item_id]),
                Some(("item_id", &claim.item_id)),
            ));
            if let Some(city) = &city {
                pools.push((
                    format!("city:{city}"),
                    plan_amount(plan, &["cities", city]),
                    Some(("city", city)),
                ));
            }
            for (pool, allocated, filter) in pools {
                let Some(allocated) = allocated else { continue };
                let others = held::<D>(&mut *conn, claim.call_id, after.id, filter).await?;
                let remaining = allocated.saturating_sub(others);
                if claim.amount > remaining {
                    return Err(refuse(MoneyRefusal::FundingExceeded {
                        pool,
                        allocated,
                        amount: claim.amount,
                        remaining,
                    }));
                }
            }
        }
        D::execute(
            &mut *conn,
            "INSERT INTO funding_commitments (instance_id, call_id, part, category, item_id, \
             city, amount_fen, event, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (instance_id) DO UPDATE SET amount_fen = excluded.amount_fen, \
             city = excluded.city, event = excluded.event, updated_at = excluded.updated_at",
            Args::new()
                .id(after.id)
                .id(claim.call_id)
                .text(&claim.part)
                .text(&claim.category)
                .text(&claim.item_id)
                .opt_text(city.clone())
                .int(claim.amount.fen())
                .text(event)
                .time(at),
        )
        .await?;
    }
    // An approved change (with or without lines) leaves lines within the new funding.
    if !effects.lines.is_empty() || effects.change_request_id.is_some() {
        for change in &effects.lines {
            let row = D::fetch_optional(
                &mut *conn,
                &format!(
                    "SELECT amount_fen FROM budget_lines WHERE id = $1 AND instance_id = $2{}",
                    D::FOR_UPDATE
                ),
                Args::new().id(change.line_id).id(after.id),
            )
            .await?
            .ok_or_else(|| {
                refuse(MoneyRefusal::LineMissing {
                    line_id: change.line_id,
                })
            })?;
            let old = money(&Get::<D>(&row), "amount_fen")?;
            let spent = sum::<D>(
                &mut *conn,
                "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS total FROM \
                 spending_records WHERE line_id = $1",
                Args::new().id(change.line_id),
            )
            .await?;
            if change.amount < spent || change.amount.fen() <= 0 {
                return Err(refuse(MoneyRefusal::LineBelowSpent {
                    line_id: change.line_id,
                    spent,
                    amount: change.amount,
                }));
            }
            D::execute(
                &mut *conn,
                "UPDATE budget_lines SET amount_fen = $1 WHERE id = $2",
                Args::new().int(change.amount.fen()).id(change.line_id),
            )
            .await?;
            D::execute(
                &mut *conn,
                "INSERT INTO budget_line_changes (id, line_id, instance_id, old_amount_fen, \
                 new_amount_fen, change_request_id, changed_by, changed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                Args::new()
                    .id(Uuid::now_v7())
                    .id(change.line_id)
                    .id(after.id)
                    .int(old.fen())
                    .int(change.amount.fen())
                    .opt_text(effects.change_request_id.map(|c| c.to_string()))
                    .text(actor)
                    .time(at),
            )
            .await?;
        }
        let approved =
            approved_funding(&after.data).ok_or(refuse(MoneyRefusal::NoApprovedFunding))?;
        let budgeted = lines_total::<D>(&mut *conn, after.id).await?;
        if budgeted > approved {
            return Err(refuse(MoneyRefusal::BudgetOverApproved {
                approved,
                budgeted,
                amount: Money::ZERO,
                remaining: approved.saturating_sub(budgeted),
            }));
        }
        return Ok(Some(
            super::programme::refresh_budget::<D>(&mut *conn, after.id).await?,
        ));
    }
    Ok(None)
}

pub async fn lines_total<D: Dialect>(conn: &mut Conn<D>, instance_id: Uuid) -> R<Money> {
    sum::<D>(
        conn,
        "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS total FROM budget_lines \
         WHERE instance_id = $1",
        Args::new().id(instance_id),
    )
    .await
}

pub async fn disbursed_in<D: Dialect>(conn: &mut Conn<D>, instance_id: Uuid) -> R<Money> {
    sum::<D>(
        conn,
        "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS total FROM disbursements \
         WHERE instance_id = $1",
        Args::new().id(instance_id),
    )
    .await
}

pub async fn spent_in<D: Dialect>(conn: &mut Conn<D>, instance_id: Uuid) -> R<Money> {
    sum::<D>(
        conn,
        "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS total FROM spending_records \
         WHERE instance_id = $1",
        Args::new().id(instance_id),
    )
    .await
}

fn plan_change<D: Dialect>(row: &Row<D>) -> R<FundingPlanChange> {
    let g = Get::<D>(row);
    Ok(FundingPlanChange {
        id: g.id("id")?,
        call_id: g.id("call_id")?,
        old_plan: D::json(row, "old_plan")?.filter(|v| !v.is_null()),
        new_plan: g.json("new_plan")?,
        reason: g.str("reason")?,
        changed_by: g.str("changed_by")?,
        changed_at: g.time("changed_at")?,
    })
}

/// Replace a call's plan and keep the change, in one transaction with the call locked.
pub async fn set_funding_plan<D: Dialect>(
    pool: &Pools<D::DB>,
    call_id: Uuid,
    plan: Value,
    reason: String,
    changed_by: String,
    at: DateTime<Utc>,
) -> StoreResult<FundingPlanChange> {
    let at = at.trunc_subsecs(6);
    let r: R<FundingPlanChange> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let old = locked_plan::<D>(&mut *tx, call_id).await?;
        D::execute(
            &mut *tx,
            "UPDATE calls SET funding = $1 WHERE id = $2",
            Args::new().json(&plan).id(call_id),
        )
        .await?;
        let change = FundingPlanChange {
            id: Uuid::now_v7(),
            call_id,
            old_plan: old,
            new_plan: plan.clone(),
            reason: reason.clone(),
            changed_by: changed_by.clone(),
            changed_at: at,
        };
        let mut args = Args::new().id(change.id).id(call_id);
        args.0.push(super::Arg::Json(
            change.old_plan.as_ref().map(Value::to_string),
        ));
        D::execute(
            &mut *tx,
            "INSERT INTO funding_plan_changes (id, call_id, old_plan, new_plan, reason, \
             changed_by, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            args.json(&plan).text(&reason).text(&changed_by).time(at),
        )
        .await?;
        tx.commit().await?;
        Ok(change)
    });
    r.map_err(Fail::store::<D>)
}

pub async fn funding_plan<D: Dialect>(
    pool: &Pools<D::DB>,
    call_id: Uuid,
) -> StoreResult<Option<Value>> {
    let r: R<Option<Value>> = async {
        let rows = fetch_all::<D>(
            pool,
            "SELECT funding FROM calls WHERE id = $1",
            Args::new().id(call_id),
        )
        .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::not_found("call", call_id))?;
        Ok(D::json(row, "funding")?.filter(|v| !v.is_null()))
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn funding_plan_changes<D: Dialect>(
    pool: &Pools<D::DB>,
    call_id: Uuid,
) -> StoreResult<Vec<FundingPlanChange>> {
    let r: R<Vec<FundingPlanChange>> = async {
        fetch_all::<D>(
            pool,
            "SELECT id, call_id, old_plan, new_plan, reason, changed_by, changed_at FROM \
             funding_plan_changes WHERE call_id = $1 ORDER BY changed_at, id",
            Args::new().id(call_id),
        )
        .await?
        .iter()
        .map(plan_change::<D>)
        .collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn funding_commitments<D: Dialect>(
    pool: &Pools<D::DB>,
    call_id: Uuid,
) -> StoreResult<Vec<FundingCommitment>> {
    let r: R<Vec<FundingCommitment>> = async {
        fetch_all::<D>(
            pool,
            "SELECT instance_id, call_id, part, category, item_id, city, amount_fen, event, \
             updated_at FROM funding_commitments WHERE call_id = $1 \
             ORDER BY updated_at, instance_id",
            Args::new().id(call_id),
        )
        .await?
        .iter()
        .map(|row| {
            let g = Get::<D>(row);
            Ok(FundingCommitment {
                instance_id: g.id("instance_id")?,
                call_id: g.id("call_id")?,
                part: g.str("part")?,
                category: g.str("category")?,
                item_id: g.str("item_id")?,
                city: g.opt_str("city")?,
                amount: money(&g, "amount_fen")?,
                event: g.str("event")?,
                updated_at: g.time("updated_at")?,
            })
        })
        .collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn budget_line_changes<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_id: Uuid,
) -> StoreResult<Vec<BudgetLineChange>> {
    let r: R<Vec<BudgetLineChange>> = async {
        fetch_all::<D>(
            pool,
            "SELECT id, line_id, instance_id, old_amount_fen, new_amount_fen, \
             change_request_id, changed_by, changed_at FROM budget_line_changes \
             WHERE instance_id = $1 ORDER BY changed_at, id",
            Args::new().id(instance_id),
        )
        .await?
        .iter()
        .map(|row| {
            let g = Get::<D>(row);
            Ok(BudgetLineChange {
                id: g.id("id")?,
                line_id: g.id("line_id")?,
                instance_id: g.id("instance_id")?,
                old_amount: money(&g, "old_amount_fen")?,
                new_amount: money(&g, "new_amount_fen")?,
                change_request_id: g.opt_str("change_request_id")?.and_then(|s| s.parse().ok()),
                changed_by: g.str("changed_by")?,
                changed_at: g.time("changed_at")?,
            })
        })
        .collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

const DISBURSEMENT_COLS: &str =
    "id, instance_id, batch, paid_on, amount_fen, voucher, recorded_by, recorded_at";

fn disbursement<D: Dialect>(row: &Row<D>) -> R<Disbursement> {
    let g = Get::<D>(row);
    Ok(Disbursement {
        id: g.id("id")?,
        instance_id: g.id("instance_id")?,
        batch: g.str("batch")?,
        paid_on: g.date("paid_on")?,
        amount: money(&g, "amount_fen")?,
        voucher: g.str("voucher")?,
        recorded_by: g.id("recorded_by")?,
        recorded_at: g.time("recorded_at")?,
    })
}

/// Record a disbursement unless the project's disbursements would exceed its approved
/// funding; the check and the insert run with the instance locked.
pub async fn record_disbursement<D: Dialect>(
    pool: &Pools<D::DB>,
    new: Disbursement,
) -> StoreResult<Disbursement> {
    if new.amount.fen() <= 0 {
        return Err(StoreError::Invalid(format!(
            "a disbursement must be positive (is {} yuan)",
            new.amount
        )));
    }
    let new = Disbursement {
        recorded_at: new.recorded_at.trunc_subsecs(6),
        ..new
    };
    let r: R<Disbursement> = retrying!(D, async {
        let mut tx = D::begin_write(pool).await?;
        let instance = fetch_instance::<D>(&mut *tx, new.instance_id, true)
            .await?
            .ok_or_else(|| StoreError::not_found("instance", new.instance_id))?;
        let approved =
            approved_funding(&instance.data).ok_or(refuse(MoneyRefusal::NoApprovedFunding))?;
        let disbursed = disbursed_in::<D>(&mut *tx, instance.id).await?;
        let remaining = approved.saturating_sub(disbursed);
        if new.amount > remaining {
            return Err(refuse(MoneyRefusal::DisbursementOverApproved {
                approved,
                disbursed,
                amount: new.amount,
                remaining,
            }));
        }
        D::execute(
            &mut *tx,
            &format!(
                "INSERT INTO disbursements ({DISBURSEMENT_COLS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            Args::new()
                .id(new.id)
                .id(new.instance_id)
                .text(&new.batch)
                .date(new.paid_on)
                .int(new.amount.fen())
                .text(&new.voucher)
                .id(new.recorded_by)
                .time(new.recorded_at),
        )
        .await?;
        tx.commit().await?;
        Ok(new.clone())
    });
    r.map_err(Fail::store::<D>)
}

pub async fn disbursements<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_ids: &[Uuid],
) -> StoreResult<Vec<Disbursement>> {
    if instance_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {DISBURSEMENT_COLS} FROM disbursements WHERE instance_id {} \
         ORDER BY paid_on, recorded_at, id",
        D::in_ids("$1")
    );
    let r: R<Vec<Disbursement>> = async {
        fetch_all::<D>(pool, &sql, Args::new().ids(instance_ids))
            .await?
            .iter()
            .map(disbursement::<D>)
            .collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

/// Disbursed totals per project (every given project, 0 for one paid nothing).
pub async fn disbursed_totals<D: Dialect>(
    pool: &Pools<D::DB>,
    instance_ids: &[Uuid],
) -> StoreResult<Vec<DisbursedTotal>> {
    if instance_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT instance_id, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS total \
         FROM disbursements WHERE instance_id {} GROUP BY instance_id",
        D::in_ids("$1")
    );
    let r: R<Vec<(Uuid, Money)>> = async {
        fetch_all::<D>(pool, &sql, Args::new().ids(instance_ids))
            .await?
            .iter()
            .map(|row| {
                let g = Get::<D>(row);
                Ok((g.id("instance_id")?, money(&g, "total")?))
            })
            .collect()
    }
    .await;
    let sums: std::collections::HashMap<Uuid, Money> =
        r.map_err(Fail::store::<D>)?.into_iter().collect();
    Ok(instance_ids
        .iter()
        .map(|id| DisbursedTotal {
            instance_id: *id,
            disbursed: sums.get(id).copied().unwrap_or(Money::ZERO),
        })
        .collect())
}
