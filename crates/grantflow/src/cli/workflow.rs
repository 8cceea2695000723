//! `grantflow workflow check | diagram | simulate | schema`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use grantflow_domain::calendar::{TIMEZONE, WorkCalendar};
use grantflow_domain::diagnostic::{Severity, has_errors};
use grantflow_domain::engine::{Actor, Command, Snapshot, initial_schedule, plan_transition};
use grantflow_domain::model::{FieldType, InputFieldDef, WorkflowDefinition};
use grantflow_domain::schedule::TimerPlan;
use serde_json::{Map, Value, json};

use crate::workflows::{load_calendar, load_one, load_paths};

/// Validate files or folders; returns the process exit code.
pub fn check(paths: &[PathBuf], json_output: bool) -> anyhow::Result<i32> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from("workflows")]
    } else {
        paths.to_vec()
    };
    let loaded = load_paths(&paths)?;
    // The calendar next to the workflows is checked too: operators edit it by hand.
    let mut calendar_error = None;
    for p in &paths {
        if p.is_dir() {
            let cal = p.join("calendar").join("cn-workdays.toml");
            if cal.exists()
                && let Err(e) = load_calendar(Some(&cal), p)
            {
                calendar_error = Some(format!("{e:#}"));
            }
        }
    }
    let errors = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = loaded.diagnostics.len() - errors;
    if json_output {
        let out = json!({
            "files": loaded.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "diagnostics": loaded.diagnostics,
            "calendar_error": calendar_error,
            "errors": errors,
            "warnings": warnings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for d in &loaded.diagnostics {
            println!("{d}");
        }
        if let Some(e) = &calendar_error {
            println!("error[CALENDAR]: {e}");
        }
        let ok: Vec<String> = loaded
            .registry
            .all()
            .map(|w| format!("{} v{} ({})", w.def.id, w.def.version, &w.hash[..12]))
            .collect();
        println!(
            "{} file(s) checked: {errors} error(s), {warnings} warning(s){}",
            loaded.files.len(),
            if ok.is_empty() {
                String::new()
            } else {
                format!("; valid: {}", ok.join(", "))
            }
        );
    }
    Ok(
        if has_errors(&loaded.diagnostics) || calendar_error.is_some() || loaded.files.is_empty() {
            1
        } else {
            0
        },
    )
}

/// The output of `grantflow workflow check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// One line per finding.
    Human,
    /// A JSON report.
    Json,
}

/// The output of `grantflow workflow diagram`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiagramFormat {
    /// A Mermaid flowchart.
    Mermaid,
    /// A Graphviz digraph.
    Dot,
}

pub fn diagram(file: &Path, format: DiagramFormat) -> anyhow::Result<()> {
    let wf = load_one(file)?;
    let out = match format {
        DiagramFormat::Mermaid => grantflow_domain::diagram::mermaid(&wf.def),
        DiagramFormat::Dot => grantflow_domain::diagram::dot(&wf.def),
    };
    print!("{out}");
    Ok(())
}

/// Parse `2024-06-10`, `2024-06-10T14:30` or an RFC 3339 instant; local times are
/// Asia/Shanghai.
pub fn parse_datetime(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, fmt) {
            return Ok(grantflow_domain::calendar::local_instant(
                t.date(),
                t.time(),
            ));
        }
    }
    let d = NaiveDate::parse_from_str(text, "%Y-%m-%d").with_context(|| {
        format!("`{text}` is not a date or time (use 2024-06-10, 2024-06-10T14:30 or RFC 3339)")
    })?;
    Ok(grantflow_domain::calendar::local_instant(
        d,
        chrono::NaiveTime::from_hms_opt(9, 0, 0).expect("valid time"),
    ))
}

fn local(t: DateTime<Utc>) -> String {
    let l = t.with_timezone(&TIMEZONE);
    // Day-based deadlines fall due at midnight: show them as the end of the due day.
    if l.time() == chrono::NaiveTime::MIN {
        format!(
            "{} 24:00",
            (l.date_naive() - Duration::days(1)).format("%Y-%m-%d")
        )
    } else {
        l.format("%Y-%m-%d %H:%M").to_string()
    }
}

pub struct SimulateArgs {
    pub file: PathBuf,
    pub roles: Vec<String>,
    /// `event` or `event@DATETIME`.
    pub events: Vec<String>,
    pub at: DateTime<Utc>,
    pub data: Value,
    pub inputs: Vec<(String, Value)>,
    pub review: Value,
    pub calendar: WorkCalendar,
}

/// Run events through the engine without a database and print each step.
#[allow(
    clippy::needless_pass_by_value,
    reason = "takes the parsed arguments of its command"
)]
pub fn simulate(args: SimulateArgs) -> anyhow::Result<i32> {
    let wf = load_one(&args.file)?;
    let actor = Actor {
        id: "simulator".into(),
        roles: args.roles.clone(),
        org: None,
    };
    let mut snapshot = Snapshot::initial(&wf, args.data.clone());
    snapshot.review = args.review.clone();
    let mut now = args.at;
    let (deadline, timers) = initial_schedule(&wf, &snapshot, now, &args.calendar);
    snapshot.due_at = deadline.map(|d| d.due_at);
    println!(
        "start   {}  {} in state {} ({})",
        local(now),
        wf.def.id,
        snapshot.state,
        stage_title(&wf.def, &snapshot.state)
    );
    print_schedule(deadline.map(|d| d.due_at), &timers);
    for (i, spec) in args.events.iter().enumerate() {
        let (event, when) = match spec.split_once('@') {
            Some((e, t)) => (e.trim(), Some(parse_datetime(t.trim())?)),
            None => (spec.trim(), None),
        };
        if let Some(t) = when {
            now = t;
        }
        let transition = wf
            .def
            .transitions_from(&snapshot.state)
            .find(|(_, t)| t.event == event)
            .map(|(_, t)| t.clone());
        let mut input = Map::new();
        if let Some(t) = &transition {
            for decl in t.input.iter().filter(|d| d.required) {
                input.insert(decl.name.clone(), sample_value(&wf.def, decl, now));
            }
        }
        for (e, v) in &args.inputs {
            if e == event
                && let Value::Object(m) = v
            {
                input.extend(m.clone());
            }
        }
        let reason = transition
            .as_ref()
            .filter(|t| t.reason_required)
            .map(|_| "simulated reason".to_string());
        let command = Command {
            event: event.to_string(),
            input: Value::Object(input),
            reason,
        };
        match plan_transition(&wf, &snapshot, &actor, &command, now, &args.calendar) {
            Ok(plan) => {
                println!(
                    "[{}]     {}  {event}: {} ({}) → {} ({})",
                    i + 1,
                    local(now),
                    plan.from,
                    stage_title(&wf.def, &plan.from),
                    plan.to,
                    stage_title(&wf.def, &plan.to)
                );
                for n in &plan.notifications {
                    println!("        notify {} ({})", n.roles.join(", "), n.template);
                }
                for r in &plan.open_reviews {
                    println!("        opens review round {r}");
                }
                if plan.enters_state {
                    print_schedule(plan.deadline.map(|d| d.due_at), &plan.schedule);
                }
                snapshot = Snapshot {
                    state: plan.to.clone(),
                    data: plan.data.clone(),
                    version: plan.new_version,
                    due_at: plan.deadline.map(|d| d.due_at),
                    review: snapshot.review.clone(),
                    budget: snapshot.budget.clone(),
                };
                if plan.is_final {
                    println!("        final state reached");
                }
            }
            Err(e) => {
                println!(
                    "[{}]     {}  {event}: refused [{}] {}",
                    i + 1,
                    local(now),
                    e.code(),
                    e.message().en
                );
                if let grantflow_domain::engine::EngineError::InvalidInput { errors, .. } = &e {
                    for fe in errors {
                        println!("        {}: {}", fe.field, fe.message.en);
                    }
                }
                return Ok(1);
            }
        }
    }
    Ok(0)
}

fn stage_title(def: &WorkflowDefinition, state: &str) -> String {
    def.state(state)
        .and_then(|s| def.stage(&s.stage))
        .map(|s| s.title.both())
        .unwrap_or_default()
}

fn print_schedule(due: Option<DateTime<Utc>>, timers: &[TimerPlan]) {
    if let Some(due) = due {
        println!("        deadline: due by {}", local(due));
    }
    for t in timers {
        let what = match (&t.event, t.offset.as_deref()) {
            (Some(e), _) => format!("fires {e}"),
            (None, Some(o)) => format!("{} ({o}) to {}", t.kind.as_str(), t.notify.join(", ")),
            (None, None) => format!("{} to {}", t.kind.as_str(), t.notify.join(", ")),
        };
        println!("        {}  {:<16} {what}", local(t.fire_at), t.key);
    }
}

/// A plausible value for a required input, so that a simulation can go deep.
fn sample_value(def: &WorkflowDefinition, decl: &InputFieldDef, now: DateTime<Utc>) -> Value {
    let field = def.fields.get(&decl.name);
    let ty = decl.ty.or(field.map(|f| f.ty)).unwrap_or(FieldType::Text);
    let options = if decl.options.is_empty() {
        field.map(|f| f.options.clone()).unwrap_or_default()
    } else {
        decl.options.clone()
    };
    let max = decl.max.or(field.and_then(|f| f.max));
    match ty {
        FieldType::Text => Value::from(format!("示例 {}", decl.name)),
        FieldType::Integer => Value::from(max.unwrap_or(1)),
        FieldType::Money => Value::from("100000.00"),
        FieldType::Date => Value::from(
            (grantflow_domain::calendar::local_date(now) + Duration::days(180)).to_string(),
        ),
        FieldType::Boolean => Value::Bool(true),
        FieldType::Enum => Value::from(options.first().cloned().unwrap_or_default()),
        FieldType::Indicators => json!([
            {
                "category": "output_quantity", "name": "培训人次", "unit": "人次",
                "target": 500, "direction": "higher_is_better", "weight": 1
            },
            {
                "category": "effect_social", "name": "受益企业", "unit": "家",
                "target": 50, "direction": "higher_is_better", "weight": 1
            }
        ]),
        FieldType::File => sample_file(&decl.name),
        FieldType::Files => json!([sample_file(&decl.name)]),
        FieldType::Tasks => json!([{
            "focus": "知识产权保护", "task": "开展维权援助培训", "deliverable_form": "培训记录",
            "department": "项目组", "indicators": ["培训人次"],
            "due": (grantflow_domain::calendar::local_date(now) + Duration::days(90)).to_string(),
        }]),
        FieldType::TaskProgress => {
            json!([{ "task": 1, "status": "in_progress", "percent": 50, "description": "按计划推进" }])
        }
        FieldType::ReportSchedule => Value::from("quarterly"),
    }
}

fn sample_file(name: &str) -> Value {
    json!({ "name": format!("{name}.pdf"), "sha256": "0".repeat(64), "size": 1024 })
}
