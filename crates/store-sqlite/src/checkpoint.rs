//! WAL checkpoints off the writer's path.
//!
//! SQLite's default moves the WAL back into the database file (a checkpoint: copy the
//! pages, fsync twice) inside whichever commit pushes the WAL past 1,000 pages. That
//! commit then takes ten times as long as the others, and every writer queued behind it
//! waits: in a burst of reminders one batch in six paid for it. Here a background task
//! checkpoints `PASSIVE` (never waiting for, nor blocking, readers and the writer) on a
//! reader connection once a second, and commits checkpoint themselves only past
//! [`WAL_BACKSTOP_PAGES`], should the task fall behind.

use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use tokio::task::JoinHandle;

/// How often the background task checkpoints.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// `wal_autocheckpoint` of every connection: a commit checkpoints itself only when the
/// WAL has grown past this many pages (40 MiB at 4 KiB) since the last checkpoint.
pub const WAL_BACKSTOP_PAGES: u32 = 10_000;

/// The background checkpointer of one store, stopped when the last clone of the store
/// is dropped.
#[derive(Debug)]
pub struct Checkpointer(JoinHandle<()>);

impl Checkpointer {
    pub fn start(pool: SqlitePool) -> Arc<Checkpointer> {
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECKPOINT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if pool.is_closed() {
                    return;
                }
                // A failure (the file went away, the disk is full) is the writers' to
                // report: they checkpoint themselves past the backstop.
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    tracing::debug!(error = %e, "background WAL checkpoint failed");
                }
            }
        });
        Arc::new(Checkpointer(task))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}
