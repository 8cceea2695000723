//! Fuzzing the GraphQL request path (hostile-input hardening): random and mutated documents and variables —
//! deep nesting, huge and fractional numbers, long strings, odd Unicode, far dates — sent
//! through the whole HTTP application as a signed-in manager (the widest reach). The
//! server must always answer JSON, never 5xx, and never an error with code INTERNAL.
//!
//! 400 cases by default; `GRANTFLOW_FUZZ_CASES=20000 cargo test -p grantflow-api --test
//! fuzz_requests` for a longer run. A failing case is printed shrunk by proptest.

use crate::support;

use grantflow_api::ApiSettings;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use support::{Backend, spawn_app_with};

/// Operations on the schema with one hole (`$HOLE`) for an inline value; the variable
/// `$v` (declared JSON or the argument's type) takes a second, random value.
const TEMPLATES: &[&str] = &[
    "{ instances(first: $HOLE) { totalCount } }",
    "{ instances(filter: { text: $HOLE }) { totalCount } }",
    "{ instances(filter: { deadlineBefore: $HOLE }) { totalCount } }",
    "{ instances(after: $HOLE) { totalCount } }",
    "{ instances(filter: { organisationId: $HOLE, states: [$HOLE] }) { totalCount } }",
    "{ workflow(id: $HOLE) { id } }",
    "{ workflow(id: \"funded-project\", version: $HOLE) { id } }",
    "{ instance(id: $HOLE) { id } }",
    "query($v: JSON) { __typename(x: $HOLE) }",
    "mutation($v: JSON) { createInstance(input: { workflowId: \"funded-project\", title: $HOLE, data: $v }) { id } }",
    "mutation($v: JSON) { createInstance(input: { workflowId: \"funded-project\", title: \"t\", data: { call_id: \"c\", closing_date: $HOLE } }) { id } }",
    "mutation { extendDeadline(instanceId: $HOLE, expectedVersion: $HOLE, newDueDate: $HOLE, reason: $HOLE) { instance { id } } }",
    "mutation { autoAssign(instanceId: $HOLE, seed: $HOLE) { seed } }",
    "mutation { openCall(input: { categories: [], year: $HOLE, closingDate: $HOLE }) { id } }",
    "mutation { addBudgetLine(instanceId: $HOLE, input: { year: $HOLE, subject: $HOLE, amount: $HOLE }) { id } }",
    "mutation { upsertExpertProfile(input: { userId: $HOLE, categories: [$HOLE], workloadCap: $HOLE }) { userId } }",
    "query($v: [Int]) { instances(first: $HOLE) { edges { node { id title data } } } }",
];

/// A GraphQL value literal, possibly nested deep.
fn literal() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        Just("2147483648".to_string()),
        Just("-2147483649".to_string()),
        Just("9223372036854775808".to_string()),
        Just("1e308".to_string()),
        Just("-0.0".to_string()),
        Just("\"+262142-12-31\"".to_string()),
        Just("\"-0001-12-31\"".to_string()),
        Just("\"2024-06-30T00:00:00Z\"".to_string()),
        Just("\"92233720368547758.07\"".to_string()),
        Just("ASC".to_string()),
        odd_string().prop_map(|s| serde_json::to_string(&s).unwrap()),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z]{1,6}", inner), 0..4).prop_map(|v| {
                let fields: Vec<String> = v.into_iter().map(|(k, x)| format!("{k}: {x}")).collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

/// Text with control characters, surrogate-free odd Unicode, and sometimes great length.
fn odd_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[\\u{0}-\\u{1f}\\u{202e}\\u{fffd}\\u{1f600}\\u{10ffff}%_\\\\]{0,20}",
        (1usize..60_000).prop_map(|n| "项".repeat(n)),
        Just(String::new()),
    ]
}

/// Deep nesting, of document brackets or of variables (below, at and above the limits).
fn deep(levels: usize, list: bool) -> String {
    if list {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    } else {
        format!("{}1{}", "{a:".repeat(levels), "}".repeat(levels))
    }
}

/// A JSON variables value.
fn variable() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        odd_string().prop_map(Value::from),
        Just(json!(u64::MAX)),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Byte-level damage to a document: cut, duplicate or insert brackets and quotes.
fn mutate(doc: &str, at: usize, how: u8) -> String {
    let mut chars: Vec<char> = doc.chars().collect();
    let at = at % (chars.len() + 1);
    match how % 6 {
        0 => chars.truncate(at),
        1 => chars.insert(at, '"'),
        2 => chars.insert(at, '{'),
        3 => chars.insert(at, '#'),
        4 => {
            let tail: Vec<char> = chars[at..].to_vec();
            chars.extend(tail);
        }
        _ => {}
    }
    chars.into_iter().collect()
}

fn request() -> impl Strategy<Value = (String, Value)> {
    let templated = (
        prop::sample::select(TEMPLATES),
        prop::collection::vec(literal(), 4),
        variable(),
        any::<usize>(),
        any::<u8>(),
    )
        .prop_map(|(template, holes, v, at, how)| {
            let mut doc = template.to_string();
            for h in &holes {
                doc = doc.replacen("$HOLE", h, 1);
            }
            let doc = doc.replace("$HOLE", "null");
            (mutate(&doc, at, how), json!({ "v": v }))
        });
    let nested = (0usize..400, any::<bool>(), any::<bool>()).prop_map(|(levels, list, in_vars)| {
        if in_vars {
            let v: Value =
                serde_json::from_str(&deep(levels.min(120), true)).unwrap_or(Value::Null);
            (
                "query($v: [Int]) { __typename }".to_string(),
                json!({ "v": v }),
            )
        } else {
            (
                format!("{{__typename(x: {})}}", deep(levels, list)),
                json!({}),
            )
        }
    });
    prop_oneof![4 => templated, 1 => nested]
}

#[test]
fn random_requests_never_crash_the_server_or_answer_internal() {
    let cases: u32 = std::env::var("GRANTFLOW_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let settings = ApiSettings {
        rate_limit_per_minute: 1_000_000,
        ..ApiSettings::default()
    };
    let app = rt.block_on(spawn_app_with(Backend::Sqlite, settings));
    let token = rt.block_on(app.session_token("manager"));
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&request(), |(query, variables)| {
            let (status, body) = rt.block_on(async {
                let resp = app
                    .http
                    .post(app.url())
                    .header("content-type", "application/json")
                    .bearer_auth(&token)
                    .json(&json!({ "query": query, "variables": variables }))
                    .send()
                    .await
                    .map_err(|e| TestCaseError::fail(format!("the server did not answer: {e}")))?;
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                Ok::<_, TestCaseError>((status, text))
            })?;
            prop_assert!(status < 500, "status {status}: {body}");
            let body: Value = serde_json::from_str(&body)
                .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {body}")))?;
            for e in body["errors"].as_array().into_iter().flatten() {
                prop_assert_ne!(&e["extensions"]["code"], "INTERNAL", "{}", body);
                prop_assert!(e["extensions"]["code"].is_string(), "no code: {}", body);
            }
            Ok(())
        })
        .unwrap();
    // The server is still there.
    let body = rt.block_on(app.gql(Some(&token), "{ __typename }", json!({})));
    assert_eq!(body["data"]["__typename"], "Query");
    println!("fuzz_requests: {cases} cases");
}
