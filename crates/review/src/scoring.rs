//! Score submission: checking a rubric, validating one expert's scores against it, and the
//! weighted total on 0–100.

use std::collections::{BTreeMap, BTreeSet};

use grantflow_domain::{CriterionDef, Lang};
use serde::{Deserialize, Serialize};

use crate::error::ReviewError;
use crate::{CriterionId, round6};

/// Tolerance for "on the step" and "weights sum to 1": far above binary rounding noise,
/// far below anything a person would type.
const EPSILON: f64 = 1e-9;

/// The score an expert gives one criterion, with an optional comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionScore {
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl CriterionScore {
    pub fn new(score: f64) -> Self {
        Self {
            score,
            comment: None,
        }
    }

    pub fn with_comment(score: f64, comment: impl Into<String>) -> Self {
        Self {
            score,
            comment: Some(comment.into()),
        }
    }

    fn has_comment(&self) -> bool {
        self.comment
            .as_deref()
            .is_some_and(|c| !c.trim().is_empty())
    }
}

/// What an expert submits: a score per criterion id. Not yet validated.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScoreSheet {
    pub scores: BTreeMap<CriterionId, CriterionScore>,
}

impl ScoreSheet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a score; builder style for forms and tests.
    pub fn with(mut self, criterion_id: impl Into<String>, score: CriterionScore) -> Self {
        self.scores.insert(criterion_id.into(), score);
        self
    }
}

/// A score sheet that passed [`validate_scores`], with its total. Only `validate_scores`
/// makes one, so a card in an assignment is always complete and on the scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreCard {
    scores: BTreeMap<CriterionId, CriterionScore>,
    total: f64,
    failing: Vec<CriterionId>,
}

impl ScoreCard {
    pub fn scores(&self) -> &BTreeMap<CriterionId, CriterionScore> {
        &self.scores
    }

    pub fn score(&self, criterion_id: &str) -> Option<f64> {
        self.scores.get(criterion_id).map(|s| s.score)
    }

    /// Weighted total on 0–100, see [`weighted_total`].
    pub fn total(&self) -> f64 {
        self.total
    }

    /// Criteria scored below their `minimum`, in rubric order.
    pub fn failing(&self) -> &[CriterionId] {
        &self.failing
    }
}

/// What is wrong with one criterion's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScoreProblem {
    /// The rubric has the criterion, the sheet does not.
    Missing,
    /// The sheet has a criterion the rubric does not.
    UnknownCriterion,
    /// NaN or infinite.
    NotFinite,
    OutOfRange {
        min: f64,
        max: f64,
    },
    /// Not `min + k × step` for a whole k.
    OffStep {
        min: f64,
        step: f64,
    },
    /// Scores below `threshold` need a comment.
    CommentRequiredBelow {
        threshold: f64,
    },
    /// Scores above `threshold` need a comment.
    CommentRequiredAbove {
        threshold: f64,
    },
}

/// One problem with one criterion of a score sheet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionError {
    pub criterion_id: CriterionId,
    pub problem: ScoreProblem,
}

impl CriterionError {
    pub fn code(&self) -> &'static str {
        match self.problem {
            ScoreProblem::Missing => "SCORE_MISSING",
            ScoreProblem::UnknownCriterion => "SCORE_UNKNOWN_CRITERION",
            ScoreProblem::NotFinite => "SCORE_NOT_A_NUMBER",
            ScoreProblem::OutOfRange { .. } => "SCORE_OUT_OF_RANGE",
            ScoreProblem::OffStep { .. } => "SCORE_OFF_STEP",
            ScoreProblem::CommentRequiredBelow { .. } => "SCORE_COMMENT_REQUIRED_BELOW",
            ScoreProblem::CommentRequiredAbove { .. } => "SCORE_COMMENT_REQUIRED_ABOVE",
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        let id = &self.criterion_id;
        match (&self.problem, lang) {
            (ScoreProblem::Missing, Lang::ZhCn) => format!("评分项“{id}”未评分"),
            (ScoreProblem::Missing, Lang::En) => format!("criterion \"{id}\" has no score"),
            (ScoreProblem::UnknownCriterion, Lang::ZhCn) => {
                format!("评分表中没有评分项“{id}”")
            }
            (ScoreProblem::UnknownCriterion, Lang::En) => {
                format!("the rubric has no criterion \"{id}\"")
            }
            (ScoreProblem::NotFinite, Lang::ZhCn) => format!("评分项“{id}”的分数不是有效数字"),
            (ScoreProblem::NotFinite, Lang::En) => {
                format!("the score of criterion \"{id}\" is not a number")
            }
            (ScoreProblem::OutOfRange { min, max }, Lang::ZhCn) => {
                format!("评分项“{id}”的分数须在 {min} 至 {max} 之间")
            }
            (ScoreProblem::OutOfRange { min, max }, Lang::En) => {
                format!("the score of criterion \"{id}\" must be between {min} and {max}")
            }
            (ScoreProblem::OffStep { min, step }, Lang::ZhCn) => {
                format!("评分项“{id}”的分数须从 {min} 起按 {step} 分递增")
            }
            (ScoreProblem::OffStep { min, step }, Lang::En) => {
                format!("the score of criterion \"{id}\" must be {min} plus a multiple of {step}")
            }
            (ScoreProblem::CommentRequiredBelow { threshold }, Lang::ZhCn) => {
                format!("评分项“{id}”低于 {threshold} 分时须填写评语")
            }
            (ScoreProblem::CommentRequiredBelow { threshold }, Lang::En) => {
                format!("criterion \"{id}\" needs a comment for scores below {threshold}")
            }
            (ScoreProblem::CommentRequiredAbove { threshold }, Lang::ZhCn) => {
                format!("评分项“{id}”高于 {threshold} 分时须填写评语")
            }
            (ScoreProblem::CommentRequiredAbove { threshold }, Lang::En) => {
                format!("criterion \"{id}\" needs a comment for scores above {threshold}")
            }
        }
    }
}

/// What is wrong with a rubric (the criteria of a review round).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RubricProblem {
    NoCriteria,
    DuplicateCriterion {
        id: CriterionId,
    },
    /// Weights must be finite and positive.
    BadWeight {
        id: CriterionId,
        weight: f64,
    },
    WeightsDoNotSumToOne {
        sum: f64,
    },
    /// The scale needs finite `min < max` and a positive step.
    BadScale {
        id: CriterionId,
    },
    /// `max − min` must be a whole number of steps, or `max` cannot be scored.
    StepDoesNotDivideScale {
        id: CriterionId,
    },
    /// `minimum`, `comment_below` or `comment_above` lies outside the scale.
    ThresholdOutsideScale {
        id: CriterionId,
        threshold: String,
        value: f64,
    },
}

impl RubricProblem {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoCriteria => "RUBRIC_EMPTY",
            Self::DuplicateCriterion { .. } => "RUBRIC_DUPLICATE_CRITERION",
            Self::BadWeight { .. } => "RUBRIC_BAD_WEIGHT",
            Self::WeightsDoNotSumToOne { .. } => "RUBRIC_WEIGHTS_NOT_ONE",
            Self::BadScale { .. } => "RUBRIC_BAD_SCALE",
            Self::StepDoesNotDivideScale { .. } => "RUBRIC_STEP_MISMATCH",
            Self::ThresholdOutsideScale { .. } => "RUBRIC_THRESHOLD_OUTSIDE_SCALE",
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (Self::NoCriteria, Lang::ZhCn) => "评分表没有评分项".into(),
            (Self::NoCriteria, Lang::En) => "the rubric has no criteria".into(),
            (Self::DuplicateCriterion { id }, Lang::ZhCn) => {
                format!("评分项“{id}”重复")
            }
            (Self::DuplicateCriterion { id }, Lang::En) => {
                format!("criterion \"{id}\" appears twice")
            }
            (Self::BadWeight { id, weight }, Lang::ZhCn) => {
                format!("评分项“{id}”的权重 {weight} 无效，须为正数")
            }
            (Self::BadWeight { id, weight }, Lang::En) => {
                format!("criterion \"{id}\" has an invalid weight {weight}; it must be positive")
            }
            (Self::WeightsDoNotSumToOne { sum }, Lang::ZhCn) => {
                format!("各评分项权重之和为 {sum}，须为 1")
            }
            (Self::WeightsDoNotSumToOne { sum }, Lang::En) => {
                format!("the weights sum to {sum}; they must sum to 1")
            }
            (Self::BadScale { id }, Lang::ZhCn) => {
                format!("评分项“{id}”的分值范围或步长无效")
            }
            (Self::BadScale { id }, Lang::En) => {
                format!("criterion \"{id}\" has an invalid scale or step")
            }
            (Self::StepDoesNotDivideScale { id }, Lang::ZhCn) => {
                format!("评分项“{id}”的分值范围不是步长的整数倍")
            }
            (Self::StepDoesNotDivideScale { id }, Lang::En) => {
                format!("the scale of criterion \"{id}\" is not a whole number of steps")
            }
            (
                Self::ThresholdOutsideScale {
                    id,
                    threshold,
                    value,
                },
                Lang::ZhCn,
            ) => format!("评分项“{id}”的 {threshold} = {value} 超出分值范围"),
            (
                Self::ThresholdOutsideScale {
                    id,
                    threshold,
                    value,
                },
                Lang::En,
            ) => format!("criterion \"{id}\": {threshold} = {value} lies outside the scale"),
        }
    }
}

fn is_whole(x: f64) -> bool {
    (x - x.round()).abs() <= EPSILON * x.abs().max(1.0)
}

/// Checks a rubric: at least one criterion, unique ids, positive weights summing to 1,
/// sensible scales, thresholds on the scale. Reports every problem at once.
pub fn validate_rubric(criteria: &[CriterionDef]) -> Result<(), ReviewError> {
    let mut problems = Vec::new();
    if criteria.is_empty() {
        problems.push(RubricProblem::NoCriteria);
    }
    let mut ids = BTreeSet::new();
    let mut sum = 0.0;
    for c in criteria {
        if !ids.insert(c.id.as_str()) {
            problems.push(RubricProblem::DuplicateCriterion { id: c.id.clone() });
        }
        if !c.weight.is_finite() || c.weight <= 0.0 {
            problems.push(RubricProblem::BadWeight {
                id: c.id.clone(),
                weight: c.weight,
            });
        } else {
            sum += c.weight;
        }
        let s = c.scale;
        let scale_ok = s.min.is_finite()
            && s.max.is_finite()
            && s.step.is_finite()
            && s.min < s.max
            && s.step > 0.0;
        if !scale_ok {
            problems.push(RubricProblem::BadScale { id: c.id.clone() });
            continue;
        }
        if !is_whole((s.max - s.min) / s.step) {
            problems.push(RubricProblem::StepDoesNotDivideScale { id: c.id.clone() });
        }
        for (name, value) in [
            ("minimum", c.minimum),
            ("comment_below", c.comment_below),
            ("comment_above", c.comment_above),
        ] {
            if let Some(value) = value
                && !(value.is_finite() && s.min <= value && value <= s.max)
            {
                problems.push(RubricProblem::ThresholdOutsideScale {
                    id: c.id.clone(),
                    threshold: name.into(),
                    value,
                });
            }
        }
    }
    if !criteria.is_empty() && (sum - 1.0).abs() > 1e-6 {
        problems.push(RubricProblem::WeightsDoNotSumToOne { sum: round6(sum) });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ReviewError::InvalidRubric { problems })
    }
}

/// The total on 0–100: Σ weight × (score − min) / (max − min) × 100, rounded to 6 decimals.
///
/// Criteria without a score contribute 0; [`validate_scores`] makes sure there are none.
pub fn weighted_total(
    criteria: &[CriterionDef],
    scores: &BTreeMap<CriterionId, CriterionScore>,
) -> f64 {
    let sum: f64 = criteria
        .iter()
        .filter_map(|c| {
            let score = scores.get(&c.id)?.score;
            Some(c.weight * (score - c.scale.min) / (c.scale.max - c.scale.min) * 100.0)
        })
        .sum();
    round6(sum)
}

/// Validates an expert's score sheet against the rubric and computes the total.
///
/// Every criterion must be present, finite, within its scale and on its step; a comment is
/// required below `comment_below` and above `comment_above` (strictly). Every problem of
/// every criterion is reported at once ([`ReviewError::InvalidScores`]), criteria in rubric
/// order, then unknown criteria. A score below the criterion's `minimum` is valid but is
/// listed in [`ScoreCard::failing`]. A broken rubric is reported as
/// [`ReviewError::InvalidRubric`] before any score is looked at.
pub fn validate_scores(
    criteria: &[CriterionDef],
    sheet: &ScoreSheet,
) -> Result<ScoreCard, ReviewError> {
    validate_rubric(criteria)?;
    let mut errors = Vec::new();
    let mut failing = Vec::new();
    for c in criteria {
        let problem = |problem| CriterionError {
            criterion_id: c.id.clone(),
            problem,
        };
        let Some(entry) = sheet.scores.get(&c.id) else {
            errors.push(problem(ScoreProblem::Missing));
            continue;
        };
        let score = entry.score;
        if !score.is_finite() {
            errors.push(problem(ScoreProblem::NotFinite));
            continue;
        }
        let scale = c.scale;
        if score < scale.min || score > scale.max {
            errors.push(problem(ScoreProblem::OutOfRange {
                min: scale.min,
                max: scale.max,
            }));
        } else if !is_whole((score - scale.min) / scale.step) {
            errors.push(problem(ScoreProblem::OffStep {
                min: scale.min,
                step: scale.step,
            }));
        }
        if let Some(threshold) = c.comment_below
            && score < threshold
            && !entry.has_comment()
        {
            errors.push(problem(ScoreProblem::CommentRequiredBelow { threshold }));
        }
        if let Some(threshold) = c.comment_above
            && score > threshold
            && !entry.has_comment()
        {
            errors.push(problem(ScoreProblem::CommentRequiredAbove { threshold }));
        }
        if let Some(minimum) = c.minimum
            && score < minimum
        {
            failing.push(c.id.clone());
        }
    }
    for id in sheet.scores.keys() {
        if !criteria.iter().any(|c| &c.id == id) {
            errors.push(CriterionError {
                criterion_id: id.clone(),
                problem: ScoreProblem::UnknownCriterion,
            });
        }
    }
    if !errors.is_empty() {
        return Err(ReviewError::InvalidScores { errors });
    }
    let total = weighted_total(criteria, &sheet.scores);
    Ok(ScoreCard {
        scores: sheet.scores.clone(),
        total,
        failing,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use grantflow_domain::{I18nText, ScaleDef};

    pub(crate) fn criterion(id: &str, weight: f64, min: f64, max: f64, step: f64) -> CriterionDef {
        CriterionDef {
            id: id.into(),
            title: I18nText::new(format!("{id}（中文）"), id),
            weight,
            scale: ScaleDef { min, max, step },
            minimum: None,
            comment_below: None,
            comment_above: None,
        }
    }

    /// Innovation 40 %, feasibility 30 %, budget 30 %, each 1–5 by 0.5; feasibility fails
    /// below 2; comments below 2 and above 4.5 on innovation.
    pub(crate) fn half_point_rubric() -> Vec<CriterionDef> {
        let mut innovation = criterion("innovation", 0.4, 1.0, 5.0, 0.5);
        innovation.comment_below = Some(2.0);
        innovation.comment_above = Some(4.5);
        let mut feasibility = criterion("feasibility", 0.3, 1.0, 5.0, 0.5);
        feasibility.minimum = Some(2.0);
        let budget = criterion("budget", 0.3, 1.0, 5.0, 0.5);
        vec![innovation, feasibility, budget]
    }

    fn sheet(innovation: f64, feasibility: f64, budget: f64) -> ScoreSheet {
        ScoreSheet::new()
            .with("innovation", CriterionScore::new(innovation))
            .with("feasibility", CriterionScore::new(feasibility))
            .with("budget", CriterionScore::new(budget))
    }

    fn problems(err: ReviewError) -> Vec<(String, &'static str)> {
        match err {
            ReviewError::InvalidScores { errors } => errors
                .iter()
                .map(|e| (e.criterion_id.clone(), e.code()))
                .collect(),
            other => panic!("expected invalid scores, got {other:?}"),
        }
    }

    #[test]
    fn half_points_are_accepted_and_totalled() {
        let card = validate_scores(&half_point_rubric(), &sheet(3.5, 4.0, 2.5)).unwrap();
        // 0.4 × (3.5−1)/4 × 100 = 25; 0.3 × (4−1)/4 × 100 = 22.5; 0.3 × (2.5−1)/4 × 100 = 11.25
        assert_eq!(card.total(), 58.75);
        assert!(card.failing().is_empty());
    }

    #[test]
    fn extremes_of_the_scale_give_zero_and_one_hundred() {
        let mut top = sheet(5.0, 5.0, 5.0);
        top.scores.get_mut("innovation").unwrap().comment = Some("突出".into());
        assert_eq!(
            validate_scores(&half_point_rubric(), &top).unwrap().total(),
            100.0
        );
        let mut bottom = sheet(1.0, 1.0, 1.0);
        bottom.scores.get_mut("innovation").unwrap().comment = Some("缺乏创新".into());
        let card = validate_scores(&half_point_rubric(), &bottom).unwrap();
        assert_eq!(card.total(), 0.0);
        assert_eq!(card.failing(), ["feasibility".to_string()]);
    }

    #[test]
    fn total_is_free_of_binary_rounding_noise() {
        // 0.3 × 70 + 0.7 × 70 in f64 is 69.99999999999999; the total must read exactly 70.
        let rubric = vec![
            criterion("a", 0.3, 0.0, 100.0, 1.0),
            criterion("b", 0.7, 0.0, 100.0, 1.0),
        ];
        let card = validate_scores(
            &rubric,
            &ScoreSheet::new()
                .with("a", CriterionScore::new(70.0))
                .with("b", CriterionScore::new(70.0)),
        )
        .unwrap();
        assert_eq!(card.total(), 70.0);
    }

    #[test]
    fn every_problem_of_every_criterion_is_reported_at_once() {
        let mut bad = ScoreSheet::new()
            // innovation: off the half-point step and below 2 without comment
            .with("innovation", CriterionScore::new(1.25))
            // feasibility: above the scale
            .with("feasibility", CriterionScore::new(6.0))
            // not in the rubric
            .with("impact", CriterionScore::new(3.0));
        // budget missing
        bad.scores.remove("budget");
        let err = validate_scores(&half_point_rubric(), &bad).unwrap_err();
        assert_eq!(err.code(), "SCORES_INVALID");
        assert_eq!(
            problems(err),
            vec![
                ("innovation".into(), "SCORE_OFF_STEP"),
                ("innovation".into(), "SCORE_COMMENT_REQUIRED_BELOW"),
                ("feasibility".into(), "SCORE_OUT_OF_RANGE"),
                ("budget".into(), "SCORE_MISSING"),
                ("impact".into(), "SCORE_UNKNOWN_CRITERION"),
            ]
        );
    }

    #[test]
    fn comments_are_required_outside_the_thresholds_and_blank_ones_do_not_count() {
        let rubric = half_point_rubric();
        // 4.5 is not above 4.5: no comment needed.
        assert!(validate_scores(&rubric, &sheet(4.5, 3.0, 3.0)).is_ok());
        let err = validate_scores(&rubric, &sheet(5.0, 3.0, 3.0)).unwrap_err();
        assert_eq!(
            problems(err),
            vec![("innovation".into(), "SCORE_COMMENT_REQUIRED_ABOVE")]
        );
        let mut blank = sheet(1.5, 3.0, 3.0);
        blank.scores.get_mut("innovation").unwrap().comment = Some("   ".into());
        let err = validate_scores(&rubric, &blank).unwrap_err();
        assert_eq!(
            problems(err),
            vec![("innovation".into(), "SCORE_COMMENT_REQUIRED_BELOW")]
        );
        let mut explained = sheet(1.5, 3.0, 3.0);
        explained.scores.get_mut("innovation").unwrap().comment = Some("思路陈旧".into());
        assert!(validate_scores(&rubric, &explained).is_ok());
    }

    #[test]
    fn score_below_minimum_is_valid_but_failing() {
        let card = validate_scores(&half_point_rubric(), &sheet(3.0, 1.5, 3.0)).unwrap();
        assert_eq!(card.failing(), ["feasibility".to_string()]);
    }

    #[test]
    fn nan_is_reported_not_compared() {
        let err = validate_scores(&half_point_rubric(), &sheet(3.0, f64::NAN, 3.0)).unwrap_err();
        assert_eq!(
            problems(err),
            vec![("feasibility".into(), "SCORE_NOT_A_NUMBER")]
        );
    }

    #[test]
    fn error_messages_exist_in_both_languages() {
        let err = validate_scores(&half_point_rubric(), &sheet(3.0, 7.0, 3.0)).unwrap_err();
        let ReviewError::InvalidScores { errors } = &err else {
            panic!("expected invalid scores")
        };
        assert_eq!(
            errors[0].message(Lang::ZhCn),
            "评分项“feasibility”的分数须在 1 至 5 之间"
        );
        assert_eq!(
            errors[0].message(Lang::En),
            "the score of criterion \"feasibility\" must be between 1 and 5"
        );
        let report = err.report();
        assert_eq!(report.details[0].code, "SCORE_OUT_OF_RANGE");
    }

    #[test]
    fn broken_rubrics_are_refused_with_every_problem() {
        let mut a = criterion("a", 0.5, 1.0, 5.0, 0.75);
        a.minimum = Some(7.0);
        let b = criterion("a", 0.2, 5.0, 1.0, 1.0);
        let err = validate_rubric(&[a, b]).unwrap_err();
        let ReviewError::InvalidRubric { problems } = err else {
            panic!("expected invalid rubric")
        };
        let codes: Vec<_> = problems.iter().map(super::RubricProblem::code).collect();
        assert_eq!(
            codes,
            vec![
                "RUBRIC_STEP_MISMATCH",
                "RUBRIC_THRESHOLD_OUTSIDE_SCALE",
                "RUBRIC_DUPLICATE_CRITERION",
                "RUBRIC_BAD_SCALE",
                "RUBRIC_WEIGHTS_NOT_ONE",
            ]
        );
        assert!(validate_rubric(&[]).is_err());
        assert!(validate_rubric(&half_point_rubric()).is_ok());
    }
}
