//! Masked internal errors: when the store fails with a backend error, the client gets code
//! INTERNAL, a message without the detail, and the request id that the log line carries.

use crate::support;

use grantflow_api::ApiSettings;
use serde_json::{Value, json};
use support::counting::SECRET_DETAIL;
use support::{Backend, TestApp, spawn_counting};

const MASKED: &str = "服务器内部错误 (internal error)";

/// POST `query` with `token` and our own request id; the status and the body.
async fn send(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    variables: Value,
    request_id: &str,
) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url())
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .header("x-request-id", request_id)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    assert_eq!(
        resp.headers()["x-request-id"],
        request_id,
        "the response names the request"
    );
    (status, resp.json().await.unwrap())
}

async fn a_failing_store_gives_internal_with_a_request_id_and_no_detail(backend: Backend) {
    let (app, store) = spawn_counting(backend, ApiSettings::default()).await;
    let manager = app.session_token("manager").await;
    let applicant = app.session_token("applicant_a").await;
    let instance = app
        .create_instance("applicant_a", "funded-project", None, None, "项目")
        .await;
    let id = instance.id.to_string();
    // (the failing store method, who asks, the operation, its variables, the failing field)
    let cases: Vec<(&'static str, Option<&str>, &str, Value, &str)> = vec![
        (
            "list_instances",
            Some(&manager),
            "{ instances { totalCount } }",
            json!({}),
            "instances",
        ),
        (
            "get_orgs",
            Some(&manager),
            "{ instances { edges { node { organisation { name } } } } }",
            json!({}),
            "instances",
        ),
        (
            "get_users",
            Some(&manager),
            "query($id: ID!) { instance(id: $id) { createdBy { displayName } } }",
            json!({ "id": id }),
            "instance",
        ),
        (
            "get_instance",
            Some(&manager),
            "query($id: ID!) { instance(id: $id) { id } }",
            json!({ "id": id }),
            "instance",
        ),
        (
            "history",
            Some(&manager),
            "query($id: ID!) { instance(id: $id) { history { seq } } }",
            json!({ "id": id }),
            "instance",
        ),
        (
            "list_orgs",
            Some(&applicant),
            "{ organisations { name } }",
            json!({}),
            "organisations",
        ),
        (
            "apply_transition",
            Some(&applicant),
            "mutation($id: ID!) { transition(instanceId: $id, event: \"withdraw\", expectedVersion: 0) { instance { id } } }",
            json!({ "id": id }),
            "transition",
        ),
        (
            "find_user_by_username",
            None,
            "mutation { login(username: \"manager\", password: \"Whatever-2024\") { token } }",
            json!({}),
            "login",
        ),
        (
            "enqueue",
            None,
            "mutation { requestPasswordReset(email: \"manager@example.gov.cn\") }",
            json!({}),
            "requestPasswordReset",
        ),
    ];
    for (n, (method, token, query, vars, field)) in cases.into_iter().enumerate() {
        store.fail_on(method);
        let rid = format!("test-{n}-{method}").replace('_', "-");
        let (status, body) = send(&app, token, query, vars, &rid).await;
        assert_eq!(status, 200, "{method}: a field error: {body}");
        let e = &body["errors"][0];
        assert_eq!(e["extensions"]["code"], "INTERNAL", "{method}: {body}");
        assert_eq!(e["message"], MASKED, "{method}: {body}");
        assert_eq!(e["extensions"]["requestId"], rid, "{method}: {body}");
        assert_eq!(e["path"][0], field, "{method}: {body}");
        assert!(
            store.calls().get(method).is_some_and(|n| *n > 0),
            "{method} was called"
        );
        let text = body.to_string();
        for leak in [SECRET_DETAIL, "hunter2", "database error", "postgres://"] {
            assert!(
                !text.contains(leak),
                "{method}: the body leaks `{leak}`: {text}"
            );
        }
    }

    // The bearer token cannot even be checked: the whole request is INTERNAL (500).
    store.fail_on("find_token");
    let (status, body) = send(
        &app,
        Some(&manager),
        "{ viewer { id } }",
        json!({}),
        "test-auth",
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL");
    assert_eq!(body["errors"][0]["extensions"]["requestId"], "test-auth");
    assert!(!body.to_string().contains("hunter2"));
    assert!(body.get("data").is_none());
}

use grantflow_testkit::on_both_backends;

on_both_backends!(a_failing_store_gives_internal_with_a_request_id_and_no_detail,);
