//! What SQLite does differently from PostgreSQL, for the shared SQL in
//! `grantflow_store::sql`: ids and times are stored as text, JSON as text, an id list is
//! bound as one JSON array read with `json_each`, and a write transaction takes the write
//! lock up front (`BEGIN IMMEDIATE`) instead of locking rows.

use std::borrow::Cow;
use std::future::Future;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use grantflow_store::StoreError;
use grantflow_store::sql::{Arg, Args, Dialect, Fail, Pools, R};
use serde_json::Value;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Row, Sqlite, SqliteConnection, Transaction};
use uuid::Uuid;

/// Dates are stored as `YYYY-MM-DD` text.
const DATE: &str = "%Y-%m-%d";

/// The SQLite dialect of the shared SQL store.
#[derive(Debug, Clone, Copy)]
pub struct SqliteDialect;

fn build(sql: &str, args: Args) -> Query<'_, Sqlite, SqliteArguments<'_>> {
    let mut q = sqlx::query(sql);
    for arg in args.0 {
        q = match arg {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::Int32(v) => q.bind(v),
            Arg::Float(v) => q.bind(v),
            Arg::Date(v) => q.bind(v.map(|d| d.format(DATE).to_string())),
            Arg::Bool(v) => q.bind(v),
            Arg::Id(v) => q.bind(v.map(|id| id.to_string())),
            Arg::Ids(ids) => {
                q.bind(Value::from(ids.iter().map(Uuid::to_string).collect::<Vec<_>>()).to_string())
            }
            Arg::Time(v) => q.bind(v.map(ts)),
            Arg::Json(v) => q.bind(v),
        };
    }
    q
}

/// The text sent for `sql` with `arguments` bound: a statement with many placeholders
/// (the multi-row inserts and batch updates) with anonymous ones when it can be
/// (`grantflow_store::sql::anonymous_placeholders`: SQLite binds named ones in quadratic
/// time); below that the scan would cost more than it saves.
fn statement_text(sql: &str, arguments: usize) -> Cow<'_, str> {
    const MANY: usize = 32;
    if arguments < MANY {
        return Cow::Borrowed(sql);
    }
    grantflow_store::sql::anonymous_placeholders(sql, arguments)
        .map_or(Cow::Borrowed(sql), Cow::Owned)
}

/// A database error as a `StoreError` (see `grantflow_store::sql::backend_error`).
pub(crate) fn backend_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Io(io) => StoreError::Backend(format!("I/O error: {io}")),
        other => grantflow_store::sql::backend_error(other, "SQLite"),
    }
}

/// Times are stored as fixed-width RFC 3339 text in UTC with microseconds, so that text
/// order is time order and what is read back equals what was hashed.
fn ts(t: DateTime<Utc>) -> String {
    t.trunc_subsecs(6)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn parse_ts(s: &str) -> R<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Fail::Store(StoreError::Backend(format!("bad stored time `{s}`: {e}"))))
}

fn parse_uuid(s: &str) -> R<Uuid> {
    Uuid::parse_str(s)
        .map_err(|e| Fail::Store(StoreError::Backend(format!("bad stored id `{s}`: {e}"))))
}

fn parse_json(s: &str) -> R<Value> {
    serde_json::from_str(s)
        .map_err(|e| Fail::Store(StoreError::Backend(format!("bad stored JSON: {e}"))))
}

impl Dialect for SqliteDialect {
    type DB = Sqlite;

    const BACKEND: &'static str = "sqlite";
    const FOR_UPDATE: &'static str = "";
    const STRING_AGG: &'static str = "group_concat";

    const ILIKE: &'static str = "LIKE";

    fn json_field(col: &str, key: &str) -> String {
        format!("json_extract({col}, '$.{key}')")
    }

    fn json_text(col: &str) -> String {
        col.to_string()
    }

    // Takes the write lock up front (on the writer connection, in turn), so a transaction
    // never has to upgrade a read lock and fail with SQLITE_BUSY halfway.
    const BEGIN_WRITE: Option<&'static str> = Some("BEGIN IMMEDIATE");

    fn begin_read(
        pools: &Pools<Sqlite>,
    ) -> impl Future<Output = Result<Transaction<'static, Sqlite>, sqlx::Error>> + Send {
        // A deferred transaction reads one snapshot (WAL) and never takes the write lock.
        pools.readers().begin()
    }

    grantflow_store::dialect_statements!(SqliteConnection, SqliteRow, build, statement_text);

    fn claim(table: &str, due: &[&str], order: &str, set: &str, cols: &str) -> String {
        // One statement under the write lock (taken at `BEGIN IMMEDIATE`): no other
        // claimer can see these rows as claimable until the lease ends.
        let branches: Vec<String> = due
            .iter()
            .enumerate()
            .map(|(i, due)| {
                format!(
                    "(SELECT {order} FROM {table} WHERE {due} ORDER BY {order} LIMIT $3) AS b{i}"
                )
            })
            .collect();
        format!(
            "UPDATE {table} SET {set} WHERE id IN ({}) RETURNING {cols}",
            grantflow_store::sql::claim_candidates(&branches, order)
        )
    }

    fn in_ids(param: &str) -> String {
        format!("IN (SELECT value FROM json_each({param}))")
    }

    fn is_retryable(_: &sqlx::Error) -> bool {
        // Writers queue on the write lock (busy timeout) instead of failing.
        false
    }

    fn unique_violation(e: &sqlx::Error) -> Option<String> {
        match e {
            // SQLite names the violated `table.column`.
            sqlx::Error::Database(db) if db.is_unique_violation() => Some(db.message().to_string()),
            _ => None,
        }
    }

    fn backend_error(e: sqlx::Error) -> StoreError {
        backend_error(e)
    }

    fn text(row: &SqliteRow, col: &str) -> R<Option<String>> {
        Ok(row.try_get(col)?)
    }

    fn int(row: &SqliteRow, col: &str) -> R<Option<i64>> {
        Ok(row.try_get(col)?)
    }

    fn bool(row: &SqliteRow, col: &str) -> R<bool> {
        Ok(row.try_get(col)?)
    }

    fn float(row: &SqliteRow, col: &str) -> R<Option<f64>> {
        Ok(row.try_get(col)?)
    }

    fn date(row: &SqliteRow, col: &str) -> R<Option<NaiveDate>> {
        let text: Option<String> = row.try_get(col)?;
        text.as_deref()
            .map(|s| {
                NaiveDate::parse_from_str(s, DATE).map_err(|e| {
                    Fail::Store(StoreError::Backend(format!("bad stored date `{s}`: {e}")))
                })
            })
            .transpose()
    }

    fn id(row: &SqliteRow, col: &str) -> R<Option<Uuid>> {
        let text: Option<String> = row.try_get(col)?;
        text.as_deref().map(parse_uuid).transpose()
    }

    fn time(row: &SqliteRow, col: &str) -> R<Option<DateTime<Utc>>> {
        let text: Option<String> = row.try_get(col)?;
        text.as_deref().map(parse_ts).transpose()
    }

    fn json(row: &SqliteRow, col: &str) -> R<Option<Value>> {
        let text: Option<String> = row.try_get(col)?;
        text.as_deref().map(parse_json).transpose()
    }
}
