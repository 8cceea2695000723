//! No N+1 in the programme's queries: the consolidated demand table (`exportDemands`) and
//! the call list cost the same store calls for a call with 2 demands per unit as for one
//! with 8, for the manager, a city bureau and a unit; so does a list of projects with their
//! units' previous grades. The `CountingStore` counts the
//! programme and review store calls as well as the core ones, so a per-demand lookup in
//! either would show here. On SQLite and PostgreSQL.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;

use grantflow_api::ApiSettings;
use grantflow_domain::Money;
use grantflow_service::CreateInstance;
use grantflow_store::programme::EvaluationRecord;
use serde_json::json;
use support::{Backend, CountingStore, TestApp, spawn_counting, start_time};

/// `n` demands of each of the two units (one per city), created through the service.
async fn add_demands(app: &TestApp, n: usize) {
    let call = app.call_id().await;
    for owner in ["applicant_a", "applicant_b"] {
        for i in 0..n {
            app.services
                .create_instance(
                    app.user(owner),
                    CreateInstance {
                        workflow_id: "demand-collection".into(),
                        org_id: None,
                        parent_id: None,
                        title: format!("{owner} 需求 {i}"),
                        data: json!({}),
                        call_id: Some(call),
                        catalogue_item: None,
                    },
                )
                .await
                .unwrap();
        }
    }
}

const QUERIES: [(&str, &str); 2] = [
    (
        "exportDemands",
        "query($call: ID!) { exportDemands(callId: $call, format: CSV) { size } }",
    ),
    (
        "calls",
        "query($call: ID!) { call(id: $call) { id } calls { id } }",
    ),
];

/// The store calls of each query as `who`.
async fn calls_of(
    app: &TestApp,
    store: &Arc<CountingStore>,
    who: &str,
) -> Vec<(&'static str, BTreeMap<&'static str, u64>)> {
    let token = app.session_token(who).await;
    let call = app.call_id().await.to_string();
    let mut out = Vec::new();
    for (name, query) in QUERIES {
        store.reset();
        app.ok(Some(&token), query, json!({ "call": call })).await;
        out.push((name, store.calls()));
    }
    out
}

async fn programme_queries_cost_the_same_for_2_and_8_demands(backend: Backend) {
    let (app, store) = spawn_counting(backend, ApiSettings::default()).await;
    add_demands(&app, 2).await;
    let who = ["manager", "city_gz", "applicant_a"];
    let mut small = Vec::new();
    for w in who {
        small.push(calls_of(&app, &store, w).await);
    }
    add_demands(&app, 6).await;
    for (w, small) in who.iter().zip(small) {
        let large = calls_of(&app, &store, w).await;
        println!("{w}: {large:?}");
        assert_eq!(
            small, large,
            "{w}: the same store calls for 2 and 8 demands per unit"
        );
        // The programme calls are counted: the table reads the call, its demands and
        // their merges once each.
        let export = &large[0].1;
        for method in ["get_call", "instances_of_call", "demand_merges"] {
            assert_eq!(export.get(method), Some(&1), "{w}: {method} in {export:?}");
        }
    }
}

/// `n` more funded projects of each unit, every other one graded (saved straight to the
/// store: the evaluation's own path is tested in `programme.rs`).
async fn add_graded_projects(app: &TestApp, n: usize) {
    let call = app.call_id().await.to_string();
    for owner in ["applicant_a", "applicant_b"] {
        for i in 0..n {
            let p = app
                .create_instance(
                    owner,
                    "funded-project",
                    None,
                    None,
                    &format!("{owner} 项目 {i}"),
                )
                .await;
            if i % 2 == 1 {
                continue;
            }
            app.services
                .store
                .save_evaluation(EvaluationRecord {
                    instance_id: p.id,
                    call_id: call.clone(),
                    method: json!({}),
                    budgeted: Money::from_yuan(1000).unwrap(),
                    spent: Money::from_yuan(900).unwrap(),
                    execution_rate: 0.9,
                    total: 80.0 + i as f64,
                    grade: "良".into(),
                    indicator_scores: vec![],
                    result: json!({}),
                    evaluator_id: app.user("manager").id,
                    evaluated_at: start_time() + chrono::Duration::minutes(i as i64),
                })
                .await
                .unwrap();
        }
    }
}

const PREVIOUS_GRADES: &str = "{ instances(first: 50, filter: { workflowId: \"funded-project\" }) { edges { node { id organisation { id } previousGrades { instanceId title callYear grade } } } } }";

/// The store calls of a list of every project with its unit's previous grades, as `who`,
/// and what it showed: per project, the ids of the graded projects it listed.
async fn previous_grades_of(
    app: &TestApp,
    store: &Arc<CountingStore>,
    who: &str,
) -> (BTreeMap<&'static str, u64>, Vec<(String, Vec<String>)>) {
    let token = app.session_token(who).await;
    store.reset();
    let data = app.ok(Some(&token), PREVIOUS_GRADES, json!({})).await;
    let calls = store.calls();
    let shown = data["instances"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let node = &e["node"];
            let grades = node["previousGrades"]
                .as_array()
                .unwrap_or_else(|| panic!("{who} sees previous grades: {node}"))
                .iter()
                .map(|g| {
                    assert!(g["callYear"].is_number(), "{g}");
                    assert!(g["title"].as_str().unwrap().contains("项目"), "{g}");
                    g["instanceId"].as_str().unwrap().to_string()
                })
                .collect();
            (node["id"].as_str().unwrap().to_string(), grades)
        })
        .collect();
    (calls, shown)
}

/// `Instance.previousGrades` on a list: its units' grades are loaded for the whole page
/// at once (`loaders::UnitGrades`), so a page of 4 projects and one of 16 cost the same
/// store calls, for the province and a city bureau; each project lists its unit's other
/// graded projects.
async fn previous_grades_cost_the_same_for_2_and_8_projects(backend: Backend) {
    let (app, store) = spawn_counting(backend, ApiSettings::default()).await;
    add_graded_projects(&app, 2).await;
    let who = ["manager", "city_gz"];
    let mut small = Vec::new();
    for w in who {
        small.push(previous_grades_of(&app, &store, w).await);
    }
    add_graded_projects(&app, 6).await;
    for (w, (small, small_shown)) in who.iter().zip(small) {
        let (large, shown) = previous_grades_of(&app, &store, w).await;
        println!("{w}: {large:?}");
        assert!(shown.len() > small_shown.len(), "{w}: more projects listed");
        assert_eq!(
            small, large,
            "{w}: the same store calls for 2 and 8 projects per unit"
        );
        // The units' grades, their projects' titles and the calls' years: once each.
        for method in ["grades_of_orgs", "get_instances", "list_calls"] {
            assert_eq!(large.get(method), Some(&1), "{w}: {method} in {large:?}");
        }
        // Each unit has 8 projects, 4 of them graded: each project shows its unit's
        // graded projects but itself.
        let graded: Vec<&String> = shown.iter().flat_map(|(_, g)| g).collect();
        // The province sees both units' projects, Guangzhou's bureau unit A's.
        assert_eq!(shown.len(), if *w == "manager" { 16 } else { 8 }, "{w}");
        for (id, grades) in &shown {
            assert!(!grades.contains(id), "{w}: {id} lists itself");
            let want = if graded.contains(&id) { 3 } else { 4 };
            assert_eq!(grades.len(), want, "{w}: {id} lists {grades:?}");
        }
    }
}

grantflow_testkit::on_both_backends!(
    programme_queries_cost_the_same_for_2_and_8_demands,
    previous_grades_cost_the_same_for_2_and_8_projects,
);
