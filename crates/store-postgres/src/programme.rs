//! [`ProgrammeStore`] on PostgreSQL: calls and their catalogue, budgets and spending,
//! indicator actuals, evaluations and demand merges.
//!
//! A spending locks its instance row and then its budget line (`SELECT … FOR UPDATE`, always
//! in that order) before it sums what was spent on the line: two concurrent spendings on
//! one project queue, and the second sees the first's committed record (READ COMMITTED
//! takes a new snapshot per statement), so a line can never be overdrawn.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use grantflow_domain::Money;
use grantflow_store::programme::{
    ActualRecord, BudgetLine, Call, CallItem, CallStatus, DemandMerge, EvaluationRecord,
    IndicatorScoreRecord, NewCall, NewSpending, SpendingRecord, SpendingRefusal,
    assemble_catalogue, budget_facts, catalogue_rows,
};
use grantflow_store::{Instance, NewInstance, ProgrammeStore, StoreError, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::rows::{self, Fail, R, json, parse_json};
use crate::{MAX_RETRIES, PgDialect, PostgresStore};
use grantflow_store::sql::instances::{self, INSTANCE_COLS};

fn s(row: &PgRow, col: &str) -> R<String> {
    Ok(row.try_get::<String, _>(col)?)
}

fn id(row: &PgRow, col: &str) -> R<Uuid> {
    Ok(row.try_get::<Uuid, _>(col)?)
}

fn time(row: &PgRow, col: &str) -> R<DateTime<Utc>> {
    Ok(row.try_get::<DateTime<Utc>, _>(col)?)
}

fn money(row: &PgRow, col: &str) -> R<Money> {
    Ok(Money::from_fen(row.try_get::<i64, _>(col)?))
}

const LINE_COLS: &str =
    "id, instance_id, year, subject, amount_fen, source, created_by, created_at";

fn line(row: &PgRow) -> R<BudgetLine> {
    Ok(BudgetLine {
        id: id(row, "id")?,
        instance_id: id(row, "instance_id")?,
        year: row.try_get::<i32, _>("year")?,
        subject: s(row, "subject")?,
        amount: money(row, "amount_fen")?,
        source: s(row, "source")?,
        created_by: id(row, "created_by")?,
        created_at: time(row, "created_at")?,
    })
}

const SPENDING_COLS: &str =
    "id, instance_id, line_id, amount_fen, spent_on, description, recorded_by, recorded_at";

fn spending(row: &PgRow) -> R<SpendingRecord> {
    Ok(SpendingRecord {
        id: id(row, "id")?,
        instance_id: id(row, "instance_id")?,
        line_id: id(row, "line_id")?,
        amount: money(row, "amount_fen")?,
        spent_on: row.try_get::<NaiveDate, _>("spent_on")?,
        description: s(row, "description")?,
        recorded_by: id(row, "recorded_by")?,
        recorded_at: time(row, "recorded_at")?,
    })
}

const MERGE_COLS: &str = "id, call_id, kept_id, merged_id, similarity, \
     kept_source::text AS kept_source, merged_source::text AS merged_source, merged_by, \
     merged_at";

fn merge(row: &PgRow) -> R<DemandMerge> {
    Ok(DemandMerge {
        id: id(row, "id")?,
        call_id: id(row, "call_id")?,
        kept_id: id(row, "kept_id")?,
        merged_id: id(row, "merged_id")?,
        similarity: row.try_get::<f64, _>("similarity")?,
        kept_source: parse_json(&s(row, "kept_source")?)?,
        merged_source: parse_json(&s(row, "merged_source")?)?,
        merged_by: id(row, "merged_by")?,
        merged_at: time(row, "merged_at")?,
    })
}

const EVALUATION_COLS: &str = "instance_id, call_id, method::text AS method, budgeted_fen, \
     spent_fen, execution_rate, total, grade, result::text AS result, evaluator_id, \
     evaluated_at";

async fn evaluation_from(conn: &mut PgConnection, row: &PgRow) -> R<EvaluationRecord> {
    let instance_id = id(row, "instance_id")?;
    let scores = sqlx::query(
        "SELECT indicator_id, name, part, max_points, fraction, points FROM evaluation_scores \
         WHERE instance_id = $1 ORDER BY position",
    )
    .bind(instance_id)
    .fetch_all(&mut *conn)
    .await?;
    let indicator_scores = scores
        .iter()
        .map(|r| {
            Ok(IndicatorScoreRecord {
                indicator_id: s(r, "indicator_id")?,
                name: s(r, "name")?,
                part: s(r, "part")?,
                max_points: r.try_get::<f64, _>("max_points")?,
                fraction: r.try_get::<f64, _>("fraction")?,
                points: r.try_get::<f64, _>("points")?,
            })
        })
        .collect::<R<Vec<_>>>()?;
    Ok(EvaluationRecord {
        instance_id,
        call_id: s(row, "call_id")?,
        method: parse_json(&s(row, "method")?)?,
        budgeted: money(row, "budgeted_fen")?,
        spent: money(row, "spent_fen")?,
        execution_rate: row.try_get::<f64, _>("execution_rate")?,
        total: row.try_get::<f64, _>("total")?,
        grade: s(row, "grade")?,
        indicator_scores,
        result: parse_json(&s(row, "result")?)?,
        evaluator_id: id(row, "evaluator_id")?,
        evaluated_at: time(row, "evaluated_at")?,
    })
}

async fn load_call(conn: &mut PgConnection, call_id: Uuid) -> R<Option<Call>> {
    let Some(row) = sqlx::query(
        "SELECT id, year, title, issuer, closing_date, status, created_by, created_at \
         FROM calls WHERE id = $1",
    )
    .bind(call_id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let cats = sqlx::query(
        "SELECT category, title FROM call_categories WHERE call_id = $1 ORDER BY position",
    )
    .bind(call_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Ok((s(r, "category")?, s(r, "title")?)))
    .collect::<R<Vec<_>>>()?;
    let areas = sqlx::query(
        "SELECT a.category, a.name FROM call_policy_areas a JOIN call_categories c \
         ON c.call_id = a.call_id AND c.category = a.category WHERE a.call_id = $1 \
         ORDER BY c.position, a.position",
    )
    .bind(call_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Ok((s(r, "category")?, s(r, "name")?)))
    .collect::<R<Vec<_>>>()?;
    let items = sqlx::query(
        "SELECT item_id, category, policy_area, number, name, direction, applicant, part \
         FROM call_items WHERE call_id = $1 ORDER BY position",
    )
    .bind(call_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok((
            s(r, "category")?,
            s(r, "policy_area")?,
            CallItem {
                item_id: s(r, "item_id")?,
                number: r.try_get::<Option<i32>, _>("number")?,
                name: s(r, "name")?,
                direction: s(r, "direction")?,
                applicant: s(r, "applicant")?,
                part: s(r, "part")?,
            },
        ))
    })
    .collect::<R<Vec<_>>>()?;
    let status = s(&row, "status")?;
    Ok(Some(Call {
        id: id(&row, "id")?,
        year: row.try_get::<i32, _>("year")?,
        title: s(&row, "title")?,
        issuer: s(&row, "issuer")?,
        closing_date: row.try_get::<NaiveDate, _>("closing_date")?,
        status: CallStatus::parse(&status).ok_or_else(|| {
            Fail::Store(StoreError::Backend(format!("bad call status `{status}`")))
        })?,
        created_by: id(&row, "created_by")?,
        created_at: time(&row, "created_at")?,
        categories: assemble_catalogue(cats, areas, items),
    }))
}

/// Recompute the instance's budget facts from its lines and spending.
async fn refresh_budget(conn: &mut PgConnection, instance_id: Uuid) -> R<()> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM budget_lines WHERE instance_id = $1) AS lines, \
         (SELECT COALESCE(SUM(amount_fen), 0)::BIGINT FROM budget_lines WHERE instance_id = $1) \
         AS total, \
         (SELECT COALESCE(SUM(amount_fen), 0)::BIGINT FROM spending_records \
         WHERE instance_id = $1) AS spent",
    )
    .bind(instance_id)
    .fetch_one(&mut *conn)
    .await?;
    let facts = budget_facts(
        row.try_get::<i64, _>("lines")?,
        money(&row, "total")?,
        money(&row, "spent")?,
    );
    sqlx::query("UPDATE instances SET budget = $1::json WHERE id = $2")
        .bind(json(&facts))
        .bind(instance_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl PostgresStore {
    async fn spending_tx(
        &self,
        new: &NewSpending<'_>,
    ) -> R<Result<SpendingRecord, SpendingRefusal>> {
        let mut tx = self.begin().await?;
        let instance = instances::fetch_instance::<PgDialect>(&mut tx, new.instance_id, true)
            .await?
            .ok_or_else(|| StoreError::not_found("instance", new.instance_id))?;
        let Some(line_id) = new.line_id else {
            return Ok(Err(SpendingRefusal::LineMissing { line_id: None }));
        };
        let found = sqlx::query(&format!(
            "SELECT {LINE_COLS} FROM budget_lines WHERE id = $1 AND instance_id = $2 FOR UPDATE"
        ))
        .bind(line_id)
        .bind(instance.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(found) = found else {
            return Ok(Err(SpendingRefusal::LineMissing {
                line_id: Some(line_id),
            }));
        };
        let budget_line = line(&found)?;
        if let Err(refusal) = (new.precondition)(&instance, &budget_line) {
            return Ok(Err(refusal));
        }
        let spent: i64 = sqlx::query(
            "SELECT COALESCE(SUM(amount_fen), 0)::BIGINT AS spent FROM spending_records \
             WHERE line_id = $1",
        )
        .bind(line_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("spent")?;
        let remaining = budget_line.amount.saturating_sub(Money::from_fen(spent));
        if new.amount > remaining {
            return Ok(Err(SpendingRefusal::BudgetExceeded {
                line_id,
                amount: new.amount,
                remaining,
            }));
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
        sqlx::query(&format!(
            "INSERT INTO spending_records ({SPENDING_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(record.id)
        .bind(record.instance_id)
        .bind(record.line_id)
        .bind(record.amount.fen())
        .bind(record.spent_on)
        .bind(&record.description)
        .bind(record.recorded_by)
        .bind(record.recorded_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| rows::dup(e.into(), "spending record", &record.id.to_string()))?;
        refresh_budget(&mut tx, instance.id).await?;
        tx.commit().await?;
        Ok(Ok(record))
    }
}

#[async_trait]
impl ProgrammeStore for PostgresStore {
    async fn create_call(&self, new: NewCall) -> StoreResult<Call> {
        let r: R<Call> = retrying!(async {
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO calls (id, year, title, issuer, closing_date, status, created_by, \
                 created_at) VALUES ($1, $2, $3, $4, $5, 'open', $6, $7)",
            )
            .bind(new.id)
            .bind(new.year)
            .bind(&new.title)
            .bind(&new.issuer)
            .bind(new.closing_date)
            .bind(new.created_by)
            .bind(new.created_at.trunc_subsecs(6))
            .execute(&mut *tx)
            .await
            .map_err(|e| rows::dup(e.into(), "call", &new.id.to_string()))?;
            let (cats, areas, items) = catalogue_rows(&new.categories);
            for (position, category, title) in cats {
                sqlx::query(
                    "INSERT INTO call_categories (call_id, category, position, title) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(new.id)
                .bind(category)
                .bind(position)
                .bind(title)
                .execute(&mut *tx)
                .await
                .map_err(|e| rows::dup(e.into(), "category", category))?;
            }
            for (position, category, name) in areas {
                sqlx::query(
                    "INSERT INTO call_policy_areas (call_id, category, position, name) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(new.id)
                .bind(category)
                .bind(position)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(|e| rows::dup(e.into(), "policy area", name))?;
            }
            for (position, category, area, item) in items {
                sqlx::query(
                    "INSERT INTO call_items (call_id, item_id, category, policy_area, position, \
                     number, name, direction, applicant, part) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(new.id)
                .bind(&item.item_id)
                .bind(category)
                .bind(area)
                .bind(position)
                .bind(item.number)
                .bind(&item.name)
                .bind(&item.direction)
                .bind(&item.applicant)
                .bind(&item.part)
                .execute(&mut *tx)
                .await
                .map_err(|e| rows::dup(e.into(), "catalogue item", &item.item_id))?;
            }
            let call = load_call(&mut tx, new.id)
                .await?
                .ok_or_else(|| StoreError::not_found("call", new.id))?;
            tx.commit().await?;
            Ok(call)
        });
        Ok(r?)
    }

    async fn get_call(&self, call_id: Uuid) -> StoreResult<Call> {
        let mut conn = self.pool().acquire().await.map_err(rows::backend_error)?;
        load_call(&mut conn, call_id)
            .await?
            .ok_or_else(|| StoreError::not_found("call", call_id))
    }

    async fn list_calls(&self) -> StoreResult<Vec<Call>> {
        let r: R<Vec<Call>> = async {
            let mut conn = self.pool().acquire().await?;
            let ids = sqlx::query("SELECT id FROM calls ORDER BY year DESC, created_at DESC, id")
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| id(r, "id"))
                .collect::<R<Vec<_>>>()?;
            let mut calls = Vec::with_capacity(ids.len());
            for call_id in ids {
                if let Some(c) = load_call(&mut conn, call_id).await? {
                    calls.push(c);
                }
            }
            Ok(calls)
        }
        .await;
        Ok(r?)
    }

    async fn set_call_status(&self, call_id: Uuid, status: CallStatus) -> StoreResult<Call> {
        let r: R<Call> = retrying!(async {
            let mut tx = self.begin().await?;
            let done = sqlx::query("UPDATE calls SET status = $1 WHERE id = $2")
                .bind(status.as_str())
                .bind(call_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("call", call_id).into());
            }
            let call = load_call(&mut tx, call_id)
                .await?
                .ok_or_else(|| StoreError::not_found("call", call_id))?;
            tx.commit().await?;
            Ok(call)
        });
        Ok(r?)
    }

    async fn create_instances(&self, new: Vec<NewInstance>) -> StoreResult<Vec<Instance>> {
        let r: R<Vec<Instance>> = retrying!(async {
            let mut tx = self.begin().await?;
            let mut out = Vec::with_capacity(new.len());
            for n in &new {
                out.push(instances::insert_instance::<PgDialect>(&mut tx, n).await?);
            }
            tx.commit().await?;
            Ok(out)
        });
        Ok(r?)
    }

    async fn instances_of_call(
        &self,
        workflow_id: &str,
        call_id: &str,
    ) -> StoreResult<Vec<Instance>> {
        let rows = sqlx::query(&format!(
            "SELECT {INSTANCE_COLS} FROM instances WHERE workflow_id = $1 \
             AND data->>'call_id' = $2 ORDER BY created_at, id"
        ))
        .bind(workflow_id)
        .bind(call_id)
        .fetch_all(self.pool())
        .await
        .map_err(rows::backend_error)?;
        Ok(instances::instances::<PgDialect>(&rows).map_err(Fail::from)?)
    }

    async fn add_budget_line(&self, new: BudgetLine) -> StoreResult<BudgetLine> {
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
        let r: R<()> = retrying!(async {
            let mut tx = self.begin().await?;
            instances::fetch_instance::<PgDialect>(&mut tx, stored.instance_id, true)
                .await?
                .ok_or_else(|| StoreError::not_found("instance", stored.instance_id))?;
            sqlx::query(&format!(
                "INSERT INTO budget_lines ({LINE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(stored.id)
            .bind(stored.instance_id)
            .bind(stored.year)
            .bind(&stored.subject)
            .bind(stored.amount.fen())
            .bind(&stored.source)
            .bind(stored.created_by)
            .bind(stored.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| rows::dup(e.into(), "budget line", &stored.id.to_string()))?;
            refresh_budget(&mut tx, stored.instance_id).await?;
            tx.commit().await?;
            Ok(())
        });
        r?;
        Ok(stored)
    }

    async fn budget_lines(&self, instance_ids: &[Uuid]) -> StoreResult<Vec<BudgetLine>> {
        let rows = sqlx::query(&format!(
            "SELECT {LINE_COLS} FROM budget_lines WHERE instance_id = ANY($1) \
             ORDER BY created_at, id"
        ))
        .bind(instance_ids)
        .fetch_all(self.pool())
        .await
        .map_err(rows::backend_error)?;
        Ok(rows.iter().map(line).collect::<R<_>>()?)
    }

    async fn record_spending(
        &self,
        new: NewSpending<'_>,
    ) -> StoreResult<Result<SpendingRecord, SpendingRefusal>> {
        if new.amount.fen() <= 0 {
            return Err(StoreError::Invalid(format!(
                "a spending must be positive (is {} yuan)",
                new.amount
            )));
        }
        let r = retrying!(self.spending_tx(&new));
        Ok(r?)
    }

    async fn spending(&self, instance_ids: &[Uuid]) -> StoreResult<Vec<SpendingRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {SPENDING_COLS} FROM spending_records WHERE instance_id = ANY($1) \
             ORDER BY spent_on, recorded_at, id"
        ))
        .bind(instance_ids)
        .fetch_all(self.pool())
        .await
        .map_err(rows::backend_error)?;
        Ok(rows.iter().map(spending).collect::<R<_>>()?)
    }

    async fn record_actuals(&self, actuals: Vec<ActualRecord>) -> StoreResult<()> {
        let r: R<()> = retrying!(async {
            let mut tx = self.begin().await?;
            for a in &actuals {
                sqlx::query(
                    "INSERT INTO indicator_actuals (instance_id, indicator_id, checkpoint, value, \
                     explanation, recorded_on, recorded_by, recorded_at) \
                     VALUES ($1, $2, $3, $4::json, $5, $6, $7, $8) \
                     ON CONFLICT (instance_id, indicator_id, checkpoint) DO UPDATE SET \
                     value = excluded.value, explanation = excluded.explanation, \
                     recorded_on = excluded.recorded_on, recorded_by = excluded.recorded_by, \
                     recorded_at = excluded.recorded_at",
                )
                .bind(a.instance_id)
                .bind(&a.indicator_id)
                .bind(&a.checkpoint)
                .bind(json(&a.value))
                .bind(&a.explanation)
                .bind(a.recorded_on)
                .bind(a.recorded_by)
                .bind(a.recorded_at.trunc_subsecs(6))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        });
        Ok(r?)
    }

    async fn actuals(&self, instance_id: Uuid) -> StoreResult<Vec<ActualRecord>> {
        let r: R<Vec<ActualRecord>> = async {
            let rows = sqlx::query(
                "SELECT instance_id, indicator_id, checkpoint, value::text AS value, explanation, \
                 recorded_on, recorded_by, recorded_at FROM indicator_actuals \
                 WHERE instance_id = $1 ORDER BY checkpoint DESC, indicator_id",
            )
            .bind(instance_id)
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ActualRecord {
                        instance_id: id(r, "instance_id")?,
                        indicator_id: s(r, "indicator_id")?,
                        checkpoint: s(r, "checkpoint")?,
                        value: parse_json(&s(r, "value")?)?,
                        explanation: r.try_get::<Option<String>, _>("explanation")?,
                        recorded_on: r.try_get::<NaiveDate, _>("recorded_on")?,
                        recorded_by: id(r, "recorded_by")?,
                        recorded_at: time(r, "recorded_at")?,
                    })
                })
                .collect()
        }
        .await;
        Ok(r?)
    }

    async fn save_evaluation(&self, record: EvaluationRecord) -> StoreResult<()> {
        let r: R<()> = retrying!(async {
            let mut tx = self.begin().await?;
            // Lock the project so that two evaluations of it apply one after the other.
            instances::fetch_instance::<PgDialect>(&mut tx, record.instance_id, true)
                .await?
                .ok_or_else(|| StoreError::not_found("instance", record.instance_id))?;
            sqlx::query("DELETE FROM evaluation_scores WHERE instance_id = $1")
                .bind(record.instance_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO evaluations (instance_id, call_id, method, budgeted_fen, spent_fen, \
                 execution_rate, total, grade, result, evaluator_id, evaluated_at) \
                 VALUES ($1, $2, $3::json, $4, $5, $6, $7, $8, $9::json, $10, $11) \
                 ON CONFLICT (instance_id) DO UPDATE SET call_id = excluded.call_id, \
                 method = excluded.method, budgeted_fen = excluded.budgeted_fen, \
                 spent_fen = excluded.spent_fen, execution_rate = excluded.execution_rate, \
                 total = excluded.total, grade = excluded.grade, result = excluded.result, \
                 evaluator_id = excluded.evaluator_id, evaluated_at = excluded.evaluated_at",
            )
            .bind(record.instance_id)
            .bind(&record.call_id)
            .bind(json(&record.method))
            .bind(record.budgeted.fen())
            .bind(record.spent.fen())
            .bind(record.execution_rate)
            .bind(record.total)
            .bind(&record.grade)
            .bind(json(&record.result))
            .bind(record.evaluator_id)
            .bind(record.evaluated_at.trunc_subsecs(6))
            .execute(&mut *tx)
            .await?;
            for (position, score) in record.indicator_scores.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO evaluation_scores (instance_id, position, indicator_id, name, \
                     part, max_points, fraction, points) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(record.instance_id)
                .bind(i32::try_from(position).unwrap_or(i32::MAX))
                .bind(&score.indicator_id)
                .bind(&score.name)
                .bind(&score.part)
                .bind(score.max_points)
                .bind(score.fraction)
                .bind(score.points)
                .execute(&mut *tx)
                .await
                .map_err(|e| rows::dup(e.into(), "indicator score", &score.indicator_id))?;
            }
            tx.commit().await?;
            Ok(())
        });
        Ok(r?)
    }

    async fn evaluation(&self, instance_id: Uuid) -> StoreResult<Option<EvaluationRecord>> {
        let r: R<Option<EvaluationRecord>> = async {
            let mut conn = self.pool().acquire().await?;
            let row = sqlx::query(&format!(
                "SELECT {EVALUATION_COLS} FROM evaluations WHERE instance_id = $1"
            ))
            .bind(instance_id)
            .fetch_optional(&mut *conn)
            .await?;
            match row {
                Some(row) => Ok(Some(evaluation_from(&mut conn, &row).await?)),
                None => Ok(None),
            }
        }
        .await;
        Ok(r?)
    }

    async fn evaluations_for_call(&self, call_id: &str) -> StoreResult<Vec<EvaluationRecord>> {
        let r: R<Vec<EvaluationRecord>> = async {
            let mut conn = self.pool().acquire().await?;
            let rows = sqlx::query(&format!(
                "SELECT {EVALUATION_COLS} FROM evaluations WHERE call_id = $1 \
                 ORDER BY evaluated_at, instance_id"
            ))
            .bind(call_id)
            .fetch_all(&mut *conn)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(evaluation_from(&mut conn, row).await?);
            }
            Ok(out)
        }
        .await;
        Ok(r?)
    }

    async fn record_demand_merge(&self, m: DemandMerge) -> StoreResult<DemandMerge> {
        if m.kept_id == m.merged_id {
            return Err(StoreError::Invalid(
                "a demand cannot be merged into itself".into(),
            ));
        }
        let m = DemandMerge {
            merged_at: m.merged_at.trunc_subsecs(6),
            ..m
        };
        let r: R<DemandMerge> = retrying!(async {
            let mut tx = self.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO demand_merges (id, call_id, kept_id, merged_id, similarity, \
                 kept_source, merged_source, merged_by, merged_at) \
                 VALUES ($1, $2, $3, $4, $5, $6::json, $7::json, $8, $9) \
                 ON CONFLICT (merged_id) DO NOTHING",
            )
            .bind(m.id)
            .bind(m.call_id)
            .bind(m.kept_id)
            .bind(m.merged_id)
            .bind(m.similarity)
            .bind(json(&m.kept_source))
            .bind(json(&m.merged_source))
            .bind(m.merged_by)
            .bind(m.merged_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| rows::dup(e.into(), "demand merge", &m.id.to_string()))?;
            let stored = if inserted.rows_affected() == 1 {
                m.clone()
            } else {
                let row = sqlx::query(&format!(
                    "SELECT {MERGE_COLS} FROM demand_merges WHERE merged_id = $1"
                ))
                .bind(m.merged_id)
                .fetch_one(&mut *tx)
                .await?;
                merge(&row)?
            };
            tx.commit().await?;
            Ok(stored)
        });
        Ok(r?)
    }

    async fn demand_merges(&self, call_id: Uuid) -> StoreResult<Vec<DemandMerge>> {
        let rows = sqlx::query(&format!(
            "SELECT {MERGE_COLS} FROM demand_merges WHERE call_id = $1 ORDER BY merged_at, id"
        ))
        .bind(call_id)
        .fetch_all(self.pool())
        .await
        .map_err(rows::backend_error)?;
        Ok(rows.iter().map(merge).collect::<R<_>>()?)
    }
}
