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
//! The performance evaluation (绩效评价) of the call's projects: the points of budget
//! execution, outputs, effects and satisfaction and the grade bands (优/良/中/差) are
//! `[rules.evaluation]`, defaults 10/50/30/10 points and 90/80/60 (issue 12 point 8).
//!
//! Aggregation: `trimmed_mean` drops the highest and the lowest total only when at least
//! [`TRIM_MIN_SCORES`] experts have scored; with fewer (the default panel of 3) it is the
//! plain mean. `median` and `mean` are the alternatives.

use std::collections::{BTreeMap, BTreeSet};

use grantflow_domain::Lang;
use grantflow_domain::model::{Aggregation, CriterionDef, I18nText, ScaleDef};
use serde::{Deserialize, Serialize};

use crate::UserFacing;
use crate::evaluation::{EvaluationMethod, GradeBounds};
use crate::messages::{impl_error_via_user_facing, pick};

/// Fewest scores from which a trimmed mean drops the highest and the lowest.
pub const TRIM_MIN_SCORES: usize = 5;

/// The states whose time limit is a call setting, with their default in working days, as
/// the shipped workflows name them (`funded-project` and `demand-collection`). A workflow
/// reads each through an `integer` field `limit_<state>` (`after_field`), which the
/// service fills from these rules. The city bureau's review (`city_review`) has no limit
/// of its own: its deadline is the call's closing date (`forward_by`) in both workflows.
pub const STAGE_LIMIT_DEFAULTS: [(&str, u32); 17] = [
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
    /// 第三方评价: a difference of at least this many points between the unit's
    /// self-evaluation, the third party's and the manager's evaluation (per part and in
    /// total) is flagged in the comparison report (default 10).
    pub evaluation_difference_threshold: f64,
    /// The performance evaluation's points and grade bands.
    pub evaluation: EvaluationRules,
}

/// The performance evaluation (绩效评价): points of each part (summing to 100) and the
/// lowest total of each upper grade. Defaults: 10 budget execution, 50 outputs, 30
/// effects, 10 satisfaction (moved to effects when a project has no satisfaction
/// indicator); 优 from 90, 良 from 80, 中 from 60, 差 below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationRules {
    pub budget_execution_points: f64,
    pub output_points: f64,
    pub effect_points: f64,
    pub satisfaction_points: f64,
    /// Lowest total graded 优 (excellent), in whole points (the grade is given with the
    /// total rounded down).
    pub excellent_from: u32,
    /// Lowest total graded 良 (good).
    pub good_from: u32,
    /// Lowest total graded 中 (fair); below it 差.
    pub fair_from: u32,
}

impl Default for EvaluationRules {
    fn default() -> Self {
        let m = EvaluationMethod::default();
        Self {
            budget_execution_points: m.budget_execution_points,
            output_points: m.output_points,
            effect_points: m.effect_points,
            satisfaction_points: m.satisfaction_points,
            excellent_from: 90,
            good_from: 80,
            fair_from: 60,
        }
    }
}

impl CallRules {
    /// The evaluation method of the call's projects: its points, grade bands and
    /// overshoot threshold.
    pub fn evaluation_method(&self) -> EvaluationMethod {
        let e = &self.evaluation;
        EvaluationMethod {
            budget_execution_points: e.budget_execution_points,
            output_points: e.output_points,
            effect_points: e.effect_points,
            satisfaction_points: e.satisfaction_points,
            explanation_threshold: self.overshoot_threshold,
            grade_bounds: GradeBounds {
                excellent: f64::from(e.excellent_from),
                good: f64::from(e.good_from),
                fair: f64::from(e.fair_from),
            },
        }
    }
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
            evaluation: EvaluationRules::default(),
            evaluation_difference_threshold: 10.0,
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
        let e = &self.evaluation;
        let points = [
            e.budget_execution_points,
            e.output_points,
            e.effect_points,
            e.satisfaction_points,
        ];
        if points.iter().any(|p| !p.is_finite() || *p < 0.0)
            || (points.iter().sum::<f64>() - 100.0).abs() > 1e-9
        {
            return Err(err(
                "evaluation",
                format!(
                    "绩效评价各部分分值须为非负数且合计 100（当前 {}）",
                    points.iter().sum::<f64>()
                ),
                format!(
                    "the evaluation's points must be non-negative and sum to 100 (they sum to {})",
                    points.iter().sum::<f64>()
                ),
            ));
        }
        if !(0 < e.fair_from
            && e.fair_from < e.good_from
            && e.good_from < e.excellent_from
            && e.excellent_from <= 100)
        {
            return Err(err(
                "evaluation",
                "等级分数线须满足 0 < 中 < 良 < 优 ≤ 100",
                "the grade bands must satisfy 0 < fair < good < excellent ≤ 100",
            ));
        }
        if !(self.evaluation_difference_threshold.is_finite()
            && (0.0..=100.0).contains(&self.evaluation_difference_threshold))
        {
            return Err(err(
                "evaluation_difference_threshold",
                "评价差异提示阈值须在 0 到 100 分之间",
                "the evaluation difference threshold must be 0 to 100 points",
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
        let (e, de) = (&self.evaluation, &d.evaluation);
        // Points are decimals and bands whole points: each is shown as its JSON value.
        for (key, zh, en, value, default) in [
            (
                "budget_execution_points",
                "绩效评价：预算执行分值",
                "Evaluation: points of budget execution",
                json(&e.budget_execution_points),
                json(&de.budget_execution_points),
            ),
            (
                "output_points",
                "绩效评价：产出指标分值",
                "Evaluation: points of the output indicators",
                json(&e.output_points),
                json(&de.output_points),
            ),
            (
                "effect_points",
                "绩效评价：效益指标分值",
                "Evaluation: points of the effect indicators",
                json(&e.effect_points),
                json(&de.effect_points),
            ),
            (
                "satisfaction_points",
                "绩效评价：满意度指标分值",
                "Evaluation: points of the satisfaction indicators",
                json(&e.satisfaction_points),
                json(&de.satisfaction_points),
            ),
            (
                "excellent_from",
                "绩效评价：「优」的最低分",
                "Evaluation: lowest total graded excellent",
                json(&e.excellent_from),
                json(&de.excellent_from),
            ),
            (
                "good_from",
                "绩效评价：「良」的最低分",
                "Evaluation: lowest total graded good",
                json(&e.good_from),
                json(&de.good_from),
            ),
            (
                "fair_from",
                "绩效评价：「中」的最低分（以下为「差」）",
                "Evaluation: lowest total graded fair (below: poor)",
                json(&e.fair_from),
                json(&de.fair_from),
            ),
        ] {
            push(&format!("evaluation.{key}"), zh, en, value, default);
        }
        push(
            "evaluation_difference_threshold",
            "自评与第三方/处室评价差异提示（分）",
            "Difference flagged between self, third-party and manager evaluation (points)",
            json(&self.evaluation_difference_threshold),
            json(&d.evaluation_difference_threshold),
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
        assert_eq!(
            bad("[evaluation]\noutput_points = 60"),
            "evaluation",
            "points summing to 110"
        );
        assert_eq!(
            bad("[evaluation]\ngood_from = 95"),
            "evaluation",
            "良 above 优"
        );
    }

    #[test]
    fn the_evaluation_s_points_and_bands_are_call_settings_with_today_s_defaults() {
        let d = CallRules::default();
        assert_eq!(d.evaluation_method(), EvaluationMethod::default());
        let rules: CallRules = toml::from_str(
            "overshoot_threshold = 0.5\n[evaluation]\noutput_points = 40\neffect_points = 40\ngood_from = 70",
        )
        .unwrap();
        rules.check().unwrap();
        let m = rules.evaluation_method();
        assert_eq!(
            (
                m.budget_execution_points,
                m.output_points,
                m.effect_points,
                m.satisfaction_points
            ),
            (10.0, 40.0, 40.0, 10.0)
        );
        assert_eq!(
            (
                m.grade_bounds.excellent,
                m.grade_bounds.good,
                m.grade_bounds.fair
            ),
            (90.0, 70.0, 60.0)
        );
        assert_eq!(m.explanation_threshold, 0.5);
        m.check().unwrap();
        let settings = rules.settings();
        let get = |k: &str| settings.iter().find(|s| s.key == k).unwrap();
        assert_eq!(get("evaluation.output_points").value, "40.0");
        assert_eq!(get("evaluation.output_points").default_value, "50.0");
        assert!(!get("evaluation.good_from").is_default);
        assert!(get("evaluation.excellent_from").is_default);
        assert!(get("evaluation.budget_execution_points").is_default);
    }
}
