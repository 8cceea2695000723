//! `/metrics` of a running `grantflow serve`, parsed with a Prometheus text-format parser:
//! every named series is there, and the ones that count work move after some (a login, a
//! query, an application created and submitted, the notifications it causes delivered,
//! the timers it starts fired). The scheduler's log lines say when its work is done.

use crate::support;

use std::collections::HashMap;

use prometheus_parse::{Scrape, Value};
use serde_json::json;
use support::{Server, graphql, login, write_config};

/// Name → total over its series (a histogram's count, a counter's or gauge's value).
async fn scrape(url: &str) -> (Scrape, HashMap<String, f64>) {
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
    let mut totals = HashMap::new();
    for sample in &scrape.samples {
        let v = match &sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => 0.0,
        };
        *totals.entry(sample.metric.clone()).or_insert(0.0) += v;
    }
    (scrape, totals)
}

fn labels_of<'a>(scrape: &'a Scrape, metric: &str) -> Vec<&'a prometheus_parse::Labels> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| &s.labels)
        .collect()
}

async fn metrics_move_after_activity(database_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        database_url,
        &format!(
            "log_format = \"json\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n[scheduler]\npoll_interval_secs = 1\n[mail]\ntransport = \"eml_folder\"\ndir = \"{}\"\n",
            dir.path().join("mail").display()
        ),
    );
    let mut server = Server::start(&config, &["--demo"], &[]);
    let metrics_url = server
        .printed("grantflow: metrics at ")
        .expect("the metrics address is printed");
    let base = server.url("");
    let (_, before) = scrape(&metrics_url).await;

    let token = login(&base, "unit_gz").await;
    let created = graphql(
        &base,
        Some(&token),
        "mutation Create($c: ID!) { createInstance(input: { workflowId: \"funded-project\", \
         title: \"指标测试项目\", callId: $c, catalogueItem: \"2022-2-1-5\" }) \
         { id version } }",
        json!({ "c": support::open_call(&base, &token).await }),
    )
    .await;
    let id = created["data"]["createInstance"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    let submitted = graphql(
        &base,
        Some(&token),
        "mutation Submit($id: ID!) { transition(instanceId: $id, event: \"submit\", expectedVersion: 0, input: { \
         project_name: \"指标测试\", budget: \"300000.00\", \
         indicators: [{ category: \"output_quantity\", name: \"调解案件数\", unit: \"件\", target: 200, direction: \"higher_is_better\", weight: 1 }, { category: \"effect_social\", name: \"当事人满意度\", unit: \"%\", target: 90, direction: \"higher_is_better\", weight: 1 }], \
         application_files: [{ name: \"申报书.pdf\", sha256: \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\", size: 20480 }] \
         }) { instance { version } } }",
        json!({ "id": id }),
    )
    .await;
    assert!(submitted.get("errors").is_none(), "{submitted}");
    // A refused operation counts with its code.
    let refused = graphql(
        &base,
        Some(&token),
        "query Users { users { id } }",
        json!({}),
    )
    .await;
    assert!(refused.get("errors").is_some(), "{refused}");

    // The scheduler delivered the submission's notifications.
    server.wait_line(|l| l.contains("scheduler pass") && !l.contains("sent: 0,"));
    // The new state's reminders fall due (as if days had passed); the scheduler, looking
    // every second, fires them.
    let instance_id: uuid::Uuid = id.parse().unwrap();
    let moved = make_timers_due(database_url, instance_id).await;
    assert!(moved > 0, "the submitted application has pending timers");
    server.wait_line(|l| l.contains("scheduler pass") && !l.contains("timers fired: 0 "));

    let (after, totals) = scrape(&metrics_url).await;
    let get = |m: &str, t: &HashMap<String, f64>| t.get(m).copied();
    for series in [
        "grantflow_http_request_seconds",
        "grantflow_graphql_operation_seconds",
        "grantflow_transitions_total",
        "grantflow_mail_deliveries_total",
        "grantflow_scheduler_pass_seconds",
    ] {
        let (was, now) = (get(series, &before).unwrap_or(0.0), get(series, &totals));
        let now = now.unwrap_or_else(|| panic!("{series} missing"));
        assert!(now > was, "{series} did not move: {was} → {now}");
    }
    for series in ["grantflow_timer_lag_seconds", "grantflow_timers_total"] {
        let now = get(series, &totals).unwrap_or_else(|| panic!("{series} missing"));
        assert!(
            now > get(series, &before).unwrap_or(0.0),
            "{series} did not move"
        );
    }
    for series in [
        "grantflow_timers",
        "grantflow_outbox_messages",
        "grantflow_outbox_dead_letters",
        "grantflow_db_pool_connections",
        "grantflow_db_pool_max_connections",
        "grantflow_database_up",
    ] {
        assert!(get(series, &totals).is_some(), "{series} missing");
    }
    assert_eq!(get("grantflow_database_up", &totals), Some(1.0));
    assert!(get("grantflow_db_pool_max_connections", &totals).unwrap() >= 1.0);
    let sent = after.samples.iter().find(|s| {
        s.metric == "grantflow_mail_deliveries_total" && s.labels.get("outcome") == Some("sent")
    });
    assert!(sent.is_some(), "deliveries by outcome");
    // Labelled as the issue asks.
    assert!(
        labels_of(&after, "grantflow_graphql_operation_seconds")
            .iter()
            .any(|l| l.get("operation") == Some("Submit") && l.get("outcome") == Some("ok"))
    );
    assert!(
        labels_of(&after, "grantflow_graphql_operation_seconds")
            .iter()
            .any(|l| l.get("operation") == Some("Users") && l.get("outcome") == Some("FORBIDDEN")),
        "{:?}",
        labels_of(&after, "grantflow_graphql_operation_seconds")
    );
    assert!(
        labels_of(&after, "grantflow_transitions_total")
            .iter()
            .any(|l| l.get("workflow") == Some("funded-project")
                && l.get("event") == Some("submit")
                && l.get("outcome") == Some("applied"))
    );
    assert!(
        labels_of(&after, "grantflow_http_request_seconds")
            .iter()
            .any(|l| l.get("route") == Some("/graphql") && l.get("status") == Some("200"))
    );
    for status in ["pending", "sending", "sent", "dead"] {
        assert!(
            labels_of(&after, "grantflow_outbox_messages")
                .iter()
                .any(|l| l.get("status") == Some(status)),
            "outbox {status}"
        );
    }
    // JSON log lines carry the request id and the instance id of a transition.
    let transition_log = server
        .seen
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["fields"]["message"] == "transition" && v["fields"]["instance_id"] == id.as_str()
        })
        .unwrap_or_else(|| panic!("a transition log line for {id}: {:#?}", server.seen));
    assert!(
        transition_log["span"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{transition_log}"
    );
}

async fn make_timers_due(database_url: &str, instance: uuid::Uuid) -> u64 {
    if database_url.starts_with("sqlite:") {
        let store = grantflow_store_sqlite::SqliteStore::connect(database_url)
            .await
            .unwrap();
        grantflow_store_sqlite::testing::make_timers_due(&store, instance).await
    } else {
        let store = grantflow_store_postgres::PostgresStore::connect(database_url)
            .await
            .unwrap();
        grantflow_store_postgres::testing::make_timers_due(&store, instance).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    metrics_move_after_activity(&format!("sqlite://{}", dir.path().join("g.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_postgres() {
    let db = grantflow_store_postgres::testing::TempPostgres::new().await;
    metrics_move_after_activity(&db.url()).await;
}
