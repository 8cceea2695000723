//! Conversions between the store's records and `grantflow-programme`'s types: catalogue
//! rows, indicators, demands and the instance data a demand is stored as.

use super::*;

/// The snake-case code of a serde enum (`Category::Protection` → `protection`).
pub(super) fn code_of<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(super) fn from_code<T: serde::de::DeserializeOwned>(code: &str) -> Option<T> {
    serde_json::from_value(Value::String(code.to_string())).ok()
}

/// A catalogue (the TOML format of `workflows/calls/`) as the store keeps it.
pub fn catalogue_rows(catalogue: &Catalogue) -> Vec<CallCategory> {
    catalogue
        .categories
        .iter()
        .map(|c| CallCategory {
            category: code_of(&c.category),
            title: c.title.clone(),
            policy_areas: c
                .policy_areas
                .iter()
                .map(|a| CallPolicyArea {
                    name: a.name.clone(),
                    items: a
                        .items
                        .iter()
                        .map(|i| CallItem {
                            item_id: i.id.clone(),
                            number: i.number.and_then(|n| i32::try_from(n).ok()),
                            name: i.name.clone(),
                            direction: i.direction.clone(),
                            applicant: i.applicant.clone(),
                            part: code_of(&i.part),
                            eligible: i.eligible.iter().map(|k| k.as_str().to_string()).collect(),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// A stored call's catalogue in `grantflow-programme`'s terms (to import and validate
/// demands against it).
pub fn catalogue_of(call: &Call) -> ServiceResult<Catalogue> {
    let bad = |what: &str, v: &str| {
        ServiceError::Store(StoreError::Backend(format!(
            "stored call has a bad {what} `{v}`"
        )))
    };
    let mut categories = Vec::new();
    for c in &call.categories {
        let category: Category =
            from_code(&c.category).ok_or_else(|| bad("category", &c.category))?;
        let mut areas = Vec::new();
        for a in &c.policy_areas {
            let mut items = Vec::new();
            for i in &a.items {
                let part: Part = from_code(&i.part).ok_or_else(|| bad("part", &i.part))?;
                items.push(CatalogueItem {
                    id: i.item_id.clone(),
                    number: i.number.and_then(|n| u32::try_from(n).ok()),
                    name: i.name.clone(),
                    direction: i.direction.clone(),
                    applicant: i.applicant.clone(),
                    part,
                    eligible: i
                        .eligible
                        .iter()
                        .filter_map(|k| ApplicantKind::parse(k))
                        .collect(),
                });
            }
            areas.push(PolicyArea {
                name: a.name.clone(),
                items,
            });
        }
        categories.push(CatalogueCategory {
            category,
            title: c.title.clone(),
            policy_areas: areas,
        });
    }
    Ok(Catalogue {
        year: call.year,
        title: call.title.clone(),
        issuer: call.issuer.clone(),
        issued_on: None,
        deadline: Some(call.closing_date),
        correction_window_days: u32::try_from(call.correction_window_days).ok(),
        categories,
        rules: rules_of(call),
        funding: None,
    })
}

/// A stored call's rules. A call stored before calls had rules (or whose stored rules no
/// longer read) has the documented defaults.
pub fn rules_of(call: &Call) -> CallRules {
    serde_json::from_value(call.rules.clone()).unwrap_or_default()
}

/// The indicators of workflow data (`indicators`, `approved_indicators`, `new_indicators`)
/// as `grantflow-programme` indicators. An indicator without an `id` is known by its name
/// (a second one of the same name gets `#2`). Tolerant: indicators stored before the
/// provincial table's columns (years, attribute, cumulative) read with their defaults.
pub fn indicators_from(value: Option<&Value>) -> Vec<Indicator> {
    let Some(items) = value.and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out: Vec<Indicator> = Vec::new();
    for item in items {
        let text = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let year = |k: &str| {
            item.get(k)
                .and_then(Value::as_i64)
                .and_then(|y| i32::try_from(y).ok())
        };
        let name = text("name");
        let mut id = text("id");
        if id.is_empty() {
            id = name.clone();
        }
        let mut unique = id.clone();
        let mut n = 2;
        while out.iter().any(|i| i.id == unique) {
            unique = format!("{id}#{n}");
            n += 1;
        }
        let direction: Direction =
            from_code(&text("direction")).unwrap_or(Direction::HigherIsBetter);
        let category: IndicatorCategory =
            from_code(&text("category")).unwrap_or(IndicatorCategory::OutputQuantity);
        let target = match item.get("target") {
            Some(Value::Number(n)) => IndicatorValue::Number(n.as_f64().unwrap_or(0.0)),
            Some(Value::String(s)) => IndicatorValue::Text(s.clone()),
            _ => IndicatorValue::Text(String::new()),
        };
        out.push(Indicator {
            id: unique,
            category,
            name,
            unit: text("unit"),
            baseline: item.get("baseline").and_then(Value::as_f64),
            target,
            direction,
            weight: item.get("weight").and_then(Value::as_f64).unwrap_or(1.0),
            // Absent in indicators stored before the table's shape: defaults.
            baseline_year: year("baseline_year"),
            target_year: year("target_year"),
            attribute: from_code(&text("attribute")).unwrap_or_default(),
            cumulative: item.get("cumulative").and_then(Value::as_bool) == Some(true),
        });
    }
    out
}

/// A demand instance's data as a row of the 需求征集表.
pub fn demand_of(instance: &Instance, submitter: &str) -> Demand {
    let d = &instance.data;
    let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let category = Category::from_label(&text("category")).unwrap_or(Category::ReformAndLayout);
    let catalogue_ref = text("catalogue_ref");
    Demand {
        id: Some(instance.id.to_string()),
        submitter: submitter.to_string(),
        category,
        policy_area: text("policy_area"),
        origin: if catalogue_ref.is_empty() {
            DemandOrigin::AddedRow
        } else {
            DemandOrigin::CatalogueItem {
                item_id: catalogue_ref,
            }
        },
        project_name: if text("project_name").is_empty() {
            instance.title.clone()
        } else {
            text("project_name")
        },
        direction: text("direction"),
        applicant: text("applicant_name"),
        budget: d
            .get("budget")
            .and_then(Value::as_str)
            .and_then(|b| Money::parse(b).ok()),
        performance_text: text("performance"),
        indicators: indicators_from(d.get("indicators")),
        comments: text("comments"),
        source: None,
    }
}

/// The instance data of an imported demand of `call`.
pub(super) fn demand_data(call: &Call, demand: &Demand) -> Value {
    let mut data = Map::new();
    data.insert("call_id".into(), Value::from(call.id.to_string()));
    data.insert(
        "closing_date".into(),
        Value::from(call.closing_date.to_string()),
    );
    // The city forwards by the province's closing date.
    data.insert(
        "forward_by".into(),
        Value::from(call.closing_date.to_string()),
    );
    data.insert("category".into(), Value::from(demand.category.label()));
    let mut text = |k: &str, v: &str| {
        if !v.trim().is_empty() {
            data.insert(k.into(), Value::from(v.trim()));
        }
    };
    text("policy_area", &demand.policy_area);
    if let DemandOrigin::CatalogueItem { item_id } = &demand.origin {
        text("catalogue_ref", item_id);
    }
    text("project_name", &demand.project_name);
    text("direction", &demand.direction);
    text("applicant_name", &demand.applicant);
    text("performance", &demand.performance_text);
    text("comments", &demand.comments);
    if let Some(b) = demand.budget {
        data.insert("budget".into(), Value::from(b.to_string()));
    }
    if !demand.indicators.is_empty() {
        data.insert(
            "indicators".into(),
            serde_json::to_value(&demand.indicators).unwrap_or(Value::Null),
        );
    }
    Value::Object(data)
}
