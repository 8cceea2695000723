//! Task books in the province's shape (seed 003: 工作重点 / 具体任务 / 成果形式 / 责任部门 /
//! 时限) and the progress reported on them.
//!
//! Three field types use these checks: `tasks` (the rows of a task book), `task_progress`
//! (one progress report: a row per task reported on) and `report_schedule` (when reports are
//! due). Every problem of a table is reported at once, each naming its row and column
//! (`tasks[2].department`), in Chinese and English; the sizes are checked before anything
//! is copied.

use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value};

use crate::input::{FieldError, check_file};
use crate::model::{FieldType, InputFieldDef, WorkflowDefinition};

/// Most task rows in one task book.
pub const MAX_TASK_ROWS: usize = 200;
/// Most linked indicators on one task row.
pub const MAX_TASK_INDICATORS: usize = 20;
/// Most deliverable files on one progress row.
pub const MAX_DELIVERABLES: usize = 20;
/// Most dates of a schedule given as dates.
pub const MAX_SCHEDULE_DATES: usize = 60;
/// Most problems reported for one table (the rest are summarised).
pub const MAX_TABLE_ERRORS: usize = 50;

/// The columns of a task row: key, Chinese name, English name, longest text (none: a date
/// or a list), required.
pub const TASK_COLUMNS: [(&str, &str, &str, usize, bool); 6] = [
    ("focus", "工作重点", "focus", 200, true),
    ("task", "具体任务", "task", 2000, true),
    (
        "deliverable_form",
        "成果形式",
        "deliverable form",
        1000,
        true,
    ),
    (
        "department",
        "责任部门",
        "responsible department",
        200,
        true,
    ),
    ("due", "时限", "due date", 0, true),
    (
        "indicators",
        "关联绩效指标",
        "linked indicators",
        200,
        false,
    ),
];

/// Progress statuses: 未开始, 进行中, 已完成, 滞后.
pub const PROGRESS_STATUSES: [(&str, &str); 4] = [
    ("not_started", "未开始"),
    ("in_progress", "进行中"),
    ("completed", "已完成"),
    ("delayed", "滞后"),
];

/// The columns of a progress row.
pub const PROGRESS_COLUMNS: [&str; 5] =
    ["task", "status", "percent", "description", "deliverables"];
/// Longest progress description.
pub const MAX_PROGRESS_DESCRIPTION: usize = 4000;

/// Schedules given by name: 按月, 按季度, 按半年.
pub const SCHEDULE_KINDS: [(&str, &str); 3] = [
    ("monthly", "按月"),
    ("quarterly", "按季度"),
    ("half_yearly", "按半年"),
];

struct Table {
    name: String,
    errors: Vec<FieldError>,
}

impl Table {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            errors: Vec::new(),
        }
    }

    fn cell(&self, row: usize, col: &str) -> String {
        format!("{}[{row}].{col}", self.name)
    }

    fn push(&mut self, at: String, code: &'static str, zh: String, en: String) {
        if self.errors.len() < MAX_TABLE_ERRORS {
            self.errors.push(FieldError {
                field: at,
                code,
                message: crate::model::I18nText::new(zh, en),
            });
        }
    }

    fn finish(self, value: Value) -> Result<Option<Value>, Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(Some(value))
        } else {
            Err(self.errors)
        }
    }
}

fn not_a_list(name: &str, zh: &str, en: &str) -> Vec<FieldError> {
    vec![FieldError::new(
        name,
        "INVALID_VALUE",
        format!("「{name}」应为{zh}列表"),
        format!("`{name}` must be a list of {en}"),
    )]
}

fn too_many(name: &str, n: usize, max: usize, zh: &str, en: &str) -> Vec<FieldError> {
    vec![FieldError::new(
        name,
        "TOO_MANY_ROWS",
        format!("「{name}」有 {n} 行{zh}，最多 {max} 行"),
        format!("`{name}` has {n} {en}; at most {max} are accepted"),
    )]
}

/// Check and normalise the rows of a task book: each row gets its number `no` (1, 2, …).
pub fn check_tasks(name: &str, v: &Value) -> Result<Option<Value>, Vec<FieldError>> {
    let Some(rows) = v.as_array() else {
        return Err(not_a_list(name, "任务", "task rows"));
    };
    if rows.is_empty() {
        return Ok(None);
    }
    if rows.len() > MAX_TASK_ROWS {
        return Err(too_many(
            name,
            rows.len(),
            MAX_TASK_ROWS,
            "任务",
            "task rows",
        ));
    }
    let mut t = Table::new(name);
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let n = i + 1;
        let Some(obj) = row.as_object() else {
            t.push(
                format!("{name}[{i}]"),
                "INVALID_VALUE",
                format!("第 {n} 行应为对象（工作重点、具体任务、成果形式、责任部门、时限）"),
                format!(
                    "row {n} must be an object (focus, task, deliverable_form, department, due)"
                ),
            );
            continue;
        };
        for key in obj.keys() {
            if key != "no" && !TASK_COLUMNS.iter().any(|c| c.0 == key) {
                let cols: Vec<&str> = TASK_COLUMNS.iter().map(|c| c.0).collect();
                t.push(
                    t.cell(i, key),
                    "UNKNOWN_FIELD",
                    format!("第 {n} 行没有「{key}」列；可用列：{}", cols.join("、")),
                    format!(
                        "row {n}: no column `{key}`; the columns are {}",
                        cols.join(", ")
                    ),
                );
            }
        }
        let mut norm = Map::new();
        norm.insert("no".into(), Value::from(n));
        for (key, zh, en, max, required) in TASK_COLUMNS {
            let cell = obj.get(key).filter(|v| !v.is_null());
            match (key, cell) {
                (_, None) => {
                    if required {
                        t.push(
                            t.cell(i, key),
                            "REQUIRED",
                            format!("第 {n} 行「{zh}」不能为空"),
                            format!("row {n}: `{key}` ({en}) is required"),
                        );
                    }
                }
                ("due", Some(v)) => match v.as_str().map(crate::dates::parse_date) {
                    Some(Ok(d)) => {
                        norm.insert(key.into(), Value::from(d.to_string()));
                    }
                    _ => t.push(
                        t.cell(i, key),
                        "INVALID_VALUE",
                        format!("第 {n} 行「{zh}」应为日期，格式 YYYY-MM-DD"),
                        format!("row {n}: `{key}` ({en}) must be a date YYYY-MM-DD"),
                    ),
                },
                ("indicators", Some(v)) => {
                    let Some(names) = v.as_array() else {
                        t.push(
                            t.cell(i, key),
                            "INVALID_VALUE",
                            format!("第 {n} 行「{zh}」应为指标名称列表"),
                            format!("row {n}: `{key}` must be a list of indicator names"),
                        );
                        continue;
                    };
                    if names.len() > MAX_TASK_INDICATORS {
                        t.push(
                            t.cell(i, key),
                            "TOO_MANY_ROWS",
                            format!(
                                "第 {n} 行关联了 {} 个指标，最多 {MAX_TASK_INDICATORS} 个",
                                names.len()
                            ),
                            format!(
                                "row {n}: {} linked indicators; at most {MAX_TASK_INDICATORS}",
                                names.len()
                            ),
                        );
                        continue;
                    }
                    let mut list = Vec::with_capacity(names.len());
                    for (j, name_v) in names.iter().enumerate() {
                        match name_v.as_str().map(str::trim).filter(|s| !s.is_empty()) {
                            Some(s) if s.chars().count() <= max => {
                                list.push(Value::from(s));
                            }
                            _ => t.push(
                                format!("{}[{j}]", t.cell(i, key)),
                                "INVALID_VALUE",
                                format!("第 {n} 行第 {} 个关联指标应为指标名称（最多 {max} 个字）", j + 1),
                                format!("row {n}: linked indicator {j} must be an indicator name of at most {max} characters"),
                            ),
                        }
                    }
                    norm.insert(key.into(), Value::Array(list));
                }
                (_, Some(v)) => match v.as_str().map(str::trim) {
                    Some("") => t.push(
                        t.cell(i, key),
                        "REQUIRED",
                        format!("第 {n} 行「{zh}」不能为空"),
                        format!("row {n}: `{key}` ({en}) is required"),
                    ),
                    None => t.push(
                        t.cell(i, key),
                        "INVALID_VALUE",
                        format!("第 {n} 行「{zh}」应为文本"),
                        format!("row {n}: `{key}` ({en}) must be text"),
                    ),
                    Some(s) if s.chars().count() > max => t.push(
                        t.cell(i, key),
                        "TOO_LONG",
                        format!("第 {n} 行「{zh}」最多 {max} 个字"),
                        format!("row {n}: `{key}` ({en}) is longer than {max} characters"),
                    ),
                    Some(s) => {
                        norm.insert(key.into(), Value::from(s));
                    }
                },
            }
        }
        norm.entry("indicators")
            .or_insert_with(|| Value::Array(vec![]));
        out.push(Value::Object(norm));
    }
    t.finish(Value::Array(out))
}

/// Check and normalise a progress report: one row per task reported on.
pub fn check_progress(name: &str, v: &Value) -> Result<Option<Value>, Vec<FieldError>> {
    let Some(rows) = v.as_array() else {
        return Err(not_a_list(name, "任务进展", "progress rows"));
    };
    if rows.is_empty() {
        return Ok(None);
    }
    if rows.len() > MAX_TASK_ROWS {
        return Err(too_many(
            name,
            rows.len(),
            MAX_TASK_ROWS,
            "进展",
            "progress rows",
        ));
    }
    let mut t = Table::new(name);
    let mut out = Vec::with_capacity(rows.len());
    let mut seen = std::collections::BTreeSet::new();
    for (i, row) in rows.iter().enumerate() {
        let n = i + 1;
        let Some(obj) = row.as_object() else {
            t.push(
                format!("{name}[{i}]"),
                "INVALID_VALUE",
                format!("第 {n} 行应为对象（任务序号、状态、完成比例、进展说明、成果材料）"),
                format!(
                    "row {n} must be an object (task, status, percent, description, deliverables)"
                ),
            );
            continue;
        };
        for key in obj.keys() {
            if !PROGRESS_COLUMNS.contains(&key.as_str()) {
                t.push(
                    t.cell(i, key),
                    "UNKNOWN_FIELD",
                    format!(
                        "第 {n} 行没有「{key}」列；可用列：{}",
                        PROGRESS_COLUMNS.join("、")
                    ),
                    format!(
                        "row {n}: no column `{key}`; the columns are {}",
                        PROGRESS_COLUMNS.join(", ")
                    ),
                );
            }
        }
        let mut norm = Map::new();
        match obj.get("task").and_then(Value::as_u64) {
            Some(no) if (1..=MAX_TASK_ROWS as u64).contains(&no) => {
                if !seen.insert(no) {
                    t.push(
                        t.cell(i, "task"),
                        "DUPLICATE_TASK",
                        format!("第 {n} 行：任务 {no} 已在前面报告过"),
                        format!("row {n}: task {no} is reported twice"),
                    );
                }
                norm.insert("task".into(), Value::from(no));
            }
            _ => t.push(
                t.cell(i, "task"),
                "REQUIRED",
                format!("第 {n} 行须填写任务序号（任务书中的行号 1–{MAX_TASK_ROWS}）"),
                format!(
                    "row {n}: `task` must be the task's number in the task book (1–{MAX_TASK_ROWS})"
                ),
            ),
        }
        match obj.get("status").and_then(Value::as_str) {
            Some(s) if PROGRESS_STATUSES.iter().any(|p| p.0 == s) => {
                norm.insert("status".into(), Value::from(s));
            }
            _ => t.push(
                t.cell(i, "status"),
                "NOT_AN_OPTION",
                format!(
                    "第 {n} 行「状态」应为：{}",
                    PROGRESS_STATUSES
                        .iter()
                        .map(|p| format!("{}（{}）", p.0, p.1))
                        .collect::<Vec<_>>()
                        .join("、")
                ),
                format!(
                    "row {n}: `status` must be one of {}",
                    PROGRESS_STATUSES.map(|p| p.0).join(", ")
                ),
            ),
        }
        if let Some(p) = obj.get("percent").filter(|v| !v.is_null()) {
            match p.as_u64().filter(|p| *p <= 100) {
                Some(p) => {
                    norm.insert("percent".into(), Value::from(p));
                }
                None => t.push(
                    t.cell(i, "percent"),
                    "OUT_OF_RANGE",
                    format!("第 {n} 行「完成比例」应为 0 到 100 的整数"),
                    format!("row {n}: `percent` must be a whole number from 0 to 100"),
                ),
            }
        }
        if let Some(d) = obj.get("description").filter(|v| !v.is_null()) {
            match d.as_str().map(str::trim) {
                Some(s) if s.chars().count() > MAX_PROGRESS_DESCRIPTION => t.push(
                    t.cell(i, "description"),
                    "TOO_LONG",
                    format!("第 {n} 行「进展说明」最多 {MAX_PROGRESS_DESCRIPTION} 个字"),
                    format!("row {n}: `description` is longer than {MAX_PROGRESS_DESCRIPTION} characters"),
                ),
                Some(s) if !s.is_empty() => {
                    norm.insert("description".into(), Value::from(s));
                }
                Some(_) => {}
                None => t.push(
                    t.cell(i, "description"),
                    "INVALID_VALUE",
                    format!("第 {n} 行「进展说明」应为文本"),
                    format!("row {n}: `description` must be text"),
                ),
            }
        }
        let percent_given = obj.get("percent").is_some_and(|p| !p.is_null());
        if !percent_given && !norm.contains_key("description") {
            t.push(
                t.cell(i, "percent"),
                "REQUIRED",
                format!("第 {n} 行须填写「完成比例」或「进展说明」"),
                format!("row {n}: give `percent` or `description`"),
            );
        }
        let mut files = Vec::new();
        if let Some(d) = obj.get("deliverables").filter(|v| !v.is_null()) {
            match d.as_array() {
                Some(list) if list.len() > MAX_DELIVERABLES => t.push(
                    t.cell(i, "deliverables"),
                    "TOO_MANY_ROWS",
                    format!(
                        "第 {n} 行有 {} 个成果材料，最多 {MAX_DELIVERABLES} 个",
                        list.len()
                    ),
                    format!(
                        "row {n}: {} deliverables; at most {MAX_DELIVERABLES}",
                        list.len()
                    ),
                ),
                Some(list) => {
                    for (j, f) in list.iter().enumerate() {
                        match check_file(&format!("{}[{j}]", t.cell(i, "deliverables")), f) {
                            Ok(f) => files.push(f),
                            Err(e) => t.push(e.field, e.code, e.message.zh_cn, e.message.en),
                        }
                    }
                }
                None => t.push(
                    t.cell(i, "deliverables"),
                    "INVALID_VALUE",
                    format!("第 {n} 行「成果材料」应为文件列表"),
                    format!("row {n}: `deliverables` must be a list of file references"),
                ),
            }
        }
        norm.insert("deliverables".into(), Value::Array(files));
        out.push(Value::Object(norm));
    }
    t.finish(Value::Array(out))
}

/// Check a report schedule: a kind by name or a list of increasing dates.
pub fn check_schedule(name: &str, v: &Value) -> Result<Option<Value>, FieldError> {
    let kinds = || SCHEDULE_KINDS.map(|k| k.0).join(", ");
    match v {
        Value::String(s) if SCHEDULE_KINDS.iter().any(|k| k.0 == s) => Ok(Some(v.clone())),
        Value::Array(dates) => {
            if dates.is_empty() {
                return Ok(None);
            }
            if dates.len() > MAX_SCHEDULE_DATES {
                return Err(FieldError::new(
                    name,
                    "TOO_MANY_ROWS",
                    format!("「{name}」最多 {MAX_SCHEDULE_DATES} 个报告日期"),
                    format!("`{name}` has more than {MAX_SCHEDULE_DATES} dates"),
                ));
            }
            let mut out = Vec::with_capacity(dates.len());
            let mut last: Option<NaiveDate> = None;
            for (i, d) in dates.iter().enumerate() {
                let day = d.as_str().map(crate::dates::parse_date);
                match day {
                    Some(Ok(day)) if last.is_none_or(|l| l < day) => {
                        last = Some(day);
                        out.push(Value::from(day.to_string()));
                    }
                    _ => {
                        return Err(FieldError::new(
                            &format!("{name}[{i}]"),
                            "INVALID_VALUE",
                            format!("「{name}」第 {} 个日期应为 YYYY-MM-DD，且晚于前一个", i + 1),
                            format!(
                                "`{name}` date {i} must be YYYY-MM-DD and after the one before"
                            ),
                        ));
                    }
                }
            }
            Ok(Some(Value::Array(out)))
        }
        _ => Err(FieldError::new(
            name,
            "NOT_AN_OPTION",
            format!(
                "「{name}」应为 {}（按月、按季度、按半年）或报告日期列表",
                kinds()
            ),
            format!("`{name}` must be one of {} or a list of dates", kinds()),
        )),
    }
}

/// The first report date of `schedule` strictly after `after`; `None` when it would fall
/// after `end` (the end of execution: the final report is the acceptance) or the schedule
/// is not one.
pub fn next_report_due(
    schedule: &Value,
    after: NaiveDate,
    end: Option<NaiveDate>,
) -> Option<NaiveDate> {
    let next = match schedule {
        Value::String(kind) => {
            let months: u32 = match kind.as_str() {
                "monthly" => 1,
                "quarterly" => 3,
                "half_yearly" => 6,
                _ => return None,
            };
            // The period ends: the last day of every `months`-th month of the year.
            let mut year = after.year();
            let mut month = after.month().div_ceil(months) * months;
            loop {
                let last = last_day_of(year, month)?;
                if last > after {
                    break Some(last);
                }
                month += months;
                if month > 12 {
                    month -= 12;
                    year += 1;
                }
            }
        }
        Value::Array(dates) => dates
            .iter()
            .filter_map(|d| d.as_str().and_then(|d| crate::dates::parse_date(d).ok()))
            .find(|d| *d > after),
        _ => None,
    }?;
    match end {
        Some(end) if next > end => None,
        _ => Some(next),
    }
}

fn last_day_of(year: i32, month: u32) -> Option<NaiveDate> {
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()
}

/// The checks across fields of `links_to`: a task row's linked indicators are names in the
/// linked `indicators` field, a progress row's task is a row of the linked `tasks` field.
/// The linked value comes from the same input when it is given there, else from `data`.
pub fn check_links(
    def: &WorkflowDefinition,
    declared: &[InputFieldDef],
    input: &Map<String, Value>,
    data: &Value,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for d in declared {
        let Some(field) = def.fields.get(&d.name) else {
            continue;
        };
        let (Some(link), Some(value)) = (&field.links_to, input.get(&d.name)) else {
            continue;
        };
        let linked = input.get(link).or_else(|| data.get(link));
        let rows = value.as_array().map(Vec::as_slice).unwrap_or(&[]);
        match field.ty {
            FieldType::Tasks => {
                let names: Vec<&str> = linked
                    .and_then(Value::as_array)
                    .map(|l| l.iter().filter_map(|i| i.get("name")?.as_str()).collect())
                    .unwrap_or_default();
                for (i, row) in rows.iter().enumerate() {
                    let linked_names = row.get("indicators").and_then(Value::as_array);
                    for (j, n) in linked_names.into_iter().flatten().enumerate() {
                        let n = n.as_str().unwrap_or_default();
                        if !names.contains(&n) && errors.len() < MAX_TABLE_ERRORS {
                            errors.push(FieldError::new(
                                &format!("{}[{i}].indicators[{j}]", d.name),
                                "TASK_INDICATOR_UNKNOWN",
                                format!(
                                    "第 {} 行关联的指标「{n}」不在绩效目标中；可选：{}",
                                    i + 1,
                                    names.join("、")
                                ),
                                format!(
                                    "row {}: indicator `{n}` is not one of the performance targets: {}",
                                    i + 1,
                                    names.join(", ")
                                ),
                            ));
                        }
                    }
                }
            }
            FieldType::TaskProgress => {
                let count = linked.and_then(Value::as_array).map_or(0, Vec::len) as u64;
                for (i, row) in rows.iter().enumerate() {
                    let no = row.get("task").and_then(Value::as_u64).unwrap_or(0);
                    if !(1..=count).contains(&no) && errors.len() < MAX_TABLE_ERRORS {
                        errors.push(FieldError::new(
                            &format!("{}[{i}].task", d.name),
                            "TASK_UNKNOWN",
                            format!(
                                "第 {} 行：任务书中没有第 {no} 项任务（共 {count} 项）",
                                i + 1
                            ),
                            format!(
                                "row {}: the task book has no task {no} (it has {count})",
                                i + 1
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn quarterly_monthly_half_yearly_and_dates() {
        let q = json!("quarterly");
        assert_eq!(
            next_report_due(&q, d("2025-01-15"), None),
            Some(d("2025-03-31"))
        );
        assert_eq!(
            next_report_due(&q, d("2025-03-31"), None),
            Some(d("2025-06-30"))
        );
        assert_eq!(
            next_report_due(&q, d("2025-11-02"), None),
            Some(d("2025-12-31"))
        );
        assert_eq!(
            next_report_due(&q, d("2025-12-31"), None),
            Some(d("2026-03-31"))
        );
        assert_eq!(
            next_report_due(&q, d("2025-12-31"), Some(d("2026-02-01"))),
            None
        );
        let m = json!("monthly");
        assert_eq!(
            next_report_due(&m, d("2024-02-10"), None),
            Some(d("2024-02-29"))
        );
        assert_eq!(
            next_report_due(&m, d("2024-12-31"), None),
            Some(d("2025-01-31"))
        );
        let h = json!("half_yearly");
        assert_eq!(
            next_report_due(&h, d("2025-07-01"), None),
            Some(d("2025-12-31"))
        );
        let dates = json!(["2025-05-20", "2025-10-20"]);
        assert_eq!(
            next_report_due(&dates, d("2025-05-20"), None),
            Some(d("2025-10-20"))
        );
        assert_eq!(next_report_due(&dates, d("2025-10-20"), None), None);
    }

    #[test]
    fn every_bad_cell_is_named_by_row_and_column() {
        let rows = json!([
            { "focus": "知识产权保护", "task": "建设维权援助平台", "deliverable_form": "平台上线", "department": "省知识产权局", "due": "2025-06-30", "indicators": ["调解案件数"] },
            { "focus": "", "task": "x", "deliverable_form": "报告", "due": "2025-02-30", "colour": 1 },
        ]);
        let errs = check_tasks("tasks", &rows).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "tasks[1].colour",
                "tasks[1].focus",
                "tasks[1].department",
                "tasks[1].due"
            ]
        );
        assert!(errs[2].message.zh_cn.contains("第 2 行「责任部门」"));
        let ok = check_tasks("tasks", &json!([rows[0]])).unwrap().unwrap();
        assert_eq!(ok[0]["no"], 1);
        let many = Value::Array(vec![rows[0].clone(); MAX_TASK_ROWS + 1]);
        assert_eq!(
            check_tasks("tasks", &many).unwrap_err()[0].code,
            "TOO_MANY_ROWS"
        );
    }

    #[test]
    fn progress_rows() {
        let errs = check_progress(
            "progress",
            &json!([{ "task": 1, "status": "done", "percent": 120 }, { "task": 1, "status": "completed" }]),
        )
        .unwrap_err();
        let codes: Vec<&str> = errs.iter().map(|e| e.code).collect();
        assert_eq!(
            codes,
            [
                "NOT_AN_OPTION",
                "OUT_OF_RANGE",
                "DUPLICATE_TASK",
                "REQUIRED"
            ]
        );
    }
}
