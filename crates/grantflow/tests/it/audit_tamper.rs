//! The tamper matrix through the real command: a database with two instances (one with
//! three history records), one change made with raw SQL behind the application's back —
//! every hashed column of a record edited, a record deleted, two records swapped, the
//! instance row's state, data, version or last hash edited — and `grantflow audit verify`
//! run as a process must exit with 1 and name the instance and the record. The untouched
//! database exits with 0. On SQLite and PostgreSQL.
//!
//! Chains written before `data_hash` existed (records without it) still verify, and their
//! state is still bound to the chain.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use futures::StreamExt;

use grantflow_domain::audit::{GENESIS_HASH, HistoryRecord};
use grantflow_domain::calendar::WorkCalendar;
use grantflow_service::{CreateInstance, FireEvent, ManualClock, Services};
use grantflow_store::{Lang, NewOrganisation, NewUser, OrgKind, Role, Store};
use grantflow_store_postgres::testing::TempPostgres;
use grantflow_store_sqlite::testing::TempSqlite;
use serde_json::json;
use uuid::Uuid;

enum Db {
    Sqlite(TempSqlite),
    Postgres(TempPostgres),
}

impl Db {
    async fn new(postgres: bool) -> Self {
        if postgres {
            Self::Postgres(TempPostgres::new().await)
        } else {
            Self::Sqlite(TempSqlite::new().await)
        }
    }

    fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(d) => d.shared(),
            Self::Postgres(d) => d.shared(),
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Sqlite(d) => d.url(),
            Self::Postgres(d) => d.url(),
        }
    }

    /// Run statements with raw SQL, the append-only triggers out of the way (they stop
    /// mistakes, not someone with the database's password).
    async fn tamper(&self, statements: &[String]) {
        match self {
            Self::Sqlite(d) => {
                let mut tx = d.store.pool().begin().await.unwrap();
                for s in [
                    "DROP TRIGGER IF EXISTS history_no_update",
                    "DROP TRIGGER IF EXISTS history_no_delete",
                ]
                .iter()
                .map(ToString::to_string)
                .chain(statements.iter().cloned())
                {
                    sqlx::query(&s)
                        .execute(&mut *tx)
                        .await
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                }
                tx.commit().await.unwrap();
            }
            Self::Postgres(d) => {
                let mut tx = d.store.pool().begin().await.unwrap();
                for s in std::iter::once("ALTER TABLE history DISABLE TRIGGER USER".to_string())
                    .chain(statements.iter().cloned())
                    .chain(std::iter::once(
                        "ALTER TABLE history ENABLE TRIGGER USER".to_string(),
                    ))
                {
                    sqlx::query(&s)
                        .execute(&mut *tx)
                        .await
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                }
                tx.commit().await.unwrap();
            }
        }
    }
}

/// Two funded projects of one unit: `target` submitted, returned by the city and
/// submitted again (records 1–3), `other` submitted once.
async fn populate(store: Arc<dyn Store>) -> (Uuid, Uuid) {
    let clock = Arc::new(ManualClock::new("2024-06-03T02:00:00Z".parse().unwrap()));
    let services = Services::new(
        store.clone(),
        Arc::new(grantflow_testkit::registry_of(&["funded-project"])),
        Arc::new(WorkCalendar::builtin()),
        clock,
    );
    services.register_workflows().await.unwrap();
    let city = store
        .create_org(NewOrganisation {
            name: "广州市市场监督管理局".into(),
            kind: OrgKind::City,
            parent_id: None,
        })
        .await
        .unwrap();
    let unit = store
        .create_org(NewOrganisation {
            name: "广州知识产权服务中心".into(),
            kind: OrgKind::Unit,
            parent_id: Some(city.id),
        })
        .await
        .unwrap();
    let user = |name: &str, role, org: Uuid| NewUser {
        username: name.into(),
        display_name: name.into(),
        email: format!("{name}@example.gov.cn"),
        org_id: Some(org),
        roles: vec![role],
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        lang: Lang::ZhCn,
    };
    let applicant = store
        .create_user(user("unit", Role::Applicant, unit.id))
        .await
        .unwrap();
    let city_user = store
        .create_user(user("city", Role::City, city.id))
        .await
        .unwrap();
    let province = store
        .create_org(NewOrganisation {
            name: "广东省市场监督管理局".into(),
            kind: OrgKind::Province,
            parent_id: None,
        })
        .await
        .unwrap();
    let manager = store
        .create_user(user("manager", Role::Manager, province.id))
        .await
        .unwrap();
    // Applications belong to a stored call and one of its items.
    let call = grantflow_testkit::open_call(
        &services,
        &manager,
        grantflow_testkit::call_of(grantflow_testkit::CATALOGUE_2022),
    )
    .await;
    let submit = json!({
        "project_name": "知识产权纠纷调解能力提升",
        "budget": "300000",
        "indicators": [
            { "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "direction": "higher_is_better", "weight": 1 },
            { "category": "effect_social", "name": "当事人满意度", "unit": "%", "target": 90, "direction": "higher_is_better", "weight": 1 }
        ],
        "application_files": [{ "name": "申报书.pdf", "sha256": "a".repeat(64), "size": 2048 }]
    });
    let mut ids = vec![];
    for title in ["被篡改的项目", "未动过的项目"] {
        let i = services
            .create_instance(
                &applicant,
                CreateInstance {
                    workflow_id: "funded-project".into(),
                    org_id: None,
                    parent_id: None,
                    title: title.into(),
                    data: json!({}),
                    call_id: Some(call),
                    catalogue_item: Some("2022-2-1-5".into()),
                },
            )
            .await
            .unwrap();
        ids.push(i.id);
    }
    let fire = |id: Uuid, who, event: &str, v: i64, input: serde_json::Value| {
        let services = services.clone();
        let event = event.to_string();
        async move {
            services
                .fire(
                    who,
                    FireEvent {
                        instance_id: id,
                        event,
                        expected_version: v,
                        idempotency_key: None,
                        input,
                        reason: Some("测试".into()),
                    },
                )
                .await
                .unwrap();
        }
    };
    fire(ids[0], &applicant, "submit", 0, submit.clone()).await;
    fire(ids[0], &city_user, "city_return", 1, json!({})).await;
    fire(ids[0], &applicant, "submit", 2, submit.clone()).await;
    fire(ids[1], &applicant, "submit", 0, submit).await;
    (ids[0], ids[1])
}

struct Verified {
    code: Option<i32>,
    output: String,
}

fn audit_verify(url: &str) -> Verified {
    let dir = tempfile::tempdir().unwrap();
    verified(
        &audit_command(url, dir.path())
            .output()
            .expect("grantflow runs"),
    )
}

/// `audit verify` without holding a runtime worker while the process runs.
async fn audit_verify_async(url: &str) -> Verified {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::from(audit_command(url, dir.path()))
        .output()
        .await
        .expect("grantflow runs");
    verified(&out)
}

/// `grantflow audit verify` on `url`, run in `dir` (a scratch directory: no configuration file).
fn audit_command(url: &str, dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_grantflow"));
    command
        .args(["audit", "verify"])
        .current_dir(dir)
        .env_remove("GRANTFLOW_LOG")
        .env("GRANTFLOW_DATABASE_URL", url)
        .env(
            "GRANTFLOW_WORKFLOWS_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows"),
        );
    command
}

fn verified(out: &std::process::Output) -> Verified {
    Verified {
        code: out.status.code(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// One way to tamper: raw statements (with `{id}` for the target instance) and the record
/// `audit verify` must name.
struct Case {
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
    names_record: i64,
}

const fn same(name: &'static str, sql: &'static str, names_record: i64) -> Case {
    Case {
        name,
        sqlite: sql,
        postgres: sql,
        names_record,
    }
}

const R2: &str = "WHERE instance_id = '{id}' AND seq = 2";

fn cases() -> Vec<Case> {
    vec![
        // every hashed column of record 2
        same(
            "history.seq",
            "UPDATE history SET seq = 7 WHERE instance_id = '{id}' AND seq = 3",
            7,
        ),
        Case {
            name: "history.at",
            sqlite: "UPDATE history SET at = '2024-06-01T00:00:00.000000Z' R2",
            postgres: "UPDATE history SET at = at - interval '1 day' R2",
            names_record: 2,
        },
        same(
            "history.actor_id",
            "UPDATE history SET actor_id = '00000000-0000-0000-0000-000000000001' R2",
            2,
        ),
        same(
            "history.actor_roles",
            "UPDATE history SET actor_roles = '[\"manager\"]' R2",
            2,
        ),
        same(
            "history.event",
            "UPDATE history SET event = 'recommend' R2",
            2,
        ),
        same(
            "history.from_state",
            "UPDATE history SET from_state = 'formal_check' R2",
            2,
        ),
        same(
            "history.to_state",
            "UPDATE history SET to_state = 'formal_check' R2",
            2,
        ),
        same(
            "history.input",
            "UPDATE history SET input = '{\"city_opinion\":\"同意推荐\"}' R2",
            2,
        ),
        same("history.reason", "UPDATE history SET reason = '篡改' R2", 2),
        same(
            "history.reason (to NULL)",
            "UPDATE history SET reason = NULL R2",
            2,
        ),
        same(
            "history.data_hash",
            "UPDATE history SET data_hash = '0000000000000000000000000000000000000000000000000000000000000000' R2",
            2,
        ),
        same(
            "history.data_hash (to NULL)",
            "UPDATE history SET data_hash = NULL R2",
            2,
        ),
        same(
            "history.prev_hash",
            "UPDATE history SET prev_hash = '0000000000000000000000000000000000000000000000000000000000000000' R2",
            2,
        ),
        same(
            "history.hash",
            "UPDATE history SET hash = '0000000000000000000000000000000000000000000000000000000000000000' R2",
            2,
        ),
        // rows deleted and swapped
        same("record 2 deleted", "DELETE FROM history R2", 3),
        same(
            "the last record deleted",
            "DELETE FROM history WHERE instance_id = '{id}' AND seq = 3",
            3,
        ),
        same(
            "records 2 and 3 swapped",
            "UPDATE history SET seq = 100 R2; UPDATE history SET seq = 2 WHERE instance_id = '{id}' AND seq = 3; UPDATE history SET seq = 3 WHERE instance_id = '{id}' AND seq = 100",
            2,
        ),
        // the instance row
        same(
            "instances.state",
            "UPDATE instances SET state = 'formal_check' WHERE id = '{id}'",
            3,
        ),
        Case {
            name: "instances.data",
            sqlite: "UPDATE instances SET data = json_set(data, '$.budget', '3000000') WHERE id = '{id}'",
            postgres: "UPDATE instances SET data = (jsonb_set(data::jsonb, '{budget}', '\"3000000\"'))::json WHERE id = '{id}'",
            names_record: 3,
        },
        same(
            "instances.version",
            "UPDATE instances SET version = 4 WHERE id = '{id}'",
            4,
        ),
        same(
            "instances.last_hash",
            "UPDATE instances SET last_hash = (SELECT hash FROM history WHERE instance_id = '{id}' AND seq = 2) WHERE id = '{id}'",
            3,
        ),
    ]
}

fn statements(sql: &str, id: Uuid) -> Vec<String> {
    sql.replace("R2", R2)
        .replace("{id}", &id.to_string())
        .split("; ")
        .map(ToString::to_string)
        .collect()
}

async fn every_tampering_is_named_by_the_command(postgres: bool) {
    // The untouched database verifies.
    let db = Db::new(postgres).await;
    populate(db.store()).await;
    let clean = audit_verify(&db.url());
    assert_eq!(clean.code, Some(0), "{}", clean.output);
    assert!(
        clean.output.contains("ok: 2 instances, 4 history records"),
        "{}",
        clean.output
    );
    drop(db);

    // Each case has its own database and its own `audit verify` process, so they run a
    // few at a time: the process and the database overlap instead of waiting in turn.
    let failures: Vec<String> = futures::stream::iter(cases())
        .map(|case| async move {
            let db = Db::new(postgres).await;
            let (target, other) = populate(db.store()).await;
            let sql = if postgres { case.postgres } else { case.sqlite };
            db.tamper(&statements(sql, target)).await;
            let v = audit_verify_async(&db.url()).await;
            let named = format!("instance {target} record {}:", case.names_record);
            (v.code != Some(1)
                || !v.output.contains(&named)
                || v.output.contains(&other.to_string()))
            .then(|| {
                format!(
                    "{}: expected exit 1 naming `{named}` (and not the other instance), got {:?}:\n{}",
                    case.name, v.code, v.output
                )
            })
        })
        .buffer_unordered(4)
        .filter_map(std::future::ready)
        .collect()
        .await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn every_tampering_is_named_by_the_command_on_sqlite() {
    every_tampering_is_named_by_the_command(false).await;
}

#[tokio::test]
async fn every_tampering_is_named_by_the_command_on_postgres() {
    every_tampering_is_named_by_the_command(true).await;
}

/// Rewrite `id`'s chain as it was before `data_hash` existed: every record without it,
/// resealed, and the instance's `last_hash` following.
async fn make_legacy(db: &Db, id: Uuid) {
    let records = db.store().history(id).await.unwrap();
    let mut prev = GENESIS_HASH.to_string();
    let mut sql = vec![];
    for r in records {
        let r = HistoryRecord {
            data_hash: None,
            ..r
        }
        .seal(&prev);
        sql.push(format!(
            "UPDATE history SET data_hash = NULL, prev_hash = '{}', hash = '{}' WHERE instance_id = '{id}' AND seq = {}",
            r.prev_hash, r.hash, r.seq
        ));
        prev = r.hash;
    }
    sql.push(format!(
        "UPDATE instances SET last_hash = '{prev}' WHERE id = '{id}'"
    ));
    db.tamper(&sql).await;
}

async fn chains_without_data_hashes_still_verify_and_bind_the_state(postgres: bool) {
    let db = Db::new(postgres).await;
    let (target, other) = populate(db.store()).await;
    make_legacy(&db, target).await;
    make_legacy(&db, other).await;
    let v = audit_verify(&db.url());
    assert_eq!(
        v.code,
        Some(0),
        "a chain of old records verifies: {}",
        v.output
    );
    db.tamper(&[format!(
        "UPDATE instances SET state = 'formal_check' WHERE id = '{target}'"
    )])
    .await;
    let v = audit_verify(&db.url());
    assert_eq!(v.code, Some(1), "{}", v.output);
    assert!(
        v.output.contains(&format!("instance {target} record 3:")),
        "{}",
        v.output
    );
}

#[tokio::test]
async fn chains_without_data_hashes_still_verify_and_bind_the_state_on_sqlite() {
    chains_without_data_hashes_still_verify_and_bind_the_state(false).await;
}

#[tokio::test]
async fn chains_without_data_hashes_still_verify_and_bind_the_state_on_postgres() {
    chains_without_data_hashes_still_verify_and_bind_the_state(true).await;
}
