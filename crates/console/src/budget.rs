//! A project's budget: its lines (managers add them at approval), the spending charged to
//! each (the unit records it; 没有预算不得支出: spending without a line is refused by the
//! API), and what is left. Everything as the API computes it, exact amounts in yuan.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use grantflow_api::AppState;
use minijinja::context;
use serde_json::json;

use crate::pages::{Visit, error_message};

const BUDGET: &str = r#"query($id: ID!) {
  viewer { id username displayName roles }
  budget(instanceId: $id) {
    instance { id title }
    lines { id year subject amount source remaining }
    spending { id lineId amount spentOn description }
    budgeted spent remaining executionRate
    approved disbursed executionRateOfDisbursed executionRateOfApproved
    disbursements { batch paidOn amount voucher }
  }
}"#;

pub(crate) async fn budget(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    budget_page(&visit, &app, &id, None).await
}

async fn budget_page(visit: &Visit, app: &AppState, id: &str, error: Option<String>) -> Response {
    let answer = match visit.run(app, BUDGET, json!({ "id": id })).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let b = &answer["data"]["budget"];
    if !b.is_object() {
        return visit.refusal(&answer);
    }
    let failed = error.is_some();
    let page = visit.page(
        "budget.html",
        &answer["data"]["viewer"],
        context! {
            budget => b.clone(), id => id, error => error,
            rate => percent(&b["executionRate"]),
            rate_of_disbursed => percent(&b["executionRateOfDisbursed"]),
            rate_of_approved => percent(&b["executionRateOfApproved"]),
        },
    );
    if failed {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page
    }
}

/// A rate as the page writes it (one decimal); `None` when the API has none.
fn percent(rate: &serde_json::Value) -> Option<String> {
    rate.as_f64().map(|r| format!("{:.1}%", r * 100.0))
}

#[derive(serde::Deserialize)]
pub(crate) struct LineForm {
    csrf: Option<String>,
    year: String,
    subject: String,
    amount: String,
    source: String,
}

pub(crate) async fn add_line(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut visit: Visit,
    Form(form): Form<LineForm>,
) -> Response {
    visit.path = format!("/instances/{id}/budget");
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let year: i64 = form.year.trim().parse().unwrap_or(0);
    let answer = match visit
        .run(
            &app,
            "mutation($id: ID!, $i: BudgetLineInput!) { addBudgetLine(instanceId: $id, input: $i) { id } }",
            json!({ "id": id, "i": { "year": year, "subject": form.subject.trim(), "amount": form.amount.trim(), "source": form.source.trim() } }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    done(&visit, &app, &id, &answer).await
}

#[derive(serde::Deserialize)]
pub(crate) struct SpendForm {
    csrf: Option<String>,
    line: String,
    amount: String,
    spent_on: String,
    description: String,
}

pub(crate) async fn spend(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut visit: Visit,
    Form(form): Form<SpendForm>,
) -> Response {
    visit.path = format!("/instances/{id}/budget");
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let line = Some(form.line.trim()).filter(|l| !l.is_empty());
    let answer = match visit
        .run(
            &app,
            "mutation($id: ID!, $i: SpendingInput!) { recordSpending(instanceId: $id, input: $i) { id } }",
            json!({ "id": id, "i": { "lineId": line, "amount": form.amount.trim(), "spentOn": form.spent_on.trim(), "description": form.description.trim() } }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    done(&visit, &app, &id, &answer).await
}

#[derive(serde::Deserialize)]
pub(crate) struct DisburseForm {
    csrf: Option<String>,
    batch: String,
    paid_on: String,
    amount: String,
    voucher: String,
}

/// Records a disbursement (拨付, managers): batch, date, amount, voucher, as
/// `recordDisbursement`; at most the approved funding (the API refuses beyond it).
pub(crate) async fn disburse(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut visit: Visit,
    Form(form): Form<DisburseForm>,
) -> Response {
    visit.path = format!("/instances/{id}/budget");
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let answer = match visit
        .run(
            &app,
            "mutation($id: ID!, $i: DisbursementInput!) { recordDisbursement(instanceId: $id, input: $i) { batch } }",
            json!({ "id": id, "i": { "batch": form.batch.trim(), "paidOn": form.paid_on.trim(), "amount": form.amount.trim(), "voucher": form.voucher.trim() } }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    done(&visit, &app, &id, &answer).await
}

async fn done(visit: &Visit, app: &AppState, id: &str, answer: &serde_json::Value) -> Response {
    if answer["errors"].is_null() {
        return Redirect::to(&format!("/instances/{id}/budget")).into_response();
    }
    if crate::pages::error_code(answer) == Some("NOT_FOUND") {
        return visit.not_found();
    }
    budget_page(visit, app, id, Some(error_message(answer, visit.lang))).await
}
