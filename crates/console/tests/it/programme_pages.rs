//! The manager's 公示异议 page and the third-party evaluation pages over HTTP, on SQLite and
//! PostgreSQL: an open objection blocks ending the notice and is shown on the project's
//! page; a blank opinion is refused next to its field, a post without the form token
//! changes nothing, a resolution lands in the store; auditors read without forms, units
//! are refused. A third-party evaluator sees a project only once it is assigned to the
//! institution (before: a 404 page, as in the API).

use grantflow_console::session::csrf_for_session;
use grantflow_service::publicity::NewPublicObjection;
use grantflow_store::{Instance, Lang, NewInstance, NewOrganisation, NewUser, OrgKind, Role};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::handlers::{App, spawn};

/// A project in its public notice, as approval leaves it.
async fn under_publicity(app: &App) -> Instance {
    let wf = app.services.workflows.latest("funded-project").unwrap();
    app.services
        .store
        .create_instance(NewInstance {
            id: Uuid::now_v7(),
            workflow_id: "funded-project".into(),
            workflow_version: wf.def.version,
            state: "publicity".into(),
            stage: "approval".into(),
            data: json!({ "approved_budget": "200000.00", "part": "retained_provincial" }),
            parent_id: None,
            org_id: app.user("applicant_a").org_id.unwrap(),
            title: "广州商标品牌指导站建设".into(),
            created_by: app.user("applicant_a").id,
            created_at: app.services.now(),
            due_at: None,
            timers: vec![],
        })
        .await
        .unwrap()
}

async fn post(app: &App, session: &str, path: &str, body: String) -> (StatusCode, String) {
    let r = app
        .http
        .post(format!("{}{path}", app.base))
        .header("cookie", format!("gf_session={session}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn the_manager_resolves_a_public_objection(app: App) {
    let p = under_publicity(&app).await;
    let objection = app
        .services
        .submit_public_objection(NewPublicObjection {
            instance_id: p.id,
            name: "李女士".into(),
            contact: "li@example.com".into(),
            reason: "与本区已资助项目内容重复".into(),
        })
        .await
        .unwrap();
    let manager = app.session("manager").await;
    let csrf = csrf_for_session(&manager);

    let (status, page) = app.get("/objections?open=1", &manager).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("与本区已资助项目内容重复") && page.contains("广州商标品牌指导站建设"));
    assert!(
        page.contains(&format!("/objections/{}/resolve", objection.id)),
        "{page}"
    );
    let (_, page) = app.get(&format!("/instances/{}", p.id), &manager).await;
    assert!(
        page.contains("open-objections") && page.contains("与本区已资助项目内容重复"),
        "the project's page lists its open objection"
    );
    // Ending the notice is refused while it is open.
    let (status, page) = post(
        &app,
        &manager,
        &format!("/instances/{}/fire", p.id),
        format!("csrf={csrf}&event=publicity_ended&version=0"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("公示异议尚未处理完毕"), "{page}");

    let path = format!("/objections/{}/resolve", objection.id);
    let (status, _) = post(&app, &manager, &path, "outcome=DISMISSED&reason=ok".into()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no form token, no change");
    let (status, page) = post(
        &app,
        &manager,
        &path,
        format!("csrf={csrf}&outcome=DISMISSED&reason=+++"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains(&format!("id=\"opinion-{}-err\"", objection.id)),
        "a blank opinion is refused next to its field: {page}"
    );
    let stored = app
        .services
        .store
        .objections(Some(p.id), true, 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "still open");

    let (status, _) = post(
        &app,
        &manager,
        &path,
        format!(
            "csrf={csrf}&outcome=DISMISSED&reason=%E7%BB%8F%E6%A0%B8%E6%9F%A5%E4%B8%8D%E9%87%8D%E5%A4%8D&back=%2Finstances%2F{}",
            p.id
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        app.services
            .store
            .objections(Some(p.id), true, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let (_, page) = app.get(&format!("/instances/{}", p.id), &manager).await;
    assert!(!page.contains("open-objections"), "nothing open is left");
    let (_, page) = app.get("/objections", &manager).await;
    assert!(
        page.contains("经核查不重复") && page.contains("异议不成立"),
        "{page}"
    );

    // The auditor reads the same page without forms; a unit is refused.
    let (status, page) = app.get("/objections", &app.session("auditor").await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("与本区已资助项目内容重复") && !page.contains("/resolve\""));
    let (status, _) = app
        .get("/objections", &app.session("applicant_a").await)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn a_third_party_evaluator_sees_only_what_is_assigned(mut app: App) {
    let p = under_publicity(&app).await;
    let store = &app.services.store;
    let province = app.user("manager").org_id;
    let institution = store
        .create_org(NewOrganisation {
            name: "省知识产权研究会".into(),
            kind: OrgKind::ThirdParty,
            parent_id: province,
        })
        .await
        .unwrap();
    let evaluator = store
        .create_user(NewUser {
            username: "tp_eval".into(),
            display_name: "评价员".into(),
            email: "tp_eval@example.gov.cn".into(),
            org_id: Some(institution.id),
            roles: vec![Role::ThirdPartyEvaluator],
            // Never used to log in here: sessions are minted.
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                .into(),
            lang: Lang::ZhCn,
        })
        .await
        .unwrap();
    app.users.push(evaluator);
    let tp = app.session("tp_eval").await;
    let page_path = format!("/instances/{}/third-party", p.id);
    assert_eq!(app.get(&page_path, &tp).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("/instances/{}", p.id), &tp).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = app.get("/third-party", &tp).await;
    assert!(!list.contains("广州商标品牌指导站建设"));

    // The manager chooses the institution from the list of third-party institutions.
    let manager = app.session("manager").await;
    let (status, page) = app.get(&page_path, &manager).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&format!("<option value=\"{}\"", institution.id)),
        "{page}"
    );
    let (status, _) = post(
        &app,
        &manager,
        &format!("{page_path}/assign"),
        format!(
            "csrf={}&organisation={}",
            csrf_for_session(&manager),
            institution.id
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let (status, page) = app.get(&page_path, &tp).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("省知识产权研究会"), "{page}");
    let (_, list) = app.get("/third-party", &tp).await;
    assert!(list.contains("广州商标品牌指导站建设"), "{list}");
}

mod sqlite {
    use grantflow_testkit::Backend::Sqlite;

    #[tokio::test]
    async fn the_manager_resolves_a_public_objection() {
        super::the_manager_resolves_a_public_objection(super::spawn(Sqlite).await).await;
    }

    #[tokio::test]
    async fn a_third_party_evaluator_sees_only_what_is_assigned() {
        super::a_third_party_evaluator_sees_only_what_is_assigned(super::spawn(Sqlite).await).await;
    }
}

mod postgres {
    use grantflow_testkit::Backend::Postgres;

    #[tokio::test]
    async fn the_manager_resolves_a_public_objection() {
        super::the_manager_resolves_a_public_objection(super::spawn(Postgres).await).await;
    }

    #[tokio::test]
    async fn a_third_party_evaluator_sees_only_what_is_assigned() {
        super::a_third_party_evaluator_sees_only_what_is_assigned(super::spawn(Postgres).await)
            .await;
    }
}
