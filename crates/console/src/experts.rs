//! The expert pool (专家库, managers): every expert with categories, keywords, workload cap
//! and load, status and late reviews; a form to add an expert to the pool or change one
//! (upsertExpertProfile), and the collaborations that exclude an expert from an
//! organisation's applications (recordCollaboration, 回避). The pool's experts are then
//! drawn on the round page, or assigned there by hand.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use grantflow_api::AppState;
use minijinja::context;
use serde_json::{Value, json};

use crate::pages::{Visit, error_message};

const POOL: &str = r#"{
  viewer { id username displayName roles }
  expertPool {
    userId categories keywords workloadCap status load lateReviews suspensionDue
    user { displayName username } organisation { name }
    collaborations { organisationId until note }
  }
  organisations { id name kind }
}"#;

/// Users an admin may add to the pool (the API lists users to admins only).
const USERS: &str = r#"{ users { id username displayName roles } }"#;

pub(crate) async fn pool(State(app): State<AppState>, visit: Visit) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    pool_page(&visit, &app, None).await
}

async fn pool_page(visit: &Visit, app: &AppState, error: Option<String>) -> Response {
    let answer = match visit.run(app, POOL, json!({})).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !answer["data"]["expertPool"].is_array() {
        return visit.refusal(&answer);
    }
    let orgs = answer["data"]["organisations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let org_name = |id: &Value| {
        orgs.iter()
            .find(|o| o["id"] == *id)
            .and_then(|o| o["name"].as_str())
            .unwrap_or("—")
            .to_string()
    };
    let experts: Vec<Value> = answer["data"]["expertPool"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let collaborations: Vec<Value> = e["collaborations"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|c| json!({ "org": org_name(&c["organisationId"]), "until": c["until"], "note": c["note"] }))
                .collect();
            json!({
                "id": e["userId"], "name": e["user"]["displayName"], "username": e["user"]["username"],
                "org": e["organisation"]["name"], "categories": e["categories"], "keywords": e["keywords"],
                "cap": e["workloadCap"], "status": e["status"], "load": e["load"], "late": e["lateReviews"],
                "suspension_due": e["suspensionDue"], "collaborations": collaborations,
            })
        })
        .collect();
    // Experts not yet in the pool: known to admins (who may list users) only.
    let in_pool: Vec<&Value> = experts.iter().map(|e| &e["id"]).collect();
    let candidates: Vec<Value> = match visit.run(app, USERS, json!({})).await {
        Ok(u) => u["data"]["users"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|u| {
                u["roles"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|x| x == "EXPERT"))
                    && !in_pool.contains(&&u["id"])
            })
            .cloned()
            .collect(),
        Err(r) => return r,
    };
    let units: Vec<&Value> = orgs.iter().filter(|o| o["kind"] != "PROVINCE").collect();
    let failed = error.is_some();
    let page = visit.page(
        "experts.html",
        &answer["data"]["viewer"],
        context! {
            experts => experts, candidates => candidates, units => units, error => error,
            categories => (1..=8).collect::<Vec<i32>>(),
        },
    );
    if failed {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page
    }
}

/// The profile form: categories arrive as repeated `category` fields (checkboxes), so
/// the form body is read as pairs.
pub(crate) async fn upsert(
    State(app): State<AppState>,
    mut visit: Visit,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    visit.path = "/experts".into();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim());
    if let Some(r) = visit.refused(get("csrf")) {
        return r;
    }
    let user = get("user")
        .filter(|u| !u.is_empty())
        .or_else(|| get("user_id"));
    let categories: Vec<i64> = pairs
        .iter()
        .filter(|(n, _)| n == "category")
        .filter_map(|(_, v)| v.parse().ok())
        .take(8)
        .collect();
    let keywords: Vec<&str> = get("keywords")
        .unwrap_or_default()
        .split([',', '，', '、', ' '])
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .take(50)
        .collect();
    let cap: Option<i64> = get("cap").and_then(|c| c.parse().ok());
    let input = json!({
        "userId": user.unwrap_or_default(), "categories": categories, "keywords": keywords,
        "workloadCap": cap.unwrap_or(-1), "status": get("status").filter(|s| !s.is_empty()),
    });
    run_then_back(
        &visit,
        &app,
        "mutation($i: ExpertProfileInput!) { upsertExpertProfile(input: $i) { userId } }",
        json!({ "i": input }),
    )
    .await
}

#[derive(serde::Deserialize)]
pub(crate) struct CollaborationForm {
    csrf: Option<String>,
    expert: String,
    organisation: String,
    until: String,
    note: Option<String>,
}

/// Records a collaboration: the expert is excluded from the organisation's applications
/// while it is recent.
pub(crate) async fn collaboration(
    State(app): State<AppState>,
    mut visit: Visit,
    Form(form): Form<CollaborationForm>,
) -> Response {
    visit.path = "/experts".into();
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    run_then_back(
        &visit,
        &app,
        "mutation($e: ID!, $o: ID!, $u: NaiveDate!, $n: String) { recordCollaboration(expertId: $e, organisationId: $o, until: $u, note: $n) { id } }",
        json!({
            "e": form.expert.trim(), "o": form.organisation.trim(), "u": form.until.trim(),
            "n": form.note.as_deref().map(str::trim).filter(|n| !n.is_empty()),
        }),
    )
    .await
}

async fn run_then_back(visit: &Visit, app: &AppState, query: &str, variables: Value) -> Response {
    let answer = match visit.run(app, query, variables).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["errors"].is_null() {
        Redirect::to("/experts").into_response()
    } else {
        pool_page(visit, app, Some(error_message(&answer, visit.lang))).await
    }
}
