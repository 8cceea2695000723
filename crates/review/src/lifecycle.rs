//! The lifecycle of one expert's assignment to one application in one round, as a pure
//! state machine.
//!
//! ```text
//! Assigned ──declare no conflict──▶ Accepted ──submit──▶ Submitted (sealed version n)
//!    │  │                              │  │                  │  ▲
//!    │  └──declare conflict──▶ ConflictDeclared             reopen│  │submit (version n+1)
//!    │                                 │  │   (manager, reason)▼  │
//!    ├──────────decline────────────────┘  │                  Reopened
//!    ▼                                    ▼
//! Declined                              Overdue (also from Assigned)
//!
//! Declined | ConflictDeclared | Overdue ──replace──▶ Replaced
//! ```
//!
//! The expert sees the application only after declaring no conflict; every submitted version
//! is kept; every step is logged with actor, time and reason.

use chrono::{DateTime, Utc};
use grantflow_domain::{I18nText, Lang};
use serde::{Deserialize, Serialize};

use crate::conflict::{ConflictScope, DeclaredConflict};
use crate::error::ReviewError;
use crate::expert::{Expert, ReviewPolicy};
use crate::scoring::ScoreCard;
use crate::{ApplicationId, ExpertId, RoundId};

/// Where an assignment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentState {
    /// Invited; the expert has not yet declared whether they have a conflict.
    Assigned,
    /// The expert declared no conflict and may read the application and score it.
    Accepted,
    /// The expert declined.
    Declined,
    /// The expert declared a conflict and is recused (回避).
    ConflictDeclared,
    /// Scores submitted and sealed.
    Submitted,
    /// A manager reopened the submission for correction.
    Reopened,
    /// The deadline passed without a submission.
    Overdue,
    /// Another expert took the seat.
    Replaced,
}

impl AssignmentState {
    /// Whether the assignment occupies a seat on the panel and a unit of the expert's
    /// workload: everything except declined, recused and replaced ones. An overdue
    /// assignment still counts until it is replaced.
    pub fn counts_toward_load(self) -> bool {
        !matches!(
            self,
            Self::Declined | Self::ConflictDeclared | Self::Replaced
        )
    }

    /// Whether the seat must be given to another expert.
    pub fn needs_replacement(self) -> bool {
        matches!(
            self,
            Self::Declined | Self::ConflictDeclared | Self::Overdue
        )
    }

    /// Whether the expert may read the application: only after declaring no conflict and
    /// while still working on it or done with it.
    pub fn may_view_application(self) -> bool {
        matches!(self, Self::Accepted | Self::Submitted | Self::Reopened)
    }

    pub fn title(self) -> I18nText {
        let (zh, en) = match self {
            Self::Assigned => ("已分配", "assigned"),
            Self::Accepted => ("已确认无利益冲突", "accepted"),
            Self::Declined => ("已谢绝", "declined"),
            Self::ConflictDeclared => ("已申报回避", "conflict declared"),
            Self::Submitted => ("已提交", "submitted"),
            Self::Reopened => ("已退回修改", "reopened"),
            Self::Overdue => ("已逾期", "overdue"),
            Self::Replaced => ("已替换", "replaced"),
        };
        I18nText::new(zh, en)
    }
}

/// Who acts on an assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    Expert {
        id: ExpertId,
    },
    /// A programme manager (项目管理处室).
    Manager {
        id: String,
    },
    /// The scheduler, firing deadlines.
    System,
}

/// Something that happens to an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// The expert declares having no conflict (Assigned → Accepted).
    DeclareNoConflict,
    /// The expert declares a conflict and is recused (Assigned → ConflictDeclared). Reason required.
    DeclareConflict { reason: String },
    /// The expert declines (Assigned | Accepted → Declined).
    Decline { reason: Option<String> },
    /// The expert submits validated scores (Accepted | Reopened → Submitted), sealing a new version.
    Submit { card: ScoreCard },
    /// The deadline passed (Assigned | Accepted → Overdue); by the scheduler or a manager.
    MarkOverdue,
    /// A manager reopens a submission (Submitted → Reopened). Reason required.
    Reopen { reason: String },
    /// Another expert took the seat (Declined | ConflictDeclared | Overdue → Replaced);
    /// by a manager or the scheduler.
    Replace { by: ExpertId },
}

/// The kind of an [`Action`], for logs and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    DeclareNoConflict,
    DeclareConflict,
    Decline,
    Submit,
    MarkOverdue,
    Reopen,
    Replace,
}

impl ActionKind {
    pub fn title(self) -> I18nText {
        let (zh, en) = match self {
            Self::DeclareNoConflict => ("确认无利益冲突", "declare no conflict"),
            Self::DeclareConflict => ("申报回避", "declare a conflict"),
            Self::Decline => ("谢绝评审", "decline"),
            Self::Submit => ("提交评分", "submit scores"),
            Self::MarkOverdue => ("标记逾期", "mark overdue"),
            Self::Reopen => ("退回修改", "reopen"),
            Self::Replace => ("替换专家", "replace the expert"),
        };
        I18nText::new(zh, en)
    }

    pub(crate) fn name(self, lang: Lang) -> String {
        self.title().get(lang).to_string()
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Self::DeclareNoConflict => ActionKind::DeclareNoConflict,
            Self::DeclareConflict { .. } => ActionKind::DeclareConflict,
            Self::Decline { .. } => ActionKind::Decline,
            Self::Submit { .. } => ActionKind::Submit,
            Self::MarkOverdue => ActionKind::MarkOverdue,
            Self::Reopen { .. } => ActionKind::Reopen,
            Self::Replace { .. } => ActionKind::Replace,
        }
    }
}

/// A sealed submission. Versions are numbered from 1 and never change once made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmittedVersion {
    pub version: u32,
    pub submitted_at: DateTime<Utc>,
    pub card: ScoreCard,
}

/// One step in an assignment's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: ActionKind,
    pub from: AssignmentState,
    pub to: AssignmentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One expert's assignment to one application in one review round.
///
/// Change it only through [`Assignment::apply`]; fields are private so submitted versions
/// stay sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    round_id: RoundId,
    application_id: ApplicationId,
    expert_id: ExpertId,
    state: AssignmentState,
    assigned_at: DateTime<Utc>,
    versions: Vec<SubmittedVersion>,
    log: Vec<LogEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replaced_by: Option<ExpertId>,
}

impl Assignment {
    /// A new assignment in state `Assigned`.
    pub fn new(
        round_id: impl Into<String>,
        application_id: impl Into<String>,
        expert_id: impl Into<String>,
        assigned_at: DateTime<Utc>,
    ) -> Self {
        Self {
            round_id: round_id.into(),
            application_id: application_id.into(),
            expert_id: expert_id.into(),
            state: AssignmentState::Assigned,
            assigned_at,
            versions: Vec::new(),
            log: Vec::new(),
            replaced_by: None,
        }
    }

    pub fn round_id(&self) -> &str {
        &self.round_id
    }

    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    pub fn expert_id(&self) -> &str {
        &self.expert_id
    }

    pub fn state(&self) -> AssignmentState {
        self.state
    }

    pub fn assigned_at(&self) -> DateTime<Utc> {
        self.assigned_at
    }

    /// Every submitted version, oldest first.
    pub fn versions(&self) -> &[SubmittedVersion] {
        &self.versions
    }

    /// The latest submitted version, whatever the current state.
    pub fn latest_version(&self) -> Option<&SubmittedVersion> {
        self.versions.last()
    }

    /// The version that counts in aggregation: the latest, but only while `Submitted`
    /// (a reopened submission is being corrected and does not count until resubmitted).
    pub fn final_version(&self) -> Option<&SubmittedVersion> {
        if self.state == AssignmentState::Submitted {
            self.versions.last()
        } else {
            None
        }
    }

    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    pub fn replaced_by(&self) -> Option<&str> {
        self.replaced_by.as_deref()
    }

    /// When the expert declared no conflict, if they did.
    pub fn no_conflict_declared_at(&self) -> Option<DateTime<Utc>> {
        self.log
            .iter()
            .find(|e| e.action == ActionKind::DeclareNoConflict)
            .map(|e| e.at)
    }

    /// The conflict the expert declared on this assignment, as a record assignment honours.
    pub fn declared_conflict(&self) -> Option<DeclaredConflict> {
        self.log
            .iter()
            .find(|e| e.action == ActionKind::DeclareConflict)
            .map(|e| DeclaredConflict {
                expert_id: self.expert_id.clone(),
                scope: ConflictScope::Application {
                    application_id: self.application_id.clone(),
                },
                reason: e.reason.clone().unwrap_or_default(),
                declared_at: e.at,
            })
    }

    /// Whether the assignment was ever marked overdue (a late review).
    pub fn was_overdue(&self) -> bool {
        self.log.iter().any(|e| e.action == ActionKind::MarkOverdue)
    }

    /// Applies `action` by `actor` at `now` and returns the new assignment; `self` is left
    /// as it was. Checks, in order: who may act, whether the state allows the action, and
    /// the action's own requirements (reasons).
    pub fn apply(
        &self,
        action: Action,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Self, ReviewError> {
        use AssignmentState as S;
        let kind = action.kind();
        self.check_actor(kind, actor)?;
        let invalid = || ReviewError::InvalidTransition {
            from: self.state,
            action: kind,
        };
        let mut next = self.clone();
        let mut reason = None;
        let to = match (action, self.state) {
            (Action::DeclareNoConflict, S::Assigned) => S::Accepted,
            (Action::DeclareConflict { reason: r }, S::Assigned) => {
                reason = Some(required_reason(r, kind)?);
                S::ConflictDeclared
            }
            (Action::Decline { reason: r }, S::Assigned | S::Accepted) => {
                reason = r.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
                S::Declined
            }
            (Action::Submit { .. }, S::Assigned) => {
                return Err(ReviewError::NoConflictNotDeclared);
            }
            (Action::Submit { card }, S::Accepted | S::Reopened) => {
                let version = next.versions.len() as u32 + 1;
                next.versions.push(SubmittedVersion {
                    version,
                    submitted_at: now,
                    card,
                });
                S::Submitted
            }
            (Action::MarkOverdue, S::Assigned | S::Accepted) => S::Overdue,
            (Action::Reopen { reason: r }, S::Submitted) => {
                reason = Some(required_reason(r, kind)?);
                S::Reopened
            }
            (Action::Replace { by }, S::Declined | S::ConflictDeclared | S::Overdue) => {
                if by == self.expert_id {
                    return Err(invalid());
                }
                next.replaced_by = Some(by);
                S::Replaced
            }
            _ => return Err(invalid()),
        };
        next.log.push(LogEntry {
            at: now,
            actor: actor.clone(),
            action: kind,
            from: self.state,
            to,
            reason,
        });
        next.state = to;
        Ok(next)
    }

    fn check_actor(&self, kind: ActionKind, actor: &Actor) -> Result<(), ReviewError> {
        let allowed = match kind {
            ActionKind::DeclareNoConflict
            | ActionKind::DeclareConflict
            | ActionKind::Decline
            | ActionKind::Submit => {
                return match actor {
                    Actor::Expert { id } if *id == self.expert_id => Ok(()),
                    _ => Err(ReviewError::NotAssignedExpert { action: kind }),
                };
            }
            ActionKind::Reopen => matches!(actor, Actor::Manager { .. }),
            ActionKind::MarkOverdue | ActionKind::Replace => {
                matches!(actor, Actor::Manager { .. } | Actor::System)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(ReviewError::ManagerOnly { action: kind })
        }
    }
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "takes the reason of the action it checks"
)]
fn required_reason(reason: String, action: ActionKind) -> Result<String, ReviewError> {
    let reason = reason.trim();
    if reason.is_empty() {
        Err(ReviewError::ReasonRequired { action })
    } else {
        Ok(reason.to_string())
    }
}

/// How many of `expert_id`'s assignments were ever overdue.
pub fn late_reviews(assignments: &[Assignment], expert_id: &str) -> u32 {
    assignments
        .iter()
        .filter(|a| a.expert_id == expert_id && a.was_overdue())
        .count() as u32
}

/// Whether an active expert has been late often enough to be suspended
/// ([`crate::expert::ExpertStatus::Suspended`]); the manager decides.
pub fn suspension_due(expert: &Expert, assignments: &[Assignment], policy: &ReviewPolicy) -> bool {
    expert.is_active()
        && policy.late_reviews_before_suspension > 0
        && late_reviews(assignments, &expert.id) >= policy.late_reviews_before_suspension
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expert::{Category, ExpertStatus};
    use crate::scoring::tests::half_point_rubric;
    use crate::scoring::{CriterionScore, ScoreSheet, validate_scores};

    fn at(hour: u32) -> DateTime<Utc> {
        format!("2024-07-01T{hour:02}:00:00Z").parse().unwrap()
    }

    fn expert() -> Actor {
        Actor::Expert { id: "e1".into() }
    }

    fn manager() -> Actor {
        Actor::Manager { id: "m1".into() }
    }

    fn card(innovation: f64) -> ScoreCard {
        let sheet = ScoreSheet::new()
            .with("innovation", CriterionScore::new(innovation))
            .with("feasibility", CriterionScore::new(3.0))
            .with("budget", CriterionScore::new(3.0));
        validate_scores(&half_point_rubric(), &sheet).unwrap()
    }

    fn fresh() -> Assignment {
        Assignment::new("application-review", "a1", "e1", at(0))
    }

    fn submitted() -> Assignment {
        fresh()
            .apply(Action::DeclareNoConflict, &expert(), at(1))
            .unwrap()
            .apply(Action::Submit { card: card(3.0) }, &expert(), at(2))
            .unwrap()
    }

    #[test]
    fn happy_path_accept_then_submit_seals_version_one() {
        let a = fresh();
        assert!(!a.state().may_view_application());
        let a = a
            .apply(Action::DeclareNoConflict, &expert(), at(1))
            .unwrap();
        assert_eq!(a.state(), AssignmentState::Accepted);
        assert!(a.state().may_view_application());
        assert_eq!(a.no_conflict_declared_at(), Some(at(1)));
        let a = a
            .apply(Action::Submit { card: card(3.0) }, &expert(), at(2))
            .unwrap();
        assert_eq!(a.state(), AssignmentState::Submitted);
        assert_eq!(a.versions().len(), 1);
        assert_eq!(a.final_version().unwrap().version, 1);
        assert_eq!(a.log().len(), 2);
    }

    #[test]
    fn submit_before_declaring_no_conflict_is_refused() {
        let err = fresh()
            .apply(Action::Submit { card: card(3.0) }, &expert(), at(1))
            .unwrap_err();
        assert_eq!(err.code(), "NO_CONFLICT_NOT_DECLARED");
        assert_eq!(
            err.message(Lang::ZhCn),
            "请先确认与该申报无利益冲突，再查看或评分"
        );
    }

    #[test]
    fn reopen_needs_a_manager_and_a_reason() {
        let a = submitted();
        let err = a
            .apply(
                Action::Reopen {
                    reason: "笔误".into(),
                },
                &expert(),
                at(3),
            )
            .unwrap_err();
        assert_eq!(err.code(), "MANAGER_ONLY");
        let err = a
            .apply(Action::Reopen { reason: "".into() }, &Actor::System, at(3))
            .unwrap_err();
        assert_eq!(
            err.code(),
            "MANAGER_ONLY",
            "the scheduler cannot reopen either"
        );
        let err = a
            .apply(
                Action::Reopen {
                    reason: "  ".into(),
                },
                &manager(),
                at(3),
            )
            .unwrap_err();
        assert_eq!(err.code(), "REASON_REQUIRED");
        assert_eq!(
            a.state(),
            AssignmentState::Submitted,
            "failed actions change nothing"
        );
    }

    #[test]
    fn reopen_and_resubmit_keeps_every_version() {
        let a = submitted()
            .apply(
                Action::Reopen {
                    reason: "评分与评语不一致".into(),
                },
                &manager(),
                at(3),
            )
            .unwrap();
        assert_eq!(a.state(), AssignmentState::Reopened);
        assert!(
            a.final_version().is_none(),
            "a reopened card does not count"
        );
        assert_eq!(
            a.log().last().unwrap().reason.as_deref(),
            Some("评分与评语不一致")
        );
        let a = a
            .apply(Action::Submit { card: card(4.0) }, &expert(), at(4))
            .unwrap();
        assert_eq!(a.versions().len(), 2);
        assert_eq!(a.versions()[0].card.score("innovation"), Some(3.0));
        assert_eq!(a.versions()[1].card.score("innovation"), Some(4.0));
        assert_eq!(a.final_version().unwrap().version, 2);
    }

    #[test]
    fn a_submitted_card_cannot_be_overwritten_without_reopening() {
        let err = submitted()
            .apply(Action::Submit { card: card(4.5) }, &expert(), at(3))
            .unwrap_err();
        assert_eq!(err.code(), "ASSIGNMENT_INVALID_TRANSITION");
    }

    #[test]
    fn only_the_assigned_expert_acts_as_expert() {
        let err = fresh()
            .apply(
                Action::DeclareNoConflict,
                &Actor::Expert { id: "e2".into() },
                at(1),
            )
            .unwrap_err();
        assert_eq!(err.code(), "ASSIGNMENT_NOT_YOURS");
        let err = fresh()
            .apply(Action::DeclareNoConflict, &manager(), at(1))
            .unwrap_err();
        assert_eq!(err.code(), "ASSIGNMENT_NOT_YOURS");
    }

    #[test]
    fn declaring_a_conflict_recuses_and_records_the_declaration() {
        let err = fresh()
            .apply(
                Action::DeclareConflict { reason: "".into() },
                &expert(),
                at(1),
            )
            .unwrap_err();
        assert_eq!(err.code(), "REASON_REQUIRED");
        let a = fresh()
            .apply(
                Action::DeclareConflict {
                    reason: "曾在申报单位任职".into(),
                },
                &expert(),
                at(1),
            )
            .unwrap();
        assert_eq!(a.state(), AssignmentState::ConflictDeclared);
        assert!(!a.state().may_view_application());
        assert!(a.state().needs_replacement());
        assert!(!a.state().counts_toward_load());
        let declared = a.declared_conflict().unwrap();
        assert_eq!(declared.reason, "曾在申报单位任职");
        assert_eq!(
            declared.scope,
            ConflictScope::Application {
                application_id: "a1".into()
            }
        );
        // Having seen the application, an expert can no longer claim a conflict: decline instead.
        let accepted = fresh()
            .apply(Action::DeclareNoConflict, &expert(), at(1))
            .unwrap();
        assert!(
            accepted
                .apply(
                    Action::DeclareConflict { reason: "x".into() },
                    &expert(),
                    at(2)
                )
                .is_err()
        );
        assert_eq!(
            accepted
                .apply(Action::Decline { reason: None }, &expert(), at(2))
                .unwrap()
                .state(),
            AssignmentState::Declined
        );
    }

    #[test]
    fn overdue_assignment_is_replaced_by_another_expert() {
        let accepted = fresh()
            .apply(Action::DeclareNoConflict, &expert(), at(1))
            .unwrap();
        let err = accepted
            .apply(Action::MarkOverdue, &expert(), at(9))
            .unwrap_err();
        assert_eq!(err.code(), "MANAGER_ONLY");
        let overdue = accepted
            .apply(Action::MarkOverdue, &Actor::System, at(9))
            .unwrap();
        assert_eq!(overdue.state(), AssignmentState::Overdue);
        assert!(overdue.state().counts_toward_load());
        assert!(overdue.state().needs_replacement());
        let err = overdue
            .apply(Action::Submit { card: card(3.0) }, &expert(), at(10))
            .unwrap_err();
        assert_eq!(err.code(), "ASSIGNMENT_INVALID_TRANSITION");
        assert!(
            overdue
                .apply(Action::Replace { by: "e1".into() }, &manager(), at(10))
                .is_err(),
            "an expert cannot replace themselves"
        );
        let replaced = overdue
            .apply(Action::Replace { by: "e7".into() }, &manager(), at(10))
            .unwrap();
        assert_eq!(replaced.state(), AssignmentState::Replaced);
        assert_eq!(replaced.replaced_by(), Some("e7"));
        assert!(replaced.was_overdue());
    }

    #[test]
    fn submitted_work_cannot_be_declined_or_marked_overdue() {
        let a = submitted();
        for action in [Action::Decline { reason: None }, Action::MarkOverdue] {
            let actor = if action == Action::MarkOverdue {
                Actor::System
            } else {
                expert()
            };
            let err = a.apply(action, &actor, at(5)).unwrap_err();
            assert_eq!(err.code(), "ASSIGNMENT_INVALID_TRANSITION");
        }
    }

    #[test]
    fn repeated_late_reviews_make_suspension_due() {
        let policy = ReviewPolicy::default();
        let e = Expert {
            id: "e1".into(),
            org_id: "o".into(),
            categories: [Category::new(1).unwrap()].into(),
            keywords: vec![],
            workload_cap: 5,
            status: ExpertStatus::Active,
            collaborations: vec![],
        };
        let late = |app: &str| {
            Assignment::new("r", app, "e1", at(0))
                .apply(Action::MarkOverdue, &Actor::System, at(9))
                .unwrap()
        };
        let mut history = vec![late("a1"), late("a2"), submitted()];
        assert_eq!(late_reviews(&history, "e1"), 2);
        assert!(!suspension_due(&e, &history, &policy));
        history.push(late("a3"));
        assert!(suspension_due(&e, &history, &policy));
    }

    #[test]
    fn assignment_round_trips_through_json() {
        let a = submitted();
        let json = serde_json::to_string(&a).unwrap();
        let back: Assignment = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
    }
}
