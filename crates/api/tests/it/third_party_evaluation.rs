//! 第三方绩效评价: the manager assigns a project's evaluation to a third-party institution;
//! its evaluator sees that project and nothing else (lists, by id, exports,
//! subscriptions), records an evaluation scored exactly as the manager's would be, and the
//! comparison report flags the differences from the unit's self-evaluation. A reassignment
//! keeps the history and ends the first institution's view.

use base64::Engine;
use futures::{SinkExt, StreamExt};
use grantflow_api::auth;
use grantflow_store::{
    Instance, Lang, NewInstance, NewOrganisation, NewToken, NewUser, OrgKind, Role, User,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use uuid::Uuid;

use crate::support::{Backend, TestApp, error_code, on_both_backends, spawn_app};

fn file(name: &str) -> Value {
    json!({ "name": name, "sha256": "a".repeat(64), "size": 2048 })
}

/// A project of unit A in `evaluation` (approved targets, acceptance actuals, the unit's
/// self-evaluation score of 100) with a budget line of 300 000 and 240 000 spent.
async fn project_in_evaluation(app: &TestApp, title: &str) -> Instance {
    let wf = app.services.workflows.latest("funded-project").unwrap();
    let indicators = json!([
        { "id": "cases", "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "direction": "higher_is_better", "weight": 1 },
        { "id": "firms", "category": "effect_social", "name": "服务企业数", "unit": "家", "target": 100, "direction": "higher_is_better", "weight": 1 }
    ]);
    let p = app
        .services
        .store
        .create_instance(NewInstance {
            id: Uuid::now_v7(),
            workflow_id: "funded-project".into(),
            workflow_version: wf.def.version,
            state: "evaluation".into(),
            stage: wf.def.state("evaluation").unwrap().stage.clone(),
            data: json!({
                "part": "retained_provincial",
                "applicant_kind": "unit",
                "budget": "300000.00",
                "approved_budget": "300000.00",
                "approved_on": "2024-06-03",
                "indicators": indicators,
                "approved_indicators": indicators,
                "targets_approved": true,
                "task_book": file("任务书.pdf"),
                "milestones": "9月中期检查",
                "execution_end": "2024-12-31",
                "acceptance_report": file("验收报告.pdf"),
                "financial_statement": file("财务决算表.xlsx"),
                "indicator_actuals": [
                    { "id": "cases", "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "actual": 180, "direction": "higher_is_better", "weight": 1 },
                    { "id": "firms", "category": "effect_social", "name": "服务企业数", "unit": "家", "target": 100, "actual": 60, "direction": "higher_is_better", "weight": 1 }
                ],
                "acceptance_outcome": "pass",
                "self_evaluation_report": file("自评报告.pdf"),
                "self_evaluation_score": 100,
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

/// A third-party institution with one evaluator, and a session token for them.
async fn institution(app: &TestApp, name: &str, username: &str) -> (Uuid, User, String) {
    let store = &app.services.store;
    let org = store
        .create_org(NewOrganisation {
            name: name.into(),
            kind: OrgKind::ThirdParty,
            parent_id: Some(app.seed.province.id),
        })
        .await
        .unwrap();
    let user = store
        .create_user(NewUser {
            username: username.into(),
            display_name: format!("{name} 评价员"),
            email: format!("{username}@example.org"),
            org_id: Some(org.id),
            roles: vec![Role::ThirdPartyEvaluator],
            password_hash: auth::hash_password("Grantflow-test-2024"),
            lang: Lang::ZhCn,
        })
        .await
        .unwrap();
    let (token, token_hash) = auth::new_token(auth::SESSION_PREFIX);
    store
        .create_token(NewToken {
            user_id: user.id,
            token_hash,
            kind: "session".into(),
            name: None,
            scopes: auth::scope::ALL.iter().map(ToString::to_string).collect(),
            expires_at: Some(app.services.now() + chrono::Duration::hours(12)),
        })
        .await
        .unwrap();
    (org.id, user, token)
}

/// The first message of `instanceEvents(instanceId: id)` over a real socket.
async fn first_event(app: &TestApp, token: &str, id: Uuid) -> Value {
    let mut req = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })))
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await["type"], "connection_ack");
    ws.send(send(json!({ "id": "s", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { instanceEvents(instanceId: $id) { kind instanceId } }",
        "variables": { "id": id },
    } })))
    .await
    .unwrap();
    recv(&mut ws).await
}

async fn recv<S>(ws: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
            Some(Ok(_)) => {}
            other => panic!("the socket ended: {other:?}"),
        }
    }
}

const INSTANCES: &str = "{ instances(first: 100, filter: { includeFinal: true }) { totalCount edges { node { id title } } } }";
const RECORD: &str = "mutation($id: ID!) { recordThirdPartyEvaluation(instanceId: $id) { instanceId organisationId evaluatorId score { total grade parts { part points } } } }";
const COMPARE: &str = "query($id: ID!) { evaluationComparison(instanceId: $id) { threshold selfEvaluation thirdParty { total grade organisationId parts { part points } } manager { total grade organisationId } differences { dimension between first second difference flagged } } }";

async fn a_third_party_evaluator_sees_and_evaluates_only_what_was_assigned(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = app.session_token("manager").await;
    let assigned = project_in_evaluation(&app, "广州知识产权纠纷调解（第三方评价）").await;
    let other = project_in_evaluation(&app, "深圳专利导航（未委托）").await;
    let (org, evaluator, token) = institution(&app, "广东省知识产权研究会", "tp_eval").await;
    let (org_b, _, token_b) = institution(&app, "广州知识产权评价中心", "tp_eval_b").await;

    // Before any assignment the evaluator sees nothing, and cannot evaluate.
    let list = app.ok(Some(&token), INSTANCES, json!({})).await;
    assert_eq!(list["instances"]["totalCount"], 0);
    let body = app
        .gql(Some(&token), RECORD, json!({ "id": assigned.id }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    // Only a manager assigns, and only to a third-party institution.
    let assign = "mutation($id: ID!, $org: ID!) { assignEvaluation(instanceId: $id, organisationId: $org) { instanceId organisationId assignedBy } }";
    let body = app
        .gql(
            Some(&token),
            assign,
            json!({ "id": assigned.id, "org": org }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = app
        .gql(
            Some(&manager),
            assign,
            json!({ "id": assigned.id, "org": app.seed.unit_b.id }),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["fields"][0]["code"], "NOT_THIRD_PARTY",
        "{body}"
    );
    let done = app
        .ok(
            Some(&manager),
            assign,
            json!({ "id": assigned.id, "org": org }),
        )
        .await;
    assert_eq!(done["assignEvaluation"]["organisationId"], org.to_string());
    assert_eq!(
        done["assignEvaluation"]["assignedBy"],
        app.user("manager").id.to_string()
    );

    // The evaluator: the assigned project in lists, by id, in exports and subscriptions;
    // the other not anywhere; the other institution sees neither.
    let list = app.ok(Some(&token), INSTANCES, json!({})).await;
    assert_eq!(list["instances"]["totalCount"], 1);
    assert_eq!(
        list["instances"]["edges"][0]["node"]["id"],
        assigned.id.to_string()
    );
    let by_id = "query($id: ID!) { instance(id: $id) { id title } }";
    let seen = app
        .ok(Some(&token), by_id, json!({ "id": assigned.id }))
        .await;
    assert_eq!(
        seen["instance"]["title"],
        "广州知识产权纠纷调解（第三方评价）"
    );
    for (t, id) in [
        (&token, other.id),
        (&token_b, assigned.id),
        (&token_b, other.id),
    ] {
        for q in [
            by_id,
            COMPARE,
            "query($id: ID!) { budget(instanceId: $id) { budgeted } }",
        ] {
            let body = app.gql(Some(t), q, json!({ "id": id })).await;
            assert_eq!(error_code(&body), "NOT_FOUND", "{q}: {body}");
        }
        let ev = first_event(&app, t, id).await;
        assert_eq!(
            ev["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{ev}"
        );
        assert_eq!(ev["payload"]["data"], Value::Null, "{ev}");
    }
    let ev = first_event(&app, &token, assigned.id).await;
    assert_eq!(
        ev["payload"]["data"]["instanceEvents"]["kind"], "CURRENT",
        "{ev}"
    );
    let export = app
        .ok(
            Some(&token),
            "{ exportInstances(format: CSV) { contentBase64 } }",
            json!({}),
        )
        .await;
    let csv = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(export["exportInstances"]["contentBase64"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(
        csv.contains("广州知识产权纠纷调解") && !csv.contains("深圳专利导航"),
        "{csv}"
    );
    assert_eq!(
        app.ok(Some(&token_b), INSTANCES, json!({})).await["instances"]["totalCount"],
        0
    );
    // Nor may it act on the project through the workflow.
    let body = app
        .gql(Some(&token), "mutation($id: ID!) { transition(instanceId: $id, event: \"grade\", expectedVersion: 0) { replayed } }", json!({ "id": assigned.id }))
        .await;
    assert_ne!(
        body["errors"][0]["extensions"]["code"],
        Value::Null,
        "{body}"
    );
    assert_eq!(
        app.services
            .store
            .get_instance(assigned.id)
            .await
            .unwrap()
            .state,
        "evaluation"
    );

    // The same scoring as the manager's: the third party's total equals the preview.
    let preview = app
        .ok(
            Some(&manager),
            "query($id: ID!) { evaluationPreview(instanceId: $id) { total grade } }",
            json!({ "id": assigned.id }),
        )
        .await;
    let recorded = app
        .ok(Some(&token), RECORD, json!({ "id": assigned.id }))
        .await;
    let r = &recorded["recordThirdPartyEvaluation"];
    assert_eq!(r["score"]["total"], preview["evaluationPreview"]["total"]);
    assert_eq!(r["score"]["grade"], preview["evaluationPreview"]["grade"]);
    assert_eq!(
        (r["organisationId"].as_str(), r["evaluatorId"].as_str()),
        (
            Some(org.to_string().as_str()),
            Some(evaluator.id.to_string().as_str())
        )
    );
    assert_eq!(
        app.services
            .store
            .get_instance(assigned.id)
            .await
            .unwrap()
            .state,
        "evaluation",
        "the grade stays the manager's"
    );
    let body = app
        .gql(Some(&token), RECORD, json!({ "id": other.id }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    assert!(
        app.services
            .store
            .third_party_evaluation(other.id)
            .await
            .unwrap()
            .is_none()
    );

    // The report: self-evaluation (100) beside both evaluations, differences flagged at 10.
    app.ok(
        Some(&manager),
        "mutation($id: ID!) { evaluateProject(instanceId: $id) { instance { state { id } } } }",
        json!({ "id": assigned.id }),
    )
    .await;
    let cmp = app
        .ok(Some(&token), COMPARE, json!({ "id": assigned.id }))
        .await;
    let c = &cmp["evaluationComparison"];
    let total = preview["evaluationPreview"]["total"].as_f64().unwrap();
    assert_eq!(c["threshold"], 10.0);
    assert_eq!(c["selfEvaluation"], 100.0);
    assert_eq!(c["thirdParty"]["total"], total);
    assert_eq!(c["manager"]["total"], total);
    assert_eq!(c["manager"]["organisationId"], Value::Null);
    let diffs = c["differences"].as_array().unwrap();
    let find = |dimension: &str, between: &str| {
        diffs
            .iter()
            .find(|d| d["dimension"] == dimension && d["between"] == between)
            .unwrap_or_else(|| panic!("{dimension} {between}: {diffs:?}"))
            .clone()
    };
    let rounded = ((total - 100.0) * 100.0).round() / 100.0;
    assert!(rounded <= -10.0, "the fixture scores below 90: {total}");
    for between in ["SELF_VS_THIRD_PARTY", "SELF_VS_MANAGER"] {
        let d = find("TOTAL", between);
        assert_eq!(
            (
                d["first"].as_f64(),
                d["difference"].as_f64(),
                d["flagged"].as_bool()
            ),
            (Some(100.0), Some(rounded), Some(true)),
            "{d}"
        );
    }
    let d = find("TOTAL", "THIRD_PARTY_VS_MANAGER");
    assert_eq!(
        (d["difference"].as_f64(), d["flagged"].as_bool()),
        (Some(0.0), Some(false))
    );
    for part in ["BUDGET_EXECUTION", "OUTPUT", "EFFECT", "SATISFACTION"] {
        assert_eq!(find(part, "THIRD_PARTY_VS_MANAGER")["flagged"], false);
    }

    // Reassigned: the history keeps both, and the first institution's view ends.
    app.ok(
        Some(&manager),
        assign,
        json!({ "id": assigned.id, "org": org_b }),
    )
    .await;
    let history = app
        .ok(
            Some(&manager),
            "query($id: ID!) { evaluationAssignments(instanceId: $id) { organisationId } }",
            json!({ "id": assigned.id }),
        )
        .await;
    assert_eq!(
        history["evaluationAssignments"],
        json!([{ "organisationId": org.to_string() }, { "organisationId": org_b.to_string() }])
    );
    let body = app
        .gql(Some(&token), by_id, json!({ "id": assigned.id }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    assert_eq!(
        app.ok(Some(&token_b), INSTANCES, json!({})).await["instances"]["totalCount"],
        1
    );
}

on_both_backends!(a_third_party_evaluator_sees_and_evaluates_only_what_was_assigned);
