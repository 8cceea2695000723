//! The scheduler as separate processes: `grantflow scheduler run-once --now …` killed with
//! SIGKILL in the middle of sending (SQLite and PostgreSQL), and two processes racing on one PostgreSQL
//! database. The SMTP server is real (aiosmtpd on loopback); messages are counted there
//! by Message-ID.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use grantflow_domain::calendar::{WorkCalendar, local_instant};
use grantflow_domain::{Registry, load_str};
use grantflow_mail::message_id;
use grantflow_mail::testkit::{ReceivedEmail, SmtpTestServer, Waker};
use grantflow_service::{CreateInstance, ManualClock, Services};
use grantflow_store::OutboxStore as _;
use grantflow_store::{
    Lang, NewOrganisation, NewUser, NotifyPref, OrgKind, OutboxStatus, Role, Store, User, UserPatch,
};
use grantflow_testkit::{Backend, TestDb};
use tempfile::TempDir;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scheduler/tests/fixtures");

pub(crate) fn local(date: &str, time: &str) -> DateTime<Utc> {
    local_instant(
        NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
        NaiveTime::parse_from_str(time, "%H:%M").unwrap(),
    )
}

/// The test workflows, copied into a folder the binary loads.
pub(crate) fn workflows_dir(dir: &Path) -> (PathBuf, Registry) {
    let target = dir.join("workflows");
    std::fs::create_dir_all(&target).unwrap();
    let mut registry = Registry::default();
    for name in ["rectification.toml", "correction.toml"] {
        let text = std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap();
        std::fs::write(target.join(name), &text).unwrap();
        registry
            .insert(load_str(name, &text).workflow.expect("valid fixture"))
            .unwrap();
    }
    (target, registry)
}

pub(crate) struct Users {
    /// The applicants who want immediate mail.
    pub(crate) immediate: Vec<User>,
}

/// A unit with three applicants (two want every reminder, one the digest only) and
/// `projects` rectifications entered on Thursday 2025-09-25 10:00, due 2025-10-11.
pub(crate) async fn populate(store: Arc<dyn Store>, registry: Registry, projects: usize) -> Users {
    let clock = Arc::new(ManualClock::new(local("2025-09-25", "10:00")));
    let services = Services::new(
        store.clone(),
        Arc::new(registry),
        Arc::new(WorkCalendar::builtin()),
        clock,
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
    let mut users = vec![];
    for (username, lang, pref) in [
        ("zhang", Lang::ZhCn, NotifyPref::Immediate),
        ("li", Lang::En, NotifyPref::Immediate),
        ("wang", Lang::ZhCn, NotifyPref::DigestOnly),
    ] {
        let u = store
            .create_user(NewUser {
                username: username.into(),
                display_name: username.into(),
                email: format!("{username}@example.gov.cn"),
                org_id: Some(unit.id),
                roles: vec![Role::Applicant],
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                lang,
            })
            .await
            .unwrap();
        let u = store
            .update_user(
                u.id,
                UserPatch {
                    notify_pref: Some(pref),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        users.push(u);
    }
    for i in 0..projects {
        services
            .create_instance(
                &users[0],
                CreateInstance {
                    workflow_id: "rectification".into(),
                    org_id: None,
                    parent_id: None,
                    title: format!("整改项目 {i:03}"),
                    data: serde_json::json!({}),
                    call_id: None,
                    catalogue_item: None,
                },
            )
            .await
            .unwrap();
    }
    users.truncate(2);
    Users { immediate: users }
}

pub(crate) fn write_config(
    dir: &Path,
    database_url: &str,
    workflows: &Path,
    smtp: &SmtpTestServer,
    digests: &str,
) -> PathBuf {
    let path = dir.join("grantflow.toml");
    std::fs::write(
        &path,
        format!(
            r#"database_url = "{database_url}"
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
# Small batches: on PostgreSQL one pass fires four batches at once, so 4 × 5 = 20 of the
# 40 racing timers at most per pass, and the second process always finds some left.
batch_size = 5
lease_secs = 60
digests = [{digests}]
"#,
            workflows = workflows.display(),
            port = smtp.port(),
        ),
    )
    .unwrap();
    path
}

pub(crate) fn run_once(config: &Path, now: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_grantflow"))
        .arg("--config")
        .arg(config)
        .args(["scheduler", "run-once", "--now", now])
        // The config loader reads every GRANTFLOW_ variable as configuration (and
        // refuses GRANTFLOW_LOG): keep the child's environment to what the test sets.
        .env_remove("GRANTFLOW_LOG")
        .env_remove("GRANTFLOW_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start grantflow")
}

/// Reads a child's output on two threads; when both close (the process exited or was
/// killed) the flag is set and the SMTP server's waiters are woken. The handle returns the
/// output.
pub(crate) fn watch(
    child: &mut Child,
    waker: Waker,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<String>) {
    let exited = Arc::new(AtomicBool::new(false));
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let err = std::thread::spawn(move || {
        // Bytes, not text: a kill may cut a character in two.
        let mut bytes = Vec::new();
        stderr.read_to_end(&mut bytes).expect("read stderr");
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let flag = exited.clone();
    let handle = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).expect("read stdout");
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        text.push_str(&err.join().unwrap_or_default());
        flag.store(true, Ordering::SeqCst);
        waker.wake();
        text
    });
    (exited, handle)
}

pub(crate) fn finish(child: Child) -> (ExitStatus, String) {
    let out = child.wait_with_output().expect("wait for grantflow");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

pub(crate) fn counts(received: &[ReceivedEmail]) -> HashMap<String, usize> {
    let mut by_id = HashMap::new();
    for m in received {
        *by_id.entry(m.message_id.clone()).or_insert(0) += 1;
    }
    by_id
}

/// The Message-IDs of the 09-30 reminders: one per timer and recipient.
pub(crate) async fn expected_reminder_ids(store: &dyn Store, users: &Users) -> HashSet<String> {
    let mut ids = HashSet::new();
    for instance in store.instance_ids().await.unwrap() {
        for t in store.timers_for_instance(instance).await.unwrap() {
            if t.key == "reminder:3wd" {
                for u in &users.immediate {
                    ids.insert(message_id(&format!("timer:{}:{}", t.id, u.id)));
                }
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_sending_loses_nothing_and_duplicates_at_most_one_per_kill() {
    sigkill_during_sending(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_sending_on_postgres_loses_nothing_and_duplicates_at_most_one_per_kill() {
    sigkill_during_sending(Backend::Postgres).await;
}

/// Three runs killed while sending, then one that finishes: every reminder arrives, with at
/// most one duplicate per kill.
async fn sigkill_during_sending(backend: Backend) {
    use std::os::unix::process::ExitStatusExt;

    let db = TestDb::new(backend).await;
    let store = db.shared();
    let dir = TempDir::new().unwrap();
    let (workflows, registry) = workflows_dir(dir.path());
    let users = populate(store.clone(), registry, 60).await;
    let smtp = SmtpTestServer::start();
    let config = write_config(dir.path(), &db.url(), &workflows, &smtp, "");
    let expected = expected_reminder_ids(store.as_ref(), &users).await;
    assert_eq!(expected.len(), 120, "60 projects × 2 applicants");

    // Each run is two minutes after the last, past the 60 s lease of whatever the killed
    // process had claimed, as a restarted service would be.
    let mut kills = 0;
    let mut minute = 0;
    while kills < 3 {
        let now = format!("2025-09-30T09:{minute:02}");
        minute += 2;
        let before = smtp.received().len();
        let mut child = run_once(&config, &now);
        let (exited, output) = watch(&mut child, smtp.waker());
        // Synchronise on events, not on time: each message the server stores, or the
        // child's output closing, wakes the wait; kill once a few more messages arrived
        // (some sent, others still to go). The timeout only guards against a hang.
        let progress = smtp.wait_until(Duration::from_secs(60), |received| {
            received.len() >= before + 7 || exited.load(Ordering::SeqCst)
        });
        assert!(progress.is_ok(), "no progress from grantflow");
        match child.try_wait().unwrap() {
            None => {
                child.kill().expect("SIGKILL");
                let status = child.wait().expect("reap grantflow");
                output.join().expect("the output reader");
                assert_eq!(status.signal(), Some(9));
                let got = counts(&smtp.received()).len();
                assert!(got < expected.len(), "killed before everything was sent");
                kills += 1;
            }
            Some(status) => {
                panic!(
                    "grantflow finished ({status}) before it could be killed: {}",
                    output.join().unwrap_or_default()
                )
            }
        }
    }

    // A last, uninterrupted run delivers the rest.
    let (status, output) = finish(run_once(&config, &format!("2025-09-30T09:{minute:02}")));
    assert!(status.success(), "{output}");
    assert!(output.contains("timers fired"), "{output}");

    let received = smtp.received();
    let by_id = counts(&received);
    let delivered: HashSet<String> = by_id.keys().cloned().collect();
    assert_eq!(
        delivered, expected,
        "every reminder delivered at least once"
    );
    let duplicates: usize = by_id.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= kills,
        "{duplicates} duplicates after {kills} kills"
    );
    // The outbox agrees: nothing left to send, nothing dead.
    assert!(
        store
            .list_outbox(Some(OutboxStatus::Pending), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_outbox(Some(OutboxStatus::Sending), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_outbox(Some(OutboxStatus::Sent), None, 1000)
            .await
            .unwrap()
            .len(),
        120
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_scheduler_processes_on_one_postgres_database_send_nothing_twice() {
    let db = grantflow_store_postgres::testing::TempPostgres::new().await;
    let dir = TempDir::new().unwrap();
    let (workflows, registry) = workflows_dir(dir.path());
    let users = populate(db.shared(), registry, 40).await;
    let smtp = SmtpTestServer::start();
    let config = write_config(
        dir.path(),
        &db.url(),
        &workflows,
        &smtp,
        r#"{ name = "daily", cron = "0 0 9 * * *", horizon_days = 30 }"#,
    );
    let expected = expected_reminder_ids(&db.store, &users).await;
    assert_eq!(expected.len(), 80);

    // Two processes at the same instant, twice: the 3wd reminders and a digest on 09-30,
    // a digest on 10-09 (the 1wd reminders are due 10-10). On 09-30 both start behind a
    // barrier — the test holds the timers table locked until both wait on it — so that
    // both race for the same 40 timers, and each one's summary must show timers it fired.
    let mut fired = vec![];
    for now in ["2025-09-30T09:00", "2025-10-09T09:00"] {
        let barrier = if now.starts_with("2025-09-30") {
            let mut tx = db.store.pool().begin().await.unwrap();
            sqlx::query("LOCK TABLE timers IN ACCESS EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .unwrap();
            Some(tx)
        } else {
            None
        };
        let (a, b) = (run_once(&config, now), run_once(&config, now));
        if let Some(tx) = barrier {
            waiting_on_timers(&db, 2).await;
            tx.commit().await.unwrap();
        }
        let (mut sa, mut sb) = (finish(a), finish(b));
        for (status, output) in [&mut sa, &mut sb] {
            assert!(status.success(), "{output}");
        }
        fired.push((timers_fired(&sa.1), timers_fired(&sb.1)));
        for (_, output) in [&sa, &sb] {
            // With the claim lock nobody takes a timer another process holds, so no
            // completion is fenced off as lost.
            assert!(
                output.contains("lost: 0, errors: 0"),
                "a timer was claimed twice: {output}"
            );
        }
    }
    let (a, b) = fired[0];
    assert!(
        a > 0 && b > 0,
        "both processes claimed timers behind the barrier: {a} and {b}"
    );
    assert_eq!(a + b, 40, "every 3wd reminder timer fired exactly once");
    let received = smtp.received();
    let by_id = counts(&received);
    let twice: Vec<_> = by_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    let digests = received
        .iter()
        .filter(|m| m.subject.starts_with("【待办汇总】") || m.subject.starts_with("[Digest]"))
        .count();
    // Two ticks × three applicants (the digest-only one included).
    assert_eq!(digests, 2 * 3);
    let reminders: HashSet<String> = received
        .iter()
        .filter(|m| !(m.subject.starts_with("【待办汇总】") || m.subject.starts_with("[Digest]")))
        .map(|m| m.message_id.clone())
        .collect();
    assert_eq!(reminders, expected);
    assert_eq!(
        db.store.last_tick("daily").await.unwrap(),
        Some(local("2025-10-09", "09:00"))
    );
}

/// `timers fired: N` from a run-once summary.
fn timers_fired(output: &str) -> u64 {
    output
        .split("timers fired: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {output}"))
}

/// Until `n` backends wait for a lock on the timers table (the processes reached the
/// barrier). Each check is a query; nothing sleeps.
async fn waiting_on_timers(db: &grantflow_store_postgres::testing::TempPostgres, n: i64) {
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE relation = 'timers'::regclass AND NOT granted",
        )
        .fetch_one(db.store.pool())
        .await
        .unwrap();
        if waiting >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
}
