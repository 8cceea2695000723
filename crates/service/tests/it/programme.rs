//! The programme through the service, on SQLite: a project's targets frozen at approval and
//! changed by an approved change request (the hook applies it to the project, the history
//! keeps both versions), then evaluated — the stored evaluation equals the hand-computed
//! one and `grade` is fired with it.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use grantflow_domain::Money;
use grantflow_programme::evaluation::Achievement;
use grantflow_service::programme::Judgement;
use grantflow_service::{CreateInstance, ServiceError};
use grantflow_testkit::{Backend, FoshanWorld, ServiceWorld, registry_of, start_time};
use serde_json::{Value, json};
use uuid::Uuid;

type World = FoshanWorld;

async fn world(backend: Backend) -> World {
    let base = ServiceWorld::with(
        backend,
        registry_of(&["funded-project", "change-request", "demand-collection"]),
        start_time(),
    )
    .await;
    FoshanWorld::new(base, ["manager", "city", "applicant"], |u| u).await
}

fn file(name: &str) -> Value {
    json!({ "name": name, "sha256": "d".repeat(64), "size": 1024 })
}

fn indicators(cycles_target: f64) -> Value {
    json!([
        { "id": "sessions", "category": "output_quantity", "name": "举办培训场次", "unit": "场", "target": cycles_target, "direction": "higher_is_better", "weight": 2 },
        { "id": "cycle", "category": "output_timeliness", "name": "维权周期", "unit": "月", "baseline": 6, "target": 4, "direction": "lower_is_better", "weight": 1 },
        { "id": "experience", "category": "effect_social", "name": "形成可推广经验", "target": "形成可复制推广的经验做法", "direction": "qualitative", "weight": 1 }
    ])
}

fn yuan(y: i64) -> Money {
    Money::from_yuan(y).unwrap()
}

async fn a_changed_target_is_evaluated_and_the_stored_score_is_the_hand_computed_one(
    backend: Backend,
) {
    let w = world(backend).await;
    let s = &w.services;
    let call = s
        .open_call(
            &w.manager,
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
    let project = s
        .create_instance(
            &w.applicant,
            CreateInstance {
                workflow_id: "funded-project".into(),
                org_id: None,
                parent_id: None,
                title: "顺德家电企业知识产权维权援助".into(),
                data: json!({}),
                call_id: Some(call),
                catalogue_item: Some("2022-2-1-5".into()),
            },
        )
        .await
        .unwrap();
    let id = project.id;
    w.fire(
        &w.applicant,
        id,
        "submit",
        json!({
            "project_name": "顺德家电企业知识产权维权援助", "budget": "200000",
            "indicators": indicators(10.0), "application_files": [file("申报书.pdf")]
        }),
    )
    .await;
    w.fire(&w.city, id, "recommend", json!({})).await;
    w.fire(&w.manager, id, "pass_formal_check", json!({})).await;
    s.store
        .set_review_result(id, json!({ "total": 80.0, "count": 3 }))
        .await
        .unwrap();
    w.fire(&w.manager, id, "conclude_review", json!({})).await;
    let line = s
        .add_budget_line(
            &w.manager,
            id,
            2024,
            "维权援助",
            yuan(200_000),
            "省级财政专项资金",
        )
        .await
        .unwrap();
    // Only managers set budgets.
    assert!(matches!(
        s.add_budget_line(&w.applicant, id, 2024, "x", yuan(1), "")
            .await,
        Err(ServiceError::Forbidden)
    ));
    let approved = w
        .fire(
            &w.manager,
            id,
            "approve",
            json!({ "approved_budget": "200000", "targets_approved": true }),
        )
        .await;
    assert_eq!(approved.data["approved_indicators"][0]["target"], 10.0);
    w.fire(&w.manager, id, "publicity_ended", json!({})).await;
    w.fire(&w.applicant,
        id,
        "submit_task_book",
        json!({
            "task_book": file("任务书.pdf"), "milestones": "年底验收", "execution_end": "2024-12-31",
            "tasks": [{ "focus": "知识产权保护", "task": "开展维权援助", "deliverable_form": "工作报告", "department": "项目组", "due": "2024-12-31" }], "report_schedule": "quarterly"
        }),
    )
    .await;
    w.fire(&w.manager, id, "sign_task_book", json!({})).await;
    let day = |m, d| NaiveDate::from_ymd_opt(2024, m, d).unwrap();
    // Spending waits for the money: the first batch is disbursed (拨付).
    s.record_disbursement(
        &w.manager,
        id,
        "第一批",
        day(6, 20),
        yuan(200_000),
        "粤财-001",
    )
    .await
    .unwrap();
    s.record_spending(
        &w.applicant,
        id,
        Some(line.id),
        yuan(100_000),
        day(7, 1),
        "培训",
    )
    .await
    .unwrap();
    s.record_spending(
        &w.manager,
        id,
        Some(line.id),
        yuan(50_000),
        day(10, 1),
        "咨询",
    )
    .await
    .unwrap();

    // A change request raises the training target from 10 to 12; approving it applies
    // it to the project through the hook.
    let change = s
        .create_instance(
            &w.applicant,
            CreateInstance {
                workflow_id: "change-request".into(),
                org_id: None,
                parent_id: Some(id),
                title: "调整培训场次目标".into(),
                data: json!({}),
                call_id: None,
                catalogue_item: None,
            },
        )
        .await
        .unwrap();
    w.fire(
        &w.applicant,
        change.id,
        "submit",
        json!({
            "change_type": "indicators", "change_summary": "企业需求增加，培训场次增至12场",
            "new_indicators": indicators(12.0)
        }),
    )
    .await;
    w.clock.advance(chrono::Duration::days(1));
    w.fire(
        &w.manager,
        change.id,
        "approve",
        json!({ "decision_notes": "同意" }),
    )
    .await;
    let changed = s.store.get_instance(id).await.unwrap();
    assert_eq!(changed.state, "execution");
    assert_eq!(changed.data["approved_indicators"][0]["target"], 12.0);
    let history = s.store.history(id).await.unwrap();
    let applied = history.last().unwrap();
    assert_eq!(applied.event, "apply_approved_change");
    assert_eq!(applied.input["change_request_id"], change.id.to_string());
    assert!(
        applied
            .reason
            .as_deref()
            .unwrap()
            .contains("调整：sessions"),
        "{:?}",
        applied.reason
    );
    // Both versions stay in the history: the submitted targets and the changed ones.
    let submitted = history.iter().find(|r| r.event == "submit").unwrap();
    assert_eq!(submitted.input["indicators"][0]["target"], 10.0);
    assert_eq!(applied.input["indicators"][0]["target"], 12.0);
    // Applying it again changes nothing.
    let again = s.apply_change_request(&w.manager, change.id).await.unwrap();
    assert!(again.replayed);
    assert_eq!(
        s.store.get_instance(id).await.unwrap().version,
        changed.version
    );

    w.fire(&w.applicant, id, "submit_final_report", json!({
        "acceptance_report": file("验收报告.pdf"), "financial_statement": file("决算表.xlsx"),
        "indicator_actuals": [
            { "id": "sessions", "category": "output_quantity", "name": "举办培训场次", "target": 12, "actual": 9 },
            { "id": "cycle", "category": "output_timeliness", "name": "维权周期", "target": 4, "actual": 5, "direction": "lower_is_better" }
        ]
    }))
    .await;
    w.fire(
        &w.manager,
        id,
        "conclude_acceptance",
        json!({ "acceptance_outcome": "pass" }),
    )
    .await;
    w.fire(
        &w.applicant,
        id,
        "submit_self_evaluation",
        json!({
            "self_evaluation_report": file("自评报告.pdf"), "self_evaluation_score": 75
        }),
    )
    .await;

    // Without a judgement of the qualitative indicator nothing can be scored.
    let missing = s
        .evaluate_project(&w.manager, id, &[], &BTreeMap::new())
        .await
        .unwrap_err();
    let ServiceError::Refused(r) = missing else {
        panic!("{missing:?}")
    };
    assert_eq!(r.reason.as_str(), "EVALUATION_INCOMPLETE");
    assert_eq!(
        r.details["problems"][0]["code"],
        "EVALUATION_OUTCOME_MISSING"
    );

    let judged = [Judgement {
        indicator_id: "experience".into(),
        achievement: Achievement::PartlyAchieved,
        percent: 70.0,
    }];
    let (record, graded) = s
        .evaluate_project(&w.manager, id, &judged, &BTreeMap::new())
        .await
        .unwrap();
    // By hand, default method, no satisfaction indicator (its 10 points go to effects):
    //   budget execution 150 000 / 200 000 = 0.75          → 10 × 0.75       =  7.5
    //   sessions (weight 2 of 3 output): 9 of the changed 12 → 50 × 2/3 × 0.75 = 25.0
    //   cycle (1 of 3, lower is better, baseline 6): (6−5)/(6−4) → 50 × 1/3 × 0.5 ≈ 8.33
    //   experience, partly achieved at 70 %                 → 40 × 0.70       = 28.0
    //   total 68.8333… → 68.83, 中 (60–79).
    assert_eq!(record.total, 68.83);
    assert_eq!(record.grade, "中");
    assert_eq!(record.budgeted, yuan(200_000));
    assert_eq!(record.spent, yuan(150_000));
    assert_eq!(record.execution_rate, 0.75);
    assert_eq!(record.call_id, call.to_string());
    let scores: Vec<(&str, &str, f64, f64, f64)> = record
        .indicator_scores
        .iter()
        .map(|s| {
            (
                s.indicator_id.as_str(),
                s.part.as_str(),
                s.max_points,
                s.fraction,
                s.points,
            )
        })
        .collect();
    assert_eq!(
        scores,
        [
            ("sessions", "output", 33.33, 0.75, 25.0),
            ("cycle", "output", 16.67, 0.5, 8.33),
            ("experience", "effect", 40.0, 0.7, 28.0),
        ]
    );
    assert_eq!(s.store.evaluation(id).await.unwrap(), Some(record.clone()));
    assert_eq!(graded.instance.state, "graded");
    assert_eq!(graded.instance.data["evaluation_score"], 68);
    assert_eq!(graded.instance.data["evaluation_grade"], "中");

    // Evaluating again is refused: the project has left `evaluation`.
    let ServiceError::Refused(r) = s
        .evaluate_project(&w.manager, id, &judged, &BTreeMap::new())
        .await
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(r.reason.as_str(), "NOT_IN_EVALUATION");
    let summary = s
        .call_summary(&w.manager, Uuid::now_v7())
        .await
        .unwrap_err();
    assert!(matches!(summary, ServiceError::NotFound(_)));
}

grantflow_testkit::on_both_backends!(
    a_changed_target_is_evaluated_and_the_stored_score_is_the_hand_computed_one,
);
