//! The fields a refusal names (`extensions.details.fields`: a field or a criterion id, a
//! code and a message in both languages), so that a form shows each error next to its
//! field instead of only at the top.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::i18n::Lang;

/// Field → its messages (joined when a field has several), in `lang`.
pub(crate) fn field_errors(answer: &Value, lang: Lang) -> BTreeMap<String, String> {
    let mut errors: BTreeMap<String, String> = BTreeMap::new();
    for f in answer["errors"][0]["extensions"]["details"]["fields"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let Some(field) = f["field"].as_str() else {
            continue;
        };
        let msg = &f["message"];
        let text = if lang == Lang::En {
            msg["en"].as_str()
        } else {
            msg["zh-CN"].as_str().or(msg["zhCn"].as_str())
        }
        .unwrap_or_default();
        let all = errors.entry(field.to_string()).or_default();
        if !all.is_empty() {
            all.push('；');
        }
        all.push_str(text);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_named_by_the_refusal_gets_its_messages() {
        let answer = serde_json::json!({ "errors": [{ "extensions": { "details": { "fields": [
            { "field": "completion", "message": { "zh-CN": "须在 1 至 5 之间", "en": "between 1 and 5" } },
            { "field": "completion", "message": { "zh-CN": "须填写评语", "en": "needs a comment" } },
            { "field": "finance", "message": { "zh-CN": "未评分", "en": "no score" } },
        ] } } }] });
        let zh = field_errors(&answer, Lang::ZhCn);
        assert_eq!(zh["completion"], "须在 1 至 5 之间；须填写评语");
        assert_eq!(field_errors(&answer, Lang::En)["finance"], "no score");
        assert!(field_errors(&serde_json::json!({}), Lang::En).is_empty());
    }
}
