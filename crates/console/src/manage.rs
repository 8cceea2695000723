//! The programme manager's pages beyond the instance page: a project's review round
//! (the panel with every assignment's lifecycle, including the conflicts declared that
//! replaced an expert; a seeded draw listing the experts it excluded with every reason;
//! assigning pool experts by hand; the spread of the experts' totals as a chart), a
//! call's ranking with the same chart for every project, and the dead letters of the
//! outbox.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use grantflow_api::AppState;
use grantflow_api::types::RoleGql;
use minijinja::context;
use serde_json::{Value, json};

use crate::charts;
use crate::i18n::text;
use crate::pages::Visit;

const ROUND: &str = r#"query($id: ID!) {
  viewer { id username displayName roles }
  instance(id: $id) { id title state { title { zhCn en } } }
  reviewRound(instanceId: $id) {
    roundId title { zhCn en } cycle open blind aggregation panelSize count total passed submitted
    totals { count mean median sd min max }
    expertTotals { expert { displayName } total }
    assignments {
      id state stateTitle { zhCn en } seed algorithm replaces replacedBy dueAt overdue
      expert { displayName organisation { name } }
      events { at actorKind action reason }
    }
  }
}"#;

pub(crate) async fn round(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    round_page(&visit, &app, &id, Outcome::default()).await
}

/// What a draw or a manual assignment leaves to show on the round page.
#[derive(Default)]
struct Outcome {
    notice: Option<String>,
    /// The experts the draw excluded, each with its reasons.
    excluded: Vec<Value>,
    error: Option<String>,
}

async fn round_page(visit: &Visit, app: &AppState, id: &str, outcome: Outcome) -> Response {
    let answer = match visit.run(app, ROUND, json!({ "id": id })).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let round = &answer["data"]["reviewRound"];
    if !round.is_object() || !answer["data"]["instance"].is_object() {
        return visit.refusal(&answer);
    }
    let totals: Vec<f64> = round["expertTotals"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t["total"].as_f64())
        .collect();
    let title = answer["data"]["instance"]["title"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let chart = (!totals.is_empty())
        .then(|| charts::spread(&[(title, totals)], 100.0, text(visit.lang, "spread")));
    let assignments: Vec<Value> = round["assignments"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|a| {
            let events: Vec<Value> = a["events"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|e| json!({ "at": visit.time(&e["at"]), "who": e["actorKind"], "action": e["action"], "reason": e["reason"] }))
                .collect();
            json!({
                "id": a["id"], "state": visit.i18n(&a["stateTitle"]), "code": a["state"],
                "expert": a["expert"]["displayName"], "org": a["expert"]["organisation"]["name"],
                "seed": a["seed"], "algorithm": a["algorithm"], "replaces": a["replaces"],
                "replaced_by": a["replacedBy"], "due": visit.time(&a["dueAt"]), "overdue": a["overdue"],
                "events": events,
            })
        })
        .collect();
    // The pool's active experts, for assigning by hand while the round is open.
    let pool: Vec<Value> = if round["open"] == true
        && crate::calls::has_role(&answer["data"]["viewer"], RoleGql::Manager)
    {
        match visit
            .run(
                app,
                "{ expertPool { userId status load workloadCap user { displayName username } organisation { name } } }",
                json!({}),
            )
            .await
        {
            Ok(p) => p["data"]["expertPool"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|e| e["status"] == "active")
                .map(|e| {
                    json!({
                        "id": e["userId"], "name": e["user"]["displayName"], "username": e["user"]["username"],
                        "org": e["organisation"]["name"], "load": e["load"], "cap": e["workloadCap"],
                    })
                })
                .collect(),
            Err(r) => return r,
        }
    } else {
        Vec::new()
    };
    let failed = outcome.error.is_some();
    let page = visit.page(
        "round.html",
        &answer["data"]["viewer"],
        context! {
            instance => answer["data"]["instance"].clone(), round => round.clone(),
            round_title => visit.i18n(&round["title"]), assignments => assignments,
            chart => chart.map(minijinja::Value::from_safe_string), notice => outcome.notice,
            excluded => outcome.excluded, pool => pool, error => outcome.error,
        },
    );
    if failed {
        (axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct DrawForm {
    csrf: Option<String>,
    seed: Option<String>,
}

/// Draws the panel (seeded when a seed is given: the same seed, the same experts).
pub(crate) async fn draw(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut visit: Visit,
    Form(form): Form<DrawForm>,
) -> Response {
    visit.path = format!("/rounds/{id}");
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let seed: Option<i64> = form.seed.as_deref().and_then(|s| s.trim().parse().ok());
    let answer = match visit
        .run(
            &app,
            "mutation($id: ID!, $s: Int) { autoAssign(instanceId: $id, seed: $s) { seed algorithm unfilledSeats assignments { id } excluded { expert { displayName username } reasons { code conflicts message { zhCn en } } } } }",
            json!({ "id": id, "s": seed }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    let p = &answer["data"]["autoAssign"];
    if !p.is_object() {
        return visit.refusal(&answer);
    }
    let notice = format!(
        "{} {} · seed {} · {} · {} {}",
        text(visit.lang, "drawn"),
        p["assignments"].as_array().map_or(0, Vec::len),
        p["seed"],
        p["algorithm"].as_str().unwrap_or_default(),
        text(visit.lang, "unfilled"),
        p["unfilledSeats"],
    );
    let excluded: Vec<Value> = p["excluded"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let reasons: Vec<Value> = e["reasons"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|r| json!({ "code": r["code"], "conflicts": r["conflicts"], "message": visit.i18n(&r["message"]) }))
                .collect();
            json!({ "name": e["expert"]["displayName"], "username": e["expert"]["username"], "reasons": reasons })
        })
        .collect();
    let outcome = Outcome {
        notice: Some(notice),
        excluded,
        error: None,
    };
    round_page(&visit, &app, &id, outcome).await
}

/// Puts the experts ticked on the round page on the panel (all or nothing: the API
/// refuses with every reason of every refused expert).
pub(crate) async fn assign(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut visit: Visit,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    visit.path = format!("/rounds/{id}");
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    if let Some(r) = visit.refused(csrf) {
        return r;
    }
    let experts: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "expert")
        .map(|(_, v)| v.trim())
        .take(30)
        .collect();
    let answer = match visit
        .run(
            &app,
            "mutation($id: ID!, $e: [ID!]!) { assignReviewers(instanceId: $id, expertIds: $e) { id } }",
            json!({ "id": id, "e": experts }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    let outcome = match answer["data"]["assignReviewers"].as_array() {
        Some(done) => Outcome {
            notice: Some(format!("{} {}", text(visit.lang, "assigned"), done.len())),
            ..Outcome::default()
        },
        None if crate::pages::error_code(&answer) == Some("NOT_FOUND") => {
            return visit.not_found();
        }
        None => Outcome {
            error: Some(crate::pages::error_message(&answer, visit.lang)),
            ..Outcome::default()
        },
    };
    round_page(&visit, &app, &id, outcome).await
}

const RANKING: &str = r#"query($c: String!, $id: ID!) {
  viewer { id username displayName roles }
  call(id: $id) { id title year }
  ranking(callId: $c) { rank total median minTotal count passed instance { id title } }
}"#;

/// A call's applications ranked by their review, with the spread of each project's
/// expert totals.
pub(crate) async fn ranking(
    State(app): State<AppState>,
    Path(id): Path<String>,
    visit: Visit,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    let answer = match visit.run(&app, RANKING, json!({ "c": id, "id": id })).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let rows = &answer["data"]["ranking"];
    if !rows.is_array() || !answer["data"]["call"].is_object() {
        return visit.refusal(&answer);
    }
    // Each project's expert totals (one query per project, at most the ranking's length).
    let mut spread = Vec::new();
    for r in rows
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .take(30)
    {
        let Some(iid) = r["instance"]["id"].as_str() else {
            continue;
        };
        let totals = visit
            .run(
                &app,
                "query($id: ID!) { reviewRound(instanceId: $id) { expertTotals { total } } }",
                json!({ "id": iid }),
            )
            .await
            .ok()
            .and_then(|a| a["data"]["reviewRound"]["expertTotals"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t["total"].as_f64())
            .collect::<Vec<_>>();
        spread.push((
            r["instance"]["title"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            totals,
        ));
    }
    let chart =
        (!spread.is_empty()).then(|| charts::spread(&spread, 100.0, text(visit.lang, "spread")));
    visit.page(
        "ranking.html",
        &answer["data"]["viewer"],
        context! {
            call => answer["data"]["call"].clone(), rows => rows.clone(),
            chart => chart.map(minijinja::Value::from_safe_string),
        },
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct OutboxQuery {
    status: Option<String>,
}

/// The outbox (managers): dead letters by default, or any status.
pub(crate) async fn outbox(
    State(app): State<AppState>,
    visit: Visit,
    Query(q): Query<OutboxQuery>,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    let status = match q.status.as_deref() {
        Some("PENDING") => "PENDING",
        Some("SENT") => "SENT",
        Some("SENDING") => "SENDING",
        _ => "DEAD",
    };
    let query = format!(
        "{{ viewer {{ id username displayName roles }} outbox(status: {status}, limit: 200) {{ id template toName kind status attempts lastError createdAt instanceId }} }}"
    );
    let answer = match visit.run(&app, &query, json!({})).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !answer["data"]["outbox"].is_array() {
        return visit.refusal(&answer);
    }
    let rows: Vec<Value> = answer["data"]["outbox"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            json!({
                "template": m["template"], "to": m["toName"], "status": m["status"], "attempts": m["attempts"],
                "error": m["lastError"], "created": visit.time(&m["createdAt"]), "instance": m["instanceId"],
            })
        })
        .collect();
    visit.page(
        "outbox.html",
        &answer["data"]["viewer"],
        context! { rows => rows, status => status },
    )
}
