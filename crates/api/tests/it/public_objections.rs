//! 公示 in public: the list of projects under publicity and the objection form without a
//! token, the manager resolving objections, approval held while one is open (the
//! manager's events and the scheduler's timeout), the limits of the form, and that an
//! anonymous viewer sees nothing else.

use chrono::Duration;
use grantflow_api::ApiSettings;
use grantflow_store::{Instance, NewInstance};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{
    Backend, TEST_ITEM, TestApp, error_code, on_both_backends, spawn_app, spawn_app_with,
};

const CONTACT_PERSON: &str = "欧阳明远";

/// A project of unit A in `decision`, written straight into the store, with a budget line
/// added by the manager: ready for `approve`.
async fn project_in_decision(app: &TestApp, title: &str) -> Instance {
    let call = app.call_id().await;
    let wf = app.services.workflows.latest("funded-project").unwrap();
    let p = app
        .services
        .store
        .create_instance(NewInstance {
            id: Uuid::now_v7(),
            workflow_id: "funded-project".into(),
            workflow_version: wf.def.version,
            state: "decision".into(),
            stage: "approval".into(),
            data: json!({
                "call_id": call.to_string(),
                "catalogue_item": TEST_ITEM,
                "part": "retained_provincial",
                "applicant_kind": "unit",
                "budget": "300000.00",
                "contact_name": CONTACT_PERSON,
                "summary": "内部材料：调解工作站选址方案",
                "indicators": [
                    { "id": "cases", "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "direction": "higher_is_better", "weight": 1 }
                ],
            }),
            parent_id: None,
            org_id: app.seed.unit_a.id,
            title: title.into(),
            created_by: app.user("applicant_a").id,
            created_at: app.services.now(),
            due_at: None,
            timers: vec![],
        })
        .await
        .unwrap();
    let manager = app.session_token("manager").await;
    app.ok(
        Some(&manager),
        r#"mutation($id: ID!) { addBudgetLine(instanceId: $id, input: { year: 2024, subject: "调解工作站建设", amount: "300000" }) { id } }"#,
        json!({ "id": p.id }),
    )
    .await;
    app.services.store.get_instance(p.id).await.unwrap()
}

/// A project approved on 2024-06-03 (the tests' clock): under publicity.
async fn under_publicity(app: &TestApp, title: &str) -> Instance {
    let p = project_in_decision(app, title).await;
    app.fire_with(
        "manager",
        p.id,
        "approve",
        json!({ "approved_budget": "300000", "targets_approved": true }),
        None,
    )
    .await
    .unwrap()
}

const LIST: &str = "{ publicityList { instanceId title unit catalogueItem catalogueItemName amount publicityStart publicityEnd } }";
const SUBMIT: &str = "mutation($input: PublicObjectionInput!) { submitPublicObjection(input: $input) { id submittedAt } }";
const RESOLVE: &str = "mutation($id: ID!, $o: ObjectionOutcome!, $r: String!) { resolvePublicObjection(objectionId: $id, outcome: $o, reason: $r) { id status resolution resolvedBy history { action reason actorId } } }";
const TRANSITION: &str = "mutation($id: ID!, $e: String!, $v: Int!, $r: String) { transition(instanceId: $id, event: $e, expectedVersion: $v, reason: $r) { instance { id state { id } } } }";

fn objection(id: Uuid, reason: &str) -> Value {
    json!({ "input": { "instanceId": id, "name": "张三", "contact": "13800000000", "reason": reason } })
}

async fn publicity_list_objection_and_resolution(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = under_publicity(&app, "广州知识产权纠纷调解能力提升").await;
    assert_eq!(p.state, "publicity");
    // Projects elsewhere in their lifecycle are not published.
    project_in_decision(&app, "仍在立项决定的项目").await;

    // Anyone, without a token: only what a 公示 publishes.
    let list = app.ok(None, LIST, json!({})).await;
    assert_eq!(
        list["publicityList"],
        json!([{
            "instanceId": p.id.to_string(),
            "title": "广州知识产权纠纷调解能力提升",
            "unit": app.seed.unit_a.name,
            "catalogueItem": TEST_ITEM,
            "catalogueItemName": "知识产权纠纷调解能力提升",
            "amount": p.data["approved_budget"],
            "publicityStart": "2024-06-03",
            "publicityEnd": "2024-06-10",
        }]),
    );
    let text = list.to_string();
    assert!(
        !text.contains(CONTACT_PERSON) && !text.contains("内部材料"),
        "{text}"
    );

    // The downloads at public paths say the same.
    let base = format!("http://{}", app.addr);
    let json_body: Value = app
        .http
        .get(format!("{base}/public/publicity.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json_body["projects"][0]["instanceId"], p.id.to_string());
    assert_eq!(
        json_body["projects"][0]["amount"],
        p.data["approved_budget"]
    );
    assert_eq!(json_body["projects"].as_array().unwrap().len(), 1);
    let csv = app
        .http
        .get(format!("{base}/public/publicity.csv"))
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    assert!(
        csv.contains("项目名称 project") && csv.contains("广州知识产权纠纷调解能力提升,"),
        "{csv}"
    );
    assert!(
        csv.contains("2024-06-10") && !csv.contains(CONTACT_PERSON),
        "{csv}"
    );

    // Nothing else without a token.
    for q in [
        "query($id: ID!) { instance(id: $id) { id } }",
        "query($id: ID!) { publicObjections(instanceId: $id) { id } }",
        "query($id: ID!) { budget(instanceId: $id) { budgeted } }",
    ] {
        let body = app.gql(None, q, json!({ "id": p.id })).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{q}: {body}");
    }
    let body = app
        .gql(None, "{ instances(first: 5) { totalCount } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");

    // An objection without a token; a project not under publicity is NOT_FOUND.
    let receipt = app
        .ok(
            None,
            SUBMIT,
            objection(p.id, "该单位已获同类项目资助，存在重复申报。"),
        )
        .await;
    let oid = receipt["submitPublicObjection"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = project_in_decision(&app, "未公示").await;
    for id in [other.id, Uuid::now_v7()] {
        let body = app.gql(None, SUBMIT, objection(id, "理由")).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    }

    // The manager sees it, listed and on the instance; the applicant may not.
    let manager = app.session_token("manager").await;
    let listed = app
        .ok(Some(&manager), "query($id: ID!) { publicObjections(openOnly: true) { id instanceId name contact reason status } instance(id: $id) { publicObjections { id status } } }", json!({ "id": p.id }))
        .await;
    assert_eq!(
        listed["publicObjections"],
        json!([{ "id": oid, "instanceId": p.id.to_string(), "name": "张三", "contact": "13800000000", "reason": "该单位已获同类项目资助，存在重复申报。", "status": "OPEN" }])
    );
    assert_eq!(
        listed["instance"]["publicObjections"],
        json!([{ "id": oid, "status": "OPEN" }])
    );
    let unit = app.session_token("applicant_a").await;
    for (q, vars) in [
        ("{ publicObjections { id } }", json!({})),
        (RESOLVE, json!({ "id": oid, "o": "DISMISSED", "r": "x" })),
    ] {
        let body = app.gql(Some(&unit), q, vars).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }

    // Approval does not continue while it is open: the manager's event …
    let before = app.services.store.get_instance(p.id).await.unwrap();
    let body = app
        .gql(
            Some(&manager),
            TRANSITION,
            json!({ "id": p.id, "e": "publicity_ended", "v": before.version }),
        )
        .await;
    assert_eq!(error_code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["reason"],
        "OBJECTION_UNRESOLVED"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["openObjections"],
        1
    );
    // … and the scheduler's timeout, which is spent without moving the project.
    app.clock.advance(Duration::days(8));
    let claimed = app
        .services
        .store
        .claim_due_timers(app.services.now(), 100, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let timeout = claimed
        .iter()
        .find(|c| {
            c.timer.instance_id == p.id && c.timer.event.as_deref() == Some("publicity_ended")
        })
        .expect("the publicity timeout is due");
    assert!(app.services.fire_timer(timeout).await.unwrap().is_none());
    let after = app.services.store.get_instance(p.id).await.unwrap();
    assert_eq!(
        (after.state.as_str(), after.version),
        ("publicity", before.version)
    );
    // (Eight days on: a fresh session.)
    let manager = app.session_token("manager").await;

    // The manager dismisses it with a reason; the history is kept; it cannot be resolved twice.
    let resolved = app
        .ok(
            Some(&manager),
            RESOLVE,
            json!({ "id": oid, "o": "DISMISSED", "r": "经核查，不存在重复资助。" }),
        )
        .await;
    let r = &resolved["resolvePublicObjection"];
    assert_eq!(r["status"], "DISMISSED");
    assert_eq!(r["resolution"], "经核查，不存在重复资助。");
    assert_eq!(r["resolvedBy"], app.user("manager").id.to_string());
    assert_eq!(
        r["history"],
        json!([
            { "action": "submitted", "reason": null, "actorId": null },
            { "action": "dismissed", "reason": "经核查，不存在重复资助。", "actorId": app.user("manager").id.to_string() },
        ])
    );
    let again = app
        .gql(
            Some(&manager),
            RESOLVE,
            json!({ "id": oid, "o": "UPHELD", "r": "改判" }),
        )
        .await;
    assert_eq!(
        again["errors"][0]["extensions"]["details"]["reason"], "OBJECTION_ALREADY_RESOLVED",
        "{again}"
    );
    let stored = app
        .services
        .store
        .get_objection(oid.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        stored.resolution.as_deref(),
        Some("经核查，不存在重复资助。")
    );

    // Now the publicity ends, and the project leaves the public list.
    let ended = app
        .ok(
            Some(&manager),
            TRANSITION,
            json!({ "id": p.id, "e": "publicity_ended", "v": after.version }),
        )
        .await;
    assert_eq!(ended["transition"]["instance"]["state"]["id"], "task_book");
    assert_eq!(
        app.ok(None, LIST, json!({})).await["publicityList"],
        json!([])
    );
    let body = app.gql(None, SUBMIT, objection(p.id, "迟到的异议")).await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}

async fn objection_review_waits_for_every_public_objection(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = under_publicity(&app, "佛山专利导航").await;
    let first = app.ok(None, SUBMIT, objection(p.id, "第一条异议")).await;
    let second = app.ok(None, SUBMIT, objection(p.id, "第二条异议")).await;
    // The manager opens the objection review (allowed), but cannot dismiss while any is open.
    let p = app
        .fire_with(
            "manager",
            p.id,
            "raise_objection",
            json!({ "objection": "收到公众异议 2 件" }),
            None,
        )
        .await
        .unwrap();
    assert_eq!(p.state, "objection_review");
    // Still listed: the publicity period runs until the objections are settled.
    let list = app.ok(None, LIST, json!({})).await;
    assert_eq!(list["publicityList"][0]["instanceId"], p.id.to_string());
    assert_eq!(list["publicityList"][0]["publicityEnd"], "2024-06-10");
    let manager = app.session_token("manager").await;
    let first_id = first["submitPublicObjection"]["id"].as_str().unwrap();
    app.ok(
        Some(&manager),
        RESOLVE,
        json!({ "id": first_id, "o": "DISMISSED", "r": "不成立" }),
    )
    .await;
    let err = app
        .fire_with(
            "manager",
            p.id,
            "dismiss_objection",
            json!({}),
            Some("异议不成立"),
        )
        .await
        .unwrap_err();
    let grantflow_service::ServiceError::Refused(r) = err else {
        panic!("{err:?}")
    };
    assert_eq!(r.reason.as_str(), "OBJECTION_UNRESOLVED");
    assert_eq!(r.details["openObjections"], 1);
    assert_eq!(
        app.services.store.get_instance(p.id).await.unwrap().version,
        p.version
    );
    // Upheld: the manager revokes the approval.
    let second_id = second["submitPublicObjection"]["id"].as_str().unwrap();
    app.ok(
        Some(&manager),
        RESOLVE,
        json!({ "id": second_id, "o": "UPHELD", "r": "重复资助属实" }),
    )
    .await;
    let p = app
        .fire_with(
            "manager",
            p.id,
            "uphold_objection",
            json!({}),
            Some("重复资助属实"),
        )
        .await
        .unwrap();
    assert_eq!(p.state, "not_funded");
    let all = app
        .ok(
            Some(&manager),
            "query($id: ID!) { publicObjections(instanceId: $id) { status } }",
            json!({ "id": p.id }),
        )
        .await;
    assert_eq!(
        all["publicObjections"],
        json!([{ "status": "UPHELD" }, { "status": "DISMISSED" }])
    );
}

async fn post_from(app: &TestApp, forwarded: &str, vars: &Value) -> Value {
    app.http
        .post(app.url())
        .header("content-type", "application/json")
        .header("x-forwarded-for", forwarded)
        .json(&json!({ "query": SUBMIT, "variables": vars }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn oversized_and_rate_limited_objections_are_refused(backend: Backend) {
    let settings = ApiSettings {
        trusted_proxy_hops: 1,
        ..ApiSettings::default()
    };
    let app = spawn_app_with(backend, settings).await;
    let p = under_publicity(&app, "深圳知识产权保护").await;
    let field = |body: &Value| {
        (
            error_code(body).to_string(),
            body["errors"][0]["extensions"]["details"]["fields"][0]["field"].clone(),
            body["errors"][0]["extensions"]["details"]["fields"][0]["code"].clone(),
        )
    };
    let a = "203.0.113.7";
    let mut vars = objection(p.id, "理由");
    vars["input"]["name"] = json!("名".repeat(101));
    assert_eq!(
        field(&post_from(&app, a, &vars).await),
        ("INVALID_INPUT".into(), json!("name"), json!("TOO_LONG"))
    );
    let mut vars = objection(p.id, &"异".repeat(4001));
    assert_eq!(
        field(&post_from(&app, a, &vars).await),
        ("INVALID_INPUT".into(), json!("reason"), json!("TOO_LONG"))
    );
    vars["input"]["reason"] = json!("x".repeat(200_000));
    assert_eq!(
        field(&post_from(&app, a, &vars).await),
        ("INVALID_INPUT".into(), json!("reason"), json!("TOO_LONG"))
    );
    let mut vars = objection(p.id, "理由");
    vars["input"]["contact"] = json!("   ");
    assert_eq!(
        field(&post_from(&app, a, &vars).await),
        ("INVALID_INPUT".into(), json!("contact"), json!("REQUIRED"))
    );
    let count = || async {
        app.services
            .store
            .objections(Some(p.id), false, 100)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(count().await, 0, "a refused objection stores nothing");

    // Five an hour per address (refused ones count too): the fifth is stored, the sixth not.
    let ok = post_from(&app, a, &objection(p.id, "第五次")).await;
    assert!(
        ok["data"]["submitPublicObjection"]["id"].is_string(),
        "{ok}"
    );
    let limited = post_from(&app, a, &objection(p.id, "第六次")).await;
    assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
    let details = &limited["errors"][0]["extensions"]["details"];
    assert_eq!(details["reason"], "TOO_MANY_OBJECTIONS");
    assert!(
        details["retryAfterSeconds"].as_u64().unwrap() > 3000,
        "{details}"
    );
    assert_eq!(count().await, 1);
    // A client cannot escape by writing its own X-Forwarded-For entry; another address can.
    let spoofed = post_from(
        &app,
        &format!("198.51.100.9, {a}"),
        &objection(p.id, "伪造"),
    )
    .await;
    assert_eq!(error_code(&spoofed), "RATE_LIMITED");
    let other = post_from(&app, "198.51.100.9", &objection(p.id, "另一地址")).await;
    assert!(
        other["data"]["submitPublicObjection"]["id"].is_string(),
        "{other}"
    );
    // An hour later the address may object again.
    app.clock.advance(Duration::minutes(61));
    let later = post_from(&app, a, &objection(p.id, "一小时后")).await;
    assert!(
        later["data"]["submitPublicObjection"]["id"].is_string(),
        "{later}"
    );
    assert_eq!(count().await, 3);
}

on_both_backends!(
    publicity_list_objection_and_resolution,
    objection_review_waits_for_every_public_objection,
    oversized_and_rate_limited_objections_are_refused,
);
