//! grantflow's default store: one SQLite file in WAL mode.
//!
//! Every write that touches more than one row runs in a transaction opened with
//! `BEGIN IMMEDIATE`: the write lock is taken up front, so a read transaction never has to
//! upgrade. Writers queue **in the process**, not in SQLite's busy handler: write
//! transactions and single-statement writes go through one writer connection, handed out
//! in arrival order behind a fair async mutex (`grantflow_store::sql::writer`), so no
//! request ever sleeps in the busy handler's back-off (which put the 99th percentile of 8
//! concurrent writers at a third of a second). Plain reads run on the other connections, outside transactions, and are never
//! blocked by the writer (WAL). The busy timeout stays for writers of other processes.

// Of the workspace's style lints, these are not applied to the store yet (its code was
// being unified when they were adopted); new code follows them anyway.
#![allow(
    clippy::use_self,
    clippy::needless_pass_by_value,
    clippy::semicolon_if_nothing_returned
)]

mod checkpoint;
pub mod dialect;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use grantflow_store::sql::Pools;
use grantflow_store::{StoreError, StoreResult};
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use dialect::SqliteDialect;

/// The database used when none is configured.
pub const DEFAULT_URL: &str = "sqlite://grantflow.db";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// How to open the database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `sqlite://path`, `sqlite:path`, `sqlite::memory:` or a plain file path.
    pub url: String,
    /// Readers run in parallel; writers queue on the write lock whatever this is.
    pub max_connections: u32,
    /// How long a writer waits for the write lock before giving up.
    pub busy_timeout: Duration,
    /// Queue this process's writers on one writer connection (see the module
    /// documentation). Off only to measure the busy handler it replaces.
    pub queue_writers: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            url: DEFAULT_URL.to_string(),
            max_connections: 8,
            busy_timeout: Duration::from_secs(10),
            queue_writers: true,
        }
    }
}

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pools: Pools<Sqlite>,
    /// `None` for an in-memory database (no WAL).
    _checkpointer: Option<std::sync::Arc<checkpoint::Checkpointer>>,
}

impl SqliteStore {
    /// Open (creating if missing) the database at `url` with default settings.
    pub async fn connect(url: &str) -> StoreResult<SqliteStore> {
        SqliteStore::connect_with(SqliteOptions {
            url: url.to_string(),
            ..SqliteOptions::default()
        })
        .await
    }

    /// Open the database file at `path`.
    pub async fn open_file(path: &Path) -> StoreResult<SqliteStore> {
        SqliteStore::connect(&path.to_string_lossy()).await
    }

    pub async fn connect_with(options: SqliteOptions) -> StoreResult<SqliteStore> {
        let url = options.url.trim();
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let connect = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)
                .map_err(|_| StoreError::Invalid("the SQLite URL is not valid".into()))?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL skips the fsync at each commit but not at checkpoints: a
            // committed transaction survives a crash of the process (the WAL is in the OS
            // page cache), and only a power loss or OS crash may lose the last commits,
            // never corrupt the file. That is the trade-off the crash test checks.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .pragma(
                "wal_autocheckpoint",
                checkpoint::WAL_BACKSTOP_PAGES.to_string(),
            )
            .busy_timeout(options.busy_timeout);
        // No ping before handing out a connection (sqlx's default): a connection to a
        // local file does not go stale, and the ping is one more trip to the
        // connection's worker thread for every statement and transaction.
        let mut pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .test_before_acquire(false)
            .acquire_timeout(options.busy_timeout + Duration::from_secs(5));
        if in_memory {
            // One connection: each connection to `:memory:` would otherwise be its own
            // database, and the shared cache answers lock conflicts with SQLITE_LOCKED
            // instead of waiting. Keep it open for the life of the pool.
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let acquire_timeout = options.busy_timeout + Duration::from_secs(5);
        let pool = pool
            .connect_with(connect.clone())
            .await
            .map_err(dialect::backend_error)?;
        let pools = if options.queue_writers && !in_memory {
            // One connection behind a fair mutex: writers are served in arrival order. It
            // opens at the first write, so a store that only reads holds no extra file.
            Pools::with_writer(pool, connect, acquire_timeout)
        } else {
            Pools::shared(pool)
        };
        let checkpointer =
            (!in_memory).then(|| checkpoint::Checkpointer::start(pools.readers().clone()));
        Ok(SqliteStore {
            pools,
            _checkpointer: checkpointer,
        })
    }

    /// The pool, for tools (benchmarks, test support) that issue raw SQL.
    pub fn pool(&self) -> &SqlitePool {
        self.pools.readers()
    }

    /// An online, consistent copy of the whole database into a new file (`VACUUM INTO`):
    /// readers and writers carry on meanwhile; the copy is the state of one moment.
    /// Refused when `path` exists.
    pub async fn backup_into(&self, path: &Path) -> StoreResult<()> {
        if path.exists() {
            return Err(StoreError::Invalid(format!(
                "{} exists already; a backup never overwrites a file",
                path.display()
            )));
        }
        sqlx::query("VACUUM INTO ?")
            .bind(path.to_string_lossy().into_owned())
            .execute(self.pool())
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(())
    }
}

impl grantflow_store::sql::SqlBackend for SqliteStore {
    type D = SqliteDialect;

    fn sql_pool(&self) -> &Pools<Sqlite> {
        &self.pools
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        MIGRATOR
            .run(self.pool())
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))
    }
}
