//! Performance evaluation (项目绩效评价): a score out of 100 and a grade.
//!
//! The default method ([`EvaluationMethod::default`]) gives
//! budget execution 10, outputs (产出) 50, effects (效益) 30 and satisfaction (满意度) 10
//! points. When a project has no satisfaction indicator, those points go to effects.
//!
//! * Budget execution scores its points times the execution rate (spent ÷ budgeted,
//!   capped at 1).
//! * Within a group each indicator's points are the group's points times its weight
//!   divided by the sum of the group's weights.
//! * A quantitative indicator scores full points at or beyond its target. Short of it,
//!   it scores pro rata of its progress: with a baseline, (actual − baseline) ÷ (target −
//!   baseline), because the project is funded for the improvement, not for what existed
//!   before; without one (or when baseline = target, a "keep at" target), actual ÷ target.
//!   Lower-is-better mirrors this: (baseline − actual) ÷ (baseline − target), or target ÷
//!   actual without a baseline. The fraction is clamped to 0..=1. A cumulative indicator
//!   (the table's values in brackets: the target is an increase over the period) scores
//!   actual ÷ target, its baseline aside.
//! * The attribute (预期性 / 约束性), the years and the unit are carried with the targets
//!   and shown in the evaluation's export; they do not change the points.
//! * A qualitative indicator scores the percentage the evaluator gives within the band
//!   of the achievement level: achieved 80–100 %, partly achieved 60–80 %, not achieved
//!   0–60 % (bounds inclusive).
//! * An actual more than 30 % (the default of the call's `overshoot_threshold`) beyond its
//!   target (relative to the target, in the better direction) needs a written
//!   explanation, or the evaluation is refused: a target beaten that far was probably set
//!   too low.
//! * The total is the sum of unrounded points, rounded half up to 2 decimals; the grade
//!   is taken from the rounded total: 优 ≥ 90, 良 ≥ 80, 中 ≥ 60, 差 below. Group and
//!   indicator points are reported rounded to 2 decimals too, so their sum may differ
//!   from the total by a cent of a point.

use std::collections::BTreeMap;

use grantflow_domain::{Lang, Money};
use serde::{Deserialize, Serialize};

use crate::UserFacing;
use crate::budget::ProjectLedger;
use crate::indicator::{
    Checkpoint, Direction, Indicator, IndicatorError, IndicatorGroup, IndicatorSet, IndicatorValue,
    check_indicators,
};
use crate::messages::{impl_error_via_user_facing, pick};

/// How a project is scored. Points must sum to 100.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationMethod {
    pub budget_execution_points: f64,
    pub output_points: f64,
    pub effect_points: f64,
    /// Moved to effects when the project has no satisfaction indicator.
    pub satisfaction_points: f64,
    /// Relative excess over the target beyond which an explanation is required.
    pub explanation_threshold: f64,
    pub grade_bounds: GradeBounds,
}

/// Lowest totals of the three upper grades.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradeBounds {
    pub excellent: f64,
    pub good: f64,
    pub fair: f64,
}

impl Default for EvaluationMethod {
    fn default() -> Self {
        Self {
            budget_execution_points: 10.0,
            output_points: 50.0,
            effect_points: 30.0,
            satisfaction_points: 10.0,
            explanation_threshold: 0.30,
            grade_bounds: GradeBounds {
                excellent: 90.0,
                good: 80.0,
                fair: 60.0,
            },
        }
    }
}

/// 优 / 良 / 中 / 差
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    Excellent,
    Good,
    Fair,
    Poor,
}

impl Grade {
    pub const ALL: [Self; 4] = [Self::Excellent, Self::Good, Self::Fair, Self::Poor];

    pub fn name(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::Excellent, Lang::ZhCn) => "优",
            (Self::Excellent, Lang::En) => "excellent",
            (Self::Good, Lang::ZhCn) => "良",
            (Self::Good, Lang::En) => "good",
            (Self::Fair, Lang::ZhCn) => "中",
            (Self::Fair, Lang::En) => "fair",
            (Self::Poor, Lang::ZhCn) => "差",
            (Self::Poor, Lang::En) => "poor",
        }
    }

    /// The grade of its Chinese or English name (as [`Grade::name`] writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|g| g.name(Lang::ZhCn) == name || g.name(Lang::En) == name)
    }

    pub fn from_total(total: f64, bounds: &GradeBounds) -> Self {
        if total >= bounds.excellent {
            Self::Excellent
        } else if total >= bounds.good {
            Self::Good
        } else if total >= bounds.fair {
            Self::Fair
        } else {
            Self::Poor
        }
    }
}

/// The evaluator's judgement of a qualitative indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Achievement {
    /// 达成: 80–100 %
    Achieved,
    /// 部分达成: 60–80 %
    PartlyAchieved,
    /// 未达成: 0–60 %
    NotAchieved,
}

impl Achievement {
    /// The band of percentages of the indicator's points, inclusive.
    pub fn band(self) -> (f64, f64) {
        match self {
            Self::Achieved => (80.0, 100.0),
            Self::PartlyAchieved => (60.0, 80.0),
            Self::NotAchieved => (0.0, 60.0),
        }
    }

    pub fn name(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::Achieved, Lang::ZhCn) => "达成",
            (Self::Achieved, Lang::En) => "achieved",
            (Self::PartlyAchieved, Lang::ZhCn) => "部分达成",
            (Self::PartlyAchieved, Lang::En) => "partly achieved",
            (Self::NotAchieved, Lang::ZhCn) => "未达成",
            (Self::NotAchieved, Lang::En) => "not achieved",
        }
    }
}

/// What was achieved on one indicator, as the evaluation sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Quantitative {
        actual: f64,
        #[serde(default)]
        explanation: Option<String>,
    },
    Qualitative {
        achievement: Achievement,
        /// Percentage of the indicator's points, within the achievement's band.
        percent: f64,
    },
}

/// Everything needed to score one project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationInput {
    pub project_id: String,
    pub project_name: String,
    /// The indicators frozen at approval (after any approved change).
    pub indicators: Vec<Indicator>,
    /// Outcome per indicator id.
    pub outcomes: BTreeMap<String, Outcome>,
    pub budgeted: Money,
    pub spent: Money,
}

impl EvaluationInput {
    /// Builds the input from stored records: acceptance actuals of a frozen indicator
    /// set (with their explanations), the evaluator's judgement of qualitative
    /// indicators, and the ledger's execution. Indicators without a recorded actual (or
    /// qualitative ones without a judgement) are left out and reported by [`evaluate`].
    pub fn from_records(
        project_name: impl Into<String>,
        indicators: &IndicatorSet,
        judgements: &BTreeMap<String, (Achievement, f64)>,
        ledger: &ProjectLedger,
    ) -> Self {
        let mut outcomes = BTreeMap::new();
        for i in &indicators.indicators {
            let outcome = if i.is_quantitative() {
                indicators
                    .actual(&i.id, Checkpoint::Acceptance)
                    .and_then(|a| match &a.value {
                        IndicatorValue::Number(n) => Some(Outcome::Quantitative {
                            actual: *n,
                            explanation: a.explanation.clone(),
                        }),
                        IndicatorValue::Text(_) => None,
                    })
            } else {
                judgements
                    .get(&i.id)
                    .map(|&(achievement, percent)| Outcome::Qualitative {
                        achievement,
                        percent,
                    })
            };
            if let Some(o) = outcome {
                outcomes.insert(i.id.clone(), o);
            }
        }
        Self {
            project_id: ledger.project_id.clone(),
            project_name: project_name.into(),
            indicators: indicators.indicators.clone(),
            outcomes,
            budgeted: ledger.budgeted(),
            spent: ledger.spent(),
        }
    }
}

/// The parts of the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScorePart {
    BudgetExecution,
    Output,
    Effect,
    Satisfaction,
}

impl ScorePart {
    pub fn name(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::BudgetExecution, Lang::ZhCn) => "预算执行",
            (Self::BudgetExecution, Lang::En) => "budget execution",
            (Self::Output, _) => IndicatorGroup::Output.name(lang),
            (Self::Effect, _) => IndicatorGroup::Effect.name(lang),
            (Self::Satisfaction, _) => IndicatorGroup::Satisfaction.name(lang),
        }
    }

    fn of(group: IndicatorGroup) -> Self {
        match group {
            IndicatorGroup::Output => Self::Output,
            IndicatorGroup::Effect => Self::Effect,
            IndicatorGroup::Satisfaction => Self::Satisfaction,
        }
    }
}

/// Points of one part: what it could give and what it gave (rounded to 2 decimals).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PartScore {
    pub part: ScorePart,
    pub max_points: f64,
    pub points: f64,
}

/// Points of one indicator (rounded to 2 decimals; `fraction` unrounded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorScore {
    pub indicator_id: String,
    pub name: String,
    pub part: ScorePart,
    pub max_points: f64,
    /// Share of the points earned, 0..=1.
    pub fraction: f64,
    pub points: f64,
}

/// A scored project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationResult {
    pub project_id: String,
    pub project_name: String,
    pub budgeted: Money,
    pub spent: Money,
    pub execution_rate: f64,
    /// Budget execution, output, effect, satisfaction, in that order.
    pub parts: Vec<PartScore>,
    pub indicators: Vec<IndicatorScore>,
    /// Out of 100, rounded to 2 decimals.
    pub total: f64,
    pub grade: Grade,
}

impl EvaluationResult {
    pub fn part(&self, part: ScorePart) -> Option<&PartScore> {
        self.parts.iter().find(|p| p.part == part)
    }
}

/// Why a project cannot be scored.
#[derive(Debug, Clone, PartialEq)]
pub enum EvaluationError {
    /// The method's points are negative, do not sum to 100, or its bounds are disordered.
    MethodInvalid {
        detail: String,
    },
    Indicator(IndicatorError),
    /// Outputs and effects must each have an indicator (satisfaction may be absent).
    GroupEmpty {
        group: IndicatorGroup,
    },
    OutcomeMissing {
        indicator_id: String,
    },
    /// An outcome for an indicator the project does not have.
    OutcomeUnknown {
        indicator_id: String,
    },
    /// A qualitative judgement for a quantitative indicator or the reverse.
    OutcomeKind {
        indicator_id: String,
    },
    ActualNotFinite {
        indicator_id: String,
    },
    PercentOutOfBand {
        indicator_id: String,
        achievement: Achievement,
        percent: f64,
    },
    ExplanationRequired {
        indicator_id: String,
        actual: f64,
        target: f64,
        beyond_percent: f64,
    },
    NoBudget,
}

impl UserFacing for EvaluationError {
    fn code(&self) -> &'static str {
        match self {
            Self::MethodInvalid { .. } => "EVALUATION_METHOD_INVALID",
            Self::Indicator(e) => e.code(),
            Self::GroupEmpty { .. } => "EVALUATION_GROUP_EMPTY",
            Self::OutcomeMissing { .. } => "EVALUATION_OUTCOME_MISSING",
            Self::OutcomeUnknown { .. } => "EVALUATION_OUTCOME_UNKNOWN",
            Self::OutcomeKind { .. } => "EVALUATION_OUTCOME_KIND",
            Self::ActualNotFinite { .. } => "EVALUATION_ACTUAL_NOT_FINITE",
            Self::PercentOutOfBand { .. } => "EVALUATION_PERCENT_OUT_OF_BAND",
            Self::ExplanationRequired { .. } => "EVALUATION_EXPLANATION_REQUIRED",
            Self::NoBudget => "EVALUATION_NO_BUDGET",
        }
    }

    fn message(&self, lang: Lang) -> String {
        match self {
            Self::MethodInvalid { detail } => pick(
                lang,
                format!("评价方法设置有误：{detail}"),
                format!("the evaluation method is invalid: {detail}"),
            ),
            Self::Indicator(e) => e.message(lang),
            Self::GroupEmpty { group } => pick(
                lang,
                format!("缺少{}，无法评价", group.name(Lang::ZhCn)),
                format!("no {} indicator: cannot evaluate", group.name(Lang::En)),
            ),
            Self::OutcomeMissing { indicator_id } => pick(
                lang,
                format!("绩效指标 {indicator_id} 缺少实际完成值或评价结论"),
                format!("indicator {indicator_id} has no actual value or judgement"),
            ),
            Self::OutcomeUnknown { indicator_id } => pick(
                lang,
                format!("项目没有编号为 {indicator_id} 的绩效指标"),
                format!("the project has no indicator {indicator_id}"),
            ),
            Self::OutcomeKind { indicator_id } => pick(
                lang,
                format!("绩效指标 {indicator_id}：定量指标须填实际值，定性指标须给出达成程度"),
                format!(
                    "indicator {indicator_id}: a quantitative indicator needs an actual value, a qualitative one a judgement"
                ),
            ),
            Self::ActualNotFinite { indicator_id } => pick(
                lang,
                format!("绩效指标 {indicator_id} 的实际值无效"),
                format!("indicator {indicator_id}: the actual value is not a finite number"),
            ),
            Self::PercentOutOfBand {
                indicator_id,
                achievement,
                percent,
            } => {
                let (low, high) = achievement.band();
                pick(
                    lang,
                    format!(
                        "绩效指标 {indicator_id}：「{}」的得分比例须在 {low}%–{high}% 之间（当前 {percent}%）",
                        achievement.name(Lang::ZhCn)
                    ),
                    format!(
                        "indicator {indicator_id}: `{}` scores {low}–{high} % (got {percent} %)",
                        achievement.name(Lang::En)
                    ),
                )
            }
            Self::ExplanationRequired {
                indicator_id,
                actual,
                target,
                beyond_percent,
            } => pick(
                lang,
                format!(
                    "绩效指标 {indicator_id} 实际值 {actual} 超出目标值 {target} 达 {beyond_percent:.1}%，须提供书面说明"
                ),
                format!(
                    "indicator {indicator_id}: actual {actual} is {beyond_percent:.1} % beyond target {target}; a written explanation is required"
                ),
            ),
            Self::NoBudget => pick(
                lang,
                "项目没有预算，无法计算预算执行率".to_string(),
                "the project has no budget: the execution rate is undefined".to_string(),
            ),
        }
    }
}
impl_error_via_user_facing!(EvaluationError);

/// Rounds half up to 2 decimals. The tiny nudge keeps values such as 89.995, stored as
/// 89.99499999…, from rounding down.
pub fn round2(x: f64) -> f64 {
    (x * 100.0 + 1e-7).round() / 100.0
}

impl EvaluationMethod {
    pub fn check(&self) -> Result<(), EvaluationError> {
        let points = [
            self.budget_execution_points,
            self.output_points,
            self.effect_points,
            self.satisfaction_points,
        ];
        let invalid = |detail: String| Err(EvaluationError::MethodInvalid { detail });
        if points.iter().any(|p| !p.is_finite() || *p < 0.0) {
            return invalid("points must be non-negative numbers".into());
        }
        let sum: f64 = points.iter().sum();
        if (sum - 100.0).abs() > 1e-9 {
            return invalid(format!("points sum to {sum}, not 100"));
        }
        if !self.explanation_threshold.is_finite() || self.explanation_threshold < 0.0 {
            return invalid("the explanation threshold must be non-negative".into());
        }
        let b = &self.grade_bounds;
        if !(b.excellent >= b.good && b.good >= b.fair) {
            return invalid("grade bounds must descend: excellent ≥ good ≥ fair".into());
        }
        Ok(())
    }
}

/// Share of a quantitative indicator's points earned by `actual`, 0..=1.
pub fn quantitative_fraction(indicator: &Indicator, actual: f64) -> f64 {
    let Some(target) = indicator.target.as_number() else {
        return 0.0;
    };
    // A cumulative target is itself the increase: the baseline (the previous period's
    // increase, in the table's brackets) does not count against it.
    let baseline = indicator
        .baseline
        .filter(|b| *b != target && !indicator.cumulative);
    let fraction = match indicator.direction {
        Direction::HigherIsBetter => {
            if actual >= target {
                1.0
            } else if let Some(b) = baseline {
                (actual - b) / (target - b)
            } else if target > 0.0 {
                actual / target
            } else {
                0.0
            }
        }
        Direction::LowerIsBetter => {
            if actual <= target {
                1.0
            } else if let Some(b) = baseline {
                (b - actual) / (b - target)
            } else if actual > 0.0 {
                target / actual
            } else {
                0.0
            }
        }
        Direction::Qualitative => 0.0,
    };
    fraction.clamp(0.0, 1.0)
}

/// Scores one project. Returns every problem found, not just the first.
pub fn evaluate(
    method: &EvaluationMethod,
    input: &EvaluationInput,
) -> Result<EvaluationResult, Vec<EvaluationError>> {
    let mut errors = Vec::new();
    if let Err(e) = method.check() {
        return Err(vec![e]);
    }
    errors.extend(
        check_indicators(&input.indicators)
            .into_iter()
            .map(EvaluationError::Indicator),
    );
    let has = |g: IndicatorGroup| input.indicators.iter().any(|i| i.group() == g);
    for group in [IndicatorGroup::Output, IndicatorGroup::Effect] {
        if !has(group) {
            errors.push(EvaluationError::GroupEmpty { group });
        }
    }
    for id in input.outcomes.keys() {
        if !input.indicators.iter().any(|i| &i.id == id) {
            errors.push(EvaluationError::OutcomeUnknown {
                indicator_id: id.clone(),
            });
        }
    }
    let execution_rate = input.spent.ratio_of(input.budgeted);
    if execution_rate.is_none() || input.budgeted.is_negative() {
        errors.push(EvaluationError::NoBudget);
    }

    // Points per group, with satisfaction moved to effects when there is none.
    let (effect_points, satisfaction_points) = if has(IndicatorGroup::Satisfaction) {
        (method.effect_points, method.satisfaction_points)
    } else {
        (method.effect_points + method.satisfaction_points, 0.0)
    };
    let group_points = |g: IndicatorGroup| match g {
        IndicatorGroup::Output => method.output_points,
        IndicatorGroup::Effect => effect_points,
        IndicatorGroup::Satisfaction => satisfaction_points,
    };
    let weight_sum = |g: IndicatorGroup| -> f64 {
        input
            .indicators
            .iter()
            .filter(|i| i.group() == g)
            .map(|i| i.weight)
            .sum()
    };

    let mut indicator_scores = Vec::new();
    for indicator in &input.indicators {
        let id = indicator.id.clone();
        let group = indicator.group();
        let max_points = group_points(group) * indicator.weight / weight_sum(group);
        let fraction = match (input.outcomes.get(&id), indicator.is_quantitative()) {
            (None, _) => {
                errors.push(EvaluationError::OutcomeMissing { indicator_id: id });
                continue;
            }
            (
                Some(Outcome::Quantitative {
                    actual,
                    explanation,
                }),
                true,
            ) => {
                if !actual.is_finite() {
                    errors.push(EvaluationError::ActualNotFinite { indicator_id: id });
                    continue;
                }
                let beyond = indicator.beyond_target(*actual);
                let explained = explanation.as_deref().is_some_and(|e| !e.trim().is_empty());
                // The tolerance keeps "exactly 30 %" (e.g. 4 → 2.8, 0.30000000000000004 in
                // binary) from needing an explanation.
                if beyond > method.explanation_threshold + 1e-9 && !explained {
                    errors.push(EvaluationError::ExplanationRequired {
                        indicator_id: id,
                        actual: *actual,
                        target: indicator.target.as_number().unwrap_or_default(),
                        beyond_percent: beyond * 100.0,
                    });
                    continue;
                }
                quantitative_fraction(indicator, *actual)
            }
            (
                Some(Outcome::Qualitative {
                    achievement,
                    percent,
                }),
                false,
            ) => {
                let (low, high) = achievement.band();
                if !(percent.is_finite() && (low..=high).contains(percent)) {
                    errors.push(EvaluationError::PercentOutOfBand {
                        indicator_id: id,
                        achievement: *achievement,
                        percent: *percent,
                    });
                    continue;
                }
                percent / 100.0
            }
            (Some(_), _) => {
                errors.push(EvaluationError::OutcomeKind { indicator_id: id });
                continue;
            }
        };
        indicator_scores.push((indicator, max_points, fraction));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let execution_rate = execution_rate.unwrap_or_default();
    let budget_points = method.budget_execution_points * execution_rate.clamp(0.0, 1.0);
    let mut parts = vec![PartScore {
        part: ScorePart::BudgetExecution,
        max_points: method.budget_execution_points,
        points: budget_points,
    }];
    for group in [
        IndicatorGroup::Output,
        IndicatorGroup::Effect,
        IndicatorGroup::Satisfaction,
    ] {
        let points = indicator_scores
            .iter()
            .filter(|(i, _, _)| i.group() == group)
            .map(|(_, max, f)| max * f)
            .sum();
        parts.push(PartScore {
            part: ScorePart::of(group),
            max_points: group_points(group),
            points,
        });
    }
    let total = round2(parts.iter().map(|p| p.points).sum());
    for p in &mut parts {
        p.points = round2(p.points);
    }
    Ok(EvaluationResult {
        project_id: input.project_id.clone(),
        project_name: input.project_name.clone(),
        budgeted: input.budgeted,
        spent: input.spent,
        execution_rate,
        parts,
        indicators: indicator_scores
            .into_iter()
            .map(|(i, max_points, fraction)| IndicatorScore {
                indicator_id: i.id.clone(),
                name: i.name.clone(),
                part: ScorePart::of(i.group()),
                max_points: round2(max_points),
                fraction,
                points: round2(max_points * fraction),
            })
            .collect(),
        total,
        grade: Grade::from_total(total, &method.grade_bounds),
    })
}

/// How many projects got each grade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradeCounts {
    pub excellent: usize,
    pub good: usize,
    pub fair: usize,
    pub poor: usize,
}

impl GradeCounts {
    pub fn get(&self, grade: Grade) -> usize {
        match grade {
            Grade::Excellent => self.excellent,
            Grade::Good => self.good,
            Grade::Fair => self.fair,
            Grade::Poor => self.poor,
        }
    }

    pub fn add(&mut self, grade: Grade) {
        match grade {
            Grade::Excellent => self.excellent += 1,
            Grade::Good => self.good += 1,
            Grade::Fair => self.fair += 1,
            Grade::Poor => self.poor += 1,
        }
    }
}

/// A call's evaluation at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    pub projects: usize,
    pub grades: GradeCounts,
    /// Mean of the totals, rounded to 2 decimals; `None` without projects.
    pub average_total: Option<f64>,
    pub budgeted: Money,
    pub spent: Money,
    /// Sum spent ÷ sum budgeted (weighted by budget).
    pub execution_rate: Option<f64>,
}

/// Grade distribution and budget execution over a call's evaluated projects.
pub fn summarize_call(results: &[EvaluationResult]) -> CallSummary {
    let mut grades = GradeCounts::default();
    for r in results {
        grades.add(r.grade);
    }
    let budgeted: Money = results.iter().map(|r| r.budgeted).sum();
    let spent: Money = results.iter().map(|r| r.spent).sum();
    CallSummary {
        projects: results.len(),
        grades,
        average_total: (!results.is_empty())
            .then(|| round2(results.iter().map(|r| r.total).sum::<f64>() / results.len() as f64)),
        budgeted,
        spent,
        execution_rate: spent.ratio_of(budgeted),
    }
}
