//! Calls (征集/申报通知): the list, opening one from a catalogue file (managers), the
//! call's page (its catalogue to browse, the funnel by stage as a chart, its numbers,
//! grades and budget execution by city and by category as charts),
//! closing it, starting a demand or an application under it, and the 汇总表 download.

use std::collections::BTreeMap;

use async_graphql::InputType as _;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use grantflow_api::AppState;
use grantflow_api::types::RoleGql;
use minijinja::context;
use serde_json::{Value, json};

use crate::charts;
use crate::i18n::text;
use crate::pages::{Visit, error_code, error_message};
use crate::upload;

const CALLS: &str = r#"{
  viewer { id username displayName roles }
  calls { id year title issuer closingDate status itemCount }
}"#;

const CALL: &str = r#"query($id: ID!) {
  viewer { id username displayName roles organisation { id name } }
  call(id: $id) {
    id year title issuer closingDate status itemCount
    categories { label policyAreas { name items { id name direction eligibleApplicant partTitle } } }
  }
  workflow(id: "funded-project") { stages { id title { zhCn en } } }
}"#;

const SUMMARY: &str = r#"query($id: ID!) {
  callSummary(callId: $id) {
    demands projects evaluated averageTotal
    grades { excellent good fair poor }
    budgetExecution {
      budgeted spent executionRate
      projects { budgeted spent instance { data organisation { name kind parent { name } } } }
    }
  }
}"#;

/// The call's projects as chart rows: the city (a unit's parent, else the organisation
/// itself), the catalogue category of its item, its grade and budget execution.
fn figures(summary: &Value, categories: &Value) -> Vec<charts::ProjectFigure> {
    let mut category_of = BTreeMap::new();
    for c in categories.as_array().map(Vec::as_slice).unwrap_or_default() {
        let label = c["label"].as_str().unwrap_or_default();
        for a in c["policyAreas"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            for i in a["items"].as_array().map(Vec::as_slice).unwrap_or_default() {
                if let Some(id) = i["id"].as_str() {
                    category_of.insert(id.to_string(), label.to_string());
                }
            }
        }
    }
    let amount = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    summary["budgetExecution"]["projects"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let i = &p["instance"];
            let org = &i["organisation"];
            let city = if org["kind"] == "UNIT" && org["parent"]["name"].is_string() {
                &org["parent"]["name"]
            } else {
                &org["name"]
            };
            let item = i["data"]["catalogue_item"].as_str().unwrap_or_default();
            charts::ProjectFigure {
                city: city.as_str().unwrap_or("—").to_string(),
                category: category_of
                    .get(item)
                    .cloned()
                    .unwrap_or_else(|| "—".to_string()),
                grade: i["data"]["evaluation_grade"].as_str().map(str::to_string),
                budgeted: amount(&p["budgeted"]),
                spent: amount(&p["spent"]),
            }
        })
        .collect()
}

/// Grades and budget execution by city and by category, as four SVG charts.
fn grouped_charts(
    visit: &Visit,
    summary: &Value,
    categories: &Value,
) -> Option<BTreeMap<&'static str, minijinja::Value>> {
    let projects = figures(summary, categories);
    if projects.is_empty() {
        return None;
    }
    let by_city = charts::group_by(&projects, |p| &p.city);
    let by_category = charts::group_by(&projects, |p| &p.category);
    let t = |k| text(visit.lang, k);
    let svg = minijinja::Value::from_safe_string;
    Some(BTreeMap::from([
        (
            "grades_city",
            svg(charts::grades(
                &by_city,
                "grades-city-title",
                t("grades_by_city"),
            )),
        ),
        (
            "grades_category",
            svg(charts::grades(
                &by_category,
                "grades-category-title",
                t("grades_by_category"),
            )),
        ),
        (
            "execution_city",
            svg(charts::execution(
                &by_city,
                "execution-city-title",
                t("execution_by_city"),
            )),
        ),
        (
            "execution_category",
            svg(charts::execution(
                &by_category,
                "execution-category-title",
                t("execution_by_category"),
            )),
        ),
    ]))
}

/// Whether the viewer of a GraphQL answer (`viewer { roles }`) holds `role`.
pub(crate) fn has_role(viewer: &Value, role: RoleGql) -> bool {
    let name = role.to_value().to_string();
    viewer["roles"]
        .as_array()
        .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(name.as_str())))
}

pub(crate) async fn list(State(app): State<AppState>, visit: Visit) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    calls_page(&visit, &app, None).await
}

async fn calls_page(visit: &Visit, app: &AppState, error: Option<String>) -> Response {
    let answer = match visit.run(app, CALLS, json!({})).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let page = visit.page(
        "calls.html",
        &answer["data"]["viewer"],
        context! { calls => answer["data"]["calls"].clone(), error => error },
    );
    if error.is_some() {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page
    }
}

/// Opens a call from an uploaded catalogue file (`workflows/calls/2022.toml`).
pub(crate) async fn open(
    State(app): State<AppState>,
    visit: Visit,
    multipart: Multipart,
) -> Response {
    let form = match upload::read(multipart, upload::CATALOGUE_BYTES).await {
        Ok(f) => f,
        Err(e) => return visit.message(e.status(), "error", e.text(visit.lang)),
    };
    if let Some(r) = visit.refused(form.text("csrf")) {
        return r;
    }
    let Some(file) = form
        .file
        .as_ref()
        .and_then(|(_, b)| String::from_utf8(b.clone()).ok())
    else {
        return calls_page(&visit, &app, Some(text(visit.lang, "file_missing").into())).await;
    };
    let closing = form.text("closing_date").filter(|d| !d.is_empty());
    let answer = match visit
        .run(
            &app,
            "mutation($i: OpenCallInput!) { openCall(input: $i) { id } }",
            json!({ "i": { "catalogueToml": file, "closingDate": closing } }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    match answer["data"]["openCall"]["id"].as_str() {
        Some(id) => Redirect::to(&format!("/calls/{id}")).into_response(),
        None => calls_page(&visit, &app, Some(error_message(&answer, visit.lang))).await,
    }
}

/// The funnel: funded projects of the call in each stage (the call's id is in their data).
async fn funnel(visit: &Visit, app: &AppState, call_id: &str, stages: &Value) -> Option<String> {
    let stages = stages.as_array()?;
    let mut query = String::from("query($c: String!) {");
    for (i, s) in stages.iter().enumerate() {
        let id = s["id"].as_str()?;
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        query.push_str(&format!(
            " s{i}: instances(first: 1, filter: {{ workflowId: \"funded-project\", stage: \"{id}\", text: $c, includeFinal: true }}) {{ totalCount }}"
        ));
    }
    query.push('}');
    let answer = visit.run(app, &query, json!({ "c": call_id })).await.ok()?;
    let rows: Vec<(String, i64)> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                visit.i18n(&s["title"]),
                answer["data"][format!("s{i}")]["totalCount"]
                    .as_i64()
                    .unwrap_or(0),
            )
        })
        .collect();
    Some(charts::funnel(&rows, text(visit.lang, "funnel")))
}

pub(crate) async fn call(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    call_page(&visit, &app, &id, None).await
}

pub(crate) async fn call_page(
    visit: &Visit,
    app: &AppState,
    id: &str,
    error: Option<Value>,
) -> Response {
    let answer = match visit.run(app, CALL, json!({ "id": id })).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let call = &answer["data"]["call"];
    if !call.is_object() {
        return visit.refusal(&answer);
    }
    let viewer = &answer["data"]["viewer"];
    // The numbers and the funnel: managers, city bureaus and auditors (the API decides).
    let summary = visit
        .run(app, SUMMARY, json!({ "id": id }))
        .await
        .ok()
        .map(|s| s["data"]["callSummary"].clone())
        .filter(Value::is_object);
    let funnel = if summary.is_some() {
        funnel(visit, app, id, &answer["data"]["workflow"]["stages"]).await
    } else {
        None
    };
    let grouped = summary
        .as_ref()
        .and_then(|s| grouped_charts(visit, s, &call["categories"]));
    let failed = error.is_some();
    let page = visit.page(
        "call.html",
        viewer,
        context! {
            call => call.clone(), summary => summary,
            funnel => funnel.map(minijinja::Value::from_safe_string),
            charts => grouped,
            may_manage => has_role(viewer, RoleGql::Manager),
            may_export => has_role(viewer, RoleGql::Manager) || has_role(viewer, RoleGql::City) || has_role(viewer, RoleGql::Auditor),
            may_apply => has_role(viewer, RoleGql::Applicant) && call["status"] == "OPEN",
            import => error,
        },
    );
    if failed {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct CsrfOnly {
    csrf: Option<String>,
}

pub(crate) async fn close(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let answer = match visit
        .run(
            &app,
            "mutation($id: ID!) { closeCall(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["errors"].is_null() {
        Redirect::to(&format!("/calls/{id}")).into_response()
    } else {
        visit.refusal(&answer)
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct CreateForm {
    csrf: Option<String>,
    workflow: String,
    title: String,
    /// The catalogue item an application is for (a demand may name none).
    item: Option<String>,
}

/// Starts a demand (需求) or an application (申报) of the viewer's unit under the call;
/// its fields are then filled in through the instance's own forms.
pub(crate) async fn create(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
    Form(form): Form<CreateForm>,
) -> Response {
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let workflow = match form.workflow.as_str() {
        "demand-collection" | "funded-project" => form.workflow.as_str(),
        _ => return visit.message(StatusCode::BAD_REQUEST, "error", text(visit.lang, "error")),
    };
    let call = match visit
        .run(
            &app,
            "query($id: ID!) { call(id: $id) { id closingDate } }",
            json!({ "id": id }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    let closing = &call["data"]["call"]["closingDate"];
    if closing.is_null() {
        return visit.refusal(&call);
    }
    let answer = match visit
        .run(
            &app,
            "mutation($w: String!, $t: String!, $c: ID, $i: String) { createInstance(input: { workflowId: $w, title: $t, callId: $c, catalogueItem: $i }) { id } }",
            json!({
                "w": workflow,
                "t": form.title.trim(),
                "c": id,
                "i": form.item.as_deref().map(str::trim).filter(|i| !i.is_empty()),
            }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    match answer["data"]["createInstance"]["id"].as_str() {
        Some(new) => Redirect::to(&format!("/instances/{new}")).into_response(),
        None => visit.refusal(&answer),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct ExportQuery {
    format: Option<String>,
    what: Option<String>,
}

/// The call's 汇总表 (demands) or evaluation sheet as a download, as the API exports it
/// (a city bureau gets its city's rows).
pub(crate) async fn export(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
    Query(q): Query<ExportQuery>,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    let format = if q.format.as_deref() == Some("CSV") {
        "CSV"
    } else {
        "XLSX"
    };
    let field = if q.what.as_deref() == Some("evaluations") {
        "exportEvaluations"
    } else {
        "exportDemands"
    };
    let query = format!(
        "query($id: ID!, $f: SpreadsheetFormat!) {{ file: {field}(callId: $id, format: $f) {{ fileName mediaType contentBase64 }} }}"
    );
    let answer = match visit
        .run(&app, &query, json!({ "id": id, "f": format }))
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    let ascii = if format == "CSV" {
        "export.csv"
    } else {
        "export.xlsx"
    };
    download(&visit, &answer, ascii)
}

/// The file of an export query (aliased `file`) as a download; `ascii` is the name for
/// clients that cannot read the UTF-8 one.
pub(crate) fn download(visit: &Visit, answer: &Value, ascii: &str) -> Response {
    let file = &answer["data"]["file"];
    let Some(content) = file["contentBase64"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
    else {
        return match error_code(answer) {
            Some(_) => visit.refusal(answer),
            None => visit.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "error",
                text(visit.lang, "error"),
            ),
        };
    };
    let name = file["fileName"].as_str().unwrap_or("export.xlsx");
    // RFC 6266/5987: the UTF-8 name percent-encoded, an ASCII fallback beside it.
    let encoded = percent_encode(name);
    (
        [
            (
                header::CONTENT_TYPE,
                file["mediaType"]
                    .as_str()
                    .unwrap_or("application/octet-stream")
                    .to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"),
            ),
        ],
        content,
    )
        .into_response()
}

/// `s` with every byte but ASCII letters, digits and `-._` percent-encoded: safe in a
/// header parameter (RFC 5987) and in a query string.
pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_read_by_their_graphql_names() {
        let viewer = serde_json::json!({ "roles": ["MANAGER", "THIRD_PARTY_EVALUATOR"] });
        assert!(has_role(&viewer, RoleGql::Manager));
        assert!(has_role(&viewer, RoleGql::ThirdPartyEvaluator));
        assert!(!has_role(&viewer, RoleGql::City));
        assert!(!has_role(&serde_json::json!({}), RoleGql::Manager));
    }
}
