//! Writers queue in the process (issue 16): with no busy timeout at all, concurrent
//! write transactions and single-statement writes of one store never meet SQLite's
//! `database is locked`, because they take turns on the one writer connection.

use std::sync::Arc;
use std::time::Duration;

use grantflow_store::Store;
use grantflow_store::conformance::{funded_project, message, new_application, t, world};
use grantflow_store_sqlite::testing::TempSqlite;
use grantflow_store_sqlite::{SqliteOptions, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_wait_in_the_busy_handler() {
    // A migrated file; then a store of its own on it with no busy timeout.
    let db = TempSqlite::new().await;
    let store = SqliteStore::connect_with(SqliteOptions {
        url: db.url(),
        // Any wait in SQLite's busy handler would fail at once with SQLITE_BUSY.
        busy_timeout: Duration::ZERO,
        ..SqliteOptions::default()
    })
    .await
    .expect("open");
    let store: Arc<dyn Store> = Arc::new(store);
    let w = Arc::new(world(store.as_ref()).await);
    let wf = funded_project();
    let mut tasks = Vec::new();
    for k in 0..24 {
        let (store, w, wf) = (store.clone(), w.clone(), wf.clone());
        tasks.push(tokio::spawn(async move {
            let inst = new_application(
                store.as_ref(),
                &wf,
                &w.unit,
                &w.applicant,
                &format!("排队 {k}"),
                t(0),
            )
            .await;
            let enqueued = store
                .enqueue(vec![message(&format!("q{k}"), t(0))])
                .await
                .expect("enqueue without waiting for the lock");
            assert_eq!(enqueued, 1);
            inst.id
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("every writer commits"));
    }
    assert_eq!(store.get_instances(&ids).await.unwrap().len(), 24);
    assert_eq!(store.list_outbox(None, None, 100).await.unwrap().len(), 24);
}
