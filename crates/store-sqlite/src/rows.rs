//! Conversions between SQLite rows and the store's records, times and errors.

use chrono::{DateTime, SubsecRound, Utc};
use grantflow_domain::audit::HistoryRecord;
use grantflow_store::{Instance, NotifyPref, Role, StoreError, User, WorkflowRecord};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

/// What the private helpers fail with: a database error still to be classified, or a
/// store error that is already what the caller should see.
#[derive(Debug)]
pub(crate) enum Fail {
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

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Store(e) => e,
            Fail::Db(e) => backend_error(e),
        }
    }
}

impl From<grantflow_store::sql::Fail> for Fail {
    fn from(f: grantflow_store::sql::Fail) -> Self {
        match f {
            grantflow_store::sql::Fail::Db(e) => Fail::Db(e),
            grantflow_store::sql::Fail::Store(e) => Fail::Store(e),
        }
    }
}

pub(crate) type R<T> = Result<T, Fail>;

/// A database error as a `StoreError::Backend`. The message never carries the
/// connection URL: configuration errors (which may echo it) are reduced to their kind.
pub(crate) fn backend_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => {
            if db.is_foreign_key_violation() {
                StoreError::Invalid(format!(
                    "a referenced record does not exist ({})",
                    db.message()
                ))
            } else {
                StoreError::Backend(db.message().to_string())
            }
        }
        sqlx::Error::Configuration(_) => {
            StoreError::Backend("invalid SQLite configuration".to_string())
        }
        sqlx::Error::PoolTimedOut => {
            StoreError::Backend("timed out waiting for a database connection".to_string())
        }
        sqlx::Error::Io(io) => StoreError::Backend(format!("I/O error: {io}")),
        other => StoreError::Backend(other.to_string()),
    }
}

/// The unique constraint a database error violated (SQLite names `table.column`).
pub(crate) fn unique_violation(e: &Fail) -> Option<String> {
    match e {
        Fail::Db(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            Some(db.message().to_string())
        }
        _ => None,
    }
}

/// Map a unique violation to `Duplicate`, other failures unchanged.
pub(crate) fn dup(e: Fail, what: &'static str, value: &str) -> Fail {
    if unique_violation(&e).is_some() {
        Fail::Store(StoreError::Duplicate {
            what,
            value: value.to_string(),
        })
    } else {
        e
    }
}

/// Times are stored as fixed-width RFC 3339 text in UTC with microseconds, so that text
/// order is time order and what is read back equals what was hashed.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.trunc_subsecs(6)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

pub(crate) fn ts_opt(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(ts)
}

pub(crate) fn parse_ts(s: &str) -> R<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Fail::Store(StoreError::Backend(format!("bad stored time `{s}`: {e}"))))
}

pub(crate) fn parse_uuid(s: &str) -> R<Uuid> {
    Uuid::parse_str(s)
        .map_err(|e| Fail::Store(StoreError::Backend(format!("bad stored id `{s}`: {e}"))))
}

pub(crate) fn parse_json(s: &str) -> R<Value> {
    serde_json::from_str(s)
        .map_err(|e| Fail::Store(StoreError::Backend(format!("bad stored JSON: {e}"))))
}

pub(crate) fn json(v: &Value) -> String {
    v.to_string()
}

pub(crate) fn strings_json(v: &[String]) -> String {
    Value::from(v.to_vec()).to_string()
}

fn parse_strings(s: &str) -> R<Vec<String>> {
    serde_json::from_str(s)
        .map_err(|e| Fail::Store(StoreError::Backend(format!("bad stored list: {e}"))))
}

fn bad(what: &str, v: &str) -> Fail {
    Fail::Store(StoreError::Backend(format!("bad stored {what} `{v}`")))
}

fn get_str(row: &SqliteRow, col: &str) -> R<String> {
    Ok(row.try_get::<String, _>(col)?)
}

fn get_opt_str(row: &SqliteRow, col: &str) -> R<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

fn get_time(row: &SqliteRow, col: &str) -> R<DateTime<Utc>> {
    parse_ts(&get_str(row, col)?)
}

fn get_opt_time(row: &SqliteRow, col: &str) -> R<Option<DateTime<Utc>>> {
    get_opt_str(row, col)?.as_deref().map(parse_ts).transpose()
}

fn get_uuid(row: &SqliteRow, col: &str) -> R<Uuid> {
    parse_uuid(&get_str(row, col)?)
}

fn get_opt_uuid(row: &SqliteRow, col: &str) -> R<Option<Uuid>> {
    get_opt_str(row, col)?
        .as_deref()
        .map(parse_uuid)
        .transpose()
}

/// Users with their roles folded into one comma-separated column.
pub(crate) const USER_SELECT: &str = "SELECT u.id, u.username, u.display_name, u.email, \
     u.org_id, u.lang, u.notify_pref, u.active, u.created_at, \
     (SELECT group_concat(r.role, ',') FROM user_roles r WHERE r.user_id = u.id) AS roles \
     FROM users u";

pub(crate) fn user(row: &SqliteRow) -> R<User> {
    let roles_text = get_opt_str(row, "roles")?.unwrap_or_default();
    let mut roles = Vec::new();
    for r in roles_text.split(',').filter(|s| !s.is_empty()) {
        roles.push(Role::parse(r).ok_or_else(|| bad("role", r))?);
    }
    roles.sort();
    roles.dedup();
    let pref = get_str(row, "notify_pref")?;
    Ok(User {
        id: get_uuid(row, "id")?,
        username: get_str(row, "username")?,
        display_name: get_str(row, "display_name")?,
        email: get_str(row, "email")?,
        org_id: get_opt_uuid(row, "org_id")?,
        roles,
        lang: get_str(row, "lang")?,
        notify_pref: NotifyPref::parse(&pref).ok_or_else(|| bad("notify_pref", &pref))?,
        active: row.try_get::<bool, _>("active")?,
        created_at: get_time(row, "created_at")?,
    })
}

pub(crate) fn workflow(row: &SqliteRow) -> R<WorkflowRecord> {
    Ok(WorkflowRecord {
        workflow_id: get_str(row, "workflow_id")?,
        version: u32::try_from(row.try_get::<i64, _>("version")?)
            .map_err(|_| bad("workflow version", "out of range"))?,
        hash: get_str(row, "hash")?,
        definition: parse_json(&get_str(row, "definition")?)?,
        created_at: get_time(row, "created_at")?,
    })
}

pub(crate) const INSTANCE_COLS: &str = "id, workflow_id, workflow_version, state, stage, \
     is_final, data, version, parent_id, org_id, city_id, title, created_by, created_at, \
     updated_at, due_at, review, last_hash, budget";

pub(crate) fn instance(row: &SqliteRow) -> R<Instance> {
    Ok(Instance {
        id: get_uuid(row, "id")?,
        workflow_id: get_str(row, "workflow_id")?,
        workflow_version: u32::try_from(row.try_get::<i64, _>("workflow_version")?)
            .map_err(|_| bad("workflow version", "out of range"))?,
        state: get_str(row, "state")?,
        stage: get_str(row, "stage")?,
        is_final: row.try_get::<bool, _>("is_final")?,
        data: parse_json(&get_str(row, "data")?)?,
        version: row.try_get::<i64, _>("version")?,
        parent_id: get_opt_uuid(row, "parent_id")?,
        org_id: get_uuid(row, "org_id")?,
        city_id: get_opt_uuid(row, "city_id")?,
        title: get_str(row, "title")?,
        created_by: get_uuid(row, "created_by")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
        due_at: get_opt_time(row, "due_at")?,
        review: parse_json(&get_str(row, "review")?)?,
        budget: parse_json(&get_str(row, "budget")?)?,
        last_hash: get_str(row, "last_hash")?,
    })
}

pub(crate) const HISTORY_COLS: &str = "instance_id, seq, at, actor_id, actor_roles, event, \
     from_state, to_state, input, reason, prev_hash, hash";

pub(crate) fn history(row: &SqliteRow) -> R<HistoryRecord> {
    Ok(HistoryRecord {
        instance_id: get_str(row, "instance_id")?,
        seq: row.try_get::<i64, _>("seq")?,
        at: get_time(row, "at")?,
        actor_id: get_str(row, "actor_id")?,
        actor_roles: parse_strings(&get_str(row, "actor_roles")?)?,
        event: get_str(row, "event")?,
        from_state: get_str(row, "from_state")?,
        to_state: get_str(row, "to_state")?,
        input: parse_json(&get_str(row, "input")?)?,
        reason: get_opt_str(row, "reason")?,
        prev_hash: get_str(row, "prev_hash")?,
        hash: get_str(row, "hash")?,
    })
}

/// ` IN (?, ?, …)` over ids (UUIDs are stored as text): the one statement a batch
/// lookup issues, however many ids it has.
pub(crate) fn ids_in(q: &mut sqlx::QueryBuilder<'_, sqlx::Sqlite>, ids: &[Uuid]) {
    q.push(" IN (");
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(id.to_string());
    }
    q.push(")");
}
