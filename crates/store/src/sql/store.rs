//! [`Store`] for every [`SqlBackend`]: what is not one aggregate's (the backend's name,
//! migrations, readiness). Each aggregate's trait is implemented beside its SQL:
//! `accounts.rs`, `instances.rs` and `transitions.rs`, `queue.rs` (timers and outbox), `review/`, `programme.rs`.

use super::{Args, Dialect, Fail, SqlBackend, execute};
use crate::{Announcer, Applied, PoolStatus, Store, StoreResult, TransitionRequest};

#[async_trait::async_trait]
impl<S: SqlBackend> Store for S {
    fn backend(&self) -> &'static str {
        <S::D as Dialect>::BACKEND
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.run_migrations().await
    }

    async fn ping(&self) -> StoreResult<()> {
        // A read: on SQLite it must not queue behind the writers.
        super::fetch_optional::<S::D>(self.sql_pool(), "SELECT 1", Args::new())
            .await
            .map_err(Fail::store::<S::D>)?;
        Ok(())
    }

    async fn announce(&self, payload: &str) -> StoreResult<()> {
        if <S::D as Dialect>::BACKEND != "postgres" {
            return Ok(());
        }
        let sql = format!("SELECT pg_notify('{}', $1)", crate::EVENTS_CHANNEL);
        execute::<S::D>(self.sql_pool(), &sql, Args::new().text(payload))
            .await
            .map_err(Fail::store::<S::D>)?;
        Ok(())
    }

    async fn apply_transition_announced(
        &self,
        request: TransitionRequest<'_>,
        announce: &Announcer<'_>,
    ) -> StoreResult<Applied> {
        super::transitions::apply_transition_with::<S::D>(self.sql_pool(), request, Some(announce))
            .await
    }

    fn pool_status(&self) -> PoolStatus {
        let pool = self.sql_pool().readers();
        PoolStatus {
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        }
    }
}
