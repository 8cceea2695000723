//! Unit tests of the form reader's steps (`import.rs`).

use super::*;

#[test]
fn column_letters_follow_excel() {
    assert_eq!(column_letter(0), "A");
    assert_eq!(column_letter(5), "F");
    assert_eq!(column_letter(25), "Z");
    assert_eq!(column_letter(26), "AA");
    assert_eq!(column_letter(701), "ZZ");
    assert_eq!(column_letter(702), "AAA");
}

#[test]
fn budgets_are_read_exactly_in_their_unit() {
    let yuan = |s| parse_budget(s, BudgetUnit::Yuan);
    assert_eq!(yuan("50"), Ok(Money::from_fen(5_000)));
    assert_eq!(yuan("50.5"), Ok(Money::from_fen(5_050)));
    assert_eq!(yuan("50万"), Ok(Money::from_yuan(500_000).unwrap()));
    assert_eq!(yuan("50.5万元"), Ok(Money::from_yuan(505_000).unwrap()));
    // 12.345678万 is 123 456.78 yuan: six decimals of 万 are exact to the fen.
    assert_eq!(yuan("12.345678万"), Ok(Money::from_fen(12_345_678)));
    assert_eq!(yuan("12.3456789万"), Err(NotAnAmount));
    assert_eq!(
        yuan("¥1,200,000元"),
        Ok(Money::from_yuan(1_200_000).unwrap())
    );
    assert_eq!(
        parse_budget("30", BudgetUnit::TenThousandYuan),
        Ok(Money::from_yuan(300_000).unwrap())
    );
    assert_eq!(
        parse_budget("300元", BudgetUnit::TenThousandYuan),
        Ok(Money::from_yuan(300).unwrap())
    );
    for bad in [
        "约12万",
        "12万美元",
        "待定",
        "十二万",
        "1.2.3",
        "万",
        ".5万",
        "50.123",
    ] {
        assert_eq!(yuan(bad), Err(NotAnAmount), "{bad}");
    }
}

#[test]
fn numeric_cells_round_binary_noise_to_the_fen_only() {
    assert_eq!(
        number_to_money(50.1, BudgetUnit::Yuan),
        Some(Money::from_fen(5_010))
    );
    assert_eq!(
        number_to_money(0.1 + 0.2, BudgetUnit::Yuan),
        Some(Money::from_fen(30))
    );
    assert_eq!(
        number_to_money(50.5, BudgetUnit::TenThousandYuan),
        Some(Money::from_yuan(505_000).unwrap())
    );
    assert_eq!(number_to_money(10.005, BudgetUnit::Yuan), None);
    assert_eq!(number_to_money(f64::NAN, BudgetUnit::Yuan), None);
}

#[test]
fn cell_errors_name_row_column_and_header_in_both_languages() {
    let e = CellError {
        row: 12,
        column: Some("F".into()),
        header: "经费预算".into(),
        problem: CellProblem::NotAnAmount {
            text: "约12万".into(),
        },
    };
    assert_eq!(
        e.message(Lang::ZhCn),
        "第12行 F列「经费预算」：\"约12万\" 不是金额"
    );
    assert_eq!(
        e.message(Lang::En),
        "row 12, column F (经费预算): \"约12万\" is not an amount"
    );
    assert_eq!(e.code(), "IMPORT_NOT_AN_AMOUNT");
}
