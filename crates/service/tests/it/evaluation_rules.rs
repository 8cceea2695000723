//! The performance evaluation follows its call's `[rules.evaluation]` (issue 12 point 8:
//! numbers the documents do not fix are call settings), on SQLite and PostgreSQL: the
//! same project, evaluated under a call with the default points and bands and under one
//! with its own, gets the totals and grades each call's rules give, and the stored method
//! says which numbers were used.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use grantflow_domain::Money;
use grantflow_programme::catalogue::Catalogue;
use grantflow_programme::evaluation::Achievement;
use grantflow_service::CreateInstance;
use grantflow_service::programme::{Judgement, OpenCall};
use grantflow_testkit::{
    Backend, CATALOGUE_2022, FoshanWorld, ServiceWorld, call_of, on_both_backends, registry_of,
    start_time,
};
use serde_json::{Value, json};
use uuid::Uuid;

type World = FoshanWorld;

fn file(name: &str) -> Value {
    json!({ "name": name, "sha256": "d".repeat(64), "size": 1024 })
}

fn yuan(y: i64) -> Money {
    Money::from_yuan(y).unwrap()
}

/// A call of the 2022 catalogue with `rules` appended to its TOML.
async fn open_call(w: &World, rules: &str) -> Uuid {
    let call = OpenCall {
        catalogue: Catalogue::from_toml_str(&format!("{CATALOGUE_2022}\n{rules}")).unwrap(),
        ..call_of(CATALOGUE_2022)
    };
    w.open_call(&w.manager, call).await
}

/// One project of `call`, from submission to the evaluation stage: 200 000 元 budgeted,
/// 150 000 spent; 9 of 10 training sessions, a rights-protection cycle of 5 months
/// (baseline 6, target 4), and a qualitative effect.
async fn project_in_evaluation(w: &World, call: Uuid) -> Uuid {
    let s = &w.services;
    let id = s
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
        .unwrap()
        .id;
    let indicators = json!([
        { "id": "sessions", "category": "output_quantity", "name": "举办培训场次", "unit": "场", "target": 10, "direction": "higher_is_better", "weight": 2 },
        { "id": "cycle", "category": "output_timeliness", "name": "维权周期", "unit": "月", "baseline": 6, "target": 4, "direction": "lower_is_better", "weight": 1 },
        { "id": "experience", "category": "effect_social", "name": "形成可推广经验", "target": "形成可复制推广的经验做法", "direction": "qualitative", "weight": 1 }
    ]);
    w.fire(
        &w.applicant,
        id,
        "submit",
        json!({
            "project_name": "顺德家电企业知识产权维权援助", "budget": "200000",
            "indicators": indicators, "application_files": [file("申报书.pdf")]
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
    w.fire(
        &w.manager,
        id,
        "approve",
        json!({ "approved_budget": "200000", "targets_approved": true }),
    )
    .await;
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
    // 拨付 before spending: spending may not exceed what was disbursed.
    s.record_disbursement(
        &w.manager,
        id,
        "第一批",
        NaiveDate::from_ymd_opt(2024, 6, 20).unwrap(),
        yuan(200_000),
        "粤财拨-2024-001",
    )
    .await
    .unwrap();
    s.record_spending(
        &w.applicant,
        id,
        Some(line.id),
        yuan(150_000),
        NaiveDate::from_ymd_opt(2024, 7, 1).unwrap(),
        "培训",
    )
    .await
    .unwrap();
    w.fire(&w.applicant, id, "submit_final_report", json!({
        "acceptance_report": file("验收报告.pdf"), "financial_statement": file("决算表.xlsx"),
        "indicator_actuals": [
            { "id": "sessions", "category": "output_quantity", "name": "举办培训场次", "target": 10, "actual": 9 },
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
    id
}

async fn the_evaluation_follows_its_call_s_points_and_grade_bands(backend: Backend) {
    let base = ServiceWorld::with(
        backend,
        registry_of(&["funded-project", "change-request", "demand-collection"]),
        start_time(),
    )
    .await;
    let w = FoshanWorld::new(base, ["manager", "city", "applicant"], |u| u).await;
    let plain = open_call(&w, "").await;
    let own = open_call(
        &w,
        "[rules.evaluation]\noutput_points = 40\neffect_points = 40\n\
         excellent_from = 85\ngood_from = 70\nfair_from = 50\n",
    )
    .await;
    let judged = [Judgement {
        indicator_id: "experience".into(),
        achievement: Achievement::PartlyAchieved,
        percent: 70.0,
    }];
    let mut results = vec![];
    let mut bands = vec![];
    for call in [plain, own] {
        let id = project_in_evaluation(&w, call).await;
        let data = w.services.store.get_instance(id).await.unwrap().data;
        bands.push((
            data["grade_excellent_from"].clone(),
            data["grade_good_from"].clone(),
            data["grade_fair_from"].clone(),
        ));
        let preview = w
            .services
            .evaluation_preview(&w.manager, id, &judged, &BTreeMap::new())
            .await
            .unwrap();
        let (record, graded) = w
            .services
            .evaluate_project(&w.manager, id, &judged, &BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(
            preview.total, record.total,
            "the preview uses the same rules"
        );
        assert_eq!(
            graded.instance.data["evaluation_grade"],
            record.grade.as_str()
        );
        results.push(record);
    }
    // Default rules, by hand (no satisfaction indicator: its 10 points go to effects):
    //   budget 150 000 / 200 000 → 10 × 0.75 = 7.5; sessions 9/10 → 50 × 2/3 × 0.9 = 30;
    //   cycle (6−5)/(6−4) → 50 × 1/3 × 0.5 = 8.33; experience → 40 × 0.7 = 28;
    //   73.83 → 中 (60–79).
    assert_eq!((results[0].total, results[0].grade.as_str()), (73.83, "中"));
    assert_eq!(results[0].method["output_points"], 50.0);
    assert_eq!(results[0].method["grade_bounds"]["good"], 80.0);
    // The call's own: outputs 40, effects 40 (+10): 7.5 + 40 × 2/3 × 0.9 = 24 +
    //   40 × 1/3 × 0.5 = 6.67 + 50 × 0.7 = 35 → 73.17, 良 from 70.
    assert_eq!((results[1].total, results[1].grade.as_str()), (73.17, "良"));
    assert_eq!(results[1].method["output_points"], 40.0);
    assert_eq!(results[1].method["effect_points"], 40.0);
    assert_eq!(results[1].method["grade_bounds"]["good"], 70.0);
    assert_eq!(results[1].method["grade_bounds"]["excellent"], 85.0);
    // The bands the workflow's `grade` guard checks are the call's, copied into the data.
    assert_eq!(bands[0], (json!(90), json!(80), json!(60)));
    assert_eq!(bands[1], (json!(85), json!(70), json!(50)));
}

on_both_backends!(
    #[tokio::test]
    the_evaluation_follows_its_call_s_points_and_grade_bands,
);
