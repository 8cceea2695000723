//! 公示异议 for the manager: the public's objections (open first, then resolved), grouped
//! by project with the project's call, each with the objector's reason and history, and
//! a resolve form (outcome, opinion) that runs `resolvePublicObjection`, the API's one
//! path. The project's page lists its open objections and says why approval waits
//! (`of_project`). Auditors read the same page without the forms; anyone else gets the
//! API's refusal.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use grantflow_api::AppState;
use grantflow_api::types::RoleGql;
use minijinja::context;
use serde_json::{Value, json};

use crate::pages::{Visit, error_code, error_message};
use crate::refusals::field_errors;

const OBJECTIONS: &str = r#"query($instance: ID, $open: Boolean!) {
  viewer { id username displayName roles }
  publicObjections(instanceId: $instance, openOnly: $open) {
    id instanceId name contact reason submittedAt status resolution resolvedAt
    history { action reason at }
  }
  calls { id title }
}"#;

const OF_PROJECT: &str = r#"query($id: ID!) {
  publicObjections(instanceId: $id, openOnly: true) { id name reason submittedAt }
}"#;

const RESOLVE: &str = r#"mutation($id: ID!, $outcome: ObjectionOutcome!, $reason: String!) {
  resolvePublicObjection(objectionId: $id, outcome: $outcome, reason: $reason) { id status }
}"#;

/// At most this many projects are named on one page (one aliased lookup each).
const PROJECTS_MAX: usize = 100;

/// The project's open objections, for its page (empty for viewers who may not read them).
pub(crate) async fn of_project(visit: &Visit, app: &AppState, id: &str) -> Vec<Value> {
    let Ok(answer) = visit.run(app, OF_PROJECT, json!({ "id": id })).await else {
        return Vec::new();
    };
    answer["data"]["publicObjections"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|o| {
            json!({ "id": o["id"], "name": o["name"], "reason": o["reason"],
                    "submitted": visit.time(&o["submittedAt"]) })
        })
        .collect()
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct Filter {
    /// One project only.
    instance: Option<String>,
    /// Open objections only (`1`).
    open: Option<String>,
}

pub(crate) async fn list(
    State(app): State<AppState>,
    Query(filter): Query<Filter>,
    visit: Visit,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    page(&visit, &app, &filter, None).await
}

/// A refused resolution: which objection, what was typed, the errors by field.
struct Refused {
    id: String,
    message: String,
    outcome: String,
    reason: String,
    errors: BTreeMap<String, String>,
}

async fn page(
    visit: &Visit,
    app: &AppState,
    filter: &Filter,
    refused: Option<Refused>,
) -> Response {
    let instance = filter.instance.as_deref().filter(|i| !i.is_empty());
    let open_only = filter.open.as_deref() == Some("1");
    let answer = match visit
        .run(
            app,
            OBJECTIONS,
            json!({ "instance": instance, "open": open_only }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !answer["data"]["publicObjections"].is_array() {
        return visit.refusal(&answer);
    }
    let objections = answer["data"]["publicObjections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let projects = match projects(visit, app, &objections).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let call_title = |call: &Value| {
        answer["data"]["calls"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == *call))
            .map(|c| c["title"].clone())
            .unwrap_or(Value::Null)
    };
    // One group per project, in the order of its newest objection; open ones first.
    let mut groups: Vec<Value> = Vec::new();
    for o in &objections {
        let pid = o["instanceId"].as_str().unwrap_or_default();
        if groups.iter().any(|g| g["id"] == pid) {
            continue;
        }
        let p = projects.get(pid).cloned().unwrap_or(Value::Null);
        let mut items: Vec<Value> = objections
            .iter()
            .filter(|x| x["instanceId"] == pid)
            .map(|x| item(visit, x, refused.as_ref()))
            .collect();
        items.sort_by_key(|x| x["open"] != true);
        let open = items.iter().filter(|x| x["open"] == true).count();
        groups.push(json!({
            "id": pid, "title": p["title"], "state": visit.i18n(&p["state"]["title"]),
            "call_id": p["data"]["call_id"], "call": call_title(&p["data"]["call_id"]),
            "open": open, "items": items,
        }));
    }
    groups.sort_by_key(|g| g["open"].as_u64() == Some(0));
    let failed = refused.is_some();
    let page = visit.page(
        "objections.html",
        &answer["data"]["viewer"],
        context! {
            groups => groups, instance => instance, open_only => open_only,
            may_resolve => crate::calls::has_role(&answer["data"]["viewer"], RoleGql::Manager),
            error => refused.map(|r| r.message),
        },
    );
    if failed {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page
    }
}

fn item(visit: &Visit, o: &Value, refused: Option<&Refused>) -> Value {
    let status = o["status"].as_str().unwrap_or_default();
    let mine = refused.filter(|r| o["id"] == r.id.as_str());
    let history: Vec<Value> = o["history"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(
            |h| json!({ "action": h["action"], "reason": h["reason"], "at": visit.time(&h["at"]) }),
        )
        .collect();
    json!({
        "id": o["id"], "name": o["name"], "contact": o["contact"], "reason": o["reason"],
        "submitted": visit.time(&o["submittedAt"]), "status": status, "open": status == "OPEN",
        "resolution": o["resolution"], "resolved": visit.time(&o["resolvedAt"]), "history": history,
        "typed_outcome": mine.map(|r| r.outcome.clone()), "typed_reason": mine.map(|r| r.reason.clone()),
        "errors": mine.map(|r| r.errors.clone()),
    })
}

/// The projects the objections are about, in one document (`p0: instance(id: $p0) …`).
async fn projects(
    visit: &Visit,
    app: &AppState,
    objections: &[Value],
) -> Result<BTreeMap<String, Value>, Response> {
    let mut ids: Vec<&str> = objections
        .iter()
        .filter_map(|o| o["instanceId"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.truncate(PROJECTS_MAX);
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let params: Vec<String> = (0..ids.len()).map(|n| format!("$p{n}: ID!")).collect();
    let fields: Vec<String> = (0..ids.len())
        .map(|n| {
            format!("p{n}: instance(id: $p{n}) {{ id title data state {{ title {{ zhCn en }} }} }}")
        })
        .collect();
    let query = format!("query({}) {{ {} }}", params.join(", "), fields.join(" "));
    let variables: serde_json::Map<String, Value> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (format!("p{n}"), json!(id)))
        .collect();
    let answer = visit.run(app, &query, Value::Object(variables)).await?;
    Ok((0..ids.len())
        .filter_map(|n| {
            let p = &answer["data"][format!("p{n}")];
            Some((p["id"].as_str()?.to_string(), p.clone()))
        })
        .collect())
}

#[derive(serde::Deserialize)]
pub(crate) struct ResolveForm {
    csrf: Option<String>,
    outcome: Option<String>,
    reason: String,
    /// The page to return to: this list, or the project's (a path of ours only).
    back: Option<String>,
}

/// Upholds or dismisses an objection with the manager's opinion, as the API does.
pub(crate) async fn resolve(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut visit: Visit,
    Form(form): Form<ResolveForm>,
) -> Response {
    visit.path = "/objections".into();
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let outcome = form.outcome.clone().unwrap_or_default();
    let answer = match visit
        .run(
            &app,
            RESOLVE,
            json!({ "id": id, "outcome": outcome, "reason": form.reason.trim() }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["errors"].is_null() {
        let back = form
            .back
            .as_deref()
            .filter(|b| is_our_page(b))
            .unwrap_or("/objections");
        return Redirect::to(back).into_response();
    }
    if error_code(&answer) == Some("NOT_FOUND") {
        return visit.not_found();
    }
    let mut errors = field_errors(&answer, visit.lang);
    // An outcome that is neither of the two is refused by the schema, before the service
    // names the field: shown at the field all the same.
    if !matches!(outcome.as_str(), "UPHELD" | "DISMISSED") {
        errors
            .entry("outcome".into())
            .or_insert_with(|| crate::i18n::text(visit.lang, "choose_outcome").to_string());
    }
    let refused = Refused {
        id,
        message: error_message(&answer, visit.lang),
        outcome,
        reason: form.reason,
        errors,
    };
    page(&visit, &app, &Filter::default(), Some(refused)).await
}

/// `/objections…` or `/instances/<id>`: never another site (no open redirect).
fn is_our_page(path: &str) -> bool {
    let safe = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-/?=&".contains(c));
    safe && (path.starts_with("/objections") || path.starts_with("/instances/"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_our_pages_are_returned_to() {
        assert!(super::is_our_page("/objections?open=1"));
        assert!(super::is_our_page("/instances/0190-ab"));
        assert!(!super::is_our_page("//evil.example/"));
        assert!(!super::is_our_page("https://evil.example/objections"));
        assert!(!super::is_our_page("/instances/x\\@evil"));
    }
}
