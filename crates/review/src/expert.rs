//! The expert pool (专家库): experts, their expertise and availability, the eight call
//! categories, and the policy numbers a programme may configure.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use grantflow_domain::I18nText;
use serde::{Deserialize, Serialize};

use crate::error::ReviewError;
use crate::{ExpertId, OrgId};

/// One of the eight categories (大类) of the yearly call, numbered 1 to 8.
///
/// Serialised as its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Category(u8);

impl Category {
    /// All eight categories in call order.
    pub const ALL: [Self; 8] = [
        Self(1),
        Self(2),
        Self(3),
        Self(4),
        Self(5),
        Self(6),
        Self(7),
        Self(8),
    ];

    /// The category with this number; only 1..=8 exist.
    pub fn new(number: u8) -> Result<Self, ReviewError> {
        if (1..=8).contains(&number) {
            Ok(Self(number))
        } else {
            Err(ReviewError::UnknownCategory { number })
        }
    }

    /// The number, 1..=8.
    pub fn number(self) -> u8 {
        self.0
    }

    /// The name of the category as the call lists it.
    pub fn title(self) -> I18nText {
        let (zh, en) = match self.0 {
            1 => (
                "\"放管服\"改革和区域布局",
                "Streamlining administration reform and regional layout",
            ),
            2 => (
                "高质量创造和创新主体能力提升",
                "High-quality creation and capacity of innovators",
            ),
            3 => ("强化知识产权保护", "Stronger IP protection"),
            4 => ("知识产权运用", "IP utilisation"),
            5 => (
                "公共服务和代理行业监管",
                "Public services and supervision of IP agencies",
            ),
            6 => (
                "战略规划、软课题研究",
                "Strategic planning and soft-science research",
            ),
            7 => ("开放合作", "Opening-up and cooperation"),
            _ => ("文化传播", "Culture and communication"),
        };
        I18nText::new(zh, en)
    }
}

impl TryFrom<u8> for Category {
    type Error = ReviewError;

    fn try_from(number: u8) -> Result<Self, Self::Error> {
        Self::new(number)
    }
}

impl From<Category> for u8 {
    fn from(category: Category) -> Self {
        category.0
    }
}

/// Whether an expert may be given new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpertStatus {
    /// In the pool and available.
    Active,
    /// Temporarily out of the pool, e.g. after repeated late reviews
    /// (see [`crate::lifecycle::suspension_due`]).
    Suspended,
    /// Permanently out of the pool.
    Retired,
}

impl ExpertStatus {
    pub fn title(self) -> I18nText {
        match self {
            Self::Active => I18nText::new("在库", "active"),
            Self::Suspended => I18nText::new("暂停", "suspended"),
            Self::Retired => I18nText::new("退出", "retired"),
        }
    }
}

/// A recorded collaboration of the expert with an organisation (joint project, paper,
/// employment, …) that ended on `until` (or will end then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collaboration {
    pub org_id: OrgId,
    pub until: NaiveDate,
}

/// An expert reviewer (评审专家) in the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expert {
    /// The expert's person id.
    pub id: ExpertId,
    /// The organisation the expert works for.
    pub org_id: OrgId,
    /// Call categories the expert is qualified for.
    pub categories: BTreeSet<Category>,
    /// Free keywords of expertise; compared case-insensitively after trimming.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Most open assignments the expert may hold at once
    /// (see [`crate::lifecycle::AssignmentState::counts_toward_load`]).
    pub workload_cap: u32,
    pub status: ExpertStatus,
    #[serde(default)]
    pub collaborations: Vec<Collaboration>,
}

impl Expert {
    pub fn is_active(&self) -> bool {
        self.status == ExpertStatus::Active
    }
}

/// Numbers of the review rules a programme may configure. `Default` gives the values the
/// programme uses unless it says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReviewPolicy {
    /// How many organisations an applicant may ask to exclude (回避单位); longer lists are
    /// refused at submission by [`crate::conflict::validate_application`]. Default 3.
    pub max_excluded_orgs: usize,
    /// A collaboration counts as recent, and so as a conflict, until this many months after
    /// it ended. Default 36 (three years).
    pub collaboration_window_months: u32,
    /// An expert becomes due for suspension after this many overdue assignments. Default 3.
    pub late_reviews_before_suspension: u32,
}

impl Default for ReviewPolicy {
    fn default() -> Self {
        Self {
            max_excluded_orgs: 3,
            collaboration_window_months: 36,
            late_reviews_before_suspension: 3,
        }
    }
}

/// Keywords in the form they are compared in: trimmed, lowercased, empty ones dropped.
pub(crate) fn normalised_keywords(keywords: &[String]) -> BTreeSet<String> {
    keywords
        .iter()
        .map(|k| k.trim().to_lowercase())
        .filter(|k| !k.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_categories_one_to_eight_exist() {
        assert!(Category::new(0).is_err());
        assert!(Category::new(9).is_err());
        assert_eq!(Category::new(3).unwrap().title().zh_cn, "强化知识产权保护");
        assert_eq!(
            Category::new(0).unwrap_err().code(),
            "CATEGORY_UNKNOWN",
            "an unknown category carries a stable code"
        );
    }

    #[test]
    fn category_serialises_as_its_number_and_rejects_others() {
        let json = serde_json::to_string(&Category::new(8).unwrap()).unwrap();
        assert_eq!(json, "8");
        assert!(serde_json::from_str::<Category>("9").is_err());
        assert_eq!(
            serde_json::from_str::<Category>("2").unwrap(),
            Category::new(2).unwrap()
        );
    }

    #[test]
    fn default_policy_limits_exclusions_to_three() {
        let policy = ReviewPolicy::default();
        assert_eq!(policy.max_excluded_orgs, 3);
        let partial: ReviewPolicy = serde_json::from_str(r#"{"max_excluded_orgs":5}"#).unwrap();
        assert_eq!(partial.max_excluded_orgs, 5);
        assert_eq!(partial.collaboration_window_months, 36);
    }
}
