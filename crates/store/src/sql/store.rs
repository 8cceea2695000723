//! [`Store`] for every [`SqlBackend`]: what is not one aggregate's (the backend's name,
//! migrations, readiness). Each aggregate's trait is implemented beside its SQL:
//! `accounts.rs`, `instances.rs`, `queue.rs` (timers and outbox), `review/`, `programme.rs`.

use super::{Args, Dialect, Fail, SqlBackend, execute};
use crate::{Store, StoreResult};

#[async_trait::async_trait]
impl<S: SqlBackend> Store for S {
    fn backend(&self) -> &'static str {
        <S::D as Dialect>::BACKEND
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.run_migrations().await
    }

    async fn ping(&self) -> StoreResult<()> {
        execute::<S::D>(self.sql_pool(), "SELECT 1", Args::new())
            .await
            .map_err(Fail::store::<S::D>)?;
        Ok(())
    }
}
