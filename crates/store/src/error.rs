//! Store errors: what callers can act on, with backend details kept out of user view.

use grantflow_domain::engine::EngineError;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },
    /// The instance moved on since the client read it.
    #[error("conflict: the instance is at version {current_version}, not {expected_version}")]
    Conflict {
        current_version: i64,
        expected_version: i64,
    },
    /// A unique value is already taken (a username, an e-mail address…).
    #[error("{what} `{value}` already exists")]
    Duplicate { what: &'static str, value: String },
    /// An idempotency key was reused for a different request.
    #[error("idempotency key `{key}` was already used for a different request")]
    IdempotencyMismatch { key: String },
    /// A released workflow version was changed without bumping its version.
    #[error(
        "workflow `{workflow_id}` version {version} is stored with different content (hash {stored}); bump the version instead of editing a released one"
    )]
    DefinitionChanged {
        workflow_id: String,
        version: u32,
        stored: String,
    },
    /// The engine refused the transition.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A reset token or credential that is expired, used or unknown.
    #[error("invalid or expired token")]
    InvalidToken,
    /// Values the store cannot accept.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A money rule refused the write (envelope, approved funding, disbursement).
    #[error("refused: {0:?}")]
    Money(crate::funding::MoneyRefusal),
    /// A transition that continues approval was refused because public objections on
    /// the instance are open (counted under the instance's lock, in the transition's
    /// transaction); nothing is written.
    #[error("{open} public objection(s) on the instance are still open")]
    ObjectionsOpen { open: i64 },
    /// The database failed. The message is for logs, never for clients.
    #[error("database error: {0}")]
    Backend(String),
    /// The database cannot be reached (down, restarting, failing over, or a standby that
    /// refuses writes): nothing was written. The message is for logs.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        StoreError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    /// Whether retrying the same operation may succeed (serialization failures,
    /// deadlocks, busy databases are retried inside the backends already).
    pub fn is_backend(&self) -> bool {
        matches!(self, StoreError::Backend(_) | StoreError::Unavailable(_))
    }
}
