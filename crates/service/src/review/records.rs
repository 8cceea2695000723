//! Records of the store ↔ the review crate's types: round keys, lifecycles, categories,
//! applications and the aggregate evaluation of a round.

use super::*;

/// The review crate's round id of one cycle.
pub fn round_key(round_id: &str, cycle: i64) -> String {
    format!("{round_id}#{cycle}")
}

pub(super) fn actor_json(kind: &str, id: Option<&str>) -> Value {
    match (kind, id) {
        ("system", _) | (_, None) => json!({ "kind": "system" }),
        (kind, Some(id)) => json!({ "kind": kind, "id": id }),
    }
}

/// The lifecycle assignment a stored record describes.
pub fn lifecycle(rec: &AssignmentRecord) -> ReviewResultOf<Assignment> {
    let versions: Vec<Value> = rec
        .submissions
        .iter()
        .map(|s| json!({ "version": s.version, "submitted_at": s.submitted_at, "card": s.card }))
        .collect();
    let log: Vec<Value> = rec
        .events
        .iter()
        .map(|e| {
            let mut entry = json!({
                "at": e.at,
                "actor": actor_json(&e.actor_kind, e.actor_id.as_deref()),
                "action": e.action,
                "from": e.from_state,
                "to": e.to_state,
            });
            if let Some(r) = &e.reason {
                entry["reason"] = Value::from(r.clone());
            }
            entry
        })
        .collect();
    let value = json!({
        "round_id": round_key(&rec.round_id, rec.cycle),
        "application_id": rec.instance_id.to_string(),
        "expert_id": rec.expert_id.to_string(),
        "state": rec.state,
        "assigned_at": rec.assigned_at,
        "versions": versions,
        "log": log,
    });
    serde_json::from_value(value).map_err(|e| {
        ReviewServiceError::from(StoreError::Backend(format!(
            "assignment {} does not read back: {e}",
            rec.id
        )))
    })
}

/// The events `after` logged beyond `before`, ready to store.
pub(super) fn new_events(before: &Assignment, after: &Assignment) -> Vec<NewAssignmentEvent> {
    after.log()[before.log().len()..]
        .iter()
        .map(|entry| {
            let v = serde_json::to_value(entry).unwrap_or(Value::Null);
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            NewAssignmentEvent {
                at: entry.at,
                actor_kind: v["actor"]["kind"].as_str().unwrap_or("system").to_string(),
                actor_id: v["actor"]["id"].as_str().map(str::to_string),
                action: text("action"),
                from_state: text("from"),
                to_state: text("to"),
                reason: entry.reason.clone(),
            }
        })
        .collect()
}

pub(super) fn state_name(state: AssignmentState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(super) fn uuid_of(text: &str) -> ReviewResultOf<Uuid> {
    Uuid::parse_str(text)
        .map_err(|_| ReviewServiceError::from(StoreError::Backend(format!("bad id `{text}`"))))
}

/// The call category of an instance: its `data.category` when that names one of the
/// eight (a number 1–8, a Chinese numeral 一–八, or the category's title).
pub fn instance_category(data: &Value) -> Option<Category> {
    let v = data.get("category")?;
    if let Some(n) = v.as_u64() {
        return u8::try_from(n).ok().and_then(|n| Category::new(n).ok());
    }
    let text = v.as_str()?.trim();
    let text = text
        .trim_start_matches('第')
        .trim_end_matches('类')
        .trim_end_matches("大类")
        .trim();
    if let Ok(n) = text.parse::<u8>() {
        return Category::new(n).ok();
    }
    const NUMERALS: [&str; 8] = ["一", "二", "三", "四", "五", "六", "七", "八"];
    if let Some(i) = NUMERALS.iter().position(|n| *n == text) {
        return Category::new(i as u8 + 1).ok();
    }
    Category::ALL
        .into_iter()
        .find(|c| c.title().zh_cn == text || c.title().en.eq_ignore_ascii_case(text))
}

pub(super) fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => s
            .split([',', '，', '、', ';', '；'])
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

/// The call an instance belongs to (`data.call_id`), or a call of its own.
pub fn call_of(instance: &Instance) -> String {
    instance
        .data
        .get("call_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("instance:{}", instance.id))
}

/// An instance as the review crate sees an application. Without a category the
/// application gets category 1 and the draw ignores categories (see [`Reviews::context`]).
pub fn application_of(instance: &Instance, excluded: &[Uuid]) -> Application {
    let mut participants = vec![instance.created_by.to_string()];
    participants.extend(string_list(
        instance.data.get("participant_ids").unwrap_or(&Value::Null),
    ));
    Application {
        id: instance.id.to_string(),
        call_id: call_of(instance),
        applicant_org_id: instance.org_id.to_string(),
        category: instance_category(&instance.data).unwrap_or(Category::ALL[0]),
        keywords: string_list(instance.data.get("keywords").unwrap_or(&Value::Null)),
        excluded_org_ids: excluded.iter().map(Uuid::to_string).collect(),
        participant_ids: participants,
    }
}

/// The outcome of a round as it stands: every counted submission (`full`), and the
/// result that counts for guards (`counted`): outliers without a justification are left
/// out until their expert justifies them.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub full: ReviewResult,
    pub counted: ReviewResult,
    pub submissions: Vec<ExpertSubmission>,
}

impl Evaluation {
    /// Experts whose outlying total still waits for a justification.
    pub fn pending(&self) -> Vec<&str> {
        self.full
            .pending_justifications()
            .into_iter()
            .map(|o| o.expert_id.as_str())
            .collect()
    }
}

/// Aggregates a round's records by the round's rules.
pub fn evaluate(def: &ReviewRoundDef, records: &RoundRecords) -> Evaluation {
    let key = round_key(&records.round_id, records.cycle);
    let application_id = records.instance_id.to_string();
    let lifecycles: Vec<Assignment> = records
        .assignments
        .iter()
        .filter_map(|r| lifecycle(r).ok())
        .collect();
    let submissions = final_submissions(&lifecycles, &key, &application_id);
    let justifications: Vec<OutlierJustification> = records
        .assignments
        .iter()
        .flat_map(|r| {
            r.justifications.iter().map(|j| OutlierJustification {
                application_id: application_id.clone(),
                expert_id: r.expert_id.to_string(),
                version: j.version,
                text: j.text.clone(),
                written_at: j.written_at,
            })
        })
        .collect();
    let full = aggregate_application(def, &application_id, &submissions, &justifications);
    let pending: BTreeSet<String> = full
        .pending_justifications()
        .iter()
        .map(|o| o.expert_id.clone())
        .collect();
    let counted = if pending.is_empty() {
        full.clone()
    } else {
        let kept: Vec<ExpertSubmission> = submissions
            .iter()
            .filter(|s| !pending.contains(&s.expert_id))
            .cloned()
            .collect();
        aggregate_application(def, &application_id, &kept, &justifications)
    };
    Evaluation {
        full,
        counted,
        submissions,
    }
}

/// What the store writes as `review`: the counted result, in the shape guards read.
pub(super) fn recompute(def: ReviewRoundDef) -> impl Fn(&RoundRecords) -> Value + Send + Sync {
    move |records: &RoundRecords| evaluate(&def, records).counted.guard_json()
}
