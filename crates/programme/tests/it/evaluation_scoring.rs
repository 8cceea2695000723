//! Scoring against hand-computed fixtures. Default method: budget execution 10,
//! outputs 50, effects 30, satisfaction 10 (to effects when there is none).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use grantflow_domain::{Lang, Money};
use grantflow_programme::UserFacing;
use grantflow_programme::budget::{BudgetLine, ProjectLedger, SpendingRecord, approve_project};
use grantflow_programme::evaluation::{
    Achievement, EvaluationError, EvaluationInput, EvaluationMethod, EvaluationResult, Grade,
    Outcome, ScorePart, evaluate, round2, summarize_call,
};
use grantflow_programme::indicator::{
    ActualRecord, Checkpoint, Direction, Indicator, IndicatorCategory, IndicatorSet, IndicatorValue,
};

fn yuan(y: i64) -> Money {
    Money::from_yuan(y).unwrap()
}

fn quantitative(
    id: &str,
    category: IndicatorCategory,
    direction: Direction,
    baseline: Option<f64>,
    target: f64,
    weight: f64,
) -> Indicator {
    Indicator {
        id: id.into(),
        category,
        name: format!("指标 {id}"),
        unit: "件".into(),
        baseline,
        target: IndicatorValue::Number(target),
        direction,
        weight,
        ..Indicator::example()
    }
}

fn qualitative(id: &str, category: IndicatorCategory, weight: f64) -> Indicator {
    Indicator {
        id: id.into(),
        category,
        name: format!("指标 {id}"),
        unit: String::new(),
        baseline: None,
        target: IndicatorValue::Text("形成可复制、可推广的经验做法".into()),
        direction: Direction::Qualitative,
        weight,
        ..Indicator::example()
    }
}

fn actual(value: f64) -> Outcome {
    Outcome::Quantitative {
        actual: value,
        explanation: None,
    }
}

fn judged(achievement: Achievement, percent: f64) -> Outcome {
    Outcome::Qualitative {
        achievement,
        percent,
    }
}

fn input(
    indicators: Vec<Indicator>,
    outcomes: Vec<(&str, Outcome)>,
    budgeted: i64,
    spent: i64,
) -> EvaluationInput {
    EvaluationInput {
        project_id: "P".into(),
        project_name: "项目".into(),
        indicators,
        outcomes: outcomes
            .into_iter()
            .map(|(id, o)| (id.to_string(), o))
            .collect(),
        budgeted: yuan(budgeted),
        spent: yuan(spent),
    }
}

fn points(result: &EvaluationResult, part: ScorePart) -> (f64, f64) {
    let p = result.part(part).unwrap();
    (p.max_points, p.points)
}

use Direction::{HigherIsBetter, LowerIsBetter};
use IndicatorCategory::*;

/// 优: baseline progress, lower-is-better with a baseline, a qualitative output,
/// satisfaction present.
fn excellent_project() -> EvaluationInput {
    input(
        vec![
            quantitative("o1", OutputQuantity, HigherIsBetter, None, 100.0, 2.0),
            quantitative("o2", OutputTimeliness, LowerIsBetter, Some(6.0), 4.0, 1.0),
            qualitative("o3", OutputQuality, 1.0),
            quantitative("e1", EffectSocial, HigherIsBetter, Some(50.0), 80.0, 3.0),
            quantitative("e2", EffectEconomic, HigherIsBetter, None, 10.0, 1.0),
            quantitative("s1", Satisfaction, HigherIsBetter, None, 90.0, 1.0),
        ],
        vec![
            ("o1", actual(120.0)), // 20 % beyond: no explanation needed
            ("o2", actual(4.5)),
            ("o3", judged(Achievement::Achieved, 90.0)),
            ("e1", actual(74.0)),
            ("e2", actual(10.0)),
            ("s1", actual(85.5)),
        ],
        1_000_000,
        950_000,
    )
}

#[test]
fn excellent_fixture_scores_90_13() {
    let r = evaluate(&EvaluationMethod::default(), &excellent_project()).unwrap();
    // Budget: 950 000 / 1 000 000 = 0.95 → 10 × 0.95 = 9.5
    assert_eq!(points(&r, ScorePart::BudgetExecution), (10.0, 9.5));
    // Outputs, weights 2 + 1 + 1 = 4 → 25, 12.5, 12.5 points available:
    //   o1 120 ≥ 100                               → 25 × 1      = 25
    //   o2 lower is better, (6 − 4.5) / (6 − 4) = 0.75 → 12.5 × 0.75 = 9.375
    //   o3 achieved at 90 %                         → 12.5 × 0.9  = 11.25
    //   = 45.625, shown as 45.63
    assert_eq!(points(&r, ScorePart::Output), (50.0, 45.63));
    // Effects, weights 3 + 1 → 22.5 and 7.5:
    //   e1 (74 − 50) / (80 − 50) = 0.8 → 18;  e2 10 ≥ 10 → 7.5;  = 25.5
    assert_eq!(points(&r, ScorePart::Effect), (30.0, 25.5));
    // Satisfaction: 85.5 / 90 = 0.95 → 9.5
    assert_eq!(points(&r, ScorePart::Satisfaction), (10.0, 9.5));
    // 9.5 + 45.625 + 25.5 + 9.5 = 90.125 → 90.13
    assert_eq!(r.total, 90.13);
    assert_eq!(r.grade, Grade::Excellent);
    let o2 = r
        .indicators
        .iter()
        .find(|s| s.indicator_id == "o2")
        .unwrap();
    assert_eq!((o2.max_points, o2.fraction, o2.points), (12.5, 0.75, 9.38));
}

/// 良: no satisfaction indicator, so effects are worth 30 + 10 = 40.
fn good_project() -> EvaluationInput {
    input(
        vec![
            quantitative("o1", OutputQuantity, HigherIsBetter, None, 20.0, 1.0),
            quantitative("e1", EffectSocial, HigherIsBetter, None, 200.0, 1.0),
        ],
        vec![("o1", actual(17.0)), ("e1", actual(150.0))],
        500_000,
        400_000,
    )
}

#[test]
fn good_fixture_without_satisfaction_moves_its_points_to_effects() {
    let r = evaluate(&EvaluationMethod::default(), &good_project()).unwrap();
    // Budget 400 000 / 500 000 = 0.8 → 8
    assert_eq!(points(&r, ScorePart::BudgetExecution), (10.0, 8.0));
    // o1 17 / 20 = 0.85 → 50 × 0.85 = 42.5
    assert_eq!(points(&r, ScorePart::Output), (50.0, 42.5));
    // e1 150 / 200 = 0.75 → (30 + 10) × 0.75 = 30
    assert_eq!(points(&r, ScorePart::Effect), (40.0, 30.0));
    assert_eq!(points(&r, ScorePart::Satisfaction), (0.0, 0.0));
    // 8 + 42.5 + 30 = 80.5
    assert_eq!(r.total, 80.5);
    assert_eq!(r.grade, Grade::Good);
}

/// 中: an output 40 % beyond target with a written explanation, lower-is-better without
/// a baseline, a qualitative effect not achieved.
fn fair_project(explanation: Option<&str>) -> EvaluationInput {
    input(
        vec![
            quantitative("o1", OutputQuantity, HigherIsBetter, None, 10.0, 1.0),
            quantitative("o2", OutputCost, LowerIsBetter, None, 5.0, 1.0),
            qualitative("e1", EffectSustainability, 1.0),
            quantitative("s1", Satisfaction, HigherIsBetter, None, 90.0, 1.0),
        ],
        vec![
            (
                "o1",
                Outcome::Quantitative {
                    actual: 14.0,
                    explanation: explanation.map(str::to_string),
                },
            ),
            ("o2", actual(8.0)),
            ("e1", judged(Achievement::NotAchieved, 50.0)),
            ("s1", actual(72.0)),
        ],
        200_000,
        120_000,
    )
}

#[test]
fn fair_fixture_with_an_explained_overachievement_scores_69_63() {
    let r = evaluate(
        &EvaluationMethod::default(),
        &fair_project(Some("合作单位追加投入，多举办了 4 场活动")),
    )
    .unwrap();
    // Budget 120 000 / 200 000 = 0.6 → 6
    assert_eq!(points(&r, ScorePart::BudgetExecution), (10.0, 6.0));
    // o1 14 ≥ 10 → 25 (explained);  o2 cost, lower is better, no baseline: 5 / 8 = 0.625
    // → 25 × 0.625 = 15.625;  = 40.625, shown as 40.63
    assert_eq!(points(&r, ScorePart::Output), (50.0, 40.63));
    // e1 not achieved at 50 % → 30 × 0.5 = 15
    assert_eq!(points(&r, ScorePart::Effect), (30.0, 15.0));
    // s1 72 / 90 = 0.8 → 8
    assert_eq!(points(&r, ScorePart::Satisfaction), (10.0, 8.0));
    // 6 + 40.625 + 15 + 8 = 69.625 → 69.63
    assert_eq!(r.total, 69.63);
    assert_eq!(r.grade, Grade::Fair);
}

#[test]
fn overachievement_beyond_30_percent_without_explanation_is_refused() {
    for missing in [None, Some("   ")] {
        let errors = evaluate(&EvaluationMethod::default(), &fair_project(missing)).unwrap_err();
        assert_eq!(errors.len(), 1);
        // (14 − 10) / 10 = 40 % beyond the target.
        assert_eq!(
            errors[0],
            EvaluationError::ExplanationRequired {
                indicator_id: "o1".into(),
                actual: 14.0,
                target: 10.0,
                beyond_percent: 40.0,
            }
        );
        assert_eq!(errors[0].code(), "EVALUATION_EXPLANATION_REQUIRED");
        assert_eq!(
            errors[0].message(Lang::ZhCn),
            "绩效指标 o1 实际值 14 超出目标值 10 达 40.0%，须提供书面说明"
        );
    }
}

#[test]
fn lower_is_better_overachievement_also_needs_an_explanation() {
    // Target 4 months, done in 2.5: (4 − 2.5) / 4 = 37.5 % better than planned.
    let mut project = excellent_project();
    project.outcomes.insert("o2".into(), actual(2.5));
    let errors = evaluate(&EvaluationMethod::default(), &project).unwrap_err();
    assert!(matches!(
        &errors[..],
        [EvaluationError::ExplanationRequired { indicator_id, beyond_percent, .. }]
            if indicator_id == "o2" && *beyond_percent == 37.5
    ));
    // Exactly 30 % beyond needs none: 4 × 0.7 = 2.8 months.
    project.outcomes.insert("o2".into(), actual(2.8));
    assert!(evaluate(&EvaluationMethod::default(), &project).is_ok());
}

/// 差: little progress from the baseline and little money spent.
fn poor_project() -> EvaluationInput {
    input(
        vec![
            quantitative("o1", OutputQuantity, HigherIsBetter, Some(10.0), 50.0, 1.0),
            qualitative("e1", EffectSocial, 1.0),
            quantitative("s1", Satisfaction, HigherIsBetter, None, 90.0, 1.0),
        ],
        vec![
            ("o1", actual(20.0)),
            ("e1", judged(Achievement::PartlyAchieved, 60.0)),
            ("s1", actual(81.0)),
        ],
        300_000,
        90_000,
    )
}

#[test]
fn poor_fixture_scores_42_5() {
    let r = evaluate(&EvaluationMethod::default(), &poor_project()).unwrap();
    // Budget 90 000 / 300 000 = 0.3 → 3
    // o1 (20 − 10) / (50 − 10) = 0.25 → 50 × 0.25 = 12.5 (not 20 / 50 = 0.4: the
    //    baseline existed before the project)
    // e1 partly achieved at 60 % → 30 × 0.6 = 18
    // s1 81 / 90 = 0.9 → 9
    // 3 + 12.5 + 18 + 9 = 42.5
    assert_eq!(points(&r, ScorePart::Output), (50.0, 12.5));
    assert_eq!(r.total, 42.5);
    assert_eq!(r.grade, Grade::Poor);
}

#[test]
fn qualitative_percentages_must_lie_in_their_band() {
    let mut project = excellent_project();
    project
        .outcomes
        .insert("o3".into(), judged(Achievement::Achieved, 75.0));
    let errors = evaluate(&EvaluationMethod::default(), &project).unwrap_err();
    assert_eq!(errors[0].code(), "EVALUATION_PERCENT_OUT_OF_BAND");
    assert!(errors[0].message(Lang::ZhCn).contains("80%–100%"));

    project
        .outcomes
        .insert("o3".into(), judged(Achievement::PartlyAchieved, 85.0));
    assert!(evaluate(&EvaluationMethod::default(), &project).is_err());
    // Band bounds are inclusive.
    project
        .outcomes
        .insert("o3".into(), judged(Achievement::PartlyAchieved, 80.0));
    assert!(evaluate(&EvaluationMethod::default(), &project).is_ok());
}

#[test]
fn every_missing_or_mismatched_outcome_is_reported() {
    let mut project = excellent_project();
    project.outcomes.remove("e2");
    project.outcomes.insert("o3".into(), actual(1.0));
    project.outcomes.insert("zz".into(), actual(1.0));
    let errors = evaluate(&EvaluationMethod::default(), &project).unwrap_err();
    let codes: Vec<&str> = errors.iter().map(UserFacing::code).collect();
    assert_eq!(
        codes,
        [
            "EVALUATION_OUTCOME_UNKNOWN",
            "EVALUATION_OUTCOME_KIND",
            "EVALUATION_OUTCOME_MISSING"
        ]
    );
}

#[test]
fn outputs_and_effects_are_both_required() {
    let project = input(
        vec![quantitative(
            "o1",
            OutputQuantity,
            HigherIsBetter,
            None,
            1.0,
            1.0,
        )],
        vec![("o1", actual(1.0))],
        100,
        100,
    );
    let errors = evaluate(&EvaluationMethod::default(), &project).unwrap_err();
    assert_eq!(errors[0].code(), "EVALUATION_GROUP_EMPTY");
    assert_eq!(errors[0].message(Lang::ZhCn), "缺少效益指标，无法评价");
}

#[test]
fn a_custom_method_must_total_100() {
    let method = EvaluationMethod {
        output_points: 40.0,
        ..EvaluationMethod::default()
    };
    let errors = evaluate(&method, &good_project()).unwrap_err();
    assert_eq!(errors[0].code(), "EVALUATION_METHOD_INVALID");

    // A valid custom method: budget 20, outputs 40, effects 30, satisfaction 10.
    let method = EvaluationMethod {
        budget_execution_points: 20.0,
        output_points: 40.0,
        ..EvaluationMethod::default()
    };
    let r = evaluate(&method, &good_project()).unwrap();
    // 20 × 0.8 + 40 × 0.85 + 40 × 0.75 = 16 + 34 + 30 = 80
    assert_eq!(r.total, 80.0);
}

#[test]
fn grade_bounds_and_rounding() {
    let bounds = EvaluationMethod::default().grade_bounds;
    assert_eq!(Grade::from_total(90.0, &bounds), Grade::Excellent);
    assert_eq!(Grade::from_total(89.99, &bounds), Grade::Good);
    assert_eq!(Grade::from_total(80.0, &bounds), Grade::Good);
    assert_eq!(Grade::from_total(79.99, &bounds), Grade::Fair);
    assert_eq!(Grade::from_total(60.0, &bounds), Grade::Fair);
    assert_eq!(Grade::from_total(59.99, &bounds), Grade::Poor);
    // Half up, despite 89.995 being stored as 89.99499999…
    assert_eq!(round2(89.995), 90.0);
    assert_eq!(round2(69.625), 69.63);
    assert_eq!(round2(42.5), 42.5);
    assert_eq!(Grade::Excellent.name(Lang::ZhCn), "优");
}

#[test]
fn call_summary_counts_grades_and_weights_execution_by_budget() {
    let method = EvaluationMethod::default();
    let results: Vec<EvaluationResult> = [
        excellent_project(),
        good_project(),
        fair_project(Some("追加投入")),
        poor_project(),
    ]
    .iter()
    .map(|p| evaluate(&method, p).unwrap())
    .collect();
    let summary = summarize_call(&results);
    assert_eq!(summary.projects, 4);
    for g in Grade::ALL {
        assert_eq!(summary.grades.get(g), 1, "{g:?}");
    }
    // (90.13 + 80.5 + 69.63 + 42.5) / 4 = 282.76 / 4 = 70.69
    assert_eq!(summary.average_total, Some(70.69));
    // Budgets 1 000 000 + 500 000 + 200 000 + 300 000 = 2 000 000;
    // spent 950 000 + 400 000 + 120 000 + 90 000 = 1 560 000 → 0.78
    assert_eq!(summary.budgeted, yuan(2_000_000));
    assert_eq!(summary.spent, yuan(1_560_000));
    assert_eq!(summary.execution_rate, Some(0.78));
}

#[test]
fn input_is_built_from_frozen_indicators_acceptance_actuals_and_the_ledger() {
    let day = |m, d| NaiveDate::from_ymd_opt(2022, m, d).unwrap();
    let mut set = IndicatorSet::draft(good_project().indicators).unwrap();
    set.approve_targets().unwrap();
    let mut ledger = ProjectLedger::new("P-2022-001");
    ledger
        .add_line(BudgetLine {
            id: "L1".into(),
            project_id: "P-2022-001".into(),
            year: 2022,
            subject: "会议费".into(),
            amount: yuan(500_000),
        })
        .unwrap();
    approve_project(&mut ledger, &mut set, day(3, 1)).unwrap();
    ledger
        .record_spending(SpendingRecord {
            id: "S1".into(),
            project_id: "P-2022-001".into(),
            line_id: Some("L1".into()),
            spent_on: day(6, 1),
            amount: yuan(400_000),
            description: "大会场地".into(),
        })
        .unwrap();
    for (id, checkpoint, value) in [
        ("o1", Checkpoint::MidTerm, 8.0),
        ("o1", Checkpoint::Acceptance, 17.0),
        ("e1", Checkpoint::Acceptance, 150.0),
    ] {
        set.record_actual(ActualRecord {
            indicator_id: id.into(),
            checkpoint,
            value: IndicatorValue::Number(value),
            explanation: None,
            recorded_on: day(11, 30),
        })
        .unwrap();
    }
    let input = EvaluationInput::from_records("人才发展大会", &set, &BTreeMap::new(), &ledger);
    let r = evaluate(&EvaluationMethod::default(), &input).unwrap();
    // The acceptance values (17, 150) are scored, not the mid-term 8: same as the 良 fixture.
    assert_eq!(r.total, 80.5);
    assert_eq!(r.project_id, "P-2022-001");
}
