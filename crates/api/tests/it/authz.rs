//! The authorisation matrix: every role × every query and mutation (and the nested fields
//! that check the viewer), as a table of expected outcomes that the test checks cell by
//! cell, on SQLite and on PostgreSQL.
//!
//! Outcomes:
//! - `A` allowed: no error, the field has a value;
//! - `H` hidden: no error, but the field is null (a nested field the viewer may not see);
//! - `U` UNAUTHENTICATED, `F` FORBIDDEN, `N` NOT_FOUND (the record is not revealed).
//!
//! Columns: anonymous, then sessions of admin, manager, auditor, city_gz (广州),
//! city_sz (深圳), applicant_a (unit in 广州), applicant_b (unit in 深圳), expert1 (assigned
//! to the unit-A instances), expert2 (assigned to nothing), and last an API token of
//! applicant_a with only the `read` scope. Every attempt uses a fresh token and, for
//! mutations that change an instance, a fresh instance, so cells do not affect each other.

use crate::support;

use std::collections::BTreeSet;

use grantflow_store::Instance;
use serde_json::{Value, json};
use support::{Backend, PASSWORD, TestApp, error_code, spawn_app};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    A,
    H,
    U,
    F,
    N,
}
use Outcome::{A, F, H, N, U};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Session(&'static str),
    /// An API token of the user with only the `read` scope.
    ReadToken(&'static str),
}

const COLUMNS: [Who; 11] = [
    Who::Anonymous,
    Who::Session("admin"),
    Who::Session("manager"),
    Who::Session("auditor"),
    Who::Session("city_gz"),
    Who::Session("city_sz"),
    Who::Session("applicant_a"),
    Who::Session("applicant_b"),
    Who::Session("expert1"),
    Who::Session("expert2"),
    Who::ReadToken("applicant_a"),
];

#[derive(Debug, Clone, Copy)]
enum Case {
    // queries
    Viewer,
    MyTokens,
    Organisations,
    Organisation,
    Users,
    UserSelf,
    UserOther,
    UserEmailViaUser,
    UserEmailViaCreatedBy,
    Workflows,
    Workflow,
    InstanceOfUnitA,
    InstanceOfUnitB,
    Instances,
    Outbox,
    InstanceMessages,
    ParentInOtherUnit,
    ParentInSameUnit,
    // account mutations
    Login,
    Logout,
    RevokeAllTokens,
    CreateApiToken,
    RevokeOwnApiToken,
    RevokeApplicantBsApiToken,
    RequestPasswordReset,
    ResetPassword,
    ChangePassword,
    SetNotificationPreference,
    // administration
    CreateOrganisation,
    CreateUser,
    UpdateUser,
    // instances
    CreateInstanceForUnitA,
    CreateInstanceUnderUnitBsInstance,
    WithdrawUnitAsInstance,
    WithdrawUnitBsInstance,
    RecommendUnitAsInstance,
    ExtendDeadlineOfUnitAsInstance,
}

type Row = (Case, [Outcome; 11]);

#[rustfmt::skip]
const QUERIES: &[Row] = &[
    //                                  anon admin mgr aud gz sz appl_a appl_b exp1 exp2 a_read
    (Case::Viewer,                     [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   A]),
    (Case::MyTokens,                   [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   A]),
    (Case::Organisations,              [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   A]),
    (Case::Organisation,               [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   A]),
    (Case::Users,                      [U,   A,    F,  F,  F, F,  F,     F,     F,   F,   F]),
    (Case::UserSelf,                   [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   A]),
    (Case::UserOther,                  [U,   A,    N,  N,  N, N,  N,     A,     N,   N,   N]),
    (Case::UserEmailViaUser,           [U,   A,    N,  N,  N, N,  A,     N,     N,   N,   A]),
    (Case::UserEmailViaCreatedBy,      [U,   N,    A,  H,  H, N,  A,     N,     H,   N,   A]),
    (Case::Workflows,                  [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   A]),
    (Case::Workflow,                   [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   A]),
    (Case::InstanceOfUnitA,            [U,   N,    A,  A,  A, N,  A,     N,     A,   N,   A]),
    (Case::InstanceOfUnitB,            [U,   N,    A,  A,  N, A,  N,     A,     N,   N,   N]),
    (Case::Instances,                  [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   A]),
    (Case::Outbox,                     [U,   F,    A,  F,  F, F,  F,     F,     F,   F,   F]),
    (Case::InstanceMessages,           [U,   N,    A,  F,  F, N,  F,     N,     F,   N,   F]),
    (Case::ParentInOtherUnit,          [U,   N,    A,  A,  H, N,  H,     N,     H,   N,   H]),
    (Case::ParentInSameUnit,           [U,   N,    A,  A,  A, N,  A,     N,     A,   N,   A]),
];

#[rustfmt::skip]
const ACCOUNT_MUTATIONS: &[Row] = &[
    //                                  anon admin mgr aud gz sz appl_a appl_b exp1 exp2 a_read
    (Case::Login,                      [A,   A,    A,  A,  A, A,  A,     A,     A,   A,   A]),
    (Case::Logout,                     [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   A]),
    (Case::RevokeAllTokens,            [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   F]),
    (Case::CreateApiToken,             [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   F]),
    (Case::RevokeOwnApiToken,          [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   F]),
    (Case::RevokeApplicantBsApiToken,  [U,   N,    N,  N,  N, N,  N,     A,     N,   N,   F]),
    (Case::RequestPasswordReset,       [A,   A,    A,  A,  A, A,  A,     A,     A,   A,   A]),
    (Case::ResetPassword,              [A,   A,    A,  A,  A, A,  A,     A,     A,   A,   A]),
    (Case::ChangePassword,             [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   F]),
    (Case::SetNotificationPreference,  [U,   A,    A,  A,  A, A,  A,     A,     A,   A,   F]),
];

#[rustfmt::skip]
const ADMIN_MUTATIONS: &[Row] = &[
    //                                  anon admin mgr aud gz sz appl_a appl_b exp1 exp2 a_read
    (Case::CreateOrganisation,         [U,   A,    F,  F,  F, F,  F,     F,     F,   F,   F]),
    (Case::CreateUser,                 [U,   A,    F,  F,  F, F,  F,     F,     F,   F,   F]),
    (Case::UpdateUser,                 [U,   A,    F,  F,  F, F,  F,     F,     F,   F,   F]),
];

#[rustfmt::skip]
const INSTANCE_MUTATIONS: &[Row] = &[
    //                                  anon admin mgr aud gz sz appl_a appl_b exp1 exp2 a_read
    (Case::CreateInstanceForUnitA,     [U,   F,    A,  F,  F, F,  A,     F,     F,   F,   F]),
    (Case::CreateInstanceUnderUnitBsInstance,
                                       [U,   F,    A,  F,  F, F,  N,     A,     F,   F,   F]),
    (Case::WithdrawUnitAsInstance,     [U,   N,    F,  F,  F, N,  A,     N,     F,   N,   F]),
    (Case::WithdrawUnitBsInstance,     [U,   N,    F,  F,  N, F,  N,     A,     N,   N,   F]),
    (Case::RecommendUnitAsInstance,    [U,   N,    F,  F,  A, N,  F,     N,     F,   N,   F]),
    (Case::ExtendDeadlineOfUnitAsInstance,
                                       [U,   F,    A,  F,  F, F,  F,     F,     F,   F,   F]),
];

/// Instances shared by the query rows (mutation rows make their own).
struct Fixture {
    /// A funded project of applicant_a's unit (广州); expert1 is assigned.
    a: Instance,
    /// A funded project of applicant_b's unit (深圳).
    b: Instance,
    /// A change request of unit A whose parent is `b` (unit B); expert1 is assigned to
    /// the change request only.
    child_of_b: Instance,
    /// A change request of unit A whose parent is `a`; expert1 is assigned.
    child_of_a: Instance,
}

async fn fixture(app: &TestApp) -> Fixture {
    let store = &app.services.store;
    let expert1 = app.user("expert1").id;
    let a = app
        .create_instance("applicant_a", "funded-project", None, None, "广州项目")
        .await;
    let b = app
        .create_instance("applicant_b", "funded-project", None, None, "深圳项目")
        .await;
    let child_of_b = app
        .create_instance(
            "manager",
            "change-request",
            Some(app.seed.unit_a.id),
            Some(b.id),
            "跨单位变更",
        )
        .await;
    let child_of_a = app
        .create_instance(
            "applicant_a",
            "change-request",
            None,
            Some(a.id),
            "本单位变更",
        )
        .await;
    for i in [&a, &child_of_b, &child_of_a] {
        store.assign_expert(i.id, expert1).await.unwrap();
    }
    Fixture {
        a,
        b,
        child_of_b,
        child_of_a,
    }
}

fn username(who: Who) -> &'static str {
    match who {
        Who::Anonymous => "applicant_a",
        Who::Session(u) | Who::ReadToken(u) => u,
    }
}

async fn token_for(app: &TestApp, who: Who) -> Option<String> {
    match who {
        Who::Anonymous => None,
        Who::Session(u) => Some(app.session_token(u).await),
        Who::ReadToken(u) => Some(app.api_token(u, &["read"]).await),
    }
}

/// The id of a new API token of `username`.
async fn api_token_id(app: &TestApp, username: &str) -> String {
    let token = app.api_token(username, &["read"]).await;
    let record = app
        .services
        .store
        .find_token(&grantflow_api::auth::token_hash(&token))
        .await
        .unwrap()
        .unwrap();
    record.id.to_string()
}

fn submit_input() -> Value {
    json!({
        "project_name": "知识产权纠纷调解能力提升",
        "budget": "300000",
        "indicators": [{ "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "direction": "higher_is_better", "weight": 1 }, { "name": "受益单位", "category": "effect_social", "unit": "家", "target": 20 }],
        "application_files": [{ "name": "申报书.pdf", "sha256": "a".repeat(64), "size": 2048 }]
    })
}

/// A new funded project of `owner`'s unit; expert1 is assigned to those of unit A.
async fn fresh_instance(app: &TestApp, owner: &str) -> Instance {
    let i = app
        .create_instance(owner, "funded-project", None, None, "新项目")
        .await;
    if i.org_id == app.seed.unit_a.id {
        app.services
            .store
            .assign_expert(i.id, app.user("expert1").id)
            .await
            .unwrap();
    }
    i
}

const TRANSITION: &str = "mutation($id: ID!, $event: String!, $v: Int!, $input: JSON) { transition(instanceId: $id, event: $event, expectedVersion: $v, input: $input) { instance { id state { id } } } }";

/// The request for one cell: query, variables, and the path of the field judged.
async fn request(
    app: &TestApp,
    fx: &Fixture,
    case: Case,
    who: Who,
    n: usize,
) -> (&'static str, Value, &'static [&'static str]) {
    let me = app.user(username(who)).id.to_string();
    let applicant_a = app.user("applicant_a").id.to_string();
    let applicant_b = app.user("applicant_b").id.to_string();
    match case {
        Case::Viewer => ("{ viewer { id } }", json!({}), &["viewer"]),
        Case::MyTokens => ("{ myTokens { id } }", json!({}), &["myTokens"]),
        Case::Organisations => ("{ organisations { id } }", json!({}), &["organisations"]),
        Case::Organisation => (
            "query($id: ID!) { organisation(id: $id) { id parent { id } } }",
            json!({ "id": app.seed.unit_b.id }),
            &["organisation", "parent", "id"],
        ),
        Case::Users => ("{ users { id } }", json!({}), &["users"]),
        Case::UserSelf => (
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": me }),
            &["user", "id"],
        ),
        Case::UserOther => (
            "query($id: ID!) { user(id: $id) { id } }",
            json!({ "id": applicant_b }),
            &["user", "id"],
        ),
        Case::UserEmailViaUser => (
            "query($id: ID!) { user(id: $id) { email } }",
            json!({ "id": applicant_a }),
            &["user", "email"],
        ),
        Case::UserEmailViaCreatedBy => (
            "query($id: ID!) { instance(id: $id) { createdBy { email } } }",
            json!({ "id": fx.a.id }),
            &["instance", "createdBy", "email"],
        ),
        Case::Workflows => ("{ workflows { id } }", json!({}), &["workflows"]),
        Case::Workflow => (
            r#"{ workflow(id: "funded-project") { id } }"#,
            json!({}),
            &["workflow", "id"],
        ),
        Case::InstanceOfUnitA => (
            "query($id: ID!) { instance(id: $id) { id } }",
            json!({ "id": fx.a.id }),
            &["instance", "id"],
        ),
        Case::InstanceOfUnitB => (
            "query($id: ID!) { instance(id: $id) { id } }",
            json!({ "id": fx.b.id }),
            &["instance", "id"],
        ),
        Case::Instances => (
            "{ instances(first: 100) { totalCount } }",
            json!({}),
            &["instances", "totalCount"],
        ),
        Case::Outbox => ("{ outbox { id } }", json!({}), &["outbox"]),
        Case::InstanceMessages => (
            "query($id: ID!) { instance(id: $id) { messages { id } } }",
            json!({ "id": fx.a.id }),
            &["instance", "messages"],
        ),
        Case::ParentInOtherUnit => (
            "query($id: ID!) { instance(id: $id) { parent { id } } }",
            json!({ "id": fx.child_of_b.id }),
            &["instance", "parent"],
        ),
        Case::ParentInSameUnit => (
            "query($id: ID!) { instance(id: $id) { parent { id } } }",
            json!({ "id": fx.child_of_a.id }),
            &["instance", "parent"],
        ),

        Case::Login => (
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
            json!({ "u": username(who), "p": PASSWORD }),
            &["login", "token"],
        ),
        Case::Logout => ("mutation { logout }", json!({}), &["logout"]),
        Case::RevokeAllTokens => (
            "mutation { revokeAllTokens }",
            json!({}),
            &["revokeAllTokens"],
        ),
        Case::CreateApiToken => (
            r#"mutation { createApiToken(name: "评审客户端", scopes: ["read"]) { token } }"#,
            json!({}),
            &["createApiToken", "token"],
        ),
        Case::RevokeOwnApiToken => (
            "mutation($id: ID!) { revokeApiToken(id: $id) }",
            json!({ "id": api_token_id(app, username(who)).await }),
            &["revokeApiToken"],
        ),
        Case::RevokeApplicantBsApiToken => (
            "mutation($id: ID!) { revokeApiToken(id: $id) }",
            json!({ "id": api_token_id(app, "applicant_b").await }),
            &["revokeApiToken"],
        ),
        Case::RequestPasswordReset => (
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": "expert3@example.gov.cn" }),
            &["requestPasswordReset"],
        ),
        Case::ResetPassword => {
            let (token, hash) = grantflow_api::auth::new_token(grantflow_api::auth::RESET_PREFIX);
            app.services
                .store
                .create_reset_token(
                    app.user("expert3").id,
                    &hash,
                    app.services.now() + chrono::Duration::minutes(30),
                )
                .await
                .unwrap();
            (
                "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }",
                json!({ "t": token, "p": PASSWORD }),
                &["resetPassword"],
            )
        }
        Case::ChangePassword => (
            "mutation($p: String!) { changePassword(oldPassword: $p, newPassword: $p) }",
            json!({ "p": PASSWORD }),
            &["changePassword"],
        ),
        Case::SetNotificationPreference => (
            "mutation { setNotificationPreference(preference: DIGEST_ONLY) { notifyPref } }",
            json!({}),
            &["setNotificationPreference", "notifyPref"],
        ),

        Case::CreateOrganisation => (
            "mutation($n: String!, $p: ID!) { createOrganisation(name: $n, kind: UNIT, parentId: $p) { id } }",
            json!({ "n": format!("新单位 {n}"), "p": app.seed.guangzhou.id }),
            &["createOrganisation", "id"],
        ),
        Case::CreateUser => (
            "mutation($input: CreateUserInput!) { createUser(input: $input) { id } }",
            json!({ "input": {
                "username": format!("new_user_{n}"),
                "displayName": "新用户",
                "email": format!("new_user_{n}@example.gov.cn"),
                "password": PASSWORD,
                "roles": ["APPLICANT"],
                "organisationId": app.seed.unit_a.id,
            }}),
            &["createUser", "id"],
        ),
        Case::UpdateUser => (
            "mutation($id: ID!) { updateUser(id: $id, input: { displayName: \"专家三\" }) { id } }",
            json!({ "id": app.user("expert3").id }),
            &["updateUser", "id"],
        ),

        Case::CreateInstanceForUnitA => (
            "mutation($input: CreateInstanceInput!) { createInstance(input: $input) { id } }",
            json!({ "input": {
                "workflowId": "funded-project",
                "title": "广州新项目",
                "organisationId": app.seed.unit_a.id,
                "callId": app.call_id().await,
                "catalogueItem": support::TEST_ITEM,
            }}),
            &["createInstance", "id"],
        ),
        Case::CreateInstanceUnderUnitBsInstance => (
            "mutation($input: CreateInstanceInput!) { createInstance(input: $input) { id } }",
            json!({ "input": {
                "workflowId": "change-request",
                "title": "变更申请",
                "parentId": fx.b.id,
            }}),
            &["createInstance", "id"],
        ),
        Case::WithdrawUnitAsInstance => {
            let i = fresh_instance(app, "applicant_a").await;
            (
                TRANSITION,
                json!({ "id": i.id, "event": "withdraw", "v": 0 }),
                &["transition", "instance", "id"],
            )
        }
        Case::WithdrawUnitBsInstance => {
            let i = fresh_instance(app, "applicant_b").await;
            (
                TRANSITION,
                json!({ "id": i.id, "event": "withdraw", "v": 0 }),
                &["transition", "instance", "id"],
            )
        }
        Case::RecommendUnitAsInstance => {
            let i = fresh_instance(app, "applicant_a").await;
            app.fire("applicant_a", i.id, "submit", submit_input())
                .await;
            (
                TRANSITION,
                json!({ "id": i.id, "event": "recommend", "v": 1, "input": { "city_opinion": "同意推荐" } }),
                &["transition", "instance", "id"],
            )
        }
        Case::ExtendDeadlineOfUnitAsInstance => {
            let i = fresh_instance(app, "applicant_a").await;
            (
                "mutation($id: ID!) { extendDeadline(instanceId: $id, expectedVersion: 0, newDueDate: \"2024-07-15\", reason: \"节假日顺延\") { instance { dueAt } } }",
                json!({ "id": i.id }),
                &["extendDeadline", "instance", "dueAt"],
            )
        }
    }
}

/// What the response says about the field at `path`.
fn judge(body: &Value, path: &[&str]) -> Result<Outcome, String> {
    if body.get("errors").is_some() {
        return match error_code(body) {
            "UNAUTHENTICATED" => Ok(U),
            "FORBIDDEN" => Ok(F),
            "NOT_FOUND" => Ok(N),
            other => Err(format!("unexpected error code {other}")),
        };
    }
    let mut v = &body["data"];
    for (i, key) in path.iter().enumerate() {
        v = &v[key];
        if v.is_null() {
            return if i + 1 == path.len() {
                Ok(H)
            } else {
                Err(format!("`{}` is null", path[..=i].join(".")))
            };
        }
    }
    Ok(A)
}

async fn check(app: &TestApp, fx: &Fixture, rows: &[Row]) {
    let mut failures = Vec::new();
    let mut n = 0;
    for (case, expected) in rows {
        for (who, expected) in COLUMNS.iter().zip(expected) {
            n += 1;
            let (query, vars, path) = request(app, fx, *case, *who, n).await;
            let token = token_for(app, *who).await;
            let body = app.gql(token.as_deref(), query, vars).await;
            match judge(&body, path) {
                Ok(got) if got == *expected => {}
                Ok(got) => failures.push(format!(
                    "{case:?} as {who:?}: expected {expected:?}, got {got:?}: {body}"
                )),
                Err(why) => failures.push(format!("{case:?} as {who:?}: {why}: {body}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} cells differ from the table:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

async fn matrix(backend: Backend, rows: &[Row]) {
    let app = spawn_app(backend).await;
    let fx = fixture(&app).await;
    check(&app, &fx, rows).await;
}

#[tokio::test]
async fn queries_and_nested_fields_on_sqlite() {
    matrix(Backend::Sqlite, QUERIES).await;
}

#[tokio::test]
async fn queries_and_nested_fields_on_postgres() {
    matrix(Backend::Postgres, QUERIES).await;
}

#[tokio::test]
async fn account_mutations_on_sqlite() {
    matrix(Backend::Sqlite, ACCOUNT_MUTATIONS).await;
}

#[tokio::test]
async fn account_mutations_on_postgres() {
    matrix(Backend::Postgres, ACCOUNT_MUTATIONS).await;
}

#[tokio::test]
async fn administration_on_sqlite() {
    matrix(Backend::Sqlite, ADMIN_MUTATIONS).await;
}

#[tokio::test]
async fn administration_on_postgres() {
    matrix(Backend::Postgres, ADMIN_MUTATIONS).await;
}

#[tokio::test]
async fn instance_mutations_on_sqlite() {
    matrix(Backend::Sqlite, INSTANCE_MUTATIONS).await;
}

#[tokio::test]
async fn instance_mutations_on_postgres() {
    matrix(Backend::Postgres, INSTANCE_MUTATIONS).await;
}

// ------------------------------------------------------------------ listings

const LIST: &str = "{ instances(first: 100) { totalCount edges { node { id } } } }";

async fn listed(app: &TestApp, token: &str) -> (i64, BTreeSet<String>) {
    let data = app.ok(Some(token), LIST, json!({})).await;
    let ids: BTreeSet<String> = data["instances"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect();
    (data["instances"]["totalCount"].as_i64().unwrap(), ids)
}

async fn each_role_lists_exactly_what_it_may_see(backend: Backend) {
    let app = spawn_app(backend).await;
    let fx = fixture(&app).await;
    // One more unit in 广州 with a project, to tell the city from the unit.
    let unit_a2 = app
        .services
        .store
        .create_org(grantflow_store::NewOrganisation {
            name: "广州另一单位".into(),
            kind: grantflow_store::OrgKind::Unit,
            parent_id: Some(app.seed.guangzhou.id),
        })
        .await
        .unwrap();
    let a2 = app
        .create_instance(
            "manager",
            "funded-project",
            Some(unit_a2.id),
            None,
            "广州另一项目",
        )
        .await;
    let ids = |list: &[&Instance]| -> BTreeSet<String> {
        list.iter().map(|i| i.id.to_string()).collect()
    };
    let everything = ids(&[&fx.a, &fx.b, &fx.child_of_b, &fx.child_of_a, &a2]);
    let expected: [(Who, BTreeSet<String>); 10] = [
        (Who::Session("admin"), BTreeSet::new()),
        (Who::Session("manager"), everything.clone()),
        (Who::Session("auditor"), everything),
        (
            Who::Session("city_gz"),
            ids(&[&fx.a, &fx.child_of_b, &fx.child_of_a, &a2]),
        ),
        (Who::Session("city_sz"), ids(&[&fx.b])),
        (
            Who::Session("applicant_a"),
            ids(&[&fx.a, &fx.child_of_b, &fx.child_of_a]),
        ),
        (Who::Session("applicant_b"), ids(&[&fx.b])),
        (
            Who::Session("expert1"),
            ids(&[&fx.a, &fx.child_of_b, &fx.child_of_a]),
        ),
        (Who::Session("expert2"), BTreeSet::new()),
        (
            Who::ReadToken("applicant_a"),
            ids(&[&fx.a, &fx.child_of_b, &fx.child_of_a]),
        ),
    ];
    for (who, want) in expected {
        let token = token_for(&app, who).await.unwrap();
        let (total, got) = listed(&app, &token).await;
        assert_eq!(got, want, "{who:?} lists exactly the instances it may see");
        assert_eq!(total, want.len() as i64, "{who:?}: totalCount");
    }
    let anonymous = app.gql(None, LIST, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn each_role_lists_exactly_what_it_may_see_on_sqlite() {
    each_role_lists_exactly_what_it_may_see(Backend::Sqlite).await;
}

#[tokio::test]
async fn each_role_lists_exactly_what_it_may_see_on_postgres() {
    each_role_lists_exactly_what_it_may_see(Backend::Postgres).await;
}

// ------------------------------------------------------------------ existence

/// The body without its request id (which differs on every request).
fn without_request_id(mut body: Value) -> Value {
    for e in body["errors"].as_array_mut().into_iter().flatten() {
        if let Some(ext) = e["extensions"].as_object_mut() {
            ext.remove("requestId");
            if let Some(d) = ext.get_mut("details").and_then(Value::as_object_mut) {
                d.remove("requestId");
            }
        }
    }
    body
}

#[tokio::test]
async fn another_units_instance_answers_exactly_like_a_missing_one_on_sqlite() {
    hidden_is_missing(Backend::Sqlite).await;
}

#[tokio::test]
async fn another_units_instance_answers_exactly_like_a_missing_one_on_postgres() {
    hidden_is_missing(Backend::Postgres).await;
}

async fn hidden_is_missing(backend: Backend) {
    let app = spawn_app(backend).await;
    let fx = fixture(&app).await;
    let token = app.session_token("applicant_a").await;
    let missing = Uuid::now_v7();
    let cases = [
        (
            "query($id: ID!) { instance(id: $id) { id title } }",
            json!({ "id": fx.b.id }),
            json!({ "id": missing }),
        ),
        (
            TRANSITION,
            json!({ "id": fx.b.id, "event": "withdraw", "v": 0 }),
            json!({ "id": missing, "event": "withdraw", "v": 0 }),
        ),
        (
            TRANSITION,
            json!({ "id": fx.b.id, "event": "submit", "v": 0, "input": submit_input() }),
            json!({ "id": missing, "event": "submit", "v": 0, "input": submit_input() }),
        ),
    ];
    for (query, hidden_vars, missing_vars) in cases {
        let hidden = app.gql(Some(&token), query, hidden_vars).await;
        let absent = app.gql(Some(&token), query, missing_vars).await;
        assert_eq!(error_code(&hidden), "NOT_FOUND", "{hidden}");
        assert_eq!(
            without_request_id(hidden),
            without_request_id(absent),
            "an instance of another unit is indistinguishable from a missing one"
        );
    }
    // Nothing happened to the other unit's instance.
    let b = app.services.store.get_instance(fx.b.id).await.unwrap();
    assert_eq!((b.state.as_str(), b.version), ("drafting", 0));
}
