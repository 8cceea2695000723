//! `grantflow bench transitions`: transitions per second and latency through the whole
//! engine path (`apply_transition` with the planner, idempotency key, timers and history)
//! against a hand-written baseline issuing the same core statements without the engine
//! ([`BaselineWriter`], implemented by each backend), in the same run on the same database.
//!
//! The run creates its own organisation and instances of a small two-state workflow: point
//! it at a scratch database.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use grantflow_domain::CompiledWorkflow;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::engine::{Actor, Command, initial_schedule, plan_transition};
use grantflow_domain::schedule::TimerPlan;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    NewInstance, NewOrganisation, OrgKind, PlannedChange, Store, StoreError, StoreResult,
    TransitionRequest,
};

/// The statements of one transition, without the engine.
#[async_trait]
pub trait BaselineWriter: Send + Sync {
    /// Read the instance, update it with a version check, append a sealed history record,
    /// cancel its pending timers and insert `timers`. Returns the new version.
    async fn baseline_transition(
        &self,
        instance_id: Uuid,
        to_state: &str,
        timers: &[TimerPlan],
        at: DateTime<Utc>,
    ) -> StoreResult<i64>;
}

/// A two-state workflow whose states have deadlines with reminder ladders, so that each
/// transition cancels and schedules timers like a real one.
pub const BENCH_WORKFLOW: &str = r#"
id = "bench"
version = 1
title = { "zh-CN" = "基准测试", en = "Benchmark" }

[[roles]]
id = "manager"
title = { "zh-CN" = "管理员", en = "Manager" }

[[stages]]
id = "work"
title = { "zh-CN" = "工作", en = "Work" }

[fields.note]
type = "text"
title = { "zh-CN" = "备注", en = "Note" }

[[states]]
id = "a"
title = { "zh-CN" = "甲", en = "A" }
stage = "work"
initial = true
assignees = ["manager"]
deadline = { after = "5wd", reminders = { before = ["2wd", "1wd"], at_due = true } }

[[states]]
id = "b"
title = { "zh-CN" = "乙", en = "B" }
stage = "work"
assignees = ["manager"]
deadline = { after = "5wd", reminders = { before = ["2wd", "1wd"], at_due = true } }

[[states]]
id = "closed"
title = { "zh-CN" = "结束", en = "Closed" }
stage = "work"
final = true

[[transitions]]
event = "close"
title = { "zh-CN" = "结束", en = "Close" }
from = ["a", "b"]
to = "closed"
roles = ["manager"]

[[transitions]]
event = "flip"
title = { "zh-CN" = "到乙", en = "To B" }
from = "a"
to = "b"
roles = ["manager"]
input = [{ name = "note" }]

[[transitions]]
event = "flop"
title = { "zh-CN" = "到甲", en = "To A" }
from = "b"
to = "a"
roles = ["manager"]
input = [{ name = "note" }]
"#;

#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Transitions per path.
    pub transitions: usize,
    /// Instances the transitions are spread over.
    pub instances: usize,
    /// Concurrent clients per path (each with its own instances).
    pub clients: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            transitions: 2000,
            instances: 50,
            clients: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PathStats {
    pub transitions: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub backend: String,
    pub engine: PathStats,
    pub baseline: PathStats,
    /// Engine throughput as a fraction of the baseline's (the target is ≥ 0.7).
    pub ratio: f64,
    /// Further engine paths measured in the same run (on SQLite: the same engine path
    /// with writers waiting in SQLite's busy handler instead of the in-process queue).
    pub others: Vec<(String, PathStats)>,
    /// Further baseline paths measured in the same run.
    pub other_baselines: Vec<(String, PathStats)>,
}

fn stats(mut latencies: Vec<Duration>, total: Duration) -> PathStats {
    latencies.sort();
    let pick = |q: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies[i].as_secs_f64() * 1000.0
    };
    PathStats {
        transitions: latencies.len(),
        per_second: latencies.len() as f64 / total.as_secs_f64().max(1e-9),
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
    }
}

fn bench_workflow() -> StoreResult<CompiledWorkflow> {
    grantflow_domain::load_str("bench.toml", BENCH_WORKFLOW)
        .workflow
        .ok_or_else(|| StoreError::Invalid("the benchmark workflow does not load".into()))
}

/// Run both paths, alternating blocks of 100 transitions per client so that both see
/// the same database size and cache state.
pub async fn bench_transitions(
    store: &dyn Store,
    baseline: &dyn BaselineWriter,
    options: BenchOptions,
) -> StoreResult<BenchReport> {
    bench_transitions_with(store, baseline, &[], &[], options).await
}

/// [`bench_transitions`], also measuring the engine path through each of `others` (other
/// stores on the same database, e.g. configured differently) and the baseline through
/// each of `other_baselines`, in the same blocks.
pub async fn bench_transitions_with(
    store: &dyn Store,
    baseline: &dyn BaselineWriter,
    others: &[(&str, &dyn Store)],
    other_baselines: &[(&str, &dyn BaselineWriter)],
    options: BenchOptions,
) -> StoreResult<BenchReport> {
    let wf = bench_workflow()?;
    let calendar = WorkCalendar::builtin();
    let org = store
        .create_org(NewOrganisation {
            name: format!("bench {}", Uuid::now_v7()),
            kind: OrgKind::Unit,
            parent_id: None,
        })
        .await?;
    let actor = Actor {
        id: Uuid::now_v7().to_string(),
        roles: vec!["manager".into()],
        org: None,
    };
    let now = Utc::now();
    let instances = options.instances.max(options.clients).max(1);
    let mut engine_ids = Vec::new();
    let mut baseline_ids = Vec::new();
    for i in 0..instances * 2 {
        let snapshot = grantflow_domain::engine::Snapshot::initial(&wf, json!({}));
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
                title: format!("bench {i}"),
                created_by: Uuid::now_v7(),
                created_at: now,
                due_at: deadline.map(|d| d.due_at),
                timers,
            })
            .await?;
        if i % 2 == 0 {
            engine_ids.push(inst.id);
        } else {
            baseline_ids.push(inst.id);
        }
    }
    // The baseline writes the timers the engine would schedule on entering a state.
    let snapshot = grantflow_domain::engine::Snapshot::initial(&wf, json!({}));
    let (_, baseline_timers) = initial_schedule(&wf, &snapshot, now, &calendar);

    let clients = options.clients.max(1);
    let mut paths: Vec<(&str, &dyn Store)> = vec![("engine", store)];
    paths.extend(others.iter().copied());
    let mut baselines: Vec<(&str, &dyn BaselineWriter)> = vec![("baseline", baseline)];
    baselines.extend(other_baselines.iter().copied());
    let mut lat: Vec<Vec<Duration>> = vec![Vec::new(); paths.len() + baselines.len()];
    let mut total = vec![Duration::ZERO; paths.len() + baselines.len()];
    // Where each baseline instance is: the baseline paths take turns on the same
    // instances, each block carrying on from the states the previous one left.
    let mut baseline_states = vec![false; baseline_ids.len()];
    let mut done = 0;
    // Client c owns the instances i with i % clients == c, so that concurrent clients
    // never wait on one another's row lock (only on the database).
    while done < options.transitions {
        let block = (options.transitions - done).min(100 * clients);
        for (p, (_, s)) in paths.iter().enumerate() {
            let started = Instant::now();
            let runs = (0..clients).map(|c| {
                let (wf, calendar, actor) = (&wf, &calendar, &actor);
                let mine: Vec<Uuid> = engine_ids
                    .iter()
                    .skip(c)
                    .step_by(clients)
                    .copied()
                    .collect();
                async move {
                    let mut out = Vec::new();
                    for (j, op) in (c..block).step_by(clients).enumerate() {
                        let t0 = Instant::now();
                        engine_transition(*s, wf, calendar, actor, mine[j % mine.len()], done + op)
                            .await?;
                        out.push(t0.elapsed());
                    }
                    Ok::<_, StoreError>(out)
                }
            });
            for r in futures::future::join_all(runs).await {
                lat[p].extend(r?);
            }
            total[p] += started.elapsed();
        }
        for (k, (_, writer)) in baselines.iter().enumerate() {
            let b = paths.len() + k;
            let started = Instant::now();
            let mut owned: Vec<Vec<(usize, bool)>> = vec![Vec::new(); clients];
            for (slot, st) in baseline_states.iter().enumerate() {
                owned[slot % clients].push((slot, *st));
            }
            let runs = owned.into_iter().enumerate().map(|(c, mut mine)| {
                let baseline_ids = &baseline_ids;
                let timers = &baseline_timers;
                async move {
                    let mut out = Vec::new();
                    for (j, _) in (c..block).step_by(clients).enumerate() {
                        let n = mine.len();
                        let (slot, in_b) = mine[j % n];
                        let to = if in_b { "a" } else { "b" };
                        let t0 = Instant::now();
                        writer
                            .baseline_transition(baseline_ids[slot], to, timers, Utc::now())
                            .await?;
                        out.push(t0.elapsed());
                        mine[j % n].1 = !in_b;
                    }
                    Ok::<_, StoreError>((out, mine))
                }
            });
            for r in futures::future::join_all(runs).await {
                let (out, mine) = r?;
                lat[b].extend(out);
                for (slot, st) in mine {
                    baseline_states[slot] = st;
                }
            }
            total[b] += started.elapsed();
        }
        done += block;
    }
    let mut all: Vec<PathStats> = lat
        .into_iter()
        .zip(total)
        .map(|(l, t)| stats(l, t))
        .collect();
    let more_baselines = all.split_off(paths.len() + 1);
    let baseline_stats = all
        .pop()
        .unwrap_or_else(|| stats(Vec::new(), Duration::ZERO));
    let engine = all.remove(0);
    Ok(BenchReport {
        backend: store.backend().to_string(),
        ratio: engine.per_second / baseline_stats.per_second.max(1e-9),
        engine,
        baseline: baseline_stats,
        others: others.iter().map(|(n, _)| n.to_string()).zip(all).collect(),
        other_baselines: other_baselines
            .iter()
            .map(|(n, _)| n.to_string())
            .zip(more_baselines)
            .collect(),
    })
}

/// One transition through the engine path (flip or flop, whichever applies).
async fn engine_transition(
    store: &dyn Store,
    wf: &CompiledWorkflow,
    calendar: &WorkCalendar,
    actor: &Actor,
    id: Uuid,
    k: usize,
) -> StoreResult<()> {
    let planner = |inst: &crate::Instance| {
        let event = if inst.state == "a" { "flip" } else { "flop" };
        let command = Command {
            event: event.into(),
            input: json!({ "note": format!("step {k}") }),
            reason: None,
        };
        plan_transition(wf, &inst.snapshot(), actor, &command, Utc::now(), calendar).map(|plan| {
            PlannedChange {
                plan,
                notification_context: json!({}),
            }
        })
    };
    store
        .apply_transition(TransitionRequest {
            instance_id: id,
            expected_version: None,
            idempotency_key: Some(Uuid::now_v7().to_string()),
            request_hash: format!("bench-{k}"),
            actor_id: actor.id.clone(),
            planner: &planner,
            complete_timer: None,
            money: None,
            refuse_while_objected: false,
            requester: None,
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_benchmark_workflow_loads() {
        let outcome = grantflow_domain::load_str("bench.toml", super::BENCH_WORKFLOW);
        assert!(
            outcome.workflow.is_some(),
            "{:#?}",
            outcome
                .diagnostics
                .iter()
                .map(|d| format!("{}: {} ({})", d.path, d.message, d.hint))
                .collect::<Vec<_>>()
        );
    }
}
