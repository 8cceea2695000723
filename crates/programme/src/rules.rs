//! The rules of a call (`[rules]` in the call's TOML): the numbers the source documents
//! leave to the province — the application review's rubric and weights, pass mark, panel
//! size and aggregation, the 公示 period, the time limit of each stage, the window in which
//! a collaboration makes an expert conflicted, and the overshoot beyond which an actual
//! needs a written explanation.
//!
//! None of these is fixed by the notices (seeds 000 and 004) or the provincial plan (seed
//! 002). Every key is optional: an absent key takes the documented default below, which is
//! common practice and **a default, not a regulation** ([`CallRules::settings`] says which
//! values equal their default). The rules are stored with the call when it is opened and
//! copied into each instance of the call when it is created, so a later change of the
//! defaults never changes a running call.
//!
//! Aggregation: `trimmed_mean` drops the highest and the lowest total only when at least
//! [`TRIM_MIN_SCORES`] experts have scored; with fewer (the default panel of 3) it is the
//! plain mean. `median` and `mean` are the alternatives.

use std::collections::{BTreeMap, BTreeSet};

use grantflow_domain::Lang;
use grantflow_domain::model::{Aggregation, CriterionDef, I18nText, ScaleDef};
use serde::{Deserialize, Serialize};

use crate::UserFacing;
use crate::messages::{impl_error_via_user_facing, pick};

/// Fewest scores from which a trimmed mean drops the highest and the lowest.
pub const TRIM_MIN_SCORES: usize = 5;

/// The states whose time limit is a call setting, with their default in working days, as
/// the shipped workflows name them (`funded-project` and `demand-collection`; `city_review`
/// is the city bureau's review in both). A workflow reads each through an `integer` field
/// `limit_<state>` (`after_field`), which the service fills from these rules.
pub const STAGE_LIMIT_DEFAULTS: [(&str, u32); 18] = [
    ("city_review", 5),
    ("returned", 5),
    ("province_review", 10),
    ("formal_check", 5),
    ("correction", 5),
    ("expert_review", 15),
    ("decision", 10),
    ("objection_review", 5),
    ("task_book", 10),
    ("task_book_review", 5),
    ("midterm_check", 10),
    ("midterm_rectification", 20),
    ("midterm_recheck", 10),
    ("acceptance_review", 15),
    ("rectification", 20),
    ("self_evaluation", 10),
    ("evaluation", 15),
    ("graded", 10),
];

/// The data field through which a workflow reads a stage's time limit.
pub fn stage_limit_field(state: &str) -> String {
    format!("limit_{state}")
}

/// The rules of a call. Every field defaults (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallRules {
    /// The application review (申报评审).
    pub review: ReviewRules,
    /// 公示: calendar days of the public notice after approval (default 7).
    pub publicity_days: u32,
    /// Time limits in working days by state id (defaults: [`STAGE_LIMIT_DEFAULTS`]);
    /// a key given here replaces that state's default, the others keep theirs.
    pub stage_limits: BTreeMap<String, u32>,
    /// 回避: an expert who collaborated with the applicant within this many months is
    /// conflicted (default 36).
    pub collaboration_window_months: u32,
    /// An actual this far beyond its target (0.30 = 30 %, relative to the target) needs a
    /// written explanation in the evaluation (default 0.30).
    pub overshoot_threshold: f64,
}

/// The application review's rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewRules {
    /// The weighted total (0–100) from which an application passes (default 60).
    pub pass_mark: u32,
    /// Experts per application, and scores needed to conclude (default 3).
    pub panel_size: u32,
    /// `trimmed_mean` (default), `median` or `mean`.
    pub aggregation: Aggregation,
    /// The rubric: criteria with weights summing to 1 (default: necessity 0.25,
    /// feasibility 0.25, performance targets 0.3, budget 0.2, each scored 0–100).
    pub criteria: Vec<RubricCriterion>,
}

/// A criterion of the rubric, scored on a 0–`max` scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RubricCriterion {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub title_en: String,
    pub weight: f64,
    #[serde(default = "default_max")]
    pub max: f64,
    /// A comment is required below this score (default 60).
    #[serde(default = "default_comment_below")]
    pub comment_below: Option<f64>,
}

fn default_max() -> f64 {
    100.0
}

#[allow(
    clippy::unnecessary_wraps,
    reason = "serde's default for an optional field"
)]
fn default_comment_below() -> Option<f64> {
    Some(60.0)
}

impl Default for CallRules {
    fn default() -> Self {
        Self {
            review: ReviewRules::default(),
            publicity_days: 7,
            stage_limits: BTreeMap::new(),
            collaboration_window_months: 36,
            overshoot_threshold: 0.30,
        }
    }
}

impl Default for ReviewRules {
    fn default() -> Self {
        let c = |id: &str, zh: &str, en: &str, weight| RubricCriterion {
            id: id.into(),
            title: zh.into(),
            title_en: en.into(),
            weight,
            max: 100.0,
            comment_below: Some(60.0),
        };
        Self {
            pass_mark: 60,
            panel_size: 3,
            aggregation: Aggregation::TrimmedMean,
            criteria: vec![
                c("necessity", "立项必要性", "Necessity", 0.25),
                c(
                    "feasibility",
                    "实施方案可行性",
                    "Feasibility of the plan",
                    0.25,
                ),
                c(
                    "performance_targets",
                    "绩效目标合理性",
                    "Soundness of the performance targets",
                    0.3,
                ),
                c("budget", "经费预算合理性", "Soundness of the budget", 0.2),
            ],
        }
    }
}

impl RubricCriterion {
    /// The criterion as a review round declares it.
    pub fn to_def(&self) -> CriterionDef {
        CriterionDef {
            id: self.id.clone(),
            title: I18nText::new(
                self.title.clone(),
                if self.title_en.is_empty() {
                    self.title.clone()
                } else {
                    self.title_en.clone()
                },
            ),
            weight: self.weight,
            scale: ScaleDef {
                min: 0.0,
                max: self.max,
                step: 1.0,
            },
            minimum: None,
            comment_below: self.comment_below,
            comment_above: None,
        }
    }
}

/// Why a call's rules cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesError {
    /// The key, e.g. `review.pass_mark`.
    pub key: String,
    pub zh: String,
    pub en: String,
}

impl UserFacing for RulesError {
    fn code(&self) -> &'static str {
        "CALL_RULES_INVALID"
    }

    fn message(&self, lang: Lang) -> String {
        pick(
            lang,
            format!("申报通知规则 rules.{}：{}", self.key, self.zh),
            format!("call rule rules.{}: {}", self.key, self.en),
        )
    }
}
impl_error_via_user_facing!(RulesError);

/// One rule as shown to users: its key, value, documented default and whether it is set
/// to that default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSetting {
    pub key: String,
    pub title: I18nText,
    /// The value as written in the TOML (`60`, `"trimmed_mean"`, `0.3`).
    pub value: String,
    pub default_value: String,
    pub is_default: bool,
}

fn err(key: &str, zh: impl Into<String>, en: impl Into<String>) -> RulesError {
    RulesError {
        key: key.into(),
        zh: zh.into(),
        en: en.into(),
    }
}

impl CallRules {
    /// The time limit of `state` in working days: the call's, else the default; `None`
    /// for a state without one.
    pub fn stage_limit(&self, state: &str) -> Option<u32> {
        self.stage_limits.get(state).copied().or_else(|| {
            STAGE_LIMIT_DEFAULTS
                .iter()
                .find(|(s, _)| *s == state)
                .map(|(_, d)| *d)
        })
    }

    /// Every check; the first problem found.
    pub fn check(&self) -> Result<(), RulesError> {
        let r = &self.review;
        if r.pass_mark > 100 {
            return Err(err(
                "review.pass_mark",
                "及格分须在 0 到 100 之间",
                "the pass mark must be 0 to 100",
            ));
        }
        if !(3..=30).contains(&r.panel_size) {
            return Err(err(
                "review.panel_size",
                "评审专家人数须在 3 到 30 之间",
                "the panel size must be 3 to 30",
            ));
        }
        if r.criteria.is_empty() {
            return Err(err(
                "review.criteria",
                "评审细则不能为空",
                "the rubric needs a criterion",
            ));
        }
        let mut ids = BTreeSet::new();
        for c in &r.criteria {
            if c.id.trim().is_empty() || c.title.trim().is_empty() || !ids.insert(c.id.as_str()) {
                return Err(err(
                    "review.criteria",
                    "每条评审细则须有唯一的 id 和标题",
                    "every criterion needs a unique id and a title",
                ));
            }
            let comment_ok = c
                .comment_below
                .is_none_or(|b| b.is_finite() && (0.0..=c.max).contains(&b));
            let weight_ok = c.weight.is_finite() && c.weight > 0.0;
            let max_ok = c.max.is_finite() && c.max > 0.0 && c.max <= 1000.0;
            if !(weight_ok && max_ok && comment_ok) {
                return Err(err(
                    "review.criteria",
                    format!(
                        "评审细则「{}」的权重须为正数、满分须在 0 到 1000 之间",
                        c.id
                    ),
                    format!(
                        "criterion `{}`: the weight must be positive and the maximum 0 to 1000",
                        c.id
                    ),
                ));
            }
        }
        let sum: f64 = r.criteria.iter().map(|c| c.weight).sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(err(
                "review.criteria",
                format!("评审细则权重之和须为 1（当前 {sum}）"),
                format!("the criteria's weights must sum to 1 (they sum to {sum})"),
            ));
        }
        if !(1..=60).contains(&self.publicity_days) {
            return Err(err(
                "publicity_days",
                "公示天数须在 1 到 60 之间",
                "the publicity period must be 1 to 60 days",
            ));
        }
        for (state, days) in &self.stage_limits {
            if !STAGE_LIMIT_DEFAULTS.iter().any(|(s, _)| s == state) {
                let known: Vec<&str> = STAGE_LIMIT_DEFAULTS.iter().map(|(s, _)| *s).collect();
                return Err(err(
                    &format!("stage_limits.{state}"),
                    format!("没有时限可设的阶段「{state}」；可设：{}", known.join("、")),
                    format!(
                        "no stage `{state}` has a settable time limit; known: {}",
                        known.join(", ")
                    ),
                ));
            }
            if !(1..=365).contains(days) {
                return Err(err(
                    &format!("stage_limits.{state}"),
                    "时限须在 1 到 365 个工作日之间",
                    "a time limit must be 1 to 365 working days",
                ));
            }
        }
        if !(1..=120).contains(&self.collaboration_window_months) {
            return Err(err(
                "collaboration_window_months",
                "合作回避期须在 1 到 120 个月之间",
                "the collaboration window must be 1 to 120 months",
            ));
        }
        if !(self.overshoot_threshold.is_finite()
            && (0.0..=10.0).contains(&self.overshoot_threshold))
        {
            return Err(err(
                "overshoot_threshold",
                "超目标说明阈值须在 0 到 10 之间（0.3 即 30%）",
                "the overshoot threshold must be 0 to 10 (0.3 is 30 %)",
            ));
        }
        Ok(())
    }

    /// Every rule with its value and default, in a fixed order; the stage limits one
    /// per state.
    pub fn settings(&self) -> Vec<RuleSetting> {
        let d = Self::default();
        let mut out = Vec::new();
        let mut push = |key: &str, zh: &str, en: &str, value: String, default: String| {
            out.push(RuleSetting {
                key: key.into(),
                title: I18nText::new(zh, en),
                is_default: value == default,
                value,
                default_value: default,
            });
        };
        let json = |v: &dyn erased::Json| v.json();
        push(
            "review.pass_mark",
            "申报评审及格分",
            "Application review pass mark",
            json(&self.review.pass_mark),
            json(&d.review.pass_mark),
        );
        push(
            "review.panel_size",
            "每项申报评审专家人数",
            "Experts per application",
            json(&self.review.panel_size),
            json(&d.review.panel_size),
        );
        push(
            "review.aggregation",
            "专家评分汇总方式",
            "Aggregation of the experts' totals",
            json(&self.review.aggregation),
            json(&d.review.aggregation),
        );
        push(
            "review.criteria",
            "评审细则及权重",
            "Rubric and weights",
            json(&self.review.criteria),
            json(&d.review.criteria),
        );
        push(
            "publicity_days",
            "立项公示天数（自然日）",
            "Public notice (calendar days)",
            json(&self.publicity_days),
            json(&d.publicity_days),
        );
        for (state, default) in STAGE_LIMIT_DEFAULTS {
            let value = self.stage_limit(state).unwrap_or(default);
            push(
                &format!("stage_limits.{state}"),
                &format!("「{state}」阶段时限（工作日）"),
                &format!("Time limit of `{state}` (working days)"),
                json(&value),
                json(&default),
            );
        }
        push(
            "collaboration_window_months",
            "合作回避期（月）",
            "Collaboration conflict window (months)",
            json(&self.collaboration_window_months),
            json(&d.collaboration_window_months),
        );
        push(
            "overshoot_threshold",
            "超目标须说明的幅度",
            "Overshoot needing an explanation",
            json(&self.overshoot_threshold),
            json(&d.overshoot_threshold),
        );
        out
    }
}

/// JSON text of a value, through a trait object so that one closure serves every type.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_keys_take_the_documented_defaults() {
        let rules: CallRules =
            toml::from_str("publicity_days = 5\n[review]\npass_mark = 70").unwrap();
        assert_eq!(rules.publicity_days, 5);
        assert_eq!(rules.review.pass_mark, 70);
        assert_eq!(rules.review.panel_size, 3);
        assert_eq!(rules.review.aggregation, Aggregation::TrimmedMean);
        assert_eq!(rules.stage_limit("formal_check"), Some(5));
        assert_eq!(rules.collaboration_window_months, 36);
        rules.check().unwrap();
        let settings = rules.settings();
        let get = |k: &str| settings.iter().find(|s| s.key == k).unwrap();
        assert_eq!(get("publicity_days").value, "5");
        assert_eq!(get("publicity_days").default_value, "7");
        assert!(!get("publicity_days").is_default);
        assert!(get("review.panel_size").is_default);
        assert_eq!(get("review.aggregation").value, "\"trimmed_mean\"");
    }

    #[test]
    fn bad_rules_are_refused_with_their_key() {
        let bad = |text: &str| {
            let rules: CallRules = toml::from_str(text).unwrap();
            let e = rules.check().unwrap_err();
            assert_eq!(e.code(), "CALL_RULES_INVALID");
            e.key
        };
        assert_eq!(bad("[review]\npass_mark = 101"), "review.pass_mark");
        assert_eq!(bad("publicity_days = 0"), "publicity_days");
        assert_eq!(bad("[stage_limits]\nnowhere = 3"), "stage_limits.nowhere");
        assert_eq!(
            bad("[[review.criteria]]\nid = \"a\"\ntitle = \"甲\"\nweight = 0.5"),
            "review.criteria"
        );
        assert!(toml::from_str::<CallRules>("unknown = 1").is_err());
    }
}
