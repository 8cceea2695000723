//! CPU-heavy work of a request (parsing an imported workbook, duplicate detection, writing
//! an export) runs on tokio's blocking threads, never on the async workers that answer
//! every other request (`/healthz` included), and at most [`WorkPool::permits`] jobs at
//! once; the others wait their turn without holding a thread.
//!
//! A job is handed a [`Cancel`]: when the request that started it is dropped (its timeout
//! ran out, the client went away), the flag is raised and the job stops at its next check
//! instead of running on to the end for nobody.

use std::sync::{Arc, Mutex};

use grantflow_programme::cancel::Cancel;
use grantflow_store::StoreError;
use tokio::sync::{Semaphore, watch};

use crate::{ServiceError, ServiceResult};

type Hook = Arc<dyn Fn(&Cancel) + Send + Sync>;

pub struct WorkPool {
    permits: usize,
    semaphore: Arc<Semaphore>,
    running: Arc<watch::Sender<usize>>,
    on_start: Mutex<Option<Hook>>,
}

impl Default for WorkPool {
    /// Half the cores (at least one): the other half keeps serving requests.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self::new((cores / 2).max(1))
    }
}

/// Raises the job's flag when the request's future is dropped (or done).
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Counts a job as running while it is alive on its blocking thread.
struct Running(Arc<watch::Sender<usize>>);

impl Running {
    fn start(counter: Arc<watch::Sender<usize>>) -> Self {
        counter.send_modify(|n| *n += 1);
        Self(counter)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl WorkPool {
    pub fn new(permits: usize) -> Self {
        Self {
            permits,
            semaphore: Arc::new(Semaphore::new(permits)),
            running: Arc::new(watch::channel(0).0),
            on_start: Mutex::new(None),
        }
    }

    /// How many jobs may run at once.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// The number of jobs running now, to wait on (tests wait for a cancelled job to end).
    pub fn running(&self) -> watch::Receiver<usize> {
        self.running.subscribe()
    }

    /// Calls `hook` with the job's flag on the blocking thread as each job starts, before
    /// its work: tests use it to hold a job in flight, watch the server answer meanwhile,
    /// and see the flag raised when the request is dropped.
    pub fn on_start(&self, hook: impl Fn(&Cancel) + Send + Sync + 'static) {
        *self.on_start.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(hook));
    }

    /// Runs `job` on a blocking thread once a permit is free; see the module docs.
    pub async fn run<T, F>(&self, job: F) -> ServiceResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Cancel) -> T + Send + 'static,
    {
        let permit = self
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ServiceError::Store(StoreError::Backend(format!("work pool: {e}"))))?;
        let cancel = Cancel::new();
        let _cancel_on_drop = CancelOnDrop(cancel.clone());
        let hook = self
            .on_start
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let running = self.running.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _running = Running::start(running);
            if let Some(hook) = hook {
                hook(&cancel);
            }
            job(&cancel)
        })
        .await
        .map_err(|e| ServiceError::Store(StoreError::Backend(format!("background work: {e}"))))
    }
}
