//! [`TimerStore`]: deadline timers, claimed with a lease and a fencing token and
//! completed once.
//! Its SQL, the same for every backend, and its implementation for every `SqlBackend` are
//! in `crate::sql::queue` (feature `sql`); [`crate::Store`] is all the aggregates together.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{ClaimedTimer, NewOutboxMessage, QueueStats, StoreResult, Timer};

/// Deadline timers: claimed with a lease and a fencing token, completed once.
#[async_trait]
pub trait TimerStore: Send + Sync {
    async fn timers_for_instance(&self, instance_id: Uuid) -> StoreResult<Vec<Timer>>;
    /// Claim up to `limit` pending timers due at `now`, or claimed ones whose lease ran
    /// out. Each claim gets a new fencing token; two processes never hold the same timer.
    async fn claim_due_timers(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedTimer>>;
    /// Mark a claimed timer done and enqueue its messages, in one transaction. Returns
    /// false (and changes nothing) when the token is stale.
    async fn complete_timer(
        &self,
        timer_id: Uuid,
        token: i64,
        messages: Vec<NewOutboxMessage>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// [`TimerStore::complete_timer`] for a batch of claimed timers, in one transaction
    /// on the SQL stores (one fenced update of the timers, one insert of their messages):
    /// each `(id, token, messages)` is completed, and its messages enqueued, only if the
    /// token still holds. Returns, in order, whether each was completed. This default
    /// completes them one by one.
    async fn complete_timers(
        &self,
        batch: Vec<(Uuid, i64, Vec<NewOutboxMessage>)>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<bool>> {
        let mut done = Vec::with_capacity(batch.len());
        for (id, token, messages) in batch {
            done.push(self.complete_timer(id, token, messages, now).await?);
        }
        Ok(done)
    }
    /// The earliest pending fire time, to know how long the scheduler may wait.
    async fn next_timer_at(&self) -> StoreResult<Option<DateTime<Utc>>>;
    async fn pending_timer_count(&self) -> StoreResult<i64>;
    /// Timers and outbox messages by status at `now` (for `/metrics`).
    async fn queue_stats(&self, now: DateTime<Utc>) -> StoreResult<QueueStats>;
    /// Give claims back before their lease runs out (a scheduler shutting down): each
    /// `(id, token)` still held with that token becomes pending again at once, a message
    /// without counting the attempt it did not make. Returns how many were released.
    async fn release_claims(
        &self,
        timers: &[(Uuid, i64)],
        messages: &[(Uuid, i64)],
    ) -> StoreResult<u64>;
}
