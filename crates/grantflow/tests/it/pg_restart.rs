//! PostgreSQL restarted under `grantflow serve` (a cluster of the test's own, not the
//! shared server) while a client fires transitions continuously: while it is down,
//! requests fail fast with status 503 and code UNAVAILABLE and `/readyz` is red; once it
//! is back the server recovers by itself (no restart) and the stream goes on, every
//! transition acknowledged to the stream is stored, and the audit chains verify.

use crate::support;

use std::time::Instant;

use serde_json::{Value, json};
use support::load::Load;
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

    // A steady stream of transitions from now on, through the restart.
    let call = support::open_call(&base, &token).await;
    let load = Load::start(&base, &token, &call);
    load.wait_for("transitions before the restart", |s| s.acks >= 4)
        .await;

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
    load.wait_for("a refusal while the database is down", |s| {
        s.unavailable >= 1
    })
    .await;
    let acks_while_down = load.seen().acks;

    cluster.start();
    let back = Instant::now();
    // The server recovers by itself: the first request after PostgreSQL is back succeeds,
    // and so does the stream.
    assert_eq!(ready(&base).await, 200, "/readyz is green again");
    let recovered_after = back.elapsed();
    acknowledged.push(create_and_submit(&base, &token).await);
    load.wait_for("transitions after the restart", |s| {
        s.acks >= acks_while_down + 4
    })
    .await;
    let seen = load.stop().await;
    assert!(
        seen.unexpected.is_empty(),
        "only UNAVAILABLE while the database was away: {:?}",
        seen.unexpected
    );
    println!(
        "PostgreSQL restart: a request failed after {failed_after:?} while it was down; \
         ready {recovered_after:?} after it accepted connections again; the stream had {} \
         transitions acknowledged and {} refused",
        seen.acks, seen.unavailable
    );

    // Every acknowledged transition is stored (the stream's and the ones around it), and
    // the chains verify.
    let stream = seen.acknowledged.iter().map(|(id, v)| (id.clone(), *v));
    for (id, version) in acknowledged.iter().cloned().chain(stream) {
        let answer = graphql(
            &base,
            Some(&token),
            "query($id: ID!) { instance(id: $id) { version history { seq } } }",
            json!({ "id": id }),
        )
        .await;
        let stored = answer["data"]["instance"]["version"]
            .as_i64()
            .unwrap_or_else(|| panic!("{id} acknowledged but not stored: {answer}"));
        // A transition whose answer was lost may have committed too: never less.
        assert!(
            stored >= version,
            "{id}: stored {stored}, acknowledged {version}"
        );
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
