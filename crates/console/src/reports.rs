//! The province's reports (项目统计报表) for managers, auditors and city bureaus (their
//! city): a call's report (`callSummary { report }`) or a year's (`yearReport`) as the API
//! computes them — counts by stage, approvals, disbursement, spending and execution
//! rates, grades — each broken down by city, category and part as tables and charts; the
//! indicator actuals summed by name and unit; the grades per unit (`unitGrades`); and the
//! XLSX downloads of both.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantflow_api::AppState;
use minijinja::context;
use serde_json::{Value, json};

use crate::calls::{download, percent_encode};
use crate::charts;
use crate::i18n::text;
use crate::pages::Visit;

const FIGURES: &str = r"
fragment F on ReportFigures {
  projects approved approvedAmount budgeted disbursed spent
  executionRate disbursementRate spentOfDisbursed spentOfApproved
  evaluated averageScore grades { excellent good fair poor } stages { id title count }
}
fragment R on ProgrammeReport {
  scope callIds totals { ...F }
  byCity { key label figures { ...F } }
  byCategory { key label figures { ...F } }
  byPart { key label figures { ...F } }
  indicators { name unit projects reported target actual completion }
}";

const CALLS: &str = "{ viewer { id username displayName roles } calls { id year title } }";

#[derive(serde::Deserialize)]
pub(crate) struct Scope {
    call: Option<String>,
    year: Option<String>,
}

/// What a report covers: one call, or every call of a year.
enum Of {
    Call(String),
    Year(i32),
}

impl Of {
    /// From the query string; none given: the latest year with a call.
    fn pick(scope: &Scope, calls: &[Value]) -> Option<Self> {
        if let Some(c) = scope
            .call
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            return Some(Self::Call(c.to_string()));
        }
        if let Some(y) = scope
            .year
            .as_deref()
            .map(str::trim)
            .filter(|y| !y.is_empty())
        {
            return y.parse().ok().map(Self::Year);
        }
        calls
            .iter()
            .filter_map(|c| c["year"].as_i64())
            .max()
            .and_then(|y| i32::try_from(y).ok())
            .map(Self::Year)
    }
}

/// A rate as the pages write it (one decimal); "—" when the API has none.
fn percent(rate: &Value) -> String {
    rate.as_f64()
        .map_or_else(|| "—".to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// The figures with their rates written out, for the tables.
fn shown(f: &Value) -> Value {
    let mut f = f.clone();
    for key in [
        "executionRate",
        "disbursementRate",
        "spentOfDisbursed",
        "spentOfApproved",
    ] {
        f[format!("{key}Shown")] = json!(percent(&f[key]));
    }
    f["averageShown"] = json!(
        f["averageScore"]
            .as_f64()
            .map_or_else(|| "—".to_string(), |a| format!("{a:.1}"))
    );
    f
}

fn amount(v: &Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0.0)
}

/// A breakdown's rows as chart groups (grades and spent ÷ budgeted).
fn groups(rows: &[Value]) -> Vec<charts::Group> {
    rows.iter()
        .map(|r| {
            let f = &r["figures"];
            let g = &f["grades"];
            let n = |k: &str| g[k].as_i64().unwrap_or(0);
            charts::Group {
                name: r["label"].as_str().unwrap_or("—").to_string(),
                projects: f["projects"].as_u64().unwrap_or(0) as usize,
                grades: [n("excellent"), n("good"), n("fair"), n("poor")],
                budgeted: amount(&f["budgeted"]),
                spent: amount(&f["spent"]),
            }
        })
        .collect()
}

/// One breakdown (by city, category or part): its rows for the tables and its two charts.
fn breakdown(
    visit: &Visit,
    report: &Value,
    field: &str,
    id: &str,
    title_key: &str,
) -> minijinja::Value {
    let rows: Vec<Value> = report[field].as_array().cloned().unwrap_or_default();
    let g = groups(&rows);
    let title = text(visit.lang, title_key);
    let grades_title = format!("{title} · {}", text(visit.lang, "grades"));
    let execution_title = format!("{title} · {}", text(visit.lang, "execution_rate"));
    let svg = minijinja::Value::from_safe_string;
    context! {
        id => id,
        title => title,
        rows => rows
            .iter()
            .map(|r| json!({ "key": r["key"], "label": r["label"], "figures": shown(&r["figures"]) }))
            .collect::<Vec<_>>(),
        grades_chart => (!g.is_empty())
            .then(|| svg(charts::grades(&g, &format!("report-grades-{id}"), &grades_title))),
        execution_chart => (!g.is_empty())
            .then(|| svg(charts::execution(&g, &format!("report-execution-{id}"), &execution_title))),
        grades_title => grades_title,
        execution_title => execution_title,
    }
}

pub(crate) async fn report(
    State(app): State<AppState>,
    visit: Visit,
    Query(scope): Query<Scope>,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    let answer = match visit.run(&app, CALLS, json!({})).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let viewer = &answer["data"]["viewer"];
    let calls = answer["data"]["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(of) = Of::pick(&scope, &calls) else {
        return visit.message(StatusCode::BAD_REQUEST, "error", text(visit.lang, "error"));
    };
    let (report, year, export) = match &of {
        Of::Call(id) => {
            let query = format!(
                "query($id: ID!) {{ callSummary(callId: $id) {{ call {{ year }} report {{ ...R }} }} }} {FIGURES}"
            );
            let a = match visit.run(&app, &query, json!({ "id": id })).await {
                Ok(a) => a,
                Err(r) => return r,
            };
            let s = &a["data"]["callSummary"];
            if !s["report"].is_object() {
                return visit.refusal(&a);
            }
            let year = s["call"]["year"].as_i64().unwrap_or_default();
            (
                s["report"].clone(),
                year,
                format!("call={}", percent_encode(id)),
            )
        }
        Of::Year(y) => {
            let query = format!("query($y: Int!) {{ yearReport(year: $y) {{ ...R }} }} {FIGURES}");
            let a = match visit.run(&app, &query, json!({ "y": y })).await {
                Ok(a) => a,
                Err(r) => return r,
            };
            if !a["data"]["yearReport"].is_object() {
                return visit.refusal(&a);
            }
            (
                a["data"]["yearReport"].clone(),
                i64::from(*y),
                format!("year={y}"),
            )
        }
    };
    // Grades per unit over the year's calls (for next year's budgeting).
    let units = visit
        .run(
            &app,
            "query($y: Int!) { unitGrades(year: $y) { organisationId organisationName cityName averageScore grades { excellent good fair poor } projects { title grade score } } }",
            json!({ "y": year }),
        )
        .await
        .ok()
        .and_then(|a| a["data"]["unitGrades"].as_array().cloned())
        .unwrap_or_default();
    let stages: Vec<Value> = report["totals"]["stages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let funnel_rows: Vec<(String, i64)> = stages
        .iter()
        .map(|s| {
            (
                s["title"].as_str().unwrap_or_default().to_string(),
                s["count"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let funnel = charts::funnel(&funnel_rows, text(visit.lang, "funnel"));
    let indicators: Vec<Value> = report["indicators"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|i| {
            let mut i = i.clone();
            i["completionShown"] = json!(percent(&i["completion"]));
            i
        })
        .collect();
    let breakdowns = vec![
        breakdown(&visit, &report, "byCity", "city", "by_city"),
        breakdown(&visit, &report, "byCategory", "category", "by_category"),
        breakdown(&visit, &report, "byPart", "part", "by_part"),
    ];
    let selected_call = match &of {
        Of::Call(id) => Some(id.clone()),
        Of::Year(_) => None,
    };
    visit.page(
        "reports.html",
        viewer,
        context! {
            calls => calls, selected_call => selected_call, year => year,
            scope => report["scope"].clone(), totals => shown(&report["totals"]),
            stages => stages, funnel => minijinja::Value::from_safe_string(funnel),
            breakdowns => breakdowns,
            indicators => indicators, units => units, export => export,
        },
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct ExportQuery {
    call: Option<String>,
    year: Option<i32>,
    /// `grades`: the grades per unit; anything else: the report.
    what: Option<String>,
}

/// The report (one sheet per breakdown) or the grades per unit as XLSX, as the API
/// exports them.
pub(crate) async fn export(
    State(app): State<AppState>,
    visit: Visit,
    Query(q): Query<ExportQuery>,
) -> Response {
    if let Some(login) = visit.login_needed() {
        return login;
    }
    let call = q.call.as_deref().map(str::trim).filter(|c| !c.is_empty());
    let answer = if q.what.as_deref() == Some("grades") {
        let Some(year) = q.year else {
            return visit.message(StatusCode::BAD_REQUEST, "error", text(visit.lang, "error"));
        };
        visit
            .run(
                &app,
                "query($y: Int!) { file: exportUnitGrades(year: $y, format: XLSX) { fileName mediaType contentBase64 } }",
                json!({ "y": year }),
            )
            .await
    } else {
        visit
            .run(
                &app,
                "query($c: ID, $y: Int) { file: exportReport(callId: $c, year: $y, format: XLSX) { fileName mediaType contentBase64 } }",
                json!({ "c": call, "y": if call.is_some() { None } else { q.year } }),
            )
            .await
    };
    match answer {
        Ok(a) => download(&visit, &a, "export.xlsx"),
        Err(r) => r,
    }
}
