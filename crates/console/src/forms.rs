//! Forms generated from a workflow's declared inputs: one control per input by its type
//! (options as a select, money with its unit, dates, integers), and tables for the
//! structured ones: the indicators table (绩效目标: category, name, unit, target,
//! direction, weight per row) and file references (name, SHA-256, size per row). Table
//! cells arrive as `input.<field>.<row>.<column>` and are put back together as the JSON
//! the API reads; the API checks every value and its refusals come back next to the field.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::i18n::Lang;

/// (column, zh-CN, en, options)
type Column = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

const INDICATOR_COLUMNS: &[Column] = &[
    (
        "category",
        "类别",
        "Category",
        &[
            "output_quantity",
            "output_quality",
            "output_timeliness",
            "output_cost",
            "effect_economic",
            "effect_social",
            "effect_ecological",
            "effect_sustainability",
            "satisfaction",
        ],
    ),
    ("name", "指标名称", "Indicator", &[]),
    ("unit", "计量单位", "Unit", &[]),
    ("target", "目标值", "Target", &[]),
    (
        "direction",
        "方向",
        "Direction",
        &["higher_is_better", "lower_is_better", "qualitative"],
    ),
    ("weight", "权重", "Weight", &[]),
    ("baseline", "基期值", "Baseline", &[]),
    ("baseline_year", "基期年份", "Baseline year", &[]),
    ("target_year", "目标年份", "Target year", &[]),
    ("attribute", "属性", "Attribute", &["expected", "binding"]),
    ("cumulative", "累计值", "Cumulative", &["true", "false"]),
];

/// The indicator-actuals table (绩效指标完成情况): the approved indicator's columns, then
/// what was achieved and, when it differs much from the target, why.
const ACTUAL_COLUMNS: &[Column] = &[
    ("actual", "实际完成值", "Actual", &[]),
    ("explanation", "偏差说明", "Explanation", &[]),
];

/// Whether an indicators input records actuals (`indicator_actuals`): its table adds the
/// actual and explanation columns and starts from the approved targets.
fn is_actuals(name: &str) -> bool {
    name.ends_with("actuals")
}

const FILE_COLUMNS: &[Column] = &[
    ("name", "文件名", "File name", &[]),
    ("sha256", "SHA-256", "SHA-256", &[]),
    ("size", "大小（字节）", "Size (bytes)", &[]),
];

/// The task table of the task book (任务书, seed 003): one row per task; `indicators`
/// names approved targets, separated by 、 or commas.
const TASK_COLUMNS: &[Column] = &[
    ("focus", "工作重点", "Focus", &[]),
    ("task", "具体任务", "Task", &[]),
    ("deliverable_form", "成果形式", "Deliverable form", &[]),
    ("department", "责任部门", "Department", &[]),
    ("due", "时限", "Due", &[]),
    ("indicators", "关联绩效指标", "Linked indicators", &[]),
];

/// A progress report per task (进展报告): the task's number, its status, a percentage or
/// a description.
const PROGRESS_COLUMNS: &[Column] = &[
    ("task", "任务序号", "Task no.", &[]),
    (
        "status",
        "进展状态",
        "Status",
        &["not_started", "in_progress", "completed", "delayed"],
    ),
    ("percent", "完成百分比", "Percent", &[]),
    ("description", "进展说明", "Description", &[]),
];

/// Report schedules given by name (进展报告周期); `dates` means the typed list of dates.
pub(crate) const SCHEDULE_OPTIONS: &[&str] = &["monthly", "quarterly", "half_yearly", "dates"];

/// The columns of a table-shaped input type (`name` tells an actuals table apart).
fn columns(ty: &str, name: &str) -> Option<Vec<Column>> {
    match ty {
        "tasks" => Some(TASK_COLUMNS.to_vec()),
        "task_progress" => Some(PROGRESS_COLUMNS.to_vec()),
        "indicators" if is_actuals(name) => Some(
            INDICATOR_COLUMNS
                .iter()
                .chain(ACTUAL_COLUMNS)
                .copied()
                .collect(),
        ),
        "indicators" => Some(INDICATOR_COLUMNS.to_vec()),
        "file" | "files" => Some(FILE_COLUMNS.to_vec()),
        _ => None,
    }
}

/// The words of a table or schedule option.
pub(crate) fn option_title(lang: Lang, option: &str) -> &str {
    let zh = match option {
        "not_started" => "未开始",
        "in_progress" => "进行中",
        "completed" => "已完成",
        "delayed" => "滞后",
        "monthly" => "按月",
        "quarterly" => "按季度",
        "half_yearly" => "按半年",
        "dates" => "按下列日期",
        "output_quantity" => "产出·数量",
        "output_quality" => "产出·质量",
        "output_timeliness" => "产出·时效",
        "output_cost" => "产出·成本",
        "effect_economic" => "效益·经济",
        "effect_social" => "效益·社会",
        "effect_ecological" => "效益·生态",
        "effect_sustainability" => "效益·可持续",
        "satisfaction" => "满意度",
        "higher_is_better" => "越高越好",
        "lower_is_better" => "越低越好",
        "qualitative" => "定性",
        "expected" => "预期性",
        "binding" => "约束性",
        "true" => "是（括号内为累计值）",
        "false" => "否",
        other => other,
    };
    if lang == Lang::En { option } else { zh }
}

/// The form values of an input from the instance's data (what is already filled in). An
/// actuals table not yet filled in starts from the targets fixed at approval (else the
/// ones applied for), so the unit only types what was achieved.
pub(crate) fn values_from_data(ty: &str, name: &str, data: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut v = &data[name];
    if ty == "indicators" && is_actuals(name) && v.as_array().is_none_or(Vec::is_empty) {
        v = ["approved_indicators", "indicators"]
            .into_iter()
            .map(|k| &data[k])
            .find(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            .unwrap_or(&Value::Null);
    }
    // A progress report not yet made starts with one row per task of the task book.
    let from_tasks;
    if ty == "task_progress" && v.as_array().is_none_or(Vec::is_empty) {
        from_tasks = Value::Array(
            data["tasks"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, _)| json!({ "task": i + 1 }))
                .collect(),
        );
        v = &from_tasks;
    }
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join("、"),
        other => other.to_string(),
    };
    if ty == "report_schedule" {
        match v {
            Value::Array(_) => {
                out.insert(name.to_string(), "dates".to_string());
                out.insert(format!("{name}.dates"), scalar(v).replace('、', ", "));
            }
            Value::Null => {}
            other => {
                out.insert(name.to_string(), scalar(other));
            }
        }
        return out;
    }
    match columns(ty, name) {
        Some(cols) => {
            let rows: Vec<Value> = match v {
                Value::Array(a) => a.clone(),
                Value::Object(_) => vec![v.clone()],
                _ => Vec::new(),
            };
            for (r, row) in rows.iter().enumerate() {
                for (c, ..) in &cols {
                    out.insert(format!("{name}.{r}.{c}"), scalar(&row[*c]));
                }
            }
        }
        None if !v.is_null() => {
            out.insert(name.to_string(), scalar(v));
        }
        None => {}
    }
    out
}

/// A stored indicators value (targets, approved targets or actuals) as a read-only table
/// in the provincial shape: every column with its title, options in words, a cumulative
/// value in brackets as the table writes it. `None` when `value` holds no rows.
pub(crate) fn indicator_table(lang: Lang, name: &str, value: &Value) -> Option<Value> {
    let rows = value.as_array().filter(|a| !a.is_empty())?;
    let cols = columns("indicators", name)?;
    let cell = |row: &Value, c: &str| -> String {
        let v = &row[c];
        let text = match v {
            Value::Null => String::new(),
            Value::String(s) => option_title(lang, s).to_string(),
            Value::Bool(b) => option_title(lang, if *b { "true" } else { "false" }).to_string(),
            other => other.to_string(),
        };
        let cumulative = row["cumulative"] == Value::Bool(true);
        if cumulative && matches!(c, "target" | "actual") && !text.is_empty() {
            format!("({text})")
        } else {
            text
        }
    };
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| json!(cols.iter().map(|(c, ..)| cell(row, c)).collect::<Vec<_>>()))
        .collect();
    let titles: Vec<&str> = cols
        .iter()
        .map(|(_, zh, en, _)| if lang == Lang::En { *en } else { *zh })
        .collect();
    Some(json!({ "columns": titles, "rows": rows }))
}

/// The table of a table-shaped input, as the template draws it: the columns, then rows
/// of cells (the typed or stored rows and enough empty ones to add more).
pub(crate) fn grid(
    lang: Lang,
    ty: &str,
    name: &str,
    values: &BTreeMap<String, String>,
) -> Option<Value> {
    let cols = columns(ty, name)?;
    let prefix = format!("{name}.");
    let filled = values
        .keys()
        .filter_map(|k| {
            k.strip_prefix(&prefix)?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .map(|r| r + 1)
        .max()
        .unwrap_or(0);
    let n = if ty == "file" {
        1
    } else {
        (filled + 2).clamp(3, 50)
    };
    let rows: Vec<Value> = (0..n)
        .map(|r| {
            let cells: Vec<Value> = cols
                .iter()
                .map(|(c, zh, en, options)| {
                    let options: Vec<Value> = options
                        .iter()
                        .map(|o| json!({ "value": o, "title": option_title(lang, o) }))
                        .collect();
                    json!({
                        "name": format!("{name}.{r}.{c}"),
                        "label": format!("{} {}", if lang == Lang::En { en } else { zh }, r + 1),
                        "value": values.get(&format!("{name}.{r}.{c}")).cloned().unwrap_or_default(),
                        "options": options,
                        "input_type": if *c == "due" { "date" } else if matches!(*c, "task" | "percent") && ty == "task_progress" { "number" } else { "text" },
                    })
                })
                .collect();
            json!(cells)
        })
        .collect();
    let titles: Vec<&str> = cols
        .iter()
        .map(|(_, zh, en, _)| if lang == Lang::En { *en } else { *zh })
        .collect();
    Some(json!({ "columns": titles, "rows": rows }))
}

/// The JSON of every input of a posted form: `values` are the fields without their
/// `input.` prefix, `ty` gives each field's declared type. Empty inputs and empty table
/// rows are left out (the API names a required one that is missing).
pub(crate) fn input_json(
    values: &BTreeMap<String, String>,
    ty: impl Fn(&str) -> String,
) -> Map<String, Value> {
    let mut out = Map::new();
    let mut tables: BTreeMap<String, BTreeMap<usize, Map<String, Value>>> = BTreeMap::new();
    let mut dates: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (k, v) in values {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let mut parts = k.splitn(3, '.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(field), Some("dates"), None) => {
                let list = v
                    .split([',', '，', '、', ';', '；', ' ', '\n'])
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .take(100)
                    .map(|d| json!(d))
                    .collect();
                dates.insert(field.to_string(), list);
            }
            (Some(field), Some(row), Some(col)) => {
                let Ok(row) = row.parse::<usize>() else {
                    continue;
                };
                if row >= 50 {
                    continue;
                }
                let table_ty = ty(field);
                let cell = match col {
                    "indicators" if table_ty == "tasks" => Value::Array(
                        v.split([',', '，', '、', ';', '；'])
                            .map(str::trim)
                            .filter(|n| !n.is_empty())
                            .take(50)
                            .map(|n| json!(n))
                            .collect(),
                    ),
                    "task" | "percent" if table_ty == "task_progress" => {
                        v.parse::<i64>().map_or_else(|_| json!(v), Value::from)
                    }
                    "cumulative" => v.parse::<bool>().map_or_else(|_| json!(v), Value::from),
                    "target" | "weight" | "size" | "baseline" | "baseline_year" | "target_year"
                    | "actual" => v.parse::<f64>().map_or_else(
                        |_| json!(v),
                        |n| {
                            if n.fract() == 0.0 && n.abs() < 1e15 {
                                json!(n as i64)
                            } else {
                                json!(n)
                            }
                        },
                    ),
                    _ => json!(v),
                };
                tables
                    .entry(field.to_string())
                    .or_default()
                    .entry(row)
                    .or_default()
                    .insert(col.to_string(), cell);
            }
            (Some(field), None, None) => {
                out.insert(field.to_string(), typed(&ty(field), v));
            }
            _ => {}
        }
    }
    for (field, list) in dates {
        if !list.is_empty() && out.get(&field).is_none_or(|v| v == "dates") {
            out.insert(field, Value::Array(list));
        }
    }
    if let Some((field, _)) = out.iter().find(|(_, v)| *v == "dates") {
        // 按下列日期 without dates: left for the API to name as missing.
        let field = field.clone();
        out.remove(&field);
    }
    for (field, rows) in tables {
        let rows: Vec<Value> = rows.into_values().map(Value::Object).collect();
        let value = if ty(&field) == "file" {
            rows.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(rows)
        };
        out.insert(field, value);
    }
    out
}

/// A form value as JSON by its declared type: integers and booleans as themselves,
/// indicator tables and file references typed as JSON text parsed, everything else as
/// text (money too: the API reads amounts exactly from text). The API checks every value.
pub(crate) fn typed(ty: &str, value: &str) -> Value {
    let v = value.trim();
    let parsed = match ty {
        "integer" => v.parse::<i64>().ok().map(Value::from),
        "boolean" => v.parse::<bool>().ok().map(Value::from),
        "indicators" | "file" | "files" => serde_json::from_str(v).ok(),
        _ => None,
    };
    parsed.unwrap_or_else(|| json!(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_take_their_declared_types() {
        assert_eq!(typed("integer", "42"), json!(42));
        assert_eq!(typed("boolean", "true"), json!(true));
        assert_eq!(typed("indicators", "[{\"a\":1}]"), json!([{ "a": 1 }]));
        assert_eq!(typed("money", "250000"), json!("250000"));
        assert_eq!(typed("text", "12"), json!("12"));
        assert_eq!(
            typed("integer", "twelve"),
            json!("twelve"),
            "left for the API to refuse"
        );
    }

    #[test]
    fn table_cells_become_rows_and_empty_rows_are_dropped() {
        let values: BTreeMap<String, String> = [
            ("indicators.0.name", "专利导航报告"),
            ("indicators.0.category", "output_quantity"),
            ("indicators.0.target", "5"),
            ("indicators.0.weight", "0.5"),
            ("indicators.1.name", ""),
            ("indicators.2.name", "满意度"),
            ("indicators.2.target", "高"),
            ("files.0.name", "申报书.pdf"),
            ("files.0.size", "2048"),
            ("budget", " 300000 "),
            ("indicators.99.name", "ignored"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ty = |f: &str| match f {
            "indicators" => "indicators".to_string(),
            "files" => "files".to_string(),
            _ => "money".to_string(),
        };
        let input = input_json(&values, ty);
        assert_eq!(input["budget"], json!("300000"));
        assert_eq!(
            input["indicators"],
            json!([
                { "name": "专利导航报告", "category": "output_quantity", "target": 5, "weight": 0.5 },
                { "name": "满意度", "target": "高" }
            ])
        );
        assert_eq!(
            input["files"],
            json!([{ "name": "申报书.pdf", "size": 2048 }])
        );
    }

    #[test]
    fn stored_data_fills_the_form_and_the_table_has_room_to_add() {
        let data =
            json!({ "budget": "300000.00", "indicators": [{ "name": "报告", "target": 5 }] });
        let v = values_from_data("indicators", "indicators", &data);
        assert_eq!(v["indicators.0.target"], "5");
        let g = grid(Lang::ZhCn, "indicators", "indicators", &v).unwrap();
        assert_eq!(g["rows"].as_array().unwrap().len(), 3);
        assert_eq!(g["rows"][0][1]["value"], "报告");
        assert_eq!(g["rows"][0][0]["options"][0]["title"], "产出·数量");
        assert_eq!(
            values_from_data("money", "budget", &data)["budget"],
            "300000.00"
        );
        assert!(grid(Lang::En, "money", "budget", &v).is_none());
    }

    #[test]
    fn the_actuals_table_starts_from_the_approved_targets_and_types_its_cells() {
        let data = json!({ "approved_indicators": [
            { "name": "服务企业数量", "category": "output_quantity", "target": 120, "baseline": 40,
              "target_year": 2025, "attribute": "binding", "cumulative": false }
        ] });
        let v = values_from_data("indicators", "indicator_actuals", &data);
        assert_eq!(v["indicator_actuals.0.name"], "服务企业数量");
        assert_eq!(v["indicator_actuals.0.baseline"], "40");
        assert_eq!(v["indicator_actuals.0.attribute"], "binding");
        assert_eq!(v["indicator_actuals.0.actual"], "");
        let g = grid(Lang::ZhCn, "indicators", "indicator_actuals", &v).unwrap();
        let columns = g["columns"].as_array().unwrap();
        assert_eq!(columns.len(), 13, "{columns:?}");
        assert_eq!(columns[11], "实际完成值");
        // Targets tables do not get the actual column.
        let g = grid(Lang::ZhCn, "indicators", "indicators", &BTreeMap::new()).unwrap();
        assert_eq!(g["columns"].as_array().unwrap().len(), 11);

        let mut typed_in = v;
        typed_in.insert("indicator_actuals.0.actual".into(), "130".into());
        typed_in.insert("indicator_actuals.0.cumulative".into(), "true".into());
        let input = input_json(&typed_in, |_| "indicators".to_string());
        let row = &input["indicator_actuals"][0];
        assert_eq!(row["actual"], json!(130));
        assert_eq!(row["baseline"], json!(40));
        assert_eq!(row["target_year"], json!(2025));
        assert_eq!(row["cumulative"], json!(true));
        assert_eq!(row["attribute"], json!("binding"));
    }

    #[test]
    fn task_book_tables_and_the_schedule_take_their_shapes() {
        let values: BTreeMap<String, String> = [
            ("tasks.0.focus", "平台建设"),
            ("tasks.0.due", "2025-06-30"),
            ("tasks.0.indicators", "服务企业数量、带动就业"),
            ("progress.0.task", "1"),
            ("progress.0.status", "in_progress"),
            ("progress.0.percent", "40"),
            ("report_schedule", "dates"),
            ("report_schedule.dates", "2025-03-31, 2025-06-30"),
            ("other_schedule", "quarterly"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ty = |f: &str| match f {
            "tasks" => "tasks".to_string(),
            "progress" => "task_progress".to_string(),
            _ => "report_schedule".to_string(),
        };
        let input = input_json(&values, ty);
        assert_eq!(
            input["tasks"],
            json!([{ "focus": "平台建设", "due": "2025-06-30", "indicators": ["服务企业数量", "带动就业"] }])
        );
        assert_eq!(
            input["progress"],
            json!([{ "task": 1, "status": "in_progress", "percent": 40 }])
        );
        assert_eq!(
            input["report_schedule"],
            json!(["2025-03-31", "2025-06-30"])
        );
        assert_eq!(input["other_schedule"], json!("quarterly"));

        // A progress report starts with one row per task; a stored schedule of dates
        // comes back as the dates option and its list.
        let data = json!({ "tasks": [{ "focus": "a" }, { "focus": "b" }], "report_schedule": ["2025-03-31"] });
        let v = values_from_data("task_progress", "progress", &data);
        assert_eq!(v["progress.1.task"], "2");
        let g = grid(Lang::ZhCn, "task_progress", "progress", &v).unwrap();
        assert_eq!(g["rows"][0][1]["options"][1]["title"], "进行中");
        let s = values_from_data("report_schedule", "report_schedule", &data);
        assert_eq!(s["report_schedule"], "dates");
        assert_eq!(s["report_schedule.dates"], "2025-03-31");
        let t = values_from_data(
            "tasks",
            "tasks",
            &json!({ "tasks": [{ "indicators": ["甲", "乙"] }] }),
        );
        assert_eq!(t["tasks.0.indicators"], "甲、乙");
    }
}
