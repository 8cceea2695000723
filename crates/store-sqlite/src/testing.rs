//! Test support (feature `testing`): a fresh database per test and a way to edit the
//! history behind the store's back, as an attacker with file access could.

use std::sync::Arc;

use grantflow_store::Store;
use uuid::Uuid;

use crate::SqliteStore;

/// A migrated store on a new file in a temporary directory, removed on drop.
pub struct TempSqlite {
    pub store: SqliteStore,
    pub dir: tempfile::TempDir,
}

impl TempSqlite {
    pub async fn new() -> TempSqlite {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqliteStore::open_file(&dir.path().join("grantflow.db"))
            .await
            .expect("open the SQLite test database");
        store
            .migrate()
            .await
            .expect("migrate the SQLite test database");
        TempSqlite { store, dir }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("grantflow.db")
    }

    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path().display())
    }

    pub fn shared(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }
}

/// Change the reason of one history record with raw SQL, lifting the append-only
/// trigger for the duration (the triggers stop mistakes, not someone with the file).
pub async fn tamper_history(store: &SqliteStore, instance_id: Uuid, seq: i64) {
    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::query("DROP TRIGGER history_no_update")
        .execute(&mut *tx)
        .await
        .expect("drop the append-only trigger");
    let r = sqlx::query("UPDATE history SET reason = 'tampered' WHERE instance_id = ? AND seq = ?")
        .bind(instance_id.to_string())
        .bind(seq)
        .execute(&mut *tx)
        .await
        .expect("tamper");
    assert_eq!(r.rows_affected(), 1, "the record to tamper with exists");
    sqlx::query(
        "CREATE TRIGGER history_no_update BEFORE UPDATE ON history \
         BEGIN SELECT RAISE(ABORT, 'history is append-only'); END",
    )
    .execute(&mut *tx)
    .await
    .expect("restore the trigger");
    tx.commit().await.expect("commit");
}

#[async_trait::async_trait]
impl grantflow_store::conformance::Harness for TempSqlite {
    async fn tamper_history(&self, instance_id: Uuid, seq: i64) {
        tamper_history(&self.store, instance_id, seq).await
    }

    async fn raw_update_history(&self, instance_id: Uuid, seq: i64) -> Result<u64, String> {
        sqlx::query("UPDATE history SET reason = 'edited' WHERE instance_id = ? AND seq = ?")
            .bind(instance_id.to_string())
            .bind(seq)
            .execute(self.store.pool())
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| e.to_string())
    }
}

/// `PRAGMA integrity_check`: `ok`, or the problems SQLite finds in the file.
pub async fn integrity_check(store: &SqliteStore) -> String {
    use sqlx::Row;
    let rows = sqlx::query("PRAGMA integrity_check")
        .fetch_all(store.pool())
        .await
        .expect("integrity_check");
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).expect("a text row"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Make the instance's pending timers due a minute ago, as if time had passed (a test
/// cannot wait for a real deadline). How many timers changed.
pub async fn make_timers_due(store: &SqliteStore, instance_id: Uuid) -> u64 {
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1))
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    sqlx::query("UPDATE timers SET fire_at = ? WHERE instance_id = ? AND status = 'pending'")
        .bind(past)
        .bind(instance_id.to_string())
        .execute(store.pool())
        .await
        .expect("make the timers due")
        .rows_affected()
}
