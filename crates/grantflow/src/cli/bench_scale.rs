//! `grantflow bench scale --db URL`: the data-scale benchmark. Fills the database with
//! 100,000 instances and 1,000,000 history records (valid hash chains, multi-row inserts,
//! one transaction per chunk), then measures through GraphQL over HTTP: a 50-item list
//! (p50/p99 and statements per request), paging deep with cursors, a filter, and
//! `audit verify` over every record (records/s, RSS while it runs), next to the bare SQL
//! of the list measured in the same run. Prints Markdown for docs/BENCHMARKS.md.

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use chrono::{TimeZone, Utc};
use grantflow_store::bench_scale::{FillOptions, Owner, fill};
use grantflow_store::sql::STATEMENTS;
use grantflow_store::{Lang, NewOrganisation, NewUser, OrgKind, Role};
use serde_json::{Value, json};

use super::bench_process::{ServerProcess, rss_of};
use super::bench_server::{BenchServer, Opened, open};
use super::bench_transitions::{Stats, stats};

#[derive(Debug, Clone, Copy)]
pub struct ScaleOptions {
    pub instances: usize,
    pub records_per_instance: usize,
    /// Requests per list measurement.
    pub requests: usize,
    /// Skip the fill (measure what an earlier run left).
    pub no_fill: bool,
}

/// The nested fields a client shows in a list row.
const ROW: &str = "id title version state { id title { zhCn } } stage { id } dueAt overdue \
                   organisation { name } createdBy { displayName }";

fn list_query(first: u32, args: &str, total: bool) -> Value {
    let total = if total { "totalCount " } else { "" };
    json!({
        "query": format!(
            "query($after: String) {{ instances(first: {first}, after: $after{args}) {{ {total}edges {{ cursor node {{ {ROW} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
        ),
    })
}

/// One measured kind of request: latencies and statements per request.
struct Row {
    what: String,
    stats: Stats,
    statements: f64,
}

/// VmRSS and VmHWM of this process, in MiB.
fn rss() -> (f64, f64) {
    rss_of("/proc/self/status")
}

/// Send `body` (with `after` as its cursor variable) `n` times; each must list `expect`
/// items.
async fn measure(
    server: &BenchServer,
    endpoint: &str,
    what: &str,
    body: &Value,
    after: Option<&str>,
    n: usize,
    expect: usize,
) -> anyhow::Result<Row> {
    let mut body = body.clone();
    body["variables"] = json!({ "after": after });
    let mut lat = Vec::with_capacity(n);
    let statements = STATEMENTS.load(Ordering::Relaxed);
    let started = Instant::now();
    for _ in 0..n {
        let t0 = Instant::now();
        let resp = server.post_to(endpoint, &body).await?;
        lat.push(t0.elapsed());
        let edges = resp["data"]["instances"]["edges"].as_array().map(Vec::len);
        anyhow::ensure!(
            edges == Some(expect),
            "{what}: expected {expect} items: {resp}"
        );
    }
    let total = started.elapsed();
    let statements = (STATEMENTS.load(Ordering::Relaxed) - statements) as f64 / n as f64;
    Ok(Row {
        what: what.to_string(),
        stats: stats(lat, total),
        statements,
    })
}

/// Walk `pages` pages of `walk` by cursor from the start: each request's latency, and the
/// cursor after the last page.
async fn page_through(
    server: &BenchServer,
    endpoint: &str,
    walk: &Value,
    pages: usize,
) -> anyhow::Result<(Vec<std::time::Duration>, Option<String>)> {
    let mut after: Option<String> = None;
    let mut lat = Vec::with_capacity(pages);
    for _ in 0..pages {
        let mut body = walk.clone();
        body["variables"] = json!({ "after": after });
        let t0 = Instant::now();
        let resp = server.post_to(endpoint, &body).await?;
        lat.push(t0.elapsed());
        after = resp["data"]["instances"]["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_string);
        anyhow::ensure!(after.is_some(), "paging stopped early: {resp}");
    }
    Ok((lat, after))
}

/// The three lists every run measures: (what, items, with `totalCount`).
const LISTS: [(&str, u32, bool); 3] = [
    ("50-item list with totalCount", 50, true),
    ("50-item list without totalCount", 50, false),
    ("5-item list (statements as for 50)", 5, true),
];

pub async fn scale(
    url: &str,
    options: ScaleOptions,
    workflows_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let Opened { store, loader, .. } = open(url).await?;
    let server = BenchServer::start(store.clone(), workflows_dir).await?;
    let backend = store.backend();

    // 20 units under a city, each with its own creator, so that the list's organisations
    // and creators are really batched.
    let suffix = &uuid::Uuid::now_v7().simple().to_string()[..12];
    let city = store
        .create_org(NewOrganisation {
            name: format!("bench city {suffix}"),
            kind: OrgKind::City,
            parent_id: None,
        })
        .await?;
    let mut owners = Vec::new();
    for u in 0..20 {
        let org = store
            .create_org(NewOrganisation {
                name: format!("bench unit {u} {suffix}"),
                kind: OrgKind::Unit,
                parent_id: Some(city.id),
            })
            .await?;
        let user = store
            .create_user(NewUser {
                username: format!("scale-{u}-{suffix}"),
                display_name: format!("申请人 {u}"),
                email: format!("scale-{u}-{suffix}@example.invalid"),
                org_id: Some(org.id),
                roles: vec![Role::Applicant],
                password_hash: "unused".into(),
                lang: Lang::ZhCn,
            })
            .await?;
        owners.push(Owner {
            org_id: org.id,
            city_id: Some(city.id),
            user_id: user.id,
        });
    }

    let mut fill_secs = 0.0;
    if !options.no_fill {
        let started = Instant::now();
        let (total, per) = (options.instances, options.records_per_instance);
        fill(
            loader.as_ref(),
            &owners,
            FillOptions {
                instances: total,
                records_per_instance: per,
                chunk: 1000,
                start: Utc
                    .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
                    .single()
                    .context("start")?,
            },
            |done| {
                if done % 10_000 == 0 || done == total {
                    eprintln!(
                        "filled {done} / {total} instances ({} records), {:.0} s",
                        done * per,
                        started.elapsed().as_secs_f64()
                    );
                }
            },
        )
        .await?;
        fill_secs = started.elapsed().as_secs_f64();
        loader.analyze().await?;
    }

    let n = options.requests;
    let mut rows = Vec::new();
    // Warm the caches (and the server's first-request costs) before measuring.
    let here = server.endpoint();
    measure(
        &server,
        here,
        "warm-up",
        &list_query(50, "", true),
        None,
        20,
        50,
    )
    .await?;
    for (what, first, total) in LISTS {
        let query = list_query(first, "", total);
        rows.push(measure(&server, here, what, &query, None, n, first as usize).await?);
    }

    // Page deep: walk half the instances (1,000 pages of 50 at 100,000) by cursor, then
    // repeat the page after them.
    let pages = (options.instances / 100).max(1);
    let walk = list_query(50, "", false);
    let statements = STATEMENTS.load(Ordering::Relaxed);
    let started = Instant::now();
    let (lat, after) = page_through(&server, here, &walk, pages).await?;
    rows.push(Row {
        what: format!(
            "paging by cursor through the first {} ({pages} pages of 50)",
            pages * 50
        ),
        statements: (STATEMENTS.load(Ordering::Relaxed) - statements) as f64 / pages as f64,
        stats: stats(lat, started.elapsed()),
    });
    let what = format!("the page after {} (cursor)", pages * 50);
    rows.push(measure(&server, here, &what, &walk, after.as_deref(), n, 50).await?);
    // The unit of the newest instance: one of this run's units after a fill, one of the
    // run that filled the database with `--no-fill`.
    let newest = server
        .post(&json!({ "query": "{ instances(first: 1) { edges { node { organisation { id } } } } }" }))
        .await?;
    let unit = newest["data"]["instances"]["edges"][0]["node"]["organisation"]["id"]
        .as_str()
        .with_context(|| format!("the database lists no instance: {newest}"))?
        .to_string();
    let unit_filter = format!(", filter: {{ organisationId: \"{unit}\" }}");
    for (what, filter) in [
        (
            "filter: state `b`, 50 items with totalCount",
            ", filter: { states: [\"b\"] }",
        ),
        ("filter: one unit, 50 items with totalCount", &unit_filter),
    ] {
        let query = list_query(50, filter, true);
        rows.push(measure(&server, here, what, &query, None, n, 50).await?);
    }

    // The bare SQL of the first list (COUNT and the page), in the same run.
    for (what, count) in [
        ("baseline SQL of the 50-item list (COUNT + page)", true),
        ("baseline SQL of the page alone", false),
    ] {
        let mut lat = Vec::with_capacity(n);
        let statements = STATEMENTS.load(Ordering::Relaxed);
        let started = Instant::now();
        for _ in 0..n {
            let t0 = Instant::now();
            let listed = loader.raw_list(50, count).await?;
            lat.push(t0.elapsed());
            anyhow::ensure!(listed == 50, "the baseline listed {listed}");
        }
        rows.push(Row {
            what: what.into(),
            statements: (STATEMENTS.load(Ordering::Relaxed) - statements) as f64 / n as f64,
            stats: stats(lat, started.elapsed()),
        });
    }

    // The server as its own process on the same database, through the same requests:
    // its resident set after them (and its high-water mark), with nothing else in it.
    let process = ServerProcess::start(url, workflows_dir).await?;
    for (what, first, total) in LISTS {
        let query = list_query(first, "", total);
        measure(
            &server,
            &process.endpoint,
            what,
            &query,
            None,
            n,
            first as usize,
        )
        .await?;
    }
    page_through(&server, &process.endpoint, &walk, pages).await?;
    let served = LISTS.len() * n + pages;
    let (server_rss, server_hwm) = process.rss();
    drop(process);

    // `audit verify` over everything. Its peak RSS is the kernel's high-water mark, reset
    // to the current RSS just before (writing 5 to clear_refs), so nothing has to sample.
    let (rss_before, hwm_before) = rss();
    std::fs::write("/proc/self/clear_refs", "5")
        .context("resetting the RSS high-water mark (/proc/self/clear_refs)")?;
    let started = Instant::now();
    let report = grantflow_store::audit::verify_all(store.as_ref()).await?;
    let audit_secs = started.elapsed().as_secs_f64();
    let (rss_after, peak) = rss();
    let hwm = hwm_before.max(peak);
    anyhow::ensure!(report.is_ok(), "audit verify found broken chains: {report}");

    println!(
        "Backend {backend}: {} instances, {} history records in the database; fill {:.0} s.\n",
        report.instances_checked, report.records_checked, fill_secs
    );
    println!("| backend | request | requests | p50 ms | p99 ms | statements per request |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for r in &rows {
        println!(
            "| {backend} | {} | {} | {:.2} | {:.2} | {:.1} |",
            r.what, r.stats.n, r.stats.p50, r.stats.p99, r.statements
        );
    }
    println!(
        "\n| backend | audit verify: instances | records | seconds | records/s | RSS before MiB | peak RSS during MiB |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {backend} | {} | {} | {audit_secs:.1} | {:.0} | {rss_before:.0} | {peak:.0} |",
        report.instances_checked,
        report.records_checked,
        report.records_checked as f64 / audit_secs.max(1e-9)
    );
    println!(
        "\nProcess (server, client and loader in one): VmRSS {rss_after:.0} MiB, VmHWM {hwm:.0} MiB."
    );
    println!(
        "\n`grantflow serve` as its own process on this database, after {served} requests (the lists above and the paging): VmRSS {server_rss:.0} MiB, VmHWM {server_hwm:.0} MiB."
    );
    Ok(())
}
