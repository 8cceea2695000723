//! Conflict of interest (回避): when an expert must not review an application.
//!
//! Two sources: rules computed from the records ([`conflicts`]) and conflicts the experts
//! declare themselves ([`DeclaredConflict`], [`declared_conflicts`]). Assignment uses both
//! through [`all_conflicts`].

use std::collections::BTreeSet;

use chrono::{DateTime, Months, NaiveDate, Utc};
use grantflow_domain::Lang;
use serde::{Deserialize, Serialize};

use crate::error::ReviewError;
use crate::expert::{Category, Expert, ReviewPolicy};
use crate::{ApplicationId, CallId, ExpertId, OrgId, PersonId};

/// An application (申报) as expert review sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    pub id: ApplicationId,
    pub call_id: CallId,
    /// The applicant unit (申报单位).
    pub applicant_org_id: OrgId,
    pub category: Category,
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Organisations whose experts the applicant asked to exclude (申请回避单位); at most
    /// [`ReviewPolicy::max_excluded_orgs`].
    #[serde(default)]
    pub excluded_org_ids: Vec<OrgId>,
    /// Person ids of everyone taking part: project leader, applicant contact, members.
    #[serde(default)]
    pub participant_ids: Vec<PersonId>,
}

/// Checks an application at submission: the exclusion list must not be longer than the
/// policy allows.
pub fn validate_application(
    application: &Application,
    policy: &ReviewPolicy,
) -> Result<(), ReviewError> {
    let count = application.excluded_org_ids.len();
    if count > policy.max_excluded_orgs {
        return Err(ReviewError::TooManyExcludedOrgs {
            count,
            limit: policy.max_excluded_orgs,
        });
    }
    Ok(())
}

/// Why an expert conflicts with an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConflictReason {
    /// The expert works for the applicant unit.
    SameOrganisation { org_id: OrgId },
    /// The applicant asked to exclude the expert's organisation.
    ExcludedByApplicant { org_id: OrgId },
    /// The expert collaborated with the applicant unit recently: the collaboration ended
    /// `until` and stays a conflict through `recent_until`.
    RecentCollaboration {
        org_id: OrgId,
        until: NaiveDate,
        recent_until: NaiveDate,
    },
    /// The expert takes part in an application of the same call, so competes with it.
    ParticipantInSameCall { application_id: ApplicationId },
    /// The expert declared the conflict.
    Declared { reason: String },
}

impl ConflictReason {
    pub fn code(&self) -> &'static str {
        match self {
            Self::SameOrganisation { .. } => "CONFLICT_SAME_ORGANISATION",
            Self::ExcludedByApplicant { .. } => "CONFLICT_EXCLUDED_BY_APPLICANT",
            Self::RecentCollaboration { .. } => "CONFLICT_RECENT_COLLABORATION",
            Self::ParticipantInSameCall { .. } => "CONFLICT_PARTICIPANT_IN_CALL",
            Self::Declared { .. } => "CONFLICT_DECLARED",
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (Self::SameOrganisation { org_id }, Lang::ZhCn) => {
                format!("专家与申报单位同属一个单位（{org_id}）")
            }
            (Self::SameOrganisation { org_id }, Lang::En) => {
                format!("the expert works for the applicant unit ({org_id})")
            }
            (Self::ExcludedByApplicant { org_id }, Lang::ZhCn) => {
                format!("申报单位申请回避专家所在单位（{org_id}）")
            }
            (Self::ExcludedByApplicant { org_id }, Lang::En) => {
                format!("the applicant asked to exclude the expert's organisation ({org_id})")
            }
            (
                Self::RecentCollaboration {
                    org_id,
                    recent_until,
                    ..
                },
                Lang::ZhCn,
            ) => format!("专家近期与申报单位（{org_id}）有合作关系，{recent_until} 前须回避"),
            (
                Self::RecentCollaboration {
                    org_id,
                    recent_until,
                    ..
                },
                Lang::En,
            ) => format!(
                "the expert collaborated recently with the applicant ({org_id}); recusal applies until {recent_until}"
            ),
            (Self::ParticipantInSameCall { application_id }, Lang::ZhCn) => {
                format!("专家参与了同一批次的申报（{application_id}）")
            }
            (Self::ParticipantInSameCall { application_id }, Lang::En) => {
                format!(
                    "the expert takes part in an application of the same call ({application_id})"
                )
            }
            (Self::Declared { reason }, Lang::ZhCn) => {
                format!("专家自行申报回避：{reason}")
            }
            (Self::Declared { reason }, Lang::En) => {
                format!("the expert declared a conflict: {reason}")
            }
        }
    }
}

/// The last day on which a collaboration that ended `until` still counts as recent.
/// A date beyond chrono's range counts as "forever".
fn recent_until(until: NaiveDate, policy: &ReviewPolicy) -> NaiveDate {
    until
        .checked_add_months(Months::new(policy.collaboration_window_months))
        .unwrap_or(NaiveDate::MAX)
}

/// Every rule-based conflict between `expert` and `application` on `today`.
///
/// `call_applications` are the applications of the application's call (applications of
/// other calls in the slice are ignored; the application itself need not be in it).
/// An empty result means no rule-based conflict; declared conflicts come from
/// [`declared_conflicts`]. Exclusion lists are honoured in full even if longer than the
/// policy allows: refusing the list is [`validate_application`]'s job, never a reason to
/// put a conflicting expert on a panel.
pub fn conflicts(
    expert: &Expert,
    application: &Application,
    call_applications: &[Application],
    policy: &ReviewPolicy,
    today: NaiveDate,
) -> Vec<ConflictReason> {
    let mut reasons = Vec::new();
    if expert.org_id == application.applicant_org_id {
        reasons.push(ConflictReason::SameOrganisation {
            org_id: expert.org_id.clone(),
        });
    }
    if application.excluded_org_ids.contains(&expert.org_id) {
        reasons.push(ConflictReason::ExcludedByApplicant {
            org_id: expert.org_id.clone(),
        });
    }
    for collaboration in &expert.collaborations {
        if collaboration.org_id != application.applicant_org_id {
            continue;
        }
        let last_day = recent_until(collaboration.until, policy);
        if today <= last_day {
            reasons.push(ConflictReason::RecentCollaboration {
                org_id: collaboration.org_id.clone(),
                until: collaboration.until,
                recent_until: last_day,
            });
        }
    }
    let mut seen = BTreeSet::new();
    for other in std::iter::once(application).chain(call_applications) {
        if other.call_id != application.call_id || !seen.insert(other.id.as_str()) {
            continue;
        }
        if other.participant_ids.contains(&expert.id) {
            reasons.push(ConflictReason::ParticipantInSameCall {
                application_id: other.id.clone(),
            });
        }
    }
    reasons
}

/// What a declared conflict covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConflictScope {
    /// One application, typically declared when invited ([`crate::lifecycle::Action::DeclareConflict`]).
    Application { application_id: ApplicationId },
    /// Every application of an organisation: a standing declaration in the expert's profile.
    Organisation { org_id: OrgId },
}

/// A conflict an expert declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredConflict {
    pub expert_id: ExpertId,
    pub scope: ConflictScope,
    pub reason: String,
    pub declared_at: DateTime<Utc>,
}

/// The declared conflicts of `expert_id` that cover `application`.
pub fn declared_conflicts(
    expert_id: &str,
    application: &Application,
    declared: &[DeclaredConflict],
) -> Vec<ConflictReason> {
    declared
        .iter()
        .filter(|d| d.expert_id == expert_id)
        .filter(|d| match &d.scope {
            ConflictScope::Application { application_id } => *application_id == application.id,
            ConflictScope::Organisation { org_id } => *org_id == application.applicant_org_id,
        })
        .map(|d| ConflictReason::Declared {
            reason: d.reason.clone(),
        })
        .collect()
}

/// Rule-based and declared conflicts together: what assignment checks.
pub fn all_conflicts(
    expert: &Expert,
    application: &Application,
    call_applications: &[Application],
    declared: &[DeclaredConflict],
    policy: &ReviewPolicy,
    today: NaiveDate,
) -> Vec<ConflictReason> {
    let mut reasons = conflicts(expert, application, call_applications, policy, today);
    reasons.extend(declared_conflicts(&expert.id, application, declared));
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expert::{Collaboration, ExpertStatus};

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn expert(id: &str, org: &str) -> Expert {
        Expert {
            id: id.into(),
            org_id: org.into(),
            categories: [Category::new(3).unwrap()].into(),
            keywords: vec![],
            workload_cap: 10,
            status: ExpertStatus::Active,
            collaborations: vec![],
        }
    }

    fn application(id: &str, org: &str) -> Application {
        Application {
            id: id.into(),
            call_id: "2024".into(),
            applicant_org_id: org.into(),
            category: Category::new(3).unwrap(),
            keywords: vec![],
            excluded_org_ids: vec![],
            participant_ids: vec![],
        }
    }

    #[test]
    fn unrelated_expert_has_no_conflict() {
        let e = expert("e1", "sysu");
        let a = application("a1", "scut");
        let reasons = conflicts(&e, &a, &[], &ReviewPolicy::default(), date("2024-07-01"));
        assert!(reasons.is_empty());
    }

    #[test]
    fn same_organisation_conflicts() {
        let e = expert("e1", "scut");
        let a = application("a1", "scut");
        let reasons = conflicts(&e, &a, &[], &ReviewPolicy::default(), date("2024-07-01"));
        assert_eq!(
            reasons,
            vec![ConflictReason::SameOrganisation {
                org_id: "scut".into()
            }]
        );
        assert_eq!(reasons[0].code(), "CONFLICT_SAME_ORGANISATION");
    }

    #[test]
    fn organisation_excluded_by_applicant_conflicts() {
        let e = expert("e1", "sysu");
        let mut a = application("a1", "scut");
        a.excluded_org_ids = vec!["gdut".into(), "sysu".into()];
        let reasons = conflicts(&e, &a, &[], &ReviewPolicy::default(), date("2024-07-01"));
        assert_eq!(
            reasons,
            vec![ConflictReason::ExcludedByApplicant {
                org_id: "sysu".into()
            }]
        );
    }

    #[test]
    fn exclusion_list_longer_than_policy_is_refused_at_submission() {
        let mut a = application("a1", "scut");
        a.excluded_org_ids = vec!["o1".into(), "o2".into(), "o3".into()];
        assert!(validate_application(&a, &ReviewPolicy::default()).is_ok());
        a.excluded_org_ids.push("o4".into());
        let err = validate_application(&a, &ReviewPolicy::default()).unwrap_err();
        assert_eq!(err.code(), "EXCLUDED_ORGS_TOO_MANY");
        assert!(err.message(Lang::ZhCn).contains('3'));
        let generous = ReviewPolicy {
            max_excluded_orgs: 4,
            ..ReviewPolicy::default()
        };
        assert!(validate_application(&a, &generous).is_ok());
    }

    #[test]
    fn collaboration_conflicts_until_the_window_has_passed() {
        let mut e = expert("e1", "sysu");
        e.collaborations.push(Collaboration {
            org_id: "scut".into(),
            until: date("2021-06-30"),
        });
        let a = application("a1", "scut");
        let policy = ReviewPolicy::default();
        // 36 months after 2021-06-30 is 2024-06-30: still recent that day, not the next.
        assert_eq!(
            conflicts(&e, &a, &[], &policy, date("2024-06-30")),
            vec![ConflictReason::RecentCollaboration {
                org_id: "scut".into(),
                until: date("2021-06-30"),
                recent_until: date("2024-06-30"),
            }]
        );
        assert!(conflicts(&e, &a, &[], &policy, date("2024-07-01")).is_empty());
        // A collaboration with another organisation is irrelevant.
        let other = application("a2", "gdut");
        assert!(conflicts(&e, &other, &[], &policy, date("2024-06-01")).is_empty());
    }

    #[test]
    fn participant_in_any_application_of_the_same_call_conflicts() {
        let e = expert("e1", "sysu");
        let a = application("a1", "scut");
        let mut mine = application("a2", "gdut");
        mine.participant_ids = vec!["p9".into(), "e1".into()];
        let mut other_call = application("a3", "gdut");
        other_call.call_id = "2023".into();
        other_call.participant_ids = vec!["e1".into()];
        let reasons = conflicts(
            &e,
            &a,
            &[a.clone(), mine, other_call],
            &ReviewPolicy::default(),
            date("2024-07-01"),
        );
        assert_eq!(
            reasons,
            vec![ConflictReason::ParticipantInSameCall {
                application_id: "a2".into()
            }]
        );
    }

    #[test]
    fn declared_conflicts_cover_their_application_or_organisation() {
        let a = application("a1", "scut");
        let at: DateTime<Utc> = "2024-07-01T08:00:00Z".parse().unwrap();
        let declared = vec![
            DeclaredConflict {
                expert_id: "e1".into(),
                scope: ConflictScope::Organisation {
                    org_id: "scut".into(),
                },
                reason: "前同事".into(),
                declared_at: at,
            },
            DeclaredConflict {
                expert_id: "e2".into(),
                scope: ConflictScope::Application {
                    application_id: "a9".into(),
                },
                reason: "x".into(),
                declared_at: at,
            },
        ];
        assert_eq!(declared_conflicts("e1", &a, &declared).len(), 1);
        assert!(declared_conflicts("e2", &a, &declared).is_empty());
        let e1 = expert("e1", "sysu");
        let all = all_conflicts(
            &e1,
            &a,
            &[],
            &declared,
            &ReviewPolicy::default(),
            date("2024-07-01"),
        );
        assert_eq!(all[0].code(), "CONFLICT_DECLARED");
    }
}
