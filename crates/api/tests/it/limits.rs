//! Expensive and malformed requests: each gets a clear error with a stable
//! `extensions.code` and the right HTTP status, and the server still answers a normal
//! query afterwards. Then the rate limit.

use crate::support;

use grantflow_api::ApiSettings;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use support::{Backend, TestApp, spawn_app_with};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// Small limits, so that the requests that break them stay small too.
fn settings() -> ApiSettings {
    ApiSettings {
        max_depth: 12,
        max_complexity: 2000,
        max_aliases: 30,
        max_batch: 10,
        body_limit_bytes: 64 * 1024,
        ..ApiSettings::default()
    }
}

/// A request as sent: method, content type, accept, body or query string.
struct Raw {
    method: reqwest::Method,
    content_type: Option<&'static str>,
    accept: &'static str,
    body: Option<String>,
    query_string: Option<String>,
}

impl Raw {
    #[allow(
        clippy::needless_pass_by_value,
        reason = "test helper taking the body it sends"
    )]
    fn post_json(body: Value) -> Self {
        Self::post_text("application/json", body.to_string())
    }

    fn post_text(content_type: &'static str, body: String) -> Self {
        Self {
            method: reqwest::Method::POST,
            content_type: Some(content_type),
            accept: GRAPHQL_RESPONSE,
            body: Some(body),
            query_string: None,
        }
    }

    fn query(query: &str) -> Self {
        Self::post_json(json!({ "query": query }))
    }
}

/// Send `raw` with `token`; the status, the headers and the JSON body.
async fn send(app: &TestApp, token: &str, raw: Raw) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut url = app.url();
    if let Some(q) = &raw.query_string {
        url = format!("{url}?{q}");
    }
    let mut req = app
        .http
        .request(raw.method, url)
        .bearer_auth(token)
        .header(ACCEPT, raw.accept);
    if let Some(ct) = raw.content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    if let Some(b) = raw.body {
        req = req.body(b);
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("a JSON error body, not ({e}): {text}"));
    (status, headers, body)
}

/// `{ instance(id: …) { parent { parent { … { id } } } } }`, `levels` parents deep.
fn parents(levels: usize) -> String {
    format!(
        r#"{{ instance(id: "{}") {{ {} id {} }} }}"#,
        uuid::Uuid::nil(),
        "parent {".repeat(levels),
        "}".repeat(levels)
    )
}

/// `n` aliased copies of `{ viewer { id } }`.
fn aliases(n: usize) -> String {
    let fields: Vec<String> = (0..n).map(|i| format!("a{i}: viewer {{ id }}")).collect();
    format!("{{ {} }}", fields.join(" "))
}

/// Every scalar of an instance and its references, for a page of 100.
const EVERYTHING_OF_100: &str = "{ instances(first: 100) { totalCount edges { cursor node {
    id title workflowId workflowVersion final data version createdAt updatedAt dueAt overdue review
    state { id title { zhCn en } } stage { id title { zhCn en } }
    organisation { id name kind } createdBy { id username displayName }
} } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";

/// A fragment of 20 aliases, spread three times (60 aliases in the operation).
const ALIASES_IN_A_REPEATED_FRAGMENT: &str = "
fragment F on Organisation {
  a1: id a2: id a3: id a4: id a5: id a6: id a7: id a8: id a9: id a10: id
  a11: id a12: id a13: id a14: id a15: id a16: id a17: id a18: id a19: id a20: id
}
{ organisations { ...F parent { ...F parent { ...F } } } }";

struct Case {
    name: &'static str,
    raw: Raw,
    status: u16,
    code: &'static str,
    /// `extensions.reason`, when the error names one.
    reason: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let batch = |n: usize| -> Value {
        Value::Array(
            (0..n)
                .map(|_| json!({ "query": "{ viewer { id } }" }))
                .collect(),
        )
    };
    vec![
        Case {
            name: "a query nested 13 deep: instance, 11 parents, id (max_depth 12)",
            raw: Raw::query(&parents(11)),
            status: 400,
            code: "BAD_REQUEST",
            reason: Some("QUERY_TOO_DEEP"),
        },
        Case {
            name: "every field of 100 instances (max_complexity 2000)",
            raw: Raw::query(EVERYTHING_OF_100),
            status: 400,
            code: "BAD_REQUEST",
            reason: Some("QUERY_TOO_COMPLEX"),
        },
        Case {
            name: "500 aliases (max_aliases 30)",
            raw: Raw::query(&aliases(500)),
            status: 400,
            code: "BAD_REQUEST",
            reason: Some("TOO_MANY_ALIASES"),
        },
        Case {
            name: "60 aliases through a fragment spread three times",
            raw: Raw::query(ALIASES_IN_A_REPEATED_FRAGMENT),
            status: 400,
            code: "BAD_REQUEST",
            reason: Some("TOO_MANY_ALIASES"),
        },
        Case {
            name: "a body over body_limit_bytes",
            raw: Raw::query(&format!(
                "{{ viewer {{ id }} }} # {}",
                "x".repeat(70 * 1024)
            )),
            status: 413,
            code: "BAD_REQUEST",
            reason: None,
        },
        Case {
            name: "a batch of 11 (max_batch 10)",
            raw: Raw::post_json(batch(11)),
            status: 400,
            code: "BAD_REQUEST",
            reason: None,
        },
        Case {
            name: "an empty batch",
            raw: Raw::post_json(batch(0)),
            status: 400,
            code: "BAD_REQUEST",
            reason: None,
        },
        Case {
            name: "invalid JSON",
            raw: Raw::post_text(
                "application/json",
                r#"{"query": "{ viewer { id } }""#.into(),
            ),
            status: 400,
            code: "BAD_REQUEST",
            reason: None,
        },
        Case {
            name: "a GraphQL syntax error",
            raw: Raw::query("{ viewer { id }"),
            status: 400,
            code: "BAD_REQUEST",
            reason: None,
        },
        Case {
            name: "a mutation over GET",
            raw: Raw {
                method: reqwest::Method::GET,
                content_type: None,
                accept: GRAPHQL_RESPONSE,
                body: None,
                query_string: Some(
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("query", "mutation { logout }")
                        .finish(),
                ),
            },
            status: 405,
            code: "BAD_REQUEST",
            reason: None,
        },
        Case {
            name: "a text/plain body",
            raw: Raw::post_text(
                "text/plain",
                json!({ "query": "{ viewer { id } }" }).to_string(),
            ),
            status: 415,
            code: "BAD_REQUEST",
            reason: None,
        },
        Case {
            name: "Accept: text/html only",
            raw: Raw {
                accept: "text/html",
                ..Raw::query("{ viewer { id } }")
            },
            status: 406,
            code: "BAD_REQUEST",
            reason: None,
        },
    ]
}

/// A normal query still works.
async fn still_answers(app: &TestApp, token: &str) {
    let (status, _, body) = send(app, token, Raw::query("{ viewer { username } }")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["viewer"]["username"], "manager", "{body}");
}

async fn expensive_and_malformed_requests_get_clear_errors(backend: Backend) {
    let app = spawn_app_with(backend, settings()).await;
    let token = app.session_token("manager").await;
    // The limits hold for queries that would otherwise return data.
    app.create_instance("applicant_a", "funded-project", None, None, "项目")
        .await;
    still_answers(&app, &token).await;
    for case in cases() {
        let (status, headers, body) = send(&app, &token, case.raw).await;
        let name = case.name;
        assert_eq!(status, case.status, "{name}: {body}");
        let errors = body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: errors: {body}"));
        assert_eq!(errors.len(), 1, "{name}: one error: {body}");
        let e = &errors[0];
        assert_eq!(e["extensions"]["code"], case.code, "{name}: {body}");
        if let Some(reason) = case.reason {
            assert_eq!(e["extensions"]["reason"], reason, "{name}: {body}");
        }
        assert!(
            e["message"].as_str().is_some_and(|m| m.len() > 10),
            "{name}: a message that says what is wrong: {body}"
        );
        assert!(body.get("data").is_none(), "{name}: no data: {body}");
        assert_eq!(
            e["extensions"]["requestId"],
            headers["x-request-id"].to_str().unwrap(),
            "{name}: the request id, as in the header: {body}"
        );
        if case.reason == Some("QUERY_TOO_DEEP") {
            assert!(e["message"].as_str().unwrap().contains("13"), "{body}");
        }
        if status == 405 {
            assert_eq!(headers["allow"], "POST", "{name}");
        }
        still_answers(&app, &token).await;
    }
}

async fn limits_leave_ordinary_queries_alone(backend: Backend) {
    let app = spawn_app_with(backend, settings()).await;
    let token = app.session_token("manager").await;
    // Just within each limit: nested 12 deep (instance, 10 parents, id), 30 aliases, a
    // dashboard page of 50, a batch of 10.
    let (status, _, body) = send(&app, &token, Raw::query(&parents(10))).await;
    assert_eq!(status, 200, "depth 12: {body}");
    assert_eq!(crate::support::error_code(&body), "NOT_FOUND", "{body}");
    let (status, _, body) = send(&app, &token, Raw::query(&aliases(30))).await;
    assert_eq!(status, 200, "30 aliases: {body}");
    assert_eq!(
        body["data"]["a29"]["id"],
        app.user("manager").id.to_string()
    );
    let (status, _, body) = send(
        &app,
        &token,
        Raw::query("{ instances(first: 50) { totalCount edges { cursor node { id title version state { id title { zhCn } } stage { id } dueAt overdue organisation { name } createdBy { displayName } } } pageInfo { hasNextPage endCursor } } }"),
    )
    .await;
    assert_eq!(status, 200, "a dashboard page of 50: {body}");
    assert!(body.get("errors").is_none(), "{body}");
    let batch: Value = (0..10)
        .map(|_| json!({ "query": "{ viewer { id } }" }))
        .collect();
    let (status, _, body) = send(&app, &token, Raw::post_json(batch)).await;
    assert_eq!(status, 200, "a batch of 10: {body}");
    assert_eq!(body.as_array().map(Vec::len), Some(10));
}

async fn the_sixth_request_in_a_minute_is_rate_limited(backend: Backend) {
    let app = spawn_app_with(
        backend,
        ApiSettings {
            rate_limit_per_minute: 5,
            ..ApiSettings::default()
        },
    )
    .await;
    let token = app.session_token("manager").await;
    // Six requests well within one 60-second window.
    for i in 1..=5 {
        let (status, _, body) = send(&app, &token, Raw::query("{ viewer { id } }")).await;
        assert_eq!(status, 200, "request {i}: {body}");
    }
    let (status, headers, body) = send(&app, &token, Raw::query("{ viewer { id } }")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(body.get("data").is_none());
    assert_eq!(headers["retry-after"], "60");
    // The limit is per token: another caller is still served.
    let other = app.session_token("applicant_a").await;
    let (status, _, body) = send(&app, &other, Raw::query("{ viewer { username } }")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["viewer"]["username"], "applicant_a");
}

/// An unknown bearer is counted by the client's address: a fresh random token per request
/// buys no fresh bucket. A batch counts each of its operations.
async fn unknown_bearers_share_the_address_bucket(backend: Backend) {
    let app = spawn_app_with(
        backend,
        ApiSettings {
            rate_limit_per_minute: 5,
            ..ApiSettings::default()
        },
    )
    .await;
    for i in 1..=5 {
        let junk = if i % 2 == 0 {
            format!("junk-{i}")
        } else {
            format!("gfs_made-up-{i}")
        };
        let (status, _, body) = send(&app, &junk, Raw::query("{ __typename }")).await;
        assert_eq!(status, 200, "request {i}: {body}");
    }
    let (status, headers, body) = send(&app, "junk-6", Raw::query("{ __typename }")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    assert_eq!(headers["retry-after"], "60");
    // A signed-in user has a bucket of their own …
    let token = app.session_token("manager").await;
    let batch: Value = (0..5)
        .map(|_| json!({ "query": "{ viewer { id } }" }))
        .collect();
    let (status, _, body) = send(&app, &token, Raw::post_json(batch)).await;
    assert_eq!(status, 200, "{body}");
    // … in which a batch of five was five operations.
    let (status, _, _) = send(&app, &token, Raw::query("{ viewer { id } }")).await;
    assert_eq!(status, 429);
    // Twenty seconds later (on the injected clock) the wait is forty.
    app.clock.advance(chrono::Duration::seconds(20));
    let (status, headers, _) = send(&app, "junk-7", Raw::query("{ __typename }")).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "40");
}

/// Behind one trusted proxy, anonymous callers are counted by the address the proxy saw
/// (the last `X-Forwarded-For` entry), not by the proxy's own address, and not by what a
/// client wrote into the header itself.
async fn behind_a_trusted_proxy_each_client_address_has_its_bucket(backend: Backend) {
    let app = spawn_app_with(
        backend,
        ApiSettings {
            rate_limit_per_minute: 2,
            trusted_proxy_hops: 1,
            ..ApiSettings::default()
        },
    )
    .await;
    let ask = |forwarded: &'static str| {
        let req = app
            .http
            .post(app.url())
            .header(CONTENT_TYPE, "application/json")
            .header("x-forwarded-for", forwarded)
            .body(r#"{"query":"{ __typename }"}"#);
        async move {
            req.send()
                .await
                .expect("the server answers")
                .status()
                .as_u16()
        }
    };
    assert_eq!(ask("203.0.113.7").await, 200);
    assert_eq!(ask("203.0.113.7").await, 200);
    assert_eq!(ask("203.0.113.7").await, 429, "the third from one client");
    // Another client behind the same proxy is served.
    assert_eq!(ask("198.51.100.9").await, 200);
    // A client who writes other addresses in front of its own gains nothing.
    assert_eq!(ask("1.1.1.1, 203.0.113.7").await, 429);
    assert_eq!(ask("2.2.2.2, 203.0.113.7").await, 429);
}

/// graphql-js 16's `getIntrospectionQuery()`: 15 levels, more than the depth limit of 12.
const INTROSPECTION: &str = "query IntrospectionQuery { __schema { queryType { name } mutationType { name } subscriptionType { name } types { ...FullType } directives { name description locations args { ...InputValue } } } }
  fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason } inputFields { ...InputValue } interfaces { ...TypeRef } enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }
  fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
  fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }";

/// Standard introspection works while introspection is on; a query of data beside it
/// still meets the depth limit.
async fn standard_introspection_passes_the_depth_limit(backend: Backend) {
    let app = spawn_app_with(backend, settings()).await;
    let token = app.session_token("manager").await;
    let (status, _, body) = send(&app, &token, Raw::query(INTROSPECTION)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    let piggy_back = format!(
        "{{ __schema {{ queryType {{ name }} }} {} }}",
        &parents(13)[1..parents(13).len() - 1]
    );
    let (status, _, body) = send(&app, &token, Raw::query(&piggy_back)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "QUERY_TOO_DEEP");
}

use grantflow_testkit::on_both_backends;

on_both_backends!(
    expensive_and_malformed_requests_get_clear_errors,
    limits_leave_ordinary_queries_alone,
    the_sixth_request_in_a_minute_is_rate_limited,
    unknown_bearers_share_the_address_bucket,
    behind_a_trusted_proxy_each_client_address_has_its_bucket,
    standard_introspection_passes_the_depth_limit,
);
