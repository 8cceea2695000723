//! Hostile input values (nesting, integer ranges, long filters): client errors with stable codes,
//! never INTERNAL and never a crash — nesting beyond the limits (POST, GET, variables),
//! Ints beyond 32 bits and negative unsigned arguments, a 50,000-character text filter,
//! dates outside 1900-01-01..2200-12-31 (and every list still answers afterwards), and a
//! call closing in the past.

use crate::support;

use grantflow_api::nesting::{MAX_DOCUMENT_NESTING, MAX_VARIABLES_DEPTH};
use serde_json::{Value, json};
use support::{Backend, TestApp, error_code, spawn_app};

fn reason(body: &Value) -> &str {
    body["errors"][0]["extensions"]["reason"]
        .as_str()
        .or_else(|| body["errors"][0]["extensions"]["details"]["reason"].as_str())
        .unwrap_or("<none>")
}

/// `{__typename(x:{a:{a:…1…}})}` with `levels` input objects.
fn nested_literal(levels: usize) -> String {
    format!(
        "{{__typename(x:{}1{})}}",
        "{a:".repeat(levels),
        "}".repeat(levels)
    )
}

async fn get(app: &TestApp, query: &str, variables: Option<&str>) -> (u16, Value) {
    let mut url = reqwest::Url::parse(&app.url()).unwrap();
    url.query_pairs_mut().append_pair("query", query);
    if let Some(v) = variables {
        url.query_pairs_mut().append_pair("variables", v);
    }
    let resp = app
        .http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn deep_nesting_is_refused_before_parsing_and_the_server_lives() {
    let app = spawn_app(Backend::Sqlite).await;
    // Unauthenticated, over POST and GET: the original nesting reproduction.
    for levels in [MAX_DOCUMENT_NESTING, 300, 100_000] {
        let body = app.gql(None, &nested_literal(levels), json!({})).await;
        assert_eq!(error_code(&body), "BAD_REQUEST", "{levels}: {body}");
        assert_eq!(reason(&body), "NESTING_TOO_DEEP");
        if levels < 1000 {
            let (_, body) = get(&app, &nested_literal(levels), None).await;
            assert_eq!(reason(&body), "NESTING_TOO_DEEP", "GET {levels}");
        }
    }
    // Just under the cap the document reaches validation (which refuses the unknown
    // argument) without harm.
    let body = app
        .gql(None, &nested_literal(MAX_DOCUMENT_NESTING - 2), json!({}))
        .await;
    assert_ne!(reason(&body), "NESTING_TOO_DEEP", "{body}");
    assert_ne!(error_code(&body), "INTERNAL");

    // Variables: deeper than the cap (and than serde_json's 128) is INPUT_TOO_DEEP.
    for levels in [MAX_VARIABLES_DEPTH, 127, 5000] {
        let deep = format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        let vars: String = format!("{{\"v\":{deep}}}");
        let resp = app
            .http
            .post(app.url())
            .header("content-type", "application/json")
            .body(format!(
                "{{\"query\":\"query($v: [Int]) {{ __typename }}\",\"variables\":{vars}}}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{levels}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "BAD_REQUEST", "{body}");
        assert!(
            body.to_string().contains("INPUT_TOO_DEEP") || body.to_string().contains("nests"),
            "{body}"
        );
        if levels < 1000 {
            let (_, body) = get(&app, "query($v: [Int]) { __typename }", Some(&vars)).await;
            assert_eq!(error_code(&body), "BAD_REQUEST", "GET {levels}: {body}");
        }
    }
    // The server still answers.
    let body = app.gql(None, "{ __typename }", json!({})).await;
    assert_eq!(body["data"]["__typename"], "Query");
}

#[tokio::test]
async fn coercion_errors_are_invalid_input_not_internal() {
    let app = spawn_app(Backend::Sqlite).await;
    let manager = app.session_token("manager").await;
    let expert = app.user("expert1").id.to_string();
    let instance = app
        .create_instance("applicant_a", "funded-project", None, None, "项目")
        .await;
    let cases: Vec<(&str, Value)> = vec![
        (
            "mutation($id: ID!) { autoAssign(instanceId: $id, seed: -2147483649) { seed } }",
            json!({ "id": instance.id.to_string() }),
        ),
        (
            r#"{ workflow(id: "funded-project", version: 9223372036854775808) { id } }"#,
            json!({}),
        ),
        (
            r#"query($v: Int) { workflow(id: "funded-project", version: $v) { id } }"#,
            json!({ "v": 1.5 }),
        ),
        (
            r#"mutation($id: ID!) { upsertExpertProfile(input: { userId: $id, categories: [3], workloadCap: -1 }) { workloadCap } }"#,
            json!({ "id": expert }),
        ),
        (
            "query($t: String) { instances(filter: { text: $t }) { totalCount } }",
            json!({ "t": "%".repeat(50_000) }),
        ),
        // A declared variable the request does not give.
        (
            "mutation($id: ID!) { autoAssign(instanceId: $id, seed: 1) { seed } }",
            json!({}),
        ),
        (
            r#"{ instances(filter: { deadlineBefore: "+262142-12-31T00:00:00Z" }) { totalCount } }"#,
            json!({}),
        ),
        (
            r#"{ instances(filter: { deadlineAfter: "1800-01-01T00:00:00Z" }) { totalCount } }"#,
            json!({}),
        ),
    ];
    for (query, variables) in cases {
        let body = app.gql(Some(&manager), query, variables).await;
        let code = error_code(&body);
        assert!(
            code == "INVALID_INPUT" || code == "BAD_REQUEST",
            "{query}: {body}"
        );
        let ext = &body["errors"][0]["extensions"];
        assert!(
            code == "BAD_REQUEST" || (ext["messageZh"].is_string() && ext["messageEn"].is_string()),
            "{body}"
        );
    }
    // A 200-character filter is fine.
    let body = app
        .gql(
            Some(&manager),
            "query($t: String) { instances(filter: { text: $t }) { totalCount } }",
            json!({ "t": "%_\\".repeat(66) }),
        )
        .await;
    assert_eq!(body["data"]["instances"]["totalCount"], 0, "{body}");
}

async fn far_dates_are_refused_and_lists_keep_answering(backend: Backend) {
    let app = spawn_app(backend).await;
    let applicant = app.session_token("applicant_a").await;
    let manager = app.session_token("manager").await;
    for day in ["-0001-12-31", "+262142-12-31", "2201-01-01", "1899-12-31"] {
        let body = app
            .gql(
                Some(&applicant),
                r#"mutation($d: JSON!) { createInstance(input: { workflowId: "funded-project", title: "远期项目", data: $d }) { id } }"#,
                json!({ "d": { "call_id": "2024-call", "closing_date": day } }),
            )
            .await;
        assert_eq!(error_code(&body), "INVALID_INPUT", "{day}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["details"]["fields"][0]["field"],
            "closing_date"
        );
    }
    let instance = app
        .create_instance("applicant_a", "funded-project", None, None, "项目")
        .await;
    for day in ["+262142-12-31", "2201-01-01", "-0001-12-31"] {
        let body = app
            .gql(
                Some(&manager),
                "mutation($id: ID!, $d: NaiveDate!) { extendDeadline(instanceId: $id, expectedVersion: 1, newDueDate: $d, reason: \"延期\") { instance { id } } }",
                json!({ "id": instance.id.to_string(), "d": day }),
            )
            .await;
        let code = error_code(&body);
        assert!(code == "INVALID_INPUT", "{day}: {body}");
    }
    // Every list of every role still answers.
    for user in ["manager", "auditor", "city_gz", "applicant_a"] {
        let token = app.session_token(user).await;
        let data = app
            .ok(
                Some(&token),
                "{ instances(first: 100) { totalCount edges { node { id dueAt } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["instances"]["totalCount"], 1, "{user}");
    }
}

#[tokio::test]
async fn far_dates_are_refused_and_lists_keep_answering_on_sqlite() {
    far_dates_are_refused_and_lists_keep_answering(Backend::Sqlite).await;
}

#[tokio::test]
async fn far_dates_are_refused_and_lists_keep_answering_on_postgres() {
    far_dates_are_refused_and_lists_keep_answering(Backend::Postgres).await;
}

#[tokio::test]
async fn a_call_cannot_close_in_the_past() {
    let app = spawn_app(Backend::Sqlite).await;
    let manager = app.session_token("manager").await;
    let catalogue = include_str!("../../../../workflows/calls/2022.toml");
    // The injected clock reads 2024-06-03 (Shanghai).
    for (day, code) in [
        ("2024-06-02", "IN_THE_PAST"),
        ("2201-01-01", "DATE_OUT_OF_RANGE"),
    ] {
        let body = app
            .gql(
                Some(&manager),
                r#"mutation($input: OpenCallInput!) { openCall(input: $input) { id status } }"#,
                json!({ "input": { "catalogueToml": catalogue, "closingDate": day } }),
            )
            .await;
        assert_eq!(error_code(&body), "INVALID_INPUT", "{day}: {body}");
        let ext = &body["errors"][0]["extensions"]["details"];
        assert!(
            ext["fields"][0]["code"] == code || ext["reason"] == code,
            "{day}: {body}"
        );
    }
    let data = app
        .ok(
            Some(&manager),
            r#"mutation($input: OpenCallInput!) { openCall(input: $input) { status closingDate } }"#,
            json!({ "input": { "catalogueToml": catalogue, "closingDate": "2024-06-03" } }),
        )
        .await;
    assert_eq!(data["openCall"]["status"], "OPEN");
}

/// The same limits and codes over graphql-transport-ws: a too-deep document is refused
/// before parsing, a coercion failure is INVALID_INPUT, and the connection stays usable.
#[tokio::test]
async fn websocket_operations_get_the_same_refusals() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let app = spawn_app(Backend::Sqlite).await;
    let token = app.session_token("manager").await;
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })))
        .await
        .unwrap();
    // The answer to operation `id`, skipping pings and the ack.
    async fn answer(
        ws: &mut (
                 impl futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
                 + Unpin
             ),
        id: &str,
    ) -> Value {
        while let Some(msg) = ws.next().await {
            if let Ok(Message::Text(text)) = msg {
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["id"] == id {
                    return v;
                }
            }
        }
        panic!("the connection closed before answering {id}");
    }
    let cases = [
        ("deep", nested_literal(300), "NESTING_TOO_DEEP"),
        (
            "int",
            r#"{ workflow(id: "funded-project", version: 1.5) { id } }"#.to_string(),
            "",
        ),
        (
            "seed",
            "mutation { autoAssign(instanceId: \"00000000-0000-0000-0000-000000000000\", seed: -1) { seed } }".to_string(),
            "BAD_USER_INPUT",
        ),
    ];
    for (id, query, want) in cases {
        ws.send(send(
            json!({ "id": id, "type": "subscribe", "payload": { "query": query } }),
        ))
        .await
        .unwrap();
        let v = answer(&mut ws, id).await;
        let errors = if v["type"] == "error" {
            v["payload"].clone()
        } else {
            v["payload"]["errors"].clone()
        };
        let first = &errors[0]["extensions"];
        assert_ne!(first["code"], "INTERNAL", "{v}");
        if !want.is_empty() {
            assert!(
                first["reason"] == want || first["details"]["reason"] == want,
                "{id}: {v}"
            );
        }
    }
    ws.send(send(
        json!({ "id": "ok", "type": "subscribe", "payload": { "query": "{ __typename }" } }),
    ))
    .await
    .unwrap();
    let v = answer(&mut ws, "ok").await;
    assert_eq!(v["payload"]["data"]["__typename"], "Query", "{v}");
}
