//! The expert pool (专家库, managers): every expert with categories, keywords, workload cap
//! and load, status and late reviews; a form to add an expert to the pool or change one
//! (upsertExpertProfile), and the collaborations that exclude an expert from an
//! organisation's applications (recordCollaboration, 回避). The pool's experts are then
//! drawn on the round page, or assigned there by hand. An expert is added by finding the
//! user in the picker (`userDirectory`: by name or username, a page at a time) and
//! choosing them, never by typing an id.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use grantflow_api::AppState;
use minijinja::context;
use serde_json::{Value, json};

use crate::calls::percent_encode;
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

/// The expert picker: users with role EXPERT whose name or username contains the search,
/// a page at a time (`userDirectory`, managers and admins).
const DIRECTORY: &str = r#"query($s: String, $a: String) {
  userDirectory(role: EXPERT, search: $s, first: 20, after: $a) {
    users { id username displayName organisation { name } } hasNextPage endCursor totalCount
  }
}"#;

/// The picker's state in the query string: the search, the page, the chosen user.
#[derive(serde::Deserialize, Default)]
pub(crate) struct Picker {
    q: Option<String>,
    after: Option<String>,
    pick: Option<String>,
}

pub(crate) async fn pool(
    State(app): State<AppState>,
    visit: Visit,
    Query(picker): Query<Picker>,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    pool_page(&visit, &app, &picker, None).await
}

async fn pool_page(
    visit: &Visit,
    app: &AppState,
    picker: &Picker,
    error: Option<String>,
) -> Response {
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
    // The picker: expert users found by the search, those in the pool marked.
    let in_pool: Vec<&Value> = experts.iter().map(|e| &e["id"]).collect();
    let search = picker.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let directory = match visit
        .run(app, DIRECTORY, json!({ "s": search, "a": picker.after }))
        .await
    {
        Ok(d) => d["data"]["userDirectory"].clone(),
        Err(r) => return r,
    };
    let candidates: Vec<Value> = directory["users"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|u| {
            let member = in_pool.contains(&&u["id"]);
            let mut u = u.clone();
            u["inPool"] = json!(member);
            u
        })
        .collect();
    // The search and page the "choose" links keep, and the next page's link.
    let q_part = search
        .map(|q| format!("q={}&", percent_encode(q)))
        .unwrap_or_default();
    let after_part = picker
        .after
        .as_deref()
        .map(|a| format!("after={}&", percent_encode(a)))
        .unwrap_or_default();
    let next = (directory["hasNextPage"] == true).then(|| {
        let cursor = directory["endCursor"].as_str().unwrap_or_default();
        format!("{q_part}after={}", percent_encode(cursor))
    });
    let units: Vec<&Value> = orgs.iter().filter(|o| o["kind"] != "PROVINCE").collect();
    let failed = error.is_some();
    let page = visit.page(
        "experts.html",
        &answer["data"]["viewer"],
        context! {
            experts => experts, candidates => candidates, units => units, error => error,
            q => search, pick => picker.pick.clone(),
            here => format!("{q_part}{after_part}"), next => next,
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
    let user = get("user").filter(|u| !u.is_empty());
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
        pool_page(
            visit,
            app,
            &Picker::default(),
            Some(error_message(&answer, visit.lang)),
        )
        .await
    }
}
