//! A writer for the crash test: applies transitions to a few instances as fast as it can
//! and prints `ack <instance id> <version> <state> <note>` for each one (the state reached
//! and the note given as input), flushed, only after the commit has returned. Every
//! transition also schedules the new state's timers and e-mails the manager. The test kills it with SIGKILL at random points and checks that every
//! acknowledged transition survived and nothing is half-written.
//!
//! Usage: `crash_writer <database URL> <writers>` (`sqlite://…` or `postgres://…`).

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use grantflow_domain::CompiledWorkflow;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::engine::{Actor, Command, Snapshot, initial_schedule, plan_transition};
use grantflow_store::bench::BENCH_WORKFLOW;
use grantflow_store::{
    Instance, Lang, NewInstance, NewOrganisation, NewUser, OrgKind, PlannedChange, Role, Store,
    TransitionRequest,
};
use grantflow_store_postgres::PostgresStore;
use grantflow_store_sqlite::SqliteStore;
use serde_json::json;
use uuid::Uuid;

fn say(out: &Mutex<std::io::Stdout>, line: &str) {
    let mut out = out.lock().expect("stdout");
    writeln!(out, "{line}").expect("write to stdout");
    out.flush().expect("flush stdout");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: crash_writer URL WRITERS"))?;
    let writers: usize = args.next().unwrap_or_else(|| "4".into()).parse()?;
    let store: Arc<dyn Store> = if url.starts_with("postgres") {
        Arc::new(PostgresStore::connect(&url).await?)
    } else {
        Arc::new(SqliteStore::connect(&url).await?)
    };
    store.migrate().await?;
    // The benchmark workflow, each transition also e-mailing the manager.
    let text = BENCH_WORKFLOW.replace(
        "input = [{ name = \"note\" }]",
        "input = [{ name = \"note\" }]\neffects = [{ notify = { roles = [\"manager\"], template = \"notification\" } }]",
    );
    let wf = Arc::new(
        grantflow_domain::load_str("crash.toml", &text)
            .workflow
            .ok_or_else(|| anyhow::anyhow!("the crash workflow loads"))?,
    );
    let org = store
        .create_org(NewOrganisation {
            name: format!("crash {}", Uuid::now_v7()),
            kind: OrgKind::Unit,
            parent_id: None,
        })
        .await?;
    // One manager receives every notification (made by the first run only).
    if store
        .find_user_by_username("crash-manager")
        .await?
        .is_none()
    {
        store
            .create_user(NewUser {
                username: "crash-manager".into(),
                display_name: "崩溃测试管理员".into(),
                email: "crash-manager@example.gov.cn".into(),
                org_id: None,
                roles: vec![Role::Manager],
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                lang: Lang::ZhCn,
            })
            .await?;
    }
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let calendar = Arc::new(WorkCalendar::builtin());
    let mut instances = Vec::new();
    for k in 0..writers {
        let now = Utc::now();
        let snapshot = Snapshot::initial(&wf, json!({}));
        let (deadline, timers) = initial_schedule(&wf, &snapshot, now, &calendar);
        let inst = store
            .create_instance(NewInstance {
                id: Uuid::now_v7(),
                workflow_id: "bench".into(),
                workflow_version: 1,
                state: "a".into(),
                stage: "work".into(),
                data: json!({}),
                parent_id: None,
                org_id: org.id,
                title: format!("crash writer {k}"),
                created_by: Uuid::nil(),
                created_at: now,
                due_at: deadline.map(|d| d.due_at),
                timers,
            })
            .await?;
        instances.push(inst);
    }
    say(&out, "ready");
    let mut tasks = Vec::new();
    for inst in instances {
        let (store, wf, out, calendar) = (store.clone(), wf.clone(), out.clone(), calendar.clone());
        tasks.push(tokio::spawn(write_forever(store, wf, out, calendar, inst)));
    }
    // The writers only stop by failing (or by the kill this binary exists for).
    let (first, _, _) = futures::future::select_all(tasks).await;
    first??;
    anyhow::bail!("a writer stopped")
}

/// Apply transitions to `inst`, one after the other, acknowledging each after its commit.
async fn write_forever(
    store: Arc<dyn Store>,
    wf: Arc<CompiledWorkflow>,
    out: Arc<Mutex<std::io::Stdout>>,
    calendar: Arc<WorkCalendar>,
    inst: Instance,
) -> anyhow::Result<()> {
    let actor = Actor {
        id: "crash-writer".into(),
        roles: vec!["manager".into()],
        org: None,
    };
    let mut version = inst.version;
    loop {
        let planner = |i: &Instance| {
            let event = if i.state == "a" { "flip" } else { "flop" };
            let command = Command {
                event: event.into(),
                input: json!({ "note": format!("步骤{}", i.version + 1) }),
                reason: Some("崩溃测试".into()),
            };
            plan_transition(&wf, &i.snapshot(), &actor, &command, Utc::now(), &calendar).map(
                |plan| PlannedChange {
                    plan,
                    notification_context: json!({}),
                },
            )
        };
        let applied = store
            .apply_transition(TransitionRequest {
                instance_id: inst.id,
                expected_version: Some(version),
                idempotency_key: Some(format!("{}:{}", inst.id, version + 1)),
                request_hash: format!("{}:{}", inst.id, version),
                actor_id: actor.id.clone(),
                planner: &planner,
                complete_timer: None,
                money: None,
                refuse_while_objected: false,
                requester: None,
            })
            .await?;
        version = applied.instance.version;
        let note = applied.record.input["note"]
            .as_str()
            .unwrap_or("-")
            .to_string();
        say(
            &out,
            &format!(
                "ack {} {} {} {note}",
                inst.id, version, applied.instance.state
            ),
        );
    }
}
