//! The parsed-document cache (`document_cache.rs`): a document sent again is not parsed
//! again, but every request is still validated and limited, and answered for its own
//! viewer, whether its document came from the cache (a hit) or not (a miss). A refused
//! document never enters the cache.

use crate::support;

use std::net::SocketAddr;

use grantflow_api::{ApiSettings, AppState};
use serde_json::{Value, json};
use support::{Backend, TestApp, error_code, on_both_backends, spawn_app};

/// A server over the test application's services whose state (and so cache) the test
/// holds: at most 4 documents, and a complexity limit a page of 100 exceeds.
async fn server(app: &TestApp) -> (AppState, String) {
    let state = grantflow_api::state(
        app.services.clone(),
        ApiSettings {
            document_cache_entries: 4,
            max_complexity: 100,
            ..ApiSettings::default()
        },
    );
    let router = grantflow_api::router(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (state, url)
}

async fn post(url: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().json().await.unwrap()
}

const LIST: &str = "query($first: Int!) { instances(first: $first) { edges { node { id organisation { id } } } } }";

const TRANSITION: &str = "mutation($id: ID!) { transition(instanceId: $id, event: \"withdraw\", expectedVersion: 0) { instance { id state { id } } } }";

/// The organisations of the listed instances.
fn orgs(body: &Value) -> Vec<String> {
    let edges = body["data"]["instances"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    edges
        .iter()
        .map(|e| {
            e["node"]["organisation"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

async fn a_cached_document_is_still_checked_for_each_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let (state, url) = server(&app).await;
    let cache = &state.guards.documents;
    let a = app
        .create_instance("applicant_a", "funded-project", None, None, "A 的项目")
        .await;
    app.create_instance("applicant_b", "funded-project", None, None, "B 的项目")
        .await;
    let (token_a, token_b) = (
        app.session_token("applicant_a").await,
        app.session_token("applicant_b").await,
    );
    let unit_a = app.seed.unit_a.id.to_string();
    let unit_b = app.seed.unit_b.id.to_string();

    // A miss: parsed, then kept once the request passed.
    let first = post(&url, Some(&token_a), LIST, json!({ "first": 5 })).await;
    assert_eq!(orgs(&first), vec![unit_a.clone()]);
    assert_eq!(cache.len(), 1);

    // Hits: the same text for another viewer answers for that viewer, and the limits
    // are measured again with this request's variables.
    let other = post(&url, Some(&token_b), LIST, json!({ "first": 5 })).await;
    assert_eq!(orgs(&other), vec![unit_b.clone()]);
    let anonymous = post(&url, None, LIST, json!({ "first": 5 })).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
    let too_complex = post(&url, Some(&token_a), LIST, json!({ "first": 100 })).await;
    assert_eq!(
        too_complex["errors"][0]["extensions"]["reason"], "QUERY_TOO_COMPLEX",
        "{too_complex}"
    );
    assert_eq!(cache.len(), 1, "hits add nothing");

    // A mutation's document: unit B may not touch unit A's project, from the cache or not.
    for _ in 0..2 {
        let hidden = post(&url, Some(&token_b), TRANSITION, json!({ "id": a.id })).await;
        assert_eq!(error_code(&hidden), "NOT_FOUND", "{hidden}");
    }
    assert_eq!(
        cache.len(),
        2,
        "a request refused by a resolver was validated"
    );
    let withdrawn = post(&url, Some(&token_a), TRANSITION, json!({ "id": a.id })).await;
    assert_eq!(
        withdrawn["data"]["transition"]["instance"]["state"]["id"], "withdrawn",
        "{withdrawn}"
    );

    // Documents over a limit are refused every time and never kept.
    let aliases: String = (0..31).map(|i| format!("a{i}: __typename ")).collect();
    let too_many_aliases = format!("{{ {aliases} }}");
    let too_deep = format!(
        "{{ instances(first: 1) {{ edges {{ node {{ {}id{} }} }} }} }}",
        "parent { ".repeat(12),
        " }".repeat(12)
    );
    let unparsable = "{ instances(first: 1) { edges ";
    for (query, reason) in [
        (too_many_aliases.as_str(), Some("TOO_MANY_ALIASES")),
        (too_deep.as_str(), Some("QUERY_TOO_DEEP")),
        (unparsable, None),
    ] {
        for _ in 0..2 {
            let refused = post(&url, Some(&token_a), query, json!({})).await;
            assert!(refused.get("errors").is_some(), "{refused}");
            if let Some(reason) = reason {
                assert_eq!(
                    refused["errors"][0]["extensions"]["reason"], reason,
                    "{refused}"
                );
            }
            assert_eq!(cache.len(), 2, "{query}: not kept");
        }
    }

    // At most 4 documents: the oldest goes first.
    for n in 1..=3 {
        let query = format!("{{ q{n}: __typename }}");
        let body = post(&url, Some(&token_a), &query, json!({})).await;
        assert_eq!(body["data"][format!("q{n}")], "Query", "{body}");
    }
    assert_eq!(cache.len(), 4);
    let again = post(&url, Some(&token_b), LIST, json!({ "first": 5 })).await;
    assert_eq!(orgs(&again), vec![unit_b], "parsed again after eviction");
    assert_eq!(cache.len(), 4);
}

on_both_backends!(a_cached_document_is_still_checked_for_each_request);
