//! One project from application to archive, driven over HTTP by a manager, an applicant,
//! a city bureau and three expert reviewers who score it, each with their own session — on
//! SQLite and on PostgreSQL.

use crate::support;

use serde_json::{Value, json};
use support::{Backend, error_code, spawn_app};

const TRANSITION: &str = r#"
mutation($id: ID!, $event: String!, $v: Int!, $key: String, $input: JSON, $reason: String) {
  transition(instanceId: $id, event: $event, expectedVersion: $v, idempotencyKey: $key, input: $input, reason: $reason) {
    replayed
    instance { id version state { id } stage { id } final dueAt }
    historyEntry { seq event fromState toState actorRoles hash prevHash }
  }
}"#;

async fn fire(
    app: &support::TestApp,
    token: &str,
    id: &str,
    event: &str,
    version: i64,
    input: Value,
) -> Value {
    let reason = if ["return_for_correction", "decline"].contains(&event) {
        Some("理由")
    } else {
        None
    };
    let data = app
        .ok(
            Some(token),
            TRANSITION,
            json!({ "id": id, "event": event, "v": version, "key": format!("{event}-{version}"), "input": input, "reason": reason }),
        )
        .await;
    data["transition"].clone()
}

fn file(name: &str) -> Value {
    json!({ "name": name, "sha256": "a".repeat(64), "size": 2048 })
}

#[tokio::test]
async fn a_project_goes_from_application_to_archive_over_http_on_sqlite() {
    application_to_archive(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_project_goes_from_application_to_archive_over_http_on_postgres() {
    application_to_archive(Backend::Postgres).await;
}

async fn application_to_archive(backend: Backend) {
    let app = spawn_app(backend).await;
    let applicant = app.login("applicant_a").await;
    let city = app.login("city_gz").await;
    let manager = app.login("manager").await;
    let expert = app.login("expert1").await;

    let created = app
        .ok(
            Some(&applicant),
            r#"mutation($input: CreateInstanceInput!) { createInstance(input: $input) { id version state { id } dueAt timers(pendingOnly: true) { kind key } } }"#,
            json!({ "input": {
                "workflowId": "funded-project",
                "title": "广州市知识产权纠纷调解能力提升项目",
                "callId": app.call_id().await,
                "catalogueItem": support::TEST_ITEM
            }}),
        )
        .await;
    let id = created["createInstance"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(created["createInstance"]["state"]["id"], "drafting");
    assert_eq!(
        created["createInstance"]["dueAt"],
        "2024-06-28T16:00:00+00:00"
    );
    let keys: Vec<&str> = created["createInstance"]["timers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"reminder:7d") && keys.contains(&"timeout"),
        "{keys:?}"
    );

    // The applicant sees what they can do, and why the rest is not possible.
    let options = app
        .ok(Some(&applicant), "query($id: ID!) { instance(id: $id) { availableTransitions { event available unavailableReason { code } } } }", json!({ "id": id }))
        .await;
    let submit = options["instance"]["availableTransitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["event"] == "submit")
        .unwrap()
        .clone();
    assert_eq!(submit["available"], true);

    let t = fire(&app, &applicant, &id, "submit", 0, json!({
        "project_name": "知识产权纠纷调解能力提升",
        "budget": "300000",
        "indicators": [{ "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "direction": "higher_is_better", "weight": 1 }, { "name": "受益单位", "category": "effect_social", "unit": "家", "target": 20 }],
        "application_files": [file("申报书.pdf")]
    })).await;
    assert_eq!(t["instance"]["state"]["id"], "city_review");
    assert_eq!(t["historyEntry"]["seq"], 1);

    // Repeating the same request with the same idempotency key changes nothing.
    let again = app
        .ok(Some(&applicant), TRANSITION, json!({ "id": id, "event": "submit", "v": 0, "key": "submit-0", "input": {
            "project_name": "知识产权纠纷调解能力提升",
            "budget": "300000",
            "indicators": [{ "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "direction": "higher_is_better", "weight": 1 }, { "name": "受益单位", "category": "effect_social", "unit": "家", "target": 20 }],
            "application_files": [file("申报书.pdf")]
        }}))
        .await;
    assert_eq!(again["transition"]["replayed"], true);
    assert_eq!(again["transition"]["instance"]["version"], 1);

    // A stale version is a CONFLICT naming the current version.
    let stale = app
        .gql(
            Some(&city),
            TRANSITION,
            json!({ "id": id, "event": "recommend", "v": 0 }),
        )
        .await;
    assert_eq!(error_code(&stale), "CONFLICT");
    assert_eq!(
        stale["errors"][0]["extensions"]["details"]["currentVersion"],
        1
    );

    let t = fire(
        &app,
        &city,
        &id,
        "recommend",
        1,
        json!({ "city_opinion": "同意推荐" }),
    )
    .await;
    assert_eq!(t["instance"]["stage"]["id"], "formal_check");
    let t = fire(&app, &manager, &id, "pass_formal_check", 2, json!({})).await;
    assert_eq!(t["instance"]["state"]["id"], "expert_review");

    // Expert review: the manager puts three experts into the pool and on the panel; an
    // expert sees the project only once they declared no conflict, then scores it.
    let hidden = app
        .gql(
            Some(&expert),
            "query($id: ID!) { instance(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND");
    let panel = ["expert1", "expert2", "expert3"];
    for name in panel {
        app.ok(
            Some(&manager),
            "mutation($id: ID!) { upsertExpertProfile(input: { userId: $id, categories: [3], workloadCap: 5 }) { status } }",
            json!({ "id": app.user(name).id.to_string() }),
        )
        .await;
    }
    let experts: Vec<String> = panel
        .iter()
        .map(|name| app.user(name).id.to_string())
        .collect();
    app.ok(
        Some(&manager),
        "mutation($id: ID!, $e: [ID!]!) { assignReviewers(instanceId: $id, expertIds: $e) { id } }",
        json!({ "id": id, "e": experts }),
    )
    .await;

    // Without a review result the guard holds the project in review.
    let early = app
        .gql(
            Some(&manager),
            TRANSITION,
            json!({ "id": id, "event": "conclude_review", "v": 3 }),
        )
        .await;
    assert_eq!(error_code(&early), "GUARD_FAILED", "{early}");
    let mut reviewers = vec![expert.clone()];
    for name in &panel[1..] {
        reviewers.push(app.session_token(name).await);
    }
    for (token, score) in reviewers.iter().zip([80, 82, 85]) {
        let queue = app.ok(Some(token), "{ myReviews { id } }", json!({})).await;
        let assignment = queue["myReviews"][0]["id"].clone();
        app.ok(
            Some(token),
            "mutation($a: ID!) { declareNoConflict(assignmentId: $a) { state } }",
            json!({ "a": assignment }),
        )
        .await;
        let scores: Vec<Value> = ["necessity", "feasibility", "performance_targets", "budget"]
            .iter()
            .map(|c| json!({ "criterion": c, "score": score }))
            .collect();
        let submitted = app
            .ok(
                Some(token),
                "mutation($a: ID!, $s: [ScoreInput!]!) { submitScores(assignmentId: $a, scores: $s) { total } }",
                json!({ "a": assignment, "s": scores }),
            )
            .await;
        assert_eq!(submitted["submitScores"]["total"], f64::from(score));
    }
    let seen = app
        .ok(
            Some(&expert),
            "query($id: ID!) { instance(id: $id) { title state { id } review } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(seen["instance"]["state"]["id"], "expert_review");
    assert_eq!(seen["instance"]["review"]["count"], 3);

    let t = fire(&app, &manager, &id, "conclude_review", 3, json!({})).await;
    assert_eq!(t["instance"]["state"]["id"], "decision");
    // 先有预算再有执行: the manager adds the budget line the approval guard asks for.
    let line = app
        .ok(
            Some(&manager),
            r#"mutation($id: ID!) { addBudgetLine(instanceId: $id, input: { year: 2024, subject: "项目经费", amount: "280000" }) { amount source } }"#,
            json!({ "id": id }),
        )
        .await;
    assert_eq!(line["addBudgetLine"]["source"], "省级财政专项资金");
    // Funding beyond the request is refused by the guard, with its message.
    let over = app
        .gql(Some(&manager), TRANSITION, json!({ "id": id, "event": "approve", "v": 4, "input": { "approved_budget": "400000", "targets_approved": true } }))
        .await;
    assert_eq!(error_code(&over), "GUARD_FAILED");
    let t = fire(&app, &manager, &id, "approve", 4, json!({ "approved_budget": "280000", "targets_approved": true, "budget_line_id": "GD-2024-IP-017" })).await;
    assert_eq!(t["instance"]["state"]["id"], "publicity");
    let t = fire(&app, &manager, &id, "publicity_ended", 5, json!({})).await;
    assert_eq!(t["instance"]["state"]["id"], "task_book");
    let t = fire(&app, &applicant, &id, "submit_task_book", 6, json!({ "task_book": file("任务书.pdf"), "milestones": "9月中期检查，12月验收", "execution_end": "2024-12-31", "tasks": [{ "focus": "知识产权保护", "task": "开展维权援助", "deliverable_form": "工作报告", "department": "项目组", "due": "2024-12-31" }], "report_schedule": "quarterly" })).await;
    assert_eq!(t["instance"]["state"]["id"], "task_book_review");
    let t = fire(&app, &manager, &id, "sign_task_book", 7, json!({})).await;
    assert_eq!(t["instance"]["state"]["id"], "execution");
    assert_eq!(t["instance"]["dueAt"], "2024-12-31T16:00:00+00:00");
    let t = fire(
        &app,
        &applicant,
        &id,
        "submit_progress_report",
        8,
        json!({ "progress_report": file("进展报告.pdf"), "progress": [{ "task": 1, "status": "in_progress", "percent": 50 }] }),
    )
    .await;
    assert_eq!(t["instance"]["state"]["id"], "execution");
    let t = fire(&app, &applicant, &id, "submit_final_report", 9, json!({
        "acceptance_report": file("验收报告.pdf"),
        "financial_statement": file("决算表.xlsx"),
        "indicator_actuals": [{ "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "actual": 214, "direction": "higher_is_better", "weight": 1 }]
    })).await;
    assert_eq!(t["instance"]["stage"]["id"], "acceptance");
    let t = fire(
        &app,
        &manager,
        &id,
        "conclude_acceptance",
        10,
        json!({ "acceptance_outcome": "pass" }),
    )
    .await;
    assert_eq!(t["instance"]["state"]["id"], "self_evaluation");
    let t = fire(
        &app,
        &applicant,
        &id,
        "submit_self_evaluation",
        11,
        json!({ "self_evaluation_report": file("自评报告.pdf"), "self_evaluation_score": 88 }),
    )
    .await;
    assert_eq!(t["instance"]["state"]["id"], "evaluation");
    let t = fire(
        &app,
        &manager,
        &id,
        "grade",
        12,
        json!({ "evaluation_score": 85, "evaluation_grade": "良" }),
    )
    .await;
    assert_eq!(t["instance"]["state"]["id"], "graded");
    let t = fire(&app, &manager, &id, "archive", 13, json!({})).await;
    assert_eq!(t["instance"]["state"]["id"], "archived");
    assert_eq!(t["instance"]["final"], true);

    // The history holds every step, hash-chained, and final states accept nothing.
    let h = app
        .ok(Some(&manager), "query($id: ID!) { instance(id: $id) { version history { seq event hash prevHash } availableTransitions { event } } }", json!({ "id": id }))
        .await;
    let history = h["instance"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 14);
    assert_eq!(h["instance"]["version"], 14);
    for pair in history.windows(2) {
        assert_eq!(pair[1]["prevHash"], pair[0]["hash"]);
    }
    assert!(
        h["instance"]["availableTransitions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let after = app
        .gql(
            Some(&manager),
            TRANSITION,
            json!({ "id": id, "event": "archive", "v": 14 }),
        )
        .await;
    assert_eq!(error_code(&after), "INVALID_TRANSITION");
    let report = grantflow_store::audit::verify_all(app.services.store.as_ref())
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
}
