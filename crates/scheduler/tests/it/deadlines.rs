//! Deadlines that act: reminders on the right days across holidays, retries, dead
//! letters, an SMTP outage, deadline extensions and timeouts, on SQLite and PostgreSQL,
//! against a real SMTP server. Time only moves when the test moves the manual clock.

use crate::common;

use chrono::{Duration, NaiveDate};
use common::{Backend, PUBLIC_URL, World, local, to};
use grantflow_mail::message_id;
use grantflow_scheduler::RunReport;
use grantflow_store::{OutboxStatus, TimerStatus};

const TITLE: &str = "2025年度知识产权保护规范化市场培育项目";

fn addr(u: &grantflow_store::User) -> String {
    u.email.clone()
}

/// Every local day from `from` to `to` inclusive.
fn days(from: &str, to: &str) -> Vec<String> {
    let mut d = NaiveDate::parse_from_str(from, "%Y-%m-%d").unwrap();
    let end = NaiveDate::parse_from_str(to, "%Y-%m-%d").unwrap();
    let mut out = vec![];
    while d <= end {
        out.push(d.format("%Y-%m-%d").to_string());
        d += Duration::days(1);
    }
    out
}

async fn ladder_across_national_day(backend: Backend) {
    // Entered Thursday 2025-09-25 10:00. Seven working days: 26, 28 (make-up Sunday), 29,
    // 30, then National Day and Mid-Autumn (10-01..10-08) rest, 10-09, 10-10, 10-11 (make-up
    // Saturday) → due at the end of Saturday 2025-10-11.
    let world = World::new(backend, local("2025-09-25", "10:00")).await;
    let scheduler = world.scheduler(vec![]);
    let instance = world.start("rectification", TITLE).await;
    assert_eq!(
        instance.due_at,
        Some(local("2025-10-12", "00:00")),
        "7 working days from 09-25 across the holiday end on 10-11"
    );

    // Walk the calendar: each day one minute before the reminder hour and at it.
    let mut timeline = vec![];
    let mut seen = 0;
    for day in days("2025-09-25", "2025-10-16") {
        for time in ["08:59", "09:00"] {
            world.run_at(&scheduler, local(&day, time)).await;
            let received = world.received();
            for m in &received[seen..] {
                timeline.push((format!("{day} {time}"), to(m), m.subject.clone()));
            }
            seen = received.len();
        }
    }
    let p = &world.people;
    let want = vec![
        // 3 working days before 10-11: 10-10, 10-09, then back over the holiday to 09-30.
        (
            "2025-09-30 09:00",
            addr(&p.zhang),
            format!("【截止提醒】{TITLE}：整改还有 11 天截止"),
        ),
        (
            "2025-09-30 09:00",
            addr(&p.li),
            format!("[Reminder] {TITLE}: Rectification is due in 11 days"),
        ),
        (
            "2025-10-10 09:00",
            addr(&p.zhang),
            format!("【截止提醒】{TITLE}：整改还有 1 天截止"),
        ),
        (
            "2025-10-10 09:00",
            addr(&p.li),
            format!("[Reminder] {TITLE}: Rectification is due in 1 day"),
        ),
        (
            "2025-10-11 09:00",
            addr(&p.zhang),
            format!("【今日截止】{TITLE}：整改"),
        ),
        (
            "2025-10-11 09:00",
            addr(&p.li),
            format!("[Due today] {TITLE}: Rectification"),
        ),
        // One working day after Saturday 10-11 is Monday 10-13.
        (
            "2025-10-13 09:00",
            addr(&p.zhang),
            format!("【已逾期】{TITLE}：整改已逾期 2 天"),
        ),
        (
            "2025-10-13 09:00",
            addr(&p.li),
            format!("[Overdue] {TITLE}: Rectification is 2 days overdue"),
        ),
        (
            "2025-10-14 09:00",
            addr(&p.manager),
            format!("【逾期督办】佛山市知识产权保护中心：{TITLE}（整改）已逾期 3 天"),
        ),
        (
            "2025-10-14 09:00",
            addr(&p.zhang),
            format!("【已逾期】{TITLE}：整改已逾期 3 天"),
        ),
        (
            "2025-10-14 09:00",
            addr(&p.li),
            format!("[Overdue] {TITLE}: Rectification is 3 days overdue"),
        ),
    ];
    let mut got = timeline.clone();
    let mut want: Vec<(String, String, String)> = want
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b, c))
        .collect();
    // Within one instant the order of sending is not part of the contract.
    got.sort();
    want.sort();
    assert_eq!(got, want, "what arrived when");

    // Nobody who asked for the digest only, or for nothing, or who is not an assignee got
    // a reminder (the digest-only manager got the escalation, which always goes out).
    let received = world.received();
    for quiet in [&p.wang, &p.zhao, &p.city] {
        assert!(
            received.iter().all(|m| to(m) != quiet.email),
            "{} got mail",
            quiet.username
        );
    }

    // The first reminder in full: body, link, calendar attachment, Message-ID.
    let timers = world.store.timers_for_instance(instance.id).await.unwrap();
    let first = timers.iter().find(|t| t.key == "reminder:3wd").unwrap();
    assert_eq!(first.status, TimerStatus::Done);
    let zhang = received
        .iter()
        .find(|m| to(m) == p.zhang.email)
        .expect("张三's first reminder");
    assert_eq!(zhang.to[0].name.as_deref(), Some("张三"));
    assert_eq!(
        zhang.message_id,
        message_id(&format!("timer:{}:{}", first.id, p.zhang.id))
    );
    let text = zhang.text_body.as_deref().unwrap();
    assert!(text.starts_with("张三，您好"), "{text}");
    assert!(text.contains(&format!("项目：{TITLE}")), "{text}");
    assert!(
        text.contains("截止时间：2025年10月11日（星期六）"),
        "{text}"
    );
    assert!(text.contains("剩余天数：11 天"), "{text}");
    assert!(
        text.contains(&format!("{PUBLIC_URL}/instances/{}", instance.id)),
        "{text}"
    );
    let ics = zhang.ics.as_deref().expect("a calendar attachment");
    assert!(ics.contains("DTSTART:20251011T160000Z\r\n"), "{ics}");
    assert!(ics.contains("SUMMARY:截止："), "{ics}");
    assert!(
        zhang
            .ics_content_type
            .as_deref()
            .unwrap()
            .contains("method=PUBLISH")
    );
    let li = received.iter().find(|m| to(m) == p.li.email).unwrap();
    let text = li.text_body.as_deref().unwrap();
    assert!(
        text.contains("Deadline: Saturday, 11 October 2025"),
        "{text}"
    );

    let escalation = received.iter().find(|m| to(m) == p.manager.email).unwrap();
    let text = escalation.text_body.as_deref().unwrap();
    assert!(text.contains("提请省局项目管理处室督办"), "{text}");
    assert!(
        text.contains("逾期单位/人员：佛山市知识产权保护中心"),
        "{text}"
    );

    // Every timer of the ladder is spent, every message sent.
    assert!(
        timers.iter().all(|t| t.status == TimerStatus::Done),
        "{timers:?}"
    );
    let sent = world
        .store
        .list_outbox(Some(OutboxStatus::Sent), Some(instance.id), 100)
        .await
        .unwrap();
    assert_eq!(sent.len(), 11);
}

#[tokio::test]
async fn ladder_across_national_day_sqlite() {
    ladder_across_national_day(Backend::Sqlite).await;
}

#[tokio::test]
async fn ladder_across_national_day_postgres() {
    ladder_across_national_day(Backend::Postgres).await;
}

async fn spring_festival_reminders(backend: Backend) {
    // Entered Thursday 2026-02-12 15:00. Working days: 13, 14 (make-up Saturday), then the
    // Spring Festival (02-15..02-23) rest, 24, 25, 26, 27, 28 (make-up Saturday) → due
    // 2026-02-28. The 1-working-day reminder is on Friday 02-27, the 3-working-day one on
    // Wednesday 02-25.
    let world = World::new(backend, local("2026-02-12", "15:00")).await;
    let scheduler = world.scheduler(vec![]);
    world.start("rectification", TITLE).await;
    let mut arrivals = vec![];
    let mut seen = 0;
    for day in days("2026-02-12", "2026-02-28") {
        world.run_at(&scheduler, local(&day, "09:00")).await;
        let received = world.received();
        for m in &received[seen..] {
            if to(m) == world.people.zhang.email {
                arrivals.push((day.clone(), m.subject.clone()));
            }
        }
        seen = received.len();
    }
    assert_eq!(
        arrivals,
        vec![
            (
                "2026-02-25".to_string(),
                format!("【截止提醒】{TITLE}：整改还有 3 天截止")
            ),
            (
                "2026-02-27".to_string(),
                format!("【截止提醒】{TITLE}：整改还有 1 天截止")
            ),
            (
                "2026-02-28".to_string(),
                format!("【今日截止】{TITLE}：整改")
            ),
        ]
    );
}

#[tokio::test]
async fn spring_festival_reminders_sqlite() {
    spring_festival_reminders(Backend::Sqlite).await;
}

#[tokio::test]
async fn spring_festival_reminders_postgres() {
    spring_festival_reminders(Backend::Postgres).await;
}

async fn transient_failures_are_retried_and_permanent_ones_dead_lettered(backend: Backend) {
    let mut world = World::new(backend, local("2025-09-25", "10:00")).await;
    let scheduler = world.scheduler(vec![]);
    let instance = world.start("rectification", TITLE).await;

    // Two 451s, then the server accepts. Only 张三 and Li Si get the reminder: two
    // messages, so fail four DATA commands (two rounds).
    world
        .smtp
        .fail_next(4, 451, "Requested action aborted: try again later");
    let t0 = local("2025-09-30", "09:00");
    let r1 = world.run_at(&scheduler, t0).await;
    assert_eq!((r1.sent, r1.retried), (0, 2), "{r1:?}");
    let pending = world
        .store
        .list_outbox(Some(OutboxStatus::Pending), Some(instance.id), 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 2);
    let retry_at = pending[0].next_attempt_at;
    assert_eq!(
        retry_at,
        t0 + Duration::seconds(30),
        "first retry after 30 s"
    );
    assert!(pending[0].last_error.as_deref().unwrap().contains("451"));

    // Not before the retry time.
    let early = world
        .run_at(&scheduler, retry_at - Duration::seconds(1))
        .await;
    assert_eq!(early, RunReport::default());
    let r2 = world.run_at(&scheduler, retry_at).await;
    assert_eq!((r2.sent, r2.retried), (0, 2), "{r2:?}");
    let pending = world
        .store
        .list_outbox(Some(OutboxStatus::Pending), Some(instance.id), 10)
        .await
        .unwrap();
    let retry_at2 = pending[0].next_attempt_at;
    assert_eq!(
        retry_at2,
        retry_at + Duration::seconds(60),
        "the delay doubles"
    );
    let r3 = world.run_at(&scheduler, retry_at2).await;
    assert_eq!((r3.sent, r3.retried, r3.dead), (2, 0, 0), "{r3:?}");
    let received = world.received();
    assert_eq!(received.len(), 2, "each message arrives once");
    assert_ne!(received[0].message_id, received[1].message_id);
    let sent = world
        .store
        .list_outbox(Some(OutboxStatus::Sent), Some(instance.id), 10)
        .await
        .unwrap();
    assert!(sent.iter().all(|m| m.attempts == 3), "{sent:?}");

    // A 550 is final: the next reminders go to the dead letters with the server's words.
    world.smtp.always_fail(550);
    let r4 = world.run_at(&scheduler, local("2025-10-10", "09:00")).await;
    assert_eq!((r4.sent, r4.dead), (0, 2), "{r4:?}");
    let dead = world
        .store
        .list_outbox(Some(OutboxStatus::Dead), None, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 2);
    assert!(
        dead.iter()
            .all(|m| m.last_error.as_deref().unwrap().contains("550")),
        "{dead:?}"
    );
    // Dead letters are not retried.
    world.smtp.accept_all();
    let later = world.run_at(&scheduler, local("2025-10-10", "12:00")).await;
    assert_eq!(later.sent, 0);
    assert_eq!(world.received().len(), 2);
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_dead_lettered_sqlite() {
    transient_failures_are_retried_and_permanent_ones_dead_lettered(Backend::Sqlite).await;
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_dead_lettered_postgres() {
    transient_failures_are_retried_and_permanent_ones_dead_lettered(Backend::Postgres).await;
}

async fn reminders_due_while_smtp_is_down_arrive_after_it_returns(backend: Backend) {
    let mut world = World::new(backend, local("2025-09-25", "10:00")).await;
    let scheduler = world.scheduler(vec![]);
    let a = world.start("rectification", "项目甲").await;
    let b = world.start("rectification", "项目乙").await;

    world.smtp.stop();
    // Down from 09-30 to 10-10: the 3wd reminders (09-30) and the 1wd ones (10-10) fall due
    // meanwhile, and the scheduler keeps trying at its retry instants.
    let mut at = local("2025-09-30", "09:00");
    let mut passes = 0;
    while at <= local("2025-10-10", "09:00") {
        let r = world.run_at(&scheduler, at).await;
        assert_eq!(r.sent, 0);
        assert_eq!(r.dead, 0, "a refused connection is not a dead letter");
        passes += 1;
        at += Duration::hours(6);
    }
    assert!(passes > 10);
    let timers_fired: usize = {
        let mut n = 0;
        for i in [a.id, b.id] {
            n += world
                .store
                .timers_for_instance(i)
                .await
                .unwrap()
                .iter()
                .filter(|t| t.status == TimerStatus::Done)
                .count();
        }
        n
    };
    assert_eq!(timers_fired, 4, "both reminders of both projects fired");
    assert!(world.received().is_empty());

    world.smtp.restart();
    // The backoff is at most an hour: one pass an hour later delivers the backlog.
    world.run_at(&scheduler, local("2025-10-10", "10:05")).await;
    let received = world.received();
    assert_eq!(received.len(), 8, "2 projects × 2 reminders × 2 recipients");
    let mut ids: Vec<&str> = received.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "no duplicates");
    for title in ["项目甲", "项目乙"] {
        for days in [11, 1] {
            let subject = format!("【截止提醒】{title}：整改还有 {days} 天截止");
            assert!(
                received.iter().any(|m| m.subject == subject),
                "missing {subject}"
            );
        }
    }
    assert!(
        world
            .store
            .list_outbox(Some(OutboxStatus::Pending), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn reminders_due_while_smtp_is_down_arrive_after_it_returns_sqlite() {
    reminders_due_while_smtp_is_down_arrive_after_it_returns(Backend::Sqlite).await;
}

#[tokio::test]
async fn reminders_due_while_smtp_is_down_arrive_after_it_returns_postgres() {
    reminders_due_while_smtp_is_down_arrive_after_it_returns(Backend::Postgres).await;
}

async fn after_an_extension_old_reminders_never_fire_and_new_ones_do(backend: Backend) {
    let world = World::new(backend, local("2025-09-25", "10:00")).await;
    let scheduler = world.scheduler(vec![]);
    let instance = world.start("rectification", TITLE).await;
    // The 3wd reminder of 09-30 goes out.
    world.run_at(&scheduler, local("2025-09-30", "09:00")).await;
    assert_eq!(world.received().len(), 2);

    // On 10-09 the manager moves the deadline from 10-11 to Friday 10-24.
    world.clock.set(local("2025-10-09", "15:00"));
    let manager = &world.people.manager;
    let current = world.store.get_instance(instance.id).await.unwrap();
    world
        .services
        .extend_deadline(
            manager,
            instance.id,
            current.version,
            NaiveDate::from_ymd_opt(2025, 10, 24).unwrap(),
            "专家意见需补充检测报告",
        )
        .await
        .expect("extend");

    // Walk to the end of October: nothing on the old dates (10-10, 10-11, 10-13, 10-14),
    // the new ladder on its dates: 3wd before 10-24 = 10-21, 1wd = 10-23, due 10-24.
    let mut arrivals = vec![];
    let mut seen = world.received().len();
    for day in days("2025-10-10", "2025-10-24") {
        world.run_at(&scheduler, local(&day, "09:00")).await;
        let received = world.received();
        for m in &received[seen..] {
            if to(m) == world.people.zhang.email {
                arrivals.push((day.clone(), m.subject.clone()));
            }
        }
        seen = received.len();
    }
    assert_eq!(
        arrivals,
        vec![
            (
                "2025-10-21".to_string(),
                format!("【截止提醒】{TITLE}：整改还有 3 天截止")
            ),
            (
                "2025-10-23".to_string(),
                format!("【截止提醒】{TITLE}：整改还有 1 天截止")
            ),
            (
                "2025-10-24".to_string(),
                format!("【今日截止】{TITLE}：整改")
            ),
        ]
    );
    let timers = world.store.timers_for_instance(instance.id).await.unwrap();
    let old_1wd = timers
        .iter()
        .find(|t| t.key == "reminder:1wd" && t.due_at == Some(local("2025-10-12", "00:00")))
        .expect("the old 1wd reminder");
    assert_eq!(old_1wd.status, TimerStatus::Cancelled);
    // The new reminder carries the moved deadline in its calendar entry.
    let last = world
        .received()
        .into_iter()
        .rev()
        .find(|m| to(m) == world.people.zhang.email)
        .unwrap();
    assert!(last.ics.unwrap().contains("DTSTART:20251024T160000Z"));
}

#[tokio::test]
async fn after_an_extension_old_reminders_never_fire_and_new_ones_do_sqlite() {
    after_an_extension_old_reminders_never_fire_and_new_ones_do(Backend::Sqlite).await;
}

#[tokio::test]
async fn after_an_extension_old_reminders_never_fire_and_new_ones_do_postgres() {
    after_an_extension_old_reminders_never_fire_and_new_ones_do(Backend::Postgres).await;
}

async fn a_timeout_fires_through_the_engine_as_the_scheduler(backend: Backend) {
    // Entered Monday 2025-06-09 10:00; 2 working days → due at the end of 06-11.
    let world = World::new(backend, local("2025-06-09", "10:00")).await;
    let scheduler = world.scheduler(vec![]);
    let instance = world.start("correction", "专利导航服务项目").await;
    // One second before the deadline: still open.
    let r = world.run_at(&scheduler, local("2025-06-11", "23:59")).await;
    assert_eq!(r.events_fired, 0);
    assert_eq!(
        world.store.get_instance(instance.id).await.unwrap().state,
        "correcting"
    );
    let r = world.run_at(&scheduler, local("2025-06-12", "00:00")).await;
    assert_eq!(r.events_fired, 1, "{r:?}");
    let after = world.store.get_instance(instance.id).await.unwrap();
    assert_eq!(after.state, "lapsed");
    let history = world.store.history(instance.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (last.event.as_str(), last.actor_id.as_str()),
        ("lapse", "scheduler")
    );

    // The transition's timeout notice goes to the applicants and the manager who want
    // immediate mail: 张三 and Li Si (the manager wants the digest only).
    let received = world.received();
    let notices: Vec<_> = received
        .iter()
        .filter(|m| m.subject.starts_with("【超时处理】") || m.subject.starts_with("[Timed out]"))
        .collect();
    assert_eq!(notices.len(), 2, "{notices:#?}");
    let zhang = notices
        .iter()
        .find(|m| to(m) == world.people.zhang.email)
        .expect("张三's notice");
    assert_eq!(zhang.subject, "【超时处理】专利导航服务项目：补正材料");
    let text = zhang.text_body.as_deref().unwrap();
    assert!(text.contains("逾期未补正"), "{text}");
    let li = notices
        .iter()
        .find(|m| to(m) == world.people.li.email)
        .expect("Li Si's notice");
    assert_eq!(li.subject, "[Timed out] 专利导航服务项目: Correction");
    assert!(
        world
            .store
            .list_outbox(Some(OutboxStatus::Dead), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A second pass at the same instant has nothing to do.
    let again = world.run_at(&scheduler, local("2025-06-12", "00:00")).await;
    assert_eq!(again, RunReport::default());
}

#[tokio::test]
async fn a_timeout_fires_through_the_engine_as_the_scheduler_sqlite() {
    a_timeout_fires_through_the_engine_as_the_scheduler(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_timeout_fires_through_the_engine_as_the_scheduler_postgres() {
    a_timeout_fires_through_the_engine_as_the_scheduler(Backend::Postgres).await;
}

async fn transition_notifications_are_rendered_in_each_readers_language(backend: Backend) {
    let world = World::new(backend, local("2025-06-09", "10:00")).await;
    let scheduler = world.scheduler(vec![]);
    let instance = world.start("correction", "专利导航服务项目").await;
    world.clock.set(local("2025-06-10", "14:30"));
    world
        .services
        .fire(
            &world.people.zhang,
            grantflow_service::FireEvent {
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
    let r = world.run_at(&scheduler, local("2025-06-10", "14:31")).await;
    assert_eq!((r.sent, r.dead), (2, 0), "{r:?}");
    let received = world.received();
    let zhang = received
        .iter()
        .find(|m| to(m) == world.people.zhang.email)
        .unwrap();
    assert_eq!(zhang.subject, "【项目动态】专利导航服务项目：重新提交");
    let text = zhang.text_body.as_deref().unwrap();
    assert!(text.contains("张三"), "the actor is named: {text}");
    assert!(
        text.contains(&format!("{PUBLIC_URL}/instances/{}", instance.id)),
        "{text}"
    );
    let li = received
        .iter()
        .find(|m| to(m) == world.people.li.email)
        .unwrap();
    assert_eq!(li.subject, "[Project update] 专利导航服务项目: Resubmit");
    let text = li.text_body.as_deref().unwrap();
    assert!(text.contains("By: 张三"), "{text}");
    // The reminders of the state that was left never go out.
    let later = world.run_at(&scheduler, local("2025-06-12", "09:00")).await;
    assert_eq!(later, RunReport::default());
}

#[tokio::test]
async fn transition_notifications_are_rendered_in_each_readers_language_sqlite() {
    transition_notifications_are_rendered_in_each_readers_language(Backend::Sqlite).await;
}

#[tokio::test]
async fn transition_notifications_are_rendered_in_each_readers_language_postgres() {
    transition_notifications_are_rendered_in_each_readers_language(Backend::Postgres).await;
}
