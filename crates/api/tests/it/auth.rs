//! Authentication over HTTP: login, session expiry on the injected clock, logout and
//! revoking every token, scoped API tokens, and password reset by an e-mailed one-time
//! token. No response ever carries a password or a stored hash. On SQLite and PostgreSQL.

use crate::support;

use chrono::Duration;
use grantflow_api::auth::token_hash;
use grantflow_store::{OutboxMessage, UserPatch};
use serde_json::{Value, json};
use support::{Backend, PASSWORD, TestApp, error_code, spawn_app, spawn_counting};

const LOGIN: &str = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token expiresAt viewer { username } } }";
const VIEWER: &str = "{ viewer { username } }";
const NEW_PASSWORD: &str = "Reset-password-2025";

async fn login_as(app: &TestApp, username: &str, password: &str) -> Value {
    app.gql(None, LOGIN, json!({ "u": username, "p": password }))
        .await
}

/// The body without its request id (which differs on every request).
fn without_request_id(mut body: Value) -> Value {
    for e in body["errors"].as_array_mut().into_iter().flatten() {
        if let Some(ext) = e["extensions"].as_object_mut() {
            ext.remove("requestId");
        }
    }
    body
}

/// Who the token is, or the error code.
async fn whoami(app: &TestApp, token: &str) -> String {
    let body = app.gql(Some(token), VIEWER, json!({})).await;
    match body["data"]["viewer"]["username"].as_str() {
        Some(u) => u.to_string(),
        None => error_code(&body).to_string(),
    }
}

async fn a_wrong_password_an_unknown_user_and_a_deactivated_one_get_the_same_answer(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let ok = login_as(&app, "applicant_a", PASSWORD).await;
    assert_eq!(ok["data"]["login"]["viewer"]["username"], "applicant_a");
    assert!(
        ok["data"]["login"]["token"]
            .as_str()
            .unwrap()
            .starts_with("gfs_")
    );

    let wrong = login_as(&app, "applicant_a", "Wrong-password-1").await;
    let unknown = login_as(&app, "nobody", "Wrong-password-1").await;
    app.services
        .store
        .update_user(
            app.user("applicant_b").id,
            UserPatch {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let inactive = login_as(&app, "applicant_b", PASSWORD).await;
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED", "{wrong}");
    assert!(wrong["data"].is_null());
    let wrong = without_request_id(wrong);
    assert_eq!(
        wrong,
        without_request_id(unknown),
        "no hint that the user exists"
    );
    assert_eq!(
        wrong,
        without_request_id(inactive),
        "nor that the account is off"
    );
    assert!(app.all_bodies().contains("用户名或密码错误"));
}

async fn a_session_ends_after_session_ttl_hours(backend: Backend) {
    let app = spawn_app(backend).await;
    let login = login_as(&app, "city_gz", PASSWORD).await;
    let token = login["data"]["login"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let expires: chrono::DateTime<chrono::Utc> = login["data"]["login"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(expires, support::start_time() + Duration::hours(12));
    assert_eq!(whoami(&app, &token).await, "city_gz");

    app.clock
        .advance(Duration::hours(12) - Duration::seconds(1));
    assert_eq!(whoami(&app, &token).await, "city_gz", "a second before");
    app.clock.advance(Duration::seconds(1));
    assert_eq!(whoami(&app, &token).await, "UNAUTHENTICATED", "at expiry");
    let body = app
        .gql(Some(&token), "{ instances { totalCount } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
}

async fn logout_ends_one_session_and_revoke_all_tokens_ends_every_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.login("manager").await;
    let second = app.login("manager").await;
    let api = app
        .ok(
            Some(&first),
            r#"mutation { createApiToken(name: "监控", scopes: ["read"]) { token record { kind scopes } } }"#,
            json!({}),
        )
        .await["createApiToken"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let other_user = app.login("auditor").await;

    let out = app.ok(Some(&first), "mutation { logout }", json!({})).await;
    assert_eq!(out["logout"], true);
    assert_eq!(whoami(&app, &first).await, "UNAUTHENTICATED");
    assert_eq!(
        whoami(&app, &second).await,
        "manager",
        "the other session lives on"
    );
    assert_eq!(whoami(&app, &api).await, "manager");

    let revoked = app
        .ok(Some(&second), "mutation { revokeAllTokens }", json!({}))
        .await;
    assert_eq!(
        revoked["revokeAllTokens"], 2,
        "the second session and the API token were live"
    );
    assert_eq!(whoami(&app, &second).await, "UNAUTHENTICATED");
    assert_eq!(whoami(&app, &api).await, "UNAUTHENTICATED");
    assert_eq!(
        whoami(&app, &other_user).await,
        "auditor",
        "other users are untouched"
    );
}

async fn create(app: &TestApp, session: &str, scopes: Value, days: u32) -> Value {
    app.ok(
        Some(session),
        "mutation($s: [String!]!, $d: Int) { createApiToken(name: \"客户端\", scopes: $s, expiresInDays: $d) { token record { id kind scopes expiresAt } } }",
        json!({ "s": scopes, "d": days }),
    )
    .await["createApiToken"]
        .clone()
}

const TRANSITION: &str = "mutation($id: ID!) { transition(instanceId: $id, event: \"withdraw\", expectedVersion: 0) { instance { state { id } } } }";

async fn api_tokens_can_do_what_their_scopes_say_and_no_more(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.login("applicant_a").await;
    let instance = app
        .create_instance("applicant_a", "funded-project", None, None, "项目")
        .await;
    let read_only = create(&app, &session, json!(["read"]), 30).await;
    assert_eq!(read_only["record"]["kind"], "api");
    assert_eq!(read_only["record"]["scopes"], json!(["read"]));
    let read_token = read_only["token"].as_str().unwrap();
    assert!(read_token.starts_with("gfa_"));

    // Reading works.
    let seen = app
        .ok(
            Some(read_token),
            "query($id: ID!) { instance(id: $id) { title } }",
            json!({ "id": instance.id }),
        )
        .await;
    assert_eq!(seen["instance"]["title"], "项目");
    // Changing does not.
    let refused = app
        .gql(Some(read_token), TRANSITION, json!({ "id": instance.id }))
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("transition"),
        "the message names the missing scope: {refused}"
    );
    let refused = app
        .gql(
            Some(read_token),
            r#"mutation { createInstance(input: { workflowId: "funded-project", title: "x", data: { call_id: "c", closing_date: "2024-06-28" } }) { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    // Nor may it mint tokens or touch the account.
    for m in [
        r#"mutation { createApiToken(name: "x", scopes: ["read"]) { token } }"#,
        "mutation { revokeAllTokens }",
        "mutation { setNotificationPreference(preference: NONE) { id } }",
    ] {
        let body = app.gql(Some(read_token), m, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{m}: {body}");
    }
    // Nothing changed.
    let i = app.services.store.get_instance(instance.id).await.unwrap();
    assert_eq!(i.version, 0);

    // With the scope, the same request goes through.
    let writer = create(&app, &session, json!(["read", "transition"]), 30).await;
    let done = app
        .ok(
            writer["token"].as_str(),
            TRANSITION,
            json!({ "id": instance.id }),
        )
        .await;
    assert_eq!(done["transition"]["instance"]["state"]["id"], "withdrawn");

    // Applicants cannot grant themselves the admin scope.
    let body = app
        .gql(
            Some(&session),
            r#"mutation { createApiToken(name: "x", scopes: ["read", "admin"]) { token } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN");

    // The token list shows names and scopes, never the secret.
    let mine = app
        .ok(
            Some(&session),
            "{ myTokens { kind name scopes } }",
            json!({}),
        )
        .await;
    let text = mine.to_string();
    assert!(text.contains("客户端"));
    assert!(!text.contains("gfa_") && !text.contains("gfs_"), "{text}");
    // An API token expires after its days.
    let short = create(&app, &session, json!(["read"]), 1).await;
    let short_token = short["token"].as_str().unwrap();
    assert_eq!(whoami(&app, short_token).await, "applicant_a");
    app.clock.advance(Duration::days(1));
    assert_eq!(whoami(&app, short_token).await, "UNAUTHENTICATED");
}

/// The password-reset messages in the outbox.
async fn reset_mails(app: &TestApp) -> Vec<OutboxMessage> {
    app.services
        .store
        .list_outbox(None, None, 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.template == "password_reset")
        .collect()
}

const REQUEST_RESET: &str = "mutation($e: String!) { requestPasswordReset(email: $e) }";
const RESET: &str =
    "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";

async fn a_password_is_reset_once_by_the_e_mailed_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let old_session = app.login("applicant_a").await;
    let old_api = app.api_token("applicant_a", &["read"]).await;

    // An unknown address gets the same answer and no mail.
    let unknown = app
        .ok(None, REQUEST_RESET, json!({ "e": "nobody@example.gov.cn" }))
        .await;
    assert_eq!(unknown["requestPasswordReset"], true);
    assert!(reset_mails(&app).await.is_empty());

    // A known one (in any case) gets one mail with a one-time token and a link.
    let known = app
        .ok(
            None,
            REQUEST_RESET,
            json!({ "e": " Applicant_A@Example.gov.cn " }),
        )
        .await;
    assert_eq!(known, unknown, "the answer does not tell the two apart");
    let mails = reset_mails(&app).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to_address, "applicant_a@example.gov.cn");
    assert_eq!(mail.recipient_user_id, Some(app.user("applicant_a").id));
    let token = mail.context["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("gfr_"));
    assert!(
        mail.context["link"].as_str().unwrap().ends_with(&token),
        "{}",
        mail.context
    );

    // A weak password is refused and spends nothing.
    let weak = app
        .gql(None, RESET, json!({ "t": token, "p": "short" }))
        .await;
    assert_eq!(error_code(&weak), "INVALID_INPUT");
    assert_eq!(
        weak["errors"][0]["extensions"]["details"]["fields"][0]["field"],
        "newPassword"
    );

    let reset = app
        .ok(None, RESET, json!({ "t": token, "p": NEW_PASSWORD }))
        .await;
    assert_eq!(reset["resetPassword"], true);
    // Every session and token of the user is over; the new password logs in, the old
    // one does not.
    assert_eq!(whoami(&app, &old_session).await, "UNAUTHENTICATED");
    assert_eq!(whoami(&app, &old_api).await, "UNAUTHENTICATED");
    let new_login = login_as(&app, "applicant_a", NEW_PASSWORD).await;
    assert_eq!(
        new_login["data"]["login"]["viewer"]["username"],
        "applicant_a"
    );
    let old_login = login_as(&app, "applicant_a", PASSWORD).await;
    assert_eq!(error_code(&old_login), "UNAUTHENTICATED");

    // The token works once.
    let again = app
        .gql(
            None,
            RESET,
            json!({ "t": token, "p": "Another-password-2026" }),
        )
        .await;
    assert_eq!(error_code(&again), "INVALID_INPUT", "{again}");
    assert_eq!(
        again["errors"][0]["extensions"]["details"]["fields"][0]["code"],
        "INVALID_TOKEN"
    );
    assert_eq!(
        login_as(&app, "applicant_a", NEW_PASSWORD).await["data"]["login"]["viewer"]["username"],
        "applicant_a",
        "the second use changed nothing"
    );

    // A token past reset_ttl_minutes (30) is refused.
    app.ok(
        None,
        REQUEST_RESET,
        json!({ "e": "city_sz@example.gov.cn" }),
    )
    .await;
    let late = reset_mails(&app)
        .await
        .into_iter()
        .find(|m| m.to_address == "city_sz@example.gov.cn")
        .unwrap();
    let late_token = late.context["token"].as_str().unwrap().to_string();
    app.clock.advance(Duration::minutes(30));
    let expired = app
        .gql(None, RESET, json!({ "t": late_token, "p": NEW_PASSWORD }))
        .await;
    assert_eq!(error_code(&expired), "INVALID_INPUT", "{expired}");
    assert_eq!(
        login_as(&app, "city_sz", PASSWORD).await["data"]["login"]["viewer"]["username"],
        "city_sz",
        "the expired token changed nothing"
    );

    // No response carried a password, a reset token, or the hash of any token.
    let bodies = app.all_bodies();
    for secret in [
        PASSWORD.to_string(),
        NEW_PASSWORD.to_string(),
        token.clone(),
        token_hash(&token),
        late_token.clone(),
        token_hash(&late_token),
        token_hash(&old_session),
        token_hash(&old_api),
        "$argon2id$".to_string(),
    ] {
        assert!(!bodies.contains(&secret), "a response contains {secret}");
    }
}

async fn changing_the_password_needs_the_current_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.login("expert1").await;
    let change =
        "mutation($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) }";
    let wrong = app
        .gql(
            Some(&session),
            change,
            json!({ "o": "Not-the-password-1", "n": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&wrong), "INVALID_INPUT");
    assert_eq!(
        wrong["errors"][0]["extensions"]["details"]["fields"][0]["field"],
        "oldPassword"
    );
    let done = app
        .ok(
            Some(&session),
            change,
            json!({ "o": PASSWORD, "n": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(done["changePassword"], true);
    assert_eq!(
        login_as(&app, "expert1", NEW_PASSWORD).await["data"]["login"]["viewer"]["username"],
        "expert1"
    );
    assert_eq!(
        error_code(&login_as(&app, "expert1", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    let bodies = app.all_bodies();
    assert!(!bodies.contains(PASSWORD) && !bodies.contains(NEW_PASSWORD));
    assert!(!bodies.contains("$argon2id$"));
}

/// 30 aliased `login` fields × 10 batched operations are 300 attempts: the account locks
/// after five wrong passwords, the rest are refused without a password check, and even
/// the right password waits out the lock (on the injected clock).
async fn every_login_attempt_counts_and_an_account_locks(backend: Backend) {
    let app = spawn_app(backend).await;
    let fields: String = (0..30)
        .map(|i| {
            format!(
                r#"a{i}: login(username: "manager", password: "Wrong-password-{i}") {{ token }} "#
            )
        })
        .collect();
    let operation = json!({ "query": format!("mutation {{ {fields} }}") });
    let batch: Value = (0..10).map(|_| operation.clone()).collect();
    let resp = app
        .http
        .post(app.url())
        .header("content-type", "application/json")
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bodies: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(bodies.len(), 10);
    let codes: Vec<String> = bodies
        .iter()
        .flat_map(|b| b["errors"].as_array().unwrap().clone())
        .map(|e| e["extensions"]["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 300, "one answer per attempt");
    assert_eq!(
        codes.iter().filter(|c| *c == "UNAUTHENTICATED").count(),
        5,
        "five passwords were checked"
    );
    assert_eq!(codes.iter().filter(|c| *c == "RATE_LIMITED").count(), 295);
    let right = login_as(&app, "manager", PASSWORD).await;
    assert_eq!(error_code(&right), "RATE_LIMITED", "{right}");
    let details = &right["errors"][0]["extensions"]["details"];
    assert_eq!(details["reason"], "TOO_MANY_ATTEMPTS");
    assert_eq!(details["retryAfterSeconds"], 30);
    // Another account from the same address is not locked by this one.
    assert_eq!(
        login_as(&app, "auditor", PASSWORD).await["data"]["login"]["viewer"]["username"],
        "auditor"
    );
    app.clock.advance(Duration::seconds(30));
    assert_eq!(
        login_as(&app, "manager", PASSWORD).await["data"]["login"]["viewer"]["username"],
        "manager"
    );
}

/// A reset with a made-up token is refused before the new password is hashed: the store
/// is asked about the token and nothing else.
async fn a_reset_token_is_checked_before_the_password_is_hashed(backend: Backend) {
    let (app, counting) = spawn_counting(backend, Default::default()).await;
    let body = app
        .gql(
            None,
            RESET,
            json!({ "t": "gfr_made-up", "p": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["details"]["fields"][0]["code"],
        "INVALID_TOKEN"
    );
    let calls = counting.calls();
    assert_eq!(calls.get("check_reset_token"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("consume_reset_token"), None, "{calls:?}");
}

/// A password change ends every other session and API token; the one that made it stays.
async fn changing_the_password_ends_every_other_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let current = app.session_token("expert2").await;
    let other = app.session_token("expert2").await;
    let api = app.api_token("expert2", &["read"]).await;
    app.ok(
        Some(&current),
        "mutation($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) }",
        json!({ "o": PASSWORD, "n": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(whoami(&app, &current).await, "expert2");
    assert_eq!(whoami(&app, &other).await, "UNAUTHENTICATED");
    assert_eq!(whoami(&app, &api).await, "UNAUTHENTICATED");
}

/// Every query field needs the `read` scope, whichever resolver it is: a token with only
/// `review` reads no e-mail addresses from the outbox and not even the viewer.
async fn a_review_only_token_reads_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let review = app.api_token("manager", &["review"]).await;
    let read = app.api_token("manager", &["read"]).await;
    let id = app.user("manager").id.to_string();
    for query in [
        "{ outbox { toAddress } }",
        "{ viewer { email } }",
        "{ myTokens { id } }",
        "{ user(id: \"ID\") { email } }",
        "{ organisations { id } }",
    ] {
        let query = query.replace("ID", &id);
        let body = app.gql(Some(&review), &query, json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{query}: {body}");
        assert!(
            !body.to_string().contains("@example.gov.cn"),
            "{query}: {body}"
        );
        let allowed = app.gql(Some(&read), &query, json!({})).await;
        assert!(allowed.get("errors").is_none(), "{query}: {allowed}");
    }
    // A review token still does what it is for; a read token may not review.
    let body = app
        .gql(Some(&read), "mutation { declareNoConflict(assignmentId: \"00000000-0000-0000-0000-000000000000\") { id } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
}

/// A parent that does not exist and one the caller may not see answer alike.
async fn an_invisible_parent_answers_like_a_missing_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let theirs = app
        .create_instance("applicant_b", "funded-project", None, None, "深圳项目")
        .await;
    let token = app.session_token("applicant_a").await;
    let create = |parent: String| json!({ "input": { "workflowId": "change-request", "title": "变更", "parentId": parent, "data": {} } });
    let q = "mutation($input: CreateInstanceInput!) { createInstance(input: $input) { id } }";
    let invisible = app
        .gql(Some(&token), q, create(theirs.id.to_string()))
        .await;
    let missing = app
        .gql(Some(&token), q, create(uuid::Uuid::new_v4().to_string()))
        .await;
    assert_eq!(error_code(&invisible), "NOT_FOUND", "{invisible}");
    assert_eq!(without_request_id(invisible), without_request_id(missing));
}

use grantflow_testkit::on_both_backends;

on_both_backends!(
    a_wrong_password_an_unknown_user_and_a_deactivated_one_get_the_same_answer,
    a_session_ends_after_session_ttl_hours,
    logout_ends_one_session_and_revoke_all_tokens_ends_every_one,
    api_tokens_can_do_what_their_scopes_say_and_no_more,
    a_password_is_reset_once_by_the_e_mailed_token,
    changing_the_password_needs_the_current_one,
    every_login_attempt_counts_and_an_account_locks,
    a_reset_token_is_checked_before_the_password_is_hashed,
    changing_the_password_ends_every_other_session,
    a_review_only_token_reads_nothing,
    an_invisible_parent_answers_like_a_missing_one,
);
