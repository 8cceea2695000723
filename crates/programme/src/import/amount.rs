//! Budget amounts as people write them under 经费预算: 元 or 万元, from the header, the
//! cell or the import's `amountUnit`, exact to the fen.

#[allow(
    clippy::wildcard_imports,
    reason = "the parent module's types and imports"
)]
use super::*;

/// The unit a budget header states: 万元 (经费预算（万元）, 经费预算/万元), 元 (经费预算（元）),
/// or none (经费预算). `squashed`: the header without spaces, with ASCII brackets.
pub(super) fn header_unit(squashed: &str) -> Option<BudgetUnit> {
    if squashed.contains("万元") || squashed.contains("(万)") {
        Some(BudgetUnit::TenThousandYuan)
    } else if squashed.contains('元') {
        Some(BudgetUnit::Yuan)
    } else {
        None
    }
}

/// Why a budget text is not an amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnAmount;

/// Why a budget cell cannot be read as money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountProblem {
    /// Not a number, with or without 元/万元.
    NotAnAmount,
    /// A bare number, and neither the cell, the header nor the import's `amountUnit`
    /// says whether it is 元 or 万元.
    UnitMissing,
}

/// Parses a budget as people write it; see the module documentation for the rules.
/// `unit` applies to text without its own unit.
pub fn parse_budget(text: &str, unit: BudgetUnit) -> Result<Money, NotAnAmount> {
    parse_budget_in(text, Some(unit)).map_err(|_| NotAnAmount)
}

/// Like [`parse_budget`], but a bare number with no `unit` is [`AmountProblem::UnitMissing`]
/// (when it is a number at all): "50" under a bare 经费预算 could be 50 元 or 50 万元.
pub fn parse_budget_in(text: &str, unit: Option<BudgetUnit>) -> Result<Money, AmountProblem> {
    let t: String = text
        .trim()
        .trim_start_matches(['¥', '￥'])
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ',' && *c != '，')
        .collect();
    let (number, unit) = if let Some(n) = t.strip_suffix("万元").or_else(|| t.strip_suffix('万'))
    {
        (n, BudgetUnit::TenThousandYuan)
    } else if let Some(n) = t.strip_suffix('元') {
        (n, BudgetUnit::Yuan)
    } else {
        match unit {
            Some(unit) => (t.as_str(), unit),
            // A number in either unit is a number in yuan too.
            None if decimal_to_money(&t, BudgetUnit::TenThousandYuan).is_some() => {
                return Err(AmountProblem::UnitMissing);
            }
            None => return Err(AmountProblem::NotAnAmount),
        }
    };
    decimal_to_money(number, unit).ok_or(AmountProblem::NotAnAmount)
}

/// An exact decimal (`-?digits(.digits)?`) in the given unit, as money; `None` when the
/// text is not such a number or is more precise than a fen.
fn decimal_to_money(number: &str, unit: BudgetUnit) -> Option<Money> {
    match unit {
        // Empty, malformed, finer than a fen or too large: not an amount.
        BudgetUnit::Yuan => Money::parse(number).ok(),
        BudgetUnit::TenThousandYuan => {
            let (negative, digits) = match number.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, number),
            };
            let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
            let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            if whole.is_empty()
                || !all_digits(whole)
                || !all_digits(frac)
                || (digits.contains('.') && frac.is_empty())
            {
                return None;
            }
            // One 万元 is 1 000 000 fen: six decimals are exact, more must be zeros.
            let frac = frac.trim_end_matches('0');
            if frac.len() > 6 {
                return None;
            }
            let frac_fen: i64 = format!("{frac:0<6}").parse().ok()?;
            let fen = whole
                .parse::<i64>()
                .ok()?
                .checked_mul(1_000_000)?
                .checked_add(frac_fen)?;
            Some(Money::from_fen(if negative { -fen } else { fen }))
        }
    }
}

/// A numeric cell as money in `unit`. Excel stores numbers as binary doubles, so the
/// value is rounded to the fen when it is within a thousandth of a fen of one (50.1 is
/// 50.099999999999994 in binary) and refused when it is not.
pub(super) fn number_to_money(value: f64, unit: BudgetUnit) -> Option<Money> {
    let fen_per_unit = match unit {
        BudgetUnit::Yuan => 100.0,
        BudgetUnit::TenThousandYuan => 1_000_000.0,
    };
    let fen = value * fen_per_unit;
    if !fen.is_finite() || fen.abs() > 9.0e15 {
        return None;
    }
    let rounded = fen.round();
    if (fen - rounded).abs() > 1e-3 {
        return None;
    }
    Some(Money::from_fen(rounded as i64))
}
