//! `grantflow bench transitions` and `grantflow bench graphql`: throughput and latency of
//! the engine path, next to a baseline measured in the same run that issues the same SQL
//! without the engine. Benchmarks, not tests: they print a Markdown table for
//! docs/BENCHMARKS.md.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use grantflow_domain::Registry;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::engine::{Snapshot, initial_schedule};
use grantflow_service::{CreateInstance, Services, SystemClock};
use grantflow_store::bench::{BENCH_WORKFLOW, BaselineWriter, BenchOptions, bench_transitions};
use grantflow_store::{NewOrganisation, NewToken, NewUser, OrgKind, Role, Store};
use grantflow_store_postgres::{PostgresOptions, PostgresStore};
use grantflow_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::config::redact_url;

/// A store and its baseline writer, opened from a URL and migrated.
async fn open(url: &str) -> anyhow::Result<(Arc<dyn Store>, Arc<dyn BaselineWriter>)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let s = PostgresStore::connect_with(PostgresOptions::new(url))
            .await
            .with_context(|| format!("connecting to {}", redact_url(url)))?;
        s.migrate().await?;
        Ok((Arc::new(s.clone()), Arc::new(s)))
    } else {
        let s = SqliteStore::connect(url)
            .await
            .with_context(|| format!("opening {}", redact_url(url)))?;
        s.migrate().await?;
        Ok((Arc::new(s.clone()), Arc::new(s)))
    }
}

/// `grantflow bench transitions --db URL`: the store's engine path against the baseline.
pub async fn transitions(url: &str, count: usize) -> anyhow::Result<()> {
    let (store, baseline) = open(url).await?;
    let report = bench_transitions(
        store.as_ref(),
        baseline.as_ref(),
        BenchOptions {
            transitions: count,
            instances: 50,
        },
    )
    .await?;
    println!("| backend | path | transitions | per second | p50 ms | p99 ms |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for (name, s) in [
        ("engine (store)", &report.engine),
        ("baseline SQL", &report.baseline),
    ] {
        println!(
            "| {} | {name} | {} | {:.0} | {:.2} | {:.2} |",
            report.backend, s.transitions, s.per_second, s.p50_ms, s.p99_ms
        );
    }
    println!("\nengine / baseline throughput: {:.2}", report.ratio);
    Ok(())
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

struct Stats {
    n: usize,
    per_second: f64,
    p50: f64,
    p99: f64,
}

fn stats(mut lat: Vec<Duration>, total: Duration) -> Stats {
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
    workflows_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let (store, baseline) = open(url).await?;
    let mut registry: Registry = crate::workflows::load_for_serving(workflows_dir)?;
    let bench_wf = grantflow_domain::load_str("bench.toml", BENCH_WORKFLOW)
        .workflow
        .context("the benchmark workflow loads")?;
    registry.insert(bench_wf).map_err(anyhow::Error::msg)?;
    let registry = Arc::new(registry);
    let calendar = Arc::new(WorkCalendar::builtin());
    let services = Services::new(
        store.clone(),
        registry.clone(),
        calendar.clone(),
        Arc::new(SystemClock),
    );
    services.register_workflows().await?;

    let suffix = Uuid::now_v7().simple().to_string();
    let org = store
        .create_org(NewOrganisation {
            name: format!("bench {suffix}"),
            kind: OrgKind::Unit,
            parent_id: None,
        })
        .await?;
    let user = store
        .create_user(NewUser {
            username: format!("bench-{}", &suffix[..12]),
            display_name: "bench".into(),
            email: format!("bench-{suffix}@example.invalid"),
            org_id: Some(org.id),
            roles: vec![Role::Manager],
            password_hash: "unused".into(),
            lang: "en".into(),
        })
        .await?;
    let (token, token_hash) = grantflow_api::auth::new_token(grantflow_api::auth::SESSION_PREFIX);
    store
        .create_token(NewToken {
            user_id: user.id,
            token_hash,
            kind: "session".into(),
            name: None,
            scopes: vec![],
            expires_at: None,
        })
        .await?;

    let instances = 50;
    let mut gql_ids = Vec::new();
    for i in 0..instances {
        let inst = services
            .create_instance(
                &user,
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
                &user,
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
        initial_schedule(&wf, &Snapshot::initial(&wf, json!({})), now, &calendar);

    let app = grantflow_api::app(
        services.clone(),
        grantflow_api::ApiSettings {
            rate_limit_per_minute: u32::MAX,
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    let client = reqwest::Client::new();
    let endpoint = format!("http://{addr}/graphql");
    let post = |body: Value| {
        client
            .post(&endpoint)
            .bearer_auth(&token)
            .header("accept", "application/graphql-response+json")
            .json(&body)
            .send()
    };

    let mut gql_lat = Vec::with_capacity(count);
    let mut base_lat = Vec::with_capacity(count);
    let (mut gql_total, mut base_total) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < count {
        let block = (count - done).min(100);
        let started = Instant::now();
        for k in done..done + block {
            let slot = k % gql_ids.len();
            let (id, version, state) = gql_ids[slot].clone();
            let event = if state == "a" { "flip" } else { "flop" };
            let t0 = Instant::now();
            let resp: Value = post(json!({
                "query": "mutation($id: ID!, $e: String!, $v: Int!, $n: String) { transition(instanceId: $id, event: $e, expectedVersion: $v, input: { note: $n }) { instance { version state { id } } } }",
                "variables": { "id": id, "e": event, "v": version, "n": format!("step {k}") }
            }))
            .await?
            .json()
            .await?;
            gql_lat.push(t0.elapsed());
            let inst = &resp["data"]["transition"]["instance"];
            anyhow::ensure!(inst.is_object(), "transition failed: {resp}");
            gql_ids[slot] = (
                id,
                inst["version"].as_i64().unwrap_or(version + 1),
                inst["state"]["id"].as_str().unwrap_or("a").to_string(),
            );
        }
        gql_total += started.elapsed();
        let started = Instant::now();
        for k in done..done + block {
            let slot = k % baseline_ids.len();
            let (id, in_b) = baseline_ids[slot];
            let to = if in_b { "a" } else { "b" };
            let t0 = Instant::now();
            baseline
                .baseline_transition(id, to, &baseline_timers, Utc::now())
                .await?;
            base_lat.push(t0.elapsed());
            baseline_ids[slot].1 = !in_b;
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
        let resp: Value = post(list_query.clone()).await?.json().await?;
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
        "| {backend} | transition via GraphQL over HTTP | {} | {:.0} | {:.2} | {:.2} |",
        g.n, g.per_second, g.p50, g.p99
    );
    println!(
        "| {backend} | baseline SQL (no engine, no HTTP) | {} | {:.0} | {:.2} | {:.2} |",
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
