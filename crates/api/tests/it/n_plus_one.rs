//! No N+1: the instance list with its nested organisation, creator, parent, state, stage
//! and workflow costs the same number of store calls for a page of 5 as for a page of 50,
//! for every role. The store is wrapped in a `CountingStore` (`grantflow_testkit::CountingStore`).
//!
//! A store call is a constant number of SQL statements: on both backends `list_instances`
//! runs two (a COUNT and the page query), `find_token`, `get_user`, `get_orgs`,
//! `get_users`, `get_instances` and `is_assigned_expert` one each (the batch getters use one
//! `WHERE id IN (…)`; users' roles come from a subquery in the same statement). So equal
//! call counts mean equal statement counts.
//!
//! The `instances` resolver loads the references the selection asks for in one call per
//! kind (organisations, creators, parents, an expert's assignments) into the request's
//! loader cache, so the counts do not depend on how the DataLoader's batches happen to be
//! timed: they are exact.

use crate::support;

use std::collections::BTreeMap;
use std::sync::Arc;

use grantflow_api::ApiSettings;
use serde_json::json;
use support::{Backend, CountingStore, TestApp, spawn_counting};

const PAGE: &str = "query($first: Int!) { instances(first: $first) { totalCount edges { node {
  id title
  organisation { id name }
  createdBy { id displayName }
  parent { id title }
  state { id title { zhCn } }
  stage { id }
  workflow { id version }
} } } }";

/// The same with a second level of references (the organisations of the organisation, of
/// the creator and of the parent).
const DEEPER_PAGE: &str =
    "query($first: Int!) { instances(first: $first) { totalCount edges { node {
  id title
  organisation { id name parent { name } }
  createdBy { id displayName organisation { name } }
  parent { id title organisation { name } }
  state { id title { zhCn } }
  stage { id }
  workflow { id version }
} } } }";

/// Store calls per method.
type Calls = &'static [(&'static str, u64)];

/// 10 funded projects (5 per unit), then 50 change requests, each under one of them; every
/// instance has expert1 assigned.
async fn seed(app: &TestApp) {
    let mut projects = Vec::new();
    for i in 0..10 {
        let owner = if i % 2 == 0 {
            "applicant_a"
        } else {
            "applicant_b"
        };
        projects.push(
            app.create_instance(owner, "funded-project", None, None, &format!("项目 {i}"))
                .await,
        );
    }
    let mut all = projects.clone();
    for i in 0..50 {
        let parent = &projects[i % 10];
        let owner = if parent.org_id == app.seed.unit_a.id {
            "applicant_a"
        } else {
            "applicant_b"
        };
        all.push(
            app.create_instance(
                owner,
                "change-request",
                None,
                Some(parent.id),
                &format!("变更 {i}"),
            )
            .await,
        );
    }
    let expert1 = app.user("expert1").id;
    for i in &all {
        app.services
            .store
            .assign_expert(i.id, expert1)
            .await
            .unwrap();
    }
}

/// The store calls of one page of `first`, and how many instances it listed.
async fn calls_for_page(
    app: &TestApp,
    store: &Arc<CountingStore>,
    token: &str,
    query: &str,
    first: usize,
) -> (BTreeMap<&'static str, u64>, usize) {
    store.reset();
    let data = app.ok(Some(token), query, json!({ "first": first })).await;
    let calls = store.calls();
    let edges = data["instances"]["edges"].as_array().unwrap();
    // The nested data is really there (a parent of another unit is null for some roles).
    for e in edges {
        let node = &e["node"];
        assert!(node["organisation"]["name"].is_string(), "{node}");
        assert!(node["createdBy"]["displayName"].is_string(), "{node}");
        assert!(node["state"]["title"]["zhCn"].is_string(), "{node}");
        assert!(node["workflow"]["version"].is_number(), "{node}");
    }
    (calls, edges.len())
}

async fn same_calls_for_5_and_50(backend: Backend) {
    let (app, store) = spawn_counting(backend, ApiSettings::default()).await;
    seed(&app).await;
    // Per role: how many instances a page of 50 shows (unit A has 5 projects and 25 change
    // requests), and its store calls per page.
    // Every role: find_token + get_user (the bearer), list_instances, then one batched
    // get_orgs / get_users / get_instances per level of nesting.
    const SIX: Calls = &[
        ("find_token", 1),
        ("get_user", 1),
        ("list_instances", 1),
        ("get_instances", 1),
        ("get_users", 1),
        ("get_orgs", 1),
    ];
    let expected: [(&str, usize, Calls); 5] = [
        ("manager", 50, SIX),
        ("auditor", 50, SIX),
        ("city_gz", 30, SIX),
        ("applicant_a", 30, SIX),
        // The parents' visibility: one batched assignment check for the page; and the
        // expert's review queue, read once (a review store call, counted too).
        (
            "expert1",
            50,
            &[
                ("find_token", 1),
                ("get_user", 1),
                ("list_instances", 1),
                ("get_instances", 1),
                ("get_users", 1),
                ("get_orgs", 1),
                ("assigned_instances", 1),
                ("expert_queue", 1),
            ],
        ),
    ];
    let mut report = Vec::new();
    for (who, visible, want) in expected {
        let token = app.session_token(who).await;
        let (small, n_small) = calls_for_page(&app, &store, &token, PAGE, 5).await;
        let (large, n_large) = calls_for_page(&app, &store, &token, PAGE, 50).await;
        assert_eq!(n_small, 5, "{who}");
        assert_eq!(n_large, visible, "{who}");
        report.push(format!("{who}: {small:?} / {large:?}"));
        assert_eq!(
            small, large,
            "{who}: the same store calls for 5 and for {n_large} instances"
        );
        let want: BTreeMap<&str, u64> = want.iter().copied().collect();
        assert_eq!(large, want, "{who}: exactly these store calls");

        // A second level of references: the creators' and the parents' organisations are
        // the units already loaded (the request caches them); only the cities behind
        // `organisation { parent }` are new, in one more get_orgs.
        for first in [5, 50] {
            let (deeper, _) = calls_for_page(&app, &store, &token, DEEPER_PAGE, first).await;
            report.push(format!("{who} deeper, first {first}: {deeper:?}"));
            let mut want = want.clone();
            *want.get_mut("get_orgs").unwrap() += 1;
            assert_eq!(deeper, want, "{who}, first {first}: one more get_orgs");
        }
    }
    println!("{}", report.join("\n"));
}

#[tokio::test]
async fn a_page_of_50_costs_the_store_calls_of_a_page_of_5_on_sqlite() {
    same_calls_for_5_and_50(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_page_of_50_costs_the_store_calls_of_a_page_of_5_on_postgres() {
    same_calls_for_5_and_50(Backend::Postgres).await;
}
