//! `Scheduler::run`, the loop inside `grantflow serve`: when it wakes, that a committed
//! transition wakes it early, and that it stops on shutdown.

use crate::common;

use std::time::Duration;

use common::{Backend, PUBLIC_URL, World, local, to};
use grantflow_scheduler::{DigestSchedule, SchedulerSettings};
use grantflow_service::FireEvent;

fn settings(poll: Duration, digests: Vec<DigestSchedule>) -> SchedulerSettings {
    SchedulerSettings {
        batch_size: 50,
        lease: Duration::from_secs(120),
        poll_interval: poll,
        digests,
        public_url: PUBLIC_URL.into(),
    }
}

async fn it_wakes_for_the_next_timer_or_digest_tick(backend: Backend) {
    let world = World::new(backend, local("2025-09-25", "10:00")).await;
    let day = Duration::from_secs(86_400);
    let scheduler = world.scheduler_with(world.services.clone(), settings(30 * day, vec![]));
    world.start("rectification", "项目甲").await;
    let now = local("2025-09-25", "10:00");
    // Nothing before the first reminder on 09-30 09:00.
    assert_eq!(
        scheduler.next_wake(now).await.unwrap(),
        local("2025-09-30", "09:00")
    );
    // A daily 09:00 digest wakes it on 09-26 first (rest days are skipped when it runs).
    let with_digest = world.scheduler_with(
        world.services.clone(),
        settings(
            30 * day,
            vec![DigestSchedule {
                name: "daily".into(),
                cron: "0 0 9 * * *".into(),
                horizon_days: 7,
                working_days_only: true,
            }],
        ),
    );
    assert_eq!(
        with_digest.next_wake(now).await.unwrap(),
        local("2025-09-26", "09:00")
    );
    // With nothing scheduled, the poll interval bounds the sleep.
    let short = world.scheduler_with(
        world.services.clone(),
        settings(Duration::from_secs(30), vec![]),
    );
    assert_eq!(
        short.next_wake(now).await.unwrap(),
        now + chrono::Duration::seconds(30)
    );
}

#[tokio::test]
async fn it_wakes_for_the_next_timer_or_digest_tick_sqlite() {
    it_wakes_for_the_next_timer_or_digest_tick(Backend::Sqlite).await;
}

#[tokio::test]
async fn it_wakes_for_the_next_timer_or_digest_tick_postgres() {
    it_wakes_for_the_next_timer_or_digest_tick(Backend::Postgres).await;
}

/// Waits (woken by each message the SMTP server stores) until `n` messages arrived; the
/// timeout only guards against a hang. The scheduler loop keeps running on the other
/// worker thread meanwhile.
async fn until_received(world: &World, n: usize) -> Vec<grantflow_mail::testkit::ReceivedEmail> {
    tokio::task::block_in_place(|| world.smtp.wait_for_messages(n, Duration::from_secs(30)))
}

async fn a_transition_wakes_the_loop_and_shutdown_stops_it(backend: Backend) {
    let world = World::new(backend, local("2025-06-09", "10:00")).await;
    let instance = world.start("correction", "专利导航服务项目").await;
    // Polling once a day and nothing due for a day: only the transition can wake it.
    let scheduler = world.scheduler_with(
        world.services.clone(),
        settings(Duration::from_secs(86_400), vec![]),
    );
    // The loop's first pass sends the 1wd reminders due at 06-10 09:00: once they have
    // arrived, the loop is asleep until the due-day reminder on 06-11.
    world.clock.set(local("2025-06-10", "09:00"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        scheduler
            .run(async move {
                let _ = stopped.await;
            })
            .await;
    });
    until_received(&world, 2).await;
    world.clock.set(local("2025-06-10", "09:05"));
    world
        .services
        .fire(
            &world.people.zhang,
            FireEvent {
                instance_id: instance.id,
                event: "resubmit".into(),
                expected_version: instance.version,
                idempotency_key: None,
                input: serde_json::json!({}),
                reason: None,
            },
        )
        .await
        .expect("resubmit");
    let received = until_received(&world, 4).await;
    let mut recipients: Vec<String> = received[2..].iter().map(to).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        vec![
            world.people.li.email.clone(),
            world.people.zhang.email.clone()
        ]
    );
    stop.send(()).expect("the loop is running");
    running.await.expect("the loop ends cleanly on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_wakes_the_loop_and_shutdown_stops_it_sqlite() {
    a_transition_wakes_the_loop_and_shutdown_stops_it(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_wakes_the_loop_and_shutdown_stops_it_postgres() {
    a_transition_wakes_the_loop_and_shutdown_stops_it(Backend::Postgres).await;
}
