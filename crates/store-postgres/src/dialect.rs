//! What PostgreSQL does differently from SQLite, for the shared SQL in
//! `grantflow_store::sql`: native `uuid`, `timestamptz` and `json` values, id lists as
//! `uuid[]` with `= ANY`, rows locked with `FOR UPDATE`, and serialization failures and
//! deadlocks retried.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use grantflow_store::StoreError;
use grantflow_store::sql::{Arg, Args, Dialect, Pools, R, WriteBatch};
use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgRow, PgTypeInfo};
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres, Row, Transaction};
use uuid::Uuid;

/// The PostgreSQL dialect of the shared SQL store.
#[derive(Debug, Clone, Copy)]
pub struct PgDialect;

/// JSON text bound as a `json` value, so that it is stored exactly as written (`jsonb`
/// would reorder keys, and the history hashes are over the text).
struct JsonText(String);

impl sqlx::Type<Postgres> for JsonText {
    fn type_info() -> PgTypeInfo {
        // `json`
        PgTypeInfo::with_oid(Oid(114))
    }
}

impl sqlx::Encode<'_, Postgres> for JsonText {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        // The binary form of `json` is its text.
        buf.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

fn build(sql: &str, args: Args) -> Query<'_, Postgres, PgArguments> {
    let mut q = sqlx::query(sql);
    for arg in args.0 {
        q = match arg {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::Int32(v) => q.bind(v),
            Arg::Float(v) => q.bind(v),
            Arg::Date(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::Id(v) => q.bind(v),
            Arg::Ids(ids) => q.bind(ids),
            Arg::Time(v) => q.bind(v),
            Arg::Json(v) => q.bind(v.map(JsonText)),
        };
    }
    q
}

/// A database error as a `StoreError` (see `grantflow_store::sql::backend_error`).
pub(crate) fn backend_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Io(io) => StoreError::Unavailable(format!("could not reach PostgreSQL: {io}")),
        other => grantflow_store::sql::backend_error(other, "PostgreSQL"),
    }
}

impl Dialect for PgDialect {
    type DB = Postgres;

    const BACKEND: &'static str = "postgres";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const STRING_AGG: &'static str = "string_agg";

    const ILIKE: &'static str = "ILIKE";

    fn json_field(col: &str, key: &str) -> String {
        format!("{col}->>'{key}'")
    }

    fn json_text(col: &str) -> String {
        format!("{col}::text")
    }

    const BEGIN_WRITE: Option<&'static str> = None;

    fn begin_read(
        pools: &Pools<Postgres>,
    ) -> impl Future<Output = Result<Transaction<'static, Postgres>, sqlx::Error>> + Send {
        let begin = pools.readers().begin();
        async move {
            let mut tx = begin.await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
            Ok(tx)
        }
    }

    grantflow_store::dialect_statements!(PgConnection, PgRow, build);

    async fn execute_batch(
        conn: &mut PgConnection,
        batch: WriteBatch,
    ) -> Result<Vec<u64>, sqlx::Error> {
        let statements = batch.0.len();
        if statements < 2 {
            let mut changed = Vec::new();
            for (sql, args) in batch.0 {
                changed.push(Self::execute(&mut *conn, &sql, args).await?);
            }
            return Ok(changed);
        }
        let (sql, args) = grantflow_store::sql::batch_statement(batch);
        let row = Self::fetch_optional(&mut *conn, &sql, args)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        (0..statements)
            .map(|i| Ok(row.try_get::<i64, _>(format!("n{i}").as_str())? as u64))
            .collect()
    }

    fn claim(table: &str, due: &[&str], order: &str, set: &str, cols: &str) -> String {
        // Rows another scheduler is claiming right now are skipped, not waited for; the
        // new token fences off whoever held an expired lease. Each branch locks what it
        // reads (`FOR UPDATE` is not allowed on a `UNION`); rows a branch locked beyond
        // the merged first `$3` stay unclaimed and are let go at the claim's commit.
        let cols = cols
            .split(',')
            .map(|c| format!("c.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let ctes: Vec<String> = due
            .iter()
            .enumerate()
            .map(|(i, due)| {
                format!(
                    "b{i} AS (SELECT {order} FROM {table} WHERE {due} ORDER BY {order} \
                     LIMIT $3 FOR UPDATE SKIP LOCKED)"
                )
            })
            .collect();
        let names: Vec<String> = (0..due.len()).map(|i| format!("b{i}")).collect();
        format!(
            "WITH {}, due AS ({}) UPDATE {table} c SET {set} FROM due \
             WHERE c.id = due.id RETURNING {cols}",
            ctes.join(", "),
            grantflow_store::sql::claim_candidates(&names, order)
        )
    }

    fn in_ids(param: &str) -> String {
        format!("= ANY({param})")
    }

    fn is_retryable(e: &sqlx::Error) -> bool {
        // Serialization failure and deadlock.
        match e {
            sqlx::Error::Database(db) => {
                matches!(db.code().as_deref(), Some("40001") | Some("40P01"))
            }
            _ => false,
        }
    }

    fn unique_violation(e: &sqlx::Error) -> Option<String> {
        match e {
            sqlx::Error::Database(db) if db.is_unique_violation() => Some(
                db.constraint()
                    .map(str::to_string)
                    .unwrap_or_else(|| db.message().to_string()),
            ),
            _ => None,
        }
    }

    fn backend_error(e: sqlx::Error) -> StoreError {
        backend_error(e)
    }

    fn text(row: &PgRow, col: &str) -> R<Option<String>> {
        Ok(row.try_get(col)?)
    }

    fn int(row: &PgRow, col: &str) -> R<Option<i64>> {
        match row.try_get::<Option<i64>, _>(col) {
            Ok(v) => Ok(v),
            // `INTEGER` columns.
            Err(sqlx::Error::ColumnDecode { .. }) => {
                Ok(row.try_get::<Option<i32>, _>(col)?.map(i64::from))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn bool(row: &PgRow, col: &str) -> R<bool> {
        Ok(row.try_get(col)?)
    }

    fn float(row: &PgRow, col: &str) -> R<Option<f64>> {
        Ok(row.try_get(col)?)
    }

    fn date(row: &PgRow, col: &str) -> R<Option<NaiveDate>> {
        Ok(row.try_get(col)?)
    }

    fn id(row: &PgRow, col: &str) -> R<Option<Uuid>> {
        Ok(row.try_get(col)?)
    }

    fn time(row: &PgRow, col: &str) -> R<Option<DateTime<Utc>>> {
        Ok(row.try_get(col)?)
    }

    fn json(row: &PgRow, col: &str) -> R<Option<Value>> {
        Ok(row.try_get(col)?)
    }
}
