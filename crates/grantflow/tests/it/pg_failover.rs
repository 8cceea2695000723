//! Failover: a primary and a synchronous streaming standby (clusters of the test's own on
//! two ports), `database_url` naming both with `target_session_attrs=read-write`. The
//! primary is stopped and the standby promoted under the running server while a client
//! fires transitions continuously: it finds the new primary without reconfiguration or
//! restart, the stream goes on, and nothing acknowledged is lost.

use crate::support;

use std::time::Instant;

use serde_json::json;
use support::load::Load;
use support::pg_cluster::PgCluster;
use support::{Server, graphql, login, write_config};

const CREATE: &str = "mutation($c: ID!) { createInstance(input: { workflowId: \"funded-project\", \
    title: \"切换测试\", callId: $c, catalogueItem: \"2022-2-1-5\" }) { id version } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_standby_is_found_and_nothing_acknowledged_is_lost() {
    let primary = PgCluster::start_new();
    let standby = PgCluster::standby_of(&primary);
    // Synchronous replication: a commit is acknowledged once the standby has it.
    let admin = sqlx::PgPool::connect(&primary.url("postgres"))
        .await
        .unwrap();
    sqlx::query("ALTER SYSTEM SET synchronous_standby_names = '*'")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;

    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write",
        primary.port, standby.port
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &url,
        &format!(
            "[postgres]\nacquire_timeout_secs = 2\n[mail]\ntransport = \"eml_folder\"\ndir = \"{}\"\n",
            dir.path().join("mail").display()
        ),
    );
    let server = Server::start(&config, &["--demo"], &[]);
    let base = server.url("");
    let token = login(&base, "unit_gz").await;
    let call = support::open_call(&base, &token).await;
    let mut acknowledged = Vec::new();
    for _ in 0..5 {
        let created = graphql(&base, Some(&token), CREATE, json!({ "c": call })).await;
        acknowledged.push(
            created["data"]["createInstance"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{created}"))
                .to_string(),
        );
    }

    // A steady stream of transitions from now on, through the failover.
    let load = Load::start(&base, &token, &call);
    load.wait_for("transitions before the failover", |s| s.acks >= 4)
        .await;
    primary.stop();
    let acks_at_failover = load.seen().acks;
    standby.promote();
    let promoted = Instant::now();
    // The server follows the primary by itself: requests answer UNAVAILABLE until it has,
    // then succeed. (Each failed attempt is a real request; the bound only stops a hang.)
    let mut attempts = 0;
    let id = loop {
        attempts += 1;
        assert!(
            attempts <= 60,
            "the server did not find the promoted standby"
        );
        let answer = graphql(&base, Some(&token), CREATE, json!({ "c": call })).await;
        if let Some(id) = answer["data"]["createInstance"]["id"].as_str() {
            break id.to_string();
        }
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "UNAVAILABLE",
            "{answer}"
        );
    };
    println!(
        "failover: writes succeed again {:?} after the standby was promoted ({attempts} attempts)",
        promoted.elapsed()
    );
    acknowledged.push(id);
    load.wait_for("transitions after the promotion", |s| {
        s.acks >= acks_at_failover + 4
    })
    .await;
    let seen = load.stop().await;
    assert!(
        seen.unexpected.is_empty(),
        "only UNAVAILABLE during the failover: {:?}",
        seen.unexpected
    );
    println!(
        "failover under load: {} transitions acknowledged to the stream, {} refused",
        seen.acks, seen.unavailable
    );

    // Everything acknowledged is on the new primary.
    let manager = login(&base, "manager").await;
    for id in &acknowledged {
        let answer = graphql(
            &base,
            Some(&manager),
            "query($id: ID!) { instance(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
        assert_eq!(answer["data"]["instance"]["id"], id.as_str(), "{answer}");
    }
    // Every transition acknowledged to the stream is on the new primary (a transition
    // whose answer was lost may have committed too: never less).
    for (id, version) in &seen.acknowledged {
        let answer = graphql(
            &base,
            Some(&manager),
            "query($id: ID!) { instance(id: $id) { version } }",
            json!({ "id": id }),
        )
        .await;
        let stored = answer["data"]["instance"]["version"]
            .as_i64()
            .unwrap_or_else(|| panic!("{id} acknowledged but lost: {answer}"));
        assert!(
            stored >= *version,
            "{id}: stored {stored}, acknowledged {version}"
        );
    }
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    // The audit chains verify on the new primary.
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
        "{}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
}
