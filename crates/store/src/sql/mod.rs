//! The SQL implementation of the store, written once for every backend.
//!
//! Each query and each orchestration is written here, over a [`Dialect`]: the few things
//! in which SQLite and PostgreSQL really differ (how a write transaction begins, how an
//! argument is encoded, an id-list predicate, which errors are worth retrying). SQL text
//! uses `$N` placeholders, which sqlx accepts on both databases. Arguments are described
//! as [`Arg`]s and encoded by the dialect, so PostgreSQL keeps its native types (`uuid`,
//! `timestamptz`, `json`, `uuid[]` with `= ANY`) while SQLite stores text; columns are
//! read back through [`Get`], so one decoder per record serves both.
//!
//! A backend crate implements [`Dialect`] and forwards its trait methods here.

pub mod accounts;
mod audit;
#[cfg(feature = "bench")]
mod bench;
#[cfg(feature = "bench")]
mod bench_load;
pub mod funding;
pub mod instances;
pub mod listing;
pub mod programme;
pub mod public;
pub mod queue;
mod reports;
pub mod review;
mod store;
pub mod third_party;
pub mod transitions;
pub mod writer;

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde_json::Value;
use sqlx::{Database, Pool, Transaction};
use uuid::Uuid;

use crate::StoreError;
pub use writer::{ConnectOptionsOf, WriteConn, WriteTx, WriterConnection};

/// How many times a transaction that failed on a serialization failure or deadlock is
/// run again before the error is returned.
pub const MAX_RETRIES: u32 = 5;

/// What the helpers fail with: a database error still to be classified, or a store error
/// that is already what the caller should see.
#[derive(Debug)]
pub enum Fail {
    Db(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

pub type R<T> = Result<T, Fail>;

/// One bound argument, encoded by the dialect (`None` binds a typed NULL).
#[derive(Debug, Clone)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    /// For `INTEGER` (32-bit) columns.
    Int32(Option<i32>),
    Float(f64),
    Date(Option<NaiveDate>),
    Bool(bool),
    Id(Option<Uuid>),
    /// A list of ids, read by the predicate [`Dialect::in_ids`] writes.
    Ids(Vec<Uuid>),
    Time(Option<DateTime<Utc>>),
    /// JSON text, kept exactly as written.
    Json(Option<String>),
}

/// The arguments of one statement, in `$1, $2, …` order.
#[derive(Debug, Clone, Default)]
pub struct Args(pub Vec<Arg>);

impl Args {
    pub fn new() -> Args {
        Args(Vec::new())
    }
    pub fn text(mut self, v: impl Into<String>) -> Args {
        self.0.push(Arg::Text(Some(v.into())));
        self
    }
    pub fn opt_text(mut self, v: Option<impl Into<String>>) -> Args {
        self.0.push(Arg::Text(v.map(Into::into)));
        self
    }
    pub fn int(mut self, v: i64) -> Args {
        self.0.push(Arg::Int(Some(v)));
        self
    }
    pub fn int32(mut self, v: i32) -> Args {
        self.0.push(Arg::Int32(Some(v)));
        self
    }
    pub fn opt_int32(mut self, v: Option<i32>) -> Args {
        self.0.push(Arg::Int32(v));
        self
    }
    pub fn float(mut self, v: f64) -> Args {
        self.0.push(Arg::Float(v));
        self
    }
    pub fn date(mut self, v: NaiveDate) -> Args {
        self.0.push(Arg::Date(Some(v)));
        self
    }
    pub fn bool(mut self, v: bool) -> Args {
        self.0.push(Arg::Bool(v));
        self
    }
    pub fn id(mut self, v: Uuid) -> Args {
        self.0.push(Arg::Id(Some(v)));
        self
    }
    pub fn opt_id(mut self, v: Option<Uuid>) -> Args {
        self.0.push(Arg::Id(v));
        self
    }
    pub fn ids(mut self, v: &[Uuid]) -> Args {
        self.0.push(Arg::Ids(v.to_vec()));
        self
    }
    pub fn time(mut self, v: DateTime<Utc>) -> Args {
        self.0.push(Arg::Time(Some(v)));
        self
    }
    pub fn opt_time(mut self, v: Option<DateTime<Utc>>) -> Args {
        self.0.push(Arg::Time(v));
        self
    }
    pub fn json(mut self, v: &Value) -> Args {
        self.0.push(Arg::Json(Some(v.to_string())));
        self
    }
    pub fn strings(mut self, v: &[String]) -> Args {
        self.0
            .push(Arg::Json(Some(Value::from(v.to_vec()).to_string())));
        self
    }
    /// The `$N` placeholder the next argument will have.
    pub fn next(&self) -> String {
        format!("${}", self.0.len() + 1)
    }
    pub fn push(&mut self, arg: Arg) -> String {
        self.0.push(arg);
        format!("${}", self.0.len())
    }
}

/// Writes of one transaction whose only result is how many rows each changed, run
/// together: on PostgreSQL as one statement (each a data-modifying `WITH` query), so a
/// transition's update, history, timers and announcement cost one round trip instead of
/// one each; elsewhere one after the other ([`Dialect::execute_batch`]).
///
/// What a statement writes is not visible to the others of the batch (PostgreSQL runs
/// them on one snapshot): a batch never holds a statement that reads what an earlier one
/// writes. A statement of the batch is a plain `INSERT`, `UPDATE` or `DELETE` without
/// `RETURNING`, or a `SELECT` run for its effect (`pg_notify`).
#[derive(Debug, Default)]
pub struct WriteBatch(pub Vec<(String, Args)>);

impl WriteBatch {
    pub fn push(&mut self, sql: impl Into<String>, args: Args) -> usize {
        self.0.push((sql.into(), args));
        self.0.len() - 1
    }
}

/// `sql` with each placeholder `$k` written `$(k + offset)`; quoted text left alone.
pub fn shift_placeholders(sql: &str, offset: usize) -> String {
    rewrite_placeholders(sql, |k| Some(format!("${}", k + offset))).unwrap_or_default()
}

/// A [`WriteBatch`] as one statement of data-modifying `WITH` queries: `w0 … wn`, each
/// statement's placeholders shifted after the previous ones', and a final `SELECT` of
/// how many rows each changed (`n0 … nn`).
pub fn batch_statement(batch: WriteBatch) -> (String, Args) {
    let mut ctes = Vec::with_capacity(batch.0.len());
    let mut counts = Vec::with_capacity(batch.0.len());
    let mut all = Args::new();
    for (i, (sql, args)) in batch.0.into_iter().enumerate() {
        let shifted = shift_placeholders(&sql, all.0.len());
        let returning = if shifted.trim_start().starts_with("SELECT") {
            ""
        } else {
            " RETURNING 1"
        };
        ctes.push(format!("w{i} AS ({shifted}{returning})"));
        counts.push(format!("(SELECT count(*) FROM w{i}) AS n{i}"));
        all.0.extend(args.0);
    }
    (
        format!("WITH {} SELECT {}", ctes.join(", "), counts.join(", ")),
        all,
    )
}

/// The connections of one store, owned by it: the readers' pool and, when the backend
/// queues its writers in the process (SQLite), the one writer connection that write
/// transactions and single-statement writes take turns on ([`writer`]). Without one,
/// writers use the readers' pool (PostgreSQL, which locks rows instead).
#[derive(Debug)]
pub struct Pools<DB: Database> {
    readers: Pool<DB>,
    writer: Option<WriterConnection<DB>>,
}

// Not derived: the derive would ask `DB: Clone`, which the database marker types are not.
impl<DB: Database> Clone for Pools<DB> {
    fn clone(&self) -> Self {
        Pools {
            readers: self.readers.clone(),
            writer: self.writer.clone(),
        }
    }
}

impl<DB: Database> Pools<DB> {
    /// One pool for readers and writers alike.
    pub fn shared(pool: Pool<DB>) -> Self {
        Pools {
            readers: pool,
            writer: None,
        }
    }

    /// Readers on `readers`; every writer queued on one connection opened with `options`,
    /// waiting at most `wait` for its turn.
    pub fn with_writer(readers: Pool<DB>, options: ConnectOptionsOf<DB>, wait: Duration) -> Self {
        Pools {
            readers,
            writer: Some(WriterConnection::new(options, wait)),
        }
    }

    /// The pool reads run on.
    pub fn readers(&self) -> &Pool<DB> {
        &self.readers
    }

    /// The connection for a write: the writer connection, in turn, or one of the readers'
    /// pool when there is none.
    pub async fn acquire_write(&self) -> Result<WriteConn<DB>, sqlx::Error> {
        match &self.writer {
            Some(writer) => writer.lock().await,
            None => Ok(WriteConn::Pooled(self.readers.acquire().await?)),
        }
    }
}

/// A store on a SQL database: its dialect and connection pools. Every store trait whose
/// aggregate is written in this module is implemented for every `SqlBackend`.
pub trait SqlBackend: Send + Sync + 'static {
    type D: Dialect;
    fn sql_pool(&self) -> &Pools<<Self::D as Dialect>::DB>;
    /// Apply the backend's pending migrations (idempotent).
    fn run_migrations(&self) -> impl Future<Output = crate::StoreResult<()>> + Send;
}

/// The connection type of a dialect's database.
pub type Conn<D> = <<D as Dialect>::DB as Database>::Connection;
/// The row type of a dialect's database.
pub type Row<D> = <<D as Dialect>::DB as Database>::Row;

/// What differs between the databases. Everything else is written once in this module.
pub trait Dialect: Send + Sync + 'static {
    type DB: Database;

    /// `sqlite` or `postgres`.
    const BACKEND: &'static str;
    /// Appended to a `SELECT` inside a write transaction to lock the rows it reads
    /// (` FOR UPDATE` on PostgreSQL; nothing on SQLite, where the transaction holds the
    /// write lock from its start).
    const FOR_UPDATE: &'static str;
    /// The case-insensitive (for ASCII) `LIKE`: `LIKE` on SQLite, `ILIKE` on PostgreSQL.
    const ILIKE: &'static str;
    /// The text of field `key` of a JSON object column.
    fn json_field(col: &str, key: &str) -> String;
    /// A JSON column as text, for a text search.
    fn json_text(col: &str) -> String;
    /// An aggregate joining text values with commas (`group_concat` / `string_agg`).
    const STRING_AGG: &'static str;

    /// The statement a write transaction begins with (`BEGIN IMMEDIATE` on SQLite, which
    /// takes the write lock up front); the backend's plain `BEGIN` when `None`.
    const BEGIN_WRITE: Option<&'static str>;

    /// Begin a transaction that will write (on [`Pools::acquire_write`]'s connection).
    fn begin_write(
        pools: &Pools<Self::DB>,
    ) -> impl Future<Output = Result<WriteTx<Self::DB>, sqlx::Error>> + Send {
        async { WriteTx::begin(pools.acquire_write().await?, Self::BEGIN_WRITE).await }
    }

    /// Begin a read-only transaction: its statements see one snapshot.
    fn begin_read(
        pools: &Pools<Self::DB>,
    ) -> impl Future<Output = Result<Transaction<'static, Self::DB>, sqlx::Error>> + Send;

    fn fetch_all<'c>(
        conn: &'c mut Conn<Self>,
        sql: &'c str,
        args: Args,
    ) -> impl Future<Output = Result<Vec<Row<Self>>, sqlx::Error>> + Send + 'c;

    fn fetch_optional<'c>(
        conn: &'c mut Conn<Self>,
        sql: &'c str,
        args: Args,
    ) -> impl Future<Output = Result<Option<Row<Self>>, sqlx::Error>> + Send + 'c;

    /// Run a statement; how many rows it changed.
    fn execute<'c>(
        conn: &'c mut Conn<Self>,
        sql: &'c str,
        args: Args,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'c;

    /// Run the writes of `batch` in `conn`'s transaction; how many rows each changed.
    /// Statement after statement unless the dialect can do better (PostgreSQL: one round
    /// trip, see [`WriteBatch`]).
    fn execute_batch<'c>(
        conn: &'c mut Conn<Self>,
        batch: WriteBatch,
    ) -> impl Future<Output = Result<Vec<u64>, sqlx::Error>> + Send + 'c {
        async move {
            let mut changed = Vec::with_capacity(batch.0.len());
            for (sql, args) in batch.0 {
                changed.push(Self::execute(&mut *conn, &sql, args).await?);
            }
            Ok(changed)
        }
    }

    /// A statement that claims the rows of `table` matching any condition of `due` (up
    /// to `$3` of them, in `order`), applies `set` to them and returns their `cols`, such
    /// that two transactions never claim the same row. `$1` and `$2` are free for `due`
    /// and `set`. `order` is a list of columns ending with `id`.
    ///
    /// Each condition is read on its own, in `order` and at most `$3` rows, and the
    /// branches are merged (see [`claim_candidates`]): with an index in `order` on
    /// each condition's rows (a partial index) a claim reads about `$3` rows however
    /// many are due. One `OR` of the
    /// conditions would read and sort every due row at each claim, so draining a burst
    /// of `n` due rows would read `n²/$3` of them.
    fn claim(table: &str, due: &[&str], order: &str, set: &str, cols: &str) -> String;

    /// The predicate (after a column) that holds when the column is one of the ids bound
    /// as [`Arg::Ids`] at placeholder `param` (`$N`).
    fn in_ids(param: &str) -> String;

    /// Whether the failed transaction should be run again (serialization failure,
    /// deadlock).
    fn is_retryable(e: &sqlx::Error) -> bool;
    /// The unique constraint a database error violated, if it is a unique violation.
    fn unique_violation(e: &sqlx::Error) -> Option<String>;
    /// A database error as the store reports it (never quoting the connection URL).
    fn backend_error(e: sqlx::Error) -> StoreError;

    fn text(row: &Row<Self>, col: &str) -> R<Option<String>>;
    fn int(row: &Row<Self>, col: &str) -> R<Option<i64>>;
    fn bool(row: &Row<Self>, col: &str) -> R<bool>;
    fn float(row: &Row<Self>, col: &str) -> R<Option<f64>>;
    fn date(row: &Row<Self>, col: &str) -> R<Option<NaiveDate>>;
    fn id(row: &Row<Self>, col: &str) -> R<Option<Uuid>>;
    fn time(row: &Row<Self>, col: &str) -> R<Option<DateTime<Utc>>>;
    /// A JSON column as written.
    fn json(row: &Row<Self>, col: &str) -> R<Option<Value>>;
}

/// The claim's candidate ids: the first `$3` rows in `order` of each branch (`branches`,
/// each a `FROM` item: a subquery `SELECT {order} FROM … ORDER BY {order} LIMIT $3` or
/// the name of one, as the dialect writes it), merged and cut to the first `$3` in
/// `order`. The same rows as the first `$3` of the
/// `OR` of the conditions, read through an index instead of a sort of every due row.
pub fn claim_candidates(branches: &[String], order: &str) -> String {
    let union = branches
        .iter()
        .map(|b| format!("SELECT * FROM {b}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    format!("SELECT id FROM ({union}) AS candidates ORDER BY {order} LIMIT $3")
}

impl Fail {
    /// The error the caller sees.
    pub fn store<D: Dialect>(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Db(e) => D::backend_error(e),
        }
    }
}

/// The columns of one row, decoded by the dialect.
pub struct Get<'r, D: Dialect>(pub &'r Row<D>);

fn missing(col: &str) -> Fail {
    Fail::Store(StoreError::Backend(format!("unexpected NULL in `{col}`")))
}

/// A stored value that does not parse.
pub fn bad(what: &str, v: &str) -> Fail {
    Fail::Store(StoreError::Backend(format!("bad stored {what} `{v}`")))
}

impl<D: Dialect> Get<'_, D> {
    pub fn str(&self, col: &str) -> R<String> {
        D::text(self.0, col)?.ok_or_else(|| missing(col))
    }
    pub fn opt_str(&self, col: &str) -> R<Option<String>> {
        D::text(self.0, col)
    }
    pub fn i64(&self, col: &str) -> R<i64> {
        D::int(self.0, col)?.ok_or_else(|| missing(col))
    }
    pub fn opt_i64(&self, col: &str) -> R<Option<i64>> {
        D::int(self.0, col)
    }
    pub fn bool(&self, col: &str) -> R<bool> {
        D::bool(self.0, col)
    }
    pub fn i32(&self, col: &str) -> R<i32> {
        i32::try_from(self.i64(col)?).map_err(|_| bad(col, "out of range"))
    }
    pub fn opt_i32(&self, col: &str) -> R<Option<i32>> {
        self.opt_i64(col)?
            .map(|v| i32::try_from(v).map_err(|_| bad(col, "out of range")))
            .transpose()
    }
    pub fn f64(&self, col: &str) -> R<f64> {
        D::float(self.0, col)?.ok_or_else(|| missing(col))
    }
    pub fn date(&self, col: &str) -> R<NaiveDate> {
        D::date(self.0, col)?.ok_or_else(|| missing(col))
    }
    pub fn id(&self, col: &str) -> R<Uuid> {
        D::id(self.0, col)?.ok_or_else(|| missing(col))
    }
    pub fn opt_id(&self, col: &str) -> R<Option<Uuid>> {
        D::id(self.0, col)
    }
    pub fn time(&self, col: &str) -> R<DateTime<Utc>> {
        D::time(self.0, col)?.ok_or_else(|| missing(col))
    }
    pub fn opt_time(&self, col: &str) -> R<Option<DateTime<Utc>>> {
        D::time(self.0, col)
    }
    pub fn json(&self, col: &str) -> R<Value> {
        D::json(self.0, col)?.ok_or_else(|| missing(col))
    }
    /// A JSON list of strings.
    pub fn strings(&self, col: &str) -> R<Vec<String>> {
        serde_json::from_value(self.json(col)?)
            .map_err(|e| Fail::Store(StoreError::Backend(format!("bad stored list: {e}"))))
    }
    /// A language stored as its tag (`zh-CN`, `en`).
    pub fn lang(&self, col: &str) -> R<crate::Lang> {
        let tag = self.str(col)?;
        crate::Lang::from_tag(&tag).ok_or_else(|| bad("language", &tag))
    }
    /// A `u32` stored as an integer.
    pub fn u32(&self, col: &str) -> R<u32> {
        u32::try_from(self.i64(col)?).map_err(|_| bad(col, "out of range"))
    }
}

/// A database error as a `StoreError`, for the backend named `database`. The message
/// never carries the connection URL or a password: configuration errors (which may echo
/// it) are reduced to their kind. I/O errors are worded by the dialect.
pub fn backend_error(e: sqlx::Error, database: &str) -> StoreError {
    match e {
        sqlx::Error::Database(db) => {
            // Connection exceptions (08…), an operator or failover shutting the server
            // down (57P01–57P03), a standby refusing writes (25006).
            let unavailable = db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "25006");
            if unavailable {
                StoreError::Unavailable(db.message().to_string())
            } else if db.is_foreign_key_violation() {
                StoreError::Invalid(format!(
                    "a referenced record does not exist ({})",
                    db.message()
                ))
            } else if db.is_check_violation() {
                // A value outside what the schema allows (a status, a grade…): the
                // caller's value, not a database failure.
                StoreError::Invalid(format!("a value is not allowed ({})", db.message()))
            } else {
                StoreError::Backend(db.message().to_string())
            }
        }
        sqlx::Error::Configuration(_) => {
            StoreError::Backend(format!("invalid {database} configuration"))
        }
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".to_string())
        }
        sqlx::Error::Io(e) => StoreError::Unavailable(format!("talking to {database}: {e}")),
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(format!("the connection to {database} is gone"))
        }
        sqlx::Error::Tls(_) => StoreError::Backend(format!("TLS error talking to {database}")),
        other => StoreError::Backend(other.to_string()),
    }
}

/// Map a unique violation to `Duplicate`, other failures unchanged.
pub fn dup<D: Dialect>(e: Fail, what: &'static str, value: &str) -> Fail {
    match &e {
        Fail::Db(db) if D::unique_violation(db).is_some() => Fail::Store(StoreError::Duplicate {
            what,
            value: value.to_string(),
        }),
        _ => e,
    }
}

/// The current time as stored (microseconds, as the history hashes).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Run `$body` (an `async` block producing `R<T>`) again when the dialect says its
/// failure is worth retrying, with a short growing pause, up to [`MAX_RETRIES`] times.
macro_rules! retrying {
    ($d:ty, $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            let result: $crate::sql::R<_> = $body.await;
            match result {
                Err($crate::sql::Fail::Db(e))
                    if <$d as $crate::sql::Dialect>::is_retryable(&e)
                        && attempt < $crate::sql::MAX_RETRIES =>
                {
                    attempt += 1;
                    tracing::debug!(
                        attempt,
                        "retrying a transaction after a serialization failure or deadlock"
                    );
                    $crate::sql::pause(attempt).await;
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use retrying;

#[doc(hidden)]
pub async fn pause(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt * attempt))).await;
}

/// Read helpers over the pool: one connection per call.
pub async fn fetch_all<D: Dialect>(pool: &Pools<D::DB>, sql: &str, args: Args) -> R<Vec<Row<D>>> {
    let mut conn = pool.readers().acquire().await?;
    Ok(D::fetch_all(&mut *conn, sql, args).await?)
}

/// The rows of a read over an id list, mapped; `{ids}` in `sql` becomes the dialect's
/// predicate on `$1` (`= ANY($1)`, `IN (SELECT value FROM json_each($1))`). No ids, no
/// query.
pub async fn fetch_by_ids<D: Dialect, T>(
    pool: &Pools<D::DB>,
    sql: &str,
    ids: &[Uuid],
    map: fn(&Row<D>) -> R<T>,
) -> crate::StoreResult<Vec<T>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = sql.replace("{ids}", &D::in_ids("$1"));
    let r: R<Vec<T>> = async {
        let rows = fetch_all::<D>(pool, &sql, Args::new().ids(ids)).await?;
        rows.iter().map(map).collect()
    }
    .await;
    r.map_err(Fail::store::<D>)
}

pub async fn fetch_optional<D: Dialect>(
    pool: &Pools<D::DB>,
    sql: &str,
    args: Args,
) -> R<Option<Row<D>>> {
    let mut conn = pool.readers().acquire().await?;
    Ok(D::fetch_optional(&mut *conn, sql, args).await?)
}

/// A write of one statement (on SQLite, queued on the writer connection).
pub async fn execute<D: Dialect>(pool: &Pools<D::DB>, sql: &str, args: Args) -> R<u64> {
    let mut conn = pool.acquire_write().await?;
    Ok(D::execute(&mut *conn, sql, args).await?)
}

/// Statements run through a [`Dialect`]'s runners since the process started, for the
/// benchmarks' statements per request (`grantflow bench scale`).
#[cfg(feature = "bench")]
pub static STATEMENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Count one statement (with the `bench` feature; nothing otherwise). Called by the
/// runners of [`dialect_statements!`], so every statement the SQL module issues is counted
/// whichever backend crate expands the macro.
#[inline]
pub fn count_statement() {
    #[cfg(feature = "bench")]
    STATEMENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// The statement text as written, whatever its arguments (for [`dialect_statements!`]).
pub fn as_written(sql: &str, _arguments: usize) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Borrowed(sql)
}

/// `sql` with its placeholders `$1, $2, … $n` written as anonymous `?`, when each of them
/// appears once and in that order (what the multi-row statements write); `None` when
/// they do not (a placeholder used twice, out of order, or not `n` of them), so the
/// statement is sent as written. Quoted text is left alone.
///
/// Why: SQLite finds a named placeholder's name by walking the list of every name
/// (`sqlite3_bind_parameter_name`), and sqlx asks it for each placeholder it binds, so
/// binding `n` named placeholders costs `n²`. A 100-row insert of 11 columns spent more
/// time there than in SQLite's own work. Anonymous placeholders have no name to look up.
pub fn anonymous_placeholders(sql: &str, n: usize) -> Option<String> {
    let mut expected = 1usize;
    let out = rewrite_placeholders(sql, |k| {
        (k == expected).then(|| {
            expected += 1;
            "?".to_string()
        })
    })?;
    (expected == n + 1).then_some(out)
}

/// `sql` with each placeholder `$k` outside quoted text replaced by `f(k)`; `None` as
/// soon as `f` refuses one.
fn rewrite_placeholders(sql: &str, mut f: impl FnMut(usize) -> Option<String>) -> Option<String> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let (mut i, mut copied, mut quoted) = (0usize, 0usize, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'$' if !quoted => {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if let Ok(number) = sql[i + 1..i + 1 + digits].parse::<usize>() {
                    out.push_str(&sql[copied..i]);
                    out.push_str(&f(number)?);
                    i += 1 + digits;
                    copied = i;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&sql[copied..]);
    Some(out)
}

/// The statement runners of a [`Dialect`] implementation (`fetch_all`, `fetch_optional`,
/// `execute`), given the backend's connection and row types and its `build(sql, args)`
/// that binds [`Args`] to a query. A macro because sqlx's executor bounds cannot be
/// written once for a generic database: the body is the same for every backend.
#[macro_export]
macro_rules! dialect_statements {
    ($conn:ty, $row:ty, $build:path) => {
        $crate::dialect_statements!($conn, $row, $build, $crate::sql::as_written);
    };
    // `$text(sql, arguments)` is the text sent for `sql` bound to that many arguments.
    ($conn:ty, $row:ty, $build:path, $text:path) => {
        fn fetch_all<'c>(
            conn: &'c mut $conn,
            sql: &'c str,
            args: $crate::sql::Args,
        ) -> impl ::std::future::Future<Output = Result<Vec<$row>, ::sqlx::Error>> + Send + 'c {
            $crate::sql::count_statement();
            async move {
                let text: ::std::borrow::Cow<'c, str> = $text(sql, args.0.len());
                $build(&text, args).fetch_all(conn).await
            }
        }

        fn fetch_optional<'c>(
            conn: &'c mut $conn,
            sql: &'c str,
            args: $crate::sql::Args,
        ) -> impl ::std::future::Future<Output = Result<Option<$row>, ::sqlx::Error>> + Send + 'c {
            $crate::sql::count_statement();
            async move {
                let text: ::std::borrow::Cow<'c, str> = $text(sql, args.0.len());
                $build(&text, args).fetch_optional(conn).await
            }
        }

        fn execute<'c>(
            conn: &'c mut $conn,
            sql: &'c str,
            args: $crate::sql::Args,
        ) -> impl ::std::future::Future<Output = Result<u64, ::sqlx::Error>> + Send + 'c {
            $crate::sql::count_statement();
            async move {
                let text: ::std::borrow::Cow<'c, str> = $text(sql, args.0.len());
                Ok($build(&text, args).execute(conn).await?.rows_affected())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::{Args, WriteBatch, anonymous_placeholders, batch_statement};

    #[test]
    fn placeholders_in_order_become_anonymous() {
        assert_eq!(
            anonymous_placeholders("INSERT INTO t VALUES ($1, $2), ($3, $4)", 4).as_deref(),
            Some("INSERT INTO t VALUES (?, ?), (?, ?)")
        );
        // Ten and more: the whole number is one placeholder.
        let sql: String = (1..=12).map(|i| format!("${i},")).collect();
        assert_eq!(
            anonymous_placeholders(&sql, 12).as_deref(),
            Some("?,?,?,?,?,?,?,?,?,?,?,?,")
        );
    }

    #[test]
    fn quoted_dollars_stay_as_written() {
        assert_eq!(
            anonymous_placeholders("SELECT json_extract(x, '$.a'), '$9' FROM t WHERE a = $1", 1)
                .as_deref(),
            Some("SELECT json_extract(x, '$.a'), '$9' FROM t WHERE a = ?")
        );
    }

    #[test]
    fn anything_but_each_placeholder_once_in_order_is_sent_as_written() {
        // Used twice, out of order, fewer than the arguments, more than the arguments.
        assert_eq!(anonymous_placeholders("a = $1 OR b = $1", 1), None);
        assert_eq!(anonymous_placeholders("a = $2 AND b = $1", 2), None);
        assert_eq!(anonymous_placeholders("a = $1", 2), None);
        assert_eq!(anonymous_placeholders("a = $1 AND b = $2", 1), None);
        assert_eq!(anonymous_placeholders("a = $1 AND b = $3", 3), None);
    }

    #[test]
    fn a_batch_is_one_statement_with_each_placeholder_after_the_previous_ones() {
        let mut batch = WriteBatch::default();
        batch.push(
            "UPDATE a SET x = $1 WHERE id = $2",
            Args::new().int(1).int(2),
        );
        batch.push("INSERT INTO b VALUES ($1, '$1')", Args::new().text("three"));
        batch.push("SELECT pg_notify('c', $1)", Args::new().text("four"));
        let (sql, args) = batch_statement(batch);
        assert_eq!(
            sql,
            "WITH w0 AS (UPDATE a SET x = $1 WHERE id = $2 RETURNING 1), \
             w1 AS (INSERT INTO b VALUES ($3, '$1') RETURNING 1), \
             w2 AS (SELECT pg_notify('c', $4)) \
             SELECT (SELECT count(*) FROM w0) AS n0, (SELECT count(*) FROM w1) AS n1, \
             (SELECT count(*) FROM w2) AS n2"
        );
        assert_eq!(args.0.len(), 4);
    }
}
