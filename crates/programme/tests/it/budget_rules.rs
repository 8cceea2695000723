//! 先有预算再有执行、没有预算不得支出: refusals, approval readiness, execution rates.

use chrono::NaiveDate;
use grantflow_domain::{Lang, Money};
use grantflow_programme::UserFacing;
use grantflow_programme::budget::{
    BudgetError, BudgetLine, ProjectLedger, SpendingRecord, approval_readiness, approve_project,
    call_execution, check_spending,
};
use grantflow_programme::indicator::{
    Direction, Indicator, IndicatorCategory, IndicatorSet, IndicatorValue,
};

fn yuan(y: i64) -> Money {
    Money::from_yuan(y).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn line(id: &str, year: i32, subject: &str, amount: Money) -> BudgetLine {
    BudgetLine {
        id: id.into(),
        project_id: "P1".into(),
        year,
        subject: subject.into(),
        amount,
    }
}

fn spend(id: &str, line: Option<&str>, on: NaiveDate, amount: Money) -> SpendingRecord {
    SpendingRecord {
        id: id.into(),
        project_id: "P1".into(),
        line_id: line.map(str::to_string),
        spent_on: on,
        amount,
        description: "支出".into(),
    }
}

fn indicator(id: &str, category: IndicatorCategory) -> Indicator {
    Indicator {
        id: id.into(),
        category,
        name: id.into(),
        unit: "场".into(),
        baseline: None,
        target: IndicatorValue::Number(10.0),
        direction: Direction::HigherIsBetter,
        weight: 1.0,
        ..Indicator::example()
    }
}

/// P1: 会议费 100 000 and 劳务费 50 000 in 2022, 资料费 20 000 in 2023; approved 2022-03-01.
fn approved_ledger() -> ProjectLedger {
    let mut ledger = ProjectLedger::new("P1");
    ledger
        .add_line(line("L1", 2022, "会议费", yuan(100_000)))
        .unwrap();
    ledger
        .add_line(line("L2", 2022, "劳务费", yuan(50_000)))
        .unwrap();
    ledger
        .add_line(line("L3", 2023, "资料费", yuan(20_000)))
        .unwrap();
    let mut set = IndicatorSet::draft(vec![
        indicator("events", IndicatorCategory::OutputQuantity),
        indicator("firms", IndicatorCategory::EffectEconomic),
    ])
    .unwrap();
    set.approve_targets().unwrap();
    approve_project(&mut ledger, &mut set, day(2022, 3, 1)).unwrap();
    assert!(set.is_frozen(), "approval freezes the indicators");
    ledger
}

#[test]
fn nothing_is_spent_before_approval() {
    let mut ledger = ProjectLedger::new("P1");
    ledger
        .add_line(line("L1", 2022, "会议费", yuan(100_000)))
        .unwrap();
    let err = check_spending(
        &ledger,
        &spend("S1", Some("L1"), day(2022, 2, 1), yuan(100)),
    )
    .unwrap_err();
    assert_eq!(err, BudgetError::NotApproved);
    assert_eq!(err.code(), "PROJECT_NOT_APPROVED");
    assert_eq!(err.message(Lang::ZhCn), "项目尚未立项，不得支出");

    let ledger = approved_ledger();
    let err = check_spending(
        &ledger,
        &spend("S1", Some("L1"), day(2022, 2, 28), yuan(100)),
    )
    .unwrap_err();
    assert_eq!(
        err,
        BudgetError::BeforeApproval {
            spent_on: day(2022, 2, 28),
            approved_on: day(2022, 3, 1)
        }
    );
    assert_eq!(err.code(), "SPENDING_BEFORE_APPROVAL");
    // The day of approval itself is fine.
    assert_eq!(
        check_spending(
            &ledger,
            &spend("S1", Some("L1"), day(2022, 3, 1), yuan(100))
        ),
        Ok(())
    );
}

#[test]
fn spending_without_a_budget_line_is_refused() {
    let ledger = approved_ledger();
    let none = check_spending(&ledger, &spend("S1", None, day(2022, 4, 1), yuan(100))).unwrap_err();
    assert_eq!(none, BudgetError::LineMissing { line_id: None });
    assert_eq!(none.code(), "BUDGET_LINE_MISSING");
    assert!(none.message(Lang::ZhCn).starts_with("没有预算不得支出"));
    let unknown = check_spending(
        &ledger,
        &spend("S1", Some("L9"), day(2022, 4, 1), yuan(100)),
    )
    .unwrap_err();
    assert_eq!(unknown.code(), "BUDGET_LINE_MISSING");
    assert!(unknown.message(Lang::En).contains("no budget line L9"));
}

#[test]
fn spending_beyond_the_line_is_refused_to_the_fen() {
    let mut ledger = approved_ledger();
    let err = check_spending(
        &ledger,
        &spend("S1", Some("L2"), day(2022, 4, 1), yuan(60_000)),
    )
    .unwrap_err();
    assert_eq!(
        err,
        BudgetError::LineExceeded {
            line_id: "L2".into(),
            amount: yuan(60_000),
            remaining: yuan(50_000)
        }
    );
    assert_eq!(err.code(), "BUDGET_LINE_EXCEEDED");
    assert_eq!(
        err.message(Lang::ZhCn),
        "支出 60000.00 元超出预算项 L2 的剩余额度 50000.00 元"
    );

    ledger
        .record_spending(spend("S1", Some("L2"), day(2022, 4, 1), yuan(30_000)))
        .unwrap();
    let one_fen_too_many = Money::parse("20000.01").unwrap();
    let err = ledger
        .record_spending(spend("S2", Some("L2"), day(2022, 5, 1), one_fen_too_many))
        .unwrap_err();
    assert_eq!(err.code(), "BUDGET_LINE_EXCEEDED");
    assert_eq!(ledger.spending.len(), 1, "a refused record is not kept");
    ledger
        .record_spending(spend("S2", Some("L2"), day(2022, 5, 1), yuan(20_000)))
        .unwrap();
    assert_eq!(ledger.remaining("L2"), Some(Money::ZERO));
}

#[test]
fn a_line_pays_only_for_its_own_year_and_amounts_must_be_positive() {
    let ledger = approved_ledger();
    let err = check_spending(
        &ledger,
        &spend("S1", Some("L3"), day(2022, 12, 31), yuan(100)),
    )
    .unwrap_err();
    assert_eq!(err.code(), "BUDGET_LINE_WRONG_YEAR");
    let err = check_spending(
        &ledger,
        &spend("S1", Some("L1"), day(2022, 4, 1), Money::ZERO),
    )
    .unwrap_err();
    assert_eq!(err.code(), "AMOUNT_NOT_POSITIVE");
}

#[test]
fn approval_needs_a_budget_line_and_approved_targets_with_outputs_and_effects() {
    let ledger = ProjectLedger::new("P1");
    let draft =
        IndicatorSet::draft(vec![indicator("events", IndicatorCategory::OutputQuantity)]).unwrap();
    let problems = approval_readiness(&ledger, &draft).unwrap_err();
    let codes: Vec<&str> = problems.iter().map(UserFacing::code).collect();
    assert_eq!(
        codes,
        [
            "BUDGET_LINE_MISSING",
            "TARGETS_NOT_APPROVED",
            "EFFECT_INDICATOR_MISSING"
        ]
    );
    assert_eq!(
        problems[0].message(Lang::ZhCn),
        "先有项目后有预算：立项前须编列预算"
    );

    let mut ledger = ledger;
    let mut empty = IndicatorSet::draft(vec![]).unwrap();
    assert_eq!(
        approve_project(&mut ledger, &mut empty, day(2022, 3, 1))
            .unwrap_err()
            .iter()
            .map(UserFacing::code)
            .collect::<Vec<_>>(),
        ["BUDGET_LINE_MISSING", "INDICATOR_SET_EMPTY"]
    );
    assert_eq!(ledger.approved_on, None);
}

#[test]
fn execution_rates_per_project_year_and_call() {
    let mut p1 = approved_ledger();
    p1.record_spending(spend("S1", Some("L1"), day(2022, 6, 1), yuan(80_000)))
        .unwrap();
    p1.record_spending(spend("S2", Some("L2"), day(2022, 7, 1), yuan(50_000)))
        .unwrap();
    // 130 000 of 170 000 overall; 130 000 of the 150 000 budgeted for 2022.
    let e = p1.execution();
    assert_eq!((e.budgeted, e.spent), (yuan(170_000), yuan(130_000)));
    assert!((e.rate.unwrap() - 130.0 / 170.0).abs() < 1e-12);
    let e2022 = p1.execution_in_year(2022);
    assert!((e2022.rate.unwrap() - 130.0 / 150.0).abs() < 1e-12);
    assert_eq!(p1.execution_in_year(2023).rate, Some(0.0));
    assert_eq!(p1.execution_in_year(2024).rate, None, "nothing budgeted");

    let mut p2 = ProjectLedger::new("P2");
    p2.add_line(BudgetLine {
        id: "M1".into(),
        project_id: "P2".into(),
        year: 2022,
        subject: "委托业务费".into(),
        amount: yuan(30_000),
    })
    .unwrap();
    let call = call_execution(&[p1, p2]);
    assert_eq!(call.projects.len(), 2);
    assert_eq!(call.projects[1].execution.rate, Some(0.0));
    // Weighted by budget: 130 000 / 200 000 = 0.65, not the mean of 0.76 and 0.
    assert_eq!(call.total.rate, Some(0.65));
}

#[test]
fn amounts_stay_exact_to_the_fen() {
    let mut ledger = ProjectLedger::new("P1");
    ledger
        .add_line(line("L1", 2022, "邮寄费", Money::parse("0.30").unwrap()))
        .unwrap();
    ledger.approved_on = Some(day(2022, 1, 1));
    for (id, amount) in [("S1", "0.10"), ("S2", "0.20")] {
        ledger
            .record_spending(spend(
                id,
                Some("L1"),
                day(2022, 2, 1),
                Money::parse(amount).unwrap(),
            ))
            .unwrap();
    }
    assert_eq!(ledger.remaining("L1"), Some(Money::ZERO));
    assert_eq!(ledger.execution().rate, Some(1.0));
    assert!(
        ledger
            .record_spending(spend("S3", Some("L1"), day(2022, 2, 1), Money::from_fen(1)))
            .is_err()
    );
}
