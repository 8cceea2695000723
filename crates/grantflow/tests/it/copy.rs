//! Backup, restore and the move off SQLite, as processes: the full demo (`grantflow demo`)
//! copied from SQLite into a fresh PostgreSQL database (row counts equal table by table,
//! every hash chain verifies, the server runs on the copy and shows the same data), and a
//! SQLite backup taken and restored.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use support::{Server, graphql, login, write_config};

fn grantflow(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_grantflow"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("GRANTFLOW_LOG")
        .env_remove("GRANTFLOW_CONFIG")
        .output()
        .expect("run grantflow")
}

fn ok(output: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    text
}

const MAIL: &str = "[mail]\ntransport = \"eml_folder\"\ndir = \"/tmp/grantflow-copy-test-mail\"\n";

async fn instance_count(server: &Server, user: &str) -> i64 {
    let token = login(&server.url(""), user).await;
    let answer = graphql(
        &server.url(""),
        Some(&token),
        "{ instances(first: 1) { totalCount } }",
        json!({}),
    )
    .await;
    answer["data"]["instances"]["totalCount"]
        .as_i64()
        .unwrap_or_else(|| panic!("{answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_moves_from_sqlite_to_postgres_whole() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("g.db").display());
    let sqlite_config = write_config(dir.path(), &sqlite, MAIL);
    ok(&grantflow(&sqlite_config, &["demo"]));

    let db = grantflow_store_postgres::testing::TempPostgres::new().await;
    let text = ok(&grantflow(
        &sqlite_config,
        &["copy", "--from", &sqlite, "--to", &db.url()],
    ));
    let mut counts = std::collections::HashMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| table") && !l.starts_with("| ---"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (source, target): (i64, i64) = (cells[2].parse().unwrap(), cells[3].parse().unwrap());
        assert_eq!(source, target, "{line}");
        counts.insert(cells[1].to_string(), target);
    }
    for table in [
        "organisations",
        "users",
        "user_roles",
        "workflow_definitions",
        "instances",
        "history",
        "timers",
        "outbox",
        "idempotency_keys",
        "calls",
        "budget_lines",
        "review_assignments",
        "review_submissions",
        "expert_profiles",
    ] {
        assert!(
            counts.get(table).copied().unwrap_or(0) > 0,
            "the demo has rows in {table}, all copied: {counts:?}\n{text}"
        );
    }
    assert!(text.contains("every hash chain verified"), "{text}");

    // Checked again by the audit command, on the copy.
    let pg_dir = tempfile::tempdir().unwrap();
    let pg_config = write_config(pg_dir.path(), &db.url(), MAIL);
    let audit = ok(&grantflow(&pg_config, &["audit", "verify"]));
    assert!(!audit.contains("BROKEN"), "{audit}");

    // A copy into a database that is not empty is refused, and changes nothing.
    let again = grantflow(
        &sqlite_config,
        &["copy", "--from", &sqlite, "--to", &db.url()],
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // The server runs on the copy and shows what it showed on SQLite.
    let on_sqlite = Server::start(&sqlite_config, &[], &[]);
    let on_postgres = Server::start(&pg_config, &[], &[]);
    for user in ["manager", "unit_gz", "city_gz"] {
        assert_eq!(
            instance_count(&on_postgres, user).await,
            instance_count(&on_sqlite, user).await,
            "{user} sees the same instances"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_is_consistent_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("g.db").display());
    let config = write_config(dir.path(), &sqlite, MAIL);
    ok(&grantflow(&config, &["demo"]));
    // Taken while the server runs.
    let server = Server::start(&config, &[], &[]);
    let backup = dir.path().join("backup.db");
    let text = ok(&grantflow(
        &config,
        &["backup", "--to", backup.to_str().unwrap()],
    ));
    assert!(text.contains("every hash chain verified"), "{text}");
    // Never over an existing file.
    let again = grantflow(&config, &["backup", "--to", backup.to_str().unwrap()]);
    assert!(!again.status.success());
    drop(server);

    let restored_dir = tempfile::tempdir().unwrap();
    let restored_url = format!("sqlite://{}", restored_dir.path().join("r.db").display());
    let restored_config = write_config(restored_dir.path(), &restored_url, MAIL);
    let text = ok(&grantflow(
        &restored_config,
        &["restore", "--from", backup.to_str().unwrap()],
    ));
    assert!(text.contains("every hash chain verified"), "{text}");
    // Restore never overwrites a database.
    let again = grantflow(
        &restored_config,
        &["restore", "--from", backup.to_str().unwrap()],
    );
    assert!(!again.status.success());

    let original = Server::start(&config, &[], &[]);
    let restored = Server::start(&restored_config, &[], &[]);
    assert_eq!(
        instance_count(&restored, "manager").await,
        instance_count(&original, "manager").await
    );

    // PostgreSQL: pg_dump, said so.
    let pg_config = write_config(
        restored_dir.path(),
        "postgres://nobody@127.0.0.1:1/none",
        MAIL,
    );
    let pg = grantflow(&pg_config, &["backup", "--to", "x.dump"]);
    assert_eq!(pg.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&pg.stderr).contains("pg_dump"));
}
