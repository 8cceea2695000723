//! No N+1 in the programme's queries: the consolidated demand table (`exportDemands`) and
//! the call list cost the same store calls for a call with 2 demands per unit as for one
//! with 8, for the manager, a city bureau and a unit. The `CountingStore` counts the
//! programme and review store calls as well as the core ones, so a per-demand lookup in
//! either would show here. On SQLite and PostgreSQL.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;

use grantflow_api::ApiSettings;
use grantflow_service::CreateInstance;
use serde_json::json;
use support::{Backend, CountingStore, TestApp, spawn_counting};

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

grantflow_testkit::on_both_backends!(programme_queries_cost_the_same_for_2_and_8_demands);
