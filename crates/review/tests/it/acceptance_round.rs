//! A whole acceptance round (验收评审) as a workflow file declares it: TOML into the domain
//! types, scores on a 1–5 half-point scale with a minimum, aggregation and the guard view.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use grantflow_domain::{Lang, ReviewRoundDef};
use grantflow_review::aggregate::{aggregate_application, final_submissions};
use grantflow_review::lifecycle::{Action, Actor, Assignment};
use grantflow_review::ranking::rank_applications;
use grantflow_review::scoring::{CriterionScore, ScoreSheet, validate_rubric, validate_scores};
use grantflow_review::{ReviewError, export};

/// The acceptance round of the shipped funded-project workflow, copied so this test does
/// not move when that file is edited.
const ROUND: &str = r#"
title = { "zh-CN" = "验收评审", en = "Acceptance review" }
opens_in = "acceptance_review"
closes_on = "conclude_acceptance"
panel_size = 3
blind = false
aggregation = "mean"
outlier_threshold = 25.0

[[criteria]]
id = "completion"
title = { "zh-CN" = "任务完成情况", en = "Tasks completed" }
weight = 0.4
scale = { min = 1, max = 5, step = 0.5 }
minimum = 3
comment_below = 3

[[criteria]]
id = "indicators"
title = { "zh-CN" = "绩效指标完成情况", en = "Indicators achieved" }
weight = 0.4
scale = { min = 1, max = 5, step = 0.5 }
minimum = 3
comment_below = 3

[[criteria]]
id = "finance"
title = { "zh-CN" = "经费使用规范性", en = "Proper use of funds" }
weight = 0.2
scale = { min = 1, max = 5, step = 0.5 }
comment_below = 3
"#;

fn now() -> DateTime<Utc> {
    "2024-12-01T02:00:00Z".parse().unwrap()
}

fn sheet(completion: f64, indicators: f64, finance: f64) -> ScoreSheet {
    let score = |s: f64| {
        if s < 3.0 {
            CriterionScore::with_comment(s, "未达到任务书要求")
        } else {
            CriterionScore::new(s)
        }
    };
    ScoreSheet::new()
        .with("completion", score(completion))
        .with("indicators", score(indicators))
        .with("finance", score(finance))
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "test helper taking the sheet it submits"
)]
fn reviewed(round: &ReviewRoundDef, app: &str, expert: &str, s: ScoreSheet) -> Assignment {
    let me = Actor::Expert { id: expert.into() };
    let card = validate_scores(&round.criteria, &s).unwrap();
    Assignment::new("acceptance_review", app, expert, now())
        .apply(Action::DeclareNoConflict, &me, now())
        .unwrap()
        .apply(Action::Submit { card }, &me, now())
        .unwrap()
}

#[test]
fn acceptance_round_from_the_workflow_format() {
    let round: ReviewRoundDef = toml::from_str(ROUND).unwrap();
    validate_rubric(&round.criteria).unwrap();

    // A score of 2.5 without a comment, and 3.25 off the half-point step: both reported.
    let bad = ScoreSheet::new()
        .with("completion", CriterionScore::new(2.5))
        .with("indicators", CriterionScore::new(3.25))
        .with("finance", CriterionScore::new(4.0));
    let err = validate_scores(&round.criteria, &bad).unwrap_err();
    let ReviewError::InvalidScores { errors } = &err else {
        panic!("expected score errors")
    };
    let codes: Vec<_> = errors
        .iter()
        .map(|e| (e.criterion_id.as_str(), e.code()))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("completion", "SCORE_COMMENT_REQUIRED_BELOW"),
            ("indicators", "SCORE_OFF_STEP"),
        ]
    );
    assert!(err.message(Lang::ZhCn).contains("评分有 2 处问题"));

    // Project p1, three experts:
    //   (4, 4.5, 4):   0.4×3/4×100 + 0.4×3.5/4×100 + 0.2×3/4×100 = 30 + 35 + 15 = 80
    //   (3.5, 4, 3):   25 + 30 + 10 = 65
    //   (4.5, 4, 5):   35 + 30 + 20 = 85
    //   mean total (80 + 65 + 85) / 3 = 76.666667
    //   completion mean (4 + 3.5 + 4.5) / 3 = 4; indicators (4.5 + 4 + 4) / 3 = 4.166667
    // Project p2, three experts all (2.5, 3, 3):
    //   0.4×1.5/4×100 + 0.4×2/4×100 + 0.2×2/4×100 = 15 + 20 + 10 = 45 each; completion 2.5 < 3: fails
    let assignments = vec![
        reviewed(&round, "p1", "e1", sheet(4.0, 4.5, 4.0)),
        reviewed(&round, "p1", "e2", sheet(3.5, 4.0, 3.0)),
        reviewed(&round, "p1", "e3", sheet(4.5, 4.0, 5.0)),
        reviewed(&round, "p2", "e1", sheet(2.5, 3.0, 3.0)),
        reviewed(&round, "p2", "e2", sheet(2.5, 3.0, 3.0)),
        reviewed(&round, "p2", "e4", sheet(2.5, 3.0, 3.0)),
    ];
    let results: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|app| {
            let subs = final_submissions(&assignments, "acceptance_review", app);
            aggregate_application(&round, app, &subs, &[])
        })
        .collect();
    assert_eq!(
        results[0].guard_json(),
        serde_json::json!({
            "total": 76.666667,
            "count": 3,
            "passed": true,
            "criteria": { "completion": 4.0, "finance": 4.0, "indicators": 4.166667 }
        })
    );
    assert_eq!(results[1].total, 45.0);
    assert!(!results[1].passed, "completion below its minimum of 3");
    assert!(results[1].criteria[0].failing);

    let ranking = rank_applications(&results);
    assert_eq!(ranking[0].application_id, "p1");
    let bytes = export::round_workbook(&round, &ranking, &results, &BTreeMap::new()).unwrap();
    assert!(bytes.starts_with(b"PK"), "an XLSX file is a zip archive");
}
