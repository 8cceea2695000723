//! The reminders of expert review assignments go through the scheduler to the one expert
//! they belong to (`expert:<user id>`), and stop once the expert has submitted — on SQLite
//! and PostgreSQL.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use grantflow_domain::calendar::WorkCalendar;
use grantflow_mail::{MailConfig, Mailer};
use grantflow_review::scoring::{CriterionScore, ScoreSheet};
use grantflow_scheduler::{Scheduler, SchedulerSettings};
use grantflow_service::review::ProfileUpdate;
use grantflow_service::{CreateInstance, FireEvent, ManualClock, Services};
use grantflow_store::{Lang, NewOrganisation, NewUser, OrgKind, Role, Store, User};
use grantflow_testkit::{Backend, TestDb};
use serde_json::json;

async fn person(store: &dyn Store, name: &str, org: uuid::Uuid, role: Role) -> User {
    store
        .create_user(NewUser {
            username: name.into(),
            display_name: format!("{name} 用户"),
            email: format!("{name}@example.gov.cn"),
            org_id: Some(org),
            roles: vec![role],
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$x".into(),
            lang: Lang::ZhCn,
        })
        .await
        .unwrap()
}

async fn reminders_reach_the_expert(db: TestDb) {
    let store = db.shared();
    let registry = grantflow_testkit::registry_of(&["funded-project"]);
    let start: DateTime<Utc> = "2024-06-03T02:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let services = Services::new(
        store.clone(),
        Arc::new(registry),
        Arc::new(WorkCalendar::builtin()),
        clock.clone(),
    );
    services.register_workflows().await.unwrap();
    let s = store.as_ref();
    let org = |name: &str, kind, parent: Option<uuid::Uuid>| NewOrganisation {
        name: name.into(),
        kind,
        parent_id: parent,
    };
    let province = s
        .create_org(org("省局", OrgKind::Province, None))
        .await
        .unwrap();
    let city = s
        .create_org(org("广州市局", OrgKind::City, Some(province.id)))
        .await
        .unwrap();
    let unit = s
        .create_org(org("申报单位", OrgKind::Unit, Some(city.id)))
        .await
        .unwrap();
    let manager = person(s, "manager", province.id, Role::Manager).await;
    let city_user = person(s, "city", city.id, Role::City).await;
    let applicant = person(s, "applicant", unit.id, Role::Applicant).await;
    let reviews = services.reviews();
    let mut experts = Vec::new();
    for k in 0..3 {
        let home = s
            .create_org(org(&format!("研究院{k}"), OrgKind::Unit, Some(city.id)))
            .await
            .unwrap();
        let e = person(s, &format!("expert{k}"), home.id, Role::Expert).await;
        reviews
            .upsert_expert_profile(
                &manager,
                ProfileUpdate {
                    user_id: e.id,
                    categories: vec![3],
                    keywords: vec![],
                    workload_cap: 5,
                    status: "active".into(),
                },
            )
            .await
            .unwrap();
        experts.push(e);
    }
    let call = services
        .open_call(
            &manager,
            grantflow_service::programme::OpenCall {
                year: None,
                title: None,
                issuer: None,
                closing_date: Some("2024-06-28".parse().unwrap()),
                correction_window_days: None,
                catalogue: grantflow_programme::catalogue::Catalogue::from_toml_str(include_str!(
                    "../../../../workflows/calls/2022.toml"
                ))
                .unwrap(),
            },
        )
        .await
        .unwrap()
        .id;
    let mut inst = services
        .create_instance(
            &applicant,
            CreateInstance {
                workflow_id: "funded-project".into(),
                org_id: None,
                parent_id: None,
                title: "专利导航项目".into(),
                data: json!({}),
                call_id: Some(call),
                catalogue_item: Some("2022-2-1-5".into()),
            },
        )
        .await
        .unwrap();
    let submit = json!({
        "project_name": "专利导航", "budget": "300000",
        "indicators": [{ "name": "报告", "category": "output_quantity", "target": 3 }, { "name": "受益单位", "category": "effect_social", "unit": "家", "target": 20 }],
        "application_files": [{ "name": "申报书.pdf", "sha256": "ab".repeat(32), "size": 1 }],
    });
    for (who, event, input) in [
        (&applicant, "submit", submit),
        (&city_user, "recommend", json!({})),
        (&manager, "pass_formal_check", json!({})),
    ] {
        inst = services
            .fire(
                who,
                FireEvent {
                    instance_id: inst.id,
                    event: event.into(),
                    expected_version: inst.version,
                    idempotency_key: None,
                    input,
                    reason: None,
                },
            )
            .await
            .unwrap()
            .instance;
    }
    let panel = reviews
        .auto_assign(&manager, inst.id, Some(11))
        .await
        .unwrap()
        .assignments;
    let due = panel[0].due_at.unwrap();
    // The first expert is done before the first reminder.
    let first = experts.iter().find(|e| e.id == panel[0].expert_id).unwrap();
    reviews
        .declare_no_conflict(first, panel[0].id)
        .await
        .unwrap();
    let sheet = ["necessity", "feasibility", "performance_targets", "budget"]
        .iter()
        .fold(ScoreSheet::new(), |s, c| {
            s.with(*c, CriterionScore::new(80.0))
        });
    reviews
        .submit_scores(first, panel[0].id, sheet, None)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mail: MailConfig =
        serde_json::from_value(json!({ "transport": "eml_folder", "dir": dir.path() })).unwrap();
    let scheduler = Scheduler::new(
        services.clone(),
        Mailer::from_config(&mail).unwrap(),
        SchedulerSettings::default(),
    )
    .unwrap();
    // The `3wd` reminder of the round's ladder is due by then, for every assignment.
    scheduler.run_once(due - Duration::days(3)).await.unwrap();
    let mut to: Vec<String> = s
        .list_outbox(None, Some(inst.id), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.template == "reminder")
        .map(|m| m.to_address)
        .collect();
    to.sort();
    to.dedup();
    let mut expected: Vec<String> = panel[1..]
        .iter()
        .map(|a| {
            let e = experts.iter().find(|e| e.id == a.expert_id).unwrap();
            e.email.clone()
        })
        .collect();
    expected.sort();
    assert_eq!(
        to, expected,
        "each open assignment's expert is reminded; the one who submitted is not"
    );
}

#[tokio::test]
async fn review_reminders_reach_each_expert_on_sqlite() {
    reminders_reach_the_expert(TestDb::new(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn review_reminders_reach_each_expert_on_postgres() {
    reminders_reach_the_expert(TestDb::new(Backend::Postgres).await).await;
}
