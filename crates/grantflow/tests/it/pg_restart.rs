//! PostgreSQL restarted under `grantflow serve` (a cluster of the test's own, not the
//! shared server): while it is down, requests fail fast with status 503 and code
//! UNAVAILABLE and `/readyz` is red; once it is back the server recovers by itself (no
//! restart), every acknowledged transition is stored, and the audit chains verify.

use crate::support;

use std::time::Instant;

use serde_json::{Value, json};
use support::pg_cluster::PgCluster;
use support::{Server, graphql, login, write_config};

const CREATE: &str = "mutation($c: ID!) { createInstance(input: { workflowId: \"funded-project\", \
    title: \"重启测试\", callId: $c, catalogueItem: \"2022-2-1-5\" }) { id version } }";
const SUBMIT: &str = "mutation($id: ID!) { transition(instanceId: $id, event: \"submit\", expectedVersion: 0, input: { \
    project_name: \"重启\", budget: \"300000.00\", \
    indicators: [{ category: \"output_quantity\", name: \"调解案件数\", unit: \"件\", target: 200, direction: \"higher_is_better\", weight: 1 }, { category: \"effect_social\", name: \"当事人满意度\", unit: \"%\", target: 90, direction: \"higher_is_better\", weight: 1 }], \
    application_files: [{ name: \"申报书.pdf\", sha256: \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\", size: 20480 }] \
    }) { instance { id version } } }";

/// Create and submit one application; its id and version once both were acknowledged.
async fn create_and_submit(base: &str, token: &str) -> (String, i64) {
    let call = support::open_call(base, token).await;
    let created = graphql(base, Some(token), CREATE, json!({ "c": call })).await;
    let id = created["data"]["createInstance"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    let submitted = graphql(base, Some(token), SUBMIT, json!({ "id": id })).await;
    let version = submitted["data"]["transition"]["instance"]["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("{submitted}"));
    (id, version)
}

async fn post(base: &str, token: &str, query: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn ready(base: &str) -> u16 {
    reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_survives_a_postgresql_restart() {
    let cluster = PgCluster::start_new();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &cluster.url("postgres"),
        &format!(
            "[postgres]\nacquire_timeout_secs = 2\n[mail]\ntransport = \"eml_folder\"\ndir = \"{}\"\n",
            dir.path().join("mail").display()
        ),
    );
    let server = Server::start(&config, &["--demo"], &[]);
    let base = server.url("");
    let token = login(&base, "unit_gz").await;
    let mut acknowledged = Vec::new();
    for _ in 0..3 {
        acknowledged.push(create_and_submit(&base, &token).await);
    }
    assert_eq!(ready(&base).await, 200);

    cluster.stop();
    let down = Instant::now();
    let (status, answer) = post(&base, &token, CREATE).await;
    let failed_after = down.elapsed();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(
        answer["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{answer}"
    );
    assert_eq!(
        ready(&base).await,
        503,
        "/readyz is red while the database is down"
    );

    cluster.start();
    let back = Instant::now();
    // The server recovers by itself: the first request after PostgreSQL is back succeeds.
    assert_eq!(ready(&base).await, 200, "/readyz is green again");
    let recovered_after = back.elapsed();
    acknowledged.push(create_and_submit(&base, &token).await);
    println!(
        "PostgreSQL restart: a request failed after {failed_after:?} while it was down; \
         ready {recovered_after:?} after it accepted connections again"
    );

    // Every acknowledged transition is stored, and the chains verify.
    for (id, version) in &acknowledged {
        let answer = graphql(
            &base,
            Some(&token),
            "query($id: ID!) { instance(id: $id) { version history { seq } } }",
            json!({ "id": id }),
        )
        .await;
        assert_eq!(answer["data"]["instance"]["version"], *version, "{answer}");
    }
    let audit = std::process::Command::new(env!("CARGO_BIN_EXE_grantflow"))
        .arg("--config")
        .arg(&config)
        .args(["audit", "verify"])
        .env_remove("GRANTFLOW_LOG")
        .env_remove("GRANTFLOW_CONFIG")
        .output()
        .unwrap();
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );
}
