//! Checking and normalising the input of an event against its declared fields.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::Money;
use crate::model::{FieldDef, FieldType, I18nText, InputFieldDef, WorkflowDefinition};

/// One problem with one input field. `code` is stable; the message is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: I18nText,
}

impl FieldError {
    pub fn new(
        field: &str,
        code: &'static str,
        zh: impl Into<String>,
        en: impl Into<String>,
    ) -> Self {
        Self {
            field: field.to_string(),
            code,
            message: I18nText::new(zh, en),
        }
    }
}

/// Performance indicator categories (绩效指标类别) accepted in an `indicators` value.
pub const INDICATOR_CATEGORIES: [&str; 9] = [
    "output_quantity",
    "output_quality",
    "output_timeliness",
    "output_cost",
    "effect_economic",
    "effect_social",
    "effect_ecological",
    "effect_sustainability",
    "satisfaction",
];

/// Attributes of an indicator, as the provincial indicator table writes them: 预期性
/// (expected) or 约束性 (binding).
pub const INDICATOR_ATTRIBUTES: [&str; 2] = ["expected", "binding"];

/// Directions of an indicator.
pub const INDICATOR_DIRECTIONS: [&str; 3] = ["higher_is_better", "lower_is_better", "qualitative"];

/// The effective declaration of an input: its own settings over the field's.
struct Effective<'a> {
    ty: FieldType,
    options: &'a [String],
    max_length: Option<u32>,
    min: Option<i64>,
    max: Option<i64>,
    require_groups: &'a [crate::model::IndicatorGroupName],
}

fn effective<'a>(input: &'a InputFieldDef, field: Option<&'a FieldDef>) -> Effective<'a> {
    Effective {
        ty: input.ty.or(field.map(|f| f.ty)).unwrap_or(FieldType::Text),
        options: if input.options.is_empty() {
            field.map(|f| f.options.as_slice()).unwrap_or(&[])
        } else {
            &input.options
        },
        max_length: input.max_length.or(field.and_then(|f| f.max_length)),
        min: input.min.or(field.and_then(|f| f.min)),
        max: input.max.or(field.and_then(|f| f.max)),
        require_groups: field.map(|f| f.require_groups.as_slice()).unwrap_or(&[]),
    }
}

/// Check `input` against the declared inputs; return the normalised values (money as
/// exact decimal strings, text trimmed) or every problem at once.
pub fn check_input(
    def: &WorkflowDefinition,
    declared: &[InputFieldDef],
    input: &Value,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let empty = Map::new();
    let given = match input {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => {
            return Err(vec![FieldError::new(
                "input",
                "NOT_AN_OBJECT",
                "输入必须是一个对象（字段名到值）",
                "input must be an object of field names to values",
            )]);
        }
    };
    for key in given.keys() {
        if !declared.iter().any(|d| &d.name == key) {
            let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
            errors.push(FieldError::new(
                key,
                "UNKNOWN_FIELD",
                format!("此操作不接受字段「{key}」；可用字段：{}", names.join("、")),
                format!(
                    "this event takes no field `{key}`; it takes: {}",
                    names.join(", ")
                ),
            ));
        }
    }
    let mut out = Map::new();
    for d in declared {
        let spec = effective(d, def.fields.get(&d.name));
        match given.get(&d.name) {
            None | Some(Value::Null) => {
                if d.required {
                    errors.push(FieldError::new(
                        &d.name,
                        "REQUIRED",
                        format!("必须填写「{}」", title(def, d)),
                        format!("`{}` is required", d.name),
                    ));
                }
            }
            Some(v) if matches!(spec.ty, FieldType::Tasks | FieldType::TaskProgress) => {
                let checked = match spec.ty {
                    FieldType::Tasks => crate::tasks::check_tasks(&d.name, v),
                    _ => crate::tasks::check_progress(&d.name, v),
                };
                match checked {
                    Ok(Some(v)) => {
                        out.insert(d.name.clone(), v);
                    }
                    Ok(None) => {
                        if d.required {
                            errors.push(FieldError::new(
                                &d.name,
                                "REQUIRED",
                                format!("必须填写「{}」", title(def, d)),
                                format!("`{}` is required and may not be empty", d.name),
                            ));
                        }
                    }
                    Err(e) => errors.extend(e),
                }
            }
            Some(v) => match check_value(&d.name, &spec, v) {
                Ok(Some(v)) => {
                    out.insert(d.name.clone(), v);
                }
                Ok(None) => {
                    if d.required {
                        errors.push(FieldError::new(
                            &d.name,
                            "REQUIRED",
                            format!("必须填写「{}」", title(def, d)),
                            format!("`{}` is required and may not be empty", d.name),
                        ));
                    }
                }
                Err(e) => errors.push(e),
            },
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn title(def: &WorkflowDefinition, d: &InputFieldDef) -> String {
    d.title
        .as_ref()
        .or(def.fields.get(&d.name).map(|f| &f.title))
        .map(|t| t.zh_cn.clone())
        .unwrap_or_else(|| d.name.clone())
}

fn bad(field: &str, zh: String, en: String) -> FieldError {
    FieldError::new(field, "INVALID_VALUE", zh, en)
}

/// `Ok(None)` for an empty value (empty text or list).
fn check_value(name: &str, spec: &Effective<'_>, v: &Value) -> Result<Option<Value>, FieldError> {
    match spec.ty {
        FieldType::Text => {
            let Some(s) = v.as_str() else {
                return Err(bad(
                    name,
                    format!("「{name}」应为文本"),
                    format!("`{name}` must be text"),
                ));
            };
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            if let Some(max) = spec.max_length
                && s.chars().count() > max as usize
            {
                return Err(FieldError::new(
                    name,
                    "TOO_LONG",
                    format!("「{name}」最多 {max} 个字"),
                    format!("`{name}` is longer than {max} characters"),
                ));
            }
            Ok(Some(Value::String(s.to_string())))
        }
        FieldType::Integer => {
            let Some(i) = v.as_i64() else {
                return Err(bad(
                    name,
                    format!("「{name}」应为整数"),
                    format!("`{name}` must be a whole number"),
                ));
            };
            check_range(name, i, spec.min, spec.max, &i.to_string())?;
            Ok(Some(Value::from(i)))
        }
        FieldType::Money => {
            let parsed = match v {
                // "80万元", "500元" or plain yuan.
                Value::String(s) => Money::parse_with_unit(s),
                Value::Number(n) if n.is_i64() => Money::from_yuan(n.as_i64().unwrap_or_default())
                    .ok_or(crate::money::MoneyError::Overflow(n.to_string())),
                other => Money::parse(&other.to_string()),
            };
            let m = parsed.map_err(|e| {
                let code = match e {
                    crate::money::MoneyError::Overflow(_) => e.code(),
                    _ => "INVALID_VALUE",
                };
                FieldError::new(
                    name,
                    code,
                    format!(
                        "「{name}」不是有效金额（元，最多两位小数，至多 1000000000000.00）：{e}"
                    ),
                    format!("`{name}`: {e}"),
                )
            })?;
            if m.is_negative() {
                return Err(bad(
                    name,
                    format!("「{name}」不能为负数"),
                    format!("`{name}` cannot be negative"),
                ));
            }
            if let Some(min) = spec.min
                && m < Money::from_yuan(min).unwrap_or(Money::ZERO)
            {
                return Err(out_of_range(name, &m.to_string(), spec.min, spec.max));
            }
            if let Some(max) = spec.max
                && m > Money::from_yuan(max).unwrap_or(Money::from_fen(i64::MAX))
            {
                return Err(out_of_range(name, &m.to_string(), spec.min, spec.max));
            }
            Ok(Some(Value::String(m.to_string())))
        }
        FieldType::Date => {
            let Some(text) = v.as_str() else {
                return Err(bad(
                    name,
                    format!("「{name}」应为日期，格式 YYYY-MM-DD"),
                    format!("`{name}` must be a date YYYY-MM-DD"),
                ));
            };
            // One range for every date (crate::dates): 1900-01-01 to 2200-12-31.
            match crate::dates::parse_date(text) {
                Ok(d) => Ok(Some(Value::String(d.to_string()))),
                Err(e) => Err(FieldError::new(
                    name,
                    e.code(),
                    format!("「{name}」：{}", e.message_zh()),
                    format!("`{name}`: {}", e.message_en()),
                )),
            }
        }
        FieldType::Boolean => match v {
            Value::Bool(b) => Ok(Some(Value::Bool(*b))),
            _ => Err(bad(
                name,
                format!("「{name}」应为是或否"),
                format!("`{name}` must be true or false"),
            )),
        },
        FieldType::Enum => {
            let Some(s) = v.as_str() else {
                return Err(bad(
                    name,
                    format!("「{name}」应为选项之一"),
                    format!("`{name}` must be one of the options"),
                ));
            };
            if spec.options.iter().any(|o| o == s) {
                Ok(Some(Value::String(s.to_string())))
            } else {
                Err(FieldError::new(
                    name,
                    "NOT_AN_OPTION",
                    format!("「{s}」不是「{name}」的可选值：{}", spec.options.join("、")),
                    format!(
                        "`{s}` is not an option of `{name}`: {}",
                        spec.options.join(", ")
                    ),
                ))
            }
        }
        FieldType::Indicators => {
            let checked = check_indicators(name, v)?;
            if let Some(list) = &checked {
                check_groups(name, list, spec.require_groups)?;
            }
            Ok(checked)
        }
        FieldType::Tasks => crate::tasks::check_tasks(name, v).map_err(first_error),
        FieldType::TaskProgress => crate::tasks::check_progress(name, v).map_err(first_error),
        FieldType::ReportSchedule => crate::tasks::check_schedule(name, v),
        FieldType::File => check_file(name, v).map(Some),
        FieldType::Files => {
            let Some(items) = v.as_array() else {
                return Err(bad(
                    name,
                    format!("「{name}」应为文件列表"),
                    format!("`{name}` must be a list of files"),
                ));
            };
            if items.is_empty() {
                return Ok(None);
            }
            let files = items
                .iter()
                .enumerate()
                .map(|(i, f)| check_file(&format!("{name}[{i}]"), f))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(Value::Array(files)))
        }
    }
}

fn first_error(mut errors: Vec<FieldError>) -> FieldError {
    if errors.is_empty() {
        FieldError::new("input", "INVALID_VALUE", "输入无效", "invalid input")
    } else {
        errors.swap_remove(0)
    }
}

fn check_range(
    name: &str,
    v: i64,
    min: Option<i64>,
    max: Option<i64>,
    shown: &str,
) -> Result<(), FieldError> {
    if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
        return Err(out_of_range(name, shown, min, max));
    }
    Ok(())
}

fn out_of_range(name: &str, shown: &str, min: Option<i64>, max: Option<i64>) -> FieldError {
    let range = format!(
        "{}..{}",
        min.map(|m| m.to_string()).unwrap_or_default(),
        max.map(|m| m.to_string()).unwrap_or_default()
    );
    FieldError::new(
        name,
        "OUT_OF_RANGE",
        format!("「{name}」的值 {shown} 超出允许范围 {range}"),
        format!("`{name}` = {shown} is outside {range}"),
    )
}

pub(crate) fn check_file(name: &str, v: &Value) -> Result<Value, FieldError> {
    let err = || {
        bad(
            name,
            format!("「{name}」应为文件引用 {{name, sha256, size}}"),
            format!("`{name}` must be a file reference {{name, sha256, size}}"),
        )
    };
    let obj = v.as_object().ok_or_else(err)?;
    let file_name = obj
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(err)?;
    let sha = obj
        .get("sha256")
        .and_then(Value::as_str)
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(err)?;
    let size = obj.get("size").and_then(Value::as_u64).ok_or_else(err)?;
    Ok(
        serde_json::json!({ "name": file_name.trim(), "sha256": sha.to_ascii_lowercase(), "size": size }),
    )
}

fn check_indicators(name: &str, v: &Value) -> Result<Option<Value>, FieldError> {
    let Some(items) = v.as_array() else {
        return Err(bad(
            name,
            format!("「{name}」应为绩效指标列表"),
            format!("`{name}` must be a list of indicators"),
        ));
    };
    if items.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{name}[{i}]");
        let Some(obj) = item.as_object() else {
            return Err(bad(
                &at,
                format!("第 {} 个指标应为对象", i + 1),
                format!("indicator {i} must be an object"),
            ));
        };
        let text = |k: &str| {
            obj.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let Some(ind_name) = text("name") else {
            return Err(bad(
                &at,
                format!("第 {} 个指标缺少名称", i + 1),
                format!("indicator {i} has no name"),
            ));
        };
        let category = text("category").unwrap_or("");
        if !INDICATOR_CATEGORIES.contains(&category) {
            return Err(bad(
                &at,
                format!(
                    "指标「{ind_name}」的类别「{category}」无效，应为：{}",
                    INDICATOR_CATEGORIES.join("、")
                ),
                format!(
                    "indicator `{ind_name}`: category `{category}` is not one of {}",
                    INDICATOR_CATEGORIES.join(", ")
                ),
            ));
        }
        let direction = text("direction").unwrap_or("higher_is_better");
        if !INDICATOR_DIRECTIONS.contains(&direction) {
            return Err(bad(
                &at,
                format!("指标「{ind_name}」的方向「{direction}」无效"),
                format!(
                    "indicator `{ind_name}`: direction `{direction}` is not one of {}",
                    INDICATOR_DIRECTIONS.join(", ")
                ),
            ));
        }
        let target = obj.get("target").cloned().unwrap_or(Value::Null);
        let target_ok = match direction {
            "qualitative" => target.as_str().is_some_and(|s| !s.trim().is_empty()),
            _ => target.as_f64().is_some(),
        };
        if !target_ok {
            return Err(bad(
                &at,
                format!("指标「{ind_name}」缺少目标值（定量指标为数字，定性指标为文字）"),
                format!(
                    "indicator `{ind_name}` needs a target (a number, or text when qualitative)"
                ),
            ));
        }
        check_table_shape(&at, ind_name, obj)?;
        let attribute = text("attribute").unwrap_or("expected");
        let weight = obj.get("weight").and_then(Value::as_f64).unwrap_or(1.0);
        if weight <= 0.0 {
            return Err(bad(
                &at,
                format!("指标「{ind_name}」的权重必须大于 0"),
                format!("indicator `{ind_name}`: weight must be positive"),
            ));
        }
        let mut norm = obj.clone();
        norm.insert("name".into(), Value::from(ind_name));
        norm.insert("direction".into(), Value::from(direction));
        norm.insert("weight".into(), Value::from(weight));
        norm.insert("attribute".into(), Value::from(attribute));
        let cumulative = obj.get("cumulative").and_then(Value::as_bool) == Some(true);
        norm.insert("cumulative".into(), Value::from(cumulative));
        out.push(Value::Object(norm));
    }
    Ok(Some(Value::Array(out)))
}

/// The columns of the provincial indicator table beside name, category, unit and target:
/// `baseline` (基期值, a number), `baseline_year` and `target_year` (years), `attribute`
/// (`expected` 预期性 / `binding` 约束性) and `cumulative` (the target is an increase over
/// the period, shown in brackets in the table). All optional; checked when given.
fn check_table_shape(at: &str, ind_name: &str, obj: &Map<String, Value>) -> Result<(), FieldError> {
    let given = |k: &str| obj.get(k).filter(|v| !v.is_null());
    if let Some(b) = given("baseline")
        && !b.as_f64().is_some_and(f64::is_finite)
    {
        return Err(bad(
            at,
            format!("指标「{ind_name}」的基期值应为数字"),
            format!("indicator `{ind_name}`: the baseline must be a number"),
        ));
    }
    for key in ["baseline_year", "target_year"] {
        if let Some(y) = given(key)
            && !y.as_i64().is_some_and(|y| (1949..=2200).contains(&y))
        {
            return Err(bad(
                at,
                format!("指标「{ind_name}」的 {key} 应为年份（如 2025）"),
                format!("indicator `{ind_name}`: `{key}` must be a year such as 2025"),
            ));
        }
    }
    if let (Some(b), Some(t)) = (
        given("baseline_year").and_then(Value::as_i64),
        given("target_year").and_then(Value::as_i64),
    ) && b > t
    {
        return Err(bad(
            at,
            format!("指标「{ind_name}」的基期年份 {b} 晚于目标年份 {t}"),
            format!("indicator `{ind_name}`: baseline year {b} is after target year {t}"),
        ));
    }
    if let Some(a) = given("attribute")
        && !a
            .as_str()
            .is_some_and(|a| INDICATOR_ATTRIBUTES.contains(&a))
    {
        return Err(bad(
            at,
            format!("指标「{ind_name}」的属性应为 expected（预期性）或 binding（约束性）"),
            format!("indicator `{ind_name}`: attribute must be `expected` or `binding`"),
        ));
    }
    if let Some(c) = given("cumulative")
        && !c.is_boolean()
    {
        return Err(bad(
            at,
            format!("指标「{ind_name}」的 cumulative 应为 true 或 false"),
            format!("indicator `{ind_name}`: `cumulative` must be true or false"),
        ));
    }
    Ok(())
}

/// Each required group has an indicator (e.g. 产出指标 and 效益指标, as the call requires).
fn check_groups(
    name: &str,
    list: &Value,
    required: &[crate::model::IndicatorGroupName],
) -> Result<(), FieldError> {
    let items = list.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let missing: Vec<_> = required
        .iter()
        .filter(|g| {
            !items.iter().any(|i| {
                i.get("category")
                    .and_then(Value::as_str)
                    .is_some_and(|c| c.starts_with(g.prefix()))
            })
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let zh: Vec<String> = missing.iter().map(|g| g.title().zh_cn).collect();
    let en: Vec<String> = missing.iter().map(|g| g.title().en).collect();
    Err(FieldError::new(
        name,
        "INDICATOR_GROUP_MISSING",
        format!("绩效目标须包含{}", zh.join("和")),
        format!("the performance targets must include {}", en.join(" and ")),
    ))
}

/// Whether a data value counts as present for a state's `requires`.
pub fn is_present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}
