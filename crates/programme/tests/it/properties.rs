//! Properties that must hold for any input, not just the fixtures.

use std::collections::BTreeMap;

use grantflow_domain::Money;
use grantflow_programme::evaluation::{
    EvaluationInput, EvaluationMethod, Outcome, evaluate, quantitative_fraction,
};
use grantflow_programme::import::{BudgetUnit, parse_budget};
use grantflow_programme::indicator::{Direction, Indicator, IndicatorCategory, IndicatorValue};
use proptest::prelude::*;

fn indicator(
    id: &str,
    category: IndicatorCategory,
    direction: Direction,
    target: f64,
) -> Indicator {
    Indicator {
        id: id.into(),
        category,
        name: id.into(),
        unit: String::new(),
        baseline: None,
        target: IndicatorValue::Number(target),
        direction,
        weight: 1.0,
        ..Indicator::example()
    }
}

proptest! {
    /// Any amount written in yuan, or in 万 with six decimals, reads back to the same fen.
    #[test]
    fn budgets_read_back_exactly(fen in 0i64..1_000_000_000_000) {
        let money = Money::from_fen(fen);
        prop_assert_eq!(parse_budget(&money.to_string(), BudgetUnit::Yuan), Ok(money));
        let wan = format!("{}.{:06}万", fen / 1_000_000, fen % 1_000_000);
        prop_assert_eq!(parse_budget(&wan, BudgetUnit::Yuan), Ok(money));
    }

    /// The fraction earned never leaves 0..=1 and never decreases as the actual improves.
    #[test]
    fn fractions_are_bounded_and_monotone(
        target in 0.1f64..1000.0,
        a in 0.0f64..2000.0,
        b in 0.0f64..2000.0,
        lower in any::<bool>(),
    ) {
        let direction = if lower { Direction::LowerIsBetter } else { Direction::HigherIsBetter };
        let i = indicator("x", IndicatorCategory::OutputQuantity, direction, target);
        let (fa, fb) = (quantitative_fraction(&i, a), quantitative_fraction(&i, b));
        prop_assert!((0.0..=1.0).contains(&fa));
        let (worse, better) = if (a <= b) != lower { (fa, fb) } else { (fb, fa) };
        prop_assert!(worse <= better + 1e-12);
    }

    /// Totals stay within 0..=100 and the parts add up to the total within rounding.
    #[test]
    fn totals_are_out_of_100(
        output in 0.0f64..20.0,
        effect in 0.0f64..20.0,
        satisfaction in proptest::option::of(0.0f64..100.0),
        spent_fen in 0i64..=1_000_000,
    ) {
        let mut indicators = vec![
            indicator("o", IndicatorCategory::OutputQuantity, Direction::HigherIsBetter, 10.0),
            indicator("e", IndicatorCategory::EffectSocial, Direction::HigherIsBetter, 10.0),
        ];
        let mut outcomes = BTreeMap::new();
        let explained = |actual| Outcome::Quantitative {
            actual,
            explanation: Some("超额完成原因说明".into()),
        };
        outcomes.insert("o".to_string(), explained(output));
        outcomes.insert("e".to_string(), explained(effect));
        if let Some(s) = satisfaction {
            indicators.push(indicator("s", IndicatorCategory::Satisfaction, Direction::HigherIsBetter, 90.0));
            outcomes.insert("s".to_string(), explained(s));
        }
        let input = EvaluationInput {
            project_id: "P".into(),
            project_name: "P".into(),
            indicators,
            outcomes,
            budgeted: Money::from_fen(1_000_000),
            spent: Money::from_fen(spent_fen),
        };
        let r = evaluate(&EvaluationMethod::default(), &input).unwrap();
        prop_assert!((0.0..=100.0).contains(&r.total));
        let max: f64 = r.parts.iter().map(|p| p.max_points).sum();
        prop_assert!((max - 100.0).abs() < 1e-9);
        let parts: f64 = r.parts.iter().map(|p| p.points).sum();
        prop_assert!((parts - r.total).abs() <= 0.02 + 1e-9);
    }
}
