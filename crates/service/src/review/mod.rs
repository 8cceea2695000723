//! Expert review (专家评审) as a service: the expert pool, applicants' exclusion requests,
//! manual and seeded automatic assignment with replacement, the experts' lifecycle
//! (declare no conflict, declare a conflict, decline, submit, justify), managers'
//! reassignment and reopening, round summaries and the ranking of a call.
//!
//! The rules are `grantflow_review`'s; this module feeds it the records of the store and
//! writes what it decides through [`grantflow_store::ReviewStore`], one transaction per
//! action. Rounds are derived from the workflow: the round whose `opens_in` is the
//! instance's state is open, in the cycle the store reports; every write that changes
//! scores recomputes the aggregate ([`evaluate`]) and stores it as the instance's
//! `review` in the same transaction.
//!
//! Identifiers: an expert is a user (their id as text in `grantflow_review`), an
//! application an instance, an organisation an organisation id; the review crate's round
//! id is `<round id>#<cycle>`, so each cycle is a round of its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use grantflow_domain::CompiledWorkflow;
use grantflow_domain::calendar::local_date;
use grantflow_domain::model::{DeadlineDef, I18nText, Lang, ReviewRoundDef, StateDef};
use grantflow_domain::schedule::{TimerPlan, deadline_for, ladder_timers};
use grantflow_review::ReviewError;
use grantflow_review::aggregate::{
    ExpertSubmission, OutlierJustification, ReviewResult, aggregate_application, final_submissions,
    justify_outlier,
};
use grantflow_review::assignment::{
    DRAW_ALGORITHM, DrawContext, Refusal, Shortfall, assign_manually, check_eligibility,
    draw_panels, draw_replacement,
};
use grantflow_review::blind::{PeerScore, peer_scores};
use grantflow_review::conflict::{Application, DeclaredConflict, validate_application};
use grantflow_review::expert::{
    Category, Collaboration as ReviewCollaboration, Expert, ExpertStatus, ReviewPolicy,
};
use grantflow_review::lifecycle::{Action, Actor, Assignment, AssignmentState};
use grantflow_review::ranking::{RankedApplication, rank_applications};
use grantflow_review::scoring::{ScoreSheet, validate_scores};
use grantflow_store::review::{
    AssignmentChange, AssignmentRecord, ChangedAssignment, CreateAssignments, ExpertProfile,
    ExpertProfileInput, NewAssignment, NewAssignmentEvent, NewCollaboration, NewSubmission,
    ReopenMark, ReviewConflict, RoundKey, RoundRecords, ViewChange, assignment_timer_prefix,
    expert_recipient, expert_status,
};
use grantflow_store::{Instance, Role, StoreError, User};
use serde_json::{Value, json};
use uuid::Uuid;

pub use crate::redaction::{IDENTITY_FIELDS, redact_instance};
use crate::{ServiceError, Services, can_see};

mod assignment;
mod pool;
mod queries;
mod records;
mod reviews;
mod scores;
mod views;

pub use self::records::*;
pub use self::reviews::*;
pub use self::views::*;

/// How often a write computed from a view of the panel is recomputed when another
/// writer changed the panel first.
const MAX_ATTEMPTS: usize = 8;

/// Errors of review actions. Each has a stable [`ReviewServiceError::code`] and messages
/// in zh-CN and en.
#[derive(Debug, thiserror::Error)]
pub enum ReviewServiceError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A rule of `grantflow_review` refused the action (conflict, invalid scores, …).
    #[error("{0}")]
    Review(ReviewError),
    /// The instance is not in a state where a review round is open.
    #[error("no review round is open in state `{state}`")]
    NoOpenRound { state: String },
    /// The round closed (the instance left the round's state) before the write.
    #[error("the review round is closed")]
    RoundClosed,
    /// A replacement of an assignment that is not late yet.
    #[error("the assignment is not overdue yet")]
    NotOverdue { due_at: Option<DateTime<Utc>> },
    /// The assignment changed while the action was being applied.
    #[error("the assignment changed meanwhile")]
    AssignmentChanged,
    /// The panel kept changing under the action.
    #[error("the panel is being changed by someone else; retry")]
    Busy,
    /// Exclusions may be asked for only before the review starts.
    #[error("the review has started")]
    ReviewStarted,
    /// The user is not an expert (or not in the pool).
    #[error("not an expert in the pool")]
    NotAnExpert { user_id: Uuid },
    /// A category outside 1..=8, an unknown status, …
    #[error("invalid {field}")]
    Invalid {
        field: String,
        zh: String,
        en: String,
    },
}

impl From<ReviewError> for ReviewServiceError {
    fn from(e: ReviewError) -> Self {
        Self::Review(e)
    }
}

impl From<StoreError> for ReviewServiceError {
    fn from(e: StoreError) -> Self {
        Self::Service(ServiceError::Store(e))
    }
}

impl ReviewServiceError {
    /// A stable code: the review crate's codes, and these.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Service(_) => "SERVICE",
            Self::Review(e) => e.code(),
            Self::NoOpenRound { .. } => "REVIEW_ROUND_NOT_OPEN",
            Self::RoundClosed => "REVIEW_ROUND_CLOSED",
            Self::NotOverdue { .. } => "ASSIGNMENT_NOT_OVERDUE",
            Self::AssignmentChanged => "ASSIGNMENT_CHANGED",
            Self::Busy => "REVIEW_BUSY",
            Self::ReviewStarted => "REVIEW_STARTED",
            Self::NotAnExpert { .. } => "EXPERT_NOT_IN_POOL",
            Self::Invalid { .. } => "INVALID_VALUE",
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        let zh = lang == Lang::ZhCn;
        match self {
            Self::Service(e) => e.to_string(),
            Self::Review(e) => e.message(lang),
            Self::NoOpenRound { state } => {
                if zh {
                    format!("当前状态（{state}）没有进行中的专家评审")
                } else {
                    format!("no expert review round is open in state `{state}`")
                }
            }
            Self::RoundClosed => {
                if zh {
                    "本轮评审已结束，不能再分配专家或提交评分".into()
                } else {
                    "the review round is closed: no more assignments or scores".into()
                }
            }
            Self::NotOverdue { due_at } => {
                let due = due_at.map(|d| d.to_rfc3339()).unwrap_or_default();
                if zh {
                    format!("评审尚未逾期（截止 {due}），不能更换专家")
                } else {
                    format!("the review is not overdue yet (due {due}); it cannot be reassigned")
                }
            }
            Self::AssignmentChanged => {
                if zh {
                    "该评审任务已被更新，请刷新后重试".into()
                } else {
                    "the assignment changed meanwhile; reload and retry".into()
                }
            }
            Self::Busy => {
                if zh {
                    "评审组正在被他人调整，请稍后重试".into()
                } else {
                    "the panel is being changed by someone else; retry".into()
                }
            }
            Self::ReviewStarted => {
                if zh {
                    "评审已开始，不能再申请回避单位".into()
                } else {
                    "the review has started: exclusions can no longer be requested".into()
                }
            }
            Self::NotAnExpert { user_id } => {
                if zh {
                    format!("用户 {user_id} 不是评审专家")
                } else {
                    format!("user {user_id} is not an expert reviewer")
                }
            }
            Self::Invalid { zh: z, en, .. } => {
                if zh {
                    z.clone()
                } else {
                    en.clone()
                }
            }
        }
    }

    fn invalid(field: &str, zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_string(),
            zh: zh.into(),
            en: en.into(),
        }
    }

    fn not_found(what: &str) -> Self {
        Self::Service(ServiceError::NotFound(what.to_string()))
    }
}

pub type ReviewResultOf<T> = Result<T, ReviewServiceError>;
