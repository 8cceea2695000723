//! Digests on cron schedules: who gets one and what it lists, missed ticks coalesced,
//! rest days skipped, and each tick sent once when two schedulers race for it.

use crate::common;

use std::collections::HashMap;

use common::{Backend, World, local, to};
use grantflow_scheduler::DigestSchedule;

fn daily() -> DigestSchedule {
    DigestSchedule {
        name: "daily".into(),
        cron: "0 0 9 * * *".into(),
        horizon_days: 10,
        working_days_only: true,
    }
}

/// Two projects of the unit: one overdue since 05-29, one due on 06-17.
async fn two_projects(world: &World) {
    // Entered Tuesday 2025-05-20: 7 working days → due Thursday 05-29.
    world.clock.set(local("2025-05-20", "10:00"));
    world.start("rectification", "逾期的项目").await;
    // Entered Friday 2025-06-06: 7 working days → due Tuesday 06-17.
    world.clock.set(local("2025-06-06", "10:00"));
    world.start("rectification", "将到期的项目").await;
}

async fn missed_ticks_coalesce_into_one_digest(backend: Backend) {
    let world = World::new(backend, local("2025-05-20", "10:00")).await;
    two_projects(&world).await;
    let scheduler = world.scheduler(vec![daily()]);
    let p = &world.people;
    let digests = |from: usize| -> Vec<_> {
        world.received()[from..]
            .iter()
            .filter(|m| m.subject.starts_with("【待办汇总】") || m.subject.starts_with("[Digest]"))
            .cloned()
            .collect()
    };

    // The first pass on Monday 06-09 09:30 sends the 09:00 digest.
    let r = world.run_at(&scheduler, local("2025-06-09", "09:30")).await;
    assert_eq!((r.digest_ticks, r.digest_messages), (1, 3), "{r:?}");
    let first = digests(0);
    let mut recipients: Vec<String> = first.iter().map(to).collect();
    recipients.sort();
    // The applicants who want mail (immediate or digest only); not 赵六 (nothing), not the
    // city bureau and the manager, who hold no role in the current state.
    let mut want = vec![
        p.li.email.clone(),
        p.wang.email.clone(),
        p.zhang.email.clone(),
    ];
    want.sort();
    assert_eq!(recipients, want);
    let zhang = first.iter().find(|m| to(m) == p.zhang.email).unwrap();
    assert_eq!(zhang.subject, "【待办汇总】未来 7 天到期 1 项，已逾期 1 项");
    let text = zhang.text_body.as_deref().unwrap();
    assert!(text.contains("逾期的项目"), "{text}");
    assert!(text.contains("将到期的项目"), "{text}");
    // 05-29 → 06-09 is 11 days; 06-09 → 06-17 is 8.
    assert!(text.contains("11"), "{text}");
    assert!(text.contains("8"), "{text}");
    assert!(zhang.ics.is_none(), "a digest has no single deadline");
    let li = first.iter().find(|m| to(m) == p.li.email).unwrap();
    assert_eq!(li.subject, "[Digest] 1 due in the next 7 days, 1 overdue");

    // Down from Tuesday to Thursday noon: the ticks of 06-10, 06-11 and 06-12 coalesce into
    // one digest per user, Thursday's.
    let seen = world.received().len();
    let r = world.run_at(&scheduler, local("2025-06-12", "12:00")).await;
    assert_eq!((r.digest_ticks, r.digest_messages), (1, 3), "{r:?}");
    assert_eq!(digests(seen).len(), 3);
    assert_eq!(
        world.store.last_tick("daily").await.unwrap(),
        Some(local("2025-06-12", "09:00"))
    );
    // Nothing more at the same tick, and nothing on Saturday (a rest day).
    let seen = world.received().len();
    world.run_at(&scheduler, local("2025-06-12", "18:00")).await;
    world.run_at(&scheduler, local("2025-06-14", "09:00")).await;
    assert!(digests(seen).is_empty());
    // Monday again.
    let r = world.run_at(&scheduler, local("2025-06-16", "09:00")).await;
    assert_eq!(r.digest_ticks, 1);
    assert_eq!(digests(seen).len(), 3);
}

#[tokio::test]
async fn missed_ticks_coalesce_into_one_digest_sqlite() {
    missed_ticks_coalesce_into_one_digest(Backend::Sqlite).await;
}

#[tokio::test]
async fn missed_ticks_coalesce_into_one_digest_postgres() {
    missed_ticks_coalesce_into_one_digest(Backend::Postgres).await;
}

async fn racing_schedulers_send_each_tick_and_reminder_once(backend: Backend) {
    let world = World::new(backend, local("2025-05-20", "10:00")).await;
    two_projects(&world).await;
    // Two schedulers with their own connection pools, as two processes would have.
    let one = world.scheduler(vec![daily()]);
    let two = world.scheduler_on(world.second_services().await, vec![daily()]);

    let mut ticks = 0;
    let mut timers = 0;
    let mut spent = 0;
    for day in [
        "2025-06-09",
        "2025-06-10",
        "2025-06-11",
        "2025-06-12",
        "2025-06-13",
        "2025-06-16",
        "2025-06-17",
    ] {
        let at = local(day, "09:00");
        world.clock.set(at);
        let (a, b) = tokio::join!(one.run_once(at), two.run_once(at));
        let (a, b) = (a.unwrap(), b.unwrap());
        ticks += a.digest_ticks + b.digest_ticks;
        timers += a.timers_fired + b.timers_fired;
        spent += a.timers_spent + b.timers_spent;
    }
    assert_eq!(ticks, 7, "each working day's tick recorded once");
    // The overdue project's two overdue reminders and its escalation (late, at the first
    // pass; its reminders before the deadline are spent unsent), and the 06-06 project's
    // 3wd (06-12), 1wd (06-16) and due (06-17) timers.
    assert_eq!((timers, spent), (6, 3));

    let received = world.received();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for m in &received {
        *by_id.entry(m.message_id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = by_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let digests = received
        .iter()
        .filter(|m| m.subject.starts_with("【待办汇总】") || m.subject.starts_with("[Digest]"))
        .count();
    assert_eq!(digests, 7 * 3);
    let reminders = received.len() - digests;
    assert_eq!(
        reminders,
        5 * 2 + 1,
        "5 timers × 张三 and Li Si, 1 escalation to the manager"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_schedulers_send_each_tick_and_reminder_once_sqlite() {
    racing_schedulers_send_each_tick_and_reminder_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_schedulers_send_each_tick_and_reminder_once_postgres() {
    racing_schedulers_send_each_tick_and_reminder_once(Backend::Postgres).await;
}
