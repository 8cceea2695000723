//! Change requests (项目变更申请): during execution the project's unit files one from the
//! project's page (a `change-request` instance whose parent is the project); it is then an
//! instance like any other, submitted through its generated form and approved, returned or
//! rejected by the manager with the generic action forms. The project's page lists its
//! change requests with their states; the request's page links back to its project.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use grantflow_api::AppState;
use serde_json::{Value, json};

use crate::pages::Visit;

const CREATE: &str = r#"mutation($t: String!, $p: ID!) {
  createInstance(input: { workflowId: "change-request", title: $t, parentId: $p }) { id }
}"#;

const LIST: &str = r#"query($p: ID!) {
  instances(first: 50, filter: { workflowId: "change-request", parentId: $p, includeFinal: true }) {
    edges { node { id title state { id title { zhCn en } } updatedAt } }
  }
}"#;

/// The project's change requests (newest first), as the instance page lists them.
pub(crate) async fn of_project(visit: &Visit, app: &AppState, id: &str) -> Vec<Value> {
    let Ok(answer) = visit.run(app, LIST, json!({ "p": id })).await else {
        return Vec::new();
    };
    answer["data"]["instances"]["edges"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let n = &e["node"];
            json!({
                "id": n["id"], "title": n["title"], "state_id": n["state"]["id"],
                "state": visit.i18n(&n["state"]["title"]), "updated": visit.time(&n["updatedAt"]),
            })
        })
        .collect()
}

#[derive(serde::Deserialize)]
pub(crate) struct ChangeForm {
    csrf: Option<String>,
    title: String,
}

/// Files a change request of the project (its unit; the API decides who may).
pub(crate) async fn create(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut visit: Visit,
    Form(form): Form<ChangeForm>,
) -> Response {
    visit.path = format!("/instances/{id}");
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let answer = match visit
        .run(&app, CREATE, json!({ "t": form.title.trim(), "p": id }))
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
