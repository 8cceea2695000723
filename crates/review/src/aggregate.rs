//! Aggregating the scores of a panel: statistics, the round's aggregation method, outliers
//! that need a written justification, and the [`ReviewResult`] workflow guards read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use grantflow_domain::{Aggregation, I18nText, ReviewRoundDef};
use serde::{Deserialize, Serialize};

use crate::error::ReviewError;
use crate::lifecycle::Assignment;
use crate::scoring::ScoreCard;
use crate::{ApplicationId, CriterionId, ExpertId, round6};

/// Descriptive statistics of a list of numbers. Every value is rounded to 6 decimals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u32,
    pub mean: f64,
    /// The middle value, or the mean of the two middle values for an even count.
    pub median: f64,
    /// Sample standard deviation (divisor n − 1); `None` for a single value.
    pub sd: Option<f64>,
    pub min: f64,
    pub max: f64,
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn raw_mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn raw_median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Statistics of `values`; `None` when empty.
pub fn stats(values: &[f64]) -> Option<Stats> {
    if values.is_empty() {
        return None;
    }
    let s = sorted(values);
    let n = s.len();
    let mean = raw_mean(&s);
    let sd = (n >= 2).then(|| {
        let ss: f64 = s.iter().map(|x| (x - mean).powi(2)).sum();
        round6((ss / (n - 1) as f64).sqrt())
    });
    Some(Stats {
        count: n as u32,
        mean: round6(mean),
        median: round6(raw_median(&s)),
        sd,
        min: s[0],
        max: s[n - 1],
    })
}

/// Arithmetic mean; `None` when empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| round6(raw_mean(values)))
}

/// Median; `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| round6(raw_median(&sorted(values))))
}

/// Mean after dropping one highest and one lowest value when there are at least 5 values;
/// the plain mean otherwise. `None` when empty.
pub fn trimmed_mean(values: &[f64]) -> Option<f64> {
    if values.len() < 5 {
        return mean(values);
    }
    let s = sorted(values);
    Some(round6(raw_mean(&s[1..s.len() - 1])))
}

/// `values` aggregated by `method`; `None` when empty.
pub fn aggregate(method: Aggregation, values: &[f64]) -> Option<f64> {
    match method {
        Aggregation::Mean => mean(values),
        Aggregation::Median => median(values),
        Aggregation::TrimmedMean => trimmed_mean(values),
    }
}

/// One expert's counted submission for an application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpertSubmission {
    pub expert_id: ExpertId,
    pub version: u32,
    pub card: ScoreCard,
}

/// The submissions that count for an application in a round: the final version of every
/// assignment in state `Submitted` ([`Assignment::final_version`]), in expert id order.
pub fn final_submissions(
    assignments: &[Assignment],
    round_id: &str,
    application_id: &str,
) -> Vec<ExpertSubmission> {
    let mut submissions: Vec<ExpertSubmission> = assignments
        .iter()
        .filter(|a| a.round_id() == round_id && a.application_id() == application_id)
        .filter_map(|a| {
            a.final_version().map(|v| ExpertSubmission {
                expert_id: a.expert_id().to_string(),
                version: v.version,
                card: v.card.clone(),
            })
        })
        .collect();
    submissions.sort_by(|a, b| a.expert_id.cmp(&b.expert_id));
    submissions
}

/// An expert's written reason for a total far from the panel's median.
///
/// It covers one submitted version: if the expert's scores are reopened and resubmitted
/// as a new version that is still an outlier, a new justification is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutlierJustification {
    pub application_id: ApplicationId,
    pub expert_id: ExpertId,
    pub version: u32,
    pub text: String,
    pub written_at: DateTime<Utc>,
}

/// A total further than the round's `outlier_threshold` from the median of the totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outlier {
    pub expert_id: ExpertId,
    pub version: u32,
    pub total: f64,
    pub median: f64,
    /// |total − median|.
    pub distance: f64,
    /// The expert's justification for this version, once written.
    pub justification: Option<String>,
}

/// One expert's total in a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpertTotal {
    pub expert_id: ExpertId,
    pub version: u32,
    pub total: f64,
    /// Criteria this expert scored below their minimum.
    pub failing: Vec<CriterionId>,
}

/// The aggregated score of one criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionResult {
    pub id: CriterionId,
    pub title: I18nText,
    /// The scores aggregated by the round's method; 0 when nobody scored.
    pub value: f64,
    pub stats: Option<Stats>,
    pub minimum: Option<f64>,
    /// Whether `value` is below `minimum`.
    pub failing: bool,
}

/// The outcome of a review round for one application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewResult {
    pub application_id: ApplicationId,
    pub method: Aggregation,
    /// Number of counted submissions.
    pub count: u32,
    /// The experts' totals aggregated by `method`; 0 when nobody scored.
    pub total: f64,
    /// Statistics of the experts' totals.
    pub totals: Option<Stats>,
    /// Per criterion, in rubric order.
    pub criteria: Vec<CriterionResult>,
    pub expert_totals: Vec<ExpertTotal>,
    pub outliers: Vec<Outlier>,
    /// At least one submission and no criterion's aggregated value below its minimum.
    pub passed: bool,
}

/// What workflow guards see as `review`. Serialises to exactly:
///
/// ```json
/// { "total": 78.5, "count": 5, "passed": true,
///   "criteria": { "innovation": 3.5, "feasibility": 4.0 } }
/// ```
///
/// - `total` (number): the experts' 0–100 totals aggregated by the round's method
///   (mean, median or trimmed mean), rounded to 6 decimals; `0` when `count` is 0.
/// - `count` (integer): how many experts' submissions are counted (state `Submitted`).
/// - `passed` (bool): `count > 0` and no criterion's aggregated score is below its `minimum`.
/// - `criteria` (object): every criterion id of the rubric, mapped to its scores aggregated by
///   the same method, on the criterion's own scale; `0` when `count` is 0. Every id is
///   always present, so a guard never meets a missing key.
///
/// A guard reads e.g. `review.total >= 70 && review.count >= 3`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewGuard {
    pub total: f64,
    pub count: u32,
    pub passed: bool,
    pub criteria: BTreeMap<CriterionId, f64>,
}

impl ReviewResult {
    /// The view guards read; see [`ReviewGuard`] for the shape.
    pub fn guard(&self) -> ReviewGuard {
        ReviewGuard {
            total: self.total,
            count: self.count,
            passed: self.passed,
            criteria: self
                .criteria
                .iter()
                .map(|c| (c.id.clone(), c.value))
                .collect(),
        }
    }

    /// [`ReviewResult::guard`] as JSON, ready to bind as `review` in a guard.
    pub fn guard_json(&self) -> serde_json::Value {
        serde_json::to_value(self.guard()).unwrap_or(serde_json::Value::Null)
    }

    /// Outliers still waiting for a justification.
    pub fn pending_justifications(&self) -> Vec<&Outlier> {
        self.outliers
            .iter()
            .filter(|o| o.justification.is_none())
            .collect()
    }

    /// The median of the experts' totals (0 when nobody scored), the first tie-break.
    pub fn median_total(&self) -> f64 {
        self.totals.map_or(0.0, |s| s.median)
    }

    /// The lowest expert total (0 when nobody scored), the second tie-break.
    pub fn min_total(&self) -> f64 {
        self.totals.map_or(0.0, |s| s.min)
    }
}

/// Aggregates the counted submissions of one application in a round.
///
/// Totals and each criterion are aggregated by `round.aggregation`. Totals further than
/// `round.outlier_threshold` from the median total (strictly) are outliers; a matching
/// entry of `justifications` (same application, expert and version) marks one justified.
pub fn aggregate_application(
    round: &ReviewRoundDef,
    application_id: &str,
    submissions: &[ExpertSubmission],
    justifications: &[OutlierJustification],
) -> ReviewResult {
    let method = round.aggregation;
    let totals: Vec<f64> = submissions.iter().map(|s| s.card.total()).collect();
    let total_stats = stats(&totals);
    let criteria: Vec<CriterionResult> = round
        .criteria
        .iter()
        .map(|c| {
            let scores: Vec<f64> = submissions
                .iter()
                .filter_map(|s| s.card.score(&c.id))
                .collect();
            let value = aggregate(method, &scores).unwrap_or(0.0);
            CriterionResult {
                id: c.id.clone(),
                title: c.title.clone(),
                value,
                stats: stats(&scores),
                minimum: c.minimum,
                failing: !scores.is_empty() && c.minimum.is_some_and(|m| value < m),
            }
        })
        .collect();
    let outliers = match total_stats {
        Some(st) => submissions
            .iter()
            .filter_map(|s| {
                let distance = round6((s.card.total() - st.median).abs());
                (distance > round.outlier_threshold).then(|| Outlier {
                    expert_id: s.expert_id.clone(),
                    version: s.version,
                    total: s.card.total(),
                    median: st.median,
                    distance,
                    justification: justifications
                        .iter()
                        .find(|j| {
                            j.application_id == application_id
                                && j.expert_id == s.expert_id
                                && j.version == s.version
                        })
                        .map(|j| j.text.clone()),
                })
            })
            .collect(),
        None => Vec::new(),
    };
    let count = submissions.len() as u32;
    ReviewResult {
        application_id: application_id.to_string(),
        method,
        count,
        total: aggregate(method, &totals).unwrap_or(0.0),
        totals: total_stats,
        passed: count > 0 && criteria.iter().all(|c| !c.failing),
        criteria,
        expert_totals: submissions
            .iter()
            .map(|s| ExpertTotal {
                expert_id: s.expert_id.clone(),
                version: s.version,
                total: s.card.total(),
                failing: s.card.failing().to_vec(),
            })
            .collect(),
        outliers,
    }
}

/// Records an expert's justification of their outlying total. Refused when the expert is
/// not flagged in `result` or the text is blank.
pub fn justify_outlier(
    result: &ReviewResult,
    expert_id: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<OutlierJustification, ReviewError> {
    let outlier = result
        .outliers
        .iter()
        .find(|o| o.expert_id == expert_id)
        .ok_or_else(|| ReviewError::NotAnOutlier {
            expert_id: expert_id.to_string(),
        })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(ReviewError::JustificationRequired);
    }
    Ok(OutlierJustification {
        application_id: result.application_id.clone(),
        expert_id: expert_id.to_string(),
        version: outlier.version,
        text: text.to_string(),
        written_at: now,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scoring::tests::criterion;
    use crate::scoring::{CriterionScore, ScoreSheet, validate_scores};
    use grantflow_domain::ReminderLadder;

    /// A round with two criteria on 0–100 by 1, weights 0.5 each, so a total is the mean of
    /// the two scores; `quality` fails below 60.
    pub(crate) fn round(method: Aggregation) -> ReviewRoundDef {
        let mut quality = criterion("quality", 0.5, 0.0, 100.0, 1.0);
        quality.minimum = Some(60.0);
        ReviewRoundDef {
            title: I18nText::new("申报评审", "application review"),
            opens_in: "under_review".into(),
            closes_on: "close_review".into(),
            panel_size: 3,
            blind: true,
            aggregation: method,
            outlier_threshold: 15.0,
            criteria: vec![quality, criterion("impact", 0.5, 0.0, 100.0, 1.0)],
            deadline: None,
            reminders: ReminderLadder::default(),
        }
    }

    /// A submission scoring `quality` and `impact`; its total is their mean.
    pub(crate) fn submission(expert: &str, quality: f64, impact: f64) -> ExpertSubmission {
        let sheet = ScoreSheet::new()
            .with("quality", CriterionScore::new(quality))
            .with("impact", CriterionScore::new(impact));
        ExpertSubmission {
            expert_id: expert.into(),
            version: 1,
            card: validate_scores(&round(Aggregation::Mean).criteria, &sheet).unwrap(),
        }
    }

    /// A submission whose total equals `total` (both criteria score `total`).
    pub(crate) fn flat(expert: &str, total: f64) -> ExpertSubmission {
        submission(expert, total, total)
    }

    fn totals(subs: &[ExpertSubmission]) -> Vec<f64> {
        subs.iter().map(|s| s.card.total()).collect()
    }

    #[test]
    fn statistics_of_four_values() {
        // values 2, 4, 4, 5: mean 15/4 = 3.75; median (4+4)/2 = 4;
        // squared deviations 3.0625 + 0.0625 + 0.0625 + 1.5625 = 4.75;
        // sample variance 4.75 / 3 = 1.583333…; sd = √1.583333… = 1.258306
        let s = stats(&[4.0, 2.0, 5.0, 4.0]).unwrap();
        assert_eq!(s.count, 4);
        assert_eq!(s.mean, 3.75);
        assert_eq!(s.median, 4.0);
        assert_eq!(s.sd, Some(1.258306));
        assert_eq!((s.min, s.max), (2.0, 5.0));
        assert_eq!(stats(&[7.0]).unwrap().sd, None, "no sample sd of one value");
        assert!(stats(&[]).is_none());
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        // sorted 60, 70, 80, 95: (70 + 80) / 2 = 75
        assert_eq!(median(&[80.0, 60.0, 95.0, 70.0]), Some(75.0));
        // sorted 1, 2: 1.5
        assert_eq!(median(&[2.0, 1.0]), Some(1.5));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    }

    #[test]
    fn trimmed_mean_with_five_experts_drops_one_high_and_one_low() {
        // 60, 72, 75, 78, 95 → drop 60 and 95 → (72 + 75 + 78) / 3 = 225 / 3 = 75
        assert_eq!(trimmed_mean(&[95.0, 72.0, 60.0, 78.0, 75.0]), Some(75.0));
        // the plain mean would be 380 / 5 = 76
        assert_eq!(mean(&[95.0, 72.0, 60.0, 78.0, 75.0]), Some(76.0));
    }

    #[test]
    fn trimmed_mean_with_seven_experts_drops_only_one_at_each_end() {
        // 40, 70, 70, 80, 85, 90, 100 → drop 40 and 100 → 70+70+80+85+90 = 395; 395 / 5 = 79
        assert_eq!(
            trimmed_mean(&[100.0, 70.0, 85.0, 40.0, 90.0, 70.0, 80.0]),
            Some(79.0)
        );
    }

    #[test]
    fn trimmed_mean_with_fewer_than_five_is_the_plain_mean() {
        // 60, 80, 100, 90: (60 + 80 + 100 + 90) / 4 = 330 / 4 = 82.5
        assert_eq!(trimmed_mean(&[60.0, 80.0, 100.0, 90.0]), Some(82.5));
    }

    #[test]
    fn the_default_panel_of_three_is_averaged_not_trimmed() {
        // The documented rule (README "Call settings"): with 3 scores nothing is dropped.
        // 40, 80, 90: trimmed mean = mean = 70; a call wanting the middle score sets
        // `aggregation = "median"` (80).
        let three = [90.0, 40.0, 80.0];
        assert_eq!(aggregate(Aggregation::TrimmedMean, &three), Some(70.0));
        assert_eq!(aggregate(Aggregation::Mean, &three), Some(70.0));
        assert_eq!(aggregate(Aggregation::Median, &three), Some(80.0));
    }

    #[test]
    fn round_result_with_trimmed_mean_and_outlier() {
        // Totals are (quality + impact) / 2:
        //   e1 (70, 80) → 75   e2 (72, 78) → 75   e3 (80, 90) → 85
        //   e4 (50, 40) → 45   e5 (76, 84) → 80
        // sorted totals 45, 75, 75, 80, 85: median 75;
        // trimmed mean drops 45 and 85 → (75 + 75 + 80) / 3 = 76.666667
        // quality 50, 70, 72, 76, 80 → drop 50 and 80 → 218 / 3 = 72.666667
        // impact 40, 78, 80, 84, 90 → drop 40 and 90 → 242 / 3 = 80.666667
        // e4 is 30 from the median (> 15): outlier; e3 is 10 away: not.
        let subs = vec![
            submission("e1", 70.0, 80.0),
            submission("e2", 72.0, 78.0),
            submission("e3", 80.0, 90.0),
            submission("e4", 50.0, 40.0),
            submission("e5", 76.0, 84.0),
        ];
        assert_eq!(totals(&subs), vec![75.0, 75.0, 85.0, 45.0, 80.0]);
        let result = aggregate_application(&round(Aggregation::TrimmedMean), "a1", &subs, &[]);
        assert_eq!(result.count, 5);
        assert_eq!(result.total, 76.666667);
        assert_eq!(result.criteria[0].value, 72.666667);
        assert_eq!(result.criteria[1].value, 80.666667);
        assert!(result.passed);
        // totals 45, 75, 75, 80, 85: mean 72; deviations −27, 3, 3, 8, 13;
        // squares 729 + 9 + 9 + 64 + 169 = 980; 980 / 4 = 245; √245 = 15.652476
        let st = result.totals.unwrap();
        assert_eq!((st.mean, st.median, st.sd), (72.0, 75.0, Some(15.652476)));
        assert_eq!(result.outliers.len(), 1);
        let outlier = &result.outliers[0];
        assert_eq!((outlier.expert_id.as_str(), outlier.distance), ("e4", 30.0));
        assert_eq!(result.pending_justifications().len(), 1);

        let now: DateTime<Utc> = "2024-07-02T01:00:00Z".parse().unwrap();
        assert_eq!(
            justify_outlier(&result, "e4", "  ", now)
                .unwrap_err()
                .code(),
            "JUSTIFICATION_REQUIRED"
        );
        assert_eq!(
            justify_outlier(&result, "e1", "x", now).unwrap_err().code(),
            "NOT_AN_OUTLIER"
        );
        let j = justify_outlier(&result, "e4", "预算测算依据不足，可行性存疑", now).unwrap();
        let again = aggregate_application(
            &round(Aggregation::TrimmedMean),
            "a1",
            &subs,
            std::slice::from_ref(&j),
        );
        assert!(again.pending_justifications().is_empty());
        assert_eq!(
            again.outliers[0].justification.as_deref(),
            Some("预算测算依据不足，可行性存疑")
        );
        // A justification of an older version does not cover a new one.
        let stale = OutlierJustification { version: 0, ..j };
        let third = aggregate_application(&round(Aggregation::TrimmedMean), "a1", &subs, &[stale]);
        assert_eq!(third.pending_justifications().len(), 1);
    }

    #[test]
    fn median_round_with_even_count_and_failing_criterion() {
        // quality 50, 55, 62, 70 → median (55 + 62) / 2 = 58.5 < minimum 60: failing
        // totals: (50+90)/2 = 70, (55+85)/2 = 70, (62+80)/2 = 71, (70+74)/2 = 72
        // → median (70 + 71) / 2 = 70.5
        let subs = vec![
            submission("e1", 50.0, 90.0),
            submission("e2", 55.0, 85.0),
            submission("e3", 62.0, 80.0),
            submission("e4", 70.0, 74.0),
        ];
        let result = aggregate_application(&round(Aggregation::Median), "a1", &subs, &[]);
        assert_eq!(result.total, 70.5);
        assert_eq!(result.criteria[0].value, 58.5);
        assert!(result.criteria[0].failing);
        assert!(!result.passed);
        assert_eq!(result.expert_totals[0].failing, vec!["quality".to_string()]);
    }

    #[test]
    fn guard_json_has_exactly_the_documented_shape() {
        // Mean round, 3 experts: totals 75, 80, 85 → mean 80;
        // quality (70 + 80 + 90) / 3 = 80; impact (80 + 80 + 80) / 3 = 80
        let subs = vec![
            submission("e1", 70.0, 80.0),
            submission("e2", 80.0, 80.0),
            submission("e3", 90.0, 80.0),
        ];
        let result = aggregate_application(&round(Aggregation::Mean), "a1", &subs, &[]);
        assert_eq!(
            result.guard_json(),
            serde_json::json!({
                "total": 80.0,
                "count": 3,
                "passed": true,
                "criteria": { "impact": 80.0, "quality": 80.0 }
            })
        );
    }

    #[test]
    fn no_submissions_gives_a_zero_result_that_does_not_pass() {
        let result = aggregate_application(&round(Aggregation::TrimmedMean), "a1", &[], &[]);
        assert_eq!(
            result.guard_json(),
            serde_json::json!({
                "total": 0.0,
                "count": 0,
                "passed": false,
                "criteria": { "impact": 0.0, "quality": 0.0 }
            })
        );
        assert!(result.outliers.is_empty());
    }

    #[test]
    fn only_submitted_final_versions_are_counted() {
        use crate::lifecycle::{Action, Actor};
        let now: DateTime<Utc> = "2024-07-01T00:00:00Z".parse().unwrap();
        let expert = |id: &str| Actor::Expert { id: id.into() };
        let submit_in = |round: &str, id: &str, total: f64| {
            Assignment::new(round, "a1", id, now)
                .apply(Action::DeclareNoConflict, &expert(id), now)
                .unwrap()
                .apply(
                    Action::Submit {
                        card: flat(id, total).card,
                    },
                    &expert(id),
                    now,
                )
                .unwrap()
        };
        let reopened = submit_in("r", "e3", 10.0)
            .apply(
                Action::Reopen {
                    reason: "复核".into(),
                },
                &Actor::Manager { id: "m".into() },
                now,
            )
            .unwrap();
        let all = vec![
            submit_in("r", "e2", 80.0),
            submit_in("r", "e1", 70.0),
            // reopened: being corrected, not counted until resubmitted
            reopened,
            // not yet accepted
            Assignment::new("r", "a1", "e4", now),
            submit_in("r", "e5", 90.0),
            // another round of the same application
            submit_in("r2", "e6", 50.0),
        ];
        let subs = final_submissions(&all, "r", "a1");
        let ids: Vec<&str> = subs.iter().map(|s| s.expert_id.as_str()).collect();
        assert_eq!(ids, vec!["e1", "e2", "e5"]);
    }
}
