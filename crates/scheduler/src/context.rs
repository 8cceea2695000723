//! Shared pieces of email contexts: links, languages, dates as the templates show them.

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use grantflow_domain::calendar::{TIMEZONE, local_date};
use grantflow_domain::{CompiledWorkflow, I18nText};
use grantflow_mail::Lang;
use serde_json::{Value, json};
use uuid::Uuid;

/// `{public_url}/instances/{id}`.
pub(crate) fn instance_link(public_url: &str, id: Uuid) -> String {
    format!("{}/instances/{id}", public_url.trim_end_matches('/'))
}

pub(crate) fn pick(text: &I18nText, lang: Lang) -> String {
    match lang {
        Lang::ZhCn => text.zh_cn.clone(),
        Lang::En => text.en.clone(),
    }
}

/// Both languages, as `{"zh-CN": …, "en": …}`.
pub(crate) fn both(text: &I18nText) -> Value {
    json!({ "zh-CN": text.zh_cn, "en": text.en })
}

/// A localised value of a context: a string, or an object with `zh-CN` / `en`.
pub(crate) fn localised(value: &Value, lang: Lang) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m
            .get(lang.tag())
            .or_else(|| m.get("zh-CN"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The last local day on which the work may be done: a day-based deadline falls due at
/// 24:00 of that day, which is 00:00 of the next.
pub(crate) fn due_day(due_at: DateTime<Utc>) -> NaiveDate {
    let local = due_at.with_timezone(&TIMEZONE);
    if local.time() == NaiveTime::MIN {
        local.date_naive().pred_opt().unwrap_or(local.date_naive())
    } else {
        local.date_naive()
    }
}

/// The deadline as the templates' `datetime` filter should show it: the due day alone
/// for day-based deadlines (showing "00:00 of the next day" would mislead), else the
/// instant.
pub(crate) fn deadline_shown(due_at: DateTime<Utc>) -> String {
    let local = due_at.with_timezone(&TIMEZONE);
    if local.time() == NaiveTime::MIN {
        due_day(due_at).format("%Y-%m-%d").to_string()
    } else {
        rfc3339(due_at)
    }
}

/// Calendar days from today (local) to the due day; 0 on the due day.
pub(crate) fn days_left(due_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (due_day(due_at) - local_date(now)).num_days().max(0)
}

/// Calendar days past the due day; at least 1 once the deadline has passed.
pub(crate) fn days_overdue(due_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (local_date(now) - due_day(due_at)).num_days().max(1)
}

/// The title of a role in a workflow, or its id.
pub(crate) fn role_title(wf: &CompiledWorkflow, role: &str, lang: Lang) -> String {
    wf.def
        .roles
        .iter()
        .find(|r| r.id == role)
        .map(|r| pick(&r.title, lang))
        .unwrap_or_else(|| role.to_string())
}

pub(crate) fn join(items: &[String], lang: Lang) -> String {
    items.join(match lang {
        Lang::ZhCn => "、",
        Lang::En => ", ",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_day_based_deadline_is_shown_as_its_last_day() {
        // 24:00 of Friday 2025-10-10 in Shanghai.
        let due = t("2025-10-10T16:00:00Z");
        assert_eq!(deadline_shown(due), "2025-10-10");
        assert_eq!(days_left(due, t("2025-10-09T01:00:00Z")), 1);
        assert_eq!(days_left(due, t("2025-10-10T01:00:00Z")), 0);
        assert_eq!(days_overdue(due, t("2025-10-11T01:00:00Z")), 1);
        // An hour-based deadline keeps its time.
        assert_eq!(
            deadline_shown(t("2025-10-10T06:30:00Z")),
            "2025-10-10T06:30:00Z"
        );
    }
}
