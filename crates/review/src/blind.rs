//! Blindness (盲评): what an expert may see.
//!
//! - The application itself only after declaring no conflict ([`application_view`]).
//! - In blind rounds, the application without the applicant's identity ([`redact_identity`]).
//! - Other experts' scores only once their own are submitted ([`peer_scores`]), and then
//!   without the other experts' identities.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ReviewError;
use crate::lifecycle::{Assignment, AssignmentState};
use crate::scoring::ScoreCard;

/// What replaces identifying text inside other strings of a redacted record.
pub const REDACTED: &str = "***";

/// Shortest identity value (in characters) that is also scrubbed from free text; shorter
/// values (codes like "12") would wipe unrelated text.
const MIN_SCRUB_CHARS: usize = 4;

/// The application record an expert may see on this assignment.
///
/// Refused with [`ReviewError::NoConflictNotDeclared`] before the expert declared no
/// conflict, and with [`ReviewError::ApplicationHidden`] once the expert left the panel
/// (declined, recused, overdue, replaced). In a `blind` round the identity fields are
/// redacted with [`redact_identity`].
pub fn application_view(
    assignment: &Assignment,
    blind: bool,
    record: &Value,
    identity_fields: &[&str],
) -> Result<Value, ReviewError> {
    match assignment.state() {
        AssignmentState::Assigned => Err(ReviewError::NoConflictNotDeclared),
        s if !s.may_view_application() => Err(ReviewError::ApplicationHidden { state: s }),
        _ if blind => Ok(redact_identity(record, identity_fields)),
        _ => Ok(record.clone()),
    }
}

/// Hides the applicant's identity in a JSON application record.
///
/// Each of `identity_fields` names one member by its path from the top of the record
/// (`"applicant"`, or `"data.unit"` for a member of the top-level object `data`). Only
/// those members are replaced by `null` (the key stays so a client can show that
/// something is hidden); a key of the same name deeper down is left alone, so the `unit`
/// of an indicator (件, %) survives while the applicant `unit` of the form does not.
/// Then every string value that was removed, if at least 4 characters long, is replaced
/// by [`REDACTED`] wherever it appears inside the remaining strings, so an organisation
/// named in a project description is hidden as well.
pub fn redact_identity(record: &Value, identity_fields: &[&str]) -> Value {
    let mut hidden = BTreeSet::new();
    let mut out = record.clone();
    for path in identity_fields {
        if let Some(member) = member_mut(&mut out, path) {
            collect_strings(member, &mut hidden);
            *member = Value::Null;
        }
    }
    // Longest first, so a name is not half-replaced through a shorter one it contains.
    let mut needles: Vec<String> = hidden
        .into_iter()
        .filter(|s: &String| s.chars().count() >= MIN_SCRUB_CHARS)
        .collect();
    needles.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    if !needles.is_empty() {
        scrub_strings(&mut out, &needles);
    }
    out
}

/// The member at a dotted path of object keys, if every step is an object holding it.
fn member_mut<'v>(value: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    path.split('.')
        .try_fold(value, |v, key| v.as_object_mut()?.get_mut(key))
}

fn collect_strings(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() {
                out.insert(s.to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

fn scrub_strings(value: &mut Value, needles: &[String]) {
    match value {
        Value::String(s) => {
            for needle in needles {
                if s.contains(needle.as_str()) {
                    *s = s.replace(needle.as_str(), REDACTED);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| scrub_strings(v, needles)),
        Value::Object(map) => map.values_mut().for_each(|v| scrub_strings(v, needles)),
        _ => {}
    }
}

/// Whether the expert of `assignment` may see the other experts' scores: only while their
/// own scores are submitted. A reopened expert may not, so the correction stays independent.
pub fn may_see_peer_scores(assignment: &Assignment) -> bool {
    assignment.state() == AssignmentState::Submitted
}

/// Another expert's submitted scores as a panel member sees them: numbered, not named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerScore {
    /// 1, 2, … in a stable order; shown as "专家 1 / Expert 1".
    pub peer_number: u32,
    pub card: ScoreCard,
}

/// The other experts' counted scores on the viewer's application, for the viewer.
///
/// `panel` holds the assignments of the round (others are ignored). Refused with
/// [`ReviewError::OwnScoresNotSubmitted`] unless the viewer's scores are submitted.
pub fn peer_scores(
    viewer: &Assignment,
    panel: &[Assignment],
) -> Result<Vec<PeerScore>, ReviewError> {
    if !may_see_peer_scores(viewer) {
        return Err(ReviewError::OwnScoresNotSubmitted);
    }
    let mut others: Vec<&Assignment> = panel
        .iter()
        .filter(|a| {
            a.round_id() == viewer.round_id()
                && a.application_id() == viewer.application_id()
                && a.expert_id() != viewer.expert_id()
        })
        .collect();
    others.sort_by(|a, b| a.expert_id().cmp(b.expert_id()));
    Ok(others
        .into_iter()
        .filter_map(|a| a.final_version())
        .enumerate()
        .map(|(i, v)| PeerScore {
            peer_number: i as u32 + 1,
            card: v.card.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::tests::flat;
    use crate::lifecycle::{Action, Actor};
    use chrono::{DateTime, Utc};
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2024-07-01T00:00:00Z".parse().unwrap()
    }

    fn actor(id: &str) -> Actor {
        Actor::Expert { id: id.into() }
    }

    fn accepted(id: &str) -> Assignment {
        Assignment::new("r", "a1", id, now())
            .apply(Action::DeclareNoConflict, &actor(id), now())
            .unwrap()
    }

    fn submitted(id: &str, total: f64) -> Assignment {
        accepted(id)
            .apply(
                Action::Submit {
                    card: flat(id, total).card,
                },
                &actor(id),
                now(),
            )
            .unwrap()
    }

    fn record() -> Value {
        json!({
            "title": "知识产权质押融资服务平台建设",
            "applicant_org_name": "广州市某某知识产权运营有限公司",
            "description": "由广州市某某知识产权运营有限公司牵头，联合高校实施",
            "budget": 500000,
            "participants": [
                { "name": "张三丰", "role": "负责人", "phone": "13800000000" },
                { "name": "李四", "role": "成员", "phone": "13900000000" }
            ]
        })
    }

    #[test]
    fn blind_view_hides_named_top_level_fields_and_their_values_in_free_text() {
        let view = redact_identity(&record(), &["applicant_org_name", "participants"]);
        assert_eq!(
            view,
            json!({
                "title": "知识产权质押融资服务平台建设",
                "applicant_org_name": null,
                "description": "由***牵头，联合高校实施",
                "budget": 500000,
                "participants": null
            })
        );
        let text = view.to_string();
        assert!(!text.contains("某某"));
        assert!(!text.contains("13800000000"));
    }

    #[test]
    fn a_key_of_the_same_name_deeper_down_is_not_identity() {
        let record = json!({
            "data": {
                "unit": "广州市某某知识产权运营有限公司",
                "indicators": [{ "name": "专利质押登记", "unit": "件", "target": 60 }]
            }
        });
        let view = redact_identity(&record, &["data.unit", "data.missing", "absent.path"]);
        assert_eq!(view["data"]["unit"], Value::Null);
        assert_eq!(view["data"]["indicators"][0]["unit"], "件");
    }

    #[test]
    fn expert_sees_nothing_before_declaring_no_conflict() {
        let invited = Assignment::new("r", "a1", "e1", now());
        let err = application_view(&invited, false, &record(), &[]).unwrap_err();
        assert_eq!(err.code(), "NO_CONFLICT_NOT_DECLARED");

        let open = application_view(&accepted("e1"), false, &record(), &["name"]).unwrap();
        assert_eq!(open, record(), "non-blind rounds show the record as it is");
        let blind =
            application_view(&accepted("e1"), true, &record(), &["applicant_org_name"]).unwrap();
        assert_eq!(blind["applicant_org_name"], Value::Null);

        let recused = Assignment::new("r", "a1", "e1", now())
            .apply(
                Action::DeclareConflict {
                    reason: "亲属".into(),
                },
                &actor("e1"),
                now(),
            )
            .unwrap();
        let err = application_view(&recused, true, &record(), &[]).unwrap_err();
        assert_eq!(err.code(), "APPLICATION_HIDDEN");
    }

    #[test]
    fn peer_scores_only_after_submitting_own_and_without_names() {
        let panel = vec![
            accepted("e1"),
            submitted("e2", 80.0),
            submitted("e3", 60.0),
            Assignment::new("r", "a1", "e4", now()),
        ];
        let err = peer_scores(&panel[0], &panel).unwrap_err();
        assert_eq!(err.code(), "PEER_SCORES_HIDDEN");

        let me = submitted("e1", 70.0);
        let peers = peer_scores(&me, &panel).unwrap();
        let seen: Vec<(u32, f64)> = peers
            .iter()
            .map(|p| (p.peer_number, p.card.total()))
            .collect();
        assert_eq!(seen, vec![(1, 80.0), (2, 60.0)]);
        let json = serde_json::to_string(&peers).unwrap();
        assert!(!json.contains("e2") && !json.contains("e3"));

        let reopened = me
            .apply(
                Action::Reopen {
                    reason: "复核".into(),
                },
                &Actor::Manager { id: "m".into() },
                now(),
            )
            .unwrap();
        assert!(!may_see_peer_scores(&reopened));
    }
}
