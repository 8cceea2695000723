//! A project's performance evaluation (绩效评价): the recorded score by part and indicator,
//! or, before it is recorded, the preview the manager may record (the API computes both
//! from the budget's execution and the indicators' actuals).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use grantflow_api::AppState;
use grantflow_api::types::RoleGql;
use minijinja::context;
use serde_json::{Value, json};

use crate::calls::has_role;
use crate::pages::{Visit, error_message};

const EVALUATION: &str = r#"query($id: ID!) {
  viewer { id username displayName roles }
  instance(id: $id) { id title }
  evaluation(instanceId: $id) { evaluatedAt score { total grade budgeted spent executionRate parts { title maxPoints points } indicators { name part maxPoints points fraction } } }
}"#;

const PREVIEW: &str = r#"query($id: ID!) {
  evaluationPreview(instanceId: $id) { total grade budgeted spent executionRate parts { title maxPoints points } indicators { name part maxPoints points fraction } }
}"#;

pub(crate) async fn evaluation(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    evaluation_page(&visit, &app, &id, None).await
}

async fn evaluation_page(
    visit: &Visit,
    app: &AppState,
    id: &str,
    error: Option<String>,
) -> Response {
    let answer = match visit.run(app, EVALUATION, json!({ "id": id })).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !answer["data"]["instance"].is_object() {
        return visit.refusal(&answer);
    }
    let viewer = &answer["data"]["viewer"];
    let recorded = answer["data"]["evaluation"].clone();
    // The preview, for a manager while nothing is recorded; why it cannot be computed
    // yet (no actuals, no budget) is shown instead.
    let (preview, why) = if recorded.is_null() && has_role(viewer, RoleGql::Manager) {
        match visit.run(app, PREVIEW, json!({ "id": id })).await {
            Ok(p) if p["data"]["evaluationPreview"].is_object() => {
                (p["data"]["evaluationPreview"].clone(), None)
            }
            Ok(p) => (Value::Null, Some(error_message(&p, visit.lang))),
            Err(r) => return r,
        }
    } else {
        (Value::Null, None)
    };
    let failed = error.is_some();
    let page = visit.page(
        "evaluation.html",
        viewer,
        context! {
            instance => answer["data"]["instance"].clone(), recorded => recorded,
            evaluated_at => visit.time(&answer["data"]["evaluation"]["evaluatedAt"]),
            preview => preview, why => why, error => error,
        },
    );
    if failed {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct EvaluateForm {
    csrf: Option<String>,
}

/// Records the evaluation (and grades the project when it waits for its grade).
pub(crate) async fn evaluate(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut visit: Visit,
    Form(form): Form<EvaluateForm>,
) -> Response {
    visit.path = format!("/instances/{id}/evaluation");
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let answer = match visit
        .run(
            &app,
            "mutation($id: ID!) { evaluateProject(instanceId: $id) { evaluation { instanceId } } }",
            json!({ "id": id }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["errors"].is_null() {
        return Redirect::to(&format!("/instances/{id}/evaluation")).into_response();
    }
    if crate::pages::error_code(&answer) == Some("NOT_FOUND") {
        return visit.not_found();
    }
    evaluation_page(&visit, &app, &id, Some(error_message(&answer, visit.lang))).await
}
