//! The expert reviewer's pages: my reviews, the review form (declare no conflict, declare a
//! conflict, decline, score against the rubric) and the sealed view after submission. The
//! API decides what the expert sees (blind rounds redacted, the application only after
//! declaring no conflict, peers' scores only after one's own); these pages show it.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use grantflow_api::AppState;
use minijinja::context;
use serde_json::{Value, json};

use crate::Page;
use crate::i18n::{text, texts};
use crate::pages::{Visit, error_code, error_message};

const MY_REVIEWS: &str = r#"{
  viewer { id username displayName roles }
  myReviews(includeClosed: true) { id title state roundOpen blind dueAt overdue roundTitle { zhCn en } stateTitle { zhCn en } }
}"#;

const FORM: &str = r#"query($id: ID!) {
  viewer { id username displayName roles }
  reviewForm(assignmentId: $id) {
    blind application applicationHiddenReason needsJustification panelMedian
    rubric { id title { zhCn en } weight min max step commentBelow commentAbove }
    peerScores { peerNumber total }
    assignment { id title state roundOpen dueAt stateTitle { zhCn en } versions { version total scores { criterion score comment } } }
  }
}"#;

pub(crate) async fn my_reviews(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let visit = Visit::new(&app, &headers, &uri, addr.map(|a| a.0.0));
    if let Some(login) = visit.login_needed() {
        return login;
    }
    let answer = match visit.run(&app, MY_REVIEWS, json!({})).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let items: Vec<Value> = answer["data"]["myReviews"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            json!({
                "id": r["id"], "title": r["title"], "round": visit.i18n(&r["roundTitle"]),
                "state": visit.i18n(&r["stateTitle"]), "open": r["roundOpen"], "blind": r["blind"],
                "due": visit.time(&r["dueAt"]), "overdue": r["overdue"],
            })
        })
        .collect();
    Page::render(
        "reviews.html",
        context! {
            lang => visit.lang.tag(), tr => texts(visit.lang), path => visit.path,
            csrf => visit.csrf(&headers), viewer => answer["data"]["viewer"].clone(), items => items,
        },
    )
}

async fn form_page(
    visit: &Visit,
    app: &AppState,
    headers: &HeaderMap,
    id: &str,
    refused: Option<(String, BTreeMap<String, String>)>,
) -> Response {
    let answer = match visit.run(app, FORM, json!({ "id": id })).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let form = &answer["data"]["reviewForm"];
    if !form.is_object() {
        return visit.message(
            StatusCode::NOT_FOUND,
            "error",
            text(visit.lang, "not_found"),
        );
    }
    let (error, typed) = refused.unwrap_or_default();
    let rubric: Vec<Value> = form["rubric"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let id = c["id"].as_str().unwrap_or_default();
            json!({
                "id": id, "title": visit.i18n(&c["title"]), "weight": c["weight"],
                "min": c["min"], "max": c["max"], "step": c["step"],
                "score": typed.get(&format!("score.{id}")), "comment": typed.get(&format!("comment.{id}")),
                "error": typed.get(&format!("error.{id}")),
            })
        })
        .collect();
    let assignment = &form["assignment"];
    let application = (!form["application"].is_null())
        .then(|| serde_json::to_string_pretty(&form["application"]).unwrap_or_default());
    let hidden = match form["applicationHiddenReason"].as_str() {
        Some("NO_CONFLICT_NOT_DECLARED") => Some(text(visit.lang, "declare_first")),
        Some(_) => Some(text(visit.lang, "application_hidden")),
        None => None,
    };
    let state = assignment["state"].as_str().unwrap_or_default();
    let page = Page::render(
        "review.html",
        context! {
            lang => visit.lang.tag(), tr => texts(visit.lang), path => visit.path,
            csrf => visit.csrf(headers), viewer => answer["data"]["viewer"].clone(),
            id => id, title => assignment["title"].clone(), blind => form["blind"].clone(),
            state => visit.i18n(&assignment["stateTitle"]), state_code => state,
            open => assignment["roundOpen"].clone(), due => visit.time(&assignment["dueAt"]),
            application => application, hidden => hidden, rubric => rubric,
            may_declare => state == "assigned" && assignment["roundOpen"] == true,
            may_score => matches!(state, "accepted" | "reopened") && assignment["roundOpen"] == true,
            versions => assignment["versions"].clone(), peers => form["peerScores"].clone(),
            needs_justification => form["needsJustification"].clone(), error => (!error.is_empty()).then_some(error),
        },
    );
    if typed.is_empty() {
        page
    } else {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    }
}

pub(crate) async fn review_form(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Response {
    let visit = Visit::new(&app, &headers, &uri, addr.map(|a| a.0.0));
    if let Some(login) = visit.login_needed() {
        return login;
    }
    form_page(&visit, &app, &headers, &id, None).await
}

/// One of the expert's actions on an assignment: `declare_no_conflict`,
/// `declare_conflict`, `decline` or `submit`.
pub(crate) async fn act(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let mut visit = Visit::new(&app, &headers, &uri, addr.map(|a| a.0.0));
    visit.path = format!("/reviews/{id}");
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim());
    if let Some(refused) = visit.form_refused(&headers, get("csrf")) {
        return refused;
    }
    if let Some(login) = visit.login_needed() {
        return login;
    }
    let reason = get("reason").filter(|r| !r.is_empty());
    let (query, variables) = match get("action").unwrap_or_default() {
        "declare_no_conflict" => (
            "mutation($id: ID!) { declareNoConflict(assignmentId: $id) { id } }",
            json!({ "id": id }),
        ),
        "declare_conflict" => (
            "mutation($id: ID!, $r: String!) { declareConflict(assignmentId: $id, reason: $r) { replaced } }",
            json!({ "id": id, "r": reason.unwrap_or_default() }),
        ),
        "decline" => (
            "mutation($id: ID!, $r: String) { decline(assignmentId: $id, reason: $r) { replaced } }",
            json!({ "id": id, "r": reason }),
        ),
        _ => {
            let scores: Vec<Value> = form
                .iter()
                .filter_map(|(k, v)| {
                    let criterion = k.strip_prefix("score.")?;
                    let comment = get(&format!("comment.{criterion}")).filter(|c| !c.is_empty());
                    // A score that is not a number is left out: the API then names the
                    // criterion as missing, next to which the typed text is shown again.
                    let score: f64 = v.trim().parse().ok()?;
                    Some(json!({ "criterion": criterion, "score": score, "comment": comment }))
                })
                .collect();
            (
                "mutation($id: ID!, $s: [ScoreInput!]!, $j: String) { submitScores(assignmentId: $id, scores: $s, justification: $j) { total } }",
                json!({ "id": id, "s": scores, "j": get("justification").filter(|j| !j.is_empty()) }),
            )
        }
    };
    let answer = match visit.run(&app, query, variables).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["errors"].is_null() {
        return Redirect::to(&format!("/reviews/{id}")).into_response();
    }
    if error_code(&answer) == Some("NOT_FOUND") {
        return visit.message(
            StatusCode::NOT_FOUND,
            "error",
            text(visit.lang, "not_found"),
        );
    }
    let mut typed: BTreeMap<String, String> = form
        .iter()
        .filter(|(k, _)| k.starts_with("score.") || k.starts_with("comment."))
        .cloned()
        .collect();
    // Each criterion's problems (out of range, off the step, a comment missing) are
    // shown next to its score, as `error.<criterion>`.
    for (criterion, message) in crate::refusals::field_errors(&answer, visit.lang) {
        typed.insert(format!("error.{criterion}"), message);
    }
    let mut message = error_message(&answer, visit.lang);
    if message.is_empty() {
        message = text(visit.lang, "error").to_string();
    }
    let typed = if typed.is_empty() {
        // Keep the page's 422 status for refusals of actions without fields too.
        BTreeMap::from([(String::from("-"), String::new())])
    } else {
        typed
    };
    form_page(&visit, &app, &headers, &id, Some((message, typed))).await
}
