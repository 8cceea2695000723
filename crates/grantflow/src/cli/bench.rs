//! `grantflow bench timers --db URL`: how fast the scheduler turns due timers into outbox
//! messages. A benchmark, not a test: it prints a Markdown table for docs/BENCHMARKS.md.
//!
//! Setup: per burst, `--instances` instances of a one-state workflow, each with
//! `--timers-per-instance` pending reminders (100,000 by default); one reminder per
//! instance falls due at the burst's instant B (10,000 due, the 09:00 burst every working
//! day brings), the others a year later. Two bursts a day apart, both created before
//! either fires: the "before" one fired with `--before-batch-size` (1: one timer per claim
//! and per transaction), then the "now" one with `--batch-size`. Each is fired batch after
//! batch (`Scheduler::fire_batch`, the code `run_once` runs) with a clock that starts at B
//! and follows the wall clock. Each timer's lag is the wall time from B to the commit of
//! the batch that enqueued its message (so an upper bound for the timers of that batch).
//!
//! The run creates its own organisation, user and instances: point it at a scratch database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::schedule::{TimerKind, TimerPlan};
use grantflow_domain::{Registry, load_str};
use grantflow_mail::{EmlFolderConfig, MailConfig, Mailer};
use grantflow_scheduler::{RunReport, Scheduler, SchedulerSettings};
use grantflow_service::{ManualClock, Services};
use grantflow_store::{Lang, NewInstance, NewOrganisation, NewUser, OrgKind, Role};
use uuid::Uuid;

use crate::config::{Config, redact_url};

const BENCH_TIMER_WORKFLOW: &str = r#"
id = "bench-timers"
version = 1
title = { "zh-CN" = "定时器基准", en = "Timer benchmark" }

[[roles]]
id = "manager"
title = { "zh-CN" = "管理员", en = "Manager" }

[[stages]]
id = "work"
title = { "zh-CN" = "工作", en = "Work" }

[[states]]
id = "open"
title = { "zh-CN" = "办理中", en = "Open" }
stage = "work"
initial = true
assignees = ["manager"]
deadline = { after = "10wd", reminders = { before = ["3wd"] } }

[[states]]
id = "closed"
title = { "zh-CN" = "已办结", en = "Closed" }
stage = "work"
final = true

[[transitions]]
event = "close"
title = { "zh-CN" = "办结", en = "Close" }
from = "open"
to = "closed"
roles = ["manager"]
"#;

pub struct TimerBenchOptions {
    pub instances: usize,
    pub timers_per_instance: usize,
    pub batch_size: u32,
    /// The batch size of the "before" burst measured in the same run (0: none).
    pub before_batch_size: u32,
}

/// Peak resident memory of this process (VmHWM), in KiB.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One burst: its due instant, the batch size it is fired with, and its label.
struct Burst {
    label: String,
    base: DateTime<Utc>,
    batch_size: u32,
}

pub async fn timers(url: &str, options: TimerBenchOptions) -> anyhow::Result<()> {
    let config = Config::default();
    let store = crate::store::open_url(url, &config).await?;
    let mut registry = Registry::default();
    let wf = load_str("bench-timers.toml", BENCH_TIMER_WORKFLOW)
        .workflow
        .context("the benchmark workflow is valid")?;
    registry
        .insert(wf)
        .map_err(|e| anyhow::anyhow!("registering the benchmark workflow: {e}"))?;
    // The bursts fall due a day apart, far from the real clock, so nothing else in the
    // database interferes with the counts. Every burst is created before the first fires
    // (the later timers of each instance lie beyond all of them), so each burst runs on
    // the same table: the same pending timers, the same indexes.
    let first: DateTime<Utc> = "2031-03-03T01:00:00Z".parse()?;
    let mut bursts = Vec::new();
    if options.before_batch_size > 0 {
        bursts.push(Burst {
            label: format!(
                "one batch of {} per transaction (before)",
                options.before_batch_size
            ),
            base: first,
            batch_size: options.before_batch_size,
        });
    }
    bursts.push(Burst {
        label: format!("batches of {} (now)", options.batch_size),
        base: first + chrono::Duration::days(bursts.len() as i64),
        batch_size: options.batch_size,
    });
    let clock = Arc::new(ManualClock::new(first));
    let services = Services::new(
        store.clone(),
        Arc::new(registry),
        Arc::new(WorkCalendar::builtin()),
        clock.clone(),
    );
    services.register_workflows().await?;

    let run = Uuid::new_v4().simple().to_string();
    let org = store
        .create_org(NewOrganisation {
            name: format!("bench unit {run}"),
            kind: OrgKind::Unit,
            parent_id: None,
        })
        .await?;
    let manager = store
        .create_user(NewUser {
            username: format!("bench-{run}"),
            display_name: "Bench Manager".into(),
            email: format!("bench-{run}@example.invalid"),
            org_id: Some(org.id),
            roles: vec![Role::Manager],
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            lang: Lang::En,
        })
        .await?;
    // Managers created by earlier runs on the same database also receive the reminders.
    let managers = store.users_with_role(Role::Manager, None).await?.len();

    eprintln!(
        "creating {} bursts of {} instances × {} timers in {} …",
        bursts.len(),
        options.instances,
        options.timers_per_instance,
        redact_url(url)
    );
    let setup = Instant::now();
    for burst in &bursts {
        create_instances(&store, &options, burst.base, org.id, manager.id).await?;
    }
    let setup_time = setup.elapsed();
    eprintln!("created in {:.1} s", setup_time.as_secs_f64());

    println!(
        "| backend | path | pending timers | due | fired | messages | fire rate (timers/s) | lag p50 ms | lag p99 ms |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for burst in &bursts {
        let pending = store.pending_timer_count().await?;
        let mailer = Mailer::from_config(&MailConfig::EmlFolder(EmlFolderConfig {
            dir: std::env::temp_dir().join(format!("grantflow-bench-{run}")),
            ..EmlFolderConfig::default()
        }))?;
        let scheduler = Scheduler::new(
            services.clone(),
            mailer,
            SchedulerSettings {
                batch_size: burst.batch_size,
                ..SchedulerSettings::default()
            },
        )?;
        let (report, mut lags, total) = fire_burst(&scheduler, &clock, burst.base).await?;
        lags.sort();
        anyhow::ensure!(
            report.timer_errors == 0 && report.timers_lost == 0,
            "timers failed: {report:?}"
        );
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} |",
            store.backend(),
            burst.label,
            pending,
            options.instances,
            report.timers_fired,
            report.messages_enqueued,
            report.timers_fired as f64 / total.as_secs_f64(),
            percentile(&lags, 0.50).as_secs_f64() * 1000.0,
            percentile(&lags, 0.99).as_secs_f64() * 1000.0,
        );
    }
    let hwm = peak_memory_kib().map_or("n/a".to_string(), |k| format!("{:.0}", k as f64 / 1024.0));
    eprintln!(
        "({} manager(s) per reminder, setup {:.1} s, peak RSS {hwm} MiB)",
        managers,
        setup_time.as_secs_f64(),
    );
    Ok(())
}

/// `options.instances` instances whose first reminder falls due at `base`, created by four
/// writers at once.
async fn create_instances(
    store: &Arc<dyn grantflow_store::Store>,
    options: &TimerBenchOptions,
    base: DateTime<Utc>,
    org_id: Uuid,
    created_by: Uuid,
) -> anyhow::Result<()> {
    let workers = 4;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let store = store.clone();
        let (instances, per) = (options.instances, options.timers_per_instance);
        tasks.spawn(async move {
            for i in (w..instances).step_by(workers) {
                store
                    .create_instance(bench_instance(i, per, base, org_id, created_by))
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Fire everything due at `base` with a clock that starts at `base` and follows the wall
/// clock, in as many concurrent loops of `fire_batch` as `run_once` uses; each timer's
/// lag is the time from `base` to the commit of its batch.
async fn fire_burst(
    scheduler: &Scheduler,
    clock: &ManualClock,
    base: DateTime<Utc>,
) -> anyhow::Result<(RunReport, Vec<Duration>, Duration)> {
    let start = Instant::now();
    let lanes = (0..scheduler.batch_lanes()).map(|_| fire_lane(scheduler, clock, base, start));
    let mut report = RunReport::default();
    let mut lags = Vec::new();
    for lane in futures::future::join_all(lanes).await {
        let (lane_report, lane_lags) = lane?;
        report.add(&lane_report);
        lags.extend(lane_lags);
    }
    Ok((report, lags, start.elapsed()))
}

async fn fire_lane(
    scheduler: &Scheduler,
    clock: &ManualClock,
    base: DateTime<Utc>,
    start: Instant,
) -> anyhow::Result<(RunReport, Vec<Duration>)> {
    let mut report = RunReport::default();
    let mut lags = Vec::new();
    loop {
        let now = base + chrono::Duration::from_std(start.elapsed())?;
        clock.set(now);
        let before = report.timers_fired;
        if scheduler.fire_batch(now, &mut report).await? == 0 {
            return Ok((report, lags));
        }
        let committed = start.elapsed();
        let fired = (report.timers_fired - before) as usize;
        lags.extend(std::iter::repeat_n(committed, fired));
    }
}

/// One instance with one reminder due at `base` and the rest due later.
fn bench_instance(
    i: usize,
    timers: usize,
    base: DateTime<Utc>,
    org_id: Uuid,
    created_by: Uuid,
) -> NewInstance {
    let due_at = base + chrono::Duration::days(400);
    let plans = (0..timers)
        .map(|k| TimerPlan {
            kind: TimerKind::Reminder,
            key: format!("reminder:{k}"),
            // Timer 0 is due at B; the others an hour apart from a year after it (after
            // every burst of the run).
            fire_at: if k == 0 {
                base
            } else {
                base + chrono::Duration::days(365) + chrono::Duration::hours(k as i64)
            },
            due_at: Some(due_at),
            event: None,
            notify: vec!["manager".into()],
            offset: None,
        })
        .collect();
    NewInstance {
        id: Uuid::now_v7(),
        workflow_id: "bench-timers".into(),
        workflow_version: 1,
        state: "open".into(),
        stage: "work".into(),
        data: serde_json::json!({}),
        parent_id: None,
        org_id,
        title: format!("bench instance {i}"),
        created_by,
        created_at: base - chrono::Duration::days(1),
        due_at: Some(due_at),
        timers: plans,
    }
}
