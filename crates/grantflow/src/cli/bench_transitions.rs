//! `grantflow bench transitions` and `grantflow bench graphql`: throughput and latency of
//! the engine path, next to a baseline measured in the same run that issues the same SQL
//! without the engine. Benchmarks, not tests: they print a Markdown table for
//! docs/BENCHMARKS.md.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use grantflow_domain::engine::{Snapshot, initial_schedule};
use grantflow_service::CreateInstance;
use grantflow_store::Store;
use grantflow_store::bench::{BaselineWriter, BenchOptions, bench_transitions_with};
use grantflow_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use uuid::Uuid;

/// `grantflow bench transitions --db URL [--clients N]`: the store's engine path against
/// the baseline, N clients at a time. On SQLite two more paths run through a second store
/// on the same file whose writers wait in SQLite's busy handler instead of queueing in the
/// process: the engine path, and the baseline, which is then the headline baseline (a
/// straightforward implementation has no writer queue, and it is the baseline every
/// earlier figure was measured against); the baseline on the queued writer is printed too.
pub async fn transitions(url: &str, count: usize, clients: usize) -> anyhow::Result<()> {
    let super::bench_server::Opened {
        store, baseline, ..
    } = super::bench_server::open(url).await?;
    let unqueued: Option<SqliteStore> = if store.backend() == "sqlite" {
        Some(
            SqliteStore::connect_with(SqliteOptions {
                url: url.to_string(),
                queue_writers: false,
                ..SqliteOptions::default()
            })
            .await?,
        )
    } else {
        None
    };
    let others: Vec<(&str, &dyn Store)> = unqueued
        .as_ref()
        .map(|s| ("engine, writers in the busy handler", s as &dyn Store))
        .into_iter()
        .collect();
    let (headline, other_baselines): (&dyn BaselineWriter, Vec<(&str, &dyn BaselineWriter)>) =
        match &unqueued {
            Some(s) => (s, vec![("baseline SQL, writers queued", baseline.as_ref())]),
            None => (baseline.as_ref(), Vec::new()),
        };
    let report = bench_transitions_with(
        store.as_ref(),
        headline,
        &others,
        &other_baselines,
        BenchOptions {
            transitions: count,
            instances: 50.max(clients * 4),
            clients,
        },
    )
    .await?;
    println!("| backend | path | clients | transitions | per second | p50 ms | p99 ms |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    let mut rows = vec![("engine (store)".to_string(), &report.engine)];
    rows.extend(report.others.iter().map(|(n, s)| (n.clone(), s)));
    rows.push(("baseline SQL".to_string(), &report.baseline));
    rows.extend(report.other_baselines.iter().map(|(n, s)| (n.clone(), s)));
    for (name, s) in rows {
        println!(
            "| {} | {name} | {clients} | {} | {:.0} | {:.2} | {:.2} |",
            report.backend, s.transitions, s.per_second, s.p50_ms, s.p99_ms
        );
    }
    println!("\nengine / baseline throughput: {:.2}", report.ratio);
    for (name, s) in report.others.iter().chain(&report.other_baselines) {
        println!(
            "engine / {name} throughput: {:.2}",
            report.engine.per_second / s.per_second.max(1e-9)
        );
    }
    Ok(())
}

pub(crate) fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

pub(crate) struct Stats {
    pub n: usize,
    pub per_second: f64,
    pub p50: f64,
    pub p99: f64,
}

pub(crate) fn stats(mut lat: Vec<Duration>, total: Duration) -> Stats {
    lat.sort();
    Stats {
        n: lat.len(),
        per_second: lat.len() as f64 / total.as_secs_f64().max(1e-9),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
    }
}

/// `grantflow bench graphql --db URL`: transitions through GraphQL over HTTP (a real
/// client on loopback) against the store's baseline SQL in the same run, and the latency
/// of a 50-item instance list.
pub async fn graphql(
    url: &str,
    count: usize,
    clients: usize,
    workflows_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let clients = clients.max(1);
    let super::bench_server::Opened {
        store, baseline, ..
    } = super::bench_server::open(url).await?;
    let server = super::bench_server::BenchServer::start(store.clone(), workflows_dir).await?;
    let (services, registry, calendar) = (&server.services, &server.registry, &server.calendar);
    let (org, user, token_hash) = (&server.org, &server.user, &server.token_hash);

    let instances = 50.max(clients * 4);
    let mut gql_ids = Vec::new();
    for i in 0..instances {
        let inst = services
            .create_instance(
                user,
                CreateInstance {
                    workflow_id: "bench".into(),
                    org_id: Some(org.id),
                    parent_id: None,
                    title: format!("bench {i}"),
                    data: Value::Null,
                    call_id: None,
                    catalogue_item: None,
                },
            )
            .await?;
        gql_ids.push((inst.id, inst.version, inst.state));
    }
    let wf = registry.get("bench", 1).context("bench workflow")?;
    let now = Utc::now();
    let mut baseline_ids = Vec::new();
    for i in 0..instances {
        let inst = services
            .create_instance(
                user,
                CreateInstance {
                    workflow_id: "bench".into(),
                    org_id: Some(org.id),
                    parent_id: None,
                    title: format!("baseline {i}"),
                    data: Value::Null,
                    call_id: None,
                    catalogue_item: None,
                },
            )
            .await?;
        baseline_ids.push((inst.id, false));
    }
    let (_, baseline_timers) =
        initial_schedule(&wf, &Snapshot::initial(&wf, json!({})), now, calendar);

    let server = &server;
    let post = |body: Value| async move { server.post(&body).await };

    let mut gql_lat = Vec::with_capacity(count);
    let mut base_lat = Vec::with_capacity(count);
    let (mut gql_total, mut base_total) = (Duration::ZERO, Duration::ZERO);
    // Client c owns the instances i with i % clients == c (no waiting on a row lock of
    // another client); the two paths alternate in blocks of 100 transitions per client.
    let mut gql_owned: Vec<Vec<(Uuid, i64, String)>> = vec![Vec::new(); clients];
    for (i, x) in gql_ids.into_iter().enumerate() {
        gql_owned[i % clients].push(x);
    }
    let mut base_owned: Vec<Vec<(Uuid, bool)>> = vec![Vec::new(); clients];
    for (i, x) in baseline_ids.into_iter().enumerate() {
        base_owned[i % clients].push(x);
    }
    let mut done = 0;
    while done < count {
        let block = (count - done).min(100 * clients);
        let started = Instant::now();
        let runs = gql_owned.into_iter().enumerate().map(|(c, mut mine)| {
            let post = &post;
            async move {
                let mut lat = Vec::new();
                for (j, op) in (c..block).step_by(clients).enumerate() {
                    let n = mine.len();
                    let (id, version, state) = mine[j % n].clone();
                    let event = if state == "a" { "flip" } else { "flop" };
                    let t0 = Instant::now();
                    let resp: Value = post(json!({
                        "query": "mutation($id: ID!, $e: String!, $v: Int!, $n: String) { transition(instanceId: $id, event: $e, expectedVersion: $v, input: { note: $n }) { instance { version state { id } } } }",
                        "variables": { "id": id, "e": event, "v": version, "n": format!("step {}", done + op) }
                    }))
                    .await?;
                    lat.push(t0.elapsed());
                    let inst = &resp["data"]["transition"]["instance"];
                    anyhow::ensure!(inst.is_object(), "transition failed: {resp}");
                    mine[j % n] = (
                        id,
                        inst["version"].as_i64().unwrap_or(version + 1),
                        inst["state"]["id"].as_str().unwrap_or("a").to_string(),
                    );
                }
                Ok::<_, anyhow::Error>((lat, mine))
            }
        });
        gql_owned = Vec::with_capacity(clients);
        for r in futures::future::join_all(runs).await {
            let (lat, mine) = r?;
            gql_lat.extend(lat);
            gql_owned.push(mine);
        }
        gql_total += started.elapsed();
        let started = Instant::now();
        let runs = base_owned.into_iter().enumerate().map(|(c, mut mine)| {
            let (store, baseline) = (&store, &baseline);
            let timers = &baseline_timers;
            async move {
                let mut lat = Vec::new();
                for (j, _) in (c..block).step_by(clients).enumerate() {
                    let n = mine.len();
                    let (id, in_b) = mine[j % n];
                    let to = if in_b { "a" } else { "b" };
                    let t0 = Instant::now();
                    // Today's 12-statement shape by hand: token, user and instance read
                    // outside the transaction, then the transaction (lock, update,
                    // history, cancel, one insert per timer).
                    let t = store.find_token(token_hash).await?.context("the token")?;
                    store.get_user(t.user_id).await?;
                    store.get_instance(id).await?;
                    baseline
                        .baseline_transition(id, to, timers, Utc::now())
                        .await?;
                    lat.push(t0.elapsed());
                    mine[j % n].1 = !in_b;
                }
                Ok::<_, anyhow::Error>((lat, mine))
            }
        });
        base_owned = Vec::with_capacity(clients);
        for r in futures::future::join_all(runs).await {
            let (lat, mine) = r?;
            base_lat.extend(lat);
            base_owned.push(mine);
        }
        base_total += started.elapsed();
        done += block;
    }
    let g = stats(gql_lat, gql_total);
    let b = stats(base_lat, base_total);

    // A 50-item list with nested fields, as a client would show it.
    let list_query = json!({
        "query": "{ instances(first: 50, filter: { workflowId: \"bench\" }) { totalCount edges { cursor node { id title version state { id title { zhCn } } stage { id } dueAt overdue organisation { name } createdBy { displayName } } } pageInfo { hasNextPage endCursor } } }"
    });
    let mut list_lat = Vec::new();
    let list_started = Instant::now();
    for _ in 0..200 {
        let t0 = Instant::now();
        let resp: Value = post(list_query.clone()).await?;
        list_lat.push(t0.elapsed());
        anyhow::ensure!(
            resp["data"]["instances"]["edges"]
                .as_array()
                .is_some_and(|e| e.len() == 50),
            "the list did not return 50 items: {resp}"
        );
    }
    let l = stats(list_lat, list_started.elapsed());

    println!("| backend | path | operations | per second | p50 ms | p99 ms |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    let backend = store.backend();
    println!(
        "| {backend} | transition via GraphQL over HTTP, {clients} clients | {} | {:.0} | {:.2} | {:.2} |",
        g.n, g.per_second, g.p50, g.p99
    );
    println!(
        "| {backend} | baseline SQL, 12 statements (no engine, no HTTP), {clients} clients | {} | {:.0} | {:.2} | {:.2} |",
        b.n, b.per_second, b.p50, b.p99
    );
    println!(
        "| {backend} | 50-item instance list via GraphQL | {} | {:.0} | {:.2} | {:.2} |",
        l.n, l.per_second, l.p50, l.p99
    );
    println!(
        "\nGraphQL transitions / baseline throughput: {:.2}",
        g.per_second / b.per_second.max(1e-9)
    );
    Ok(())
}
