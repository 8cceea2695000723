//! Where writes run, and the write transaction.
//!
//! A store that queues its writers in the process (SQLite) keeps one writer connection
//! behind a fair async mutex: writers are served in arrival order, and handing the
//! connection to the next one is a mutex release. A pool of one did the same queueing,
//! but every hand-back went through a spawned task that pinged the connection first, and
//! the next writer waited for both. A store without one (PostgreSQL, which locks rows
//! instead) writes on a connection of its readers' pool.

use std::borrow::Cow;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{ConnectOptions, Connection, Database, TransactionManager};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// How a backend's connections are opened.
pub type ConnectOptionsOf<DB> = <<DB as Database>::Connection as Connection>::Options;

/// The one writer connection of a store, opened at the first write (and again after it
/// broke), then kept.
pub struct WriterConnection<DB: Database> {
    slot: Arc<Mutex<Option<DB::Connection>>>,
    options: Arc<ConnectOptionsOf<DB>>,
    /// How long a writer waits for its turn before giving up (`PoolTimedOut`).
    wait: Duration,
}

impl<DB: Database> Clone for WriterConnection<DB> {
    fn clone(&self) -> Self {
        WriterConnection {
            slot: Arc::clone(&self.slot),
            options: Arc::clone(&self.options),
            wait: self.wait,
        }
    }
}

impl<DB: Database> fmt::Debug for WriterConnection<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the options: they may hold a password.
        f.debug_struct("WriterConnection")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl<DB: Database> WriterConnection<DB> {
    pub fn new(options: ConnectOptionsOf<DB>, wait: Duration) -> Self {
        WriterConnection {
            slot: Arc::new(Mutex::new(None)),
            options: Arc::new(options),
            wait,
        }
    }

    /// Wait for this writer's turn (in arrival order: tokio's mutex is fair).
    pub async fn lock(&self) -> Result<WriteConn<DB>, sqlx::Error> {
        let mut guard = tokio::time::timeout(self.wait, Arc::clone(&self.slot).lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        if guard.is_none() {
            *guard = Some(self.options.connect().await?);
        }
        Ok(WriteConn::Queued(guard))
    }
}

/// The connection one write holds until it is done.
pub enum WriteConn<DB: Database> {
    /// From the readers' pool (no writer connection).
    Pooled(PoolConnection<DB>),
    /// The writer connection, held for this writer's turn.
    Queued(OwnedMutexGuard<Option<DB::Connection>>),
}

impl<DB: Database> WriteConn<DB> {
    /// After an error that may have left the connection unusable (I/O, a crashed worker,
    /// a protocol error), do not hand it to the next writer: the next one reconnects.
    fn forget_if_broken(&mut self, e: &sqlx::Error) {
        if !matches!(
            e,
            sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_)
        ) {
            return;
        }
        match self {
            WriteConn::Pooled(c) => c.close_on_drop(),
            WriteConn::Queued(guard) => **guard = None,
        }
    }
}

impl<DB: Database> Deref for WriteConn<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        match self {
            WriteConn::Pooled(c) => c,
            WriteConn::Queued(guard) => guard
                .as_ref()
                .expect("the writer connection is opened before it is handed out"),
        }
    }
}

impl<DB: Database> DerefMut for WriteConn<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match self {
            WriteConn::Pooled(c) => c,
            WriteConn::Queued(guard) => guard
                .as_mut()
                .expect("the writer connection is opened before it is handed out"),
        }
    }
}

/// A write transaction on a [`WriteConn`]: committed by [`WriteTx::commit`], rolled back
/// by [`WriteTx::rollback`] or when dropped (also when its future is cancelled), as
/// sqlx's own `Transaction` is.
pub struct WriteTx<DB: Database> {
    conn: WriteConn<DB>,
    /// Whether a transaction may be open on `conn` (a rollback with none open does
    /// nothing, so this is set before `BEGIN` is sent).
    open: bool,
}

impl<DB: Database> WriteTx<DB> {
    /// Begin a transaction on `conn` with `statement` (the backend's `BEGIN` when `None`).
    pub async fn begin(
        conn: WriteConn<DB>,
        statement: Option<&'static str>,
    ) -> Result<Self, sqlx::Error> {
        let mut tx = WriteTx { conn, open: true };
        if let Err(e) =
            DB::TransactionManager::begin(&mut tx.conn, statement.map(Cow::Borrowed)).await
        {
            tx.conn.forget_if_broken(&e);
            return Err(e);
        }
        Ok(tx)
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.end(true).await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.end(false).await
    }

    async fn end(mut self, commit: bool) -> Result<(), sqlx::Error> {
        let result = if commit {
            DB::TransactionManager::commit(&mut self.conn).await
        } else {
            DB::TransactionManager::rollback(&mut self.conn).await
        };
        match &result {
            Ok(()) => self.open = false,
            Err(e) => self.conn.forget_if_broken(e),
        }
        result
    }
}

impl<DB: Database> Drop for WriteTx<DB> {
    fn drop(&mut self) {
        if self.open {
            // Queued on the connection, so it runs before the next writer's statements.
            DB::TransactionManager::start_rollback(&mut self.conn);
        }
    }
}

impl<DB: Database> Deref for WriteTx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.conn
    }
}

impl<DB: Database> DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }
}
