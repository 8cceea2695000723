//! Timers fired in batches (issue 16), through whole schedulers on both backends: two
//! schedulers racing on one due set fire every timer once and lose none; the claims of a
//! scheduler that died mid-batch are taken over after their lease, and its late
//! completion is refused (fencing).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use grantflow_mail::message_id;
use grantflow_scheduler::{Scheduler, SchedulerSettings};
use grantflow_service::Services;
use grantflow_store::OutboxStatus;

use crate::common::{Backend, PUBLIC_URL, World, local};

const PROJECTS: usize = 24;

fn settings(batch_size: u32) -> SchedulerSettings {
    SchedulerSettings {
        batch_size,
        lease: Duration::from_secs(120),
        poll_interval: Duration::from_secs(30),
        digests: vec![],
        public_url: PUBLIC_URL.into(),
    }
}

fn scheduler(world: &World, services: Services, batch_size: u32) -> Scheduler {
    world.scheduler_with(services, settings(batch_size))
}

/// `PROJECTS` rectifications entered on Thursday 2025-09-25 10:00; their 3-working-day
/// reminders (to the two applicants who want mail at once) fall due together on 09-30.
async fn burst_world(backend: Backend) -> (World, DateTime<Utc>) {
    let world = World::new(backend, local("2025-09-25", "10:00")).await;
    for k in 0..PROJECTS {
        world.start("rectification", &format!("批量项目 {k}")).await;
    }
    (world, local("2025-09-30", "09:00"))
}

/// Every message the outbox holds arrived exactly once; how many there are.
async fn each_message_once(world: &World) -> usize {
    let outbox = world.store.list_outbox(None, None, 10_000).await.unwrap();
    let mut arrived: HashMap<String, usize> = HashMap::new();
    for m in world.received() {
        *arrived.entry(m.message_id).or_default() += 1;
    }
    assert_eq!(
        arrived.len(),
        outbox.len(),
        "one arrival per outbox message"
    );
    for m in &outbox {
        assert_eq!(m.status, OutboxStatus::Sent, "{}", m.idempotency_key);
        assert_eq!(
            arrived.get(&message_id(&m.idempotency_key)),
            Some(&1),
            "{} arrived once",
            m.idempotency_key
        );
    }
    outbox.len()
}

async fn two_schedulers_race_on_one_due_set(backend: Backend) {
    let (world, at) = burst_world(backend).await;
    world.clock.set(at);
    let due = world.store.queue_stats(at).await.unwrap().timers_due;
    assert!(due >= PROJECTS as i64, "{due} timers due");
    // Two processes (two connection pools), small batches so that they interleave.
    let one = scheduler(&world, world.services.clone(), 5);
    let two = scheduler(&world, world.second_services().await, 5);
    let (a, b) = tokio::join!(one.run_once(at), two.run_once(at));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a.timers_lost, b.timers_lost, a.timer_errors, b.timer_errors),
        (0, 0, 0, 0),
        "{a:?} {b:?}"
    );
    assert_eq!(
        (a.timers_fired + a.timers_spent + b.timers_fired + b.timers_spent) as i64,
        due,
        "every due timer completed by exactly one of them: {a:?} {b:?}"
    );
    let stats = world.store.queue_stats(at).await.unwrap();
    assert_eq!(
        (stats.timers_due, stats.timers_claimed),
        (0, 0),
        "none lost"
    );
    let enqueued = a.messages_enqueued + b.messages_enqueued;
    assert_eq!(enqueued, 2 * PROJECTS as u64, "two applicants per project");
    assert_eq!(each_message_once(&world).await as u64, enqueued);
    // Nothing left for a third pass.
    let again = world.run_at(&one, at + chrono::Duration::minutes(5)).await;
    assert_eq!((again.timers_fired, again.sent), (0, 0));
}

#[tokio::test]
async fn two_schedulers_race_on_one_due_set_sqlite() {
    two_schedulers_race_on_one_due_set(Backend::Sqlite).await;
}

#[tokio::test]
async fn two_schedulers_race_on_one_due_set_postgres() {
    two_schedulers_race_on_one_due_set(Backend::Postgres).await;
}

async fn a_dead_schedulers_claims_are_taken_over_and_its_completion_refused(backend: Backend) {
    let (world, at) = burst_world(backend).await;
    world.clock.set(at);
    let due = world.store.queue_stats(at).await.unwrap().timers_due;
    // A scheduler claimed a batch and died before completing it (SIGKILL, or its
    // transaction was dropped): its claims stay until their lease runs out.
    let lease = Duration::from_secs(120);
    let dead = world.store.claim_due_timers(at, 5, lease).await.unwrap();
    assert_eq!(dead.len(), 5);
    let live = scheduler(&world, world.services.clone(), 7);
    let first = world.run_at(&live, at).await;
    assert_eq!(
        (first.timers_fired + first.timers_spent) as i64,
        due - 5,
        "the dead scheduler's claims are left alone while leased: {first:?}"
    );
    let outbox = world.store.list_outbox(None, None, 10_000).await.unwrap();
    for c in &dead {
        let prefix = format!("timer:{}:", c.timer.id);
        assert!(
            outbox
                .iter()
                .all(|m| !m.idempotency_key.starts_with(&prefix)),
            "nothing of the dead batch is written"
        );
    }
    // After the lease the live scheduler takes them over, with new tokens.
    let later = at + chrono::Duration::seconds(121);
    let second = world.run_at(&live, later).await;
    assert_eq!(second.timers_fired + second.timers_spent, 5, "{second:?}");
    assert_eq!(second.timers_lost, 0);
    // The dead scheduler's completion comes too late: refused, nothing enqueued.
    let late = world
        .store
        .complete_timers(
            dead.iter().map(|c| (c.timer.id, c.token, vec![])).collect(),
            later,
        )
        .await
        .unwrap();
    assert_eq!(late, vec![false; 5], "stale tokens are fenced off");
    let stats = world.store.queue_stats(later).await.unwrap();
    assert_eq!((stats.timers_due, stats.timers_claimed), (0, 0));
    assert_eq!(
        each_message_once(&world).await as u64,
        first.messages_enqueued + second.messages_enqueued
    );
    assert_eq!(
        first.messages_enqueued + second.messages_enqueued,
        2 * PROJECTS as u64
    );
}

#[tokio::test]
async fn a_dead_schedulers_claims_are_taken_over_and_its_completion_refused_sqlite() {
    a_dead_schedulers_claims_are_taken_over_and_its_completion_refused(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_dead_schedulers_claims_are_taken_over_and_its_completion_refused_postgres() {
    a_dead_schedulers_claims_are_taken_over_and_its_completion_refused(Backend::Postgres).await;
}

/// A batch of reminders shares one SMTP connection when the scheduler sends them.
async fn the_outbox_batch_shares_one_smtp_connection(backend: Backend) {
    let (world, at) = burst_world(backend).await;
    let one = scheduler(&world, world.services.clone(), 100);
    let report = world.run_at(&one, at).await;
    assert_eq!(report.sent, 2 * PROJECTS as u64);
    let connections: std::collections::BTreeSet<u64> =
        world.received().iter().map(|m| m.connection).collect();
    assert_eq!(connections.len(), 1, "{connections:?}");
}

#[tokio::test]
async fn the_outbox_batch_shares_one_smtp_connection_sqlite() {
    the_outbox_batch_shares_one_smtp_connection(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_outbox_batch_shares_one_smtp_connection_postgres() {
    the_outbox_batch_shares_one_smtp_connection(Backend::Postgres).await;
}
