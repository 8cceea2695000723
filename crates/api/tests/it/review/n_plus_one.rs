//! No N+1 in the review lists: the expert's queue (`myReviews`), the expert pool
//! (`expertPool`) and a call's ranking (`ranking`) cost the same store calls for two
//! applications under review as for six (each with a panel of three). Before, the pool
//! read one queue per expert and the ranking two reads per application. On SQLite and
//! PostgreSQL, through a `CountingStore`.

use std::collections::BTreeMap;

use grantflow_api::ApiSettings;
use serde_json::json;
use uuid::Uuid;

use super::support::{Backend, CountingStore, TestApp, spawn_counting};
use super::{application_in_review, profiles, tokens};

/// Who asks, the query, and how many rows it lists with two and with six applications.
const LISTS: [(&str, &str, [usize; 2]); 3] = [
    (
        "expert1",
        "{ myReviews(includeClosed: true) { id instanceId title roundId state dueAt blind expert { username } } }",
        [2, 6],
    ),
    (
        "manager",
        "{ expertPool { user { username } organisation { name } load lateReviews suspensionDue } }",
        [3, 3],
    ),
    (
        "manager",
        r#"{ ranking(callId: "2024-call") { rank total count instance { title organisation { name } } } }"#,
        [2, 6],
    ),
];

/// Applications moved to expert review until there are `n`, each with the three experts
/// assigned.
async fn applications(app: &TestApp, n: usize, experts: &[Uuid]) {
    let t = tokens(app).await;
    let have = app.ok(Some(&t.manager), LISTS[2].1, json!({})).await["ranking"]
        .as_array()
        .map_or(0, Vec::len);
    for k in have..n {
        let id = application_in_review(app, &t, &format!("评审项目 {k}")).await;
        app.ok(
            Some(&t.manager),
            "mutation($id: ID!, $experts: [ID!]!) { assignReviewers(instanceId: $id, expertIds: $experts) { id } }",
            json!({ "id": id, "experts": experts.iter().map(Uuid::to_string).collect::<Vec<_>>() }),
        )
        .await;
    }
}

/// The store calls of each list, and how many rows each listed.
async fn calls(app: &TestApp, store: &CountingStore) -> Vec<(BTreeMap<&'static str, u64>, usize)> {
    let mut out = Vec::new();
    for (who, query, _) in LISTS {
        let token = app.session_token(who).await;
        store.reset();
        let data = app.ok(Some(&token), query, json!({})).await;
        let rows = data
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v.as_array())
            .map_or(0, Vec::len);
        out.push((store.calls(), rows));
    }
    out
}

async fn same_calls_for_2_and_6(backend: Backend) {
    let (app, store) = spawn_counting(backend, ApiSettings::default()).await;
    let manager = app.session_token("manager").await;
    let experts: Vec<Uuid> = ["expert1", "expert2", "expert3"]
        .iter()
        .map(|u| app.user(u).id)
        .collect();
    profiles(&app, &manager, &experts).await;
    applications(&app, 2, &experts).await;
    let small = calls(&app, &store).await;
    applications(&app, 6, &experts).await;
    let large = calls(&app, &store).await;
    for (((small, n_small), (large, n_large)), (who, query, rows)) in
        small.into_iter().zip(large).zip(LISTS)
    {
        assert_eq!([n_small, n_large], rows, "{who}: {query}");
        assert_eq!(
            small, large,
            "{who}: {query}: the same store calls for 2 and 6 applications"
        );
    }
}

#[tokio::test]
async fn review_lists_cost_the_same_store_calls_for_2_and_6_applications_on_sqlite() {
    same_calls_for_2_and_6(Backend::Sqlite).await;
}

#[tokio::test]
async fn review_lists_cost_the_same_store_calls_for_2_and_6_applications_on_postgres() {
    same_calls_for_2_and_6(Backend::Postgres).await;
}
