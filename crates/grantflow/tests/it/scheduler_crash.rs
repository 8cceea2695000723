//! A scheduler process SIGKILLed in the middle of a batch of timers (issue 16): nothing of
//! the batch is half-written (a timer is done exactly when its messages are in the outbox),
//! and the next run, after the lease, takes the claims over and delivers every reminder.
//!
//! On PostgreSQL the kill lands at a known point: the test holds the outbox table locked,
//! so the process's batch transactions have completed their timers and wait to insert
//! their messages when it is killed. On SQLite (one writer, no such lock to hold from outside)
//! the process is killed as soon as a first batch committed, with more batches to go.

use std::collections::HashSet;
use std::process::Child;

use grantflow_mail::testkit::SmtpTestServer;
use grantflow_store::{Store, TimerStatus};
use grantflow_testkit::{Backend, TestDb};
use tempfile::TempDir;

use crate::scheduler_processes::{
    counts, expected_reminder_ids, finish, populate, run_once, workflows_dir, write_config,
};

const PROJECTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_leaves_nothing_half_written_sqlite() {
    sigkill_mid_batch(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_leaves_nothing_half_written_postgres() {
    sigkill_mid_batch(Backend::Postgres).await;
}

async fn sigkill_mid_batch(backend: Backend) {
    use std::os::unix::process::ExitStatusExt;

    let db = TestDb::new(backend).await;
    let store = db.shared();
    let dir = TempDir::new().unwrap();
    let (workflows, registry) = workflows_dir(dir.path());
    let users = populate(store.clone(), registry, PROJECTS).await;
    let smtp = SmtpTestServer::start();
    let config = write_config(dir.path(), &db.url(), &workflows, &smtp, "");
    let expected = expected_reminder_ids(store.as_ref(), &users).await;
    assert_eq!(expected.len(), 2 * PROJECTS);

    let mut child = match &db {
        TestDb::Postgres(pg) => {
            let mut barrier = pg.store.pool().begin().await.unwrap();
            sqlx::query("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
                .execute(&mut *barrier)
                .await
                .unwrap();
            let child = run_once(&config, "2025-09-30T09:00");
            waiting_on(pg, "outbox").await;
            let child = kill(child);
            barrier.rollback().await.unwrap();
            // The killed process's backend rolls its transaction back once it sees the
            // connection gone; until then it holds the batch's row locks.
            until_no_one_holds(pg, "timers").await;
            child
        }
        TestDb::Sqlite(_) => {
            let child = run_once(&config, "2025-09-30T09:00");
            until_some_messages(store.as_ref()).await;
            kill(child)
        }
    };
    assert_eq!(child.wait().unwrap().signal(), Some(9));

    let (done, claimed) = nothing_half_written(store.as_ref()).await;
    assert!(
        done < PROJECTS,
        "killed mid-burst: {done} of {PROJECTS} done"
    );
    if matches!(db, TestDb::Postgres(_)) {
        assert_eq!(
            done, 0,
            "the batches waiting on the outbox are rolled back whole"
        );
        // Batches of at most 10, up to four in flight (`Scheduler::batch_lanes`). A claim
        // racing another lane's may take fewer than 10: a row the other lane claimed
        // first no longer matches once its lock is released, and `SKIP LOCKED` does not
        // look further.
        assert!(
            claimed > 0 && claimed <= 40,
            "their claims stay until the lease runs out: {claimed}"
        );
    }
    assert!(
        smtp.received().is_empty(),
        "killed before anything was sent"
    );

    // Two minutes later (the lease is 60 s), a run takes the claims over and delivers all.
    let (status, output) = finish(run_once(&config, "2025-09-30T09:02"));
    assert!(status.success(), "{output}");
    assert!(output.contains("lost: 0, errors: 0"), "{output}");
    let by_id = counts(&smtp.received());
    let delivered: HashSet<String> = by_id.keys().cloned().collect();
    assert_eq!(delivered, expected, "every reminder delivered");
    let twice: Vec<_> = by_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let (done, claimed) = nothing_half_written(store.as_ref()).await;
    assert_eq!((done, claimed), (PROJECTS, 0));
}

fn kill(mut child: Child) -> Child {
    child.kill().expect("SIGKILL");
    child
}

/// Each 09-30 reminder timer is done exactly when both its messages are in the outbox,
/// and a timer not done has none. How many are done and how many claimed.
async fn nothing_half_written(store: &dyn Store) -> (usize, usize) {
    let keys: HashSet<String> = store
        .list_outbox(None, None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.idempotency_key)
        .collect();
    let (mut done, mut claimed) = (0, 0);
    for instance in store.instance_ids().await.unwrap() {
        for t in store.timers_for_instance(instance).await.unwrap() {
            if t.key != "reminder:3wd" {
                continue;
            }
            let prefix = format!("timer:{}:", t.id);
            let messages = keys.iter().filter(|k| k.starts_with(&prefix)).count();
            match t.status {
                TimerStatus::Done => {
                    assert_eq!(messages, 2, "a done timer has both its messages");
                    done += 1;
                }
                status => {
                    assert_eq!(messages, 0, "a {status:?} timer has no message");
                    claimed += usize::from(status == TimerStatus::Claimed);
                }
            }
        }
    }
    (done, claimed)
}

/// Until a backend waits for a lock on `relation`. Each check is a query; nothing sleeps.
async fn waiting_on(pg: &grantflow_store_postgres::testing::TempPostgres, relation: &str) {
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE relation = $1::regclass AND NOT granted",
        )
        .bind(relation)
        .fetch_one(pg.store.pool())
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// Until no other backend holds a lock on `relation`.
async fn until_no_one_holds(pg: &grantflow_store_postgres::testing::TempPostgres, relation: &str) {
    loop {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE relation = $1::regclass \
             AND pid <> pg_backend_pid()",
        )
        .bind(relation)
        .fetch_one(pg.store.pool())
        .await
        .unwrap();
        if held == 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// Until a first batch has committed its messages.
async fn until_some_messages(store: &dyn Store) {
    while store.list_outbox(None, None, 1).await.unwrap().is_empty() {
        tokio::task::yield_now().await;
    }
}
