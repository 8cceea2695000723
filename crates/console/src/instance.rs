//! One instance: its data, the diagram with the current state, the actions the viewer
//! can fire now (forms generated from the workflow's declared inputs) and why the others
//! are unavailable, pending timers, sent messages (managers), and the history with its
//! hash chain and the chain's verification (auditors and managers).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use grantflow_api::AppState;
use grantflow_api::types::RoleGql;
use minijinja::context;
use serde_json::{Value, json};

use crate::Page;
use crate::i18n::{Lang, text, texts};
use crate::pages::{Visit, error_code, error_message};
use crate::{changes, diagram, forms};

const INSTANCE: &str = r#"query($id: ID!) {
  viewer { id username displayName roles }
  instance(id: $id) {
    id title version dueAt overdue data
    state { id title { zhCn en } } stage { title { zhCn en } }
    organisation { name }
    parent { id title }
    workflow { id title { zhCn en } states { id title { zhCn en } initial final } transitions { event title { zhCn en } from to } }
    history { seq at actorId event fromState toState reason hash prevHash }
    historyVerification { ok recordsChecked failedSeq problem }
    timers { kind fireAt status firedAt event }
    availableTransitions {
      event title { zhCn en } available reasonRequired
      input { name type required title { zhCn en } options }
      unavailableReason { code message { zhCn en } }
    }
  }
}"#;

const MESSAGES: &str = r#"query($id: ID!) {
  instance(id: $id) { messages { template toName kind status attempts createdAt sentAt lastError } }
}"#;

const TASK_BOOK: &str = r#"query($id: ID!) {
  instance(id: $id) { taskBook {
    schedule { kind dates } nextReportDue lastReportDue reportOverdue
    tasks { no focus task deliverableForm department due indicators progress { status percent description } }
  } }
}"#;

/// The task book (任务书) read-only: every task with its latest progress, the report
/// schedule, when the next report is due and whether it is overdue. `None` without one
/// (or when the viewer may not see it).
async fn task_book(visit: &Visit, app: &AppState, id: &str) -> Option<Value> {
    let answer = visit.run(app, TASK_BOOK, json!({ "id": id })).await.ok()?;
    let b = &answer["data"]["instance"]["taskBook"];
    let tasks = b["tasks"].as_array().filter(|t| !t.is_empty())?;
    let en = visit.lang == Lang::En;
    let columns: Vec<&str> = if en {
        vec![
            "No.",
            "Focus",
            "Task",
            "Deliverable form",
            "Department",
            "Due",
            "Linked indicators",
            "Progress",
        ]
    } else {
        vec![
            "序号",
            "工作重点",
            "具体任务",
            "成果形式",
            "责任部门",
            "时限",
            "关联绩效指标",
            "最新进展",
        ]
    };
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let rows: Vec<Value> = tasks
        .iter()
        .map(|t| {
            let names: Vec<String> = t["indicators"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(text)
                .collect();
            let p = &t["progress"];
            let progress = if p.is_object() {
                let status = text(&p["status"]).to_lowercase();
                let mut s = forms::option_title(visit.lang, &status).to_string();
                if !p["percent"].is_null() {
                    s.push_str(&format!(" {}%", text(&p["percent"])));
                }
                if !p["description"].is_null() {
                    s.push_str(&format!(" · {}", text(&p["description"])));
                }
                s
            } else {
                "—".to_string()
            };
            json!([
                text(&t["no"]),
                text(&t["focus"]),
                text(&t["task"]),
                text(&t["deliverableForm"]),
                text(&t["department"]),
                text(&t["due"]),
                names.join("、"),
                progress,
            ])
        })
        .collect();
    let schedule = match b["schedule"]["kind"].as_str() {
        Some(k) => forms::option_title(visit.lang, k).to_string(),
        None => b["schedule"]["dates"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(text)
            .collect::<Vec<_>>()
            .join(", "),
    };
    Some(json!({
        "columns": columns, "rows": rows,
        "schedule": Some(schedule).filter(|s| !s.is_empty()),
        "next_due": b["nextReportDue"], "last_due": b["lastReportDue"],
        "overdue": b["reportOverdue"],
    }))
}

/// The event name a refused deadline extension is reported under.
const EXTEND: &str = "-extend";

const FIRE: &str = r#"mutation($id: ID!, $event: String!, $v: Int!, $input: JSON, $reason: String) {
  transition(instanceId: $id, event: $event, expectedVersion: $v, input: $input, reason: $reason) { instance { id } }
}"#;

// ------------------------------------------------------------------ one instance

/// An input field of an action, as the form shows it; `values` are what was typed (after
/// a refusal) or what the instance's data already holds.
fn form_field(
    visit: &Visit,
    f: &Value,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
) -> Value {
    let name = f["name"].as_str().unwrap_or_default();
    let ty = f["type"].as_str().unwrap_or("text");
    let title = {
        let t = visit.i18n(&f["title"]);
        if t.is_empty() { name.to_string() } else { t }
    };
    let en = visit.lang == Lang::En;
    let (html_type, hint, multiline) = match ty {
        "integer" => ("number", "", false),
        "date" => ("date", "", false),
        "money" => (
            "text",
            if en {
                "yuan (元), e.g. 250000.00"
            } else {
                "单位：元，例如 250000.00"
            },
            false,
        ),
        "indicators" => (
            "text",
            if en {
                "One indicator per row; empty rows are ignored."
            } else {
                "每行一个指标，空行不计。"
            },
            false,
        ),
        "tasks" => (
            "text",
            if en {
                "One task per row; linked indicators by name, separated by commas; empty rows are ignored. Save with errors to get more rows."
            } else {
                "每行一项任务；关联绩效指标填指标名称，以顿号或逗号分隔；空行不计。需更多行时提交后会增加空行。"
            },
            false,
        ),
        "task_progress" => (
            "text",
            if en {
                "One row per task of the task book: its number, status, percent or description."
            } else {
                "每行对应任务书中的一项任务：序号、进展状态、完成百分比或进展说明。"
            },
            false,
        ),
        "report_schedule" => (
            "text",
            if en {
                "A period, or choose “dates” and list the report dates (YYYY-MM-DD, separated by commas)."
            } else {
                "选择周期；或选「按下列日期」并填写报告日期（YYYY-MM-DD，以逗号分隔）。"
            },
            false,
        ),
        "file" | "files" => (
            "text",
            if en {
                "References to files already uploaded: name, SHA-256, size."
            } else {
                "已上传文件的引用：文件名、SHA-256、大小。"
            },
            false,
        ),
        "text" => ("text", "", true),
        _ => ("text", "", false),
    };
    json!({
        "name": name, "type": ty, "title": title, "required": f["required"],
        "options": f["options"], "html_type": html_type, "hint": hint, "multiline": multiline,
        "value": values.get(name).cloned().unwrap_or_default(),
        "grid": forms::grid(visit.lang, ty, name, values),
        "dates": values.get(&format!("{name}.dates")).cloned().unwrap_or_default(),
        "schedule_options": forms::SCHEDULE_OPTIONS
            .iter()
            .map(|o| json!({ "value": o, "title": forms::option_title(visit.lang, o) }))
            .collect::<Vec<_>>(),
        "error": errors.get(name),
    })
}

/// A form the API refused: its event, the message, what was typed, and the message of
/// each field at fault.
struct Refused<'a> {
    event: &'a str,
    message: String,
    values: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
}

async fn instance_page(
    visit: &Visit,
    app: &AppState,
    id: &str,
    failed: Option<Refused<'_>>,
) -> Response {
    let answer = match visit.run(app, INSTANCE, json!({ "id": id })).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let i = &answer["data"]["instance"];
    if !i.is_object() {
        return match error_code(&answer) {
            Some("NOT_FOUND") | Some("INVALID_INPUT") => visit.message(
                StatusCode::NOT_FOUND,
                "error",
                text(visit.lang, "not_found"),
            ),
            _ => visit.message(
                StatusCode::BAD_REQUEST,
                "error",
                &error_message(&answer, visit.lang),
            ),
        };
    }
    let empty = BTreeMap::new();
    let transitions = i["availableTransitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let actions: Vec<Value> = transitions
        .iter()
        .map(|t| {
            let event = t["event"].as_str().unwrap_or_default();
            let inputs = t["input"].as_array().map(Vec::as_slice).unwrap_or_default();
            let stored: BTreeMap<String, String> = inputs
                .iter()
                .flat_map(|f| {
                    forms::values_from_data(
                        f["type"].as_str().unwrap_or("text"),
                        f["name"].as_str().unwrap_or_default(),
                        &i["data"],
                    )
                })
                .collect();
            let (error, values, errors) = match &failed {
                Some(r) if r.event == event => (Some(r.message.clone()), &r.values, &r.errors),
                _ => (None, &stored, &empty),
            };
            let fields: Vec<Value> = inputs
                .iter()
                .map(|f| form_field(visit, f, values, errors))
                .collect();
            json!({
                "event": event, "title": visit.i18n(&t["title"]), "available": t["available"],
                "reason_required": t["reasonRequired"], "fields": fields, "error": error,
            })
        })
        .collect();
    let unavailable: Vec<Value> = transitions
        .iter()
        .filter(|t| t["available"] != true)
        .map(|t| json!({ "title": visit.i18n(&t["title"]), "why": visit.i18n(&t["unavailableReason"]["message"]) }))
        .collect();
    let state_title: BTreeMap<String, String> = i["workflow"]["states"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap_or_default().to_string(),
                visit.i18n(&s["title"]),
            )
        })
        .collect();
    let title_of = |v: &Value| {
        let id = v.as_str().unwrap_or_default();
        state_title
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    };
    let history: Vec<Value> = i["history"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|h| {
            json!({
                "seq": h["seq"], "at": visit.time(&h["at"]), "actor": h["actorId"], "event": h["event"],
                "from": title_of(&h["fromState"]), "to": title_of(&h["toState"]), "reason": h["reason"],
                "hash": h["hash"], "prev": h["prevHash"],
            })
        })
        .collect();
    // Pending ones first (soonest first), then what fired or was cancelled.
    let mut pending: Vec<&Value> = i["timers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .collect();
    pending.sort_by_key(|t| {
        (
            t["status"] != "pending",
            t["fireAt"].as_str().unwrap_or_default().to_string(),
        )
    });
    let timers: Vec<Value> = pending
        .into_iter()
        .map(|t| {
            json!({
                "kind": t["kind"], "fire_at": visit.time(&t["fireAt"]), "status": t["status"],
                "fired_at": visit.time(&t["firedAt"]), "event": t["event"],
            })
        })
        .collect();
    let viewer = answer["data"]["viewer"].clone();
    let messages: Vec<Value> = if crate::calls::has_role(&viewer, RoleGql::Manager) {
        match visit.run(app, MESSAGES, json!({ "id": id })).await {
            Ok(m) => m["data"]["instance"]["messages"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|m| {
                    json!({
                        "template": m["template"], "to": m["toName"], "status": m["status"],
                        "attempts": m["attempts"], "created": visit.time(&m["createdAt"]),
                        "sent": visit.time(&m["sentAt"]), "error": m["lastError"],
                    })
                })
                .collect(),
            Err(r) => return r,
        }
    } else {
        Vec::new()
    };
    // A project's change requests (the unit files them during execution).
    let is_project = i["workflow"]["id"] == "funded-project";
    let change_requests = if is_project {
        changes::of_project(visit, app, id).await
    } else {
        Vec::new()
    };
    // 公示异议 still open: approval waits on them (managers and auditors read them).
    let objections = if is_project
        && (crate::calls::has_role(&viewer, RoleGql::Manager)
            || crate::calls::has_role(&viewer, RoleGql::Auditor))
    {
        crate::objections::of_project(visit, app, id).await
    } else {
        Vec::new()
    };
    let task_book = if is_project {
        task_book(visit, app, id).await
    } else {
        None
    };
    let may_request_change = is_project
        && i["state"]["id"] == "execution"
        && crate::calls::has_role(&viewer, RoleGql::Applicant);
    let (nodes, edges) = diagram::from_graphql(&i["workflow"], |t| visit.i18n(t));
    let svg = diagram::svg(
        &nodes,
        &edges,
        i["state"]["id"].as_str().unwrap_or_default(),
        &format!(
            "{}: {}",
            visit.i18n(&i["workflow"]["title"]),
            visit.i18n(&i["state"]["title"])
        ),
    );
    // The indicator tables the data holds (targets, approved targets, actuals), in the
    // provincial table's columns.
    let indicator_tables: Vec<Value> = [
        ("indicators", "绩效目标", "Performance targets"),
        (
            "approved_indicators",
            "立项审定的绩效目标",
            "Targets fixed at approval",
        ),
        ("indicator_actuals", "绩效指标完成情况", "Indicator actuals"),
    ]
    .into_iter()
    .filter_map(|(name, zh, en)| {
        let table = forms::indicator_table(visit.lang, name, &i["data"][name])?;
        let title = if visit.lang == Lang::En { en } else { zh };
        Some(json!({ "name": name, "title": title, "table": table }))
    })
    .collect();
    let instance = json!({
        "id": i["id"], "title": i["title"], "version": i["version"],
        "state": visit.i18n(&i["state"]["title"]), "stage": visit.i18n(&i["stage"]["title"]),
        "due": visit.time(&i["dueAt"]), "overdue": i["overdue"],
        "organisation": i["organisation"]["name"],
        "data": serde_json::to_string_pretty(&i["data"]).unwrap_or_default(),
    });
    let page = Page::render(
        "instance.html",
        context! {
            lang => visit.lang.tag(), tr => texts(visit.lang), path => visit.path,
            csrf => visit.token, viewer => viewer,
            instance => instance, actions => actions, unavailable => unavailable,
            history => history, timers => timers, messages => messages,
            indicator_tables => indicator_tables, task_book => task_book,
            change_requests => change_requests, may_request_change => may_request_change,
            objections => objections,
            is_project => is_project, parent => i["parent"].clone(),
            verification => i["historyVerification"].clone(),
            extend_error => failed.as_ref().filter(|r| r.event == EXTEND).map(|r| r.message.clone()),
            diagram => minijinja::Value::from_safe_string(svg),
        },
    );
    if failed.is_some() {
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    } else {
        page
    }
}

pub(crate) async fn instance(
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
    instance_page(&visit, &app, &id, None).await
}

/// Fires an action from its form. The form's fields arrive as `input.<name>`; each is
/// converted by its declared type, and the API's refusals come back next to the fields.
pub(crate) async fn fire(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let mut visit = Visit::new(&app, &headers, &uri, addr.map(|a| a.0.0));
    visit.path = format!("/instances/{id}");
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(refused) = visit.form_refused(&headers, get("csrf")) {
        return refused;
    }
    if let Some(login) = visit.login_needed() {
        return login;
    }
    let event = get("event").unwrap_or_default().to_string();
    let version: i64 = get("version").and_then(|v| v.parse().ok()).unwrap_or(-1);
    let values: BTreeMap<String, String> = form
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("input.")?.to_string(), v.clone())))
        .collect();
    let input = forms::input_json(&values, |field| {
        get(&format!("type.{field}")).unwrap_or("text").to_string()
    });
    let reason = get("reason").filter(|r| !r.trim().is_empty());
    let answer = match visit
        .run(
            &app,
            FIRE,
            json!({ "id": id, "event": event, "v": version, "input": input, "reason": reason }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["data"]["transition"].is_object() {
        return Redirect::to(&format!("/instances/{id}")).into_response();
    }
    let mut field_errors: BTreeMap<String, String> = BTreeMap::new();
    for (field, text) in answer["errors"][0]["extensions"]["details"]["fields"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| {
            let field = f["field"].as_str()?;
            let field = field.strip_prefix("input.").unwrap_or(field);
            // `indicators[1].target` is shown at `indicators`.
            let field = field.split(['.', '[']).next().unwrap_or(field).to_string();
            let msg = &f["message"];
            let text = if visit.lang == Lang::En {
                msg["en"].as_str()
            } else {
                msg["zh-CN"].as_str().or(msg["zhCn"].as_str())
            };
            Some((field, text.unwrap_or_default().to_string()))
        })
    {
        // Every bad cell of a table is named (`tasks[1].department`): all are shown.
        let all = field_errors.entry(field).or_default();
        if all.chars().count() < 2000 {
            if !all.is_empty() {
                all.push('；');
            }
            all.push_str(&text);
        }
    }
    let message = error_message(&answer, visit.lang);
    instance_page(
        &visit,
        &app,
        &id,
        Some(Refused {
            event: &event,
            message,
            values,
            errors: field_errors,
        }),
    )
    .await
}

#[derive(serde::Deserialize)]
pub(crate) struct ExtendForm {
    csrf: Option<String>,
    version: i64,
    date: String,
    reason: String,
}

/// Moves the current state's deadline (managers, with a reason), as `extendDeadline`.
pub(crate) async fn extend(
    State(app): State<AppState>,
    Path(id): Path<String>,
    mut visit: Visit,
    Form(form): Form<ExtendForm>,
) -> Response {
    visit.path = format!("/instances/{id}");
    if let Some(r) = visit.refused(form.csrf.as_deref()) {
        return r;
    }
    let answer = match visit
        .run(
            &app,
            "mutation($id: ID!, $v: Int!, $d: NaiveDate!, $r: String!) { extendDeadline(instanceId: $id, expectedVersion: $v, newDueDate: $d, reason: $r) { instance { id } } }",
            json!({ "id": id, "v": form.version, "d": form.date.trim(), "r": form.reason.trim() }),
        )
        .await
    {
        Ok(a) => a,
        Err(r) => return r,
    };
    if answer["data"]["extendDeadline"].is_object() {
        return Redirect::to(&format!("/instances/{id}")).into_response();
    }
    if error_code(&answer) == Some("NOT_FOUND") {
        return visit.not_found();
    }
    let refused = Refused {
        event: EXTEND,
        message: error_message(&answer, visit.lang),
        values: BTreeMap::new(),
        errors: BTreeMap::new(),
    };
    instance_page(&visit, &app, &id, Some(refused)).await
}
