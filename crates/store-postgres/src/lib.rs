//! grantflow on PostgreSQL, for several API and scheduler processes sharing one database.
//!
//! Transactions run at READ COMMITTED. A transition locks its instance row with
//! `SELECT … FOR UPDATE`, so concurrent writers of one instance queue and the losers see
//! the new version; timer and outbox claims lock with `FOR UPDATE SKIP LOCKED`, so
//! schedulers never wait for each other and never claim the same row. Every transactional
//! method is retried a few times on serialization failures and deadlocks.

// Of the workspace's style lints, these are not applied to the store yet (its code was
// being unified when they were adopted); new code follows them anyway.
#![allow(
    clippy::use_self,
    clippy::needless_pass_by_value,
    clippy::semicolon_if_nothing_returned
)]

pub mod dialect;
pub mod hosts;
pub mod import;
pub mod listen;
pub mod testing;

use std::time::Duration;

use grantflow_store::sql::Pools;
use grantflow_store::{StoreError, StoreResult};
use sqlx::Postgres;
use sqlx::postgres::{PgPool, PgPoolOptions};

pub use dialect::PgDialect;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// How to connect.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `postgres://user[:password]@host[:port]/database[?params]`.
    pub url: String,
    /// Connections per process; each API request or scheduler step holds one at most.
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl PostgresOptions {
    pub fn new(url: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pools: Pools<Postgres>,
}

impl PostgresStore {
    /// Connect to `url` with default pool settings.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        PostgresStore::connect_with(PostgresOptions::new(url)).await
    }

    /// Connect; a URL naming several hosts (or `target_session_attrs=read-write`) connects
    /// to the primary among them and follows it when it moves ([`hosts`]).
    pub async fn connect_with(options: PostgresOptions) -> StoreResult<PostgresStore> {
        let hosts = hosts::parse(&options.url)?;
        let connect = if hosts.follows_primary() {
            hosts::find_primary(&hosts.candidates)
                .await
                .ok_or_else(|| {
                    StoreError::Unavailable("no PostgreSQL host of the URL is a primary".into())
                })?
        } else {
            hosts.candidates[0].clone()
        };
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(dialect::backend_error)?;
        if hosts.follows_primary() {
            tokio::spawn(hosts::follow_primary(pool.clone(), hosts));
        }
        Ok(PostgresStore {
            pools: Pools::shared(pool),
        })
    }

    /// The pool, for tools (benchmarks, test support) that issue raw SQL.
    pub fn pool(&self) -> &PgPool {
        self.pools.readers()
    }
}

impl grantflow_store::sql::SqlBackend for PostgresStore {
    type D = PgDialect;

    fn sql_pool(&self) -> &Pools<Postgres> {
        &self.pools
    }

    async fn run_migrations(&self) -> StoreResult<()> {
        MIGRATOR
            .run(self.pool())
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))
    }
}
