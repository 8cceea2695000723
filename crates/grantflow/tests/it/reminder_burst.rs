//! A burst of 1,000 due reminders with three `grantflow serve` replicas on one PostgreSQL
//! database, and one replica SIGKILLed in the middle of it: every reminder reaches the SMTP
//! server (aiosmtpd on loopback, counted by Message-ID), duplicates ≤ kills, none lost.
//!
//! The 1,000 reminder timers were planned by a manual clock three days ago (a reminder the
//! day after entry, of a deadline a month away), so they are all due, and still worth
//! sending, the moment the replicas start. The test waits on messages arriving (the SMTP server
//! wakes it per message) and, for the end, on the database saying that no timer and no
//! message is left to send; the bound on each wait only stops a hang. The killed
//! replica's claims run out after the 10 s lease, and the survivors take them over. (This
//! test found claims born expired: a pass leased its claims from the pass's start, so
//! after a burst had kept it busy longer than the lease, other replicas took its new
//! claims over at once and about 150 of 1,000 messages went twice.)

use crate::support;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::StreamExt;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::{Registry, load_str};
use grantflow_mail::message_id;
use grantflow_mail::testkit::SmtpTestServer;
use grantflow_service::{CreateInstance, ManualClock, Services};
use grantflow_store::{Lang, NewOrganisation, NewUser, NotifyPref, OrgKind, Role, UserPatch};
use support::{HANG_GUARD, Server};

/// Bounds the wait for the first messages of the burst.
const START_GUARD: std::time::Duration = std::time::Duration::from_secs(60);

const REMINDERS: usize = 1_000;

/// One state with one reminder 29 days before a 30-day deadline: a single timer per
/// instance, nothing else to fire.
const WORKFLOW: &str = r#"
id = "burst"
version = 1
title = { "zh-CN" = "提醒压测", en = "Reminder burst" }
remind_at = "09:00"

[[roles]]
id = "applicant"
title = { "zh-CN" = "承担单位", en = "Project unit" }

[[stages]]
id = "work"
title = { "zh-CN" = "办理", en = "Work" }

[[states]]
id = "open"
title = { "zh-CN" = "待办", en = "Open" }
stage = "work"
initial = true
assignees = ["applicant"]
deadline = { after = "30d", reminders = { before = ["29d"] } }

[[states]]
id = "done"
title = { "zh-CN" = "已办", en = "Done" }
stage = "work"
final = true

[[transitions]]
event = "finish"
title = { "zh-CN" = "办结", en = "Finish" }
from = "open"
to = "done"
roles = ["applicant"]
"#;

/// `REMINDERS` instances entered three days ago, each with one reminder due since the day
/// after for one applicant who wants every reminder at once (a reminder of a deadline that
/// has passed is not sent: the deadline is still a month away).
async fn populate(db: &grantflow_store_postgres::testing::TempPostgres) {
    let store = db.shared();
    let mut registry = Registry::default();
    registry
        .insert(
            load_str("burst.toml", WORKFLOW)
                .workflow
                .expect("valid workflow"),
        )
        .unwrap();
    let services = Services::new(
        store.clone(),
        Arc::new(registry),
        Arc::new(WorkCalendar::builtin()),
        Arc::new(ManualClock::new(Utc::now() - chrono::Duration::days(3))),
    );
    services.register_workflows().await.unwrap();
    let city = store
        .create_org(NewOrganisation {
            name: "佛山市市场监督管理局".into(),
            kind: OrgKind::City,
            parent_id: None,
        })
        .await
        .unwrap();
    let unit = store
        .create_org(NewOrganisation {
            name: "佛山市知识产权保护中心".into(),
            kind: OrgKind::Unit,
            parent_id: Some(city.id),
        })
        .await
        .unwrap();
    let user = store
        .create_user(NewUser {
            username: "zhang".into(),
            display_name: "张".into(),
            email: "zhang@example.gov.cn".into(),
            org_id: Some(unit.id),
            roles: vec![Role::Applicant],
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            lang: Lang::ZhCn,
        })
        .await
        .unwrap();
    let user = store
        .update_user(
            user.id,
            UserPatch {
                notify_pref: Some(NotifyPref::Immediate),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    futures::stream::iter(0..REMINDERS)
        .map(|i| {
            let (services, user) = (services.clone(), user.clone());
            async move {
                services
                    .create_instance(
                        &user,
                        CreateInstance {
                            workflow_id: "burst".into(),
                            org_id: None,
                            parent_id: None,
                            title: format!("提醒 {i:04}"),
                            data: serde_json::json!({}),
                            call_id: None,
                            catalogue_item: None,
                        },
                    )
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(8)
        .count()
        .await;
}

fn write_config(dir: &Path, database_url: &str, smtp: &SmtpTestServer) -> std::path::PathBuf {
    let workflows = dir.join("workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::write(workflows.join("burst.toml"), WORKFLOW).unwrap();
    let path = dir.join("grantflow.toml");
    std::fs::write(
        &path,
        format!(
            r#"database_url = "{database_url}"
listen = "127.0.0.1:0"
workflows_dir = "{workflows}"
public_url = "https://ip.example.gov.cn"

[mail]
transport = "smtp"
host = "127.0.0.1"
port = {port}
security = "none"
from = {{ name = "广东省知识产权项目管理系统", address = "noreply@grantflow.test" }}
timeout_secs = 10

[scheduler]
batch_size = 5
lease_secs = 10
poll_interval_secs = 1
digests = []
"#,
            workflows = workflows.display(),
            port = smtp.port(),
        ),
    )
    .unwrap();
    path
}

/// Timers not yet done and messages not yet sent (or dead-lettered).
async fn unsettled(db: &grantflow_store_postgres::testing::TempPostgres) -> i64 {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM timers WHERE status IN ('pending', 'claimed')) \
              + (SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending'))",
    )
    .fetch_one(db.store.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_reminders_survives_a_replica_killed_mid_burst() {
    let db = grantflow_store_postgres::testing::TempPostgres::new().await;
    populate(&db).await;
    let timers: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM timers")
        .fetch_all(db.store.pool())
        .await
        .unwrap();
    let user: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = 'zhang'")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    let expected: HashSet<String> = timers
        .iter()
        .map(|t| message_id(&format!("timer:{t}:{user}")))
        .collect();
    assert_eq!(expected.len(), REMINDERS, "one reminder timer per instance");

    let smtp = SmtpTestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &db.url(), &smtp);
    let started = Instant::now();
    let replicas: Vec<Server> = (0..3).map(|_| Server::start(&config, &[], &[])).collect();

    // Mid-burst: some reminders out, most still to go. Kill the second replica.
    let at_kill = match smtp.wait_until_count(START_GUARD, |n| n >= REMINDERS / 5) {
        Ok(n) => n,
        Err(n) => {
            let first = replicas.into_iter().next().unwrap();
            first.signal("KILL");
            panic!(
                "the burst never started ({n} sent): {}",
                first.wait_exit().1
            );
        }
    };
    let mut replicas = replicas.into_iter();
    let (first, victim, third) = (
        replicas.next().unwrap(),
        replicas.next().unwrap(),
        replicas.next().unwrap(),
    );
    victim.signal("KILL");
    let (status, _) = victim.wait_exit();
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9));
    }
    let kills = 1;
    let after_kill = smtp.received_count();
    assert!(
        after_kill < REMINDERS,
        "killed mid-burst ({at_kill} when the kill was decided, {after_kill} after it)"
    );

    // Every reminder at least once, then nothing left to send anywhere.
    smtp.wait_until_count(HANG_GUARD, |n| n >= REMINDERS)
        .unwrap_or_else(|n| panic!("only {n} of {REMINDERS} reminders arrived"));
    let settle_from = Instant::now();
    while unsettled(&db).await > 0 {
        assert!(
            settle_from.elapsed() < HANG_GUARD,
            "timers or messages left unsent"
        );
        tokio::task::yield_now().await;
    }
    let elapsed = started.elapsed();

    let received = smtp.received();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for m in &received {
        *by_id.entry(m.message_id.clone()).or_default() += 1;
    }
    let delivered: HashSet<String> = by_id.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&delivered).collect();
    assert!(
        missing.is_empty(),
        "{} reminders lost: {missing:?}",
        missing.len()
    );
    assert_eq!(delivered, expected, "nothing but the reminders");
    let duplicates: usize = by_id.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= kills,
        "{duplicates} duplicates after {kills} kill"
    );
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'dead'")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(dead, 0);
    println!(
        "reminder burst: {REMINDERS} reminders through 3 replicas, one SIGKILLed after ~{after_kill}: \
         all delivered in {elapsed:?}, {duplicates} duplicate(s)"
    );
    drop((first, third));
}
