//! Errors of the review logic. Each has a stable [`ReviewError::code`] for clients and a
//! message in Simplified Chinese and English ([`ReviewError::message`]); `Display` gives
//! the English message. [`ReviewError::report`] flattens an error with its details (per
//! criterion, per expert) for the API.

use std::fmt;

use grantflow_domain::Lang;
use serde::{Deserialize, Serialize};

use crate::assignment::Refusal;
use crate::lifecycle::{ActionKind, AssignmentState};
use crate::scoring::{CriterionError, RubricProblem};
use crate::{ApplicationId, ExpertId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReviewError {
    /// A call category outside 1..=8.
    UnknownCategory {
        number: u8,
    },
    /// The applicant asked to exclude more organisations than the policy allows.
    TooManyExcludedOrgs {
        count: usize,
        limit: usize,
    },
    /// The rubric itself is broken.
    InvalidRubric {
        problems: Vec<RubricProblem>,
    },
    /// Score sheet problems, every one of them.
    InvalidScores {
        errors: Vec<CriterionError>,
    },
    /// A panel smaller than the minimum was requested.
    PanelTooSmall {
        requested: u32,
        minimum: u32,
    },
    UnknownApplication {
        application_id: ApplicationId,
    },
    /// A manual assignment named experts who may not review the application.
    AssignmentRefused {
        refusals: Vec<Refusal>,
    },
    /// Too few eligible experts to fill the seats.
    NotEnoughEligibleExperts {
        application_id: ApplicationId,
        needed: u32,
        available: u32,
    },
    /// Only declined, recused or overdue assignments are replaced.
    NotReplaceable {
        state: AssignmentState,
    },
    /// The action is not possible in the assignment's state.
    InvalidTransition {
        from: AssignmentState,
        action: ActionKind,
    },
    /// The action needs a written reason.
    ReasonRequired {
        action: ActionKind,
    },
    /// Only a manager (or for some actions the scheduler) may do this.
    ManagerOnly {
        action: ActionKind,
    },
    /// Only the assigned expert may do this.
    NotAssignedExpert {
        action: ActionKind,
    },
    /// The expert must declare no conflict before seeing or scoring the application.
    NoConflictNotDeclared,
    /// The expert is no longer on the panel and may not see the application.
    ApplicationHidden {
        state: AssignmentState,
    },
    /// Other experts' scores are visible only after submitting one's own.
    OwnScoresNotSubmitted,
    /// A justification was offered by an expert whose total is not an outlier.
    NotAnOutlier {
        expert_id: ExpertId,
    },
    /// An outlier justification must not be blank.
    JustificationRequired,
    /// Writing the workbook failed.
    Export {
        detail: String,
    },
}

/// An error flattened for clients: code, both messages and nested details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    pub code: String,
    #[serde(rename = "zh-CN")]
    pub zh_cn: String,
    pub en: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Self>,
}

impl ErrorReport {
    fn of(code: &str, message: impl Fn(Lang) -> String) -> Self {
        Self {
            code: code.to_string(),
            zh_cn: message(Lang::ZhCn),
            en: message(Lang::En),
            details: Vec::new(),
        }
    }
}

impl ReviewError {
    /// A stable, upper-case code clients may match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownCategory { .. } => "CATEGORY_UNKNOWN",
            Self::TooManyExcludedOrgs { .. } => "EXCLUDED_ORGS_TOO_MANY",
            Self::InvalidRubric { .. } => "RUBRIC_INVALID",
            Self::InvalidScores { .. } => "SCORES_INVALID",
            Self::PanelTooSmall { .. } => "PANEL_TOO_SMALL",
            Self::UnknownApplication { .. } => "APPLICATION_UNKNOWN",
            Self::AssignmentRefused { .. } => "ASSIGNMENT_REFUSED",
            Self::NotEnoughEligibleExperts { .. } => "NOT_ENOUGH_EXPERTS",
            Self::NotReplaceable { .. } => "ASSIGNMENT_NOT_REPLACEABLE",
            Self::InvalidTransition { .. } => "ASSIGNMENT_INVALID_TRANSITION",
            Self::ReasonRequired { .. } => "REASON_REQUIRED",
            Self::ManagerOnly { .. } => "MANAGER_ONLY",
            Self::NotAssignedExpert { .. } => "ASSIGNMENT_NOT_YOURS",
            Self::NoConflictNotDeclared => "NO_CONFLICT_NOT_DECLARED",
            Self::ApplicationHidden { .. } => "APPLICATION_HIDDEN",
            Self::OwnScoresNotSubmitted => "PEER_SCORES_HIDDEN",
            Self::NotAnOutlier { .. } => "NOT_AN_OUTLIER",
            Self::JustificationRequired => "JUSTIFICATION_REQUIRED",
            Self::Export { .. } => "XLSX_EXPORT_FAILED",
        }
    }

    /// The message in `lang`. Lists (score errors, refusals) are summarised here; their
    /// items are in [`ReviewError::report`].
    pub fn message(&self, lang: Lang) -> String {
        let zh = lang == Lang::ZhCn;
        match self {
            Self::UnknownCategory { number } => {
                if zh {
                    format!("项目大类须为 1 至 8，收到 {number}")
                } else {
                    format!("the call category must be 1 to 8, got {number}")
                }
            }
            Self::TooManyExcludedOrgs { count, limit } => {
                if zh {
                    format!("申请回避的单位最多 {limit} 个，当前为 {count} 个")
                } else {
                    format!("at most {limit} organisations may be excluded, {count} were given")
                }
            }
            Self::InvalidRubric { problems } => {
                let items: Vec<String> = problems.iter().map(|p| p.message(lang)).collect();
                if zh {
                    format!("评分表设置有误：{}", items.join("；"))
                } else {
                    format!("the rubric is invalid: {}", items.join("; "))
                }
            }
            Self::InvalidScores { errors } => {
                let items: Vec<String> = errors.iter().map(|e| e.message(lang)).collect();
                if zh {
                    format!("评分有 {} 处问题：{}", errors.len(), items.join("；"))
                } else {
                    format!(
                        "{} problem(s) with the scores: {}",
                        errors.len(),
                        items.join("; ")
                    )
                }
            }
            Self::PanelTooSmall { requested, minimum } => {
                if zh {
                    format!("每个评审组至少 {minimum} 名专家，设置为 {requested} 名")
                } else {
                    format!("a panel needs at least {minimum} experts, {requested} requested")
                }
            }
            Self::UnknownApplication { application_id } => {
                if zh {
                    format!("本批次中没有申报“{application_id}”")
                } else {
                    format!("no application \"{application_id}\" in this call")
                }
            }
            Self::AssignmentRefused { refusals } => {
                let items: Vec<String> = refusals
                    .iter()
                    .map(|r| {
                        let reasons: Vec<String> =
                            r.reasons.iter().map(|x| x.message(lang)).collect();
                        format!(
                            "{}: {}",
                            r.expert_id,
                            reasons.join(if zh { "；" } else { "; " })
                        )
                    })
                    .collect();
                if zh {
                    format!("以下专家不能分配：{}", items.join("。"))
                } else {
                    format!("these experts cannot be assigned: {}", items.join(". "))
                }
            }
            Self::NotEnoughEligibleExperts {
                application_id,
                needed,
                available,
            } => {
                if zh {
                    format!(
                        "申报“{application_id}”需要 {needed} 名符合条件的专家，仅有 {available} 名"
                    )
                } else {
                    format!(
                        "application \"{application_id}\" needs {needed} eligible expert(s), only {available} available"
                    )
                }
            }
            Self::NotReplaceable { state } => {
                if zh {
                    format!("状态为“{}”的分配不能替换专家", state.title().zh_cn)
                } else {
                    format!(
                        "an assignment that is {} cannot be replaced",
                        state.title().en
                    )
                }
            }
            Self::InvalidTransition { from, action } => {
                if zh {
                    format!(
                        "当前状态“{}”下不能执行“{}”",
                        from.title().zh_cn,
                        action.name(lang)
                    )
                } else {
                    format!(
                        "cannot {} while the assignment is {}",
                        action.name(lang),
                        from.title().en
                    )
                }
            }
            Self::ReasonRequired { action } => {
                if zh {
                    format!("“{}”须填写理由", action.name(lang))
                } else {
                    format!("a reason is required to {}", action.name(lang))
                }
            }
            Self::ManagerOnly { action } => {
                if zh {
                    format!("只有项目管理人员可以执行“{}”", action.name(lang))
                } else {
                    format!("only a programme manager may {}", action.name(lang))
                }
            }
            Self::NotAssignedExpert { action } => {
                if zh {
                    format!("只有被分配的专家本人可以执行“{}”", action.name(lang))
                } else {
                    format!("only the assigned expert may {}", action.name(lang))
                }
            }
            Self::NoConflictNotDeclared => {
                if zh {
                    "请先确认与该申报无利益冲突，再查看或评分".into()
                } else {
                    "declare that you have no conflict of interest before viewing or scoring the application".into()
                }
            }
            Self::ApplicationHidden { state } => {
                if zh {
                    format!("分配状态为“{}”，不能查看该申报", state.title().zh_cn)
                } else {
                    format!(
                        "the assignment is {}; the application is not available",
                        state.title().en
                    )
                }
            }
            Self::OwnScoresNotSubmitted => {
                if zh {
                    "提交本人评分后才能查看其他专家的评分".into()
                } else {
                    "other experts' scores are visible only after you submit your own".into()
                }
            }
            Self::NotAnOutlier { expert_id } => {
                if zh {
                    format!("专家“{expert_id}”的评分不属于异常分，无需说明")
                } else {
                    format!(
                        "the total of expert \"{expert_id}\" is not an outlier; no justification is needed"
                    )
                }
            }
            Self::JustificationRequired => {
                if zh {
                    "异常分须填写书面说明".into()
                } else {
                    "an outlying score needs a written justification".into()
                }
            }
            Self::Export { detail } => {
                if zh {
                    format!("导出 Excel 文件失败：{detail}")
                } else {
                    format!("writing the Excel file failed: {detail}")
                }
            }
        }
    }

    /// The error with its code, both messages and one detail per criterion problem,
    /// rubric problem or refused expert's reason.
    pub fn report(&self) -> ErrorReport {
        let mut report = ErrorReport::of(self.code(), |lang| self.message(lang));
        report.details = match self {
            Self::InvalidScores { errors } => errors
                .iter()
                .map(|e| ErrorReport::of(e.code(), |lang| e.message(lang)))
                .collect(),
            Self::InvalidRubric { problems } => problems
                .iter()
                .map(|p| ErrorReport::of(p.code(), |lang| p.message(lang)))
                .collect(),
            Self::AssignmentRefused { refusals } => refusals
                .iter()
                .flat_map(|r| {
                    r.reasons.iter().map(|x| {
                        ErrorReport::of(x.code(), |lang| {
                            format!("{}: {}", r.expert_id, x.message(lang))
                        })
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        report
    }
}

impl fmt::Display for ReviewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(Lang::En))
    }
}

impl std::error::Error for ReviewError {}

impl grantflow_domain::UserFacing for ReviewError {
    fn kind(&self) -> grantflow_domain::ErrorKind {
        use grantflow_domain::ErrorKind as K;
        match self {
            Self::InvalidScores { .. }
            | Self::AssignmentRefused { .. }
            | Self::ReasonRequired { .. }
            | Self::JustificationRequired
            | Self::NotAnOutlier { .. }
            | Self::TooManyExcludedOrgs { .. }
            | Self::UnknownCategory { .. }
            | Self::PanelTooSmall { .. }
            | Self::InvalidRubric { .. } => K::InvalidInput,
            Self::ManagerOnly { .. }
            | Self::NotAssignedExpert { .. }
            | Self::ApplicationHidden { .. }
            | Self::OwnScoresNotSubmitted => K::Forbidden,
            Self::UnknownApplication { .. } => K::NotFound,
            Self::InvalidTransition { .. }
            | Self::NotReplaceable { .. }
            | Self::NoConflictNotDeclared
            | Self::NotEnoughEligibleExperts { .. } => K::InvalidTransition,
            Self::Export { .. } => K::Internal,
        }
    }

    fn code(&self) -> &'static str {
        Self::code(self)
    }

    fn message(&self, lang: Lang) -> String {
        Self::message(self, lang)
    }

    /// `reason`, the fields at fault (per criterion of `SCORES_INVALID`, per expert of
    /// `ASSIGNMENT_REFUSED`, …) and the flattened `problems`.
    fn details(&self) -> serde_json::Value {
        use grantflow_domain::input::FieldError;
        let reason = Self::code(self);
        let field = |field: &str, code: &'static str| {
            FieldError::new(
                field,
                code,
                Self::message(self, Lang::ZhCn),
                Self::message(self, Lang::En),
            )
        };
        let fields: Vec<FieldError> = match self {
            Self::InvalidScores { errors } => errors
                .iter()
                .map(|c| {
                    FieldError::new(
                        &c.criterion_id,
                        c.code(),
                        c.message(Lang::ZhCn),
                        c.message(Lang::En),
                    )
                })
                .collect(),
            Self::AssignmentRefused { refusals } => refusals
                .iter()
                .flat_map(|r| {
                    r.reasons.iter().map(|x| {
                        FieldError::new(
                            &r.expert_id,
                            x.code(),
                            x.message(Lang::ZhCn),
                            x.message(Lang::En),
                        )
                    })
                })
                .collect(),
            Self::ReasonRequired { .. } => vec![field("reason", "REQUIRED")],
            Self::JustificationRequired | Self::NotAnOutlier { .. } => {
                vec![field("justification", reason)]
            }
            Self::TooManyExcludedOrgs { .. } => vec![field("organisationIds", reason)],
            Self::UnknownCategory { .. } => vec![field("categories", reason)],
            Self::PanelTooSmall { .. } | Self::InvalidRubric { .. } => {
                vec![field("round", reason)]
            }
            _ => vec![],
        };
        let mut details = serde_json::json!({ "reason": reason });
        if !fields.is_empty() {
            details["fields"] = serde_json::json!(fields);
        }
        let report = self.report();
        if !report.details.is_empty() {
            details["problems"] = serde_json::json!(report.details);
        }
        details
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_serialises_with_code_and_both_languages() {
        let err = ReviewError::ReasonRequired {
            action: ActionKind::Reopen,
        };
        let json = serde_json::to_value(err.report()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "code": "REASON_REQUIRED",
                "zh-CN": "“退回修改”须填写理由",
                "en": "a reason is required to reopen"
            })
        );
        assert_eq!(err.to_string(), "a reason is required to reopen");
    }
}
