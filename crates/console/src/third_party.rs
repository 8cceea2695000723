//! 第三方绩效评价 in the console. The manager assigns a project's evaluation to an
//! organisation of kind third-party institution (chosen from a list); that institution's
//! evaluators see only the projects assigned to it (`/third-party`, and any other
//! project's URL is the API's NOT_FOUND, so a 404 page) and record the evaluation with
//! the manager's scoring (the same one-button form: the API computes the score from the
//! frozen targets, the actuals and the budget). The page is also the evaluation report:
//! the unit's self-evaluation beside the third party's and the manager's, per part, with
//! the differences at the call's threshold flagged (`evaluationComparison`).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use grantflow_api::AppState;
use grantflow_api::types::RoleGql;
use minijinja::context;
use serde_json::{Value, json};

use crate::calls::has_role;
use crate::i18n::{Lang, text};
use crate::pages::{Visit, error_message};

const ASSIGNED: &str = r#"{
  viewer { id username displayName roles }
  instances(first: 100, filter: { workflowId: "funded-project", includeFinal: true }) {
    edges { node { id title organisation { name } state { id title { zhCn en } } } }
  }
}"#;

const PAGE: &str = r#"query($id: ID!) {
  viewer { id username displayName roles }
  instance(id: $id) { id title state { id title { zhCn en } } organisation { name } }
  evaluationAssignments(instanceId: $id) { organisationId assignedAt }
  evaluationComparison(instanceId: $id) {
    threshold selfEvaluation
    thirdParty { organisationId total grade evaluatedAt parts { part maxPoints points } }
    manager { total grade evaluatedAt parts { part maxPoints points } }
    differences { dimension between first second difference flagged }
  }
}"#;

const ORGANISATIONS: &str = "{ organisations { id name kind } }";

/// The parts of the 100-point evaluation, in the report's order.
const PARTS: [&str; 4] = ["BUDGET_EXECUTION", "OUTPUT", "EFFECT", "SATISFACTION"];

/// The projects assigned to the evaluator's institution (what the API lets them see).
pub(crate) async fn assigned(State(app): State<AppState>, visit: Visit) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    let answer = match visit.run(&app, ASSIGNED, json!({})).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let projects: Vec<Value> = answer["data"]["instances"]["edges"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let n = &e["node"];
            json!({ "id": n["id"], "title": n["title"], "unit": n["organisation"]["name"],
                    "state": visit.i18n(&n["state"]["title"]) })
        })
        .collect();
    visit.page(
        "third_party_list.html",
        &answer["data"]["viewer"],
        context! { projects => projects },
    )
}

pub(crate) async fn page(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    render(&visit, &app, &id, None).await
}

/// A refused assignment or recording: the form it belongs to and the message.
struct Refused {
    form: &'static str,
    message: String,
}

async fn render(visit: &Visit, app: &AppState, id: &str, refused: Option<Refused>) -> Response {
    let answer = match visit.run(app, PAGE, json!({ "id": id })).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let data = &answer["data"];
    if !data["instance"].is_object() || !data["evaluationComparison"].is_object() {
        return visit.refusal(&answer);
    }
    let viewer = &data["viewer"];
    // Institutions by name; an organisation list the viewer may not read leaves ids.
    let organisations = match visit.run(app, ORGANISATIONS, json!({})).await {
        Ok(a) => a["data"]["organisations"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        Err(r) => return r,
    };
    let name_of = |org: &Value| {
        organisations
            .iter()
            .find(|o| o["id"] == *org)
            .map_or_else(|| org.clone(), |o| o["name"].clone())
    };
    let institutions: Vec<Value> = organisations
        .iter()
        .filter(|o| o["kind"] == "THIRD_PARTY")
        .map(|o| json!({ "id": o["id"], "name": o["name"] }))
        .collect();
    let assignments: Vec<Value> = data["evaluationAssignments"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|a| json!({ "org": name_of(&a["organisationId"]), "org_id": a["organisationId"], "at": visit.time(&a["assignedAt"]) }))
        .collect();
    let c = &data["evaluationComparison"];
    let state = data["instance"]["state"]["id"].as_str().unwrap_or_default();
    let page = visit.page(
        "third_party.html",
        viewer,
        context! {
            instance => json!({ "id": data["instance"]["id"], "title": data["instance"]["title"],
                "unit": data["instance"]["organisation"]["name"], "state": visit.i18n(&data["instance"]["state"]["title"]) }),
            current => assignments.last().cloned(), assignments => assignments,
            institutions => institutions,
            may_assign => has_role(viewer, RoleGql::Manager),
            may_record => has_role(viewer, RoleGql::ThirdPartyEvaluator) && matches!(state, "evaluation" | "graded"),
            comparison => comparison(visit.lang, c),
            third_party => c["thirdParty"].is_object().then(|| json!({
                "org": name_of(&c["thirdParty"]["organisationId"]), "total": c["thirdParty"]["total"],
                "grade": c["thirdParty"]["grade"], "at": visit.time(&c["thirdParty"]["evaluatedAt"]) })),
            threshold => c["threshold"].clone(),
            differences => differences(visit.lang, &c["differences"]),
            assign_error => refused.as_ref().filter(|r| r.form == "assign").map(|r| r.message.clone()),
            record_error => refused.as_ref().filter(|r| r.form == "record").map(|r| r.message.clone()),
        },
    );
    if refused.is_some() {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page
    }
}

fn part_title(lang: Lang, part: &str) -> String {
    let key = format!("part_{}", part.to_lowercase());
    let t = text(lang, &key);
    if t.is_empty() {
        part.to_string()
    } else {
        t.to_string()
    }
}

/// Rows of the side-by-side table: the total, then each part; the self-evaluation is a
/// total only.
fn comparison(lang: Lang, c: &Value) -> Vec<Value> {
    let points = |side: &Value, part: &str| {
        side["parts"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["part"] == part))
            .map(|p| json!({ "points": p["points"], "max": p["maxPoints"] }))
    };
    let mut rows = vec![json!({
        "dimension": text(lang, "total"), "own": c["selfEvaluation"],
        "third_party": c["thirdParty"]["total"], "manager": c["manager"]["total"],
    })];
    for part in PARTS {
        let (t, m) = (points(&c["thirdParty"], part), points(&c["manager"], part));
        if t.is_none() && m.is_none() {
            continue;
        }
        rows.push(json!({
            "dimension": part_title(lang, part), "own": null,
            "third_party": t.map(|p| p["points"].clone()), "manager": m.map(|p| p["points"].clone()),
        }));
    }
    rows
}

fn differences(lang: Lang, all: &Value) -> Vec<Value> {
    all.as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|d| {
            let dimension = d["dimension"].as_str().unwrap_or_default();
            let dimension = if dimension == "TOTAL" {
                text(lang, "total").to_string()
            } else {
                part_title(lang, dimension)
            };
            let between = d["between"].as_str().unwrap_or_default().to_lowercase();
            json!({
                "dimension": dimension, "between": text(lang, &format!("between_{between}")),
                "first": d["first"], "second": d["second"],
                "difference": d["difference"].as_f64().map(|x| (x * 100.0).round() / 100.0),
                "flagged": d["flagged"],
            })
        })
        .collect()
}

#[derive(serde::Deserialize)]
pub(crate) struct AssignForm {
    csrf: Option<String>,
    organisation: Option<String>,
}

/// Assigns (or reassigns) the project's evaluation to a third-party institution.
pub(crate) async fn assign(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut visit: Visit,
    Form(form): Form<AssignForm>,
) -> Response {
    visit.path = format!("/instances/{id}/third-party");
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let org = form.organisation.unwrap_or_default();
    if org.trim().is_empty() {
        let message = text(visit.lang, "choose_institution").to_string();
        return render(
            &visit,
            &app,
            &id,
            Some(Refused {
                form: "assign",
                message,
            }),
        )
        .await;
    }
    let query = "mutation($id: ID!, $org: ID!) { assignEvaluation(instanceId: $id, organisationId: $org) { organisationId } }";
    act(
        &visit,
        &app,
        &id,
        "assign",
        query,
        json!({ "id": id, "org": org.trim() }),
    )
    .await
}

#[derive(serde::Deserialize)]
pub(crate) struct RecordForm {
    csrf: Option<String>,
}

/// The evaluator records the third party's evaluation (scored as the manager's).
pub(crate) async fn record(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut visit: Visit,
    Form(form): Form<RecordForm>,
) -> Response {
    visit.path = format!("/instances/{id}/third-party");
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let query =
        "mutation($id: ID!) { recordThirdPartyEvaluation(instanceId: $id) { score { total } } }";
    act(&visit, &app, &id, "record", query, json!({ "id": id })).await
}

async fn act(
    visit: &Visit,
    app: &AppState,
    id: &str,
    form: &'static str,
    query: &str,
    variables: Value,
) -> Response {
    let answer = match visit.run(app, query, variables).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["errors"].is_null() {
        return Redirect::to(&format!("/instances/{id}/third-party")).into_response();
    }
    // A project the viewer may not see is a 404 page again when the page is rendered; an
    // unknown institution is a message at its form.
    let message = error_message(&answer, visit.lang);
    render(visit, app, id, Some(Refused { form, message })).await
}
