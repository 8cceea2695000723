//! The claims this process holds, so that a scheduler shutting down gives them back at
//! once ([`Scheduler::release_claims`]) instead of leaving other replicas to wait for
//! their leases to run out.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use uuid::Uuid;

use crate::{Scheduler, SchedulerError};

/// Held claims by id, with their fencing token.
#[derive(Debug, Default)]
pub(crate) struct Held {
    timers: HashMap<Uuid, i64>,
    messages: HashMap<Uuid, i64>,
}

pub(crate) fn lock(held: &Mutex<Held>) -> MutexGuard<'_, Held> {
    held.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Scheduler {
    pub(crate) fn hold_timers(&self, claims: impl IntoIterator<Item = (Uuid, i64)>) {
        lock(&self.held).timers.extend(claims);
    }

    /// The timer's claim ended (done, spent or lost): nothing to give back.
    pub(crate) fn let_go_timer(&self, id: Uuid) {
        lock(&self.held).timers.remove(&id);
    }

    pub(crate) fn hold_messages(&self, claims: impl IntoIterator<Item = (Uuid, i64)>) {
        lock(&self.held).messages.extend(claims);
    }

    pub(crate) fn let_go_message(&self, id: Uuid) {
        lock(&self.held).messages.remove(&id);
    }

    /// How many timers and messages this process holds claims on.
    pub fn held_claims(&self) -> (usize, usize) {
        let held = lock(&self.held);
        (held.timers.len(), held.messages.len())
    }

    /// Give back every claim this process still holds (a batch cut off by shutdown, a
    /// timer that failed): the rows are pending again for any replica. Returns how many
    /// rows were released (claims another process took over meanwhile are left alone).
    pub async fn release_claims(&self) -> Result<u64, SchedulerError> {
        let (timers, messages): (Vec<_>, Vec<_>) = {
            let mut held = lock(&self.held);
            (
                held.timers.drain().collect(),
                held.messages.drain().collect(),
            )
        };
        if timers.is_empty() && messages.is_empty() {
            return Ok(0);
        }
        Ok(self
            .services
            .store
            .release_claims(&timers, &messages)
            .await?)
    }
}
