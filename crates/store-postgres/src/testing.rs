//! Test support: a new database per test on the PostgreSQL server named by
//! `GRANTFLOW_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! dropped again when the guard drops. An unreachable server fails the test with a hint
//! on how to start it: these tests never skip.

use std::str::FromStr;
use std::sync::Arc;

use grantflow_store::Store;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use uuid::Uuid;

use crate::PostgresStore;

/// The environment variable naming the server the tests create databases on.
pub const TEST_URL_VAR: &str = "GRANTFLOW_TEST_POSTGRES_URL";
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The maintenance URL the test databases are created from.
pub fn server_url() -> String {
    std::env::var(TEST_URL_VAR).unwrap_or_else(|_| DEFAULT_TEST_URL.to_string())
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

async fn admin_connection(url: &str) -> PgConnection {
    let options = PgConnectOptions::from_str(url)
        .unwrap_or_else(|_| panic!("{TEST_URL_VAR} is not a valid PostgreSQL URL"));
    let (host, port) = (options.get_host().to_string(), options.get_port());
    match options.connect().await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {host}:{port} ({e}). These tests need it: start it \
             with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
             or point {TEST_URL_VAR} at a server where the user may create databases."
        ),
    }
}

/// A new, migrated database, dropped (`WITH (FORCE)`) when this guard drops.
pub struct TempPostgres {
    pub store: PostgresStore,
    pub name: String,
    server: String,
}

impl TempPostgres {
    pub async fn new() -> TempPostgres {
        let server = server_url();
        let name = format!("gf_test_{}", Uuid::new_v4().simple());
        let mut admin = admin_connection(&server).await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("create the test database {name}: {e}"));
        let _ = admin.close().await;
        let store = PostgresStore::connect(&with_database(&server, &name))
            .await
            .unwrap_or_else(|e| panic!("connect to the test database {name}: {e}"));
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrate the test database {name}: {e}"));
        TempPostgres {
            store,
            name,
            server,
        }
    }

    /// The URL of the test database (for a child process).
    pub fn url(&self) -> String {
        with_database(&self.server, &self.name)
    }

    pub fn shared(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        // Drop runs outside async code (and possibly while a runtime is shutting down):
        // drop the database from a thread of its own with a small runtime.
        let server = self.server.clone();
        let name = self.name.clone();
        // No `pool.close()` here: it waits for connections whose return to the pool is a
        // task on the test's runtime, which is blocked in this very drop (a deadlock seen
        // with a server task still holding the pool). `WITH (FORCE)` ends those sessions.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async move {
                let options = PgConnectOptions::from_str(&server).ok()?;
                let mut admin = options.connect().await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop the test database {}", self.name);
        }
    }
}

/// Change the reason of one history record with raw SQL, with the append-only trigger
/// disabled for the duration (it stops mistakes, not the database owner).
pub async fn tamper_history(store: &PostgresStore, instance_id: Uuid, seq: i64) {
    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::query("ALTER TABLE history DISABLE TRIGGER history_no_update")
        .execute(&mut *tx)
        .await
        .expect("disable the append-only trigger");
    let r =
        sqlx::query("UPDATE history SET reason = 'tampered' WHERE instance_id = $1 AND seq = $2")
            .bind(instance_id)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .expect("tamper");
    assert_eq!(r.rows_affected(), 1, "the record to tamper with exists");
    sqlx::query("ALTER TABLE history ENABLE TRIGGER history_no_update")
        .execute(&mut *tx)
        .await
        .expect("enable the trigger again");
    tx.commit().await.expect("commit");
}

#[cfg(feature = "testing")]
#[async_trait::async_trait]
impl grantflow_store::conformance::Harness for TempPostgres {
    async fn tamper_history(&self, instance_id: Uuid, seq: i64) {
        tamper_history(&self.store, instance_id, seq).await
    }

    async fn raw_update_history(&self, instance_id: Uuid, seq: i64) -> Result<u64, String> {
        sqlx::query("UPDATE history SET reason = 'edited' WHERE instance_id = $1 AND seq = $2")
            .bind(instance_id)
            .bind(seq)
            .execute(self.store.pool())
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| e.to_string())
    }
}

/// Terminate the connections listening for announcements on `database`, as a network
/// failure would; how many there were.
pub async fn terminate_listeners(store: &PostgresStore, database: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_one(store.pool())
    .await
    .expect("terminate the listening connections")
}

/// Make the instance's pending timers due a minute ago, as if time had passed (a test
/// cannot wait for a real deadline). How many timers changed.
pub async fn make_timers_due(store: &PostgresStore, instance_id: Uuid) -> u64 {
    sqlx::query(
        "UPDATE timers SET fire_at = now() - interval '1 minute' \
         WHERE instance_id = $1 AND status = 'pending'",
    )
    .bind(instance_id)
    .execute(store.pool())
    .await
    .expect("make the timers due")
    .rows_affected()
}
