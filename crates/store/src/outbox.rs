//! [`OutboxStore`]: the e-mail outbox and the cron ticks of digests.
//! Its SQL, the same for every backend, and its implementation for every `SqlBackend` are
//! in `crate::sql::queue` (feature `sql`); [`crate::Store`] is all the aggregates together.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    ClaimedMessage, DeliveryOutcome, NewOutboxMessage, OutboxMessage, OutboxStatus, StoreResult,
};

/// The e-mail outbox and the cron ticks of digests.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Enqueue messages; a key already present is skipped. Returns how many were new.
    async fn enqueue(&self, messages: Vec<NewOutboxMessage>) -> StoreResult<u64>;
    /// Claim messages whose next attempt is due (or whose lease ran out), with a token.
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedMessage>>;
    /// Record how an attempt ended; false when the token is stale.
    async fn finish_delivery(
        &self,
        id: Uuid,
        token: i64,
        outcome: DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn list_outbox(
        &self,
        status: Option<OutboxStatus>,
        instance_id: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxMessage>>;
    /// Record that `schedule` ticked at `tick_at` and enqueue its messages, in one
    /// transaction. False when that tick was already recorded (another process ran it).
    async fn record_tick(
        &self,
        schedule: &str,
        tick_at: DateTime<Utc>,
        messages: Vec<NewOutboxMessage>,
    ) -> StoreResult<bool>;
    async fn last_tick(&self, schedule: &str) -> StoreResult<Option<DateTime<Utc>>>;
}
