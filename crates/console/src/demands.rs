//! Demands of a call: uploading a filled-in 需求征集表 (every row and column error shown
//! and nothing stored when any row is wrong: the API's ALL_OR_NOTHING import), and the
//! province's 汇总: duplicate candidates with their similarity, merging one into another,
//! the merges made so far.

use axum::Form;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use grantflow_api::AppState;
use minijinja::context;
use serde_json::{Value, json};

use crate::calls::call_page;
use crate::i18n::{Lang, text};
use crate::pages::{Visit, error_code, error_message};
use crate::upload;

/// The body limit of the import route: the API's file limit and the form around it.
pub(crate) fn import_limit() -> DefaultBodyLimit {
    // base64 is not involved here: the browser sends the raw bytes.
    DefaultBodyLimit::max(upload::IMPORT_BYTES + upload::FRAMING_BYTES)
}

const IMPORT: &str = r#"mutation($c: ID!, $f: String!, $n: String!) {
  importDemands(callId: $c, fileBase64: $f, fileName: $n) { created { id title } skippedRows submitter }
}"#;

/// Imports the sheet; on refusal the call page lists every error by row and column.
pub(crate) async fn import(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
    multipart: Multipart,
) -> Response {
    let form = match upload::read(multipart, upload::IMPORT_BYTES).await {
        Ok(f) => f,
        Err(e) => return visit.message(e.status(), "error", e.text(visit.lang)),
    };
    if let Some(r) = visit.refused(form.text("csrf")) {
        return r;
    }
    let Some((name, bytes)) = form.file.as_ref() else {
        let error = json!({ "message": text(visit.lang, "file_missing"), "rows": [] });
        return call_page(&visit, &app, &id, Some(error)).await;
    };
    let name = if name.is_empty() {
        "需求征集表.xlsx"
    } else {
        name.as_str()
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let answer = match visit
        .run(&app, IMPORT, json!({ "c": id, "f": encoded, "n": name }))
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    let payload = &answer["data"]["importDemands"];
    if payload.is_object() {
        let created = payload["created"].clone();
        let result = json!({ "created": created, "skipped": payload["skippedRows"] });
        return call_page(&visit, &app, &id, Some(result)).await;
    }
    if error_code(&answer) == Some("NOT_FOUND") {
        return visit.not_found();
    }
    let details = &answer["errors"][0]["extensions"]["details"];
    let rows: Vec<Value> = details["rows"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            json!({
                "row": e["row"], "column": e["column"], "header": e["header"], "code": e["code"],
                "message": if visit.lang == Lang::En { &e["messageEn"] } else { &e["messageZh"] },
            })
        })
        .collect();
    let error = json!({
        "message": error_message(&answer, visit.lang), "rows": rows,
        "count": details["errorCount"], "truncated": details["errorsTruncated"],
    });
    call_page(&visit, &app, &id, Some(error)).await
}

const DEMANDS: &str = r#"query($c: ID!) {
  viewer { id username displayName roles }
  call(id: $c) { id title year }
  duplicateCandidates(callId: $c) {
    first { id title organisation { name } } second { id title organisation { name } }
    similarity { overall name performance useOfFunds } reasons
  }
  demandMerges(callId: $c) { id keptId mergedId similarity mergedAt }
}"#;

/// The province's 汇总 of a call's demands: duplicate candidates and merges (managers;
/// city bureaus see their city's candidates, as the API decides).
pub(crate) async fn duplicates(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    duplicates_page(&visit, &app, &id, None).await
}

async fn duplicates_page(
    visit: &Visit,
    app: &AppState,
    id: &str,
    error: Option<String>,
) -> Response {
    let answer = match visit.run(app, DEMANDS, json!({ "c": id })).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let call = &answer["data"]["call"];
    if !call.is_object() {
        return visit.refusal(&answer);
    }
    // A city bureau may read candidates but not merges: whatever the API gives.
    let refused = (!answer["errors"].is_null() && answer["data"]["duplicateCandidates"].is_null())
        .then(|| error_message(&answer, visit.lang));
    visit.page(
        "duplicates.html",
        &answer["data"]["viewer"],
        context! {
            call => call.clone(), candidates => answer["data"]["duplicateCandidates"].clone(),
            merges => answer["data"]["demandMerges"].clone(), error => error.or(refused),
        },
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct MergeForm {
    csrf: Option<String>,
    kept: String,
    duplicate: String,
    reason: Option<String>,
}

pub(crate) async fn merge(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
    Form(form): Form<MergeForm>,
) -> Response {
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let answer = match visit
        .run(
            &app,
            "mutation($k: ID!, $d: ID!, $r: String) { mergeDemands(keptId: $k, duplicateId: $d, reason: $r) { merge { id } } }",
            json!({ "k": form.kept, "d": form.duplicate, "r": form.reason.filter(|r| !r.trim().is_empty()) }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["errors"].is_null() {
        return Redirect::to(&format!("/calls/{id}/demands")).into_response();
    }
    let page = duplicates_page(&visit, &app, &id, Some(error_message(&answer, visit.lang))).await;
    (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
}
