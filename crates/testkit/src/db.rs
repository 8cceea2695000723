//! A fresh database per test, on either backend.

use std::sync::Arc;

use grantflow_store::Store;
pub use grantflow_store_postgres::testing::TempPostgres;
pub use grantflow_store_sqlite::testing::TempSqlite;

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A new SQLite file in a temporary directory.
    Sqlite,
    /// A new database on the server at `GRANTFLOW_TEST_POSTGRES_URL` (default
    /// `postgres://postgres@127.0.0.1:5432/postgres`); the test fails when it is not
    /// reachable.
    Postgres,
}

/// Keeps the test database alive (and removes it on drop).
pub enum TestDb {
    Sqlite(TempSqlite),
    Postgres(TempPostgres),
}

impl TestDb {
    /// A new, migrated database.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::Sqlite(TempSqlite::new().await),
            Backend::Postgres => Self::Postgres(TempPostgres::new().await),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// The store on this database (one shared connection pool).
    pub fn shared(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(db) => db.shared(),
            Self::Postgres(db) => db.shared(),
        }
    }

    /// The database URL (for a child process or a second pool).
    pub fn url(&self) -> String {
        match self {
            Self::Sqlite(db) => db.url(),
            Self::Postgres(db) => db.url(),
        }
    }

    /// A second connection pool to the same database, as another process would have.
    pub async fn reopen(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(db) => Arc::new(
                grantflow_store_sqlite::SqliteStore::open_file(&db.path())
                    .await
                    .expect("second SQLite handle"),
            ),
            Self::Postgres(db) => Arc::new(
                grantflow_store_postgres::PostgresStore::connect(&db.url())
                    .await
                    .expect("second PostgreSQL pool"),
            ),
        }
    }
}

/// A fresh store and the guard that keeps its database alive.
pub async fn fresh_store(backend: Backend) -> (Arc<dyn Store>, TestDb) {
    let db = TestDb::new(backend).await;
    (db.shared(), db)
}
