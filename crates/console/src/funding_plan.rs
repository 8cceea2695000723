//! A call's funding plan (专项经费使用计划): the envelope and its pools per part,
//! category, catalogue item and city with what approvals hold against each and what
//! remains (`fundingPlan`), every change with who, when and why (`fundingPlanHistory`),
//! and the manager's form that replaces the plan through `setFundingPlan`.

use std::collections::BTreeMap;

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

const PLAN: &str = r#"query($id: ID!) {
  viewer { id username displayName roles }
  call(id: $id) { id title year status }
  fundingPlan(callId: $id) {
    planned total reimbursedAfterwards projects
    pools { kind key allocated committed remaining }
  }
}"#;

const HISTORY: &str = r#"query($id: ID!) {
  fundingPlanHistory(callId: $id) { id oldPlan newPlan reason changedBy changedAt }
}"#;

/// Managers' names for the history (the directory is theirs to read; others see ids).
const MANAGERS: &str =
    r#"{ userDirectory(role: MANAGER, first: 100) { users { id displayName } } }"#;

/// The pool kinds of a plan as the API names them, and their field in the stored plan.
const KINDS: [(&str, &str); 4] = [
    ("part", "parts"),
    ("category", "categories"),
    ("item", "items"),
    ("city", "cities"),
];

/// What changed between two stored plans: `(kind, key, before, after)` for the total and
/// every pool added, removed or changed.
fn differences(old: &Value, new: &Value) -> Vec<(String, String, String, String)> {
    let money = |v: &Value| v.as_str().map_or_else(|| "—".to_string(), str::to_string);
    let mut out = Vec::new();
    if old["total"] != new["total"] {
        out.push((
            "total".into(),
            String::new(),
            money(&old["total"]),
            money(&new["total"]),
        ));
    }
    for (kind, field) in KINDS {
        let empty = serde_json::Map::new();
        let before = old[field].as_object().unwrap_or(&empty);
        let after = new[field].as_object().unwrap_or(&empty);
        let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for key in keys {
            let (b, a) = (before.get(key), after.get(key));
            if b != a {
                out.push((
                    kind.into(),
                    key.clone(),
                    b.map_or_else(|| "—".to_string(), money),
                    a.map_or_else(|| "—".to_string(), money),
                ));
            }
        }
    }
    if old["reimbursed_afterwards"].as_bool().unwrap_or(false)
        != new["reimbursed_afterwards"].as_bool().unwrap_or(false)
    {
        out.push((
            "reimbursed_afterwards".into(),
            String::new(),
            old["reimbursed_afterwards"].to_string(),
            new["reimbursed_afterwards"].to_string(),
        ));
    }
    out
}

pub(crate) async fn plan(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    plan_page(&visit, &app, &id, None).await
}

async fn plan_page(visit: &Visit, app: &AppState, id: &str, error: Option<String>) -> Response {
    let answer = match visit.run(app, PLAN, json!({ "id": id })).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let plan = &answer["data"]["fundingPlan"];
    if !plan.is_object() || !answer["data"]["call"].is_object() {
        return visit.refusal(&answer);
    }
    let viewer = &answer["data"]["viewer"];
    // The history: managers and auditors (a city bureau is refused it; the plan stays).
    let history = visit
        .run(app, HISTORY, json!({ "id": id }))
        .await
        .ok()
        .and_then(|h| h["data"]["fundingPlanHistory"].as_array().cloned());
    let names: BTreeMap<String, String> = match visit.run(app, MANAGERS, json!({})).await {
        Ok(m) => m["data"]["userDirectory"]["users"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|u| Some((u["id"].as_str()?.into(), u["displayName"].as_str()?.into())))
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    let history: Option<Vec<Value>> = history.map(|h| {
        h.iter()
            .rev()
            .map(|c| {
                let by = c["changedBy"].as_str().unwrap_or_default();
                json!({
                    "id": c["id"],
                    "at": visit.time(&c["changedAt"]),
                    "by": names.get(by).cloned().unwrap_or_else(|| by.to_string()),
                    "reason": c["reason"],
                    "changes": differences(&c["oldPlan"], &c["newPlan"])
                        .into_iter()
                        .map(|(kind, key, before, after)| json!({ "kind": kind, "key": key, "before": before, "after": after }))
                        .collect::<Vec<_>>(),
                })
            })
            .collect()
    });
    let pools: Vec<&Value> = plan["pools"]
        .as_array()
        .map(|p| p.iter().filter(|p| p["kind"] != "total").collect())
        .unwrap_or_default();
    let failed = error.is_some();
    let page = visit.page(
        "funding.html",
        viewer,
        context! {
            call => answer["data"]["call"].clone(), plan => plan.clone(), pools => pools,
            total_pool => plan["pools"].as_array().and_then(|p| p.iter().find(|p| p["kind"] == "total")).cloned(),
            history => history, error => error,
            may_edit => has_role(viewer, RoleGql::Manager),
            kinds => KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            blank_rows => (1..=3).collect::<Vec<i32>>(),
        },
    );
    if failed {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page
    }
}

/// The plan from the form: the pools arrive as `kind`, `key` and `amount` fields in row
/// order (existing rows and the blank ones alike); a row without an amount or a key is
/// left out, which is how a pool is removed.
fn plan_input(pairs: &[(String, String)]) -> Value {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim());
    let column = |name: &str| -> Vec<&str> {
        pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .collect()
    };
    let mut pools: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for ((kind, key), amount) in column("kind")
        .into_iter()
        .zip(column("key"))
        .zip(column("amount"))
    {
        if key.is_empty() || amount.is_empty() {
            continue;
        }
        if let Some((_, field)) = KINDS.iter().find(|(k, _)| *k == kind) {
            pools
                .entry(*field)
                .or_default()
                .push(json!({ "key": key, "amount": amount }));
        }
    }
    let mut plan = json!({
        "total": get("total").unwrap_or_default(),
        "reimbursedAfterwards": get("reimbursed") == Some("on"),
    });
    for (_, field) in KINDS {
        plan[field] = json!(pools.remove(field).unwrap_or_default());
    }
    plan
}

pub(crate) async fn save(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut visit: Visit,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    visit.path = format!("/calls/{id}/funding");
    let csrf = pairs
        .iter()
        .find(|(n, _)| n == "csrf")
        .map(|(_, v)| v.as_str());
    if let Some(r) = visit.refused(csrf) {
        return r;
    }
    let reason = pairs
        .iter()
        .find(|(n, _)| n == "reason")
        .map_or("", |(_, v)| v.trim());
    let answer = match visit
        .run(
            &app,
            "mutation($c: ID!, $p: FundingPlanInput!, $r: String!) { setFundingPlan(callId: $c, plan: $p, reason: $r) { callId } }",
            json!({ "c": id, "p": plan_input(&pairs), "r": reason }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["errors"].is_null() {
        Redirect::to(&format!("/calls/{id}/funding")).into_response()
    } else {
        plan_page(&visit, &app, &id, Some(error_message(&answer, visit.lang))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn the_form_becomes_the_plan_and_an_emptied_row_is_removed() {
        let plan = plan_input(&pairs(&[
            ("csrf", "t"),
            ("total", "60000000"),
            ("kind", "part"),
            ("key", "retained_provincial"),
            ("amount", "20000000"),
            ("kind", "city"),
            ("key", "广州市"),
            ("amount", ""),
            ("kind", "city"),
            ("key", "深圳市"),
            ("amount", "500万元"),
            ("kind", "bogus"),
            ("key", "x"),
            ("amount", "1"),
            ("reimbursed", "on"),
        ]));
        assert_eq!(plan["total"], "60000000");
        assert_eq!(plan["reimbursedAfterwards"], true);
        assert_eq!(
            plan["parts"],
            json!([{ "key": "retained_provincial", "amount": "20000000" }])
        );
        assert_eq!(
            plan["cities"],
            json!([{ "key": "深圳市", "amount": "500万元" }])
        );
        assert_eq!(plan["categories"], json!([]));
    }

    #[test]
    fn the_history_names_what_changed() {
        let old = json!({ "total": "100.00", "cities": { "广州市": "50.00", "深圳市": "20.00" } });
        let new = json!({ "total": "120.00", "cities": { "广州市": "50.00", "佛山市": "10.00" } });
        let d = differences(&old, &new);
        assert_eq!(
            d,
            vec![
                (
                    "total".into(),
                    String::new(),
                    "100.00".into(),
                    "120.00".into()
                ),
                ("city".into(), "佛山市".into(), "—".into(), "10.00".into()),
                ("city".into(), "深圳市".into(), "20.00".into(), "—".into()),
            ]
        );
        assert_eq!(differences(&Value::Null, &new).len(), 3);
    }
}
