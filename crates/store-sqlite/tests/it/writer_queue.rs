//! Writers queue in the process (issue 16): with no busy timeout at all, concurrent
//! write transactions and single-statement writes of one store never meet SQLite's
//! `database is locked`, because they take turns on the one writer connection.

use std::sync::Arc;
use std::time::Duration;

use grantflow_store::Store;
use grantflow_store::conformance::{funded_project, message, new_application, t, world};
use grantflow_store_sqlite::testing::TempSqlite;
use grantflow_store_sqlite::{SqliteOptions, SqliteStore};

/// A store of its own on the migrated file `db`, with no busy timeout: any wait in
/// SQLite's busy handler would fail at once with SQLITE_BUSY.
async fn without_busy_timeout(db: &TempSqlite) -> SqliteStore {
    SqliteStore::connect_with(SqliteOptions {
        url: db.url(),
        busy_timeout: Duration::ZERO,
        ..SqliteOptions::default()
    })
    .await
    .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_wait_in_the_busy_handler() {
    let db = TempSqlite::new().await;
    let store: Arc<dyn Store> = Arc::new(without_busy_timeout(&db).await);
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

/// A write transaction that is dropped before it commits (an error, or a request whose
/// future was cancelled) leaves nothing behind and hands the writer connection on: the
/// next writer begins at once and sees none of its changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_write_transaction_rolls_back_and_frees_the_writer() {
    use grantflow_store::sql::{Dialect, SqlBackend};
    use grantflow_store_sqlite::SqliteDialect;

    let db = TempSqlite::new().await;
    let store = without_busy_timeout(&db).await;
    let count = |store: SqliteStore| async move {
        let row: (i64,) = sqlx::query_as("SELECT count(*) FROM organisations")
            .fetch_one(store.pool())
            .await
            .unwrap();
        row.0
    };
    let before = count(store.clone()).await;

    // Dropped after a statement, without commit.
    {
        let mut tx = SqliteDialect::begin_write(store.sql_pool()).await.unwrap();
        insert_org(&mut tx, "未提交").await;
    }
    // Cancelled while holding the writer: the task is aborted mid-transaction.
    let (held, holding) = tokio::sync::oneshot::channel();
    let pools = store.sql_pool().clone();
    let task = tokio::spawn(async move {
        let mut tx = SqliteDialect::begin_write(&pools).await.unwrap();
        insert_org(&mut tx, "被取消").await;
        held.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    holding.await.unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    // The next writer commits, and only its row is there.
    let mut tx = SqliteDialect::begin_write(store.sql_pool()).await.unwrap();
    insert_org(&mut tx, "已提交").await;
    tx.commit().await.unwrap();
    assert_eq!(count(store.clone()).await, before + 1);
    let names: Vec<(String,)> = sqlx::query_as("SELECT name FROM organisations")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert!(names.iter().any(|(n,)| n == "已提交"));
    assert!(!names.iter().any(|(n,)| n == "未提交" || n == "被取消"));
}

/// A unit named `name`, inserted on `conn`.
async fn insert_org(conn: &mut sqlx::SqliteConnection, name: &str) {
    use grantflow_store::sql::{Args, Dialect};
    grantflow_store_sqlite::SqliteDialect::execute(
        conn,
        "INSERT INTO organisations (id, name, kind, parent_id, created_at) \
         VALUES ($1, $2, 'unit', NULL, '2024-01-01T00:00:00.000000Z')",
        Args::new().id(uuid::Uuid::now_v7()).text(name),
    )
    .await
    .unwrap();
}
