//! Conversions between PostgreSQL rows and the store's records, and error mapping.
//! JSON columns are selected as text (`col::text`) and parsed with serde_json, exactly as
//! on SQLite.

use grantflow_store::StoreError;

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
/// connection URL or a password: configuration errors are reduced to their kind.
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
            StoreError::Backend("invalid PostgreSQL configuration".to_string())
        }
        sqlx::Error::PoolTimedOut => {
            StoreError::Backend("timed out waiting for a database connection".to_string())
        }
        sqlx::Error::Io(io) => StoreError::Backend(format!("could not reach PostgreSQL: {io}")),
        sqlx::Error::Tls(_) => StoreError::Backend("TLS error talking to PostgreSQL".to_string()),
        other => StoreError::Backend(other.to_string()),
    }
}
