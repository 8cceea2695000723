//! Conversions between SQLite rows and the store's records, times and errors.

use chrono::{DateTime, SubsecRound, Utc};
use grantflow_store::StoreError;
use serde_json::Value;
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
